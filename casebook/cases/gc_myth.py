"""The "call gc.collect()" claim: does collecting after each file stop the growth?"""

from __future__ import annotations

import gc
from typing import Any

from casebook.data import DAY_BYTES_PER_ROW, make_day
from casebook.model import Case, Claim, Flip, Params, Ruling, Variant
from casebook.verdicts import Evidence, band_text, both, budget_rule, growth_rule, ratio_rule, rule, size_text, within

SIZES = {
    "warmup": {"days": 2, "rows_per_day": 1_000},
    "test": {"days": 16, "rows_per_day": 100_000},
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
    """Keep each frame in a list (the results still refer to them), and never collect."""
    kept = []
    for day in range(p["days"]):
        daily_df = make_day(day, p["rows_per_day"])
        kept.append(daily_df)
    return kept


def held_gc(p: Params) -> list[Any]:
    """Keep each frame in a list, and collect garbage after every file."""
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


def _day_bytes(e: Evidence) -> int:
    return int(e.param("rows_per_day") * DAY_BYTES_PER_ROW)


def _del_lowers_the_peak(e: Evidence) -> Ruling:
    """`del` frees the old frame a step earlier: it saves one day's frame at the peak, or not."""
    without, with_del = e.band("leaky", ratio=True), e.band("del_only", ratio=True)
    saving = without.minus(with_del)
    day = _day_bytes(e)
    return rule(within(saving.scaled(1 / day), low=0.5),
                f"`del` alone peaked at {size_text(with_del.value)} against {size_text(without.value)} "
                f"without: a saving of {size_text(saving.value)}, {saving.value / day:.1f} of a day's "
                f"{size_text(day)} frame", **{"del_only peak": with_del.value, "leaky peak": without.value,
                                              "day": day})


def _collecting_frees(e: Evidence, variant: str, base: str, what: str, *, frees: bool) -> Ruling:
    """Does collecting after each file lower the peak of ``base`` (to ``variant``'s)? It frees
    memory when it cuts the peak by a fifth or more."""
    return ratio_rule(
        e, variant, base, **({"high": 0.8} if frees else {"low": 0.8}),
        says=lambda collected, not_collected, share: (
            f"{what} peaked at {band_text(collected)} against {band_text(not_collected)} without "
            f"collecting ({share.value:.0%})"),
    )


_CYCLES = Flip("frames held in reference cycles (a bound method stored on its own object)",
               variants={"leaky": "cycle", "gc_only": "cycle_gc"})

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
        "(the `held` rows), no collection frees it: find the reference."
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
        Variant("held", held, "part", "frames kept in a list, no collection"),
        Variant("held_gc", held_gc, "part", "frames kept in a list, `gc.collect()` every file"),
        Variant("cycle", cycle, "part", "frames in reference cycles, no collection", growth=True),
        Variant("cycle_gc", cycle_gc, "part", "frames in reference cycles, `gc.collect()` every file"),
    ),
    claims=(
        Claim("Without `del` and `gc.collect()`, the frames of earlier files stay in memory and "
              "memory grows with each file.",
              lambda e: both(budget_rule(e, "leaky"), growth_rule(e, "leaky")),
              section="Root Causes 3", flip=Flip("frames held in reference cycles", variants={"leaky": "cycle"})),
        Claim("Deleting each frame with `del` lowers the peak.", _del_lowers_the_peak,
              section="Solutions Implemented 4; Best Practices 3",
              flip=Flip("frames kept in a list (4 files): neither `del` nor collecting frees them",
                        variants={"leaky": "held", "del_only": "held_gc"}, params={"days": 4})),
        Claim("Calling `gc.collect()` after each file frees memory that would otherwise pile up.",
              lambda e: _collecting_frees(e, "gc_only", "leaky", "`gc.collect()` after each file", frees=True),
              section="Root Causes 3; Solutions Implemented 4", flip=_CYCLES),
        Claim("Collecting garbage after each iteration frees nothing while the results still refer "
              "to the data: memory keeps growing, so the growth is not a reference-cycle problem.",
              lambda e: _collecting_frees(e, "held_gc", "held", "frames kept in a list, collected",
                                          frees=False),
              source="batch_loop", section="Investigation, hypotheses 1 and 2",
              flip=Flip("the frames held in reference cycles instead of a list",
                        variants={"held": "cycle", "held_gc": "cycle_gc"})),
        Claim("`gc.collect()` matters when objects sit in reference cycles: then frames pile up "
              "until the collector runs.",
              lambda e: both(budget_rule(e, "cycle"), budget_rule(e, "cycle_gc", holds_if="keeps")),
              origin="casebook", section="Root Causes 3",
              flip=Flip("no cycles: the story's plain loop, and frames kept in a list",
                        variants={"cycle": "leaky", "cycle_gc": "held_gc"})),
    ),
    flip={"leaky": "cycle"},
    helpers=(make_day,),
)
