"""Renderers of the cluster report (``leakhunt.dask``): JSON and a self-contained HTML page.

They take the report's dict form (``ClusterReport.to_dict()``, or a saved JSON file read back),
so rendering never needs ``distributed``. The HTML page is a Jinja2 template of the shared set
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
from leakhunt.report.files import check_report_path, write_atomic
from leakhunt.report.templating import render

__all__ = ["ClusterJsonReport", "ClusterHtmlReport", "write_cluster_report", "unmanaged_svg", "series_svg"]

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


class ClusterHtmlReport:
    """``ClusterHtmlReport(report).render(file)``: one page, inline CSS and SVG, no scripts or network."""

    def __init__(self, report: Any) -> None:
        self.data = _as_dict(report)

    def render(self, file: IO[str]) -> None:
        charts = {"unmanaged": unmanaged_svg(self.data.get("workers") or ()),
                  "series": {t["prefix"]: series_svg(t) for t in self.data.get("tasks") or ()}}
        render(_TEMPLATE, file, report=self.data, charts=charts, advice=self.data.get("advice") or [],
               version=self.data.get("version") or __version__)


def write_cluster_report(report: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``report`` to ``path`` atomically; the suffix (.json, .html, .htm) picks the format,
    by the rule of every report path (:func:`leakhunt.report.files.check_report_path`, which
    raises :class:`~leakhunt.report.files.ReportPathError` naming the path and why)."""
    checked = check_report_path(path, option="report path", formats=("json", "html"))
    render = ClusterJsonReport(report).render if checked.format == "json" else ClusterHtmlReport(report).render
    return write_atomic(checked.path, render)
