"""The report file of a session (``--leak-report-file``): written at the end, never lost.

The path was checked when the session started (:func:`leakhunt.report.files.check_report_path`).
The file is written after every other ``pytest_sessionfinish`` (JUnit XML is written by then);
if writing still fails - the directory became a file, the disk filled up - the figures go to a
JSON file in the temporary directory instead, and a warning naming both paths is printed after
pytest's own summary, so the failure never hides the results.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest

__all__ = ["ReportFile"]


class ReportFile:
    """Writes the session's test report to ``path`` (registered on the controller only)."""

    def __init__(self, path: Path, build: Callable[[], Any]) -> None:
        self.path = path
        self.build = build  # returns the leakhunt.report.model.TestReport
        self.written = False
        self.problem: str | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        from leakhunt.report import write_report

        report = self.build()
        try:
            write_report(report, self.path)
            self.written = True
        except Exception as exc:  # noqa: BLE001 - any failure here must not hide the results
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
            self.problem = f"could not write the leakhunt report to {str(self.path)!r}: {reason}"
            saved = _save_elsewhere(report)
            if saved is not None:
                self.problem += (f"; the figures were saved to {saved!r} instead "
                                 f"(render them with: leakhunt report {saved} -o {self.path.name})")

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.written:
            terminalreporter.write_line(f"leakhunt report written to {self.path}")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # After pytest's last summary line: the warning is the last thing on the screen.
        if self.problem is None:
            return
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        message = f"leakhunt: warning: {self.problem}"
        if reporter is not None:
            reporter.write_line(message, yellow=True, bold=True)
        else:
            print(message, file=sys.stderr)


def _save_elsewhere(report: Any) -> str | None:
    """The report as JSON in the temporary directory; None when even that fails."""
    from leakhunt.report import JsonReport

    try:
        fd, path = tempfile.mkstemp(prefix="leakhunt-report-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            JsonReport(report).render(file)
        return path
    except Exception:  # noqa: BLE001
        return None
