"""The client side: ``watch(client)`` registers the plugin, and merges the workers' figures."""

from __future__ import annotations

import time
import uuid
from typing import Any, Mapping

from leakhunt import defaults
from leakhunt.budget import Budget, MemoryBudgetExceeded
from leakhunt.dask import _oom, _worker
from leakhunt.dask._plugin import LeakhuntPlugin
from leakhunt.dask._report import BUDGET_FIGURES, ClusterReport, WorkerFigures, check_budgets, merge
from leakhunt.units import parse_size

__all__ = ["Watch", "watch", "inspect_cluster", "parse_budgets"]

DEFAULT_THRESHOLD = defaults.DASK_THRESHOLD_TEXT
_INSTALL = 'install it in the workers\' environment: pip install "leakhunt[dask]"'


def parse_budgets(budget: Mapping[str, Any] | None) -> dict[str, Budget]:
    """``{"prefix-pattern": "peak=1GB,rss=50MB"}`` (or a ``Budget``) -> ``{pattern: Budget}``."""
    if budget is None:
        return {}
    if not isinstance(budget, Mapping):
        raise TypeError(f"watch(budget=...) takes a dict of task-prefix pattern -> budget spec, got {budget!r}; "
                        f"e.g. budget={{'process-*': 'peak=1GB,rss=50MB'}}")
    out: dict[str, Budget] = {}
    for pattern, spec in budget.items():
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"watch budget: the key {pattern!r} is not a task-prefix pattern "
                             f"(a string such as 'process' or 'read-*')")
        where = f"watch budget for {pattern!r}"
        parsed = spec if isinstance(spec, Budget) else Budget.from_spec(spec, where=where)
        unsupported = [name for name in ("traced", "children") if getattr(parsed, name) is not None]
        if unsupported:
            raise ValueError(f"{where}: {unsupported[0]}= is not measured per task on a cluster; "
                             f"accepted keywords: {', '.join(BUDGET_FIGURES)}")
        out[pattern] = parsed
    return out


def _check_workers(client: Any) -> tuple[dict[str, Any], list[str]]:
    """leakhunt's version on every worker; an error naming those where it cannot be imported."""
    results = client.run(_worker.check, on_error="return")
    missing = {addr: r for addr, r in results.items() if isinstance(r, BaseException) or "error" in r}
    if missing:
        detail = "; ".join(f"{addr}: {r if isinstance(r, BaseException) else r['error']}" for addr, r in missing.items())
        raise ImportError(f"leakhunt is not importable on {len(missing)} of {len(results)} Dask workers ({detail}); "
                          f"{_INSTALL}")
    from leakhunt import __version__

    notes = []
    others = {addr: r["version"] for addr, r in results.items() if r.get("version") != __version__}
    if others:
        notes.append(f"workers run another leakhunt version than the client ({__version__}): "
                     + ", ".join(f"{a} {v}" for a, v in others.items()))
    return results, notes


def _workers_from(collected: Mapping[str, Any]) -> list[WorkerFigures]:
    workers = []
    for address, result in sorted(collected.items()):
        if isinstance(result, BaseException):
            error = f"{type(result).__name__}: {result}"
            if isinstance(result, ImportError):
                error += f" ({_INSTALL})"
            workers.append(WorkerFigures(address=address, error=error))
        elif result.get("error"):
            workers.append(WorkerFigures(address=address, error=str(result["error"])))
        else:
            workers.append(WorkerFigures.from_dict(result))
    return workers


def _client(client_or_address: Any) -> tuple[Any, bool]:
    if isinstance(client_or_address, str):
        from distributed import Client

        return Client(client_or_address, timeout="10s", set_as_default=False), True
    if not hasattr(client_or_address, "run") or not hasattr(client_or_address, "register_plugin"):
        raise TypeError(f"expected a distributed.Client or a scheduler address, got {client_or_address!r}")
    return client_or_address, False


