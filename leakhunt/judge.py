"""One judgement for every front end: a measurement, a budget and a hunt verdict in; a verdict
and a structured explanation out.

The ``memory_budget`` decorator and context manager, the pytest plugin, ``leakhunt run --budget``
and the Dask integration all call :func:`judge`; none of them decides a verdict or builds an
explanation itself. Renderers (the failure text, the JSON and HTML reports) take the
:class:`Judgement`'s :class:`~leakhunt.explanation.Explanation`.

Deciding a retained figure (rss, traced, arrow) over its limit, when the block's own survivors do
not account for the excess and the block can be called again (``again``): a second call tells
one-time initialisation (first import, first use of a pool or cache: gone on the second call)
from memory the block keeps every time it runs (native memory, or a library's cache it fills).
The second call is made after the explanation is taken, so what it does never shows in it.
"""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Sequence

from leakhunt.budget import Budget, MemoryBudgetExceeded, Violation, check
from leakhunt.explanation import FIGURE_LABELS, Explanation, Figure, Root
from leakhunt.units import format_size

if TYPE_CHECKING:
    from leakhunt.attribution import Scope, Survivors
    from leakhunt.hunt import LeakVerdict
    from leakhunt.measure import Measurement
    from leakhunt.tracing import PeakSnapshots

__all__ = ["Judgement", "VERDICTS", "judge", "RETAINED", "hint_for"]

#: verdict -> what it means (the docs list the same table)
VERDICTS: dict[str, str] = {
    "ok": "measured, within every budget, not found leaking",
    "over_budget": "broke its memory budget: the test failed",
    "leak": "growth confirmed call after call under leak hunting: the test failed",
    "warmup_or_bounded_cache": "grew in the first window of repeats but not in the confirmation: not a leak",
    "not_hunted": "failed, skipped or not repeatable, so not hunted (a failed test keeps its frames alive)",
    "opted_out": "marked no_leak_check: not measured",
    "not_measured": "the test body did not run (skipped or failed in setup)",
}

#: Figures of memory a block keeps after it ends (a peak and the children's memory are gone).
RETAINED = ("rss", "traced", "arrow")

_HINTS = {
    "groupby": "a GroupBy object holds its whole frame; keep the aggregated result, not the GroupBy",
    "view": "a slice or view keeps its whole parent buffer; store .copy() or plain values instead",
    "arrow_slice": "an Arrow slice keeps every buffer of its parent; keep a copy "
                   "(pa.Table.from_pylist(t.slice(...).to_pylist()), or .take(...)) instead",
    "cache": "a cache holds big values; bound it (maxsize) or cache something smaller",
    "closure": "a function (a callback, a lambda) keeps every variable it closes over alive; "
               "pass it small values, or drop the function when done",
    "list": "a module-level list keeps everything appended to it; clear it when done, or keep small "
            "summaries (numbers, .copy() of a few rows) instead of whole objects",
    "dict": "a module-level dict keeps every value stored in it; delete entries when done, or bound it",
    "local": "a variable still in scope holds it; del it, or measure after the function returns",
    "attribute": "an object that outlives the block holds it through an attribute; drop the reference "
                 "when done",
}


def hint_for(roots: Sequence[Root], figures: set[str], *, native: bool = False, looked: bool = True) -> str:
    """The fix hint: from the pattern of the biggest root's path; else from the figures broken.
    ``native``: survivors were looked for and none holds the growth; ``looked``: they were
    looked for at all."""
    own = [r for r in roots if not r.library] or list(roots)
    if own:
        return _HINTS.get(own[0].pattern, _HINTS["attribute"])
    if figures == {"peak"}:
        return "the memory was freed, but too much was alive at once: process in chunks or stream instead"
    if "children" in figures and not figures & set(RETAINED):
        return ("child processes hold the memory: bound the work in flight, or recycle workers "
                "(max_tasks_per_child)")
    if "arrow" in figures:
        return ("Arrow memory is alive that no Python object of this block holds: a table cached by a "
                "library, or the pool keeping freed memory (pa.default_memory_pool().release_unused())")
    if native:
        return ("no Python object of this block holds the growth: native memory (a C extension), "
                "memory a library keeps, or fragmentation the allocator could not give back")
    if not looked:
        return ("what keeps the memory was not looked for: let leakhunt call the block again traced "
                "(drop --leak-no-rerun), or trace it (pytest --leak-trace)")
    return "the growth is many small objects: look at the allocation sites and the types that grew"


