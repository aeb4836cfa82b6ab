"""The casebook without measuring: its registry, policy, protocol, claims, tables and pages.

The measured tests (every case's verdict flips, the cases under the plugin, the command end
to end) are in ``test_casebook_measured.py``.
"""

from __future__ import annotations

import ast
import io
import random
import re
import time
from pathlib import Path

import pytest
from casebook_fakes import MIB, random_result, result, run, simple

import casebook
import leakhunt
from casebook import CASE_NAMES, get_case
from casebook.model import METRICS, SIZES, Case, Claim, Observed, Variant
from casebook.protocol import Report, Request
from casebook.stories import STORIES
from casebook.verdicts import (
    SPREAD,
    Band,
    Evidence,
    budget_verdict,
    case_verdict,
    growth_shape,
    judge_claims,
    reproduced,
    within,
)
from leakhunt.cli import main as leakhunt_main

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "casebook"

# --- the registry ------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_is_complete(name: str) -> None:
    case = get_case(name)
    assert case.name == name and case.title and case.summary and case.lesson
    assert case.story in STORIES
    assert case.metric in METRICS
    assert {"warmup", "test", *SIZES} <= set(case.sizes)
    for size in ("test", *SIZES):
        params = case.params(size)
        for key in case.growth_keys:
            assert isinstance(params[key], int) and params[key] >= 2, (name, size, key)
        if case.expect != "claims":
            limit = case.limit(params)
            assert isinstance(limit, int) and limit > 0
    assert case.claims, "every case judges at least one claim"
    assert all(claim.source is None or claim.source in STORIES for claim in case.claims)
    if case.expect != "claims":
        assert case.flip, "every case names the variant that makes its verdict flip"
    assert set(case.causes) <= {v.name for v in case.variants}
    for claim in case.claims:
        assert claim.section, f"{name}: {claim.text!r} says where in its story it comes from"
        assert claim.origin in ("story", "casebook"), claim.text
        assert claim.flip is not None and claim.flip.why, f"{name}: {claim.text!r} has a flip"
        assert set(claim.flip.params) <= set(case.params("test")), (name, claim.flip.params)


def test_every_section_named_is_in_its_story() -> None:
    """A claim's section, and an omitted statement's, names headings of its seed document."""
    from casebook.coverage import OMITTED

    headings = {
        "batch_loop": ("Symptoms", "Root Cause", "Investigation", "Solution", "Verification",
                       "Prevention", "Related Issues", "Lessons Learned"),
        "missing_days": ("Root Causes", "Solutions Implemented", "Memory Usage Comparison",
                         "Best Practices", "Usage", "Files Modified", "Emergency Rollback",
                         "Testing Recommendations", "Additional Optimizations", "Summary"),
        "gc_post": ("Out-of-memory issue", "1: signal Garbage Collector asap",
                    "2: use chunked/iterator output", "Note: Monitor Memory in Python"),
        "large_dataset": ("Overview", "1. Problem", "2. Solution 1", "3. Solution 2", "4. Node.js",
                          "5. Generator", "6. Real-World", "7. Dask", "8. Memory Monitoring",
                          "9. Optimization", "10. Results"),
        "transform_pipeline": ("Part 1", "Part 2", "Part 3", "Part 4", "Part 5", "Part 6", "Part 7",
                               "Part 8", "Part 9", "Part 10"),
    }
    sections = [(claim.source or case.story, claim.section) for case in casebook.all_cases()
                for claim in case.claims]
    sections += [(story, omitted.section) for story, items in OMITTED.items() for omitted in items]
    for story, section in sections:
        for part in section.split("; "):
            assert part.startswith(headings[story]), (story, part)


def test_every_story_has_cases_and_several_claims() -> None:
    claims_by_story: dict[str, int] = {key: 0 for key in STORIES}
    for case in casebook.all_cases():
        for claim in case.claims:
            claims_by_story[claim.source or case.story] += 1
    assert {case.story for case in casebook.all_cases()} == set(STORIES)
    assert all(count >= 3 for count in claims_by_story.values()), claims_by_story


