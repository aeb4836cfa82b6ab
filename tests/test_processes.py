"""Processes, signals and at-exit work (issue 21): leakhunt acts only in the process that installed it.

A forked child - a multiprocessing worker, an ``os.fork()`` in a test or a script - inherits
the parent's Python signal handlers and at-exit callbacks. Each test here is a user's case that
leakhunt used to break (a hang, a wrong exit status, a second summary, an overwritten report),
run the way it happens: a pytest session or a ``leakhunt run`` in a subprocess. A hang shows as
the subprocess's timeout, never as a stuck suite.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:memray", "-p", "no:hypothesispytest")
# A pool's workers sleep this long: a pool that waits for them instead of terminating them
# takes at least this long, and one that hangs never ends (the subprocess's timeout says so).
SLOW = 20


def pytest_run(pytester: pytest.Pytester, *args: str, timeout: float = 90) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*QUIET, *args, timeout=timeout)


def leakhunt_run(cwd: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leakhunt.cli", "run", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


POOL_TESTS = f"""
import multiprocessing, signal, time

def _slow(x):
    time.sleep({SLOW})
    return x

def test_with_pool_timeout_abandons_work():
    # issue 21's case: passed in 0.7 s without the plugin, hung forever with --leak-report
    with multiprocessing.get_context("fork").Pool(2) as pool:
        res = pool.map_async(_slow, range(4))
        try:
            res.get(timeout=0.5)
        except multiprocessing.TimeoutError:
            pass

def test_terminate_gives_minus_sigterm():
    p = multiprocessing.get_context("fork").Process(target=time.sleep, args=({SLOW},))
    p.start()
    time.sleep(0.2)
    p.terminate()
    p.join({SLOW} / 2)
    assert p.exitcode == -signal.SIGTERM

LEFT_OPEN = []

def test_leaves_a_busy_pool_open():
    # never closed: the interpreter's exit terminates it (multiprocessing's own at-exit)
    pool = multiprocessing.get_context("fork").Pool(2)
    pool.map_async(_slow, range(4))
    LEFT_OPEN.append(pool)
"""


@pytest.mark.parametrize("options", [["--leak-report"], ["--leak-report-file=r.json"],
                                     ["--memory-budget=peak=1GB", "--leak-report-file=r.json"]])
def test_fork_pools_end_as_without_leakhunt(pytester: pytest.Pytester, options: list[str]) -> None:
    pytester.makepyfile(test_pools=POOL_TESTS)
    result = pytest_run(pytester, *options, timeout=SLOW * 2)  # a hang fails here: it never ends
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    assert "terminated by SIGTERM" not in result.stdout.str()


def test_the_session_still_ends_on_its_own_sigterm(pytester: pytest.Pytester) -> None:
    # the other way: the handler that forked children no longer run is still the session's
    pytester.makepyfile(test_pools=POOL_TESTS + """
def test_zz_sigterm_to_the_session():
    import os
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
""")
    result = pytest_run(pytester, "--leak-report-file=r.json", "--junitxml=j.xml", timeout=SLOW * 2)
    assert result.ret == 128 + signal.SIGTERM
    data = json.loads((pytester.path / "r.json").read_text())
    assert data["stopped"] == "terminated by SIGTERM" and len(data["tests"]) == 3
    assert (pytester.path / "j.xml").exists()


def test_a_forked_child_that_runs_on_into_pytest_does_not_write_the_report(pytester: pytest.Pytester) -> None:
    # A test whose os.fork() child returns instead of os._exit(): the child runs the rest of the
    # session, as it would without leakhunt, but the session's report is its parent's.
    pytester.makepyfile(test_fork="""
        import os, time

        def test_forks():
            pid = os.fork()
            if pid == 0:
                time.sleep(0.5)   # the parent ends first; the child would write the report last
                return
            with open("child.pid", "w") as f:
                f.write(str(pid))

        def test_after():
            # the child's run of this test fails: a report the child wrote would say so
            assert not (os.path.exists("child.pid") and int(open("child.pid").read()) == os.getpid())
    """)
    result = pytest_run(pytester, "-s", "--leak-report-file=r.json")
    pid = int((pytester.path / "child.pid").read_text())
    _wait_for_exit(pid)
    data = json.loads((pytester.path / "r.json").read_text())
    assert data["complete"] is True and [t["outcome"] for t in data["tests"]] == ["passed", "passed"]
    assert result.ret == 0


def _wait_for_exit(pid: int, seconds: float = 30) -> None:
    """Wait until process ``pid`` (not our child: we cannot reap it) is gone."""
    import os
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still runs after {seconds} s")


# ------------------------------------------------------------------------------------ leakhunt run
def test_leakhunt_run_prints_nothing_from_terminated_workers(tmp_path: Path) -> None:
    (tmp_path / "pool.py").write_text(textwrap.dedent(f"""
        import multiprocessing, time

        def slow(x):
            time.sleep({SLOW})
            return x

        if __name__ == "__main__":
            with multiprocessing.get_context("fork").Pool(3) as pool:   # terminated on leaving
                res = pool.map_async(slow, range(6))
                try:
                    res.get(timeout=0.5)
                except multiprocessing.TimeoutError:
                    print("gave up waiting")
            p = multiprocessing.get_context("fork").Process(target=time.sleep, args=({SLOW},))
            p.start()
            time.sleep(0.2)
            p.terminate()
            p.join()
            print("exitcode", p.exitcode)
    """))
    proc = leakhunt_run(tmp_path, "--json", "r.json", "pool.py", timeout=SLOW * 2)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["gave up waiting", f"exitcode {-signal.SIGTERM}"]
    assert "terminated" not in proc.stderr  # no worker said it was writing figures
    assert proc.stderr.count("leakhunt run: pool.py") == 1  # one summary: the run's


FORKS_AND_RUNS_ON = """
import atexit, os, sys