@dataclass(frozen=True)
class Judgement:
    """The outcome: ``verdict`` (a key of :data:`VERDICTS`), the broken limits, the explanation."""

    title: str
    verdict: str
    measurement: Measurement | None = None
    budget: Budget | None = None
    violations: tuple[Violation, ...] = ()
    hunt: LeakVerdict | None = None
    explanation: Explanation | None = None
    notes: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.verdict in ("over_budget", "leak")

    def text(self) -> str:
        if self.explanation is not None:
            return str(self.explanation)
        return f"{self.title}: {self.verdict}"

    def error(self) -> MemoryBudgetExceeded:
        """The exception a front end raises for a failed judgement."""
        return MemoryBudgetExceeded(self.text(), self.measurement, list(self.violations))

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "verdict": self.verdict,
            "violations": [{"figure": v.figure, "value": v.value, "limit": v.limit} for v in self.violations],
            "measurement": self.measurement.to_dict() if self.measurement is not None else None,
            "budget": self.budget.to_dict() if self.budget is not None else None,
            "hunt": self.hunt.to_dict() if self.hunt is not None else None,
            "explanation": self.explanation.to_dict() if self.explanation is not None else None,
            "notes": list(self.notes),
        }


def judge(
    measurement: Measurement | None = None,
    budget: Budget | None = None,
    verdict: LeakVerdict | None = None,
    *,
    title: str = "the block",
    scope: Scope | None = None,
    peak: PeakSnapshots | None = None,
    again: Callable[[], Any] | None = None,
    explain: bool = True,
    named: dict[str, Any] | None = None,
) -> Judgement:
    """Judge a block: its figures against ``budget`` and, when it was hunted, the hunt's verdict.

    ``scope`` (from :class:`leakhunt.measure.Measurer` with ``attribute=True``) lets the
    explanation show only the block's own survivors; ``peak`` the allocations alive at its
    high-water mark. ``again`` calls the block once more: used only to tell one-time
    initialisation from a retained figure no survivor of the block explains. ``named`` objects
    count as roots in the explanation (a test's fixture values). The scope is closed before
    returning.
    """
    try:
        return _judge(measurement, budget, verdict, title, scope, peak, again, explain, named)
    finally:
        if scope is not None:
            scope.close()


def _judge(measurement: Measurement | None, budget: Budget | None, verdict: LeakVerdict | None, title: str,
           scope: Scope | None, peak: PeakSnapshots | None, again: Callable[[], Any] | None,
           explain: bool, named: dict[str, Any] | None) -> Judgement:
    violations = check(measurement, budget) if measurement is not None and budget is not None else []
    notes: list[str] = []
    explanation = None
    if violations and measurement is not None:
        violations, explanation = _decide(measurement, budget, violations, title, scope, peak, again, explain,
                                          named)
    if violations:
        name = "over_budget"
    elif verdict is not None and verdict.leaking:
        name = "leak"
        violations = [Violation("leak", verdict.per_call or 0, verdict.threshold)]
        explanation = _explain_leak(verdict, title) if explain else None
    elif verdict is not None and verdict.suspect:
        name = "warmup_or_bounded_cache"
        if verdict.cleared_note:
            notes.append(verdict.cleared_note)
    else:
        name = "ok"
        if explanation is not None:  # a limit broken on the first call was not confirmed
            notes.extend(explanation.notes)
            explanation = None
    return Judgement(title=title, verdict=name, measurement=measurement, budget=budget,
                     violations=tuple(violations), hunt=verdict, explanation=explanation, notes=tuple(notes))


