"""The per-test hooks: one :class:`leakhunt.lifecycle.Block` per test, its judgement mapped to
pytest's outcomes. Registered only when an option or a marker asks for them.

Two sets: :class:`PerTest` for budgets, hunting, JUnit properties, xdist workers, children and
the setup-call-teardown scope; :class:`ReportOnly` for a session that only reports, the cheap
path at its cheapest (one hook wrapper and one plain hook per test). The library decides every
verdict; here a failed judgement fails the test's report, and a record rides on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Generator

import pytest

from leakhunt.guard import _budget_wrapper, _measured_elsewhere, measured_elsewhere
from leakhunt.judge import unjudged
from leakhunt.lifecycle import Block, Policy, settle_listed
from leakhunt.probes import QuickMeter, Sample
from leakhunt.report.explain_text import failure_text
from pytest_leakhunt import repetition
from pytest_leakhunt.markers import BudgetError, opted_out, resolve_budget

if TYPE_CHECKING:
    from leakhunt.budget import Budget
    from leakhunt.judge import Judgement
    from pytest_leakhunt.session import LeakHunt

__all__ = ["PerTest", "ReportOnly", "FixtureScope", "register", "scan_marks"]


def register(owner: LeakHunt, *, settling: bool, opted: set[str]) -> None:
    """The per-test hooks a session needs: the cheap ones when it only reports."""
    settings = owner.settings
    manager = owner.config.pluginmanager
    if settling or settings.scope != "call" or owner.properties or settings.children or settings.baseline:
        manager.register(PerTest(owner), "leakhunt-per-test")
    else:
        manager.register(ReportOnly(owner, opted), "leakhunt-per-test")
    if settings.scope != "call":
        manager.register(FixtureScope(owner), "leakhunt-fixture-scope")


@dataclasses.dataclass
class _TestState:
    """What one test collects on its way through setup, call and teardown."""

    block: Block | None
    opted_out: bool = False
    fixtures_alive: int = 0  # function-scoped fixtures set up (scope setup-call-teardown)
    call_outcome: str | None = None


_STATE = pytest.StashKey[_TestState]()


class PerTest:
    """The per-test hooks of the full path."""

    def __init__(self, owner: LeakHunt) -> None:
        self.owner = owner
        self.settings = owner.settings

    def block(self, item: pytest.Item, budget: Budget | None) -> Block:
        settings = self.settings
        policy = Policy.of(budget, hunt_repeat=settings.hunt, threshold=settings.threshold, trace=settings.trace,
                           rerun=settings.rerun, children=settings.children, report_growth=self.owner.reporting,
                           front="pytest",
                           peak_sites=self.owner.peak_source)  # None, or memray's (--leak-trace=native)
        return Block(item.nodeid, policy)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        if opted_out(item):
            item.stash[_STATE] = _TestState(block=None, opted_out=True)
            return (yield)
        error = None
        try:
            budget = resolve_budget(item, self.settings.budget)
        except BudgetError as exc:
            budget, error = None, str(exc)
        if error is not None:  # outside the except: the message is shown once, with no chained traceback
            item.stash[_STATE] = _TestState(block=None)
            yield  # let every plugin set up, so that every teardown finds what it expects
            pytest.fail(f"leakhunt: {error}", pytrace=False)
        if budget is not None or self.settings.active:
            item.stash[_STATE] = _TestState(block=self.block(item, budget))
            if budget is None and self.owner.meter is not None:
                self.owner.meter.before_cheap_block()
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        state = item.stash.get(_STATE, None)
        if state is None or state.block is None:
            return (yield)
        repetition.prepare(item)  # what a repetition needs that this call changes (a doctest's globals)
        if not state.block.started:
            state.block.start()
        token = _measured_elsewhere.set(_budget_wrapper(getattr(item, "obj", None)))
        try:
            return (yield)
        finally:
            _measured_elsewhere.reset(token)
            if self.settings.scope == "call":
                state.block.stop()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report: pytest.TestReport = yield
        state = item.stash.get(_STATE, None)
        if state is None:
            return report
        try:
            self._decide(item, state, report)
        except repetition.StopSession as stop:  # pytest.exit() in a repetition ends the session
            repetition.reraise_stop(stop)
        except Exception as exc:  # never turn a measurement problem into a crash of the session
            report.sections.append(("leakhunt", f"leakhunt could not check this test: {type(exc).__name__}: {exc}"))
        finally:
            if report.when == "teardown":
                del item.stash[_STATE]  # the record is made; the block goes
        return report

    def _decide(self, item: pytest.Item, state: _TestState, report: pytest.TestReport) -> None:
        call_scope = self.settings.scope == "call"
        if report.when == "setup" and report.outcome != "passed" and call_scope:
            state.call_outcome = "error" if report.outcome == "failed" else report.outcome
            self._finish(item, state, report)
        elif report.when == "call":
            state.call_outcome = _own_outcome(report)
            if call_scope:
                self._finish(item, state, report)
        elif report.when == "teardown" and not call_scope and state.call_outcome is not None:
            if state.block is not None and state.block.started:
                state.block.stop()
            self._finish(item, state, report)

    def _finish(self, item: pytest.Item, state: _TestState, report: pytest.TestReport) -> None:
        """The judgement; fail the report if it failed; the record rides on the report."""
        outcome = state.call_outcome or report.outcome
        judgement = None
        if state.block is not None:
            again = again_call(item) if self.settings.scope == "call" else None
            judgement = state.block.finish(outcome=outcome, again=again, named=_fixture_roots(item))
            if judgement.failed:
                _fail(report, failure_text(judgement))
            if state.block.policy.budget is not None or state.block.policy.hunt is not None:
                if self.owner.meter is not None:
                    self.owner.meter.after_settled_block()
        if not (self.owner.reporting or self.owner.properties):
            return  # a budget checked, nothing to report
        record = _record(item, state, report, judgement, outcome, self.settings.scope, self.owner.worker_id)
        if self.owner.regressions is not None and judgement is not None:  # --leak-baseline
            call_scope = self.settings.scope == "call"
            self.owner.regressions.explain(record, judgement.measurement, again=again_call(item) if call_scope else None,
                                           named=_fixture_roots(item))
        self.owner.keep(record)
        if self.owner.properties:  # an xdist worker sends it; --junitxml shows it
            props = record.to_properties()
            report.user_properties.extend(props)
            if report.when != "teardown":  # JUnit XML takes the properties of the teardown report
                item.user_properties.extend(props)


def _record(item: pytest.Item, state: _TestState, report: pytest.TestReport, judgement: Judgement | None,
            outcome: str, scope: str, worker: str | None) -> Any:
    from leakhunt.report.model import TestRecord

    if outcome == "passed" and report.outcome != "passed":  # failed (or xfailed) by its budget
        outcome = report.outcome
    if state.opted_out or judgement is None:
        return TestRecord(item.nodeid, outcome, "opted_out" if state.opted_out else "not_measured", scope,
                          worker=worker)
    return TestRecord.from_judgement(item.nodeid, outcome, scope, judgement, worker=worker)


def _fail(report: pytest.TestReport, explanation: str) -> None:
    """Fail a passing report with the explanation. Our makereport wrapper is outside pytest's
    xfail handling, which saw the body pass: a non-strict xfail test (XPASS) that broke its
    budget failed as expected; a strict one stays the failure pytest made it (it must never
    become "1 xfailed", exit status 0), with the explanation under pytest's own line."""
    if _is_strict_xpass(report):
        report.longrepr = f"{report.longrepr}\n\n{explanation}"
    elif report.outcome == "passed" and hasattr(report, "wasxfail"):
        report.outcome = "skipped"
        report.wasxfail = report.wasxfail or "broke its memory budget"
        report.longrepr = explanation
    elif report.outcome == "passed":
        report.outcome = "failed"
        report.longrepr = explanation


