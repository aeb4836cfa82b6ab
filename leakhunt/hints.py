"""Known holders of memory, and the fix their maintainers give: one table.

A retention path is read object by object (not as text): the first known holder on it names its
*pattern* (``view``, ``method_cache``, ``pyplot`` ...), and the pattern picks the hint. Patterns
are ranked: a holder that explains the path (a GroupBy holding its frame, a cache keyed on
``self``) wins over the container it sits in (a list, a dict).
"""

from __future__ import annotations

import mmap
import sys
import types
from typing import Any, Callable, Sequence

from leakhunt.cycles import CYCLE_KIND
from leakhunt.sizing import numpy_owner
from leakhunt.units import format_size

__all__ = ["ADVICE", "HINTS", "advice", "hint_for", "pattern_of"]

#: pattern -> the fix. The first patterns are holders found on a path; the last ones describe
#: the root itself. Where a library documents the fix, the hint gives that one.
HINTS: dict[str, str] = {
    "object_array_cycle": "numpy arrays take no part in the garbage collector's cycle detection: an object stored "
                          "in an object array (a DataFrame cell) that refers back to the array's owner is never "
                          "freed; store a weakref.ref to the owner instead, or clear the cell before dropping it",
    "exception": "a stored exception keeps its traceback's frames and every local variable in them alive; "
                 "store str(exc) or traceback.format_exception(exc) instead, or drop the frames with "
                 "traceback.clear_frames(exc.__traceback__)",
    "groupby": "a GroupBy object holds its whole frame; keep the aggregated result, not the GroupBy",
    "memmap": "a memory map keeps the pages of its file that were read resident while it is alive; they are "
              "file-backed (the kernel drops them under pressure): del the array when done, or keep a copy of "
              "the part you need",
    "view": "a slice or view keeps its whole parent buffer; store .copy() or plain values instead",
    "arrow_slice": "an Arrow slice keeps every buffer of its parent; keep a copy "
                   "(pa.Table.from_pylist(t.slice(...).to_pylist()), or .take(...)) instead",
    "method_cache": "functools.cache/lru_cache on a method keeps every self it was called with alive (the key "
                    "holds self): cache a module-level function of the arguments that matter, or keep the "
                    "cache on the instance (functools.cached_property)",
    "unbounded_cache": "an unbounded cache (functools.cache, lru_cache(maxsize=None)) keeps every result it "
                       "ever returned; bound it (lru_cache(maxsize=...)) or cache something smaller",
    "cache": "a cache holds big values; bound it (maxsize) or cache something smaller",
    "pyplot": "pyplot keeps every figure it creates until it is closed: call plt.close(fig) after saving it "
              "(or build figures with matplotlib.figure.Figure, which pyplot does not track)",
    "logging": "a logging handler (or a record it buffers) outlives the block: logger.removeHandler(h) and "
               "h.close() when done",
    "finalize": "a weakref.finalize callback keeps its arguments alive until it runs: pass no big "
                "arguments, or call finalizer.detach() / finalizer() when done",
    "atexit": "a function registered with atexit keeps its arguments alive until the interpreter exits: "
              "atexit.unregister(fn) when done, or register a function that takes no big arguments",
    "pandas_option": "a callback registered on a pandas option keeps what it closes over alive: deregister "
                     "it, or make it close over nothing big",
    "thread_local": "a threading.local keeps one value per thread for as long as the thread lives: del the "
                    "attribute when done (thread pools keep their threads)",
    "mutable_default": "a default argument is made once, when the function is defined, and shared by every call: "
                       "a list or dict default that calls append to keeps everything; default to None and make "
                       "a new one inside the function",
    "closure": "a function (a callback, a lambda) keeps every variable it closes over alive; "
               "pass it small values, or drop the function when done",
    "list": "a module-level list keeps everything appended to it; clear it when done, or keep small "
            "summaries (numbers, .copy() of a few rows) instead of whole objects",
    "dict": "a module-level dict keeps every value stored in it; delete entries when done, or bound it",
    "local": "a variable still in scope holds it; del it, or measure after the function returns",
    "attribute": "an object that outlives the block holds it through an attribute; drop the reference "
                 "when done",
}

#: How the user of each front end gets what an explanation lacks: ``looked``, a way to find what
#: keeps the memory; ``trace``, a way to trace the block. ``api``: memory_budget and measure.
ADVICE: dict[str, dict[str, str]] = {
    "pytest": {"looked": "let leakhunt call the block again traced (drop --leak-no-rerun), or trace it "
                         "(pytest --leak-trace)",
               "trace": "pytest --leak-trace, or let leakhunt call the block again"},
    "run": {"looked": "trace the run (leakhunt run --trace)",
            "trace": "leakhunt run --trace"},
    "api": {"looked": "trace it (tracemalloc.start() before the block), or use memory_budget as a decorator, "
                      "which calls the function again traced",
            "trace": "tracemalloc.start() before the block, or memory_budget as a decorator"},
}


