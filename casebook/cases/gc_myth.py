"""The "call gc.collect()" claim: does collecting after each file stop the growth?"""

from __future__ import annotations

import gc
from typing import Any

from casebook.data import DAY_BYTES_PER_ROW, make_day
from casebook.model import Case, Claim, Params, Ruling, Variant
from casebook.verdicts import Evidence, both, budget_rule, growth_rule, share_rule, size_text

SIZES = {
    "warmup": {"days": 2, "rows_per_day": 1_000},
    "test": {"days": 16, "rows_per_day": 50_000},
    "small": {"days": 30, "rows_per_day": 200_000},
    "medium": {"days": 60, "rows_per_day": 500_000},
    "large": {"days": 120, "rows_per_day": 1_000_000},
}


def leaky(p: Params) -> list[float]:
    """The story's "before": no `del`, no `gc.collect()`, one number kept per file."""
    means = []
    for day in range(p["days"]):
        daily_df = make_day(day, p["rows_per_day"])
        means.append(float(daily_df["price"].mean()))
    return means


def story_fix(p: Params) -> list[float]:
    """The story's fix: `del` each frame and collect garbage after every file."""
    means = []
    for day in range(p["days"]):
        daily_df = make_day(day, p["rows_per_day"])
        means.append(float(daily_df["price"].mean()))
        del daily_df
        gc.collect()
    return means


def del_only(p: Params) -> list[float]:
    """Only the `del`."""
    means = []
    for day in range(p["days"]):
        daily_df = make_day(day, p["rows_per_day"])
        means.append(float(daily_df["price"].mean()))
        del daily_df
    return means


def gc_only(p: Params) -> list[float]:
    """Only the `gc.collect()`."""
    means = []
    for day in range(p["days"]):
        daily_df = make_day(day, p["rows_per_day"])
        means.append(float(daily_df["price"].mean()))
        gc.collect()
    return means


def held(p: Params) -> list[Any]:
    """Collect after every file, but keep each frame in a list: nothing can be freed."""
    kept = []
    for day in range(p["days"]):
        daily_df = make_day(day, p["rows_per_day"])
        kept.append(daily_df)
        gc.collect()
    return kept


class DayJob:
    """One file's work. Storing a bound method on its own object is a reference cycle."""

    def __init__(self, frame: Any) -> None:
        self.frame = frame
        self.on_done = self.summarise  # the method holds the object, the object the method

    def summarise(self) -> float:
        return float(self.frame["price"].mean())


def cycle(p: Params) -> list[float]:
    """Each day's frame sits in a reference cycle, and nobody collects."""
    means = []
    for day in range(p["days"]):
        job = DayJob(make_day(day, p["rows_per_day"]))
        means.append(job.on_done())
    return means


def cycle_gc(p: Params) -> list[float]:
    """The same cycles, collected after every file: here `gc.collect()` is the fix."""
    means = []
    for day in range(p["days"]):
        job = DayJob(make_day(day, p["rows_per_day"]))
        means.append(job.on_done())
        del job
        gc.collect()
    return means


def budget(p: Params) -> int:
    # Six days of data: the loop holds up to three at once (the old frame, the new one and the
    # arrays it is built from); a pile-up of earlier days breaks it.
    return 6 * p["rows_per_day"] * DAY_BYTES_PER_ROW


def _compared(e: Evidence, variant: str, what: str) -> Ruling:
    seconds, base_seconds = e.seconds(variant), e.seconds("leaky")
    ruling = share_rule(
        e, variant, "leaky", holds=lambda s: s <= 0.8, fails=lambda s: s >= 0.95,
        says=lambda value, base, share: (
            f"{what} peaked at {size_text(value)} against {size_text(base)} without ({share:.0%}), "
            f"in {seconds:.2f} s against {base_seconds:.2f} s"),
    )
    return Ruling(ruling.verdict, ruling.evidence,
                  {**ruling.figures, f"{variant} seconds": seconds, "leaky seconds": base_seconds})


CASE = Case(
    name="gc_myth",
    title="\"Call gc.collect() and the leak goes away\" (claim)",
    story="missing_days",
    summary=(
        "The missing-days write-up lists \"no garbage collection\" as a root cause: frames were "
        "not deleted and `gc.collect()` was never called, so memory was said to pile up with "
        "each file. Its fix sprinkles `del` and `gc.collect()` through the loop. The batch-loop "
        "report tried the same and found that collecting did not help while references remained."
    ),
    lesson=(
        "CPython frees an object as soon as its last reference goes. Without `del`, the old "
        "frame lives until the next one is assigned, so two are alive at the peak; `del` frees "
        "it a step earlier, and that is the whole gain. `gc.collect()` only finds reference "
        "cycles, which plain frames do not form, and costs time on every call. It matters when "
        "objects do sit in cycles (a bound method stored on its own object, the `cycle` rows): "
        "then frames pile up until the collector runs. When something still refers to the data "
        "(the `held` row), no collection frees it: find the reference."
    ),
    metric="peak",
    sizes=SIZES,
    budget=budget,
    expect="myth",
    growth_keys=("days",),
    variants=(
        Variant("leaky", leaky, "leaky", "no `del`, no `gc.collect()`", growth=True),
        Variant("story_fix", story_fix, "story_fix", "`del` and `gc.collect()` every file", growth=True),
        Variant("del_only", del_only, "part", "`del` only"),
        Variant("gc_only", gc_only, "part", "`gc.collect()` only"),
        Variant("held", held, "part", "frames kept in a list, `gc.collect()` every file"),
        Variant("cycle", cycle, "part", "frames in reference cycles, no collection", growth=True),
        Variant("cycle_gc", cycle_gc, "part", "frames in reference cycles, `gc.collect()` every file"),
    ),
    claims=(
        Claim("Without `del` and `gc.collect()`, the frames of earlier files stay in memory and "
              "memory grows with each file.",
              lambda e: both(budget_rule(e, "leaky"), growth_rule(e, "leaky"))),
        Claim("Deleting each frame with `del` lowers the peak.",
              lambda e: _compared(e, "del_only", "`del` alone")),
        Claim("Calling `gc.collect()` after each file frees memory that would otherwise pile up.",
              lambda e: _compared(e, "gc_only", "`gc.collect()` alone")),
        Claim("`gc.collect()` cannot free data that something still refers to.",
              lambda e: budget_rule(e, "held"), source="batch_loop"),
        Claim("Collecting garbage matters when objects sit in reference cycles: then frames pile "
              "up until the collector runs.",
              lambda e: both(budget_rule(e, "cycle"), budget_rule(e, "cycle_gc", holds_if="keeps"))),
    ),
    flip={"leaky": "cycle"},
    helpers=(make_day,),
)
