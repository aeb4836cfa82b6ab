"""An unbounded buffer of dicts, converted to Arrow in one go."""

from __future__ import annotations

from pathlib import Path

from casebook._case import Case, Params
from casebook._data import products

SOURCE = "Root Cause Analysis: Transform Pipeline Memory Crisis"

SIZES = {
    "warmup": {"count": 2_000, "batch": 500},
    "small": {"count": 400_000, "batch": 10_000},
    "medium": {"count": 2_000_000, "batch": 20_000},
    "large": {"count": 6_000_000, "batch": 20_000},
}


def _schema():
    import pyarrow as pa

    return pa.schema([
        ("product_id", pa.int64()),
        ("smiles", pa.string()),
        ("parent", pa.int64()),
        ("weight", pa.float64()),
        ("score", pa.float64()),
    ])


def leaky(p: Params) -> str:
    """Buffer every product, then build one table from the whole buffer and write it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = []
    buffer.extend(products(p["count"]))  # no cap: the buffer takes all that arrives
    table = pa.Table.from_pylist(buffer, schema=_schema())  # dicts and table, both in memory
    out = Path(p["workdir"]) / "products.parquet"
    pq.write_table(table, out)
    return str(out)


def fixed(p: Params) -> str:
    """Hard-cap the buffer; each full buffer becomes one record batch, written at once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema()
    out = Path(p["workdir"]) / "products.parquet"
    with pq.ParquetWriter(out, schema) as writer:
        buffer = []
        for product in products(p["count"]):
            buffer.append(product)
            if len(buffer) >= p["batch"]:
                writer.write_batch(pa.RecordBatch.from_pylist(buffer, schema=schema))
                buffer = []
        if buffer:
            writer.write_batch(pa.RecordBatch.from_pylist(buffer, schema=schema))
    return str(out)


def budget(p: Params) -> dict[str, int]:
    # ~150 bytes a product: more than the Arrow copy alone, far less than the dicts too.
    return {"peak": p["count"] * 150}


CASE = Case(
    name="row_buffer",
    title="A row buffer converted with from_pylist in one go",
    source=SOURCE,
    story=(
        "A chemistry transform pipeline wrote its products through a buffering Parquet writer. "
        "Near the end of a run the buffer held close to a million product dicts before a "
        "flush, and each flush turned the whole buffer into an Arrow table while the dicts "
        "were still alive. Memory went from 68% to 94% of the machine."
    ),
    claim=(
        "Converting an unbounded list of dicts with `Table.from_pylist` holds the dicts and "
        "their Arrow copy at once, so the peak grows with the buffer; a hard cap with "
        "streaming writes bounds it."
    ),
    metric="peak",
    sizes=SIZES,
    leaky=leaky,
    fixed=fixed,
    budget=budget,
    lesson=(
        "Make the cap a hard limit, not a hint: flush when the buffer reaches it, every time, "
        "and write each flush as a `RecordBatch` through one open `ParquetWriter`. The peak "
        "is then one micro-batch of dicts plus its Arrow copy."
    ),
    imports=("numpy", "pandas", "pyarrow", "pyarrow.parquet"),
    line_profile=("leaky",),
    helpers=(products,),
)
