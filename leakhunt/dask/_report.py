"""The cluster report: per task prefix and per worker, merged on the client. Data only.

Built from what :func:`leakhunt.dask._worker.collect` returns on each worker. ``to_dict()`` is
the JSON form (``from_dict`` reads it back); ``explain()`` is the text; the HTML page is
:class:`leakhunt.report.cluster.ClusterHtmlReport`.
"""

from __future__ import annotations

import fnmatch
import statistics
from dataclasses import dataclass, field
from typing import Any, Mapping

from leakhunt.budget import Budget, Violation, check
from leakhunt.explanation import Root
from leakhunt.oom import Diagnosis
from leakhunt.units import format_size

__all__ = ["ClusterReport", "PrefixFigures", "PrefixViolation", "WorkerFigures", "SCHEMA", "SCHEMA_VERSION",
           "check_budgets", "merge", "worker_verdict", "VERDICTS"]

SCHEMA = "leakhunt-cluster-report"
SCHEMA_VERSION = 1

#: What a prefix's verdict means.
VERDICTS = {
    "leak": "its tasks leave memory behind call after call (confirmed over a second window)",
    "ok": "no growth call after call (a warm-up or a bounded cache is not a leak)",
    "suspect": "grew over a window of calls; the block ended before the confirming window did",
    "unjudged": "too few calls on any worker to judge (needs warm-up + one window)",
}

#: Budget keywords a cluster budget accepts, and what they limit for a prefix on one worker.
BUDGET_FIGURES = {
    "peak": "highest task peak above its start",
    "rss": "memory its tasks left behind in all",
    "arrow": "Arrow pool growth its tasks left behind",
    "leak": "confirmed growth per call",
}


def _oom_text(diagnosis: Diagnosis, present: set[str]) -> list[str]:
    lines = [f"    {line}" for line in diagnosis.lines()]
    if diagnosis.limit.where and diagnosis.limit.where not in present:
        lines.append("      (this worker left the cluster afterwards: restarted or killed)")
    return lines


def worker_verdict(entry: Mapping[str, Any]) -> str:
    """The verdict of one prefix on one worker, from its hunt."""
    hunt = entry.get("hunt") or {}
    if hunt.get("leaking"):
        return "leak"
    if entry.get("confirming"):
        return "suspect"
    if entry.get("judged"):
        return "ok"
    return "unjudged"


