"""The terminal outside pytest, through rich: the ``leakhunt run`` summary and ``leakhunt report`` text.

Colour follows rich's rules (a terminal gets colour; ``NO_COLOR`` and a pipe or file do not);
output is at most 100 columns wide. Inside pytest the plugin writes through pytest's own
terminal writer instead (:meth:`leakhunt.report.text.TextReport.write`).
"""

from __future__ import annotations

import io
from typing import IO, Any, Sequence

from leakhunt.report.text import MAX_WIDTH, Table, TextReport, fit
from leakhunt.report.timeline_text import figure_rows, site_where, violation_lines
from leakhunt.timeline import RunRecord
from leakhunt.units import format_size

__all__ = ["STYLES", "LiveStatus", "console", "print_run_summary", "print_test_report"]

#: Cell style -> rich style.
STYLES: dict[str, str] = {"bad": "bold red", "warn": "yellow", "good": "green", "muted": "dim", "head": "bold"}


def console(file: IO[str], *, plain: bool = False, width: int | None = None) -> Any:
    """A rich Console on ``file``, at most 100 columns; ``plain`` for a file (no colour, no terminal codes)."""
    from rich.console import Console

    if plain:
        return Console(file=file, width=width or MAX_WIDTH, color_system=None, force_terminal=False,
                       highlight=False, emoji=False, markup=False, soft_wrap=False)
    probe = Console(file=file)
    # a terminal's own width up to 100 columns; a pipe or a file gets 100
    wide = width or (probe.width if probe.is_terminal else MAX_WIDTH)
    return Console(file=file, width=min(wide, MAX_WIDTH), highlight=False, emoji=False, markup=False)


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


def print_test_report(report: Any, out: Any, *, top: int = 10) -> None:
    """The test report (:class:`leakhunt.report.model.TestReport`) on the rich console ``out``."""
    from rich.text import Text

    text = TextReport(report, top=top, width=out.width)
    for block in text.blocks():
        if isinstance(block, Table):
            out.print()
            out.print(_rich_table(block, out.width))
        else:
            line = Text()
            for cell in block:
                line.append(cell.text, style=STYLES.get(cell.style or "", ""))
            out.print(line)
    failures = report.failures()
    explained = [r for r in failures if r.explanation]
    if explained:
        from leakhunt.explanation import Explanation

        out.print()
        out.print(Text("why they failed", style="bold"))
        for record in explained:
            out.print()
            for line in Explanation.from_dict(record.explanation).lines():
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
            sites = RichTable(title=f"  alive at the peak (traced, top {min(top, len(record.trace.sites))})",
                              title_justify="left", title_style="bold", box=None, show_header=False,
                              pad_edge=False, padding=(0, 1))
            shown = record.trace.sites[:top]
            sites.add_column(justify="right", no_wrap=True, min_width=12)
            sites.add_column(overflow="ellipsis", no_wrap=True, ratio=1)  # the line, then its code
            for site in shown:
                via = f"  (via {site.via})" if site.via else ""
                sites.add_row(format_size(site.size), Text.assemble((site_where(site), "bold"),
                                                                    (f"  {site.code}{via}", "dim")))
            out.print(sites)
        if record.native is not None and top:
            _print_native(record, out, top)
        if record.explanation:
            from leakhunt.explanation import Explanation

            out.print(Text("  alive at exit:", style="bold"))
            for line in Explanation.from_dict(record.explanation).lines()[1:]:
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


class LiveStatus:
    """A live status line at the bottom of a terminal, the target's output printed above it.

    rich draws the line (``rich.live.Live``, transient: it is gone at the end). While it is up,
    the target's ``sys.stderr`` (and ``sys.stdout`` when it is the same kind of terminal) go
    through :class:`_LinesAbove`, which hands rich whole lines only, so a line is never cut by
    the status. When the target writes a partial line and flushes it - a prompt, a progress
    bar of its own - the status steps aside for the rest of the run.
    """

    def __init__(self, stream: IO[str]) -> None:
        from rich.live import Live
        from rich.text import Text

        self.console = console(stream)
        self._live = Live(Text(""), console=self.console, transient=True, auto_refresh=False,
                          redirect_stdout=False, redirect_stderr=False)
        self._saved: list[tuple[str, Any]] = []
        self.active = False

    def start(self) -> LiveStatus:
        import sys

        self._live.start()
        self.active = True
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if name == "stdout" and not _isatty(stream):
                continue  # a pipe or a file: the status on the terminal cannot garble it
            self._saved.append((name, stream))
            setattr(sys, name, _LinesAbove(self, stream))
        return self

    def update(self, text: str) -> None:
        """Show ``text`` as the status (called from the sampler's thread)."""
        if not self.active:
            return
        from rich.text import Text

        try:
            self._live.update(Text(text, style="dim"), refresh=True)
        except Exception:  # noqa: BLE001 - a status line must never break the run
            self.step_aside()

    def print_line(self, text: str) -> None:
        """Print one whole line of the target's output above the status."""
        from rich.text import Text

        self.console.print(Text.from_ansi(text), soft_wrap=True, highlight=False, markup=False)

    def step_aside(self) -> None:
        """Take the status down for good: the target's output goes straight through from now on."""
        if self.active:
            self.active = False
            self._live.stop()

    def stop(self) -> None:
        """Take the status down and give the target's streams back (pending partial lines are written)."""
        import sys

        self.step_aside()  # first: what is pending is written below a cleared status
        for name, original in reversed(self._saved):
            current = getattr(sys, name)
            if isinstance(current, _LinesAbove):
                current.release()
                setattr(sys, name, original)  # only ours: a stream the target installed stays
        self._saved.clear()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _LinesAbove(io.TextIOBase):
    """A text stream that passes whole lines to :meth:`LiveStatus.print_line`.

    Anything else (``fileno``, ``encoding``, ``isatty``, ``buffer``) is the wrapped stream's.
    """

    def __init__(self, status: LiveStatus, original: Any) -> None:
        super().__init__()
        self._status = status
        self._original = original
        self._pending = ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return _isatty(self._original)

    def fileno(self) -> int:
        return int(self._original.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self._original, "encoding", "utf-8"))

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not self._status.active:
            return int(self._original.write(text))
        if "\r" in text:  # the target redraws a line of its own: let it have the terminal
            self._status.step_aside()
            self._original.write(self._pending + text)
            self._pending = ""
            return len(text)
        data = self._pending + text
        *lines, self._pending = data.split("\n")
        for line in lines:
            self._status.print_line(line)
        return len(text)

    def flush(self) -> None:
        if self._pending and self._status.active:
            # a partial line flushed on purpose (a prompt, dots of progress): it must show now
            self._status.step_aside()
        if self._pending and not self._status.active:
            self._original.write(self._pending)
            self._pending = ""
        self._original.flush()

    def release(self) -> None:
        """Write what is pending straight to the wrapped stream."""
        if self._pending:
            self._original.write(self._pending)
            self._pending = ""
        try:
            self._original.flush()
        except (OSError, ValueError):
            pass
