"""``--leak-baseline``: each test's memory compared with a saved report; regressions fail the session.

Wiring only: the library reads the baseline and checks it (:func:`leakhunt.baseline.load_report`,
a bad one is a usage error before any test runs), explains a test whose figures regressed while
its fixtures are alive (:func:`leakhunt.baseline.explain_regression`, called from
:mod:`pytest_leakhunt.per_test`), and compares the session's report with the baseline at the end
(:func:`leakhunt.baseline.compare`). Here the result becomes pytest's: a section of the terminal
summary, a count in the last line, and exit status 1 (``--leak-regression-warn``: left alone).
Every process loads the baseline (an xdist worker explains its own tests); the controller compares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pytest

from leakhunt.baseline import BaselineError, Rule, explain_regression, load_report

if TYPE_CHECKING:
    from leakhunt.baseline import Comparison
    from leakhunt.measure import Measurement
    from leakhunt.report.model import TestRecord
    from pytest_leakhunt.options import Settings
    from pytest_leakhunt.session import LeakHunt

__all__ = ["PLUGIN_NAME", "Regressions", "STATS_KEY"]

PLUGIN_NAME = "leakhunt-baseline"
#: the key of pytest's terminal statistics: the last line reads "5 passed, 1 regressed (memory)"
STATS_KEY = "regressed (memory)"


class Regressions:
    """The baseline of the session, the explanations of regressed tests, and the comparison."""

    def __init__(self, owner: LeakHunt, settings: Settings) -> None:
        assert settings.baseline is not None
        self.owner = owner
        self.path = settings.baseline
        self.shown = settings.baseline_given or str(settings.baseline)
        self.warn_only = settings.regression_warn
        self.rerun = settings.rerun
        self.rule = Rule.parse(settings.regression) if settings.regression else Rule()
        try:
            self.baseline = load_report(settings.baseline, option="--leak-baseline", given=self.shown)
        except BaselineError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.records = {r.nodeid: r for r in self.baseline.records}
        self.comparison: Comparison | None = None

    def explain(self, record: TestRecord, measurement: Measurement | None, *, again: Callable[[], Any] | None,
                named: dict[str, Any] | None = None) -> None:
        """Explain ``record``'s regression (it is then carried by the record), while its test can
        still be called; a test that broke its budget or leaks has its explanation already."""
        base = self.records.get(record.nodeid)
        if base is None or measurement is None or record.explanation is not None or record.outcome != "passed":
            return
        explanation, note = explain_regression(measurement, base, self.rule, title=record.nodeid, again=again,
                                               rerun=self.rerun, named=named)
        if explanation is not None:
            record.explanation = explanation
        elif note:
            record.note = "; ".join(n for n in (record.note, note) if n)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.owner.worker:
            return
        from leakhunt.baseline import compare

        self.comparison = compare(self.owner.build_report(), self.baseline, self.rule)
        regressions = self.comparison.regressions()
        reporter = self.owner.config.pluginmanager.get_plugin("terminalreporter")
        if regressions and reporter is not None:
            reporter.stats.setdefault(STATS_KEY, []).extend(regressions)
        if regressions and not self.warn_only and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.comparison is None:
            return
        from leakhunt.report.compare_text import CompareText

        width = self.owner.config.get_terminal_writer().fullwidth
        terminalreporter.write_sep("=", f"leakhunt: memory against {self.shown}")
        CompareText(self.comparison, baseline=self.shown, top=self.owner.settings.report_top, width=width,
                    warn_only=self.warn_only).write(terminalreporter.write)
