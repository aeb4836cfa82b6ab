"""pytest-xdist's controller: the workers' records and session figures arrive here.

Registered only on the controller of a session that writes a report (one process has no use for
a hook called three times per test). A worker sends each record as ``leakhunt.*`` user
properties on the report of the phase that decided it, and its session figures in
``workeroutput``; a worker that crashed is recorded as such, and so is the test it was running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_leakhunt.session import WORKER_OUTPUT_KEY

if TYPE_CHECKING:
    from pytest_leakhunt.session import LeakHunt

__all__ = ["Controller"]


def _worker_id(node: Any) -> str:
    """An xdist worker's id (gw0, gw1, ...)."""
    gateway = getattr(node, "gateway", None)
    return str(getattr(gateway, "id", None) or getattr(node, "workerinput", {}).get("workerid", "?"))


def _crash_reason(error: Any) -> str:
    """What xdist says of a dead worker, on one line."""
    text = " ".join(str(error).split())
    return text[:200] if text else "no reason given"


class Controller:
    """The controller's hooks; the records and figures go to the session's :class:`LeakHunt`."""

    def __init__(self, owner: LeakHunt) -> None:
        self.owner = owner

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """The workers collect; every worker collects the same tests."""
        if self.owner.collected is None:
            self.owner.collected = list(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """A worker finished or died: keep its session figures, or say that they were lost."""
        from leakhunt.report.model import SessionFigures

        data = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
        worker = _worker_id(node)
        if data:
            self.owner.sessions.append(SessionFigures.from_dict(data))
        elif error is not None:
            reason = _crash_reason(error)
            self.owner.worker_errors[worker] = reason
            self.owner.sessions.append(SessionFigures(worker=worker, lost=f"the worker crashed ({reason})"))

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        """The test a crashed worker was running gets a record that says so (a plugin that re-runs
        it, such as pytest-rerunfailures, makes a real record later)."""
        from leakhunt.report.model import TestRecord

        worker = _worker_id(getattr(report, "node", None))
        reason = self.owner.worker_errors.get(worker)
        self.owner.records[crashitem] = TestRecord(
            nodeid=crashitem, outcome="crashed", verdict="not_measured", scope=self.owner.settings.scope,
            note=f"xdist worker {worker} crashed while running it" + (f" ({reason})" if reason else ""),
            worker=worker)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """The records arrive with the workers' reports. (In one process the record is kept when
        it is made.)"""
        if not report.user_properties or getattr(report, "node", None) is None:
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
        if (ours or report.when == "teardown") and not getattr(self.owner.config.option, "xmlpath", None):
            report.user_properties = [p for p in report.user_properties
                                      if not (isinstance(p[0], str) and p[0].startswith("leakhunt."))]
