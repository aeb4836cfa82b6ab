"""A comparison with a baseline (:class:`leakhunt.baseline.Comparison`) as text.

:meth:`CompareText.blocks` makes the lines and tables of :mod:`leakhunt.report.text`; the pytest
plugin writes them through pytest's terminal writer (:meth:`CompareText.write`), ``leakhunt
report NEW.json --compare BASE.json`` through rich (:func:`leakhunt.report.console.print_blocks`)
or into a file (:meth:`CompareText.render`). The regressions come first, the biggest first, each
with both figures, the ratio, the change, and the test's explanation when it has one.
"""

from __future__ import annotations

from typing import IO, Any, Callable, Sequence

from leakhunt.baseline import Comparison, TestChange
from leakhunt.report.explain_text import explanation_lines
from leakhunt.report.text import MAX_WIDTH, Block, Cell, Table, write_blocks
from leakhunt.units import format_size

__all__ = ["CompareText"]


class CompareText:
    """``CompareText(comparison, baseline="BASE.json", top=10, width=100)``."""

    def __init__(self, comparison: Comparison, *, baseline: str = "the baseline", top: int = 10,
                 width: int = MAX_WIDTH, warn_only: bool = False) -> None:
        self.comparison = comparison
        self.baseline = baseline
        self.top = top
        self.width = max(40, min(width, MAX_WIDTH))
        self.warn_only = warn_only  # regressions are warnings (pytest --leak-regression-warn)

    def _changes_table(self, title: str, changes: Sequence[TestChange], *, regressed_only: bool) -> Table:
        rows = []
        for change in changes:
            for figure in change.figures:
                if (figure.regressed if regressed_only else figure.improved):
                    rows.append((Cell(figure.label), Cell(format_size(figure.new)), Cell(format_size(figure.base)),
                                 Cell(figure.ratio_text()),
                                 Cell(format_size(figure.delta, signed=True), "bad" if regressed_only else "good"),
                                 Cell(change.nodeid)))
        columns = (("figure", "left"), ("this run", "right"), ("baseline", "right"), ("ratio", "right"),
                   ("change", "right"), ("test", "left"))
        return Table(title=title, columns=columns, rows=tuple(rows))

    def blocks(self) -> list[Block]:
        comparison = self.comparison
        regressions = comparison.regressions()
        style = "warn" if self.warn_only else "bad"
        when = f" ({comparison.base_created})" if comparison.base_created else ""
        out: list[Block] = [(Cell(f"compared with {self.baseline}{when}: ", "head"),
                             Cell(comparison.summary(), style if regressions else "good"))]
        out.extend((Cell("note: " + note, "warn"),) for note in comparison.notes)
        if regressions:
            what = "regressions (warnings: --leak-regression-warn)" if self.warn_only else "regressions"
            out.append(self._changes_table(f"{what}, the biggest first", regressions, regressed_only=True))
            out.extend(self._explanations(regressions))
        improved = comparison.improvements()
        if improved:
            out.append(self._changes_table(f"improved (top {min(self.top, len(improved))})", improved[: self.top],
                                           regressed_only=False))
        for title, tests in (("new since the baseline", comparison.new_tests()),
                             ("gone since the baseline", comparison.gone_tests())):
            if tests:
                out.append(_listing(title, tests, self.top))
        return out

    def _explanations(self, regressions: Sequence[TestChange]) -> list[Block]:
        out: list[Block] = []
        for change in regressions:
            if change.explanation is None:
                continue
            out.append((Cell(""),))
            out.append((Cell(f"{change.nodeid}: ", "head"), Cell(change.headline(), "bad")))
            out.extend((Cell(line),) for line in explanation_lines(change.explanation)[1:])
        return out

    def write(self, write: Callable[..., Any]) -> None:
        """Through ``write(text, **markup)`` (pytest's terminal writer)."""
        write_blocks(self.blocks(), write, self.width)

    def render(self, file: IO[str]) -> None:
        """Plain text into ``file``."""
        self.write(lambda text, **_markup: file.write(text))


def _listing(title: str, tests: Sequence[TestChange], top: int) -> Table:
    rows = tuple((Cell(t.nodeid),) for t in tests[:top])
    note = f"and {len(tests) - top:,} more" if len(tests) > top else ""
    return Table(title=f"{title} ({len(tests):,})", columns=(("test", "left"),), rows=rows, note=note)

