"""The fault matrix (issue 13): one pytest run per fault, and what the user gets from it.

Each test reproduces a fault the way it happens to a user - a signal sent from inside the run,
a worker that dies, a path that cannot be written, a child that ends before any sampler sees it,
a peak read by ``getrusage`` after the session - and checks the outcome that docs/reliability.md
promises. Every run is a subprocess (``runpytest_subprocess``): signals, RSS and the kernel's
high-water mark belong to a process. Sizes are far from the limits (150 MB against 50 MB).
"""

from __future__ import annotations

import importlib.util
import json
import signal
import xml.etree.ElementTree as ET

import pytest

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:memray", "-p", "no:hypothesispytest")
MIB = 1024 * 1024
# numpy is only imported by the runs under test (not here: it cannot be loaded twice per process)
needs_numpy = pytest.mark.skipif(importlib.util.find_spec("numpy") is None, reason="needs numpy")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*QUIET, *args, timeout=600)


def report(pytester: pytest.Pytester, name: str = "r.json") -> dict:
    return json.loads((pytester.path / name).read_text())


# A module of 30 tests; test_n[9] sends a fault chosen by the FAULT environment variable.
THIRTY = """
import os, signal, threading, time
import pytest

@pytest.mark.parametrize("i", range(30))
def test_n(i):
    if i != 9:
        return
    fault = os.environ["FAULT"]
    if fault == "sigint":
        os.kill(os.getpid(), signal.SIGINT)
    elif fault == "sigint-twice":    # Ctrl-C pressed twice, 20 ms apart
        def twice():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.02)
            os.kill(os.getpid(), signal.SIGINT)
        threading.Thread(target=twice).start()
    elif fault == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
    elif fault == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif fault == "sigint-controller":  # under xdist: Ctrl-C reaches the controller
        os.kill(os.getppid(), signal.SIGINT)
    time.sleep(30)  # the signal ends this wait
"""


# ------------------------------------------------------------------------------------ paths
def test_an_unwritable_report_path_is_a_usage_error_before_any_test(pytester: pytest.Pytester) -> None:
    # issue 13: "afile" is a file, so afile/x.json cannot be made; every test used to run, then a
    # raw FileExistsError ate pytest's summary and the JUnit XML
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    pytester.makefile("", afile="a regular file")
    result = run(pytester, "--leak-report-file=afile/x.json", "--junitxml=junit.xml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--leak-report-file 'afile/x.json': 'afile' is a file, not a directory*"])
    assert "test_a" not in result.stdout.str() and "Traceback" not in result.stderr.str()
    # the other way: a path that can be written is written, with the JUnit XML
    result = run(pytester, "--leak-report-file=out/x.json", "--junitxml=junit.xml")
    result.assert_outcomes(passed=1)
    assert report(pytester, "out/x.json")["complete"] is True and (pytester.path / "junit.xml").exists()


# ------------------------------------------------------------------------------------ signals
def test_ctrl_c_writes_a_report_with_every_finished_test(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_thirty=THIRTY)
    monkeypatch.setenv("FAULT", "sigint")
    result = run(pytester, "--leak-report-file=r.json", "--leak-report")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    data = report(pytester)
    assert data["stopped"] == "interrupted by SIGINT (Ctrl-C)" and data["interrupted"] is True
    assert len(data["tests"]) == 9 and data["session"]["missing"] == 21
    result.stdout.fnmatch_lines(["incomplete: 21 of 30 collected tests have no record; interrupted by SIGINT (Ctrl-C)"])


def test_stopping_early_says_why(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="""
        def test_a():
            assert False

        def test_b():
            pass
    """)
    result = run(pytester, "-x", "--leak-report-file=r.json")
    result.assert_outcomes(failed=1)
    data = report(pytester)
    assert data["stopped"] == "stopping after 1 failures" and data["interrupted"] is False
    assert data["session"]["missing_tests"] == ["test_x.py::test_b"] and data["complete"] is False
    # the other way: the whole run is complete
    result = run(pytester, "--leak-report-file=r.json")
    assert report(pytester)["complete"] is True and report(pytester)["stopped"] is None


