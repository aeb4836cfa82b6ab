"""What did this block create that is still alive, and what keeps it alive?

A process runs many blocks (tests) one after another; an explanation is only useful if it is
about what *this* block did. A :class:`Scope` is opened when the block starts and records what
attribution needs to tell the block's own objects from everything else:

- the heap as it is: it is frozen (``gc.freeze()``, or left frozen when someone froze it), so at
  the block's end ``gc.get_objects()`` lists exactly the gc-tracked objects made since
  (:meth:`Scope.capture` takes them, then thaws what it froze, before the end is settled);
- optionally a *fresh* trace (:func:`leakhunt.tracing.start` with ``fresh=True``): every object
  the block allocates has a tracemalloc traceback, nothing older has one, so objects the gc
  does not track (numpy arrays, Arrow objects, strings) are told apart too, and the lines that
  allocated them are known. Without a trace, such an object counts as the block's when an
  object the block made holds it;
- the threads alive at the start, with the CPU time each had used: memory that one of those
  threads allocated during the block is not the block's (their allocations are recognised by
  the thread's own code at the root of the allocation's traceback);
- the child processes alive at the start: they are not the block's children.

:func:`survivors` then splits what the block made into *chunks* (an object no other new object
holds, with everything new it holds), searches backwards from the biggest chunks to their roots
(:func:`leakhunt.retention.paths_to`, a few dozen at a time), and walks forward from each root
found to every chunk it keeps: a root's figure is everything it keeps, each buffer counted once
(:mod:`leakhunt.sizing`), and roots are ranked by it. Chunks no search reached are counted as
unrooted; modules loaded during the block are a category of their own, not a root.
"""

from __future__ import annotations

import collections
import gc
import sys
import threading
import time
import tracemalloc
import types
import weakref
from dataclasses import dataclass, replace
from collections import Counter
from itertools import compress
from operator import not_
from typing import Any, Callable

from leakhunt import defaults
from leakhunt import frames as _frames
from leakhunt import import_state
from leakhunt import tracing
from leakhunt.cycles import CYCLE_KIND, CYCLE_ROOT, cycle_through_arrays
from leakhunt.explanation import Root, Site
from leakhunt.heap import PLAIN, HeapScan, children, closed
from leakhunt.hints import pattern_of
from leakhunt.leaf_rows import leaf_dicts
from leakhunt.frames import FRAMEWORK as _FRAMEWORK_PACKAGES
from leakhunt.retention import RetentionPath, paths_to
from leakhunt.settle import something_frozen, thawed
from leakhunt.sizing import Holding, holding, sized_by_getsizeof

__all__ = ["Scope", "Survivors", "survivors", "created_types", "kept_by", "buffer_baseline"]

#: Chunks searched in the first round of the backward search (the biggest first), and at
#: most in a later one.
_BATCH = 48
_BATCH_MAX = 1_000_000
_UNBOUNDED = 1 << 30
#: Objects a forward walk from one root may visit (a root that reaches a library's whole heap
#: stops there; the chunks it did not reach are searched from their own side).
_REACH = 400_000
_ATOMIC = (int, float, complex, bool, type(None))
#: A library's root keeping less than this (and under 1 % of what roots keep) is not shown.
_LIBRARY_SHOWN = 64 * 1024
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


_FRAMEWORK_TYPE: dict[type, bool] = {}


def _ours_or_framework(tp: type) -> bool:
    found = _FRAMEWORK_TYPE.get(tp)
    if found is None:
        module = getattr(tp, "__module__", None)
        found = _FRAMEWORK_TYPE[tp] = isinstance(module, str) and module.split(".", 1)[0] in _FRAMEWORK_PACKAGES
    return found


def _running_frames() -> set[int]:
    out: set[int] = set()
    tops = list(sys._current_frames().values())
    for top in tops:
        f: types.FrameType | None = top
        while f is not None:
            out.add(id(f))
            f = f.f_back
    tops.clear()  # this frame is among them: no cycle through its own variables
    f = top = None  # noqa: F841
    return out


class Scope:
    """What existed when a block began. Open it before the block, :meth:`capture` at its end
    (before the end is settled), :meth:`close` after explaining.

    ``trace``: trace the block freshly; ``children``: record the child processes alive now
    (a block that measures its children leaves them out); ``freeze``: tell the block's
    gc-tracked objects by freezing the heap (see the module's docstring); ``baseline``: record
    the data holders alive now even untraced, so that the numpy arrays and Arrow objects the
    block makes (which the gc does not track) are told apart from older ones — what explaining
    an untraced block's kept memory needs (``leakhunt run`` at a script's end).
    """

    def __init__(self, *, trace: bool = True, frames: int = tracing.TRACE_FRAMES, freeze: bool = True,
                 children: bool = True, baseline: bool = False) -> None:
        self.threads = _threads()  # first: their first call imports psutil, which the block did not
        self.children = _child_pids() if children else frozenset()
        self.trace = tracing.start(frames, fresh=True) if trace else None
        # Without a fresh trace (under a trace of the user's, older objects have tracebacks too;
        # untraced, the data holders have none), the data holders alive now are recorded instead:
        # one pass over the heap, only for a block that will be explained.
        self.baseline: frozenset[int] | None = (buffer_baseline() if (trace or baseline) and not self.fresh
                                                else None)
        self._made: list[Any] | None = None
        self._captured: list[Any] | None = None
        self.on_release: list[Callable[[], None]] = []  # what reads the block's end untraced (pymalloc)
        self.made_ids: frozenset[int] = frozenset()  # every gc-tracked object the block made (capture())
        self._froze = False
        self.frozen = False
        if freeze and gc.isenabled():
            self._froze = not something_frozen()
            gc.freeze()  # someone else's freeze stays theirs: this adds to it, never undoes it
            self.frozen = True
        self.closed = False

    @property
    def owns_freeze(self) -> bool:
        """It froze the heap and :meth:`close` thaws it: what is frozen meanwhile (an import set
        aside, :class:`leakhunt.imports.ImportMeter`) is thawed with it."""
        return self._froze

    @property
    def fresh(self) -> bool:
        """Every traced allocation was made inside the block."""
        return self.trace is not None and self.trace.fresh and self.trace.active and tracemalloc.is_tracing()

    def release_trace(self) -> None:
        """Stop the trace the scope started, once what needs it has been read: every allocation
        is traced while it runs, and the walks of an explanation allocate a lot."""
        if self.trace is not None:
            self.trace.stop()
            for read in self.on_release:
                read()
            self.on_release.clear()

    def capture(self) -> None:
        """After the block (before anything thaws the heap): take the gc-tracked objects it made
        that are still alive (:attr:`captured`). Idempotent; only what explains a block calls
        it, so a block that needs no explanation pays nothing for it. One list: cheap under
        the block's trace, where every allocation is traced."""
        if self._made is not None or not self.frozen or self.closed:
            return
        gc.collect()  # with the older heap frozen, this walks only what the block made
        self._made = gc.get_objects()
        self.made_ids = frozenset(map(id, self._made))  # leakhunt's and the framework's too
        self._running = _running_frames()  # the stacks running now are not what the block left

    @property
    def captured(self) -> list[Any] | None:
        """The gc-tracked objects the block made that are still alive (after :meth:`capture`),
        leaving out the test framework's and leakhunt's own."""
        if self._captured is None and self._made is not None:
            running = self._running
            self._captured = [o for o in self._made if not _ours_or_framework(type(o)) and id(o) not in running
                              and not _framework_made(o)]
            self._made = None
        return self._captured

    def created_here(self, obj: Any) -> bool | None:
        """Was ``obj`` created inside the block? ``None`` when the scope cannot tell (an object
        the gc does not track, without a fresh trace)."""
        if self.fresh:
            try:
                return tracemalloc.get_object_traceback(obj) is not None
            except Exception:
                return False
        if self.captured is not None and gc.is_tracked(obj):
            return id(obj) in self._captured_ids()
        if self.baseline is not None:
            return id(obj) not in self.baseline
        return None

    def _captured_ids(self) -> set[int]:
        ids = self.__dict__.get("_ids")
        if ids is None:
            ids = self.__dict__["_ids"] = {id(o) for o in self.captured or ()}
        return ids

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
        snapshot = tracing.snapshot()
        if snapshot is None:  # the trace stopped meanwhile (another thread's block ended)
            return 0, None
        foreign = total = 0
        for trace in tracing._raw_traces(snapshot):
            total += trace[1]
            if self.foreign(trace[2], spans):
                foreign += trace[1]
        return foreign, total

    def close(self) -> None:
        """Stop the trace the scope started (a trace of the user's is left alone), thaw what it
        froze, and let go of what it captured."""
        if not self.closed:
            self.closed = True
            if self._froze:
                gc.unfreeze()
                self._froze = False
            self._made = self._captured = None
            self.__dict__.pop("_ids", None)
            if self.trace is not None:
                self.trace.stop()

    def __enter__(self) -> Scope:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --------------------------------------------------------------------------------------