def _is_strict_xpass(report: pytest.TestReport) -> bool:
    """pytest reports a strict xfail test that passed as failed with this text."""
    return (report.outcome == "failed" and isinstance(report.longrepr, str)
            and report.longrepr.startswith("[XPASS(strict)]"))


def _own_outcome(report: pytest.TestReport) -> str:
    """How the test body itself ended: a strict XPASS is a body that passed."""
    return "passed" if _is_strict_xpass(report) else report.outcome


class FixtureScope:
    """Hooks of ``leak_scope = setup-call-teardown`` only: they run for every fixture, so a
    suite measured in the default call scope does not pay for them."""

    def __init__(self, owner: LeakHunt) -> None:
        self.owner = owner

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: pytest.FixtureRequest) -> Generator[None, Any, Any]:
        # From the first function-scoped fixture's setup; higher scopes are set up before
        # (pytest orders fixtures by scope) and so stay outside.
        if fixturedef.scope == "function":
            state = request.node.stash.get(_STATE, None)
            if state is not None and state.block is not None:
                if not state.block.started:
                    state.block.start()
                state.fixtures_alive += 1
        return (yield)

    def pytest_fixture_post_finalizer(self, fixturedef: Any, request: pytest.FixtureRequest) -> None:
        if fixturedef.scope != "function":
            return
        state = request.node.stash.get(_STATE, None)
        if state is None or state.block is None or not state.block.started or state.block.measurement is not None:
            return
        state.fixtures_alive -= 1
        if state.fixtures_alive <= 0:  # the last function-scoped fixture is gone
            state.block.stop()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        try:
            return (yield)
        finally:
            state = item.stash.get(_STATE, None)
            if state is not None and state.block is not None and state.block.started:
                state.block.stop()


