"""Hunt per-call leaks: repeat a call, and call it a leak only if growth goes on and on.

The rule (DESIGN.md, measured in FINDINGS.md): warm up, then settle and read after each of
``repeat`` calls in every accounting available (anonymous RSS, tracemalloc, Arrow pool). An
accounting is *suspect* when its Sen slope (the median of all pairwise slopes, robust to a
one-off jump) reaches the threshold, at least half the deltas grow beyond noise, and the growth
end to end is at least 0.8 x threshold x calls. A suspect is confirmed by another ``repeat``
calls under the same rule; one that is not confirmed was a warm-up or a bounded cache.
"""

from __future__ import annotations

import gc
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable

from leakhunt import defaults, probes
from leakhunt import tracing as _tracing
from leakhunt.explanation import Root, Site
from leakhunt.settle import settle
from leakhunt.units import format_size, parse_size

__all__ = ["LeakVerdict", "hunt", "sen_slope", "is_suspect", "NOISE", "NAMES"]

#: Per-call noise below which a delta does not count as growth (FINDINGS.md: settled,
#: single-threaded anonymous RSS moves at most 16 kB between identical calls).
NOISE: dict[str, int] = {"rss": 16 * 1024, "traced": 1024, "arrow": 64}

_CLEARED = "warm-up or bounded cache: memory grew at first, then stopped (not a leak)"


def sen_slope(series: list[int]) -> float:
    """Median of the slopes between every pair of points (Theil-Sen)."""
    slopes = sorted((series[j] - series[i]) / (j - i)
                    for i in range(len(series)) for j in range(i + 1, len(series)))
    if not slopes:
        return 0.0
    mid = len(slopes) // 2
    return float(slopes[mid]) if len(slopes) % 2 else (slopes[mid - 1] + slopes[mid]) / 2


def is_suspect(series: list[int], threshold: int, noise: int) -> bool:
    """DESIGN.md's rule over a settled series of ``calls + 1`` readings."""
    calls = len(series) - 1
    if calls < 2:
        return False
    deltas = [series[i + 1] - series[i] for i in range(calls)]
    growing = sum(1 for d in deltas if d > noise)
    return (sen_slope(series) >= threshold and growing * 2 >= calls
            and series[-1] - series[0] >= 0.8 * threshold * calls)


@dataclass(frozen=True)
class LeakVerdict:
    """The outcome of :func:`hunt`."""

    leaking: bool
    suspect: bool
    per_call: int | None  # bytes per call in the accounting that showed it (None: no growth)
    accounting: str | None  # "rss", "traced" or "arrow"
    threshold: int
    calls: int  # every call made, warm-up and confirmation included
    series: dict[str, list[int]] = field(default_factory=dict)  # readings, first window
    confirm_series: dict[str, list[int]] = field(default_factory=dict)
    cleared_note: str | None = None
    # With attribute=True, for a confirmed leak: what the confirmation window's calls left alive
    roots: tuple[Root, ...] = ()  # grouped by root
    sites: tuple[Site, ...] = ()  # the lines that allocated it
    types: tuple[tuple[str, int], ...] = ()  # objects of those calls still alive, by type
    explained_calls: int = 0  # calls whose survivors these are

    def explain(self, title: str = "the function") -> str:
        lines = []
        if self.leaking:
            lines.append(f"{title} leaks {format_size(self.per_call)} per call "
                         f"(threshold {format_size(self.threshold)}), seen in {NAMES[self.accounting or '']}")
            lines.append(f"  confirmed over a second window of calls; {self.calls} calls in all")
        elif self.cleared_note:
            lines.append(f"{title}: {self.cleared_note}")
        else:
            lines.append(f"{title} does not leak: growth stayed under {format_size(self.threshold)} per call "
                         f"({self.calls} calls)")
        for name, values in self.series.items():
            slope = sen_slope(values)
            steps = ", ".join(format_size(values[i + 1] - values[i], signed=True) for i in range(len(values) - 1))
            lines.append(f"  {name:<6} {format_size(slope, signed=True)}/call   per call: {steps}")
        if self.leaking and self.accounting == "rss" and "traced" not in self.series:
            lines.append("  run with tracing (tracemalloc.start(), or pytest --leak-trace) to see where it is allocated")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "leaking": self.leaking, "suspect": self.suspect, "per_call": self.per_call,
            "accounting": self.accounting, "threshold": self.threshold, "calls": self.calls,
            "series": self.series, "confirm_series": self.confirm_series, "note": self.cleared_note,
            "roots": [r.to_dict() for r in self.roots], "sites": [s.to_dict() for s in self.sites],
            "types": [{"type": t, "count": n} for t, n in self.types], "explained_calls": self.explained_calls,
        }


NAMES = {"rss": "resident memory (anonymous RSS)", "traced": "tracemalloc's traced memory",
          "arrow": "Arrow's memory pool", "": "no accounting"}


def _rss_reader() -> Callable[[], int | None]:
    """Anonymous RSS where it can be read (Linux), else plain RSS (psutil): never no RSS at all."""
    return probes.rss_anon if probes.rss_anon() is not None else probes.rss


