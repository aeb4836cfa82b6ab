"""Which attribution of memory to concurrent tasks works? Measured on issue 23's pipeline.

Run: python benchmarks/dask_attribution.py [--threads 2 4] [--partitions 120] [--runs 2]

With several threads per Dask worker, tasks run at once in one process, and the process's
memory says nothing of which task allocated what. This script records, on every worker, each
task's start and end with the worker's unmanaged memory at that moment (a small recorder
plugin, no leakhunt hunting), then attributes the growth to task prefixes in several ways and
prints each prefix's figure per call beside the truth (tests/dask_pipelines.py: ``leaky`` keeps
2 MiB per call, nothing else keeps anything):

- ``sizeof/equal``: unmanaged = resident minus Dask's ``sizeof`` of its data; the growth between
  two task events shared equally among the tasks running then (leakhunt before issue 23);
- ``bytes/equal``: the same with Dask's data counted by real buffers (leakhunt.buffers);
- ``bytes/span``: each task takes all the growth between its own start and end;
- ``bytes/counts``: the worker's unmanaged memory regressed on each prefix's count of finished
  and running calls (least squares over the task events);
- ``bytes/phases``: each interval's growth regressed on how much of each running task's life
  (first fifth, middle, last fifth) it covers;

and, last, leakhunt's own verdicts from ``watch()`` on the same pipeline (suspicion from
``bytes/equal``, confirmation from calls run alone: leakhunt.dask._isolation).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from distributed.diagnostics.plugin import WorkerPlugin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # dask_pipelines, for the workers too
sys.path.insert(0, str(Path(__file__).resolve().parent))  # this module, for the workers

MiB = 1024 * 1024
RUNNING = frozenset({"executing", "long-running"})


class Recorder(WorkerPlugin):
    """Logs every task start and end (and data in and out) with the worker's memory."""

    idempotent = False

    def __init__(self) -> None:
        self.events: list[tuple[float, str, str, str, int, int, int]] = []
        self.worker: Any = None
        self.ledger: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def setup(self, worker: Any) -> None:
        from leakhunt.dask._ledger import DataLedger
        from leakhunt.settle import trim

        self.worker, self.ledger = worker, DataLedger()
        trim()

    def _value(self, key: Any) -> Any:
        fast = getattr(self.worker.data, "fast", self.worker.data)
        return fast.get(key)

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        from dask.utils import key_split

        from leakhunt import probes

        if finish == "memory" and start != "memory":
            ts = self.worker.state.tasks.get(key)
            self.ledger.add(key, self._value(key), int(getattr(ts, "nbytes", 0) or 0))
        elif start == "memory" and finish != "memory":
            self.ledger.remove(key)
        if finish in RUNNING and start not in RUNNING:
            kind = "S"
        elif start in RUNNING and finish not in RUNNING:
            kind = "E"
        else:
            kind = "M"
        spilled = getattr(self.worker.data, "spilled_total", None)
        sizeof = self.worker.state.nbytes - (spilled.memory if spilled is not None else 0)
        self.events.append((time.perf_counter(), kind, key_split(key), str(key), probes.rss_anon() or 0, sizeof,
                            self.ledger.held))


def _events(dask_worker: Any, name: str) -> list[Any]:
    return dask_worker.plugins[name].events


# ------------------------------------------------------------------------------ the methods


def _tasks(events: list[Any]) -> list[tuple[str, int, int]]:
    started, out = {}, []
    for i, e in enumerate(events):
        if e[1] == "S":
            started[e[3]] = i
        elif e[1] == "E" and e[3] in started:
            out.append((e[2], started.pop(e[3]), i))
    return out


def equal_share(events: list[Any], column: int) -> dict[str, float]:
    running: dict[str, list[Any]] = {}
    last: int | None = None
    per: dict[str, list[float]] = defaultdict(list)
    for e in events:
        unmanaged = e[4] - e[column]
        if last is not None and running:
            share = (unmanaged - last) / len(running)
            for task in running.values():
                task[1] += share
        last = unmanaged
        if e[1] == "S":
            running[e[3]] = [e[2], 0.0]
        elif e[1] == "E" and e[3] in running:
            prefix, value = running.pop(e[3])
            per[prefix].append(value)
    return {p: statistics.fmean(v) for p, v in per.items()}


def span(events: list[Any]) -> dict[str, float]:
    per: dict[str, list[float]] = defaultdict(list)
    for prefix, i, j in _tasks(events):
        per[prefix].append((events[j][4] - events[j][6]) - (events[i][4] - events[i][6]))
    return {p: statistics.fmean(v) for p, v in per.items()}


