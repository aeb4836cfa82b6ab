"""The terminal report: the session's figures, then the top tests by peak and by growth."""

from __future__ import annotations

from typing import IO

from leakhunt.report.model import TestRecord, TestReport
from leakhunt.units import format_size

__all__ = ["TextReport"]

_COLUMNS = ("peak", "rss growth", "traced", "arrow", "verdict")


class TextReport:
    """``TextReport(report, top=10).render(file)``."""

    def __init__(self, report: TestReport, *, top: int = 10) -> None:
        self.report = report
        self.top = top

    def render(self, file: IO[str]) -> None:
        report = self.report
        processes = len(report.sessions)
        where = f" ({processes} processes)" if processes > 1 else ""
        file.write(
            f"session: peak {format_size(report.peak)} above start, "
            f"growth {format_size(report.growth, signed=True)} over {len(report.records)} tests{where}"
            + ("  [interrupted: partial]" if report.interrupted else "")
            + "\n"
        )
        counts = report.verdict_counts()
        if counts:
            file.write("verdicts: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) + "\n")
        self._table(file, f"top {self.top} by peak", report.top_by_peak(self.top))
        self._table(file, f"top {self.top} by RSS growth", report.top_by_growth(self.top))
        stayed = report.stayed_up()
        if stayed:
            file.write(f"\nmemory stayed up after (settled growth >= {format_size(report.stayed_up_min)}, or a leak):\n")
            for record in stayed:
                if record.verdict == "leak" and record.leak_per_call is not None:
                    figure = f"{format_size(record.leak_per_call, signed=True)}/call"
                else:
                    figure = format_size(record.rss_growth, signed=True)
                file.write(f"  {figure:>16}  {record.nodeid}  [{record.verdict}]\n")
        notes = [r for r in report.records if r.note]
        if notes:
            file.write("\nnotes:\n")
            for record in notes:
                file.write(f"  {record.nodeid}: {record.note}\n")

    def _table(self, file: IO[str], title: str, rows: list[TestRecord]) -> None:
        if not rows:
            return
        file.write(f"\n{title}\n")
        file.write("".join(f"{c:>12}" for c in _COLUMNS[:4]) + f"  {'verdict':<24}test\n")
        for r in rows:
            cells = (
                format_size(r.peak),
                format_size(r.rss_growth, signed=True) + ("" if r.settled else "~"),
                format_size(r.traced_growth, signed=True),
                format_size(r.arrow_growth, signed=True),
            )
            file.write("".join(f"{c:>12}" for c in cells) + f"  {r.verdict:<24}{r.nodeid}\n")
        if any(not r.settled for r in rows):
            file.write("  (~ unsettled reading: may include garbage not yet collected or memory an allocator kept)\n")
