"""An Index kept per batch: does it hold its frame? A slice of it holds the index's buffer."""

from __future__ import annotations

from typing import Any

from casebook.data import make_batch
from casebook.model import Case, Claim, Flip, Params, Variant
from casebook.stories import batch_budget, batch_sizes
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


def index_kept(p: Params) -> list[Any]:
    """Keep each batch's whole index, the link of the story's chain. The frames are indexed as
    the story's were (`index="range"`: as read), or by one of their columns (`index="c0"`)."""
    indexes = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        if p["index"] != "range":
            processed = processed.set_index(p["index"])
        indexes.append(processed.index)
    return indexes


CASE = Case(
    name="index_slice",
    title="A kept Index slice pins the index buffer",
    story="batch_loop",
    summary=(
        "The report drew its chain as result, then Series, then Index, then DataFrame: an Index "
        "was said to hold its frame. The `mean()` part does not hold on pandas 3 (see "
        "`mean_myth`), but an Index can indeed hold more than it shows: slicing an Index gives "
        "a view of its values."
    ),
    lesson=(
        "An Index does not refer to its frame. A frame read from a file has a `RangeIndex`, "
        "which holds no data at all. An index made from a column shares that column's buffer, "
        "here a view of the batch's whole float block, and `index[:1]` shares it too. "
        "`.tolist()` keeps plain labels; `Index.copy()` would not help: it shares the values."
    ),
    metric="retained",
    sizes=batch_sizes(index="range"),
    budget=batch_budget,
    growth_keys=("batches",),
    variants=(
        Variant("leaky", leaky, "leaky", "keep `index[:1]` of an index made from a column", growth=True),
        Variant("fixed", fixed, "fixed", "keep `index[:1].tolist()`", growth=True),
        Variant("index_kept", index_kept, "part", "keep each batch's whole index, as read"),
        Variant("index_copy", index_copy, "flip", "keep `index[:1].copy()`"),
    ),
    claims=(
        Claim("A kept Series holds its frame's index, and the Index holds the DataFrame: each "
              "batch's index keeps the batch alive.",
              lambda e: budget_rule(e, "index_kept"), section="Root Cause; Investigation, hypothesis 3",
              flip=Flip("frames indexed by one of their columns", params={"index": "c0"})),
        Claim("A slice of an Index made from a column keeps the column's buffer alive, here the "
              "batch's whole block, so memory grows with every batch.",
              lambda e: both(budget_rule(e, "leaky"), growth_rule(e, "leaky")), origin="casebook",
              section="Root Cause",
              flip=Flip("keep `.tolist()` of the slice", variants={"leaky": "fixed"})),
    ),
    flip={"fixed": "index_copy"},
    helpers=(make_batch,),
)
