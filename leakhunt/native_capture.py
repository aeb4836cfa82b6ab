"""Reading a memray capture once: what was alive at the high-water mark, at the end, and what
every line allocated over the run, with allocations made by threads without a Python stack
charged to the line the target's own thread was running.

memray writes every allocation and free, in order, with the Python stack of the thread that made
it (:class:`memray.FileReader`). Arrow's, polars' and numpy's worker threads have no Python stack:
memray draws them as separate roots, and a site table by line cannot place them. leakhunt's line
thread (:class:`leakhunt.native.LineTicks`) writes a marker allocation into the capture every
tick after reading the line the target's thread is on; in the capture's order, the last marker
(or the target thread's own last allocation, if newer) says where the target was when a worker
allocated. A polars column built by rayon threads is then charged to ``df.with_columns(...)``.

One pass over the records in Python (:func:`scan`): ~4 us per record here, the same order as
one pass of memray's own reader (3 us), against the ~30 us per allocation memray's native
tracking costs while the target runs. The live heap is followed as memray's
``HighWatermarkFinder`` follows it (the same rules for frees, ``realloc`` and partial
``munmap``), so the state copied when the heap first reaches memray's own peak figure is the
state at memray's high-water mark.
"""

from __future__ import annotations

import bisect
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

__all__ = ["Scan", "scan", "state_of", "Key", "MMAP", "FREES", "MUNMAP"]

#: memray's allocator kinds (``memray.AllocatorType``): frees, and mmap / munmap (ranges).
FREES = frozenset({1, 5})  # PYMALLOC_FREE, FREE
MMAP = 14
MUNMAP = 15

#: A key of the scan: ``(stack, native stack, thread)``. ``stack`` >= 0 is memray's Python stack
#: id; < 0 is ``-2 - state`` for an allocation made without a Python stack, where ``state``
#: indexes :attr:`Scan.states` (-1: before anything was known). ``thread`` is memray's thread
#: id (a worker's) or -1.
Key = tuple[int, int, int]

#: Allocations from this size up keep their native stack in their key (see _Keys.of).
NATIVE_KEYED = 64 * 1024
#: How often (records) :func:`scan` reports its progress.
_PROGRESS_EVERY = 250_000


class _Ranges:
    """Live mmap'd ranges, split on partial munmap as memray's interval tree splits them."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: dict[int, tuple[int, Any]] = {}  # start -> (end, key)

    def add(self, start: int, size: int, key: Any) -> None:
        if start not in self.ends:
            bisect.insort(self.starts, start)
        self.ends[start] = (start + size, key)

    def remove(self, start: int, size: int) -> list[tuple[Any, int]]:
        """Unmap ``[start, start + size)``: the (key, bytes) taken from each range it overlaps."""
        end = start + size
        i = bisect.bisect_right(self.starts, start) - 1
        if i < 0:
            i = 0
        freed: list[tuple[Any, int]] = []
        while i < len(self.starts):
            lo = self.starts[i]
            if lo >= end:
                break
            hi, key = self.ends[lo]
            if hi <= start:
                i += 1
                continue
            cut_lo, cut_hi = max(lo, start), min(hi, end)
            freed.append((key, cut_hi - cut_lo))
            del self.starts[i]
            del self.ends[lo]
            if lo < cut_lo:  # the part below the cut stays mapped
                self.starts.insert(i, lo)
                self.ends[lo] = (cut_lo, key)
                i += 1
            if cut_hi < hi:  # so does the part above it
                self.starts.insert(i, cut_hi)
                self.ends[cut_hi] = (hi, key)
                i += 1
        return freed

    def items(self) -> Iterable[tuple[Any, int]]:
        for lo in self.starts:
            hi, key = self.ends[lo]
            yield key, hi - lo


@dataclass
class Scan:
    """What one pass over a capture found (sizes in bytes, ``[bytes, allocations]`` per key)."""

    at_peak: dict[Key, list[int]] = field(default_factory=dict)
    at_end: dict[Key, list[int]] = field(default_factory=dict)
    totals: dict[Key, list[int]] = field(default_factory=dict)  # [bytes, allocations, alive now, most alive]
    reps: dict[Key, Any] = field(default_factory=dict)  # one record per key, to resolve its stacks
    states: list[tuple[str, int]] = field(default_factory=list)  # ("tick", n) or ("stack", stack id)
    peak: int = 0  # bytes alive at the high-water mark, as memray counts them
    peak_tick: int = 0  # line ticks seen before the high-water mark
    ticks: int = 0
    records: int = 0
    exact: bool = True  # the heap reached memray's own peak figure (else: our own maximum)
    best_index: int = 0  # records read when the heap was at its highest under our rules
    seconds: float = 0.0


def _aggregate(live: dict[int, tuple[Any, int]], ranges: _Ranges) -> dict[Key, list[int]]:
    """``[bytes, allocations]`` per key of what is alive (malloc-level and mapped)."""
    out: dict[Key, list[int]] = {}
    for key, size in itertools.chain(live.values(), ranges.items()):
        if key is None:
            continue
        entry = out.get(key)
        if entry is None:
            out[key] = [size, 1]
        else:
            entry[0] += size
            entry[1] += 1
    return out


class _Threads:
    """Which of memray's thread ids are leakhunt's own threads (by the Python name memray saw)."""

    #: Records of a thread read without a name before it is taken for an unnamed (native) thread:
    #: a Python thread's first allocations can come before memray has its name.
    UNNAMED_AFTER = 64

    def __init__(self, main_tid: int) -> None:
        self.main = main_tid
        self.ours: dict[int, bool] = {}
        self.unnamed: dict[int, int] = {}

    def is_ours(self, tid: int, record: Any) -> bool:
        found = self.ours.get(tid)
        if found is None:
            try:
                name = record.thread_name or ""
            except Exception:  # noqa: BLE001 - a name memray cannot give is not ours
                name = ""
            if name or self.unnamed.get(tid, 0) >= self.UNNAMED_AFTER:
                found = self.ours[tid] = name.startswith("leakhunt")
            else:
                self.unnamed[tid] = self.unnamed.get(tid, 0) + 1
                return False
        return found


class _Keys:
    """The key of each allocation record, and the target's whereabouts between ticks."""

    def __init__(self, main_tid: int, is_marker: Callable[[Any], bool], marker_size: int, out: Scan) -> None:
        self.main_tid = main_tid
        self.is_marker = is_marker
        self.marker_size = marker_size
        self.out = out
        self.threads = _Threads(main_tid)
        self.markers: dict[int, bool] = {}  # stack id -> whether records of the marker's size there are markers
        self.state = -1  # the current index into out.states (-1: nothing known yet)
        self.main_stack = -1

    def of(self, record: Any, size: int) -> Any:
        """The key of an allocation; None for a tick's marker and for leakhunt's own threads."""
        stack = record.stack_id  # 0: no Python stack (a worker thread of a library)
        if size == self.marker_size and self._marker(record, stack):
            self.out.ticks += 1
            return self._moved(("tick", self.out.ticks))
        tid = record.tid
        if tid != self.main_tid and self.threads.is_ours(tid, record):
            return None
        if stack:
            if stack != self.main_stack and tid == self.main_tid:
                self.main_stack = stack
                self._moved(("stack", stack))
            # small allocations of one Python stack share a key whatever their native path: their
            # native frames are never resolved, and most records of a capture are small ones
            return (stack, record.native_stack_id if size >= NATIVE_KEYED else 0, -1)
        return (-2 - self.state, record.native_stack_id, tid)

    def _marker(self, record: Any, stack: int) -> bool:
        found = self.markers.get(stack)
        if found is None:
            found = self.markers[stack] = self.is_marker(record)
        return found

    def _moved(self, where: tuple[str, int]) -> None:
        self.out.states.append(where)
        self.state = len(self.out.states) - 1


