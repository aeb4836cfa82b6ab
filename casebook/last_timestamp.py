"""Reading a whole Parquet file to learn its last timestamp."""

from __future__ import annotations

from pathlib import Path

from casebook._case import Case, Params
from casebook._data import make_day
from casebook.concat_loop import SOURCE

SIZES = {
    "warmup": {"days": 2, "rows_per_day": 1_000},
    "small": {"days": 8, "rows_per_day": 200_000},
    "medium": {"days": 30, "rows_per_day": 500_000},
    "large": {"days": 60, "rows_per_day": 1_000_000},
}


def setup(p: Params, workdir: Path) -> Params:
    """Write the existing data file: one row group per day, in time order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = workdir / "history.parquet"
    with pq.ParquetWriter(path, pa.Table.from_pandas(make_day(0, 10)).schema) as writer:
        for day in range(p["days"]):
            writer.write_table(pa.Table.from_pandas(make_day(day, p["rows_per_day"])))
    return {**p, "path": str(path)}


def leaky(p: Params) -> int:
    """Load every column of every row to read one number."""
    import pandas as pd

    return int(pd.read_parquet(p["path"])["time"].max())


def fixed(p: Params) -> int:
    """Ask the footer: the last row group's statistics hold the maximum time."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(p["path"])
    last = parquet.num_row_groups - 1
    column = parquet.schema_arrow.get_field_index("time")
    stats = parquet.metadata.row_group(last).column(column).statistics
    if stats is not None and stats.has_min_max:
        return int(stats.max)
    # No statistics written: read one column of one row group, still a small read.
    return int(parquet.read_row_group(last, columns=["time"]).column("time").to_numpy().max())


def budget(p: Params) -> dict[str, int]:
    # One day's data: the fix reads a footer, the leak reads every day.
    return {"peak": p["rows_per_day"] * 48}


CASE = Case(
    name="last_timestamp",
    title="Reading a whole Parquet file for its last timestamp",
    source=SOURCE,
    story=(
        "Before merging new days, the same job needed the last timestamp already stored. It "
        "got it by loading the entire multi-gigabyte Parquet file into pandas and taking the "
        "maximum of one column."
    ),
    claim=(
        "`pd.read_parquet(path)` materialises every column of every row group; the footer "
        "metadata, or one column of the last row group, gives the same answer for almost "
        "nothing."
    ),
    metric="peak",
    sizes=SIZES,
    leaky=leaky,
    fixed=fixed,
    budget=budget,
    setup=setup,
    lesson=(
        "Parquet stores min and max per column per row group in the footer. Read "
        "`ParquetFile(path).metadata` first; fall back to `read_row_group(last, "
        "columns=[...])` when the writer stored no statistics."
    ),
    imports=("numpy", "pandas", "pyarrow", "pyarrow.parquet"),
)
