"""tracemalloc, owned politely: start it unless the user did, stop only what we started; and the
allocations alive at the high-water mark.

:func:`start` is the one way leakhunt turns tracing on. A trace the user started is never
stopped, restarted or reset. A trace leakhunt started itself may be restarted by a nested
``start(fresh=True)``: then every trace present was allocated inside the block, which is what
attribution wants ("what did *this* block create?") and what makes the traced figure of a
block independent of what ran before it.

:class:`PeakSnapshots` samples the traced memory in a thread and keeps the snapshot taken at
the highest level it saw (within its interval): the allocation sites alive at the peak, and
their stacks for a flame graph.
"""

from __future__ import annotations

import heapq
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any, Callable

from leakhunt import frames as _frames
from leakhunt.explanation import Site

__all__ = ["TRACE_FRAMES", "TraceHandle", "start", "ours", "own_memory", "PeakSnapshots", "Stack", "summarise", "by_traceback",
           "line_tables", "line_tables_above_user"]

#: Frames kept per traced allocation: enough to reach the user's line from inside pandas,
#: few enough that tracing costs 2-4x rather than 10x.
TRACE_FRAMES = 10

#: Resident memory tracemalloc takes for its tables, per byte that
#: ``tracemalloc.get_tracemalloc_memory()`` reports: it counts each table entry's size, not the
#: allocator's rounding of each entry and of each trace's own record (two allocations per traced
#: object), nor the tracebacks. 1.71-1.92 was read by hand over four workloads (small objects,
#: arrays, dicts, deep stacks); no test holds the factor yet.
_OWN_MEMORY_FACTOR = 1.85


def own_memory() -> int:
    """Resident memory tracemalloc's own tables take now (bytes; 0 when not tracing)."""
    return int(tracemalloc.get_tracemalloc_memory() * _OWN_MEMORY_FACTOR) if tracemalloc.is_tracing() else 0


_owner: TraceHandle | None = None  # the handle that started the trace running now, if any


def ours() -> bool:
    """Is the trace running now leakhunt's own (and so ours to restart)?"""
    return _owner is not None and tracemalloc.is_tracing()


@dataclass
class TraceHandle:
    """What :func:`start` did; :meth:`stop` undoes exactly that."""

    started: bool  # this handle turned tracing on, and turns it off
    fresh: bool  # every trace present now was allocated after this handle began
    frames: int
    active: bool = True

    def stop(self) -> None:
        global _owner
        if not self.active:
            return
        self.active = False
        if self.started and _owner is self:
            _owner = None
            if tracemalloc.is_tracing():
                tracemalloc.stop()

    def __enter__(self) -> TraceHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def snapshot() -> tracemalloc.Snapshot | None:
    """A snapshot of the trace; None when nothing traces, also when the trace stopped after the
    caller looked: blocks in concurrent threads share leakhunt's one trace, and the one that
    started it stops it when it ends, maybe between another's check and its snapshot."""
    try:
        return tracemalloc.take_snapshot()
    except RuntimeError:  # "the tracemalloc module must be tracing memory allocations"
        return None


def start(frames: int = TRACE_FRAMES, *, fresh: bool = False) -> TraceHandle:
    """Make sure tracemalloc is tracing; return a handle whose ``stop()`` undoes only our part.

    - not tracing: start with ``frames`` (this handle stops it);
    - tracing, started by leakhunt, ``fresh=True``: restart it, so only this block's
      allocations are traced (the outer owner keeps the restarted trace and stops it);
    - tracing, started by the user: left alone (``fresh`` is then false: older allocations
      are traced too).
    """
    global _owner
    if not tracemalloc.is_tracing():
        handle = TraceHandle(started=True, fresh=True, frames=frames)
        tracemalloc.start(frames)
        _owner = handle
        return handle
    if _owner is not None and fresh:
        depth = max(frames, tracemalloc.get_traceback_limit())
        tracemalloc.stop()
        tracemalloc.start(depth)
        return TraceHandle(started=False, fresh=True, frames=depth)
    return TraceHandle(started=False, fresh=False, frames=tracemalloc.get_traceback_limit())


# --------------------------------------------------------------------------------------
# the cost of a traced allocation


def _until_user(frame: Any, event: str, arg: Any) -> None:
    if event == "call" and _frames.kind(frame.f_code.co_filename) == _frames.USER:
        sys.setprofile(None)


