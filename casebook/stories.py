"""The five seed stories, and what several of a story's cases share.

A case names its story by key; the ledger groups claims by story. Parameters shared by the
cases of one story (the batch loop's sizes and budget) live here, not in a sibling case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from casebook.data import frame_bytes
from casebook.model import Params

__all__ = ["BATCH_SIZES", "STORIES", "Story", "append_to_parquet", "batch_budget", "batch_sizes"]


@dataclass(frozen=True)
class Story:
    key: str
    title: str  # the seed document's title
    gist: str  # the story in one sentence, our words


STORIES: Mapping[str, Story] = {
    story.key: story
    for story in (
        Story("batch_loop", "Bug Report Example: DataFrame Memory Leak in Batch Processing",
              "A loop over 100 CSV files kept one summary per file and died at 8 GB; the report "
              "blamed `mean()` for keeping each frame alive."),
        Story("missing_days", "Memory Leak Fix Documentation",
              "An \"add missing days\" job loaded a multi-GB Parquet file and grew it with "
              "`pd.concat` day by day; the fix batched, streamed and collected garbage."),
        Story("gc_post", "Python Memory & Garbage Collection",
              "A blog post showed with memory_profiler that deleting frames early and reading "
              "in chunks keeps memory down."),
        Story("large_dataset", "Large Dataset Memory Optimization",
              "A write-up took a 10 GB CSV analysis from 46 GB of RAM to a few hundred MB with "
              "chunking, polars, generators, SQL and Dask."),
        Story("transform_pipeline", "Root Cause Analysis: Transform Pipeline Memory Crisis",
              "A process-pool pipeline hit 94% of memory in its final stage, blamed on queued "
              "results, an overfull writer buffer and Arrow copies."),
    )
}

#: The batch loop of the first story: ``batches`` frames of ``rows`` x (``cols`` + 1) numbers.
#: "test" keeps the test suite fast: 4.1 MiB a batch, still four budgets apart.
BATCH_SIZES: Mapping[str, Params] = {
    "warmup": {"rows": 1_000, "cols": 8, "batches": 2},
    "test": {"rows": 60_000, "cols": 8, "batches": 8},
    "small": {"rows": 250_000, "cols": 8, "batches": 8},
    "medium": {"rows": 1_000_000, "cols": 8, "batches": 10},
    "large": {"rows": 2_000_000, "cols": 8, "batches": 20},
}


def batch_sizes(**extra: object) -> dict[str, Params]:
    """:data:`BATCH_SIZES` with parameters of a case's own (the same at every size)."""
    return {size: {**params, **extra} for size, params in BATCH_SIZES.items()}


def batch_budget(p: Params) -> int:
    """Two batches: keeping every batch breaks it at once; a few small summaries never do."""
    return 2 * frame_bytes(p["rows"], p["cols"])


def append_to_parquet(path: str, new_data: object, output: str | None = None) -> None:
    """The missing-days story's "streaming append", as its fix describes it.

    Copies the existing file row group by row group into a new file and writes the new data
    after it: memory holds one row group at a time, but every append rewrites the whole file.
    The new file replaces ``path``, or is written to ``output`` when given (so that a case can
    run the append again on the same input). Shared by the cases that run the story's fix.
    """
    import gc
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    new_table = pa.Table.from_pandas(new_data, preserve_index=False)
    if not os.path.exists(path):
        pq.write_table(new_table, output or path)
        return
    existing = pq.ParquetFile(path)
    target = output or path + ".tmp"
    with pq.ParquetWriter(target, existing.schema_arrow) as writer:
        for i in range(existing.num_row_groups):
            row_group = existing.read_row_group(i)
            writer.write_table(row_group)
            del row_group  # free memory immediately
            if i % 10 == 0:
                gc.collect()  # periodic garbage collection
        writer.write_table(new_table)
    existing.close()
    if output is None:
        os.replace(target, path)
