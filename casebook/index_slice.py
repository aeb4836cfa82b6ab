"""An Index slice kept per batch keeps the index's whole buffer alive."""

from __future__ import annotations

from typing import Any

from casebook._case import Case, Params
from casebook._data import make_batch
from casebook.mean_myth import SIZES, SOURCE, budget


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


CASE = Case(
    name="index_slice",
    title="A kept Index slice pins the index buffer",
    source=SOURCE,
    story=(
        "The report drew its chain as result, then Index, then DataFrame. The `mean()` part "
        "does not hold on pandas 3, but an Index can indeed hold more than it shows: slicing "
        "an Index gives a view of its values."
    ),
    claim="A one-label slice of an Index keeps the buffer behind the whole index alive.",
    metric="retained",
    sizes=SIZES,
    leaky=leaky,
    fixed=fixed,
    budget=budget,
    lesson=(
        "`index[:1]` shares the index's values, which here are a view of the batch's float "
        "block. `.tolist()` keeps plain labels. Note that `Index.copy()` is shallow by "
        "default and would not help; `copy(deep=True)` would."
    ),
    helpers=(make_batch,),
)
