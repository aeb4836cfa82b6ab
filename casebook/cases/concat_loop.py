"""Merging daily data by concatenating onto one growing frame, then writing it."""

from __future__ import annotations

import gc
from pathlib import Path

from casebook.data import DAY_BYTES_PER_ROW, make_day
from casebook.model import Case, Claim, Params, Ruling, Variant
from casebook.stories import append_to_parquet
from casebook.verdicts import Evidence, both, budget_rule, growth_rule, share_rule, size_text

SIZES = {
    "warmup": {"days": 2, "rows_per_day": 1_000, "batch_days": 1},
    "test": {"days": 32, "rows_per_day": 50_000, "batch_days": 8},
    "small": {"days": 40, "rows_per_day": 64_000, "batch_days": 10},
    "medium": {"days": 60, "rows_per_day": 250_000, "batch_days": 10},
    "large": {"days": 120, "rows_per_day": 500_000, "batch_days": 20},
}


def leaky(p: Params) -> str:
    """The story's merge: grow one frame a day, then write it; every concat copies it all."""
    import pandas as pd

    current_data = None
    for day in range(p["days"]):
        daily_df = make_day(day, p["rows_per_day"])
        if current_data is None:
            current_data = daily_df
        else:
            current_data = pd.concat([current_data, daily_df], ignore_index=True)
    out = Path(p["workdir"]) / "merged.parquet"
    current_data.to_parquet(out)
    return str(out)


def story_fix(p: Params) -> str:
    """The story's fix: collect days into batches of a fixed size, append each batch."""
    import pandas as pd

    out = str(Path(p["workdir"]) / "merged.parquet")
    Path(out).unlink(missing_ok=True)  # start a new file: appends must not pile up across runs
    # The story wrote 500 MB batches of a job of many GB; here a batch is `batch_days` days.
    threshold = p["batch_days"] * p["rows_per_day"] * DAY_BYTES_PER_ROW
    batch_data = []
    batch_size = 0
    for day in range(p["days"]):
        daily_df = make_day(day, p["rows_per_day"])
        batch_data.append(daily_df)
        batch_size += int(daily_df.memory_usage(deep=True).sum())
        del daily_df
        gc.collect()
        if batch_size >= threshold:
            combined_df = pd.concat(batch_data, ignore_index=True)
            append_to_parquet(out, combined_df)
            del combined_df
            batch_data.clear()
            batch_size = 0
            gc.collect()
    if batch_data:
        append_to_parquet(out, pd.concat(batch_data, ignore_index=True))
    gc.collect()
    return out


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
                # Dictionary pages pay off only for columns that repeat (the venue code); for
                # prices and times they cost memory for nothing.
                writer = pq.ParquetWriter(out, table.schema, use_dictionary=["venue"])
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return str(out)


def concat_once(p: Params) -> str:
    """No repeated copies: collect the days in a list, concatenate once, write."""
    import pandas as pd

    days = [make_day(day, p["rows_per_day"]) for day in range(p["days"])]
    merged = pd.concat(days, ignore_index=True)
    del days
    out = Path(p["workdir"]) / "merged.parquet"
    merged.to_parquet(out)
    return str(out)


def budget(p: Params) -> int:
    # A third of the merged data: a fix holds a day or a batch at a time (and the Parquet
    # writer's buffers), the story's loop all of it and a copy.
    return p["days"] * p["rows_per_day"] * DAY_BYTES_PER_ROW // 3


def _copies_cost_the_memory(e: Evidence) -> Ruling:
    return share_rule(
        e, "concat_once", "leaky", holds=lambda s: s <= 0.5, fails=lambda s: s >= 0.8,
        says=lambda once, loop, share: (
            f"concatenating once peaked at {size_text(once)}, the loop at {size_text(loop)} "
            f"({share:.0%} of it): the peak is the data held at once, copied or not"),
    )


CASE = Case(
    name="concat_loop",
    title="Growing a frame with concat in a loop",
    story="missing_days",
    summary=(
        "An \"add missing days\" job merged daily files into one big Parquet file. It kept the "
        "merged data as one frame and concatenated each new day onto it, then wrote it out. "
        "Memory grew with every day until the process risked a crash. The fix collected days "
        "into 500 MB batches and appended each batch to the file, copying the file's row groups "
        "one by one, with `del` and `gc.collect()` throughout."
    ),
    lesson=(
        "The story's batches do stop the growth: the peak no longer depends on the number of "
        "days. But a batch is concatenated (two copies of it) and every append rewrites the whole "
        "file with pyarrow's default dictionary encoding, so the peak stays several times a "
        "batch. One open `pq.ParquetWriter`, each day written as a row group and dictionary "
        "pages only for the column that repeats, holds about one day, and writes the file once. "
        "Building a list and concatenating once saves the repeated copies but not the peak."
    ),
    metric="peak",
    sizes=SIZES,
    budget=budget,
    growth_keys=("days",),
    variants=(
        Variant("leaky", leaky, "leaky", "`pd.concat` onto the merged frame each day", growth=True),
        Variant("story_fix", story_fix, "story_fix", "batches, appended by row-group copy", growth=True),
        Variant("fixed", fixed, "fixed", "one open `ParquetWriter`, a row group a day", growth=True),
        Variant("concat_once", concat_once, "part", "a list of days, one `pd.concat`"),
    ),
    claims=(
        Claim("Concatenating each new day onto the merged frame keeps all the data in memory, "
              "and memory grows with every file.",
              lambda e: both(budget_rule(e, "leaky"), growth_rule(e, "leaky"))),
        Claim("The multiple copies made while concatenating are what costs the memory.",
              _copies_cost_the_memory),
        Claim("Writing in batches of a fixed size (500 MB in the story) keeps memory bounded "
              "by the batch, whatever the number of days.",
              lambda e: both(budget_rule(e, "story_fix", holds_if="keeps"),
                             growth_rule(e, "story_fix", holds_if="flat"))),
    ),
    flip={"fixed": "concat_once"},
    imports=("numpy", "pandas", "pyarrow", "pyarrow.parquet"),
    helpers=(make_day, append_to_parquet),
)
