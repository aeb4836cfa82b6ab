"""A one-row slice kept per batch keeps the whole batch's block alive."""

from __future__ import annotations

import gc
import sys
import types
from typing import Any

from casebook.data import make_batch
from casebook.model import Case, Claim, Flip, Observed, Params, Ruling, Variant
from casebook.stories import batch_budget, batch_sizes
from casebook.verdicts import Evidence, band_text, both, budget_rule, growth_rule, rule, size_text, within


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


def shallow_copy(p: Params) -> list[Any]:
    """A fix that looks right and is not: `copy(deep=False)` shares the block."""
    samples = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        samples.append(processed.iloc[:1].copy(deep=False))
    return samples


# Objects the story's tools would not walk into: the program's code, not its data.
_CODE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
         types.CodeType)


def referents_size(root: Any) -> int:
    """The story's tools: follow `gc.get_referents()` from ``root`` and add up
    `sys.getsizeof()` of every object reached once (code objects, classes and modules apart)."""
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _CODE):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def tools(p: Params) -> Observed:
    """What the story's tools find in what the loop keeps: one-row slices (`kept="slice"`), or
    each batch's first column as a list of Python floats (`kept="floats"`)."""
    kept = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        kept.append(processed.iloc[:1] if p["kept"] == "slice" else processed["c0"].tolist())
    return Observed(kept, found=referents_size(kept))


def _tools_find_it(e: Evidence) -> Ruling:
    share, found, retained = e.ratio("tools", "tools", "found", base_figure="retained")
    return rule(within(share, low=0.5),
                f"`gc.get_referents()` and `sys.getsizeof()` found {size_text(found.value)} reachable "
                f"from the kept list, which held {band_text(retained)} alive ({share.value:.0%})",
                **{"found": found.value, "tools retained": retained.value})


_COPIED = Flip("the samples copied: `iloc[:1].copy()`", variants={"leaky": "fixed"})

CASE = Case(
    name="row_slice",
    title="A kept row slice pins its batch",
    story="batch_loop",
    summary=(
        "The same batch loop, but keeping a small sample of each batch instead of its mean. "
        "The report's prevention notes warn that `head()` returns a slice that points back at "
        "the original frame; its investigation says `gc.get_referents()` and `sys.getsizeof()` "
        "found the chain. This case measures both."
    ),
    lesson=(
        "With copy-on-write, pandas 3 makes `iloc[:1]` a view of the parent's block: one row "
        "holds the whole 2-D array. `head(1)` does not: it copies. `.copy()` gives a sample its "
        "own small buffer (`copy(deep=False)` does not). The garbage collector's tools cannot "
        "see this chain: numpy arrays are not gc-tracked, so `gc.get_referents()` stops at the "
        "view, and `sys.getsizeof()` of a view counts its header only. They find memory held by "
        "Python objects (the `floats` flip), not by buffers; leakhunt's `why_alive` follows "
        "`.base` itself."
    ),
    metric="retained",
    sizes=batch_sizes(kept="slice"),
    budget=batch_budget,
    growth_keys=("batches",),
    variants=(
        Variant("leaky", leaky, "leaky", "keep `iloc[:1]` of each batch", growth=True),
        Variant("fixed", fixed, "fixed", "keep `iloc[:1].copy()`", growth=True),
        Variant("head", head, "part", "keep `head(1)` (the story's example)"),
        Variant("tools", tools, "part", "keep `iloc[:1]`, then walk it as the story's tools do"),
        Variant("shallow_copy", shallow_copy, "flip", "keep `iloc[:1].copy(deep=False)`", growth=True),
    ),
    claims=(
        Claim("`DataFrame.head()` returns a slice that keeps the original frame alive.",
              lambda e: budget_rule(e, "head"), section="Prevention 2",
              flip=Flip("`iloc[:1]` instead of `head(1)`", variants={"head": "leaky"})),
        Claim("`gc.get_referents()` and `sys.getsizeof()` find the reference chain and what it "
              "keeps alive.", _tools_find_it, section="Investigation, hypothesis 3; Lessons Learned 5",
              flip=Flip("keep Python floats instead of slices", params={"kept": "floats"})),
        Claim("A one-row slice (`iloc[:1]`) keeps its batch's whole block alive, so memory grows "
              "with every batch kept.",
              lambda e: both(budget_rule(e, "leaky"), growth_rule(e, "leaky")), origin="casebook",
              section="Prevention 2", flip=_COPIED),
        Claim("Copying what you keep (`.copy()`) breaks the chain: memory stays flat.",
              lambda e: both(budget_rule(e, "fixed", holds_if="keeps"),
                             growth_rule(e, "fixed", holds_if="flat")), origin="casebook",
              section="Prevention 2",
              flip=Flip("a shallow copy, `copy(deep=False)`", variants={"fixed": "shallow_copy"})),
    ),
    flip={"fixed": "shallow_copy"},
    helpers=(make_batch, referents_size),
)
