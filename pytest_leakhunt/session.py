"""The plugin object: it owns the run's state and implements the hooks.

Per test (only when an option or a marker asks): a :class:`leakhunt.measure.Measurer` around the
call phase - the exact one (settled at both ends, traced freshly, attribution ready) for a test
with a budget, the cheap one (no garbage collection) otherwise - then the library's
:func:`leakhunt.judge.judge` and, when the test passed and hunting is asked for,
:func:`leakhunt.hunt.hunt` on the test body. The plugin only maps the judgement to pytest's
outcomes (failed, xfail, unittest). In one process the record is kept as it is made; an xdist
worker puts it into the phase's report as ``leakhunt.*`` user properties, which pytest-xdist
carries to the controller (``pytest_runtest_logreport``), and ``--junitxml`` gets the same
properties. A test's state is dropped when its last report is made: the session keeps one small
record per test, nothing else (issue 13: 3.3 KB per test were kept).

The session's end (issue 13): the report says how many collected tests it lacks and why
(Ctrl-C, SIGTERM, ``-x``), tests lost with a crashed xdist worker are recorded with the crash
as their outcome, and the kernel's high-water mark, reset before each test, is restored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import unittest
from typing import TYPE_CHECKING, Any, Callable, Generator

import pytest

from leakhunt import defaults, probes
from leakhunt.guard import _budget_wrapper, _measured_elsewhere, measured_elsewhere
from leakhunt.measure import Measurement, Measurer, confirm, from_sample, sample_figures
from leakhunt.probes import SAMPLE_RSS_AFTER, SAMPLE_RSS_BEFORE, QuickMeter, Sample
from leakhunt.settle import trim
from pytest_leakhunt.markers import BudgetError, opted_out, resolve_budget
from pytest_leakhunt.options import Settings

if TYPE_CHECKING:
    from leakhunt.budget import Budget
    from leakhunt.judge import Judgement
    from leakhunt.report.model import SessionFigures, TestRecord
    from leakhunt.tracing import TraceHandle
    from pytest_leakhunt.signals import SessionSignals

__all__ = ["LeakHunt", "PLUGIN_NAME"]

PLUGIN_NAME = "leakhunt-session"
_WORKER_OUTPUT_KEY = "leakhunt_session"
# Cheap RSS growth from which a test is settled, so the report's growth table is exact.
_STAYED_UP_MIN = 1024 * 1024
# RSS growth since the last trim from which a cheap measurement trims first.
_TRIM_AFTER = 1024 * 1024


@dataclasses.dataclass
class _TestState:
    """What one test collects on its way through setup, call and teardown."""

    budget: Budget | None
    opted_out: bool = False
    measurer: Measurer | None = None
    measurement: Measurement | None = None
    fixtures_alive: int = 0  # function-scoped fixtures set up (scope setup-call-teardown)
    call_outcome: str | None = None
    judgement: Judgement | None = None
    hunt_note: str | None = None


_STATE = pytest.StashKey[_TestState]()


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class LeakHunt:
    """Owns the run: settings, the per-test states, the records, the session figures."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.worker = _is_worker(config)
        self.records: dict[str, TestRecord] = {}
        # the cheap path's tests, made into records when a report is built (_ReportOnly)
        self.rows: list[tuple[str, str, str, Sample | Measurement | None, str | None]] = []
        self.sessions: list[SessionFigures] = []
        self.interrupted = False
        self.stopped: str | None = None  # why the session ended early, as pytest said it
        self.collected: list[str] | None = None  # node ids, when a report is written
        self.signals: SessionSignals | None = None
        self.hwm_restored: bool | None = None
        self._reporting = bool(settings.report or settings.report_file) and not self.worker
        # --junitxml shows the records as properties; otherwise only xdist workers need them
        self._properties = self.worker or bool(getattr(config.option, "xmlpath", None))
        self._worker_errors: dict[str, str] = {}
        self._hwm_allowed: bool | None = None
        self._session_start: int | None = None
        self._session_window: Any = None
        self._trace: TraceHandle | None = None
        self._per_test_registered = False
        self._rss_after_trim: int | None = None
        self._frozen = False
        self.trims = 0  # trims before cheap measurements (benchmarks read it)
        self._peak_source: Any = None  # --leak-trace=native: leakhunt.native.NativePeakSource
        self.native_note: str | None = None  # why --leak-trace=native cannot be honoured here
        if settings.native:
            self._peak_source, self.native_note = _native_peaks(config)

    # ----------------------------------------------------------------- session
    def pytest_report_header(self, config: pytest.Config) -> str | list[str] | None:
        described = self.settings.describe()
        if self.native_note:
            return [f"leakhunt: {described}", f"leakhunt: --leak-trace=native: {self.native_note}"]
        return f"leakhunt: {described}" if described else None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        asked, opted = _scan_marks(items)
        budgets = bool(self.settings.budget) or asked
        if self.settings.active or budgets:
            self._register_per_test(settling=budgets or bool(self.settings.hunt), opted=opted)

    def _register_per_test(self, settling: bool, opted: set[str]) -> None:
        if self._per_test_registered:
            return
        self._per_test_registered = True
        if settling or self.settings.scope != "call" or self._properties or self.settings.children:
            self.config.pluginmanager.register(_PerTest(self), "leakhunt-per-test")
        else:  # a report and nothing else: the cheap hooks
            self.config.pluginmanager.register(_ReportOnly(self, opted), "leakhunt-per-test")
        if self.settings.scope != "call":
            self.config.pluginmanager.register(_FixtureScope(self), "leakhunt-fixture-scope")
        self._start_session(settling)

    def _start_session(self, settling: bool) -> None:
        from leakhunt import probes
        from leakhunt.settle import freeze_heap, trim

        if self.settings.peak == "sample":
            self._hwm_allowed = probes.allow_hwm_reset(False)
        # Budgeted tests settle (a full collection) before and after; hunts after every call.
        # A full collection walks the whole heap: 64 ms on pandas' test suite. The heap that
        # exists now (modules, test modules, pytest's items) is frozen, so a collection walks
        # only what the session made; it is thawed at the end of the session, and for a moment
        # whenever an explanation searches the heap (docs/plugin.md).
        self._frozen = settling and freeze_heap()
        if self.settings.trace:
            from leakhunt import tracing

            self._trace = tracing.start()  # a trace of the user's is left alone
        # No collection here (it can take 100+ ms on a big heap); the end collects once.
        trim()
        self._session_start = self._rss_after_trim = probes.rss()
        self._session_window = probes.PeakWindow().open()

    def _end_session(self) -> None:
        if self._session_window is None:
            return
        from leakhunt import probes
        from leakhunt.report.model import SessionFigures
        from leakhunt.settle import settle

        peak = self._session_window.close()
        self._session_window = None
        if self._hwm_allowed is not None:
            probes.allow_hwm_reset(self._hwm_allowed)
            self._hwm_allowed = None
        else:  # VmHWM, ru_maxrss and /usr/bin/time read the true peak again
            self.hwm_restored = probes.restore_hwm()
        if self._frozen:
            # The session's garbage is collected while the heap of its start is still frozen: a
            # collection walks only what the session made (the end growth is the session's).
            from leakhunt.settle import thaw_heap

            settle(max_passes=1)
            thaw_heap()
            self._frozen = False
        else:
            # A session that only reports is not collected: a full collection walks the whole
            # heap (tens of milliseconds on a test suite's heap, `plugin_overhead.py --breakdown`),
            # which the cheap path pays nowhere else (issue 9). Freed memory is handed back.
            trim()
        worker = self.config.workerinput.get("workerid") if self.worker else None  # type: ignore[attr-defined]
        figures = SessionFigures(start_rss=self._session_start, end_rss=probes.rss(), peak_rss=peak, worker=worker)
        if self.worker:
            self.config.workeroutput[_WORKER_OUTPUT_KEY] = figures.to_dict()  # type: ignore[attr-defined]
        else:
            self.sessions.append(figures)
        if self._trace is not None:
            self._trace.stop()
            self._trace = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self._reporting:
            from pytest_leakhunt.signals import SessionSignals

            self.signals = SessionSignals().install()
            if self.config.pluginmanager.has_plugin("dsession"):  # the xdist controller
                self.config.pluginmanager.register(_Controller(self), "leakhunt-controller")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self._reporting:
            self.collected = [item.nodeid for item in session.items]

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """pytest-xdist controller: the workers collect; every worker collects the same tests."""
        if self._reporting and self.collected is None:
            self.collected = list(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """pytest-xdist controller: a worker finished or died; keep its session figures, or say
        that they were lost with it."""
        from leakhunt.report.model import SessionFigures

        data = getattr(node, "workeroutput", {}).get(_WORKER_OUTPUT_KEY)
        worker = _worker_id(node)
        if data:
            self.sessions.append(SessionFigures.from_dict(data))
        elif error is not None and self._reporting:
            reason = _crash_reason(error)
            self._worker_errors[worker] = reason
            self.sessions.append(SessionFigures(worker=worker, lost=f"the worker crashed ({reason})"))

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        """pytest-xdist controller: the test a crashed worker was running gets a record that says so
        (a plugin that re-runs it, such as pytest-rerunfailures, makes a real record later)."""
        if not self._reporting:
            return
        from leakhunt.report.model import TestRecord

        worker = _worker_id(getattr(report, "node", None))
        reason = self._worker_errors.get(worker)
        self.records[crashitem] = TestRecord(
            nodeid=crashitem, outcome="crashed", verdict="not_measured", scope=self.settings.scope,
            note=f"xdist worker {worker} crashed while running it" + (f" ({reason})" if reason else ""),
            worker=worker)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.interrupted = True
        if isinstance(excinfo.value, pytest.exit.Exception) and self.stopped is None:
            self.stopped = f"pytest.exit: {excinfo.value.msg}"

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
        # Outermost: our figures are read before any other plugin's end of session, and the
        # report is written even when a second Ctrl-C breaks that end off.
        try:
            self._end_session()
            if exitstatus == pytest.ExitCode.INTERRUPTED:
                self.interrupted = True
            reason = session.shouldfail or session.shouldstop
            if isinstance(reason, str) and reason and self.stopped is None:
                self.stopped = reason
            return (yield)  # the report file is written by ReportFile, last
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
        if running:
            return TestReport(
                records=(), settings=self.settings.to_dict(), created=created, running=True,
                version=str(getattr(leakhunt, "__version__", "")),
                stopped=(f"written when the session started ({created}); the session has not finished, "
                         "or ended without writing its figures (killed by SIGKILL or the out-of-memory "
                         "killer, or crashed)"))
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
            stayed_up_min=_STAYED_UP_MIN,
            created=created,
            version=str(getattr(leakhunt, "__version__", "")),
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
        records = self.records
        for nodeid, outcome, verdict, figures, note in self.rows:  # figures: a sample, or confirmed
            records[nodeid] = TestRecord(nodeid, outcome, verdict, scope, *_figures(figures), note=note)
        self.rows.clear()

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
        if self._frozen:  # session never finished
            from leakhunt.settle import thaw_heap

            thaw_heap()
            self._frozen = False
        if self._trace is not None:  # session never finished (e.g. a usage error)
            self._trace.stop()
            self._trace = None
        if self.signals is not None:
            self.signals.uninstall()

    # ----------------------------------------------------------------- per test
    def measurer(self, state: _TestState) -> Measurer:
        budget = state.budget
        if budget is not None:
            # The exact path: the figures a budget checks read the same whatever ran before.
            # Traced only where the figure needs it or --leak-trace asks: otherwise a broken
            # budget is explained by a traced second call (the library's judge decides).
            return Measurer.exact(trace=self.settings.trace or budget.traced is not None,
                                  children=self.settings.children or budget.children is not None,
                                  peak_sites=(self._peak_source or True) if budget.peak is not None else False)
        # Cheap by design: no settling per test; tracemalloc only if already running. The
        # allocator was trimmed before the test's fixtures were set up, if that was due
        # (trim_if_due).
        return Measurer(settle=False, trace=None, children=self.settings.children, domains=False,
                        trim=False)

    def settled(self, state: _TestState) -> None:
        """After a settled measurement (a budget, a hunt): freeze what the test left alive, so
        that the next test's settling walks only what it makes (``refreeze_heap``)."""
        if self._frozen and (state.budget is not None or state.judgement is not None
                             or state.hunt_note is not None):
            from leakhunt.settle import refreeze_heap

            refreeze_heap()

    def trim_if_due(self) -> None:
        """Before a cheaply measured test sets up: hand freed memory back to the system if RSS
        rose since the last trim.

        Without a trim a test reuses memory glibc kept from earlier frees, and a retained leak
        reads as no growth (the casebook's slice cases: 122 MiB kept, 0 B read). But a trim
        walks the whole heap (when done before every test, most of the per-test cost,
        issue 9), and there is something to hand back only if RSS rose since the last trim:
        freed memory an allocator keeps was resident, so it raised RSS when allocated. It runs
        before the fixtures are set up, so memory a fixture allocated and freed at teardown
        counts as a rise too (read at the call, it would look like the level the last trim
        left)."""
        rss = probes.rss()
        if rss is not None and not self.rose_since_trim(rss):
            return
        self.trim_now()

    def rose_since_trim(self, rss: int) -> bool:
        """Whether RSS (read just now) rose 1 MiB or more since the last trim; a lower reading
        becomes the level to rise from."""
        level = self._rss_after_trim
        if level is None or rss - level >= _TRIM_AFTER:
            return True
        if rss < level:
            self._rss_after_trim = rss
        return False

    def trim_now(self) -> None:
        trim()
        self.trims += 1
        self._rss_after_trim = probes.rss()

    def decide(self, item: pytest.Item, state: _TestState, outcome: str) -> None:
        """Judge a budgeted test (the library decides); tidy a cheap measurement for the report."""
        measurement = state.measurement
        if measurement is None:
            return
        if state.budget is not None:
            measurer = state.measurer
            try:
                if outcome == "passed":
                    from leakhunt.judge import judge

                    again = self.again(item) if self.settings.rerun and self.settings.scope == "call" else None
                    state.judgement = judge(measurement, state.budget, title=item.nodeid,
                                            scope=measurer.scope if measurer else None,
                                            peak=measurer.peak if measurer else None, again=again,
                                            named=_fixture_roots(item))
            finally:
                if measurer is not None:
                    measurer.close()
        elif not measurement.settled and self._wants_exact_growth(measurement.rss_growth):
            from leakhunt.measure import confirm

            state.measurement = confirm(measurement, collect=False)

    def finish(self, item: pytest.Item, state: _TestState, report: pytest.TestReport) -> None:
        """The verdict; fail the report if needed; attach the record as user properties."""
        outcome = state.call_outcome or report.outcome
        judgement = state.judgement
        if judgement is not None:
            verdict = judgement.verdict
        elif state.hunt_note is not None or (outcome != "passed" and self._hunting(state)):
            verdict = "not_hunted"
        elif state.measurement is None:
            verdict = "not_measured"
        else:
            verdict = "ok"
        if judgement is not None and judgement.failed:
            self._fail(report, judgement.text())
        if not (self._reporting or self._properties):
            return  # a budget checked, nothing to report
        record = self.record(item, state, report, verdict, outcome)
        if self._reporting:
            self.records[record.nodeid] = record
        if self._properties:  # an xdist worker sends it; --junitxml shows it
            props = record.to_properties()
            report.user_properties.extend(props)
            if report.when != "teardown":  # JUnit XML takes the properties of the teardown report
                item.user_properties.extend(props)

    @staticmethod
    def _fail(report: pytest.TestReport, explanation: str) -> None:
        """Fail a passing report with the explanation; an xfail test that broke its budget
        failed as expected (our makereport wrapper is outside pytest's xfail handling, which
        had seen a pass: XPASS, or XPASS(strict) as a failure)."""
        strict_xpass = _is_strict_xpass(report)
        if strict_xpass or (report.outcome == "passed" and hasattr(report, "wasxfail")):
            reason = report.longrepr[len("[XPASS(strict)]"):].strip() if strict_xpass else report.wasxfail
            report.outcome = "skipped"
            report.wasxfail = reason or "broke its memory budget"
            report.longrepr = explanation
        elif report.outcome == "passed":
            report.outcome = "failed"
            report.longrepr = explanation

    def _wants_exact_growth(self, growth: int | None) -> bool:
        """A cheap growth the report will list (1 MiB or more): confirmed after a trim."""
        return bool(
            (self.settings.report or self.settings.report_file)
            and growth is not None
            and growth >= _STAYED_UP_MIN
        )

    def _hunting(self, state: _TestState) -> bool:
        return bool(self.settings.hunt) or (state.budget is not None and state.budget.leak is not None)

    def record(
        self, item: pytest.Item, state: _TestState, report: pytest.TestReport, verdict: str, outcome: str
    ) -> TestRecord:
        from leakhunt.report.model import TestRecord  # not at import: a plain run never needs it

        m = state.measurement
        j = state.judgement
        if state.opted_out:
            verdict = "opted_out"
        if report.outcome == "failed" and outcome == "passed":
            outcome = "failed"
        scope = self.settings.scope
        worker = self.config.workerinput.get("workerid") if self.worker else None  # type: ignore[attr-defined]
        figures = _figures(m)
        if j is None and state.hunt_note is None and state.budget is None:
            return TestRecord(item.nodeid, outcome, verdict, scope, *figures, worker=worker)
        v = j.hunt if j is not None else None
        note = state.hunt_note
        if j is not None and j.notes:
            note = "; ".join(j.notes)
        violations = j.violations if j is not None else ()
        return TestRecord(
            item.nodeid, outcome, verdict, scope, *figures,
            leak_per_call=None if v is None else v.per_call,
            leak_accounting=None if v is None else v.accounting,
            budget=None if state.budget is None else _budget_dict(state.budget),
            violations=[{"figure": x.figure, "value": x.value, "limit": x.limit} for x in violations],
            note=note,
            worker=worker,
            explanation=j.explanation.to_dict() if j is not None and j.explanation is not None else None,
        )

    # ----------------------------------------------------------------- hunting
    def body(self, item: pytest.Item) -> Callable[[], None]:
        """A callable that runs the test body once more, with the same fixture values.

        unittest tests report failures to a result object instead of raising: they run against
        a private ``unittest.TestResult`` so that a failing repetition raises here and never
        reaches the test's own report.
        """
        instance = getattr(item, "instance", None)
        if isinstance(instance, unittest.TestCase):
            def run_testcase() -> None:
                result = unittest.TestResult()
                instance.run(result)
                problems = result.errors + result.failures
                if problems:
                    raise _RepetitionFailed(problems[0][1].strip().splitlines()[-1])
            return run_testcase
        return item.runtest

    def again(self, item: pytest.Item) -> Callable[[], None]:
        """The test body once more, for the library to tell one-time initialisation from a keep."""
        body = self.body(item)

        def call() -> None:
            try:
                with _measured_by_plugin(item):
                    body()
            except _HUNT_ERRORS as exc:  # pytest's outcomes are BaseExceptions: make them plain
                raise _RepetitionFailed(f"{type(exc).__name__}: {exc}") from None
        return call

    def hunt(self, item: pytest.Item, state: _TestState) -> None:
        from leakhunt.hunt import hunt
        from leakhunt.judge import judge

        budget = state.budget
        repeat = self.settings.hunt or defaults.REPEAT
        warmup = defaults.WARMUP
        threshold: int | str = self.settings.threshold
        if budget is not None and budget.leak is not None:
            threshold, repeat, warmup = budget.leak, budget.repeat, budget.warmup
        try:
            with _measured_by_plugin(item):
                # Traced: pymalloc hides a small-object leak in RSS for many calls (its arenas are reused first).
                # attribute: a confirmed leak comes with what the confirmation's calls left alive.
                verdict = hunt(self.body(item), threshold=threshold, repeat=repeat, warmup=warmup,
                               trace=True, attribute=True)
        except _HUNT_ERRORS as exc:
            state.hunt_note = f"not hunted: a repetition of the test raised {type(exc).__name__}: {exc}"
            return
        first = state.judgement
        judgement = judge(None, None, verdict, title=item.nodeid)
        state.judgement = dataclasses.replace(
            judgement, measurement=state.measurement, budget=budget,
            notes=(first.notes if first is not None else ()) + judgement.notes)


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


class _Controller:
    """The xdist controller's per-test hook: the records arrive with the workers' reports.
    Registered only on the controller (one process has no use for a hook called three times
    per test)."""

    def __init__(self, owner: LeakHunt) -> None:
        self.owner = owner

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """The xdist controller: the records arrive with the workers' reports. (In one process
        the record is kept when it is made, :meth:`finish`.)"""
        if not self.owner._reporting or not report.user_properties or getattr(report, "node", None) is None:
            return
        # The record rides on the report of the phase that decided it (call, or teardown for the
        # setup-call-teardown scope); later reports of the same test repeat it (JUnit XML reads
        # the teardown report), so those are skipped. A setup that did not pass carries its own.
        if report.when == "teardown" and self.owner.settings.scope == "call":
            ours = False
        elif report.when == "setup" and report.passed:
            ours = False
        else:
            from leakhunt.report.model import TestRecord

            record = TestRecord.from_properties(report.user_properties)
            if record is not None:
                self.owner.records[record.nodeid] = record
            ours = True
        # pytest keeps every report to the end (terminal summary): without --junitxml, drop our
        # properties from it once read (trylast: every other plugin has seen them)
        if ours or report.when == "teardown":
            if not getattr(self.owner.config.option, "xmlpath", None):
                report.user_properties = [p for p in report.user_properties
                                          if not (isinstance(p[0], str) and p[0].startswith("leakhunt."))]


class _ReportOnly:
    """The per-test hooks of a session that only reports (``--leak-report`` without budgets,
    hunting, a setup-call-teardown scope, children, an xdist worker or ``--junitxml``): the
    cheap path at its cheapest (issue 9). The library's :class:`~leakhunt.probes.QuickMeter`
    around the call; its sample kept as the call is reported (made into a record when the report
    is built, :func:`leakhunt.measure.from_sample`); and, when the test's teardown is reported, a
    trim if RSS at the end of the call rose 1 MiB or more since the last one, so that memory
    freed at the teardown is handed back before the next test sets up. One hook wrapper (the
    call's) and one plain hook, nothing stored on the item; the marks are read once, when the
    tests are collected (:func:`_scan_marks`). The records are those of the full path
    (``tests/test_plugin.py::test_the_cheap_path_records_what_the_full_path_does``)."""

    def __init__(self, owner: LeakHunt, opted: set[str]) -> None:
        self.owner = owner
        self.opted = opted  # node ids of no_leak_check tests (_scan_marks)
        self.meter = QuickMeter()
        self.sample: tuple[str, Sample] | None = None  # the call just run
        self.trim_due = False

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        nodeid = item.nodeid
        if nodeid in self.opted:
            return (yield)
        meter = self.meter
        meter.start()  # (no test here has a @memory_budget decorator: _scan_marks found none)
        try:
            return (yield)
        finally:
            self.sample = (nodeid, meter.stop())

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        when = report.when
        if when == "call":
            nodeid = report.nodeid
            taken, self.sample = self.sample, None
            figures: Sample | Measurement | None = None
            note = None
            if taken is not None and taken[0] == nodeid:
                figures = sample = taken[1]
                verdict = "ok"
                before, after = sample[SAMPLE_RSS_BEFORE], sample[SAMPLE_RSS_AFTER]
                if before is not None and after is not None:
                    if self.owner._wants_exact_growth(after - before):
                        try:
                            figures = confirm(from_sample(sample), collect=False)
                        except Exception as exc:  # never turn a measurement problem into a crash
                            note = f"leakhunt could not confirm the growth: {type(exc).__name__}: {exc}"
                    self.trim_due = self.owner.rose_since_trim(after)
            else:
                verdict = "opted_out" if nodeid in self.opted else "not_measured"
            self.owner.rows.append((nodeid, report.outcome, verdict, figures, note))
        elif when == "teardown":
            if self.trim_due:  # the test is over: hand back what it (or a fixture) freed
                self.trim_due = False
                self.owner.trim_now()
        elif report.outcome != "passed":  # setup
            outcome = "error" if report.outcome == "failed" else report.outcome
            verdict = "opted_out" if report.nodeid in self.opted else "not_measured"
            self.owner.rows.append((report.nodeid, outcome, verdict, None, None))


class _PerTest:
    """The per-test hooks; registered only when an option or a marker asks for them."""

    def __init__(self, owner: LeakHunt) -> None:
        self.owner = owner
        self.settings = owner.settings

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        if opted_out(item):
            item.stash[_STATE] = _TestState(budget=None, opted_out=True)
            return (yield)
        try:
            budget = resolve_budget(item, self.settings.budget)
        except BudgetError as exc:
            item.stash[_STATE] = _TestState(budget=None)
            yield  # let every plugin set up, so that every teardown finds what it expects
            pytest.fail(f"leakhunt: {exc}", pytrace=False)
        if budget is not None or self.settings.active:
            item.stash[_STATE] = _TestState(budget=budget)
            if budget is None:
                self.owner.trim_if_due()
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        state = item.stash.get(_STATE, None)
        if state is None or state.opted_out:
            return (yield)
        if state.measurer is None:
            state.measurer = self.owner.measurer(state).start()
        token = _measured_elsewhere.set(_decorated(item))  # what _measured_by_plugin() does, for less
        try:
            return (yield)
        finally:
            _measured_elsewhere.reset(token)
            if self.settings.scope == "call":
                state.measurement = state.measurer.stop()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report: pytest.TestReport = yield
        state = item.stash.get(_STATE, None)
        if state is None:
            return report
        try:
            self._decide(item, state, report)
        except Exception as exc:  # never turn a measurement problem into a crash of the session
            report.sections.append(("leakhunt", f"leakhunt could not check this test: {type(exc).__name__}: {exc}"))
        finally:
            if report.when == "teardown":
                # the record is made; the measurement, the judgement and the measurer go
                del item.stash[_STATE]
        return report

    def _decide(self, item: pytest.Item, state: _TestState, report: pytest.TestReport) -> None:
        owner = self.owner
        call_scope = self.settings.scope == "call"
        if report.when == "setup" and report.outcome != "passed" and call_scope:
            state.call_outcome = "error" if report.outcome == "failed" else report.outcome
            owner.finish(item, state, report)
        elif report.when == "call":
            outcome = _own_outcome(report)
            state.call_outcome = outcome
            if call_scope:  # before hunting: the repetitions are not this call's memory
                owner.decide(item, state, outcome)
            failed = state.judgement is not None and state.judgement.failed
            if outcome == "passed" and not failed and not state.opted_out and owner._hunting(state):
                owner.hunt(item, state)
            if call_scope:
                owner.finish(item, state, report)
                owner.settled(state)
        elif report.when == "teardown" and not call_scope and state.call_outcome is not None:
            owner.decide(item, state, state.call_outcome)
            owner.finish(item, state, report)
            owner.settled(state)


def _worker_id(node: Any) -> str:
    """An xdist worker's id (gw0, gw1, ...)."""
    gateway = getattr(node, "gateway", None)
    return str(getattr(gateway, "id", None) or getattr(node, "workerinput", {}).get("workerid", "?"))


def _crash_reason(error: Any) -> str:
    """What xdist says of a dead worker, on one line."""
    text = " ".join(str(error).split())
    return text[:200] if text else "no reason given"


def _is_strict_xpass(report: pytest.TestReport) -> bool:
    """pytest reports a strict xfail test that passed as failed with this text."""
    return (report.outcome == "failed" and isinstance(report.longrepr, str)
            and report.longrepr.startswith("[XPASS(strict)]"))


def _own_outcome(report: pytest.TestReport) -> str:
    """How the test body itself ended: a strict XPASS is a body that passed."""
    return "passed" if _is_strict_xpass(report) else report.outcome


class _FixtureScope:
    """Hooks of ``leak_scope = setup-call-teardown`` only: they run for every fixture, so a
    suite measured in the default call scope does not pay for them."""

    def __init__(self, owner: LeakHunt) -> None:
        self.owner = owner
        self.settings = owner.settings

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: pytest.FixtureRequest) -> Generator[None, Any, Any]:
        # From the first function-scoped fixture's setup; higher scopes are set up before
        # (pytest orders fixtures by scope) and so stay outside.
        if fixturedef.scope == "function":
            state = request.node.stash.get(_STATE, None)
            if state is not None and not state.opted_out:
                if state.measurer is None:
                    state.measurer = self.owner.measurer(state).start()
                state.fixtures_alive += 1
        return (yield)

    def pytest_fixture_post_finalizer(self, fixturedef: Any, request: pytest.FixtureRequest) -> None:
        if fixturedef.scope != "function":
            return
        state = request.node.stash.get(_STATE, None)
        if state is None or state.measurer is None or state.measurement is not None:
            return
        state.fixtures_alive -= 1
        if state.fixtures_alive <= 0:  # the last function-scoped fixture is gone
            state.measurement = state.measurer.stop()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        try:
            return (yield)
        finally:
            state = item.stash.get(_STATE, None)
            if state is not None and state.measurer is not None and state.measurement is None:
                state.measurement = state.measurer.stop()


