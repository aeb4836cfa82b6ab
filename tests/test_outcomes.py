"""pytest's outcomes and leakhunt's verdicts (issue 21): a failing run is never turned into a pass,
and a test whose body did not pass is never recorded as ``ok``.

- a strict xfail test whose body passes is a failure (``XPASS(strict)``); breaking its budget
  too must not make it "failed as expected" (it did: ``1 xfailed``, exit status 0);
- a non-strict xfail test whose body passes and breaks its budget failed as expected (xfailed),
  with the verdict ``over_budget``;
- a body that fails, skips itself or fails as expected is not judged: its figures are kept, its
  verdict is ``not_judged`` (``not_hunted`` under leak hunting), never ``ok`` (an xfail test
  30.5 MiB over a 10 MB budget was recorded as ``ok``).
"""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:memray", "-p", "no:hypothesispytest")
MIB = 1024 * 1024

BUDGETED = """
import pytest

KEPT = []

@pytest.fixture(autouse=True)
def _dropped_at_teardown():
    yield
    KEPT.clear()

def keep():
    KEPT.append(b"x" * (20 * 2**20))   # resident, kept until teardown: over a 5 MB budget

pytestmark = pytest.mark.memory_budget(rss="5 MB")

@pytest.mark.xfail(strict=True, reason="known bug")
def test_strict_xpass_over_budget():
    keep()

@pytest.mark.xfail(strict=True, reason="known bug")
def test_strict_xpass_within():
    pass

@pytest.mark.xfail(reason="known bug")
def test_xpass_over_budget():
    keep()

@pytest.mark.xfail(reason="known bug")
def test_xfail_body_fails_over_budget():
    keep()
    assert False

def test_skips_itself_over_budget():
    keep()
    pytest.skip("no network")

def test_fails_over_budget():
    keep()
    assert False

def test_passes_within():
    pass
"""

EXPECTED = {  # test -> (the record's outcome, its verdict)
    "test_strict_xpass_over_budget": ("failed", "over_budget"),
    "test_strict_xpass_within": ("failed", "ok"),
    "test_xpass_over_budget": ("skipped", "over_budget"),
    "test_xfail_body_fails_over_budget": ("skipped", "not_judged"),
    "test_skips_itself_over_budget": ("skipped", "not_judged"),
    "test_fails_over_budget": ("failed", "not_judged"),
    "test_passes_within": ("passed", "ok"),
}


def records(pytester: pytest.Pytester) -> dict[str, dict]:
    data = json.loads((pytester.path / "r.json").read_text())
    return {t["nodeid"].split("::")[-1]: t for t in data["tests"]}


def test_outcomes_and_verdicts_of_budgeted_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_budgeted=BUDGETED)
    result = pytester.runpytest_subprocess(*QUIET, "--leak-report-file=r.json", "-rA")
    result.assert_outcomes(passed=1, failed=3, skipped=1, xfailed=2)
    tests = records(pytester)
    assert {name: (t["outcome"], t["verdict"]) for name, t in tests.items()} == EXPECTED
    for name in ("test_xfail_body_fails_over_budget", "test_skips_itself_over_budget", "test_fails_over_budget"):
        assert tests[name]["rss_growth"] >= 15 * MIB and tests[name]["violations"] == []  # kept, not judged


def test_a_strict_xfail_that_breaks_its_budget_still_fails_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_budgeted=BUDGETED)
    result = pytester.runpytest_subprocess(*QUIET, "--leak-report-file=r.json",
                                           "test_budgeted.py::test_strict_xpass_over_budget")
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # pytest's own reason first, then what broke the budget
    result.stdout.fnmatch_lines(["*[[]XPASS(strict)[]] known bug*", "*broke its memory budget*"])


def test_a_failed_body_under_leak_hunting_is_not_hunted(pytester: pytest.Pytester) -> None:
    # the other verdict name for the same rule: hunting was asked for, and a failed body is not hunted
    pytester.makepyfile(test_hunted="""
        import pytest

        def test_fails():
            assert False

        def test_skips_itself():
            pytest.skip("no network")

        @pytest.mark.xfail(reason="known bug")
        def test_xfails():
            assert False
    """)
    result = pytester.runpytest_subprocess(*QUIET, "--leak-hunt", "--leak-report-file=r.json")
    result.assert_outcomes(failed=1, skipped=1, xfailed=1)
    assert {t["verdict"] for t in records(pytester).values()} == {"not_hunted"}


@pytest.mark.parametrize("path", ["report-only", "full"])
def test_a_body_that_did_not_pass_is_not_ok_on_either_per_test_path(pytester: pytest.Pytester, path: str) -> None:
    # a session that only reports takes the cheap per-test hooks; --junitxml takes the full ones
    pytester.makepyfile(test_plain="""
        import pytest

        def test_passes():
            pass

        def test_skips_itself():
            pytest.skip("no network")

        def test_fails():
            assert False

        @pytest.mark.xfail(reason="known bug")
        def test_xfails():
            assert False
    """)
    extra = ["--junitxml=j.xml"] if path == "full" else []
    result = pytester.runpytest_subprocess(*QUIET, "--leak-report-file=r.json", *extra)
    result.assert_outcomes(passed=1, skipped=1, failed=1, xfailed=1)
    assert {name: t["verdict"] for name, t in records(pytester).items()} == {
        "test_passes": "ok", "test_skips_itself": "not_judged", "test_fails": "not_judged",
        "test_xfails": "not_judged"}
