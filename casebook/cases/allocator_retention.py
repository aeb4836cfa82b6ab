"""Memory that stays after everything is freed: the allocators keep it, and can give it back."""

from __future__ import annotations

import ctypes
import gc

from casebook.model import Case, Claim, Params, Ruling, Variant
from casebook.verdicts import Evidence, size_text

SIZES = {
    "warmup": {"frames": 50, "rows": 500, "arrow_rows": 10_000},
    "test": {"frames": 1_500, "rows": 1_500, "arrow_rows": 2_000_000},
    "small": {"frames": 5_000, "rows": 1_500, "arrow_rows": 8_000_000},
    "medium": {"frames": 20_000, "rows": 2_000, "arrow_rows": 40_000_000},
    "large": {"frames": 50_000, "rows": 2_000, "arrow_rows": 100_000_000},
}


def work(p: Params) -> int:
    """Many small numpy-backed frames (glibc's heap) and one big Arrow array (Arrow's pool)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    frames = [pd.DataFrame({"x": np.full(p["rows"], float(i)), "y": np.arange(p["rows"])})
              for i in range(p["frames"])]
    # Free every other frame first, as a long job does: the holes cannot be returned on their
    # own, so the heap keeps its size even after the rest go.
    del frames[::2]
    array = pc.multiply(pa.array(np.arange(p["arrow_rows"], dtype=np.int64)), 3)  # in Arrow's pool
    checksum = int(sum(len(f) for f in frames)) + len(array)
    del frames, array
    return checksum


def _release_arrow() -> None:
    import pyarrow as pa

    pa.default_memory_pool().release_unused()  # Arrow's pool (mimalloc or jemalloc)


def _trim_glibc() -> None:
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc's heap; Linux with glibc only


def leaky(p: Params) -> int:
    """The story's flush: free everything and call `gc.collect()`, then look at RSS."""
    checksum = work(p)
    gc.collect()
    return checksum


def fixed(p: Params) -> int:
    """Free everything, then ask both allocators to return what they keep."""
    checksum = work(p)
    gc.collect()
    _release_arrow()
    _trim_glibc()
    return checksum


def arrow_only(p: Params) -> int:
    """Only Arrow's pool gives back."""
    checksum = work(p)
    gc.collect()
    _release_arrow()
    return checksum


def trim_only(p: Params) -> int:
    """Only glibc's heap is trimmed."""
    checksum = work(p)
    gc.collect()
    _trim_glibc()
    return checksum


def collect_more(p: Params) -> int:
    """A fix that looks right and is not: collect garbage harder."""
    checksum = work(p)
    for _ in range(3):
        gc.collect()
    return checksum


def budget(p: Params) -> int:
    # Half the Arrow array: trimmed memory comes back to within it, kept memory does not.
    return p["arrow_rows"] * 8 // 2


def _not_freed(e: Evidence) -> Ruling:
    kept, trimmed = e.value("leaky"), e.value("fixed")
    before, after = e.verdict("leaky"), e.verdict("fixed")
    text = (f"after `gc.collect()` RSS stayed {size_text(kept)} up ({before}); after also asking "
            f"the allocators to give back, {size_text(trimmed)} ({after}): the objects were freed, "
            f"the allocators had kept their memory")
    figures = {"leaky retained": kept, "fixed retained": trimmed, "budget": e.limit}
    if before == "breaks" and after == "keeps":
        return Ruling("does not hold", text, figures)
    if after == "breaks":
        return Ruling("holds", text.split(": the objects")[0], figures)
    return Ruling("partly", text, figures)


CASE = Case(
    name="allocator_retention",
    title="RSS stays up after del and gc.collect(): allocator retention",
    story="transform_pipeline",
    summary=(
        "The transform pipeline's analysis saw memory stay high after each flush even though "
        "the buffer and the Arrow table were released and `gc.collect()` had run. It concluded "
        "that objects in C extensions were not being freed, and that the collector was "
        "\"ineffective\"."
    ),
    lesson=(
        "Memory an allocator keeps is reused by the next allocation, so it does not grow run "
        "after run the way a leak does. When the number matters (a long-lived worker, a memory "
        "budget), ask for it back: `pa.default_memory_pool().release_unused()` for Arrow and "
        "`malloc_trim(0)` for glibc; each gives back its own share (see where the gain comes "
        "from). leakhunt's settling does both before it reads memory, and reports what they gave "
        "back as allocator retention."
    ),
    metric="retained",
    sizes=SIZES,
    budget=budget,
    # Settling would trim: it is exactly the fix, so this case reads RSS as the code left it.
    settle_after=False,
    variants=(
        Variant("leaky", leaky, "leaky", "free everything, `gc.collect()`"),
        Variant("fixed", fixed, "fixed", "then release Arrow's pool and trim glibc's heap"),
        Variant("arrow_only", arrow_only, "part", "then release Arrow's pool only"),
        Variant("trim_only", trim_only, "part", "then trim glibc's heap only"),
        Variant("collect_more", collect_more, "flip", "`gc.collect()` three more times"),
    ),
    claims=(
        Claim("Memory stays high after a flush because objects in C extensions are not freed; "
              "`gc.collect()` is ineffective there.", _not_freed),
    ),
    flip={"fixed": "collect_more"},
    causes={"arrow_only": "Arrow's pool released", "trim_only": "glibc's heap trimmed",
            "fixed": "both"},
    imports=("numpy", "pandas", "pyarrow", "pyarrow.compute"),
    helpers=(work,),
)