# Every claim the audit (issue 10) listed gets a verdict somewhere: a claim whose text says it.
LISTED_CLAIMS = {
    "polars constant memory": r"polars.*constant",
    "read_csv takes 2x the file": r"read_csv.*twice",
    "PyArrow duplicates memory (from_pylist)": r"from_pylist.*duplicates",
    "Table.from_pandas duplication": r"PyArrow tables from the DataFrames duplicates",
    "generators": r"generator",
    "tracemalloc as the monitor": r"tracemalloc",
    "row-group-by-row-group append": r"row group by row group",
    "500 MB batches": r"500 MB",
    "Dask (story 2)": r"Moving a large-file job to Dask",
    "Dask 100 MB per worker (story 4)": r"100 MB",
    "RLIMIT_AS": r"RLIMIT_AS",
    "the result queue's capped drain": r"cap no longer applies",
    "flush immediately (Solution A)": r"Solution A",
    "the streaming writer (Solution D)": r"Solution D",
    "mean() keeps the frame": r"mean\(\)",
    "gc.collect()": r"gc\.collect\(\)",
    "del": r"`del",
    "chunked reading": r"chunk",
    "database aggregation": r"database",
    # issue 22: every speed claim, the writer's buffers, growth faster than the data, the tools
    "polars 10-100x": r"10-100x faster",
    "polars 45 to 12 minutes": r"12 minutes instead of 45",
    "Dask 4-8x": r"4-8x faster",
    "Solution A 10-20%": r"10-20%",
    "Solution B 50-70%": r"50-70% slower",
    "Solution C slightly slower": r"slightly slower",
    "SQL 90x": r"90 times faster",
    "1.5-3 GB during write": r"1\.5-3 GB",
    "exponential growth": r"exponentially",
    "gc.get_referents and sys.getsizeof": r"get_referents",
    "fragmentation": r"fragmentation",
    "the final stage is special": r"final stage results queue up",
    "normal operation keeps pace": r"normal operation",
    "del signals the collector": r"signals the garbage collector",
    "the post's profile": r"post's own profile",
}


@pytest.mark.parametrize("topic", LISTED_CLAIMS)
def test_every_listed_claim_has_a_place_in_the_ledger(topic: str) -> None:
    texts = [claim.text for case in casebook.all_cases() for claim in case.claims]
    assert any(re.search(LISTED_CLAIMS[topic], text) for text in texts), topic


def test_unknown_case_names_the_value_and_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown case 'nope': accepted cases are mean_myth, "):
        get_case("nope")


def test_unknown_size_names_the_value() -> None:
    with pytest.raises(ValueError, match=r"unknown size 'huge'.*small, medium, large"):
        get_case("row_slice").params("huge")


def test_a_case_checks_its_own_definition() -> None:
    variant = Variant("leaky", lambda p: None, "leaky", "x")
    claim = Claim("c", lambda e: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="needs a 'leaky' and a fix variant"):
        Case("x", "t", "batch_loop", "s", "l", "peak", {}, (variant,), (claim,), budget=lambda p: 1)
    with pytest.raises(ValueError, match="unknown metric 'rss'"):
        Case("x", "t", "batch_loop", "s", "l", "rss", {}, (variant,), (claim,), expect="claims")
    with pytest.raises(ValueError, match="flip 'leaky' -> 'nope' names a missing variant"):
        Case("x", "t", "batch_loop", "s", "l", "peak", {}, (variant,), (claim,), expect="claims",
             flip={"leaky": "nope"})


# --- layers: public API only, no case imports a sibling, the core plugin stays out --------


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
    return out


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_casebook_uses_only_leakhunts_public_api(path: Path) -> None:
    for module, names in _imports(path):
        if module == "leakhunt":
            assert set(names) <= set(leakhunt.__all__), (path, names)
        else:
            assert not module.startswith("leakhunt."), (path, module)
        assert not module.startswith("pytest_leakhunt"), (path, module)
        if path.parent.name == "cases":
            assert not module.startswith("casebook.cases"), f"{path.name} imports a sibling case: {module}"


