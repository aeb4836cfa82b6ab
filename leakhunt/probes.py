"""Raw readings of the process's memory, each ``None`` where it cannot be had.

Every reading here is cheap (microseconds) except :func:`traced_by_domain` (a tracemalloc
snapshot), :func:`children_memory` (reads each child's smaps) and :func:`object_counts`
(walks the gc heap): those are for explaining, not for every test.
"""

from __future__ import annotations

import collections
import os
import re
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass
from itertools import compress, repeat
from operator import eq, itemgetter
from typing import Any, Iterable, Mapping

try:
    import resource as _resource

    # The mark (ru_maxrss) is the process's whichever is asked; RUSAGE_THREAD skips adding up
    # every thread's CPU times (0.9 us against 1.7 us in a loop here, benchmarks/mark_lag.py).
    _SELF = getattr(_resource, "RUSAGE_THREAD", _resource.RUSAGE_SELF)
except ImportError:  # not on Windows
    _resource = None  # type: ignore[assignment]
    _SELF = 0

__all__ = [
    "Reading",
    "PeakWindow",
    "QuickMeter",
    "DOMAINS",
    "allow_hwm_reset",
    "process_peak",
    "restore_hwm",
    "rss",
    "rss_anon",
    "hwm",
    "arrow",
    "arrow_pool_max",
    "traced",
    "traced_by_domain",
    "children_memory",
    "children_hwm",
    "forks",
    "object_counts",
    "read",
]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

#: tracemalloc domains that matter for data work (numpy and pandas register their own).
DOMAINS: Mapping[int, str] = {0: "python", 389047: "numpy", 424242: "pandas"}


# /proc files stay open and are read with pread: opening them was most of the cost of a
# per-test measurement (7 opens, ~30 us each). A descriptor of /proc/self opened before a fork
# still describes the parent, so a child starts afresh.
_fds: dict[str, int | None] = {}


def _proc_fd(name: str, flags: int = os.O_RDONLY) -> int | None:
    fd = _fds.get(name, -1)
    if fd == -1:
        try:
            fd = os.open(f"/proc/self/{name}", flags | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            fd = None
        _fds[name] = fd
    return fd


def _forget_fds() -> None:
    for fd in _fds.values():
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
    _fds.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_fds)


_LIBC: list[Any] = []  # [the C library] or [None], once looked up