def _decide(measurement: Measurement, budget: Budget | None, violations: list[Violation], title: str,
            scope: Scope | None, peak: PeakSnapshots | None, again: Callable[[], Any] | None,
            explain: bool, named: dict[str, Any] | None) -> tuple[list[Violation], Explanation | None]:
    """Confirm and explain broken limits. Returns the limits that stand, and the explanation.

    A retained figure over its limit stands when the block's own survivors account for the
    excess; otherwise a second call decides: if it keeps the figure within the limit, the first
    call's excess was one-time initialisation (or another thread's memory) and is not counted.
    When the block was not traced, the second call is traced and explains (only what *it*
    created is shown, so its repeated side effects never double what is shown).
    """
    notes: list[str] = []
    figures = {v.figure for v in violations}
    retained = [v for v in violations if v.figure in RETAINED]
    traced_first = scope is not None and scope.fresh
    rerun: Measurement | None = None
    # a peak source that saw the first call's own peak (leakhunt.native) explains a broken peak
    peak_seen = "peak" in figures and peak is not None and bool(peak.sites)
    if not traced_first and again is not None and not (peak_seen and figures == {"peak"}):
        try:
            rerun, scope, rerun_peak = _traced_call(again, budget, peak_sites="peak" in figures and not peak_seen)
            peak = peak if peak_seen else rerun_peak
        except Exception as exc:
            notes.append(f"calling the block a second time, traced, to explain it failed: {type(exc).__name__}: {exc}")
            scope = None
            peak = peak if peak_seen else None
        else:
            looked_for = "what keeps the memory" if retained else "what was alive at its peak"
            notes.append(f"leakhunt called it a second time, traced, to find {looked_for} "
                         f"(shown: what that call made)")
    try:
        survivors = _survivors(scope, violations, named)
        own = sum(r.size for r in survivors.roots if not r.library) if survivors is not None else 0
        stands = list(violations)
        if retained and (traced_first or rerun is not None):
            excess = max(v.value - v.limit for v in retained)
            second = rerun
            if second is None and again is not None and own < excess:
                if scope is not None:
                    scope.close()  # the first call's trace: the second call is measured on its own
                try:
                    second = _untraced_call(again, budget)
                except Exception as exc:
                    notes.append(f"calling the block a second time failed: {type(exc).__name__}: {exc}")
            if second is not None and own < excess:
                kept = {v.figure: v for v in check(second, budget) if v.figure in RETAINED}  # type: ignore[arg-type]
                first = max(retained, key=lambda v: v.value - v.limit)
                if not kept:
                    stands = [v for v in violations if v.figure not in RETAINED]
                    why = ("threads older than the block allocated it" if second.excluded
                           else "first imports, pools, caches: one-time initialisation")
                    notes.append(f"{FIGURE_LABELS[first.figure]} {format_size(first.value)} on the first call, "
                                 f"{format_size(second.figure(first.figure))} on a second: not counted ({why})")
                else:
                    value = kept[first.figure].value if first.figure in kept else max(v.value for v in kept.values())
                    notes.append(f"a second call kept {format_size(value)} too: not one-time initialisation")
        explanation = None
        if explain and stands:
            explanation = _explain_budget(measurement, budget, stands, title, scope, peak, survivors, rerun)
            explanation = replace(explanation, notes=tuple(notes) + explanation.notes)
        elif notes:
            explanation = Explanation(title=title, headline="", notes=tuple(notes))
        return stands, explanation
    finally:
        if scope is not None:
            scope.close()


def _traced_call(again: Callable[[], Any], budget: Budget | None,
                 peak_sites: bool) -> tuple[Measurement, Scope | None, PeakSnapshots | None]:
    from leakhunt.measure import Measurer

    measurer = Measurer.exact(trace=True, children=budget is not None and budget.children is not None,
                              peak_sites=peak_sites)
    measurer.start()
    try:
        again()
    except BaseException:
        measurer.stop()
        measurer.close()
        raise
    return measurer.stop(), measurer.scope, measurer.peak


