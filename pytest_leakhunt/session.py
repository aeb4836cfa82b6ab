"""The plugin object: it owns the run's state and implements the session's hooks.

Per test (only when an option or a marker asks) the hooks of :mod:`pytest_leakhunt.per_test`
run one :class:`leakhunt.lifecycle.Block` around the test and map its judgement to pytest's
outcomes. The process across the session is the library's :class:`leakhunt.lifecycle.SessionMeter`.
In one process a record is kept as it is made; an xdist worker puts it into the phase's report
as ``leakhunt.*`` user properties, which pytest-xdist carries to the controller
(:mod:`pytest_leakhunt.xdist`), and ``--junitxml`` gets the same properties. The session keeps
one small record per test, nothing else.

The session's end: the report says how many collected tests it lacks and why (Ctrl-C, SIGTERM,
``-x``), tests lost with a crashed xdist worker are recorded with the crash as their outcome, and
the kernel's high-water mark, reset before each test, is restored.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, Generator

import pytest

from pytest_leakhunt.options import Settings

if TYPE_CHECKING:
    from leakhunt.lifecycle import SessionMeter
    from leakhunt.probes import Sample
    from leakhunt.report.model import SessionFigures, TestRecord
    from pytest_leakhunt.signals import SessionSignals

__all__ = ["LeakHunt", "PLUGIN_NAME", "WORKER_OUTPUT_KEY"]

PLUGIN_NAME = "leakhunt-session"
WORKER_OUTPUT_KEY = "leakhunt_session"


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class LeakHunt:
    """Owns the run: settings, the records, the session figures."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.worker = _is_worker(config)
        self.worker_id: str | None = config.workerinput.get("workerid") if self.worker else None  # type: ignore[attr-defined]
        self.records: dict[str, TestRecord] = {}
        # the cheap path's tests, made into records when a report is built (per_test.ReportOnly)
        self.rows: list[tuple[str, str, str, Sample | Any, str | None]] = []
        self.sessions: list[SessionFigures] = []
        self.interrupted = False
        self.stopped: str | None = None  # why the session ended early, as pytest said it
        self.collected: list[str] | None = None  # node ids, when a report is written
        self.signals: SessionSignals | None = None
        self.meter: SessionMeter | None = None
        self.reporting = bool(settings.report or settings.report_file) and not self.worker
        # --junitxml shows the records as properties; otherwise only xdist workers need them
        self.properties = self.worker or bool(getattr(config.option, "xmlpath", None))
        self.worker_errors: dict[str, str] = {}
        self._per_test_registered = False
        self.peak_source: Any = None  # --leak-trace=native: leakhunt.native.NativePeakSource
        self.native_note: str | None = None  # why --leak-trace=native cannot be honoured here
        if settings.native:
            self.peak_source, self.native_note = _native_peaks(config)

    # ----------------------------------------------------------------- session
    def pytest_report_header(self, config: pytest.Config) -> str | list[str] | None:
        described = self.settings.describe()
        if self.native_note:
            return [f"leakhunt: {described}", f"leakhunt: --leak-trace=native: {self.native_note}"]
        return f"leakhunt: {described}" if described else None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        from pytest_leakhunt.per_test import register, scan_marks

        asked, opted = scan_marks(items)
        budgets = bool(self.settings.budget) or asked
        if (self.settings.active or budgets) and not self._per_test_registered:
            self._per_test_registered = True
            settling = budgets or bool(self.settings.hunt)
            self._start_session(settling)
            register(self, settling=settling, opted=opted)

    def _start_session(self, settling: bool) -> None:
        from leakhunt.lifecycle import SessionMeter

        self.meter = SessionMeter(settling=settling, sample_peaks=self.settings.peak == "sample",
                                  trace=self.settings.trace).start()

    def _end_session(self) -> None:
        if self.meter is None or not self.meter.started:
            return
        from leakhunt.report.model import SessionFigures

        start, end, peak = self.meter.finish()
        figures = SessionFigures(start_rss=start, end_rss=end, peak_rss=peak, worker=self.worker_id)
        if self.worker:
            self.config.workeroutput[WORKER_OUTPUT_KEY] = figures.to_dict()  # type: ignore[attr-defined]
        else:
            self.sessions.append(figures)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.reporting:
            from pytest_leakhunt.signals import SessionSignals

            self.signals = SessionSignals().install()
            if self.config.pluginmanager.has_plugin("dsession"):  # the xdist controller
                from pytest_leakhunt.xdist import Controller

                self.config.pluginmanager.register(Controller(self), "leakhunt-controller")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.reporting:
            self.collected = [item.nodeid for item in session.items]

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.interrupted = True
        if isinstance(excinfo.value, pytest.exit.Exception) and self.stopped is None:
            self.stopped = f"pytest.exit: {excinfo.value.msg}"

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
        # Outermost: our figures are read before any other plugin's end of session, and the
        # report is written even when a second Ctrl-C breaks that end off.
        from pytest_leakhunt.signals import SessionTerminated

        try:
            self._end_session()
            if exitstatus == pytest.ExitCode.INTERRUPTED:
                self.interrupted = True
            reason = session.shouldfail or session.shouldstop
            if isinstance(reason, str) and reason and self.stopped is None:
                self.stopped = reason
            return (yield)  # the report file is written by ReportFile, last
        except SessionTerminated:
            # SIGTERM while the session ends: it is ending already (raised on, it would escape
            # pytest's end of session as an uncaught KeyboardInterrupt); the exit status is 143
            return None
        finally:
            report_file = self.config.pluginmanager.get_plugin("leakhunt-report-file")
            if report_file is not None:
                report_file.write()  # nothing when it is already written
            if self.signals is not None and self.signals.terminated:
                from pytest_leakhunt.signals import TERM_EXIT

                session.exitstatus = TERM_EXIT  # pytest returns it: what a shell shows for SIGTERM

    def build_report(self, running: bool = False) -> Any:
        """The test report as it stands. ``running``: the one written when the session starts,
        which says so (it stays if the process is killed before the end)."""
        import leakhunt
        from leakhunt.report.model import TestReport

        created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        version = str(getattr(leakhunt, "__version__", ""))
        if running:
            return TestReport.running_since(created, settings=self.settings.to_dict(), version=version)
        signalled = self.signals.describe() if self.signals is not None else None
        interrupted = self.interrupted or signalled is not None
        stopped = signalled or self.stopped
        if stopped is None and interrupted:
            stopped = "interrupted"
        self._make_records()
        missing: tuple[str, ...] = ()
        if self.collected is not None:
            records = self.records
            missing = tuple(nodeid for nodeid in self.collected if nodeid not in records)
        return TestReport(
            records=tuple(self.records.values()),
            sessions=tuple(self.sessions),
            settings=self.settings.to_dict(),
            interrupted=interrupted,
            created=created,
            version=version,
            collected=None if self.collected is None else len(self.collected),
            missing=missing,
            stopped=stopped,
        )

    def _make_records(self) -> None:
        """The cheap path's rows become records (once, in one go, when a report is built)."""
        if not self.rows:
            return
        from leakhunt.report.model import TestRecord

        scope = self.settings.scope
        for nodeid, outcome, verdict, figures, note in self.rows:  # figures: a sample, or confirmed
            self.records[nodeid] = TestRecord.from_figures(nodeid, outcome, verdict, scope, figures, note=note)
        self.rows.clear()

    def keep(self, record: TestRecord) -> None:
        """A test's record, made in this process."""
        if self.reporting:
            self.records[record.nodeid] = record

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.worker or not self.settings.report:
            return
        from leakhunt.report.text import TextReport

        # pytest's terminal writer decides colour (--color, NO_COLOR, a pipe); 100 columns at most
        width = self.config.get_terminal_writer().fullwidth
        terminalreporter.write_sep("=", "leakhunt: memory per test")
        TextReport(self.build_report(), top=self.settings.report_top, width=width).write(terminalreporter.write)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> None:
        if self.meter is not None:  # a session that never finished (e.g. a usage error)
            self.meter.release()
        if self.signals is not None:
            self.signals.uninstall()


def _native_peaks(config: pytest.Config) -> tuple[Any, str | None]:
    """(the peak source of --leak-trace=native, or None; why not). memray allows one tracker per
    process: beside pytest-memray's, leakhunt's cannot start (broken peaks are then explained by
    a traced second call, as without the option)."""
    from leakhunt.native import NativePeakSource, unavailable

    reason = unavailable()
    if reason is None and config.pluginmanager.hasplugin("memray") and getattr(config.option, "memray", False):
        reason = "pytest-memray (--memray) already tracks every test with memray, and memray allows one tracker"
    if reason is not None:
        return None, f"{reason}; broken peak budgets are explained by a traced second call instead"
    return NativePeakSource, None
