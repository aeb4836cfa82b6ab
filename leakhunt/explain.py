"""Turn a measurement that broke its budget into text a user can act on.

What grew (each figure against its budget), where it lives (which accounting holds it), why it
is still alive (retention paths from a root to the biggest buffers), what types grew, where it
was allocated (when traced), and a hint matched to the retention pattern.
"""

from __future__ import annotations

import linecache
import tracemalloc
from typing import Any, Sequence

from leakhunt.budget import Budget, Violation
from leakhunt.measure import Measurement
from leakhunt.retention import biggest_buffers, why_alive
from leakhunt.units import format_size

__all__ = ["explain", "where_it_lives", "survivor_lines", "allocation_sites"]

_LABELS = {"rss": "rss grew", "peak": "peak", "traced": "traced grew", "arrow": "arrow pool grew",
           "children": "children peak"}


def _figure_line(measurement: Measurement, budget: Budget | None) -> str:
    limits = budget.limits() if budget is not None else {}
    parts = []
    for name in ("rss", "peak", "traced", "arrow", "children"):
        value = measurement.figure(name)
        if value is None and name not in limits:
            continue
        limit = limits.get(name)
        text = f"{_LABELS[name]} {format_size(value)}"
        text += f" (budget {format_size(limit)})" if limit is not None else " (no budget)"
        parts.append(text)
    return "   ".join(parts)


def where_it_lives(measurement: Measurement) -> str:
    """'numpy buffers 95.4 MiB, Python heap 0.6 MiB, Arrow pool 0 B, unaccounted native 0 B'."""
    parts = []
    accounted = 0
    domains = measurement.traced_growth_by_domain
    if domains is not None:
        for key, label in (("numpy", "numpy buffers"), ("python", "Python heap"), ("pandas", "pandas hash tables"),
                           ("other", "other traced")):
            value = domains.get(key, 0)
            if value or key in ("numpy", "python"):
                parts.append(f"{label} {format_size(value)}")
        accounted += sum(domains.values())
    elif measurement.traced_growth is not None:
        parts.append(f"traced (Python heap + numpy) {format_size(measurement.traced_growth)}")
        accounted += measurement.traced_growth
    else:
        parts.append("Python heap and numpy not traced")
    arrow = measurement.arrow_growth
    parts.append(f"Arrow pool {format_size(arrow)}" if arrow is not None else "Arrow pool n/a (pyarrow not imported)")
    accounted += arrow or 0
    rss = measurement.rss_growth
    if rss is not None and (domains is not None or measurement.traced_growth is not None):
        parts.append(f"unaccounted native {format_size(max(0, rss - accounted))}")
    return ", ".join(parts)


_LIBRARY_MARKERS = ("/site-packages/", "/dist-packages/", "/lib/python3", "<frozen ")


_PACKAGE_DIR = __file__.rsplit("/", 1)[0] + "/"


def _user_frame(traceback: tracemalloc.Traceback) -> tracemalloc.Frame:
    """The innermost frame in the user's code (not a library's), else the innermost frame."""
    for frame in reversed(traceback):  # a Traceback iterates oldest first: walk it innermost first
        if not any(marker in frame.filename for marker in _LIBRARY_MARKERS) and "/leakhunt/" not in frame.filename:
            return frame
    return traceback[-1]


def _site(frame: tracemalloc.Frame) -> str:
    code = linecache.getline(frame.filename, frame.lineno).strip()
    where = f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"
    return f"{where} ({code})" if code else where


def _traceback_of(obj: Any) -> str | None:
    if not tracemalloc.is_tracing():
        return None
    try:
        tb = tracemalloc.get_object_traceback(obj)
    except Exception:
        return None
    if tb is None:
        return None
    return _site(_user_frame(tb))


def survivor_lines(min_size: int, limit: int = 3) -> list[str]:
    """Retention paths of the biggest buffers alive now, each with its allocation site if traced.

    With tracing on, a buffer with no traceback was allocated before tracing began: it is not
    this block's, and is left out.
    """
    lines: list[str] = []
    tracing = tracemalloc.is_tracing()
    for obj, size in biggest_buffers(min_size=min_size, limit=limit * 3):
        site = _traceback_of(obj)
        if tracing and site is None:
            continue
        paths = why_alive(obj, max_paths=2, timeout=3.0)
        if paths.paths:
            for path in paths.paths:
                lines.append(str(path))
        else:
            lines.append(f"{paths.target}: {paths.note or 'no path from a root found'}")
        if site:
            lines.append(f"    allocated at {site}")
        del obj
        if len(lines) >= limit * 3:
            break
    return lines