def line_tables(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn(*args, **kwargs)`` so that the allocations made later by the code it runs cost
    less to trace (CPython 3.11; elsewhere a plain call).

    tracemalloc reads the line number of each frame it keeps for each allocation, and CPython
    3.11 finds it by scanning the code's line table from its start unless it has built the
    code's line array, which it does the first time a profile function sees a frame of that
    code (the array then stays with the code object). A test's hunt keeps ten frames: the test's
    own and pytest's hook machinery (``_multicall``), whose long tables made each traced
    allocation cost microseconds (benchmarks/plugin.md, "Explaining many small objects"). So the
    call runs under a profile function that does nothing. A profile function already set (the
    user's profiler) is left alone, and the call is then plain. The arrays are memory the call
    allocates (a few hundred bytes a function): call it where that is nobody's growth."""
    return _profiled(_briefly(), fn, args, kwargs)


#: Profile events after which :func:`line_tables` ends its profile function: by then every code
#: the call runs has been seen (a walk repeats the same few functions), and each further event
#: is a Python call per C call - a walk over 200,000 objects of an object column paid seconds.
LINE_TABLE_EVENTS = 20_000


def _briefly(limit: int = LINE_TABLE_EVENTS) -> Callable[[Any, str, Any], None]:
    seen = [0]

    def profile(frame: Any, event: str, arg: Any) -> None:
        seen[0] += 1
        if seen[0] >= limit:
            sys.setprofile(None)

    return profile


def line_tables_above_user(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """:func:`line_tables` for the frames ``fn`` enters before the first frame of the user's code
    (:func:`leakhunt.frames.kind`) only: the profile function ends there, so the user's code
    runs unprofiled. For a test, those frames are pytest's, which every later call of it enters
    again."""
    return _profiled(_until_user, fn, args, kwargs)


def _profiled(profile: Callable[[Any, str, Any], None], fn: Callable[..., Any], args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:
    if sys.version_info[:2] != (3, 11) or sys.getprofile() is not None:
        return fn(*args, **kwargs)
    sys.setprofile(profile)
    try:
        return fn(*args, **kwargs)
    finally:
        if sys.getprofile() is profile:
            sys.setprofile(None)


# --------------------------------------------------------------------------------------
# summarising snapshots


@dataclass(frozen=True)
class Stack:
    """Traced bytes alive under one call stack (``frames`` newest first: file, line, code)."""

    frames: tuple[tuple[str, int, str], ...]
    size: int
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"frames": [list(f) for f in self.frames], "size": self.size, "count": self.count}


def _raw_traces(snapshot: tracemalloc.Snapshot) -> list[tuple[Any, ...]]:
    # Raw traces are (domain, size, frames newest first, ...); the snapshot shares one frames
    # tuple between traces with the same traceback.
    raw = getattr(snapshot.traces, "_traces", None)
    if raw is None:  # pragma: no cover - a tracemalloc without the private list
        raw = [(t.domain, t.size, _frames.traceback_frames(t.traceback)) for t in snapshot.traces]
    return raw


def by_traceback(snapshot: tracemalloc.Snapshot) -> dict[tuple[tuple[str, int], ...], list[int]]:
    """The sizes of a snapshot's traces, grouped by traceback (frames newest first).

    The loop over the traces allocates nothing per trace: tracemalloc is usually still tracing
    when a snapshot is summarised, and traces every allocation made meanwhile with its frames:
    an int per trace (an ``id()``, a running sum) made summarising a snapshot of 724,000 traces
    take 60 s (issue 20's object-heavy script, benchmarks/scripts/object_heavy.py at 50,000 rows,
    once, on a loaded machine; 2.4 s this way). A traceback tuple is hashed, not allocated;
    appending to a list allocates only when the list grows.
    """
    if not tracemalloc.is_tracing():
        return _by_traceback_id(snapshot)
    groups: dict[tuple[tuple[str, int], ...], list[int]] = {}
    get = groups.get
    for trace in _raw_traces(snapshot):
        frames = trace[2]
        sizes = get(frames)
        if sizes is None:
            sizes = groups[frames] = []
        sizes.append(trace[1])
    return groups


def _by_traceback_id(snapshot: tracemalloc.Snapshot) -> dict[tuple[tuple[str, int], ...], list[int]]:
    """:func:`by_traceback` once tracing has stopped (an explanation reads its snapshot after
    releasing the trace): grouped by the id of the frames tuple, which the snapshot shares
    between the traces of one traceback, rather than by the tuple, whose hash is computed anew
    for every trace (ten frames: half of summarising the 600,000 traces of a hunt of 20,000
    small objects per call). An id is an int allocated per trace, which only an untraced loop
    can afford."""
    groups: dict[int, list[int]] = {}
    tracebacks: dict[int, tuple[tuple[str, int], ...]] = {}
    get = groups.get
    for trace in _raw_traces(snapshot):
        key = id(trace[2])
        sizes = get(key)
        if sizes is None:
            sizes = groups[key] = []
            tracebacks[key] = trace[2]
        sizes.append(trace[1])
    out: dict[tuple[tuple[str, int], ...], list[int]] = {}
    for key, sizes in groups.items():  # equal tracebacks in distinct tuples: one group
        frames = tracebacks[key]
        if frames in out:
            out[frames].extend(sizes)
        else:
            out[frames] = sizes
    return out


def summarise(snapshot: tracemalloc.Snapshot, *, limit: int = 10, user_only: bool = False,
              exclude: Callable[[tuple[tuple[str, int], ...]], bool] | None = None,
              ) -> tuple[int, tuple[Site, ...], tuple[Stack, ...]]:
    """(traced bytes not ours, the biggest sites by user line, the biggest stacks) of a snapshot.

    Allocations made by leakhunt itself (a frame of ours newer than any user frame) are left
    out; so is tracemalloc's own bookkeeping. ``user_only`` also leaves out allocations with no
    frame of the user's code within the traceback, and those made by imports (one-time
    initialisation, not what a user can fix). ``exclude(frames)`` drops more (frames newest
    first): e.g. what threads older than a block allocated. Each distinct traceback is looked at
    once (:func:`by_traceback`).
    """
    # Few allocations per traceback, none per trace (see by_traceback): sizes are gathered by
    # site and summed once per site; a traceback's own sum is taken only to rank the stacks.
    by_site: dict[tuple[str, int], list[int]] = {}
    kept: list[tuple[tuple[tuple[str, int], ...], list[int]]] = []
    for frames, sizes in by_traceback(snapshot).items():
        site = _frames.user_frame(frames)
        if user_only and site is not None and (_frames.kind(site[0]) != _frames.USER or _frames.is_import(frames)):
            site = None
        if site is None or (exclude is not None and exclude(frames)):
            continue
        found = by_site.get(site)
        if found is None:
            by_site[site] = list(sizes)
        else:
            found.extend(sizes)
        kept.append((frames, sizes))
    sites = {site: (sum(sizes), len(sizes)) for site, sizes in by_site.items()}
    total = sum(size for size, _ in sites.values())
    biggest = heapq.nlargest(max(limit * 10, 50), kept, key=lambda fs: sum(fs[1]))
    stacks = [(frames, sum(sizes), len(sizes)) for frames, sizes in biggest]
    best_sites = heapq.nlargest(limit, sites.items(), key=lambda kv: kv[1][0])
    if best_sites:  # sites under 1% of the biggest are bookkeeping (threads, frames), not news
        best_sites = [kv for kv in best_sites if kv[1][0] * 100 >= best_sites[0][1][0]]
    out_sites = tuple(Site(file=f, line=n, code=_frames.code_line(f, n), size=s, count=c)
                      for (f, n), (s, c) in best_sites)
    # The source line of the user's frames only: reading a library's file into linecache, under
    # tracemalloc, cost seconds (pandas' modules are thousands of lines, each a traced string).
    out_stacks = tuple(Stack(frames=tuple((f, n, _frames.code_line(f, n) if _frames.kind(f) == _frames.USER else "")
                                          for f, n in frames), size=s, count=c)
                       for frames, s, c in stacks)
    _frames.forget_lines()  # read for this summary only: nothing of it outlives the call
    return total, out_sites, out_stacks


# --------------------------------------------------------------------------------------
# the peak


class PeakSnapshots:
    """Keep the traced allocations alive at the traced high-water mark, sampled every ``interval``.

    A background thread reads the traced memory; when it passes the level of the snapshot held
    by ``step`` (a share, and at least ``min_step`` bytes), or has stayed above it for twenty
    intervals, a new snapshot replaces the old one (both are held for the moment it takes to
    replace it), and its own objects are not counted as memory of the block. After :meth:`stop`,
    :attr:`sites` and :attr:`stacks` describe the peak, :attr:`level` is the traced memory the
    snapshot holds and :attr:`traced_peak` the true traced peak (tracemalloc's own maximum),
    so a renderer can say how much of the peak the snapshot covers.

    A snapshot of a big heap takes a while (0.3-0.8 s with pandas imported and 10 frames per
    trace, measured under load), and the measured code waits for the GIL meanwhile. ``budget``
    caps that: snapshots draw on an allowance of that share of the elapsed time (plus one
    second to start with); a high reached while it is spent is taken when it comes back, if
    the level is still higher. A rise of a quarter over the snapshot held is taken even then,
    up to twice the allowance: there are few of those (each is 25% higher than the last), and
    they are what finds the peak. ``skip_imports`` takes no snapshot while the thread that called
    :meth:`start` is importing: imports raise the traced memory in many small steps, and what
    they allocate is module code, not the data of the peak.

    Needs tracing on; without it nothing is sampled and everything stays empty.
    """

    def __init__(self, interval: float = 0.005, *, step: float = 0.05, min_step: int = 256 * 1024,
                 limit: int = 10, budget: float | None = None, skip_imports: bool = False) -> None:
        if interval <= 0:
            raise ValueError(f"PeakSnapshots interval must be > 0 seconds, got {interval!r}")
        self.interval = interval
        self.step = step
        self.min_step = min_step
        self.limit = limit
        self.budget = budget
        self.skip_imports = skip_imports
        self.level = 0  # traced bytes (above the start) in the snapshot held
        self.traced_peak: int | None = None  # traced peak above the start, tracemalloc's own figure
        self.snapshots = 0
        self.seconds = 0.0  # time spent taking snapshots
        self.last_cost = 0.0  # the last snapshot's time: what the next one will take, at least
        self.sites: tuple[Site, ...] = ()
        self.stacks: tuple[Stack, ...] = ()
        self.taken_at: float | None = None  # seconds after start of the snapshot held
        self.domains: dict[str, int] = {}  # traced bytes of the snapshot held, by domain (python, numpy, ...)
        self._snapshot: tracemalloc.Snapshot | None = None
        self._overhead = 0  # traced bytes of the snapshot we hold (its own objects)
        self._base = 0
        self._peak_before = 0
        self._t0 = 0.0
        self._last = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._target = threading.get_ident()

    def start(self) -> PeakSnapshots:
        if not tracemalloc.is_tracing():
            return self
        self._target = threading.get_ident()
        current, self._peak_before = tracemalloc.get_traced_memory()
        self._base = current
        self._t0 = self._last = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="leakhunt-peak", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

    def check(self) -> None:
        """Take a snapshot if the traced memory is at a new high (called by the thread; callers
        may also call it at a moment they know is high)."""
        if not tracemalloc.is_tracing():
            return
        with self._lock:
            now = time.perf_counter()
            level = tracemalloc.get_traced_memory()[0] - self._overhead - self._base
            held = self.level if self._snapshot is not None else -1
            if level <= held:
                return
            if held >= 0 and level < held + max(self.min_step, held * self.step) \
                    and now - self._last < 20 * self.interval:
                return
            if self.budget is not None and self._spent(now, level, held):
                return
            if self.skip_imports and self._target_is_importing():
                return
            # The new snapshot first, the old one dropped after: dropping a big snapshot takes
            # long enough for the measured code to get the GIL back and free what is alive now
            # (seen with `leakhunt run --trace`: a snapshot held 68 MiB of a 102 MiB level).
            before = tracemalloc.get_traced_memory()[0] - self._overhead
            try:
                snapshot = tracemalloc.take_snapshot()
            except RuntimeError:  # tracing stopped under us
                return
            old, self._snapshot = self._snapshot, snapshot
            del old
            after = time.perf_counter()
            self._overhead = max(0, tracemalloc.get_traced_memory()[0] - before)
            self.level = max(0, before - self._base)
            self.taken_at = now - self._t0
            self.snapshots += 1
            self.seconds += after - now
            self.last_cost = after - now
            self._last = after

    def _spent(self, now: float, level: int, held: int) -> bool:
        """The allowance is spent: no snapshot now. A rise of a quarter is taken anyway while
        snapshots have used under twice the allowance: few of those, and they find the peak; past
        that, a heap that keeps growing (a concatenation in a loop) would otherwise pay a
        snapshot at every quarter (issue 20: 18 % of a run). What the snapshots will have used is
        counted with the one to take, estimated by the last one's time scaled by how much more
        is traced now (a snapshot of a growing heap takes longer than the one before), so no
        snapshot overshoots the allowance: the benchmark's concatenation in a loop read 32 % of
        its run when only the time already spent was counted, 28 % with the last one's time."""
        assert self.budget is not None
        allowance = 1.0 + self.budget * (now - self._t0)
        spent = self.seconds + self.last_cost * (level / held if held > 0 else 1.0)
        if spent < allowance:
            return False
        return level < held * 1.25 or spent >= 2 * allowance

    def _target_is_importing(self) -> bool:
        frame = sys._current_frames().get(self._target)
        depth = 0
        while frame is not None and depth < 200:
            if frame.f_code.co_filename.startswith("<frozen importlib"):
                return True
            frame = frame.f_back
            depth += 1
        return False

    def stop(self) -> PeakSnapshots:
        """Stop sampling (one last check) and summarise the snapshot held; idempotent."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.check()
        if tracemalloc.is_tracing():
            peak = tracemalloc.get_traced_memory()[1]
            if peak > self._peak_before:  # the maximum rose during the block: it is the block's
                self.traced_peak = max(0, peak - self._base)
        with self._lock:
            snapshot, self._snapshot = self._snapshot, None
        if snapshot is not None:
            from leakhunt.probes import traced_by_domain

            self.domains = traced_by_domain(snapshot) or {}
            # exactly what the snapshot holds (the level read before it can be a little off)
            self.level = max(0, sum(self.domains.values()) - self._base)
            _, self.sites, self.stacks = summarise(snapshot, limit=self.limit)
            del snapshot
        return self

    def __enter__(self) -> PeakSnapshots:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
