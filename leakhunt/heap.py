"""One pass over the heap: the edges the garbage collector cannot report, and the data holders.

The gc knows most edges (lists, dicts, instances, pandas internals), but not the ones that keep
data work's big buffers alive: a numpy view holds its ``.base`` through a C pointer that
``gc.get_referents`` never reports, numpy arrays are not gc-tracked at all (so
``gc.get_referrers(base)`` finds nothing), an object array holds its elements the
same hidden way, and CPython untracks a dict or tuple whose items all have untracked types, so
a dict of arrays is invisible to ``get_referrers``. Every such parent is itself a referent of a
tracked object or of a frame's local, so one forward pass finds them all. On the way it collects
the data holders (numpy arrays that own their memory, Arrow objects, polars frames, bytes,
memory maps; :func:`leakhunt.sizing.is_data`), which ``gc.get_objects()`` does not list either.

Used by the backward search (:mod:`leakhunt.retention`), the survivors of a block
(:mod:`leakhunt.attribution`) and the census of a process (:mod:`leakhunt.census`).
"""

from __future__ import annotations

import gc
import mmap
import sys
import types
from itertools import compress, repeat
from operator import not_
from typing import Any, Iterator

from leakhunt import frames as _frames
from leakhunt.sizing import is_data

__all__ = ["HeapScan", "PLAIN", "children", "closed", "live_frames", "module_dicts", "object_elements",
           "OBJECT_ARRAY_LIMIT"]

_CONTAINERS = (list, tuple, dict, set, frozenset)
_ATOMIC = (int, float, complex, str, bool, type(None))
_SKIP_TYPES = frozenset({int, float, str, bool, type(None), complex, type, types.CodeType, types.FunctionType,
                         types.ModuleType, types.BuiltinFunctionType, types.MethodDescriptorType,
                         types.WrapperDescriptorType, types.GetSetDescriptorType, types.MemberDescriptorType})
_ATOMIC_TYPES = frozenset(_ATOMIC)  # exactly these types: what _visit never follows (subclasses: visited)
_UNTRACKED_BATCH = 256
_SKIP, _HIDEOUT, _CONTAINER, _CANDIDATE, _OTHER = range(5)
_NONE: frozenset[type] = frozenset()
#: Elements of one object array followed (a pandas object column of millions of strings is
#: followed up to this many; its size is then extrapolated by the caller, which says so).
OBJECT_ARRAY_LIMIT = 1_000_000


def module_dicts() -> dict[int, str]:
    """``{id(module.__dict__): module name}`` for every loaded module."""
    out: dict[int, str] = {}
    for name, module in list(sys.modules.items()):
        d = getattr(module, "__dict__", None)
        # a module under another name too (multiprocessing's __mp_main__ for __main__) keeps its own
        if isinstance(d, dict) and (id(d) not in out or getattr(module, "__name__", None) == name):
            out[id(d)] = name
    return out


def live_frames(skip_depth: int = 0) -> list[types.FrameType]:
    """Frames of every thread, minus leakhunt's own (and the ``skip_depth`` callers above the
    caller)."""
    out = []
    me: types.FrameType | None = sys._getframe(1)
    skip: set[int] = set()
    f: types.FrameType | None = me
    for _ in range(skip_depth + 1):
        if f is None:
            break
        skip.add(id(f))
        f = f.f_back
    tops = list(sys._current_frames().values())
    for top in tops:
        f = top
        while f is not None:
            if id(f) not in skip and not _frames.is_ours(f.f_code.co_filename):
                out.append(f)
            f = f.f_back
    # This frame is among the tops, and its variables refer to it: a cycle that would keep
    # every frame above it (and their locals) alive until the next collection. Break it.
    tops.clear()
    me = f = top = None  # noqa: F841
    return out


def object_elements(arr: Any) -> Iterator[Any]:
    """The Python objects an object-dtype numpy array holds (up to :data:`OBJECT_ARRAY_LIMIT`)."""
    flat = arr.ravel(order="K") if arr.ndim != 1 else arr
    if flat.dtype.kind == "O":  # one C-level list rather than an index per element: 5x faster
        yield from flat[:OBJECT_ARRAY_LIMIT].tolist()
        return
    n = min(len(flat), OBJECT_ARRAY_LIMIT)
    for i in range(n):
        yield flat[i]


