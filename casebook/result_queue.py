"""A process pool whose results pile up once everything has been submitted."""

from __future__ import annotations

import time
from typing import Any

from casebook._case import Case, Params
from casebook.row_buffer import SOURCE

# Many modest results: the pile is what grows, not any one result.
SIZES = {
    "warmup": {"tasks": 4, "result_bytes": 1024, "workers": 2, "in_flight": 2,
               "busy_seconds": 0.0, "consume_seconds": 0.0},
    "small": {"tasks": 200, "result_bytes": 1_000_000, "workers": 2, "in_flight": 2,
              "busy_seconds": 3.0, "consume_seconds": 0.002},
    "medium": {"tasks": 400, "result_bytes": 2_000_000, "workers": 2, "in_flight": 2,
               "busy_seconds": 5.0, "consume_seconds": 0.002},
    "large": {"tasks": 800, "result_bytes": 4_000_000, "workers": 2, "in_flight": 2,
              "busy_seconds": 20.0, "consume_seconds": 0.002},
}


def transform(task: int, size: int) -> bytes:
    """A worker's job: a batch of products, here `size` bytes of them."""
    return bytes([task % 256]) * size


def finish_flush(seconds: float) -> None:
    """The main process is busy elsewhere (the story: flushing the writer) for a while."""
    time.sleep(seconds)


def consume(result: bytes, seconds: float) -> int:
    """The main process's share of each result: dedup and write."""
    time.sleep(seconds)
    return len(result)


def _pool(workers: int) -> Any:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: workers import only this module, so their memory is their own work, not a
    # copy-on-write share of whatever the parent had loaded. It is also what macOS and
    # Windows do by default.
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def leaky(p: Params) -> int:
    """Submit everything, then consume in completion order: done results wait in memory."""
    from concurrent.futures import as_completed

    written = 0
    with _pool(p["workers"]) as pool:
        futures = {pool.submit(transform, t, p["result_bytes"]): t for t in range(p["tasks"])}
        finish_flush(p["busy_seconds"])  # meanwhile every worker finishes and reports
        for future in as_completed(futures):
            del futures[future]
            written += consume(future.result(), p["consume_seconds"])
    return written


def fixed(p: Params) -> int:
    """Backpressure: at most `in_flight` tasks are submitted and not yet consumed."""
    from concurrent.futures import FIRST_COMPLETED, wait

    written = 0
    tasks = iter(range(p["tasks"]))
    with _pool(p["workers"]) as pool:
        pending = set()
        busy = True
        while True:
            for task in tasks:
                pending.add(pool.submit(transform, task, p["result_bytes"]))
                if len(pending) >= p["in_flight"]:
                    break
            if not pending:
                break
            if busy:
                finish_flush(p["busy_seconds"])  # the same busy spell: only a few results wait
                busy = False
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                written += consume(future.result(), p["consume_seconds"])
            del done
    return written


def budget(p: Params) -> dict[str, int]:
    # Room for the in-flight results several times over and the workers themselves (two
    # small interpreters); the leak holds every result.
    return {"peak": 4 * p["in_flight"] * p["result_bytes"] + 48 * 1024 * 1024}


CASE = Case(
    name="result_queue",
    title="Process-pool results queueing without backpressure",
    source=SOURCE,
    story=(
        "The same pipeline ran its transform in a process pool and capped the work in flight "
        "at 16 batches, but only while there was input left to submit. In the final stage "
        "all remaining batches were running at once, they finished close together, and the "
        "main process could consume only one result at a time. The rest waited in memory. "
        "Here the main process is busy for a fixed spell right after submitting (`finish_flush`, "
        "standing in for the story's writer flush), in both versions."
    ),
    claim=(
        "A finished future keeps its result until someone takes it, so when workers are "
        "faster than the consumer, results pile up in the main process; bounding the work "
        "in flight bounds the pile."
    ),
    metric="peak",
    sizes=SIZES,
    leaky=leaky,
    fixed=fixed,
    budget=budget,
    children=True,
    lesson=(
        "Keep the bound for the whole run, including the end: submit a new task only when a "
        "result has been consumed (`wait(..., return_when=FIRST_COMPLETED)`). The peak is "
        "then the in-flight results, whatever the input size. The figures include the "
        "workers' memory (PSS of the child processes)."
    ),
    imports=("numpy", "pandas", "concurrent.futures"),
    helpers=(transform, consume),
)
