"""The `mean()` claim: does keeping a per-batch mean keep the whole batch alive?"""

from __future__ import annotations

from typing import Any

from casebook.data import make_batch
from casebook.model import Case, Claim, Params, Variant
from casebook.stories import BATCH_SIZES, batch_budget
from casebook.verdicts import Evidence, budget_rule, growth_rule, rule, size_text


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


def _to_dict_stops_growth(e: Evidence) -> Any:
    before, after = e.verdict("leaky"), e.verdict("story_fix")
    text = (f"the story's code retained {size_text(e.value('leaky'))} ({before}), the fix "
            f"{size_text(e.value('story_fix'))} ({after}), against a budget of {size_text(e.limit)}")
    figures = {"leaky retained": e.value("leaky"), "story_fix retained": e.value("story_fix"), "budget": e.limit}
    if before == "breaks" and after == "keeps":
        return rule("holds", text, **figures)
    if before == "keeps" or after == "breaks":
        return rule("does not hold", text + ("" if before != "keeps" else ": there was no growth to stop"),
                    **figures)
    return rule("partly", text, **figures)


CASE = Case(
    name="mean_myth",
    title="A kept mean() pins its batch (claim)",
    story="batch_loop",
    summary=(
        "A job read 100 CSV files in a loop and kept one summary per file in a list. Memory "
        "climbed from 200 MB to 8 GB and the job died. The write-up blamed the summaries: each "
        "`mean()` result was said to hold the batch's index, and through it the whole batch. "
        "The fix it reported was to store `mean().to_dict()` instead."
    ),
    lesson=(
        "`mean()` builds a new Series with a new, small index: nothing points back at the "
        "batch. Converting to a dict costs nothing but does not fix anything either. If your "
        "memory grows in a loop like this, look for a slice or a view instead (the `row_slice`, "
        "`numpy_view`, `index_slice` and `groupby_held` cases); keeping a column, as the "
        "`column_kept` variant does, would pin every batch."
    ),
    metric="retained",
    sizes=BATCH_SIZES,
    budget=batch_budget,
    expect="myth",
    growth_keys=("batches",),
    variants=(
        Variant("leaky", leaky, "leaky", "keep `processed.mean()` (the story's code)", growth=True),
        Variant("story_fix", story_fix, "story_fix", "keep `mean().to_dict()` (the story's fix)", growth=True),
        Variant("column_kept", column_kept, "flip", "keep `processed[\"c0\"]`, a view"),
    ),
    claims=(
        Claim("A Series returned by `mean()` holds its frame's index, and through it the frame, "
              "so a list of means keeps every batch alive.",
              lambda e: budget_rule(e, "leaky")),
        Claim("Keeping one summary per file makes memory grow with every file processed.",
              lambda e: growth_rule(e, "leaky")),
        Claim("Storing `mean().to_dict()` instead breaks the chain and stops the growth.",
              _to_dict_stops_growth),
    ),
    flip={"leaky": "column_kept"},
    helpers=(make_batch,),
)
