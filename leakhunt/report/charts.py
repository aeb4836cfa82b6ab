"""Charts of the HTML reports, drawn with matplotlib and inlined as SVG.

matplotlib is imported only here (``leakhunt[html]``); :func:`svg` makes an element that needs
nothing from the network: no metadata block with namespace URLs, text as SVG text in the page's
own sans-serif font.
"""

from __future__ import annotations

import io
import math
from typing import Any, Sequence

from leakhunt.units import format_size

__all__ = ["PEAK", "GROWTH", "distribution_figure", "distribution_svg", "figure", "legend_below", "matplotlib", "svg",
           "top_tests_figure", "top_tests_svg"]

#: Colours of the figures, shared with the page's legend and table.
PEAK, GROWTH = "#3b6fc4", "#e0762b"
_MiB = 1024 * 1024
# no <metadata> block: its RDF namespaces are URLs, and a report needs no creator stamp
_NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}


def matplotlib() -> Any:
    """matplotlib, or an ImportError that names the extra to install."""
    try:
        import matplotlib as mpl
        from matplotlib.figure import Figure  # noqa: F401 - fail here, not halfway through
    except ImportError as exc:
        raise ImportError(f'the HTML report needs matplotlib: pip install "leakhunt[html]" ({exc})') from None
    return mpl


def figure(width: float, height: float) -> Any:
    """A matplotlib Figure without pyplot: no backend, no global state, no GUI."""
    matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def svg(fig: Any, *, element_id: str, label: str) -> str:
    """``fig`` as an ``<svg>`` element (no XML prolog) with an id and an accessible label."""
    mpl = matplotlib()
    buf = io.StringIO()
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "leakhunt",
                         "font.family": "sans-serif"}):
        fig.savefig(buf, format="svg", metadata=_NO_METADATA)
    text = buf.getvalue()
    element = text[text.find("<svg"):]
    return element.replace("<svg ", f'<svg id="{element_id}" class="chart" role="img" aria-label="{label}" ', 1)


def legend_below(fig: Any) -> None:
    """The figure's legend outside its axes, under them: it never covers a bar or a line."""
    fig.set_layout_engine("constrained")
    fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)


def _short_id(nodeid: str, limit: int = 60) -> str:
    return nodeid if len(nodeid) <= limit else "\u2026" + nodeid[-(limit - 1):]


def _size_axis(axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: format_size(v * _MiB) if v else "0"))


def top_tests_svg(rows: Sequence[Any], *, element_id: str = "leakhunt-top-tests") -> str | None:
    """Horizontal bars of the given tests' peak and RSS growth, biggest peak at the top.

    ``rows`` are :class:`leakhunt.report.model.TestRecord` (the top N, already chosen).
    """
    fig = top_tests_figure(rows)
    if fig is None:
        return None
    n = len(fig.axes[0].get_yticks())
    return svg(fig, element_id=element_id, label=f"top {n} tests by peak and RSS growth")


def top_tests_figure(rows: Sequence[Any]) -> Any:
    """The Figure of :func:`top_tests_svg`, or None when no row has a figure."""
    rows = [r for r in rows if r.peak is not None or r.rss_growth is not None]
    if not rows:
        return None
    n = len(rows)
    fig = figure(10.5, 1.2 + 0.3 * n)
    ax = fig.add_subplot(1, 1, 1)
    ys = list(range(n))[::-1]
    height = 0.38
    peaks = [(r.peak or 0) / _MiB for r in rows]
    growths = [max(r.rss_growth or 0, 0) / _MiB for r in rows]
    ax.barh([y + height / 2 for y in ys], peaks, height=height, color=PEAK, label="peak above the test's start")
    ax.barh([y - height / 2 for y in ys], growths, height=height, color=GROWTH, label="RSS growth (kept)")
    ax.set_yticks(ys, [_short_id(r.nodeid) for r in rows], fontsize=8)
    ax.set_xlabel("memory (MiB = 1024\u00b2 bytes)")
    ax.set_ylabel("test")
    _size_axis(ax.xaxis)
    ax.set_ylim(-0.7, n - 0.3)
    ax.grid(True, axis="x", linewidth=0.3, alpha=0.7)
    ax.set_title(f"Top {n} tests by peak", fontsize=10)
    legend_below(fig)
    return fig


def distribution_svg(rows: Sequence[Any], *, element_id: str = "leakhunt-distribution") -> str | None:
    """How many tests reached each peak (and kept each growth): histograms on a log size axis.

    Readable for any number of tests: the bins, not the tests, set the width.
    """
    fig = distribution_figure(rows)
    if fig is None:
        return None
    return svg(fig, element_id=element_id, label="distribution of peak and RSS growth per test")


def distribution_figure(rows: Sequence[Any]) -> Any:
    """The Figure of :func:`distribution_svg`, or None when no test has a figure above zero."""
    peaks = [r.peak for r in rows if r.peak is not None and r.peak > 0]
    growths = [r.rss_growth for r in rows if r.rss_growth is not None and r.rss_growth > 0]
    values = peaks + growths
    if not values:
        return None
    low = max(min(values), 1024)
    high = max(max(values), low * 2)
    start, stop = math.floor(math.log2(low)), math.ceil(math.log2(high))
    edges = [2.0 ** (start + i / 2) / _MiB for i in range(0, 2 * (stop - start) + 1)]
    fig = figure(10.5, 3.7)
    ax = fig.add_subplot(1, 1, 1)
    if peaks:
        ax.hist([p / _MiB for p in peaks], bins=edges, color=PEAK, alpha=0.75,
                label=f"peak above start ({len(peaks)} tests)")
    if growths:
        ax.hist([g / _MiB for g in growths], bins=edges, histtype="step", linewidth=1.6, color=GROWTH,
                label=f"RSS growth > 0 ({len(growths)} tests)")
    ax.set_xscale("log", base=2)
    _size_axis(ax.xaxis)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # a count of tests
    ax.set_xlabel("memory per test (log scale)")
    ax.set_ylabel("tests")
    ax.grid(True, linewidth=0.3, alpha=0.7)
    ax.set_title(f"Distribution over {len(rows)} measured tests", fontsize=10)
    legend_below(fig)
    return fig
