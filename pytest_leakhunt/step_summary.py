"""A CI job's summary page: when ``GITHUB_STEP_SUMMARY`` names a file, a session that reports
(``--leak-report``, ``--leak-report-file``, ``--leak-baseline``) appends its Markdown summary to it
(:class:`leakhunt.report.markdown.MarkdownSummary`: the worst tests, regressions, leaks).

GitHub Actions sets the variable for every step and renders what the step appended on the run's
page. Only the process that runs the session writes (the xdist controller, never a worker), once;
a file that cannot be written is a warning at the end, never a failure of the session.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_leakhunt.session import LeakHunt

__all__ = ["ENV", "PLUGIN_NAME", "StepSummary"]

ENV = "GITHUB_STEP_SUMMARY"
PLUGIN_NAME = "leakhunt-step-summary"


class StepSummary:
    """Appends the session's Markdown summary to the file ``path``."""

    def __init__(self, owner: LeakHunt, path: str) -> None:
        self.owner = owner
        self.path = path
        self.problem: str | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        from leakhunt.report.markdown import MarkdownSummary

        regressions = self.owner.regressions
        summary = MarkdownSummary(self.owner.build_report(),
                                  comparison=regressions.comparison if regressions is not None else None,
                                  baseline=regressions.shown if regressions is not None else "the baseline",
                                  top=self.owner.settings.report_top,
                                  warn_only=self.owner.settings.regression_warn)
        try:
            with open(self.path, "a", encoding="utf-8") as file:
                summary.render(file)
        except OSError as exc:
            self.problem = f"could not append the summary to {ENV}={self.path!r}: {exc.strerror or exc}"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.problem is not None:
            terminalreporter.write_line(f"leakhunt: warning: {self.problem}", yellow=True)


def wanted(owner: LeakHunt) -> str | None:
    """The file to append to: ``GITHUB_STEP_SUMMARY`` in a session that reports, else None."""
    path = os.environ.get(ENV, "").strip()
    return path if path and owner.reporting else None
