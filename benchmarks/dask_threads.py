"""Verdicts and per-call figures of leakhunt on Dask with several threads per worker, run after run.

Run: python benchmarks/dask_threads.py [--threads 2 4] [--runs 3] [--partitions 120]

The blocks of tests/test_dask_threads.py (issue 23's pipelines, tests/dask_pipelines.py), each
watched ``--runs`` times on a ``LocalCluster`` of 2 worker processes per thread count:
``mixed`` (four prefixes computed together, ``leaky`` keeping 2 MiB per call beside a 20 MB
temporary, a group-by and a rolling mean), ``shuffled`` (the leak in front of a P2P shuffle)
and ``joined`` (a clean P2P hash join, a third of the partitions). For each run: the leak's
verdict and figure per call against the truth, the clean prefixes flagged (any verdict but
``ok``, ``warmup_or_bounded_cache`` and ``too_few_calls``), how many clean prefixes were
suspected and cleared when run alone, and the seconds the workers ran their tasks one at a time.
Accuracy, not speed: the seconds are what this machine took, not a benchmark.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # dask_pipelines, for the workers too

NOT_FLAGGED = {"ok", "warmup_or_bounded_cache", "too_few_calls"}
MiB = 1024 * 1024


def _row(threads: int, scenario: str, run: int, report: object, seconds: float) -> str:
    import dask_pipelines as P

    tasks = {t.prefix: t for t in report.tasks}  # type: ignore[attr-defined]
    leak = tasks.get(P.LEAKY)
    if leak is not None:
        figure = leak.retained_per_call
        error = f"{(figure / P.LEAK_BYTES - 1) * 100:+.0f} %" if figure else "-"
        leak_text = f"{leak.verdict} | {figure / MiB:+.2f} MiB | {error}" if figure else f"{leak.verdict} | n/a | -"
    else:
        leak_text = "(no leak here) | | "
    clean = [t for name, t in tasks.items() if name != P.LEAKY]
    flagged = [f"{t.prefix} {t.verdict}" for t in clean if t.verdict not in NOT_FLAGGED]
    cleared = sum(t.words == "ok (cleared when run alone)" for t in clean)
    isolated = sum(w.isolated_seconds or 0 for w in report.workers)  # type: ignore[attr-defined]
    return (f"| {threads} | {scenario} | {run} | {leak_text} | {', '.join(flagged) or 'none'} | {cleared} | "
            f"{isolated:.1f} | {seconds:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=120)
    args = parser.parse_args()
    import dask
    import dask_pipelines as P
    from distributed import Client, LocalCluster

    from leakhunt.dask import watch

    scenarios = {"mixed": (P.mixed, args.partitions), "shuffled": (P.shuffled, args.partitions),
                 "joined": (P.joined, max(20, args.partitions // 2))}
    print("| threads | block | run | leaky verdict | leaky per call | vs 2 MiB | clean prefixes flagged | "
          "cleared alone | isolated s | watched s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for threads in args.threads:
        with LocalCluster(n_workers=2, threads_per_worker=threads, processes=True, dashboard_address=":0",
                          silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
            dask.compute(*P.mixed(4), scheduler=client)
            for run in range(1, args.runs + 1):
                for scenario, (pipeline, n) in scenarios.items():
                    client.run(P.reset)
                    started = time.perf_counter()
                    with watch(client, paths=0) as w:
                        dask.compute(*pipeline(n), scheduler=client)
                    print(_row(threads, scenario, run, w.report, time.perf_counter() - started), flush=True)


if __name__ == "__main__":
    main()
