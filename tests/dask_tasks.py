"""Task functions for the Dask tests: importable on the workers (they are pickled by reference).

Sizes are far from the thresholds (1 MiB per call): a leak of 2 MB per call, churn of 50 MB.
"""

from __future__ import annotations

import functools

import numpy as np

LEAK_BYTES = 2_000_000
LEAKED: list[np.ndarray] = []  # module-level list on the worker: what leak_step leaks into
KEPT_TABLES: list[object] = []
FRAGMENTS: list[np.ndarray] = []


def leak_step(i: int) -> int:
    """Leaves a 2 MB array behind on every call."""
    LEAKED.append(np.full(LEAK_BYTES // 8, float(i)))
    return i


def churn_step(i: int) -> float:
    """Allocates and frees 50 MB: a peak, nothing left behind."""
    block = np.full(50_000_000 // 8, float(i))
    total = float(block[:10].sum())
    del block
    return total


@functools.lru_cache(maxsize=8)
def _cached(i: int) -> np.ndarray:
    return np.full(1_000_000 // 8, float(i))


def cache_step(i: int) -> float:
    """Fills a bounded cache (8 entries of 1 MB): grows at first, then stays."""
    return float(_cached(i)[0])


def big_result(i: int) -> np.ndarray:
    """Returns 20 MB that the client gathers: managed memory, not a leak."""
    return np.full(20_000_000 // 8, float(i))


def keep_arrow_table(i: int) -> int:
    """Keeps a 16 MB Arrow table in a module-level list (Arrow's pool, not numpy)."""
    import pyarrow as pa

    import pyarrow.compute as pc

    # computed by Arrow, so the 16 MB live in Arrow's pool (a zero-copy array would be numpy's)
    KEPT_TABLES.append(pa.table({"x": pc.add(pa.array(np.arange(2_000_000, dtype="int64")), i)}))
    return i


def fragment(i: int) -> int:
    """Frees about 55 MiB of 96 KB arrays below one it keeps: glibc keeps the freed memory (it
    can only hand back the top of its heap on a free), and malloc_trim gives it back."""
    blocks = [np.ones(12_000) for _ in range(600)]  # under glibc's mmap threshold: from its heap
    FRAGMENTS.append(blocks[-1])  # the top-most block stays alive
    del blocks
    return i


def failing_step(i: int) -> int:
    raise ValueError(f"task {i} fails on purpose")


def reset() -> int:
    """Drop what the tasks above keep (between tests sharing a cluster)."""
    LEAKED.clear()
    KEPT_TABLES.clear()
    FRAGMENTS.clear()
    _cached.cache_clear()
    return 0


def plugin_names(dask_worker: object) -> list[str]:
    """The names of the plugins on a worker (client.run passes the worker)."""
    return list(dask_worker.plugins)  # type: ignore[attr-defined]
