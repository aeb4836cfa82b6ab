"""Wall-time overhead of leakhunt's Dask worker plugin on a dataframe computation.

Run: python benchmarks/dask_overhead.py [--days 200] [--rounds 3] [--threads 1]   (prints the table of benchmarks/dask.md)
     python benchmarks/dask_overhead.py --per-task   (the plugin's own code per task, and a result's walk; no cluster)

One ``LocalCluster`` of 2 worker processes (``--threads`` each: 1 by default; with more, a
prefix suspected from shared figures is confirmed on calls run alone, which the block's cost
includes: the table says how long the workers ran one task at a time). The computation is a
``dask.datasets.timeseries`` frame (one partition a day, 86,400 rows each): group-by means, a
filtered aggregation, a per-partition rolling mean and a shuffle by key, computed together.
Each round runs it plain and under ``watch(client)``, alternating which goes first, and the
median ratio is reported. ``watched`` is the whole ``with watch(...)`` block (registering the
plugin, every task measured, the end-of-block census and survivors); ``inside`` is the
computation alone inside the block (the per-task cost). The machine may be shared: the workers'
own CPU time (user + system, summed over both worker processes) is printed beside the wall
times, and is the steadier figure under load.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time

import dask
import dask.datasets
import pandas as pd
from distributed import Client, LocalCluster

from leakhunt.dask import watch


def computation(days: int) -> tuple[object, ...]:
    end = (pd.Timestamp("2000-01-01") + pd.Timedelta(days=days)).strftime("%Y-%m-%d")
    df = dask.datasets.timeseries(start="2000-01-01", end=end, freq="1s", partition_freq="1D", seed=1)
    by_name = df.groupby("name").x.mean()
    positive = df[df.y > 0].groupby("id").agg({"x": "sum", "y": "max"})
    rolling = df.x.map_partitions(lambda s: s.rolling(60).mean().sum())
    shuffled = df.shuffle("id").groupby("id").x.count()
    return by_name, positive, rolling, shuffled


def _cpu() -> float:
    user, system = os.times()[:2]
    return user + system


def workers_cpu(client: Client) -> float:
    """CPU seconds the worker processes have used so far."""
    return sum(client.run(_cpu).values())


def run_once(client: Client, days: int) -> float:
    started = time.perf_counter()
    results = client.compute(computation(days), sync=True)
    assert len(results) == 4
    return time.perf_counter() - started


def per_task_cost(n: int = 20_000) -> float:
    """Seconds of the plugin's own code per task (its start and end), on a stand-in worker."""
    from types import SimpleNamespace

    from leakhunt.dask import LeakhuntPlugin

    plugin = LeakhuntPlugin(threshold=1 << 20)
    plugin.worker = SimpleNamespace(state=SimpleNamespace(nbytes=0, nthreads=1, tasks={}, long_running=set()),
                                    data={}, plugins={})
    plugin._last_unmanaged, plugin._last_arrow = plugin._reading()
    started = time.perf_counter()
    for i in range(n):
        key = ("groupby-chunk-5f1e6d", i)
        plugin.transition(key, "ready", "executing")
        plugin.transition(key, "executing", "memory")
    return (time.perf_counter() - started) / n


