"""What the guard writes when memory crosses its threshold: the diagnosis, as data and as text.

A :class:`Diagnosis` is taken in three steps, each written as it is done, so that a kill that
lands during one still leaves the ones before: :func:`figures` (microseconds: the figure, the
limit, this process's resident memory, the Arrow pool, the traced total), :func:`alive` (the
biggest buffers alive with one path from a root to each, grouped by root, through
:func:`leakhunt.attribution.survivors`; the biggest allocation sites when tracemalloc is
tracing) and :func:`split` (resident memory by kind through :func:`leakhunt.census.census`, a
walk of the whole heap: about two thirds of a diagnosis here, benchmarks/oom_watcher.py).

The report file holds every crossing of the run, newest last: JSON (``to_dict``) or text.
"""

from __future__ import annotations

import os
import sys
import time
import tracemalloc
from dataclasses import dataclass, field, replace
from typing import IO, Any, Mapping

from leakhunt import probes
from leakhunt.explanation import Root, Site
from leakhunt.oom._limits import Limit
from leakhunt.report.explain_text import root_headline, root_lines, sites_lines
from leakhunt.units import format_size

__all__ = ["SCHEMA", "Diagnosis", "alive", "figures", "jump_note", "largest_here", "render_report", "report_dict",
           "split"]

SCHEMA = "leakhunt-oom-report"
SCHEMA_VERSION = 1

#: Buffers from this size up are followed to their roots at a crossing.
MIN_BUFFER = 1 << 20

# key -> label of the split of resident memory
_WHERE = (("numpy", "numpy buffers"), ("arrow", "Arrow pool"), ("python", "Python heap"),
          ("pandas", "pandas hash tables"),
          ("file_backed", "code and libraries (file-backed)"), ("unexplained", "unexplained (native, allocator)"))


