"""Hunt per-call leaks: repeat a call, and call it a leak only if growth goes on and on.

The rule (docs/accounting.md, "Hunting leaks", says how it was measured): warm up, then settle and read after each of
``repeat`` calls in every accounting available (anonymous RSS, tracemalloc, Arrow pool). An
accounting is *suspect* when its Sen slope (the median of all pairwise slopes, robust to a
one-off jump) reaches the threshold, at least half the deltas grow beyond noise, and the growth
end to end is at least 0.8 x threshold x calls. A suspect is confirmed by another ``repeat``
calls under the same rule; one that is not confirmed was a warm-up or a bounded cache.

Growth that only resident memory shows, while tracemalloc and Arrow's pool do not move, may be
the allocator's rather than the calls' (issue 13: an Arrow-to-pandas conversion that keeps
nothing grew RSS by 288-470 KB per call for a while, on a machine whose CPUs were busy, and was
called a leak in 2 of 7 runs). A native leak is real and must still be caught, so such growth
needs stronger evidence (:func:`confirmations`), and the verdict says which accounting decided.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from leakhunt import defaults, probes
from leakhunt import tracing as _tracing
from leakhunt.explanation import Root, Site
from leakhunt.hunted import checks_callable
from leakhunt.settle import settle
from leakhunt.units import parse_size

__all__ = ["LeakVerdict", "SeriesHunt", "hunt", "sen_slope", "is_suspect", "confirmations", "evidence", "NOISE",
           "NAMES", "RESIDENT"]

#: Per-call noise below which a delta does not count as growth (measured: settled,
#: single-threaded anonymous RSS moves at most 16 kB between identical calls).
NOISE: dict[str, int] = {"rss": 16 * 1024, "traced": 1024, "arrow": 64, "blocks": 8}

#: The largest object pymalloc serves (bytes): a leak of N bytes of small objects adds at least
#: N / 512 blocks, so that many blocks per call is the least a leak at the threshold shows.
_BLOCK_MAX = 512

_CLEARED = "warm-up or bounded cache: memory grew at first, then stopped (not a leak)"

#: Accountings that read resident memory. Growth seen only there may be the allocator's -
#: fragmentation, pymalloc arenas pinned by a few small objects, per-thread arenas - which
#: stops after a while, where a leak goes on. (The Dask integration's "unmanaged" is resident
#: memory too, but a leak there must also still be there when the watched block ends, which
#: growth the allocator gives back is not: evidence of its own, so one window confirms it.)
RESIDENT = frozenset({"rss"})


def confirmations(suspects: Iterable[str]) -> int:
    """How many windows of calls must confirm ``suspects`` (accounting names) in a row: one,
    or two when every suspect reads resident memory only (:data:`RESIDENT`). The one rule for
    every hunter: :func:`hunt` and :class:`SeriesHunt`."""
    names = set(suspects)
    return 2 if names and names <= RESIDENT else 1


def sen_slope(series: list[int]) -> float:
    """Median of the slopes between every pair of points (Theil-Sen)."""
    slopes = sorted((series[j] - series[i]) / (j - i)
                    for i in range(len(series)) for j in range(i + 1, len(series)))
    if not slopes:
        return 0.0
    mid = len(slopes) // 2
    return float(slopes[mid]) if len(slopes) % 2 else (slopes[mid - 1] + slopes[mid]) / 2


def is_suspect(series: list[int], threshold: int, noise: int) -> bool:
    """The suspicion rule (see the module's docstring) over a settled series of ``calls + 1`` readings."""
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
    windows: int = 0  # confirmation windows of ``repeat`` calls run after the first window
    evidence: str | None = None  # which accounting decided a leak, and on what evidence
    given_back: bool = False  # confirmed, but the memory was given back before the calls ended

    def explain(self, title: str = "the function") -> str:
        """The verdict in words (:func:`leakhunt.report.explain_text.verdict_text`)."""
        from leakhunt.report.explain_text import verdict_text

        return verdict_text(self, title)

    def why_not(self) -> str:
        """Which part of the rule the series did not meet (:func:`leakhunt.report.explain_text.why_not`)."""
        from leakhunt.report.explain_text import why_not

        return why_not(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "leaking": self.leaking, "suspect": self.suspect, "per_call": self.per_call,
            "accounting": self.accounting, "threshold": self.threshold, "calls": self.calls,
            "series": self.series, "confirm_series": self.confirm_series, "note": self.cleared_note,
            "roots": [r.to_dict() for r in self.roots], "sites": [s.to_dict() for s in self.sites],
            "types": [{"type": t, "count": n} for t, n in self.types], "explained_calls": self.explained_calls,
            "windows": self.windows, "evidence": self.evidence, "given_back": self.given_back,
        }


NAMES = {"rss": "resident memory (anonymous RSS)", "traced": "tracemalloc's traced memory",
         "blocks": "pymalloc's allocated blocks",
         "unmanaged": "unmanaged memory (anonymous RSS minus Dask's managed data)",
          "arrow": "Arrow's memory pool", "": "no accounting"}


def _rss_reader() -> Callable[[], int | None]:
    """Anonymous RSS where it can be read (Linux), else plain RSS (psutil): never no RSS at all."""
    return probes.rss_anon if probes.rss_anon() is not None else probes.rss


def _limit(name: str, limit: int) -> int:
    """The threshold in the series' own unit: blocks for the block count, else bytes."""
    return max(1, limit // _BLOCK_MAX) if name == "blocks" else limit


def _window(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
            calls: int, names: list[str], scope: Any = None) -> dict[str, list[int]]:
    """``calls`` calls of ``fn``, settling and reading every accounting in ``names`` before the
    first and after each. With ``scope`` (a confirmation window) and threads older than the hunt
    running, what those threads allocated is left out of the readings (from one snapshot of
    the scope's fresh trace per reading): a background thread's growth is not the calls'."""
    # Pre-allocated so the measuring loop itself allocates nothing that grows.
    series = {name: [0] * (calls + 1) for name in names}
    readers = {"rss": _rss_reader(), "traced": probes.traced, "arrow": probes.arrow,
               "blocks": sys.getallocatedblocks}
    foreign = scope is not None and scope.fresh and bool(scope.threads)
    for i in range(calls + 1):
        if i:
            fn(*args, **kwargs)  # the result is dropped at once: a returned value is not a leak
        settle()
        for name in names:
            series[name][i] = readers[name]() or 0
        if foreign:
            _leave_out_foreign(series, i, scope)
    return series


def _leave_out_foreign(series: dict[str, list[int]], i: int, scope: Any) -> None:
    theirs, total = scope.foreign_traced()
    if total is None:
        return
    if "traced" in series:
        series["traced"][i] = total - theirs
    if "rss" in series:
        series["rss"][i] -= theirs


def _settings(threshold: int | str, repeat: int, warmup: int) -> int:
    """Validate the hunting settings; the threshold in bytes."""
    limit = parse_size(threshold)
    if limit <= 0:
        raise ValueError(f"hunt threshold must be > 0 bytes, got {threshold!r}")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 2:
        raise ValueError(f"hunt repeat must be a whole number >= 2, got {repeat!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"hunt warmup must be a whole number >= 0, got {warmup!r}")
    return limit


@checks_callable  # a generator function, or an option that is also fn's parameter, is refused first
def hunt(fn: Callable[..., Any], *args: Any, threshold: int | str = defaults.THRESHOLD,
         repeat: int = defaults.REPEAT, warmup: int = defaults.WARMUP, confirm: bool = True,
         trace: bool | None = None, attribute: bool = True, **kwargs: Any) -> LeakVerdict:
    """Call ``fn(*args, **kwargs)`` repeatedly and decide whether it leaks per call.

    ``trace``: ``None`` uses tracemalloc's figure if tracing is already on; ``True`` lets
    tracemalloc decide small-object growth, which anonymous RSS hides in pymalloc's arenas: the
    first window watches pymalloc's count of allocated blocks (free to read, where tracing slows
    every call: benchmarks/plugin.md), and a window whose blocks grow by at least a
    threshold's worth per call (threshold / 512 bytes, the largest small object) is confirmed
    with tracing on; with ``confirm=False`` the whole hunt is traced. ``False`` leaves tracing
    out. ``attribute`` (the default): watch the confirmation window (traced freshly unless
    ``trace=False``) and, for a confirmed leak, keep what its calls left alive (grouped by
    root), their allocation sites and types in the verdict: the explanation of the leak, with
    no extra call; what threads older than the hunt allocate during the confirmation is left
    out of its readings. An exception from ``fn`` propagates: a failing call is never called a
    leak.

    ``TypeError`` before any call for a generator or ``async`` function (a call would run none of
    its body) and for an option of hunt's that ``fn`` also takes as a parameter (which one was
    meant cannot be told): :mod:`leakhunt.hunted`.
    """
    limit = _settings(threshold, repeat, warmup)
    return _Hunt(fn, args, kwargs, limit, repeat, warmup, confirm, trace, attribute).run()


class _Hunt:
    """One hunt, step by step: warm up, the first window, the confirmation, the verdict."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], limit: int,
                 repeat: int, warmup: int, confirm: bool, trace: bool | None, attribute: bool) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.limit, self.repeat, self.warmup = limit, repeat, warmup
        self.confirm, self.trace, self.attribute = confirm, trace, attribute
        # Small objects watched by their block count first, traced only to confirm (see hunt).
        self.by_blocks = bool(trace) and confirm and not tracemalloc.is_tracing()
        self.handle: Any = None
        self.scope: Any = None
        self.frozen = False
        self.names: list[str] = []
        self.first: dict[str, list[int]] = {}
        self.second: dict[str, list[int]] = {}
        self.suspects: list[str] = []
        self.confirmed: list[str] = []
        self.windows = 0
        self.calls = warmup
        self.found: dict[str, Any] = {}

    def run(self) -> LeakVerdict:
        if self.trace and not self.by_blocks:
            self.handle = _tracing.start(1)  # one frame: the figure, not the sites
        try:
            self._warm_up()
            self._freeze()
            self._first_window()
            if self.suspects and self.confirm:
                self._confirmation()
            elif self.suspects:
                self.confirmed = self.suspects
        finally:
            self._finish()
        return self._verdict()

    def _warm_up(self) -> None:
        for i in range(self.warmup):
            if i == 0 and self.trace is not False:
                # the frames between the hunt and the user's code (a test's: pytest's hook
                # machinery) made cheap to trace in the traced calls to come; a warm-up call
                # is not measured, so what that costs is nobody's growth
                _tracing.line_tables_above_user(self.fn, *self.args, **self.kwargs)
            else:
                self.fn(*self.args, **self.kwargs)

    def _freeze(self) -> None:
        # Settling after every call means a full collection each time: 70-100 ms on a heap
        # with pandas' test modules imported. Objects that exist before the measured calls
        # cannot be garbage the calls made, so freeze them: a collection then only walks
        # what the calls created (0.06 ms on that heap; benchmarks/engine.py). No full
        # collection first: garbage from before is frozen too, unchanged during the windows,
        # and collected as usual after them. Not when someone else has frozen objects:
        # unfreezing would undo their freeze.
        if gc.isenabled() and gc.get_freeze_count() == 0:
            gc.freeze()
            self.frozen = True

    def _first_window(self) -> None:
        names = ["rss"] if _rss_reader()() is not None else []
        if self.trace is not False and tracemalloc.is_tracing():
            names.append("traced")
        elif self.by_blocks:
            names.append("blocks")
        if probes.arrow() is not None:
            names.append("arrow")
        self.names = names
        self.first = _window(self.fn, self.args, self.kwargs, self.repeat, names)
        self.suspects = [n for n in names if is_suspect(self.first[n], _limit(n, self.limit), NOISE[n])]
        self.calls += self.repeat

    def _confirmation(self) -> None:
        names, suspects = self.names, self.suspects
        if self.by_blocks:
            # tracemalloc decides what the block count or resident memory suggested: it traces
            # numpy's buffers too, so it confirms their growth in bytes
            names = [n if n != "blocks" else "traced" for n in names]
            hinted = "blocks" in suspects or "rss" in suspects
            suspects = [n for n in suspects if n != "blocks"] + (["traced"] if hinted else [])
        if self.attribute:
            from leakhunt.attribution import Scope

            self.scope = Scope(trace=self.trace is not False, children=False)
        elif "traced" in names and not tracemalloc.is_tracing():
            self.handle = _tracing.start(1)
        if "traced" in names and not tracemalloc.is_tracing():
            names.remove("traced")
        self.names = names
        # Window after window while what still grows needs more evidence than it has had
        # (growth in resident memory alone: two windows in a row).
        self.confirmed = suspects
        while self.confirmed and self.windows < confirmations(self.confirmed):
            self.second = _window(self.fn, self.args, self.kwargs, self.repeat, names, self.scope)
            self.calls += self.repeat
            self.windows += 1
            self.confirmed = [n for n in self.confirmed if is_suspect(self.second[n], self.limit, NOISE[n])]

    def _finish(self) -> None:
        scope = self.scope
        if scope is not None and self.confirmed:
            scope.capture()  # what the confirmation's calls made: before the heap thaws
        if self.frozen:
            gc.unfreeze()  # before any search: frozen objects are invisible to gc.get_referrers
        if scope is not None:
            if self.confirmed:
                self.found = _survivors_of(scope)
            scope.close()
        if self.handle is not None:
            self.handle.stop()

    def _verdict(self) -> LeakVerdict:
        confirmed, suspects, first = self.confirmed, self.suspects, self.first
        # Name the accounting where growth is largest; every series is in the verdict.
        pool, judged = (confirmed, self.second or first) if confirmed else (suspects or self.names, first)
        pool = [n for n in pool if n in judged and n != "blocks"]  # a count, not bytes
        # Where tracemalloc confirmed it, its figure is the leak's own bytes (resident memory then
        # includes tracemalloc's own records of the leaked objects).
        if "traced" in pool and "traced" in confirmed:
            pool = ["traced"]
        best = max(pool, key=lambda n: sen_slope(judged[n]), default=None)
        found = self.found
        return LeakVerdict(
            leaking=bool(confirmed), suspect=bool(suspects),
            per_call=int(sen_slope(judged[best])) if best else None,
            accounting=best if suspects else None, threshold=self.limit, calls=self.calls,
            series=first, confirm_series=self.second,
            cleared_note=_CLEARED if suspects and not confirmed else None,
            roots=found.get("roots", ()), sites=found.get("sites", ()), types=found.get("types", ()),
            explained_calls=self.repeat * self.windows if found else 0, windows=self.windows,
            evidence=evidence(confirmed, self.names, self.windows, self.repeat) if confirmed else None,
        )


def evidence(confirmed: Iterable[str], measured: Iterable[str], windows: int, repeat: int) -> str:
    """What decided a leak, in words: the accounting, what the others showed, the windows."""
    grew = [n for n in _SHORT if n in set(confirmed)]
    flat = [n for n in _SHORT if n in set(measured) and n not in grew and n not in RESIDENT]
    seen = " and ".join(_SHORT[n] for n in grew)
    span = (f"confirmed over {windows} more windows of {repeat} calls" if windows > 1
            else "confirmed over a second window of calls" if windows == 1 else "not confirmed (confirm=False)")
    if grew and set(grew) <= RESIDENT:
        quiet = f", while {' and '.join(_SHORT[n] for n in flat)} did not grow" if flat else ""
        return (f"decided by {seen} alone{quiet}: growth only resident memory shows needs stronger "
                f"evidence (allocator fragmentation stops growing, a leak does not); {span}")
    return f"decided by {seen}; {span}"


_SHORT = {"traced": "tracemalloc", "arrow": "Arrow's pool", "rss": "resident memory",
          "unmanaged": "unmanaged memory"}


def _survivors_of(scope: Any) -> dict[str, Any]:
    """Roots, sites and types of what the calls inside ``scope`` left alive."""
    from leakhunt.attribution import created_types, survivors

    try:
        # the verdict's types are created_types' (every object the calls left), not the roots'
        found = survivors(scope, sites=scope.fresh, types=False)
        return {"roots": found.roots, "sites": found.sites, "types": created_types(scope)}
    except Exception:  # never let the explanation hide the verdict
        return {}


class SeriesHunt:
    """The same rule as :func:`hunt`, fed one reading at a time by a caller that cannot repeat.

    For callers that watch calls happen rather than make them (a Dask worker watching a task
    prefix): ``add(growth)`` after each call with the memory that call left behind. The first
    ``warmup`` calls are skipped; then every window of ``repeat`` calls is judged with
    :func:`is_suspect` over the cumulative series. A suspect window makes the next window a
    confirmation (``confirming`` tells the caller to settle around those calls); as many
    confirmed confirmation windows in a row as :func:`confirmations` asks for are a leak and
    end the hunt, an unconfirmed one was a warm-up or a bounded cache and hunting goes on with
    the next window.

    ``spread_noise``: when calls overlap (several threads), a call's growth carries part of the
    temporaries of the calls beside it, which averages out but scatters the deltas. Then a
    window's noise is at least the robust spread of its deltas (1.4826 x their median absolute
    deviation, a standard deviation for normal scatter): temporaries scatter around zero and
    few deltas rise beyond their own spread, while a leak's deltas centre on its per-call
    figure and most stay beyond it.
    """

    def __init__(self, threshold: int | str = defaults.THRESHOLD, *, repeat: int = defaults.REPEAT,
                 warmup: int = defaults.WARMUP, noise: int = NOISE["rss"], accounting: str = "rss",
                 spread_noise: bool = False) -> None:
        limit = _settings(threshold, repeat, warmup)
        self.threshold = limit
        self.repeat = repeat
        self.warmup = warmup
        self.noise = noise
        self.spread_noise = spread_noise
        self.accounting = accounting
        self.calls = 0
        self.confirming = False
        self.windows = 0  # confirmation windows that confirmed, in a row
        self.leaking = False
        self.suspected = False
        self.cleared = False
        self._series = [0]
        self._first: list[int] = []  # the window that made it suspect (or the last judged one)
        self._second: list[int] = []  # the confirmation window

    @property
    def done(self) -> bool:
        """A leak was confirmed: further calls change nothing."""
        return self.leaking

    @property
    def judged(self) -> bool:
        """At least one full window was judged."""
        return bool(self._first)

    def add(self, growth: int) -> None:
        """Record one call that left ``growth`` bytes behind (negative when it freed memory)."""
        self.calls += 1
        if self.leaking or self.calls <= self.warmup:
            return
        series = self._series
        series.append(series[-1] + int(growth))
        if len(series) <= self.repeat:
            return
        suspect = is_suspect(series, self.threshold, self._noise(series))
        if self.confirming:
            self._second = series
            self.confirming = False
            if suspect:
                self.windows += 1
                self.leaking = self.windows >= confirmations([self.accounting])
                self.confirming = not self.leaking
            else:
                self.windows = 0
                self.cleared = True
        else:
            self._first = series
            if suspect:
                self.suspected = True
                self.confirming = True
        self._series = [0]

    def _noise(self, series: list[int]) -> int:
        if not self.spread_noise:
            return self.noise
        deltas = sorted(series[i + 1] - series[i] for i in range(len(series) - 1))
        middle = deltas[len(deltas) // 2]
        spread = sorted(abs(d - middle) for d in deltas)[len(deltas) // 2]
        return max(self.noise, int(1.4826 * spread))

    def verdict(self) -> LeakVerdict:
        """The verdict so far; ``per_call`` is the Sen slope of the confirming (or last) window."""
        window = self._second if self.leaking else self._first
        per_call = int(sen_slope(window)) if window else None
        name = self.accounting
        return LeakVerdict(
            leaking=self.leaking,
            suspect=self.suspected,
            per_call=per_call,
            accounting=name if self.suspected else None,
            threshold=self.threshold,
            calls=self.calls,
            series={name: list(self._first)} if self._first else {},
            confirm_series={name: list(self._second)} if self._second else {},
            cleared_note=_CLEARED if self.cleared and not self.leaking else None,
            windows=self.windows,
            evidence=evidence([name], [name], self.windows, self.repeat) if self.leaking else None,
        )