# Libraries the casebook extra installs but a plain install may lack: a case that imports one
# must declare it (in its `imports`, or a variant's `requires`) so that the runner can say what
# to install instead of failing.
OPTIONAL = {"dask", "distributed", "polars", "duckdb"}


@pytest.mark.parametrize("name", CASE_NAMES)
def test_a_case_declares_every_optional_library_it_imports(name: str) -> None:
    case = get_case(name)
    declared = {m.split(".")[0] for m in case.imports}
    declared |= {v.requires.split(".")[0] for v in case.variants if v.requires}
    used = {module.split(".")[0] for module, _ in _imports(PACKAGE / "cases" / f"{name}.py")}
    assert used & OPTIONAL <= declared, (name, used & OPTIONAL - declared)


def test_a_missing_library_names_the_extra_that_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from casebook.runner import install_hint, missing_module, run_cases

    monkeypatch.setitem(sys.modules, "dask", None)
    assert missing_module(["numpy", "dask.dataframe"]) == "dask"
    assert missing_module(["numpy", "pandas"]) is None
    assert install_hint("dask") == "install leakhunt[dask] (dask is not installed)"
    assert install_hint("polars") == "install leakhunt[compare] (polars is not installed)"
    results, failures = run_cases([get_case("dask_top_n")], "test", runs=3)  # nothing is started
    assert failures == {} and results[0].not_run == "install leakhunt[dask] (dask is not installed)"
    assert case_verdict(results[0]) == "not run"
    assert {c.verdict for c in judge_claims(results[0])} == {None}


def test_the_core_plugin_does_not_register_the_casebook() -> None:
    for path in (ROOT / "pytest_leakhunt").glob("*.py"):
        assert not any(module.startswith("casebook") for module, _ in _imports(path)), path
        assert '"casebook.' not in path.read_text(), path  # nor by name (importlib)
    assert 'casebook = "casebook.plugin"' in (ROOT / "pyproject.toml").read_text()


# --- the workers' memory -------------------------------------------------------------------


def test_worker_memory_is_the_workers_pss_from_idle_to_peak() -> None:
    import subprocess
    import sys

    from casebook.workers import WorkerMemory, pss

    code = "import sys, time; sys.stdin.readline(); b = bytearray(60 * 2**20); time.sleep(0.5)"
    worker = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        with WorkerMemory([worker.pid, 2**22 + 7], interval=0.02) as memory:  # a pid that is gone
            worker.stdin.write("go\n")
            worker.stdin.flush()
            worker.wait(timeout=30)
    finally:
        worker.kill()
    assert memory.idle < 30 * MIB
    assert memory.peak - memory.idle > 50 * MIB
    assert pss([2**22 + 7]) == 0


# --- the protocol ------------------------------------------------------------------------


def test_requests_and_reports_round_trip(tmp_path: Path) -> None:
    request = Request("run", "row_slice", str(tmp_path), str(tmp_path / "r.json"), size="test",
                      scale=0.5, variants=("leaky", "fixed"), runs=2)
    request.write(tmp_path / "q.json")
    assert Request.read(tmp_path / "q.json") == request
    report = Report(runs={"leaky": (run(3 * MIB, workers=2, children_peak=MIB, copied=5),)},
                    explanation="why", line_profile=None)
    report.write(tmp_path / "r.json")
    back = Report.read(tmp_path / "r.json")
    assert back == report
    assert back.runs["leaky"][0].figure("copied") == 5
    assert back.runs["leaky"][0].figure("worker_peak") == MIB // 2
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary file and a rename


def test_a_request_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown fields \['variant'\]"):
        Request.from_json('{"step": "run", "case": "x", "workdir": "w", "report": "r", "variant": "v"}')


# --- the policy --------------------------------------------------------------------------


