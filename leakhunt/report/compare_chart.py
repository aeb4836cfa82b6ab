"""The chart of a comparison with a baseline: each test's change, drawn with matplotlib as SVG."""

from __future__ import annotations

from typing import Sequence

from leakhunt.baseline import TestChange
from leakhunt.report.charts import GROWTH, PEAK, _short_id, figure, legend_below, svg
from leakhunt.units import format_size

__all__ = ["changes_svg"]

_MiB = 1024 * 1024


def changes_svg(changes: Sequence[TestChange], *, top: int = 20,
                element_id: str = "leakhunt-changes") -> str | None:
    """Bars of the ``top`` biggest changes (peak and retained, against the baseline), the biggest
    growth at the top; regressed figures drawn with a heavy outline. None when nothing changed."""
    rows = sorted((c for c in changes if c.change), key=lambda c: -abs(c.change))[:top]
    rows.sort(key=lambda c: -c.change)
    if not rows:
        return None
    n = len(rows)
    fig = figure(10.5, 1.1 + 0.32 * n)
    ax = fig.add_subplot(1, 1, 1)
    ys = list(range(n))[::-1]
    height = 0.38
    for offset, name, colour, label in ((height / 2, "peak", PEAK, "peak"),
                                         (-height / 2, "rss_growth", GROWTH, "retained (RSS growth)")):
        values, edges = [], []
        for change in rows:
            found = next((f for f in change.figures if f.name == name), None)
            values.append((found.delta or 0) / _MiB if found is not None else 0)
            edges.append(2.0 if found is not None and found.regressed else 0.0)
        ax.barh([y + offset for y in ys], values, height=height, color=colour, label=label,
                edgecolor="#c62828", linewidth=edges)
    ax.axvline(0, color="#1f2328", linewidth=0.8)
    ax.set_yticks(ys, [_short_id(c.nodeid) for c in rows], fontsize=8)
    ax.set_xlabel("change against the baseline (MiB = 1024\u00b2 bytes; red outline: a regression)")
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_size(v * _MiB, signed=True) if v else "0"))
    ax.set_ylim(-0.7, n - 0.3)
    ax.grid(True, axis="x", linewidth=0.3, alpha=0.7)
    ax.set_title(f"The {n} biggest changes", fontsize=10)
    legend_below(fig)
    return svg(fig, element_id=element_id, label=f"the {n} biggest changes against the baseline")