def advice(front: str, what: str) -> str:
    """The way ``front``'s user gets ``what`` (a key of an :data:`ADVICE` entry)."""
    return ADVICE.get(front, ADVICE["api"])[what]


#: patterns that explain a path, strongest first (the container patterns come after)
_RANK = ("object_array_cycle", "exception", "groupby", "method_cache", "unbounded_cache", "cache", "pyplot", "logging", "finalize",
         "atexit", "pandas_option", "thread_local", "memmap", "view", "arrow_slice", "mutable_default", "closure")


def _module_of(obj: Any) -> str:
    return type(obj).__module__ or ""


def _is_lru(obj: Any) -> bool:
    return type(obj).__name__ == "_lru_cache_wrapper"


def _cache_kind(obj: Any) -> str:
    qualname = getattr(obj, "__qualname__", "") or ""
    if "." in qualname.replace("<locals>.", ""):
        return "method_cache"  # Class.method: the key holds self
    try:
        if obj.cache_parameters().get("maxsize") is None:
            return "unbounded_cache"
    except Exception:
        pass
    return "cache"


def _arrow_slice(obj: Any) -> bool:
    if not _module_of(obj).startswith("pyarrow"):
        return False
    try:
        return bool(obj.get_total_buffer_size() > 2 * obj.nbytes + 4096)
    except Exception:
        return False


def _is_memmap(obj: Any) -> bool:
    """A numpy array whose memory is a memory map's (``np.memmap``, or a view of one)."""
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray) and isinstance(numpy_owner(obj), mmap.mmap)


def _is_view(obj: Any, last: bool) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray) and obj.base is not None and not last


def _named_holder(obj: Any) -> str | None:
    """A holder known by its type or module."""
    module, name = _module_of(obj), type(obj).__name__
    if isinstance(obj, BaseException) or isinstance(obj, (types.TracebackType, types.FrameType)):
        return "exception" if not isinstance(obj, types.FrameType) else None
    if module.startswith("pandas") and "GroupBy" in name:
        return "groupby"
    if module.startswith("matplotlib._pylab_helpers") or (isinstance(obj, type) and obj.__name__ == "Gcf"):
        return "pyplot"
    if module == "logging" or module.startswith("logging."):
        return "logging"
    if module == "weakref" and name in ("finalize", "_Info"):
        return "finalize"
    if module.startswith("pandas._config"):
        return "pandas_option"
    if name == "_local" and module in ("_thread", "_threading_local"):
        return "thread_local"
    if isinstance(obj, types.ModuleType) and obj.__name__ == "atexit":
        return "atexit"
    return None


_CHECKS: tuple[Callable[[Any, bool], str | None], ...] = (
    lambda obj, last: _cache_kind(obj) if _is_lru(obj) else None,
    lambda obj, last: _named_holder(obj),
    lambda obj, last: "memmap" if _is_memmap(obj) else None,
    lambda obj, last: "view" if _is_view(obj, last) else None,
    lambda obj, last: "arrow_slice" if _arrow_slice(obj) else None,
    lambda obj, last: "mutable_default" if _mutable_default(obj) else None,
    lambda obj, last: "closure" if isinstance(obj, types.CellType) else None,
)


def _mutable_default(obj: Any) -> bool:
    return isinstance(obj, types.FunctionType) and any(
        isinstance(d, (list, dict, set)) for d in (obj.__defaults__ or ()))


def pattern_of(chain: Sequence[Any], root_kind: str, root_label: str = "") -> str:
    """What keeps the memory, read from a path's objects (root first): a known holder's pattern,
    else what the root is (a frame's variable, a list, a dict, an attribute)."""
    found = set()
    for i, obj in enumerate(chain):
        for check in _CHECKS:
            try:
                kind = check(obj, i == len(chain) - 1)
            except Exception:  # a pattern is a hint: reading it must never fail an explanation
                kind = None
            if kind:
                found.add(kind)
    if root_kind == CYCLE_KIND:
        found.add("object_array_cycle")
    for label, kind in (("atexit", "atexit"), ("weakref.finalize", "finalize")):
        if root_label.startswith(label):
            found.add(kind)
    for kind in _RANK:
        if kind in found:
            return kind
    if root_kind == "local":
        return "local"
    first = chain[0] if chain else None
    if isinstance(first, list):
        return "list"
    if isinstance(first, dict):
        return "dict"
    return "attribute"


