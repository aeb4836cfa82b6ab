"""A numpy slice kept per batch keeps its base array alive."""

from __future__ import annotations

from typing import Any

from casebook.data import make_batch
from casebook.model import Case, Claim, Params, Variant
from casebook.stories import BATCH_SIZES, batch_budget
from casebook.verdicts import both, budget_rule, growth_rule


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


def values(p: Params) -> list[Any]:
    """The story's earlier fix: `.values` instead of the Series, sliced."""
    firsts = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        firsts.append(processed["c0"].values[:1])
    return firsts


def as_array(p: Params) -> list[Any]:
    """A fix that looks right and is not: `np.asarray` of a view is the same view."""
    import numpy as np

    firsts = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        firsts.append(np.asarray(processed["c0"].to_numpy()[:1]))
    return firsts


CASE = Case(
    name="numpy_view",
    title="A kept numpy slice pins its base array",
    story="batch_loop",
    summary=(
        "The report mentions an earlier incident in the same codebase, fixed by keeping "
        "`.values` instead of a Series. Raw numpy arrays are no safer: a slice of an array is "
        "a view, and a view holds its base through `.base`."
    ),
    lesson=(
        "`to_numpy()` (or `.values`) on a column of a 2-D block returns a view into that block, "
        "and `[:1]` is a view of the view. Keep plain values (`float(...)`, `.tolist()`) or "
        "`.copy()` the slice. The garbage collector cannot show this chain: numpy arrays are "
        "not gc-tracked, so `gc.get_referrers` finds nothing."
    ),
    metric="retained",
    sizes=BATCH_SIZES,
    budget=batch_budget,
    growth_keys=("batches",),
    variants=(
        Variant("leaky", leaky, "leaky", "keep `to_numpy()[:1]` of a column", growth=True),
        Variant("fixed", fixed, "fixed", "keep `float(...)` of the value", growth=True),
        Variant("values", values, "part", "keep `.values[:1]` (the story's earlier fix)"),
        Variant("as_array", as_array, "flip", "keep `np.asarray(...[:1])`"),
    ),
    claims=(
        Claim("Keeping `.values` instead of a Series breaks the reference to the frame.",
              lambda e: budget_rule(e, "values", holds_if="keeps")),
        Claim("A one-element numpy slice keeps its base, the batch's whole block, alive.",
              lambda e: both(budget_rule(e, "leaky"), growth_rule(e, "leaky"))),
    ),
    flip={"fixed": "as_array"},
    helpers=(make_batch,),
)