# survivors


@dataclass(frozen=True)
class Survivors:
    """What the block made that is still alive: grouped by root, and in named categories.

    ``found``: bytes of everything new still alive; ``roots``: the biggest roots (by what they
    keep); ``rooted``: bytes of every root found (shared buffers once); ``imports``: modules
    loaded during the block (a category, not a root); ``unrooted``: bytes of chunks for which
    no root was found within the search's bounds; ``skipped``: bytes not searched because the
    time ran out; ``attributable``: bytes the user's roots keep that every mode of measuring
    can attribute (gc-tracked objects and what they hold; not objects told apart by a trace
    alone), which the judgement's rule uses so that tracing never changes a verdict.
    """

    roots: tuple[Root, ...]
    found: int
    buffers: int
    unrooted: int = 0
    skipped: int = 0
    imports: int = 0
    rooted: int = 0
    attributable: int = 0
    objects: int = 0
    sites: tuple[Site, ...] = ()  # the biggest lines still alive (with ``sites=True``, when traced)
    rooted_arrow: int = 0  # of ``rooted``: Arrow buffers (Arrow's pool is counted on its own too)
    user_rooted: int = 0  # of ``rooted``: what the user's roots keep (not libraries')
    by_kind: tuple[tuple[str, int], ...] = ()  # ``rooted`` by kind: python, numpy, arrow, polars, ...
    types: tuple[tuple[str, int], ...] = ()  # the objects the user's roots keep, by type
    data_told: bool = False  # the block's data holders were told from older ones (traced, or a baseline)


class _Chunk:
    """An object the block made that no other new object holds, with the new objects under it."""

    __slots__ = ("entry", "count", "python", "buffers", "unknown", "biggest", "biggest_size", "traced_only",
                 "is_import", "root", "unrooted", "searched", "arrays", "estimated", "others")

    def __init__(self, entry: Any) -> None:
        self.entry = entry
        self.count = 0
        self.python = 0
        self.buffers: dict[Any, tuple[int, str]] | None = None  # key -> (bytes, kind)
        self.unknown: dict[str, int] | None = None
        self.biggest: Any = None
        self.biggest_size = -1
        self.traced_only = False
        self.is_import = False
        self.root: str | None = None
        self.unrooted = False
        self.searched = False  # a bounded search found no root (not counted as rootless)
        self.arrays: list[Any] | None = None  # object arrays in it (a cycle through one is never freed)
        self.estimated: dict[str, int] | None = None  # holders sized by their library's estimate
        self.others: list[Any] | None = None  # entries merged into this chunk (see _merged)

    @property
    def size(self) -> int:
        return self.python + (sum(size for size, _ in self.buffers.values()) if self.buffers else 0)

    def account(self, obj: Any) -> None:
        self.count += 1
        if self.count == 1 and (isinstance(obj, types.ModuleType) or _namespace(obj)):
            self.is_import = True  # a module, or its namespace: code loaded
        if type(obj) in PLAIN:  # the common case, without a Holding
            self.python += sys.getsizeof(obj)
            return
        if sized_by_getsizeof(type(obj)):  # a function, class, weak reference... (as holding() says)
            self._account_builtin(obj)
            return
        self._account_held(obj, holding(obj))

    def _account_builtin(self, obj: Any) -> None:
        """What :meth:`account` does with an object of the interpreter's own types (bar plain
        containers), whose holding is its ``sys.getsizeof`` (:func:`leakhunt.sizing.sized_by_getsizeof`)."""
        try:
            self.python += sys.getsizeof(obj)
        except TypeError:
            pass
        if isinstance(obj, types.ModuleType):
            self.is_import = True

    def _account_held(self, obj: Any, held: Holding) -> None:
        """What :meth:`account` does with any other object, from its holding."""
        if held.size is None:
            name = _type_name(obj)
            if self.unknown is None:
                self.unknown = {}
            self.unknown[name] = self.unknown.get(name, 0) + 1
        elif held.buffers:
            if held.kind == "numpy" and obj.dtype.hasobject:
                self.arrays = (self.arrays or []) + [obj]
            elif held.kind == "polars":
                self.estimated = self.estimated or {}
                self.estimated[_type_name(obj)] = self.estimated.get(_type_name(obj), 0) + 1
            if self.buffers is None:
                self.buffers = {}
            for key, size in held.buffers:
                self.buffers[key] = (max(self.buffers.get(key, (0, ""))[0], size), held.kind)
        else:
            self.python += held.size
        size = held.size or 0
        if held.data and size > self.biggest_size:
            self.biggest, self.biggest_size = obj, size
        if isinstance(obj, types.ModuleType):
            self.is_import = True

    def inner_chain(self, new: _New) -> tuple[Any, ...]:
        """From the entry down to the biggest data object it holds (walked again: only the
        shown roots need it)."""
        target = self.biggest
        if target is None or target is self.entry:
            return (self.entry,)
        parents: dict[int, Any] = {id(self.entry): None}
        stack = [self.entry]
        while stack:
            obj = stack.pop()
            if obj is target:
                chain = [obj]
                while parents[id(chain[-1])] is not None:
                    chain.append(parents[id(chain[-1])])
                return tuple(reversed(chain))
            for child in children(obj):
                if id(child) not in parents and new.child(child):
                    parents[id(child)] = obj
                    stack.append(child)
        return (self.entry,)


