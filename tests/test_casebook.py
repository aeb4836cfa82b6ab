"""The casebook: its registry, its command, its pages, and every case under the plugin itself."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import casebook
from casebook import CASE_NAMES, SIZES, get_case
from casebook.runner import CaseResult, VariantResult
from leakhunt.cli import main as leakhunt_main

ROOT = Path(__file__).resolve().parent.parent

SEED_TITLES = {
    "Bug Report Example: DataFrame Memory Leak in Batch Processing",
    "Memory Leak Fix Documentation",
    "Root Cause Analysis: Transform Pipeline Memory Crisis",
    "Python Memory & Garbage Collection",
    "Large Dataset Memory Optimization",
}


# --- the registry ------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_is_complete(name: str) -> None:
    case = get_case(name)
    assert case.name == name
    assert case.source in SEED_TITLES
    assert case.metric in ("peak", "retained")
    assert case.expect in ("leak", "myth")
    for size in SIZES:
        params = case.params(size)
        budget = case.budget(params)
        key = "rss" if case.metric == "retained" else "peak"
        assert set(budget) == {key}, f"{name}: the budget must be on the case's metric"
        assert isinstance(budget[key], int) and budget[key] > 0
    assert case.story and case.claim and case.lesson and case.title


def test_every_seed_story_has_a_case() -> None:
    assert {get_case(name).source for name in CASE_NAMES} == SEED_TITLES


def test_unknown_case_names_the_value_and_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown case 'nope': accepted cases are mean_myth, "):
        get_case("nope")


def test_unknown_size_names_the_value() -> None:
    with pytest.raises(ValueError, match=r"unknown size 'huge'.*small, medium, large"):
        get_case("row_slice").params("huge")


# --- answers agree between leaky and fixed (tiny sizes, in process) ---------------------


def _same_rows(a: object, b: object) -> None:
    assert a == b


def test_top_n_variants_find_the_same_rows(tmp_path: Path) -> None:
    case = get_case("top_n")
    params = case.prepare("warmup", tmp_path)
    expected = sorted(round(t, 2) for t in case.leaky(params)["total"].tolist())
    assert sorted(round(t, 2) for t in case.fixed(params)["total"].tolist()) == expected
    assert sorted(round(t, 2) for t, _ in case.alternatives["generator"](params)) == expected
    if pytest.importorskip("duckdb"):
        rows = case.alternatives["duckdb"](params)
        assert sorted(round(row[3], 2) for row in rows) == expected


def test_sql_aggregate_variants_agree(tmp_path: Path) -> None:
    case = get_case("sql_aggregate")
    params = case.prepare("warmup", tmp_path)
    leaky, fixed = case.leaky(params), case.fixed(params)
    assert leaky["category"].tolist() == fixed["category"].tolist()
    assert leaky["quantity"].tolist() == fixed["quantity"].tolist()
    assert leaky["total"].round(4).tolist() == pytest.approx(fixed["total"].round(4).tolist())


def test_chunked_csv_variants_agree(tmp_path: Path) -> None:
    case = get_case("chunked_csv")
    params = case.prepare("warmup", tmp_path)
    leaky, fixed = case.leaky(params), case.fixed(params)
    assert leaky.index.tolist() == fixed.index.tolist()
    assert leaky.tolist() == pytest.approx(fixed.tolist())


def test_last_timestamp_variants_agree(tmp_path: Path) -> None:
    case = get_case("last_timestamp")
    params = case.prepare("warmup", tmp_path)
    assert case.leaky(params) == case.fixed(params)


# --- the command -------------------------------------------------------------------------


def test_cli_rejects_an_unknown_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert leakhunt_main(["casebook", "row_slice", "no_such_case"]) == 2
    err = capsys.readouterr().err
    assert "unknown case 'no_such_case'" in err
    assert "accepted cases: mean_myth, row_slice" in err


def test_cli_rejects_an_unknown_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert leakhunt_main(["casebook", "--size", "huge"]) == 2
    err = capsys.readouterr().err
    assert "unknown size 'huge'; accepted sizes: small, medium, large" in err


def test_cli_json_has_the_documented_shape(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "leakhunt.cli", "casebook", "mean_myth", "row_slice", "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []  # the cases' temporary data is gone
    assert "[1/2] mean_myth" in proc.stderr  # progress goes to stderr, JSON alone to stdout
    document = json.loads(proc.stdout)
    assert [c["name"] for c in document["cases"]] == ["mean_myth", "row_slice"]
    for entry in document["cases"]:
        assert {"name", "source", "metric", "reproduced", "leaky", "fixed"} <= set(entry)
        assert entry["source"] in SEED_TITLES
        assert isinstance(entry["reproduced"], bool)
        for variant in ("leaky", "fixed"):
            figures = entry[variant]
            assert {"peak", "retained", "seconds"} <= set(figures)
            assert isinstance(figures["peak"], int) and isinstance(figures["retained"], int)
            assert isinstance(figures["seconds"], float)
    by_name = {c["name"]: c for c in document["cases"]}
    # Far from the budget in both directions: 8 batches of 18 MB versus a budget of two.
    assert by_name["row_slice"]["reproduced"] is True
    assert by_name["mean_myth"]["reproduced"] is False
    assert "myth" in by_name["mean_myth"]["verdict"]


def test_table_says_plainly_when_a_claim_does_not_hold() -> None:
    import io

    from casebook.report import render_table

    out = io.StringIO()
    render_table([_fake_result("gc_myth", 600 * 2**10, 580 * 2**10),
                  _fake_result("row_slice", 200 * 2**20, 2**20)], {"pandas": "3.1.1"}, out)
    text = out.getvalue()
    assert re.search(r"^gc_myth\s+retained.*\bNO$", text, re.M), text
    assert re.search(r"^row_slice\s+retained.*200\.0x\s+yes$", text, re.M), text
    assert "1 of 2 cases reproduced." in text
    assert "gc_myth: NOT reproduced: the claim does not hold here" in text


# --- the pages -------------------------------------------------------------------------


def _fake_result(name: str, leaky: int, fixed: int) -> CaseResult:
    case = get_case(name)
    return CaseResult(
        case=case, size="small", params=case.params("small"),
        leaky=VariantResult("leaky", leaky, leaky, 1.5, {"why_alive": "KEPT (global) -> list[0]"}),
        fixed=VariantResult("fixed", fixed, fixed, 0.5),
        alternatives={}, skipped={},
    )


def test_page_includes_the_code_from_source_and_the_figures() -> None:
    from casebook.markdown import render_index, render_page

    result = _fake_result("row_slice", 200 * 2**20, 2**20)
    versions = {"python": "3.11", "pandas": "3.1.1"}
    page = render_page(result, versions)
    assert "samples.append(processed.iloc[:1])" in page  # leaky, read from the module
    assert "samples.append(processed.iloc[:1].copy())" in page  # fixed
    assert "| leaky | 200.0 MiB | 200.0 MiB | 1.50 s | no |" in page
    assert "KEPT (global) -> list[0]" in page
    assert "pandas 3.1.1" in page
    index = render_index([result], versions)
    assert "[row_slice](row_slice.md)" in index


def test_committed_pages_are_generated() -> None:
    pages = ROOT / "docs" / "casebook"
    if not pages.exists():
        pytest.skip("docs/casebook not generated yet")
    for name in CASE_NAMES:
        text = (pages / f"{name}.md").read_text()
        assert text.startswith("<!-- Generated by `leakhunt casebook --markdown`")


# --- every case under the plugin itself --------------------------------------------------

PLUGIN_TESTS = '''
import pytest
from casebook import CASE_NAMES, get_case

def _params():
    out = []
    for name in CASE_NAMES:
        case = get_case(name)
        out.append(pytest.param(name, marks=pytest.mark.memory_budget(
            **case.budget(case.params("small"))), id=name))
    return out

@pytest.mark.parametrize("casebook_case", _params(), indirect=True)
def test_leaky(casebook_case):
    casebook_case.leaky()

@pytest.mark.parametrize("casebook_case", _params(), indirect=True)
def test_fixed(casebook_case):
    casebook_case.fixed()

def test_factory(casebook):
    case = casebook("mean_myth")
    assert case.budget == {"rss": 2 * 250_000 * 9 * 8}
    assert len(case.fixed()) == 8
'''


def _expected_leaky_outcome(name: str) -> str:
    case = get_case(name)
    if case.expect == "myth":
        return "PASSED"  # the claim does not hold: nothing to catch
    if not case.settle_after:
        # What stays is allocator retention; the plugin settles before judging, and then
        # there is nothing left: by design it is not a leak.
        return "PASSED"
    return "FAILED"


def test_every_case_under_the_plugin(pytester: pytest.Pytester) -> None:
    """The leaky version breaks its budget, the fixed one keeps it: one run for all cases."""
    pytester.makepyfile(test_cases=PLUGIN_TESTS)
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider", "-p", "no:randomly",
                                           timeout=600)
    outcomes = dict(re.findall(r"::(test_\w+(?:\[\w+\])?) (PASSED|FAILED|ERROR)", result.stdout.str()))
    for name in CASE_NAMES:
        assert outcomes.get(f"test_fixed[{name}]") == "PASSED", (name, result.stdout.str()[-3000:])
        assert outcomes.get(f"test_leaky[{name}]") == _expected_leaky_outcome(name), name
    assert outcomes.get("test_factory") == "PASSED"
    # The failure is the plugin's own explanation, with the budget it broke.
    result.stdout.fnmatch_lines(["*test_leaky?row_slice?*broke its memory budget*"])


def test_the_fixture_examples_in_the_docs_run(pytester: pytest.Pytester) -> None:
    text = (ROOT / "docs" / "casebook.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)
    assert len(blocks) == 2
    pytester.makepyfile(**{f"test_doc_{i}": code for i, code in enumerate(blocks)})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", timeout=300)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_samples_leak*broke its memory budget*"])
