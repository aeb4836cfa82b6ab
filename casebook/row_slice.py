"""A one-row slice kept per batch keeps the whole batch's block alive."""

from __future__ import annotations

from typing import Any

from casebook._case import Case, Params
from casebook._data import make_batch
from casebook.mean_myth import SIZES, SOURCE, budget


def leaky(p: Params) -> list[Any]:
    """Keep the first row of each batch as a sample: `iloc[:1]` is a view."""
    samples = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        samples.append(processed.iloc[:1])
    return samples


def fixed(p: Params) -> list[Any]:
    """Copy the sample: the copy owns one row, and the batch can go."""
    samples = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        samples.append(processed.iloc[:1].copy())
    return samples


CASE = Case(
    name="row_slice",
    title="A kept row slice pins its batch",
    source=SOURCE,
    story=(
        "The same batch loop, but keeping a small sample of each batch instead of its mean. "
        "The report's own prevention notes warn that a slice of a frame can point back at the "
        "original; this case measures that warning."
    ),
    claim=(
        "A row slice such as `df.iloc[:1]` shares the parent's block, so keeping it keeps the "
        "whole block in memory."
    ),
    metric="retained",
    sizes=SIZES,
    leaky=leaky,
    fixed=fixed,
    budget=budget,
    lesson=(
        "With copy-on-write, pandas 3 makes a slice a view of the parent's block: one row "
        "holds the whole 2-D array. `.copy()` gives the sample its own small buffer."
    ),
    helpers=(make_batch,),
)
