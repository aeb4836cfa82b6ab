"""Many small row dicts in one list, accounted at once: the chunk walk's fast path.

A leak of small objects is most often a list of rows: ``[{"row": i} for i in range(20_000)]``,
``df.to_dict("records")``. Each row is a dict the gc does not track (it holds only numbers and
strings), so it hides nothing, and a walk that pops it, sizes it and looks at each of its
values, one Python step at a time, spent most of the survivors' search on them (issue 19,
item 9; benchmarks/plugin.md, "Explaining many small objects"). :func:`leaf_dicts` does for a
whole list of such rows what :func:`leakhunt.attribution._walk_chunk` does for each: the same
objects counted, the same bytes, the rows marked as walked, with each step taken for all
the rows at once (in C: ``map``, ``sum``, ``compress``). Anything else - a row that is tracked,
already walked, listed twice, or holding anything but numbers and strings - returns ``None``,
and the walk goes on one object at a time.

The bytes of a number, a string key or a string value count when nothing but its row refers to
it (``sys.getrefcount``): the walk one at a time sees the row's reference, its referents list's,
its loop variable's and the argument's (4; a key: the dict's, the loop variable's and the
argument's, 3); here each is read from one list of them all, so the references are the row's,
that list's and the iterator's (3, for both).
"""

from __future__ import annotations

import gc
import sys
from itertools import chain, compress, repeat
from operator import le
from typing import Any

__all__ = ["leaf_dicts", "MIN_ROWS"]

#: Fewer rows than this are walked one at a time (the fast path's set-up is not worth it).
MIN_ROWS = 64
#: References to a value or key that only its row holds, seen from one list of them all.
_ALONE = 3
#: What a row may hold: numbers and strings (counted when only the row holds them), True, False
#: and None (never: they are shared).
_LEAVES = frozenset({int, float, complex, str, bytes, bool, type(None)})
_SEQUENCES = (list, tuple)


def leaf_dicts(holder: Any, rows: list[Any], assigned: set[int], ids: set[int],
               data_new: dict[int, bool]) -> tuple[int, int] | None:
    """``(objects, bytes)`` of ``rows`` (what ``holder``, a list or a tuple, holds: its
    ``gc.get_referents``) when they are all distinct untracked dicts with string keys and number
    or string values that no walk has taken yet (their ids then join ``assigned``); ``None``
    otherwise, nothing changed."""
    if type(holder) not in _SEQUENCES or len(rows) < MIN_ROWS or set(map(type, rows)) != {dict} \
            or any(map(gc.is_tracked, rows)):
        return None
    unique = set(map(id, rows))
    if len(unique) != len(rows) or not assigned.isdisjoint(unique) or not ids.isdisjoint(unique) \
            or not data_new.keys().isdisjoint(unique):
        return None
    # a dict whose keys are all strings reports only its values as referents (the keys: below)
    values = gc.get_referents(*rows)
    if not set(map(type, values)) <= _LEAVES:
        return None
    getrefcount, getsizeof = sys.getrefcount, sys.getsizeof
    alone = list(map(le, list(map(getrefcount, values)), repeat(_ALONE)))  # before the keys' list
    keys = list(chain.from_iterable(rows))
    if keys and set(map(type, keys)) != {str}:
        return None
    keys_alone = list(map(le, list(map(getrefcount, keys)), repeat(_ALONE)))
    size = sum(map(getsizeof, rows)) + sum(map(getsizeof, compress(values, alone))) \
        + sum(map(getsizeof, compress(keys, keys_alone)))
    # the rows are taken; a number or string counted is not marked too: only its row refers to
    # it, so no walk can reach it again (200,000 ids the walk one at a time marks for nothing)
    assigned.update(unique)
    values.clear()
    keys.clear()
    return len(rows), size