pid = os.fork()
if pid == 0:
    atexit.register(lambda: print("child at exit", flush=True))
    KEPT = bytearray(120 * 1024 * 1024)   # the child's figures would differ from the run's
    os.close(int(sys.argv[2]))            # the parent alone holds the write end: ...
    os.read(int(sys.argv[1]), 1)          # ... EOF when it has ended (and written the report)
    print("child done", flush=True)
    {child_end}
else:
    print("parent done", flush=True)
"""


@pytest.mark.parametrize(("child_end", "status"), [("", 0), ("sys.exit(3)", 3), ("raise ValueError('in the child')", 1)])
def test_a_forked_child_of_a_script_never_prints_a_summary_or_writes_the_report(
        tmp_path: Path, child_end: str, status: int) -> None:
    import os

    (tmp_path / "forks.py").write_text(textwrap.dedent(FORKS_AND_RUNS_ON.format(child_end=child_end)))
    read, write = os.pipe()  # the child reads EOF when the parent (holding the write end) has ended
    try:
        proc = subprocess.Popen([sys.executable, "-m", "leakhunt.cli", "run", "--json", "r.json", "forks.py",
                                 str(read), str(write)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, pass_fds=(read, write))
        os.close(write)
        write = -1
        out, err = proc.communicate(timeout=90)  # the child holds the pipes too: both have ended
    finally:
        os.close(read)
        if write != -1:
            os.close(write)
    assert proc.returncode == 0
    assert "parent done" in out and "child done" in out and "child at exit" in out  # as under python
    assert err.count("leakhunt run: forks.py") == 1, err  # the run's summary, once
    assert ("in the child" in err) == (status == 1)  # the child's error, printed as Python would
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["exit_status"] == 0 and data["final_growth"] < 60 * 1024 * 1024  # the parent's figures


# ------------------------------------------------------------------------------------ the library
AT_EXIT_IN_CHILD = """
import atexit, os, sys
from leakhunt import probes

MIB = 2**20
child = []
atexit.register(lambda: child and print("child mark", probes.hwm() // MIB, flush=True))  # runs after ours
big = bytearray(300 * MIB)          # the parent's peak: 300 MiB and more
del big
window = probes.PeakWindow().open()  # resets the kernel's mark (and registers the restore at exit)
window.close()
if window.mode != "hwm":
    print("no reset here")
    sys.exit(0)
pid = os.fork()
if pid == 0:
    child.append(1)
    sys.exit(0)                      # through the interpreter: the at-exit callbacks run
os.waitpid(pid, 0)
"""


def test_a_forked_child_does_not_restore_its_parents_peak_at_exit(tmp_path: Path) -> None:
    # the probes' at-exit restore raised a forked child's mark to its parent's peak (300 MiB of
    # pages mapped in the child as it exited); the child's mark is its own
    (tmp_path / "at_exit.py").write_text(AT_EXIT_IN_CHILD)
    proc = subprocess.run([sys.executable, "at_exit.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    if proc.stdout.strip() == "no reset here":
        pytest.skip("the kernel's mark cannot be reset here (/proc/self/clear_refs)")
    [line] = proc.stdout.splitlines()
    assert line.startswith("child mark ") and int(line.split()[-1]) < 200, line


HANDLER_IN_CHILD = """
import os, signal, sys, time
from leakhunt.process_local import LocalHandler

seen = []
handler = LocalHandler(signal.SIGTERM, lambda s, f: seen.append(s))
assert handler.install()
pid = os.fork()
if pid == 0:
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL   # the child's disposition is its own
    time.sleep(30)
    os._exit(0)
time.sleep(0.2)
os.kill(pid, signal.SIGTERM)
_, status = os.waitpid(pid, 0)
os.kill(os.getpid(), signal.SIGTERM)                             # ours still handles the parent's
handler.uninstall()
print(os.WIFSIGNALED(status) and os.WTERMSIG(status), seen, signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
"""


def test_a_local_handler_is_the_installing_processs_only(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text(HANDLER_IN_CHILD)
    proc = subprocess.run([sys.executable, "handler.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(int(signal.SIGTERM)), f"[{int(signal.SIGTERM)}]", "True"]
