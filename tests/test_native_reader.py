"""The processes leakhunt launches beside the script (the reader of memray's capture,
leakhunt.native.CaptureRead; the outside sampler, leakhunt.outside) never change what the
script does and are never left behind, whatever the script does to signals, or wherever the
run stops. Every run happens in a subprocess; sizes are a few MiB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_run import leakhunt, write  # `python -m leakhunt.cli` in a subprocess

pytest.importorskip("memray")
pytest.importorskip("psutil")
if not sys.platform.startswith("linux"):  # pragma: no cover - the outside sampler reads /proc
    pytest.skip("the launched processes are tested on Linux", allow_module_level=True)

# A script that sets SIGPIPE back to its default action (as CLI scripts do for `| head`), or a
# handler of its own, and whose helper process then dies (a crash, the OOM killer, a kill):
# leakhunt's write to it must neither kill the run (status 141, no report) nor call the handler.
KILLS_A_HELPER = """
import os, signal, sys, time
import psutil

if sys.argv[2] == "default":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
else:
    signal.signal(signal.SIGPIPE, lambda *a: print("the script's SIGPIPE handler was called"))
me = str(os.getpid())
for p in psutil.process_iter(["cmdline"]):
    cl = p.info["cmdline"] or ()
    reader = "from leakhunt.native import read_in_child" in " ".join(cl)
    if me in cl and (reader if sys.argv[1] == "reader" else ("-I" in cl and "-S" in cl)):
        p.kill()
        p.wait(10)
        print("killed", sys.argv[1])
kept = bytearray(4 << 20)
"""


@pytest.mark.parametrize("disposition", ["default", "handler"])
@pytest.mark.parametrize("helper", ["reader", "sampler"])
def test_a_helper_that_died_never_sends_sigpipe_to_the_run(tmp_path: Path, helper: str, disposition: str) -> None:
    write(tmp_path / "kills.py", KILLS_A_HELPER)
    proc = leakhunt("run", "--trace=native", "--no-status", "--json", "r.json", "kills.py", helper, disposition,
                    cwd=tmp_path, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert f"killed {helper}" in proc.stdout
    assert "SIGPIPE handler was called" not in proc.stdout
    native = json.loads((tmp_path / "r.json").read_text())["native"]
    if helper == "reader":  # read here instead, and said
        assert any("read in this process: the second process reading it ended without a result" in note
                   for note in native["notes"]), native["notes"]
    assert not list(tmp_path.glob("leakhunt-read-*")) and not list(tmp_path.glob("leakhunt-native-*"))


# The reader is stopped by its process id (SIGKILL) when it is stuck or still reading at the
# end. An id is reused once its process has ended: it is signalled once, while its stdout is
# still open (it is alive), never again seconds later (the stuck reader was signalled three
# times: when stuck, and after the capture was read here, in result() and in close()).
KILLED_ONCE = """
import os, signal, sys
from leakhunt import native

native._STALL = 1.0
native._READ_ELSEWHERE = "import time; time.sleep(120)"  # a reader stuck, using no CPU
kills = []
real_kill = os.kill
def recording_kill(pid, sig):
    if sig == signal.SIGKILL:
        kills.append(pid)
    return real_kill(pid, sig)
os.kill = recording_kill
recorder = native.NativeRecorder().start()
kept = bytearray(4 << 20)
recorder.stop()
reading = recorder.analyse_elsewhere()
if sys.argv[1] == "stuck":
    print(reading.result().notes[-1])
reading.close()  # "reading": closed while it still reads
reading.close()
recorder.close()
print(kills == [reading.pid], kills, reading.pid)
"""


@pytest.mark.parametrize("how", ["stuck", "reading"])
def test_a_reader_is_killed_by_its_id_once_and_only_while_it_lives(tmp_path: Path, how: str) -> None:
    write(tmp_path / "once.py", KILLED_ONCE)
    proc = subprocess.run([sys.executable, "once.py", how], cwd=tmp_path, capture_output=True, text=True,
                          timeout=100)
    assert proc.returncode == 0, proc.stderr
    if how == "stuck":
        assert "used no CPU time for 1 s (stuck; stopped)" in proc.stdout, proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("True"), proc.stdout


# Ctrl-C or an error after the tracer's start and before the script (review finding 3, again
# with the reader launched ahead): the reader ends at once, not with the process that called
# record_run, nothing is left in TMPDIR, and memray's tracker is stopped (a second can start).
STOPPED_BEFORE_THE_SCRIPT = """
import glob, os, sys, time
import memray, psutil
from leakhunt import imports
from leakhunt.run_command import Target, record_run

def broken(self):
    raise {error}
imports.ImportMeter.install = broken
open("empty.py", "w").close()
try:
    record_run(Target(script="empty.py"), trace="native")
