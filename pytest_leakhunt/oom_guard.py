"""``--leak-oom-guard``: the test that would get the session killed fails with the diagnosis.

Wiring only: :class:`leakhunt.oom.OomGuard` watches and diagnoses. Each process that runs
tests (the session, or each xdist worker; never the xdist controller, which runs none) starts
its own guard, armed while a test's phases run. When memory reaches the threshold during a test, the
guard writes the diagnosis to the report file and raises ``MemoryError`` in the test; the test
fails with the diagnosis as its failure text (also when the test swallowed the error, or had
already failed for another reason: then the diagnosis is a section of its report). The session
then continues (``--leak-oom-action=continue``, the default) or stops after that test (``stop``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Generator

import pytest

from pytest_leakhunt.options import OomSettings

__all__ = ["PLUGIN_NAME", "OomGuardPlugin", "make_guard"]

PLUGIN_NAME = "leakhunt-oom-guard"


def _worker_id(config: pytest.Config) -> str | None:
    workerinput = getattr(config, "workerinput", None)
    return None if workerinput is None else str(workerinput.get("workerid", "worker"))


def _report_path(settings: OomSettings, worker: str | None) -> Path:
    """The report path; an xdist worker's has its id before the suffix (leakhunt-oom-gw0.json)."""
    path = settings.report
    return path if worker is None else path.with_name(f"{path.stem}-{worker}{path.suffix}")


def make_guard(config: pytest.Config, settings: OomSettings) -> Any:
    """The guard of this process, checked now (a bad value is a UsageError naming it)."""
    import sys

    from leakhunt.oom import OomGuard

    plugin: OomGuardPlugin | None = None

    def context() -> dict[str, Any]:
        return {"test": plugin.current} if plugin is not None and plugin.current else {}

    try:
        guard = OomGuard(settings.threshold, limit=settings.limit, action="stop",
                         report=_report_path(settings, _worker_id(config)), stderr=sys.stderr, context=context,
                         options=dict(settings.options))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    plugin = OomGuardPlugin(guard, settings)
    return plugin


class OomGuardPlugin:
    """Starts the guard when the session starts, arms it around each test, fails the test that
    crossed the threshold."""

    def __init__(self, guard: Any, settings: OomSettings) -> None:
        self.guard = guard
        self.settings = settings
        self.current: str | None = None
        self.reported: set[int] = set()  # crossings already charged to a test
        self.running = False

    def pytest_report_header(self, config: pytest.Config) -> str:
        then = "stops" if self.settings.action == "stop" else "goes on"
        return (f"leakhunt OOM guard: {self.guard.describe(action=False)}; the test that crosses it fails, "
                f"then the session {then}; diagnosis to {self.guard.report_given}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if session.config.pluginmanager.getplugin("dsession") is not None:
            return  # the xdist controller runs no test: each worker guards itself
        self.guard.start()
        self.running = True

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.running:
            self.running = False
            self.guard.stop()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
        self.current = item.nodeid
        try:
            return (yield)
        finally:
            self.current = None

    # Armed only while a phase runs the test's own code (its fixtures, its body): a stop never
    # lands in pytest's reporting between the phases.
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        return (yield from self._armed())

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        return (yield from self._armed())

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
        return (yield from self._armed())

    def _armed(self) -> Generator[None, None, None]:
        self.guard.armed = self.running
        try:
            return (yield)
        finally:
            self.guard.armed = False

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        crossed = [d for d in self.guard.crossings
                   if d.context.get("test") == item.nodeid and d.number not in self.reported]
        if not crossed:
            return report
        self.reported.update(d.number for d in crossed)
        text = "\n\n".join(str(d) for d in crossed)
        ours = call.excinfo is not None and self.guard.stopped(call.excinfo.value)
        if report.passed or ours:
            report.outcome = "failed"
            report.longrepr = text
        else:
            report.sections.append(("leakhunt OOM guard", text))
        if self.settings.action == "stop":
            item.session.shouldstop = (f"leakhunt: {item.nodeid} crossed the OOM guard's threshold "
                                       f"(--leak-oom-action=stop)")
        return report

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        crossings = self.guard.crossings
        if crossings:
            terminalreporter.write_line(
                f"leakhunt OOM guard: {len(crossings)} crossing{'' if len(crossings) == 1 else 's'}; "
                f"diagnosis in {self.guard.report_given}")
