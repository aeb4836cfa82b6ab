"""A GroupBy object kept for later holds its whole frame."""

from __future__ import annotations

from typing import Any

from casebook._case import Case, Params
from casebook._data import make_batch
from casebook.mean_myth import SIZES, SOURCE, budget


def leaky(p: Params) -> list[Any]:
    """Keep each batch's GroupBy, meaning to aggregate it later."""
    grouped = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        grouped.append(processed.groupby("key"))
    return grouped


def fixed(p: Params) -> list[Any]:
    """Aggregate at once and keep only the small result."""
    sums = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        sums.append(processed.groupby("key").sum())
    return sums


CASE = Case(
    name="groupby_held",
    title="A kept GroupBy pins its frame",
    source=SOURCE,
    story=(
        "Another shape of the batch-loop bug: keeping a lazy object to use later. A GroupBy "
        "looks like a small description of a grouping, but it is built on the frame."
    ),
    claim="A `DataFrameGroupBy` keeps a reference to the frame it groups, with all its data.",
    metric="retained",
    sizes=SIZES,
    leaky=leaky,
    fixed=fixed,
    budget=budget,
    lesson=(
        "Aggregate while the batch is in hand and keep the result (100 rows here), or keep "
        "the inputs you need as plain values."
    ),
    helpers=(make_batch,),
)
