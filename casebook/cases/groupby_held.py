"""A GroupBy object kept for later holds its whole frame."""

from __future__ import annotations

from typing import Any

from casebook.data import make_batch
from casebook.model import Case, Claim, Flip, Params, Variant
from casebook.stories import BATCH_SIZES, batch_budget
from casebook.verdicts import both, budget_rule, growth_rule


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


def column_groupby(p: Params) -> list[Any]:
    """A fix that looks right and is not: group one column; it still holds the frame's block."""
    grouped = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        grouped.append(processed.groupby("key")["c0"])
    return grouped


_AGGREGATED = Flip("aggregate at once and keep the sums", variants={"leaky": "fixed"})

CASE = Case(
    name="groupby_held",
    title="A kept GroupBy pins its frame",
    story="batch_loop",
    summary=(
        "The report's lessons warn that pandas objects can have hidden reference chains. A "
        "GroupBy kept to be aggregated later is one: it looks like a small description of a "
        "grouping, but it is built on the frame."
    ),
    lesson=(
        "Aggregate while the batch is in hand and keep the result (100 rows here), or keep the "
        "inputs you need as plain values. Grouping a single column does not help: the "
        "`SeriesGroupBy` holds a view of the frame's block."
    ),
    metric="retained",
    sizes=BATCH_SIZES,
    budget=batch_budget,
    growth_keys=("batches",),
    variants=(
        Variant("leaky", leaky, "leaky", "keep `groupby(\"key\")`", growth=True),
        Variant("fixed", fixed, "fixed", "keep `groupby(\"key\").sum()`", growth=True),
        Variant("column_groupby", column_groupby, "part", "keep `groupby(\"key\")[\"c0\"]`"),
    ),
    claims=(
        Claim("Pandas objects can have hidden reference chains: a small-looking object kept for "
              "later (here a GroupBy) keeps its whole frame alive, batch after batch.",
              lambda e: both(budget_rule(e, "leaky"), growth_rule(e, "leaky")),
              section="Lessons Learned 3", flip=_AGGREGATED),
        Claim("Grouping a single column does not help: a kept `SeriesGroupBy` holds the frame's "
              "block too.", lambda e: budget_rule(e, "column_groupby"), origin="casebook",
              section="Lessons Learned 3",
              flip=Flip("aggregate at once and keep the sums", variants={"column_groupby": "fixed"})),
    ),
    flip={"fixed": "column_groupby"},
    helpers=(make_batch,),
)