def _type_name(obj: Any) -> str:
    tp = type(obj)
    module = tp.__module__ or ""
    return tp.__name__ if module == "builtins" else f"{module.split('.')[0]} {tp.__name__}"


class _DataNewness:
    """Which data holders the block made, read from their tracebacks while the block's trace
    runs (with the lines that allocated them), and which gc-tracked objects older threads made."""

    def __init__(self, scope: Any, data: list[Any], older: list[Any] | None = None) -> None:
        self.new: dict[int, bool] = {}
        self.sites: dict[int, Site | None] = {}
        spans = scope.foreign_spans() if scope.active_threads() else ()
        for obj in data:
            try:
                tb = tracemalloc.get_object_traceback(obj)
            except Exception:
                tb = None
            frames = _frames.traceback_frames(tb) if tb is not None else None
            new = frames is not None and not (spans and scope.foreign(frames, spans))
            self.new[id(obj)] = new
            if new:
                self.sites[id(obj)] = _site(obj, frames)
        self.foreign: set[int] = set()
        if spans:  # what older threads made during the block is not the block's
            self.foreign = {id(o) for o in scope.captured or () if _foreign(scope, o, spans)}
        self.loose = _loose(scope, older or [], self.new, spans)


def _loose(scope: Any, older: list[Any], data: dict[int, bool],
           spans: tuple[tuple[str, int, int], ...]) -> dict[int, list[Any]]:
    """Objects the block made that the gc does not track (a dict or tuple of plain values, a
    string) and that it put straight into an older container (``KEEP.extend(rows[::100])``), by
    that container's id: no new container leads to them, and the frozen heap does not list them.
    Read from their tracebacks while the block's trace runs: one pass over the older objects'
    references (about 0.05 s after importing pandas and pyarrow). ``older``: the gc-tracked
    objects alive when the search began (leakhunt's own, made since, are not holders); those
    the block made (``scope.made_ids``; a traceback alone cannot tell: an object from a free list,
    or an instance with a managed ``__dict__`` on Python 3.11, has none) are left out."""
    # (the C function: the module's wrapper builds a Traceback object for each traced object)
    get_tb = getattr(tracemalloc, "_get_object_traceback", tracemalloc.get_object_traceback)
    made = getattr(scope, "made_ids", frozenset())
    holders = [h for h in older if isinstance(h, _HOLDERS) and id(h) not in made]
    loose: dict[int, list[Any]] = {}
    seen: set[int] = set()
    for i in range(0, len(holders), 512):
        # one referents list per batch, its tracebacks read in C: most references of older
        # containers are older objects, and each allocation here is traced too
        batch = holders[i:i + 512]
        if any(map(get_tb, gc.get_referents(*batch))):
            for holder in batch:
                _loose_in(holder, get_tb, scope, data, spans, seen, loose)
    return loose


def _loose_in(holder: Any, get_tb: Callable[[Any], Any], scope: Any, data: dict[int, bool],
              spans: tuple[tuple[str, int, int], ...], seen: set[int], loose: dict[int, list[Any]]) -> None:
    """The objects of :func:`_loose` that ``holder``, an older container, holds."""
    if get_tb(holder) is not None:  # leakhunt's own, made since the block (or a free-list reuse)
        return
    refs = gc.get_referents(holder)
    for obj in compress(refs, map(get_tb, refs)) if refs else ():
        oid = id(obj)
        if oid in seen or gc.is_tracked(obj) or oid in data or type(obj) in _NOT_LOOSE:
            continue
        seen.add(oid)
        if spans and scope.foreign(_frames.traceback_frames(tracemalloc.get_object_traceback(obj)), spans):
            continue
        loose.setdefault(id(holder), []).append(obj)


#: The older containers a block fills (a list appended to, a dict or set added to, a deque); a
#: tuple made before the block cannot hold what the block made.
_HOLDERS = (list, dict, set, collections.deque)
#: Untracked objects not looked for: numbers (ids in leakhunt's own tables look new too).
_NOT_LOOSE = frozenset({int, bool, type(None), type, types.ModuleType})


class _New:
    """Which objects the block made (see :class:`Scope`)."""

    def __init__(self, scope: Any, scan: HeapScan, min_size: int, decided: _DataNewness | None = None) -> None:
        self.scope = scope
        self.tracked: list[Any] = _tracked(scope, decided)
        self.ids = set(map(id, self.tracked))
        self.data_new: dict[int, bool] = {}
        self.sites: dict[int, Site | None] = {}
        self.loose: dict[int, list[Any]] = {}
        if decided is not None:
            self.data_new, self.sites = decided.new, decided.sites
            self.loose = decided.loose
        elif scope is None:  # no block: every data holder alive counts (what is alive now)
            self.data_new = {id(obj): True for obj in scan.data}
        elif not hasattr(scope, "captured") or getattr(scope, "baseline", None) is not None:
            # a scope that tells data holders apart itself (a baseline of them, a Dask worker's)
            self.data_new = {id(obj): bool(scope.created_here(obj)) for obj in scan.data}
        self.data_entries = [obj for obj in scan.data if id(obj) not in self.ids and self.data_new.get(id(obj))
                             and (not min_size or (holding(obj).size or 0) >= min_size)]
        self.traced_ids = set(map(id, self.data_entries))
        self.ids.update(self.traced_ids)
        self.ids.update(id(o) for objs in self.loose.values() for o in objs)

    def child(self, obj: Any) -> bool:
        """Is ``obj``, held by an object the block made, the block's too? (An untracked object
        that is not data - a string, a tuple of numbers - counts as its holder's.)"""
        if isinstance(obj, _ATOMIC) or isinstance(obj, (types.ModuleType, type)):
            return False
        if id(obj) in self.ids:
            return True
        if gc.is_tracked(obj):
            return False
        known = self.data_new.get(id(obj))
        return True if known is None else known


