"""A one-row slice kept per batch keeps the whole batch's block alive."""

from __future__ import annotations

from typing import Any, Iterator

from casebook.data import make_batch
from casebook.model import Case, Claim, Params, Variant
from casebook.stories import BATCH_SIZES, batch_budget
from casebook.verdicts import both, budget_rule, growth_rule


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


def head(p: Params) -> list[Any]:
    """The story's own example of a chain: keep `head(1)` of each batch."""
    samples = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        samples.append(processed.head(1))
    return samples


def sample_rows(p: Params) -> Iterator[Any]:
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        yield processed.iloc[:1]


def generator(p: Params) -> list[Any]:
    """The story's advice: a generator instead of a list; its caller still keeps the results."""
    return list(sample_rows(p))


def shallow_copy(p: Params) -> list[Any]:
    """A fix that looks right and is not: `copy(deep=False)` shares the block."""
    samples = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        samples.append(processed.iloc[:1].copy(deep=False))
    return samples


CASE = Case(
    name="row_slice",
    title="A kept row slice pins its batch",
    story="batch_loop",
    summary=(
        "The same batch loop, but keeping a small sample of each batch instead of its mean. "
        "The report's prevention notes warn that `head()` returns a slice that points back at "
        "the original frame, and advise generators instead of lists; this case measures both."
    ),
    lesson=(
        "With copy-on-write, pandas 3 makes `iloc[:1]` a view of the parent's block: one row "
        "holds the whole 2-D array. `head(1)` does not: it copies. `.copy()` gives a sample its "
        "own small buffer (`copy(deep=False)` does not). A generator changes when the work "
        "happens, not what its consumer keeps."
    ),
    metric="retained",
    sizes=BATCH_SIZES,
    budget=batch_budget,
    growth_keys=("batches",),
    variants=(
        Variant("leaky", leaky, "leaky", "keep `iloc[:1]` of each batch", growth=True),
        Variant("fixed", fixed, "fixed", "keep `iloc[:1].copy()`", growth=True),
        Variant("head", head, "part", "keep `head(1)` (the story's example)"),
        Variant("generator", generator, "part", "the slices from a generator, then `list()`"),
        Variant("shallow_copy", shallow_copy, "flip", "keep `iloc[:1].copy(deep=False)`"),
    ),
    claims=(
        Claim("`DataFrame.head()` returns a slice that keeps the original frame alive.",
              lambda e: budget_rule(e, "head")),
        Claim("A row slice such as `iloc[:1]` keeps its batch's whole block alive, so memory "
              "grows with every batch kept.",
              lambda e: both(budget_rule(e, "leaky"), growth_rule(e, "leaky"))),
        Claim("Using a generator instead of a list avoids the accumulation.",
              lambda e: budget_rule(e, "generator", holds_if="keeps")),
        Claim("Copying what you keep breaks the reference chain.",
              lambda e: both(budget_rule(e, "fixed", holds_if="keeps"),
                             growth_rule(e, "fixed", holds_if="flat"))),
    ),
    flip={"fixed": "shallow_copy"},
    helpers=(make_batch, sample_rows),
)
