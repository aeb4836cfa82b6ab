"""Two frames alive at the same time, when one at a time would do (the post's own shape)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from casebook.data import frame_bytes, make_batch
from casebook.model import Case, Claim, Flip, Observed, Params, Ruling, Variant
from casebook.verdicts import NOISE_FLOOR, Band, Evidence, band_text, budget_rule, case_spread, rule, size_text, within

# The post's frames were 41.7 MiB and 1154 MiB: one small, one 28 times bigger.
SIZES = {
    size: {**params, "cols": 8, "frames": 4, "source": "parquet", "cycle": False}
    for size, params in {
        "warmup": {"small_rows": 500, "big_rows": 2_000},
        "test": {"small_rows": 10_000, "big_rows": 250_000},
        "small": {"small_rows": 40_000, "big_rows": 1_000_000},
        "medium": {"small_rows": 200_000, "big_rows": 5_000_000},
        "large": {"small_rows": 400_000, "big_rows": 10_000_000},
    }.items()
}


def setup(p: Params, workdir: Path) -> Params:
    """A Parquet copy of a big frame, for the `del` measurement of a loaded frame."""
    path = workdir / "big.parquet"
    make_batch(3, p["big_rows"], p["cols"]).to_parquet(path)
    return {**p, "path": str(path)}


def summarise(frame: Any) -> dict[str, float]:
    """What each frame is needed for: a few numbers."""
    return {"mean": float(frame["c0"].mean()), "max": float(frame["c1"].max()), "rows": len(frame)}


def leaky(p: Params) -> list[dict[str, float]]:
    """The post's first profile: a small frame, then a big one, both alive."""
    df1 = make_batch(1, p["small_rows"], p["cols"])
    df2 = make_batch(2, p["big_rows"], p["cols"])
    return [summarise(df1), summarise(df2)]


def story_fix(p: Params) -> list[dict[str, float]]:
    """The post's fix: use each frame, then `del` it, before the next one is made."""
    df1 = make_batch(1, p["small_rows"], p["cols"])
    first = summarise(df1)
    del df1
    df2 = make_batch(2, p["big_rows"], p["cols"])
    second = summarise(df2)
    del df2
    return [first, second]


def all_at_once(p: Params) -> list[dict[str, float]]:
    """Where it matters: `frames` big frames loaded before any is used."""
    frames = [make_batch(i, p["big_rows"], p["cols"]) for i in range(p["frames"])]
    return [summarise(frame) for frame in frames]


def del_returns(p: Params) -> Observed:
    """How much RSS a `del` gives back: a frame read from Parquet (`source="parquet"`, as a job
    loads its data), or built in memory from numpy arrays (`source="numpy"`)."""
    import pandas as pd
    from leakhunt import measure

    frame = pd.read_parquet(p["path"]) if p["source"] == "parquet" else make_batch(3, p["big_rows"], p["cols"])
    with measure(settle=False) as deleting:
        del frame
    return Observed(None, freed=-(deleting.rss_growth or 0), frame=frame_bytes(p["big_rows"], p["cols"]))


class Job:
    """A frame's work whose bound method is stored on itself: a reference cycle."""

    def __init__(self, frame: Any) -> None:
        self.frame = frame
        self.done = self.summary

    def summary(self) -> dict[str, float]:
        return summarise(self.frame)


def del_without_collector(p: Params) -> Observed:
    """`del` with the garbage collector switched off: a plain frame, or (`cycle=True`) one that
    sits in a reference cycle."""
    import gc

    from leakhunt import measure

    held: Any = make_batch(3, p["big_rows"], p["cols"])
    if p["cycle"]:
        held = Job(held)
    gc.disable()
    try:
        with measure(settle=False) as deleting:
            del held
    finally:
        gc.enable()
    return Observed(None, freed=-(deleting.rss_growth or 0), frame=frame_bytes(p["big_rows"], p["cols"]))


def budget(p: Params) -> int:
    # 1.7 big frames: the fix holds one, the post's leak one plus a small one (and the key
    # column's copy while a frame is built); four at once break it.
    return frame_bytes(p["big_rows"], p["cols"]) * 17 // 10


def _both_frames(e: Evidence) -> int:
    return frame_bytes(e.param("small_rows"), e.param("cols")) + frame_bytes(e.param("big_rows"), e.param("cols"))


def _sum_of_both(e: Evidence) -> Ruling:
    peak, both_frames = e.band("leaky"), _both_frames(e)
    share = peak.scaled(1 / both_frames)
    return rule(within(share, 0.8, 1.25),
                f"both frames alive peaked at {band_text(peak)}; together they hold "
                f"{size_text(both_frames)} ({share.value:.2f}x)",
                **{"leaky peak": peak.value, "both frames": both_frames})


def _freed(e: Evidence, variant: str) -> tuple[float, float, float]:
    freed, size = e.band(variant, "freed"), e.value(variant, "frame")
    share = freed.scaled(1 / size)
    return share.value, share.low, share.high


def _del_gives_back(e: Evidence) -> Ruling:
    value, low, high = _freed(e, "del_returns")
    source = "read from Parquet" if e.param("source") == "parquet" else "built from numpy arrays"
    return rule(within(Band(value, low, high), low=0.5),
                f"`del` of a {size_text(e.value('del_returns', 'frame'))} frame {source} gave back "
                f"{size_text(max(e.value('del_returns', 'freed'), 0))} of RSS ({value:.0%})",
                **{"freed": e.value("del_returns", "freed"), "frame": e.value("del_returns", "frame")})


