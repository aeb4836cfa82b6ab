"""Finished results waiting in the main process: normal operation, then the final drain."""

from __future__ import annotations

import time
import os
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from casebook.model import Case, Claim, Flip, Observed, Params, Ruling, Variant
from casebook.verdicts import Evidence, band_text, budget_rule, rule, size_text, speed_rule, within

# The story: 16 batches in flight on about as many workers, a main thread that keeps pace
# during normal operation ("no accumulation"), and a final stage where it fell behind (its
# flushes grew: 7.2 minutes a batch instead of 4). Here the same shape at half the scale: 8
# worker processes and 8 in flight (2 for Solution B, the story's quarter), each batch `work`
# seconds (give or take half), the main process `consume` seconds a result, half of what would
# keep it busy, and `drain_slowdown` times that in the final stage: three times slower than the
# workers there (the story's 7.2 minutes against 4 do not say how much room normal operation
# had). Times are long enough that a loaded machine's scheduling delays do not decide them.
_STORY = {"workers": 8, "cap": 8, "cap_b": 2, "tasks": 32, "work": 0.48, "consume": 0.03,
          "drain_slowdown": 6.0}
SIZES = {
    "warmup": {**_STORY, "tasks": 4, "result_bytes": 1024, "work": 0.01, "consume": 0.0},
    "test": {**_STORY, "result_bytes": 1_000_000},
    "small": {**_STORY, "result_bytes": 2_000_000},
    "medium": {**_STORY, "tasks": 64, "result_bytes": 4_000_000},
    "large": {**_STORY, "tasks": 128, "result_bytes": 8_000_000},
}


def transform(task: int, size: int, seconds: float) -> bytes:
    """A worker's job: a batch of products, here `size` bytes of them, after `seconds` of work
    (give or take half, so that batches finish apart)."""
    time.sleep(seconds * (0.5 + (task * 7 % 16) / 16))
    return bytes([task % 256]) * size


def transform_and_write(task: int, size: int, seconds: float, workdir: str) -> str:
    """The worker writes its own part file and returns only the path."""
    path = Path(workdir) / f"part-{task:05d}.bin"
    path.write_bytes(transform(task, size, seconds))
    return str(path)


class Writer:
    """The main process's share of each result (dedup and write): `consume` seconds. It counts
    the finished results not yet taken at each result it takes, in normal operation and in the
    final stage."""

    def __init__(self, p: Params) -> None:
        self.p = p
        self.written = 0
        self.stats = {"normal_waiting": 0, "drain_waiting": 0}

    def take(self, future: Future[Any], futures: dict[Future[Any], int], stage: str) -> None:
        waiting = sum(f.done() for f in futures)  # the result taken now is one of them
        self.stats[f"{stage}_waiting"] = max(self.stats[f"{stage}_waiting"], waiting)
        futures.pop(future)
        result = future.result()
        time.sleep(self.p["consume"] * (self.p["drain_slowdown"] if stage == "drain" else 1.0))
        self.written += len(result)

    def close(self) -> Observed:
        return Observed(self.written, **self.stats)


def _ready(_: int) -> int:
    time.sleep(0.05)  # long enough that every worker takes one
    return os.getpid()


@contextmanager
def pool(p: Params) -> Iterator[dict[str, Any]]:
    """A spawn pool whose workers are all running before anything is measured."""
    import multiprocessing

    executor = ProcessPoolExecutor(p["workers"], mp_context=multiprocessing.get_context("spawn"))
    try:
        pids: set[int] = set()
        for _ in range(50):  # until every worker has answered (spawning is slow under load)
            pids |= set(executor.map(_ready, range(2 * p["workers"])))
            if len(pids) == p["workers"]:
                break
        if len(pids) != p["workers"]:
            raise RuntimeError(f"result_queue: {len(pids)} of {p['workers']} workers answered")
        yield {"pool": executor}
    finally:
        executor.shutdown(wait=True)


def _run(p: Params, cap: int, job: Callable[[int], tuple[Any, ...]]) -> Observed:
    """The story's loop: at most `cap` in flight while submitting, then drain the rest."""
    writer = Writer(p)
    futures: dict[Future[Any], int] = {}
    for task in range(p["tasks"]):
        futures[p["pool"].submit(*job(task))] = task
        if len(futures) >= cap:
            writer.take(next(as_completed(futures)), futures, "normal")
    # "All batches submitted. Processing remaining in-flight batches..."
    for future in as_completed(list(futures)):
        writer.take(future, futures, "drain")
    return writer.close()


