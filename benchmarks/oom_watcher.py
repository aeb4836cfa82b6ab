"""What the OOM guard costs: its watcher's CPU share, and what one diagnosis takes.

    python benchmarks/oom_watcher.py                   # the figures docs/oom.md quotes
    python benchmarks/oom_watcher.py --seconds 1 --rounds 1 --heaps 10000   # a quick look

Run it alone on a quiet machine: two benchmarks at once on two cores measure nothing.

1. **The watcher** (``leakhunt.oom.OomGuard`` at its default 10 ms interval, a threshold never
   reached): the CPU time of its thread (``time.thread_time`` inside it, as
   ``OomGuard.cpu_seconds`` reports it) over the wall time, while the main thread sleeps and
   while it runs a pure-Python loop that holds the GIL (the worst case for a sampling thread),
   for each figure a limit can apply to here: resident memory (``/proc/self/statm``), the
   machine's memory in use (``/proc/meminfo``), and the cgroup's usage where this process has a
   memory cgroup limit. Beside it, the loop's own wall time with and without a guard, in
   alternating rounds (medians): what the job pays.
2. **A diagnosis**, taken on heaps of N small lists plus 20 arrays of 10 MiB held in a list:
   its seconds, what is alive and the split apart (the guarded thread is held for both; the
   first is written before the second starts) and how much the resident memory rose
   while it ran (the room a threshold must leave below the limit), read with the kernel's
   high-water mark reset (``leakhunt.probes.PeakWindow``).
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time

MiB = 1024 * 1024


def _busy(until: float) -> int:
    n = 0
    while time.perf_counter() < until:
        n += sum(range(200))
    return n


def _loop(iterations: int) -> float:
    started = time.perf_counter()
    total = 0
    for i in range(iterations):
        total += i % 7
    return time.perf_counter() - started


def watcher_share(limit: object, seconds: float, busy: bool) -> tuple[float, int]:
    """(watcher CPU / wall, samples) for one guard on ``limit`` over ``seconds``."""
    from leakhunt.oom import OomGuard

    guard = OomGuard("99%", found=limit, report=None, stderr=None, hold=False)  # type: ignore[arg-type]
    guard.start()
    started = time.perf_counter()
    if busy:
        _busy(started + seconds)
    else:
        time.sleep(seconds)
    guard.stop()
    wall = time.perf_counter() - started
    return guard.cpu_seconds / wall, guard.samples


def limits() -> list[tuple[str, object]]:
    from leakhunt.oom import Limit, cgroup_limit
    from leakhunt.oom._limits import machine_limit

    out: list[tuple[str, object]] = [("rss (/proc/self/statm)", Limit(value=1 << 50, source="benchmark", figure="rss"))]
    machine = machine_limit()
    if machine is not None:
        out.append(("machine memory in use (/proc/meminfo)", machine))
    group = cgroup_limit()
    if group is not None:
        out.append((f"cgroup usage ({group.source})", group))
    return out


def section_watcher(seconds: float, rounds: int) -> None:
    print(f"## The watcher (interval 10 ms, {seconds:g} s per run, median of {rounds} runs)\n")
    print("| figure | main thread | watcher CPU / wall | samples per second |")
    print("|---|---|---:|---:|")
    for name, limit in limits():
        for busy in (False, True):
            runs = [watcher_share(limit, seconds, busy) for _ in range(rounds)]
            share = statistics.median(r[0] for r in runs)
            rate = statistics.median(r[1] for r in runs) / seconds
            print(f"| {name} | {'pure-Python loop' if busy else 'asleep'} | {share * 100:.2f}% | {rate:.0f} |")
    print()


def section_job(iterations: int, rounds: int) -> None:
    from leakhunt.oom import Limit, OomGuard

    limit = Limit(value=1 << 50, source="benchmark", figure="rss")
    alone, guarded = [], []
    _loop(iterations)  # warm-up
    for _ in range(rounds):
        alone.append(_loop(iterations))
        guard = OomGuard("99%", found=limit, report=None, stderr=None)
        guard.start()
        guarded.append(_loop(iterations))
        guard.stop()
    a, g = statistics.median(alone), statistics.median(guarded)
    print(f"## What the job pays: a pure-Python loop of {iterations:,} iterations, {rounds} alternating rounds\n")
    print("| alone (median) | beside a guard (median) | difference | best alone | best beside |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {a:.3f} s | {g:.3f} s | {(g / a - 1) * 100:+.1f}% | {min(alone):.3f} s | {min(guarded):.3f} s |")
    print()


def section_diagnosis(heaps: list[int]) -> None:
    import numpy as np

    from leakhunt.oom import Limit
    from leakhunt.oom._diagnosis import alive, figures, split
    from leakhunt.probes import PeakWindow
    from leakhunt.units import format_size

    limit = Limit(value=1 << 50, source="benchmark", figure="rss")
    print("## One diagnosis (not tracing): 20 arrays of 10 MiB in a list, and N small lists\n")
    print("| small lists | gc objects | what is alive (s) | the split (s) | resident memory added while it ran "
          "| roots found |")
    print("|---:|---:|---:|---:|---:|---:|")
    held = [np.ones(10 * MiB // 8) for _ in range(20)]
    for n in heaps:
        small = [[i, str(i)] for i in range(n)]  # lists: tracked by the gc, as most of a real heap is
        gc.collect()
        objects = len(gc.get_objects())
        window = PeakWindow().open()
        started = time.perf_counter()
        diagnosis = alive(figures(number=1, at=time.time(), elapsed=0.0, limit=limit, threshold=limit.value,
                                  threshold_text="benchmark", value=0))
        roots_seconds = time.perf_counter() - started
        diagnosis = split(diagnosis)
        split_seconds = time.perf_counter() - started - roots_seconds
        window.close()
        added = None if window.peak is None or window.start is None else window.peak - window.start
        print(f"| {n:,} | {objects:,} | {roots_seconds:.2f} | {split_seconds:.2f} | {format_size(added)} "
              f"| {len(diagnosis.roots)} |")
        del small, diagnosis
    del held
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each watcher run (default 10)")
    parser.add_argument("--rounds", type=int, default=5, help="runs per figure, and job rounds (default 5)")
    parser.add_argument("--iterations", type=int, default=20_000_000, help="the job loop's iterations")
    parser.add_argument("--heaps", type=lambda s: [int(x) for x in s.split(",")], default=[100_000, 1_000_000],
                        help="numbers of small lists for the diagnosis, comma-separated")
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        print("oom_watcher.py: Linux only (/proc)", file=sys.stderr)
        return 2
    import leakhunt

    print(f"# The OOM guard's cost: `python benchmarks/oom_watcher.py {' '.join(argv or sys.argv[1:])}`".rstrip()
          + "\n")
    print(f"Python {platform.python_version()}, leakhunt {leakhunt.__version__}, {platform.platform()}\n")
    section_watcher(args.seconds, args.rounds)
    section_job(args.iterations, args.rounds)
    section_diagnosis(args.heaps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