def _minor_roots_hint(roots: Sequence[Any], unexplained: int | None, looked: bool, front: str,
                      traced: bool) -> str:
    """The hint when the roots found keep under a tenth of what no named place holds ("" when
    they keep more, or a holder's size is unknown or estimated)."""
    if not roots or not unexplained or any(r.unknown or r.estimated for r in roots) \
            or sum(r.size for r in roots) * 10 >= unexplained:
        return ""
    kept, rest = format_size(sum(r.size for r in roots)), format_size(unexplained)
    if not looked:
        return f"the roots found keep only {kept}; {rest} was not looked for: {advice(front, 'looked')}"
    hint = (f"the roots found keep only {kept}; {rest} is held by no object the search found: native memory "
            "(a C extension), memory a library keeps, or fragmentation the allocator could not give back")
    return hint if traced else f"{hint} ({advice(front, 'trace')} shows the lines that allocated it)"


#: The hint when most of the kept memory is free memory Python's small-object allocator keeps.
ALLOCATOR_KEPT = ("most of it is memory Python's small-object allocator keeps after frees: a few objects kept "
                  "out of many made pin its arenas (a slice or a sample of a big batch of dicts or strings), "
                  "which it can never give back; keep what you keep in a compact form made after the batch (a "
                  "numpy array, a DataFrame, a copy), or make fewer small objects (later Python objects reuse "
                  "this memory)")
NATIVE_ALLOCATORS_KEPT = ("most of it is free memory the native allocators keep resident after frees (malloc's "
                          "arenas, the threads' included, or Arrow's pool): no object holds it, and later "
                          "allocations reuse it; each thread that allocates and frees much keeps an arena of its "
                          "own (MALLOC_ARENA_MAX=2 in the environment bounds how many), and "
                          "pyarrow.default_memory_pool().release_unused() hands back what Arrow's pool can")
#: The hint of each allocator's place of the every-byte line, when it keeps most of a figure.
KEPT_BY_ALLOCATOR = {"pymalloc": ALLOCATOR_KEPT, "allocators": NATIVE_ALLOCATORS_KEPT}


def hint_for(roots: Sequence[Any], figures: set[str], *, native: bool = False, looked: bool = True,
             front: str = "api", unexplained: int | None = None, traced: bool = True,
             allocator_kept: str | None = None) -> str:
    """The fix hint: from the pattern of the biggest root of the user's (roots are ranked by what
    they keep); else from the figures broken. ``native``: every survivor was searched and none
    holds the growth; ``looked``: survivors were looked for at all; ``front``: whose options the
    advice names (``pytest``, ``run`` or ``api``, :data:`ADVICE`); ``unexplained``: the bytes of the
    retained figure in no named place — roots that keep under a tenth of it, every holder sized,
    do not choose the hint (a script's ``libc`` handle beside 80 MiB of native memory); ``traced``:
    the allocation sites are known (else the hint says how to get them); ``allocator_kept``:
    the allocator's place (:data:`KEPT_BY_ALLOCATOR`) whose free memory is most of the figure,
    more than the roots keep."""
    if allocator_kept in KEPT_BY_ALLOCATOR:
        return KEPT_BY_ALLOCATOR[allocator_kept]
    minor = _minor_roots_hint(roots, unexplained, looked, front, traced)
    if minor:
        return minor
    if roots:
        # the user's biggest root, unless a library's keeps ten times more (weakref.finalize's
        # registry keeping a payload, beside the user's list keeping the 56-byte object it watches)
        biggest = max(roots, key=lambda r: r.size)
        own = [r for r in roots if not r.library and r.size * 10 >= biggest.size]
        return HINTS.get((own[0] if own else biggest).pattern, HINTS["attribute"])
    if figures == {"peak"}:
        return "the memory was freed, but too much was alive at once: process in chunks or stream instead"
    if "children" in figures and not figures & {"rss", "traced", "arrow"}:
        return ("child processes hold the memory: bound the work in flight, or recycle workers "
                "(max_tasks_per_child)")
    if "arrow" in figures:
        return ("Arrow memory is alive that no Python object of this block holds: a table cached by a "
                "library, or the pool keeping freed memory (pa.default_memory_pool().release_unused())")
    if native:
        return ("no Python object of this block holds the growth: native memory (a C extension), "
                "memory a library keeps, or fragmentation the allocator could not give back")
    if not looked:
        return f"what keeps the memory was not looked for: {advice(front, 'looked')}"
    return "the growth is many small objects: look at the allocation sites and the types that grew"
