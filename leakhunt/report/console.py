"""The terminal outside pytest, through rich: the console, and the test report as ``leakhunt report`` prints it.

The ``leakhunt run`` summary is :meth:`leakhunt.report.run_report.RunReport.print`, on this console.

Colour follows rich's rules (a terminal gets colour; ``NO_COLOR`` and a pipe or file do not);
output is at most 100 columns wide. Inside pytest the plugin writes through pytest's own
terminal writer instead (:meth:`leakhunt.report.text.TextReport.write`).
"""

from __future__ import annotations

from typing import IO, Any, Sequence

from leakhunt.report.text import MAX_WIDTH, WHY, Block, Table, TextReport, fit

__all__ = ["STYLES", "console", "indented", "print_blocks", "print_test_report"]

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


def indented(line: str, style: str = "") -> Any:
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

    text = TextReport(report, top=top, width=out.width)
    print_blocks(text.blocks(), out)
    for line in text.why_lines():
        out.print(Text(line, style="bold") if line == WHY else indented(line) if line else "")
