"""The run report (``leakhunt run``, ``leakhunt report`` on its JSON): one model, four renderers.

``RunReport(record, top=10)`` wraps a :class:`leakhunt.timeline.RunRecord` (the model the run
command records and ``--json`` saves) and renders it: :meth:`~RunReport.print` (the end-of-run
summary on a rich console; :meth:`~RunReport.print_verdict` its budget lines alone, for
``--quiet``), :meth:`~RunReport.render_text` (the same summary in a plain file),
:meth:`~RunReport.render_json`, :meth:`~RunReport.render_html` (the page,
:mod:`leakhunt.report.timeline_html`) and :meth:`~RunReport.render_png` (the timeline plot).
:meth:`~RunReport.write` writes one of them atomically, by the path's format. The words of the
run are :mod:`leakhunt.report.timeline_text`; the explanation of what is alive at exit goes
through the one explanation text renderer (:mod:`leakhunt.report.explain_text`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, Sequence

from leakhunt.report.console import indented, console
from leakhunt.report.explain_text import explanation_lines
from leakhunt.report.files import ReportPath, write_atomic, write_atomic_binary
from leakhunt.report.timeline_text import figure_rows, site_where, violation_lines
from leakhunt.timeline import RunRecord
from leakhunt.units import format_size

__all__ = ["RunReport"]


class RunReport:
    """``RunReport(record, top=10)``: the run ``record`` with the ``top`` sites of each list."""

    def __init__(self, record: RunRecord, *, top: int = 10) -> None:
        self.record = record
        self.top = top

    # ------------------------------------------------------------------ files
    def render_json(self, file: IO[str]) -> None:
        """The record's JSON form (``--json``; ``leakhunt report`` reads it back)."""
        json.dump(self.record.to_dict(), file, indent=1)
        file.write("\n")

    def render_text(self, file: IO[str]) -> None:
        """The summary as plain text (no colour, no terminal codes)."""
        self.print(console(file, plain=True))

    def render_html(self, file: IO[str]) -> None:
        """The self-contained page (needs ``leakhunt[html]``)."""
        from leakhunt.report.timeline_html import render_html

        render_html(self.record, file, top=self.top)

    def render_png(self, path: str) -> None:
        """The timeline plot as a PNG image (needs ``leakhunt[html]``)."""
        from leakhunt.report.timeline_html import plot_png

        plot_png(self.record, path)

    def write(self, checked: ReportPath) -> Path:
        """Write the report to ``checked.path`` atomically, in ``checked.format``."""
        if checked.format == "png":
            return write_atomic_binary(checked.path, self.render_png)
        render = {"json": self.render_json, "html": self.render_html, "text": self.render_text}[checked.format]
        return write_atomic(checked.path, render)

    # ------------------------------------------------------------------ terminal
    def print(self, out: Any, *, written: Sequence[str] = ()) -> None:
        """The end-of-run summary on the rich console ``out``: the figures, the sites at the peak,
        what is alive at exit, the budget, the files ``written``."""
        from rich.table import Table as RichTable
        from rich.text import Text

        record = self.record
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
        self._print_sites(out)
        if record.native is not None and self.top:
            self._print_native(out)
        if record.explanation:
            out.print(Text("  alive at exit:", style="bold"))
            for line in explanation_lines(record.explanation)[1:]:
                out.print(indented("  " + line))
        self.print_verdict(out, written=written)

    def print_verdict(self, out: Any, *, written: Sequence[str] = ()) -> None:
        """The broken budget (nothing when it held), then the files ``written``: all that
        ``--quiet`` prints."""
        from rich.text import Text

        record = self.record
        if record.violations:
            out.print(Text.assemble(("leakhunt run: ", "bold"), (record.target, "bold"),
                                    (f" broke its memory budget ({record.budget}):", "bold red")))
            for line in violation_lines(record):
                out.print(indented("  " + line, style="red"))
        for path in written:
            out.print(f"  wrote {path}")

    def _print_sites(self, out: Any) -> None:
        """The traced sites alive at the peak."""
        from rich.text import Text

        trace, top = self.record.trace, self.top
        if trace is None or not top or not trace.sites:
            return
        sites = _site_table(f"  alive at the peak (traced, top {min(top, len(trace.sites))})")
        for site in trace.sites[:top]:
            via = f"  (via {site.via})" if site.via else ""
            sites.add_row(format_size(site.size), Text.assemble((site_where(site), "bold"),
                                                                (f"  {site.code}{via}", "dim")))
        out.print(sites)

    def _print_native(self, out: Any) -> None:
        """The native backend's sites at the peak, the lines that allocated most, its notes."""
        from rich.text import Text

        from leakhunt.native import churn_findings
        from leakhunt.report.timeline_text import native_site_extra, native_site_where, total_text

        native, top = self.record.native, self.top
        assert native is not None
        if native.sites:
            shown = native.sites[:top]
            table = _site_table(f"  alive at the peak (memray, top {len(shown)})")
            for site in shown:
                table.add_row(format_size(site.size), Text.assemble(
                    (native_site_where(site), "bold"), (f"  {site.code}  {native_site_extra(site)}", "dim")))
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
            out.print(indented(f"  ({note})", style="dim"))


def _site_table(title: str) -> Any:
    from rich.table import Table as RichTable

    table = RichTable(title=title, title_justify="left", title_style="bold", box=None, show_header=False,
                      pad_edge=False, padding=(0, 1))
    table.add_column(justify="right", no_wrap=True, min_width=12)
    table.add_column(overflow="ellipsis", no_wrap=True, ratio=1)  # the line, then its code
    return table
