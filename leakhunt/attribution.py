"""What did this block create that is still alive, and what keeps it alive?

A process runs many blocks (tests) one after another; an explanation is only useful if it is
about what *this* block did. A :class:`Scope` is opened when the block starts and records what
attribution needs to tell the block's own objects from everything else:

- a *fresh* trace (:func:`leakhunt.tracing.start` with ``fresh=True``): every object the block
  allocates has a tracemalloc traceback, and nothing older has one. Where the user runs their
  own trace (never restarted), the scope instead records the buffers alive at the start;
- the threads alive at the start, with the CPU time each had used: memory that one of those
  threads allocated during the block is not the block's (their allocations are recognised by
  the thread's own code at the root of the allocation's traceback);
- the child processes alive at the start: they are not the block's children.

:func:`survivors` then lists the block's buffers that are still alive (numpy buffers, Arrow
objects, bytes; whatever their size, largest first), finds one path from a root to each with
one backwards search (:func:`leakhunt.retention.paths_to`), and groups them by root.
"""

from __future__ import annotations

import gc
import sys
import threading
import tracemalloc
import types
from dataclasses import dataclass
from typing import Any

import objgraph

from leakhunt import frames as _frames
from leakhunt import tracing
from leakhunt.explanation import Root, Site
from leakhunt.settle import thawed
from leakhunt.retention import HeapScan, RetentionPath, biggest_buffers, buffer_size, paths_to

__all__ = ["Scope", "Survivors", "survivors", "MIN_BUFFER"]

#: Buffers from this size up are searched one by one; smaller ones show in allocation sites.
MIN_BUFFER = 64 * 1024
_THREADING = threading.__file__


@dataclass(frozen=True)
class _Thread:
    name: str
    native_id: int | None
    cpu_ns: int | None
    code: tuple[tuple[str, int, int], ...]  # (file, first line, last line) of its target / run


def _cpu_ns(native_id: int | None) -> int | None:
    """CPU time a thread of this process has used (ns), from /proc; None where unreadable."""
    if native_id is None:
        return None
    try:
        with open(f"/proc/self/task/{native_id}/schedstat", "rb") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _code_spans(thread: threading.Thread) -> tuple[tuple[str, int, int], ...]:
    spans = []
    for fn in (getattr(thread, "_target", None), getattr(type(thread), "run", None)):
        code = getattr(fn, "__code__", None)
        if code is None or code.co_filename == _THREADING:
            continue
        lines = [line for _, _, line in code.co_lines() if line is not None]
        if lines:
            spans.append((code.co_filename, min(lines), max(lines)))
    return tuple(spans)


def _threads() -> dict[int, _Thread]:
    me = threading.get_ident()
    out = {}
    for t in threading.enumerate():
        if t.ident is None or t.ident == me or t.name.startswith("leakhunt"):
            continue
        out[t.ident] = _Thread(t.name, t.native_id, _cpu_ns(t.native_id), _code_spans(t))
    return out


def _child_pids() -> frozenset[int]:
    try:
        import psutil

        return frozenset(p.pid for p in psutil.Process().children(recursive=True))
    except Exception:
        return frozenset()


