"""Deterministic data for the cases: generated from seeds, never downloaded.

Every generator builds its output without a spare full-size copy, so that what a case
measures is the pattern under test, not the cost of making its input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

__all__ = [
    "make_batch",
    "frame_bytes",
    "make_day",
    "write_sales_csv",
    "products",
    "PRODUCT_FIELDS",
]


def make_batch(seed: int, rows: int, cols: int = 8) -> Any:
    """One batch of sensor readings: ``cols`` float columns in one block, plus an int key."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    values = rng.random((rows, cols))
    # copy=False: pandas 3 copies a 2-D ndarray by default, which would double the cost.
    frame = pd.DataFrame(values, columns=[f"c{i}" for i in range(cols)], copy=False)
    frame["key"] = rng.integers(0, 100, rows)
    return frame


def frame_bytes(rows: int, cols: int = 8) -> int:
    """What :func:`make_batch` holds: ``cols`` float64 columns and one int64 key."""
    return rows * (cols + 1) * 8


def make_day(day: int, rows: int) -> Any:
    """One day of trades: a timestamp in nanoseconds, a price, a size and a venue code."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1000 + day)
    start = 1_700_000_000_000_000_000 + day * 86_400_000_000_000
    step = 86_400_000_000_000 // rows
    return pd.DataFrame(
        {
            "time": np.arange(start, start + rows * step, step, dtype=np.int64)[:rows],
            "price": 100 + rng.standard_normal(rows).cumsum() * 0.01,
            "size": rng.integers(1, 1000, rows),
            "bid": rng.random(rows),
            "ask": rng.random(rows),
            "venue": rng.integers(0, 16, rows).astype(np.int32),
        }
    )


def write_sales_csv(path: Path, rows: int, seed: int = 7, block: int = 250_000) -> Path:
    """A sales CSV (order_id, store, product, quantity, price), written block by block."""
    import numpy as np

    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as out:
        out.write("order_id,store,product,quantity,price\n")
        for start in range(0, rows, block):
            n = min(block, rows - start)
            ids = np.arange(start, start + n)
            store = rng.integers(0, 50, n)
            product = rng.integers(0, 5000, n)
            quantity = rng.integers(1, 40, n)
            price = np.round(rng.gamma(2.0, 20.0, n), 2)
            lines = [
                f"{i},{s},P{p:05d},{q},{c:.2f}\n"
                for i, s, p, q, c in zip(ids.tolist(), store.tolist(), product.tolist(),
                                         quantity.tolist(), price.tolist())
            ]
            out.writelines(lines)
    return path


PRODUCT_FIELDS = ("product_id", "smiles", "parent", "weight", "score")


def products(count: int, seed: int = 3) -> Iterator[dict[str, Any]]:
    """Transformed products, one dict each, as a pipeline's workers would emit them."""
    import random

    rnd = random.Random(seed)
    # A few hundred fragments, combined per product: every string is a new object, like
    # the strings a real transform step builds, at a fraction of the cost of random text.
    fragments = ["".join(rnd.choice("CNOSPF()=#") for _ in range(12)) for _ in range(499)]
    for i in range(count):
        yield {
            "product_id": i,
            "smiles": f"{fragments[i % 499]}C{i}{fragments[(i * 7) % 499]}",
            "parent": i // 7,
            "weight": 150.0 + rnd.random() * 400.0,
            "score": rnd.random(),
        }
