"""``pytest --leak-oom-guard``: the test that reaches the threshold fails with the diagnosis.

Each run is a pytest subprocess (signals, threads and RSS are per process). The limit is given
(``--leak-memory-limit=300MB``, on each test process's resident memory) and the threshold is
far from what the passing tests reach; the suite stays under 300 MB.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:memray", "-p", "no:hypothesispytest")
GUARD = ("--leak-oom-guard=30%", "--leak-memory-limit=300MB")

SUITE = """
import time

import numpy as np

HELD = []


def grow(mib):
    for _ in range(mib // 10):
        HELD.append(np.ones(10 * 1024 * 1024 // 8))
        time.sleep(0.01)


def test_small():
    HELD.append(np.ones(1000))


def test_grows():
    grow(150)                       # crosses 30% of 300 MB (~86 MiB): stopped here


def test_swallows():
    try:
        grow(120)                   # crosses the raised bar (~186 MiB)
    except MemoryError:
        pass                        # swallowed: the test still fails


def test_after():
    assert len(HELD) > 1
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*QUIET, *args)


def test_the_crossing_test_fails_with_the_diagnosis_and_the_session_goes_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = run(pytester, *GUARD)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "leakhunt OOM guard: threshold 30% (85.8 MiB) of 286.1 MiB (given with --leak-memory-limit), on the rss; "
        "the test that crosses it fails, then the session goes on; diagnosis to *leakhunt-oom.json",
        "*_ test_grows _*",
        "leakhunt OOM guard: crossing 1 after *",
        "  rss * crossed the threshold 30% (85.8 MiB) of the memory limit 286.1 MiB*",
        "  running: test: test_suite.py::test_grows",
        "*alive now, biggest roots (what keeps the memory):",
        "    HELD (global in test_suite) keeps * buffers, *",
        "*_ test_swallows _*",
        "leakhunt OOM guard: crossing 2 after *",
        "  running: test: test_suite.py::test_swallows",
        "leakhunt OOM guard: 2 crossings; diagnosis in *leakhunt-oom.json",
    ])
    assert "Traceback" not in result.stdout.str().split("_ test_grows _", 1)[1].split("_ test_swallows _")[0]
    report = json.loads((pytester.path / "leakhunt-oom.json").read_text())
    assert [c["context"]["test"] for c in report["crossings"]] == ["test_suite.py::test_grows",
                                                                   "test_suite.py::test_swallows"]


def test_the_stop_action_ends_the_session_after_that_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = run(pytester, *GUARD, "--leak-oom-action=stop")
    result.assert_outcomes(passed=1, failed=1)  # test_swallows and test_after never ran
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*Interrupted: leakhunt: test_suite.py::test_grows crossed the OOM guard's "
                                 "threshold (--leak-oom-action=stop)*"])


def test_a_suite_under_the_threshold_passes_and_writes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_small="""
        import numpy as np

        def test_a():
            assert np.ones(2 * 1024 * 1024 // 8).sum() > 0

        def test_b():
            pass
    """)
    result = run(pytester, *GUARD)
    result.assert_outcomes(passed=2)
    assert not (pytester.path / "leakhunt-oom.json").exists()
    assert "crossing" not in result.stdout.str()


def test_under_xdist_the_workers_test_is_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = run(pytester, *GUARD, "-n", "2", "--leak-oom-report=oom.txt")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1
    result.stdout.fnmatch_lines(["*_ test_grows _*", "leakhunt OOM guard: crossing 1 after *",
                                 "  running: test: test_suite.py::test_grows"])
    written = sorted(p.name for p in pytester.path.glob("oom-gw*.txt"))
    assert written and all(name in ("oom-gw0.txt", "oom-gw1.txt") for name in written)
    assert not (pytester.path / "oom.txt").exists()  # the controller runs no test: no guard there
    assert any("HELD (global in test_suite) keeps" in (pytester.path / name).read_text() for name in written)


@pytest.mark.parametrize(("args", "message"), [
    (["--leak-oom-guard=150%"], "ERROR: invalid --leak-oom-guard '150%': expected a percentage of the memory "
                                "limit from 1% to 99% (like '90%')*"),
    (["--leak-oom-action=stop"], "ERROR: --leak-oom-action only applies with --leak-oom-guard*"),
    (["--leak-oom-guard", "--leak-oom-action=kill"], "ERROR: invalid --leak-oom-action 'kill': expected one of "
                                                     "continue, stop*"),
    (["--leak-oom-guard", "--leak-memory-limit=lots"], "ERROR: invalid --leak-memory-limit 'lots'*"),
    (["--leak-oom-guard", "--leak-oom-report=oom.html"], "ERROR: --leak-oom-report 'oom.html' has suffix '.html'*"),
    (["--leak-oom-guard=5GB", "--leak-memory-limit=1GB"], "ERROR: invalid --leak-oom-guard 4.7 GiB: it is not "
                                                          "below the memory limit*"),
])
def test_bad_values_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*QUIET, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_the_ini_twins_turn_it_on(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nleak_oom_guard = 95%\nleak_memory_limit = 2GB\nleak_oom_report = oom.txt\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["leakhunt OOM guard: threshold 95% (1.8 GiB) of 1.9 GiB (given with ini option "
                                 "leak_memory_limit), on the rss; the test that crosses it fails, then the session "
                                 "goes on; diagnosis to *oom.txt"])


def test_off_by_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*QUIET)
    assert "OOM guard" not in result.stdout.str()
    assert not Path(pytester.path / "leakhunt-oom.json").exists()
