"""The client side: ``watch(client)`` registers the plugin, and merges the workers' figures."""

from __future__ import annotations

import datetime
import time
import uuid
from typing import Any, Mapping

from leakhunt import defaults
from leakhunt.budget import Budget, MemoryBudgetExceeded
from leakhunt.dask import _oom, _worker
from leakhunt.dask._plugin import LeakhuntPlugin
from leakhunt.dask._report import (
    BUDGET_FIGURES,
    ClusterReport,
    HuntSettings,
    WorkerFigures,
    check_budgets,
    merge,
)
from leakhunt.dask._shim import LeakhuntShell, by_value
from leakhunt.units import parse_size

__all__ = ["Watch", "watch", "watch_for", "inspect_cluster", "parse_budgets"]

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
        parsed = spec if isinstance(spec, Budget) else Budget.from_spec(spec, where=where, keywords=tuple(BUDGET_FIGURES))
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


def _worker_figures(address: str, result: Any, dask_view: Mapping[str, Any]) -> WorkerFigures:
    if isinstance(result, BaseException):
        error = f"{type(result).__name__}: {result}"
        # client.run hands the worker's error back as it can: an ImportError, or an Exception naming it
        if isinstance(result, ImportError) or "ModuleNotFoundError" in error or "No module named" in error:
            error += f" ({_INSTALL})"
        return WorkerFigures(address=address, error=error)
    if result.get("error"):
        return WorkerFigures(address=address, error=str(result["error"]))
    data = dict(result)
    tasks = data.pop("tasks", None) or {}
    data["unmanaged_growth"] = tasks.get("unmanaged_growth")
    data["timeline"] = tasks.get("timeline") or ()
    data["isolated_seconds"] = tasks.get("isolated_seconds")
    view = dask_view.get(address) or {}
    data["unmanaged_old"] = view.get("unmanaged_old")
    data["unmanaged_recent"] = view.get("unmanaged_recent")
    return WorkerFigures.from_dict(data)


def _workers_from(collected: Mapping[str, Any], dask_view: Mapping[str, Any] | None = None) -> list[WorkerFigures]:
    return [_worker_figures(address, result, dask_view or {}) for address, result in sorted(collected.items())]


def _dask_view(client: Any) -> dict[str, Any]:
    """Each worker's memory as the scheduler sees it (unmanaged old and recent); empty where the
    scheduler cannot run leakhunt's function (leakhunt not installed beside it)."""
    try:
        return dict(client.run_on_scheduler(_worker.scheduler_memory))
    except Exception:
        return {}


def _client(client_or_address: Any) -> tuple[Any, bool]:
    if isinstance(client_or_address, str):
        from distributed import Client

        return Client(client_or_address, timeout="10s", set_as_default=False), True
    if not hasattr(client_or_address, "run") or not hasattr(client_or_address, "register_plugin"):
        raise TypeError(f"expected a distributed.Client or a scheduler address, got {client_or_address!r}")
    return client_or_address, False


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _scheduler_address(client: Any) -> str:
    try:
        return str(client.scheduler.address)
    except Exception:
        return ""


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
        started, when = time.perf_counter(), _now()
        view = _dask_view(client)
        collected = client.run(_worker.inspect_worker, settle=settle, paths=paths, min_size=smallest, on_error="return")
        if not settle:
            notes.append("not settled: allocator retention is unknown (settle to measure what the allocators keep)")
        return ClusterReport(tasks=(), workers=tuple(_workers_from(collected, view)), notes=tuple(notes),
                             settings={"settle": settle, "paths": paths, "min_size": smallest},
                             seconds=time.perf_counter() - started, version=_version(),
                             scheduler=_scheduler_address(client), started=when, kind="inspection")
    finally:
        if owned:
            client.close()


def _version() -> str:
    from leakhunt import __version__

    return __version__


def _whole(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"watch {name}={value!r} is not valid: expected a whole number >= {low}")


