"""What the engine costs: measure(), settle(), readings, peak windows, why_alive, biggest_buffers.

    python benchmarks/engine.py > benchmarks/engine.md

Every operation is timed with pandas imported, on two heaps: the one pandas leaves (tens of
thousands of gc-tracked objects) and the same grown to about one million gc-tracked objects, as
in a long data job or a big test session. Each figure is the median of several runs; cheap
operations are timed in loops and reported per call. Prints a Markdown table stamped with the
date, the machine and the library versions.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, too

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import leakhunt  # noqa: E402
from leakhunt import hunt, measure, memory_budget, probes, settle, why_alive  # noqa: E402
from leakhunt.attribution import survivors  # noqa: E402
from leakhunt.retention import biggest_buffers  # noqa: E402

RUNS = 7
HOLD: list[Any] = []  # the retention story why_alive is asked about
HEAP: list[Any] = []  # the big heap


def timed(fn: Callable[[], object], loops: int, runs: int = RUNS) -> tuple[float, float]:
    """Median (wall, CPU) seconds per call over ``runs`` runs of ``loops`` calls each.

    CPU time (this process) is printed too: on a shared machine it moves less than wall time.
    """
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(loops):
            fn()
        wall.append((time.perf_counter() - start) / loops)
        cpu.append((time.process_time() - start_cpu) / loops)
    return statistics.median(wall), statistics.median(cpu)


def measure_enter_exit(settle_: bool) -> Callable[[], None]:
    def run() -> None:
        with measure(settle=settle_):
            pass

    return run


def budget_block() -> None:
    with memory_budget(rss="1 GB"):  # passes: the cost of the check alone
        pass


def peak_window() -> None:
    with probes.PeakWindow():
        pass


def settle_frozen() -> None:
    # What hunt() does between calls: the heap that existed before is frozen, so a collection
    # walks only what the calls made.
    gc.freeze()
    try:
        settle()
    finally:
        gc.unfreeze()


def target() -> Any:
    return HOLD[0]._mgr.blocks[0].values.base  # the 10 MB buffer behind a 1-row slice


def why() -> None:
    result = why_alive(target())
    assert "HOLD (global in __main__)" in str(result), str(result)


def biggest() -> None:
    found = biggest_buffers(min_size=1 << 20)
    assert found and found[0][1] >= 10_000_000


def grouped() -> None:
    found = survivors()
    assert any(r.root == "HOLD (global in __main__)" for r in found.roots), found


def noop() -> None:
    pass


OPERATIONS: list[tuple[str, Callable[[], object], int, int]] = [
    # (label, function, loops on the pandas heap, loops on the 1 M heap)
    ("`probes.rss()` (statm)", probes.rss, 2000, 2000),
    ("`probes.read()` (every cheap figure)", probes.read, 2000, 2000),
    ("`PeakWindow` open + close", peak_window, 1000, 1000),
    ("`measure(settle=False)` enter + exit", measure_enter_exit(False), 500, 500),
    ("`settle()`", settle, 10, 3),
    ("`settle()`, pre-existing heap frozen (as `hunt` does)", settle_frozen, 10, 3),
    ("`measure()` enter + exit (settles twice)", measure_enter_exit(True), 10, 2),
    ("`memory_budget(rss=...)` block, passing (settles twice, traces the block)", budget_block, 5, 1),
    ("`hunt(noop)` (3 warm-up + 10 measured calls)", lambda: hunt(noop), 2, 1),
    ("`why_alive(buffer)` (1-row slice of a 10 MB frame)", why, 1, 1),
    ("`biggest_buffers()`", biggest, 1, 1),
    ("`survivors()` (every buffer alive, grouped by root)", grouped, 1, 1),
]


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def run_all(column: int) -> list[tuple[float, float]]:
    return [timed(fn, loops[column]) for _, fn, *loops in OPERATIONS]


def main() -> None:
    frame = pd.DataFrame(np.ones((125_000, 10)))  # 10 MB
    HOLD.append(frame.iloc[:1])
    del frame
    settle()
    small_heap = len(gc.get_objects())
    small = run_all(0)

    # Grow the heap to about a million gc-tracked objects: a dict and a list per record.
    HEAP.extend({"row": [i]} for i in range((1_000_000 - small_heap) // 2))
    settle()
    big_heap = len(gc.get_objects())
    big = run_all(1)

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print("# Engine benchmark")
    print()
    print(f"{now}; Python {platform.python_version()}, leakhunt {leakhunt.__version__}, "
          f"numpy {np.__version__}, pandas {pd.__version__}, "
          f"pyarrow {sys.modules['pyarrow'].__version__ if 'pyarrow' in sys.modules else 'not imported'}; "
          f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs, load average {load:.1f} at start.")
    print()
    print(f"Median of {RUNS} runs, wall time (CPU time of this process in brackets); cheap operations "
          f"timed in loops, per call. Produced by `python benchmarks/engine.py`.")
    print()
    print(f"| operation | pandas imported ({small_heap:,} gc objects) | ~1 M heap ({big_heap:,} gc objects) |")
    print("|---|---:|---:|")
    for (label, *_), a, b in zip(OPERATIONS, small, big):
        print(f"| {label} | {fmt(a[0])} ({fmt(a[1])}) | {fmt(b[0])} ({fmt(b[1])}) |")


if __name__ == "__main__":
    main()
