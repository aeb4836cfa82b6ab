"""The HTML test report: one self-contained page built from the shared templates.

A sortable, filterable table of every test; for each test that broke its budget or leaks, its
explanation with a picture of each retention path; a chart of the top tests by peak and the
distribution over all tests (readable at thousands of tests). Inline CSS, JavaScript and SVG:
nothing is fetched. Needs ``leakhunt[html]`` (Jinja2 and matplotlib).
"""

from __future__ import annotations

import re
from typing import IO, Any

from leakhunt.report.model import VERDICTS, TestReport

__all__ = ["HtmlReport"]


def _anchor(nodeid: str, used: set[str]) -> str:
    base = "t-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", nodeid).strip("-")[:80] or "test")
    anchor, n = base, 1
    while anchor in used:
        n += 1
        anchor = f"{base}-{n}"
    used.add(anchor)
    return anchor


def _settings_text(settings: dict[str, Any]) -> str:
    """The settings that shaped the figures, as the options the user gives (the front end that
    wrote the report spells them: ``--leak-threshold=64 KiB``); a report written before it did
    shows its settings' own names. Where the file went is no news to its reader."""
    if settings.get("options") is not None:
        return " ".join(settings["options"])
    return ", ".join(f"{k}={v}" for k, v in settings.items() if v not in (None, False, "") and k != "report_file")


class HtmlReport:
    """``HtmlReport(report, top=20).render(file)``: ``top`` tests in the bar chart."""

    def __init__(self, report: TestReport, *, top: int = 20) -> None:
        self.report = report
        self.top = top

    def failures(self) -> list[dict[str, Any]]:
        """Each failing or leaking test with its explanation (``None`` when none was recorded)."""
        used: set[str] = set()
        items = []
        for record in self.report.failures():
            items.append({"record": record, "explanation": record.explanation,
                          "anchor": _anchor(record.nodeid, used)})
        return items

    def context(self) -> dict[str, Any]:
        from leakhunt.report import charts

        report = self.report
        measured = report.measured()
        failures = self.failures()
        top = report.top_by_peak(self.top)

        def any_set(name: str) -> bool:
            return any(getattr(r, name) is not None for r in report.records)

        settings = _settings_text(report.settings)
        return {
            "report": report,
            "version": report.version,
            "counts": sorted(report.verdict_counts().items(), key=lambda kv: list(VERDICTS).index(kv[0])
                             if kv[0] in VERDICTS else len(VERDICTS)),
            "verdicts": VERDICTS,
            "failures": failures,
            "anchors": {item["record"].nodeid: item["anchor"] for item in failures},
            "top_n": len(top),
            "top_chart": charts.top_tests_svg(top),
            "distribution_chart": charts.distribution_svg(measured) if len(measured) > 1 else None,
            "show_traced": any_set("traced_growth"),
            "show_arrow": any_set("arrow_growth"),
            "show_leak": any_set("leak_per_call"),
            "settings_text": settings,
        }

    def render(self, file: IO[str]) -> None:
        from leakhunt.report.templating import render

        render("test_report.html.j2", file, **self.context())

