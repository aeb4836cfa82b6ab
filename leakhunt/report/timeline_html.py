"""The HTML report of a recorded run: one self-contained page from the shared templates.

The timeline is drawn with matplotlib and inlined as SVG; the stacks alive at the peak are a
flame graph (:mod:`leakhunt.report.flame`, drawn in the page by ``flame.js``); with the native
backend the peak's section is ``native_peak.html.j2``; the memory alive at exit is the run's
explanation, each root with a picture of its path. Needs ``leakhunt[html]``; without it the
error names the extra.
"""

from __future__ import annotations

from typing import IO, Any

from leakhunt.report.timeline_text import figure_rows, site_where, violation_lines
from leakhunt.timeline import RunRecord, Timeline
from leakhunt.units import format_size

__all__ = ["render_html", "plot_svg", "plot_png", "PLOT_ID"]

#: The ``id`` of the plot's ``<svg>`` element in the page.
PLOT_ID = "leakhunt-timeline"
_MAX_POINTS = 3000  # points per line in the plot: a min/max envelope keeps every spike visible
_MiB = 1024 * 1024


def _envelope(t: list[float], values: list[int | None], points: int = _MAX_POINTS) -> tuple[list[float], list[float]]:
    """Downsample to about ``points`` points, keeping each bucket's lowest and highest value."""
    pairs = [(x, v) for x, v in zip(t, values) if v is not None]
    if len(pairs) <= points:
        return [x for x, _ in pairs], [v / _MiB for _, v in pairs]
    size = max(1, (2 * len(pairs)) // points)
    xs: list[float] = []
    ys: list[float] = []
    for start in range(0, len(pairs), size):
        bucket = pairs[start:start + size]
        lo = min(bucket, key=lambda p: p[1])
        hi = max(bucket, key=lambda p: p[1])
        for x, v in sorted({lo, hi}):
            xs.append(x)
            ys.append(v / _MiB)
    return xs, ys


def _figure(record: RunRecord) -> Any:
    from leakhunt.report.charts import figure

    samples: Timeline = record.samples
    fig = figure(10, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    xs, ys = _envelope(samples.t, samples.rss)
    ax.plot(xs, ys, color="#1f77b4", linewidth=1.4, label="RSS")
    if any(v is not None for v in samples.arrow):
        ax_x, ax_y = _envelope(samples.t, samples.arrow)
        ax.plot(ax_x, ax_y, color="#ff7f0e", linewidth=1.2, label="Arrow pool")
    if any(v is not None for v in samples.children):
        cx, cy = _envelope(samples.t, samples.children)
        ax.plot(cx, cy, color="#2ca02c", linewidth=1.2, label="children (PSS)")
    if record.start_rss is not None:
        ax.axhline(record.start_rss / _MiB, color="#7f7f7f", linestyle="--", linewidth=0.8,
                   label=f"start {format_size(record.start_rss)}")
    if record.peak_rss is not None:
        peak_t = record.peak_time if record.peak_time is not None else (samples.t[-1] if samples.t else 0.0)
        ax.plot([peak_t], [record.peak_rss / _MiB], marker="v", markersize=9, color="#d62728",
                linestyle="none", label=f"peak {format_size(record.peak_rss)}")
        ax.annotate(f"peak {format_size(record.peak_rss)}", (peak_t, record.peak_rss / _MiB),
                    textcoords="offset points", xytext=(6, 6), color="#d62728", fontsize=9)
    if record.final_rss is not None and samples.t:
        ax.plot([samples.t[-1]], [record.final_rss / _MiB], marker="o", markersize=6, color="#2ca02c",
                linestyle="none", label=f"end, settled {format_size(record.final_rss)}")
    if record.trace is not None:
        ax.axvline(record.trace.time, color="#9467bd", linestyle=":", linewidth=1.0,
                   label=f"trace snapshot ({record.trace.time:.2f} s)")
    peak_limit = _limit(record, "peak")
    if peak_limit is not None and record.start_rss is not None:
        ax.axhline((record.start_rss + peak_limit) / _MiB, color="#d62728", linestyle="-.", linewidth=0.8,
                   label=f"peak budget (+{format_size(peak_limit)})")
    ax.set_xlabel("seconds")
    ax.set_ylabel("MiB")
    top = max([y for y in ys] + [record.peak_rss / _MiB if record.peak_rss else 0.0] + [1.0])
    ax.set_ylim(0, top * 1.15)
    ax.set_xlim(left=0)
    ax.grid(True, linewidth=0.3, alpha=0.6)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.85)
    ax.set_title(f"memory of {record.target}", fontsize=11)
    fig.tight_layout()
    return fig


def _limit(record: RunRecord, figure: str) -> int | None:
    return record.budget_limits.get(figure)


def plot_svg(record: RunRecord) -> str:
    """The timeline as an ``<svg>`` element (no XML prolog), ready to inline in HTML."""
    from leakhunt.report.charts import svg

    return svg(_figure(record), element_id=PLOT_ID, label="memory timeline")


def plot_png(record: RunRecord, path: str) -> None:
    """Save the timeline as a PNG (for docs and issue reports)."""
    fig = _figure(record)
    fig.savefig(path, format="png", metadata={"Software": None})


#: What the page says about memory kept at exit when the run carries no explanation.
EXIT_HINT = ("Run with --trace to see what keeps it: the survivors grouped by root, with the path "
             "from each root to the memory.")


def context(record: RunRecord, *, top: int = 10) -> dict[str, Any]:
    """What ``run_report.html.j2`` needs to draw ``record``."""
    from leakhunt import __version__

    from leakhunt.report.flame import flame_json
    from leakhunt.report.timeline_text import native_site_where

    trace = record.trace
    native = record.native
    stacks = native.stacks if native is not None else (trace.stacks if trace is not None else ())
    churn: list[Any] = []
    if native is not None:
        from leakhunt.native import churn_findings

        churn = list(churn_findings(native.totals))
    return {
        "record": record,
        "version": __version__,
        "rows": figure_rows(record),
        "violation_lines": violation_lines(record),
        "timeline_svg": plot_svg(record),
        "trace": trace,
        "domains": [(k, v) for k, v in trace.domains.items()] if trace is not None else [],
        "peak_sites": list(trace.sites[:top]) if trace is not None else [],
        "site_where": site_where,
        "native_where": native_site_where,
        "native": native,
        "churn": churn,
        "flame_json": flame_json(stacks) if stacks else None,
        "explanation": record.explanation,
        "exit_hint": EXIT_HINT,
    }


def render_html(record: RunRecord, file: IO[str], *, top: int = 10) -> None:
    """Write the report page for ``record`` to ``file``."""
    from leakhunt.report.templating import render

    render("run_report.html.j2", file, **context(record, top=top))