except {error}:
    print("stopped before the script")
me = str(os.getpid())
for _ in range(100):  # its stdin closed: it ends within ten seconds
    readers = [p.pid for p in psutil.process_iter(["cmdline"])
               if "from leakhunt.native import read_in_child" in " ".join(p.info["cmdline"] or ())
               and me in p.info["cmdline"]]
    left = glob.glob(os.path.join(os.environ["TMPDIR"], "leakhunt-*"))
    if not readers and not left:
        break
    time.sleep(0.1)
print("readers", readers, "left", left)
with memray.Tracker(os.path.join(os.environ["TMPDIR"], "again.bin")):
    print("a second tracker starts")
"""


@pytest.mark.parametrize("error", ["KeyboardInterrupt", "RuntimeError"])
def test_a_run_stopped_before_the_script_leaves_no_reader_and_no_tracker(tmp_path: Path, error: str) -> None:
    write(tmp_path / "early.py", STOPPED_BEFORE_THE_SCRIPT.format(error=error))
    proc = subprocess.run([sys.executable, "early.py"], cwd=tmp_path, capture_output=True, text=True, timeout=100,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert "stopped before the script" in proc.stdout
    assert "readers [] left []" in proc.stdout, proc.stdout
    assert "a second tracker starts" in proc.stdout


# The reader is `python -c`, whose sys.path starts with the working directory: a module of the
# user's there named as one of the library's (random.py) ran in the reader (code of the user's
# run once more, by leakhunt; under `python script.py` it never runs) and broke it (the capture
# was read in the run's process instead). The run is started as the console script is, from a
# file elsewhere, so its own sys.path has no working directory either.
SHADOW = """
import os
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), f"ran-in-{os.getpid()}"), "w").close()
"""


def test_the_users_modules_in_the_working_directory_never_run_in_the_reader(tmp_path: Path) -> None:
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    write(work / "random.py", SHADOW)
    write(elsewhere / "script.py", "kept = bytearray(4 << 20)\n")
    write(elsewhere / "boot.py", "import sys\nfrom leakhunt.cli import main\nsys.exit(main())\n")
    proc = subprocess.run([sys.executable, str(elsewhere / "boot.py"), "run", "--trace=native", "--no-status",
                           "--json", "r.json", str(elsewhere / "script.py")],
                          cwd=work, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not list(work.glob("ran-in-*")), "the user's random.py ran in leakhunt's reader"
    notes = json.loads((work / "r.json").read_text())["native"]["notes"]
    assert not any("read in this process" in note for note in notes), notes


# The run killed before it hands over the capture and not yet reaped by its parent (a harness
# that kills and waits later), while a forked child of the script holds the reader's stdin
# open: the zombie was taken as alive, and the reader and its directory stayed until the reaping.
FORKS_AND_SLEEPS = """
import os, time
if os.fork() == 0:
    time.sleep(15)  # holds the run's pipes, as any forked child does
    os._exit(0)
print("forked", flush=True)
time.sleep(30)
"""


def test_a_killed_run_not_yet_reaped_does_not_keep_the_reader(tmp_path: Path) -> None:
    import signal

    psutil = pytest.importorskip("psutil")
    write(tmp_path / "forks.py", FORKS_AND_SLEEPS)
    run = subprocess.Popen([sys.executable, "-m", "leakhunt.cli", "run", "--trace=native", "--no-status", "forks.py"],
                           cwd=tmp_path, stdout=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        assert run.stdout is not None and run.stdout.readline().strip() == "forked"
        os.kill(run.pid, signal.SIGKILL)  # a zombie until run.wait(), below
        for _ in range(100):
            readers = [p.pid for p in psutil.process_iter(["cmdline"])
                       if "from leakhunt.native import read_in_child" in " ".join(p.info["cmdline"] or ())
                       and str(run.pid) in p.info["cmdline"]]
            if not readers and not list(tmp_path.glob("leakhunt-read-*")):
                break
            time.sleep(0.1)
        assert not readers, "the reader waited for a killed run's reaping"
        assert not list(tmp_path.glob("leakhunt-read-*"))
    finally:
        run.kill()
        run.wait()
        run.stdout.close()


# A run being recorded that maps a new library (ctypes' extension and libffi) and then waits: the
# capture is still being written, its end half a record or zeros.
RECORDED_AND_WAITING = """
import sys
from leakhunt import native

