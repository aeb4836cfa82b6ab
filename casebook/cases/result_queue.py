"""A process pool's results waiting in the main process: the story's capped final drain."""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from casebook.model import Case, Claim, Params, Ruling, Variant
from casebook.verdicts import Evidence, budget_rule, share_rule, size_text

# The story capped work in flight at 16, on ~16 workers, and proposed 4 (Solution B). Here one
# worker process, far faster than the main process (50 ms per result): finished results wait
# in the main process as they did in the story's final stage, even on a loaded machine. (Each
# worker holds a result and its pickle while sending it: with more workers those copies, the
# same for every cap, would blur the difference the cap makes.)
SIZES = {
    "warmup": {"tasks": 4, "result_bytes": 1024, "workers": 1, "cap": 2, "cap_b": 1,
               "consume_seconds": 0.0},
    "test": {"tasks": 40, "result_bytes": 2_000_000, "workers": 1, "cap": 16, "cap_b": 4,
             "consume_seconds": 0.05},
    "small": {"tasks": 40, "result_bytes": 2_000_000, "workers": 1, "cap": 16, "cap_b": 4,
              "consume_seconds": 0.05},
    "medium": {"tasks": 80, "result_bytes": 4_000_000, "workers": 1, "cap": 16, "cap_b": 4,
               "consume_seconds": 0.05},
    "large": {"tasks": 160, "result_bytes": 8_000_000, "workers": 1, "cap": 16, "cap_b": 4,
              "consume_seconds": 0.05},
}


def transform(task: int, size: int) -> bytes:
    """A worker's job: a batch of products, here `size` bytes of them."""
    return bytes([task % 256]) * size


def transform_and_write(task: int, size: int, workdir: str) -> str:
    """The worker writes its own part file and returns only the path."""
    path = Path(workdir) / f"part-{task:05d}.bin"
    path.write_bytes(transform(task, size))
    return str(path)


def consume(result: Any, seconds: float) -> int:
    """The main process's share of each result (dedup and write): slower than a worker."""
    time.sleep(seconds)
    return len(result)


def _ready(_: int) -> int:
    time.sleep(0.05)  # long enough that every worker takes one
    return os.getpid()


@contextmanager
def pool(p: Params) -> Iterator[dict[str, Any]]:
    """A spawn pool whose workers are all running before anything is measured.

    Workers are counted from the moment they run the pool's code: a process caught between
    fork and exec would read as a copy of this one.
    """
    import multiprocessing

    executor = ProcessPoolExecutor(p["workers"], mp_context=multiprocessing.get_context("spawn"))
    try:
        pids = set(executor.map(_ready, range(4 * p["workers"])))  # every worker answers
        if len(pids) != p["workers"]:
            raise RuntimeError(f"result_queue: {len(pids)} of {p['workers']} workers answered")
        yield {"pool": executor, "worker_pids": sorted(pids)}
    finally:
        executor.shutdown(wait=True)


def _capped(p: Params, cap: int, submit: Callable[[int], Future[Any]]) -> int:
    """The story's loop: at most `cap` in flight while submitting, then drain the rest."""
    written = 0
    futures: dict[Future[Any], int] = {}
    for task in range(p["tasks"]):
        futures[submit(task)] = task
        if len(futures) >= cap:
            done = next(as_completed(futures))
            futures.pop(done)
            written += consume(done.result(), p["consume_seconds"])
    # "All batches submitted. Processing remaining in-flight batches..."
    for future in as_completed(futures):
        futures.pop(future)
        written += consume(future.result(), p["consume_seconds"])
    return written


def leaky(p: Params) -> int:
    """The story's code: a cap of 16 in flight, then the final drain with `as_completed`."""
    return _capped(p, p["cap"], lambda t: p["pool"].submit(transform, t, p["result_bytes"]))


def story_fix(p: Params) -> int:
    """The story's Solution B: a cap of 4."""
    return _capped(p, p["cap_b"], lambda t: p["pool"].submit(transform, t, p["result_bytes"]))