class _RepetitionFailed(AssertionError):
    pass


_HUNT_ERRORS = (Exception, pytest.fail.Exception, pytest.skip.Exception, pytest.xfail.Exception)


def _fixture_roots(item: pytest.Item) -> dict[str, Any]:
    """The test's fixture values, as roots an explanation may name (memory a fixture object
    holds is shown as the fixture's, not as a path through pytest's internals)."""
    funcargs = getattr(item, "funcargs", None) or {}
    return {f"{name} (fixture)": value for name, value in funcargs.items()
            if name != "request" and value is not None}


def _figures(m: Measurement | Sample | None) -> tuple[Any, ...]:
    """A measurement's figures in TestRecord's order after (nodeid, outcome, verdict, scope); a
    QuickMeter sample's without making a Measurement of it (one per test of the report)."""
    if m is None:
        return (None, None, None, None, None, None, False)
    if type(m) is tuple:
        seconds, rss_growth, peak, traced_growth, arrow_growth = sample_figures(m)
        return (round(seconds, 6), rss_growth, peak, traced_growth, arrow_growth, None, False)
    return (round(m.seconds, 6), m.figure("rss"), m.peak, m.figure("traced"), m.arrow_growth,
            m.children_peak, m.settled)


def _budget_dict(budget: Budget) -> dict[str, int]:
    limits = dict(budget.limits())
    if budget.leak is not None:
        limits.update(leak=budget.leak, repeat=budget.repeat, warmup=budget.warmup)
    return limits


