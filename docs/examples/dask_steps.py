"""The steps of the pipelines in dask_pipeline.py and dask_threads.py (a module, so the workers
import them by name).

``enrich`` keeps a 4 MB lookup array per call in a module-level list: the leak. ``parse`` makes
and drops a 40 MB temporary: a peak, not a leak. ``summarise`` returns a small frame that the
client gathers: managed by Dask, not a leak. ``regroup`` leaves freed memory in glibc's heap:
allocator retention, not a leak.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SEEN: list[np.ndarray] = []  # grows on every worker


def parse(i: int) -> pd.DataFrame:
    raw = np.random.default_rng(i).random(5_000_000)  # 40 MB temporary
    frame = pd.DataFrame({"key": np.arange(10_000) % 97, "value": raw[:10_000]})
    del raw
    return frame


def enrich(frame: pd.DataFrame) -> pd.DataFrame:
    lookup = np.full(500_000, float(len(frame)))  # 4 MB, kept by mistake
    SEEN.append(lookup)
    return frame.assign(weight=frame["value"] * 2)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.groupby("key").agg(total=("weight", "sum"))


def regroup(i: int) -> int:
    """Frees about 55 MiB of 96 KB arrays below one it keeps: glibc keeps what was freed below a
    live block (free() hands back only the top of its heap), and malloc_trim gives it back."""
    pieces = [np.ones(12_000) for _ in range(600)]  # under glibc's mmap threshold: from its heap
    KEPT_PIECES.append(pieces[-1])
    del pieces
    return i


KEPT_PIECES: list[np.ndarray] = []
