"""Renderers of the test report (pytest plugin): aggregate first, then ``render(file)``.

``TextReport`` (terminal), ``JsonReport`` (versioned schema), ``HtmlReport`` (self-contained page).
"""

from __future__ import annotations

import os
from pathlib import Path

from leakhunt.report.files import write_atomic
from leakhunt.report.html import HtmlReport
from leakhunt.report.json_report import JsonReport
from leakhunt.report.model import SCHEMA, SCHEMA_VERSION, SessionFigures, TestRecord, TestReport
from leakhunt.report.text import TextReport

__all__ = [
    "HtmlReport",
    "JsonReport",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SessionFigures",
    "TestRecord",
    "TestReport",
    "TextReport",
    "write_atomic",
    "write_report",
]


def write_report(report: TestReport, path: str | os.PathLike[str]) -> Path:
    """Write ``report`` to ``path`` atomically; the suffix (.json, .html) picks the format."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return write_atomic(path, JsonReport(report).render)
    if suffix in (".html", ".htm"):
        return write_atomic(path, HtmlReport(report).render)
    raise ValueError(f"unknown report format for {str(path)!r}: the file name must end in .json or .html")
