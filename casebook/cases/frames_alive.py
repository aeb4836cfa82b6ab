"""Two frames alive at the same time, when one at a time would do (the post's own shape)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from casebook.data import frame_bytes, make_batch
from casebook.model import Case, Claim, Observed, Params, Ruling, Variant
from casebook.verdicts import Evidence, banded, budget_rule, ratio, rule, size_text

# The post's frames were 41.7 MiB and 1154 MiB: one small, one 28 times bigger.
SIZES = {
    "warmup": {"small_rows": 500, "big_rows": 2_000, "cols": 8, "frames": 4},
    "test": {"small_rows": 10_000, "big_rows": 250_000, "cols": 8, "frames": 4},
    "small": {"small_rows": 40_000, "big_rows": 1_000_000, "cols": 8, "frames": 4},
    "medium": {"small_rows": 200_000, "big_rows": 5_000_000, "cols": 8, "frames": 4},
    "large": {"small_rows": 400_000, "big_rows": 10_000_000, "cols": 8, "frames": 4},
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
    """How much RSS a `del` gives back: a frame built in memory, and one read from Parquet."""
    import pandas as pd
    from leakhunt import measure

    built = make_batch(3, p["big_rows"], p["cols"])
    with measure(settle=False) as after_built:
        del built
    loaded = pd.read_parquet(p["path"])
    with measure(settle=False) as after_loaded:
        del loaded
    size = frame_bytes(p["big_rows"], p["cols"])
    return Observed(None, built_freed=-(after_built.rss_growth or 0),
                    loaded_freed=-(after_loaded.rss_growth or 0), frame=size)


def budget(p: Params) -> int:
    # 1.7 big frames: the fix holds one, the post's leak one plus a small one (and the key
    # column's copy while a frame is built); four at once break it.
    return frame_bytes(p["big_rows"], p["cols"]) * 17 // 10


def _sum_of_both(e: Evidence) -> Ruling:
    peak = e.value("leaky")
    both_frames = frame_bytes(e.param("small_rows"), e.param("cols")) + \
        frame_bytes(e.param("big_rows"), e.param("cols"))
    share = ratio(peak, both_frames)
    return banded(share, holds=lambda s: 0.85 <= s <= 1.3, fails=lambda s: s < 0.6,
                  evidence=f"both frames alive peaked at {size_text(peak)}; together they hold "
                           f"{size_text(both_frames)} ({share:.2f}x)",
                  **{"leaky peak": peak, "both frames": both_frames})


def _del_gives_back(e: Evidence) -> Ruling:
    size = e.value("del_returns", "frame")
    built, loaded = e.value("del_returns", "built_freed"), e.value("del_returns", "loaded_freed")
    shares = (ratio(built, size), ratio(loaded, size))
    text = (f"`del` of a {size_text(size)} frame gave back {size_text(max(built, 0))} of RSS when "
            f"the frame was built in memory ({shares[0]:.0%}) and {size_text(max(loaded, 0))} when "
            f"it was read from Parquet ({shares[1]:.0%}: Arrow's pool keeps what it frees)")
    figures = {"frame": size, "built freed": built, "loaded freed": loaded}
    if all(s >= 0.8 for s in shares):
        return rule("holds", text, **figures)
    if all(s <= 0.2 for s in shares):
        return rule("does not hold", text, **figures)
    return rule("partly", text, **figures)


def _del_lowers_the_peak(e: Evidence) -> Ruling:
    before, after = e.value("leaky"), e.value("story_fix")
    small = frame_bytes(e.param("small_rows"), e.param("cols"))
    saving = before - after
    return banded(saving / small, holds=lambda s: s >= 0.5, fails=lambda s: s <= 0.1,
                  evidence=(f"the peak went from {size_text(before)} to {size_text(after)}: a "
                            f"saving of {size_text(max(saving, 0))}, at most the small frame's "
                            f"{size_text(small)} ({ratio(small, before):.0%} of the peak)"),
                  **{"leaky peak": before, "story_fix peak": after, "small frame": small})


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
        "when several big frames would be alive at once (the `all_at_once` row). Whether a "
        "`del` lowers RSS also depends on who allocated the memory: a numpy buffer goes back "
        "to the OS, while a frame read through Arrow returns its memory to Arrow's pool, which "
        "keeps it for the next read."
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
        Variant("del_returns", del_returns, "part", "RSS given back by `del`"),
    ),
    claims=(
        Claim("Two frames alive at the same time cost the sum of both.", _sum_of_both),
        Claim("`del df1` gives df1's memory back.", _del_gives_back),
        Claim("Deleting the first frame before making the second lowers the peak.", _del_lowers_the_peak),
        Claim("Frames made all at once before use cost all of them at the peak.",
              lambda e: budget_rule(e, "all_at_once")),
    ),
    flip={"leaky": "all_at_once"},
    imports=("numpy", "pandas", "pyarrow", "pyarrow.parquet"),
    helpers=(make_batch, summarise),
)