def uncapped(p: Params) -> int:
    """No cap at all: submit everything, then consume in completion order."""
    futures = [p["pool"].submit(transform, t, p["result_bytes"]) for t in range(p["tasks"])]
    written = 0
    for future in as_completed(futures):
        written += consume(future.result(), p["consume_seconds"])
    return written


def fixed(p: Params) -> int:
    """Workers write their own output; the main process only gathers paths (same cap of 16)."""
    submit = lambda t: p["pool"].submit(transform_and_write, t, p["result_bytes"], p["workdir"])  # noqa: E731
    return _capped(p, p["cap"], submit)


def budget(p: Params) -> int:
    # Twelve results: Solution B's four fit, with the results in transit and the worker's own
    # copies; the story's sixteen do not.
    return 12 * p["result_bytes"]


def _cap_stops_applying(e: Evidence) -> Ruling:
    p = e.params()
    return share_rule(
        e, "leaky", "uncapped", holds=lambda s: s >= 0.8, fails=lambda s: s <= 0.6,
        says=lambda capped, free, share: (
            f"with the cap of {p['cap']} the peak was {size_text(capped)} ({p['cap']} results are "
            f"{size_text(p['cap'] * p['result_bytes'])}); with no cap, {size_text(free)} for "
            f"{p['tasks']} tasks ({share:.0%})"),
    )


def _solution_b(e: Evidence) -> Ruling:
    p = e.params()
    return share_rule(
        # Results in transit and the worker's own copies do not shrink with the cap: a cut of
        # half or more counts as "about 75%" of the queue.
        e, "story_fix", "leaky", holds=lambda s: 0.15 <= s <= 0.5, fails=lambda s: s > 0.75,
        says=lambda four, sixteen, share: (
            f"a cap of {p['cap_b']} peaked at {size_text(four)}, a cap of {p['cap']} at "
            f"{size_text(sixteen)}: {1 - share:.0%} less"),
    )


CASE = Case(
    name="result_queue",
    title="Process-pool results queueing in the final drain",
    story="transform_pipeline",
    summary=(
        "The same pipeline ran its transform in a process pool with at most 16 batches in "
        "flight. Its analysis said that in the final stage, once all batches were submitted, "
        "the cap no longer applied: the last batches finished together and their results "
        "queued in the main process, which could handle only one at a time. It proposed a cap "
        "of 4 instead of 16 (Solution B)."
    ),
    lesson=(
        "A finished future keeps its result until it is taken, so the results waiting in the "
        "main process are bounded by the work in flight, in the final drain as before it: the "
        "cap keeps applying. Lowering the cap lowers the bound. Better still, let each worker "
        "write its own output and return only a path: then nothing big crosses to the main "
        "process at all. The figures include the worker's memory (its PSS above its level "
        "before the call)."
    ),
    metric="peak",
    sizes=SIZES,
    budget=budget,
    context=pool,
    children=True,
    exclusive=True,
    variants=(
        Variant("leaky", leaky, "leaky", "a cap of 16, then the final drain"),
        Variant("story_fix", story_fix, "story_fix", "Solution B: a cap of 4"),
        Variant("fixed", fixed, "fixed", "workers write their output, a cap of 16"),
        Variant("uncapped", uncapped, "part", "no cap: submit everything first"),
    ),
    claims=(
        Claim("A finished future keeps its result in memory until it is taken, so results "
              "waiting in the main process pile up.",
              lambda e: budget_rule(e, "uncapped")),
        Claim("In the final stage, with nothing left to submit, the cap no longer applies and "
              "results pile up beyond it.", _cap_stops_applying),
        Claim("Lowering the cap from 16 to 4 (Solution B) cuts the queued results by about 75%.",
              _solution_b),
    ),
    flip={"story_fix": "uncapped"},
    imports=("numpy", "pandas", "concurrent.futures"),
    helpers=(transform, consume, transform_and_write),
)