def libc() -> Any:
    """The C library (``ctypes.CDLL``), loaded once; ``None`` where it cannot be loaded. Callers
    set the argument types of the functions they call (the same types wherever one is used)."""
    if not _LIBC:
        import ctypes
        import ctypes.util

        try:
            _LIBC.append(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"))
        except OSError:
            _LIBC.append(None)
    return _LIBC[0]


def _proc_read(name: str, size: int) -> bytes | None:
    fd = _proc_fd(name)
    if fd is None:
        return None
    try:
        return os.pread(fd, size, 0)
    except OSError:
        return None


def _statm() -> tuple[int, int] | None:
    """(resident, shared) bytes from /proc/self/statm, or None off Linux."""
    fd = _fds.get("statm", -1)  # _proc_read, inlined: this runs three times per measured test
    if fd == -1:
        fd = _proc_fd("statm")
    if fd is None:
        return None
    try:
        fields = os.pread(fd, 256, 0).split()
        return int(fields[1]) * _PAGE, int(fields[2]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


def _psutil_rss() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # any psutil failure means "unavailable", never a crash
        return None


def _rss_and_anon() -> tuple[int | None, int | None]:
    """(resident, anonymous resident) bytes: one statm read; psutil's RSS off Linux."""
    statm = _statm()
    if statm is not None:
        return statm[0], statm[0] - statm[1]
    return _psutil_rss(), None


def rss() -> int | None:
    """Resident set size of this process in bytes."""
    statm = _statm()
    return statm[0] if statm is not None else _psutil_rss()


def rss_anon() -> int | None:
    """Resident anonymous memory (heap, mmaps, buffers): RSS minus file-backed pages.

    This is what a leak grows; shared libraries paged in by an import are left out.
    """
    statm = _statm()
    if statm is None:
        return None
    return statm[0] - statm[1]


def _status_kib(field: bytes) -> int | None:
    data = _proc_read("status", 8192)
    if data is None:
        return None
    at = data.find(b"\n" + field)
    if at < 0:
        return None
    try:
        return int(data[at + len(field) + 1:data.index(b"\n", at + 1)].split()[0]) * 1024
    except (ValueError, IndexError):
        return None


def hwm() -> int | None:
    """VmHWM: the resident high-water mark since start or since the last reset."""
    value = _status_kib(b"VmHWM:")
    if value is not None:
        return value
    try:
        import resource

        ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(ru) * (1 if sys.platform == "darwin" else 1024)
    except Exception:
        return None


def arrow() -> int | None:
    """Bytes allocated by Arrow's default pool; None unless pyarrow is already imported.

    We never import pyarrow ourselves: that would cost 100+ ms and change what we measure.
    """
    pa = sys.modules.get("pyarrow")
    if pa is None:
        return None
    try:
        return int(pa.total_allocated_bytes())
    except Exception:
        return None


def arrow_pool_max() -> int | None:
    """The most Arrow's default pool has ever held (it cannot be reset); None without pyarrow."""
    pa = sys.modules.get("pyarrow")
    if pa is None:
        return None
    try:
        return int(pa.default_memory_pool().max_memory())
    except Exception:
        return None


def traced() -> int | None:
    """Current tracemalloc total, or None when tracing is off."""
    if not tracemalloc.is_tracing():
        return None
    return tracemalloc.get_traced_memory()[0]


def traced_by_domain(snapshot: tracemalloc.Snapshot | None = None) -> dict[str, int] | None:
    """Traced bytes split by domain (python, numpy, pandas, other). Costly: takes a snapshot."""
    if snapshot is None:
        from leakhunt.tracing import snapshot as take

        snapshot = take()
        if snapshot is None:  # nothing traces
            return None
    out = {name: 0 for name in DOMAINS.values()}
    out["other"] = 0
    raw = getattr(snapshot.traces, "_traces", None)  # (domain, size, ...) tuples: no object each
    if raw is None:  # pragma: no cover - a tracemalloc without the private list
        raw = [(t.domain, t.size) for t in snapshot.traces]
    # Summed per domain in C (map, compress): nothing allocated per trace while tracemalloc
    # traces this function's own allocations (leakhunt.tracing.by_traceback says why), and no
    # loop turn in Python per trace (a snapshot of a block that made 20,000 objects has as many).
    domains = list(map(itemgetter(0), raw))
    present = set(domains)
    for domain in present:
        sizes: Iterable[int] = map(itemgetter(1), raw)
        if len(present) > 1:
            sizes = compress(sizes, map(eq, domains, repeat(domain)))
        out[DOMAINS.get(domain, "other")] += sum(sizes)
    return out


#: Children that are nobody's work: multiprocessing's helpers. (leakhunt's own helper processes,
#: the outside sampler and the capture's reader, are nobody's children: leakhunt.outside.launch_detached.)
_SKIP_CHILD_MARKERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def _child_processes(include_pids: Iterable[int] | None = None,
                     exclude_pids: Iterable[int] | None = None) -> list[Any]:
    import psutil

    me = psutil.Process()
    kids = me.children(recursive=True)
    if include_pids is not None:
        wanted = set(include_pids)
        kids = [k for k in kids if k.pid in wanted]
    if exclude_pids:
        unwanted = set(exclude_pids)
        kids = [k for k in kids if k.pid not in unwanted]
    out = []
    for kid in kids:
        try:
            cmd = " ".join(kid.cmdline())
        except (psutil.Error, OSError):
            continue
        # The resource tracker and forkserver outlive pools and belong to no user's work.
        if any(marker in cmd for marker in _SKIP_CHILD_MARKERS):
            continue
        out.append(kid)
    return out


def children_memory(include_pids: Iterable[int] | None = None,
                    exclude_pids: Iterable[int] | None = None) -> int | None:
    """Sum of the proportional set size (PSS) of live child processes, in bytes.

    RSS would count pages shared with us (and between children) once per process; PSS
    splits them. Falls back to USS, then RSS, where PSS is not readable. Multiprocessing's
    resource tracker and forkserver are left out.
    """
    try:
        import psutil
    except ImportError:
        return None
    try:
        kids = _child_processes(include_pids, exclude_pids)
    except Exception:
        return None
    total = 0
    for kid in kids:
        try:
            info = kid.memory_full_info()
            value = getattr(info, "pss", None) or getattr(info, "uss", None) or info.rss
        except (psutil.Error, OSError):
            try:
                value = kid.memory_info().rss
            except (psutil.Error, OSError):
                continue
        total += int(value)
    return total


# An upper bound of the floor under getrusage's ru_maxrss (see hwm_mark()); None until first read.
_floor_bound: int | None = None


def hwm_mark() -> int | None:
    """The kernel's high-water mark (VmHWM), read as cheaply as it can be.

    getrusage's ``ru_maxrss`` is the same figure for a system call (~2 us) instead of a /proc
    text file (~12 us), with one difference: Linux keeps the peak of the memory the process had
    before its exec as a floor under it, so a child spawned by a big parent reads the parent's
    peak (a Python spawned from a 230 MB process read 232 MB against a VmHWM of 14 MB). Above
    that floor it is the mark; at or below it, /proc/self/status is read. The floor is learnt
    from the readings themselves: where the two agree, the floor is at most that value; where
    ru_maxrss is higher, it is the floor.
    """
    global _floor_bound
    if _resource is None:
        return hwm()
    try:
        ru = _resource.getrusage(_SELF).ru_maxrss * 1024
    except Exception:
        return hwm()
    if _floor_bound is not None and ru > _floor_bound:
        return ru
    status = _status_kib(b"VmHWM:")
    if status is None:
        return hwm()  # off Linux: the platform's own reading
    bound = status if ru <= status else ru  # ru = max(floor, VmHWM)
    _floor_bound = bound if _floor_bound is None else min(_floor_bound, bound)
    return status


def _learn_floor() -> None:
    """Read both marks once, early (at import, while the process is small): the bound learnt
    then lets getrusage answer for every mark above it."""
    global _floor_bound
    _floor_bound = None
    hwm_mark()


_learn_floor()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_learn_floor)  # a forked child learns its own


def children_hwm() -> int | None:
    """The highest peak RSS of any child this process has waited for, ever (bytes).

    The kernel keeps it (``getrusage(RUSAGE_CHILDREN).ru_maxrss``) for children that ended and
    were reaped, however short they lived, so it sees what a sampler polling live children can
    miss. It only ever rises, and a child's figure includes what it shares with us: a forked
    child's resident set counts the pages it inherited, and a child that runs another program
    starts from the parent's high-water mark (Linux carries it over ``exec``).
    """
    try:
        import resource

        value = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    except Exception:
        return None
    return int(value) * (1 if sys.platform == "darwin" else 1024)


_forks = 0


def _count_fork() -> None:
    global _forks
    _forks += 1


if hasattr(os, "register_at_fork"):
    # Python-level forks only (os.fork, multiprocessing's "fork"): a child that runs another
    # program (subprocess, "spawn") is started without running this.
    os.register_at_fork(before=_count_fork)


def forks() -> int:
    """How many times this process has forked a copy of itself from Python (os.fork)."""
    return _forks


def type_name(long_name: str) -> str:
    """objgraph's long type name for people: ``builtins.list`` -> ``list``; others unchanged."""
    return long_name[len("builtins."):] if long_name.startswith("builtins.") else long_name


def object_counts() -> collections.Counter[str]:
    """gc-tracked objects by type name (``objgraph.typestats``). Walks the heap: for explaining only."""
    import objgraph

    stats = objgraph.typestats(shortnames=False)
    # Built with item assignment, not Counter(mapping): Counter.update's isinstance check
    # against Mapping fills ABC caches on first use, objects that would read as growth.
    counts: collections.Counter[str] = collections.Counter()
    for name, n in stats.items():
        counts[type_name(name)] += n
    return counts


@dataclass(slots=True)
class Reading:
    """One reading of every cheap figure (and the costly ones when asked for).

    A value: never changed once taken. Not a frozen dataclass only because building a frozen
    one costs several times as much, and two readings are taken per measured test (issue 9).
    """

    time: float
    rss: int | None
    rss_anon: int | None
    traced: int | None
    arrow: int | None
    traced_domains: dict[str, int] | None = None
    children: int | None = None


def read(*, domains: bool = False, children: bool = False, exclude_pids: Iterable[int] | None = None) -> Reading:
    """Take a :class:`Reading`. ``domains`` and ``children`` add the costly figures;
    ``exclude_pids``: children left out (those that existed before a block began)."""
    # Runs twice per cheaply measured block: the cheap figures are read inline (issue 9).
    resident, anon = _rss_and_anon()
    return Reading(
        time.perf_counter(),
        resident,
        anon,
        tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None,
        arrow() if "pyarrow" in sys.modules else None,
        traced_by_domain() if domains else None,
        children_memory(exclude_pids=exclude_pids) if children else None,
    )


# --------------------------------------------------------------------------------------
# Peak windows
#
# VmHWM is one per process, and resetting it (writing 5 to /proc/self/clear_refs) would
# wipe the peak of any enclosing window. So every open window is registered here, and
# before any reset the current high-water mark is folded into each open window's maximum.
# Where the reset is impossible (no /proc, not permitted), or not allowed (``allow_hwm_reset``),
# one shared thread samples RSS.
#
# The reset is a side effect other tools see: VmHWM, getrusage's ru_maxrss and
# ``/usr/bin/time -v`` read the mark (issue 13: 36 MB reported for a 239 MB session). So the
# highest mark seen before any reset of ours is kept, and :func:`restore_hwm` raises the
# kernel's mark back to it (at the end of a pytest session, and at exit).


def _reset_hwm() -> bool:
    fd = _fds.get("clear_refs", -1)
    if fd == -1:
        fd = _proc_fd("clear_refs", os.O_WRONLY)
    if fd is None:
        return False
    try:
        os.write(fd, b"5")
        return True
    except OSError:
        return False


class _Sampler(threading.Thread):
    """Fallback peak tracking: sample RSS every ``interval`` seconds into open windows."""

    def __init__(self, interval: float = 0.001) -> None:
        super().__init__(name="leakhunt-peak-sampler", daemon=True)
        self.interval = interval
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            value = rss()
            if value is not None:
                _fold(value)


_lock = threading.Lock()
_open: list[PeakWindow] = []
_sampler: _Sampler | None = None
_can_reset: bool | None = None
_reset_allowed = True
#: the highest kernel mark read before a reset of ours (None: never reset)
_mark_before_reset: int | None = None
_restore_at_exit = False


def _fold(value: int) -> None:
    with _lock:
        _fold_locked(value)


def _fold_locked(value: int) -> None:
    """A reading into every open window's maximum (the lock held)."""
    for window in _open:
        if window._max is None or value > window._max:
            window._max = value


def _keep_mark_locked(mark: int) -> None:
    """A mark read just before one of our resets: the process's peak keeps it, and the kernel's
    mark is raised back to it at exit (the lock held)."""
    global _mark_before_reset
    if _mark_before_reset is None or mark > _mark_before_reset:
        _mark_before_reset = mark
        _restore_at_exit_once()


def allow_hwm_reset(allowed: bool) -> bool:
    """Whether peak windows may reset the kernel's high-water mark; returns the previous setting.

    With ``False`` nothing of ours writes ``/proc/self/clear_refs``: VmHWM, ``ru_maxrss`` and
    ``/usr/bin/time`` read what they would without leakhunt, and a window's peak is the kernel's
    mark when the window raised it, else what a thread sampling RSS every millisecond saw (a
    spike shorter than that can be missed). Windows already open keep their mode.
    """
    global _reset_allowed
    with _lock:
        previous, _reset_allowed = _reset_allowed, bool(allowed)
    return previous


def process_peak() -> int | None:
    """The highest resident set this process has had, whatever leakhunt reset (bytes)."""
    mark = hwm()
    if _mark_before_reset is None:
        return mark
    if mark is None:
        return _mark_before_reset
    return max(mark, _mark_before_reset)


_RESTORE_CHUNK = 4 * 1024 * 1024


def restore_hwm() -> bool:
    """Raise the kernel's high-water mark back to :func:`process_peak` after our resets.

    The mark only rises with resident pages, so pages of one small shared-memory file (4 MiB)
    are mapped again and again until the resident set reaches the peak, then unmapped: the
    mark records the peak, while the memory in use grows by that file and the page tables of
    the mappings (about 0.2 % of the difference), for the few milliseconds this takes.
    Returns True when the mark now reads the peak (or was never lowered by us); False where it
    cannot be raised (no ``memfd_create``, or a mapping refused).
    """
    with _lock:
        if _open or _mark_before_reset is None:
            return _mark_before_reset is None  # windows still measure: restoring now would fake their peak
        target = _mark_before_reset
    current, mark = rss(), hwm()
    if current is None or mark is None:
        return False
    if mark >= target:
        return True
    import mmap

    if not hasattr(os, "memfd_create"):
        return False
    page = mmap.PAGESIZE
    maps: list[mmap.mmap] = []
    fd = -1
    try:
        fd = os.memfd_create("leakhunt-hwm", getattr(os, "MFD_CLOEXEC", 0))
        os.ftruncate(fd, _RESTORE_CHUNK)
        populate = getattr(mmap, "MAP_POPULATE", 0)
        need = target - current
        while need > 0:
            length = min(_RESTORE_CHUNK, -(-need // page) * page)
            view = mmap.mmap(fd, length, flags=mmap.MAP_SHARED | populate, prot=mmap.PROT_READ)
            if not populate:
                for offset in range(0, length, page):  # fault each page in: now it is resident
                    view[offset]
            maps.append(view)
            need -= length
    except OSError:
        return False
    finally:
        for view in maps:
            view.close()
        if fd >= 0:
            os.close(fd)
    after = hwm()
    return after is not None and after >= target - page


def _forget_resets() -> None:
    """In a forked child: the parent's resets are not the child's. Its mark is its own, and the
    at-exit restore it inherits with the parent's at-exit callbacks finds nothing to do (it
    used to raise a child's mark to its parent's peak). Kept as state, not as a check in the
    callback: the callback is registered inside a measured window, which must allocate nothing
    more than it did (tests/test_probes.py reads pages exactly)."""
    global _mark_before_reset
    _mark_before_reset = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_resets)


def _restore_at_exit_once() -> None:
    global _restore_at_exit
    if not _restore_at_exit:
        _restore_at_exit = True
        import atexit

        atexit.register(restore_hwm)


def _mark_locked(reset: bool) -> int | None:
    """The kernel's mark now, when a window is open or a reset will lose it. getrusage answers
    above the floor learnt at import (hwm_mark() inlined: this runs around every test under
    --leak-report)."""
    ru = _resource.getrusage(_SELF).ru_maxrss * 1024 if _resource is not None else None
    if ru is not None and _floor_bound is not None and ru > _floor_bound:
        return ru
    return hwm_mark() if (_open or reset) else None


def _reset_above_locked(reset: bool, mark: int | None, start: int | None) -> None:
    """Reset the mark, unless it stands no higher than the window's start: then it holds
    nothing to lose, and reads as if just reset."""
    global _can_reset
    if reset and not (_can_reset and mark is not None and start is not None and mark <= start):
        _can_reset = _reset_hwm()
        if _can_reset and mark is not None:
            _keep_mark_locked(mark)


def _start_sampler_locked() -> None:
    global _sampler
    if _sampler is None:
        _sampler = _Sampler()
        _sampler.start()


class PeakWindow:
    """The highest RSS the process reached while the window was open.

    ``with PeakWindow() as w: ...`` then ``w.peak`` (absolute bytes) and ``w.start``.
    Windows nest: an inner window never hides the outer one's peak.
    """

    def __init__(self) -> None:
        self.start: int | None = None
        self.peak: int | None = None
        self._max: int | None = None
        self._mode: str = ""
        self._mark_at_open: int | None = None

    @property
    def mode(self) -> str:
        """``"hwm"`` (kernel high-water mark, reset at open where it stood above the start) or
        ``"sampled"`` (a sampling thread, and the kernel's mark when the window raised it)."""
        return self._mode

    def open(self, start: int | None = None) -> PeakWindow:
        """Open the window; ``start``: an RSS the caller read just now (one reading fewer).

        The kernel's mark is reset only when it stands above ``start``: a mark at or below the
        window's start holds no peak this window could wrongly count (its peak is never below
        its start) and none another window or the process's peak could lose, so leaving it
        changes no figure and saves a system call (most tests of a suite whose memory is flat).
        """
        if start is None:
            start = rss()
        with _lock:
            reset = _reset_allowed and _can_reset is not False
            mark = _mark_locked(reset)
            if mark is not None:
                _fold_locked(mark)  # the mark before a reset is lost: open windows and the process keep it
            _reset_above_locked(reset, mark, start)
            self.start = self._max = start
            if reset and _can_reset:
                self._mode = "hwm"
            else:
                self._mode = "sampled"
                self._mark_at_open = mark if mark is not None else hwm_mark()
                _start_sampler_locked()
            _open.append(self)
        return self

    def close(self, end: int | None = None) -> int | None:
        """Close the window; ``end``: an RSS the caller read just now (else one is read here).

        The peak is never below the end reading: the kernel's mark can lag the exact resident
        size (it moves in steps of 32 pages here, ``benchmarks/mark_lag.py``), so a window whose
        memory only grew would otherwise read a peak below its growth.
        """
        global _sampler
        sampler = None
        with _lock:
            # In "sampled" mode the mark counts when this window raised it.
            ru = _resource.getrusage(_SELF).ru_maxrss * 1024 if _resource is not None else None
            mark = ru if ru is not None and _floor_bound is not None and ru > _floor_bound else hwm_mark()
            if end is None:
                end = rss()
            if self._mode == "hwm":
                candidates = (mark, end)
            else:
                raised = mark is not None and self._mark_at_open is not None and mark > self._mark_at_open
                candidates = (end, mark if raised else None)
            for value in candidates:
                if value is not None:
                    _fold_locked(value)
            if self in _open:
                _open.remove(self)
            if _sampler is not None and not any(w._mode == "sampled" for w in _open):
                sampler, _sampler = _sampler, None
        if sampler is not None:
            sampler.stop_event.set()
            sampler.join()
        self.peak = self._max
        return self.peak

    def __enter__(self) -> PeakWindow:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


#: What :meth:`QuickMeter.stop` returns, a plain tuple: (time before, time after, RSS before,
#: anonymous RSS before, RSS after, anonymous RSS after, peak RSS, traced before, traced peak
#: before, traced after, traced peak after, Arrow before, Arrow pool maximum before, Arrow after,
#: Arrow pool maximum after); ``None`` where unavailable.
Sample = tuple
#: Positions of the RSS before and after the call in a :data:`Sample`.
SAMPLE_RSS_BEFORE, SAMPLE_RSS_AFTER = 2, 4


class _Slow(Exception):
    """The quick meter's common case does not apply: the general path runs instead."""


class QuickMeter:
    """The cheapest measurement of many short calls in a row: a test suite's tests under
    ``--leak-report``. At a call's start, one RSS reading and a peak window opened from it (the
    kernel's mark reset where it stood above that reading); at its end, one more reading and the
    window's peak (never below that reading, :meth:`PeakWindow.close`); tracemalloc's and
    Arrow's figures only when they are running. The window is a :class:`PeakWindow` like any
    other (windows around it and inside the call keep their peaks). :meth:`stop` returns a
    :data:`Sample`; :func:`leakhunt.measure.from_sample` makes a
    :class:`~leakhunt.measure.Measurement` of it.

    The meter runs around every test, where caches are cold: each line costs several times what
    it costs in a loop (issue 9 measured the start at 28 us in a test suite, 5 us in a loop). So
    the common case - /proc readable, the mark resettable and above getrusage's floor, no
    sampling thread - is written out here, reading ``statm``, ``getrusage`` and writing
    ``clear_refs`` (when the mark needs it) directly, with the window's bookkeeping inline;
    anything else takes :meth:`PeakWindow.open` and :meth:`PeakWindow.close`, which hold the
    same rules.
    """

    __slots__ = ("_window", "_before")

    def __init__(self) -> None:
        self._window = PeakWindow()
        self._before: tuple[Any, ...] = ()

    def start(self) -> None:
        window = self._window
        statm, clear = _fds.get("statm"), _fds.get("clear_refs")
        try:
            if statm is None or clear is None or _can_reset is not True or not _reset_allowed \
                    or _floor_bound is None or _resource is None:
                raise _Slow
            fields = os.pread(statm, 256, 0).split()
            rss_now = int(fields[1]) * _PAGE
            anon = rss_now - int(fields[2]) * _PAGE
            with _lock:
                # PeakWindow.open in "hwm" mode: the mark before the reset goes to the open
                # windows and the process's peak, then the reset
                mark = _resource.getrusage(_SELF).ru_maxrss * 1024
                if mark <= _floor_bound:
                    raise _Slow
                _fold_locked(mark)
                if mark > rss_now:  # a peak above the start: keep it, then reset (else no need)
                    os.write(clear, b"5")
                    _keep_mark_locked(mark)
                window.start = window._max = rss_now
                window._mode = "hwm"
                _open.append(window)
        except (_Slow, OSError, IndexError, ValueError):
            rss_now, anon = _rss_and_anon()
            window.open(start=rss_now)
        traced = traced_peak = arrow_now = arrow_max = None
        if tracemalloc.is_tracing():
            traced, traced_peak = tracemalloc.get_traced_memory()
        if "pyarrow" in sys.modules:
            arrow_now, arrow_max = arrow(), arrow_pool_max()
        self._before = (rss_now, anon, traced, traced_peak, arrow_now, arrow_max, time.perf_counter())

    def stop(self) -> Sample:
        t1 = time.perf_counter()
        window = self._window
        statm = _fds.get("statm")
        try:
            fields = os.pread(statm, 256, 0).split()  # type: ignore[arg-type]
            rss_after = int(fields[1]) * _PAGE
            anon_after = rss_after - int(fields[2]) * _PAGE
        except (TypeError, OSError, IndexError, ValueError):  # no statm (TypeError: None)
            rss_after, anon_after = _rss_and_anon()
        peak = None
        if window._mode == "hwm" and _sampler is None and _floor_bound is not None and _resource is not None \
                and rss_after is not None:
            with _lock:
                # PeakWindow.close in "hwm" mode: the peak is the mark or the end reading,
                # whichever is higher (the mark can lag the exact count)
                mark = _resource.getrusage(_SELF).ru_maxrss * 1024
                if mark > _floor_bound and window in _open:
                    _fold_locked(mark if mark > rss_after else rss_after)
                    _open.remove(window)
                    peak = window.peak = window._max
        if peak is None:
            peak = window.close(rss_after)
        rss_now, anon, traced, traced_peak, arrow_now, arrow_max, t0 = self._before
        traced_after = traced_peak_after = arrow_after = arrow_max_after = None
        if traced is not None and tracemalloc.is_tracing():
            traced_after, traced_peak_after = tracemalloc.get_traced_memory()
        if "pyarrow" in sys.modules:
            arrow_after, arrow_max_after = arrow(), arrow_pool_max()
        return (t0, t1, rss_now, anon, rss_after, anon_after, peak, traced, traced_peak, traced_after,
                traced_peak_after, arrow_now, arrow_max, arrow_after, arrow_max_after)


_PYMALLOC: list[Any] = []  # [stats function, libc]; [None] when unavailable
_PYMALLOC_LOCK = threading.Lock()  # one reading at a time (blocks in threads end together)
_AVAILABLE = re.compile(rb"# bytes in available blocks\s*=\s*([\d,]+)")
_UNUSED = re.compile(rb"(\d+) unused pools \* (\d+) bytes")


def pymalloc_free() -> int | None:
    """Bytes Python's small-object allocator (pymalloc) holds free in its arenas: the free
    blocks and unused pools of arenas that still hold a live object, which it can never give
    back (freeing 99 % of a million small dicts leaves most arenas in use). Read from CPython's
    ``_PyObject_DebugMallocStats``, written to memory (glibc's ``open_memstream``; about 0.2
    ms); ``None`` off CPython or glibc, without pymalloc, or while tracemalloc runs (its
    allocator hooks hide pymalloc's statistics)."""
    with _PYMALLOC_LOCK:
        if not _PYMALLOC:
            _PYMALLOC.extend(_pymalloc_functions())
        if _PYMALLOC[0] is None:
            return None
        text = _pymalloc_text(*_PYMALLOC)
    if text is None:
        return None
    available, unused = _AVAILABLE.search(text), _UNUSED.search(text)
    if available is None:
        return None
    free = int(available.group(1).replace(b",", b""))
    return free + (int(unused.group(1)) * int(unused.group(2)) if unused is not None else 0)


def _pymalloc_text(stats: Any, libc: Any) -> bytes | None:
    import ctypes

    buffer, size = ctypes.c_void_p(), ctypes.c_size_t()
    handle = libc.open_memstream(ctypes.byref(buffer), ctypes.byref(size))
    if not handle:
        return None
    try:
        written = stats(handle)
    finally:
        libc.fclose(handle)  # sets buffer and size
    try:
        return ctypes.string_at(buffer.value, size.value) if written and buffer.value else None
    finally:
        libc.free(buffer)


def _pymalloc_functions() -> list[Any]:
    import ctypes

    try:
        stats = ctypes.pythonapi._PyObject_DebugMallocStats
        stats.argtypes, stats.restype = [ctypes.c_void_p], ctypes.c_int
        c = libc()
        c.open_memstream.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        c.open_memstream.restype = ctypes.c_void_p
        c.fclose.argtypes = [ctypes.c_void_p]
        c.free.argtypes = [ctypes.c_void_p]
    except (AttributeError, OSError):
        return [None]
    return [stats, c]
