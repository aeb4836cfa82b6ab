"""Memory that stays after everything is freed: the allocators keep it, and can give it back."""

from __future__ import annotations

import gc

from casebook._case import Case, Params

SOURCE = "Root Cause Analysis: Transform Pipeline Memory Crisis"

SIZES = {
    "warmup": {"frames": 50, "rows": 500, "arrow_rows": 10_000},
    "small": {"frames": 5_000, "rows": 1_500, "arrow_rows": 8_000_000},
    "medium": {"frames": 20_000, "rows": 2_000, "arrow_rows": 40_000_000},
    "large": {"frames": 50_000, "rows": 2_000, "arrow_rows": 100_000_000},
}


def work(p: Params) -> int:
    """Many small numpy-backed frames (glibc's heap) and one big Arrow array (Arrow's pool)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    frames = [pd.DataFrame({"x": np.full(p["rows"], float(i)), "y": np.arange(p["rows"])})
              for i in range(p["frames"])]
    # Free every other frame first, as a long job does: the holes cannot be returned on their
    # own, so the heap keeps its size even after the rest go.
    del frames[::2]
    import pyarrow.compute as pc

    array = pc.multiply(pa.array(np.arange(p["arrow_rows"], dtype=np.int64)), 3)  # in Arrow's pool
    checksum = int(sum(len(f) for f in frames)) + len(array)
    del frames, array
    return checksum


def leaky(p: Params) -> int:
    """Free everything and call `gc.collect()`, then look at RSS: it stays up."""
    checksum = work(p)
    gc.collect()
    return checksum


def fixed(p: Params) -> int:
    """Free everything, then ask both allocators to return what they keep."""
    import ctypes

    import pyarrow as pa

    checksum = work(p)
    gc.collect()
    pa.default_memory_pool().release_unused()  # Arrow's pool (mimalloc or jemalloc)
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc's heap; Linux with glibc only
    return checksum


def budget(p: Params) -> dict[str, int]:
    # Half the Arrow array: trimmed memory comes back to within it, kept memory does not.
    return {"rss": p["arrow_rows"] * 8 // 2}


CASE = Case(
    name="allocator_retention",
    title="RSS stays up after del and gc.collect(): allocator retention",
    source=SOURCE,
    story=(
        "The transform pipeline's analysis saw memory stay high after each flush even though "
        "the buffer and the Arrow table were released and `gc.collect()` had run. It "
        "concluded that objects in C extensions were not being freed."
    ),
    claim=(
        "After every object is freed and collected, RSS can stay high: glibc and Arrow's "
        "pool keep freed memory for reuse. That memory is not leaked: `malloc_trim(0)` and "
        "`release_unused()` hand it back."
    ),
    metric="retained",
    sizes=SIZES,
    leaky=leaky,
    fixed=fixed,
    budget=budget,
    # Settling would trim: it is exactly the fix, so this case reads RSS as the code left it.
    settle_after=False,
    lesson=(
        "Memory an allocator keeps is reused by the next allocation, so it does not grow "
        "run after run the way a leak does. When the number matters (a long-lived worker, "
        "a memory budget), trim: `pa.default_memory_pool().release_unused()` for Arrow and "
        "`malloc_trim(0)` for glibc. leakhunt's settling does both before it reads memory, "
        "and reports what they gave back as allocator retention."
    ),
    imports=("numpy", "pandas", "pyarrow", "pyarrow.compute"),
    helpers=(work,),
)
