"""A numpy slice kept per batch keeps its base array alive."""

from __future__ import annotations

from typing import Any

from casebook._case import Case, Params
from casebook._data import make_batch
from casebook.mean_myth import SIZES, SOURCE, budget


def leaky(p: Params) -> list[Any]:
    """Keep the first value of a column as a numpy slice: a view of the whole block."""
    firsts = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        firsts.append(processed["c0"].to_numpy()[:1])
    return firsts


def fixed(p: Params) -> list[float]:
    """Keep a plain float: no array, no base."""
    firsts = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        firsts.append(float(processed["c0"].iloc[0]))
    return firsts


CASE = Case(
    name="numpy_view",
    title="A kept numpy slice pins its base array",
    source=SOURCE,
    story=(
        "The report mentions an earlier incident in the same codebase fixed by switching to "
        "`.values`. Raw numpy arrays are no safer: a slice of an array is a view, and a view "
        "holds its base through `.base`."
    ),
    claim=(
        "A one-element numpy slice taken from a column keeps the column's buffer, here the "
        "batch's whole float block, alive."
    ),
    metric="retained",
    sizes=SIZES,
    leaky=leaky,
    fixed=fixed,
    budget=budget,
    lesson=(
        "`to_numpy()` on a column of a 2-D block returns a view into that block, and `[:1]` "
        "is a view of the view. Keep plain values (`float(...)`, `.tolist()`) or `.copy()` "
        "the slice. The garbage collector cannot show this chain: numpy arrays are not "
        "gc-tracked, so `gc.get_referrers` finds nothing."
    ),
    helpers=(make_batch,),
)