@dataclass(frozen=True)
class PrefixFigures:
    """A task prefix over the whole cluster, with its figures on each worker."""

    prefix: str
    calls: int
    retained_per_call: int | None  # bytes per call (the confirmed slope for a leak)
    peak: int | None  # highest task peak above its start, on any worker
    verdict: str  # leak | ok | suspect | unjudged
    retained: int = 0  # memory its tasks left behind, all workers
    arrow: int = 0  # Arrow pool growth its tasks left behind, all workers
    errors: int = 0
    note: str = ""
    workers: tuple[dict[str, Any], ...] = ()  # per worker: address, calls, peak, retained, verdict, hunt

    def to_dict(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "calls": self.calls, "retained_per_call": self.retained_per_call,
                "peak": self.peak, "verdict": self.verdict, "retained": self.retained, "arrow": self.arrow,
                "errors": self.errors, "note": self.note, "workers": [dict(w) for w in self.workers]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrefixFigures:
        return cls(prefix=str(data["prefix"]), calls=int(data["calls"]), retained_per_call=data.get("retained_per_call"),
                   peak=data.get("peak"), verdict=str(data["verdict"]), retained=int(data.get("retained", 0)),
                   arrow=int(data.get("arrow", 0)), errors=int(data.get("errors", 0)), note=str(data.get("note", "")),
                   workers=tuple(dict(w) for w in data.get("workers", ())))


_WORKER_FIGURES = ("rss", "managed", "unmanaged", "python_heap", "numpy", "arrow", "allocator_retention",
                   "file_backed", "unexplained")


@dataclass(frozen=True)
class WorkerFigures:
    """One worker: resident memory, Dask's managed part, and the unmanaged rest by kind."""

    address: str
    rss: int | None = None
    managed: int | None = None
    unmanaged: int | None = None
    python_heap: int | None = None
    numpy: int | None = None
    arrow: int | None = None
    allocator_retention: int | None = None
    file_backed: int | None = None  # code and libraries mapped from files
    unexplained: int | None = None
    survivors: tuple[Root, ...] = ()
    nthreads: int | None = None
    memory_limit: int | None = None
    settled: bool = False
    error: str = ""  # why this worker has no figures

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"address": self.address}
        out.update({name: getattr(self, name) for name in _WORKER_FIGURES})
        out.update(survivors=[r.to_dict() for r in self.survivors], nthreads=self.nthreads,
                   memory_limit=self.memory_limit, settled=self.settled, error=self.error)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkerFigures:
        return cls(address=str(data["address"]), **{name: data.get(name) for name in _WORKER_FIGURES},
                   survivors=tuple(Root.from_dict(r) for r in data.get("survivors") or ()),
                   nthreads=data.get("nthreads"), memory_limit=data.get("memory_limit"),
                   settled=bool(data.get("settled", False)), error=str(data.get("error", "")))

    def split_text(self) -> str:
        """'rss 250 MiB = managed 20 MiB + unmanaged 230 MiB' and the unmanaged split."""
        if self.error:
            return f"no figures: {self.error}"
        head = (f"rss {format_size(self.rss)} = managed {format_size(self.managed)} + "
                f"unmanaged {format_size(self.unmanaged)}")
        retention = (f"allocator kept {format_size(self.allocator_retention)} (settling gave it back: not a leak)"
                     if self.allocator_retention is not None else "allocator retention not measured (settle to see it)")
        arrow = f"Arrow pool {format_size(self.arrow)}" if self.arrow is not None else "Arrow pool n/a (pyarrow not imported)"
        live = f"live data: numpy {format_size(self.numpy)}, {arrow}, Python heap {format_size(self.python_heap)}"
        rest = f"code and libraries {format_size(self.file_backed)}, unexplained {format_size(self.unexplained)}"
        return f"{head}\n{live}\n{retention}; {rest}"


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
    oom: tuple[Diagnosis, ...] = ()  # workers' out-of-memory diagnoses (leakhunt.dask._oom), oldest first

    # ------------------------------------------------------------------ forms
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "version": self.version,
            "tasks": [t.to_dict() for t in self.tasks],
            "workers": [w.to_dict() for w in self.workers],
            "lost_workers": list(self.lost_workers),
            "notes": list(self.notes),
            "settings": dict(self.settings),
            "violations": [{"prefix": v.prefix, "worker": v.worker, "figure": v.figure, "value": v.value,
                            "limit": v.limit, "pattern": v.pattern} for v in self.violations],
            "seconds": self.seconds,
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

    def write(self, path: str | Any) -> Any:
        """Write the report to ``path`` atomically: ``.json`` or ``.html``."""
        from leakhunt.report.cluster import write_cluster_report

        return write_cluster_report(self, path)

    # ------------------------------------------------------------------ text
    def explain(self) -> str:
        return "\n".join(self.lines())

    def __str__(self) -> str:
        return self.explain()

    def _oom_lines(self) -> list[str]:
        if not self.oom:
            return []
        present = {w.address for w in self.workers if not w.error}
        lines = ["  out-of-memory guard: workers near their memory limit, diagnosed before the nanny's restart"]
        for diagnosis in self.oom:
            lines.extend(_oom_text(diagnosis, present))
        return lines

    def lines(self) -> list[str]:
        measured = [w for w in self.workers if not w.error]
        head = f"leakhunt on the cluster: {len(measured)} worker" + ("" if len(measured) == 1 else "s")
        if self.tasks:
            head += f", {len(self.tasks)} task prefix" + ("" if len(self.tasks) == 1 else "es")
            head += f", {len(self.leaking)} leaking"
        lines = [head]
        for v in self.violations:
            lines.append(f"  BUDGET BROKEN: {v}")
        if self.tasks:
            lines.append("  tasks (peak: highest task peak above its start; left/call: memory left behind per call)")
            width = max(6, *(len(t.prefix) for t in self.tasks))
            lines.append(f"    {'prefix':<{width}}  {'calls':>6}  {'peak':>10}  {'left/call':>11}  verdict")
            for t in self.tasks:
                verdict = t.verdict.upper() if t.verdict == "leak" else t.verdict
                lines.append(f"    {t.prefix:<{width}}  {t.calls:>6}  {format_size(t.peak):>10}  "
                             f"{format_size(t.retained_per_call, signed=True):>11}  {verdict}"
                             + (f" ({t.note})" if t.note else ""))
        if self.workers:
            lines.append("  workers (unmanaged memory: a leak, or not released to the OS?)")
        for w in self.workers:
            threads = f", {w.nthreads} thread" + ("" if w.nthreads == 1 else "s") if w.nthreads else ""
            lines.append(f"    {w.address}{threads}")
            lines.extend(f"      {line}" for line in w.split_text().splitlines())
            if w.survivors:
                lines.append("      biggest survivors (what keeps them alive):")
                for root in w.survivors:
                    lines.append(f"        {root.headline()}:")
                    lines.append(f"          {root.text}")
        for address in self.lost_workers:
            lines.append(f"    {address}: left the cluster during the block; its figures are lost")
        lines.extend(self._oom_lines())
        for note in self.notes:
            lines.append(f"  ({note})")
        return lines