class HeapScan:
    """One pass over the heap. ``edges``: ``{id(child): [parents]}`` that ``gc.get_referrers``
    cannot see (a view's ``.base``, an untracked container's items, an object array's
    elements); ``data``: every data holder alive (:func:`leakhunt.sizing.is_data`), of
    ``min_size`` bytes or more when given.

    The heap is walked with ``gc.get_referents`` over batches of objects: one list per batch
    rather than one per object, which matters under tracemalloc (every list is traced).
    """

    def __init__(self, *, edges: bool = True, data: bool = True) -> None:
        np = sys.modules.get("numpy")
        self._ndarray = np.ndarray if np is not None else None
        self.edges: dict[int, list[Any]] = {}
        self._candidates: list[Any] = []
        self._seen: set[int] = set()
        self._want_edges = edges
        self._want_data = data
        self._stack: list[Any] = []
        self._kinds: dict[type, int] = {}
        self._walk()
        self._seen.clear()
        self.data: list[Any] = self._data()

    def clear(self) -> None:
        self.edges.clear()
        self.data.clear()

    # ------------------------------------------------------------------ the pass
    # The loop below runs once per referent of every object (hundreds of thousands), often
    # under tracemalloc, where every allocation is traced: it classifies by type through a
    # cache and allocates nothing (no id(), no list) for the common case.
    def _kind(self, tp: type) -> int:
        kind = self._kinds.get(tp)
        if kind is None:
            if tp in _SKIP_TYPES:
                kind = _SKIP
            elif self._ndarray is not None and issubclass(tp, self._ndarray):
                kind = _HIDEOUT
            elif issubclass(tp, _CONTAINERS):
                kind = _CONTAINER
            elif _maybe_data_type(tp):
                kind = _CANDIDATE
            else:
                kind = _OTHER
            self._kinds[tp] = kind
        return kind

    def _walk(self) -> None:
        is_tracked, kinds, kind_of = gc.is_tracked, self._kinds, self._kind
        candidates, visit = self._candidates, self._visit
        want_data = self._want_data
        objects = gc.get_objects()
        untracked: list[Any] = []  # untracked containers, visited a batch at a time
        for i in range(0, len(objects), 1024):
            # each referent classified by its type, in C (map and compress): a loop in Python
            # per referent was most of the walk's time on a heap of many small objects; and
            # with functions called without an argument tuple (operator.eq, not int.__eq__),
            # which under tracemalloc would be an allocation traced per referent
            refs = gc.get_referents(*objects[i:i + 1024])
            tps = list(map(type, refs))
            present = set(tps)  # a few dozen types a batch: each kind is a set of them
            of_kind: dict[int, set[type]] = {}
            for tp in present:
                kind = kinds.get(tp)
                of_kind.setdefault(kind_of(tp) if kind is None else kind, set()).add(tp)
            containers = list(compress(refs, map(of_kind.get(_CONTAINER, _NONE).__contains__, tps)))
            untracked.extend(compress(containers, map(not_, map(is_tracked, containers))))
            if _HIDEOUT in of_kind:
                for arr in compress(refs, map(of_kind[_HIDEOUT].__contains__, tps)):
                    visit(arr)
            if want_data and _CANDIDATE in of_kind:
                candidates.extend(compress(refs, map(of_kind[_CANDIDATE].__contains__, tps)))
            del tps
            del refs, containers
            self._visit_untracked(untracked)
        del objects
        for frame in live_frames(skip_depth=1):
            try:
                values = list(frame.f_locals.values())
            except Exception:
                continue
            for value in values:
                kind = kind_of(type(value))
                if kind == _HIDEOUT or (kind == _CONTAINER and not is_tracked(value)):
                    visit(value)
                elif kind == _CANDIDATE and want_data:
                    candidates.append(value)

    def _visit_untracked(self, containers: list[Any]) -> None:
        """Visit untracked containers (then empty the list). Most hold only numbers and strings
        (a dict of a row, a tuple of ints: why CPython untracked them), which hide nothing: a
        batch whose items are all such is skipped whole, from one referents list, rather than
        visited one container at a time (20,000 small dicts kept: most of the walk's time)."""
        visit = self._visit
        for i in range(0, len(containers), _UNTRACKED_BATCH):
            part = containers[i:i + _UNTRACKED_BATCH]
            refs = gc.get_referents(*part)
            if set(map(type, refs)) <= _ATOMIC_TYPES:
                continue
            if self._want_edges:
                # only the containers that hold something else than numbers and strings: a
                # visit of one that does not records nothing (each told in C, without a call
                # per container: a batch that fails the test above mostly holds such ones)
                for obj in compress(part, map(not_, map(_ATOMIC_TYPES.issuperset, map(
                        set, map(map, repeat(type), map(gc.get_referents, part)))))):
                    visit(obj)
            else:
                # no edges wanted, so no parent to record: what the batch holds is visited (or
                # considered) directly, without a walk per container (a walk allocates under the
                # explanation's trace: 12,000 of them were most of its traced heap walk)
                self._visit_all(refs)
        containers.clear()

    def _visit_all(self, objects: list[Any]) -> None:
        """What :meth:`_visit` does with the children of an untracked container, for many
        children at once (without recording edges)."""
        stack = self._stack
        for child in objects:
            if not isinstance(child, _ATOMIC):
                self._push_or_consider(child, stack)
        if stack:
            self._visit(stack.pop())

    def _consider(self, obj: Any) -> None:
        if self._want_data and self._kind(type(obj)) == _CANDIDATE:
            self._candidates.append(obj)

    def _data(self) -> list[Any]:
        """The data holders among the candidates, each once (bytes from 1 KiB up: the heap holds
        tens of thousands of small ones, which the walks of a root count anyway)."""
        out: dict[int, Any] = {}
        for obj in self._candidates:
            if id(obj) not in out and (not isinstance(obj, (bytes, bytearray)) or len(obj) >= 1024) \
                    and is_data(obj):
                out[id(obj)] = obj
        self._candidates.clear()
        return list(out.values())

    def _edge(self, child: Any, parent: Any) -> None:
        if self._want_edges:
            self.edges.setdefault(id(child), []).append(parent)

    def _visit(self, start: Any) -> None:
        """Walk what an untracked container or an array hides, recording the hidden edges."""
        ndarray = self._ndarray
        stack = self._stack
        stack.append(start)
        seen = self._seen
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if ndarray is not None and isinstance(obj, ndarray):
                self._array(obj, stack)
            elif isinstance(obj, _CONTAINERS) and not gc.is_tracked(obj):
                for child in gc.get_referents(obj):
                    if isinstance(child, _ATOMIC):
                        continue
                    self._edge(child, obj)
                    self._push_or_consider(child, stack)

    def _push_or_consider(self, child: Any, stack: list[Any]) -> None:
        ndarray = self._ndarray
        if (ndarray is not None and isinstance(child, ndarray)) or (
                isinstance(child, _CONTAINERS) and not gc.is_tracked(child)):
            stack.append(child)
        else:
            self._consider(child)

    def _array(self, arr: Any, stack: list[Any]) -> None:
        base = arr.base
        if base is None:
            if self._want_data:
                self._candidates.append(arr)
            if arr.dtype.hasobject:
                for element in object_elements(arr):
                    if not isinstance(element, _ATOMIC) or (isinstance(element, str) and len(element) > 64):
                        self._edge(element, arr)
                        if gc.is_tracked(element) or isinstance(element, _ATOMIC):
                            continue
                        self._push_or_consider(element, stack)
            return
        if not isinstance(base, _ATOMIC):
            self._edge(base, arr)
            self._push_or_consider(base, stack)


