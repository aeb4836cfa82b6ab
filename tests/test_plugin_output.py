"""What the plugin shows around a test is the test's, once (issue 21's smaller items).

- a doctest repeats (a hunt, the second call that explains its budget) with the globals it
  started with, and its explanation names what keeps its memory, not an internal exception;
- ``--leak-hunt`` and the second call do not multiply pytest's warnings: each is shown as for
  one call;
- a misused marker's error is printed once, without a chained traceback;
- Ctrl-C's traceback points at the user's line, not at the plugin's handler.
"""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:memray", "-p", "no:hypothesispytest")

DOCTEST = '''
"""
>>> KEEP.append(b"x" * (30 * 2**20))
>>> len(KEEP) >= 1
True
"""
KEEP = []


def clean(n):
    """
    >>> clean(3)
    [0, 1, 2]
    """
    return list(range(n))
'''


def test_a_doctest_over_its_budget_is_explained_by_its_second_call(pytester: pytest.Pytester) -> None:
    # issue 21: pytest's doctest runner clears a doctest's globals after it runs, so the second
    # call failed on KEEP and the explanation read "_RepetitionFailed: UnexpectedException"
    pytester.makepyfile(mod=DOCTEST)
    result = pytester.runpytest_subprocess(*QUIET, "--doctest-modules", "--memory-budget=rss=10MB", "mod.py")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "KEEP (global in mod) -> list[1] -> bytes" in out and "called it a second time, traced" in out
    assert "_RepetitionFailed" not in out and "UnexpectedException" not in out


def test_a_doctest_is_hunted_with_its_own_globals(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(mod=DOCTEST.replace('>>> KEEP.append(b"x" * (30 * 2**20))', '>>> KEEP.append(1)'))
    result = pytester.runpytest_subprocess(*QUIET, "--doctest-modules", "--leak-hunt", "--leak-report-file=r.json",
                                           "mod.py")
    result.assert_outcomes(passed=2)
    tests = json.loads((pytester.path / "r.json").read_text())["tests"]
    assert [t["verdict"] for t in tests] == ["ok", "ok"], [t["note"] for t in tests]  # hunted, not "not_hunted"


WARNING_TESTS = """
import warnings
import pytest

KEPT = []

def test_warns():
    warnings.warn("user thing", UserWarning)
    warnings.warn("old api", DeprecationWarning)

def test_warns_in_a_loop():
    for _ in range(3):
        warnings.warn("looped", DeprecationWarning)

@pytest.mark.memory_budget(rss="5 MB")
def test_warns_and_keeps():   # broken budget: a second call explains it
    warnings.warn("keeping", UserWarning)
    KEPT.append(b"x" * (20 * 2**20))
"""


@pytest.mark.parametrize("options", [[], ["--leak-hunt"]])
def test_warnings_are_shown_as_for_one_call(pytester: pytest.Pytester, options: list[str]) -> None:
    # issue 21: --leak-hunt re-emitted every repetition's warnings (21 -> 294 on pyarrow's tests)
    pytester.makepyfile(test_w=WARNING_TESTS)
    result = pytester.runpytest_subprocess(*QUIET, *options)
    result.assert_outcomes(passed=2, failed=1, warnings=6)


def test_warnings_made_errors_still_fail_a_repetition(pytester: pytest.Pytester) -> None:
    # the other way: the filters still apply to a repetition; a warning turned into an error
    # raises there, so the test that warns only when repeated is not hunted
    pytester.makepyfile(test_w="""
        import warnings

        CALLS = []

        def test_warns_when_repeated():
            CALLS.append(1)
            if len(CALLS) > 1:
                warnings.warn("second time", UserWarning)
    """)
    result = pytester.runpytest_subprocess(*QUIET, "-W", "error::UserWarning", "--leak-hunt",
                                           "--leak-report-file=r.json")
    result.assert_outcomes(passed=1)
    [test] = json.loads((pytester.path / "r.json").read_text())["tests"]
    assert test["verdict"] == "not_hunted" and "UserWarning: second time" in test["note"]


def test_a_marker_error_is_printed_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_m="""
        import pytest

        @pytest.mark.memory_budget(rss="50 MB", xyz=3)
        def test_bad():
            pass
    """)
    result = pytester.runpytest_subprocess(*QUIET, "-rN")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert out.count("unknown memory budget keyword 'xyz'") == 1, out
    assert "During handling of the above exception" not in out


def test_ctrl_c_points_at_the_users_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_c="""
        import os, signal, time

        def test_interrupted():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)
    """)
    result = pytester.runpytest_subprocess(*QUIET, "--leak-report")  # the plugin's handler is installed
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*test_c.py:4: KeyboardInterrupt"])
    assert "signals.py" not in result.stdout.str() and "process_local.py" not in result.stdout.str()