def _tracked(scope: Any, decided: _DataNewness | None) -> list[Any]:
    """The gc-tracked objects the block made, less other threads' and the namespace of
    ``__main__``: a script run in the block (``leakhunt run``) is where roots live, not a
    survivor that would hold them all (a module the block imports is code loaded)."""
    tracked = list(getattr(scope, "captured", None) or ())
    main = sys.modules.get("__main__")
    skip = {id(main.__dict__)} if tracked and main is not None else set()
    if decided is not None and decided.foreign:
        skip |= decided.foreign
    return [o for o in tracked if id(o) not in skip] if skip else tracked


def _foreign(scope: Any, obj: Any, spans: tuple[tuple[str, int, int], ...]) -> bool:
    tb = tracemalloc.get_object_traceback(obj)
    return tb is not None and scope.foreign(_frames.traceback_frames(tb), spans)


def _chunks(new: _New, scan: HeapScan) -> list[_Chunk]:
    """The block's survivors, split into chunks (largest first)."""
    held, hidden = _held(new, scan)
    tracked = new.tracked
    assigned: set[int] = set()
    chunks: list[_Chunk] = []
    entries = [o for o in tracked if id(o) not in held and id(o) not in hidden] + new.data_entries
    # An object held through a hidden edge by a holder that is not told apart as new (an object
    # array untraced) is walked last: when a new object reaches that holder, it is part of that
    # chunk (a Series slice pinning its parent's 100,000 objects is one chunk, not 100,001).
    later = [o for o in tracked if id(o) in hidden]
    pending = [o for o in tracked if id(o) in held]
    for entry in entries + later:
        if id(entry) not in assigned:
            chunks.append(_walk_chunk(entry, new, assigned))
    for obj in pending:  # new objects in cycles that nothing new enters from outside
        if id(obj) not in assigned:
            chunks.append(_walk_chunk(obj, new, assigned))
    for objs in new.loose.values():  # what went straight into one older container: one chunk
        group = [_walk_chunk(obj, new, assigned) for obj in objs if id(obj) not in assigned]
        if group:
            chunks.append(_merged(group))
    for chunk in chunks:
        chunk.traced_only = id(chunk.entry) in new.traced_ids
    chunks.sort(key=lambda c: c.size, reverse=True)
    return chunks


def _merged(group: list[_Chunk]) -> _Chunk:
    """One chunk of what several entries hold (the objects a block put into one older
    container), entered from the first."""
    chunk = group[0]
    chunk.others = [other.entry for other in group[1:]] or None
    for other in group[1:]:
        chunk.count += other.count
        chunk.python += other.python
        for name in ("buffers", "unknown", "estimated"):
            theirs = getattr(other, name)
            if theirs:
                mine = getattr(chunk, name)
                if mine is None:
                    setattr(chunk, name, dict(theirs))
                elif name == "buffers":
                    mine.update(theirs)
                else:
                    for key, value in theirs.items():
                        mine[key] = mine.get(key, 0) + value
        if other.arrays:
            chunk.arrays = (chunk.arrays or []) + other.arrays
        if other.biggest_size > chunk.biggest_size:
            chunk.biggest, chunk.biggest_size = other.biggest, other.biggest_size
    return chunk


def _held(new: _New, scan: HeapScan) -> tuple[set[int], set[int]]:
    """Ids of the new objects that new objects hold, and of those held only through edges the gc
    does not report (an object array's items) by holders not told apart as new."""
    ids = new.ids
    held: set[int] = set()
    tracked = new.tracked
    for i in range(0, len(tracked), 1024):  # what new objects hold: one referents list per batch
        held.update(ids.intersection(map(id, gc.get_referents(*tracked[i:i + 1024]))))
    hidden: set[int] = set()
    for child, parents in scan.edges.items():
        if child in ids:
            (held if any(id(p) in ids for p in parents) else hidden).add(child)
    return held, hidden - held


def _walk_chunk(entry: Any, new: _New, assigned: set[int]) -> _Chunk:
    """The chunk under ``entry``: a depth-first walk of what it holds that is the block's and
    not yet another chunk's. It runs once per object the block left (hundreds of thousands in
    a leak of small objects): plain containers are accounted here, without a call per object
    (what :meth:`_Chunk.account`, :func:`_own_keys`, :func:`leakhunt.heap.children` and
    :meth:`_New.child` would do for them, in the same order)."""
    chunk = _Chunk(entry)
    assigned.add(id(entry))
    chunk.account(entry)
    stack = [entry]
    child_of, ids, data_new, is_tracked = new.child, new.ids, new.data_new, gc.is_tracked
    getrefcount, getsizeof, referents = sys.getrefcount, sys.getsizeof, gc.get_referents
    python = 0
    first = True
    while stack:
        obj = stack.pop()
        tp = type(obj)
        if tp in PLAIN:
            if not first:
                chunk.count += 1
                python += getsizeof(obj)
            if tp is dict:
                for key in obj:  # references: the dict's, the loop's and getrefcount's (as _own_keys)
                    if type(key) is str and getrefcount(key) <= 3:
                        python += getsizeof(key)
                key = None  # the loop's variable would count as a reference to a key below
            kids: Any = referents(obj)
            rows = leaf_dicts(obj, kids, assigned, ids, data_new)  # a list of small rows: at once
            if rows is not None:
                chunk.count += rows[0]
                python += rows[1]
                first = False
                del kids
                continue
        else:
            kids = _other(chunk, obj, first)
        first = False
        for child in kids:
            cid = id(child)
            if cid in assigned:
                continue
            ctp = type(child)
            if ctp in _NUMBERS:
                if getrefcount(child) <= _OWN_REFS:  # held by this holder alone: its memory
                    assigned.add(cid)
                    python += getsizeof(child)
                continue
            if ctp in _PLAIN_CONTAINERS and cid not in ids:  # as new.child(child), inline
                if is_tracked(child) or data_new.get(cid) is False:
                    continue
            elif not (cid in ids if ctp in _BY_ID else child_of(child)):  # (new.child(child) of _BY_ID)
                continue
            assigned.add(cid)
            stack.append(child)
        del kids
    chunk.python += python
    return chunk


def _other(chunk: _Chunk, obj: Any, first: bool) -> Any:
    """What :func:`_walk_chunk` does with an object that is not a plain container: accounted
    (unless it is the entry, accounted already) and what it holds (:func:`leakhunt.heap.children`).
    The interpreter's commonest types (the functions, classes, cells, descriptors of what
    imports made: tens of thousands) without a call of either: sized by ``sys.getsizeof``
    (:func:`leakhunt.sizing.sized_by_getsizeof`), holding their referents, a function its
    closure and defaults, a class nothing (as ``children`` says)."""
    tp = type(obj)
    if tp is types.FunctionType:
        kids: Any = [part for part in (obj.__closure__, obj.__defaults__) if part]
    elif tp in _REFERENTS_ONLY:
        kids = gc.get_referents(obj)
    elif tp is type:
        kids = ()
    else:
        if not first:
            chunk.account(obj)
        return children(obj)
    if not first:
        chunk.count += 1
        chunk.python += sys.getsizeof(obj)
    return kids


