"""Dataframe pipelines for the Dask tests: importable on the workers (pickled by reference).

``mixed(n)`` is issue 23's case: four branches computed together from one frame of ``n``
partitions - one keeps ``LEAK_BYTES`` per call, one makes a ``CHURN_BYTES`` temporary, a
group-by and a rolling mean keep nothing - so the tasks of every prefix run side by side.
``shuffled(n)`` puts the leak in front of a P2P shuffle; ``joined(n)`` is a clean P2P hash join.
Sizes are far from the 1 MiB threshold: a leak of 2 MiB per call, a temporary of 20 MB.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LEAK_BYTES = 2 * 1024 * 1024
CHURN_BYTES = 20_000_000
ROWS = 50_000
KEPT: list[np.ndarray] = []  # what leaky() leaks into, on each worker

#: The prefixes of mixed() that keep nothing (dask-expr fuses blockwise steps; these are the
#: task prefixes the workers see).
LEAKY = "leaky"


def make_part(i: int) -> pd.DataFrame:
    rng = np.random.default_rng(i)
    return pd.DataFrame({"k": rng.integers(0, 500, ROWS), "x": rng.random(ROWS), "y": rng.random(ROWS),
                         "name": pd.array(rng.choice(["a", "b", "c", "d"], ROWS))})


def leaky(df: pd.DataFrame) -> pd.DataFrame:
    """Keeps LEAK_BYTES per call in a module-level list: the leak."""
    KEPT.append(np.full(LEAK_BYTES // 8, 1.0))
    return df.assign(z=df.x * 2)


def churn(df: pd.DataFrame) -> pd.DataFrame:
    """Makes and drops a CHURN_BYTES temporary: a peak beside the others, nothing kept."""
    temporary = np.random.default_rng(len(df)).random(CHURN_BYTES // 8)
    total = float(df.x.sum() + temporary[:10].sum())
    del temporary
    return pd.DataFrame({"s": [total]})


def frame(n: int):  # -> dask DataFrame
    import dask.dataframe as dd

    return dd.from_map(make_part, list(range(n)))


def mixed(n: int) -> tuple[object, ...]:
    ddf = frame(n)
    kept = ddf.map_partitions(leaky).z.sum()
    grouped = ddf.groupby("k").x.mean()
    churned = ddf.map_partitions(churn, meta={"s": "f8"}).s.sum()
    rolled = ddf.x.map_partitions(lambda s: s.rolling(60).mean().sum()).sum()
    return kept, grouped, churned, rolled


def shuffled(n: int) -> tuple[object, ...]:
    return (frame(n).map_partitions(leaky).shuffle("k", shuffle_method="p2p").z.sum(),)


def keyed(i: int) -> pd.DataFrame:
    """Rows with unique ids, in an order of their own per side: a one-to-one join."""
    rng = np.random.default_rng(1000 + i)
    ids = rng.permutation(np.arange(i * ROWS, (i + 1) * ROWS))
    return pd.DataFrame({"id": ids, "x": rng.random(ROWS)})


def joined(n: int) -> tuple[object, ...]:
    import dask.dataframe as dd

    left = dd.from_map(keyed, list(range(n)))
    right = dd.from_map(keyed, list(range(n))).rename(columns={"x": "x2"})
    return (left.merge(right, on="id", shuffle_method="p2p").x.sum(),)


def reset() -> int:
    """Drop what leaky() kept (between blocks on a shared cluster)."""
    KEPT.clear()
    return 0