def _results(p: Params) -> Callable[[int], tuple[Any, ...]]:
    return lambda task: (transform, task, p["result_bytes"], p["work"])


def leaky(p: Params) -> Observed:
    """The story's code: a cap in flight, then the final drain with `as_completed`."""
    return _run(p, p["cap"], _results(p))


def story_fix(p: Params) -> Observed:
    """The story's Solution B: a quarter of the cap."""
    return _run(p, p["cap_b"], _results(p))


def uncapped(p: Params) -> Observed:
    """No cap: everything submitted at once, so the whole run is the final stage."""
    return _run(p, p["tasks"] + 1, _results(p))


def fixed(p: Params) -> Observed:
    """Workers write their own output; the main process only gathers paths (the same cap)."""
    return _run(p, p["cap"], lambda task: (transform_and_write, task, p["result_bytes"], p["work"], p["workdir"]))


def budget(p: Params) -> int:
    # What normal operation may hold: the result being taken, a few waiting (a consumer that
    # keeps pace has one to three) and one arriving.
    return 5 * p["result_bytes"]


def _count(e: Evidence, variant: str, figure: str) -> float:
    """A count of results, the median of the runs: exact in each run, it moves between runs as
    the scheduler decides which worker finishes first."""
    return e.value(variant, figure)


def _keeps_pace(e: Evidence) -> Ruling:
    waiting = _count(e, "leaky", "normal_waiting")
    return rule("holds" if waiting <= 3 else "does not hold",
                f"during normal operation at most {waiting:.0f} finished results waited to be taken "
                f"(the consumer takes {e.param('consume') * 1000:.0f} ms a result; "
                f"{e.param('workers')} workers finish one every "
                f"{e.param('work') / e.param('workers') * 1000:.0f} ms; a few is at most 3)",
                **{"normal waiting": waiting})


def _final_stage_piles_up(e: Evidence) -> Ruling:
    normal, drain = _count(e, "leaky", "normal_waiting"), _count(e, "leaky", "drain_waiting")
    return rule("holds" if drain >= normal + 2 else "does not hold",
                f"at most {normal:.0f} results waited during normal operation and {drain:.0f} in "
                f"the final stage, where the consumer took {e.param('drain_slowdown'):g} times as "
                f"long (piling up is two or more beyond normal)",
                **{"normal waiting": normal, "drain waiting": drain})


def _beyond_the_cap(e: Evidence) -> Ruling:
    peak, size, cap = e.band("leaky"), e.param("result_bytes"), e.param("cap")
    line = (cap + 2) * size
    return rule(within(peak, low=line),
                f"the main process peaked at {band_text(peak)} in all ({peak.value / size:.1f} "
                f"results' worth) against {size_text(line)} for the cap of {cap} and the two in "
                f"hand; at most {_count(e, 'leaky', 'drain_waiting'):.0f} results waited in the "
                f"final stage", **{"leaky peak": peak.value, "cap and two": line})


def _future_holds_result(e: Evidence) -> Ruling:
    peak, size = e.band("leaky"), e.param("result_bytes")
    waiting = max(_count(e, "leaky", "drain_waiting"), 1)
    share = peak.scaled(1 / (waiting * size))
    return rule(within(share, low=0.75),
                f"at most {waiting:.0f} finished results waited in the final stage, "
                f"{size_text(waiting * size)}; the main process peaked at {band_text(peak)} "
                f"({share.value:.0%} of that)", **{"leaky peak": peak.value, "waiting": waiting * size})


def _cap_b(e: Evidence) -> Ruling:
    """The most results waiting at once with each cap, counted."""
    most = {name: max(_count(e, name, "normal_waiting"), _count(e, name, "drain_waiting"))
            for name in ("leaky", "story_fix")}
    cut = 1 - most["story_fix"] / max(most["leaky"], 1)
    return rule("holds" if 0.6 <= cut <= 0.9 else "does not hold",
                f"at most {most['leaky']:.0f} results waited with {e.param('cap')} in flight and "
                f"{most['story_fix']:.0f} with {e.param('cap_b')}: {cut:.0%} fewer (about 75% is "
                f"60-90%)", **{"leaky waiting": most["leaky"], "story_fix waiting": most["story_fix"]})