#: The interpreter's own types whose objects hold what gc.get_referents says (no other edge,
#: and no __class__ of their own).
_REFERENTS_ONLY = frozenset({types.CellType, weakref.ReferenceType, types.GetSetDescriptorType,
                             types.MemberDescriptorType, types.WrapperDescriptorType, types.MethodDescriptorType,
                             types.BuiltinFunctionType, property})


#: Types whose objects the gc always tracks and that are never numbers, modules or classes (nor
#: pose as one): held by a new object, one is the block's when it is new (:meth:`_New.child`).
_BY_ID = _REFERENTS_ONLY | {types.FunctionType}


#: Numbers and strings are never told apart as new (most are shared: small ints, constants,
#: interned names), but one that nothing but its holder refers to (a list of floats, the ints of
#: an object column's objects, the keys of dicts in an object column: pandas-dev/pandas#49582) is
#: the holder's memory: 100,000 objects of a pandas object column keep as much again in numbers.
_NUMBERS = frozenset({int, float, complex, str, bytes})
_PLAIN_CONTAINERS = frozenset({dict, list, tuple, set, frozenset, types.SimpleNamespace})
#: References to a number its holder alone keeps, seen from a walk's loop: the holder's, the
#: referents list's, the loop variable's and sys.getrefcount's own argument.
_OWN_REFS = 4


def _own_keys(d: dict[Any, Any]) -> int:
    """Bytes of a dict's string keys that nothing but the dict refers to: the gc does not report
    the keys of a dict whose keys are all strings, so the walks' referents never show them
    (references: the dict's, the loop variable's and sys.getrefcount's argument)."""
    return sum(sys.getsizeof(k) for k in d if type(k) is str and sys.getrefcount(k) <= 3)


class _Reach:
    """A forward walk from a root's object, level by level and resumable, that finds the chunks
    the root keeps (below a chunk's entry is the chunk's own: not walked again)."""

    def __init__(self, start: Any) -> None:
        self.seen: set[int] = {id(start)}
        self.frontier: list[Any] = [start]

    @property
    def done(self) -> bool:
        return not self.frontier

    def advance(self, entries: dict[int, _Chunk], deadline: float) -> list[_Chunk]:
        found: list[_Chunk] = []
        while self.frontier and time.perf_counter() < deadline:
            self.frontier = self._level(self.frontier, entries, found)
        return found

    def _level(self, frontier: list[Any], entries: dict[int, _Chunk], found: list[_Chunk]) -> list[Any]:
        """One level: the chunks it reaches go to ``found`` (in the order first held), the
        objects to walk next are returned. A root that keeps a leak of small objects has levels
        of hundreds of thousands (and walks the older ones beside them: a module list of every
        call's rows), so each step is taken for the whole level at once, in C where it can be,
        not once per object."""
        held = _held_by(frontier)
        kids = dict(zip(map(id, held), held))
        del held
        seen = self.seen
        for cid in seen.intersection(kids):
            del kids[cid]
        seen.update(kids)
        hits = entries.keys() & kids.keys()
        if hits:
            found.extend(c for c in map(entries.get, kids) if c is not None and c.root is None)
            nxt = [o for cid, o in kids.items() if cid not in hits]
        else:
            nxt = list(kids.values())
        kids.clear()
        walked = {tp for tp in set(map(type, nxt)) if tp in PLAIN or not closed(tp)}
        return list(compress(nxt, map(walked.__contains__, map(type, nxt))))


def _held_by(frontier: list[Any]) -> list[Any]:
    """What the objects of a level hold (gc's referents, :func:`leakhunt.heap.children` for the
    objects whose edges are not only those), numbers and strings left out, in order."""
    special = {tp for tp in set(map(type, frontier)) if tp not in PLAIN and _special(tp)}
    plain = [o for o in frontier if type(o) not in special] if special else frontier
    held: list[Any] = gc.get_referents(*plain) if plain else []
    if special:
        for obj in frontier:
            if type(obj) in special:
                held.extend(children(obj))
    return list(compress(held, map(not_, map(_ATOMIC_TYPES.__contains__, map(type, held)))))


_ATOMIC_TYPES = frozenset({int, float, complex, bool, type(None), str, bytes})
_CODE = (types.ModuleType, types.FunctionType, type, types.CodeType, types.MethodType)


def _namespace(obj: Any) -> bool:
    """A module's namespace (its ``__dict__``)."""
    return type(obj) is dict and "__name__" in obj and "__spec__" in obj


def _framework_made(obj: Any) -> bool:
    """A namespace, class or function of leakhunt's (or the test framework's): code it loaded
    while the block ran is not the block's."""
    if _namespace(obj):
        name = obj.get("__name__")
    elif isinstance(obj, (type, types.FunctionType)):
        name = getattr(obj, "__module__", None)
    else:
        return False
    return isinstance(name, str) and name.split(".", 1)[0] in _FRAMEWORK_PACKAGES
_SPECIAL: dict[type, bool] = {}


def _special(tp: type) -> bool:
    """Objects whose forward edges are not (only) gc's referents (see :func:`leakhunt.heap.children`)."""
    found = _SPECIAL.get(tp)
    if found is None:
        np = sys.modules.get("numpy")
        found = _SPECIAL[tp] = closed(tp) or issubclass(tp, (types.FunctionType, types.FrameType)) or (
            np is not None and issubclass(tp, np.ndarray))
    return found