def test_a_verdict_is_decided_only_beyond_the_spread() -> None:
    limit = 100 * MIB
    assert budget_verdict(Band(120 * MIB, 101 * MIB, 130 * MIB), limit) == "breaks"
    assert budget_verdict(Band(120 * MIB, 99 * MIB, 130 * MIB), limit) == "inconclusive"
    assert budget_verdict(Band(80 * MIB, 70 * MIB, 99 * MIB), limit) == "keeps"
    assert budget_verdict(Band(80 * MIB, 70 * MIB, 101 * MIB), limit) == "inconclusive"
    assert budget_verdict(None, limit) is None
    assert within(Band(2.0, 1.8, 2.2), 1.5, 2.5) == "holds"
    assert within(Band(2.0, 1.8, 2.6), 1.5, 2.5) == "inconclusive"
    assert within(Band(3.0, 2.7, 3.3), 1.5, 2.5) == "does not hold"


def test_a_claim_of_several_parts() -> None:
    from casebook.model import Ruling
    from casebook.verdicts import both

    def parts(*verdicts: str) -> str | None:
        return both(*(Ruling(v, v) for v in verdicts)).verdict  # type: ignore[arg-type]

    assert parts("holds", "holds") == "holds"
    assert parts("holds", "does not hold") == "partly"
    assert parts("does not hold", "does not hold") == "does not hold"
    assert parts("does not hold", "inconclusive") == "does not hold"  # it cannot hold either way
    assert parts("holds", "inconclusive") == "inconclusive"


def test_the_spread_widens_every_band() -> None:
    """A single run's figure is never exact: the spread measured between invocations applies."""
    case = get_case("concat_loop")
    limit = case.limit(case.params("small"))
    just_over = (1 + (case.spread or SPREAD) / 2) * limit
    assert case_verdict(simple(case, {"leaky": just_over, "story_fix": 0.1 * limit, "fixed": 0.1 * limit},
                               runs=1)) == "inconclusive"
    assert case_verdict(simple(case, {"leaky": 2 * limit, "story_fix": 0.1 * limit, "fixed": 0.1 * limit},
                               runs=1)) == "reproduced"


def test_growth_is_judged_against_the_noise_floor() -> None:
    case = get_case("row_slice")

    def shape(half: float, full: float) -> str | None:
        return growth_shape(simple(case, {"leaky": full}, half={"leaky": half}), "leaky")

    assert shape(10 * MIB, 20 * MIB) == "grows"
    assert shape(10 * MIB, 11 * MIB) == "flat"
    assert shape(10 * MIB, 12.5 * MIB) == "inconclusive"  # the line (1.25x) within the spread
    assert shape(4096, 900 * 1024) == "flat"  # both under 1 MiB: noise, not growth


def test_a_verdict_rests_on_every_run() -> None:
    """The median says where a figure is, every run says how far it moves: one odd run of
    three leaves the verdict inconclusive."""
    case = get_case("row_slice")
    limit = case.limit(case.params("small"))
    agreeing = result(case, {("leaky", 1.0): [run(4 * limit)] * 3, ("fixed", 1.0): [run(0)] * 3})
    assert case_verdict(agreeing) == "reproduced" and reproduced(agreeing)
    odd = result(case, {("leaky", 1.0): [run(4 * limit), run(0), run(4 * limit)], ("fixed", 1.0): [run(0)] * 3})
    assert case_verdict(odd) == "inconclusive"


@pytest.mark.parametrize(("leaky", "story_fix", "fixed", "verdict"), [
    (4.0, 0.1, 0.1, "reproduced"),
    (4.0, 4.0, 0.1, "reproduced, story's fix falls short"),
    (4.0, 4.0, 4.0, "reproduced, no fix keeps it"),
    (4.0, 0.1, 4.0, "reproduced, casebook's fix fails"),
    (0.1, 0.1, 0.1, "not reproduced"),
    (1.0, 0.1, 0.1, "inconclusive"),
    (4.0, 1.0, 1.0, "inconclusive"),
    (4.0, 1.0, 0.1, "inconclusive"),
])
def test_case_verdicts(leaky: float, story_fix: float, fixed: float, verdict: str) -> None:
    case = get_case("concat_loop")
    limit = case.limit(case.params("small"))
    r = simple(case, {"leaky": leaky * limit, "story_fix": story_fix * limit, "fixed": fixed * limit})
    assert case_verdict(r) == verdict
    assert reproduced(r) == (verdict in ("reproduced", "reproduced, story's fix falls short"))


