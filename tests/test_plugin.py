"""The pytest plugin, end to end with pytester.

Memory matters in most of these, so they run pytest in a subprocess (``runpytest_subprocess``):
an in-process run would share the outer interpreter's heap, gc and tracemalloc. Allocations are
far from the limits (30 MB kept against a 10 MB budget, 1 GB limits for what must pass), and
several behaviours share one run because each run costs a second or two.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# Plugins the user may have installed that would change order or output; off in every run.
QUIET = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:memray", "-p", "no:hypothesispytest")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*QUIET, *args)


BUDGETS = """
import unittest

import numpy as np
import pytest

from leakhunt import memory_budget

KEEP = []
MB = 1_000_000

pytestmark = pytest.mark.memory_budget(peak="1 GB")


def keep(n_mb):
    KEEP.append(np.ones(n_mb * MB // 8))


@pytest.mark.memory_budget(rss="10 MB")
def test_marker_over():
    keep(30)


@pytest.mark.memory_budget(rss="500 MB")
def test_marker_within():
    keep(30)


@pytest.mark.parametrize("n", [
    pytest.param(1, id="small"),
    pytest.param(2, id="big", marks=pytest.mark.memory_budget(peak="20 MB")),
])
def test_param(n):
    data = np.ones(n * 30 * MB // 8)
    del data


class TestClassBudget:
    pytestmark = pytest.mark.memory_budget(rss="10 MB")

    def test_class_over(self):
        keep(30)


class TestUnit(unittest.TestCase):
    @pytest.mark.memory_budget(rss="10 MB")
    def test_unittest_over(self):
        keep(30)

    def test_unittest_ok(self):
        pass


@memory_budget(rss="10 MB")
def test_decorator_over():
    keep(30)


@memory_budget(rss="500 MB")
def test_decorator_within():
    keep(30)


@pytest.mark.no_leak_check
def test_opted_out():
    keep(30)


def test_transient_peak_module_budget():
    data = np.ones(60 * MB // 8)
    del data
"""

COUNT_DECORATOR = """
import leakhunt.budget

CALLS = []
_real = leakhunt.guard.run_with_budget


def _counting(*args, **kwargs):
    CALLS.append(1)
    return _real(*args, **kwargs)


leakhunt.guard.run_with_budget = _counting


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"decorator measured {len(CALLS)} time(s)")
"""


def test_budgets_markers_decorator_params_classes_unittest_junit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_budgets=BUDGETS)
    pytester.makeconftest(COUNT_DECORATOR)
    result = run(pytester, "-rf", "--junitxml=junit.xml", "--memory-budget=traced=1GB")
    result.assert_outcomes(passed=6, failed=5)
    failed = {line.split()[1] for line in result.outlines if line.startswith("FAILED")}
    assert failed == {
        "test_budgets.py::test_marker_over",
        "test_budgets.py::test_param[big]",
        "test_budgets.py::TestClassBudget::test_class_over",
        "test_budgets.py::TestUnit::test_unittest_over",
        "test_budgets.py::test_decorator_over",
    }
    result.stdout.fnmatch_lines([
        "*test_budgets.py::test_marker_over broke its memory budget",
        "*rss grew * MiB (budget 10 MB = 9.5 MiB)*peak * (budget 1 GB = 953.7 MiB)*",
        "*KEEP (global in test_budgets) keeps 1 buffer, 28.6 MiB:",
        "*KEEP (global in test_budgets) -> list*ndarray 28.6 MiB*",
    ])
    # a traced= budget traces the first call, which shows the sites; an array put into an older
    # list is not counted from a trace alone (the rule is the same untraced), so the second,
    # traced call decides, and says so
    result.stdout.fnmatch_lines(["*allocated at test_budgets.py:15*", "*called it a second time, traced*"])
    result.stdout.fnmatch_lines(["*test_param[[]big[]] broke its memory budget", "*peak 5?.? MiB (budget 20 MB = 19.1 MiB)*"])
    # the library's decorator saw the plugin measuring and measured nothing itself
    result.stdout.fnmatch_lines(["decorator measured 0 time(s)"])

    xml = ET.parse(pytester.path / "junit.xml")
    props = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in xml.iter("testcase")
    }
    assert props["test_marker_over"]["leakhunt.verdict"] == "over_budget"
    assert int(props["test_marker_over"]["leakhunt.rss_growth"]) > 20_000_000
    assert json.loads(props["test_marker_over"]["leakhunt.budget"]) == {
        "rss": 10_000_000, "peak": 1_000_000_000, "traced": 1_000_000_000}
    assert props["test_marker_within"]["leakhunt.verdict"] == "ok"
    assert props["test_opted_out"]["leakhunt.verdict"] == "opted_out"
    assert "leakhunt.rss_growth" not in props["test_opted_out"]


def test_decorator_enforces_without_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_budgets=BUDGETS)
    pytester.makeconftest(COUNT_DECORATOR)
    result = run(pytester, "-p", "no:leakhunt", "-k", "decorator")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*MemoryBudgetExceeded*", "decorator measured 2 time(s)"])


HELPER = """
import pytest
from leakhunt import memory_budget

MB = 1_000_000


@memory_budget(peak="10 MB")
def build(n_mb):
    return len(bytearray(n_mb * MB))


def test_helper_over():
    build(60)


def test_helper_within():
    build(2)


@memory_budget(peak="1 GB")
def test_decorated_calls_helper_over():
    build(60)
"""


@pytest.mark.parametrize("mode", [[], ["--leak-report"], ["--memory-budget=peak=2GB"], ["--leak-hunt=4"],
                                  ["-p", "no:leakhunt"]], ids=["plain", "report", "budget", "hunt", "no-plugin"])
def test_a_decorated_helper_keeps_its_budget_under_every_mode(pytester: pytest.Pytester, mode: list[str]) -> None:
    """The plugin measures the test; a @memory_budget on a function the test calls is the user's
    own check and holds whatever the plugin does (it used to be switched off under the plugin)."""
    pytester.makepyfile(test_helper=HELPER)
    result = run(pytester, "-rf", *mode)
    result.assert_outcomes(passed=1, failed=2)
    failed = {line.split()[1] for line in result.outlines if line.startswith("FAILED")}
    assert failed == {"test_helper.py::test_helper_over", "test_helper.py::test_decorated_calls_helper_over"}
    # Each failure is the helper's own budget, raised once (counted in the tracebacks' "E" lines:
    # the short summary repeats the message, untruncated when the CI variable is set).
    raised = [line for line in result.outlines
              if line.startswith("E ") and "MemoryBudgetExceeded: build broke its memory budget" in line]
    assert len(raised) == 2


def test_a_decorated_test_under_another_decorator_is_measured_once(pytester: pytest.Pytester) -> None:
    # mock.patch on top of @memory_budget copies the budget attribute onto its own wrapper: the
    # plugin still recognises the test's decorator, which then only calls the test.
    pytester.makepyfile(test_patched="""
        import os
        from unittest import mock
        from leakhunt import memory_budget

        @mock.patch.dict(os.environ, {"LEAKHUNT_EXAMPLE": "1"})
        @memory_budget(rss="10 MB")
        def test_patched_over():
            global KEEP
            KEEP = bytearray(30_000_000)
    """)
    pytester.makeconftest(COUNT_DECORATOR)
    result = run(pytester, "-rf")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_patched_over broke its memory budget*", "decorator measured 0 time(s)"])


MISUSE = """
import pytest
from leakhunt import memory_budget

@pytest.mark.memory_budget(rss="lots")
def test_bad_size():
    pass

@pytest.mark.memory_budget(rsss="10 MB")
def test_unknown_keyword():
    pass

@pytest.mark.memory_budget("10 MB")
def test_positional():
    pass

@pytest.mark.memory_budget(rss="10 MB")
@memory_budget(peak="1 GB")
def test_two_budgets():
    pass

@pytest.mark.parametrize("x", [pytest.param(1, marks=pytest.mark.memory_budget(peak="1 GB"))])
@pytest.mark.memory_budget(rss="1 GB")
def test_two_marks(x):
    pass
"""


def test_marker_misuse_is_an_error_naming_test_and_value(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_misuse=MISUSE)
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(errors=5)
    result.stdout.fnmatch_lines_random([
        "*leakhunt: test_misuse.py::test_bad_size: rss='lots' is not a valid size*",
        "*leakhunt: test_misuse.py::test_unknown_keyword: unknown memory budget keyword 'rsss'*",
        "*leakhunt: test_misuse.py::test_positional: memory_budget takes keywords only, got positional '10 MB'*",
        "*leakhunt: test_misuse.py::test_two_budgets: two memory budgets on one test*",
        "*leakhunt: test_misuse.py::test_two_marks[[]1[]]: two memory budgets on one test*",
    ])


@pytest.mark.parametrize(("args", "ini", "message"), [
    (["--memory-budget=rss=lots"], "", "*--memory-budget*'rss=lots'*"),
    (["--memory-budget=nonsense"], "", "*--memory-budget*'nonsense'*"),
    (["--leak-threshold=big"], "", "*--leak-threshold: invalid size 'big'*"),
    (["--leak-report-file=report.xml"], "",
     "*--leak-report-file 'report.xml' has suffix '.xml': the file name must end in .json, .html, .htm, .txt*"),
    (["--leak-report-file=conftest.py/r.html"], "", "*--leak-report-file 'conftest.py/r.html': 'conftest.py' is a file*"),
    (["--leak-report-file=sub"], "", "*--leak-report-file 'sub' is a directory: give a file name such as 'sub/report.json'*"),
    ([], "leak_report_file = out.csv", "*ini option leak_report_file 'out.csv' has suffix '.csv'*"),
    (["--leak-hunt=abc"], "", "*--leak-hunt: expected a whole number, got 'abc'*"),
    (["--leak-hunt=1"], "", "*--leak-hunt: must be >= 4, got '1'*"),
    (["--leak-scope=everything"], "", "*--leak-scope: expected one of call, setup-call-teardown, got 'everything'*"),
    (["--leak-report-top=0"], "", "*--leak-report-top: must be >= 1, got '0'*"),
    ([], "leak_report = maybe", "*ini option leak_report: expected true or false, got 'maybe'*"),
    ([], "leak_threshold = 12 parsecs", "*ini option leak_threshold: invalid size '12 parsecs'*"),
])
def test_bad_option_values_are_usage_errors(pytester: pytest.Pytester, args: list[str], ini: str, message: str) -> None:
    pytester.makepyfile("def test_ok():\n    pass\n")
    pytester.makeconftest("")
    pytester.mkdir("sub")
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest(*QUIET, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_leak_hunt_before_a_path_leaves_the_path_alone(pytester: pytest.Pytester) -> None:
    """Issue 26: ``pytest --leak-hunt tests/`` read the path as the number of repeats. An optional
    value is taken only when it is a whole number or true/false; the path is a path, also for the
    conftests pytest loads first (the option the conftest below adds exists)."""
    sub = pytester.mkpydir("sub")
    (sub / "conftest.py").write_text("def pytest_addoption(parser):\n    parser.addoption('--custom', action='store_true')\n")
    (sub / "test_x.py").write_text("def test_ok(request):\n    assert request.config.getoption('custom')\n")
    pytester.makepyfile(test_elsewhere="def test_not_collected():\n    assert False\n")
    result = pytester.runpytest_subprocess(*QUIET, "--leak-hunt", "sub", "--custom")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["leakhunt: hunting leaks (10 repeats, *"])
    result = pytester.runpytest_subprocess(*QUIET, "--leak-hunt", "6", "sub", "--custom")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["leakhunt: hunting leaks (6 repeats, *"])
    result = pytester.runpytest_subprocess(*QUIET, "--leak-hunt", "false", "sub", "--custom")
    result.assert_outcomes(passed=1)
    assert "hunting leaks" not in result.stdout.str()


def test_nothing_runs_per_test_without_options_or_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    pytester.makeconftest(
        "def pytest_sessionfinish(session):\n"
        "    pm = session.config.pluginmanager\n"
        "    print('per-test hooks:', pm.get_plugin('leakhunt-per-test') is not None)\n"
        "    print('session object:', pm.get_plugin('leakhunt-session') is not None)\n"
    )
    result = pytester.runpytest(*QUIET, "-s")
    result.stdout.fnmatch_lines(["*per-test hooks: False*", "*session object: True*"])
    assert not list(pytester.path.glob("leakhunt*"))  # no files when the options are off
    result = pytester.runpytest(*QUIET, "-s", "--leak-report")
    result.stdout.fnmatch_lines(["*per-test hooks: True*"])


def test_disabled_with_p_no_leakhunt(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    result = pytester.runpytest(*QUIET, "-p", "no:leakhunt", "--leak-report")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --leak-report*"])
    result = pytester.runpytest(*QUIET, "-p", "no:leakhunt")
    result.assert_outcomes(passed=1)


def test_markers_options_and_casebook_fixtures_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*QUIET, "--fixtures")
    result.stdout.fnmatch_lines(["*casebook_case*"])
    result = pytester.runpytest(*QUIET, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.memory_budget(rss=None, *", "@pytest.mark.no_leak_check: *"])
    result = pytester.runpytest(*QUIET, "--help")
    result.stdout.fnmatch_lines([
        "memory budgets, reports and leak hunting (leakhunt):",
        "*--leak-report *", "*--leak-report-file=PATH*", "*--memory-budget=SPEC*", "*--leak-hunt=[[]N[]]*",
        "*--leak-threshold=SIZE*", "*--leak-trace*", "*--leak-children*", "*--leak-no-rerun*", "*--leak-scope=SCOPE*",
        "*leak_report (string):*", "*memory_budget (string):*", "*leak_hunt (string):*",
    ])


REPORT = """
import numpy as np

KEEP = []


def test_keeps_30mb():
    KEEP.append(np.ones(30_000_000 // 8))


def test_transient_80mb():
    data = np.ones(80_000_000 // 8)
    del data


def test_nothing():
    pass


def test_fails():
    assert False
"""


def test_report_terminal_json_html(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_report=REPORT)
    pytester.makeini("[pytest]\nleak_report = true\nleak_report_top = 2\n")
    result = run(pytester, "--leak-report-file=out/report.json")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "*= leakhunt: memory per test =*",
        "session: peak * MiB above start (RSS * MiB), growth +* MiB over 4 tests",
        "verdicts: 1 not_judged, 3 ok",  # test_fails: a body that did not pass is not judged (issue 21)
        "top 2 by peak",
        "*peak*rss growth*verdict*test",  # nothing traced, no pyarrow: no columns for them
        "*7*.* MiB*test_report.py::test_transient_80mb",
        "*28.* MiB*+28.* MiB *ok*test_report.py::test_keeps_30mb",
        "top 2 by RSS growth",
        "*+28.* MiB*test_report.py::test_keeps_30mb",
        "*",
        "memory stayed up after (settled growth >= 1.0 MiB, or a leak)",
        "*kept*verdict*test",
        "+28.* MiB  ok * test_report.py::test_keeps_30mb",
        "leakhunt report written to *report.json",
    ])
    data = json.loads((pytester.path / "out" / "report.json").read_text())
    assert data["schema"] == "leakhunt.test-report" and data["schema_version"] == 2
    assert data["interrupted"] is False
    assert data["session"]["tests"] == 4 and data["session"]["peak"] > 70_000_000
    assert [s["nodeid"] for s in data["session"]["stayed_up"]] == ["test_report.py::test_keeps_30mb"]
    tests = {t["nodeid"].split("::")[1]: t for t in data["tests"]}
    for key in ("nodeid", "outcome", "rss_growth", "peak", "traced_growth", "arrow_growth",
                "leak_per_call", "budget", "verdict"):
        assert key in tests["test_nothing"]
    assert tests["test_fails"]["outcome"] == "failed" and tests["test_fails"]["verdict"] == "not_judged"
    assert tests["test_keeps_30mb"]["rss_growth"] > 25_000_000 and tests["test_keeps_30mb"]["settled"]
    assert tests["test_transient_80mb"]["peak"] > 70_000_000
    assert tests["test_transient_80mb"]["traced_growth"] is None  # not tracing: unknown, not zero

    run(pytester, "--leak-report-file=report.html")
    page = (pytester.path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "test_keeps_30mb" in page
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)  # self-contained: no network assets
    assert "<script>" in page and "<script src" not in page  # the table's sorting, inline


def test_user_tracemalloc_kept_and_leak_trace(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_trace="""
        import tracemalloc
        import numpy as np
        import pytest

        KEEP = []

        @pytest.mark.memory_budget(rss="10 MB")
        def test_over():
            KEEP.append(np.ones(30_000_000 // 8))

        def test_still_tracing():
            assert tracemalloc.is_tracing()
    """)
    pytester.makeconftest("""
        import tracemalloc

        def pytest_collection_finish(session):
            tracemalloc.start(5)

        def pytest_sessionfinish(session):
            print("user trace still on:", tracemalloc.is_tracing())
            tracemalloc.stop()
    """)
    result = run(pytester, "-s", "--leak-report-file=r.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*allocated at test_trace.py:9*"])
    result.stdout.fnmatch_lines(["*user trace still on: True*"])
    result.stdout.no_fnmatch_line("*re-ran this test*")  # traced already: nothing to re-run
    tests = {t["nodeid"]: t for t in json.loads((pytester.path / "r.json").read_text())["tests"]}
    assert tests["test_trace.py::test_over"]["traced_growth"] > 25_000_000

    (pytester.path / "conftest.py").unlink()
    result = run(pytester, "--leak-trace", "--leak-report-file=r.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.no_fnmatch_line("*re-ran this test*")
    tests = {t["nodeid"]: t for t in json.loads((pytester.path / "r.json").read_text())["tests"]}
    assert tests["test_trace.py::test_over"]["traced_growth"] > 25_000_000


HUNT = """
import unittest

import numpy as np
import pytest

HOLD = []
CACHE = {}


def test_leaks_200k_per_call():
    HOLD.append(np.ones(200 * 1024 // 8))


def test_no_leak():
    data = np.ones(2_000_000 // 8)
    del data


def test_bounded_cache():
    if len(CACHE) < 4:
        CACHE[len(CACHE)] = np.ones(500_000 // 8)


def test_fails_so_not_hunted():
    HOLD.append(np.ones(200 * 1024 // 8))
    assert False


SEEN = []


def test_not_repeatable():
    assert not SEEN
    SEEN.append(1)


class TestUnitLeaks(unittest.TestCase):
    def test_unittest_leaks(self):
        HOLD.append(np.ones(200 * 1024 // 8))
"""


def test_leak_hunt(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_hunt=HUNT)
    result = run(pytester, "--leak-hunt=6", "--leak-report", "--leak-report-file=r.json", "-rf")
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines([
        "*test_hunt.py::test_leaks_200k_per_call leaks 200.* KiB per call (threshold 64.0 KiB)*",
        # what the six calls of the confirmation window left alive: no extra run, no doubling
        "*HOLD (global in test_hunt) keeps 6 buffers, 1.2 MiB:",
        "*allocated at test_hunt.py:11 (HOLD.append(np.ones(200 * 1024 // 8)))",
        "*confirmed over a second window of calls*",
    ])
    tests = {t["nodeid"].split("::")[-1]: t for t in json.loads((pytester.path / "r.json").read_text())["tests"]}
    assert tests["test_leaks_200k_per_call"]["verdict"] == "leak"
    assert 180_000 < tests["test_leaks_200k_per_call"]["leak_per_call"] < 230_000
    assert tests["test_no_leak"]["verdict"] == "ok"
    assert tests["test_bounded_cache"]["verdict"] in ("ok", "warmup_or_bounded_cache")
    assert tests["test_fails_so_not_hunted"]["verdict"] == "not_hunted"
    assert tests["test_fails_so_not_hunted"]["leak_per_call"] is None
    assert tests["test_not_repeatable"]["verdict"] == "not_hunted"
    assert tests["test_not_repeatable"]["note"].startswith("not hunted: repeating it raised AssertionError")
    assert tests["test_unittest_leaks"]["verdict"] == "leak"


def test_leak_keyword_hunts_one_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one="""
        import numpy as np
        import pytest
        from leakhunt import memory_budget

        HOLD = []
        CALLS = []

        @pytest.mark.memory_budget(leak="64 KiB", repeat=5, warmup=1)
        def test_marked():
            HOLD.append(np.ones(300 * 1024 // 8))

        @memory_budget(leak="64 KiB", repeat=5, warmup=1)
        def test_decorated():
            HOLD.append(np.ones(300 * 1024 // 8))

        def test_not_hunted():
            CALLS.append(1)

        def test_called_once():
            assert CALLS == [1]
    """)
    result = run(pytester, "-rf")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines_random([
        "*test_one.py::test_marked leaks 300.* KiB per call*",
        "*test_one.py::test_decorated leaks 300.* KiB per call*",
    ])


def test_scope_setup_call_teardown_adds_function_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_scope="""
        import numpy as np
        import pytest

        KEEP = []

        @pytest.fixture(scope="module")
        def module_data():
            KEEP.append(np.ones(30_000_000 // 8))  # module scope: never the test's

        @pytest.fixture
        def function_data():
            KEEP.append(np.ones(30_000_000 // 8))
            yield

        @pytest.mark.memory_budget(rss="10 MB")
        def test_with_fixture(module_data, function_data):
            pass
    """)
    result = run(pytester)
    result.assert_outcomes(passed=1)
    result = run(pytester, "--leak-scope=setup-call-teardown")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_with_fixture*", "*rss grew 2?.* MiB (budget 10 MB = 9.5 MiB)*"])


def test_children(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_child="""
        import subprocess, sys
        import pytest

        CHILD = "import numpy as np, time; a = np.ones(60_000_000 // 8); time.sleep(0.6)"

        @pytest.mark.memory_budget(children="20 MB")
        def test_child_over():
            subprocess.run([sys.executable, "-c", CHILD], check=True)
    """)
    result = run(pytester, "--leak-children")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*children peak * MiB (budget 20 MB = 19.1 MiB)*"])


def test_xdist_workers_enforce_and_controller_reports_every_test(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_budgets=BUDGETS)
    pytester.makepyfile(test_report=REPORT)
    result = run(pytester, "-n", "2", "-p", "xdist", "--leak-report", "--leak-report-file=r.json")
    result.assert_outcomes(passed=9, failed=6)
    result.stdout.fnmatch_lines(["*test_budgets.py::test_marker_over broke its memory budget*"])
    assert result.stdout.str().count("leakhunt: memory per test") == 1
    result.stdout.fnmatch_lines(["session: * over 15 tests (2 processes)"])
    data = json.loads((pytester.path / "r.json").read_text())
    assert len(data["tests"]) == 15
    assert {t["worker"] for t in data["tests"]} == {"gw0", "gw1"}
    assert len(data["session"]["processes"]) == 2
    verdicts = {t["nodeid"]: t["verdict"] for t in data["tests"]}
    assert verdicts["test_budgets.py::test_marker_over"] == "over_budget"


def test_interrupt_still_writes_the_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_int="""
        def test_first():
            pass

        def test_interrupted():
            raise KeyboardInterrupt

        def test_never_run():
            pass
    """)
    result = run(pytester, "--leak-report-file=r.json")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    data = json.loads((pytester.path / "r.json").read_text())
    assert data["interrupted"] is True
    assert [t["nodeid"] for t in data["tests"]] == ["test_int.py::test_first"]
    assert not [p for p in pytester.path.iterdir() if p.name.endswith(".tmp")]  # atomic: no leftovers


@pytest.mark.parametrize("plugin", ["pytest_memray", "pytest_cov", "pytest_randomly"])
def test_other_memory_and_order_plugins_installed(pytester: pytest.Pytester, plugin: str) -> None:
    pytest.importorskip(plugin)
    pytester.makepyfile(test_budgets=BUDGETS)
    args = {"pytest_memray": ["--memray", "-p", "memray"], "pytest_cov": ["--cov=."],
            "pytest_randomly": ["-p", "randomly"]}[plugin]
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, "--leak-report", "-k", "over or within")
    result.assert_outcomes(passed=2, failed=4)


def test_docs_example_produces_the_documented_failures(pytester: pytest.Pytester) -> None:
    """docs/plugin.md shows the output of docs/examples/test_plugin_example.py: keep them true."""
    pytest.importorskip("pandas")
    example = Path(__file__).parent.parent / "docs" / "examples" / "test_plugin_example.py"
    shutil.copy(example, pytester.path / example.name)
    result = run(pytester, "--leak-report", "--leak-report-top=3", "-p", "no:xdist")
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines([
        "test_plugin_example.py::test_daily_means broke its memory budget",
        "  rss grew * MiB (budget 20 MB = 19.1 MiB)   peak * MiB (no budget)   arrow pool grew * (no budget)",
        "  where it lives: numpy buffers 30.5 MiB, *",
        "  still alive because:",
        "    RESULTS (global in test_plugin_example) keeps 1 buffer, 30.5 MiB:",
        # the traced second call's own slice: what that call made, shown once
        "      RESULTS (global in test_plugin_example) -> list[[]1[]] -> DataFrame (1 row x 2 cols) -> block values"
        " (view) -> .base ndarray 30.5 MiB",
        "      allocated at test_plugin_example.py:14 (return pd.DataFrame(*",
        "  (leakhunt called it a second time, traced, to find what keeps the memory (shown: what that call made))",
        "  fix hint: a slice or view keeps its whole parent buffer; store .copy() or plain values instead",
        "test_plugin_example.py::test_totals[[]large[]] broke its memory budget",
        "  rss grew * (no budget)   peak 1* MiB (budget 50 MB = 47.7 MiB)   arrow pool grew * (no budget)",
        "  alive at the peak (biggest allocations, by line):",
        "*MiB  test_plugin_example.py:14 (return pd.DataFrame(*",
        "*leakhunt: memory per test*",
        "verdicts: 3 ok, 1 opted_out, 2 over_budget",
        "memory stayed up after (settled growth >= 1.0 MiB, or a leak)",
        "*kept*verdict*test",
        "*+* MiB  over_budget  test_plugin_example.py::test_daily_means",
    ])


def test_xfail_test_that_breaks_its_budget_is_an_expected_failure(pytester: pytest.Pytester) -> None:
    # The budget is checked after pytest's xfail handling has seen the body pass; a test marked
    # xfail that breaks its budget failed as expected (XFAIL), not XPASS. A strict one whose body
    # passed is already a failure (XPASS(strict)): its budget never turns that into a pass
    # (issue 21; tests/test_outcomes.py).
    pytester.makepyfile(test_xf="""
        import numpy as np
        import pytest

        KEEP = []

        @pytest.mark.xfail(reason="keeps 50 MB", strict=True)
        @pytest.mark.memory_budget(rss="20 MB")
        def test_strict_over():
            KEEP.append(np.ones(50_000_000 // 8))

        @pytest.mark.xfail(reason="keeps 50 MB")
        @pytest.mark.memory_budget(rss="20 MB")
        def test_loose_over():
            KEEP.append(np.ones(50_000_000 // 8))

        @pytest.mark.xfail(reason="fits", strict=True)
        @pytest.mark.memory_budget(rss="20 MB")
        def test_strict_within():
            pass
    """)
    result = run(pytester, "-rfxX", "--leak-no-rerun")
    result.assert_outcomes(xfailed=1, failed=2)
    result.stdout.fnmatch_lines(["FAILED test_xf.py::test_strict_over*XPASS(strict)*keeps 50 MB*",
                                 "FAILED test_xf.py::test_strict_within*XPASS(strict)*",
                                 "XFAIL test_xf.py::test_loose_over*keeps 50 MB*"])


REUSE = """
import numpy as np
import pytest

KEPT = []
PINS = []


@pytest.fixture
def scratch():
    pieces = []
    for _ in range(1000):
        pieces.append(np.ones(100_000 // 8))  # 100 KB: from glibc's heap, not mmap
        PINS.append(bytearray(1000))  # a small block after each piece: the holes cannot merge
    yield pieces
    pieces.clear()  # freed at teardown, outside any measurement: glibc keeps it resident


def test_uses_scratch(scratch):
    assert len(scratch) == 1000


def test_keeps_80_mb():
    KEPT.extend(np.ones(100_000 // 8) for _ in range(800))
"""

NO_TRIM = """
def pytest_configure(config):
    from leakhunt.lifecycle import SessionMeter
    SessionMeter.trim_now = lambda self: None
"""


@pytest.mark.parametrize("trim", [True, False])
def test_report_sees_a_leak_that_reuses_memory_freed_outside_a_test(pytester: pytest.Pytester, trim: bool) -> None:
    # A fixture's teardown frees 100 MB that glibc keeps resident; the next test reuses it. The
    # cheap path hands it back first (RSS rose since the last trim), so the 80 MB leak shows;
    # without that trim (the other way) it reads as nothing.
    mb = 1_000_000
    pytester.makepyfile(test_reuse=REUSE)
    if not trim:
        pytester.makeconftest(NO_TRIM)
    run(pytester, "--leak-report", "--leak-report-file=r.json")
    tests = {t["nodeid"].split("::")[1]: t for t in json.loads((pytester.path / "r.json").read_text())["tests"]}
    if trim:
        assert tests["test_keeps_80_mb"]["rss_growth"] > 70 * mb
    else:
        assert tests["test_keeps_80_mb"]["rss_growth"] < 10 * mb


OUTCOMES = """
import numpy as np
import pytest

KEPT = []


@pytest.fixture
def broken():
    raise RuntimeError("setup fails")


def test_passes():
    pass


def test_keeps_40_mb():
    KEPT.append(np.ones(40_000_000 // 8))


def test_fails():
    assert False


@pytest.mark.skip(reason="skipped")
def test_skipped():
    pass


@pytest.mark.xfail(reason="expected")
def test_xfails():
    assert False


@pytest.mark.xfail(strict=True, reason="strict")
def test_strict_xpass():
    pass


def test_setup_error(broken):
    pass


@pytest.mark.no_leak_check
def test_opted_out():
    pass


@pytest.mark.no_leak_check
class TestOptedOut:
    def test_in_class(self):
        pass
"""

WHICH_PATH = """
def pytest_sessionfinish(session):
    plugin = session.config.pluginmanager.get_plugin("leakhunt-per-test")
    print("per-test hooks:", type(plugin).__name__)
"""


@pytest.mark.parametrize("path", ["report-only", "full"])
def test_the_cheap_path_records_what_the_full_path_does(pytester: pytest.Pytester, path: str) -> None:
    # A session that only reports takes its own cheap hooks (issue 9); --junitxml needs the
    # records as properties, which takes the full per-test path. Both record every outcome alike.
    pytester.makepyfile(test_outcomes=OUTCOMES)
    pytester.makeconftest(WHICH_PATH)
    extra = ["--junitxml=j.xml"] if path == "full" else []
    result = run(pytester, "-s", "--leak-report", "--leak-report-file=r.json", *extra)
    result.stdout.fnmatch_lines(["*per-test hooks: " + ("PerTest" if path == "full" else "ReportOnly") + "*"])
    tests = {t["nodeid"].split("::", 1)[1]: t for t in json.loads((pytester.path / "r.json").read_text())["tests"]}
    seen = {name: (t["outcome"], t["verdict"]) for name, t in tests.items()}
    assert seen == {
        "test_passes": ("passed", "ok"),
        "test_keeps_40_mb": ("passed", "ok"),
        "test_fails": ("failed", "not_judged"),  # a body that did not pass is never "ok" (issue 21)
        "test_skipped": ("skipped", "not_measured"),
        "test_xfails": ("skipped", "not_judged"),
        "test_strict_xpass": ("failed", "ok"),
        "test_setup_error": ("error", "not_measured"),
        "test_opted_out": ("passed", "opted_out"),
        "TestOptedOut::test_in_class": ("passed", "opted_out"),
    }
    kept = tests["test_keeps_40_mb"]
    assert kept["settled"] is True and kept["rss_growth"] > 35_000_000  # confirmed after a trim
    assert tests["test_passes"]["rss_growth"] < 1_000_000
    assert tests["test_opted_out"]["rss_growth"] is None


def test_a_budget_failure_is_summed_up_by_its_broken_figure(pytester: pytest.Pytester) -> None:
    """Issue 26: pytest's short summary repeated the node id (the explanation's first line); it
    shows what broke, and every limit is shown as the user wrote it beside the binary figure."""
    pytester.makepyfile(test_summary="""
        import pytest

        KEEP = []

        @pytest.mark.memory_budget(rss="10 MB", peak="1 GB")
        def test_over():
            block = bytearray(30 * 1024 * 1024)
            block[::4096] = b"x" * len(block[::4096])
            KEEP.append(block)
    """)
    result = run(pytester, "-rf", "--leak-no-rerun", "--leak-report-file=r.html")
    result.assert_outcomes(failed=1)
    # 30 MiB kept: read 29.x or 30.0 MiB, as what the start left freed is reused or not
    result.stdout.fnmatch_lines(["*rss grew [23]?.? MiB (budget 10 MB = 9.5 MiB)   peak 3?.? MiB (budget 1 GB = 953.7 MiB)*",
                                 "FAILED test_summary.py::test_over - rss grew [23]?.? MiB > budget 10 MB = 9.5 MiB"])
    page = (pytester.path / "r.html").read_text().replace("\u00a0", " ")  # a figure keeps its unit (templating.unbroken)
    assert "rss=10 MB = 9.5 MiB, peak=1 GB = 953.7 MiB" in page  # the budget cell of the table
    assert '<td class="num">10 MB = 9.5 MiB</td>' in page  # the explanation's table
