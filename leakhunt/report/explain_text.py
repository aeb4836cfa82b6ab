"""The one explanation text renderer: explanations, hunt verdicts and retention paths as text.

Every front end that says *why* in words goes through here: a budget failure (the decorator's
exception, the plugin's failure text), ``hunt()``'s verdict, ``why_alive()``'s paths, the
``leakhunt run`` summary, the test report's "why they failed" and the Dask cluster report. The
domain objects (:class:`leakhunt.explanation.Explanation`, :class:`leakhunt.hunt.LeakVerdict`,
:class:`leakhunt.retention.RetentionPaths`) hold data only; their ``str()`` and text methods are
one-line calls of these functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from leakhunt.explanation import FIGURE_LABELS, PLACES
from leakhunt.units import format_limit, format_size

if TYPE_CHECKING:
    from leakhunt.explanation import Explanation, Figure, Root, Site
    from leakhunt.hunt import LeakVerdict
    from leakhunt.judge import Judgement
    from leakhunt.retention import RetentionPaths

__all__ = [
    "accounting_text",
    "brief_lines",
    "broken_text",
    "explanation_lines",
    "explanation_text",
    "failure_text",
    "figure_broken_text",
    "figure_limit_text",
    "figure_text",
    "judgement_text",
    "paths_text",
    "root_headline",
    "root_lines",
    "series_text",
    "site_text",
    "sites_lines",
    "verdict_text",
    "where_text",
    "why_not",
]

#: The accountings of :attr:`Explanation.where` in the order and words the text shows them.
WHERE_LABELS: tuple[tuple[str, str], ...] = (
    ("numpy", "numpy buffers"), ("python", "Python heap"), ("pandas", "pandas hash tables"),
    ("polars", "polars (estimated)"), ("bytes", "bytes"), ("memmaps", "memory maps"),
    ("other arrays", "other arrays"), ("traced", "traced (Python heap + numpy)"), ("arrow", "Arrow pool"),
    ("unaccounted", "unaccounted native"))
_UNAVAILABLE = {"arrow": "Arrow pool n/a (pyarrow not imported)", "traced": "Python heap and numpy not traced"}


# ---------------------------------------------------------------------------------- pieces
def _word(figure: Figure) -> str:
    return "threshold" if figure.name == "leak" else "budget"


def figure_limit_text(figure: Figure) -> str:
    """'20MB = 19.1 MiB' (:func:`leakhunt.units.format_limit`)."""
    return format_limit(figure.limit, figure.given)


def figure_text(figure: Figure) -> str:
    """'rss grew 30.5 MiB (budget 20MB = 19.1 MiB)', or '(no budget)'."""
    text = f"{FIGURE_LABELS.get(figure.name, figure.name)} {format_size(figure.value)}"
    if figure.limit is None:
        return text + f" (no {_word(figure)})"
    return text + f" ({_word(figure)} {figure_limit_text(figure)})"


def figure_broken_text(figure: Figure) -> str:
    """'rss grew 30.5 MiB > budget 20MB = 19.1 MiB'."""
    return (f"{FIGURE_LABELS.get(figure.name, figure.name)} {format_size(figure.value)} > "
            f"{_word(figure)} {figure_limit_text(figure)}")


def site_text(site: Site) -> str:
    """'etl.py:12 (rows.append(frame))', or 'etl.py:12' without its code."""
    return f"{site.where} ({site.code})" if site.code else site.where


def _held(pairs: tuple[tuple[str, int], ...]) -> str:
    return ", ".join(f"{n:,} {name}" for name, n in pairs[:3])


def root_headline(root: Root) -> str:
    """'PREVIEWS (global in etl) keeps 3 buffers, 95.4 MiB', with the holders leakhunt cannot size."""
    if root.buffers:
        what = f"{root.buffers:,} buffer" + ("" if root.buffers == 1 else "s")
    else:
        what = f"{root.objects:,} object" + ("" if root.objects == 1 else "s")
    text = f"{root.root} keeps {what}, {format_size(root.size)}"
    if root.unknown:
        text += f" (and {_held(root.unknown)}: size unknown to leakhunt)"
    if root.estimated:
        text += (f" ({_held(root.estimated)} sized by the library's estimate, which counts only the rows shown: "
                 f"a slice keeps its parent's buffers, which are not in it)")
    return text


def root_lines(root: Root, indent: str = "    ", *, site: bool = True) -> list[str]:
    """A root as the text shows it: its headline, its path under it, the line that allocated it."""
    lines = [f"{indent}{root_headline(root)}:", f"{indent}  {root.text}"]
    if site and root.site is not None:
        lines.append(f"{indent}  allocated at {site_text(root.site)}")
    return lines


# ---------------------------------------------------------------------------------- explanation
def broken_text(explanation: Explanation) -> str:
    """The broken figures in one line ('rss grew 30.5 MiB > budget 20MB = 19.1 MiB'); "" when
    none is broken. The first line of a pytest failure (its short summary shows it)."""
    return "; ".join(figure_broken_text(f) for f in explanation.figures if f.broken)


def where_text(explanation: Explanation) -> str:
    """'numpy buffers 95.4 MiB, Python heap 0.6 MiB, Arrow pool 0 B, unaccounted native 0 B'."""
    parts = []
    for key, label in WHERE_LABELS:
        if key not in explanation.where:
            continue
        value = explanation.where[key]
        parts.append(_UNAVAILABLE.get(key, f"{label} n/a") if value is None else f"{label} {format_size(value)}")
    return ", ".join(parts)


def accounting_text(explanation: Explanation) -> str:
    """'held by the roots 95.4 MiB, not explained 0.6 MiB: 99% of 96.0 MiB explained' (places
    under 1 % of the figure are left out of the words, never out of the share)."""
    share = explanation.explained
    if share is None:
        return ""
    accounting = explanation.accounting
    total = explanation.accounted_of or 0
    parts = [f"{PLACES.get(place, place)} {format_size(size)}" for place, size in accounting
             if size and size * 100 >= total]
    named = sum(size for place, size in accounting if place != "unrooted")
    rest = max(0, total - named - dict(accounting).get("unrooted", 0))
    if rest * 100 >= total:
        parts.append(f"not explained {format_size(rest)}")
    return f"{', '.join(parts) or 'nothing'}: {share:.0%} of {format_size(total)} explained"


def sites_lines(title: str, sites: tuple[Site, ...]) -> list[str]:
    """A title line, then one line per allocation site: its size, its line and code."""
    return [title, *(f"    {format_size(s.size):>10}  {site_text(s)}" for s in sites)]


def _retained_lines(e: Explanation) -> list[str]:
    """What is alive and why: the allocator's share, the accountings, the roots, every byte."""
    lines = []
    retention = e.where.get("allocator_retention")
    if retention:
        lines.append(f"  allocator kept {format_size(retention)} after frees "
                     f"(settling gave it back; not counted as growth)")
    where = where_text(e)
    if where:
        lines.append("  where it lives: " + where)
    if e.roots:
        lines.append("  still alive because:")
        for root in e.roots:
            lines.extend(root_lines(root))
    elif e.unexplained:
        lines.append(f"  still alive because: {e.unexplained}")
    accounted = accounting_text(e)
    if accounted:
        lines.append("  every byte: " + accounted)
    return lines