def test_a_myth_is_a_myth_until_the_blamed_code_breaks_the_budget() -> None:
    case = get_case("gc_myth")
    limit = case.limit(case.params("small"))
    assert case_verdict(simple(case, {"leaky": 0.5 * limit, "story_fix": 0.3 * limit})) == "myth: does not hold"
    assert case_verdict(simple(case, {"leaky": 5 * limit, "story_fix": 0.3 * limit})) == "myth: holds after all"


@pytest.mark.parametrize("name", CASE_NAMES)
def test_every_claim_can_come_out_more_than_one_way(name: str) -> None:
    """Drawn figures make every claim's rule give at least two verdicts, and never crash it."""
    case = get_case(name)
    rnd = random.Random(name)
    seen: dict[str, set[str | None]] = {claim.text: set() for claim in case.claims}
    for _ in range(300):
        for claim in judge_claims(random_result(case, rnd)):
            seen[claim.text].add(claim.verdict)
    for text, verdicts in seen.items():
        assert None not in verdicts, text  # every figure a rule reads was there
        assert len(verdicts) >= 2, (text, verdicts)


def test_a_claim_that_needs_a_missing_variant_says_so() -> None:
    case = get_case("top_n")
    r = simple(case, {"leaky": 100 * MIB, "story_fix": MIB})
    polars = next(c for c in judge_claims(r) if "polars" in c.text)
    assert polars.verdict is None and polars.evidence.startswith("not measured: `polars`")


def test_evidence_reads_medians_by_variant_figure_and_size() -> None:
    case = get_case("row_slice")
    r = result(case, {("leaky", 1.0): [run(3 * MIB), run(5 * MIB), run(4 * MIB)],
                      ("leaky", 0.5): [run(3 * MIB)] * 3})
    e = Evidence(r)
    assert e.value("leaky") == 4 * MIB
    shape, smaller, full = e.shape("leaky")
    # 4 MiB against 3 is past the line (1.25x), but one run read 5 MiB and another 3 MiB
    assert (shape, smaller.value, full.value) == ("inconclusive", 3 * MIB, 4 * MIB)
    assert e.params(0.5)["batches"] == case.params("small")["batches"] // 2
    assert e.read == {("leaky", 1.0), ("leaky", 0.5)}  # what the flip tests measure again


# --- answers agree: the fixes compute what the story's code computes ---------------------


def _prepared(name: str, tmp_path: Path, size: str = "warmup") -> tuple[Case, dict]:
    case = get_case(name)
    return case, case.prepare(size, tmp_path)


def test_top_n_variants_find_the_same_rows(tmp_path: Path) -> None:
    case, params = _prepared("top_n", tmp_path)
    expected = sorted(round(t, 2) for t in case.leaky(params)["total"].tolist())
    for name in ("story_fix", "fixed", "running_top", "usecols_whole", "row_by_row"):
        assert sorted(round(t, 2) for t in case.variant(name).fn(params)["total"].tolist()) == expected, name
    assert sorted(round(row["total"], 2) for row in case.variant("generator").fn(params)) == expected
    if pytest.importorskip("duckdb"):
        assert sorted(round(row[3], 2) for row in case.variant("duckdb").fn(params)) == expected
    if pytest.importorskip("polars"):
        assert sorted(round(t, 2) for t in case.variant("polars").fn(params)["total"].to_list()) == expected


