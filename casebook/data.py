"""Deterministic data for the cases: generated from seeds, never downloaded.

Every generator builds its output without a spare full-size copy, so that what a case
measures is the pattern under test, not the cost of making its input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "DAY_BYTES_PER_ROW",
    "PRODUCT_FIELDS",
    "frame_bytes",
    "make_batch",
    "make_day",
    "product_batch",
    "write_days",
    "write_sales_csv",
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


#: What one row of :func:`make_day` holds: four 8-byte columns, one 4-byte, plus the index's
#: share when there is one (a RangeIndex costs nothing).
DAY_BYTES_PER_ROW = 5 * 8 + 4


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


def write_days(path: Path, days: int, rows_per_day: int, first: int = 0) -> Path:
    """A Parquet file with one row group per day, in time order (an existing merged file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for day in range(first, first + days):
            table = pa.Table.from_pandas(make_day(day, rows_per_day), preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return path


def write_sales_csv(path: Path, rows: int, seed: int = 7, block: int = 1_000_000) -> Path:
    """A sales CSV (order_id, store, product, quantity, price), written block by block.

    Written through Arrow's CSV writer: ten million rows take seconds, not minutes.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    codes = pa.array([f"P{p:05d}" for p in range(5000)])
    schema = pa.schema([("order_id", pa.int64()), ("store", pa.int64()), ("product", pa.string()),
                        ("quantity", pa.int64()), ("price", pa.float64())])
    options = pcsv.WriteOptions(quoting_style="none")
    with pcsv.CSVWriter(str(path), schema, write_options=options) as writer:
        for start in range(0, rows, block):
            n = min(block, rows - start)
            product = pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 5000, n)), codes)
            writer.write_table(pa.table({
                "order_id": np.arange(start, start + n),
                "store": rng.integers(0, 50, n),
                "product": product.cast(pa.string()),
                "quantity": rng.integers(1, 40, n),
                "price": np.round(rng.gamma(2.0, 20.0, n), 2),
            }, schema=schema))
    return path


PRODUCT_FIELDS = ("product_id", "smiles", "parent", "weight", "score")


def product_batch(batch: int, count: int) -> list[dict[str, Any]]:
    """One batch of transformed products, one dict each, as a pool worker returns them."""
    import random

    rnd = random.Random(batch)
    # A few hundred fragments, combined per product: every string is a new object, like
    # the strings a real transform step builds, at a fraction of the cost of random text.
    fragments = ["".join(rnd.choice("CNOSPF()=#") for _ in range(12)) for _ in range(499)]
    first = batch * count
    return [
        {
            "product_id": i,
            "smiles": f"{fragments[i % 499]}C{i}{fragments[(i * 7) % 499]}",
            "parent": i // 7,
            "weight": 150.0 + rnd.random() * 400.0,
            "score": rnd.random(),
        }
        for i in range(first, first + count)
    ]