CASE = Case(
    name="result_queue",
    title="Finished results waiting in the final drain",
    story="transform_pipeline",
    summary=(
        "The same pipeline ran its transform in a process pool with at most 16 batches in "
        "flight. In normal operation, its analysis says, the main thread kept pace and nothing accumulated; in the "
        "final stage, once every batch was submitted, the cap was said to apply no more: the last "
        "batches finished together and their results queued while the main thread handled one "
        "at a time. It proposed a cap of 4 (Solution B), at a cost of 50-70% of the speed."
    ),
    lesson=(
        "A finished future keeps its result until it is taken, and the cap on work in flight "
        "bounds those results in the final drain as before it: it keeps applying. Results pile "
        "up in the final stage only when the consumer falls behind there (the story's flushes "
        "grew), and never beyond the cap. A smaller cap lowers that bound but idles workers; "
        "better, let each worker write its own output and return only a path: nothing big "
        "crosses to the main process at all."
    ),
    metric="peak",
    sizes=SIZES,
    budget=budget,
    context=pool,
    # Its workers compete for the cores: it runs alone.
    exclusive=True,
    # The sleep-timed runs' wall time moved by under 5% between invocations
    # (benchmarks/casebook_stability.md).
    time_spread=0.05,
    variants=(
        # Workers finish at moments the scheduler decides: these peaks moved by 6.1% and 21.1%
        # between invocations (benchmarks/casebook_stability.md).
        Variant("leaky", leaky, "leaky", "8 in flight, then the final drain", spread=0.1),
        Variant("story_fix", story_fix, "story_fix", "Solution B: a quarter of that in flight", spread=0.25),
        Variant("fixed", fixed, "fixed", "workers write their output, 8 in flight"),
        Variant("uncapped", uncapped, "flip", "no cap: everything submitted at once"),
    ),
    claims=(
        Claim("During normal operation, with the cap on work in flight, result processing keeps "
              "pace: nothing accumulates.", _keeps_pace, section="Part 2, Problem 1",
              # The rule reads normal operation only: the flip's final stage is not made six
              # times slower again (1.8 s a result, 14 s of the test size's measurement).
              flip=Flip("a consumer ten times slower", params={"consume": 0.3, "drain_slowdown": 1.0})),
        Claim("In the final stage results queue up while the main thread handles one at a time.",
              _final_stage_piles_up, section="Part 2, Problem 1; Part 3",
              flip=Flip("a consumer as fast in the final stage as before", params={"drain_slowdown": 1.0})),
        Claim("With nothing left to submit, the cap no longer applies: results pile up beyond it.", _beyond_the_cap, section="Part 2, Problem 1; Part 5, Fix 1; Part 4, Factor A",
              flip=Flip("no cap at all", variants={"leaky": "uncapped"})),
        Claim("A finished future keeps its result in memory until it is taken.", _future_holds_result,
              section="Part 4, Factor B",
              flip=Flip("workers that write their output and return a path", variants={"leaky": "fixed"})),
        Claim("Lowering the cap to a quarter (16 to 4, Solution B) cuts the queued results by about "
              "75%.",
              _cap_b, section="Part 8, Solution B",
              flip=Flip("a consumer as fast in the final stage as before", params={"drain_slowdown": 1.0})),
        Claim("Solution B makes the run 50-70% slower, no more.",
              lambda e: speed_rule(e, "story_fix", "leaky", high=1.7, clock="wall"),
              section="Part 8, Solution B",
              flip=Flip("workers ten times faster", params={"work": 0.048})),
        Claim("Workers that write their own output and return a path keep the results out of the "
              "main process.", lambda e: budget_rule(e, "fixed", holds_if="keeps"), origin="casebook",
              section="Part 7, requirement 1",
              flip=Flip("the story's loop in its place", variants={"fixed": "leaky"})),
    ),
    flip={"fixed": "leaky"},
    imports=("numpy", "pandas", "concurrent.futures"),
    helpers=(transform, transform_and_write, Writer, _run),
)
