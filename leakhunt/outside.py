"""RSS sampled from outside the process: a timeline with no gaps where C code holds the GIL.

A sampling thread inside the script runs only when it gets the GIL: while C code holds it
(a long sort, a C extension that does not release it) nothing is sampled, and a timeline drawn
from those samples shows a straight ramp over the gap. :class:`OutsideSampler` reads the
process's ``/proc/PID/statm`` from a separate process instead, as mprof does, so the GIL does
not stop it.

The sampling process is the script's grandchild, not its child: a launcher forks it and exits
at once, so the script's ``os.wait()``, its child processes (``--children``) and its process
group never see it. It stops when told to (a byte on its stdin pipe), when the script's process
is gone, or when nothing reads its result; it then writes its samples to its stdout pipe.
Where it cannot run (no ``/proc``, no ``fork``), :meth:`OutsideSampler.start` returns False and
the caller keeps the in-process samples, whose gaps :meth:`leakhunt.timeline.Timeline.gaps`
marks.
"""

from __future__ import annotations

import os
import select
import signal
import struct
import subprocess
import sys
import time
from array import array
from dataclasses import dataclass
from typing import Any

__all__ = ["OutsideSamples", "OutsideSampler", "launch_detached", "write_to_pipe"]

# The sampling process: standard library only (python -I -S: no site, no user paths, no leakhunt;
# about 10 MiB resident).
# argv: pid, interval (s), max samples. Run detached (launch_detached); it writes b"R" once
# it has its first sample, then on stop: a header (interval, count, cpu seconds) and the samples
# (perf_counter times, RSS bytes). On Linux perf_counter is CLOCK_MONOTONIC, one clock for every
# process of the machine.
_LOOP = r"""
import os, select, struct, sys, time
from array import array
pid, interval, cap = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
page = os.sysconf("SC_PAGE_SIZE")
fd = os.open("/proc/%d/statm" % pid, os.O_RDONLY)
stop, out = sys.stdin.fileno(), sys.stdout.fileno()
ts, rss = array("d"), array("q")
ready = False
due = time.perf_counter()
while True:
    now = time.perf_counter()
    try:
        value = int(os.pread(fd, 256, 0).split()[1]) * page
    except (OSError, IndexError, ValueError):
        break
    ts.append(now)
    rss.append(value)
    if len(ts) >= cap:
        keep = [i if rss[i] >= rss[i + 1] else i + 1 for i in range(0, len(ts) - 1, 2)]
        if len(ts) % 2:
            keep.append(len(ts) - 1)
        ts, rss = array("d", (ts[i] for i in keep)), array("q", (rss[i] for i in keep))
        interval *= 2
    if not ready:
        os.write(out, b"R")
        ready = True
    due = max(due + interval, time.perf_counter())
    if select.select([stop], [], [], max(0.0, due - time.perf_counter()))[0]:
        break
try:
    data = struct.pack("<dqd", interval, len(ts), time.process_time()) + ts.tobytes() + rss.tobytes()
    view = memoryview(data)
    while view:
        view = view[os.write(out, view):]
except OSError:
    pass
"""

_HEADER = struct.Struct("<dqd")
_START_TIMEOUT = 10.0  # seconds for the sampling process to start (a busy machine)
_STOP_TIMEOUT = 10.0  # seconds for its samples after the stop


@dataclass(frozen=True)
class OutsideSamples:
    """What the sampling process saw: times (``time.perf_counter``), RSS bytes, its last
    interval (it doubles when the samples are halved) and the CPU time it used."""

    t: tuple[float, ...]
    rss: tuple[int, ...]
    interval: float
    cpu_seconds: float


