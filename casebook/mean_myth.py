"""The `mean()` claim: does keeping a per-batch mean keep the whole batch alive?"""

from __future__ import annotations

from typing import Any

from casebook._case import Case, Params
from casebook._data import frame_bytes, make_batch

SOURCE = "Bug Report Example: DataFrame Memory Leak in Batch Processing"

SIZES = {
    "warmup": {"rows": 1_000, "cols": 8, "batches": 2},
    "small": {"rows": 250_000, "cols": 8, "batches": 8},
    "medium": {"rows": 1_000_000, "cols": 8, "batches": 10},
    "large": {"rows": 2_000_000, "cols": 8, "batches": 20},
}


def leaky(p: Params) -> list[Any]:
    """What the report blamed: a list of Series, one `mean()` per batch."""
    results = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        results.append(processed.mean())
    return results


def fixed(p: Params) -> list[dict[str, float]]:
    """The report's fix: turn each mean into a plain dict."""
    results = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        results.append(processed.mean().to_dict())
    return results


def budget(p: Params) -> dict[str, int]:
    # Keeping even two batches alive would break this; a few small Series never do.
    return {"rss": 2 * frame_bytes(p["rows"], p["cols"])}


CASE = Case(
    name="mean_myth",
    title="A kept mean() pins its batch (claim)",
    source=SOURCE,
    story=(
        "A job read 100 CSV files in a loop and kept one summary per file in a list. Memory "
        "climbed from 200 MB to 8 GB and the job died. The write-up blamed the summaries: each "
        "`mean()` result was said to hold the batch's index, and through it the whole batch. "
        "The fix it reported was to store `mean().to_dict()` instead."
    ),
    claim=(
        "A Series returned by `DataFrame.mean()` keeps a reference to the frame it came from, "
        "so a list of means keeps every batch alive."
    ),
    metric="retained",
    sizes=SIZES,
    leaky=leaky,
    fixed=fixed,
    budget=budget,
    expect="myth",
    lesson=(
        "`mean()` builds a new Series with a new, small index: nothing points back at the "
        "batch. Converting to a dict costs nothing but does not fix anything either. If your "
        "memory grows in a loop like this, look for a slice or a view instead (see the "
        "`row_slice`, `numpy_view`, `index_slice` and `groupby_held` cases)."
    ),
    helpers=(make_batch,),
)