def _maybe_data_type(tp: type) -> bool:
    """Can objects of this type be data holders? (:func:`leakhunt.sizing.is_data` decides.)"""
    if issubclass(tp, (bytes, bytearray, mmap.mmap)):
        return True
    module = getattr(tp, "__module__", None)
    return isinstance(module, str) and module.startswith(("numpy", "pyarrow", "polars"))


# --------------------------------------------------------------------------------------
# forward: what an object holds


PLAIN = frozenset({dict, list, tuple, set, frozenset, str, int, float, complex, bool, types.SimpleNamespace})
_CLOSED_TYPES: dict[type, bool] = {}  # type -> a forward walk does not enter its objects


def closed(tp: type) -> bool:
    """Does a forward walk leave objects of this type unentered (modules, classes, code, the
    test framework's and leakhunt's own objects)?"""
    found = _CLOSED_TYPES.get(tp)
    if found is None:
        module = getattr(tp, "__module__", None)
        found = _CLOSED_TYPES[tp] = issubclass(tp, (types.ModuleType, type, types.CodeType)) or (
            isinstance(module, str) and module.split(".", 1)[0] in _frames.FRAMEWORK)
    return found


def children(obj: Any) -> Iterator[Any]:
    """What an object holds, for a forward walk: gc's referents plus the edges the gc does not
    report; modules, classes, code and the test framework's objects are not entered, a function
    only through its closure and defaults, a frame only through its local variables."""
    tp = type(obj)
    if tp in PLAIN:
        yield from gc.get_referents(obj)
        return
    if closed(tp):
        return
    if isinstance(obj, types.FunctionType):
        if obj.__closure__:
            yield obj.__closure__
        if obj.__defaults__:
            yield obj.__defaults__
        return
    if isinstance(obj, types.FrameType):
        try:
            yield from list(obj.f_locals.values())
        except Exception:
            pass
        return
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        if obj.base is not None:
            yield obj.base
        elif obj.dtype.hasobject:
            yield from object_elements(obj)
        return
    yield from gc.get_referents(obj)