def walk_cost(n: int = 2_000) -> float:
    """Seconds to count a pandas frame of three columns (100,000 rows) by its buffers, as the
    plugin does for each result of 64 KiB or more (leakhunt.dask._ledger.DataLedger)."""
    import numpy as np
    import pandas as pd

    from leakhunt.dask._ledger import DataLedger

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"k": rng.integers(0, 10, 100_000), "x": rng.random(100_000),
                          "name": pd.array(rng.choice(["a", "b"], 100_000), dtype="string[pyarrow]")})
    ledger = DataLedger()
    started = time.perf_counter()
    for i in range(n):
        ledger.add(i, frame, 4 << 20)
        ledger.remove(i)
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=200,
                        help="partitions (days of data); 200 take about a minute here (100 did under load)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (Dask's default is several)")
    parser.add_argument("--per-task", action="store_true", help="only time the plugin's own code per task")
    args = parser.parse_args()
    if args.per_task:
        costs = sorted(per_task_cost() for _ in range(5))
        print(f"plugin code per task (start + end), median of 5 x 20,000: {costs[2] * 1e6:.1f} us")
        walks = sorted(walk_cost() for _ in range(5))
        print(f"counting a 3-column frame of 100,000 rows by its buffers, median of 5 x 2,000: {walks[2] * 1e6:.1f} us")
        return
    with LocalCluster(n_workers=2, threads_per_worker=args.threads, processes=True, dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        run_once(client, min(args.days, 10))  # warm up imports on the workers
        plain, watched, inside, tasks, report = [], [], [], 0, None
        isolated: list[float] = []  # seconds the workers ran one task at a time (confirmations)
        enter: list[float] = []  # registering the plugin (a heap pass on each worker)
        leave: list[float] = []  # collecting: settle, census and survivors on each worker
        cpu: dict[str, list[float]] = {"plain": [], "watched": []}
        for r in range(args.rounds):
            for mode in (("plain", "watched") if r % 2 == 0 else ("watched", "plain")):
                cpu_before = workers_cpu(client)
                if mode == "plain":
                    plain.append(run_once(client, args.days))
                    cpu["plain"].append(workers_cpu(client) - cpu_before)
                    continue
                started = time.perf_counter()
                with watch(client) as w:
                    entered = time.perf_counter()
                    inside.append(run_once(client, args.days))
                    ending = time.perf_counter()
                watched.append(time.perf_counter() - started)
                enter.append(entered - started)
                leave.append(time.perf_counter() - ending)
                cpu["watched"].append(workers_cpu(client) - cpu_before)
                tasks = sum(t.calls for t in w.report.tasks)
                report = w.report
                isolated.append(sum(x.isolated_seconds or 0 for x in report.workers))
        ratios = [w_ / p for w_, p in zip(watched, plain)]
        inner = [i / p for i, p in zip(inside, plain)]
        print(f"{args.days} partitions, {tasks} tasks per run, 2 workers x {args.threads} thread"
              f"{'s' if args.threads > 1 else ''}, {args.rounds} rounds")
        cpu_ratios = [w_ / p for w_, p in zip(cpu["watched"], cpu["plain"])]
        print("| round | plain s | watched s | inside s | watched/plain | inside/plain | workers' CPU plain s | watched s | CPU watched/plain |")
        print("|---|---|---|---|---|---|---|---|---|")
        for i, (p, w_, n, cp, cw) in enumerate(zip(plain, watched, inside, cpu["plain"], cpu["watched"]), 1):
            print(f"| {i} | {p:.1f} | {w_:.1f} | {n:.1f} | {w_ / p:.3f} | {n / p:.3f} | {cp:.1f} | {cw:.1f} | {cw / cp:.3f} |")
        med = statistics.median
        print(f"| median | {med(plain):.1f} | {med(watched):.1f} | {med(inside):.1f} | {med(ratios):.3f} | "
              f"{med(inner):.3f} | {med(cpu['plain']):.1f} | {med(cpu['watched']):.1f} | {med(cpu_ratios):.3f} |")
        assert report is not None
        settled = sum(row["settled_calls"] for t in report.tasks for row in t.workers)
        verdicts = ", ".join(f"{t.prefix} {t.verdict}" for t in report.tasks)
        print(f"\nentering the block: median {med(enter):.1f} s; leaving it (settle, census, survivors on every "
              f"worker): median {med(leave):.1f} s")
        print(f"last watched run: {settled} of {tasks} tasks measured settled (confirmation windows); "
              f"verdicts: {verdicts}")
        if args.threads > 1:
            print(f"workers ran one task at a time (confirmations) for {', '.join(f'{s:.1f}' for s in isolated)} s "
                  f"in the watched runs")


if __name__ == "__main__":
    main()
