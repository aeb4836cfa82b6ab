"""The terminal outside pytest, through rich: the ``leakhunt run`` summary and ``leakhunt report`` text.

Colour follows rich's rules (a terminal gets colour; ``NO_COLOR`` and a pipe or file do not);
output is at most 100 columns wide. Inside pytest the plugin writes through pytest's own
terminal writer instead (:meth:`leakhunt.report.text.TextReport.write`).
"""

from __future__ import annotations

from typing import IO, Any, Sequence

from leakhunt.report.explain_text import explanation_lines
from leakhunt.report.text import MAX_WIDTH, Block, Table, TextReport, fit
from leakhunt.report.timeline_text import figure_rows, site_where, violation_lines
from leakhunt.timeline import RunRecord
from leakhunt.units import format_size

__all__ = ["STYLES", "console", "print_blocks", "print_run_summary", "print_test_report"]

#: Cell style -> rich style.
STYLES: dict[str, str] = {"bad": "bold red", "warn": "yellow", "good": "green", "muted": "dim", "head": "bold"}


class _Trimmed:
    """A text file whose lines lose their trailing spaces: rich pads tables and wrapped lines to
    the console's width, which a terminal hides and a CI log or a file keeps (issue 26)."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file
        self._pending = ""

    def write(self, text: str) -> int:
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        if lines:
            self._file.write("".join(line.rstrip(" ") + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self._pending:  # a line that does not end (print(..., end="")) is written as it is
            self._file.write(self._pending)
            self._pending = ""
        self._file.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, ...: the file's
        return getattr(self._file, name)


def console(file: IO[str], *, plain: bool = False, width: int | None = None) -> Any:
    """A rich Console on ``file``, at most 100 columns; ``plain`` for a file (no colour, no terminal
    codes). Only a terminal gets lines padded to the width."""
    from rich.console import Console

    if plain:
        return Console(file=_Trimmed(file), width=width or MAX_WIDTH, color_system=None, force_terminal=False,
                       highlight=False, emoji=False, markup=False, soft_wrap=False)
    probe = Console(file=file)
    if not probe.is_terminal:  # a pipe or a file gets 100 columns, and no padding
        return Console(file=_Trimmed(file), width=width or MAX_WIDTH, highlight=False, emoji=False, markup=False)
    # a terminal's own width up to 100 columns
    return Console(file=file, width=min(width or probe.width, MAX_WIDTH), highlight=False, emoji=False,
                   markup=False)


def _rich_table(table: Table, width: int) -> Any:
    from rich import box
    from rich.table import Table as RichTable

    out = RichTable(title=table.title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                    pad_edge=False, show_edge=False, caption=table.note or None, caption_justify="left",
                    caption_style="dim")
    for i, (name, align) in enumerate(table.columns):
        last = i == len(table.columns) - 1
        out.add_column(name, justify="right" if align == "right" else "left", no_wrap=True,
                       overflow="ellipsis" if last else "fold", ratio=1 if last else None)
    for row in table.rows:
        cells = []
        for i, cell in enumerate(row):
            text = cell.text
            if i == len(row) - 1:
                text = fit(text, width - 12 * (len(row) - 1))  # a long test id loses its start
            cells.append(_text(text, cell.style))
        out.add_row(*cells)
    return out


def _text(text: str, style: str | None) -> Any:
    from rich.text import Text

    return Text(text, style=STYLES.get(style or "", ""))


def _indented(line: str, style: str = "") -> Any:
    """A line wrapped at the console's width, its continuation lines as indented as it is."""
    from rich.padding import Padding
    from rich.text import Text

    text = line.lstrip(" ")
    return Padding(Text(text, style=style), (0, 0, 0, len(line) - len(text)), expand=False)


def print_blocks(blocks: Sequence[Block], out: Any) -> None:
    """Lines and tables (:mod:`leakhunt.report.text`) on the rich console ``out``."""
    from rich.text import Text

    for block in blocks:
        if isinstance(block, Table):
            out.print()
            out.print(_rich_table(block, out.width))
        else:
            line = Text()
            for cell in block:
                line.append(cell.text, style=STYLES.get(cell.style or "", ""))
            out.print(line)