class Scope:
    """What existed when a block began. Open it before the block, :meth:`close` after explaining.

    ``trace``: trace the block freshly (the default); ``False`` leaves tracing as it is and
    records the buffers alive at the start instead (one pass over the heap).
    """

    def __init__(self, *, trace: bool = True, frames: int = tracing.TRACE_FRAMES) -> None:
        self.trace = tracing.start(frames, fresh=True) if trace else None
        self.baseline: frozenset[int] | None = None
        if self.trace is None or not self.trace.fresh:
            with thawed():
                self.baseline = frozenset(id(obj) for obj, _ in biggest_buffers(min_size=MIN_BUFFER, limit=1 << 30))
        self.threads = _threads()
        self.children = _child_pids()
        self.closed = False

    @property
    def fresh(self) -> bool:
        """Every traced allocation was made inside the block."""
        return self.trace is not None and self.trace.fresh and self.trace.active and tracemalloc.is_tracing()

    def created_here(self, obj: Any) -> bool:
        """Was ``obj`` created inside the block (as far as the scope can tell)?"""
        if self.fresh:
            try:
                return tracemalloc.get_object_traceback(obj) is not None
            except Exception:
                return False
        if self.baseline is not None:
            return id(obj) not in self.baseline
        return True

    # -------------------------------------------------------------- other threads
    def active_threads(self) -> list[str]:
        """Names of threads that existed at the start and used the CPU during the block."""
        names = []
        for ident, before in self.threads.items():
            after = _cpu_ns(before.native_id)
            alive = any(t.ident == ident for t in threading.enumerate())
            if alive and after is not None and before.cpu_ns is not None and after > before.cpu_ns:
                names.append(before.name)
        return names

    def foreign_spans(self) -> tuple[tuple[str, int, int], ...]:
        """Code of threads that existed at the start, minus code that a new thread runs too."""
        old = {span for t in self.threads.values() for span in t.code}
        new = {span for ident, t in _threads().items() if ident not in self.threads for span in t.code}
        return tuple(old - new)

    def foreign(self, frames: tuple[tuple[str, int], ...], spans: tuple[tuple[str, int, int], ...]) -> bool:
        """Did a thread that existed before the block allocate this (traceback newest first)?"""
        if not frames or frames[-1][0] != _THREADING:
            return False  # not rooted in a thread's bootstrap (or deeper than the traceback)
        for filename, lineno in reversed(frames):  # oldest first: the first frame outside threading
            if filename == _THREADING:
                continue
            return any(f == filename and lo <= lineno <= hi for f, lo, hi in spans)
        return False

    def foreign_traced(self, *, at_start: bool = False) -> tuple[int, int | None]:
        """(traced bytes alive that threads older than the block allocated, all traced bytes
        alive), both from one snapshot: those threads keep allocating, so the two must be read
        at the same moment. ``(0, None)`` when no such thread ran (at the start: exists)."""
        if not self.fresh or not (self.threads if at_start else self.active_threads()):
            return 0, None
        spans = self.foreign_spans()
        if not spans:
            return 0, None
        foreign = total = 0
        for trace in tracing._raw_traces(tracemalloc.take_snapshot()):
            total += trace[1]
            if self.foreign(trace[2], spans):
                foreign += trace[1]
        return foreign, total

    def object_foreign(self, obj: Any) -> bool:
        if not self.fresh or not self.threads:
            return False
        tb = tracemalloc.get_object_traceback(obj)
        return tb is not None and self.foreign(_frames.traceback_frames(tb), self.foreign_spans())

    def close(self) -> None:
        """Stop the trace the scope started (a trace of the user's is left alone)."""
        if not self.closed:
            self.closed = True
            if self.trace is not None:
                self.trace.stop()

    def __enter__(self) -> Scope:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass(frozen=True)
class Survivors:
    """The block's buffers still alive, grouped by root."""

    roots: tuple[Root, ...]
    found: int  # bytes in every buffer of the block still alive (from MIN_BUFFER up)
    buffers: int  # how many
    unrooted: int  # bytes of those for which no root was found within the search's bounds
    skipped: int  # bytes of buffers not searched (past max_buffers)

    @property
    def rooted(self) -> int:
        return sum(r.size for r in self.roots)


def _own_module(name: str) -> bool:
    return name.split(".", 1)[0] in ("leakhunt", "pytest_leakhunt")


def _library_module(name: str) -> bool:
    """Is the module an installed library's (or the standard library's), not the user's code?"""
    filename = getattr(sys.modules.get(name), "__file__", None)
    return not filename or _frames.kind(filename) == _frames.LIBRARY


def _library_root(path: RetentionPath) -> bool:
    """Is the path's root a global of an installed library (not the user's code)?"""
    if path.root_kind != "global" or " (global in " not in path.root:
        return False
    return _library_module(path.root.rsplit(" (global in ", 1)[1].rstrip(")"))


def _pattern(path: RetentionPath) -> str:
    """What keeps the memory, read from the path's objects (not from its text)."""
    chain = path.chain
    kinds = set()
    for i, obj in enumerate(chain):
        tp = type(obj)
        module = tp.__module__ or ""
        if module.startswith("pandas") and "GroupBy" in tp.__name__:
            kinds.add("groupby")
        np = sys.modules.get("numpy")
        if np is not None and isinstance(obj, np.ndarray) and obj.base is not None and i < len(chain) - 1:
            kinds.add("view")
        if module.startswith("pyarrow") and hasattr(obj, "get_total_buffer_size") and hasattr(obj, "nbytes"):
            try:
                if obj.get_total_buffer_size() > 2 * obj.nbytes + 4096:
                    kinds.add("arrow_slice")
            except Exception:
                pass
        if tp.__name__ == "_lru_cache_wrapper":
            kinds.add("cache")
        if isinstance(obj, types.CellType):
            kinds.add("closure")
    for kind in ("groupby", "view", "arrow_slice", "cache", "closure"):
        if kind in kinds:
            return kind
    if path.root_kind == "local":
        return "local"
    first = chain[0] if chain else None
    if isinstance(first, list):
        return "list"
    if isinstance(first, dict):
        return "dict"
    return "attribute"


def _site_of(obj: Any) -> Site | None:
    if not tracemalloc.is_tracing():
        return None
    try:
        tb = tracemalloc.get_object_traceback(obj)
    except Exception:
        return None
    if tb is None:
        return None
    frame = _frames.user_frame(_frames.traceback_frames(tb))
    if frame is None:
        return None
    return Site(file=frame[0], line=frame[1], code=_frames.code_line(*frame), size=buffer_size(obj) or 0, count=1)


