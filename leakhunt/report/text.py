"""The test report in a terminal: the session's figures, verdicts, the top tests by peak and growth.

:meth:`TextReport.blocks` aggregates once into lines and tables of styled cells; two renderers
draw them: :meth:`TextReport.write` through a writer with pytest's ``write(text, **markup)``
signature (the plugin passes its terminal writer, which knows about ``--color`` and
``NO_COLOR``) or into a plain file (:meth:`TextReport.render`), and
:func:`leakhunt.report.console.print_test_report` through rich outside pytest. Everything fits
``width`` columns (100 at most): long test ids lose their start, never their test name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any, Callable, Sequence, Union

from leakhunt.report.model import TestRecord, TestReport
from leakhunt.units import format_size

__all__ = ["Cell", "Table", "TextReport", "MARKUP", "VERDICT_STYLES", "fit"]

#: How each verdict is styled: bad (failed), warn (look at it), good, muted (not measured).
VERDICT_STYLES: dict[str, str] = {
    "ok": "good",
    "over_budget": "bad",
    "leak": "bad",
    "warmup_or_bounded_cache": "warn",
    "not_hunted": "muted",
    "not_judged": "muted",
    "opted_out": "muted",
    "not_measured": "muted",
}
#: Style -> pytest TerminalWriter markup.
MARKUP: dict[str, dict[str, bool]] = {
    "bad": {"red": True, "bold": True},
    "warn": {"yellow": True},
    "good": {"green": True},
    "muted": {},
    "head": {"bold": True},
}
MAX_WIDTH = 100


@dataclass(frozen=True)
class Cell:
    text: str
    style: str | None = None  # bad | warn | good | muted | head | None


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[tuple[str, str], ...]  # (heading, "right" | "left")
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""  # a line under the table


Line = tuple[Cell, ...]
Block = Union[Line, Table]


def fit(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, losing its start (a test id keeps its name)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[-width:] if width > 0 else ""
    return "\u2026" + text[-(width - 1):]


class TextReport:
    """``TextReport(report, top=10, width=100)``; ``render(file)`` or ``write(writer)``."""

    def __init__(self, report: TestReport, *, top: int = 10, width: int = MAX_WIDTH) -> None:
        self.report = report
        self.top = top
        self.width = max(40, min(width, MAX_WIDTH))

    # ------------------------------------------------------------------ data
    def _figure_columns(self) -> list[tuple[str, str, Callable[[TestRecord], str]]]:
        records = self.report.records
        columns: list[tuple[str, str, Callable[[TestRecord], str]]] = [
            ("peak", "right", lambda r: format_size(r.peak)),
            ("rss growth", "right",
             lambda r: format_size(r.rss_growth, signed=True) + ("" if r.settled or r.rss_growth is None else "~")),
        ]
        # a column nobody measured says nothing: traced needs tracing, arrow needs pyarrow
        if any(r.traced_growth is not None for r in records):
            columns.append(("traced", "right", lambda r: format_size(r.traced_growth, signed=True)))
        if any(r.arrow_growth is not None for r in records):
            columns.append(("arrow", "right", lambda r: format_size(r.arrow_growth, signed=True)))
        return columns

    def _table(self, title: str, rows: Sequence[TestRecord]) -> Table:
        figures = self._figure_columns()
        columns = tuple((name, align) for name, align, _ in figures) + (("verdict", "left"), ("test", "left"))
        body = tuple(
            tuple(Cell(get(r)) for _, _, get in figures)
            + (Cell(r.verdict, VERDICT_STYLES.get(r.verdict)), Cell(r.nodeid))
            for r in rows
        )
        note = ""
        if any(not r.settled and r.rss_growth is not None for r in rows):
            note = "~ unsettled: may include garbage not yet collected or memory an allocator kept"
        return Table(title=title, columns=columns, rows=body, note=note)

    def blocks(self) -> list[Block]:
        """The report as lines and tables, in order."""
        report = self.report
        processes = len(report.sessions)
        where = f" ({processes} processes)" if processes > 1 else ""
        resident = report.peak_rss
        head: Line = (
            Cell("session: ", "head"),
            Cell(f"peak {format_size(report.peak)} above start"
                 + (f" (RSS {format_size(resident)})" if resident is not None else "")
                 + f", growth {format_size(report.growth, signed=True)} over {len(report.records)} tests{where}"),
        )
        if report.interrupted:
            head += (Cell("  [interrupted: partial]", "warn"),)
        out: list[Block] = [head]
        missing = report.completeness()
        if missing:
            out.append((Cell(missing, "warn"),))
        lost = [s for s in report.sessions if s.lost]
        if lost:
            out.append((Cell("figures lost: " + "; ".join(f"{s.worker or 'a process'}: {s.lost}" for s in lost),
                             "warn"),))
        counts = report.verdict_counts()
        if counts:
            line: list[Cell] = [Cell("verdicts: ", "head")]
            for i, (verdict, n) in enumerate(sorted(counts.items())):
                if i:
                    line.append(Cell(", "))
                line.append(Cell(f"{n} {verdict}", VERDICT_STYLES.get(verdict)))
            out.append(tuple(line))
        for title, rows in ((f"top {self.top} by peak", report.top_by_peak(self.top)),
                            (f"top {self.top} by RSS growth", report.top_by_growth(self.top))):
            if rows:
                out.append(self._table(title, rows))
        stayed = report.stayed_up()
        if stayed:
            body = []
            for r in stayed:
                if r.verdict == "leak" and r.leak_per_call is not None:
                    figure = f"{format_size(r.leak_per_call, signed=True)}/call"
                else:
                    figure = format_size(r.rss_growth, signed=True)
                body.append((Cell(figure), Cell(r.verdict, VERDICT_STYLES.get(r.verdict)), Cell(r.nodeid)))
            out.append(Table(
                title=f"memory stayed up after (settled growth >= {format_size(report.stayed_up_min)}, or a leak)",
                columns=(("kept", "right"), ("verdict", "left"), ("test", "left")), rows=tuple(body)))
        notes = [r for r in report.records if r.note]
        if notes:
            out.append(Table(title="notes", columns=(("test", "left"), ("note", "left")),
                             rows=tuple((Cell(r.nodeid), Cell(r.note or "", "muted")) for r in notes)))
        return out

    # ------------------------------------------------------------------ plain / pytest
    def write(self, write: Callable[..., Any]) -> None:
        """Write through ``write(text, **markup)``: pytest's terminal writer, or any such function."""
        for block in self.blocks():
            if isinstance(block, Table):
                self._write_table(write, block)
            else:
                for cell in block:
                    write(cell.text, **MARKUP.get(cell.style or "", {}))
                write("\n")

    def render(self, file: IO[str]) -> None:
        """Plain text into ``file``."""
        self.write(lambda text, **_markup: file.write(text))

    def _write_table(self, write: Callable[..., Any], table: Table) -> None:
        write("\n")
        write(table.title + "\n", bold=True)
        gap = 2
        widths = [max([len(name)] + [len(row[i].text) for row in table.rows]) for i, (name, _) in
                  enumerate(table.columns)]
        # the last column (a test id or a note) takes what is left, and is cut from the left
        fixed = sum(widths[:-1]) + gap * (len(widths) - 1)
        widths[-1] = max(12, min(widths[-1], self.width - fixed))

        def cells(texts: Sequence[Cell], heading: bool = False) -> None:
            for i, ((_, align), cell) in enumerate(zip(table.columns, texts)):
                text = fit(cell.text, widths[i]) if i == len(widths) - 1 else cell.text
                last = i == len(widths) - 1
                padded = text.rjust(widths[i]) if align == "right" else (text if last else text.ljust(widths[i]))
                markup = {"bold": True} if heading else MARKUP.get(cell.style or "", {})
                write(padded, **markup)
                if not last:
                    write(" " * gap)
            write("\n")

        cells([Cell(name) for name, _ in table.columns], heading=True)
        for row in table.rows:
            cells(row)
        if table.note:
            write(table.note[: self.width] + "\n")