def counts(events: list[Any]) -> dict[str, float]:
    prefixes = sorted({e[2] for e in events if e[1] == "E"})
    index = {p: i for i, p in enumerate(prefixes)}
    done, running, rows, ys = np.zeros(len(prefixes)), np.zeros(len(prefixes)), [], []
    for e in events:
        if e[2] in index and e[1] == "S":
            running[index[e[2]]] += 1
        elif e[2] in index and e[1] == "E":
            running[index[e[2]]] -= 1
            done[index[e[2]]] += 1
        rows.append(np.concatenate([[1.0], done, running]))
        ys.append(e[4] - e[6])
    beta = np.linalg.lstsq(np.array(rows), np.array(ys, float), rcond=None)[0]
    return {p: float(beta[1 + index[p]]) for p in prefixes}


def phases(events: list[Any], knots: tuple[float, ...] = (0.0, 0.2, 0.8, 1.0)) -> dict[str, float]:
    spans = {events[i][3]: (p, events[i][0], events[j][0]) for p, i, j in _tasks(events)}
    prefixes = sorted({p for p, _, _ in spans.values()})
    index, width = {p: i for i, p in enumerate(prefixes)}, len(knots) - 1
    rows, ys, running = [], [], {}
    for before, after in zip(events, events[1:]):
        row = np.zeros(len(prefixes) * width)
        for prefix, start, end in running.values():
            a, b = (before[0] - start) / max(end - start, 1e-9), (after[0] - start) / max(end - start, 1e-9)
            for k in range(width):
                lo, hi = knots[k], knots[k + 1]
                row[index[prefix] * width + k] += max(0.0, min(b, hi) - max(a, lo)) / (hi - lo)
        rows.append(row)
        ys.append((after[4] - after[6]) - (before[4] - before[6]))
        if after[1] == "S" and after[3] in spans:
            running[after[3]] = spans[after[3]]
        elif after[1] == "E":
            running.pop(after[3], None)
    beta = np.linalg.lstsq(np.array(rows), np.array(ys, float), rcond=None)[0]
    return {p: float(beta[index[p] * width:(index[p] + 1) * width].sum()) for p in prefixes}


METHODS = {
    "sizeof/equal": lambda ev: equal_share(ev, 5),
    "bytes/equal": lambda ev: equal_share(ev, 6),
    "bytes/span": span,
    "bytes/counts": counts,
    "bytes/phases": phases,
}


# ------------------------------------------------------------------------------ running


def _record(client: Any, pipeline: Any, n: int, name: str) -> dict[str, list[Any]]:
    import dask
    import dask_pipelines as P

    client.run(P.reset)
    client.register_plugin(Recorder(), name=name)
    dask.compute(*pipeline(n), scheduler=client)
    events = client.run(_events, name=name)
    client.unregister_worker_plugin(name)
    return events


def _watched(client: Any, pipeline: Any, n: int) -> dict[str, tuple[str, int | None]]:
    import dask
    import dask_pipelines as P

    from leakhunt.dask import watch

    client.run(P.reset)
    with watch(client, paths=0) as w:
        dask.compute(*pipeline(n), scheduler=client)
    return {t.prefix: (t.verdict, t.retained_per_call) for t in w.report.tasks}


def _row(name: str, figures: dict[str, float | None], prefixes: list[str]) -> str:
    cells = []
    for p in prefixes:
        value = figures.get(p)
        cells.append("n/a" if value is None else f"{value / MiB:+.2f}")
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--partitions", type=int, default=120)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    import dask
    import dask_pipelines as P
    from distributed import Client, LocalCluster

    for threads in args.threads:
        with LocalCluster(n_workers=2, threads_per_worker=threads, processes=True, dashboard_address=":0",
                          silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
            dask.compute(*P.mixed(4), scheduler=client)
            for run in range(args.runs):
                events = _record(client, P.mixed, args.partitions, f"recorder-{run}")
                per_worker = {name: [method(ev) for ev in events.values()] for name, method in METHODS.items()}
                table = {name: {p: statistics.fmean(f[p] for f in found if p in f) for p in found[0]}
                         for name, found in per_worker.items()}
                calls = defaultdict(int)
                for ev in events.values():
                    for e in ev:
                        calls[e[2]] += e[1] == "E"
                prefixes = sorted(p for p, c in calls.items() if c >= 2 * args.partitions // 3)
                prefixes.sort(key=lambda p: p != P.LEAKY)
                print(f"\n{threads} threads per worker, run {run + 1}: MiB per call, mean of the 2 workers "
                      f"(truth: {P.LEAKY} +2.00, every other prefix 0)")
                print("| method | " + " | ".join(prefixes) + " |")
                print("|---" * (len(prefixes) + 1) + "|")
                for name, figures in table.items():
                    print(_row(name, figures, prefixes))
                watched = _watched(client, P.mixed, args.partitions)
                print(_row("leakhunt (watch)", {p: v[1] for p, v in watched.items()}, prefixes))
                print("| leakhunt verdict | " + " | ".join(watched.get(p, ("-",))[0] for p in prefixes) + " |")


if __name__ == "__main__":
    main()
