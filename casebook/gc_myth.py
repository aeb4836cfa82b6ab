"""The "call gc.collect()" claim: does collecting after each step stop the growth?"""

from __future__ import annotations

import gc
from typing import Any

from casebook._case import Case, Params
from casebook._data import make_day
from casebook.concat_loop import SOURCE

SIZES = {
    "warmup": {"days": 2, "rows_per_day": 1_000},
    "small": {"days": 30, "rows_per_day": 200_000},
    "medium": {"days": 60, "rows_per_day": 500_000},
    "large": {"days": 120, "rows_per_day": 1_000_000},
}


def leaky(p: Params) -> list[float]:
    """The "before" of the write-up: no `del`, no `gc.collect()`, one mean kept per day."""
    means = []
    for day in range(p["days"]):
        daily = make_day(day, p["rows_per_day"])
        means.append(float(daily["price"].mean()))
    return means


def fixed(p: Params) -> list[float]:
    """The write-up's fix: `del` each frame and collect garbage after every day."""
    means = []
    for day in range(p["days"]):
        daily = make_day(day, p["rows_per_day"])
        means.append(float(daily["price"].mean()))
        del daily
        gc.collect()
    return means


def held(p: Params) -> list[Any]:
    """Collect after every day, but keep each frame in a list: nothing can be freed."""
    kept = []
    for day in range(p["days"]):
        daily = make_day(day, p["rows_per_day"])
        kept.append(daily)
        gc.collect()
    return kept


def budget(p: Params) -> dict[str, int]:
    # Two days of data: growth that scaled with the day count would break it at once.
    return {"rss": 2 * p["rows_per_day"] * 48}


CASE = Case(
    name="gc_myth",
    title="\"Call gc.collect() and the leak goes away\" (claim)",
    source=SOURCE,
    story=(
        "Several of the write-ups list missing garbage collection as a root cause: frames "
        "were not deleted and `gc.collect()` was never called, so memory was said to pile "
        "up with each file. Their fixes sprinkle `del` and `gc.collect()` through the loop."
    ),
    claim=(
        "Without explicit `del` and `gc.collect()`, the frames of earlier iterations stay "
        "in memory and it grows with each file."
    ),
    metric="retained",
    sizes=SIZES,
    leaky=leaky,
    fixed=fixed,
    budget=budget,
    expect="myth",
    lesson=(
        "CPython frees an object as soon as its last reference goes; rebinding `daily` on "
        "the next day frees the previous frame. `gc.collect()` only finds reference cycles, "
        "which plain frames do not form. When something still refers to the data (the "
        "`held` row: a list of frames), no collection frees it. Find the reference; do not "
        "add collections, which cost time (compare the wall times). For memory that stays after everything is freed, see the "
        "`allocator_retention` case."
    ),
    alternatives={"held": held},
    helpers=(make_day,),
)
