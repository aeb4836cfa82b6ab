"""Reading a whole Parquet file to learn its last timestamp."""

from __future__ import annotations

from pathlib import Path

from casebook.data import DAY_BYTES_PER_ROW, write_days
from casebook.model import Case, Claim, Flip, Params, Variant
from casebook.verdicts import Evidence, both, budget_rule, growth_rule, holds_data_rule

SIZES = {
    "warmup": {"days": 2, "rows_per_day": 1_000},
    "test": {"days": 6, "rows_per_day": 200_000},
    "small": {"days": 8, "rows_per_day": 200_000},
    "medium": {"days": 30, "rows_per_day": 500_000},
    "large": {"days": 60, "rows_per_day": 1_000_000},
}


def setup(p: Params, workdir: Path) -> Params:
    """The existing data file: one row group per day, in time order."""
    return {**p, "path": str(write_days(workdir / "history.parquet", p["days"], p["rows_per_day"]))}


def leaky(p: Params) -> int:
    """The story's old code: load every column of every row to read one number."""
    import pandas as pd

    current_data = pd.read_parquet(p["path"])
    return int(current_data["time"].max())


def story_fix(p: Params) -> int:
    """The story's fix: read only the last row group's time column."""
    import pyarrow.parquet as pq

    parquet_file = pq.ParquetFile(p["path"])
    last_row_group = parquet_file.read_row_group(parquet_file.num_row_groups - 1, columns=["time"])
    return int(last_row_group.column("time").to_numpy().max())


def fixed(p: Params) -> int:
    """Ask the footer: the last row group's statistics hold the maximum time."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(p["path"])
    last = parquet.num_row_groups - 1
    column = parquet.schema_arrow.get_field_index("time")
    stats = parquet.metadata.row_group(last).column(column).statistics
    if stats is not None and stats.has_min_max:
        return int(stats.max)
    return story_fix(p)  # no statistics written: one column of one row group


def read_table(p: Params) -> int:
    """A fix that looks right and is not: pyarrow instead of pandas, but still every row."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    return int(pc.max(pq.read_table(p["path"]).column("time")).as_py())


def _file_data(e: Evidence) -> int:
    return int(e.param("days") * e.param("rows_per_day") * DAY_BYTES_PER_ROW)


def budget(p: Params) -> int:
    # Two days' data: the fixes read a footer or a row group's column, the leak every day.
    return 2 * p["rows_per_day"] * DAY_BYTES_PER_ROW


CASE = Case(
    name="last_timestamp",
    title="Reading a whole Parquet file for its last timestamp",
    story="missing_days",
    summary=(
        "Before merging new days, the same job needed the last timestamp already stored. It got "
        "it by loading the entire multi-gigabyte Parquet file into pandas and taking the maximum "
        "of one column. Its fix read only the last row group's `time` column."
    ),
    lesson=(
        "The story's fix works. Parquet also stores the minimum and maximum of each column of "
        "each row group in the footer: `ParquetFile(path).metadata` answers without reading any "
        "data, and `read_row_group(last, columns=[...])` is the fallback when no statistics were "
        "written."
    ),
    metric="peak",
    sizes=SIZES,
    budget=budget,
    setup=setup,
    growth_keys=("days",),
    variants=(
        Variant("leaky", leaky, "leaky", "`pd.read_parquet` the file, max of `time`", growth=True),
        Variant("story_fix", story_fix, "story_fix", "the last row group's `time` column", growth=True),
        Variant("fixed", fixed, "fixed", "the footer's statistics", growth=True),
        Variant("read_table", read_table, "flip", "`pq.read_table` the file, max of `time`", growth=True),
    ),
    claims=(
        Claim("Loading the whole file to read its last timestamp costs memory for the whole file.",
              lambda e: both(budget_rule(e, "leaky"), holds_data_rule(e, "leaky", _file_data(e), "data in the file")),
              section="Root Causes 1",
              flip=Flip("read the last row group's column instead", variants={"leaky": "story_fix"})),
        Claim("Reading only the last row group's time column gets the last timestamp without "
              "loading the file: memory stays flat whatever its size.",
              lambda e: both(budget_rule(e, "story_fix", holds_if="keeps"),
                             growth_rule(e, "story_fix", holds_if="flat")),
              section="Solutions Implemented 1; Best Practices 1",
              flip=Flip("`pq.read_table` of the whole file", variants={"story_fix": "read_table"})),
        Claim("The footer's statistics answer without reading any data.",
              lambda e: both(budget_rule(e, "fixed", holds_if="keeps"),
                             growth_rule(e, "fixed", holds_if="flat")), origin="casebook",
              section="Solutions Implemented 1",
              flip=Flip("`pq.read_table` of the whole file", variants={"fixed": "read_table"})),
    ),
    flip={"story_fix": "read_table"},
    imports=("numpy", "pandas", "pyarrow", "pyarrow.parquet", "pyarrow.compute"),
    helpers=(write_days,),
)
