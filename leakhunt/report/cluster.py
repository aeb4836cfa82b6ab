"""Renderers of the cluster report (``leakhunt.dask``): text, JSON and a self-contained HTML page.

The text (:class:`ClusterTextReport`) reads the report object (a
:class:`leakhunt.dask.ClusterReport`); JSON and HTML take the report's dict form
(``ClusterReport.to_dict()``, or a saved JSON file read back), so rendering never needs
``distributed``. The HTML page is a Jinja2 template of the shared set
(``leakhunt/report/templates/``, rendered through :mod:`leakhunt.report.templating` like every
report), with two kinds of charts drawn by :mod:`leakhunt.report.charts`:
each worker's unmanaged memory over the block (what ``distributed.diagnostics.MemorySampler``
shows for the whole cluster, here per worker and without Dask's managed data), and each
prefix's hunt series (what its calls left behind, summed call after call, per worker).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any, Mapping, Sequence

from leakhunt import __version__
from leakhunt.explanation import Root
from leakhunt.report.explain_text import brief_lines, root_lines
from leakhunt.report.files import check_report_path, write_atomic
from leakhunt.report.templating import render
from leakhunt.units import format_size

__all__ = ["ClusterJsonReport", "ClusterHtmlReport", "ClusterTextReport", "write_cluster_report", "unmanaged_svg", "series_svg"]

_TEMPLATE = "cluster.html.j2"
_MiB = 1024 * 1024
_COLOURS = ("#3b6fc4", "#e0762b", "#3a9e6a", "#8e5bb5", "#c9403a", "#6b6b6b")


def _as_dict(report: Any) -> Mapping[str, Any]:
    return report.to_dict() if hasattr(report, "to_dict") else report


class ClusterJsonReport:
    """``ClusterJsonReport(report).render(file)``: the report's dict, indented."""

    def __init__(self, report: Any) -> None:
        self.data = _as_dict(report)

    def render(self, file: IO[str]) -> None:
        json.dump(self.data, file, indent=2)
        file.write("\n")


def unmanaged_svg(workers: Sequence[Mapping[str, Any]], *, element_id: str = "leakhunt-unmanaged") -> str | None:
    """Each worker's unmanaged memory over the block (growth since the watch began), one line each."""
    from leakhunt.report.charts import figure, svg

    lines = [(w["address"], w.get("timeline") or []) for w in workers if len(w.get("timeline") or []) >= 2]
    if not lines:
        return None
    fig = figure(10.5, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    for i, (address, points) in enumerate(lines):
        ax.plot([p[0] for p in points], [p[1] / _MiB for p in points], color=_COLOURS[i % len(_COLOURS)],
                linewidth=1.2, label=address)
    ax.set_xlabel("seconds into the block")
    ax.set_ylabel("unmanaged memory since its start (MiB)")
    ax.axhline(0, color="#999", linewidth=0.6)
    ax.grid(True, linewidth=0.3, alpha=0.7)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    ax.set_title("Unmanaged memory of each worker over the block (at task starts and ends)", fontsize=10)
    fig.tight_layout()
    return svg(fig, element_id=element_id, label="unmanaged memory of each worker over the block")


def _series_of(row: Mapping[str, Any]) -> list[tuple[str, list[int]]]:
    hunt = row.get("hunt") or {}
    out = []
    for key, label in (("series", "first window"), ("confirm_series", "confirmation")):
        for values in (hunt.get(key) or {}).values():
            if len(values) >= 2:
                out.append((label, values))
    return out


def series_svg(task: Mapping[str, Any]) -> str | None:
    """A prefix's hunt series on each worker: memory left behind, summed call after call, for the
    window that made it suspect (or the last judged one) and its confirmation."""
    from leakhunt.report.charts import figure, svg

    lines = [(row["address"], label, values) for row in task.get("workers") or () for label, values in _series_of(row)]
    if not lines:
        return None
    fig = figure(5.2, 2.6)
    ax = fig.add_subplot(1, 1, 1)
    addresses = sorted({address for address, _, _ in lines})
    for address, label, values in lines:
        colour = _COLOURS[addresses.index(address) % len(_COLOURS)]
        ax.plot(range(len(values)), [v / _MiB for v in values], color=colour, marker=".", linewidth=1.1,
                linestyle="-" if label == "confirmation" else "--", label=f"{address} {label}")
    ax.set_xlabel("calls into the window")
    ax.set_ylabel("left behind (MiB)")
    ax.grid(True, linewidth=0.3, alpha=0.7)
    ax.legend(loc="upper left", fontsize=6, framealpha=0.9)
    ax.set_title(f"{task['prefix']}: {task['verdict']}", fontsize=9)
    fig.tight_layout()
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(task["prefix"]))
    return svg(fig, element_id=f"leakhunt-series-{name}", label=f"hunt series of {task['prefix']}")


