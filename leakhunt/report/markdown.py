"""The test report as a short Markdown summary: a CI job's page (GitHub's ``GITHUB_STEP_SUMMARY``).

The session in one line, the regressions against a baseline (when compared), the tests that
leak or broke their budget, and the worst tests by peak and by retained memory. GitHub renders
the Markdown of every file a job appends to ``$GITHUB_STEP_SUMMARY`` on the run's page; the
pytest plugin appends this summary there when that variable is set.
"""

from __future__ import annotations

import html
from typing import IO, Sequence

from leakhunt.baseline import Comparison
from leakhunt.report.explain_text import explanation_lines
from leakhunt.report.model import TestRecord, TestReport
from leakhunt.units import format_size

__all__ = ["MarkdownSummary", "cell"]


def cell(text: str) -> str:
    """``text`` as one table cell: pipes escaped, no line breaks, code spans for test ids."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _code(text: str, *, in_table: bool = True) -> str:
    """A code span (a test id); in a table cell its pipes are escaped (GitHub reads them so)."""
    body = cell(text) if in_table else text.replace("\n", " ")
    return f"`{body}`" if "`" not in body else f"`` {body} ``"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    align = ["---:" if i in right else "---" for i in range(len(head))]
    return ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |",
            *("| " + " | ".join(row) + " |" for row in rows), ""]


class MarkdownSummary:
    """``MarkdownSummary(report, comparison=None, baseline="BASE.json", top=10).render(file)``."""

    def __init__(self, report: TestReport, *, comparison: Comparison | None = None, baseline: str = "the baseline",
                 top: int = 10, warn_only: bool = False) -> None:
        self.report = report
        self.comparison = comparison
        self.baseline = baseline
        self.top = top
        self.warn_only = warn_only

    def lines(self) -> list[str]:
        report = self.report
        out = ["### leakhunt: memory per test", ""]
        counts = ", ".join(f"{n} {verdict.replace('_', ' ')}" for verdict, n in sorted(report.verdict_counts().items()))
        out.append(f"{len(report.records):,} tests; session peak {format_size(report.peak)} above start, "
                   f"growth {format_size(report.growth, signed=True)}" + (f"; verdicts: {counts}" if counts else ""))
        missing = report.completeness()
        if missing:
            out.append(f"\n**{missing}**")
        out.append("")
        if self.comparison is not None:
            out.extend(self._regressions(self.comparison))
        failures = report.failures()
        if failures:
            out.append(f"#### Leaks and broken budgets ({len(failures)})")
            out.append("")
            out.extend(_table(("test", "verdict", "why"),
                              [(_code(r.nodeid), r.verdict.replace("_", " "), cell(_why(r))) for r in failures]))
        for title, rows, name in ((f"Worst {self.top} by peak", report.top_by_peak(self.top), "peak"),
                                  (f"Worst {self.top} by retained memory (RSS growth)",
                                   report.top_by_growth(self.top), "rss_growth")):
            if rows:
                out.append(f"#### {title}")
                out.append("")
                out.extend(_table(("test", "peak", "retained"),
                                  [(_code(r.nodeid), format_size(r.peak), format_size(r.rss_growth, signed=True))
                                   for r in rows], right=(1, 2)))
        return out

    def _regressions(self, comparison: Comparison) -> list[str]:
        regressions = comparison.regressions()
        word = "warnings" if self.warn_only and regressions else ""
        out = [f"#### Against {cell(self.baseline)}: {len(regressions)} regressed" + (f" ({word})" if word else ""),
               "", comparison.summary(), ""]
        out.extend(f"> note: {cell(note)}\n" for note in comparison.notes)
        rows = [(_code(change.nodeid), f.label, format_size(f.new), format_size(f.base), f.ratio_text(),
                 format_size(f.delta, signed=True))
                for change in regressions for f in change.regressions]
        if rows:
            out.extend(_table(("test", "figure", "this run", "baseline", "ratio", "change"), rows,
                              right=(2, 3, 4, 5)))
        for change in regressions:
            if change.explanation is not None:
                out += [f"<details><summary>why {html.escape(change.nodeid)} regressed</summary>", "", "```text",
                        *explanation_lines(change.explanation)[1:], "```", "", "</details>", ""]
        for title, tests in (("new", comparison.new_tests()), ("gone", comparison.gone_tests())):
            if tests:
                shown = ", ".join(_code(t.nodeid, in_table=False) for t in tests[: self.top])
                more = f" and {len(tests) - self.top:,} more" if len(tests) > self.top else ""
                out += [f"{len(tests):,} {title} since the baseline: {shown}{more}", ""]
        return out

    def render(self, file: IO[str]) -> None:
        file.write("\n".join(self.lines()).rstrip("\n") + "\n\n")


def _why(record: TestRecord) -> str:
    """The first line that says what broke: the explanation's, else the violations."""
    if record.explanation is not None:
        return explanation_lines(record.explanation)[0]
    parts = [f"{v.get('figure')} {format_size(v.get('value'))} > {format_size(v.get('limit'))}" for v in record.violations]
    return "; ".join(parts) or record.verdict