#: A prefix's calls left memory behind one after another, and the worker had given it back by
#: the end of the block (a P2P shuffle holds its transfers' buffers until it unpacks them).
RELEASED = "grew call after call, then was given back before the block ended: held for later work, not a leak"


def _released(rows: list[dict[str, Any]], growth: int | None) -> None:
    """A leak must still be there at the end: on a worker whose unmanaged memory grew less over
    the block (settled) than half of what its leaking prefixes left behind, they were not leaks."""
    leaking = [r for r in rows if r["verdict"] == "leak"]
    held = sum(r["retained"] for r in leaking)
    if growth is None or held <= 0 or growth >= held / 2:
        return
    for row in leaking:
        row["verdict"], row["released"] = "ok", True


def merge(collected: Mapping[str, Mapping[str, Any]]) -> list[PrefixFigures]:
    """Per-prefix figures over every worker, from each worker's ``collect`` result."""
    by_prefix: dict[str, list[dict[str, Any]]] = {}
    for address, result in collected.items():
        on_worker: list[dict[str, Any]] = []
        prefixes = ((result.get("tasks") or {}).get("prefixes") or {})
        for name, entry in prefixes.items():
            hunt = entry.get("hunt") or {}
            calls = int(entry.get("calls", 0))
            verdict = worker_verdict(entry)
            per_call = hunt.get("per_call") if verdict in ("leak", "ok", "suspect") else None
            if per_call is None and calls:
                per_call = int(entry.get("retained", 0)) // calls
            row = {
                "address": address, "calls": calls, "errors": int(entry.get("errors", 0)),
                "peak": entry.get("peak"), "retained": int(entry.get("retained", 0)),
                "arrow": int(entry.get("arrow", 0)), "retained_per_call": per_call, "verdict": verdict,
                "cleared": hunt.get("note"), "released": False,
                "settled_calls": int(entry.get("settled_calls", 0)), "hunt": hunt,
            }
            on_worker.append(row)
            by_prefix.setdefault(name, []).append(row)
        _released(on_worker, (result.get("tasks") or {}).get("unmanaged_growth"))
    out = []
    for name, rows in sorted(by_prefix.items()):
        verdicts = {r["verdict"] for r in rows}
        verdict = next((v for v in ("leak", "suspect", "ok") if v in verdicts), "unjudged")
        pool = [r for r in rows if r["verdict"] == verdict] or rows
        values = [r["retained_per_call"] for r in pool if r["retained_per_call"] is not None]
        per_call = (max(values) if verdict == "leak" else int(statistics.median(values))) if values else None
        note = ""
        if verdict == "leak":
            note = f"confirmed on {len(pool)} of {len(rows)} worker" + ("" if len(rows) == 1 else "s")
        elif verdict == "ok" and any(r["released"] for r in rows):
            note = RELEASED
        elif verdict == "ok" and any(r["cleared"] for r in rows):
            note = "warm-up or bounded cache: grew at first, then stopped"
        peaks = [r["peak"] for r in rows if r["peak"] is not None]
        out.append(PrefixFigures(
            prefix=name, calls=sum(r["calls"] for r in rows), retained_per_call=per_call,
            peak=max(peaks) if peaks else None, verdict=verdict, retained=sum(r["retained"] for r in rows),
            arrow=sum(r["arrow"] for r in rows), errors=sum(r["errors"] for r in rows), note=note,
            workers=tuple(rows)))
    return out


def check_budgets(tasks: list[PrefixFigures] | tuple[PrefixFigures, ...],
                  budgets: Mapping[str, Budget]) -> list[PrefixViolation]:
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
