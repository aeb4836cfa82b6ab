"""What an object holds by itself: one registry for numpy, Arrow, polars, bytes, memory maps and
anything else that says its size in ``nbytes``; Python objects by their own size.

An object's *holding* is the data it keeps alive on its own, not through other Python objects
(those are walked: a DataFrame holds its blocks, a block its ndarray). Data buffers carry an
identity, so that a buffer shared by a table and its slices, or by two columns, is counted once:
numpy by the array that owns the memory, Arrow by each buffer's address and size, polars by the
frame (its ``estimated_size()``). An object of an extension type leakhunt cannot size is still a
holder: its size is ``None`` ("size unknown to leakhunt"), never 0.

pyarrow, numpy and polars are never imported here: an object can only be theirs if its module
is already loaded.
"""

from __future__ import annotations

import mmap
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["Holding", "holding", "data_size", "describe_kind", "is_data", "numpy_owner", "DATA_KINDS"]

#: kinds of holding that are data buffers (found by the heap scan, counted by identity)
DATA_KINDS = frozenset({"numpy", "arrow", "polars", "bytes", "memmap", "nbytes"})

_BUILTIN_MODULES = ("builtins",)


@dataclass(frozen=True)
class Holding:
    """What one object keeps alive by itself.

    ``size``: bytes (``None``: unknown to leakhunt); ``buffers``: identities and sizes of the
    data buffers behind it, ``((key, bytes), ...)``, so that a buffer shared by several holders
    is counted once (numpy and Arrow memory is keyed by its address, an int, so the two count
    memory they share once; others by the holder); ``kind``: ``numpy``, ``arrow``, ``polars``,
    ``bytes``, ``memmap`` (file backed), ``nbytes`` (another library's array), ``python`` or
    ``unknown``.
    """

    size: int | None
    kind: str = "python"
    buffers: tuple[tuple[Any, int], ...] = ()

    @property
    def data(self) -> bool:
        return self.kind in DATA_KINDS


_PYTHON_ZERO = Holding(0)


def _module(tp: type) -> str:
    module = getattr(tp, "__module__", "")
    return module if isinstance(module, str) else ""


def numpy_owner(arr: Any) -> Any:
    """The object that owns a numpy array's memory: the array itself, the array at the end of its
    ``.base`` chain, or the non-array base (bytes, a memory map, an Arrow buffer)."""
    np = sys.modules.get("numpy")
    owner = arr
    while np is not None and isinstance(owner, np.ndarray) and owner.base is not None:
        owner = owner.base
    return owner


def _numpy(arr: Any) -> Holding:
    if arr.base is not None:
        return Holding(sys.getsizeof(arr), "numpy")  # a view: its header (the walk reaches the base)
    size = int(arr.nbytes)
    # keyed by the address of its data: an Arrow buffer made from it without a copy (or an
    # array viewing an Arrow buffer) is the same memory, counted once
    return Holding(size, "numpy", ((arr.__array_interface__["data"][0], size),)) if size else Holding(0, "numpy")


_ARROW_CONTAINERS = ("Table", "RecordBatch", "ChunkedArray")


def _arrow_arrays(obj: Any) -> list[Any]:
    """The arrays (chunks) behind an Arrow table, batch, chunked array or array."""
    name = type(obj).__name__
    if name == "Table" or name == "RecordBatch":
        out: list[Any] = []
        for column in obj.columns:
            out.extend(_arrow_arrays(column))
        return out
    if name == "ChunkedArray":
        return list(obj.chunks)
    return [obj]


def _arrow_buffers(obj: Any) -> tuple[tuple[Any, int], ...]:
    pa = sys.modules["pyarrow"]
    if isinstance(obj, pa.Buffer):
        return ((obj.address, obj.size),) if obj.size else ()
    seen: dict[Any, int] = {}
    for array in _arrow_arrays(obj):
        parts = [array]
        dictionary = getattr(array, "dictionary", None)
        if dictionary is not None:
            parts.append(dictionary)
        for part in parts:
            for buf in part.buffers():
                if buf is not None and buf.size:
                    seen[buf.address] = max(seen.get(buf.address, 0), buf.size)
    return tuple(seen.items())


def _arrow(obj: Any) -> Holding | None:
    pa = sys.modules.get("pyarrow")
    if pa is None or not isinstance(obj, (pa.Buffer, pa.Array, pa.ChunkedArray, pa.RecordBatch, pa.Table)):
        return None
    try:
        buffers = _arrow_buffers(obj)
    except Exception:  # a type whose buffers cannot be listed: its total, without identity
        try:
            return Holding(int(obj.get_total_buffer_size()), "arrow", ((("arrow-object", id(obj)),
                                                                        int(obj.get_total_buffer_size())),))
        except Exception:
            return Holding(None, "arrow")
    return Holding(sum(size for _, size in buffers), "arrow", buffers)


def _polars(obj: Any) -> Holding | None:
    pl = sys.modules.get("polars")
    if pl is None or not isinstance(obj, (pl.DataFrame, pl.Series)):
        return None
    try:
        size = int(obj.estimated_size())
    except Exception:
        return Holding(None, "polars")
    return Holding(size, "polars", ((("polars", id(obj)), size),))