def _free(record: Any, allocator: int, live: dict[int, tuple[Any, int]], ranges: _Ranges,
          totals: dict[Key, list[int]]) -> int:
    """Forget what a free or an unmap releases; the bytes released."""
    if allocator == MUNMAP:
        released = 0
        for key, size in ranges.remove(record.address, record.size):
            released += size
            if key is not None:
                totals[key][2] -= size
        return released
    entry = live.pop(record.address, None)
    if entry is None:
        return 0
    if entry[0] is not None:
        totals[entry[0]][2] -= entry[1]
    return entry[1]


def scan(records: Iterable[Any], *, peak: int, main_tid: int, is_marker: Callable[[Any], bool],
         marker_size: int, total: int | None = None, progress: Callable[[int, int | None], None] | None = None,
         stop_at: int | None = None) -> Scan:
    """One pass over memray's records (``FileReader.get_allocation_records()``, in order).

    ``peak``: memray's own high-water mark (``FileReader.metadata.peak_memory``): the live state is
    copied the first time the heap reaches it. ``is_marker(record)`` tells a line tick's marker
    among the records of ``marker_size`` bytes. Allocations of leakhunt's own threads and the
    markers count in the heap (memray counts them) but are charged to no line. ``stop_at``: copy
    the live state after that many records instead (a second pass, when the heap never reached
    memray's figure: then :attr:`Scan.best_index` of the first pass is the maximum under our rules).
    """
    t0 = time.perf_counter()
    out = Scan()
    keys = _Keys(main_tid, is_marker, marker_size, out)
    live: dict[int, tuple[Any, int]] = {}
    ranges = _Ranges()
    totals = out.totals
    cur = best = n = 0
    snapshot: dict[Key, list[int]] | None = None
    report_at = _PROGRESS_EVERY
    for record in records:
        n += 1
        allocator = record.allocator
        if allocator in FREES or allocator == MUNMAP:
            cur -= _free(record, allocator, live, ranges, totals)
            continue
        size = record.size
        key = keys.of(record, size)
        if allocator == MMAP:
            ranges.add(record.address, size, key)
        else:
            live[record.address] = (key, size)
        cur += size
        if key is not None:
            entry = totals.get(key)
            if entry is None:
                totals[key] = [size, 1, size, size]
                out.reps[key] = record
            else:
                entry[0] += size
                entry[1] += 1
                entry[2] += size
                if entry[2] > entry[3]:
                    entry[3] = entry[2]
        if cur > best:
            best, out.best_index = cur, n
            if snapshot is None and (cur >= peak if stop_at is None else n == stop_at):
                snapshot, out.peak_tick = _aggregate(live, ranges), out.ticks
        elif n == stop_at:
            snapshot, out.peak_tick = _aggregate(live, ranges), out.ticks
        if n >= report_at and progress is not None:
            report_at += _PROGRESS_EVERY
            progress(n, total)
    out.records = n
    out.at_end = _aggregate(live, ranges)
    out.exact = snapshot is not None
    out.at_peak = snapshot if snapshot is not None else {}
    out.peak = peak if stop_at is None and snapshot is not None else best
    out.seconds = time.perf_counter() - t0
    return out


def state_of(key: Key) -> int:
    """The index into :attr:`Scan.states` of a key made without a Python stack (-1: none known)."""
    return -2 - key[0]