def test_sql_aggregate_variants_agree(tmp_path: Path) -> None:
    case, params = _prepared("sql_aggregate", tmp_path)
    leaky, fixed = case.leaky(params).value, case.fixed(params)
    assert leaky["category"].tolist() == fixed["category"].tolist()
    assert leaky["quantity"].tolist() == fixed["quantity"].tolist()
    assert leaky["total"].round(4).tolist() == pytest.approx(fixed["total"].round(4).tolist())


def test_chunked_csv_variants_agree(tmp_path: Path) -> None:
    case, params = _prepared("chunked_csv", tmp_path)
    expected = case.leaky(params)
    for name in ("story_fix", "fixed", "usecols_only", "chunks_kept"):
        got = case.variant(name).fn(params)
        assert got.index.tolist() == expected.index.tolist(), name
        assert got.tolist() == pytest.approx(expected.tolist()), name


def test_parquet_variants_write_the_same_data(tmp_path: Path) -> None:
    import pandas as pd

    def written(result: object) -> str:
        return result.value if isinstance(result, Observed) else result  # type: ignore[return-value]

    case, params = _prepared("concat_loop", tmp_path)
    expected = pd.read_parquet(written(case.leaky(params)))
    for name in ("story_fix", "fixed", "concat_once", "also_kept"):
        pd.testing.assert_frame_equal(pd.read_parquet(written(case.variant(name).fn(params))), expected)
    (tmp_path / "append").mkdir()
    case, params = _prepared("parquet_append", tmp_path / "append")
    expected = pd.read_parquet(case.leaky(params))
    pd.testing.assert_frame_equal(pd.read_parquet(case.variant("story_fix").fn(params)), expected)
    case.fixed(params)
    pd.testing.assert_frame_equal(pd.read_parquet(params["parts"]).reset_index(drop=True), expected)


def test_last_timestamp_variants_agree(tmp_path: Path) -> None:
    case, params = _prepared("last_timestamp", tmp_path)
    answers = {name: case.variant(name).fn(params) for name in ("leaky", "story_fix", "fixed", "read_table")}
    assert len(set(answers.values())) == 1, answers


