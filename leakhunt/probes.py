"""Raw readings of the process's memory, each ``None`` where it cannot be had.

Every reading here is cheap (microseconds) except :func:`traced_by_domain` (a tracemalloc
snapshot), :func:`children_memory` (reads each child's smaps) and :func:`object_counts`
(walks the gc heap): those are for explaining, not for every test.
"""

from __future__ import annotations

import collections
import gc
import os
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

__all__ = [
    "Reading",
    "PeakWindow",
    "DOMAINS",
    "rss",
    "rss_anon",
    "hwm",
    "arrow",
    "arrow_pool_max",
    "traced",
    "traced_by_domain",
    "children_memory",
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
    data = _proc_read("statm", 256)
    if data is None:
        return None
    try:
        fields = data.split()
        return int(fields[1]) * _PAGE, int(fields[2]) * _PAGE
    except (IndexError, ValueError):
        return None


def _psutil_rss() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # any psutil failure means "unavailable", never a crash
        return None


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
        if not tracemalloc.is_tracing():
            return None
        snapshot = tracemalloc.take_snapshot()
    out = {name: 0 for name in DOMAINS.values()}
    out["other"] = 0
    raw = getattr(snapshot.traces, "_traces", None)  # (domain, size, ...) tuples: no object each
    pairs = ((t[0], t[1]) for t in raw) if raw is not None else (
        (t.domain, t.size) for t in snapshot.traces
    )
    for domain, size in pairs:
        out[DOMAINS.get(domain, "other")] += size
    return out


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


def object_counts() -> collections.Counter[str]:
    """gc-tracked objects by qualified type name. Walks the heap: for explaining only."""
    # Count by type first, then name each type once: a name per object would format a million
    # strings on a big heap. A plain dict, not Counter(iterable): Counter.update's isinstance
    # check against Mapping fills ABC caches on first use, objects that would read as growth.
    by_type: dict[type, int] = {}
    get = by_type.get
    for obj in gc.get_objects():
        tp = type(obj)
        by_type[tp] = get(tp, 0) + 1
    counts: collections.Counter[str] = collections.Counter()
    for tp, n in by_type.items():
        module = tp.__module__
        name = tp.__qualname__ if module in ("builtins", None) else f"{module}.{tp.__qualname__}"
        counts[name] += n
    del by_type
    return counts


@dataclass(frozen=True)
class Reading:
    """One reading of every cheap figure (and the costly ones when asked for)."""

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
    statm = _statm()
    if statm is not None:
        resident, anon = statm[0], statm[0] - statm[1]
    else:
        resident, anon = _psutil_rss(), None
    return Reading(
        time=time.perf_counter(),
        rss=resident,
        rss_anon=anon,
        traced=traced(),
        arrow=arrow(),
        traced_domains=traced_by_domain() if domains else None,
        children=children_memory(exclude_pids=exclude_pids) if children else None,
    )


# --------------------------------------------------------------------------------------
# Peak windows
#
# VmHWM is one per process, and resetting it (writing 5 to /proc/self/clear_refs) would
# wipe the peak of any enclosing window. So every open window is registered here, and
# before any reset the current high-water mark is folded into each open window's maximum.
# Where the reset is impossible (no /proc, not permitted), one shared thread samples RSS.


def _reset_hwm() -> bool:
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


def _fold(value: int) -> None:
    with _lock:
        for window in _open:
            if window._max is None or value > window._max:
                window._max = value


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

    @property
    def mode(self) -> str:
        """``"hwm"`` (kernel high-water mark) or ``"sampled"`` (fallback thread)."""
        return self._mode

    def open(self) -> PeakWindow:
        global _can_reset, _sampler
        with _lock:
            current_hwm = hwm() if _open else None  # only open windows need the mark before a reset
            for window in _open:
                if current_hwm is not None and (window._max is None or current_hwm > window._max):
                    window._max = current_hwm
            if _can_reset is not False:
                _can_reset = _reset_hwm()
            self.start = rss()
            self._max = self.start
            self._mode = "hwm" if _can_reset else "sampled"
            _open.append(self)
            if not _can_reset and _sampler is None:
                _sampler = _Sampler()
                _sampler.start()
        return self

    def close(self) -> int | None:
        global _sampler
        with _lock:
            # VmHWM is never below the current RSS: in "hwm" mode one reading is enough.
            mark = hwm() if self._mode == "hwm" else None
            candidates = [mark] if mark is not None else [rss()]
            for value in candidates:
                if value is None:
                    continue
                for window in _open:
                    if window._max is None or value > window._max:
                        window._max = value
            if self in _open:
                _open.remove(self)
            sampler = _sampler if not _open else None
            if sampler is not None:
                _sampler = None
        if sampler is not None:
            sampler.stop_event.set()
            sampler.join()
        self.peak = self._max
        return self.peak

    def __enter__(self) -> PeakWindow:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
