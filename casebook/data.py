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
    "make_gene_counts",
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


def make_gene_counts(seed: int, rows: int) -> Any:
    """One sample's read counts per gene, indexed by gene id: the shape of an RNA-seq
    quantifier's output file, one per sample."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    genes = pd.Index([f"ENSG{g:011d}" for g in rng.permutation(rows)], name="gene_id")
    return pd.DataFrame({"count": rng.integers(0, 10_000, rows)}, index=genes)


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


_CITIES = ("Amsterdam", "Athens", "Barcelona", "Berlin", "Bordeaux", "Bratislava", "Brno", "Brussels",
           "Budapest", "Copenhagen", "Dublin", "Edinburgh", "Florence", "Gdansk", "Geneva", "Ghent",
           "Hamburg", "Helsinki", "Krakow", "Leipzig", "Lisbon", "Ljubljana", "London", "Lyon",
           "Madrid", "Marseille", "Milan", "Munich", "Naples", "Oslo", "Paris", "Porto", "Prague",
           "Riga", "Rome", "Rotterdam", "Seville", "Stockholm", "Tallinn", "Turin", "Valencia",
           "Vienna", "Vilnius", "Warsaw", "Zagreb", "Zurich")
_STATUSES = ("pending", "paid", "shipped", "delivered", "returned", "cancelled")
_PAYMENTS = ("credit_card", "debit_card", "paypal", "bank_transfer", "gift_card", "cash_on_delivery")
_WORDS = ("please", "leave", "the", "parcel", "at", "front", "door", "gift", "wrap", "with", "card",
          "call", "before", "delivery", "fragile", "handle", "care", "second", "floor", "office",
          "hours", "only", "ring", "bell", "twice", "neighbour", "can", "accept", "no", "invoice")


def _numbered(template: str, size: int) -> Any:
    import numpy as np
    import pyarrow as pa

    return pa.array(np.char.mod(template, np.arange(size)).astype(object))


def _wide_columns(rng: Any, n: int, pools: dict[str, Any]) -> dict[str, Any]:
    """The text columns a real order export carries: a date, the customer, where, how, a note."""
    import numpy as np
    import pyarrow as pa

    def pick(pool: Any, index: Any) -> Any:
        return pa.DictionaryArray.from_arrays(pa.array(index), pool).cast(pa.string())

    customer = rng.integers(0, len(pools["customer"]), n)
    seconds = 1_735_689_600 + np.sort(rng.integers(0, 365 * 86_400, n))
    return {
        "order_date": pa.array(seconds, pa.timestamp("s")).cast(pa.string()),
        "customer": pick(pools["customer"], customer),
        "email": pick(pools["email"], customer),
        "city": pick(pools["city"], rng.integers(0, len(pools["city"]), n)),
        "country": pick(pools["country"], rng.integers(0, len(pools["country"]), n)),
        "status": pick(pools["status"], rng.integers(0, len(pools["status"]), n)),
        "payment": pick(pools["payment"], rng.integers(0, len(pools["payment"]), n)),
        "note": pick(pools["note"], rng.integers(0, len(pools["note"]), n)),
    }


def write_sales_csv(path: Path, rows: int, seed: int = 7, block: int = 500_000, wide: bool = False) -> Path:
    """A sales CSV (order_id, store, product, quantity, price), written block by block.

    ``wide`` adds what a real order export carries (an order date, the customer's name and
    email, city, country, status, payment method and a delivery note): about 190 bytes a row,
    the row width of the large-dataset story (10 GB for 50 million rows), against 25 without.
    Written through Arrow's CSV writer: ten million rows take seconds, not minutes.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    codes = pa.array([f"P{p:05d}" for p in range(5000)])
    fields = [("order_id", pa.int64()), ("store", pa.int64()), ("product", pa.string()),
              ("quantity", pa.int64()), ("price", pa.float64())]
    pools: dict[str, Any] = {}
    if wide:
        pools = {
            "customer": _numbered("Customer %06d", 20_000),
            "email": _numbered("customer%06d@example.com", 20_000),
            "city": pa.array(_CITIES),
            "country": pa.array([c[:2].upper() for c in _CITIES]),
            "status": pa.array(_STATUSES),
            "payment": pa.array(_PAYMENTS),
            "note": pa.array([" ".join(rng.choice(_WORDS, rng.integers(6, 16))) for _ in range(500)]),
        }
        fields += [(name, pa.string()) for name in ("order_date", "customer", "email", "city", "country",
                                                      "status", "payment", "note")]
    schema = pa.schema(fields)
    options = pcsv.WriteOptions(quoting_style="none")
    with pcsv.CSVWriter(str(path), schema, write_options=options) as writer:
        for start in range(0, rows, block):
            n = min(block, rows - start)
            product = pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 5000, n)), codes)
            columns = {
                "order_id": np.arange(start, start + n),
                "store": rng.integers(0, 50, n),
                "product": product.cast(pa.string()),
                "quantity": rng.integers(1, 40, n),
                "price": np.round(rng.gamma(2.0, 20.0, n), 2),
            }
            if wide:
                columns.update(_wide_columns(rng, n, pools))
            writer.write_table(pa.table(columns, schema=schema))
    return path


PRODUCT_FIELDS = ("product_id", "smiles", "parent", "weight", "score")


def product_batch(batch: int, count: int, extra: int = 0) -> list[dict[str, Any]]:
    """One batch of transformed products, one dict each, as a pool worker returns them; each
    SMILES string is about 30 characters, ``extra`` more when given."""
    import random

    rnd = random.Random(batch)
    # A few hundred fragments, combined per product: every string is a new object, like
    # the strings a real transform step builds, at a fraction of the cost of random text.
    fragments = ["".join(rnd.choice("CNOSPF()=#") for _ in range(12)) for _ in range(499)]
    tail = "C" * extra
    first = batch * count
    return [
        {
            "product_id": i,
            "smiles": f"{fragments[i % 499]}C{i}{fragments[(i * 7) % 499]}{tail}",
            "parent": i // 7,
            "weight": 150.0 + rnd.random() * 400.0,
            "score": rnd.random(),
        }
        for i in range(first, first + count)
    ]
