"""Verdicts for calls one watches on several processes: a Dask task prefix on every worker.

A worker plugin hunts each prefix's series of calls on its own worker
(:class:`leakhunt.hunt.SeriesHunt`). This module judges a prefix from all of them, through
:func:`leakhunt.judge.judge`, so that a prefix reads with the same verdicts as a test:

- a leak must still be there when the watch ends: on a worker whose settled growth is smaller
  than what its confirmed leaks left behind, the leaks that do not fit were given back (a P2P
  shuffle holds its shards call after call, then unpacks them) - decided per prefix, by which of
  them the growth can hold (:func:`given_back`);
- when no worker ran enough calls to judge a prefix alone, the workers' calls are judged
  together (the same code runs on each: one worker's window confirms another's), with windows
  as long as the calls allow (:func:`pooled_verdict`), and the verdict says how many more calls
  would settle it.

Pure: it measures nothing, and takes plain data (what the workers sent).
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping, Sequence

from leakhunt.budget import Budget
from leakhunt.hunt import LeakVerdict, SeriesHunt, is_suspect, sen_slope
from leakhunt.judge import Judgement, judge

__all__ = ["PrefixJudgement", "SharedSeriesHunt", "WorkerSeries", "closed", "given_back", "held_by_leaks", "judge_prefix",
           "own_per_call", "pooled_verdict", "verdict_from_dict", "MIN_WINDOW", "SHARED_CLEARED", "SHARED_SUSPECT"]

#: The shortest window of calls a pooled hunt uses (two of them: a first window and its confirmation).
MIN_WINDOW = 5

#: A window of shared figures is suspect at this share of the threshold: a call's own growth is
#: shared with the calls beside it, so a leak reads smaller there (a 2 MiB leak read 1.1-1.9 MiB
#: per call with four threads; benchmarks/dask_attribution.py). Suspicion only costs a
#: confirmation measured alone, which uses the full threshold.
SHARED_SUSPECT = 0.5


def _cumulative(figures: Sequence[int]) -> list[int]:
    out = [0]
    for figure in figures:
        out.append(out[-1] + int(figure))
    return out


def _spread(figures: Sequence[int]) -> int:
    """1.4826 x the median absolute deviation of ``figures`` (a standard deviation for normal scatter)."""
    ordered = sorted(figures)
    middle = ordered[len(ordered) // 2]
    return int(1.4826 * sorted(abs(f - middle) for f in ordered)[len(ordered) // 2])


class SharedSeriesHunt:
    """:class:`leakhunt.hunt.SeriesHunt` for calls that share a process with other calls
    (several threads per Dask worker): a call's figure is its share of the memory that moved
    while it ran.

    Windows of ``repeat`` shared figures (after ``warmup`` calls) only raise suspicion, by
    :func:`leakhunt.hunt.is_suspect` with the threshold and the noise scaled by
    :data:`SHARED_SUSPECT`. A suspicion is then confirmed or cleared by the next ``repeat`` calls
    that ran *alone* (``add(figure, alone=True)``; the caller arranges them and settles around
    them), under the full threshold with the window's own spread as a floor of its noise: those
    figures are the calls' own. Calls that did not run alone while confirming are skipped. Once
    a confirmation has cleared it, the prefix's shared figures lean high beside its neighbours:
    later windows are suspect only at the full threshold.
    """

    def __init__(self, threshold: int, *, repeat: int, warmup: int, noise: int, accounting: str = "unmanaged") -> None:
        self.threshold = threshold
        self.repeat = repeat
        self.warmup = warmup
        self.noise = noise
        self.accounting = accounting
        self.calls = 0
        self.confirming = False
        self.leaking = self.suspected = self.cleared = False
        self.windows = 0
        self._window: list[int] = []
        self._first: list[int] = []  # the suspect (or last judged) window, cumulative
        self._second: list[int] = []  # the confirmation, cumulative

    @property
    def judged(self) -> bool:
        return bool(self._first)

    @property
    def open_window(self) -> tuple[int, ...]:
        """The figures of a confirmation under way."""
        return tuple(self._window) if self.confirming else ()

    def add(self, figure: int, alone: bool = False) -> None:
        self.calls += 1
        if self.leaking or self.calls <= self.warmup or (self.confirming and not alone):
            return
        self._window.append(int(figure))
        if len(self._window) < self.repeat:
            return
        series, figures = _cumulative(self._window), self._window
        self._window = []
        if self.confirming:
            self._second, self.confirming = series, False
            if is_suspect(series, self.threshold, max(self.noise, _spread(figures))):
                self.leaking, self.windows = True, self.windows + 1
            else:
                self.cleared = True
            return
        self._first = series
        share = 1.0 if self.cleared else SHARED_SUSPECT  # cleared once: its shared figures lean high
        if is_suspect(series, max(1, int(self.threshold * share)), int(self.noise * share)):
            self.suspected = self.confirming = True

    def verdict(self) -> LeakVerdict:
        window = self._second if self.leaking else self._first
        name = self.accounting
        return LeakVerdict(
            leaking=self.leaking, suspect=self.suspected, per_call=int(sen_slope(window)) if window else None,
            accounting=name if self.suspected else None, threshold=self.threshold, calls=self.calls,
            series={name: list(self._first)} if self._first else {},
            confirm_series={name: list(self._second)} if self._second else {},
            cleared_note=SHARED_CLEARED if self.cleared and not self.leaking else None, windows=self.windows,
            evidence=(f"suspected from figures shared with the calls running beside it; confirmed over {self.repeat} "
                      f"calls measured alone") if self.leaking else None)


#: A suspicion from shared figures that the calls measured alone did not confirm.
SHARED_CLEARED = ("grew in a window of figures shared with the calls running beside it, not when measured "
                  "alone: not a leak")

_OBJECT_FIELDS = {"roots", "sites", "types"}  # LeakVerdict fields that are not plain data


def verdict_from_dict(data: Mapping[str, Any]) -> LeakVerdict:
    """A :class:`LeakVerdict` from its ``to_dict()`` form (a worker's hunt, sent as data).
    Roots, sites and types are left out: a watched series has none."""
    names = {f.name for f in fields(LeakVerdict)} - _OBJECT_FIELDS
    values = {name: data[name] for name in names if name in data}
    values.setdefault("cleared_note", data.get("note"))
    values.setdefault("series", {})
    return LeakVerdict(**{k: v for k, v in values.items() if k in names})


@dataclass(frozen=True)
class WorkerSeries:
    """One prefix on one worker: its hunt so far and the figures the report shows."""

    address: str
    verdict: LeakVerdict
    calls: int
    errors: int = 0
    figures: tuple[int, ...] = ()  # the first calls' figures (bytes each), in order
    retained: int = 0  # left behind by all its calls (shared figures with several threads)
    settled_calls: int = 0  # calls measured alone and settled (a confirmation window)
    shared: bool = False  # several threads: only calls measured alone give the prefix's own figure
    open_window: tuple[int, ...] = ()  # a confirmation the calls ended in: its calls' figures so far


@dataclass(frozen=True)
class PrefixJudgement:
    """A prefix judged over every worker: the judgement and the figures behind it."""

    prefix: str
    judgement: Judgement
    per_call: int | None
    workers: tuple[tuple[WorkerSeries, str], ...]  # each worker's series and its own verdict name
    notes: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        return self.judgement.verdict


def given_back(held: Mapping[str, int], growth: int | None, slack: int = 16 << 20) -> set[str]:
    """The confirmed leaks of one worker (``{prefix: bytes its calls left behind}``) that its
    settled growth over the watch cannot hold: those were given back before it ended.

    Keeps the subset of leaks with the most bytes that the growth holds, with room for memory
    the worker held at the start and freed during the watch (up to as much again as it grew,
    plus ``slack``: a P2P shuffle's leftovers from an earlier computation freed 40-80 MiB
    during the next here); the others were given back. Decided per prefix: a real leak beside a
    shuffle that gave its buffers back stays a leak, and only growth the worker plainly no
    longer holds is relabelled.
    """
    leaks = {name: size for name, size in held.items() if size > 0}
    if growth is None or not leaks:
        return set()
    room = 2 * max(0, growth) + slack
    if sum(leaks.values()) <= room:
        return set()
    names = sorted(leaks, key=lambda n: -leaks[n])[:12]  # subsets of at most 12: 4,096 of them
    subsets = (c for k in range(len(names) + 1) for c in itertools.combinations(names, k))
    kept = max((c for c in subsets if sum(leaks[n] for n in c) <= room), key=lambda c: sum(leaks[n] for n in c))
    return set(leaks) - set(kept)


def pooled_verdict(series: Sequence[WorkerSeries], *, threshold: int, warmup: int, repeat: int,
                   noise: int, spread_noise: bool) -> tuple[LeakVerdict, str]:
    """Judge a prefix from every worker's calls together, when none ran enough calls alone.

    Each worker's first ``warmup`` calls are left out; the rest, worker after worker (most calls
    first), form one series hunted with windows of ``min(repeat, calls // 2)`` calls, so that a
    window on one worker is confirmed by the calls of another. Returns the verdict and a note:
    how it was judged, or how many more calls would judge it.
    """
    ordered = sorted(series, key=lambda s: -len(s.figures))
    pooled = [f for s in ordered for f in s.figures[warmup:]]
    counts = ", ".join(f"{len(s.figures)} on {s.address}" for s in ordered)
    window = min(repeat, len(pooled) // 2)
    if window < MIN_WINDOW:
        needed = warmup * len(series) + 2 * MIN_WINDOW
        return _unjudged(threshold, sum(s.calls for s in series)), (
            f"too few calls to judge, even over all workers together ({counts}): a hunt needs {warmup} warm-up "
            f"calls on each worker and two windows of at least {MIN_WINDOW} calls, {needed} calls here; "
            f"run more partitions, or watch(..., warmup=0, repeat={MIN_WINDOW}) for shorter windows")
    hunt = SeriesHunt(threshold, repeat=window, warmup=0, accounting="unmanaged", noise=noise,
                      spread_noise=spread_noise)
    for figure in pooled:
        hunt.add(figure)
    return hunt.verdict(), (f"judged over all workers together ({counts}; windows of {window} calls after "
                            f"{warmup} warm-up calls on each): no worker ran the {warmup} + {repeat} calls a "
                            f"hunt needs alone, and the same code runs on each")


def closed(series: WorkerSeries, *, noise: int) -> WorkerSeries:
    """A confirmation the calls ended in, judged on the calls it had (at least
    :data:`MIN_WINDOW`): a leak if they grew by the same rule, cleared if not. With fewer, the
    verdict stays unconfirmed."""
    verdict, window = series.verdict, series.open_window
    if verdict.leaking or not verdict.suspect or len(window) < MIN_WINDOW:
        return series
    cumulative = _cumulative(window)
    name = verdict.accounting or "unmanaged"
    shorter = f"a shorter window of {len(window)} calls (the calls ended before {len(window)} became a full window)"
    if is_suspect(cumulative, verdict.threshold, noise):
        verdict = replace(verdict, leaking=True, per_call=int(sen_slope(cumulative)), windows=verdict.windows + 1,
                          confirm_series={name: cumulative}, cleared_note=None,
                          evidence=f"decided by unmanaged memory; confirmed over {shorter}")
    else:
        verdict = replace(verdict, confirm_series={name: cumulative},
                          cleared_note=f"warm-up or bounded cache: did not grow over {shorter} (not a leak)")
    return replace(series, verdict=verdict, open_window=())


def _unjudged(threshold: int, calls: int) -> LeakVerdict:
    return LeakVerdict(leaking=False, suspect=False, per_call=None, accounting=None, threshold=threshold, calls=calls)


def _row_verdict(row: WorkerSeries) -> str:
    return judge(None, None, row.verdict, title="", explain=False).verdict


def _confirmed_note(rows: Sequence[tuple[WorkerSeries, str]], name: str) -> str:
    hits = [s.address for s, v in rows if v == name]
    where = ", ".join(hits)
    return f"confirmed on {where} ({len(hits)} of {len(rows)} worker{'' if len(rows) == 1 else 's'})"


def judge_prefix(prefix: str, series: Sequence[WorkerSeries], *, threshold: int, warmup: int, repeat: int,
                 noise: int, spread_noise: bool, budget: Budget | None = None,
                 released: Sequence[str] = ()) -> PrefixJudgement:
    """One prefix over every worker. ``released``: the workers whose settled growth could not
    hold this prefix's confirmed leak (:func:`given_back`): there it was given back."""
    rows = _rows(series, released, noise)
    verdict, notes = _decide(rows, threshold=threshold, warmup=warmup, repeat=repeat, noise=noise,
                             spread_noise=spread_noise)
    errors = sum(s.errors for s in series)
    if errors:
        notes.append(f"{errors} failed call{'s' if errors != 1 else ''} never hunted (a failed task keeps its frames)")
    judgement = judge(None, budget, verdict, title=prefix, explain=True)
    per_call = _per_call(rows, judgement.verdict, verdict)
    return PrefixJudgement(prefix=prefix, judgement=judgement, per_call=per_call, workers=tuple(rows),
                           notes=tuple(notes) + judgement.notes)


def _rows(series: Sequence[WorkerSeries], released: Sequence[str], noise: int) -> list[tuple[WorkerSeries, str]]:
    """Each worker's series (a confirmation cut short judged on what it had, a leak given back
    relabelled) with its own verdict name."""
    rows = []
    for s in series:
        s = closed(s, noise=noise)
        if s.verdict.leaking and s.address in released:
            s = replace(s, verdict=replace(s.verdict, leaking=False, given_back=True))
        rows.append((s, _row_verdict(s)))
    return rows


def _decide(rows: list[tuple[WorkerSeries, str]], **hunt: Any) -> tuple[LeakVerdict, list[str]]:
    """The verdict that speaks for the prefix, and how it was reached."""
    notes: list[str] = []
    # A suspicion from shared figures whose calls ended before a window of them ran alone is no
    # evidence by itself: its calls alone on every worker together may judge it, else all calls.
    weak = [s for s, v in rows if v == "unconfirmed" and s.shared]
    if weak:
        notes.append(f"suspected from shared figures on {', '.join(s.address for s in weak)}, where its calls ended "
                     f"before {MIN_WINDOW} ran alone")
    decided = [(s, v) for s, v in rows if all(s is not w for w in weak)]
    names = {v for _, v in decided}
    together = _confirmed_together(weak, hunt["noise"]) if names.isdisjoint({"leak", "given_back"}) else None
    chosen = _chosen(decided, names)
    if together is not None:  # no worker finished its confirmation alone: their calls together did
        notes.append(together[1])
        return together[0], notes
    if chosen is None:  # no worker judged it alone: judge it from all of them
        verdict, note = pooled_verdict([s for s, _ in rows], **hunt)
        notes.append(note)
        return verdict, notes
    if chosen.leaking:
        notes.append(_confirmed_note(decided, "leak"))
    elif chosen.given_back:
        notes.append(f"given back on {', '.join(s.address for s, v in rows if v == 'given_back')}: the "
                     f"worker's memory at the end of the watch (settled) could not hold it")
    return chosen, notes


def _confirmed_together(rows: Sequence[WorkerSeries], noise: int) -> tuple[LeakVerdict, str] | None:
    """Confirmations the calls ended in on several workers, judged on their calls together."""
    open_rows = [s for s in rows if s.open_window]
    window = tuple(f for s in open_rows for f in s.open_window)
    if len(window) < MIN_WINDOW:
        return None
    done = closed(replace(open_rows[0], open_window=window), noise=noise).verdict
    where = ", ".join(s.address for s in open_rows)
    return done, f"confirmation judged on {len(window)} calls of {len(open_rows)} workers together ({where})"


#: Which worker's verdict speaks for the prefix, strongest first.
_ORDER = ("leak", "given_back", "unconfirmed", "warmup_or_bounded_cache", "ok")


def _chosen(rows: Sequence[tuple[WorkerSeries, str]], names: set[str]) -> LeakVerdict | None:
    """The verdict of the worker that speaks for the prefix (a confirmed leak first), or None
    when no worker judged it."""
    for name in _ORDER:
        if name in names:
            pool = [s.verdict for s, v in rows if v == name]
            return max(pool, key=lambda v: v.per_call or 0) if name == "leak" else pool[0]
    return None


def own_per_call(series: WorkerSeries) -> int | None:
    """A worker's figure for the prefix's own calls: the hunt's, except on a worker with several
    threads, where only a window of calls measured alone (a confirmation) gives one."""
    verdict = series.verdict
    if not series.shared:
        return verdict.per_call
    confirm = next(iter(verdict.confirm_series.values()), None)
    return int(sen_slope(confirm)) if confirm else None


def _per_call(rows: Sequence[tuple[WorkerSeries, str]], name: str, verdict: LeakVerdict) -> int | None:
    """Bytes per call: the median over the workers that share the prefix's verdict (a leak's
    confirmed figure), else the pooled verdict's, else what the calls left behind on average
    (on single-threaded workers: shared figures say nothing of one prefix's calls)."""
    values = [v for v in (own_per_call(s) for s, n in rows if n == name) if v is not None]
    if values:
        return int(statistics.median(values))
    shared = any(s.shared for s, _ in rows)
    if verdict.per_call is not None and (name == "leak" or not shared):
        return verdict.per_call  # a leak confirmed over several workers' calls together, or a pooled verdict
    if shared:
        return None
    calls = sum(s.calls - s.errors for s, _ in rows)
    return sum(s.retained for s, _ in rows) // calls if calls > 0 else None


def held_by_leaks(rows: Mapping[str, WorkerSeries]) -> dict[str, int]:
    """``{prefix: bytes}`` one worker's confirmed leaks left behind: per call times calls."""
    return {name: (s.verdict.per_call or 0) * max(0, s.calls - s.errors) for name, s in rows.items()
            if s.verdict.leaking}
