"""Every report leakhunt writes, split by what is reported; each a model and its renderers.

The test report (pytest plugin): :class:`TestReport` and :class:`TestRecord`
(:mod:`~leakhunt.report.model`), rendered by ``TextReport`` (terminal and ``.txt``),
``JsonReport`` (versioned schema) and ``HtmlReport``; :func:`write_report` picks one by suffix.
The run report (``leakhunt run``): :class:`leakhunt.report.run_report.RunReport`. The cluster
report (``leakhunt.dask``): :mod:`leakhunt.report.cluster`. Explanations in words come from one
renderer, :mod:`leakhunt.report.explain_text`; HTML pages from one template set,
:mod:`leakhunt.report.templating`. Report paths follow one rule for every front end
(:func:`check_report_path`): the suffix picks the format.
"""

from __future__ import annotations

import os
from pathlib import Path

from leakhunt.report.files import FORMATS, ReportPath, ReportPathError, check_report_path, write_atomic
from leakhunt.report.html import HtmlReport
from leakhunt.report.json_report import JsonReport
from leakhunt.report.model import SCHEMA, SCHEMA_VERSION, SessionFigures, TestRecord, TestReport
from leakhunt.report.text import TextReport

__all__ = [
    "FORMATS",
    "HtmlReport",
    "JsonReport",
    "ReportPath",
    "ReportPathError",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SessionFigures",
    "TEST_REPORT_FORMATS",
    "TestRecord",
    "TestReport",
    "TextReport",
    "check_report_path",
    "write_atomic",
    "write_report",
]

#: The formats a test report is written in (by suffix: .json, .html or .htm, .txt).
TEST_REPORT_FORMATS = ("json", "html", "text")


def write_report(report: TestReport, path: str | os.PathLike[str] | ReportPath) -> Path:
    """Write ``report`` to ``path`` atomically; the suffix (.json, .html, .txt) picks the format.

    ``ValueError`` (a :class:`ReportPathError`) for a suffix that names no test report format.
    """
    if isinstance(path, ReportPath):
        target, fmt = path.path, path.format
    else:
        target = Path(path)
        fmt = FORMATS.get(target.suffix.lower(), "")
        if fmt not in TEST_REPORT_FORMATS:
            raise ReportPathError(f"unknown report format for {str(path)!r}: the file name must end in "
                                  ".json, .html, .htm or .txt")
    if fmt == "json":
        return write_atomic(target, JsonReport(report).render)
    if fmt == "html":
        return write_atomic(target, HtmlReport(report).render)
    return write_atomic(target, TextReport(report).render)
