"""Rows and phrases of a recorded run (``leakhunt run``) shared by the terminal and the HTML report."""

from __future__ import annotations

import os

from leakhunt.frames import LIBRARY, kind, short_path
from leakhunt.native import LineTotal, NativeSite
from leakhunt.timeline import RunRecord, Site
from leakhunt.units import format_size

__all__ = ["figure_rows", "violation_lines", "site_where", "native_rows", "native_site_where",
           "native_site_extra", "total_text", "library_text"]


def figure_rows(record: RunRecord) -> list[tuple[str, str]]:
    """(label, value) rows shared by the terminal summary and the HTML report."""
    r = record
    peak = format_size(r.peak_rss)
    if r.peak_time is not None:
        peak += f" at {r.peak_time:.2f} s"
    if r.peak_source != "hwm":
        peak += " (sampled)"
    rows = [
        ("peak RSS", peak),
        ("peak above start", f"{format_size(r.peak_above_start, signed=True)} (start {format_size(r.start_rss)})"),
        ("kept at the end", _final(r)),
        ("Arrow pool peak", format_size(r.arrow_peak) if r.arrow_peak is not None else "n/a (pyarrow not imported)"),
    ]
    if r.arrow_peak is not None:
        rows[-1] = ("Arrow pool peak", f"{format_size(r.arrow_peak)} (at the end {format_size(r.arrow_final)})")
    rows.append(("children peak", format_size(r.children_peak) if r.children_peak is not None
                 else "not sampled (use --children)"))
    if r.traced_peak is not None or r.trace is not None:
        rows.append(("traced peak", format_size(r.traced_peak)))
    if r.trace is not None:
        domains = ", ".join(f"{name} {format_size(size)}" for name, size in r.trace.domains.items() if size)
        rows.append(("traced at the peak", f"{format_size(r.trace.traced)} at {r.trace.time:.2f} s"
                     + (f" ({domains})" if domains else "")))
        rows.append(("tracemalloc cannot see", "Arrow's pool, polars, pandas' and other C code's own "
                     "allocations (install leakhunt[native] to trace with memray)"))
    if r.native is not None:
        rows.extend(native_rows(r))
    if r.trace_note:
        rows.append(("tracing", r.trace_note))
    cost = f", sampling used {r.sampler_cpu / r.seconds:.1%} CPU" if r.seconds > 0 else ""
    rows.append(("duration", f"{r.seconds:.2f} s, {len(r.samples)} samples every "
                 f"{r.samples.interval * 1000:g} ms{cost}"))
    rows.append(("exit status", str(r.exit_status) + (f" ({r.error})" if r.error else "")))
    if r.budget is not None:
        rows.append(("budget", f"{r.budget}: " + ("BROKEN" if r.violations else "ok")))
    return rows


def _final(r: RunRecord) -> str:
    text = f"{format_size(r.final_growth, signed=True)} anonymous (settled; RSS at the end {format_size(r.final_rss)})"
    if r.imports is not None:
        text += f", of which libraries and modules loaded {format_size(r.imports)} ({r.imported} imports)"
    extra = []
    if r.file_backed_growth:
        extra.append(f"file-backed pages {format_size(r.file_backed_growth, signed=True)} (code and memory maps)")
    if r.allocator_retention:
        extra.append(f"{format_size(r.allocator_retention)} freed but kept by allocators (given back)")
    if r.tracing_overhead:
        extra.append(f"tracemalloc's own {format_size(r.tracing_overhead)}")
    if extra:
        text += "; not counted: " + ", ".join(extra)
    return text


def violation_lines(record: RunRecord) -> list[str]:
    return [f"{v.figure}: {v}" for v in record.violations]


def site_where(site: Site) -> str:
    """``file:line`` for people: relative to here when below here, from the package on for a library."""
    if site.filename.startswith("<"):
        name = site.filename
    elif kind(site.filename) == LIBRARY:
        name = short_path(site.filename)
    else:
        name = _rel(site.filename)
    return f"{name}:{site.lineno}" if site.lineno > 0 else name


def _rel(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if not rel.startswith("..") else path


def native_rows(record: RunRecord) -> list[tuple[str, str]]:
    """Rows of the native backend's peak (:class:`leakhunt.native.NativePeak`)."""
    n = record.native
    assert n is not None
    when = f" at {n.time:.2f} s" if n.time is not None else ""
    rows = [("traced with", "memray: every allocation, native ones included"
             + ("" if n.native_traces else " (Python stacks only)")),
            ("alive at the peak", f"{format_size(n.explained)} in your lines' allocations{when}: "
                                  f"{n.coverage_text()}")]
    if n.libraries:
        rows.append(("by library", library_text(n.libraries)))
    if n.reservations:
        rows.append(("reserved, not used", "; ".join(
            f"{format_size(r.size)} by {r.allocator} at {r.where} (address space an allocator mapped for "
            "itself: not counted as memory)" for r in n.reservations)))
    if n.capture:
        rows.append(("memray capture", f"{n.capture} (memray flamegraph {n.capture})"))
    return rows


def library_text(libraries: tuple[tuple[str, int], ...], *, limit: int = 6) -> str:
    shown = [f"{name} {format_size(size)}" for name, size in libraries[:limit] if size > 0]
    rest = sum(size for _, size in libraries[limit:])
    if rest > 0:
        shown.append(f"others {format_size(rest)}")
    return ", ".join(shown)


def native_site_where(site: NativeSite | LineTotal) -> str:
    """``file:line`` of a native site, as :func:`site_where` writes it."""
    return site_where(Site(filename=site.file, lineno=site.line, size=0, count=0))


def native_site_extra(site: NativeSite) -> str:
    """What follows a site's code: its library, worker threads' part, the frame it came through."""
    parts = []
    if site.libraries:
        parts.append("[" + ", ".join(name for name, size in site.libraries[:2] if size * 10 >= site.size) + "]")
    if site.threads:
        parts.append(f"({format_size(site.threads)} by worker threads)")
    if site.imports:
        parts.append("(imports)")
    if site.via:
        parts.append(f"(via {site.via})")
    return " ".join(parts)


def total_text(total: LineTotal) -> str:
    """``7,254 allocations; 5.4x the most it held at once (400.0 MiB)`` for a line's total."""
    held = max(total.held, total.at_peak, total.at_end)
    return f"{total.count:,} allocations; {total.churn:.1f}x the most it held at once ({format_size(held)})"