@dataclass(frozen=True)
class Diagnosis:
    """One crossing of the threshold: the figures, what was alive, and what the guard did.

    ``value`` is the figure the limit applies to when the guard saw it over ``threshold``;
    ``before`` the last sample below, ``interval`` seconds earlier at most. ``where`` splits
    this process's resident memory (keys numpy, arrow, python, pandas, file_backed, unexplained;
    a value is None where unavailable). ``roots`` are the biggest buffers alive grouped by the
    root that keeps them; ``sites`` the biggest allocation sites when tracemalloc traces.
    ``context`` is what the front end was running (``{"test": nodeid}``, ``{"tasks": [...]}``).
    ``largest`` says whether this process is the one the OOM killer picks first among those
    sharing the limit (None where the limit is this process's own). ``complete`` is False for
    the first write, taken before the search of what is alive.
    """

    number: int
    pid: int
    at: float  # time.time() of the crossing
    elapsed: float  # seconds since the guard started
    limit: Limit
    threshold: int
    threshold_text: str  # as the user gave it: "90%", "1.5 GiB"
    value: int
    before: int | None = None
    interval: float = 0.0
    rss: int | None = None
    arrow: int | None = None
    traced: int | None = None
    where: Mapping[str, int | None] = field(default_factory=dict)
    roots: tuple[Root, ...] = ()
    unrooted: int = 0  # bytes of big buffers no root was found for within the search's bounds
    sites: tuple[Site, ...] = ()
    context: Mapping[str, Any] = field(default_factory=dict)
    action: str = "continue"
    largest: bool | None = None
    complete: bool = False
    seconds: float = 0.0  # what taking it cost
    notes: tuple[str, ...] = ()

    # ------------------------------------------------------------------ forms
    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number, "pid": self.pid, "at": self.at, "elapsed": self.elapsed,
            "limit": self.limit.to_dict(), "threshold": self.threshold, "threshold_text": self.threshold_text,
            "value": self.value, "before": self.before, "interval": self.interval, "rss": self.rss,
            "arrow": self.arrow, "traced": self.traced, "where": dict(self.where),
            "roots": [r.to_dict() for r in self.roots], "unrooted": self.unrooted,
            "sites": [s.to_dict() for s in self.sites], "context": dict(self.context), "action": self.action,
            "largest": self.largest, "complete": self.complete, "seconds": self.seconds, "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Diagnosis:
        return cls(
            number=int(data["number"]), pid=int(data["pid"]), at=float(data["at"]), elapsed=float(data["elapsed"]),
            limit=Limit.from_dict(data["limit"]), threshold=int(data["threshold"]),
            threshold_text=str(data.get("threshold_text", "")), value=int(data["value"]),
            before=data.get("before"), interval=float(data.get("interval", 0.0)), rss=data.get("rss"),
            arrow=data.get("arrow"), traced=data.get("traced"), where=dict(data.get("where") or {}),
            roots=tuple(Root.from_dict(r) for r in data.get("roots") or ()), unrooted=int(data.get("unrooted", 0)),
            sites=tuple(Site.from_dict(s) for s in data.get("sites") or ()), context=dict(data.get("context") or {}),
            action=str(data.get("action", "continue")), largest=data.get("largest"),
            complete=bool(data.get("complete", False)), seconds=float(data.get("seconds", 0.0)),
            notes=tuple(str(n) for n in data.get("notes") or ()),
        )

    # ------------------------------------------------------------------ text
    def headline(self) -> str:
        share = 100 * self.value / self.limit.value if self.limit.value else 0.0
        return (f"{self.limit.figure} {format_size(self.value)} ({share:.0f}% of the limit) crossed the "
                f"threshold {self.threshold_text} ({format_size(self.threshold)}) of the memory limit "
                f"{self.limit.describe()}")

    def running_text(self) -> str:
        """What was running: 'test_x.py::test_y', 'tasks: process-1 (2 running)', ''."""
        parts = []
        for key, value in self.context.items():
            if isinstance(value, (list, tuple)):
                value = ", ".join(str(v) for v in value) or "none"
            parts.append(f"{key}: {value}")
        return "; ".join(parts)

    def where_text(self) -> str:
        parts = []
        for key, label in _WHERE:
            if key in self.where:
                value = self.where[key]
                parts.append(f"{label} {format_size(value)}" if value is not None else f"{label} n/a")
        return ", ".join(parts)

    def lines(self) -> list[str]:
        lines = [f"leakhunt OOM guard: crossing {self.number} after {self.elapsed:.1f} s (pid {self.pid})",
                 "  " + self.headline()]
        if self.before is not None:
            lines.append(f"  the sample before saw {format_size(self.before)} (samples every "
                         f"{self.interval * 1000:.0f} ms)")
        running = self.running_text()
        if running:
            lines.append(f"  running: {running}")
        figures = [f"rss {format_size(self.rss)}"]
        if self.arrow is not None:
            figures.append(f"Arrow pool {format_size(self.arrow)}")
        if self.traced is not None:
            figures.append(f"traced {format_size(self.traced)}")
        lines.append("  this process: " + ", ".join(figures))
        if self.where:
            lines.append("  where it lives: " + self.where_text())
        lines.extend(self._alive_lines())
        if self.sites:
            lines.extend(sites_lines("  biggest allocation sites alive (traced):", self.sites))
        if self.largest is False:
            lines.append("  (another process sharing the limit is bigger: the kernel would kill it first)")
        for note in self.notes:
            lines.append(f"  ({note})")
        return lines

    def _alive_lines(self) -> list[str]:
        if not self.complete:
            return ["  alive now: not found yet (the search was still running when this was written)"]
        if not self.roots:
            return [(f"  alive now: no buffer of {format_size(MIN_BUFFER)} or more with a root "
                    f"({format_size(self.unrooted)} without one)")]
        lines = ["  alive now, biggest roots (what keeps the memory):"]
        for root in self.roots:
            lines.extend(root_lines(root))
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def summary(self, path: str | None = None) -> str:
        """A few lines for stderr: the crossing, the biggest root, where the diagnosis is."""
        share = 100 * self.value / self.limit.value if self.limit.value else 0.0
        lines = [(f"leakhunt: memory at {share:.0f}% of its limit ({format_size(self.value)} of "
                 f"{format_size(self.limit.value)}, {self.limit.source}); threshold {self.threshold_text}")]
        if self.roots:
            lines.append(f"leakhunt: biggest: {root_headline(self.roots[0])}")
        if path:
            lines.append(f"leakhunt: diagnosis written to {path}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# taking it


def figures(**kwargs: Any) -> Diagnosis:
    """The cheap part, read at once: the keyword arguments of :class:`Diagnosis` plus this
    process's resident memory, Arrow pool and traced total."""
    diagnosis = Diagnosis(pid=os.getpid(), rss=probes.rss(), arrow=probes.arrow(), traced=probes.traced(), **kwargs)
    note = jump_note(diagnosis)
    return replace(diagnosis, notes=(*diagnosis.notes, note)) if note else diagnosis


def jump_note(diagnosis: Diagnosis) -> str | None:
    """When memory rose between two samples by more than the room the threshold leaves below
    the limit: one allocation that big passes the limit before any sample sees it."""
    if diagnosis.before is None:
        return None
    rise = diagnosis.value - diagnosis.before
    room = diagnosis.limit.value - diagnosis.threshold
    if rise <= room:
        return None
    return (f"memory rose {format_size(rise)} between two samples ({diagnosis.interval * 1000:.0f} ms), more "
            f"than the {format_size(room)} the threshold leaves below the limit: a jump that big passes the "
            f"limit between samples, and a kill then leaves only what the last sample saw")


def alive(diagnosis: Diagnosis, *, scope: Any = None, paths: int = 5, timeout: float = 10.0) -> Diagnosis:
    """``diagnosis`` with what is alive: the biggest buffers grouped by the root that keeps them
    (with one path each and its size), the allocation sites and the split of resident memory
    when tracemalloc traces (one snapshot), and whether this process is the biggest sharing the
    limit. Untraced, the split is left to :func:`split` (a heap walk: the slowest part).

    ``scope`` is what :func:`leakhunt.attribution.survivors` asks (``created_here(obj)``): on a
    Dask worker it leaves out the data Dask manages.
    """
    from leakhunt.attribution import survivors

    started = time.perf_counter()
    notes = list(diagnosis.notes)
    found = survivors(scope, min_size=MIN_BUFFER, max_roots=paths, timeout=timeout)
    where: Mapping[str, int | None] = {}
    sites: tuple[Site, ...] = ()
    if tracemalloc.is_tracing():
        where, sites = _traced(paths)
    if found.skipped:
        notes.append(f"{format_size(found.skipped)} in further buffers not searched")
    return replace(diagnosis, where=where, roots=found.roots, unrooted=found.unrooted, sites=sites,
                   largest=largest_here(diagnosis.limit), complete=True, notes=tuple(notes),
                   seconds=diagnosis.seconds + time.perf_counter() - started)


def split(diagnosis: Diagnosis) -> Diagnosis:
    """``diagnosis`` with the split of resident memory by kind, from a
    :func:`leakhunt.census.census` walk (when tracing, :func:`alive` took it from tracemalloc's
    domains: under tracing the walk takes many times longer, as every allocation it makes is
    traced)."""
    if diagnosis.where:
        return diagnosis
    from leakhunt.census import census

    started = time.perf_counter()
    where = _split(census(settle=False))
    return replace(diagnosis, where=where, seconds=diagnosis.seconds + time.perf_counter() - started)


def _split(taken: Any) -> dict[str, int | None]:
    """Resident memory by kind, from a census: numpy, Arrow, Python heap, file-backed, the rest."""
    return _where(taken.rss, numpy=taken.numpy, python=taken.python_heap, arrow=taken.arrow,
                  file_backed=taken.file_backed)


def _where(rss: int | None, **parts: int | None) -> dict[str, int | None]:
    """``parts`` and what of ``rss`` none of them explains; the Arrow pool only when pyarrow is
    imported."""
    split = {key: value for key, value in parts.items() if not (key == "arrow" and value is None)}
    known = sum(value or 0 for value in split.values())
    split["unexplained"] = None if rss is None else max(0, rss - known)
    return split


def _traced(limit: int) -> tuple[dict[str, int | None], tuple[Site, ...]]:
    """The split from tracemalloc's domains, and the biggest sites, from one snapshot."""
    from leakhunt.tracing import summarise

    rss, anon = probes.rss(), probes.rss_anon()
    file_backed = None if rss is None or anon is None else rss - anon
    try:
        snapshot = tracemalloc.take_snapshot()
    except Exception:  # noqa: BLE001 - a snapshot can fail when memory is short: the rest still stands
        return _where(rss, arrow=probes.arrow(), file_backed=file_backed), ()
    domains = probes.traced_by_domain(snapshot) or {}
    where = _where(rss, numpy=domains.get("numpy"), pandas=domains.get("pandas"), python=domains.get("python"),
                   arrow=probes.arrow(), file_backed=file_backed)
    _, sites, _ = summarise(snapshot, limit=limit, user_only=True)
    return where, sites


# --------------------------------------------------------------------------------------
# who the OOM killer picks


def _oom_score(pid: int | str) -> int | None:
    try:
        with open(f"/proc/{pid}/oom_score", "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def _group_pids(directory: str) -> list[str]:
    """Processes in a cgroup and the groups below it (v1 lists only a group's own members)."""
    pids: list[str] = []
    for current, _, files in os.walk(directory):
        if "cgroup.procs" in files:
            try:
                with open(os.path.join(current, "cgroup.procs")) as f:
                    pids.extend(line.strip() for line in f if line.strip())
            except OSError:
                continue
    return pids


def largest_here(limit: Limit) -> bool | None:
    """Is this process the one the kernel's OOM killer picks first (highest ``oom_score``) among
    the processes sharing ``limit``? None for a limit of this process alone, or unreadable."""
    if limit.figure == "cgroup usage":
        pids = _group_pids(limit.where)
    elif limit.figure == "machine memory in use":
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    else:
        return None
    mine = _oom_score("self")
    if mine is None:
        return None
    me = str(os.getpid())
    others = [s for s in (_oom_score(p) for p in pids if p != me) if s is not None]
    return all(score <= mine for score in others)


# --------------------------------------------------------------------------------------
# the report file


def report_dict(diagnoses: tuple[Diagnosis, ...] | list[Diagnosis]) -> dict[str, Any]:
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "pid": os.getpid(), "argv": list(sys.argv),
            "crossings": [d.to_dict() for d in diagnoses]}


def render_report(diagnoses: tuple[Diagnosis, ...] | list[Diagnosis], fmt: str, file: IO[str]) -> None:
    """The report of every crossing so far: ``fmt`` is ``json`` or ``text``."""
    if fmt == "json":
        import json

        json.dump(report_dict(diagnoses), file, indent=1)
        file.write("\n")
        return
    for i, diagnosis in enumerate(diagnoses):
        if i:
            file.write("\n")
        file.write(str(diagnosis) + "\n")