#: the cluster report's JSON schema name (``leakhunt.dask.ClusterReport.to_dict``)
SCHEMA = "leakhunt-cluster-report"


class ClusterHtmlReport:
    """``ClusterHtmlReport(report).render(file)``: one page, inline CSS and SVG, no scripts or network."""

    def __init__(self, report: Any) -> None:
        self.data = _as_dict(report)

    def render(self, file: IO[str]) -> None:
        charts = {"unmanaged": unmanaged_svg(self.data.get("workers") or ()),
                  "series": {t["prefix"]: series_svg(t) for t in self.data.get("tasks") or ()}}
        # the survivors as objects again: their headline is the explanation text renderer's
        survivors = {w["address"]: [Root.from_dict(r) for r in w.get("survivors") or ()]
                     for w in self.data.get("workers") or ()}
        render(_TEMPLATE, file, report=self.data, charts=charts, advice=self.data.get("advice") or [],
               survivors=survivors, version=self.data.get("version") or __version__)


def write_cluster_report(report: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``report`` to ``path`` atomically; the suffix (.json, .html, .htm) picks the format,
    by the rule of every report path (:func:`leakhunt.report.files.check_report_path`, which
    raises :class:`~leakhunt.report.files.ReportPathError` naming the path and why)."""
    checked = check_report_path(path, option="report path", formats=("json", "html"))
    render = ClusterJsonReport(report).render if checked.format == "json" else ClusterHtmlReport(report).render
    return write_atomic(checked.path, render)


# ---------------------------------------------------------------------------------- text
class ClusterTextReport:
    """``ClusterTextReport(report).lines()``: the cluster report (a
    :class:`leakhunt.dask.ClusterReport`) in words, as ``Watch.report.explain()`` prints it; a
    leak's explanation and the workers' survivors through the one explanation text renderer
    (:mod:`leakhunt.report.explain_text`)."""

    def __init__(self, report: Any) -> None:
        self.report = report

    def render(self, file: IO[str]) -> None:
        file.write("\n".join(self.lines()) + "\n")

    def headline(self) -> str:
        report = self.report
        measured = [w for w in report.workers if not w.error]
        head = f"leakhunt on the cluster: {len(measured)} worker" + ("" if len(measured) == 1 else "s")
        if report.tasks:
            head += f", {len(report.tasks)} task prefix" + ("" if len(report.tasks) == 1 else "es")
            head += f", {len(report.leaking)} leaking"
        return head

    def lines(self) -> list[str]:
        report = self.report
        lines = [self.headline()]
        lines.extend(f"  BUDGET BROKEN: {v}" for v in report.violations)
        lines.extend(_task_lines(report.tasks))
        lines.extend(_worker_lines(report.workers, report.lost_workers))
        lines.extend(self._oom_lines())
        items = report.advice
        if items:
            lines.append("  what to do:")
            lines.extend(f"    - {item}" for item in items)
        lines.extend(f"  ({note})" for note in report.notes)
        return lines

    def _oom_lines(self) -> list[str]:
        if not self.report.oom:
            return []
        present = {w.address for w in self.report.workers if not w.error}
        lines = ["  out-of-memory guard: workers near their memory limit, diagnosed before the nanny's restart"]
        for diagnosis in self.report.oom:
            lines.extend(_oom_text(diagnosis, present))
        return lines


def _oom_text(diagnosis: Any, present: set[str]) -> list[str]:
    lines = [f"    {line}" for line in diagnosis.lines()]
    if diagnosis.limit.where and diagnosis.limit.where not in present:
        lines.append("      (this worker left the cluster afterwards: restarted or killed)")
    return lines


def _task_lines(tasks: Sequence[Any]) -> list[str]:
    if not tasks:
        return []
    lines = ["  tasks (peak: highest task peak above its start; left/call: memory left behind per call)"]
    width = max(6, *(len(t.prefix) for t in tasks))
    lines.append(f"    {'prefix':<{width}}  {'calls':>6}  {'peak':>10}  {'left/call':>11}  verdict")
    for t in tasks:
        where = f" ({t.note})" if t.note and t.verdict == "leak" else ""
        lines.append(f"    {t.prefix:<{width}}  {t.calls:>6}  {format_size(t.peak):>10}  "
                     f"{_per_call_text(t):>11}  {t.words}{where}")
    if any(t.retained_per_call is None and t.calls for t in tasks):
        lines.append("    (n/a: several threads per worker, and the prefix never ran alone; only a suspect prefix is "
                     "measured alone)")
    for t in tasks:
        if t.explanation is not None and t.verdict == "leak":
            lines.extend(brief_lines(t.explanation, t.prefix))
    lines.extend(_grouped_notes(tasks))
    return lines


def _grouped_notes(tasks: Sequence[Any]) -> list[str]:
    """The notes of the prefixes that are not leaks, one line per kind: too few calls (with the
    counts), cleared when run alone, and each other note with the prefixes it is about."""
    from leakhunt.taskhunt import SHARED_CLEARED

    few = [t for t in tasks if t.verdict == "too_few_calls"]
    cleared = [t for t in tasks if t.words == "ok (cleared when run alone)"]
    lines = []
    if few:
        lines.append("  too few calls to judge, even over all workers together: "
                     + ", ".join(f"{t.prefix} ({t.calls})" for t in few)
                     + "; a hunt needs its warm-up calls on each worker and two windows of at least 5 calls: run "
                       "more partitions, or watch(..., warmup=0, repeat=5) for shorter windows")
    if cleared:
        lines.append(f"  {', '.join(t.prefix for t in cleared)}: {SHARED_CLEARED}")
    by_note: dict[str, list[str]] = {}
    for t in tasks:
        if t.verdict != "leak" and t not in few and t not in cleared and t.note:
            by_note.setdefault(t.note, []).append(t.prefix)
    lines.extend(f"  {', '.join(names)}: {note}" for note, names in by_note.items())
    return lines


def _per_call_text(task: Any) -> str:
    if task.retained_per_call is None:
        return "n/a" if task.calls else ""
    return format_size(task.retained_per_call, signed=True)


def _worker_lines(workers: Sequence[Any], lost: Sequence[str]) -> list[str]:
    lines = ["  workers (unmanaged memory: a leak, or not released to the OS?)"] if workers else []
    for w in workers:
        lines.append(f"    {worker_heading(w)}")
        lines.extend(f"      {line}" for line in worker_split_lines(w))
        if w.survivors:
            lines.append("      biggest survivors (what keeps them alive):")
            for root in w.survivors:
                lines.extend(root_lines(root, "        ", site=False))
    lines.extend(f"    {address}: left the cluster during the block; its figures are lost" for address in lost)
    return lines


def worker_heading(w: Any) -> str:
    """'tcp://..., 2 threads, memory limit 4.0 GiB (target 60 %, spill 70 %, ...)'."""
    text = w.address
    if w.nthreads:
        text += f", {w.nthreads} thread" + ("" if w.nthreads == 1 else "s")
    if w.memory_limit:
        shares = ", ".join(f"{name} {value * 100:.0f} %" for name, value in w.fractions.items()
                           if isinstance(value, (int, float)) and not isinstance(value, bool))
        text += f", memory limit {format_size(w.memory_limit)}" + (f" ({shares})" if shares else "")
    return text


def worker_split_lines(w: Any) -> list[str]:
    """A worker's memory in lines: now against Dask's managed part, and the split."""
    if w.error:
        return [f"no figures: {w.error}"]
    if w.settled and w.rss_before_settle is not None:
        now = f"rss {format_size(w.rss)} now (settled; {format_size(w.rss_before_settle)} before)"
    else:
        now = f"rss {format_size(w.rss)}"
    lines = [f"{now} = managed {format_size(w.managed)} + unmanaged {format_size(w.unmanaged)}; "
             f"spilled to disk {format_size(w.spilled)}"]
    if w.unmanaged_old is not None and w.unmanaged_recent is not None:
        lines.append(f"Dask's scheduler: unmanaged old {format_size(w.unmanaged_old)}, "
                     f"recent {format_size(w.unmanaged_recent)}")
    arrow = f"Arrow pool {format_size(w.arrow)}" if w.arrow is not None else "Arrow pool n/a (pyarrow not imported)"
    lines.append(f"live data: numpy {format_size(w.numpy)}, {arrow}, Python heap {format_size(w.python_heap)}")
    retention = (f"allocator kept {format_size(w.allocator_retention)}: leakhunt's settle gave it back (not a leak)"
                 if w.allocator_retention is not None
                 else "allocator retention not measured (settle to see it)")
    lines.append(f"{retention}; code and libraries {format_size(w.file_backed)}, "
                 f"unexplained {format_size(w.unexplained)}")
    return lines
