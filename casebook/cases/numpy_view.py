"""A numpy slice kept per batch keeps its base array alive; `.values` instead of a Series."""

from __future__ import annotations

from typing import Any

from casebook.data import make_batch, make_gene_counts
from casebook.model import Case, Claim, Flip, Params, Ruling, Variant
from casebook.stories import batch_budget, batch_sizes
from casebook.verdicts import Evidence, band_text, both, budget_rule, growth_rule, rule, within


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


def as_array(p: Params) -> list[Any]:
    """A fix that looks right and is not: `np.asarray` of a view is the same view."""
    import numpy as np

    firsts = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        firsts.append(np.asarray(processed["c0"].to_numpy()[:1]))
    return firsts


def load(p: Params, i: int) -> Any:
    """One file's frame: a batch of readings (`frame="batch"`), or one sample's counts per gene,
    indexed by gene id (`frame="genes"`, as an RNA-seq quantifier writes them)."""
    if p["frame"] == "genes":
        return make_gene_counts(i, p["rows"])
    return make_batch(i, p["rows"], p["cols"])


def series(p: Params) -> list[Any]:
    """Keep a column of each file as a Series (the earlier incident's code)."""
    kept = []
    for i in range(p["batches"]):
        processed = load(p, i)
        kept.append(processed[processed.columns[0]])
    return kept


def values(p: Params) -> list[Any]:
    """The earlier incident's fix: keep the column's `.values` instead of the Series."""
    kept = []
    for i in range(p["batches"]):
        processed = load(p, i)
        kept.append(processed[processed.columns[0]].values)
    return kept


def _values_break_it(e: Evidence) -> Ruling:
    share, as_values, as_series = e.ratio("values", "series")
    return rule(within(share, high=0.5),
                f"keeping the Series retained {band_text(as_series)}, keeping `.values` "
                f"{band_text(as_values)} ({share.value:.0%} of it)",
                **{"series retained": as_series.value, "values retained": as_values.value})


CASE = Case(
    name="numpy_view",
    title="A kept numpy slice pins its base array",
    story="batch_loop",
    summary=(
        "The report mentions an earlier incident in the same codebase (RNA-seq data), fixed by "
        "keeping `.values` instead of a Series, and its prevention notes say to keep primitive "
        "types. Raw numpy arrays are no safer than a Series: a slice of an array is a view, and "
        "a view holds its base through `.base`."
    ),
    lesson=(
        "`to_numpy()` (or `.values`) on a column of a 2-D block returns a view into that block, "
        "and `[:1]` is a view of the view. Keep plain values (`float(...)`, `.tolist()`) or "
        "`.copy()` the slice. `.values` instead of a Series saves only what the Series holds "
        "besides its values: nothing in a batch with a default index, most of it for a column "
        "of counts indexed by long gene ids (the `genes` flip). The garbage collector cannot "
        "show these chains: numpy arrays are not gc-tracked."
    ),
    metric="retained",
    sizes=batch_sizes(frame="batch"),
    budget=batch_budget,
    growth_keys=("batches",),
    variants=(
        Variant("leaky", leaky, "leaky", "keep `to_numpy()[:1]` of a column", growth=True),
        Variant("fixed", fixed, "fixed", "keep `float(...)` of the value", growth=True),
        Variant("series", series, "part", "keep a column as a Series"),
        Variant("values", values, "part", "keep the column's `.values` (the story's earlier fix)"),
        Variant("as_array", as_array, "flip", "keep `np.asarray(...[:1])`", growth=True),
    ),
    claims=(
        Claim("Keeping `.values` instead of a Series breaks the reference to the frame (the "
              "earlier RNA-seq incident's fix).", _values_break_it, section="Related Issues",
              flip=Flip("one sample's counts per gene, indexed by gene id", params={"frame": "genes"})),
        Claim("Converting what you keep to primitive Python types breaks the chain: memory stays "
              "flat.",
              lambda e: both(budget_rule(e, "fixed", holds_if="keeps"),
                             growth_rule(e, "fixed", holds_if="flat")), section="Prevention 2",
              flip=Flip("`np.asarray` of the slice instead of `float`", variants={"fixed": "as_array"})),
        Claim("A one-element numpy slice keeps its base, the batch's whole block, alive.",
              lambda e: both(budget_rule(e, "leaky"), growth_rule(e, "leaky")), origin="casebook",
              section="Related Issues",
              flip=Flip("keep `float(...)` instead", variants={"leaky": "fixed"})),
    ),
    flip={"fixed": "as_array"},
    helpers=(make_batch, make_gene_counts, load),
)
