"""Memory regressions against a saved baseline (issue 26): the library's comparison, the pytest
plugin's --leak-baseline, ``leakhunt report NEW.json --compare BASE.json``, and the Markdown
summary a CI job's page gets (GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from leakhunt.baseline import (DEFAULT_FLOOR, DEFAULT_FLOOR_TEXT, DEFAULT_THRESHOLD, DEFAULT_THRESHOLD_TEXT,
                               BaselineError, Rule, compare, load_report)
from leakhunt.explanation import Explanation
from leakhunt.report import JsonReport, SessionFigures, TestRecord, TestReport
from leakhunt.report.markdown import MarkdownSummary
from leakhunt.units import parse_size

MIB = 1024 * 1024
EXPECTED = Path(__file__).parent / "expected"
ENV = {"python": "CPython 3.11.7", "python_build": "main gcc", "platform": "Linux", "machine": "x86_64, 2 CPUs",
       "libc": "glibc 2.36", "leakhunt": "0.1.0", "pandas": "3.1.1"}


def record(nodeid: str, peak: int | None, kept: int | None, **kwargs: object) -> TestRecord:
    return TestRecord(nodeid, str(kwargs.pop("outcome", "passed")), peak=peak, rss_growth=kept, settled=True,
                      **kwargs)  # type: ignore[arg-type]


def report(*records: TestRecord, env: dict[str, str] | None = None, created: str = "2026-12-01T10:00:00+00:00",
           **kwargs: object) -> TestReport:
    return TestReport(records=records, sessions=(SessionFigures(100 * MIB, 120 * MIB, 200 * MIB),),
                      created=created, version="0.1.0", environment=dict(ENV if env is None else env),
                      **kwargs)  # type: ignore[arg-type]


BASE = report(record("t.py::test_a", 40 * MIB, 20 * MIB), record("t.py::test_b", 4096, 4096),
              record("t.py::test_c", 10 * MIB, 0), record("t.py::test_gone", 1 * MIB, 0))


# --------------------------------------------------------------------------------------
# the library


def test_an_unchanged_suite_has_no_regression() -> None:
    same = compare(BASE, BASE)
    assert same.regressions() == [] and same.counts() == {"same": 4}
    assert same.summary() == "0 regressed, 0 improved, 4 the same (rule: +20% and +4.0 MiB)"
    assert same.notes == ()


def test_a_regression_has_both_figures_and_the_ratio() -> None:
    new = report(record("t.py::test_a", 50 * MIB, 30 * MIB), record("t.py::test_b", 4096, 4096),
                 record("t.py::test_c", 10 * MIB, 0), record("t.py::test_gone", 1 * MIB, 0))
    [change] = compare(new, BASE).regressions()
    assert change.nodeid == "t.py::test_a" and change.status == "regressed"
    peak, kept = change.figures
    assert (peak.base, peak.new, peak.ratio_text(), peak.regressed) == (40 * MIB, 50 * MIB, "1.25x", True)
    assert (kept.base, kept.new, kept.ratio_text(), kept.regressed) == (20 * MIB, 30 * MIB, "1.50x", True)
    assert change.headline() == ("peak 50.0 MiB (baseline 40.0 MiB, 1.25x, +10.0 MiB); "
                                 "retained 30.0 MiB (baseline 20.0 MiB, 1.50x, +10.0 MiB)")


@pytest.mark.parametrize(("base", "new", "regressed"), [
    (4096, 8192, False),  # doubled, but far below the floor: noise, not a regression
    (0, DEFAULT_FLOOR, False),  # the floor itself
    (0, DEFAULT_FLOOR + 1, True),  # from nothing to more than the floor
    (10 * MIB, 13 * MIB, False),  # +30 %, but less than the floor
    (100 * MIB, 115 * MIB, False),  # +15 MiB, but within the threshold of a big figure
    (100 * MIB, 121 * MIB, True),
    (-5 * MIB, 3 * MIB, False),  # memory given back counts as 0
])
def test_a_regression_needs_the_threshold_and_the_floor(base: int, new: int, regressed: bool) -> None:
    rule = Rule()
    assert rule.regressed(base, new) is regressed
    assert (max(new, 0) > rule.limit(base)) is regressed  # the limit is the same rule, as a budget


def test_improvements_new_gone_and_not_compared() -> None:
    new = report(record("t.py::test_a", 10 * MIB, 0), record("t.py::test_b", 4096, 4096),
                 record("t.py::test_c", 90 * MIB, 0, outcome="failed"), record("t.py::test_new", 1 * MIB, 0))
    comparison = compare(new, BASE)
    assert comparison.counts() == {"improved": 1, "same": 1, "not_compared": 1, "new": 1, "gone": 1}
    assert [t.nodeid for t in comparison.new_tests()] == ["t.py::test_new"]
    assert [t.nodeid for t in comparison.gone_tests()] == ["t.py::test_gone"]
    [failed] = [t for t in comparison.tests if t.status == "not_compared"]
    assert failed.reason == "failed in this run"  # a body that failed has the figures of a body cut short
    assert comparison.regressions() == []


def test_a_test_that_broke_its_budget_is_compared_with_its_explanation() -> None:
    explanation = Explanation(title="t.py::test_a", headline="broke its memory budget", hint="keep less")
    new = report(record("t.py::test_a", 80 * MIB, 60 * MIB, outcome="failed", verdict="over_budget",
                        explanation=explanation))
    [change] = compare(new, BASE).regressions()
    assert change.explanation is explanation


def test_reports_from_other_machines_and_versions_are_compared_with_a_note() -> None:
    other = dict(ENV, python="CPython 3.12.1", machine="aarch64, 8 CPUs", pandas="3.2.0")
    comparison = compare(report(*BASE.records, env=other), BASE)
    assert comparison.regressions() == []
    text = "\n".join(comparison.notes)
    assert "another Python build (python CPython 3.11.7 -> CPython 3.12.1)" in text
    assert "another machine (or C library) (machine x86_64, 2 CPUs -> aarch64, 8 CPUs)" in text
    assert "other library versions (pandas 3.1.1 -> 3.2.0)" in text
    unknown = compare(report(*BASE.records, env={}), BASE)
    assert "this run does not say what it was measured on" in unknown.notes[0]


@pytest.mark.parametrize(("text", "threshold", "floor"), [
    ("20%", 0.2, DEFAULT_FLOOR), ("50", 0.5, DEFAULT_FLOOR), ("10%,4MiB", 0.1, 4 * MIB), (" 7.5 % , 100 kB ", 0.075, 100_000),
])
def test_rules(text: str, threshold: float, floor: int) -> None:
    assert Rule.parse(text) == Rule(threshold, floor)


@pytest.mark.parametrize(("text", "message"), [
    ("abc", "invalid regression rule 'abc': expected a percentage, optionally with a floor: '20%' or '20%,4MiB'"),
    ("0%", "the percentage must be above 0"),
    ("20%,4 parsecs", "invalid floor in '20%,4 parsecs'"),
])
def test_bad_rules_quote_the_value(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^--leak-regression: ") as info:
        Rule.parse(text, where="--leak-regression")
    assert message in str(info.value)


def test_the_defaults_are_those_documented() -> None:
    from leakhunt.report_command import DEFAULT_RULE

    assert DEFAULT_THRESHOLD == float(DEFAULT_THRESHOLD_TEXT.rstrip("%")) / 100
    assert DEFAULT_FLOOR == parse_size(DEFAULT_FLOOR_TEXT)
    assert Rule.parse(DEFAULT_RULE) == Rule()
    assert f"{DEFAULT_THRESHOLD_TEXT}, with a floor of {DEFAULT_FLOOR_TEXT}" in (
        Path(__file__).parent.parent / "docs" / "ci.md").read_text()


def save(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def saved(tmp_path: Path, rep: TestReport, name: str = "base.json") -> Path:
    out = io.StringIO()
    JsonReport(rep).render(out)
    return save(tmp_path, name, out.getvalue())


def test_a_saved_baseline_reads_back(tmp_path: Path) -> None:
    back = load_report(saved(tmp_path, BASE))
    assert back.environment == ENV and [r.nodeid for r in back.records] == [r.nodeid for r in BASE.records]
    assert compare(BASE, back).regressions() == []


@pytest.mark.parametrize(("content", "message"), [
    ({"schema": "leakhunt.test-report", "schema_version": 9, "tests": []},
     "has schema_version 9, which this leakhunt cannot compare with (it reads 1, 2; 2 is current): write a new "
     "one with this leakhunt: pytest --leak-report-file="),
    ({"schema": "leakhunt.run/1"}, "is not a pytest test report (schema 'leakhunt.run/1'"),
    ("[1, 2", "is not JSON (Expecting"),
    ({"schema": "leakhunt.test-report", "schema_version": 2, "running": True, "tests": []},
     "was written when a session started and holds no figures"),
])
def test_an_incompatible_baseline_is_a_clear_error(tmp_path: Path, content: object, message: str) -> None:
    path = save(tmp_path, "base.json", content)
    with pytest.raises(BaselineError, match="^--leak-baseline 'base.json'") as info:
        load_report(path, option="--leak-baseline", given="base.json")
    assert message in str(info.value)
    with pytest.raises(BaselineError, match="no such file"):
        load_report(tmp_path / "nothing.json")


# --------------------------------------------------------------------------------------
# the Markdown summary, against a file


def summary_case() -> tuple[TestReport, object]:
    kept = Explanation(title="t.py::test_a", headline="regressed against the baseline",
                       roots=(), unexplained="", hint="a module-level list keeps everything appended to it")
    new = report(record("t.py::test_a", 50 * MIB, 30 * MIB, explanation=kept),
                 record("t.py::test_b", 4096, 4096),
                 record("t.py::test_c", 12 * MIB, 0, outcome="failed", verdict="over_budget",
                        violations=[{"figure": "peak", "value": 12 * MIB, "limit": 10_000_000}]),
                 record("t.py::test_|pipe|", 2 * MIB, 0),
                 env=dict(ENV, pandas="3.2.0"), created="2026-12-02T10:00:00+00:00")
    return new, compare(new, BASE)


def test_the_markdown_summary(tmp_path: Path) -> None:
    new, comparison = summary_case()
    out = io.StringIO()
    MarkdownSummary(new, comparison=comparison, baseline="base.json", top=3).render(out)  # type: ignore[arg-type]
    assert out.getvalue() == (EXPECTED / "step_summary.md").read_text()


# --------------------------------------------------------------------------------------
# the pytest plugin

SUITE = """
    KEEP = []

    def touched(mib):
        b = bytearray(mib * 1024 * 1024)
        b[::4096] = b"x" * len(b[::4096])
        return b

    def test_keeps():
        KEEP.append(touched({keep}))

    def test_peak():
        assert len(touched({peak})) > 0

    def test_small():
        assert len(bytearray(1000)) == 1000
    {extra}
