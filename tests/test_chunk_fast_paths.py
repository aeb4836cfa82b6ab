"""The exit explanation's fast paths decide what the general code would, for the objects they take.

The survivors' walks (leakhunt.attribution._walk_chunk, leakhunt.heap.HeapScan) take shortcuts
for the commonest objects a script's imports leave (functions, classes, cells, descriptors,
untracked tuples of numbers and strings): each test compares a shortcut with the general code it
stands for, on objects of every type it takes, so a shortcut that decides differently fails here.
"""

from __future__ import annotations

import functools
import gc
import mmap
import sys
import types
import weakref

import numpy as np

from leakhunt.attribution import _BY_ID, _REFERENTS_ONLY, _Chunk, _New, _other
from leakhunt.heap import HeapScan, children
from leakhunt.sizing import Holding, holding, sized_by_getsizeof


class _Sample:
    """A class of the test's own: its descriptors, methods and weak references are samples."""

    __slots__ = ("value", "__weakref__")

    def __init__(self) -> None:
        self.value = 1

    @property
    def twice(self) -> int:
        return self.value * 2


def _closure() -> types.FunctionType:
    kept = [1, 2, 3]

    def inner(a: int = 4, *, b: str = "x") -> int:
        return len(kept) + a

    return inner  # type: ignore[return-value]


def _samples() -> list[object]:
    sample = _Sample()
    return [
        _closure(), lambda: None, _Sample, type("Made", (), {"x": 1}),  # functions and classes
        _closure().__closure__[0],  # type: ignore[index]  # a cell
        weakref.ref(sample), _Sample.__dict__["value"], _Sample.__dict__["twice"],  # member, property
        type.__dict__["__name__"], object.__init__, str.join, len,  # descriptors, a builtin
        sample, functools.partial(len), bytearray(b"x" * 100), b"y" * 2000, np.arange(4),
    ]


def test_the_walks_shortcut_accounts_and_follows_what_account_and_children_do() -> None:
    taken = 0
    for obj in _samples():
        fast, general = _Chunk(obj), _Chunk(obj)
        kids = list(_other(fast, obj, first=False))
        general.account(obj)
        assert [id(k) for k in kids] == [id(k) for k in children(obj)], obj
        assert (fast.count, fast.python, fast.buffers, fast.unknown, fast.is_import) == (
            general.count, general.python, general.buffers, general.unknown, general.is_import), obj
        taken += type(obj) in _REFERENTS_ONLY or type(obj) in (types.FunctionType, type)
    assert taken >= 10  # the shortcut was taken, not only the general path


def test_an_object_the_walk_takes_by_its_id_is_the_blocks_exactly_when_new_says_so() -> None:
    new = _New.__new__(_New)  # only what _New.child reads
    new.data_new = {}
    taken = set()
    for obj in _samples():
        if type(obj) not in _BY_ID:
            continue
        taken.add(type(obj))
        for ids in ({id(obj)}, set()):
            new.ids = ids
            assert new.child(obj) is (id(obj) in ids), obj  # what the walk decides for them inline
    assert taken == set(_BY_ID)


def test_a_type_sized_by_getsizeof_is_sized_so_by_holding() -> None:
    told = {}
    for obj in _samples() + [mmap.mmap(-1, 4096), sys, 1.5, "text", [1], {"a": 1}]:
        told[type(obj)] = sized_by_getsizeof(type(obj))
        if told[type(obj)]:
            assert holding(obj) == Holding(sys.getsizeof(obj)), obj
    # data holders and classes of libraries are sized by holding's own rules
    assert not told[bytearray] and not told[bytes] and not told[np.ndarray] and not told[mmap.mmap]
    assert not told[_Sample] and not told[functools.partial]
    assert told[types.FunctionType] and told[type]
    for tp in _REFERENTS_ONLY:  # the walk's shortcut sizes them so
        assert sized_by_getsizeof(tp) or holding(_instance(tp)) == Holding(sys.getsizeof(_instance(tp))), tp


def _instance(tp: type) -> object:
    return next(obj for obj in _samples() if type(obj) is tp)


def _tuples_hiding_a_view() -> tuple[list[object], int, int, int]:
    """A list of hundreds of tuples of numbers and strings, one of which hides a view (no local
    variable of the caller's refers to them: the scan visits frame locals on its own)."""
    base = np.arange(1000)
    view = base[10:20]
    tuples: list[object] = [(i, f"s{i}", 2.5) for i in range(700)]
    hiding = (view, "label")
    tuples.insert(350, hiding)
    return [tuples], id(hiding), id(view), id(base)


def test_the_heap_scan_finds_a_view_in_an_untracked_tuple_among_many_of_numbers() -> None:
    # hundreds of untracked tuples of numbers and strings (which the scan passes over without a
    # visit each) around one untracked tuple that hides a view: its edge must still be found
    holder, hiding, view, base = _tuples_hiding_a_view()
    gc.collect()  # the collector untracks tuples of untracked items
    tuples = holder[0]
    assert not any(map(gc.is_tracked, tuples))  # type: ignore[arg-type]
    del tuples
    scan = HeapScan()
    try:
        assert [id(p) for p in scan.edges.get(view, ())] == [hiding], "the tuple hiding the view"
        assert [id(p) for p in scan.edges.get(base, ())] == [view], "the view's base"
    finally:
        scan.clear()
    del holder