def _untraced_call(again: Callable[[], Any], budget: Budget | None) -> Measurement:
    from leakhunt.measure import Measurer

    measurer = Measurer.exact(trace=budget is not None and budget.traced is not None)
    measurer.start()
    try:
        again()
    finally:
        second = measurer.stop()
        measurer.close()
    return second


def _survivors(scope: Scope | None, violations: Sequence[Violation],
               named: dict[str, Any] | None = None) -> Survivors | None:
    """The block's survivors, when a retained figure broke and attribution is possible."""
    if scope is None or not any(v.figure in RETAINED for v in violations):
        return None
    from leakhunt.attribution import survivors

    try:
        return survivors(scope, named=named)
    except Exception:  # a walk that went wrong must never hide the failure itself
        return None


def _figures(measurement: Measurement, budget: Budget | None) -> tuple[Figure, ...]:
    limits = budget.limits() if budget is not None else {}
    out = []
    for name in ("rss", "peak", "traced", "arrow", "children"):
        value = measurement.figure(name)
        if value is None and name not in limits:
            continue
        out.append(Figure(name, value, limits.get(name)))
    return tuple(out)


def _where(measurement: Measurement) -> dict[str, int | None]:
    where: dict[str, int | None] = {}
    domains = measurement.traced_growth_by_domain
    traced = measurement.figure("traced")
    if domains is not None:
        for key in ("numpy", "python", "pandas", "other"):
            if domains.get(key) or key in ("numpy", "python"):
                where[key] = max(0, domains.get(key, 0))  # frees of older objects are not the block's
        if measurement.excluded:  # what older threads allocated is not where the block's memory lives
            where["python"] = max(0, (where.get("python") or 0) - measurement.excluded)
    else:
        where["traced"] = traced
    where["arrow"] = measurement.arrow_growth
    rss = measurement.figure("rss")
    if rss is not None and traced is not None:
        where["unaccounted"] = max(0, rss - traced - (measurement.arrow_growth or 0))
    if measurement.allocator_retention:
        where["allocator_retention"] = measurement.allocator_retention
    return where


def _sites(scope: Scope | None) -> tuple[Any, ...]:
    """The user's lines with the most memory alive: the block's own when its trace is fresh,
    everything alive under a trace the user runs; never what older threads allocated."""
    if scope is None or not tracemalloc.is_tracing():
        return ()
    from leakhunt.tracing import summarise

    try:
        spans = scope.foreign_spans() if scope.active_threads() else ()
        exclude = (lambda frames: scope.foreign(frames, spans)) if spans else None
        _, sites, _ = summarise(tracemalloc.take_snapshot(), limit=5, user_only=True, exclude=exclude)
    except Exception:
        return ()
    return sites