def _bytes(obj: Any) -> Holding | None:
    if isinstance(obj, (bytes, bytearray)):
        size = sys.getsizeof(obj)
        return Holding(size, "bytes", ((("bytes", id(obj)), size),))
    if isinstance(obj, mmap.mmap):
        try:
            size = len(obj)
        except (ValueError, OSError):  # closed
            size = 0
        return Holding(size, "memmap", ((("mmap", id(obj)), size),))
    return None


#: Libraries whose objects' ``nbytes`` counts data the walk reaches anyway (a pandas Index's
#: ndarray): not counted twice; and dask, whose collections' ``nbytes`` is what their graph would
#: compute, not memory they hold (dask/dask#3530: a lazy 122 MiB array is a graph of a few KiB).
_WALKED = ("builtins", "pandas", "numpy", "pyarrow", "polars", "dask")


def _nbytes(obj: Any) -> Holding | None:
    """Another library's array (torch, cupy, ...): it says its size in an integer ``nbytes``."""
    if _module(type(obj)).split(".", 1)[0] in _WALKED or isinstance(obj, type):
        return None
    try:
        size = type(obj).__dict__.get("nbytes") is not None and getattr(obj, "nbytes", None)
    except Exception:
        return None
    if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
        return Holding(size, "nbytes", ((("nbytes", id(obj)), size),))
    return None


class _Plain:
    """An instance of a class defined in Python: the interpreter's header before each one."""


#: What the interpreter allocates before an object, which ``object.__sizeof__`` leaves out and
#: ``sys.getsizeof`` counts: the garbage collector's header (an object it tracks), and before an
#: instance of a Python class (3.11+) the pointers to its dict and weak references.
_GC_HEADER = sys.getsizeof([]) - [].__sizeof__()
_PRE_HEADER = sys.getsizeof(_Plain()) - object.__sizeof__(_Plain()) - _GC_HEADER
_HAVE_GC = 1 << 14  # Py_TPFLAGS_HAVE_GC
_MANAGED_DICT = 1 << 4  # Py_TPFLAGS_MANAGED_DICT (3.11+)
_SIZEOF_OWN: dict[type, bool] = {}


def _own_size(obj: Any, tp: type) -> int:
    """An object's own size, its header included. ``sys.getsizeof`` where the type keeps
    ``object.__sizeof__``; otherwise ``object.__sizeof__`` plus the header (a DataFrame's
    ``__sizeof__`` is deep: what it holds is walked, not counted twice)."""
    plain = _SIZEOF_OWN.get(tp)
    if plain is None:
        plain = _SIZEOF_OWN[tp] = getattr(tp, "__sizeof__", None) is object.__sizeof__
    if plain:
        return sys.getsizeof(obj)
    flags = tp.__flags__
    return (object.__sizeof__(obj) + (_GC_HEADER if flags & _HAVE_GC else 0)
            + (_PRE_HEADER if flags & _MANAGED_DICT else 0))


def holding(obj: Any) -> Holding:
    """What ``obj`` keeps alive by itself (see the module's docstring)."""
    tp = type(obj)
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        return _numpy(obj)
    module = _module(tp)
    if module.startswith("pyarrow"):
        found = _arrow(obj)
        if found is not None:
            return found
    elif module.startswith("polars"):
        found = _polars(obj)
        if found is not None:
            return found
    found = _bytes(obj)
    if found is not None:
        return found
    if module not in _BUILTIN_MODULES:
        found = _nbytes(obj)
        if found is not None:
            return found
        try:
            return Holding(_own_size(obj, tp))
        except TypeError:
            return Holding(None, "unknown")
    try:
        return Holding(sys.getsizeof(obj))
    except TypeError:
        return _PYTHON_ZERO


_BY_GETSIZEOF: dict[type, bool] = {}


def sized_by_getsizeof(tp: type) -> bool:
    """Is the holding of every object of this type ``Holding(sys.getsizeof(obj))`` (0 where that
    raises ``TypeError``): the interpreter's own types (functions, classes, weak references,
    descriptors...) but bytes and bytearray? What :func:`holding` says of them, told once per
    type for a walk that sizes tens of thousands of them."""
    found = _BY_GETSIZEOF.get(tp)
    if found is None:
        np = sys.modules.get("numpy")
        found = _BY_GETSIZEOF[tp] = (_module(tp) in _BUILTIN_MODULES and not issubclass(tp, (bytes, bytearray, mmap.mmap))
                                     and not (np is not None and issubclass(tp, np.ndarray)))
    return found


def is_data(obj: Any) -> bool:
    """Is ``obj`` a data buffer holder (numpy owner, Arrow object, polars frame, bytes, memory
    map)? These are what the heap scan collects; most are invisible to ``gc.get_objects()``."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        return obj.base is None
    if isinstance(obj, (bytes, bytearray, mmap.mmap)):
        return True
    module = _module(type(obj))
    if module.startswith("pyarrow"):
        return _arrow(obj) is not None
    if module.startswith("polars"):
        return _polars(obj) is not None
    return False


def data_size(obj: Any) -> int | None:
    """Bytes of data an object keeps alive by itself (its buffers, each counted once), ``None``
    when unknown to leakhunt."""
    return holding(obj).size


def describe_kind(kind: str) -> str:
    return {"numpy": "numpy buffers", "arrow": "Arrow buffers", "polars": "polars data (estimated_size)",
            "bytes": "bytes", "memmap": "memory maps (file backed)", "nbytes": "arrays of other libraries",
            "python": "Python objects", "unknown": "objects of unknown size"}.get(kind, kind)
