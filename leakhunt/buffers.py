"""The data buffers an object holds, by address: what it really keeps in memory.

A size estimate per object (``sys.getsizeof``, Dask's ``sizeof``, ``DataFrame.memory_usage``)
counts a buffer once per object that refers to it. With pandas' copy-on-write, most derived
frames share their parent's columns: ``df.assign(z=...)`` keeps ``df``'s buffers and adds one
column, and Dask's ``sizeof`` counts the whole frame again. Summed over the data a Dask worker
holds, that over-counts by whole partitions, and "unmanaged memory" (resident memory minus the
estimate) reads several MiB too low after every such task (issue 23: a clean groupby prefix read
-4.5 to -9.6 MiB per call).

:func:`held_buffers` names each buffer by its address instead: a numpy array by the start of
its root owner's data, an Arrow array by each of its buffers. Two objects sharing a buffer
report the same address, so a ledger of addresses counts every byte once.
"""

from __future__ import annotations

from typing import Any, Iterable

from leakhunt.heap import children
from leakhunt.sizing import holding

__all__ = ["held_buffers"]

_ATOMIC = (int, float, complex, bool, type(None), str, bytes, range, slice)


def held_buffers(roots: Iterable[Any], max_objects: int = 10_000) -> dict[Any, int]:
    """``{key: bytes}`` of the data buffers reachable from ``roots``, each once: numpy and Arrow
    memory keyed by its address (:mod:`leakhunt.sizing`), so a numpy view of an Arrow buffer
    and the buffer itself are one.

    The walk is the explanations' forward walk (:func:`leakhunt.heap.children`: gc referents,
    numpy ``.base`` links, object arrays; not into modules, classes or functions); an Arrow
    object is counted by its buffers, not entered; it stops after ``max_objects`` objects (what
    lies beyond is not counted).
    """
    out: dict[Any, int] = {}
    seen: set[int] = set()
    stack = list(roots)
    while stack and len(seen) < max_objects:
        obj = stack.pop()
        if isinstance(obj, _ATOMIC) or id(obj) in seen:
            continue
        seen.add(id(obj))
        held = holding(obj)
        for key, size in held.buffers:
            out[key] = size
        if held.kind != "arrow":
            stack.extend(children(obj))
    return out
