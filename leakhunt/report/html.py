"""The HTML test report: one self-contained page (inline CSS and SVG, no scripts, no network)."""

from __future__ import annotations

import html
from typing import IO

from leakhunt.report.model import VERDICTS, TestRecord, TestReport
from leakhunt.units import format_size

__all__ = ["HtmlReport"]

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}
td.t,th.t{text-align:left;font-family:monospace}
.over_budget,.leak{color:#b00;font-weight:bold}.warmup_or_bounded_cache{color:#a60}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
svg{border:1px solid #ccc;background:#fafafa}
"""
_PEAK, _GROWTH = "#4a7bd0", "#e0762b"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


class HtmlReport:
    """``HtmlReport(report, top=20).render(file)``."""

    def __init__(self, report: TestReport, *, top: int = 20) -> None:
        self.report = report
        self.top = top

    def render(self, file: IO[str]) -> None:
        r = self.report
        file.write("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>")
        file.write(f"<title>leakhunt test report</title><style>{_CSS}</style></head><body>\n")
        file.write("<h1>leakhunt: memory per test</h1>\n")
        file.write(
            f"<p>session peak <b>{_e(format_size(r.peak))}</b> above start, growth "
            f"<b>{_e(format_size(r.growth, signed=True))}</b> over {len(r.records)} tests"
            f"{' (interrupted: partial)' if r.interrupted else ''}. "
            f"leakhunt {_e(r.version)}, {_e(r.created)}.</p>\n"
        )
        counts = r.verdict_counts()
        if counts:
            file.write("<p>" + ", ".join(
                f"<span class='{_e(v)}' title='{_e(VERDICTS.get(v, ''))}'>{n} {_e(v)}</span>"
                for v, n in sorted(counts.items())
            ) + "</p>\n")
        file.write("<h2>Peak and RSS growth of every test, in run order</h2>\n")
        self._chart(file, r.measured())
        self._table(file, f"Top {self.top} by peak", r.top_by_peak(self.top))
        self._table(file, f"Top {self.top} by RSS growth", r.top_by_growth(self.top))
        self._table(file, "Memory stayed up after", r.stayed_up())
        self._table(file, "Every test", list(r.records))
        file.write("</body></html>\n")

    def _chart(self, file: IO[str], rows: list[TestRecord]) -> None:
        if not rows:
            file.write("<p>no test was measured.</p>\n")
            return
        width, height, pad = 960, 260, 40
        top_value = max(max(r.peak or 0, abs(r.rss_growth or 0)) for r in rows) or 1
        step = (width - pad - 10) / len(rows)
        bar = max(step / 2, 0.5)
        base = height - 20
        scale = (height - 40) / top_value
        file.write(f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
                   f"role='img' aria-label='peak and growth per test'>\n")
        file.write(f"<line x1='{pad}' y1='{base}' x2='{width - 10}' y2='{base}' stroke='#888'/>\n")
        file.write(f"<text x='4' y='16' font-size='11'>{_e(format_size(top_value))}</text>\n")
        file.write(f"<text x='4' y='{base}' font-size='11'>0</text>\n")
        for i, rec in enumerate(rows):
            x = pad + i * step
            for offset, value, colour, label in (
                (0.0, rec.peak, _PEAK, "peak"),
                (bar, rec.rss_growth, _GROWTH, "growth"),
            ):
                if not value or value <= 0:
                    continue
                h = max(value * scale, 1.0)
                file.write(
                    f"<rect x='{x + offset:.2f}' y='{base - h:.2f}' width='{bar:.2f}' height='{h:.2f}' "
                    f"fill='{colour}'><title>{_e(rec.nodeid)}: {label} {_e(format_size(value))}</title></rect>\n"
                )
        file.write("</svg>\n")
        file.write(f"<p class='legend'><span style='background:{_PEAK}'></span>peak above the test's start"
                   f"<span style='background:{_GROWTH}'></span>RSS growth (hover a bar for the test)</p>\n")

    def _table(self, file: IO[str], title: str, rows: list[TestRecord]) -> None:
        if not rows:
            return
        file.write(f"<h2>{_e(title)}</h2>\n<table><tr><th>peak</th><th>RSS growth</th><th>traced</th>"
                   "<th>Arrow</th><th>leak/call</th><th>budget</th><th class='t'>verdict</th>"
                   "<th class='t'>outcome</th><th class='t'>test</th></tr>\n")
        for rec in rows:
            budget = ", ".join(f"{k}={format_size(v)}" for k, v in (rec.budget or {}).items())
            growth = format_size(rec.rss_growth, signed=True) + ("" if rec.settled else "~")
            cells = (format_size(rec.peak), growth, format_size(rec.traced_growth, signed=True),
                     format_size(rec.arrow_growth, signed=True), format_size(rec.leak_per_call), budget)
            file.write("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells))
            file.write(f"<td class='t {_e(rec.verdict)}'>{_e(rec.verdict)}</td><td class='t'>{_e(rec.outcome)}</td>"
                       f"<td class='t' title='{_e(rec.note or '')}'>{_e(rec.nodeid)}</td></tr>\n")
        file.write("</table>\n")
