"""The `mean()` claim: does keeping a per-batch mean keep the whole batch alive?"""

from __future__ import annotations

from typing import Any, Iterator

from casebook.data import make_batch
from casebook.model import Case, Claim, Flip, Params, Ruling, Variant
from casebook.stories import batch_budget, batch_sizes
from casebook.verdicts import Evidence, band_text, budget_rule, growth_rule, rule, size_text, within


def leaky(p: Params) -> list[Any]:
    """The story's loop as written: a list of Series, one `mean()` per batch."""
    results = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        results.append(processed.mean())
    return results


def story_fix(p: Params) -> list[dict[str, float]]:
    """The story's fix: turn each mean into a plain dict."""
    results = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        results.append(processed.mean().to_dict())
    return results


def column_kept(p: Params) -> list[Any]:
    """What would make the claim true: keep a column (a view of the batch), not its mean."""
    results = []
    for i in range(p["batches"]):
        processed = make_batch(i, p["rows"], p["cols"])
        results.append(processed["c0"])
    return results


def summarise(processed: Any, keep: str) -> Any:
    """What the loop keeps of each batch: the story's `mean().to_dict()`, or (`keep="row"`) its
    first row, a view of the batch."""
    return processed.mean().to_dict() if keep == "to_dict" else processed.iloc[:1]


def first_value(summary: Any) -> float:
    """What the caller uses a summary for."""
    return float(summary["c0"]) if isinstance(summary, dict) else float(summary["c0"].iloc[0])


def summaries(p: Params) -> list[Any]:
    """The summaries in a list, used once all are made: the list holds every one."""
    results = [summarise(make_batch(i, p["rows"], p["cols"]), p["keep"]) for i in range(p["batches"])]
    sum(first_value(s) for s in results)
    return results


def generator(p: Params) -> float:
    """The story's advice: a generator of the same summaries, each used as it comes."""
    results: Iterator[Any] = (summarise(make_batch(i, p["rows"], p["cols"]), p["keep"])
                              for i in range(p["batches"]))
    return sum(first_value(s) for s in results)


def _to_dict_stops_growth(e: Evidence) -> Ruling:
    before, after = e.verdict("leaky"), e.verdict("story_fix")
    text = (f"the story's code retained {band_text(e.band('leaky'))} ({before}), the fix "
            f"{band_text(e.band('story_fix'))} ({after}), against a budget of {size_text(e.limit)}")
    figures = {"leaky retained": e.value("leaky"), "story_fix retained": e.value("story_fix"), "budget": e.limit}
    if "inconclusive" in (before, after):
        return rule("inconclusive", text, **figures)
    if before == "breaks" and after == "keeps":
        return rule("holds", text, **figures)
    return rule("does not hold", text + (": there was no growth to stop" if before == "keeps" else ""), **figures)


def _generator_saves(e: Evidence) -> Ruling:
    """The saving a generator makes over a list of the same summaries, against the budget."""
    listed, generated = e.band("summaries"), e.band("generator")
    saving = listed.minus(generated)
    return rule(within(saving, low=e.limit),
                f"the list of summaries retained {band_text(listed)}, the generator "
                f"{band_text(generated)}: a saving of {size_text(max(saving.value, 0))} against a "
                f"budget of {size_text(e.limit)}",
                **{"summaries retained": listed.value, "generator retained": generated.value, "budget": e.limit})


_STORY_KEEPS_SLICES = Flip("keep `processed` itself: each batch's `c0` column, a view of the batch",
                           variants={"leaky": "column_kept"})

CASE = Case(
    name="mean_myth",
    title="A kept mean() pins its batch (claim)",
    story="batch_loop",
    summary=(
        "A job read 100 CSV files in a loop and kept one summary per file in a list. Memory "
        "climbed from 200 MB to 8 GB and the job died. The write-up blamed the summaries: each "
        "`mean()` result was said to hold the batch's index, and through it the whole batch. "
        "The fix it reported was to store `mean().to_dict()` instead, and it advised generators "
        "instead of lists."
    ),
    lesson=(
        "`mean()` builds a new Series with a new, small index: nothing points back at the "
        "batch. Converting to a dict costs nothing but does not fix anything either, and a "
        "generator saves nothing where the summaries are small. If your memory grows in a loop "
        "like this, look for a slice or a view instead (the `row_slice`, `numpy_view`, "
        "`index_slice` and `groupby_held` cases); keeping a column, as the `column_kept` "
        "variant does, would pin every batch, and then a generator whose items are used and "
        "dropped does save it."
    ),
    metric="retained",
    sizes=batch_sizes(keep="to_dict"),
    budget=batch_budget,
    expect="myth",
    growth_keys=("batches",),
    variants=(
        Variant("leaky", leaky, "leaky", "keep `processed.mean()` (the story's code)", growth=True),
        Variant("story_fix", story_fix, "story_fix", "keep `mean().to_dict()` (the story's fix)", growth=True),
        Variant("summaries", summaries, "part", "the summaries in a list, used at the end"),
        Variant("generator", generator, "part", "the summaries from a generator, used one by one"),
        Variant("column_kept", column_kept, "flip", "keep `processed[\"c0\"]`, a view", growth=True),
    ),
    claims=(
        Claim("A Series returned by `mean()` holds its frame's index, and through it the frame, "
              "so a list of means keeps every batch alive.",
              lambda e: budget_rule(e, "leaky"), section="Root Cause", flip=_STORY_KEEPS_SLICES),
        Claim("Keeping one summary per file makes memory grow with every file processed.",
              lambda e: growth_rule(e, "leaky"), section="Root Cause", flip=_STORY_KEEPS_SLICES),
        Claim("Storing `mean().to_dict()` instead breaks the chain and stops the growth.",
              _to_dict_stops_growth, section="Solution", flip=_STORY_KEEPS_SLICES),
        Claim("With the fix, memory stays flat however many files are processed (100 or 1,000).",
              lambda e: growth_rule(e, "story_fix", holds_if="flat"), section="Verification",
              flip=Flip("a fix that keeps a column of each batch", variants={"story_fix": "column_kept"})),
        Claim("A generator instead of a list avoids accumulating the results.", _generator_saves,
              section="Prevention 1",
              flip=Flip("summaries that pin their batch (a one-row slice)", params={"keep": "row"})),
    ),
    flip={"leaky": "column_kept"},
    helpers=(make_batch, summarise, first_value),
)
