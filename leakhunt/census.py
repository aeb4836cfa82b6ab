"""What this process's memory is made of right now: live data by kind, and what allocators keep.

A :class:`Census` answers "is this resident memory a leak, or just not given back?" for a
process taken as it is (not a block): resident memory is split into live Python objects, live
numpy buffers, Arrow's pool, memory the allocators keep after frees (what settling gives back),
file-backed pages (the code of Python and its libraries) and what none of those explain.

The figures come from one walk over the gc heap (numpy arrays and Arrow objects are not
gc-tracked: they are found as referents, as in :mod:`leakhunt.retention`), Arrow's own pool
counter, ``/proc/self/statm`` and, when asked, one settling. The walk costs about a second per
million objects: for explaining, not for every task or test.
"""

from __future__ import annotations

import gc
import sys
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from leakhunt import probes
from leakhunt.settle import settle as _settle
from leakhunt.settle import thawed

__all__ = ["Census", "census", "data_buffers"]

_ATOMIC_SKIP = (int, float, bool, type(None))  # small ints and singletons are static: not heap
_CONTAINERS = (list, tuple, dict, set, frozenset)


@dataclass(frozen=True)
class Census:
    """A process's memory by kind, in bytes; ``None`` where a figure is unavailable.

    ``python_heap`` is an estimate: the sizes of the objects reachable from the gc heap, numpy
    and Arrow data excluded (a shared object is counted once, by dividing its size among its
    references); memory pymalloc keeps in half-empty arenas is not in it. ``numpy`` is the
    bytes of every array that owns its data (views are not counted twice). ``arrow`` is
    Arrow's default pool. ``excluded_*`` are the numpy and Arrow bytes of the objects the
    caller asked to leave out (e.g. Dask's managed data), already taken out of ``numpy`` and
    ``arrow``. ``allocator_retention`` is the resident memory settling gave back (``None``
    when not settled); ``rss`` is the resident size before settling, ``rss_settled`` after.
    """

    rss: int | None
    rss_settled: int | None
    file_backed: int | None
    python_heap: int
    numpy: int
    arrow: int | None
    excluded_numpy: int
    excluded_arrow: int
    allocator_retention: int | None
    objects: int  # objects the walk saw

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _arrow_classes() -> tuple[type, ...]:
    pa = sys.modules.get("pyarrow")
    if pa is None:
        return ()
    names = ("Table", "RecordBatch", "ChunkedArray", "Array")
    return tuple(c for c in (getattr(pa, n, None) for n in names) if isinstance(c, type))


def _arrow_size(obj: Any) -> int:
    try:
        return int(obj.get_total_buffer_size())
    except Exception:
        return int(getattr(obj, "nbytes", 0) or 0)


def data_buffers(roots: Iterable[Any], max_objects: int = 1_000_000) -> tuple[dict[int, int], int]:
    """The numpy buffers and Arrow bytes reachable from ``roots``.

    Returns ``({id(owning ndarray): nbytes}, arrow bytes)``. The walk follows gc referents and
    numpy ``.base`` links, stops at ``max_objects`` visited objects, and does not descend
    into modules, classes or functions (data held there is not the roots' data).
    """
    np = sys.modules.get("numpy")
    ndarray = np.ndarray if np is not None else None
    arrow_classes = _arrow_classes()
    owners: dict[int, int] = {}
    arrow_ids: dict[int, int] = {}
    seen: set[int] = set()
    stack = list(roots)
    stop = (type(sys), type, type(_arrow_size))
    while stack and len(seen) < max_objects:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _ATOMIC_SKIP) or isinstance(obj, stop):
            continue
        seen.add(id(obj))
        if ndarray is not None and isinstance(obj, ndarray):
            owner = obj
            while isinstance(owner.base, ndarray):
                owner = owner.base
            if owner.base is None:
                owners[id(owner)] = int(owner.nbytes)
            continue
        if arrow_classes and isinstance(obj, arrow_classes):
            arrow_ids[id(obj)] = _arrow_size(obj)
            continue
        stack.extend(gc.get_referents(obj))
    # An Arrow table and its columns share buffers: count the largest holder only.
    arrow = max(arrow_ids.values(), default=0) if len(arrow_ids) <= 1 else _distinct_arrow(arrow_ids)
    return owners, arrow


def _distinct_arrow(sizes: dict[int, int]) -> int:
    # Without buffer addresses we cannot tell shared from distinct buffers; holders of equal
    # size are taken as the same data seen twice (a table and its only column).
    return sum(set(sizes.values()))


# How the walk treats a type: skip it, a numpy array, Arrow data, or a heap object (a builtin
# reports its own size; other types may report their data too - a DataFrame's __sizeof__ is its
# deep memory usage - so only their header counts), following untracked containers.
_SKIP, _NDARRAY, _ARROW, _BUILTIN, _OTHER, _CONTAINER = range(6)


def _kinds() -> dict[type, int]:
    kinds = {tp: _SKIP for tp in _ATOMIC_SKIP}
    kinds.update({tp: _CONTAINER for tp in _CONTAINERS})
    np = sys.modules.get("numpy")
    if np is not None:
        kinds[np.ndarray] = _NDARRAY
    for cls in _arrow_classes():
        kinds[cls] = _ARROW
    return kinds


