"""Big frames alive at the same time, when one at a time would do."""

from __future__ import annotations

from typing import Any

from casebook._case import Case, Params
from casebook._data import frame_bytes, make_batch

SOURCE = "Python Memory & Garbage Collection"

SIZES = {
    "warmup": {"frames": 2, "rows": 1_000, "cols": 8},
    "small": {"frames": 8, "rows": 300_000, "cols": 8},
    "medium": {"frames": 10, "rows": 1_500_000, "cols": 8},
    "large": {"frames": 16, "rows": 3_000_000, "cols": 8},
}


def summarise(frame: Any) -> dict[str, float]:
    """What each frame is needed for: a few numbers."""
    return {"mean": float(frame["c0"].mean()), "max": float(frame["c1"].max()), "rows": len(frame)}


def leaky(p: Params) -> list[dict[str, float]]:
    """Load every frame first, then summarise them: all are alive at the peak."""
    frames = [make_batch(i, p["rows"], p["cols"]) for i in range(p["frames"])]
    return [summarise(frame) for frame in frames]


def fixed(p: Params) -> list[dict[str, float]]:
    """One frame at a time, and `del` it before the next one is built."""
    summaries = []
    for i in range(p["frames"]):
        frame = make_batch(i, p["rows"], p["cols"])
        summaries.append(summarise(frame))
        del frame  # without this, the old frame lives until the next one is assigned
    return summaries


def rebind(p: Params) -> list[dict[str, float]]:
    """One at a time but no `del`: the previous frame is alive while the next one loads."""
    summaries = []
    for i in range(p["frames"]):
        frame = make_batch(i, p["rows"], p["cols"])
        summaries.append(summarise(frame))
    return summaries


def budget(p: Params) -> dict[str, int]:
    # Two frames' worth: the fix holds one, the leak holds them all.
    return {"peak": 2 * frame_bytes(p["rows"], p["cols"])}


CASE = Case(
    name="frames_alive",
    title="Big frames alive at the same time",
    source=SOURCE,
    story=(
        "A short post on out-of-memory errors showed, with memory_profiler, a function that "
        "held two big data frames at once: the second one's load came on top of the first. "
        "Loading one, using it and deleting it before the next cut the peak to the largest "
        "single frame."
    ),
    claim=(
        "The peak is the sum of the frames alive at the same time, so loading all frames "
        "before using them costs all of them at once; one at a time, with `del`, costs one."
    ),
    metric="peak",
    sizes=SIZES,
    leaky=leaky,
    fixed=fixed,
    budget=budget,
    lesson=(
        "Build, use and drop each frame in turn. `del` matters in a loop: `frame = load(i)` "
        "builds the new frame before the old name lets go of the old one, so without `del` "
        "two frames are alive at the peak (the `rebind` row)."
    ),
    alternatives={"rebind": rebind},
    line_profile=("leaky", "fixed"),
    helpers=(make_batch, summarise),
)
