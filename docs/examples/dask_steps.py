"""The steps of the pipeline in dask_pipeline.py (a module, so the workers import them by name).

``enrich`` keeps a 4 MB lookup array per call in a module-level list: the leak. ``parse`` makes
and drops a 40 MB temporary: a peak, not a leak. ``summarise`` returns a small frame that the
client gathers: managed by Dask, not a leak.
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