def test_row_buffer_variants_write_every_product(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    case, params = _prepared("row_buffer", tmp_path)
    total = params["batches"] * params["batch"]
    for v in case.variants:
        if v.name == "one_buffer":
            continue
        expected = params["flush_batches"] * params["batch"] if v.name == "one_flush" else total
        assert v.fn(params) == expected, v.name
        if v.name != "buffer_only":
            assert pq.read_metadata(Path(params["workdir"]) / "products.parquet").num_rows == expected, v.name


def test_result_queue_variants_consume_every_result(tmp_path: Path) -> None:
    case, params = _prepared("result_queue", tmp_path)
    assert case.context is not None
    with case.context(params) as extra:
        for v in case.variants:
            observed = v.fn({**params, **extra})
            if v.name == "fixed":
                assert observed.value > 0 and len(list(tmp_path.glob("part-*.bin"))) == params["tasks"]
            else:
                assert observed.value == params["tasks"] * params["result_bytes"], v.name
            assert observed.figures["drain_waiting"] >= 1  # the result taken is counted


def test_frames_alive_and_gc_variants_compute_the_same_numbers(tmp_path: Path) -> None:
    case, params = _prepared("frames_alive", tmp_path)
    assert case.leaky(params) == case.variant("story_fix").fn(params)
    case, params = _prepared("gc_myth", tmp_path / "gc")
    means = case.leaky(params)
    for name in ("story_fix", "del_only", "gc_only", "cycle", "cycle_gc"):
        assert case.variant(name).fn(params) == means, name


# --- the command -------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "message"), [
    (["casebook", "row_slice", "no_such_case"], "unknown case 'no_such_case'; accepted cases: mean_myth, row_slice"),
    (["casebook", "--size", "huge"], "unknown size 'huge'; accepted sizes: small, medium, large"),
    (["casebook", "--runs", "2"], "--runs '2' is not valid: expected a whole number >= 3"),
    (["casebook", "--runs", "three"], "--runs 'three' is not valid"),
    (["casebook", "--jobs", "0"], "--jobs '0' is not valid: expected a whole number >= 1"),
])
def test_cli_rejects_bad_input_before_any_work(argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert leakhunt_main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_refuses_a_markdown_path_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "pages"
    target.write_text("")
    assert leakhunt_main(["casebook", "--markdown", str(target)]) == 2
    assert "is not a directory" in capsys.readouterr().err


# --- the terminal tables -----------------------------------------------------------------


def _two_results() -> list:
    myth = get_case("gc_myth")
    leak = get_case("row_slice")
    return [
        simple(myth, {"leaky": 0.5 * myth.limit(myth.params("small")), "story_fix": MIB},
               half={"leaky": 0.5 * myth.limit(myth.params("small")), "story_fix": MIB}),
        simple(leak, {"leaky": 137 * MIB, "fixed": 0.1 * MIB, "head": 0},
               half={"leaky": 68 * MIB, "fixed": 0.1 * MIB}),
    ]


def test_table_fits_100_columns_and_shows_myths_as_myths() -> None:
    from casebook.report import render_table

    out = io.StringIO()
    render_table(_two_results(), {"pandas": "3.1.1", "python": "3.11.7"}, out)
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 100, text
    assert re.search(r"^gc_myth\s+peak\b.*myth: does not hold\s*$", text, re.M), text
    assert re.search(r"^row_slice\s+retained\b.*137\.0 MiB.*reproduced\s*$", text, re.M), text
    assert " NO" not in text and "FAILED" not in text
    assert "\x1b[" not in text  # not a terminal: no colour


def test_table_colours_a_terminal_unless_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    from casebook.report import render_table

    monkeypatch.delenv("NO_COLOR", raising=False)
    coloured = io.StringIO()
    render_table(_two_results(), {}, coloured, force_terminal=True)
    assert "\x1b[" in coloured.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    plain = io.StringIO()
    render_table(_two_results(), {}, plain, force_terminal=True)
    assert not re.search(r"\x1b\[[0-9;]*3[0-8][;m]", plain.getvalue())  # no colour (bold may remain)
    visible = re.sub(r"\x1b\[[0-9;]*m", "", plain.getvalue())
    assert max(len(line) for line in visible.splitlines()) <= 100


def test_json_document_carries_claims_per_case() -> None:
    from casebook.report import to_document

    document = to_document(_two_results(), {"pandas": "3.1.1"})
    assert document["schema"] == "leakhunt.casebook/3"
    by_name = {c["name"]: c for c in document["cases"]}
    claims = by_name["row_slice"]["claims"]
    assert claims and all({"claim", "verdict", "evidence", "figures", "source", "section", "origin", "flip"}
                          <= set(c) for c in claims)
    assert {c["verdict"] for c in claims} <= {"holds", "does not hold", "partly", "inconclusive", None}
    assert {c["origin"] for c in claims} == {"story", "casebook"}
    head = next(c for c in claims if "head()" in c["claim"])
    assert head["verdict"] == "does not hold" and head["figures"]["head retained"] == 0
    assert by_name["gc_myth"]["verdict"] == "myth: does not hold"
    assert by_name["row_slice"]["variants"]["leaky"]["growth"]["shape"] == "grows"


# --- the pages ---------------------------------------------------------------------------


def test_page_shows_the_storys_code_the_claims_and_the_figures() -> None:
    from casebook.markdown import render_claims, render_index, render_page

    r = _two_results()[1]
    page = render_page(r, {"python": "3.11", "pandas": "3.1.1"}, {"timeline": "img/row_slice-timeline.png"})
    assert "## The story's code" in page and "samples.append(processed.iloc[:1])" in page
    assert "## The casebook's fix" in page and "samples.append(processed.iloc[:1].copy())" in page
    assert ("| `DataFrame.head()` returns a slice that keeps the original frame alive. | Prevention 2 | "
            "the story's | **does not hold** |") in page
    assert "`iloc[:1]` instead of `head(1)` |" in page  # what turns the verdict around
    assert "| `leaky` | keep `iloc[:1]` of each batch | 137.0 MiB | 137.0 MiB |" in page
    assert "breaks (4.0x)" in page
    assert "### As the data grows" in page and "| `leaky` | 68.0 MiB | 137.0 MiB | grows |" in page
    assert "![Memory over time" in page
    index = render_index(_two_results(), {"python": "3.11"})
    assert "[row_slice](row_slice.md)" in index and "(claims.md)" in index
    claims = render_claims(_two_results(), {"python": "3.11"})
    assert "## Bug Report Example: DataFrame Memory Leak in Batch Processing" in claims
    assert "| Symptoms | Memory grew from 200 MB to 8 GB" in claims  # a statement left out, and why
    assert "| Out-of-memory issue | With Spark," in claims and "about Spark" in claims


def test_pages_and_plots_are_written(tmp_path: Path) -> None:
    from dataclasses import replace

    from casebook.markdown import write_pages

    r = _two_results()[1]
    timeline = ((0.0, 0), (0.1, 50 * MIB), (0.2, 137 * MIB))
    r = replace(r, results=tuple(replace(v, timeline=timeline) if v.scale == 1.0 else v for v in r.results))
    written = write_pages([r], {"python": "3.11"}, tmp_path)
    names = {p.name for p in written}
    assert names == {"row_slice.md", "row_slice-timeline.png", "row_slice-growth.png"}
    assert (tmp_path / "img" / "row_slice-timeline.png").read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "results.md").exists()  # only a run of every case rewrites the summary


