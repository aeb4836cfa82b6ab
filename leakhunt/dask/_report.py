"""The cluster report: per task prefix and per worker, merged on the client. Data only.

Built from what :func:`leakhunt.dask._worker.collect` returns on each worker; each prefix's
verdict comes from :func:`leakhunt.taskhunt.judge_prefix` (so from :func:`leakhunt.judge.judge`,
with its verdict names). ``to_dict()`` is the JSON form (``from_dict`` reads it back);
``explain()`` is the text; the HTML page is :class:`leakhunt.report.cluster.ClusterHtmlReport`.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from leakhunt import defaults
from leakhunt.budget import Budget, Violation, check
from leakhunt.dask._advice import advice
from leakhunt.explanation import Explanation, Root
from leakhunt.hunt import NOISE
from leakhunt.judge import VERDICTS
from leakhunt.oom import Diagnosis
from leakhunt.taskhunt import (
    DASK_SHUFFLE,
    SHARED_CLEARED,
    WorkerSeries,
    closed,
    given_back,
    held_by_leaks,
    judge_prefix,
    own_per_call,
    verdict_from_dict,
)
from leakhunt.units import format_size

__all__ = ["ClusterReport", "PrefixFigures", "PrefixViolation", "WorkerFigures", "SCHEMA", "SCHEMA_VERSION",
           "BUDGET_FIGURES", "check_budgets", "merge", "VERDICT_WORDS"]

from leakhunt.report.cluster import SCHEMA  # noqa: E402 - one place for the schema's name
SCHEMA_VERSION = 2

#: Budget keywords a cluster budget accepts, and what they limit for a prefix on one worker.
BUDGET_FIGURES = {
    "peak": "highest task peak above its start",
    "rss": "memory its tasks left behind in all",
    "arrow": "Arrow pool growth its tasks left behind",
    "leak": "confirmed growth per call",
}

#: How a verdict of :data:`leakhunt.judge.VERDICTS` reads in the prefix table.
VERDICT_WORDS = {"leak": "LEAK", "warmup_or_bounded_cache": "ok (warm-up or bounded cache)",
                 "too_few_calls": "too few calls", "given_back": "given back", "unconfirmed": "unconfirmed"}


@dataclass(frozen=True)
class PrefixFigures:
    """A task prefix over the whole cluster, with its figures on each worker."""

    prefix: str
    calls: int
    retained_per_call: int | None  # bytes per call (a leak: its confirmed figure)
    peak: int | None  # highest task peak above its start, on any worker
    verdict: str  # a key of leakhunt.judge.VERDICTS
    retained: int = 0  # memory its tasks left behind, all workers
    arrow: int = 0  # Arrow pool growth its tasks left behind, all workers
    errors: int = 0
    note: str = ""
    workers: tuple[dict[str, Any], ...] = ()  # per worker: address, calls, peak, retained, verdict, hunt
    explanation: Explanation | None = None  # a leak's, from leakhunt.judge.judge

    def to_dict(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "calls": self.calls, "retained_per_call": self.retained_per_call,
                "peak": self.peak, "verdict": self.verdict, "retained": self.retained, "arrow": self.arrow,
                "errors": self.errors, "note": self.note, "workers": [dict(w) for w in self.workers],
                "explanation": self.explanation.to_dict() if self.explanation is not None else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrefixFigures:
        explanation = data.get("explanation")
        return cls(prefix=str(data["prefix"]), calls=int(data["calls"]), retained_per_call=data.get("retained_per_call"),
                   peak=data.get("peak"), verdict=str(data["verdict"]), retained=int(data.get("retained", 0)),
                   arrow=int(data.get("arrow", 0)), errors=int(data.get("errors", 0)), note=str(data.get("note", "")),
                   workers=tuple(dict(w) for w in data.get("workers", ())),
                   explanation=Explanation.from_dict(explanation) if explanation else None)

    @property
    def words(self) -> str:
        if self.verdict == "warmup_or_bounded_cache" and SHARED_CLEARED in self.note:
            return "ok (cleared when run alone)"
        if self.verdict == "ok" and DASK_SHUFFLE in self.note:
            return "ok (Dask's P2P shuffle)"
        return VERDICT_WORDS.get(self.verdict, self.verdict)


_WORKER_FIGURES = ("rss", "rss_before_settle", "managed", "unmanaged", "python_heap", "numpy", "arrow",
                   "allocator_retention", "file_backed", "unexplained", "memory_limit", "spilled",
                   "unmanaged_old", "unmanaged_recent", "unmanaged_growth")
_WORKER_SETTINGS = ("nthreads", "trim_threshold", "isolated_seconds", "pid")


@dataclass(frozen=True)
class WorkerFigures:
    """One worker: resident memory, Dask's managed part, and the unmanaged rest by kind, with
    Dask's own figures (memory limit and fractions, spilled bytes, unmanaged old and recent)."""

    address: str
    rss: int | None = None  # now: after leakhunt settled the worker, when it did
    rss_before_settle: int | None = None
    managed: int | None = None
    unmanaged: int | None = None
    python_heap: int | None = None
    numpy: int | None = None
    arrow: int | None = None
    allocator_retention: int | None = None  # what leakhunt's settle gave back
    file_backed: int | None = None  # code and libraries mapped from files
    unexplained: int | None = None
    memory_limit: int | None = None
    spilled: int | None = None  # bytes Dask spilled to disk
    unmanaged_old: int | None = None  # the scheduler's view at the end of the block, before the settle
    unmanaged_recent: int | None = None
    unmanaged_growth: int | None = None  # unmanaged memory over the watch (settled), by leakhunt's ledger
    fractions: Mapping[str, Any] = field(default_factory=dict)  # target, spill, pause, terminate
    survivors: tuple[Root, ...] = ()
    nthreads: int | None = None
    trim_threshold: str | None = None  # MALLOC_TRIM_THRESHOLD_ on the worker (None: not set)
    isolated_seconds: float | None = None  # time its tasks ran one at a time for confirmations
    pid: int | None = None
    timeline: tuple[tuple[float, int], ...] = ()  # (seconds into the watch, unmanaged growth)
    settled: bool = False
    error: str = ""  # why this worker has no figures

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"address": self.address}
        out.update({name: getattr(self, name) for name in _WORKER_FIGURES + _WORKER_SETTINGS})
        out.update(fractions=dict(self.fractions), survivors=[r.to_dict() for r in self.survivors],
                   timeline=[list(p) for p in self.timeline], settled=self.settled, error=self.error)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkerFigures:
        return cls(address=str(data["address"]), **{name: data.get(name) for name in _WORKER_FIGURES + _WORKER_SETTINGS},
                   fractions=dict(data.get("fractions") or {}),
                   survivors=tuple(Root.from_dict(r) for r in data.get("survivors") or ()),
                   timeline=tuple((float(t), int(v)) for t, v in data.get("timeline") or ()),
                   settled=bool(data.get("settled", False)), error=str(data.get("error", "")))



