"""Reference cycles the garbage collector cannot free: cycles through a numpy object array.

numpy arrays take no part in the garbage collector's cycle detection: an array is not tracked
and reports none of the objects it holds. An object stored in an object array that refers back
to the array's owner - an object put into a DataFrame cell that keeps the frame as an attribute -
makes a cycle that ``gc.collect()`` never frees, and that no root holds. A search backwards from
it finds nothing; this module names it instead, with the cycle as its path.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterable

__all__ = ["CYCLE_KIND", "CYCLE_ROOT", "cycle_through_arrays", "is_object_array", "object_array_cycle"]

#: How a root that is such a cycle is named.
CYCLE_ROOT = "a reference cycle through a numpy object array (never freed by the garbage collector)"
#: Its kind (:attr:`leakhunt.retention.RetentionPath.root_kind`), which picks its hint.
CYCLE_KIND = "cycle"
#: Objects a search for the way back to an array visits at most.
_LIMIT = 20_000


def is_object_array(obj: Any) -> bool:
    """An object-dtype numpy array that owns its memory (its elements are held by it)."""
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray) and obj.base is None and obj.dtype.hasobject


def object_array_cycle(array: Any, children: Callable[[Any], Iterable[Any]],
                       limit: int = _LIMIT) -> tuple[Any, ...] | None:
    """The shortest chain ``array -> ... -> array`` through what ``children`` reports (a forward
    walk, breadth first, of at most ``limit`` objects), or None when the array is in no cycle."""
    parents: dict[int, Any] = {id(array): None}
    keep = [array]  # what the walk saw stays alive (ids are compared)
    level = [array]
    while level and len(parents) < limit:
        nxt = []
        for obj in level:
            for child in children(obj):
                if child is array:
                    chain = [obj]
                    while parents[id(chain[-1])] is not None:
                        chain.append(parents[id(chain[-1])])
                    keep.clear()
                    return (*reversed(chain), array)
                if id(child) not in parents and not isinstance(child, (int, float, str, bytes, type(None))):
                    parents[id(child)] = obj
                    keep.append(child)
                    nxt.append(child)
        level = nxt
    keep.clear()
    return None


def cycle_through_arrays(objects: Iterable[Any], children: Callable[[Any], Iterable[Any]]) -> tuple[Any, ...] | None:
    """The first cycle through one of the object arrays among ``objects``."""
    for obj in objects:
        if is_object_array(obj):
            chain = object_array_cycle(obj, children)
            if chain is not None:
                return chain
    return None
