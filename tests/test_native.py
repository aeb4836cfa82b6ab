"""The native backend (memray) through its front ends: `leakhunt run --trace`, the report files,
`--keep-capture`, the faults it must survive, and the plugin's `--leak-trace=native`.

Every run happens in a subprocess (memray allows one tracker per process, and the figures must
be the target's). Sizes are tens of MiB, far from every tolerance; the process stays under
300 MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_run import leakhunt, write  # the same helpers: `python -m leakhunt.cli` in a subprocess

pytest.importorskip("memray")
if not sys.platform.startswith(("linux", "darwin")):  # pragma: no cover - memray's platforms
    pytest.skip("memray runs on Linux and macOS only", allow_module_level=True)

MiB = 1024 * 1024

# Each allocation alive at the peak comes from a different library, on its own line; a bigger
# block made and freed before it must not show.
MIXED = """
import numpy as np, pyarrow as pa, pyarrow.compute as pc, polars as pl
early = np.ones(70 * 1024 * 1024 // 8)             # freed before the peak
del early
nums = np.ones(40 * 1024 * 1024 // 8)              # numpy
arrow = pc.add(pa.array(nums), 1.0)                # Arrow's pool
frame = pl.DataFrame({"x": nums}).with_columns(y=pl.col("x") * 3.0, z=pl.col("x") + 1.0)  # polars' threads
words = [str(i) * 8 for i in range(500_000)]       # Python objects
print(len(words), frame.height, len(arrow))
"""
LINES = {"numpy": 5, "pyarrow": 6, "polars": 7, "Python": 8}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    d = tmp_path_factory.mktemp("native")
    write(d / "mixed.py", MIXED)
    proc = leakhunt("run", "--trace", "--json", "r.json", "-o", "r.html", "--keep-capture", "cap.bin", "mixed.py",
                    cwd=d, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return {"dir": d, "proc": proc, "json": json.loads((d / "r.json").read_text()),
            "html": (d / "r.html").read_text()}


def _site(native: dict, line: int) -> dict:
    found = [s for s in native["sites"] if s["file"].endswith("mixed.py") and s["line"] == line]
    assert found, f"no site for mixed.py:{line} in {[(s['line'], s['size']) for s in native['sites']]}"
    return found[0]


@pytest.mark.parametrize("library", sorted(LINES))
def test_each_librarys_allocations_are_charged_to_the_users_line_at_the_peak(mixed: dict, library: str) -> None:
    native = mixed["json"]["native"]
    assert mixed["json"]["trace_backend"] == "native" and mixed["json"]["trace"] is None
    site = _site(native, LINES[library])
    libraries = dict(site["libraries"])
    assert site["size"] >= 30 * MiB, site
    assert libraries.get(library, 0) >= 0.5 * site["size"], site  # and mostly by that library's code


def test_polars_columns_built_by_worker_threads_are_charged_to_the_line(mixed: dict) -> None:
    site = _site(mixed["json"]["native"], LINES["polars"])
    assert site["threads"] >= 30 * MiB  # no Python stack: placed by the line ticks


def test_what_was_freed_before_the_peak_is_not_alive_at_it(mixed: dict) -> None:
    native = mixed["json"]["native"]
    early = [s for s in native["sites"] if s["file"].endswith("mixed.py") and s["line"] == 3]
    assert not early or early[0]["size"] < MiB
    totals = {t["line"]: t for t in native["totals"] if t["file"].endswith("mixed.py")}
    assert totals[3]["allocated"] >= 70 * MiB and totals[3]["at_peak"] == 0  # but it counts in the totals


def test_coverage_and_the_allocator_switch_are_reported(mixed: dict) -> None:
    native = mixed["json"]["native"]
    assert native["anon_above_start"] >= 140 * MiB
    assert 0.8 <= native["coverage"] <= 1.3  # the sites hold most of the resident memory above the start
    assert not native["reservations"]  # Arrow's pool was the system allocator: no mimalloc arena
    assert any("ARROW_DEFAULT_MEMORY_POOL=system" in note for note in native["notes"])
    text = " ".join(mixed["proc"].stderr.split())  # rich wraps the summary at 100 columns
    assert "alive at the peak (memray" in text and "of resident anonymous memory above the start" in text
    assert "mixed.py:5" in text and "leakhunt run: mixed.py" in text


def test_keep_capture_leaves_a_file_memray_reads(mixed: dict) -> None:
    import memray

    capture = Path(mixed["dir"]) / "cap.bin"
    assert mixed["json"]["native"]["capture"] == str(capture)
    with memray.FileReader(str(capture)) as reader:
        assert reader.metadata.has_native_traces and reader.metadata.total_allocations > 0


def test_the_html_report_draws_a_self_contained_flame_graph(mixed: dict) -> None:
    page = mixed["html"]
    assert 'class="flame"' in page and "leakhunt-flame-data" in page and "native-sites" in page
    for fetch in ('src="http', "src='http", 'href="http', "url(http", "@import"):
        assert fetch not in page  # nothing is fetched: the page works offline
    data = page.split('id="leakhunt-flame-data">', 1)[1].split("</script>", 1)[0]
    tree = json.loads(data)
    names = json.dumps(tree)
    assert "mixed.py:5" in names and "leakhunt" not in json.dumps([c["n"] for c in tree.get("c", [])])


def test_a_peak_after_the_last_timeline_sample_is_still_explained_at_that_peak(tmp_path: Path) -> None:
    write(tmp_path / "late.py", """
    import numpy as np
    small = np.ones(5 * 1024 * 1024 // 8)
    late = np.ones(90 * 1024 * 1024 // 8)   # the peak, and the script's last line
    """)
    proc = leakhunt("run", "--trace", "--interval", "60s", "--json", "r.json", "late.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert len(data["samples"]["t"]) == 2  # the first and the last sample only
    top = data["native"]["sites"][0]
    assert top["file"].endswith("late.py") and top["line"] == 4 and top["size"] >= 85 * MiB


def test_a_churning_line_is_a_finding(tmp_path: Path) -> None:
    write(tmp_path / "churn.py", """
    import numpy as np
    kept = np.zeros(0)
    for day in range(24):
        kept = np.concatenate([kept, np.ones(2 * 1024 * 1024 // 8)])  # copies all kept so far, every day
    """)
    proc = leakhunt("run", "--trace", "--json", "r.json", "churn.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    total = json.loads((tmp_path / "r.json").read_text())["native"]["totals"][0]
    assert total["line"] == 5 and total["allocated"] >= 500 * MiB and total["held"] <= 120 * MiB
    assert "the same data copied again and again" in " ".join(proc.stderr.split())


def test_trace_tracemalloc_chooses_tracemalloc(tmp_path: Path) -> None:
    write(tmp_path / "t.py", "import numpy as np\nx = np.ones(30 * 1024 * 1024 // 8)\n")
    proc = leakhunt("run", "--trace=tracemalloc", "--json", "r.json", "t.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["trace_backend"] == "tracemalloc" and data["native"] is None and data["trace"]["sites"]
    assert "tracemalloc cannot see" in proc.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--trace=tracemalloc", "--keep-capture", "c.bin"], "needs the native backend"),
    (["--keep-capture", "c.bin"], "add --trace"),
    (["--trace", "--keep-capture", "missing/c.bin"], "cannot write into"),
])
def test_keep_capture_is_checked_before_anything_runs(tmp_path: Path, args: list[str], message: str) -> None:
    write(tmp_path / "t.py", "open('ran', 'w').close()\n")
    proc = leakhunt("run", *args, "t.py", cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "ran").exists()


# --------------------------------------------------------------------------------------
# faults: a clear message and a working run, never a lost report


def test_memray_missing_falls_back_to_tracemalloc_and_says_so(tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    (fake / "memray").mkdir(parents=True)
    (fake / "memray" / "__init__.py").write_text("raise ImportError('no memray here')\n")
    write(tmp_path / "t.py", "import numpy as np\nx = np.ones(30 * 1024 * 1024 // 8)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), *sys.path])}
    proc = leakhunt("run", "--trace=native", "--json", "r.json", "t.py", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["trace_backend"] == "tracemalloc" and data["trace"]["sites"]
    assert "memray is not installed" in data["trace_note"] and "leakhunt[native]" in data["trace_note"]
    assert "traced with tracemalloc instead" in proc.stderr.splitlines()[0]  # said before the run


def test_a_second_tracker_falls_back_to_tracemalloc(tmp_path: Path) -> None:
    write(tmp_path / "t.py", "import numpy as np\nx = np.ones(30 * 1024 * 1024 // 8)\n")
    write(tmp_path / "outer.py", """
    import sys, memray
    from leakhunt.cli import main
    with memray.Tracker("outer.bin"):   # another tracker (memray run, pytest-memray) is active
        status = main(["run", "--trace", "--json", "r.json", "t.py"])
    sys.exit(status)
    """)
    proc = subprocess.run([sys.executable, "outer.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["trace_backend"] == "tracemalloc" and data["trace"] is not None
    assert "another memray tracker is already active" in data["trace_note"]


def test_a_forking_script_runs_and_is_explained(tmp_path: Path) -> None:
    write(tmp_path / "forks.py", """
    import multiprocessing as mp
    import numpy as np

    def work(n):
        return float(np.ones(n).sum())

    if __name__ == "__main__":
        kept = np.ones(40 * 1024 * 1024 // 8)
        with mp.get_context("fork").Pool(2) as pool:
            print(sum(pool.map(work, [100_000] * 4)))
    """)
    proc = leakhunt("run", "--trace", "--json", "r.json", "forks.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "400000.0" in proc.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["trace_backend"] == "native"
    top = data["native"]["sites"][0]
    assert top["file"].endswith("forks.py") and top["line"] == 9


READ_ELSEWHERE = """
import numpy as np
from leakhunt import native

recorder = native.NativeRecorder().start()
ahead = recorder.reader_ahead()  # launched before the block's work, as leakhunt run does
kept = np.ones(30 * 1024 * 1024 // 8)  # line 7
import ctypes, time  # new libraries while recording: the waiting reader may load their symbols
time.sleep(1.5)
recorder.stop()
here = recorder.analyse()
there = recorder.analyse_elsewhere(reading=ahead).result()
assert "memray's capture was read in this process" not in " ".join(there.notes), there.notes
assert [(s.line, s.size) for s in there.sites] == [(s.line, s.size) for s in here.sites], (there.sites, here.sites)
assert there.sites[0].line == 7 and there.explained == here.explained and there.notes == here.notes
assert there.ahead_cpu_seconds > 0 and here.ahead_cpu_seconds == 0
native._READ_ELSEWHERE = "import sys; sys.exit('a broken reader')"  # a second process that fails
fallback = recorder.analyse_elsewhere().result()
assert fallback.sites[0].line == 7, fallback.sites
print(fallback.notes[-1])
recorder.close()
"""


def test_the_capture_read_in_a_second_process_is_the_same_and_a_failed_one_is_read_here(tmp_path: Path) -> None:
    write(tmp_path / "elsewhere.py", READ_ELSEWHERE)
    proc = subprocess.run([sys.executable, "elsewhere.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert ("memray's capture was read in this process: the second process reading it ended without a result: "
            "a broken reader") in proc.stdout


# --------------------------------------------------------------------------------------
# the plugin: --leak-trace=native

PEAK_TEST = """
import numpy as np
import pytest

@pytest.mark.memory_budget(peak="40 MB")
def test_spike():
    early = np.ones(20 * 1024 * 1024 // 8)
    del early
    late = np.ones(90 * 1024 * 1024 // 8)   # the peak
    assert late[0] == 1.0

@pytest.mark.memory_budget(peak="500 MB")
def test_within():
    x = np.ones(1024)
"""


def test_plugin_native_shows_the_sites_at_the_tests_own_peak(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_peak=PEAK_TEST)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--leak-trace=native")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*broke its memory budget*", "*alive at the peak*", "*test_peak.py:8*"])
    text = result.stdout.str()
    assert "test_peak.py:6" not in text  # freed before the peak
    assert "second time" not in text  # no traced re-run for a peak the source saw
    assert "peaks of budgeted tests explained by memray" in text


def test_plugin_native_ini_option_and_bad_value(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_peak=PEAK_TEST)
    pytester.makeini("[pytest]\nleak_trace = native\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_peak.py:8*"])
    pytester.makeini("[pytest]\nleak_trace = nativ\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.stderr.fnmatch_lines(["*ini option leak_trace: expected true, false or native, got 'nativ'*"])


def test_plugin_native_beside_pytest_memray_says_so_and_explains_anyway(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_memray")
    pytester.makepyfile(test_peak=PEAK_TEST)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--memray", "--leak-trace=native")
    result.assert_outcomes(passed=1, failed=1)
    # explained as without the option: tracemalloc, in a second call (whose sampled snapshot may
    # miss a short peak on a busy machine: the line it finds is not asserted)
    result.stdout.fnmatch_lines(["*--leak-trace=native: pytest-memray*", "*broke its memory budget*",
                                 "*called it a second time, traced*"])


def test_the_cheap_path_never_loads_the_native_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="""
    import sys

    def test_one():
        pass

    def test_no_native():
        assert "leakhunt.native" not in sys.modules and "memray" not in sys.modules
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:memray", "--leak-report")
    result.assert_outcomes(passed=2)


ORPHANED = """
import os, signal, sys, time
from leakhunt import native

directory = sys.argv[1]
native._READ_ELSEWHERE = (  # a reading that would take a minute
    "import sys, time; sys.path.insert(0, sys.argv[1]); from leakhunt import native; "
    "native._end_with_parent(sys.argv[2], int(sys.argv[3])); time.sleep(60)")
recorder = native.NativeRecorder().start()
recorder.stop()
reading = recorder.analyse_elsewhere()
print(reading.pid, reading._dir, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # the run's process dies without reading the result
"""


STUCK = """
import numpy as np
from leakhunt import native

import sys
native._STALL = 1.0
native._READ_ELSEWHERE = {
    "stuck": "import time; time.sleep(120)",  # a reader stuck on something, using no CPU
    "busy": "import time\\nt = time.time()\\nwhile time.time() - t < 3: pass",  # at work for 3 s, then no result
}[sys.argv[1]]
recorder = native.NativeRecorder().start()
kept = np.ones(30 * 1024 * 1024 // 8)  # line 12
recorder.stop()
reading = recorder.analyse_elsewhere()
peak = reading.result()
assert peak.sites[0].line == 12, peak.sites
print(reading.pid, peak.notes[-1])
recorder.close()
"""


@pytest.mark.parametrize("how", ["stuck", "busy"])
def test_a_second_process_stuck_without_cpu_time_is_stopped_and_the_capture_read_here(tmp_path: Path,
                                                                                       how: str) -> None:
    write(tmp_path / "stuck.py", STUCK)
    proc = subprocess.run([sys.executable, "stuck.py", how], cwd=tmp_path, capture_output=True, text=True,
                          timeout=100)
    assert proc.returncode == 0, proc.stderr
    pid, said = proc.stdout.split(" ", 1)
    if how == "stuck":
        assert "used no CPU time for 1 s (stuck; stopped)" in said, said
    else:  # three seconds of work are not a stall: it ended on its own
        assert "the second process reading it ended without a result" in said, said
    assert _gone(int(pid))  # stopped, not left sleeping


def _gone(pid: int) -> bool:
    """Has process ``pid`` ended (within ten seconds; a zombie nobody reaped has)?"""
    import time

    for _ in range(100):
        try:
            if "zombie" in Path(f"/proc/{pid}/status").read_text().lower():
                return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def test_the_second_process_ends_when_the_run_that_started_it_dies(tmp_path: Path) -> None:
    import time

    write(tmp_path / "orphaned.py", ORPHANED)
    # (its own temporary directory: the killed run's capture is left where the test cleans up)
    proc = subprocess.run([sys.executable, "orphaned.py", str(tmp_path)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "TMPDIR": str(tmp_path)})
    pid, directory = proc.stdout.split()
    for _ in range(100):  # it notices within a fifth of a second; allow ten
        if not os.path.exists(directory) and not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.1)
    assert not os.path.exists(directory), "the second process's files outlived the run"
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


UNUSED = """
import os, sys
from leakhunt import native

recorder = native.NativeRecorder().start()
reading = recorder.reader_ahead()  # launched, never handed the capture
recorder.stop()
print(reading.pid, reading._dir, flush=True)
if sys.argv[1] == "closed":
    reading.close()
    recorder.close()
    print("closed", flush=True)
os._exit(0)  # "ended": the run's process ends without closing anything
"""


@pytest.mark.parametrize("how", ["closed", "ended"])
def test_a_reader_launched_ahead_and_never_used_ends_and_leaves_nothing(tmp_path: Path, how: str) -> None:
    import time

    write(tmp_path / "unused.py", UNUSED)
    proc = subprocess.run([sys.executable, "unused.py", how], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    pid, directory = proc.stdout.split()[:2]
    for _ in range(100):  # it ends as soon as its stdin closes; allow ten seconds
        if not os.path.exists(directory):
            break
        time.sleep(0.1)
    assert not os.path.exists(directory), "the unused reader's directory outlived the run"
    assert _gone(int(pid))


# The reader is leakhunt's, never the script's: launched before the script as nobody's child
# (see leakhunt.native.CaptureRead), never counted by --children, never left behind.

WAITS_FOR_ALL = """
import os
if os.fork() == 0:
    os._exit(0)
while True:  # wait for every child: ChildProcessError once there is none left
    try:
        os.wait()
    except ChildProcessError:
        break
print("all reaped")
"""


def test_a_script_that_waits_for_all_its_children_is_not_kept_waiting_by_the_reader(tmp_path: Path) -> None:
    # a reader launched before the script as its child (to load while it ran) hung this script for ever
    write(tmp_path / "waits.py", WAITS_FOR_ALL)
    proc = subprocess.run([sys.executable, "-m", "leakhunt.cli", "run", "--trace=native", "--no-status", "waits.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "all reaped" in proc.stdout


INTERRUPTED = """
import os, signal, time
os.killpg(os.getpgid(0), signal.SIGINT)  # Ctrl-C: the terminal interrupts the whole foreground group
time.sleep(5)
"""


def test_ctrl_c_in_the_script_still_reads_the_capture_and_leaves_nothing_behind(tmp_path: Path) -> None:
    write(tmp_path / "interrupted.py", INTERRUPTED)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.run([sys.executable, "-m", "leakhunt.cli", "run", "--trace=native", "--no-status", "--json",
                           "r.json", "interrupted.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(tmp)}, start_new_session=True)
    assert proc.returncode == 130, proc.stderr
    assert "KeyboardInterrupt" in proc.stderr
    native = json.loads((tmp_path / "r.json").read_text())["native"]
    assert native is not None  # the capture was read, by the reader: Ctrl-C did not reach it
    assert not any("read in this process" in note for note in native["notes"]), native["notes"]
    assert not list(tmp.glob("leakhunt-read-*")), "a reader's directory outlived the run"


LOOKS_FOR_THE_READER = """
import os, psutil
me = psutil.Process()
mine = {p.pid for p in me.children(recursive=True)}
readers = [p for p in psutil.process_iter(["cmdline"])
           if "from leakhunt.native import read_in_child" in " ".join(p.info["cmdline"] or ())
           and str(os.getpid()) in (p.info["cmdline"] or ())]
assert len(readers) == 1, readers  # launched before the script, for this run
reader = readers[0]
assert reader.pid not in mine  # nobody's child: not the script's
assert os.getsid(reader.pid) != os.getsid(0)  # a session of its own: Ctrl-C does not reach it
print("reader ready", reader.pid)
"""


def test_the_reader_is_launched_before_the_script_and_is_not_the_scripts(tmp_path: Path) -> None:
    write(tmp_path / "looks.py", LOOKS_FOR_THE_READER)
    proc = leakhunt("run", "--trace=native", "--no-status", "--json", "r.json", "looks.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "reader ready" in proc.stdout
    notes = json.loads((tmp_path / "r.json").read_text())["native"]["notes"]
    assert not any("read in this process" in note for note in notes), notes


def test_children_does_not_count_the_reader_as_the_scripts_child(tmp_path: Path) -> None:
    write(tmp_path / "alone.py", "kept = bytearray(4 << 20)\n")  # no child of its own
    proc = leakhunt("run", "--trace=native", "--children", "--json", "r.json", "alone.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["trace_backend"] == "native"
    assert not data["children_peak"], data["children_peak"]  # the reader is leakhunt's, never the script's