def test_committed_pages_are_generated_and_complete() -> None:
    pages = ROOT / "docs" / "casebook"
    for name in CASE_NAMES:
        text = (pages / f"{name}.md").read_text()
        assert text.startswith("<!-- Generated by `leakhunt casebook --markdown`"), name
        assert "## Its claims, measured" in text, name
        for image in re.findall(r"\]\((img/[^)]+)\)", text):
            assert (pages / image).exists(), (name, image)
    claims = (pages / "claims.md").read_text()
    for case in casebook.all_cases():
        for claim in case.claims:
            assert claim.text.replace("|", "\\|") in claims, claim.text  # every claim on the page


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from casebook.cli import _Bar, _Plain

    plain = _Plain()
    plain.start(2)
    plain.step("row_slice: leaky")
    plain.done("row_slice: leaky")
    plain.done("row_slice: fixed")
    err = capsys.readouterr().err.splitlines()
    assert re.match(r"\[1/2 +\d+ s\] row_slice: leaky$", err[0]) and err[1].startswith("[2/2")
    terminal = io.StringIO()
    monkeypatch.setattr("sys.stderr", terminal)
    bar = _Bar()
    bar.progress.console.file = terminal
    bar.start(2)
    bar.step("top_n: leaky")
    bar.done("top_n: leaky")
    bar.close()
    assert bar.progress.tasks[0].completed == 1 and bar.running == []


def test_a_run_the_fork_server_lost_is_run_once_more(monkeypatch: pytest.MonkeyPatch) -> None:
    from casebook import runner

    calls: list[int] = []

    def lost_once(*args: object, **kwargs: object) -> tuple[None, list[tuple[float, int]]]:
        calls.append(1)
        if len(calls) == 1:
            raise runner._ServerLost("x failed (exit 255):")
        return None, []

    monkeypatch.setattr(runner, "_spawn_once", lost_once)
    assert runner._spawn(None, None, None, "x", 0) == (None, [])  # type: ignore[arg-type]
    assert len(calls) == 2

    def failing(*args: object, **kwargs: object) -> tuple[None, list[tuple[float, int]]]:
        calls.append(1)
        raise runner.CaseError("x failed (exit 1): a real error")

    calls.clear()
    monkeypatch.setattr(runner, "_spawn_once", failing)
    with pytest.raises(runner.CaseError, match="a real error"):
        runner._spawn(None, None, None, "x", 0)  # type: ignore[arg-type]
    assert len(calls) == 1  # a case's own failure is not run again