def _scan_marks(items: list[pytest.Item]) -> tuple[bool, set[str]]:
    """One pass over the collected tests: whether any asks for a budget (a ``memory_budget``
    mark or decorator), and the node ids of those marked ``no_leak_check``. The marks of a
    test's parents (class, module, package) are read once per parent, not once per test."""
    inherited: dict[int, frozenset[str]] = {}
    asked = False
    opted: set[str] = set()
    for item in items:
        parent = item.parent
        names = inherited.get(id(parent))
        if names is None:
            chain = parent.listchain() if parent is not None else []
            names = inherited[id(parent)] = frozenset(m.name for node in chain for m in node.own_markers)
        own = [m.name for m in item.own_markers] if item.own_markers else ()
        if "no_leak_check" in names or "no_leak_check" in own:
            opted.add(item.nodeid)
        if not asked and ("memory_budget" in names or "memory_budget" in own or
                          getattr(getattr(item, "obj", None), "__leakhunt_budget__", None) is not None):
            asked = True
    return asked, opted


def _decorated(item: pytest.Item) -> Any:
    """The test's own ``@memory_budget`` wrapper (the plugin measures the test under that budget,
    so the decorator only calls it), else None. A decorated helper the test calls keeps its own
    budget."""
    return _budget_wrapper(getattr(item, "obj", None))


def _measured_by_plugin(item: pytest.Item) -> contextlib.AbstractContextManager[None]:
    """Tells the test's own ``@memory_budget`` decorator, if it has one, that the plugin measures
    this call already."""
    fn = _decorated(item)
    return measured_elsewhere(fn) if fn is not None else contextlib.nullcontext()