class Watch:
    """What ``with watch(client) as w`` gives; ``w.report`` is ready after the block."""

    def __init__(self, client: Any, *, budget: Mapping[str, Any] | None = None, threshold: int | str = DEFAULT_THRESHOLD,
                 repeat: int = defaults.REPEAT, warmup: int = defaults.WARMUP, settle: bool = True, paths: int = 3,
                 survivor_min: int | str = "1 MiB", isolate: bool = True,
                 oom_guard: bool | str | float = True) -> None:
        self.budgets = parse_budgets(budget)
        self.oom_guard = oom_guard is not False
        self.oom_threshold = _oom.check_threshold(oom_guard) if self.oom_guard else None
        self.threshold = parse_size(threshold)
        if self.threshold <= 0:
            raise ValueError(f"watch threshold must be > 0 bytes, got {threshold!r}")
        for name, value, low in (("repeat", repeat, 2), ("warmup", warmup, 0), ("paths", paths, 0)):
            _whole(name, value, low)
        self.client, self._owned = _client(client)  # a scheduler address: our own client, closed at the end
        leak_limits = [b.leak for b in self.budgets.values() if b.leak is not None]
        self.hunt_threshold = min([self.threshold, *leak_limits])
        self.repeat = repeat
        self.warmup = warmup
        self.settle = settle
        self.paths = paths
        self.isolate = bool(isolate)
        self.survivor_min = parse_size(survivor_min)
        self.name = f"leakhunt-{uuid.uuid4().hex[:8]}"
        self.report: ClusterReport | None = None
        self._entered = False
        self._started_workers: set[str] = set()
        self._notes: list[str] = []
        self._t0 = 0.0
        self._when = ""

    def _plugin_settings(self) -> dict[str, Any]:
        oom = {"threshold": self.oom_threshold, "watch": self.name} if self.oom_guard else None
        return LeakhuntPlugin(threshold=self.hunt_threshold, repeat=self.repeat, warmup=self.warmup,
                              survivor_min=self.survivor_min, isolate=self.isolate, version=_version(),
                              oom=oom)._settings()

    def __enter__(self) -> Watch:
        if self._entered:
            raise RuntimeError("a watch() can be used for one block only; make a new one")
        self._entered = True
        try:
            results, self._notes = _check_workers(self.client)
            self._started_workers = set(results)
            # Shipped as a shell pickled by value: it reaches the workers that join later too, and a
            # worker without leakhunt still starts (the shell keeps the import error).
            with by_value():
                self.client.register_plugin(LeakhuntShell(self._plugin_settings()), name=self.name)
        except BaseException:
            if self._owned:
                self.client.close()
            raise
        self._t0, self._when = time.perf_counter(), _now()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        __tracebackhide__ = True  # a broken budget's failure is its message, not this frame
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

    def _collect(self, notes: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        view = _dask_view(self.client)  # before the workers settle: Dask's figures at the end of the block
        try:
            collected = self.client.run(_worker.collect, name=self.name, settle=self.settle, paths=self.paths,
                                        on_error="return")
        except Exception as exc:  # the client lost the scheduler: say so rather than hide the block's own error
            collected = {}
            notes.append(f"the workers' figures could not be collected: {type(exc).__name__}: {exc}")
        return collected, view

    def _finish(self) -> ClusterReport:
        seconds = time.perf_counter() - self._t0
        notes = list(self._notes)
        collected, view = self._collect(notes)
        workers = _workers_from(collected, view)
        ok = {addr: r for addr, r in collected.items() if isinstance(r, Mapping) and not r.get("error")}
        tasks = merge(ok, HuntSettings(self.hunt_threshold, self.warmup, self.repeat, self.budgets))
        lost = tuple(sorted(self._started_workers - set(collected)))
        notes.extend(self._notes_on(collected, workers))
        violations = tuple(check_budgets(tasks, self.budgets))
        oom = _oom.collect(self.client, self.name, notes) if self.oom_guard else ()
        return ClusterReport(
            tasks=tuple(tasks), workers=tuple(workers), lost_workers=lost, notes=tuple(notes), oom=oom,
            settings={"threshold": self.hunt_threshold, "repeat": self.repeat, "warmup": self.warmup,
                      "settle": self.settle, "isolate": self.isolate,
                      "budgets": {p: b.describe() for p, b in self.budgets.items()}},
            violations=violations, seconds=seconds, version=_version(), scheduler=_scheduler_address(self.client),
            started=self._when, kind="watch")

    def _notes_on(self, collected: Mapping[str, Any], workers: list[WorkerFigures]) -> list[str]:
        notes = []
        joined = sorted(set(collected) - self._started_workers)
        if joined:
            notes.append(f"joined during the block (measured from when they joined): {', '.join(joined)}")
        if any((w.nthreads or 1) > 1 for w in workers):
            isolated = sum(w.isolated_seconds or 0 for w in workers)
            notes.append("several threads per worker: each prefix is suspected from memory shared equally among the "
                         "tasks running at once, and confirmed from tasks run alone and settled"
                         + (f" (the workers ran their tasks one at a time for {isolated:.1f} s in all)" if isolated else
                            "") + "; peaks include the tasks running beside (docs/dask.md)")
        if not self.settle:
            notes.append("not settled at the end: allocator retention is unknown")
        return notes

    def _failure_text(self) -> str:
        assert self.report is not None
        lines = ["the watched block broke its cluster memory budget:"]
        lines.extend(f"  {v}" for v in self.report.violations)
        lines.append("")
        lines.append(self.report.explain())
        return "\n".join(lines)


def watch(client: Any, *, budget: Mapping[str, Any] | None = None, threshold: int | str = DEFAULT_THRESHOLD,
          repeat: int = defaults.REPEAT, warmup: int = defaults.WARMUP, settle: bool = True, paths: int = 3,
          survivor_min: int | str = "1 MiB", isolate: bool = True, oom_guard: bool | str | float = True) -> Watch:
    """Measure every task on every worker of ``client``'s cluster while the block runs::

        with watch(client, budget={"process-*": "peak=1GB,rss=50MB"}) as w:
            client.gather(client.map(process, parts))
        w.report.to_dict()

    Per task prefix: calls, the highest task peak, what the tasks left behind per call and a
    verdict (``threshold`` per call, the rule of :func:`leakhunt.hunt` over ``warmup`` +
    ``repeat`` calls on a worker, confirmed over ``repeat`` more; with several threads per
    worker the confirming calls run alone unless ``isolate=False``). Per worker at the end
    (after settling, unless ``settle=False``): RSS, managed, and unmanaged memory split by kind,
    with the ``paths`` biggest survivors (buffers of at least ``survivor_min``) and what keeps
    them. A broken ``budget`` raises :class:`leakhunt.MemoryBudgetExceeded` when the block ends.

    ``oom_guard``: each worker with a ``memory_limit`` writes its diagnosis (the tasks running,
    what is alive) when its memory crosses a share of that limit below the nanny's terminate
    fraction: Dask's pause fraction by default (True), another share such as ``"85%"``, or
    False for none. The report keeps it as ``report.oom`` after the worker is restarted
    (docs/oom.md).
    """
    return Watch(client, budget=budget, threshold=threshold, repeat=repeat, warmup=warmup, settle=settle,
                 paths=paths, survivor_min=survivor_min, isolate=isolate, oom_guard=oom_guard)


def watch_for(client: Any, seconds: float, **options: Any) -> ClusterReport:
    """Watch a running cluster for ``seconds`` without touching its client code: the plugin is
    registered, the cluster runs whatever it runs, and the report covers that period.
    ``client`` is a ``distributed.Client`` or a scheduler address; ``options`` are :func:`watch`'s."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ValueError(f"the watch period must be a number of seconds > 0, got {seconds!r}")
    w = watch(client, **options)
    with w:
        time.sleep(seconds)
    assert w.report is not None
    return w.report
