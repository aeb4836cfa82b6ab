"""The report file of a session (``--leak-report-file``): written at the end, never lost, never stale.

The path was checked when the session started (:func:`leakhunt.report.files.check_report_path`).
When the session starts, the file is replaced by a report that says the session is running
(issue 13: a SIGTERM used to leave an older report in place, looking current): if the process
is then killed outright (SIGKILL, the out-of-memory killer), that is what the file says.
The file is written after every other ``pytest_sessionfinish`` (JUnit XML is written by then);
an interrupted end of session (a second Ctrl-C) still writes it (:meth:`ReportFile.write`, from
the plugin's outermost wrapper). If writing fails - the directory became a file, the disk
filled up - the figures go to a JSON file in the temporary directory instead, and a warning
naming both paths is printed after pytest's own summary, so the failure never hides the results.
Only the process that started the session writes: a forked copy of it (a test's ``os.fork()``
whose child runs on into pytest) never overwrites the session's report.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

from leakhunt.process_local import Owner

if TYPE_CHECKING:
    from pytest_leakhunt.signals import SessionSignals

__all__ = ["ReportFile"]


class ReportFile:
    """Writes the session's test report to ``path`` (registered on the controller only).

    ``build(running=False)`` returns the :class:`leakhunt.report.model.TestReport`;
    ``signals_of()`` the session's :class:`~pytest_leakhunt.signals.SessionSignals` (or None),
    which hold SIGINT and SIGTERM while the file is written.
    """

    def __init__(self, path: Path, build: Callable[..., Any],
                 signals_of: Callable[[], SessionSignals | None] = lambda: None) -> None:
        self.path = path
        self.build = build
        self.signals_of = signals_of
        self.owner = Owner()
        self.started = False
        self.attempted = False
        self.written = False
        self.problem: str | None = None

    def pytest_sessionstart(self) -> None:
        from leakhunt.report import write_report

        self.started = True
        try:
            write_report(self.build(running=True), self.path)
        except Exception:  # noqa: BLE001 - the end of the session says what went wrong, if anything
            pass

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        self.write()

    def write(self) -> None:
        """Write the report once; a failure becomes the warning (and a copy elsewhere)."""
        if self.attempted or not self.owner.here():
            return
        self.attempted = True
        from leakhunt.report import write_report

        signals = self.signals_of()
        # A signal that comes while the file is written takes effect once it is complete.
        with signals.deferred() if signals is not None else contextlib.nullcontext():
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
        # The session started but never reached its end: the file still says "running".
        if self.started:
            self.write()
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
