"""The HTML report of a recorded run: one self-contained page, no network assets.

The timeline is drawn with matplotlib and embedded as inline SVG (text drawn as paths, so no
fonts are fetched either). matplotlib is imported only here; without it the error names the
extra to install.
"""

from __future__ import annotations

import html
import io
from typing import IO, Any

from leakhunt.report.timeline_text import figure_rows, site_where, violation_lines
from leakhunt.timeline import RunRecord, Timeline
from leakhunt.units import format_size

__all__ = ["render_html", "plot_svg", "plot_png", "PLOT_ID"]

#: The ``id`` of the plot's ``<svg>`` element in the page.
PLOT_ID = "leakhunt-timeline"
_MAX_POINTS = 3000  # points per line in the plot: a min/max envelope keeps every spike visible
_MiB = 1024 * 1024


def _matplotlib() -> Any:
    """matplotlib, or an ImportError that names the extra to install."""
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401 - fail here, not halfway through
    except ImportError as exc:
        raise ImportError(f'the HTML report needs matplotlib: pip install "leakhunt[plot]" ({exc})') from None
    return matplotlib


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
    _matplotlib()
    # matplotlib.figure.Figure renders without pyplot: no backend, no global state, no GUI.
    from matplotlib.figure import Figure

    samples: Timeline = record.samples
    fig = Figure(figsize=(10, 4.2), dpi=100)
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


# no <metadata> block: its RDF namespaces are URLs, and a report needs no creator stamp
_NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}


def plot_svg(record: RunRecord) -> str:
    """The timeline as an ``<svg>`` element (no XML prolog), ready to inline in HTML."""
    matplotlib = _matplotlib()
    fig = _figure(record)
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "leakhunt"}):
        fig.savefig(buf, format="svg", metadata=_NO_METADATA)
    text = buf.getvalue()
    start = text.find("<svg")
    svg = text[start:]
    return svg.replace("<svg ", f'<svg id="{PLOT_ID}" role="img" aria-label="memory timeline" ', 1)


def plot_png(record: RunRecord, path: str) -> None:
    """Save the timeline as a PNG (for docs and issue reports)."""
    fig = _figure(record)
    fig.savefig(path, format="png", metadata={"Software": None})


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}
td,th{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,pre{font-family:ui-monospace,"SFMono-Regular",Menlo,monospace;font-size:.92em}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;border-left:3px solid #d62728}
.broken{color:#b00;font-weight:bold}.ok{color:#070;font-weight:bold}
figure{margin:0}figure svg{width:100%;height:auto;max-width:1000px}
.muted{color:#666;font-size:.9em}
table.sites{width:100%;table-layout:auto}table.sites code{overflow-wrap:anywhere}
"""


def render_html(record: RunRecord, file: IO[str], *, top: int = 10) -> None:
    """Write the report page for ``record`` to ``file``."""
    e = html.escape
    svg = plot_svg(record)
    out: list[str] = []
    w = out.append
    w("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
    w('<meta name="viewport" content="width=device-width, initial-scale=1">\n')
    w(f"<title>leakhunt run: {e(record.target)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n")
    w(f"<h1>leakhunt run: <code>{e(record.target)}</code></h1>\n")
    w(f'<p class="muted">command: <code>{e(" ".join(record.argv))}</code> &middot; started '
      f"{e(record.started_at)}</p>\n")
    if record.budget is not None:
        if record.violations:
            w(f'<p class="broken">Broke its memory budget ({e(record.budget)}):</p>\n<ul>\n')
            for line in violation_lines(record):
                w(f"<li>{e(line)}</li>\n")
            w("</ul>\n")
        else:
            w(f'<p class="ok">Within its memory budget ({e(record.budget)}).</p>\n')
    w('<h2>Timeline</h2>\n<figure>\n')
    w(svg)
    w("\n<figcaption class=\"muted\">RSS sampled every "
      f"{record.samples.interval * 1000:g} ms ({len(record.samples)} samples). The peak is "
      + ("the kernel's high-water mark (VmHWM), exact even between samples."
         if record.peak_source == "hwm" else "the highest sample.")
      + "</figcaption>\n</figure>\n")
    w("<h2>Figures</h2>\n<table>\n")
    for label, value in figure_rows(record):
        w(f"<tr><th>{e(label)}</th><td>{e(value)}</td></tr>\n")
    w("</table>\n")
    if record.error_traceback:
        w("<h2>The target raised</h2>\n<p>The figures above run up to the exception.</p>\n")
        w(f"<pre>{e(record.error_traceback)}</pre>\n")
    if record.trace is not None:
        trace = record.trace
        w("<h2>Alive at the peak</h2>\n")
        w(f"<p>tracemalloc snapshot at {trace.time:.2f} s, RSS {e(format_size(trace.rss))} "
          f"(the highest RSS a snapshot caught; {trace.snapshots} snapshot(s) taken, "
          f"{trace.snapshot_seconds:.2f} s in all). Traced then: {e(format_size(trace.traced))}; "
          f"tracemalloc's own memory: {e(format_size(trace.tracemalloc_overhead))}. "
          "Arrow's pool is not traced: see its own figure.</p>\n")
        if trace.domains:
            w("<table>\n<tr><th>domain</th><th>traced</th></tr>\n")
            for name, size in trace.domains.items():
                w(f"<tr><td>{e(name)}</td><td class=\"num\">{e(format_size(size))}</td></tr>\n")
            w("</table>\n")
        if trace.sites:
            w('<table class="sites">\n<tr><th>size</th><th>blocks</th><th>where</th><th>code</th>'
              "<th>allocated in</th></tr>\n")
            for site in trace.sites[:top]:
                w(f"<tr><td class=\"num\">{e(format_size(site.size))}</td><td class=\"num\">{site.count}</td>"
                  f"<td><code>{e(site_where(site))}</code></td><td><code>{e(site.code)}</code></td>"
                  f"<td><code>{e(site.via or '')}</code></td></tr>\n")
            w("</table>\n")
    else:
        w('<p class="muted">Run with <code>--trace</code> to see the allocation sites alive at the peak.</p>\n')
    env = ", ".join(f"{k} {v}" for k, v in record.environment.items())
    w(f'<p class="muted">{e(env)}</p>\n</body>\n</html>\n')
    file.write("".join(out))
