"""An Index slice kept per batch keeps the index's whole buffer alive."""

from __future__ import annotations

from typing import Any

from casebook.data import make_batch
from casebook.model import Case, Claim, Params, Variant
from casebook.stories import BATCH_SIZES, batch_budget
from casebook.verdicts import both, budget_rule, growth_rule


def leaky(p: Params) -> list[Any]:
    """Keep the first label of each batch's index as an Index slice."""
    first_labels = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"]).set_index("c0")
        first_labels.append(processed.index[:1])
    return first_labels


def fixed(p: Params) -> list[list[float]]:
    """Keep the labels as plain Python values."""
    first_labels = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"]).set_index("c0")
        first_labels.append(processed.index[:1].tolist())
    return first_labels


def index_copy(p: Params) -> list[Any]:
    """A fix that looks right and is not: `Index.copy()` shares its values."""
    first_labels = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"]).set_index("c0")
        first_labels.append(processed.index[:1].copy())
    return first_labels


CASE = Case(
    name="index_slice",
    title="A kept Index slice pins the index buffer",
    story="batch_loop",
    summary=(
        "The report drew its chain as result, then Index, then DataFrame. The `mean()` part "
        "does not hold on pandas 3 (see `mean_myth`), but an Index can indeed hold more than it "
        "shows: slicing an Index gives a view of its values."
    ),
    lesson=(
        "`index[:1]` shares the index's values, which here are a view of the batch's float "
        "block. `.tolist()` keeps plain labels. `Index.copy()` would not help: it shares the "
        "values too."
    ),
    metric="retained",
    sizes=BATCH_SIZES,
    budget=batch_budget,
    growth_keys=("batches",),
    variants=(
        Variant("leaky", leaky, "leaky", "keep `index[:1]`", growth=True),
        Variant("fixed", fixed, "fixed", "keep `index[:1].tolist()`", growth=True),
        Variant("index_copy", index_copy, "flip", "keep `index[:1].copy()`"),
    ),
    claims=(
        Claim("An Index can keep its frame's data alive (the report's chain: result, Index, "
              "DataFrame).",
              lambda e: both(budget_rule(e, "leaky"), growth_rule(e, "leaky"))),
    ),
    flip={"fixed": "index_copy"},
    helpers=(make_batch,),
)