class OutsideSampler:
    """Samples this process's RSS every ``interval`` seconds from another process."""

    def __init__(self, interval: float, *, max_samples: int = 200_000) -> None:
        self.interval = interval
        self.max_samples = max(16, max_samples)
        self.note: str | None = None  # why it could not run, when it could not
        self.cpu_seconds = 0.0  # CPU time the sampling process used
        self._stop_w: int | None = None
        self._out_r: int | None = None

    def start(self) -> bool:
        """Start the sampling process and wait for its first sample; False (and :attr:`note`)
        where it cannot run."""
        if not hasattr(os, "fork") or not os.path.exists(f"/proc/{os.getpid()}/statm"):
            self.note = "no /proc on this system: RSS sampled by a thread of the script"
            return False
        try:
            stop_w, out_r, _pid = launch_detached(_LOOP, [str(os.getpid()), repr(self.interval), str(self.max_samples)],
                                                  stderr=subprocess.DEVNULL, flags=("-I", "-S"))
        except (OSError, subprocess.SubprocessError) as exc:
            self.note = f"the sampling process did not start ({exc}): RSS sampled by a thread of the script"
            return False
        self._stop_w, self._out_r = stop_w, out_r
        if _read(out_r, 1, time.monotonic() + _START_TIMEOUT) != b"R":
            self._close()
            self.note = "the sampling process did not report: RSS sampled by a thread of the script"
            return False
        return True

    def stop(self) -> OutsideSamples | None:
        """Stop the sampling process and return its samples (None when it sent none)."""
        if self._stop_w is None or self._out_r is None:
            return None
        out_r = self._out_r
        write_to_pipe(self._stop_w, b"q")  # False: it has already ended; its samples may still be there
        deadline = time.monotonic() + _STOP_TIMEOUT
        header = _read(out_r, _HEADER.size, deadline)
        samples = None
        if len(header) == _HEADER.size:
            interval, count, cpu = _HEADER.unpack(header)
            body = _read(out_r, count * 16, deadline)
            if len(body) == count * 16:
                t, rss = array("d"), array("q")
                t.frombytes(body[:count * 8])
                rss.frombytes(body[count * 8:])
                samples = OutsideSamples(t=tuple(t), rss=tuple(rss), interval=interval, cpu_seconds=cpu)
                self.cpu_seconds = cpu
        if samples is None:
            self.note = "the sampling process sent no samples: RSS sampled by a thread of the script"
        self._close()
        return samples

    def _close(self) -> None:
        for fd in (self._stop_w, self._out_r):
            if fd is not None:
                os.close(fd)
        self._stop_w = self._out_r = None


#: What a process launch_detached starts runs first: it is nobody's child (it forks, and its
#: launcher exits at once), so a script that waits for all its children (``os.wait()`` until
#: ``ChildProcessError``) never waits for it and ``--children`` never counts it; in a session of
#: its own, so Ctrl-C in the terminal does not reach it. It says its process id on its stdout. The
#: working directory (``python -c``'s first entry on sys.path) is dropped before anything is
#: imported: the user's modules there (a random.py) must not run in it.
_DETACH = ("import sys\n"
           "if sys.path[:1] == ['']:\n"
           "    del sys.path[0]\n"
           "import os, struct\n"
           "if os.fork():\n"
           "    os._exit(0)\n"
           "os.setsid()\n"
           "os.write(1, struct.pack('<q', os.getpid()))\n")
_PID = struct.Struct("<q")


def launch_detached(program: str, args: list[str], *, stderr: Any,
                    flags: tuple[str, ...] = ()) -> tuple[int, int, int | None]:
    """Run the Python ``program`` (``python FLAGS -c program ARGS``) detached, as :data:`_DETACH`
    says, with pipes for its stdin and stdout: returns (the write end of its stdin, the read end
    of its stdout, its process id, None if it did not say it within :data:`_START_TIMEOUT`).
    Raises OSError or SubprocessError when it cannot start (the launcher is stopped if it does
    not exit in time); interrupted, it leaves no pipe open."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        launcher = subprocess.Popen([sys.executable, *flags, "-c", _DETACH + program, *args],
                                    stdin=in_r, stdout=out_w, stderr=stderr, close_fds=True)
        try:
            launcher.wait(timeout=_START_TIMEOUT)  # it forks and exits at once
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait()
            raise
    except BaseException:
        os.close(in_w)
        os.close(out_r)
        raise
    finally:
        os.close(in_r)
        os.close(out_w)
    try:
        said = _read(out_r, _PID.size, time.monotonic() + _START_TIMEOUT)
    except BaseException:  # Ctrl-C meanwhile: it ends (its stdin closes)
        os.close(in_w)
        os.close(out_r)
        raise
    return in_w, out_r, _PID.unpack(said)[0] if len(said) == _PID.size else None


def write_to_pipe(fd: int, data: bytes) -> bool:
    """Write ``data`` to the pipe ``fd`` of a process leakhunt launched; False when that process
    has ended (the pipe's reader is gone). Never with SIGPIPE: the script may have set SIGPIPE
    back to its default action (``signal.signal(SIGPIPE, SIG_DFL)``, for ``| head``) or to a
    handler of its own, and leakhunt's write to an ended process must neither kill the run nor
    call the script's handler. SIGPIPE is blocked in this thread for the write, and the one it
    raised is taken before it is unblocked."""
    if not hasattr(signal, "pthread_sigmask"):
        try:
            os.write(fd, data)
        except OSError:
            return False
        return True
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE})
    pending = signal.SIGPIPE in signal.sigpending()
    try:
        os.write(fd, data)
        return True
    except OSError:
        return False
    finally:
        if not pending and signal.SIGPIPE in signal.sigpending():  # the write's own SIGPIPE
            if hasattr(signal, "sigtimedwait"):
                signal.sigtimedwait({signal.SIGPIPE}, 0)
            else:
                signal.sigwait({signal.SIGPIPE})
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _read(fd: int, size: int, deadline: float) -> bytes:
    """Up to ``size`` bytes from ``fd``, waiting until ``deadline`` (``time.monotonic``)."""
    chunks: list[bytes] = []
    got = 0
    while got < size:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, min(size - got, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