def allocation_sites(limit: int = 5) -> list[str]:
    """The biggest live allocation sites from tracemalloc, by line."""
    if not tracemalloc.is_tracing():
        return []
    # Filtered here rather than with Snapshot.filter_traces: its glob patterns, matched per
    # trace in Python, took 7 s under a session-long trace.
    skip = (tracemalloc.__file__, _PACKAGE_DIR)
    by_site: dict[str, int] = {}
    for stat in tracemalloc.take_snapshot().statistics("traceback"):
        innermost = stat.traceback[-1].filename
        if innermost.startswith(skip) or innermost.startswith("<frozen "):
            continue  # our own allocations and the import machinery are never the user's line
        key = _site(_user_frame(stat.traceback))
        by_site[key] = by_site.get(key, 0) + stat.size
    ranked = sorted(by_site.items(), key=lambda kv: kv[1], reverse=True)[:limit]
    if ranked:  # sites under 1% of the biggest are the test runner's bookkeeping, not news
        ranked = [(k, v) for k, v in ranked if v * 100 >= ranked[0][1]]
    return [f"{format_size(size):>10}  {site}" for size, site in ((s, k) for k, s in ranked)]


def _hint(measurement: Measurement, violations: Sequence[Violation], paths_text: str) -> str:
    figures = {v.figure for v in violations}
    if "GroupBy" in paths_text:  # first: a GroupBy's path also runs through views of its frame
        return "a GroupBy object holds its whole frame; keep the aggregated result, not the GroupBy"
    if "block values (view)" in paths_text or ".base ndarray" in paths_text:
        return "a slice or view keeps its whole parent buffer; store .copy() or plain values instead"
    if "lru_cache" in paths_text:
        return "a cache holds big values; bound it (maxsize) or cache something smaller"
    if "(global in " in paths_text and "list[" in paths_text:
        return ("a module-level list keeps everything appended to it; clear it when done, or keep "
                "small summaries (numbers, .copy() of a few rows) instead of whole objects")
    if "pyarrow" in paths_text and "1 row" in paths_text:
        return "an Arrow slice keeps every buffer of its parent; take pa.concat_tables([t]).combine_chunks() or .to_pylist()"
    if figures == {"peak"}:
        return "the memory was freed, but too much was alive at once: process in chunks or stream instead"
    if "arrow" in figures:
        return "Arrow memory is alive: drop references to tables, or call pa.default_memory_pool().release_unused()"
    if "children" in figures:
        return "child processes hold the memory: bound the work in flight, or recycle workers (max_tasks_per_child)"
    return "something kept the memory alive past the block: look at the paths above for a global, cache or list"


def explain(measurement: Measurement, violations: Sequence[Violation], *, title: str,
            budget: Budget | None = None, survivors: bool = True) -> str:
    """The failure text of DESIGN.md for ``measurement`` breaking ``budget``."""
    lines = [f"{title} broke its memory budget"]
    lines.append("  " + _figure_line(measurement, budget))
    if measurement.allocator_retention:
        lines.append(f"  allocator kept {format_size(measurement.allocator_retention)} after frees "
                     f"(settling gave it back; not counted as growth)")
    lines.append("  where it lives: " + where_it_lives(measurement))
    sites = allocation_sites()  # before the retention search, whose own allocations are not news
    paths_text = ""
    # Only memory this process kept has survivors to look for: not a peak, not the children's.
    kept = [v.value for v in violations if v.figure in ("rss", "traced", "arrow")]
    if survivors and kept:
        grown = max(kept)
        found = survivor_lines(min_size=max(1 << 20, grown // 8))
        if found:
            lines.append("  still alive because:")
            lines.extend("    " + line for line in found)
            paths_text = "\n".join(found)
        else:
            lines.append("  still alive because: no single big buffer found; the growth is many small objects"
                         " or native memory")
    if measurement.object_growth:
        top = ", ".join(f"+{n:,} {name}" for name, n in measurement.object_growth[:6])
        lines.append(f"  objects that grew: {top}")
    if sites:
        depth = tracemalloc.get_traceback_limit() if tracemalloc.is_tracing() else 0
        note = " (1 frame per trace: tracemalloc.start(10) shows your own lines)" if depth == 1 else ""
        lines.append(f"  biggest allocation sites alive (traced){note}:")
        lines.extend("    " + s for s in sites)
    elif not measurement.traced:
        lines.append("  allocation sites: not traced (start tracemalloc, or run pytest with --leak-trace)")
    lines.append("  fix hint: " + _hint(measurement, violations, paths_text))
    return "\n".join(lines)
