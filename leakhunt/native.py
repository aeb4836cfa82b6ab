"""The peak, every allocation: memray as leakhunt's native allocation backend (extra ``native``).

tracemalloc sees Python objects and numpy buffers, and nothing that Arrow, polars, duckdb or
pandas' C code allocate; and leakhunt can only snapshot it *near* the peak. memray records every
allocation (native ones included, with native stacks) and knows the exact high-water mark. This
module records a block with memray (:class:`NativeRecorder`) and reads the capture once
(:mod:`leakhunt.native_capture`) into a :class:`NativePeak`: the allocations alive at the
high-water mark charged to the user's lines (native frames kept under them), the split by
library, what each line allocated over the run, what was alive at the end, and how much of the
resident memory above the start the sites account for.

Allocators that carve their own arenas out of big mappings hide their allocations from memray:
it sees the arena's mapping, not what is made in it. Arrow's default pool (mimalloc) reserves a
1 GiB arena, drawn by memray as one 1 GiB allocation at the line that first used Arrow; polars'
jemalloc keeps freed extents mapped. So, while recording, and only when the library is not yet
loaded and the setting is yours to leave alone (:class:`AllocatorSwitch`): Arrow's default pool
is the system allocator (``ARROW_DEFAULT_MEMORY_POOL=system``) and polars' jemalloc hands freed
extents back at once (``_RJEM_MALLOC_CONF``). The report says so. A reservation memray still sees
is shown as one, never as live memory.

Needs ``pip install "leakhunt[native]"`` (memray, Linux or macOS); :func:`unavailable` says why
not, and callers fall back to tracemalloc and say so.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import shutil
import signal
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Iterable, Iterator, Sequence

from leakhunt import frames as _frames
from leakhunt.allocators import MallocTicker
from leakhunt.defaults import EXPLANATION_SITES
from leakhunt.tracing import Stack
from leakhunt.units import format_size

__all__ = [
    "EXTRA",
    "NativePeak",
    "NativePeakSource",
    "NativeRecorder",
    "NativeSite",
    "NativeUnavailable",
    "CaptureRead",
    "LineTotal",
    "Reservation",
    "AllocatorSwitch",
    "LineTicks",
    "unavailable",
]

#: What to install for this backend.
EXTRA = 'pip install "leakhunt[native]"'
#: Seconds between two line ticks (and memray's own RSS records).
TICK = 0.01
#: Bytes of a tick's marker allocation (an unusual size: the capture is searched for it).
MARKER = 4093
#: memray's allocator kinds that map memory (the rest are malloc-level).
_MMAP = 14
#: pymalloc's arenas (1 MiB since CPython 3.10): mapped for Python objects.
_ARENA = 1 << 20
#: Python frames read per stack: all of them.
_ALL_FRAMES = 10_000
#: Stacks read ahead that are read again to check they are the capture's (_Reader._trusted).
_CHECKED = 16
#: Stacks of the flame graph (the biggest at the peak).
_STACKS = 300
#: The library of native code whose frames were not resolved (within the time allowed).
UNRESOLVED = "C code (not resolved)"


class NativeUnavailable(RuntimeError):
    """The native backend cannot record here; the message says why and what to do."""


def unavailable() -> str | None:
    """Why the native backend cannot run in this process, or None when it can."""
    if not sys.platform.startswith(("linux", "darwin")):
        return f"memray runs on Linux and macOS only (this is {sys.platform})"
    try:
        import memray  # noqa: F401
    except ImportError as exc:
        return f"memray is not installed ({EXTRA}): {exc}"
    return None


# --------------------------------------------------------------------------------------
# what the backend finds


@dataclass(frozen=True)
class NativeSite:
    """The memory a line of the user's code caused, alive at the peak (or at the end).

    ``size`` counts native allocations too: an Arrow buffer made inside ``pa.Table.from_pandas``
    and a polars column built by polars' worker threads are charged to the line that called them
    (``threads``: the part made by threads without a Python stack while this line ran).
    ``libraries`` splits ``size`` by the library that allocated it. ``via`` is the innermost
    frame of the biggest allocation, when it is not the line itself.
    """

    file: str
    line: int
    code: str
    size: int
    count: int
    libraries: tuple[tuple[str, int], ...] = ()
    threads: int = 0
    via: str = ""
    imports: bool = False  # the memory was allocated while importing a module
    native: tuple[str, ...] = ()  # native functions of its biggest allocation, innermost first

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line > 0 else self.file

    @property
    def library(self) -> str:
        return self.libraries[0][0] if self.libraries else ""

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["libraries"] = [list(pair) for pair in self.libraries]
        out["native"] = list(self.native)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NativeSite:
        kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        kwargs["libraries"] = tuple((str(name), int(size)) for name, size in data.get("libraries", ()))
        kwargs["native"] = tuple(str(name) for name in data.get("native", ()))
        return cls(**kwargs)


@dataclass(frozen=True)
class LineTotal:
    """Bytes a line allocated over the whole run (freed or not), against what it held.

    ``held`` bounds from above the most the line's allocations held at once: the sum, over the
    distinct stacks it allocated from, of the most each held at once.
    """

    file: str
    line: int
    code: str
    allocated: int
    count: int
    at_peak: int
    at_end: int
    held: int = 0

    @property
    def churn(self) -> float:
        """Allocated over the run per byte it held at most at once: a loop that copies what it
        keeps on every pass allocates many times what it holds."""
        return self.allocated / max(self.held, self.at_peak, self.at_end, 1)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LineTotal:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class Reservation:
    """Address space an allocator mapped for itself (an arena): not memory until touched."""

    size: int
    allocator: str  # "mimalloc (Arrow's pool)", ...
    where: str  # the user's line that made it map the arena

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "allocator": self.allocator, "where": self.where}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reservation:
        return cls(size=int(data["size"]), allocator=str(data["allocator"]), where=str(data["where"]))


@dataclass(frozen=True)
class NativePeak:
    """The allocations alive at the high-water mark of a recorded block, and what they explain.

    ``heap`` is the bytes alive then as memray counts them (reservations included); ``explained``
    the part charged to lines (reservations and leakhunt's own memory left out). ``anon_above_start``
    is the resident anonymous memory at that moment above the start of the recording: the memory
    the sites are shares of (``coverage``).
    """

    time: float | None  # seconds after the start when the heap peaked
    heap: int
    explained: int
    anon_above_start: int | None
    rss: int | None  # resident memory then (the nearest tick's reading)
    sites: tuple[NativeSite, ...]
    libraries: tuple[tuple[str, int], ...]  # bytes at the peak by library, biggest first
    stacks: tuple[Stack, ...] = ()  # the flame graph: Python frames, native frames as "<native>"
    totals: tuple[LineTotal, ...] = ()  # bytes allocated per line over the run, biggest first
    at_end: tuple[NativeSite, ...] = ()  # alive when the recording stopped, by line
    reservations: tuple[Reservation, ...] = ()
    allocations: int = 0  # allocation records read
    native_traces: bool = True
    capture: str | None = None  # the kept capture file (--keep-capture)
    notes: tuple[str, ...] = ()
    seconds: float = 0.0  # reading the capture
    cpu_seconds: float = 0.0  # reading the capture: CPU time of the reading thread
    phases: tuple[tuple[str, float], ...] = ()  # (what, seconds) of reading the capture
    # CPU time the second process spent before it was handed the capture, while the script ran:
    # loading memray and the reader, and memray's symbols of the libraries loaded (_Warmer)
    ahead_cpu_seconds: float = 0.0
    ahead_passes: int = 0  # of those, the passes over the capture written so far (_Warmer)
    ahead_stacks: int = 0  # Python stacks those passes read that the reading used (_Reader._trusted)
    exact: bool = True  # explained at memray's own high-water mark
    malloc_kept: int | None = None  # freed memory malloc held resident in its arenas then (glibc), above the start

    @property
    def coverage(self) -> float | None:
        if not self.anon_above_start or self.anon_above_start <= 0:
            return None
        return self.explained / self.anon_above_start

    @property
    def accounted(self) -> float | None:
        """Every byte at the peak in a named place: the sites, and the freed memory malloc's
        arenas held resident then (:class:`leakhunt.allocators.MallocTicker`), over the
        resident anonymous memory above the start (1.0 at most)."""
        share = self.coverage
        if share is None:
            return None
        return min(1.0, share + (self.malloc_kept or 0) / self.anon_above_start)

    def coverage_text(self) -> str:
        """"94% of the 310.2 MiB of resident anonymous memory above the start"."""
        share = self.coverage
        if share is None:
            return "no resident anonymous memory above the start to explain"
        above = format_size(self.anon_above_start)
        text = f"{share:.0%} of the {above} of resident anonymous memory above the start"
        if share > 1.05:
            text += " (more than 100%: some allocations were never touched, so never resident)"
        elif self.malloc_kept and self.anon_above_start and share < 0.99:
            text += (f"; malloc's arenas held {format_size(self.malloc_kept)} of freed memory resident then "
                     f"({self.malloc_kept / self.anon_above_start:.0%}, allocator retention): "
                     f"{self.accounted:.0%} named")
        return text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("sites", "at_end", "totals", "reservations"):
                value = [item.to_dict() for item in value]
            elif f.name == "libraries":
                value = [list(pair) for pair in value]
            elif f.name == "stacks":
                value = _stacks_to_dict(value)
            elif f.name == "notes":
                value = list(value)
            elif f.name == "phases":
                value = [list(pair) for pair in value]
            out[f.name] = value
        out["coverage"] = self.coverage
        out["accounted"] = self.accounted
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NativePeak:
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["sites"] = tuple(NativeSite.from_dict(s) for s in data.get("sites", ()))
        kwargs["at_end"] = tuple(NativeSite.from_dict(s) for s in data.get("at_end", ()))
        kwargs["totals"] = tuple(LineTotal.from_dict(t) for t in data.get("totals", ()))
        kwargs["reservations"] = tuple(Reservation.from_dict(r) for r in data.get("reservations", ()))
        kwargs["libraries"] = tuple((str(n), int(s)) for n, s in data.get("libraries", ()))
        kwargs["stacks"] = _stacks_from_dict(data.get("stacks") or {})
        kwargs["notes"] = tuple(data.get("notes", ()))
        kwargs["phases"] = tuple((str(name), float(sec)) for name, sec in data.get("phases", ()))
        return cls(**kwargs)


def _stacks_to_dict(stacks: Sequence[Stack]) -> dict[str, Any]:
    index: dict[tuple[str, int, str], int] = {}
    for stack in stacks:
        for frame in stack.frames:
            index.setdefault(frame, len(index))
    return {"frames": [list(frame) for frame in index],
            "stacks": [[[index[frame] for frame in s.frames], s.size, s.count] for s in stacks]}


def _stacks_from_dict(table: dict[str, Any]) -> tuple[Stack, ...]:
    try:
        frames = [(str(f), int(line), str(code)) for f, line, code in table.get("frames", ())]
        return tuple(Stack(frames=tuple(frames[i] for i in ids), size=int(size), count=int(count))
                     for ids, size, count in table.get("stacks", ()))
    except (IndexError, ValueError, TypeError) as exc:
        raise ValueError(f"native.stacks is malformed ({exc})") from None


# --------------------------------------------------------------------------------------
# the allocators


@dataclass
class AllocatorSwitch:
    """Make Arrow's and polars' allocations visible to memray while recording; undo after.

    Each switch is made only where it takes effect and is leakhunt's to make: the library not
    yet imported (the setting is read when it loads, and the pool then stays the one Arrow's
    figures read for the whole run) and the variable not set by the user. ``notes`` says what
    was changed and what could not be.
    """

    environ: Any = field(default_factory=lambda: os.environ)
    notes: list[str] = field(default_factory=list)
    _saved: dict[str, str | None] = field(default_factory=dict)

    ARROW = "ARROW_DEFAULT_MEMORY_POOL"
    JEMALLOC = "_RJEM_MALLOC_CONF"
    #: polars' jemalloc: unmap freed extents at once, so what is mapped is what is alive
    JEMALLOC_CONF = "retain:false,dirty_decay_ms:0,muzzy_decay_ms:0"

    def apply(self) -> AllocatorSwitch:
        self._arrow()
        self._polars()
        return self

    def _set(self, name: str, value: str) -> None:
        self._saved[name] = self.environ.get(name)
        self.environ[name] = value

    def _arrow(self) -> None:
        given = self.environ.get(self.ARROW)
        if "pyarrow" in sys.modules:
            self._arrow_loaded()
        elif given and given.lower() != "system":
            self.notes.append(f"Arrow's pool is {given} ({self.ARROW} is yours): memray sees its arenas, "
                              "not the buffers made in them")
        else:
            if not given:
                self._set(self.ARROW, "system")
            self.notes.append("Arrow's default pool was the system allocator while recording "
                              f"({self.ARROW}=system), so memray sees every Arrow buffer at its line "
                              "(mimalloc, its default, hides them in one 1 GiB reservation)")

    def _arrow_loaded(self) -> None:
        """pyarrow is loaded already (a pytest session): its pool stays as it is. Switching it for
        the block would move the block's Arrow memory out of the pool that Arrow's figure (and an
        ``arrow=`` budget) reads."""
        import pyarrow as pa

        backend = pa.default_memory_pool().backend_name
        if backend != "system":
            self.notes.append(f"Arrow's pool is {backend} (pyarrow was loaded before the recording): memray sees "
                              "its arenas, not the buffers made in them; ARROW_DEFAULT_MEMORY_POOL=system in the "
                              "environment shows each buffer at its line")

    @staticmethod
    def _loaded(note: str) -> bool:
        library = "polars" if note.startswith("polars") else "pyarrow"
        return library in sys.modules

    def _polars(self) -> None:
        if "polars" in sys.modules:
            self.notes.append("polars was loaded before the recording: its allocator (jemalloc) keeps freed "
                              "memory mapped, so polars memory freed before the peak may show as alive")
        elif self.JEMALLOC not in self.environ:
            self._set(self.JEMALLOC, self.JEMALLOC_CONF)
            self.notes.append(f"polars' jemalloc handed freed memory back at once while recording "
                              f"({self.JEMALLOC}={self.JEMALLOC_CONF})")

    def restore(self) -> None:
        """Put the settings back; keep only the notes of libraries the block loaded."""
        self.notes = [note for note in self.notes if self._loaded(note)]
        if self._saved.get(self.JEMALLOC, "") is None and "polars" in sys.modules:
            from leakhunt.settle import polars_started_with

            polars_started_with(self.environ[self.JEMALLOC])  # polars loaded with it: purges at once
        for name, value in self._saved.items():
            if value is None:
                self.environ.pop(name, None)
            else:
                self.environ[name] = value
        self._saved.clear()


# --------------------------------------------------------------------------------------
# the line ticks


Frames = tuple[tuple[str, str, int], ...]  # (function, file, line), newest first: memray's order
Known = tuple[Frames, Any]  # a Python stack read ahead: its frames and its _Origin (_describe)


class LineTicks(threading.Thread):
    """Every tick: the stack the target's thread is on, the resident and anonymous memory, then a
    marker allocation (``bytearray(MARKER)``) that places the tick in memray's capture.

    Worker threads of Arrow, polars and numpy have no Python stack; the tick before their
    allocation says which line of the target they worked for (:mod:`leakhunt.native_capture`).
    """

    def __init__(self, target: int, interval: float = TICK) -> None:
        super().__init__(name="leakhunt-native-lines", daemon=True)
        self.target = target
        self.interval = interval
        self.samples: list[tuple[float, int | None, int | None, int]] = []  # (t, rss, anon, stack)
        self.kept: list[int | None] = []  # per tick: freed memory malloc keeps resident (glibc), or None
        self._malloc = MallocTicker()
        self._anon_max = 0  # the most anonymous memory a tick saw
        self._next_read = 0.0  # the time from which malloc's free memory may be read again
        self.stacks: list[Frames] = []
        self._index: dict[Frames, int] = {}
        self._halt = threading.Event()
        self.t0 = time.perf_counter()
        self.start_rss, self.start_anon = _memory()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self._tick()

    def _tick(self) -> None:
        frame = sys._current_frames().get(self.target)
        stack: list[tuple[str, int, str]] = []
        while frame is not None and len(stack) < 200:
            code = frame.f_code
            stack.append((code.co_name, code.co_filename, frame.f_lineno or 0))
            frame = frame.f_back
        key = tuple(stack)
        found = self._index.get(key)
        if found is None:
            found = self._index[key] = len(self.stacks)
            self.stacks.append(key)
        rss, anon = _memory()
        now = time.perf_counter()
        self.samples.append((now - self.t0, rss, anon, found))
        self.kept.append(self._malloc_kept(now, anon))
        marker = bytearray(MARKER)  # the tick's place in the capture (see native_capture.scan)
        del marker

    def _malloc_kept(self, now: float, anon: int | None) -> int | None:
        """Freed memory malloc keeps resident, read at the ticks that may be the peak's: resident
        memory near the most seen so far. A reading costs what malloc's heaps hold (mallinfo
        walks the free chunks; mincore the pages): in a heap of millions of objects a reading
        took tens of milliseconds, a tick ten. So the next reading waits twenty times as long as
        the last took, whatever the ticks (at most a twentieth of the time, a core's and the
        arenas' locks), but never longer than the peak looks for one (:data:`_KEPT_TICKS`)."""
        if anon is not None:
            if anon < self._anon_max * _NEAR_MAX:
                return None
            self._anon_max = max(self._anon_max, anon)
        if now < self._next_read:
            return None
        kept = self._malloc.read()
        # never longer than the reach of the peak's look for a reading (Reader._kept): a costly
        # reading is then taken more often than a twentieth of the time, but the peak has one
        wait = min(_READ_SHARE * (time.perf_counter() - now), 0.9 * _KEPT_TICKS * self.interval)
        self._next_read = time.perf_counter() + wait
        return kept

    def stop(self) -> None:
        """Stop ticking, with one last tick: a peak after the last tick still has one after it."""
        self._halt.set()
        if self.is_alive():
            self.join()
        self._tick()


#: How far from the peak's tick a reading of malloc's free memory may be (ticks of TICK seconds).
_KEPT_TICKS = 20
#: A tick reads malloc's free memory when its resident memory is this share of the most seen.
_NEAR_MAX = 0.98
#: ... and no sooner after the last reading than this many times the time that reading took.
_READ_SHARE = 20


def _memory() -> tuple[int | None, int | None]:
    from leakhunt.probes import _rss_and_anon

    return _rss_and_anon()


#: The first bytes of an lz4-compressed capture (memray compresses at exit when asked; leakhunt does not).
_LZ4_MAGIC = b"\x04\x22\x4d\x18"


def capture_end(path: str) -> int:
    """Where a capture's records end: after its last byte that is not zero.

    memray's writer grows the capture ahead of what it writes (by a tenth of its size at a time)
    and leaves the rest zero-filled; its reader then finds the records' end by stepping back from
    the file's end one byte at a time, two system calls per zero byte (``FileSource::
    findReadableSize``), on a capture left uncompressed: a tenth of a second or more on a capture
    of a few MiB, seconds on a large one (``benchmarks/capture_zeros.py`` measures it)."""
    block = 1 << 16
    with open(path, "rb") as f:
        pos = f.seek(0, os.SEEK_END)
        while pos > 0:
            start = max(0, pos - block)
            f.seek(start)
            kept = f.read(pos - start).rstrip(b"\0")
            if kept:
                return start + len(kept)
            pos = start
    return 0


def trim_capture(path: str) -> int:
    """Cut the zero bytes past a finished capture's records (:func:`capture_end`), which memray's
    reader ignores anyway, one byte at a time: the capture reads the same, faster, here and in
    memray's own reporters. Returns the bytes cut; a capture it cannot trim is left as it is."""
    try:
        with open(path, "rb") as f:
            if f.read(len(_LZ4_MAGIC)) == _LZ4_MAGIC:
                return 0  # compressed: memray's reader does not step back over it
        size = os.path.getsize(path)
        end = capture_end(path)
        if 0 < end < size:
            os.truncate(path, end)
            return size - end
    except OSError:
        pass
    return 0


def _is_marker(record: Any) -> bool:
    try:
        top = record.stack_trace(1)
    except Exception:  # noqa: BLE001
        return False
    return bool(top) and top[0][0] == "_tick" and os.path.basename(top[0][1]) == os.path.basename(__file__)


# --------------------------------------------------------------------------------------
# recording


class NativeRecorder:
    """memray's Tracker around a block, with the allocator switch and the line ticks.

    ``start()`` raises :class:`NativeUnavailable` (memray missing, unsupported platform, another
    Tracker active: pytest-memray, ``memray run``) before anything of the block ran. ``keep``:
    the capture file's path (kept for memray's own reporters); otherwise a temporary file,
    deleted by :meth:`close`.
    """

    def __init__(self, *, native_traces: bool = True, keep: str | None = None, switch_allocators: bool = True,
                 interval: float = TICK) -> None:
        self.native_traces = native_traces
        self.keep = keep
        self.switch_allocators = switch_allocators
        self.interval = interval
        self.path: str | None = None
        self.switch: AllocatorSwitch | None = None
        self.ticks: LineTicks | None = None
        self.seconds = 0.0
        self._tracker: Any = None
        self._tmpdir: str | None = None
        self._t0 = 0.0

    def start(self) -> NativeRecorder:
        reason = unavailable()
        if reason is not None:
            raise NativeUnavailable(reason)
        import memray

        self.path = self._capture_path()
        self.switch = AllocatorSwitch().apply() if self.switch_allocators else AllocatorSwitch()
        destination = memray.FileDestination(self.path, overwrite=True, compress_on_exit=False)
        tracker = memray.Tracker(destination=destination, native_traces=self.native_traces,
                                 follow_fork=False, trace_python_allocators=False,
                                 file_format=memray.FileFormat.ALL_ALLOCATIONS,
                                 memory_interval_ms=max(1, int(self.interval * 1000)))
        try:
            tracker.__enter__()
        except RuntimeError as exc:  # "No more than one Tracker instance can be active at the same time"
            self.switch.restore()
            self.close()
            raise NativeUnavailable(f"another memray tracker is already active in this process "
                                    f"(pytest-memray, or memray run?): {exc}") from None
        self._tracker = tracker
        self._t0 = time.perf_counter()
        self.ticks = LineTicks(threading.get_ident(), self.interval)
        self.ticks.start()
        return self

    def _capture_path(self) -> str:
        if self.keep:
            return os.path.abspath(self.keep)
        self._tmpdir = tempfile.mkdtemp(prefix="leakhunt-native-")
        return os.path.join(self._tmpdir, "capture.bin")

    def stop(self) -> None:
        """Stop recording (idempotent); the allocator settings are put back."""
        if self.ticks is not None:
            self.ticks.stop()
        if self._tracker is not None:
            tracker, self._tracker = self._tracker, None
            tracker.__exit__(None, None, None)
            self.seconds = time.perf_counter() - self._t0
            if self.path is not None:
                trim_capture(self.path)
        if self.switch is not None:
            self.switch.restore()

    def analyse(self, *, top: int = 10, status: Callable[[str], None] | None = None,
                native_budget: float | None = None, peak_rss: int | None = None) -> NativePeak:
        """Read the capture into a :class:`NativePeak` (the recording must be stopped).

        ``native_budget``: seconds to spend resolving native frames (default: a twentieth of the
        recorded time, at least 0.2 s): a library's symbols take ~0.2 s to load the first time,
        so a short run gets the frames of one or two libraries. ``peak_rss``: the exact peak of resident memory
        (the kernel's high-water mark) over the recording, when the caller read it: the
        anonymous memory at the peak is then at least that minus the file-backed pages.
        """
        assert self.path is not None and self.ticks is not None
        reader = _Reader(self.path, self.ticks, top=top, status=status, native_budget=self._budget(native_budget),
                         native_traces=self.native_traces, peak_rss=peak_rss)
        return self._finished(reader.read())

    def reader_ahead(self) -> CaptureRead:
        """The second process that will read the capture (:class:`CaptureRead`), launched now:
        it loads meanwhile and waits for :meth:`analyse_elsewhere`."""
        return CaptureRead(self).launch()

    def analyse_elsewhere(self, *, top: int = 10, native_budget: float | None = None,
                          peak_rss: int | None = None, reading: CaptureRead | None = None) -> CaptureRead:
        """Read the capture in a second process (:class:`CaptureRead`: ``reading``, launched by
        :meth:`reader_ahead`, or one launched now), the arguments as for :meth:`analyse`; its
        ``result()`` is the same :class:`NativePeak`."""
        assert self.path is not None and self.ticks is not None
        reading = reading if reading is not None else CaptureRead(self).launch()
        return reading.start(top=top, native_budget=self._budget(native_budget), peak_rss=peak_rss)

    def _budget(self, native_budget: float | None) -> float:
        return native_budget if native_budget is not None else max(0.2, 0.05 * self.seconds)

    def _finished(self, peak: NativePeak) -> NativePeak:
        notes = tuple(self.switch.notes if self.switch is not None else ()) + peak.notes
        return replace(peak, notes=notes, capture=self.path if self.keep else None)

    def close(self) -> None:
        """Delete the temporary capture (a kept one stays)."""
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> NativeRecorder:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


#: The second process's program (:class:`CaptureRead`), run detached
#: (:func:`leakhunt.outside.launch_detached`: nobody's child, in a session of its own): leakhunt's
#: own directory first, so the same leakhunt reads the capture whatever the working directory holds.
_READ_ELSEWHERE = ("import sys; sys.path.insert(0, sys.argv[1]); from leakhunt.native import read_in_child; "
                   "read_in_child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])")
#: The directory leakhunt is imported from, made absolute when this module loads (before the
#: target may change the working directory).
_LEAKHUNT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Seconds between two looks at the second process while waiting for it.
_POLL = 0.05
#: Seconds the second process may go without CPU time, once handed the capture, before it is
#: given up as stuck and the capture is read in the run's own process.
_STALL = 60.0


class CaptureRead:
    """memray's capture read into a :class:`NativePeak` by a second Python process, while this
    one goes on with what does not need it: ``leakhunt run`` waits for polars' timed purge and
    looks for what keeps memory alive at the script's end meanwhile, on the machine's other core.
    The second process's memory is its own, so this process's readings are not moved by it.

    :meth:`launch` starts that process, which loads Python, memray and leakhunt's reader and
    then waits: ``leakhunt run`` launches it before the script runs (a third of a second less
    after it). :meth:`start` hands it the capture once the recording has stopped; :meth:`result`
    waits for it, passing its progress to ``status``. When it cannot start, fails or is stuck,
    the capture is read here instead and the peak says why, so nothing recorded is lost. Unused
    (:meth:`close`, or this process ending), it ends and deletes what it was given.
    """

    def __init__(self, recorder: NativeRecorder) -> None:
        self.recorder = recorder
        self.failed: str | None = None
        self.pid: int | None = None
        self._args: dict[str, Any] = {}
        self._dir: str | None = None
        self._go: int | None = None  # the write end of its stdin: b"g" hands it the capture
        self._out: int | None = None  # the read end of its stdout: its pid, then end of file when it ends
        self._sent = False
        self._ended = False
        self._peak: NativePeak | None = None

    def launch(self) -> CaptureRead:
        """Start the second process; it waits for :meth:`start`."""
        import subprocess

        from leakhunt.outside import launch_detached

        self._dir = tempfile.mkdtemp(prefix="leakhunt-read-")
        try:
            with open(os.path.join(self._dir, "stderr.txt"), "wb") as err:
                self._go, self._out, self.pid = launch_detached(
                    _READ_ELSEWHERE, [_LEAKHUNT_ROOT, self._dir, str(os.getpid()), self.recorder.path or "",
                                      self.recorder._tmpdir or ""], stderr=err)
        except (OSError, subprocess.SubprocessError) as exc:
            self.failed = f"a second process could not start ({exc})"
        except BaseException:  # Ctrl-C meanwhile: it ends (its stdin closes) and leaves nothing
            self._cleanup()
            raise
        return self

    def start(self, *, top: int, native_budget: float, peak_rss: int | None) -> CaptureRead:
        """Hand the capture to the second process (the recording has stopped); the arguments as
        for :meth:`NativeRecorder.analyse`."""
        import pickle

        from leakhunt.outside import write_to_pipe

        self._args = {"top": top, "native_budget": native_budget, "peak_rss": peak_rss}
        if self._go is None or self._dir is None:
            return self
        ticks = self.recorder.ticks
        assert ticks is not None
        spec = {"path": self.recorder.path, "native_traces": self.recorder.native_traces, **self._args,
                "ticks": {"samples": ticks.samples, "kept": ticks.kept, "stacks": ticks.stacks,
                          "start_rss": ticks.start_rss, "start_anon": ticks.start_anon}}
        try:
            with open(os.path.join(self._dir, "spec.pickle"), "wb") as f:
                pickle.dump(spec, f, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError:  # no spec (a full disk): it is not handed the capture, and ends at once
            os.close(self._go)
            self._go = None
        else:
            write_to_pipe(self._go, b"g")  # False: it has ended already; waiting for it says so
        self._sent = True
        return self

    def result(self, status: Callable[[str], None] | None = None) -> NativePeak:
        """The peak, read (waiting for the second process, or reading here if it failed)."""
        if self._peak is None:
            try:
                self._peak = self._wait(status)
            finally:
                self._cleanup()
        return self._peak

    def _wait(self, status: Callable[[str], None] | None) -> NativePeak:
        import pickle

        if self._sent and self._dir is not None:
            said = ""
            progress = _Progress(self.pid) if self.pid is not None else None
            while not self._ended:
                said = self._forward(status, said)
                self._ended = _ended(self._out, _POLL)
                if not self._ended and progress is not None and progress.stalled():
                    self._kill()
                    self.failed = (f"the second process reading it used no CPU time for {_STALL:g} s "
                                   "(stuck; stopped)")
                    break
            out = os.path.join(self._dir, "peak.pickle")
            if self.failed is None and os.path.exists(out):
                with open(out, "rb") as f:
                    return self.recorder._finished(pickle.load(f))
            if self.failed is None:
                self.failed = f"the second process reading it ended without a result{self._stderr()}"
        elif self.failed is None:
            self.failed = "the second process was never handed the capture"
        peak = self.recorder.analyse(status=status, **self._args)
        return replace(peak, notes=peak.notes + (f"memray's capture was read in this process: {self.failed}",))

    def _kill(self) -> None:
        """Stop the second process: once, and only while its stdout is still open, so its id is
        still its own (an ended one's may be another process's by now: never signalled again)."""
        if self.pid is not None and not self._ended and not _ended(self._out, 0):
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
        self._ended = True

    def _forward(self, status: Callable[[str], None] | None, said: str) -> str:
        assert self._dir is not None
        try:
            with open(os.path.join(self._dir, "status.txt"), encoding="utf-8") as f:
                text = f.read().strip()
        except OSError:
            return said
        if status is not None and text and text != said:
            try:
                status(text)
            except Exception:  # noqa: BLE001 - a status line never breaks the reading
                pass
        return text

    def _stderr(self) -> str:
        assert self._dir is not None
        try:
            with open(os.path.join(self._dir, "stderr.txt"), encoding="utf-8", errors="replace") as f:
                lines = f.read().strip().splitlines()
        except OSError:
            return ""
        return f": {lines[-1]}" if lines else ""

    def close(self) -> None:
        """Stop the second process if it still runs, and delete what it was given."""
        self._cleanup()

    def _cleanup(self) -> None:
        if self._go is not None:  # one still waiting ends: its stdin is closed
            os.close(self._go)
            self._go = None
        if self._sent and not self._ended:  # one still reading is stopped
            self._kill()
        if self._out is not None:
            os.close(self._out)
            self._out = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _ended(fd: int | None, timeout: float) -> bool:
    """Has the process writing to pipe ``fd`` ended (end of file; what it writes is dropped)?
    Waits up to ``timeout`` seconds."""
    if fd is None:
        return True
    try:
        if select.select([fd], [], [], timeout)[0]:
            return not os.read(fd, 65536)
    except OSError:
        return True
    return False


class _Progress:
    """Is a process reading memray's capture still at work? Reading is all CPU; a process that
    used none for :data:`_STALL` seconds is stuck (a reader waiting on something that will
    not come), and the run must not wait for it for ever."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu: float | None = None
        self.since = time.monotonic()

    def stalled(self) -> bool:
        cpu = _cpu_seconds(self.pid)
        now = time.monotonic()
        if cpu is None or cpu != self.cpu:
            self.cpu, self.since = cpu, now
            return False
        return now - self.since > _STALL


def _cpu_seconds(pid: int) -> float | None:
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except Exception:  # noqa: BLE001 - unknown: never taken for a stall
        return None


def read_in_child(directory: str, parent: int, capture: str = "", temporary: str = "") -> None:
    """The second process of :class:`CaptureRead` (launched by ``parent``): load what reading
    needs, wait to be handed the capture (meanwhile reading the capture written so far: the
    symbols of the libraries the run loads and its Python stacks, :class:`_Warmer`), read it, write the peak, and keep the last status line in a file the
    first process looks at. Never handed it (``parent`` closed its stdin or is gone), delete what
    it was given and end (:func:`_forsaken`; ``temporary``: the run's temporary capture
    directory, "" for a kept capture)."""
    import pickle
    from types import SimpleNamespace

    import memray  # noqa: F401 - loaded while the script runs, not after it

    from leakhunt import native_capture  # noqa: F401 - the same

    warmer = _Warmer(capture, parent, os.path.join(directory, "warm.bin")).start() if capture else None
    try:
        handed = _handed(parent)
    finally:
        if warmer is not None:
            warmer.stop()  # a pass under way stops first
    if not handed:
        _forsaken(directory, parent, temporary)
        return
    ahead = time.process_time()
    _end_with_parent(directory, parent, temporary)
    with open(os.path.join(directory, "spec.pickle"), "rb") as f:
        spec = pickle.load(f)

    def status(text: str) -> None:
        path = os.path.join(directory, "status.txt")
        with open(path + ".tmp", "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(path + ".tmp", path)

    reader = _Reader(spec["path"], SimpleNamespace(**spec["ticks"]), top=spec["top"], status=status,  # type: ignore[arg-type]
                     native_budget=spec["native_budget"], native_traces=spec["native_traces"],
                     peak_rss=spec["peak_rss"], known=warmer.stacks if warmer is not None else None)
    peak = replace(reader.read(), ahead_cpu_seconds=round(ahead, 3), ahead_passes=warmer.passes if warmer else 0)
    target = os.path.join(directory, "peak.pickle")
    with open(target + ".tmp", "wb") as f:
        pickle.dump(peak, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(target + ".tmp", target)
    sys.stderr.flush()
    os._exit(0)  # the result is written: its end is what the run waits for, not the heap's teardown


def _handed(parent: int) -> bool:
    """In the second process: wait for ``parent`` to hand over the capture (``b"g"``); False when
    its end of the pipe closes or it is gone."""
    return _next_byte(parent) == b"g"


def _next_byte(parent: int) -> bytes:
    """In the second process: the next byte ``parent`` writes on stdin; ``b""`` once it has
    closed its end or is gone."""
    while _alive(parent):
        if select.select([0], [], [], _POLL * 4)[0]:
            return os.read(0, 1)
    return b""


#: The capture's size past which :class:`_Warmer` no longer reads it: each pass reads it all.
_WARM_MAX_BYTES = 4 << 20
#: Passes of :class:`_Warmer` at most, and the seconds between its first two looks at the run's
#: libraries (doubled after each pass: each reads the capture from its start).
_WARM_MAX_PASSES = 8
_WARM_EVERY = 0.25
#: Records of a pass between two looks at whether the capture was handed over meanwhile.
_WARM_CHECK = 2048


class _Warmer:
    """Reads, in the waiting reader, the capture written so far: the symbols of the libraries
    the run has loaded, and the Python stacks of its allocations.

    memray loads a library's symbols (its ELF symbol table and DWARF line tables) the first time
    a reading process meets the library's segment records in a capture, and keeps them for the
    process's life, keyed by the library's file and load address: about 0.3 s of CPU after an
    import-heavy script, paid after the script when the reader starts reading. When the run has
    mapped new libraries (``/proc/PID/maps``), :data:`_WARM_EVERY` seconds after the previous pass
    and then twice as long each time, the waiting reader reads every record written so far,
    which loads them then, while the script runs, and keeps the frames of each Python stack it
    has not seen (:attr:`stacks`; thousands, most of them the imports'): the final reading finds
    the symbols loaded and uses those stacks once it has checked they are the capture's
    (:meth:`_Reader._trusted`). The passes run in a thread of their own at the lowest priority
    (``nice`` 19, that thread only), so that they take a core the script leaves idle and not one
    it uses; the reading itself runs at the usual priority.

    The capture is still being written (memray grows its file ahead and fills it): a pass reads a
    copy of what is written so far, without the zeros ahead of it (which memray's reader would
    step back over one byte at a time, :func:`capture_end`). Its end is a half-written record:
    memray's reader stops there with an error, which is expected and silenced; the records before
    it are whole, and so are their stacks. Passes stop once the capture is past
    :data:`_WARM_MAX_BYTES` or after :data:`_WARM_MAX_PASSES`: what comes after is read by the
    final reading, as without it."""

    def __init__(self, capture: str, pid: int, scratch: str) -> None:
        self.capture = capture
        self.pid = pid
        self.scratch = scratch  # where a pass copies the capture's records so far
        self.passes = 0
        self.done = False
        self.records = 0  # allocation records read, summed over passes
        self.stacks: dict[int, Known] = {}  # memray's Python stack id -> its frames, where from (_Reader._trusted)
        self._warmed: frozenset[bytes] = frozenset()
        self._next = 0.0
        self._every = _WARM_EVERY
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> _Warmer:
        self._thread = threading.Thread(target=self._loop, name="leakhunt-warm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """No more passes; wait for one under way to stop (:meth:`_read`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # Linux: this thread only
        except (AttributeError, OSError):
            pass
        while not self._stop.wait(_POLL * 4):
            self()

    def __call__(self) -> None:
        """A look at the run's libraries, and a pass when it has mapped new ones."""
        if self.done or time.monotonic() < self._next:
            return
        libraries = _libraries(self.pid)  # a look at most every _every seconds (polars maps thousands)
        if libraries is not None and not libraries <= self._warmed:
            self._warmed = libraries
            self.warm()
            self._every *= 2
        self._next = time.monotonic() + self._every

    def warm(self) -> None:
        """One pass over the capture as written so far."""
        import logging

        import memray

        try:
            if os.path.getsize(self.capture) > _WARM_MAX_BYTES:
                self.done = True
                return
            with open(self.capture, "rb") as f:  # what is written so far, without the zeros ahead
                written = f.read(_WARM_MAX_BYTES).rstrip(b"\0")  # of it (see capture_end)
            with open(self.scratch, "wb") as out:
                out.write(written)
        except OSError:
            return
        memray.set_log_level(logging.CRITICAL + 1)  # the half-written end is expected
        try:
            with memray.FileReader(self.scratch, max_memory_records=1) as reader:
                self._read(reader)
        except Exception:  # noqa: BLE001 - a capture read before its end may fail anywhere
            pass
        finally:
            memray.set_log_level(logging.WARNING)
            with contextlib.suppress(OSError):
                os.remove(self.scratch)
            self.passes += 1
            self.done = self.passes >= _WARM_MAX_PASSES

    def _read(self, reader: Any) -> None:
        """Every record so far (which loads the symbols), and the Python stack of each stack not
        seen before: the final reading finds them read. Stopped (:meth:`stop`: the capture is
        handed over), it stops within :data:`_WARM_CHECK` records; the stacks read stay whole."""
        from leakhunt.native_capture import FREES, MUNMAP

        stacks = self.stacks
        for record in reader.get_allocation_records():
            self.records += 1
            if not self.records % _WARM_CHECK and self._stop.is_set():
                return
            stack = record.stack_id
            if stack and stack not in stacks and record.allocator not in FREES and record.allocator != MUNMAP:
                frames = tuple(record.stack_trace(max_stacks=_ALL_FRAMES))
                stacks[stack] = (frames, _describe(frames, False))


def _libraries(pid: int) -> frozenset[bytes] | None:
    """The files process ``pid`` has mapped executable (its libraries); None when unreadable."""
    try:
        with open(f"/proc/{pid}/maps", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    out = set()
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) == 6 and b"x" in parts[1] and parts[5].startswith(b"/"):
            out.add(parts[5])
    return frozenset(out)


def _alive(pid: int) -> bool:
    """Is process ``pid`` running? A zombie is not: killed, and not yet reaped by its parent (a
    harness that kills the run and waits later), while a forked child of the script holds the
    stdin pipe open, it kept the reader waiting until the reaping."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # another user's process now has that id: taken as alive (its pipe still tells)
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc: the pipe still tells


def _forsaken(directory: str, parent: int, temporary: str) -> None:
    """In the second process, with nobody left to read for: delete what it was given, and when
    the run's process is gone (killed: the OOM killer, SIGKILL, a crash) the run's temporary
    capture too, which that process would have deleted at its end; a killed run's capture is
    often the biggest file it made. A kept capture (``--keep-capture``: no ``temporary``) stays,
    and so does one whose run still lives (it closed the pipe and deletes its own)."""
    shutil.rmtree(directory, ignore_errors=True)
    if temporary and os.path.basename(temporary).startswith("leakhunt-native-") and _gone(parent, _EXITING):
        shutil.rmtree(temporary, ignore_errors=True)


#: Seconds a killed run's process may still read as alive after its end of the pipe closed: the
#: kernel closes a dying process's files before it turns into a zombie, and a loaded machine may
#: run the reader in between (a CI run left the capture behind so).
_EXITING = 2.0


def _gone(pid: int, within: float) -> bool:
    """Is process ``pid`` gone, or gone within ``within`` seconds? A run that closed the pipe
    itself lives on (and deletes its own capture): that costs the reader ``within`` seconds of
    waiting, which nobody waits for."""
    end = time.monotonic() + within
    while _alive(pid):
        if time.monotonic() >= end:
            return False
        time.sleep(_POLL / 2)
    return True


def _end_with_parent(directory: str, parent: int, temporary: str = "") -> None:
    """In the second process: when ``parent``, the process that launched it, is gone (killed
    before it read the result) or has closed its end of the stdin pipe, stop reading and delete
    what it was given; nobody is left to read it."""

    def watch() -> None:
        while _next_byte(parent):
            pass
        _forsaken(directory, parent, temporary)
        os._exit(1)

    threading.Thread(target=watch, name="leakhunt-parent-watch", daemon=True).start()


# --------------------------------------------------------------------------------------
# reading the capture


_LIBRARY_ALIASES = {"_polars_runtime": "polars", "polars_runtime": "polars", "pyarrow": "pyarrow",
                    "numpy": "numpy", "pandas": "pandas"}

#: Native function names that tell which library's C code allocated (tried in order).
_NATIVE_LIBRARIES = (
    ("pyarrow", ("arrow::", "parquet::", "pyarrow", "7pyarrow")),
    ("polars", ("_rjem_", "polars", "rayon")),
    ("pandas", ("pandas",)),
    ("numpy", ("PyDataMem", "PyArray", "npy_", "default_malloc", "ufunc", "numpy")),
    ("duckdb", ("duckdb",)),
)
#: The notes of a NativePeak that say what memray could not see.
_UNSEEN = ("Arrow's pool is", "polars was loaded before")
#: Native frames resolved per stack: enough to name the library's function that allocated;
#: deeper frames reach the interpreter, whose symbols take the longest to load.
NATIVE_FRAMES = 6
#: Mappings from this size up are resolved whatever the time: they may be an allocator's arena
#: (mimalloc reserves 1 GiB), which is not memory until used.
RESERVATION_MIN = 64 << 20
#: Function names of mimalloc, whose 1 GiB arena memray sees as one allocation.
_MIMALLOC = ("mi_", "_mi_")
_EVAL = ("_PyEval_EvalFrame", "PyEval_EvalCode")
_THREAD_START = ("start_thread", "clone", "thread_start")


def _keep_frames(names: Iterable[str]) -> tuple[str, ...]:
    """Native functions up to the interpreter's loop or the thread's start (the rest is the
    interpreter, shown by the Python frames)."""
    kept: list[str] = []
    for name in names:
        if name.startswith(_EVAL) or name.startswith(_THREAD_START):
            break
        kept.append(name)
    return tuple(kept)


def library_of(filename: str) -> str:
    """The library a Python file belongs to: its top package in site-packages, ``Python`` for the
    standard library and the interpreter's own code, ``""`` for the user's code."""
    kind = _frames.kind(filename)
    if kind == _frames.USER:
        return ""
    short = _frames.short_path(filename)
    if short == filename or filename.startswith("<"):
        return "Python"
    for marker in (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep):
        if marker in filename:
            top = short.split(os.sep, 1)[0].split(".", 1)[0]
            for prefix, name in _LIBRARY_ALIASES.items():
                if top.startswith(prefix):
                    return name
            return top
    return "Python"


def native_library(functions: Iterable[str]) -> str:
    """The library whose C code an allocation came from, by the native functions on its stack
    (innermost first); ``Python`` for the interpreter's own; ``""`` when none is recognised."""
    python = False
    for name in functions:
        for library, markers in _NATIVE_LIBRARIES:
            if any(m in name for m in markers):
                return library
        python = python or name.startswith(("_Py", "Py", "pymalloc", "list_", "dict_", "unicode"))
    return "Python" if python else ""


@dataclass
class _Origin:
    """Where one key of the scan came from, resolved."""

    line: tuple[str, int] | None  # the user's line (None: leakhunt's own)
    frames: Frames  # Python frames, newest first (for a worker: the target thread's then)
    library: str  # "" when not known from Python frames
    via: str
    thread: bool  # made by a thread without a Python stack
    imports: bool


class _Reader:
    """One read of a capture into a :class:`NativePeak` (see :meth:`read`)."""

    def __init__(self, path: str, ticks: LineTicks, *, top: int, status: Callable[[str], None] | None,
                 native_budget: float, native_traces: bool, peak_rss: int | None = None,
                 known: dict[int, Known] | None = None) -> None:
        self.path = path
        self.known = known or {}  # Python stacks read and described ahead, from the capture so far (_Warmer)
        self.peak_rss = peak_rss
        self.ticks = ticks
        self.top = max(top, 1)
        self.status = status
        self.native_budget = native_budget
        self.native_traces = native_traces
        self.notes: list[str] = []
        self._python: dict[int, Frames] = {}
        self.ahead_stacks = 0
        self._by_stack: dict[int, Any] = {}
        self._origins: dict[Any, _Origin | None] = {}
        self._by_nid: dict[int, tuple[str, ...]] = {}
        self._phases: list[tuple[str, float]] = []
        self._t = time.perf_counter()

    def _phase(self, name: str) -> None:
        now = time.perf_counter()
        self._phases.append((name, round(now - self._t, 3)))
        self._t = now

    def _say(self, text: str) -> None:
        if self.status is not None:
            try:
                self.status(text)
            except Exception:  # noqa: BLE001 - a status line never breaks the reading
                self.status = None

    def read(self) -> NativePeak:
        import memray

        from leakhunt import native_capture as nc

        t0 = self._t = time.perf_counter()
        cpu0 = time.thread_time()
        self._say("leakhunt: reading memray's capture (finding the high-water mark)")
        reader = memray.FileReader(self.path, max_memory_records=10**9)
        self._phase("high-water mark (memray)")
        paused = _pause_collector()
        try:
            meta = reader.metadata
            total = meta.total_allocations

            def progress(n: int, of: int | None) -> None:
                self._say(f"leakhunt: reading the allocations: {n:,} of {of or 0:,}")

            self._say(f"leakhunt: reading the allocations ({total:,})")
            scan = nc.scan(reader.get_allocation_records(), peak=meta.peak_memory, main_tid=meta.main_thread_id,
                           is_marker=_is_marker, marker_size=MARKER + 1, total=total, progress=progress)
            if not scan.exact:
                self.notes.append("the heap did not reach memray's own peak figure under leakhunt's reading: "
                                  "explained at leakhunt's own maximum instead")
                scan = nc.scan(reader.get_allocation_records(), peak=meta.peak_memory, main_tid=meta.main_thread_id,
                               is_marker=_is_marker, marker_size=MARKER + 1, stop_at=scan.best_index)
                scan.exact = False
            self._phase("allocations")
            self._say("leakhunt: charging the allocations at the peak to your lines")
            peak = self._build(scan)
            return replace(peak, seconds=time.perf_counter() - t0, cpu_seconds=time.thread_time() - cpu0,
                           phases=tuple(self._phases))
        finally:
            reader.close()
            if paused:
                gc.enable()

    # -- resolving keys ------------------------------------------------------------------

    def _trusted(self) -> dict[int, Frames]:
        """The stacks read ahead (:attr:`known`), when they are this capture's; their origins join
        the origins known. memray numbers a capture's Python stacks in the order its records are
        read, so a capture read up to a point gives each stack the number the whole capture gives
        it. Checked on :data:`_CHECKED` of them (evenly spaced, and the newest), read again here:
        if one differs, none is used."""
        shared = sorted(stack for stack in self.known if stack in self._by_stack)
        if not shared:
            return {}
        step = max(1, len(shared) // _CHECKED)
        for stack in {*shared[::step][:_CHECKED], shared[-1]}:
            if tuple(self._by_stack[stack].stack_trace(max_stacks=_ALL_FRAMES)) != self.known[stack][0]:
                self.notes.append("the Python stacks read while the script ran were not this capture's: read again")
                return {}
        self.ahead_stacks = len(shared)
        self._origins.update(((stack, False), self.known[stack][1]) for stack in shared)
        return {stack: self.known[stack][0] for stack in shared}

    def _stack_frames(self, stack: int, record: Any) -> Frames:
        found = self._python.get(stack)
        if found is None:
            # max_stacks: the whole stack. Without it memray cuts the main thread's frames above
            # the one that started the tracker, which are leakhunt's: kept, they say so.
            found = self._python[stack] = tuple(record.stack_trace(max_stacks=_ALL_FRAMES))
        return found

    def _origin(self, key: Any, record: Any, scan: Any) -> _Origin | None:
        """Where a key's memory came from; one resolution per Python stack (or worker state)."""
        stack = key[0]
        thread = stack < 0
        cache_key = (stack, thread)
        if cache_key in self._origins:
            return self._origins[cache_key]
        if not thread:
            frames = self._stack_frames(stack, record)
        else:
            frames = self._target_frames(scan, -2 - stack)
        origin = self._origins[cache_key] = _describe(frames, thread)
        return origin

    def _target_frames(self, scan: Any, state: int) -> Frames:
        """The target thread's stack when a worker allocated (from the tick or its own record)."""
        if state < 0 or state >= len(scan.states):
            return ()
        what, value = scan.states[state]
        if what == "tick":
            samples = self.ticks.samples
            if 0 < value <= len(samples):
                return self.ticks.stacks[samples[value - 1][3]]
            return ()
        record = self._by_stack.get(value)
        return self._stack_frames(value, record) if record is not None else ()

    # -- building the result -------------------------------------------------------------

    def _build(self, scan: Any) -> NativePeak:
        self._by_stack = {key[0]: rec for key, rec in scan.reps.items() if key[0] >= 0}
        self._python = self._trusted()
        origins = {key: self._origin(key, scan.reps[key], scan) for key in scan.totals}
        self._phase("lines")
        reservations, reserved = self._reservations(scan, origins, self._resolve_natives(scan, origins))
        self._phase("native frames")
        library = self._libraries(scan, origins)
        natives = self._by_nid
        peak_sites, libraries, explained = _sites(scan.at_peak, origins, reserved, library, natives)
        end_sites, _, _ = _sites(scan.at_end, origins, set(), library, natives)
        totals = _totals(scan, origins, peak_sites, end_sites)
        stacks = self._stacks(scan, origins, reserved)
        self._phase("sites")
        time_at, rss, anon = self._moment(scan.peak_tick)
        kept = self._kept(scan.peak_tick)
        anon_above = None if anon is None or self.ticks.start_anon is None else max(0, anon - self.ticks.start_anon)
        return NativePeak(
            time=time_at, heap=scan.peak, explained=explained, anon_above_start=anon_above, rss=rss,
            sites=tuple(peak_sites[:self.top]), libraries=libraries, stacks=stacks,
            totals=tuple(totals[:self.top]), at_end=tuple(end_sites[:self.top]),
            reservations=tuple(reservations), allocations=scan.records, native_traces=self.native_traces,
            ahead_stacks=self.ahead_stacks,
            notes=tuple(self.notes), exact=scan.exact, malloc_kept=kept)

    def _kept(self, tick: int) -> int | None:
        """Freed memory malloc held at the high-water mark, above what it held at the start: the
        readings nearest it on either side (the ticks read it near the most resident memory
        only, :meth:`LineTicks._malloc_kept`), within :data:`_KEPT_TICKS` ticks."""
        kept = getattr(self.ticks, "kept", [])
        before = next((kept[i] for i in range(min(tick, len(kept) - 1), max(-1, tick - _KEPT_TICKS), -1)
                       if kept[i] is not None), None)
        after = next((kept[i] for i in range(max(0, tick), min(len(kept), tick + _KEPT_TICKS))
                      if kept[i] is not None), None)
        around = [k for k in (before, after) if k is not None]
        if not around:
            return None
        first = next((k for k in kept if k is not None), 0)
        return max(0, min(around) - first)

    def _moment(self, tick: int) -> tuple[float | None, int | None, int | None]:
        """(time, rss, anon) at the high-water mark: the ticks on either side of it. The exact
        peak of resident memory, when known, bounds the anonymous memory from below: it minus
        the most file-backed memory any tick saw (libraries, mapped files)."""
        samples = self.ticks.samples
        around = [samples[i] for i in (tick - 1, tick) if 0 <= i < len(samples)]
        if not around:
            return None, self.ticks.start_rss, self.ticks.start_anon
        when = samples[tick - 1][0] if 0 < tick <= len(samples) else around[0][0]
        rss = max((s[1] for s in around if s[1] is not None), default=None)
        anon = max((s[2] for s in around if s[2] is not None), default=None)
        files = [s[1] - s[2] for s in samples if s[1] is not None and s[2] is not None]
        if self.peak_rss is not None and anon is not None and files:
            anon = max(anon, self.peak_rss - max(files))
        return when, rss, anon

    def _native(self, key: Any, record: Any) -> tuple[str, ...]:
        """The native functions of a key's stack, innermost first (resolved once per native stack)."""
        found = self._by_nid.get(key[1])
        if found is None:
            try:
                names = [frame[0] for frame in record.native_stack_trace(max_stacks=NATIVE_FRAMES)]
            except Exception:  # noqa: BLE001 - a stack memray cannot resolve shows no native frames
                names = []
            found = self._by_nid[key[1]] = _keep_frames(names)
        return found

    def _resolve_natives(self, scan: Any, origins: dict[Any, _Origin | None]) -> set[int]:
        """Native frames of the biggest stacks at the peak whose Python frames do not say which
        library allocated (a C function called straight from your line, a worker thread), within
        the time budget: a library's symbols take ~0.2 s to load the first time. Mappings big
        enough to be an allocator's arena come first, whatever the time. Returns the native
        stacks of mimalloc's arenas."""
        arenas: set[int] = set()
        if not self.native_traces:
            self.notes.append("native frames were not recorded")
            return arenas
        ranked = sorted(scan.at_peak.items(), key=lambda kv: -kv[1][0])
        big = [key for key, (size, _) in ranked if size >= RESERVATION_MIN and scan.reps[key].allocator == _MMAP]
        for key in big:
            if any(name.startswith(_MIMALLOC) or "mimalloc" in name for name in self._native(key, scan.reps[key])):
                arenas.add(key[1])
        unknown = [key for key, _ in ranked[:max(self.top * 3, 30)] if key[1] and key[1] not in self._by_nid
                   and not _known_library(origins.get(key)) and not _is_arena(scan.reps[key])]
        t0 = time.perf_counter()
        for done, key in enumerate(unknown):
            if time.perf_counter() - t0 > self.native_budget:
                self.notes.append(f"native frames resolved for the {done} biggest stacks at the peak whose Python "
                                  f"frames do not name the library (looking up more symbols would take longer than "
                                  f"the {self.native_budget:.1f} s allowed; --keep-capture keeps them for memray)")
                break
            self._say(f"leakhunt: resolving native frames ({done + 1} of {len(unknown)})")
            self._native(key, scan.reps[key])
        return arenas

    def _reservations(self, scan: Any, origins: dict[Any, _Origin | None], arenas: set[int]
                      ) -> tuple[list[Reservation], set[Any]]:
        """Arenas an allocator mapped for itself, alive at the peak: shown, never counted."""
        found: list[Reservation] = []
        keys: set[Any] = set()
        for key, (size, _count) in scan.at_peak.items():
            if key[1] not in arenas or scan.reps[key].allocator != _MMAP:
                continue
            origin = origins.get(key)
            where = f"{origin.line[0]}:{origin.line[1]}" if origin is not None and origin.line else "?"
            found.append(Reservation(size=size, allocator="mimalloc (Arrow's pool)", where=where))
            keys.add(key)
        found.sort(key=lambda r: -r.size)
        return found, keys

    def _libraries(self, scan: Any, origins: dict[Any, _Origin | None]) -> Callable[[Any], str]:
        def library(key: Any) -> str:
            origin = origins.get(key)
            if _known_library(origin):
                return origin.library  # type: ignore[union-attr]
            names = self._by_nid.get(key[1])
            if names:
                found = native_library(names)
                if found:
                    return found
            if origin is not None and origin.library:
                return origin.library
            record = scan.reps.get(key)
            if record is not None and _is_arena(record):
                return "Python"
            return UNRESOLVED
        return library

    def _stacks(self, scan: Any, origins: dict[Any, _Origin | None], reserved: set[Any]) -> tuple[Stack, ...]:
        ranked = sorted(scan.at_peak.items(), key=lambda kv: -kv[1][0])
        out: list[Stack] = []
        for key, (size, count) in ranked:
            origin = origins.get(key)
            if origin is None or key in reserved or size <= 0:
                continue
            natives = tuple(("<native>", 0, name) for name in self._by_nid.get(key[1], ()))
            marker = (("<thread>", 0, "a worker thread (no Python stack)"),) if origin.thread else ()
            python = tuple((f, n, _frame_text(f, n, fn)) for fn, f, n in origin.frames)
            out.append(Stack(frames=natives + marker + python, size=size, count=count))
            if len(out) >= _STACKS:
                break
        return tuple(out)


def _pause_collector() -> bool:
    """Pause Python's cyclic garbage collector while the capture is read; True if it was running.

    The read keeps a few hundred thousand small tuples and lists (the live heap, the totals), and
    their creation triggers collections that also walk everything the script left alive (its
    globals stay alive until the judgement): work that finds nothing, since the read makes no
    cycles. Runs after the script returned; the collector is switched back on after the read."""
    if not gc.isenabled():
        return False
    gc.disable()
    return True


def _frame_text(filename: str, line: int, function: str) -> str:
    """What a flame graph box says about a frame: the user's own source line, a library's function."""
    if _frames.kind(filename) == _frames.USER:
        return _frames.code_line(filename, line) or function
    return function + "()"


def _is_arena(record: Any) -> bool:
    """A pymalloc arena: Python objects, whose native frames say nothing more."""
    return bool(record.allocator == _MMAP and record.size == _ARENA)


def _known_library(origin: _Origin | None) -> bool:
    return origin is not None and bool(origin.library) and not (origin.thread and origin.library == "Python")


_FILE_INFO: dict[str, tuple[str, str, bool]] = {}
#: leakhunt's frames that run the user's work on its behalf: leakhunt run's import meter wraps
#: each import's exec_module (leakhunt/imports.py), and what the import allocates is the import
#: line's, not leakhunt's.
_THROUGH = frozenset(os.path.join(os.path.dirname(os.path.abspath(_frames.__file__)), name) for name in ("imports.py",))
_THROUGH_KIND = "through"


def _file_info(filename: str) -> tuple[str, str, bool]:
    """(kind, library, is the import machinery) of a code file, worked out once per file."""
    found = _FILE_INFO.get(filename)
    if found is None:
        kind = _THROUGH_KIND if os.path.abspath(filename) in _THROUGH else _frames.kind(filename)
        found = _FILE_INFO[filename] = (kind, library_of(filename) if kind not in (_frames.USER, _THROUGH_KIND)
                                        else "", filename.startswith("<frozen importlib"))
    return found


def _describe(frames: Frames, thread: bool) -> _Origin | None:
    """The user's line, library and ``via`` of a Python stack (newest first); None when the
    allocation is leakhunt's own. Runs once per distinct stack of a capture (thousands): one walk
    from the newest frame to the user's, one dictionary lookup per frame."""
    if not frames:
        return _Origin(line=("<no Python stack>", 0), frames=(), library="", via="", thread=thread, imports=False)
    info = _FILE_INFO
    library = ""
    imports = False
    line = None
    for _fn, f, n in frames:
        kind, lib, importing = info.get(f) or _file_info(f)
        if kind == _frames.USER:
            line = (f, n)
            break
        if kind == _frames.OURS:
            return None
        if kind == _THROUGH_KIND:
            continue
        if not library and lib != "Python":
            library = lib  # the first library's own file (the import machinery is Python's)
        imports = imports or importing
    if not library and line is not None:
        library = "Python" if any(_file_info(f)[1] == "Python" for _fn, f, _n in frames[:1]) else ""
    newest = (frames[0][1], frames[0][2])
    if line is None:  # no line of the user's: charged to the newest frame (a library's thread)
        line = newest
        library = library or _file_info(newest[0])[1]
    via = "" if newest == line else f"{_frames.short_path(newest[0])}:{newest[1]}"
    return _Origin(line=line, frames=frames, library=library, via=via, thread=thread, imports=imports)


def _sites(live: dict[Any, list[int]], origins: dict[Any, _Origin | None], skip: set[Any],
           library: Callable[[Any], str], natives: dict[int, tuple[str, ...]],
           ) -> tuple[list[NativeSite], tuple[tuple[str, int], ...], int]:
    """Sites by the user's line (biggest first), bytes by library, and the bytes charged to lines."""
    by_line: dict[tuple[str, int], dict[str, Any]] = {}
    libraries: dict[str, int] = {}
    explained = 0
    for key, (size, count) in live.items():
        origin = origins.get(key)
        if origin is None or key in skip or origin.line is None:
            continue
        explained += size
        lib = library(key) or "Python"
        libraries[lib] = libraries.get(lib, 0) + size
        entry = by_line.setdefault(origin.line, {"size": 0, "count": 0, "libs": {}, "threads": 0,
                                                 "via": ("", 0, ()), "imports": 0})
        entry["size"] += size
        entry["count"] += count
        entry["libs"][lib] = entry["libs"].get(lib, 0) + size
        if origin.thread:
            entry["threads"] += size
        if origin.imports:
            entry["imports"] += size
        if size > entry["via"][1]:
            entry["via"] = (origin.via, size, natives.get(key[1], ()))
    sites = [NativeSite(file=f, line=n, code=_frames.code_line(f, n), size=e["size"], count=e["count"],
                        libraries=tuple(sorted(e["libs"].items(), key=lambda kv: -kv[1])), threads=e["threads"],
                        via=e["via"][0], imports=e["imports"] * 2 > e["size"], native=e["via"][2])
             for (f, n), e in by_line.items()]
    sites.sort(key=lambda s: -s.size)
    return sites, tuple(sorted(libraries.items(), key=lambda kv: -kv[1])), explained


def _totals(scan: Any, origins: dict[Any, _Origin | None], at_peak: Sequence[NativeSite],
            at_end: Sequence[NativeSite]) -> list[LineTotal]:
    by_line: dict[tuple[str, int], list[int]] = {}
    for key, (size, count, _alive, most) in scan.totals.items():
        origin = origins.get(key)
        if origin is None or origin.line is None:
            continue
        entry = by_line.setdefault(origin.line, [0, 0, 0])
        entry[0] += size
        entry[1] += count
        entry[2] += most
    peak = {(s.file, s.line): s.size for s in at_peak}
    end = {(s.file, s.line): s.size for s in at_end}
    out = [LineTotal(file=f, line=n, code=_frames.code_line(f, n), allocated=a, count=c,
                     at_peak=peak.get((f, n), 0), at_end=end.get((f, n), 0), held=h)
           for (f, n), (a, c, h) in by_line.items()]
    out.sort(key=lambda t: -t.allocated)
    return out


# --------------------------------------------------------------------------------------
# a peak source for the measuring code (the shape of leakhunt.tracing.PeakSnapshots)


class NativePeakSource:
    """The allocations alive at a block's own peak, from memray: what the measuring code asks a
    peak source for (:meth:`start`, :meth:`stop`, then :attr:`sites`, :attr:`stacks`,
    :attr:`level`, :attr:`traced_peak`), the shape of :class:`leakhunt.tracing.PeakSnapshots`.

    Recording is all a block pays: the capture is read the first time one of those is asked for
    (a block that broke its peak budget), and deleted when the source is. ``sites`` are
    :class:`leakhunt.explanation.Site`, the biggest lines first; :attr:`native` is the whole
    :class:`NativePeak`. Where memray cannot record, :attr:`unavailable` says why and the sites
    stay empty (the block still runs).
    """

    interval = TICK

    def __init__(self, *, limit: int = 10, native_traces: bool = True) -> None:
        self.limit = limit
        self.native_traces = native_traces
        self.unavailable: str | None = None
        self._native: NativePeak | None = None
        self._recorder: NativeRecorder | None = None
        self._stopped = False
        self._later: Callable[[], NativePeak | None] | None = None

    def start(self) -> NativePeakSource:
        recorder = NativeRecorder(native_traces=self.native_traces)
        try:
            self._recorder = recorder.start()
        except NativeUnavailable as exc:
            self.unavailable = str(exc)
            return self
        weakref.finalize(self, recorder.close)  # the capture goes with the source, read or not
        return self

    def stop(self) -> NativePeakSource:
        if self._recorder is not None and not self._stopped:
            self._recorder.stop()
            self._stopped = True
        return self

    @classmethod
    def later(cls, read: Callable[[], NativePeak | None], *, limit: int = 10) -> NativePeakSource:
        """A source whose peak ``read()`` gives the first time it is asked for (``leakhunt run``'s,
        being read in a second process while its judgement looks at the script's end)."""
        source = cls(limit=limit)
        source._later = read
        return source

    @property
    def native(self) -> NativePeak | None:
        if self._native is None and self._later is not None:
            read, self._later = self._later, None
            self._native = read()
            if self._native is None:
                self.unavailable = "memray's capture could not be read"
        if self._native is None and self._recorder is not None and self._stopped:
            recorder, self._recorder = self._recorder, None
            try:
                self._native = recorder.analyse(top=self.limit, native_budget=0.5)
            except Exception as exc:  # noqa: BLE001 - an unreadable capture explains nothing, breaks nothing
                self.unavailable = f"memray's capture could not be read: {type(exc).__name__}: {exc}"
            finally:
                recorder.close()
        return self._native

    @property
    def sites(self) -> tuple[Any, ...]:
        from leakhunt.explanation import Site

        peak = self.native
        if peak is None:
            return ()
        # the block's own lines: allocations with no line of the user's on their stack are the
        # framework's around it (pytest's hooks), not what the block did
        return tuple(Site(file=s.file, line=s.line, code=s.code, size=s.size, count=s.count)
                     for s in peak.sites if _frames.kind(s.file) == _frames.USER)[:self.limit]

    @property
    def end_sites(self) -> tuple[Any, ...]:
        """The user's lines whose allocations were still alive when the recording stopped (what a
        run kept at its end, by line), biggest first."""
        from leakhunt.explanation import Site

        peak = self.native
        if peak is None:
            return ()
        return tuple(Site(file=s.file, line=s.line, code=s.code, size=s.size, count=s.count)
                     for s in peak.at_end if _frames.kind(s.file) == _frames.USER)[:EXPLANATION_SITES]

    @property
    def stacks(self) -> tuple[Stack, ...]:
        peak = self.native
        return peak.stacks if peak is not None else ()

    @property
    def notes(self) -> tuple[str, ...]:
        """What memray could not see in the block (an allocator's arenas), for its explanation."""
        peak = self.native
        return tuple(n for n in peak.notes if n.startswith(_UNSEEN)) if peak is not None else ()

    @property
    def level(self) -> int:
        peak = self.native
        return peak.explained if peak is not None else 0

    @property
    def traced_peak(self) -> int | None:
        peak = self.native
        return peak.explained if peak is not None else None

    def __enter__(self) -> NativePeakSource:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def churn_findings(totals: Iterable[LineTotal], *, factor: float = 4.0, minimum: int = 256 << 20
                   ) -> Iterator[LineTotal]:
    """Lines that allocated far more over the run than they ever held: a copy repeated in a loop
    (``cur = pd.concat([cur, day])`` copies everything kept so far on every pass)."""
    for total in totals:
        if total.allocated >= minimum and total.churn >= factor:
            yield total