def _allocation_lines(e: Explanation) -> list[str]:
    """Where it was allocated: at the peak, the types that grew, the sites alive at the end."""
    lines = []
    if e.peak_sites:
        lines.extend(sites_lines("  alive at the peak (biggest allocations, by line):", e.peak_sites))
    if e.type_growth:
        lines.append("  objects that grew: " + ", ".join(f"+{n:,} {name}" for name, n in e.type_growth[:6]))
    if e.sites:
        lines.extend(sites_lines("  biggest allocation sites alive (traced):", e.sites))
    elif not e.traced and e.where:  # (a peak alone keeps nothing: no sites to look for)
        lines.append("  allocation sites: not traced")
    return lines


def explanation_lines(e: Explanation) -> list[str]:
    """The explanation as lines: the headline, then its figures, what lives where and why, where
    it was allocated, how it was obtained and the fix hint, each indented under it."""
    lines = [f"{e.title} {e.headline}".strip()]
    if e.figures:
        lines.append("  " + "   ".join(figure_text(f) for f in e.figures))
    lines.extend(_retained_lines(e))
    lines.extend(_allocation_lines(e))
    lines.extend(f"  ({note})" for note in e.notes)
    if e.hint:
        lines.append("  fix hint: " + e.hint)
    return lines


def brief_lines(e: Explanation, title: str) -> list[str]:
    """An explanation in a few lines under ``title`` (a row of a table above says the figures):
    its headline, how it was obtained, and the fix hint when a root was found."""
    lines = [f"  {title}: {e.headline}", *(f"    {note}" for note in e.notes[:1])]
    if e.roots and e.hint:
        lines.append(f"    fix hint: {e.hint}")
    return lines


