"""The test report in a terminal: the session's figures, verdicts, the top tests by peak and growth.

:meth:`TextReport.blocks` aggregates once into lines and tables of styled cells; two renderers
draw them: :meth:`TextReport.write` through a writer with pytest's ``write(text, **markup)``
signature (the plugin passes its terminal writer, which knows about ``--color`` and
``NO_COLOR``) or into a plain file (:meth:`TextReport.render`), and
:func:`leakhunt.report.console.print_test_report` through rich outside pytest. Everything fits
``width`` columns (100 at most): long test ids lose their start, never their test name.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import IO, Any, Callable, Mapping, Sequence, Union

from leakhunt.report.explain_text import explanation_lines
from leakhunt.report.model import TestRecord, TestReport
from leakhunt.units import format_size

__all__ = ["Block", "Cell", "Line", "Table", "TextReport", "MARKUP", "VERDICT_STYLES", "WHY", "fit", "write_blocks"]

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
#: The heading of the failing tests' explanations.
WHY = "why they failed"


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
        out: list[Block] = [self._head(), *self._warnings()]
        counts = report.verdict_counts()
        if counts:
            out.append(_verdicts_line(counts))
        for title, rows in ((f"top {self.top} by peak", report.top_by_peak(self.top)),
                            (f"top {self.top} by RSS growth", report.top_by_growth(self.top))):
            if rows:
                out.append(self._table(title, rows))
        stayed = report.stayed_up()
        if stayed:
            out.append(self._stayed_up(stayed))
        notes = [r for r in report.records if r.note]
        if notes:
            out.append(Table(title="notes", columns=(("test", "left"), ("note", "left")),
                             rows=tuple((Cell(r.nodeid), Cell(r.note or "", "muted")) for r in notes)))
        return out

    def _head(self) -> Line:
        """The session's line: its peak, its growth, how many tests and processes."""
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
        return head

    def _warnings(self) -> list[Block]:
        """What the report lacks: missing tests, figures lost with a process."""
        report = self.report
        out: list[Block] = []
        missing = report.completeness()
        if missing:
            out.append((Cell(missing, "warn"),))
        lost = [s for s in report.sessions if s.lost]
        if lost:
            out.append((Cell("figures lost: " + "; ".join(f"{s.worker or 'a process'}: {s.lost}" for s in lost),
                             "warn"),))
        return out

    def _stayed_up(self, stayed: Sequence[Any]) -> Table:
        """The tests whose memory stayed up after them: what each kept (per call for a leak)."""
        body = []
        for r in stayed:
            if r.verdict == "leak" and r.leak_per_call is not None:
                figure = f"{format_size(r.leak_per_call, signed=True)}/call"
            else:
                figure = format_size(r.rss_growth, signed=True)
            body.append((Cell(figure), Cell(r.verdict, VERDICT_STYLES.get(r.verdict)), Cell(r.nodeid)))
        return Table(
            title=f"memory stayed up after (settled growth >= {format_size(self.report.stayed_up_min)}, or a leak)",
            columns=(("kept", "right"), ("verdict", "left"), ("test", "left")), rows=tuple(body))

    # ------------------------------------------------------------------ plain / pytest
    def write(self, write: Callable[..., Any]) -> None:
        """Write through ``write(text, **markup)``: pytest's terminal writer, or any such function."""
        write_blocks(self.blocks(), write, self.width)

    def render(self, file: IO[str]) -> None:
        """Plain text into ``file``: the blocks, then why the tests failed. The file every front
        end writes for a ``.txt`` test report (the plugin's ``--leak-report-file``, ``leakhunt report -o``)."""
        blocks = self.blocks() + [(Cell(line),) for line in _wrapped(self.why_lines(), self.width)]
        write_blocks(blocks, lambda text, **_markup: file.write(text), self.width)

    def why_lines(self) -> list[str]:
        """The "why they failed" section: each failing test's explanation (:mod:`leakhunt.report.explain_text`),
        a blank line before each; none when no failing test carries one. Outside pytest, which
        shows the failures itself."""
        explained = [r for r in self.report.failures() if r.explanation]
        if not explained:
            return []
        lines = ["", WHY]
        for record in explained:
            lines.append("")
            lines.extend(explanation_lines(record.explanation))
        return lines


def _wrapped(lines: Sequence[str], width: int) -> list[str]:
    """Each line in ``width`` columns, its continuation lines as indented as it is."""
    out = []
    for line in lines:
        text = line.lstrip(" ")
        indent = " " * (len(line) - len(text))
        out.extend(textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent,
                                 break_on_hyphens=False) or [""])
    return out


def _verdicts_line(counts: Mapping[str, int]) -> Line:
    """``verdicts: 2 leak, 5 ok``, each verdict in its style."""
    line: list[Cell] = [Cell("verdicts: ", "head")]
    for i, (verdict, n) in enumerate(sorted(counts.items())):
        if i:
            line.append(Cell(", "))
        line.append(Cell(f"{n} {verdict}", VERDICT_STYLES.get(verdict)))
    return tuple(line)


def write_blocks(blocks: Sequence[Block], write: Callable[..., Any], width: int = MAX_WIDTH) -> None:
    """Lines and tables through ``write(text, **markup)``, in ``width`` columns; no line ends in
    spaces (a CI log keeps no padding)."""
    for block in blocks:
        if isinstance(block, Table):
            _write_table(write, block, width)
        else:
            for cell in block:
                write(cell.text, **MARKUP.get(cell.style or "", {}))
            write("\n")


def _write_table(write: Callable[..., Any], table: Table, width: int) -> None:
    write("\n")
    write(table.title + "\n", bold=True)
    gap = 2
    widths = [max([len(name)] + [len(row[i].text) for row in table.rows]) for i, (name, _) in
              enumerate(table.columns)]
    # the last column (a test id or a note) takes what is left, and is cut from the left
    fixed = sum(widths[:-1]) + gap * (len(widths) - 1)
    widths[-1] = max(12, min(widths[-1], width - fixed))

    def cells(texts: Sequence[Cell], heading: bool = False) -> None:
        pieces: list[tuple[str, dict[str, bool]]] = []
        for i, ((_, align), cell) in enumerate(zip(table.columns, texts)):
            last = i == len(widths) - 1
            text = fit(cell.text, widths[i]) if last else cell.text
            padded = text.rjust(widths[i]) if align == "right" else text.ljust(widths[i])
            pieces.append((padded, {"bold": True} if heading else MARKUP.get(cell.style or "", {})))
            if not last:
                pieces.append((" " * gap, {}))
        while pieces and not pieces[-1][0].strip():  # nothing after the last word: no padding
            pieces.pop()
        if pieces:
            pieces[-1] = (pieces[-1][0].rstrip(), pieces[-1][1])
        for text, markup in pieces:
            write(text, **markup)
        write("\n")

    cells([Cell(name) for name, _ in table.columns], heading=True)
    for row in table.rows:
        cells(row)
    if table.note:
        write(table.note[:width] + "\n")