class _RootFound:
    """A root and the chunks it keeps."""

    def __init__(self, path: RetentionPath) -> None:
        self.path = path
        self.chunks: list[_Chunk] = []
        self.best: tuple[_Chunk, RetentionPath] | None = None  # the biggest chunk searched to
        self.reach = _Reach(path.chain[0])

    def add(self, chunk: _Chunk, path: RetentionPath | None = None) -> None:
        chunk.root = self.path.root
        self.chunks.append(chunk)
        if path is None:
            return
        best = self.best
        if best is None or chunk.size > best[0].size or (chunk.size == best[0].size and _first(path, best[1])):
            self.best = (chunk, path)

    def size(self, *, attributable: bool = False) -> int:
        buffers: dict[Any, tuple[int, str]] = {}
        python = 0
        for chunk in self.chunks:
            if attributable and chunk.traced_only:
                continue
            python += chunk.python
            if chunk.buffers:
                buffers.update(chunk.buffers)
        return python + sum(size for size, _ in buffers.values())

    def root(self, new: _New) -> Root:
        assert self.best is not None
        chunk, path = self.best
        full = path.extended(chunk.inner_chain(new))
        # buffers counted in the headline: from 1 KiB (a frame's index arrays are not news)
        buffers = {k for c in self.chunks if c.buffers for k, (size, _) in c.buffers.items() if size >= 1024}
        unknown: dict[str, int] = {}
        estimated: dict[str, int] = {}
        for c in self.chunks:
            for name, n in (c.unknown or {}).items():
                unknown[name] = unknown.get(name, 0) + n
            for name, n in (c.estimated or {}).items():
                estimated[name] = estimated.get(name, 0) + n
        target = full.chain[-1]
        return Root(root=self.path.root, kind=self.path.root_kind, buffers=len(buffers), size=self.size(),
                    path=full.nodes(), text=str(full), site=new.sites.get(id(target)) or _site_of(target),
                    pattern=pattern_of(full.chain, full.root_kind, full.root), library=self.path.library,
                    objects=sum(c.count for c in self.chunks),
                    unknown=tuple(sorted(unknown.items(), key=lambda kv: -kv[1])),
                    estimated=tuple(sorted(estimated.items(), key=lambda kv: -kv[1])))


class _CycleRoot(_RootFound):
    """Chunks no root holds that are cycles through an object array (:mod:`leakhunt.cycles`):
    the cycle is their path."""

    def root(self, new: _New) -> Root:
        found = super().root(new)
        assert self.best is not None
        path = self.best[1]
        return replace(found, path=path.nodes(), text=str(path), kind=CYCLE_KIND,
                       pattern=pattern_of(path.chain, CYCLE_KIND, path.root))


def _cycle_root(chunks: list[_Chunk]) -> dict[str, _RootFound]:
    """The rootless chunks (searched to the end) that are cycles through an object array, as one
    root (none when there are none)."""
    found: _CycleRoot | None = None
    for chunk in chunks:
        if not (chunk.unrooted and chunk.arrays):
            continue
        chain = cycle_through_arrays(chunk.arrays, children)
        if chain is None:
            continue
        path = RetentionPath(CYCLE_ROOT, CYCLE_KIND, chain)
        if found is None:
            found = _CycleRoot(path)
        found.add(chunk, path)
        chunk.unrooted = False
    return {} if found is None else {found.path.root: found}


def _first(path: RetentionPath, other: RetentionPath) -> bool:
    """Among equal chunks, show the first (``list[0]``, not ``list[7]``)."""
    a, b = str(path), str(other)
    return (len(a), a) < (len(b), b)


def _site_of(obj: Any) -> Site | None:
    if not tracemalloc.is_tracing():
        return None
    try:
        tb = tracemalloc.get_object_traceback(obj)
    except Exception:
        return None
    return _site(obj, _frames.traceback_frames(tb)) if tb is not None else None


def _site(obj: Any, frames: tuple[tuple[str, int], ...]) -> Site | None:
    frame = _frames.user_frame(frames)
    if frame is None:
        return None
    return Site(file=frame[0], line=frame[1], code=_frames.code_line(*frame), size=holding(obj).size or 0, count=1)


def _root_chunks(chunks: list[_Chunk], named: dict[str, Any] | None, scan: HeapScan,
                 deadline: float, ignore: set[int]) -> dict[str, _RootFound]:
    """Roots for the chunks: a backward search from the biggest chunks no root keeps yet, a
    batch at a time; and from each root found, a forward walk to every chunk it keeps."""
    _library_code_chunks(chunks)
    if time.perf_counter() < deadline:  # what imports left: placed by forward walks, not searched
        import_state.mark(chunks, _LIBRARY_SHOWN, named, scan.edges, ignore)
    entries = {id(c.entry): c for c in chunks if not c.is_import}
    roots: dict[str, _RootFound] = {}
    remaining = [c for c in chunks if not c.is_import]
    size = _BATCH
    while remaining and time.perf_counter() < deadline:
        _advance_roots(roots, entries, deadline)
        remaining = [c for c in remaining if c.root is None and not c.searched and not c.is_import]
        if not remaining or time.perf_counter() >= deadline:
            break
        # the biggest chunks first (what the roots found then keep is claimed by their forward
        # walks); then the rest together: a level of the search is one pass over the heap
        # whatever its width, and thousands of small chunks (what imports made) in batches of
        # 48 took minutes. Only time bounds these searches (a wide or deep one runs to its end).
        batch = remaining[:size]
        size = _BATCH_MAX
        found, complete = paths_to([c.entry for c in batch], named=named, scan=scan, ignore=ignore,
                                   timeout=max(0.1, deadline - time.perf_counter()),
                                   max_depth=_UNBOUNDED, max_frontier=_UNBOUNDED)
        for chunk, paths in zip(batch, found):
            _place(chunk, paths, complete, roots)
        del found
    return {label: r for label, r in roots.items() if r.best is not None}


def _library_code_chunks(chunks: list[_Chunk]) -> None:
    """Mark as code loaded, without a search, the chunks that are a library's classes and
    functions and the parts of a library class (its namespace, its ``__mro__`` and ``__bases__``,
    the weak references its bases keep to it): thousands of small chunks when a block imports a
    library (a script run by leakhunt run), each of which a backward search would only follow
    up to the class and its module (8,371 chunks, 8.4 s of searching, for docs/run/pipeline.py)."""
    by_id = {id(c.entry): c for c in chunks if not c.is_import}
    for chunk in list(by_id.values()):
        entry = chunk.entry
        target = entry() if isinstance(entry, weakref.ReferenceType) else entry
        if type(entry) is dict and _namespace_of_library_type(entry):
            chunk.is_import = True
            continue
        if not _library_code(target):
            continue
        chunk.is_import = True
        if isinstance(target, type):
            for part in gc.get_referents(target):
                owned = by_id.get(id(part))
                if owned is not None:
                    owned.is_import = True


_DESCRIPTORS = (types.WrapperDescriptorType, types.MethodDescriptorType, types.GetSetDescriptorType,
                types.MemberDescriptorType, types.ClassMethodDescriptorType)


def _namespace_of_library_type(namespace: dict[Any, Any]) -> bool:
    """Is this dict the namespace of a library's extension type (a Cython or C class: the type
    itself is static, so the gc sees its namespace but not what holds it)? Told by a descriptor
    in it whose class is a library's and whose namespace it is."""
    for value in namespace.values():
        if isinstance(value, _DESCRIPTORS):
            owner = getattr(value, "__objclass__", None)
            if not isinstance(owner, type) or not _library_code(owner):
                return False
            proxy = owner.__dict__
            return len(proxy) == len(namespace) and all(proxy.get(k) is v for k, v in namespace.items())
    return False