def print_test_report(report: Any, out: Any, *, top: int = 10) -> None:
    """The test report (:class:`leakhunt.report.model.TestReport`) on the rich console ``out``."""
    from rich.text import Text

    print_blocks(TextReport(report, top=top, width=out.width).blocks(), out)
    failures = report.failures()
    explained = [r for r in failures if r.explanation]
    if explained:
        out.print()
        out.print(Text("why they failed", style="bold"))
        for record in explained:
            out.print()
            for line in explanation_lines(record.explanation):
                out.print(_indented(line))


def print_run_summary(
    record: RunRecord,
    out: Any,
    *,
    top: int = 5,
    written: Sequence[str] = (),
    only_budget: bool = False,
) -> None:
    """The end-of-run summary of ``leakhunt run`` on the rich console ``out``."""
    from rich.table import Table as RichTable
    from rich.text import Text

    if not only_budget:
        out.print(Text.assemble(("leakhunt run: ", "bold"), (record.target, "bold cyan")))
        grid = RichTable.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        for label, value in figure_rows(record):
            style = ""
            if label == "budget":
                style = "bold red" if record.violations else "green"
            elif label == "exit status" and record.exit_status != 0:
                style = "bold red"
            grid.add_row("  " + label, Text(value, style=style))
        out.print(grid)
        if record.trace is not None and top and record.trace.sites:
            sites = _site_table(f"  alive at the peak (traced, top {min(top, len(record.trace.sites))})")
            shown = record.trace.sites[:top]
            for site in shown:
                via = f"  (via {site.via})" if site.via else ""
                sites.add_row(format_size(site.size), Text.assemble((site_where(site), "bold"),
                                                                    (f"  {site.code}{via}", "dim")))
            out.print(sites)
        if record.native is not None and top:
            _print_native(record, out, top)
        if record.explanation:
            out.print(Text("  alive at exit:", style="bold"))
            for line in explanation_lines(record.explanation)[1:]:
                out.print(_indented("  " + line))
    if record.violations:
        out.print(Text.assemble(("leakhunt run: ", "bold"), (record.target, "bold"),
                                (f" broke its memory budget ({record.budget}):", "bold red")))
        for line in violation_lines(record):
            out.print(_indented("  " + line, style="red"))
    for path in written:
        out.print(f"  wrote {path}")


def _site_table(title: str) -> Any:
    from rich.table import Table as RichTable

    table = RichTable(title=title, title_justify="left", title_style="bold", box=None, show_header=False,
                      pad_edge=False, padding=(0, 1))
    table.add_column(justify="right", no_wrap=True, min_width=12)
    table.add_column(overflow="ellipsis", no_wrap=True, ratio=1)  # the line, then its code
    return table


def _print_native(record: RunRecord, out: Any, top: int) -> None:
    """The native backend's sites at the peak, the lines that allocated most, its notes."""
    from rich.text import Text

    from leakhunt.native import churn_findings
    from leakhunt.report.timeline_text import native_site_extra, native_site_where, total_text

    native = record.native
    assert native is not None
    if native.sites:
        shown = native.sites[:top]
        table = _site_table(f"  alive at the peak (memray, top {len(shown)})")
        for site in shown:
            table.add_row(format_size(site.size), Text.assemble((native_site_where(site), "bold"),
                                                                (f"  {site.code}  {native_site_extra(site)}", "dim")))
        out.print(table)
    churn = list(churn_findings(native.totals))
    if native.totals:
        shown_totals = native.totals[:min(top, 3)]
        table = _site_table(f"  allocated over the run (top {len(shown_totals)})")
        for total in shown_totals:
            finding = (f"  {total.churn:.1f}x the most it held at once: the same data copied again and again;",
                       "yellow") if total in churn else ("", "")
            table.add_row(format_size(total.allocated), Text.assemble(
                (native_site_where(total), "bold"), finding, (f"  {total.code}  ({total_text(total)})", "dim")))
        out.print(table)
    for note in native.notes:
        out.print(_indented(f"  ({note})", style="dim"))