def _explain_budget(measurement: Measurement, budget: Budget | None, violations: Sequence[Violation], title: str,
                    scope: Scope | None, peak: PeakSnapshots | None, survivors: Survivors | None,
                    rerun: Measurement | None = None) -> Explanation:
    from leakhunt.attribution import created_types

    figures = {v.figure for v in violations}
    notes: list[str] = []
    roots: tuple[Root, ...] = ()
    unexplained = ""
    retained = figures & set(RETAINED)
    if survivors is not None:
        roots = survivors.roots
        if survivors.skipped:
            notes.append(f"{format_size(survivors.skipped)} more in smaller buffers not searched")
        if survivors.unrooted:
            notes.append(f"no root found for {format_size(survivors.unrooted)} of the block's buffers within the "
                         f"search's bounds")
        if not roots:
            unexplained = ("no buffer this block created is still alive: the growth is many small objects "
                           "(see the allocation sites and the types that grew) or native memory")
    elif retained:
        unexplained = "not looked for: the block was not measured with attribution"
    if measurement.excluded:
        notes.append(f"{format_size(measurement.excluded)} that threads older than the block allocated during it "
                     f"is not counted ({', '.join(scope.active_threads()) if scope is not None else 'threads'})")
    if rerun is not None:
        differs = [f"{FIGURE_LABELS[v.figure]} {format_size(rerun.figure(v.figure))}" for v in violations
                   if _differs(rerun.figure(v.figure), v.value)]
        if differs:
            notes.append("the traced second call read " + ", ".join(differs) + " (the figures above are the first call's)")
    sites = _sites(scope) if retained else ()
    traced = bool(scope is not None and scope.fresh)
    if retained and not traced:
        if sites:
            traced = True
            notes.append("the allocation sites include memory older than the block: tracemalloc was started "
                         "by you, so leakhunt did not restart it")
        else:
            notes.append("allocation sites: not traced")
    peak_sites = ()
    if "peak" in figures and getattr(peak, "unavailable", None):
        notes.append(f"the peak's sites: {peak.unavailable}")
    if "peak" in figures:
        notes.extend(getattr(peak, "notes", ()))  # what a peak source could not see (leakhunt.native)
    if "peak" in figures and peak is not None:
        peak_sites = peak.sites
        if peak.traced_peak and peak.level and peak.level < 0.9 * peak.traced_peak:
            notes.append(f"the snapshot of the peak holds {format_size(peak.level)} of the traced peak "
                         f"{format_size(peak.traced_peak)} (it was sampled every {peak.interval * 1000:g} ms)")
        if not peak_sites and peak.traced_peak is not None and (measurement.peak or 0) > 2 * peak.traced_peak:
            notes.append("most of the peak was not traced memory (Arrow's pool or native allocations)")
    types = created_types(scope) if (scope is not None and retained and scope.fresh) else ()
    where = _where(rerun if rerun is not None else measurement) if retained else {}
    native = bool(retained and survivors is not None and not roots)
    return Explanation(
        title=title,
        headline="broke its memory budget",
        figures=_figures(measurement, budget),
        where=where,
        roots=roots,
        unexplained=unexplained,
        sites=sites,
        peak_sites=peak_sites,
        type_growth=types,
        hint=hint_for(roots, figures, native=native, looked=survivors is not None or not retained),
        notes=tuple(notes),
        traced=traced or bool(peak_sites),
    )


def _differs(a: int | None, b: int | None) -> bool:
    if a is None or b is None:
        return False
    return abs(a - b) > max(0.1 * abs(b), 1 << 20)


def _explain_leak(verdict: LeakVerdict, title: str) -> Explanation:
    from leakhunt.hunt import NAMES, series_text

    notes = [f"{verdict.evidence or 'confirmed over a second window of calls'}; {verdict.calls} calls in all"]
    for name, values in verdict.series.items():
        slope, steps = series_text(name, values)
        notes.append(f"{name}: {slope}/call; per call: {steps}")
    roots = tuple(verdict.roots)
    if roots:
        notes.append(f"survivors of the {verdict.explained_calls} calls of the confirmation "
                     f"window{'s' if verdict.windows > 1 else ''}")
    return Explanation(
        title=title,
        headline=(f"leaks {format_size(verdict.per_call)} per call (threshold {format_size(verdict.threshold)}), "
                  f"seen in {NAMES.get(verdict.accounting or '', 'no accounting')}"),
        figures=(Figure("leak", verdict.per_call, verdict.threshold),),
        roots=roots,
        unexplained="" if roots else "no buffer the calls created is still alive: the growth is many small "
                                     "objects (see the allocation sites) or native memory",
        sites=tuple(verdict.sites),
        type_growth=tuple(verdict.types),
        hint=hint_for(roots, {verdict.accounting or "rss"}, native=not roots),
        notes=tuple(notes),
        traced=bool(verdict.sites),
    )