def _kind(kinds: dict[type, int], tp: type) -> int:
    kind = kinds.get(tp)
    if kind is None:
        np = sys.modules.get("numpy")
        if np is not None and issubclass(tp, np.ndarray):
            kind = _NDARRAY
        elif issubclass(tp, _ATOMIC_SKIP):
            kind = _SKIP
        else:
            kind = _BUILTIN if tp.__module__ == "builtins" else _OTHER
        kinds[tp] = kind
    return kind


def _untracked_contents(container: Any, share: float, kinds: dict[type, int],
                        array: Any) -> tuple[float, int]:
    """The heap bytes (shared out by references, as in :func:`_walk_heap`) and the count of the
    untracked objects an untracked container holds, through nested untracked containers."""
    getrefcount, getsizeof, header = sys.getrefcount, sys.getsizeof, object.__sizeof__
    is_tracked, referents = gc.is_tracked, gc.get_referents
    heap = 0.0
    objects = 0
    nested = [(child, share) for child in referents(container)]
    while nested:
        child, weight = nested.pop()
        kind = kinds.get(type(child))
        if kind is None:
            kind = _kind(kinds, type(child))
        if kind == _SKIP or kind == _ARROW or is_tracked(child):
            continue
        if kind == _NDARRAY:
            array(child)
            continue
        part = weight / max(1, getrefcount(child) - 2)  # the name and the argument
        objects += 1
        heap += (header(child) if kind == _OTHER else getsizeof(child)) * part
        if kind == _CONTAINER:
            nested.extend((grandchild, part) for grandchild in referents(child))
        del child
    return heap, objects


def _walk_heap(excluded_owners: dict[int, int]) -> tuple[dict[int, int], int, int]:
    """One pass over the gc heap: (numpy owners not excluded, Python heap bytes, objects seen).

    Untracked objects (strings, bytes, untracked tuples and dicts, arrays) can only be reached
    as referents, and may be shared: each reference adds ``weight / references`` of the object,
    so an object reached through every one of its references counts once. Untracked containers
    hold only untracked objects, so following them cannot loop.
    """
    kinds = _kinds()
    owners: dict[int, int] = {}
    getrefcount, getsizeof, header = sys.getrefcount, sys.getsizeof, object.__sizeof__
    is_tracked, referents = gc.is_tracked, gc.get_referents
    heap = 0.0
    objects = 0

    def array(ref: Any) -> None:
        owner = ref
        while type(owner.base) is type(ref) or _kind(kinds, type(owner.base)) == _NDARRAY:
            owner = owner.base
        if owner.base is None and id(owner) not in excluded_owners:
            owners[id(owner)] = int(owner.nbytes)

    tracked = gc.get_objects()
    for holder in tracked:
        kind = kinds.get(type(holder))
        if kind is None:
            kind = _kind(kinds, type(holder))
        if kind == _ARROW:
            continue  # Arrow's data is in its pool, counted from the pool
        objects += 1
        heap += header(holder) if kind == _OTHER else getsizeof(holder)
        for ref in referents(holder):
            kind = kinds.get(type(ref))
            if kind is None:
                kind = _kind(kinds, type(ref))
            if kind == _SKIP or kind == _ARROW or is_tracked(ref):
                continue
            if kind == _NDARRAY:
                array(ref)
                continue
            # References to ref: the holders' (what we want), plus the referents list, the loop
            # name and getrefcount's own argument.
            share = 1.0 / max(1, getrefcount(ref) - 3)
            objects += 1
            heap += (header(ref) if kind == _OTHER else getsizeof(ref)) * share
            if kind == _CONTAINER:
                # What an untracked container holds: one call per container (a call per
                # referent made the walk 1.6x slower: hundreds of thousands on a worker's heap).
                more, count = _untracked_contents(ref, share, kinds, array)
                heap += more
                objects += count
    del tracked
    return owners, int(heap), objects


def census(*, settle: bool = False, exclude: Iterable[Any] = ()) -> Census:
    """Take a :class:`Census` of this process. ``settle`` first gives freed memory back and
    records how much that was; ``exclude`` names objects whose data is accounted elsewhere."""
    rss_before = probes.rss()
    if settle:
        _settle()
    statm = probes._statm()
    rss_now = statm[0] if statm is not None else probes.rss()
    file_backed = statm[1] if statm is not None else None
    excluded_owners, excluded_arrow = data_buffers(exclude)

    with thawed():  # frozen objects are invisible to gc.get_objects()
        owners, heap, objects = _walk_heap(excluded_owners)
    arrow_total = probes.arrow()
    retention = None
    if settle and rss_before is not None and rss_now is not None:
        retention = max(0, rss_before - rss_now)
    return Census(
        rss=rss_before,
        rss_settled=rss_now if settle else None,
        file_backed=file_backed,
        python_heap=heap,
        numpy=sum(owners.values()),
        arrow=None if arrow_total is None else max(0, arrow_total - excluded_arrow),
        excluded_numpy=sum(excluded_owners.values()),
        excluded_arrow=excluded_arrow,
        allocator_retention=retention,
        objects=objects,
    )
