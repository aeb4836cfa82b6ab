"""Adding a day to a big Parquet file: load it all, copy it row group by row group, or neither."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from casebook.data import DAY_BYTES_PER_ROW, make_day, write_days
from casebook.model import Case, Claim, Params, Ruling, Variant
from casebook.stories import append_to_parquet
from casebook.verdicts import Evidence, both, budget_rule, growth_rule

SIZES = {
    "warmup": {"days": 2, "rows_per_day": 1_000},
    "test": {"days": 6, "rows_per_day": 100_000},
    "small": {"days": 16, "rows_per_day": 100_000},
    "medium": {"days": 60, "rows_per_day": 250_000},
    "large": {"days": 120, "rows_per_day": 500_000},
}


def setup(p: Params, workdir: Path) -> Params:
    """The existing merged file (one row group per day) and a directory of part files."""
    path = workdir / "history.parquet"
    write_days(path, p["days"], p["rows_per_day"])
    parts = workdir / "history"
    parts.mkdir()
    os.link(path, parts / "part-00000.parquet")  # the same days, as the dataset's first part
    return {**p, "path": str(path), "parts": str(parts)}


def _new_day(p: Params) -> Any:
    return make_day(p["days"], p["rows_per_day"])


def _output(p: Params) -> str:
    # Every run appends to the same input: the result goes next to it, not over it.
    return str(Path(p["workdir"]) / "appended.parquet")


def leaky(p: Params) -> str:
    """The story's old code: load the whole file, concatenate the new day, write it all back."""
    import pandas as pd

    current_data = pd.read_parquet(p["path"])
    current_data = pd.concat([current_data, _new_day(p)], ignore_index=True)
    current_data.to_parquet(_output(p))
    return _output(p)


def story_fix(p: Params) -> str:
    """The story's fix: the streaming append, copying the file one row group at a time."""
    append_to_parquet(p["path"], _new_day(p), _output(p))
    return _output(p)


def fixed(p: Params) -> str:
    """Do not rewrite anything: add the day as a new file in the dataset's directory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(p["parts"]) / f"part-{p['days']:05d}.parquet"
    table = pa.Table.from_pandas(_new_day(p), preserve_index=False)
    pq.write_table(table, out, use_dictionary=["venue"])  # dictionary pages only where values repeat
    return str(out)  # readers take the directory: pd.read_parquet(p["parts"])


def lean_copy(p: Params) -> str:
    """The story's row-group copy, with dictionary pages only for the column that repeats."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    existing = pq.ParquetFile(p["path"])
    with pq.ParquetWriter(_output(p), existing.schema_arrow, use_dictionary=["venue"]) as writer:
        for i in range(existing.num_row_groups):
            writer.write_table(existing.read_row_group(i))
        writer.write_table(pa.Table.from_pandas(_new_day(p), preserve_index=False))
    return _output(p)


def arrow_concat(p: Params) -> str:
    """A fix that looks right and is not: the same whole-file rewrite, through pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(p["path"])
    new = pa.Table.from_pandas(_new_day(p), preserve_index=False)
    pq.write_table(pa.concat_tables([table, new]), _output(p))
    return _output(p)


def budget(p: Params) -> int:
    # Four days of data: what a day and the writer's buffers need, far from the whole file.
    return 4 * p["rows_per_day"] * DAY_BYTES_PER_ROW


def _row_group_copy(e: Evidence) -> Ruling:
    ruling = both(budget_rule(e, "story_fix", holds_if="keeps"),
                  growth_rule(e, "story_fix", holds_if="flat"))
    half, full = e.value("story_fix", "seconds", 0.5), e.value("story_fix", "seconds")
    return Ruling(ruling.verdict,
                  f"{ruling.evidence}; but each append rewrites the file: {half:.2f} s at half "
                  f"the data, {full:.2f} s at full size",
                  {**ruling.figures, "story_fix seconds at half": half, "story_fix seconds": full})


CASE = Case(
    name="parquet_append",
    title="Appending a day to a big Parquet file",
    story="missing_days",
    summary=(
        "To add a day, the same job first loaded its whole multi-gigabyte Parquet file into "
        "pandas, concatenated the day and wrote everything back. Its fix copied the existing "
        "file into a new one row group at a time, deleting each row group and collecting "
        "garbage as it went, then wrote the new data after it."
    ),
    lesson=(
        "The row-group copy does stop memory from growing with the file, but not at a row "
        "group: pyarrow's writer builds dictionary pages for every column by default, and for "
        "columns of unique values (times, prices) those cost several times the data; "
        "`use_dictionary=[...]` limits them to the columns that repeat. And the copy reads and "
        "rewrites the whole file on every append, so its time grows with the file. A Parquet "
        "dataset is a directory: write each new day as its own file and let readers take the "
        "directory (`pd.read_parquet(directory)`); nothing old is read or rewritten."
    ),
    metric="peak",
    sizes=SIZES,
    budget=budget,
    setup=setup,
    growth_keys=("days",),
    variants=(
        Variant("leaky", leaky, "leaky", "load the file, concat the day, write it all", growth=True),
        Variant("story_fix", story_fix, "story_fix", "copy row group by row group, then the day",
                growth=True),
        Variant("fixed", fixed, "fixed", "write the day as a new file of the dataset", growth=True),
        Variant("lean_copy", lean_copy, "part", "the row-group copy, dictionary only for `venue`",
                growth=True),
        Variant("arrow_concat", arrow_concat, "flip", "read, concat and rewrite with pyarrow"),
    ),
    claims=(
        Claim("Loading the entire existing file to add new data costs memory for the whole file.",
              lambda e: both(budget_rule(e, "leaky"), growth_rule(e, "leaky"))),
        Claim("Copying the existing file row group by row group needs memory for one row group, "
              "whatever the file's size.",
              _row_group_copy),
    ),
    flip={"fixed": "arrow_concat"},
    causes={"story_fix": "copy row group by row group (the story's fix)",
            "lean_copy": "the same copy, no dictionary pages for unique values",
            "fixed": "no copy: a new part file"},
    imports=("numpy", "pandas", "pyarrow", "pyarrow.parquet"),
    helpers=(make_day, write_days, append_to_parquet),
)