# --------------------------------------------------------------------------------------
# the test body, once more


def again_call(item: pytest.Item) -> Callable[[], None]:
    """The test body once more, for the library's second call and hunt
    (:func:`pytest_leakhunt.repetition.body`), with its own ``@memory_budget`` only calling it."""
    body = repetition.body(item)
    decorated = _budget_wrapper(getattr(item, "obj", None))

    def call() -> None:
        with measured_elsewhere(decorated) if decorated is not None else contextlib.nullcontext():
            body()
    return call


def _fixture_roots(item: pytest.Item) -> dict[str, Any]:
    """The test's fixture values, as roots an explanation may name (memory a fixture object
    holds is shown as the fixture's, not as a path through pytest's internals)."""
    funcargs = getattr(item, "funcargs", None) or {}
    return {f"{name} (fixture)": value for name, value in funcargs.items()
            if name != "request" and value is not None}


# --------------------------------------------------------------------------------------
# the cheap path


class ReportOnly:
    """The per-test hooks of a session that only reports (``--leak-report`` without budgets,
    hunting, a setup-call-teardown scope, children, an xdist worker or ``--junitxml``): a
    :class:`~leakhunt.probes.QuickMeter` around the call, its sample kept as the call is
    reported (made into a record when the report is built), and, when the test's teardown is
    reported, a trim if RSS at the end of the call rose since the last one, so that memory freed
    at the teardown is handed back before the next test sets up. The records are those of the
    full path (``tests/test_plugin.py::test_the_cheap_path_records_what_the_full_path_does``)."""

    def __init__(self, owner: LeakHunt, opted: set[str]) -> None:
        self.owner = owner
        self.meter = owner.meter
        self.opted = opted  # node ids of no_leak_check tests (scan_marks)
        self.quick = QuickMeter()
        self.sample: tuple[str, Sample] | None = None  # the call just run
        self.trim_due = False

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        nodeid = item.nodeid
        if nodeid in self.opted:
            return (yield)
        quick = self.quick
        quick.start()  # (no test here has a @memory_budget decorator: scan_marks found none)
        try:
            return (yield)
        finally:
            self.sample = (nodeid, quick.stop())

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        when = report.when
        if when == "call":
            nodeid = report.nodeid
            taken, self.sample = self.sample, None
            figures: Any = None
            note = None
            if taken is not None and taken[0] == nodeid:
                verdict = unjudged(passed=_own_outcome(report) == "passed", measured=True, hunted=False).value
                figures, note, rss_after = settle_listed(taken[1])
                if rss_after is not None and self.meter is not None:
                    self.trim_due = self.meter.rose_since_trim(rss_after)
            else:
                verdict = "opted_out" if nodeid in self.opted else "not_measured"
            self.owner.rows.append((nodeid, report.outcome, verdict, figures, note))
        elif when == "teardown":
            if self.trim_due and self.meter is not None:  # the test is over: hand back what it freed
                self.trim_due = False
                self.meter.trim_now()
        elif report.outcome != "passed":  # setup
            outcome = "error" if report.outcome == "failed" else report.outcome
            verdict = "opted_out" if report.nodeid in self.opted else "not_measured"
            self.owner.rows.append((report.nodeid, outcome, verdict, None, None))


def scan_marks(items: list[pytest.Item]) -> tuple[bool, set[str]]:
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