def _del_signals_the_collector(e: Evidence) -> Ruling:
    value, low, high = _freed(e, "del_without_collector")
    what = "a frame in a reference cycle" if e.param("cycle") else "a plain frame"
    return rule(within(Band(value, low, high), high=0.5),
                f"with the collector switched off, `del` of {what} gave back "
                f"{size_text(max(e.value('del_without_collector', 'freed'), 0))} ({value:.0%} of it)",
                **{"freed": e.value("del_without_collector", "freed"),
                   "frame": e.value("del_without_collector", "frame")})


def _del_lowers_the_peak(e: Evidence) -> Ruling:
    before, after = e.band("leaky", ratio=True), e.band("story_fix", ratio=True)
    saving = before.minus(after)
    share = saving.scaled(1 / max(before.value, NOISE_FLOOR))
    # A saving worth the name is one the spread of the two peaks cannot make up: twice the spread
    # (with the line at the spread itself, no saving could ever be found too small to count).
    worth = 2 * case_spread(e.case, e.case.metric, "leaky")
    return rule(within(share, low=worth),
                f"the peak went from {size_text(before.value)} to {size_text(after.value)}: a saving "
                f"of {size_text(max(saving.value, 0))}, {share.value:.1%} of it (the small frame holds "
                f"{size_text(frame_bytes(e.param('small_rows'), e.param('cols')))}; a saving worth the "
                f"name is {worth:.0%} or more, twice the spread of the peaks)",
                **{"leaky peak": before.value, "story_fix peak": after.value})


_TWO_BIG = Flip("the first frame as big as the second", params={"small_rows": lambda p: p["big_rows"]})

CASE = Case(
    name="frames_alive",
    title="Two frames alive at once, and `del` (claim)",
    story="gc_post",
    summary=(
        "A short post on out-of-memory errors showed, with memory_profiler, a function that "
        "held two data frames at once: a 42 MiB one, then a 1154 MiB one on top of it. Its "
        "advice: `del` each frame as soon as it is used. In its own second profile, `del df1` "
        "gave back 1.4 MiB and the peak rose from 1347 to 1374 MiB."
    ),
    lesson=(
        "In the post's shape, deleting the small frame first can save at most the small frame: "
        "a few percent of the peak, which is why its profile barely moved. `del` does matter "
        "when several big frames would be alive at once (the `all_at_once` row). `del` does not "
        "involve the collector: it drops a reference, and CPython frees the frame at once "
        "unless it sits in a reference cycle. Whether that lowers RSS depends on who allocated "
        "the memory: a numpy buffer goes back to the OS, while a frame read through Arrow "
        "returns its memory to Arrow's pool, which keeps it for the next read."
    ),
    metric="peak",
    sizes=SIZES,
    budget=budget,
    setup=setup,
    # The post blames keeping the first frame alive while the second loads; in its own shape
    # that costs the small frame only.
    expect="myth",
    variants=(
        Variant("leaky", leaky, "leaky", "a small frame, then a big one, both alive", profile=True),
        Variant("story_fix", story_fix, "story_fix", "`del` each frame after use", profile=True),
        Variant("all_at_once", all_at_once, "part", "four big frames alive at once"),
        # Its peak moved by 9.8% between invocations (benchmarks/casebook_stability.md).
        Variant("del_returns", del_returns, "part", "RSS given back by `del` of a frame read from Parquet",
                timeline=False, spread=0.1),
        Variant("del_without_collector", del_without_collector, "part",
                "`del` with the garbage collector off", timeline=False),
    ),
    claims=(
        Claim("Two data frames alive at the same time cost the sum of both.", _sum_of_both,
              section="1: signal Garbage Collector asap",
              flip=Flip("the first frame as big as the second, deleted before the second is made",
                        variants={"leaky": "story_fix"}, params={"small_rows": lambda p: p["big_rows"]})),
        Claim("Deleting each frame as soon as it is used lowers the peak (the post's own profile: "
              "1347 MiB with both frames alive, 1374 MiB with `del`).", _del_lowers_the_peak,
              section="1: signal Garbage Collector asap", flip=_TWO_BIG),
        Claim("`del df1` gives df1's memory back (the post's profile: only 1.4 of its 41.7 MiB "
              "came back, which it put down to the collector).", _del_gives_back,
              section="1: signal Garbage Collector asap",
              flip=Flip("a frame built in memory from numpy arrays", params={"source": "numpy"})),
        Claim("`del` signals the garbage collector to release the memory.", _del_signals_the_collector,
              section="1: signal Garbage Collector asap",
              flip=Flip("a frame held in a reference cycle", params={"cycle": True})),
        Claim("Frames made all at once before use cost all of them at the peak: there `del` as you "
              "go matters.", lambda e: budget_rule(e, "all_at_once"), origin="casebook",
              section="1: signal Garbage Collector asap",
              flip=Flip("one frame at a time, each deleted after use", variants={"all_at_once": "story_fix"})),
    ),
    flip={"leaky": "all_at_once"},
    imports=("numpy", "pandas", "pyarrow", "pyarrow.parquet"),
    helpers=(make_batch, summarise),
)