@dataclass(frozen=True)
class PrefixViolation(Violation):
    """A figure of one task prefix on one worker over its cluster budget."""

    prefix: str = ""
    worker: str = ""
    pattern: str = ""

    def __str__(self) -> str:
        what = BUDGET_FIGURES.get(self.figure, self.figure)
        return (f"{self.prefix} on {self.worker}: {self.figure} ({what}) {format_size(self.value)} > budget "
                f"{format_size(self.limit)} (from {self.pattern!r})")


@dataclass(frozen=True)
class ClusterReport:
    """What a watched block did on every worker: ``tasks`` by prefix, ``workers`` by address."""

    tasks: tuple[PrefixFigures, ...]
    workers: tuple[WorkerFigures, ...]
    lost_workers: tuple[str, ...] = ()  # workers that left during the block: their figures are lost
    notes: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    violations: tuple[PrefixViolation, ...] = ()
    seconds: float | None = None
    version: str = ""
    scheduler: str = ""  # the scheduler's address
    started: str = ""  # when the watch (or the inspection) began, ISO 8601 UTC
    kind: str = "watch"  # watch | inspection
    oom: tuple[Diagnosis, ...] = ()  # workers' out-of-memory diagnoses (leakhunt.dask._oom), oldest first

    # ------------------------------------------------------------------ forms
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "version": self.version, "kind": self.kind,
            "scheduler": self.scheduler, "started": self.started,
            "tasks": [t.to_dict() for t in self.tasks],
            "workers": [w.to_dict() for w in self.workers],
            "lost_workers": list(self.lost_workers),
            "notes": list(self.notes),
            "advice": list(self.advice),
            "settings": dict(self.settings),
            "violations": [{"prefix": v.prefix, "worker": v.worker, "figure": v.figure, "value": v.value,
                            "limit": v.limit, "pattern": v.pattern} for v in self.violations],
            "seconds": self.seconds,
            "verdicts": {name: VERDICTS[name] for name in sorted({t.verdict for t in self.tasks}) if name in VERDICTS},
            "oom": [d.to_dict() for d in self.oom],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterReport:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a leakhunt cluster report: schema is {data.get('schema')!r}, expected {SCHEMA!r}")
        return cls(
            tasks=tuple(PrefixFigures.from_dict(t) for t in data.get("tasks", ())),
            workers=tuple(WorkerFigures.from_dict(w) for w in data.get("workers", ())),
            lost_workers=tuple(data.get("lost_workers", ())),
            notes=tuple(data.get("notes", ())),
            settings=dict(data.get("settings", {})),
            violations=tuple(PrefixViolation(figure=v["figure"], value=v["value"], limit=v["limit"],
                                             prefix=v["prefix"], worker=v["worker"], pattern=v.get("pattern", ""))
                             for v in data.get("violations", ())),
            seconds=data.get("seconds"),
            version=str(data.get("version", "")),
            scheduler=str(data.get("scheduler", "")),
            started=str(data.get("started", "")),
            kind=str(data.get("kind", "watch")),
            oom=tuple(Diagnosis.from_dict(d) for d in data.get("oom") or ()),
        )

    def prefix(self, name: str) -> PrefixFigures:
        for entry in self.tasks:
            if entry.prefix == name:
                return entry
        raise KeyError(f"no task prefix {name!r} in the report; prefixes: {', '.join(t.prefix for t in self.tasks) or 'none'}")

    def worker(self, address: str) -> WorkerFigures:
        for entry in self.workers:
            if entry.address == address:
                return entry
        raise KeyError(f"no worker {address!r} in the report")

    @property
    def leaking(self) -> tuple[PrefixFigures, ...]:
        return tuple(t for t in self.tasks if t.verdict == "leak")

    @property
    def advice(self) -> tuple[str, ...]:
        """What to do about what the report found (allocator retention, a leak), in Dask's terms."""
        return tuple(advice(self.workers, self.tasks, self.seconds))

    def write(self, path: str | Any) -> Any:
        """Write the report to ``path`` atomically: ``.json`` or ``.html``."""
        from leakhunt.report.cluster import write_cluster_report

        return write_cluster_report(self, path)

    # ------------------------------------------------------------------ text
    def explain(self) -> str:
        """The report in words (:class:`leakhunt.report.cluster.ClusterTextReport`)."""
        return "\n".join(self.lines())

    def __str__(self) -> str:
        return self.explain()

    def headline(self) -> str:
        from leakhunt.report.cluster import ClusterTextReport

        return ClusterTextReport(self).headline()

    def lines(self) -> list[str]:
        from leakhunt.report.cluster import ClusterTextReport

        return ClusterTextReport(self).lines()