def explanation_text(e: Explanation) -> str:
    return "\n".join(explanation_lines(e))


def judgement_text(judgement: Judgement) -> str:
    """A judgement in words: its explanation, or its title and verdict when it has none."""
    if judgement.explanation is not None:
        return explanation_text(judgement.explanation)
    return f"{judgement.title}: {judgement.verdict}"


def failure_text(judgement: Judgement) -> str:
    """The failure as pytest shows it: its first line, which pytest's short summary repeats after
    the node id, is what broke ("rss grew 30.5 MiB > budget 20MB = 19.1 MiB"), then the
    explanation."""
    broken = broken_text(judgement.explanation) if judgement.explanation is not None else ""
    text = judgement_text(judgement)
    return f"{broken}\n{text}" if broken else text


# ---------------------------------------------------------------------------------- hunt
def series_text(name: str, values: list[int]) -> tuple[str, str]:
    """A series of readings in words: its slope and its steps, in bytes (or blocks, for
    pymalloc's block count)."""
    from leakhunt.hunt import sen_slope

    steps = [values[i + 1] - values[i] for i in range(len(values) - 1)]
    if name == "blocks":
        return f"{sen_slope(values):+.0f} blocks", ", ".join(f"{d:+d}" for d in steps)
    return format_size(sen_slope(values), signed=True), ", ".join(format_size(d, signed=True) for d in steps)


def _series_why_not(name: str, series: list[int], threshold: int) -> str:
    from leakhunt.hunt import NOISE, sen_slope

    calls = len(series) - 1
    growing = sum(1 for i in range(calls) if series[i + 1] - series[i] > NOISE[name])
    slope = sen_slope(series)
    unit = (lambda v: f"{v:+.0f} blocks") if name == "blocks" else (lambda v: format_size(v, signed=True))
    if slope < threshold:
        return f"{name} {unit(slope)}/call, under the threshold"
    if growing * 2 < calls:
        return f"{name} grew in {growing} of {calls} calls, not call after call"
    return f"{name} grew {unit(series[-1] - series[0])} over {calls} calls, less than a leak at the threshold keeps"


def why_not(verdict: LeakVerdict) -> str:
    """Which part of the rule the series did not meet, said with their own figures: a slope under
    the threshold, growth in too few calls, or too little end to end."""
    from leakhunt.hunt import _limit

    reasons = [_series_why_not(name, values, _limit(name, verdict.threshold))
               for name, values in verdict.series.items() if len(values) > 2]
    return "; ".join(r for r in reasons if r) or f"growth stayed under {format_size(verdict.threshold)} per call"


def verdict_text(verdict: LeakVerdict, title: str = "the function") -> str:
    """A hunt's verdict in words. A leak is explained as every front end explains one
    (:func:`leakhunt.judge.explain_leak`: its roots, sites and series); otherwise why it is not
    one, in terms of the figures shown."""
    if verdict.leaking:
        from leakhunt.judge import explain_leak

        return explanation_text(explain_leak(verdict, title))
    if verdict.cleared_note:
        lines = [f"{title}: {verdict.cleared_note}"]
    else:
        lines = [f"{title} does not leak: {why_not(verdict)} ({verdict.calls} calls)"]
    for name, values in verdict.series.items():
        slope, steps = series_text(name, values)
        lines.append(f"  {name:<6} {slope}/call   per call: {steps}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- retention
def paths_text(paths: RetentionPaths) -> str:
    """``why_alive()``'s answer: one path a line, best first, or why none was found."""
    if not paths.paths:
        why = paths.note or "no path from a module global or a frame local was found"
        return f"{paths.target}: {why}"
    return "\n".join(" -> ".join(p.steps()) for p in paths.paths)

