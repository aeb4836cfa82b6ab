"""Merging daily data by concatenating onto one growing frame, then writing it."""

from __future__ import annotations

from pathlib import Path

from casebook._case import Case, Params
from casebook._data import make_day

SOURCE = "Memory Leak Fix Documentation"

# rows_per_day * 48 bytes is one day in memory: small is 3 MiB a day, 40 days.
SIZES = {
    "warmup": {"days": 2, "rows_per_day": 1_000},
    "small": {"days": 40, "rows_per_day": 64_000},
    "medium": {"days": 60, "rows_per_day": 250_000},
    "large": {"days": 120, "rows_per_day": 500_000},
}


def leaky(p: Params) -> str:
    """Grow one frame a day, then write it: every concat copies everything so far."""
    import pandas as pd

    merged = None
    for day in range(p["days"]):
        daily = make_day(day, p["rows_per_day"])
        merged = daily if merged is None else pd.concat([merged, daily], ignore_index=True)
    out = Path(p["workdir"]) / "merged.parquet"
    merged.to_parquet(out)
    return str(out)


def fixed(p: Params) -> str:
    """Keep one ParquetWriter open and append each day as its own row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(p["workdir"]) / "merged.parquet"
    writer = None
    try:
        for day in range(p["days"]):
            table = pa.Table.from_pandas(make_day(day, p["rows_per_day"]), preserve_index=False)
            if writer is None:
                # Dictionary pages only pay off for columns that repeat (the venue code);
                # for prices and times they cost memory for nothing.
                writer = pq.ParquetWriter(out, table.schema, use_dictionary=["venue"])
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return str(out)


def budget(p: Params) -> dict[str, int]:
    # A quarter of the merged data: the fix holds about a day at a time (plus the
    # Arrow pool's working set), the leak holds all of it and a copy.
    return {"peak": p["days"] * p["rows_per_day"] * 48 // 4}


CASE = Case(
    name="concat_loop",
    title="Growing a frame with concat in a loop",
    source=SOURCE,
    story=(
        "An \"add missing days\" job merged daily files into one big Parquet file. It kept the "
        "merged data as one frame and concatenated each new day onto it. Memory grew with "
        "every day until the process risked a crash."
    ),
    claim=(
        "`merged = pd.concat([merged, daily])` in a loop holds the whole result in memory and "
        "copies it on every step, so the peak grows with the total size; writing each day "
        "through one open `ParquetWriter` keeps the peak at about one day."
    ),
    metric="peak",
    sizes=SIZES,
    leaky=leaky,
    fixed=fixed,
    budget=budget,
    lesson=(
        "Write each day as a row group through one open `pq.ParquetWriter`: memory holds one "
        "day at a time and the file grows on disk. Building a list and concatenating once "
        "saves the repeated copies but not the peak. Calling `gc.collect()` does neither."
    ),
    imports=("numpy", "pandas", "pyarrow", "pyarrow.parquet"),
    helpers=(make_day,),
)