def survivors(scope: Scope | None = None, **kwargs: Any) -> Survivors:
    """The buffers ``scope``'s block created and still holds (every buffer alive when ``scope``
    is None), grouped by the root that keeps them, largest group first.

    Keywords: ``min_size`` (buffers smaller are left to the allocation sites), ``max_buffers``
    (searched one by one; the rest are counted), ``timeout``, ``max_roots``, and ``named``:
    objects that count as roots under a label, e.g. a test's fixture values (``{"cache
    (fixture)": value}``), ranked above frame locals and library globals, so memory a fixture
    object holds is shown as the fixture's, not through the test runner.
    """
    with thawed():  # frozen objects are invisible to the heap walks
        return _survivors(scope, **kwargs)


def _survivors(scope: Scope | None = None, *, min_size: int = MIN_BUFFER, max_buffers: int = 64,
               timeout: float = 5.0, max_roots: int = 8, named: dict[str, Any] | None = None) -> Survivors:
    scan = HeapScan(min_size=min_size)
    candidates = [(obj, size) for obj, size in scan.buffers
                  if scope is None or (scope.created_here(obj) and not scope.object_foreign(obj))]
    scan.buffers.clear()
    found = sum(size for _, size in candidates)
    count = len(candidates)
    searched = candidates[:max_buffers]
    skipped = sum(size for _, size in candidates[max_buffers:])
    del candidates
    groups: dict[str, dict[str, Any]] = {}
    unrooted = 0
    if searched:
        objs = [obj for obj, _ in searched]
        paths = paths_to(objs, timeout=timeout, skip_module=_own_module, scan=scan, named=named,
                         library_module=_library_module)
        del objs
        for (obj, size), path in zip(searched, paths):
            if path is None:
                unrooted += size
                continue
            group = groups.get(path.root)
            if group is None:
                groups[path.root] = {"kind": path.root_kind, "size": size, "buffers": 1, "path": path,
                                     "site": _site_of(obj), "pattern": _pattern(path),
                                     "library": _library_root(path)}
            else:
                group["size"] += size
                group["buffers"] += 1
                rep = group["path"]
                # among equal buffers show the first one (list[0], not list[7])
                text, shown = str(path), str(rep)
                if buffer_size(rep.chain[-1]) == size and (len(text), text) < (len(shown), shown):
                    group["path"], group["site"] = path, _site_of(obj)
        del paths
    searched.clear()
    scan.clear()
    ordered = sorted(groups.items(), key=lambda kv: kv[1]["size"], reverse=True)
    roots = tuple(
        Root(root=label, kind=g["kind"], buffers=g["buffers"], size=g["size"], path=g["path"].nodes(),
             text=str(g["path"]), site=g["site"], pattern=g["pattern"], library=g["library"])
        for label, g in ordered[:max_roots]
    )
    unrooted += sum(g["size"] for _, g in ordered[max_roots:])
    return Survivors(roots=roots, found=found, buffers=count,
                     unrooted=unrooted, skipped=skipped)


def created_types(scope: Scope, limit: int = 6) -> tuple[tuple[str, int], ...]:
    """gc-tracked objects the block created and still holds, by type (largest counts first)."""
    if not scope.fresh:
        return ()
    # The raw traceback (newest frame first): a Traceback object per heap object costs seconds.
    get_tb = getattr(tracemalloc, "_get_object_traceback", None)
    if get_tb is None:  # pragma: no cover - a tracemalloc without the private function
        def get_tb(obj: Any) -> Any:
            tb = tracemalloc.get_object_traceback(obj)
            return None if tb is None else _frames.traceback_frames(tb)
    mine: dict[Any, bool] = {}  # by traceback: allocated by the user's own code, not by us

    def users(obj: Any) -> bool:
        frames = get_tb(obj)
        if frames is None:
            return False
        key = frames
        if key not in mine:
            # made by the user's own code (not ours, not a library on its own), and not by an
            # import: a module's functions and classes are one-time initialisation, not growth
            frame = _frames.user_frame(frames)
            mine[key] = (frame is not None and _frames.kind(frame[0]) == _frames.USER
                         and not _frames.is_import(frames))
        return mine[key]

    with thawed():
        new = [o for o in gc.get_objects() if users(o)]
    counts = objgraph.typestats(objects=new, shortnames=False)
    del new
    ranked = sorted(((n, c) for n, c in counts.items() if not _own_module(n.split(".")[0])),
                    key=lambda kv: kv[1], reverse=True)
    return tuple((name.removeprefix("builtins."), count) for name, count in ranked[:limit])

