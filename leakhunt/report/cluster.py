"""Renderers of the cluster report (``leakhunt.dask``): JSON and a self-contained HTML page.

They take the report's dict form (``ClusterReport.to_dict()``, or a saved JSON file read back),
so rendering never needs ``distributed``. The HTML page is a Jinja2 template in
``leakhunt/report/templates/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any, Mapping

from leakhunt.report.files import check_report_path, write_atomic
from leakhunt.units import format_size

__all__ = ["ClusterJsonReport", "ClusterHtmlReport", "write_cluster_report"]

_TEMPLATE = "cluster.html"


def _as_dict(report: Any) -> Mapping[str, Any]:
    return report.to_dict() if hasattr(report, "to_dict") else report


class ClusterJsonReport:
    """``ClusterJsonReport(report).render(file)``: the report's dict, indented."""

    def __init__(self, report: Any) -> None:
        self.data = _as_dict(report)

    def render(self, file: IO[str]) -> None:
        json.dump(self.data, file, indent=2)
        file.write("\n")


class ClusterHtmlReport:
    """``ClusterHtmlReport(report).render(file)``: one page, inline CSS, no scripts or network."""

    def __init__(self, report: Any) -> None:
        self.data = _as_dict(report)

    def render(self, file: IO[str]) -> None:
        try:
            import jinja2
        except ImportError as exc:
            raise ImportError(f'the HTML cluster report needs Jinja2 ({exc}); install it with: '
                              f'pip install "leakhunt[dask]"') from exc
        env = jinja2.Environment(loader=jinja2.PackageLoader("leakhunt.report", "templates"),
                                 autoescape=True, undefined=jinja2.StrictUndefined)
        env.filters["size"] = lambda value, signed=False: format_size(value, signed=signed)
        file.write(env.get_template(_TEMPLATE).render(report=self.data))


def write_cluster_report(report: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``report`` to ``path`` atomically; the suffix (.json, .html, .htm) picks the format,
    by the rule of every report path (:func:`leakhunt.report.files.check_report_path`, which
    raises :class:`~leakhunt.report.files.ReportPathError` naming the path and why)."""
    checked = check_report_path(path, option="report path", formats=("json", "html"))
    render = ClusterJsonReport(report).render if checked.format == "json" else ClusterHtmlReport(report).render
    return write_atomic(checked.path, render)