def inspect_cluster(client: Any, *, settle: bool = False, paths: int = 3, min_size: int | str = "1 MiB") -> ClusterReport:
    """Inspect every worker once (no tasks watched): the split of its memory and its survivors.

    ``client`` is a ``distributed.Client`` or a scheduler address. ``settle`` collects garbage and
    hands freed memory back on each worker first, to measure what the allocators kept.
    """
    if isinstance(paths, bool) or not isinstance(paths, int) or paths < 0:
        raise ValueError(f"paths must be a whole number >= 0, got {paths!r}")
    smallest = parse_size(min_size)
    client, owned = _client(client)
    try:
        _, notes = _check_workers(client)
        started = time.perf_counter()
        collected = client.run(_worker.inspect_worker, settle=settle, paths=paths, min_size=smallest, on_error="return")
        if not settle:
            notes.append("not settled: allocator retention is unknown (settle to measure what the allocators keep)")
        return ClusterReport(tasks=(), workers=tuple(_workers_from(collected)), notes=tuple(notes),
                             settings={"settle": settle, "paths": paths, "min_size": smallest},
                             seconds=time.perf_counter() - started, version=_version())
    finally:
        if owned:
            client.close()


def _version() -> str:
    from leakhunt import __version__

    return __version__


class Watch:
    """What ``with watch(client) as w`` gives; ``w.report`` is ready after the block."""

    def __init__(self, client: Any, *, budget: Mapping[str, Any] | None = None, threshold: int | str = DEFAULT_THRESHOLD,
                 repeat: int = defaults.REPEAT, warmup: int = defaults.WARMUP, settle: bool = True, paths: int = 3,
                 survivor_min: int | str = "1 MiB", oom_guard: bool | str | float = True) -> None:
        self.budgets = parse_budgets(budget)
        self.oom_guard = oom_guard is not False
        self.oom_threshold = _oom.check_threshold(oom_guard) if self.oom_guard else None
        self.threshold = parse_size(threshold)
        if self.threshold <= 0:
            raise ValueError(f"watch threshold must be > 0 bytes, got {threshold!r}")
        for name, value, low in (("repeat", repeat, 2), ("warmup", warmup, 0), ("paths", paths, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"watch {name}={value!r} is not valid: expected a whole number >= {low}")
        self.client, self._owned = _client(client)  # a scheduler address: our own client, closed at the end
        leak_limits = [b.leak for b in self.budgets.values() if b.leak is not None]
        self.hunt_threshold = min([self.threshold, *leak_limits])
        self.repeat = repeat
        self.warmup = warmup
        self.settle = settle
        self.paths = paths
        self.survivor_min = parse_size(survivor_min)
        self.name = f"leakhunt-{uuid.uuid4().hex[:8]}"
        self.report: ClusterReport | None = None
        self._entered = False
        self._started_workers: set[str] = set()
        self._notes: list[str] = []
        self._t0 = 0.0

    def __enter__(self) -> Watch:
        if self._entered:
            raise RuntimeError("a watch() can be used for one block only; make a new one")
        self._entered = True
        try:
            results, self._notes = _check_workers(self.client)
            self._started_workers = set(results)
            oom = {"threshold": self.oom_threshold, "watch": self.name} if self.oom_guard else None
            plugin = LeakhuntPlugin(threshold=self.hunt_threshold, repeat=self.repeat, warmup=self.warmup,
                                    survivor_min=self.survivor_min, version=_version(), oom=oom)
            self.client.register_plugin(plugin, name=self.name)  # reaches workers that join later too
        except BaseException:
            if self._owned:
                self.client.close()
            raise
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self.report = self._finish()
        finally:
            try:
                self.client.unregister_worker_plugin(self.name)
            except Exception:  # a worker that died cannot unregister: nothing left to stop there
                pass
            if self._owned:
                self.client.close()
        if exc_type is None and self.report.violations:
            raise MemoryBudgetExceeded(self._failure_text(), None, list(self.report.violations))

    def _finish(self) -> ClusterReport:
        seconds = time.perf_counter() - self._t0
        notes = list(self._notes)
        try:
            collected = self.client.run(_worker.collect, name=self.name, settle=self.settle, paths=self.paths,
                                        on_error="return")
        except Exception as exc:  # the client lost the scheduler: say so rather than hide the block's own error
            collected = {}
            notes.append(f"the workers' figures could not be collected: {type(exc).__name__}: {exc}")
        workers = _workers_from(collected)
        ok = {addr: r for addr, r in collected.items() if isinstance(r, Mapping) and not r.get("error")}
        tasks = merge(ok)
        lost = tuple(sorted(self._started_workers - set(collected)))
        joined = sorted(set(collected) - self._started_workers)
        if joined:
            notes.append(f"joined during the block (measured from when they joined): {', '.join(joined)}")
        threads = {w.nthreads for w in workers if w.nthreads}
        if any(t > 1 for t in threads):
            notes.append("several threads per worker: memory that moved while tasks overlapped is shared equally "
                         "among them (see docs/dask.md); peaks include the tasks running beside")
        unjudged = [t.prefix for t in tasks if t.verdict == "unjudged"]
        if unjudged:
            notes.append(f"too few calls per worker to hunt {', '.join(unjudged)} "
                         f"(needs {self.warmup} warm-up + {self.repeat} calls on one worker)")
        if not self.settle:
            notes.append("not settled at the end: allocator retention is unknown")
        violations = tuple(check_budgets(tasks, self.budgets))
        oom = _oom.collect(self.client, self.name, notes) if self.oom_guard else ()
        return ClusterReport(
            tasks=tuple(tasks), workers=tuple(workers), lost_workers=lost, notes=tuple(notes),
            settings={"threshold": self.hunt_threshold, "repeat": self.repeat, "warmup": self.warmup,
                      "settle": self.settle, "budgets": {p: b.describe() for p, b in self.budgets.items()}},
            violations=violations, seconds=seconds, version=_version(), oom=oom)

    def _failure_text(self) -> str:
        assert self.report is not None
        lines = ["the watched block broke its cluster memory budget:"]
        lines.extend(f"  {v}" for v in self.report.violations)
        lines.append("")
        lines.append(self.report.explain())
        return "\n".join(lines)


def watch(client: Any, *, budget: Mapping[str, Any] | None = None, threshold: int | str = DEFAULT_THRESHOLD,
          repeat: int = defaults.REPEAT, warmup: int = defaults.WARMUP, settle: bool = True, paths: int = 3,
          survivor_min: int | str = "1 MiB", oom_guard: bool | str | float = True) -> Watch:
    """Measure every task on every worker of ``client``'s cluster while the block runs::

        with watch(client, budget={"process-*": "peak=1GB,rss=50MB"}) as w:
            client.gather(client.map(process, parts))
        w.report.to_dict()

    Per task prefix: calls, the highest task peak, what the tasks left behind per call and a
    leak verdict (``threshold`` per call, the rule of :func:`leakhunt.hunt` over ``warmup`` +
    ``repeat`` calls on a worker, confirmed over ``repeat`` more). Per worker at the end (after
    settling, unless ``settle=False``): RSS, managed, and unmanaged memory split by kind, with
    the ``paths`` biggest survivors (buffers of at least ``survivor_min``) and what keeps them.
    A broken ``budget`` raises :class:`leakhunt.MemoryBudgetExceeded` when the block ends.

    ``oom_guard``: each worker with a ``memory_limit`` writes its diagnosis (the tasks running,
    what is alive) when its memory crosses a share of that limit below the nanny's terminate
    fraction: Dask's pause fraction by default (True), another share such as ``"85%"``, or
    False for none. The report keeps it as ``report.oom`` after the worker is restarted
    (docs/oom.md).
    """
    return Watch(client, budget=budget, threshold=threshold, repeat=repeat, warmup=warmup, settle=settle,
                 paths=paths, survivor_min=survivor_min, oom_guard=oom_guard)