def test_ctrl_c_twice_writes_a_report_that_says_it_is_incomplete(pytester: pytest.Pytester,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 13: the second Ctrl-C landed while pytest handled the first, and the report of
    # 9 of 30 tests said "interrupted": false
    pytester.makepyfile(test_thirty=THIRTY)
    monkeypatch.setenv("FAULT", "sigint-twice")
    result = run(pytester, "--leak-report-file=r.json")
    # the second KeyboardInterrupt ends pytest itself, as without leakhunt: Python then dies of SIGINT
    assert result.ret in (pytest.ExitCode.INTERRUPTED, -signal.SIGINT)
    data = report(pytester)
    assert data["interrupted"] is True and data["complete"] is False
    assert data["stopped"].startswith("interrupted by SIGINT (Ctrl-C)")
    assert data["session"]["collected"] == 30
    finished = [t["nodeid"] for t in data["tests"]]
    assert finished == [f"test_thirty.py::test_n[{i}]" for i in range(9)]  # every finished test
    assert data["session"]["missing"] == 21 and len(data["session"]["missing_tests"]) == 21
    assert not [p for p in pytester.path.iterdir() if p.name.endswith(".tmp")]


def test_sigterm_ends_the_session_with_a_report_and_junit_xml(pytester: pytest.Pytester,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 13: SIGTERM wrote nothing and left the older report in place, looking current
    pytester.makepyfile(test_thirty=THIRTY)
    (pytester.path / "r.json").write_text('{"from": "an earlier run"}')
    monkeypatch.setenv("FAULT", "sigterm")
    result = run(pytester, "--leak-report-file=r.json", "--leak-report", "--junitxml=junit.xml")
    assert result.ret == 128 + signal.SIGTERM  # what a shell shows for a process killed by SIGTERM
    data = report(pytester)
    assert data["stopped"] == "terminated by SIGTERM" and data["complete"] is False
    assert len(data["tests"]) == 9 and data["session"]["missing"] == 21
    result.stdout.fnmatch_lines(["incomplete: 21 of 30 collected tests have no record; terminated by SIGTERM"])
    cases = {case.get("name") for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")}
    assert {f"test_n[{i}]" for i in range(9)} <= cases  # pytest's own results are written too


def test_sigterm_handled_by_the_user_is_left_to_them(pytester: pytest.Pytester,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # the other way: a SIGTERM handler installed before the session is not replaced
    pytester.makeconftest("""
        import os, signal
        def pytest_configure(config):
            signal.signal(signal.SIGTERM, lambda *a: os._exit(77))
    """)
    pytester.makepyfile(test_thirty=THIRTY)
    monkeypatch.setenv("FAULT", "sigterm")
    result = run(pytester, "--leak-report-file=r.json")
    assert result.ret == 77


def test_a_killed_session_leaves_a_report_that_says_so_not_an_older_one(pytester: pytest.Pytester,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # SIGKILL (or the out-of-memory killer) lets nothing run: the report written when the
    # session started is what remains, and it says the session did not finish
    pytester.makepyfile(test_thirty=THIRTY)
    (pytester.path / "r.json").write_text('{"from": "an earlier run"}')
    monkeypatch.setenv("FAULT", "sigkill")
    result = run(pytester, "--leak-report-file=r.json")
    assert result.ret == -signal.SIGKILL
    data = report(pytester)
    assert data["running"] is True and data["complete"] is False
    assert data["stopped"].startswith("written when the session started")


def test_ctrl_c_on_the_xdist_controller_keeps_every_finished_test(pytester: pytest.Pytester,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_thirty=THIRTY)
    monkeypatch.setenv("FAULT", "sigint-controller")
    result = run(pytester, "-p", "xdist", "-n", "2", "--leak-report-file=r.json")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    data = report(pytester)
    assert data["interrupted"] is True and data["complete"] is False
    assert data["session"]["collected"] == 30
    recorded = {t["nodeid"] for t in data["tests"]}
    assert len(recorded) + data["session"]["missing"] == 30
    assert all(t["outcome"] == "passed" for t in data["tests"])  # each finished test, as it finished


# ------------------------------------------------------------------------------------ xdist
def test_tests_lost_with_a_crashed_xdist_worker_are_recorded(pytester: pytest.Pytester) -> None:
    # issue 13: the crashed tests were missing from the report, with no note
    pytest.importorskip("xdist")
    pytester.makepyfile(test_crash="""
        import ctypes, os
        import pytest

        @pytest.mark.parametrize("i", range(8))
        def test_n(i):
            if i == 2:
                os._exit(1)
            if i == 5:
                ctypes.string_at(0)  # a segfault
    """)
    result = run(pytester, "-p", "xdist", "-n", "2", "--leak-report-file=r.json", "--leak-report")
    result.assert_outcomes(passed=6, failed=2)
    data = report(pytester)
    outcomes = {t["nodeid"].split("[")[1].rstrip("]"): t for t in data["tests"]}
    assert len(outcomes) == 8 and data["complete"] is True
    for crashed in ("2", "5"):
        assert outcomes[crashed]["outcome"] == "crashed" and outcomes[crashed]["verdict"] == "not_measured"
        assert outcomes[crashed]["note"].startswith(f"xdist worker {outcomes[crashed]['worker']} crashed while running it")
    assert all(outcomes[i]["outcome"] == "passed" for i in "013467")
    processes = data["session"]["processes"]
    lost = [p for p in processes if p["lost"]]
    kept = [p for p in processes if not p["lost"]]
    assert len(lost) == 2 and all(p["lost"].startswith("the worker crashed") and p["peak_rss"] is None for p in lost)
    assert kept and all(p["peak_rss"] for p in kept)  # the surviving workers' figures are kept
    result.stdout.fnmatch_lines(["figures lost: gw*: the worker crashed*"])


# ------------------------------------------------------------------------------------ children
def test_a_child_shorter_than_the_sampling_interval_counts(pytester: pytest.Pytester) -> None:
    # issue 13: a 20 ms child was caught in 2 of 6 runs (the sampler polls every 50 ms). Here the
    # sampler is slowed to one reading in 30 s, so only the kernel's record can see the children.
    pytester.makeconftest("""
        import sys, leakhunt.measure
        sys.modules["leakhunt.measure"].CHILDREN_INTERVAL = 30.0
    """)
    pytester.makepyfile(test_children="""
        import multiprocessing, subprocess, sys
        import pytest

        def _allocate(mb):
            block = bytearray(mb * 2**20)  # zero-filled: resident

        @pytest.mark.memory_budget(children="50 MB")
        def test_small_child_within():     # the other way: under the budget, passes
            subprocess.run([sys.executable, "-S", "-c", "b = bytearray(5 * 2**20)"], check=True)

        @pytest.mark.memory_budget(children="50 MB")
        def test_short_program_over():    # a child running another program
            subprocess.run([sys.executable, "-S", "-c", "b = bytearray(150 * 2**20)"], check=True)

        @pytest.mark.memory_budget(children="50 MB")
        def test_short_fork_over():       # a forked child: our pages are left out of its figure
            child = multiprocessing.get_context("fork").Process(target=_allocate, args=(150,))
            child.start()
            child.join()
    """)
    result = run(pytester, "--leak-children", "--leak-no-rerun", "--leak-report-file=r.json")
    result.assert_outcomes(passed=1, failed=2)
    tests = {t["nodeid"].split("::")[1]: t for t in report(pytester)["tests"]}
    assert tests["test_short_program_over"]["children_peak"] >= 140 * MIB
    assert 100 * MIB <= tests["test_short_fork_over"]["children_peak"] < 200 * MIB
    assert (tests["test_small_child_within"]["children_peak"] or 0) < 50 * MIB


# ------------------------------------------------------------------------------------ peaks
PEAK_TESTS = """
import resource
import numpy as np

def test_transient_150mb():
    block = np.ones(150 * 2**20 // 8)  # touched: resident
    del block

def test_reads_its_own_process_peak():
    # VmHWM: getrusage's ru_maxrss never reads below the peak of the process that spawned this
    # one (a floor Linux keeps across exec), which under xdist is a big worker
    with open("during.txt", "w") as f:
        f.write(str(int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024))
"""

READ_AFTER = """
import resource
def pytest_unconfigure(config):
    with open("after.txt", "w") as f:
        f.write(str(int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024))
    with open("after_rusage.txt", "w") as f:
        f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
"""


@needs_numpy
def test_a_peak_read_by_getrusage_after_the_session_is_the_true_peak(pytester: pytest.Pytester) -> None:
    # issue 13: resetting VmHWM before each test made /usr/bin/time -v report 36 MB for a 239 MB
    # session; ru_maxrss and VmHWM read low too
    pytester.makepyfile(test_peak=PEAK_TESTS)
    pytester.makeconftest(READ_AFTER)

    def peaks(*args: str) -> tuple[int, int]:
        result = run(pytester, "--leak-report", *args)
        result.assert_outcomes(passed=2)
        return int((pytester.path / "during.txt").read_text()), int((pytester.path / "after.txt").read_text())

    during, after = peaks()  # default: reset before each test, restored at the end
    assert after >= 150 * MIB and int((pytester.path / "after_rusage.txt").read_text()) >= 150 * MIB
    assert during < 150 * MIB  # the documented side effect, during the session only
    during, after = peaks("--leak-peak=sample")  # nothing of the kernel's mark is touched
    assert during >= 150 * MIB and after >= 150 * MIB
    # the other way: without the restore, the reading after the session is low
    (pytester.path / "conftest.py").write_text(READ_AFTER + "\nimport leakhunt.probes\n"
                                               "leakhunt.probes.restore_hwm = lambda: False\n")
    during, after = peaks()
    assert after < 150 * MIB


@needs_numpy
def test_the_session_peak_is_reported_in_every_peak_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_peak=PEAK_TESTS)
    for mode in ("reset", "sample"):
        result = run(pytester, "--leak-report-file=r.json", f"--leak-peak={mode}")
        result.assert_outcomes(passed=2)
        data = report(pytester)
        assert data["session"]["peak"] >= 145 * MIB and data["session"]["peak_rss"] >= 150 * MIB
        transient = next(t for t in data["tests"] if t["nodeid"].endswith("test_transient_150mb"))
        assert transient["peak"] >= 145 * MIB  # a test that raised the process's mark: exact in both
        assert data["settings"]["leak_peak"] == mode


# ------------------------------------------------------------------------------------ config
@pytest.mark.parametrize(("filename", "table"), [("pyproject.toml", "[tool.pytest]"), ("pytest.toml", "[pytest]")])
def test_native_toml_types(pytester: pytest.Pytester, filename: str, table: str) -> None:
    # issue 13: pytest 9's native table rejected leak_report = true ("expects a string, got bool")
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    (pytester.path / filename).write_text(
        f'{table}\nleak_report = true\nleak_hunt = 5\nleak_threshold = 131072\n'
        'leak_report_top = 3\nmemory_budget = {rss = "1 GB", peak = "2 GB"}\n')
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "leakhunt: report, default budget rss=953.7 MiB, peak=1.9 GiB, hunting leaks (5 repeats, threshold 128.0 KiB/call)"])


@pytest.mark.parametrize(("toml", "message"), [
    ("leak_report = 3", "*ini option leak_report: expected true or false, got 3*"),
    ("leak_hunt = 2", "*ini option leak_hunt: must be >= 4, got 2*"),
    ("leak_threshold = 1.5", "*ini option leak_threshold: invalid size 1.5*"),
    ('memory_budget = {rss = "1.5"}', "*rss='1.5' is not a valid size*a size in bytes must be a whole number*"),
    ('memory_budget = {repeat = 5}', "*repeat=5 only applies to leak hunting: give leak=SIZE too*"),
])
def test_native_toml_values_of_the_wrong_kind_are_usage_errors(pytester: pytest.Pytester, toml: str,
                                                               message: str) -> None:
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    (pytester.path / "pyproject.toml").write_text(f"[tool.pytest]\n{toml}\n")
    result = pytester.runpytest(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


@pytest.mark.parametrize(("args", "message"), [
    (["--memory-budget=rss=1.5"], "*'1.5': a size in bytes must be a whole number; give a unit for a fraction*"),
    (["--memory-budget=repeat=5"], "*repeat=5 only applies to leak hunting: give leak=SIZE too*"),
    (["--leak-threshold=100KiB"], "*--leak-threshold=100KiB only applies when every test is hunted: add --leak-hunt*"),
    (["--leak-report-top=3"], "*--leak-report-top=3 only applies to the terminal table of --leak-report*"),
    (["--leak-peak=never"], "*--leak-peak: expected one of reset, sample, got 'never'*"),
])
def test_values_that_would_be_ignored_are_usage_errors(pytester: pytest.Pytester, args: list[str],
                                                       message: str) -> None:
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    result = pytester.runpytest(*QUIET, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_an_ini_default_for_a_dependent_option_is_fine(pytester: pytest.Pytester) -> None:
    # the other way: in an ini file, leak_threshold is the default for the runs that hunt
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    pytester.makeini("[pytest]\nleak_threshold = 100KiB\nleak_report_top = 3\n")
    pytester.runpytest(*QUIET).assert_outcomes(passed=1)


# ------------------------------------------------------------------------------------ memory
MEMORY_PROBE = """
import pytest

@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    import sys
    from pytest_leakhunt.per_test import _STATE
    session = terminalreporter._session
    leakhunt = config.pluginmanager.get_plugin("leakhunt-session")
    reports = [r for kind in terminalreporter.stats.values() for r in kind if hasattr(r, "user_properties")]
    ours = lambda props: [p for p in props if str(p[0]).startswith("leakhunt.")]
    facts = {
        "states": sum(1 for item in session.items if _STATE in item.stash),
        "item_properties": sum(len(ours(item.user_properties)) for item in session.items),
        "report_properties": sum(len(ours(r.user_properties)) for r in reports),
        "records": len(leakhunt.records),
        "record_bytes": max(sys.getsizeof(r) for r in leakhunt.records.values()),
    }
    with open("facts.json", "w") as f:
        import json
        json.dump(facts, f)
"""


@pytest.mark.parametrize("extra", [[], ["-p", "xdist", "-n", "2"], ["--junitxml=junit.xml"]])
def test_the_plugin_keeps_one_small_record_per_test(pytester: pytest.Pytester, extra: list[str]) -> None:
    # issue 13: 3.3 KB per test were kept for the whole session (+39 MB at 12,000 tests); the
    # per-test figure at 12,000 tests is benchmarks/plugin_memory.py's
    if "xdist" in extra:
        pytest.importorskip("xdist")
    pytester.makepyfile(test_many="""
        import pytest

        @pytest.mark.parametrize("i", range(300))
        def test_n(i):
            pass
    """)
    pytester.makeconftest(MEMORY_PROBE)
    result = run(pytester, "--memory-budget=peak=1GB", "--leak-report", *extra)
    result.assert_outcomes(passed=300)
    facts = json.loads((pytester.path / "facts.json").read_text())
    assert facts["records"] == 300 and facts["states"] == 0
    assert facts["record_bytes"] <= 200  # slots: no per-record dict
    if "--junitxml=junit.xml" in extra:  # the other way: JUnit XML is asked for, so they are there
        assert facts["report_properties"] > 0 and facts["item_properties"] > 0
        properties = ET.parse(pytester.path / "junit.xml").getroot().iter("property")
        assert any(p.get("name") == "leakhunt.verdict" for p in properties)
    else:
        assert facts["report_properties"] == 0 and facts["item_properties"] == 0



# ------------------------------------------------------------------------------------ stopping (issue 21)
# Six tests; test_n[2] sends SIGTERM (or calls pytest.exit) the STOP_AT_CALL-th time it runs in
# this process: 1 is its own call, 2 the first repetition of a hunt or the second call that
# explains a broken budget.
SIX_STOPPING = """
import os, signal, time
import pytest

CALLS = {}
KEPT = []

@pytest.mark.parametrize("i", range(6))
def test_n(i):
    KEPT.append(b"x" * (os.environ.get("KEEP") == "1") * 40 * 2**20)   # over a 10 MB budget if asked
    CALLS[i] = CALLS.get(i, 0) + 1
    if i != 2 or CALLS[i] != int(os.environ["STOP_AT_CALL"]):
        return
    if os.environ["STOP"] == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    pytest.exit("enough", returncode=7)
"""


@pytest.mark.parametrize(("stop", "status"), [("sigterm", 128 + signal.SIGTERM), ("exit", 7)])
@pytest.mark.parametrize("where", ["hunt", "second call"])
def test_a_stop_inside_a_repetition_ends_the_session_with_its_xml_and_report(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, stop: str, status: int, where: str) -> None:
    # issue 21: pytest's Exit is an Exception; a SIGTERM inside --leak-hunt's repetitions (or the
    # second call explaining a budget) was noted as "not hunted" and the session ran on until
    # the CI runner's SIGKILL: no JUnit XML, and a report still saying "running": true
    pytester.makepyfile(test_six=SIX_STOPPING)
    monkeypatch.setenv("STOP", stop)
    monkeypatch.setenv("STOP_AT_CALL", "3" if where == "hunt" else "2")  # call 2 is a warm-up call of the hunt
    monkeypatch.setenv("KEEP", "1" if where == "second call" else "0")
    options = ["--leak-hunt=4"] if where == "hunt" else ["--memory-budget=rss=10MB"]
    result = run(pytester, *options, "--leak-report-file=r.json", "--junitxml=junit.xml")
    assert result.ret == status
    data = report(pytester)
    assert data["running"] is False and data["complete"] is False
    assert [t["nodeid"] for t in data["tests"]] == ["test_six.py::test_n[0]", "test_six.py::test_n[1]"]
    assert data["session"]["missing"] == 4  # test_n[2] was stopped: it has no record
    if stop == "sigterm":
        assert data["stopped"] == "terminated by SIGTERM"
    else:
        assert data["stopped"] == "pytest.exit: enough"
    cases = {case.get("name") for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")}
    assert {"test_n[0]", "test_n[1]"} <= cases and "test_n[5]" not in cases
    assert "not hunted" not in (pytester.path / "r.json").read_text()


def test_a_report_written_as_the_session_starts_does_not_say_nothing_is_missing(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 21: the report a SIGKILL leaves said "complete": false and "missing": 0
    pytester.makepyfile(test_thirty=THIRTY)
    monkeypatch.setenv("FAULT", "sigkill")
    run(pytester, "--leak-report-file=r.json")
    data = report(pytester)
    assert data["complete"] is False and data["running"] is True
    assert data["session"]["missing"] is None and data["session"]["collected"] is None


SIGTERM_AT_THE_END = {
    # the final report, not the "running" one, being written: the signal waits until it is complete
    "report": """
        import os, signal
        import leakhunt.report

        _write = leakhunt.report.write_report

        def write_report(report, path, *args, **kwargs):
            if not report.running:
                os.kill(os.getpid(), signal.SIGTERM)
            return _write(report, path, *args, **kwargs)

        leakhunt.report.write_report = write_report
    """,
    "summary": """
        import os, signal

        def pytest_terminal_summary(terminalreporter):
            os.kill(os.getpid(), signal.SIGTERM)
    """,
}


@pytest.mark.parametrize("where", ["report", "summary"])
def test_a_sigterm_while_the_session_ends_lets_it_end(pytester: pytest.Pytester, where: str) -> None:
    # Raised there (a KeyboardInterrupt since issue 21) it would escape pytest's end of session
    # as an uncaught exception: the session ends as it was ending, with exit status 143.
    pytester.makeconftest(SIGTERM_AT_THE_END[where])
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    result = run(pytester, "--leak-report-file=r.json", "--junitxml=junit.xml")
    assert result.ret == 128 + signal.SIGTERM
    if where == "report":
        result.stdout.fnmatch_lines(["*1 passed*"])  # nothing was left to stop
    assert "Traceback" not in result.stderr.str() and "SessionTerminated" not in result.stderr.str()
    assert report(pytester)["complete"] is True and (pytester.path / "junit.xml").exists()