def _advance_roots(roots: dict[str, _RootFound], entries: dict[int, _Chunk], deadline: float) -> None:
    """Each root found walks on to the chunks it keeps."""
    for found_root in roots.values():
        for chunk in found_root.reach.advance(entries, deadline):
            found_root.add(chunk)


def _place(chunk: _Chunk, paths: list[RetentionPath], complete: bool, roots: dict[str, _RootFound]) -> None:
    """A searched chunk: unrooted (searched to the end: a C extension's reference), code loaded,
    or kept by the root its nearest path starts from."""
    chunk.searched = True
    if not paths:
        chunk.unrooted = complete
        return
    path = paths[0]
    if _is_import_root(path) and not _users_code_holding_data(chunk, path):
        chunk.is_import = True
        return
    found_root = roots.get(path.root)
    if found_root is None:
        found_root = roots[path.root] = _RootFound(path)
    if chunk.root is None:
        found_root.add(chunk, path)
    elif chunk.root == path.root and found_root.best is None:
        found_root.best = (chunk, path)


#: Globals of the interpreter that imports fill: the table of loaded modules, the importers'
#: cache, typing's registry of @overload functions and its caches' cleanups (filled as modules
#: define annotated functions)
_IMPORT_STATE = frozenset({"modules (global in sys)", "path_importer_cache (global in sys)",
                           "_overload_registry (global in typing)", "_cleanups (global in typing)"})


def _is_import_root(path: RetentionPath) -> bool:
    """A root that is the import system's (a module's own state, the table of loaded modules),
    or code: a function or class a module defines, held as that module's global, or the
    namespace or a method of a class a library defines, whoever reaches it (polars imported by a
    script is not what the script's ``frame`` keeps through its class; a registry that is a
    library class's attribute, such as matplotlib's ``Gcf.figs``, still is a root)."""
    chain = path.chain
    first = chain[0] if chain else None
    return path.root.endswith("(state of the module)") or path.root in _IMPORT_STATE or (
        path.library and isinstance(first, types.ModuleType)) or (
        path.root_kind == "global" and isinstance(first, (types.FunctionType, type)) and len(chain) == 1) or (
        len(chain) >= 2 and _library_code(chain[-2]) and _code_part(chain[-2], chain[-1]))


def _users_code_holding_data(chunk: _Chunk, path: RetentionPath) -> bool:
    """A function or class of the user's that holds data or much memory: a default argument used
    as a cache (``def remember(x, cache=[])``) under a script that made the function itself."""
    first = path.chain[0] if path.chain else None
    return (isinstance(first, (types.FunctionType, type)) and not _library_code(first)
            and bool(chunk.buffers or chunk.size >= defaults.THRESHOLD))


def _code_part(holder: Any, obj: Any) -> bool:
    """Is ``obj`` code of ``holder``'s: a function or class, or the namespace (``__dict__``) of
    the class or function ``holder``?"""
    if isinstance(obj, (types.FunctionType, type)):
        return True
    return type(obj) is dict and any(ref is obj for ref in gc.get_referents(holder))


def _library_code(obj: Any) -> bool:
    """A class or function defined by a library's module (not the user's code)."""
    if not isinstance(obj, (type, types.FunctionType)):
        return False
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    filename = getattr(module, "__file__", None)
    return isinstance(filename, str) and _frames.kind(filename) == _frames.LIBRARY


def survivors(scope: Any = None, *, named: dict[str, Any] | None = None, timeout: float = 60.0,
              max_roots: int = 8, min_size: int = 0, sites: bool = False, types: bool = True) -> Survivors:
    """What ``scope``'s block made and still holds, grouped by the root that keeps it, biggest
    root first (see the module's docstring); with no scope, the data holders alive now. ``named``: objects that count as roots under a
    label, e.g. a test's fixture values (``{"cache (fixture)": value}``), ranked above frame
    locals and library globals. ``min_size``: data holders smaller than this are not searched
    on their own (a scope that can only tell data holders apart, such as a Dask worker's).
    ``sites``: also the biggest lines still alive, from a snapshot of the trace. ``types``: the
    objects the user's roots keep, by type (a walk of them all: a caller that counts types its
    own way leaves it out). ``timeout``:
    seconds of searching after which what is left is counted as not searched (``skipped``):
    a last resort, which no depth or width bound precedes."""
    capture = getattr(scope, "capture", None)
    if capture is not None:
        capture()  # before the heap is thawed below
    with thawed():  # frozen objects are invisible to the heap walks
        # Under the block's own trace every allocation is traced: first only what needs the
        # trace (which data holders the block made, by their tracebacks), then the trace is
        # stopped and the walks run at full speed. (One walk for both, under the trace, costs
        # more than two: the hidden edges it records are allocations, each traced.)
        fresh = bool(getattr(scope, "fresh", False))
        older = gc.get_objects() if fresh else None  # before leakhunt's own tables below
        # (its frames made cheap to trace first: every allocation of the walk is traced)
        data = tracing.line_tables(HeapScan, edges=False).data if fresh else None
        decided = _DataNewness(scope, data, older) if data is not None else None
        del older
        snapshot = tracing.snapshot() if sites else None  # None when nothing traces
        release = getattr(scope, "release_trace", None)
        if release is not None:
            release()
        # the snapshot's own objects (a tuple per trace) must not be in the heap walked below
        found_sites = _summary(scope, snapshot) if snapshot is not None else ()
        del snapshot
        scan = HeapScan(data=data is None)
        if data is not None:
            scan.data = data
        try:
            new = _New(scope, scan, min_size, decided)
            found = _survivors(new, scan, named, timeout, max_roots, types)
            return replace(found, sites=found_sites) if found_sites else found
        finally:
            scan.clear()


def _summary(scope: Any, snapshot: tracemalloc.Snapshot) -> tuple[Site, ...]:
    """The user's lines with the most memory alive in ``snapshot``: the block's own when its
    trace is fresh, everything alive under a trace the user runs; never what older threads
    allocated."""
    try:
        spans = scope.foreign_spans() if hasattr(scope, "foreign_spans") and scope.active_threads() else ()
        exclude = (lambda frames: scope.foreign(frames, spans)) if spans else None
        return tracing.summarise(snapshot, limit=defaults.EXPLANATION_SITES, user_only=True, exclude=exclude)[1]
    except Exception:
        return ()