def _window(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
            calls: int, names: list[str]) -> dict[str, list[int]]:
    # Pre-allocated so the measuring loop itself allocates nothing that grows.
    series = {name: [0] * (calls + 1) for name in names}
    readers = {"rss": _rss_reader(), "traced": probes.traced, "arrow": probes.arrow}
    for i in range(calls + 1):
        if i:
            fn(*args, **kwargs)  # the result is dropped at once: a returned value is not a leak
        settle()
        for name in names:
            series[name][i] = readers[name]() or 0
    return series


def hunt(fn: Callable[..., Any], *args: Any, threshold: int | str = defaults.THRESHOLD,
         repeat: int = defaults.REPEAT, warmup: int = defaults.WARMUP, confirm: bool = True,
         trace: bool | None = None, attribute: bool = False, **kwargs: Any) -> LeakVerdict:
    """Call ``fn(*args, **kwargs)`` repeatedly and decide whether it leaks per call.

    ``trace``: ``None`` uses tracemalloc's figure if tracing is already on; ``True`` turns it
    on for the hunt (it sees small-object leaks that anonymous RSS hides in pymalloc's arenas);
    ``False`` leaves it out. ``attribute``: trace the confirmation window freshly and, for a
    confirmed leak, keep what its calls left alive (grouped by root), their allocation sites
    and types in the verdict: the explanation of the leak, with no extra call. An exception
    from ``fn`` propagates: a failing call is never called a leak.
    """
    limit = parse_size(threshold)
    if limit <= 0:
        raise ValueError(f"hunt threshold must be > 0 bytes, got {threshold!r}")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 2:
        raise ValueError(f"hunt repeat must be a whole number >= 2, got {repeat!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"hunt warmup must be a whole number >= 0, got {warmup!r}")
    handle = _tracing.start(1) if trace else None  # one frame: the figure, not the sites
    frozen = False
    scope = None
    confirmed: list[str] = []
    found: dict[str, Any] = {}
    try:
        for _ in range(warmup):
            fn(*args, **kwargs)
        # Settling after every call means a full collection each time: 70-100 ms on a heap
        # with pandas' test modules imported. Objects that exist before the measured calls
        # cannot be garbage the calls made, so freeze them: a collection then only walks
        # what the calls created (0.06 ms on that heap; benchmarks/engine.py). No full
        # collection first: garbage from before is frozen too, unchanged during the windows,
        # and collected as usual after them (that collection was a third of --leak-hunt's time
        # on pandas' own tests, issue 9). Not when someone else has frozen objects:
        # unfreezing would undo their freeze.
        if gc.isenabled() and gc.get_freeze_count() == 0:
            gc.freeze()
            frozen = True
        names = ["rss"] if _rss_reader()() is not None else []
        if trace is not False and tracemalloc.is_tracing():
            names.append("traced")
        if probes.arrow() is not None:
            names.append("arrow")
        first = _window(fn, args, kwargs, repeat, names)
        suspects = [n for n in names if is_suspect(first[n], limit, NOISE[n])]
        calls = warmup + repeat
        second: dict[str, list[int]] = {}
        if suspects and confirm:
            if attribute:
                from leakhunt.attribution import Scope

                scope = Scope(trace=trace is not False)
                if "traced" in names and not tracemalloc.is_tracing():
                    names.remove("traced")
            second = _window(fn, args, kwargs, repeat, names)
            calls += repeat
            confirmed = [n for n in suspects if is_suspect(second[n], limit, NOISE[n])]
        elif suspects:
            confirmed = suspects
    finally:
        if frozen:
            gc.unfreeze()  # before any search: frozen objects are invisible to gc.get_referrers
        if scope is not None:
            if confirmed:
                found = _survivors_of(scope)
            scope.close()
        if handle is not None:
            handle.stop()
    # Name the accounting where growth is largest; every series is in the verdict.
    pool, windows = (confirmed, second or first) if confirmed else (suspects or names, first)
    best = max(pool, key=lambda n: sen_slope(windows[n]), default=None)
    per_call = int(sen_slope(windows[best])) if best else None
    return LeakVerdict(
        leaking=bool(confirmed),
        suspect=bool(suspects),
        per_call=per_call,
        accounting=best if suspects else None,
        threshold=limit,
        calls=calls,
        series=first,
        confirm_series=second,
        cleared_note=_CLEARED if suspects and not confirmed else None,
        roots=found.get("roots", ()),
        sites=found.get("sites", ()),
        types=found.get("types", ()),
        explained_calls=repeat if found else 0,
    )


def _survivors_of(scope: Any) -> dict[str, Any]:
    """Roots, sites and types of what the calls inside ``scope`` left alive."""
    from leakhunt.attribution import created_types, survivors
    from leakhunt.tracing import summarise

    try:
        roots = survivors(scope).roots
        sites: tuple[Site, ...] = ()
        if scope.fresh:
            sites = summarise(tracemalloc.take_snapshot(), limit=5, user_only=True)[1]
        return {"roots": roots, "sites": sites, "types": created_types(scope)}
    except Exception:  # never let the explanation hide the verdict
        return {}