# ---------------------------------------------------------------------------------- merging


@dataclass(frozen=True)
class HuntSettings:
    """How the workers hunted: the judgement over workers uses the same rule."""

    threshold: int
    warmup: int
    repeat: int
    budgets: Mapping[str, Budget] = field(default_factory=dict)


def _noise(threaded: bool) -> int:
    """The per-call noise the workers' hunts used (leakhunt.dask._plugin)."""
    return defaults.DASK_THREADED_NOISE if threaded else NOISE["rss"]


def _series(address: str, entry: Mapping[str, Any], threads: int) -> WorkerSeries:
    """One prefix on one worker; a confirmation the calls ended in is judged on what it had."""
    return closed(WorkerSeries(address=address, verdict=verdict_from_dict(entry.get("hunt") or {}),
                        calls=int(entry.get("calls", 0)), errors=int(entry.get("errors", 0)),
                        figures=tuple(int(f) for f in entry.get("figures") or ()),
                        retained=int(entry.get("retained", 0)), settled_calls=int(entry.get("settled_calls", 0)),
                        shared=threads > 1, open_window=tuple(int(f) for f in entry.get("open_window") or ()),
                        dask_shuffle=bool(entry.get("dask_shuffle"))),
                  noise=_noise(threads > 1))


def _by_prefix(collected: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, dict[str, dict[str, Any]]],
                                                                       dict[str, set[str]], dict[str, int]]:
    """``{prefix: {address: entry}}``, the prefixes given back on each worker, and threads."""
    entries: dict[str, dict[str, dict[str, Any]]] = {}
    released: dict[str, set[str]] = {}
    threads: dict[str, int] = {}
    for address, result in collected.items():
        tasks = result.get("tasks") or {}
        threads[address] = int(tasks.get("nthreads") or result.get("nthreads") or 1)
        rows = {}
        for name, entry in (tasks.get("prefixes") or {}).items():
            entries.setdefault(name, {})[address] = entry
            rows[name] = _series(address, entry, threads[address])
        for name in given_back(held_by_leaks(rows), tasks.get("unmanaged_growth")):
            released.setdefault(name, set()).add(address)
    return entries, released, threads