def _survivors(new: _New, scan: HeapScan, named: dict[str, Any] | None, timeout: float,
               max_roots: int, types: bool = True) -> Survivors:
    chunks = _chunks(new, scan)
    deadline = time.perf_counter() + timeout  # for the searches: the walks above are bounded by the heap
    # leakhunt's own lists of what the block made are referrers of it all: never a way up
    ignore = {id(new.tracked), id(chunks), id(getattr(new.scope, "_captured", None))}
    roots = _root_chunks(chunks, named, scan, deadline, ignore)
    roots.update(_cycle_root(chunks))
    ranked = sorted(roots.values(), key=lambda r: r.size(), reverse=True)
    rooted, by_kind = _rooted_by_kind(ranked)
    own = [r for r in ranked if not r.path.library]
    return Survivors(
        roots=_shown(ranked, new, max_roots),
        rooted=rooted,
        rooted_arrow=by_kind.get("arrow", 0),
        attributable=sum(r.size(attributable=True) for r in own),
        user_rooted=sum(r.size() for r in own),
        by_kind=tuple(sorted(by_kind.items(), key=lambda kv: -kv[1])),
        types=_root_types([c for r in own for c in r.chunks], new) if types else (),
        data_told=bool(new.data_new) or bool(getattr(new.scope, "fresh", False)),
        **_chunk_figures(chunks),
    )


def _shown(ranked: list[_RootFound], new: _New, max_roots: int) -> tuple[Root, ...]:
    """The roots shown, biggest first: a library's when it keeps something that matters (a cache
    of pandas' that the block filled); a few hundred bytes a library made on first use are
    counted, not shown."""
    worth = max(_LIBRARY_SHOWN, sum(r.size() for r in ranked) // 100)
    return tuple(r.root(new) for r in ranked if not r.path.library or r.size() >= worth)[:max_roots]


def _rooted_by_kind(ranked: list[_RootFound]) -> tuple[int, dict[str, int]]:
    """Bytes every root keeps (shared buffers once), and the same by kind (python, numpy, arrow...)."""
    rooted_buffers: dict[Any, tuple[int, str]] = {}
    rooted_python = 0
    for found in ranked:
        for chunk in found.chunks:
            rooted_python += chunk.python
            rooted_buffers.update(chunk.buffers or {})
    by_kind: dict[str, int] = {"python": rooted_python} if rooted_python else {}
    for size, kind in rooted_buffers.values():
        by_kind[kind] = by_kind.get(kind, 0) + size
    return rooted_python + sum(size for size, _ in rooted_buffers.values()), by_kind


def _chunk_figures(chunks: list[_Chunk]) -> dict[str, int]:
    """What the chunks hold: in all, searched without a root, not searched, code loaded."""
    return {
        "found": sum(c.size for c in chunks),
        "buffers": sum(len(c.buffers or ()) for c in chunks),
        "unrooted": sum(c.size for c in chunks if c.unrooted),
        "skipped": sum(c.size for c in chunks if c.root is None and not c.unrooted and not c.is_import),
        "imports": sum(c.size for c in chunks if c.is_import),
        "objects": sum(c.count for c in chunks),
    }


def _root_types(chunks: list[_Chunk], new: _New, limit: int = 6) -> tuple[tuple[str, int], ...]:
    """The objects the user's roots keep, by type (largest counts first)."""
    counts: Counter[type] = Counter()
    seen: set[int] = set()
    for chunk in chunks:
        stack = [*(chunk.others or ())[::-1], chunk.entry]
        while stack and len(seen) < _REACH:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            counts[type(obj)] += 1
            _push_new(obj, stack, seen, new)
    named = {(tp.__qualname__ if tp.__module__ == "builtins" else f"{tp.__module__}.{tp.__qualname__}"): n
             for tp, n in counts.items() if tp not in _ATOMIC_TYPES}
    return tuple(sorted(named.items(), key=lambda kv: -kv[1])[:limit])


def _push_new(obj: Any, stack: list[Any], seen: set[int], new: _New) -> None:
    """Push what ``obj`` holds that is the block's and not seen yet (in order); plain
    containers are told apart inline, as :meth:`_New.child` does (once per object kept: a
    call each was most of the type count's time on a leak of 20,000 small objects a call)."""
    ids, data_new, is_tracked, child_of = new.ids, new.data_new, gc.is_tracked, new.child
    for c in gc.get_referents(obj) if type(obj) in PLAIN else children(obj):
        cid = id(c)
        if cid in seen:
            continue
        if type(c) in _PLAIN_CONTAINERS:
            if cid in ids or not (is_tracked(c) or data_new.get(cid) is False):
                stack.append(c)
        elif child_of(c):
            stack.append(c)


def created_types(scope: Scope, limit: int = 6) -> tuple[tuple[str, int], ...]:
    """gc-tracked objects the block made and still holds, by type (largest counts first);
    modules, classes and functions (imports) are left out, and so are the interpreter's own
    (``hamt``: context variables)."""
    scope.capture()
    counts = Counter(type(o) for o in scope.captured or ())
    named: dict[str, int] = {}
    for tp, n in counts.items():
        if issubclass(tp, (types.ModuleType, type, types.FunctionType)) or tp.__name__.startswith("hamt"):
            continue
        module = getattr(tp, "__module__", "") or ""
        name = tp.__qualname__ if module == "builtins" else f"{module}.{tp.__qualname__}"
        named[name] = named.get(name, 0) + n
    return tuple(sorted(named.items(), key=lambda kv: -kv[1])[:limit])


def kept_by(obj: Any, limit: int = 2_000_000) -> int | None:
    """Everything ``obj`` keeps alive, in bytes: its own data and what it holds (each buffer
    once); ``None`` when it holds something leakhunt cannot size and nothing it can."""
    seen: set[int] = {id(obj)}
    keep = [obj]
    stack = [obj]
    python = 0
    buffers: dict[Any, int] = {}
    unknown = False
    while stack and len(seen) < limit:
        item = stack.pop()
        held = holding(item)
        if held.size is None:
            unknown = True
        elif held.buffers:
            buffers.update(held.buffers)
        else:
            python += held.size + (_own_keys(item) if type(item) is dict else 0)
        for child in children(item):
            if type(child) in _NUMBERS and id(child) not in seen and sys.getrefcount(child) <= _OWN_REFS:
                seen.add(id(child))
                python += sys.getsizeof(child)
            elif id(child) not in seen and not isinstance(child, _ATOMIC):
                seen.add(id(child))
                keep.append(child)
                stack.append(child)
    keep.clear()
    total = python + sum(buffers.values())
    return None if unknown and not buffers else total


def buffer_baseline() -> frozenset[int]:
    """The ids of every data holder alive now (one heap pass): what a caller that cannot freeze
    the heap (a Dask worker watching many tasks) compares its survivors with."""
    with thawed():
        scan = HeapScan(edges=False)
    ids = frozenset(id(o) for o in scan.data)
    scan.clear()
    return ids