recorder = native.NativeRecorder().start()
import ctypes  # new libraries, recorded
print("loaded", flush=True)
sys.stdin.readline()
recorder.stop()
print(recorder.path, flush=True)
recorder.close()
"""


@pytest.mark.parametrize("limit", ["as set", "no bytes"])
def test_the_waiting_reader_loads_the_symbols_of_a_capture_still_being_written(tmp_path: Path, limit: str) -> None:
    """The reader, while it waits, reads the capture written so far when the run has mapped new
    libraries (leakhunt.native._Warmer); past its size limit it reads nothing."""
    from leakhunt import native

    write(tmp_path / "waiting.py", RECORDED_AND_WAITING)
    proc = subprocess.Popen([sys.executable, "waiting.py"], cwd=tmp_path, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "loaded"
        capture = next(Path(p) for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("leakhunt-native-*/capture.bin")
                       if _writer_of(p) == proc.pid)
        scratch = tmp_path / "warm.bin"
        warmer = native._Warmer(str(capture), proc.pid, str(scratch))
        if limit == "no bytes":
            native._WARM_MAX_BYTES, saved = 0, native._WARM_MAX_BYTES
            try:
                warmer()
            finally:
                native._WARM_MAX_BYTES = saved
            assert (warmer.passes, warmer.done) == (0, True)
            warmer()  # done: no more passes
            assert warmer.passes == 0
            return
        warmer()
        assert warmer.passes == 1 and not warmer.done and warmer.records > 0
        assert any(b"_ctypes" in name for name in warmer._warmed), sorted(warmer._warmed)
        assert not scratch.exists()  # the pass read a copy of the records so far, and deleted it
        warmer()  # the same libraries, and too soon: no second pass
        assert warmer.passes == 1
    finally:
        proc.communicate("\n", timeout=60)
    assert proc.returncode == 0


def _writer_of(path: Path) -> int | None:
    """The process that has ``path`` open (memray writes the capture it records)."""
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) == str(path):
                return int(fd.parts[2])
        except OSError:
            continue
    return None


KILLED_MID_SCRIPT = """
import os, signal
import numpy as np
kept = np.ones(8 * 1024 * 1024 // 8)
os.kill(os.getpid(), signal.SIGKILL)  # the OOM killer's way: no handler, no cleanup
"""


@pytest.mark.parametrize("kept", [False, True])
def test_a_killed_run_leaves_no_temporary_capture_and_keeps_a_kept_one(tmp_path: Path, kept: bool) -> None:
    """The run's process killed mid-script cannot delete memray's temporary capture; the waiting
    reader, which outlives it, does (leakhunt.native._forsaken). A capture the user asked to keep
    (--keep-capture) stays."""
    write(tmp_path / "killed.py", KILLED_MID_SCRIPT)
    temp = tmp_path / "tmp"
    temp.mkdir()
    args = ["--keep-capture", str(tmp_path / "kept.bin")] if kept else []
    proc = subprocess.run([sys.executable, "-m", "leakhunt.cli", "run", "--trace=native", "--no-status", *args,
                           "killed.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TMPDIR": str(temp)})
    assert proc.returncode == -9, proc.stderr
    for _ in range(100):  # the reader notices within a fifth of a second; allow ten
        left = sorted(p.name for p in temp.iterdir())
        if not left:
            break
        time.sleep(0.1)
    assert not [name for name in left if name.startswith(("leakhunt-native-", "leakhunt-read-"))], left
    assert (tmp_path / "kept.bin").exists() == kept


@pytest.mark.parametrize("dies", [True, False])
def test_a_run_still_exiting_when_the_pipe_closes_has_its_capture_deleted_once_it_is_gone(
        tmp_path: Path, dies: bool) -> None:
    """A killed process's files close before it turns into a zombie, so the reader may see the
    pipe end while the run still reads as alive (a CI run left its capture so). _forsaken waits a
    little for it to go; a run that lives on (it closed the pipe itself) keeps its capture."""
    from leakhunt import native

    given, temporary = tmp_path / "leakhunt-read-x", tmp_path / "leakhunt-native-x"
    given.mkdir()
    temporary.mkdir()
    (temporary / "capture.bin").write_bytes(b"x" * 1024)
    run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        if dies:  # alive when _forsaken looks first, gone a moment later
            import threading

            threading.Timer(0.3, run.kill).start()
            threading.Timer(0.4, run.wait).start()
        native._forsaken(str(given), run.pid, str(temporary))
        assert not given.exists()
        assert temporary.exists() != dies
    finally:
        run.kill()
        run.wait()


RECORDED = """
import sys
import numpy as np
from leakhunt import native

recorder = native.NativeRecorder(keep=sys.argv[1]).start()
kept = [np.ones(100_000 + i) for i in range(200)]
recorder.stop()
"""


def test_a_finished_capture_ends_at_its_last_record_and_reads_the_same(tmp_path: Path) -> None:
    """memray's writer leaves zeros past a capture's records (it grows the file ahead), which its
    reader steps back over one byte at a time; NativeRecorder.stop cuts them (trim_capture). The
    zeros put back, the capture reads the same records and peak as trimmed."""
    import memray

    from leakhunt import native

    capture = tmp_path / "capture.bin"
    proc = subprocess.run([sys.executable, "-c", RECORDED, str(capture)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = capture.read_bytes()
    assert data[-1:] != b"\0" and len(data) > 1000  # ends at its last record
    padded = tmp_path / "padded.bin"
    padded.write_bytes(data + bytes(50_000))  # as memray's writer leaves it

    def read(path: Path) -> tuple[Any, ...]:
        reader = memray.FileReader(str(path), max_memory_records=10**9)
        records = [(r.allocator, r.size, r.address, r.stack_id, r.native_stack_id, r.tid)
                   for r in reader.get_allocation_records()]
        return reader.metadata.peak_memory, reader.metadata.total_allocations, records

    before = read(padded)
    assert native.trim_capture(str(padded)) == 50_000
    assert padded.read_bytes() == data
    assert read(padded) == before and before[0] > 200 * 800_000
    assert native.trim_capture(str(padded)) == 0  # nothing more to cut


RECORDED_WITH_TICKS = """
import pickle, sys
import numpy as np
from leakhunt import native

recorder = native.NativeRecorder(keep=sys.argv[1]).start()
kept = np.ones(20 * 1024 * 1024 // 8)  # line 7
import pydoc, unittest  # stacks of imports, too (modules nothing above loads)
recorder.stop()
t = recorder.ticks
with open(sys.argv[2], "wb") as f:
    pickle.dump({"samples": t.samples, "kept": t.kept, "stacks": t.stacks, "start_rss": t.start_rss,
                 "start_anon": t.start_anon}, f)
"""


def _recorded(tmp_path: Path) -> tuple[Path, Any]:
    """RECORDED_WITH_TICKS's capture and its line ticks (as the second process is handed them)."""
    import pickle
    from types import SimpleNamespace

    capture, ticks = tmp_path / "capture.bin", tmp_path / "ticks.pickle"
    proc = subprocess.run([sys.executable, "-c", RECORDED_WITH_TICKS, str(capture), str(ticks)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return capture, SimpleNamespace(**pickle.loads(ticks.read_bytes()))


@pytest.mark.parametrize("known", ["read ahead", "not this capture's"])
def test_stacks_read_ahead_are_used_only_when_they_are_the_captures(tmp_path: Path, known: str) -> None:
    """The waiting reader's passes keep the Python stacks they read (leakhunt.native._Warmer); the
    reading uses them once a sample of them reads the same in the capture (_Reader._trusted), and
    the peak is the same as read without them. Stacks of another capture are not used."""
    from leakhunt import native

    capture, spec = _recorded(tmp_path)

    def read(stacks: dict[int, Any] | None) -> native.NativePeak:
        return native._Reader(str(capture), spec, top=10, status=None, native_budget=0.2, native_traces=True,
                              known=stacks).read()

    warmer = native._Warmer(str(capture), os.getpid(), str(tmp_path / "warm.bin"))
    warmer.warm()  # one pass over the finished capture: every stack
    assert len(warmer.stacks) > 100
    stacks = warmer.stacks
    if known == "not this capture's":  # the same numbers, other frames
        elsewhere = (("work", str(tmp_path / "other.py"), 3),)
        stacks = {stack: (elsewhere, native._describe(elsewhere, False)) for stack in stacks}
    plain, ahead = read(None), read(stacks)
    assert [(s.file, s.line, s.size) for s in ahead.sites] == [(s.file, s.line, s.size) for s in plain.sites]
    assert ahead.sites[0].line == 7 and ahead.explained == plain.explained
    assert [t.line for t in ahead.totals] == [t.line for t in plain.totals]
    if known == "read ahead":
        assert ahead.ahead_stacks > 100 and plain.ahead_stacks == 0 and ahead.notes == plain.notes
    else:
        assert ahead.ahead_stacks == 0
        assert "the Python stacks read while the script ran were not this capture's" in " ".join(ahead.notes)


def test_a_pass_under_way_stops_when_the_capture_is_handed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reading waits for the waiting reader's pass under way (leakhunt.native._Warmer.stop): a
    pass stops within _WARM_CHECK records once the capture is handed over, so that wait is short."""
    from leakhunt import native

    capture, _ = _recorded(tmp_path)
    monkeypatch.setattr(native, "_WARM_CHECK", 64)  # the small capture's records: a few hundred
    whole, stopped = (native._Warmer(str(capture), os.getpid(), str(tmp_path / "warm.bin")) for _ in range(2))
    whole.warm()
    stopped._stop.set()  # handed over
    stopped.warm()
    assert whole.passes == stopped.passes == 1
    assert stopped.records == 64 and whole.records > 4 * 64
    assert 0 < len(stopped.stacks) < len(whole.stacks)