def _row(series: WorkerSeries, verdict: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    return {"address": series.address, "calls": series.calls, "errors": series.errors, "peak": entry.get("peak"),
            "retained": series.retained, "arrow": int(entry.get("arrow", 0)),
            "retained_per_call": own_per_call(series), "verdict": verdict, "settled_calls": series.settled_calls,
            "shared_skipped": int(entry.get("shared_skipped", 0)), "figures": list(series.figures),
            "dask_shuffle": series.dask_shuffle, "hunt": series.verdict.to_dict()}


def merge(collected: Mapping[str, Mapping[str, Any]], settings: HuntSettings | None = None) -> list[PrefixFigures]:
    """Per-prefix figures over every worker, from each worker's ``collect`` result; each
    verdict from :func:`leakhunt.taskhunt.judge_prefix`."""
    settings = settings or HuntSettings(defaults.DASK_THRESHOLD, defaults.WARMUP, defaults.REPEAT)
    entries, released, threads = _by_prefix(collected)
    threaded = any(n > 1 for n in threads.values())
    out = []
    for name, by_worker in sorted(entries.items()):
        series = [_series(address, entry, threads[address]) for address, entry in sorted(by_worker.items())]
        budget = next((b for p, b in settings.budgets.items() if fnmatch.fnmatchcase(name, p)), None)
        judged = judge_prefix(name, series, threshold=settings.threshold, warmup=settings.warmup,
                              repeat=settings.repeat, noise=_noise(threaded),
                              spread_noise=threaded, budget=budget, released=sorted(released.get(name, ())))
        rows = tuple(_row(s, verdict, by_worker[s.address]) for s, verdict in judged.workers)
        peaks = [r["peak"] for r in rows if r["peak"] is not None]
        out.append(PrefixFigures(
            prefix=name, calls=sum(s.calls for s in series), retained_per_call=judged.per_call,
            peak=max(peaks) if peaks else None, verdict=judged.verdict, retained=sum(s.retained for s in series),
            arrow=sum(r["arrow"] for r in rows), errors=sum(s.errors for s in series), note="; ".join(judged.notes),
            workers=rows, explanation=judged.judgement.explanation))
    return out


def check_budgets(tasks: Sequence[PrefixFigures], budgets: Mapping[str, Budget]) -> list[PrefixViolation]:
    """Every (prefix, worker, figure) over its budget. A prefix matches a pattern by ``fnmatch``."""
    out = []
    for entry in tasks:
        for pattern, budget in budgets.items():
            if not fnmatch.fnmatchcase(entry.prefix, pattern):
                continue
            for row in entry.workers:
                figures = {"peak": row["peak"], "rss": row["retained"], "arrow": row["arrow"],
                           "leak": row["retained_per_call"] if row["verdict"] == "leak" else None}
                for v in check(figures, budget):
                    out.append(PrefixViolation(figure=v.figure, value=int(v.value), limit=v.limit, prefix=entry.prefix,
                                               worker=row["address"], pattern=pattern))
    return out