"""


def suite(pytester: pytest.Pytester, keep: int = 20, peak: int = 30, extra: str = "") -> None:
    pytester.makepyfile(test_suite=SUITE.format(keep=keep, peak=peak, extra=extra))


def run(pytester: pytest.Pytester, *args: str, env: dict[str, str] | None = None) -> pytest.RunResult:
    if env:
        for name, value in env.items():
            pytester._monkeypatch.setenv(name, value)
    return pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", *args)


def test_the_same_suite_twice_has_no_regression(pytester: pytest.Pytester) -> None:
    suite(pytester)
    run(pytester, "--leak-report-file=base.json").assert_outcomes(passed=3)
    result = run(pytester, "--leak-baseline=base.json")
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*= leakhunt: memory against base.json =*",
                                 "compared with base.json (*): 0 regressed, 0 improved, 3 the same (rule: +20% "
                                 "and +4.0 MiB)"])
    assert "regressed (memory)" not in result.stdout.str()


def test_a_test_edited_to_keep_10_mb_more_is_caught_with_its_explanation(pytester: pytest.Pytester) -> None:
    suite(pytester)
    run(pytester, "--leak-report-file=base.json").assert_outcomes(passed=3)
    suite(pytester, keep=30)  # the edit: test_keeps keeps 10 MiB more
    result = run(pytester, "--leak-baseline=base.json", "--leak-report-file=new.json")
    result.assert_outcomes(passed=3)  # every test passed; the session fails
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "compared with base.json (*): 1 regressed, 0 improved, 2 the same (rule: +20% and +4.0 MiB)",
        "regressions, the biggest first",
        "figure    this run  baseline  ratio     change  test",
        "retained  30.0 MiB  20.0 MiB  1.50x  +10.0 MiB  test_suite.py::test_keeps",
        "test_suite.py::test_keeps: *retained 30.0 MiB (baseline 20.0 MiB, 1.50x, +10.0 MiB)*",
        "  still alive because:",
        "    KEEP (global in test_suite) keeps 1 buffer, 30.0 MiB:",
        "      allocated at test_suite.py:? (b = bytearray(mib * 1024 * 1024))",
        "*3 passed, 1 regressed (memory)*",
    ])
    # the explanation is saved with the test: `leakhunt report --compare` shows it later
    saved_new = json.loads((pytester.path / "new.json").read_text())
    [keeps] = [t for t in saved_new["tests"] if t["nodeid"].endswith("test_keeps")]
    assert keeps["explanation"]["headline"].startswith("regressed against the baseline: ")
    assert saved_new["environment"]["python"].startswith(("CPython", "PyPy"))


def test_regressions_as_warnings_leave_the_status_alone(pytester: pytest.Pytester) -> None:
    suite(pytester)
    run(pytester, "--leak-report-file=base.json").assert_outcomes(passed=3)
    suite(pytester, peak=45)
    result = run(pytester, "--leak-baseline=base.json", "--leak-regression-warn", "--leak-no-rerun")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*1 regressed*", "regressions (warnings: --leak-regression-warn), the biggest first",
                                 # 45 MiB against 30 MiB; a cheap reading may fall a fraction of a MiB short
                                 # under load (44.8 MiB, 1.49x, on the full suite with -n 2)
                                 "peak * 4?.? MiB * ??.? MiB * 1.[45]?x * +1[45].? MiB  test_suite.py::test_peak"])


def test_new_and_gone_tests_are_listed(pytester: pytest.Pytester) -> None:
    suite(pytester, extra="def test_old():\n        pass\n")
    run(pytester, "--leak-report-file=base.json").assert_outcomes(passed=4)
    suite(pytester, extra="def test_new():\n        pass\n")
    result = run(pytester, "--leak-baseline=base.json", "--leak-regression=50%,8MiB")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*: 0 regressed, 0 improved, 3 the same; 1 new, 1 gone (rule: +50% and +8.0 MiB)",
                                 "new since the baseline (1)", "test", "test_suite.py::test_new",
                                 "gone since the baseline (1)", "test", "test_suite.py::test_old"])


@pytest.mark.parametrize(("args", "message"), [
    (["--leak-baseline=base.json"], "ERROR: --leak-baseline 'base.json' has schema_version 9, which this leakhunt "
                                    "cannot compare with*"),
    (["--leak-baseline=none.json"], "ERROR: --leak-baseline 'none.json': no such file"),
    (["--leak-regression=20%"], "ERROR: --leak-regression=20% only applies with --leak-baseline: add it, or drop it"),
    (["--leak-regression-warn"], "ERROR: --leak-regression-warn only applies with --leak-baseline*"),
    (["--leak-baseline=base.json", "--leak-regression=lots"], "ERROR: --leak-regression: invalid regression rule*"),
])
def test_bad_baselines_stop_before_any_test(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    suite(pytester)
    (pytester.path / "base.json").write_text(json.dumps({"schema": "leakhunt.test-report", "schema_version": 9}))
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "passed" not in result.stdout.str()


def test_the_docs_example(pytester: pytest.Pytester) -> None:
    """docs/ci.md shows the output of docs/examples/test_ci_example.py: keep it true."""
    pytest.importorskip("numpy")
    example = Path(__file__).parent.parent / "docs" / "examples" / "test_ci_example.py"
    pytester.makepyfile(test_ci_example=example.read_text())
    run(pytester, "--leak-report-file=base.json").assert_outcomes(passed=3)
    result = run(pytester, "--leak-baseline=base.json", env={"KEEP_MORE": "10"})
    assert result.ret == 1
    documented = (Path(__file__).parent.parent / "docs" / "ci.md").read_text()
    expected = [
        "compared with base.json (*): 1 regressed, 0 improved, 2 the same (rule: +20% and +4.0 MiB)",
        "peak      30.0 MiB  20.0 MiB  1.50x  +10.0 MiB  test_ci_example.py::test_keeps",
        "retained  30.0 MiB  20.0 MiB  1.50x  +10.0 MiB  test_ci_example.py::test_keeps",
        "    RESULTS (global in test_ci_example) keeps 1 buffer, 30.0 MiB:",
        "      RESULTS (global in test_ci_example) -> list[[]1[]] -> ndarray 30.0 MiB",
        "  fix hint: a module-level list keeps everything appended to it; *",
        "*= 3 passed, 1 regressed (memory) in *",
    ]
    result.stdout.fnmatch_lines(expected)
    for line in expected[1:4]:
        assert line in documented


def test_a_ci_job_page_gets_the_markdown_summary(pytester: pytest.Pytester) -> None:
    suite(pytester)
    run(pytester, "--leak-report-file=base.json").assert_outcomes(passed=3)
    suite(pytester, keep=30)
    page = pytester.path / "summary.md"
    page.write_text("earlier step\n")
    result = run(pytester, "--leak-baseline=base.json", "--leak-no-rerun", env={"GITHUB_STEP_SUMMARY": str(page)})
    assert result.ret == 1
    text = page.read_text()
    assert text.startswith("earlier step\n### leakhunt: memory per test\n")  # appended
    assert "#### Against base.json: 1 regressed" in text
    assert "| `test_suite.py::test_keeps` | retained | 30.0 MiB | 20.0 MiB | 1.50x | +10.0 MiB |" in text
    assert "#### Worst 10 by peak" in text


def test_no_summary_when_leakhunt_does_not_report(pytester: pytest.Pytester) -> None:
    suite(pytester)
    page = pytester.path / "summary.md"
    run(pytester, env={"GITHUB_STEP_SUMMARY": str(page)}).assert_outcomes(passed=3)
    assert not page.exists()


# --------------------------------------------------------------------------------------
# leakhunt report NEW.json --compare BASE.json


def leakhunt(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leakhunt.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_compare_as_text(tmp_path: Path) -> None:
    new, _ = summary_case()
    saved(tmp_path, BASE)
    saved(tmp_path, new, "new.json")
    proc = leakhunt("report", "new.json", "--compare", "base.json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # a test regressed
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("compared with base.json (2026-12-01T10:00:00+00:00): 1 regressed")
    assert any(line.startswith("note: measured with other library versions (pandas 3.1.1 -> 3.2.0)") for line in lines)
    assert not any(line.endswith(" ") for line in lines)  # a pipe gets no padding
    assert "t.py::test_a: peak 50.0 MiB (baseline 40.0 MiB, 1.25x, +10.0 MiB)" in proc.stdout
    proc = leakhunt("report", "base.json", "--compare", "base.json", "-o", "same.txt", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "0 regressed, 0 improved, 4 the same" in (tmp_path / "same.txt").read_text()


def test_compare_as_html_sorted_by_change(tmp_path: Path) -> None:
    pytest.importorskip("jinja2")
    pytest.importorskip("matplotlib")
    new = report(record("t.py::test_a", 50 * MIB, 30 * MIB), record("t.py::test_b", 4 * MIB, 4096),
                 record("t.py::test_c", 2 * MIB, 0), record("t.py::test_new", 1 * MIB, 0))
    saved(tmp_path, BASE)
    saved(tmp_path, new, "new.json")
    proc = leakhunt("report", "new.json", "--compare", "base.json", "-o", "diff.html", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    page = (tmp_path / "diff.html").read_text()
    order = [line.split('data-test="')[1].split('"')[0] for line in page.splitlines() if "<tr data-test=" in line]
    # the biggest growth first, then the rest; new and gone after the compared ones
    assert order == ["t.py::test_a", "t.py::test_b", "t.py::test_c", "t.py::test_new", "t.py::test_gone"]
    assert 'id="leakhunt-changes"' in page and 'data-key="change" data-type="number"' in page
    assert page.index('id="regressions"') < page.index('id="every-test"')
    assert "regressed against the baseline: peak 50.0 MiB (baseline 40.0 MiB, 1.25x, +10.0 MiB)" in page


@pytest.mark.parametrize(("args", "message"), [
    (["new.json", "--regression", "20%"], "--regression only applies with --compare"),
    (["new.json", "--compare", "missing.json"], "--compare 'missing.json': no such file"),
    (["new.json", "--compare", "base.json", "-o", "d.png"], "a comparison is written as .html, .htm or .txt"),
    (["new.json", "--compare", "base.json", "--regression", "x"], "invalid regression rule 'x'"),
])
def test_compare_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    saved(tmp_path, BASE)
    saved(tmp_path, BASE, "new.json")
    proc = leakhunt("report", *args, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
