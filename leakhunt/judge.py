"""The judgement: figures, a budget, a hunt's verdict and the evidence gathered in; a verdict and a
structured explanation out. Pure: it measures nothing and runs no code of the user's.

:class:`leakhunt.lifecycle.Block` gathers the evidence (the second call, the survivors, the
sites) and calls :func:`judge` once; every front end (the ``memory_budget`` decorator and
context manager, the pytest plugin, ``leakhunt run``, Dask's per-prefix verdicts) goes through
it. Renderers take the :class:`Judgement`'s :class:`~leakhunt.explanation.Explanation`.

The one rule for a retained figure over its limit (the same whatever the options): what the
block's own survivors hold counts; when they do not account for the excess and the block was
called a second time, the second call decides - within the limit, the first call's excess was
one-time initialisation (first imports, pools, a library's caches) or other threads' memory and
is not counted; over it, the excess stands. What the block put into a cache of the user's is
among what its roots hold (:mod:`leakhunt.caches`): a second call would only hit it. Without a second call, what modules loaded during the
block hold is not counted either (a module imported inside a test), so the verdict does not
depend on whether the block could be called again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Sequence

from leakhunt.budget import FIGURES, Budget, MemoryBudgetExceeded, Violation, check
from leakhunt.explanation import FIGURE_LABELS, Explanation, Figure, Root, Site
from leakhunt.hints import advice, hint_for
from leakhunt.units import format_size

if TYPE_CHECKING:
    from leakhunt.attribution import Survivors
    from leakhunt.hunt import LeakVerdict
    from leakhunt.measure import Measurement

__all__ = ["Evidence", "Judgement", "PeakEvidence", "RETAINED", "VERDICTS", "Verdict", "hint_for", "hunted",
           "judge", "standing", "unjudged"]


class Verdict(str, enum.Enum):
    """Every state a judged block (or test) can end in. A ``str``: ``verdict == "ok"`` holds,
    and JSON writes the value."""

    OK = "ok"
    OVER_BUDGET = "over_budget"
    LEAK = "leak"
    WARMUP_OR_BOUNDED_CACHE = "warmup_or_bounded_cache"
    NOT_HUNTED = "not_hunted"
    NOT_JUDGED = "not_judged"
    OPTED_OUT = "opted_out"
    NOT_MEASURED = "not_measured"
    # a series of calls one watches rather than makes (a Dask task prefix)
    UNCONFIRMED = "unconfirmed"
    TOO_FEW_CALLS = "too_few_calls"
    GIVEN_BACK = "given_back"

    def __str__(self) -> str:
        return self.value

    @property
    def meaning(self) -> str:
        return VERDICTS[self.value]

    @property
    def failed(self) -> bool:
        return self in (Verdict.OVER_BUDGET, Verdict.LEAK)


#: verdict -> what it means: the one table (the reports, the docs and Dask read it from here)
VERDICTS: dict[str, str] = {
    "ok": "measured, within every budget, not found leaking",
    "over_budget": "broke its memory budget: the test failed",
    "leak": "growth confirmed call after call under leak hunting: the test failed",
    "warmup_or_bounded_cache": "grew in the first window of repeats but not in the confirmation: not a leak",
    "not_hunted": "hunting was asked for, but the body failed, skipped itself, or failed when repeated "
                  "(a failed test keeps its frames alive)",
    "not_judged": "the body failed, skipped itself or failed as expected (xfail): its figures are shown, "
                  "its budget is not checked (a failed test keeps its frames alive)",
    "opted_out": "marked no_leak_check: not measured",
    "not_measured": "the body did not run (skipped or failed in setup)",
    # States of a series of calls one watches rather than makes (a Dask task prefix):
    "unconfirmed": "grew over a window of calls; the calls stopped before a confirming window was done: "
                   "neither a leak nor cleared",
    "too_few_calls": "fewer calls than a hunt needs (warm-up and a window of calls): not judged",
    "given_back": "grew call after call, but the memory was given back before the watch ended (held for "
                  "later work, such as a shuffle's buffers): not a leak",
}

_KIND_PLACE = {"python": "python", "numpy": "numpy", "polars": "polars", "bytes": "bytes", "mmap": "memmaps",
               "nbytes": "other arrays", "arrow-object": "arrow"}

def unjudged(*, passed: bool, measured: bool, hunted: bool) -> Verdict:
    """The verdict of a block that was not judged (no budget checked, no hunt made).

    A body that did not pass - it failed, skipped itself from inside, or failed as expected
    (xfail) - is never ``ok``: a failed test keeps its frames alive, so its figures are shown
    but say nothing about a budget or a leak. ``hunted``: leak hunting was asked for.
    """
    if not measured:
        return Verdict.NOT_MEASURED
    if passed:
        return Verdict.OK
    return Verdict.NOT_HUNTED if hunted else Verdict.NOT_JUDGED


#: Figures of memory a block keeps after it ends (a peak and the children's memory are gone).
RETAINED = ("rss", "traced", "arrow", "file")
_FILE_SHOWN = 1024 * 1024


@dataclass(frozen=True)
class PeakEvidence:
    """The allocations alive at a block's traced high-water mark (from a peak sampler)."""

    sites: tuple[Site, ...] = ()
    level: int = 0  # traced bytes the snapshot of the peak holds
    traced_peak: int | None = None  # the true traced peak
    interval: float = 0.0  # seconds between samples
    notes: tuple[str, ...] = ()  # what the peak source could not see (leakhunt.native.NativePeakSource)

    @classmethod
    def of(cls, peak: Any) -> PeakEvidence | None:
        """From a :class:`leakhunt.tracing.PeakSnapshots` (or anything with the same fields: a
        :class:`leakhunt.native.NativePeakSource` also has ``notes`` and ``unavailable``)."""
        if peak is None:
            return None
        notes = tuple(getattr(peak, "notes", ()))
        if getattr(peak, "unavailable", None):
            notes += (f"the peak's sites: {peak.unavailable}",)
        return cls(sites=tuple(peak.sites), level=int(peak.level or 0), traced_peak=peak.traced_peak,
                   interval=float(getattr(peak, "interval", 0.0)), notes=notes)


@dataclass(frozen=True)
class Evidence:
    """What :class:`leakhunt.lifecycle.Block` gathered beside the first measurement.

    ``second`` is a second call's measurement (``second_traced``: the traced one that explains);
    ``survivors`` what the block (or its traced call) left alive, grouped by root (``None``: not
    looked for); ``sites`` the biggest allocation sites still alive (``user_trace``: from a
    trace the user started, so older memory is in them too); ``traced`` whether sites could be
    had at all; ``types`` the objects that grew; ``peak`` the allocations alive at the peak;
    ``threads`` older threads that ran during the block; ``hunt_error`` why a hunt that was
    asked for could not run.
    """

    second: Measurement | None = None
    second_traced: bool = False
    survivors: Survivors | None = None
    sites: tuple[Site, ...] = ()
    user_trace: bool = False
    traced: bool = False
    types: tuple[tuple[str, int], ...] = ()
    peak: PeakEvidence | None = None
    threads: tuple[str, ...] = ()
    hunt_error: str | None = None
    notes: tuple[str, ...] = ()
    explain_kept: bool = False  # explain what the block keeps even within its budget (leakhunt run)
    #: bytes the first call's survivors hold under the user's roots, counted the same way
    #: whether it was traced or not (:attr:`leakhunt.attribution.Survivors.attributable`); a
    #: traced second call's survivors are ``survivors`` (``second_traced``)
    first_own: int | None = None
    #: anonymous memory the imports during the block took, measured (``leakhunt run``)
    imports: int | None = None
    #: the front end whose options an explanation's advice names (leakhunt.hints.ADVICE)
    front: str = "api"
    #: bytes the first call's survivors hold under modules loaded during the block (their code
    #: and state: :attr:`leakhunt.attribution.Survivors.imports`); None: not looked for
    first_imports: int | None = None


@dataclass(frozen=True)
class Judgement:
    """The outcome: ``verdict``, the broken limits, the hunt's verdict, the explanation."""

    title: str
    verdict: Verdict
    measurement: Measurement | None = None
    budget: Budget | None = None
    violations: tuple[Violation, ...] = ()
    hunt: LeakVerdict | None = None
    explanation: Explanation | None = None
    notes: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.verdict.failed

    def text(self) -> str:
        from leakhunt.report.explain_text import judgement_text

        return judgement_text(self)

    def error(self) -> MemoryBudgetExceeded:
        """The exception a front end raises for a failed judgement."""
        return MemoryBudgetExceeded(self.text(), self.measurement, list(self.violations))

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "verdict": self.verdict.value,
            "violations": [{"figure": v.figure, "value": v.value, "limit": v.limit} for v in self.violations],
            "measurement": self.measurement.to_dict() if self.measurement is not None else None,
            "budget": self.budget.to_dict() if self.budget is not None else None,
            "hunt": self.hunt.to_dict() if self.hunt is not None else None,
            "explanation": self.explanation.to_dict() if self.explanation is not None else None,
            "notes": list(self.notes),
        }


def standing(measurement: Measurement, budget: Budget | None,
             evidence: Evidence) -> tuple[list[Violation], list[str]]:
    """The broken limits that stand after the second-call rule (see the module's docstring), and
    notes saying how the rule was applied."""
    violations = check(measurement, budget) if budget is not None else []
    retained = [v for v in violations if v.figure in RETAINED]
    second = evidence.second
    if not retained or _kept_by_roots(evidence, retained):
        return violations, []
    if second is None:  # no second call (--leak-no-rerun): modules loaded are still not the block's growth
        loaded = _loaded(evidence, retained)
        return ([v for v in violations if v.figure not in RETAINED], [loaded]) if loaded else (violations, [])
    assert budget is not None
    kept = {v.figure: v for v in check(second, budget) if v.figure in RETAINED}
    first = max(retained, key=lambda v: v.value - v.limit)
    if not kept:
        why = ("threads older than the block allocated it" if second.excluded
               else "first imports, pools, caches: one-time initialisation")
        note = (f"{FIGURE_LABELS[first.figure]} {format_size(first.value)} on the first call, "
                f"{format_size(second.figure(first.figure))} on a second: not counted ({why})")
        return [v for v in violations if v.figure not in RETAINED], [note]
    value = kept[first.figure].value if first.figure in kept else max(v.value for v in kept.values())
    return violations, [f"a second call kept {format_size(value)} too: not one-time initialisation"]


def _loaded(evidence: Evidence, retained: Sequence[Violation]) -> str | None:
    """The note when modules loaded during the block hold the excess (a module imported inside a
    test): code and module state, loaded once, not counted (as a second call would find); else None."""
    excess = max(v.value - v.limit for v in retained)
    # measured per import where the front end meters them (leakhunt run, whose script is itself
    # a module made during the block); else what the first call's survivors under new modules hold
    loaded = evidence.imports if evidence.imports is not None else evidence.first_imports
    if loaded is None or loaded < excess:
        return None
    return f"modules loaded during the block hold {format_size(loaded)}: code and module state, loaded once: not counted"


def _kept_by_roots(evidence: Evidence, retained: Sequence[Violation]) -> bool:
    """Do the user's roots keep the excess: what the first call left (counted alike traced or
    not), or what a traced second call made?"""
    excess = max(v.value - v.limit for v in retained)
    if evidence.first_own is not None and evidence.first_own >= excess:
        return True
    return bool(evidence.second_traced and evidence.survivors is not None
                and evidence.survivors.user_rooted >= excess)


def judge(
    measurement: Measurement | None = None,
    budget: Budget | None = None,
    verdict: LeakVerdict | None = None,
    *,
    title: str = "the block",
    evidence: Evidence | None = None,
    explain: bool = True,
) -> Judgement:
    """Judge a block: its figures against ``budget`` (with the ``evidence`` the lifecycle
    gathered) and, when it was hunted, the hunt's ``verdict``. Pure: the same inputs always give
    the same judgement."""
    evidence = evidence if evidence is not None else Evidence()
    violations, notes = standing(measurement, budget, evidence) if measurement is not None else ([], [])
    notes = list(evidence.notes) + notes
    explanation: Explanation | None = None
    if violations:
        name = Verdict.OVER_BUDGET
        if explain:
            explanation = explain_budget(measurement, budget, violations, title, evidence, notes)  # type: ignore[arg-type]
    elif evidence.hunt_error is not None:
        name = Verdict.NOT_HUNTED
        notes.append(evidence.hunt_error)
    elif verdict is not None:
        name = hunted(verdict)
        if name is Verdict.LEAK:
            violations = [Violation("leak", verdict.per_call or 0, verdict.threshold)]
            explanation = explain_leak(verdict, title) if explain else None
        elif name is Verdict.WARMUP_OR_BOUNDED_CACHE and verdict.cleared_note:
            notes.append(verdict.cleared_note)
    else:
        name = Verdict.OK
    if name is Verdict.OK and explain and evidence.explain_kept and measurement is not None \
            and (measurement.figure("rss") or 0) > 0:
        explanation = explain_kept(measurement, budget, title, evidence, notes)
    return Judgement(title=title, verdict=name, measurement=measurement, budget=budget,
                     violations=tuple(violations), hunt=verdict, explanation=explanation,
                     notes=tuple(notes) if explanation is None else ())


def hunted(verdict: LeakVerdict) -> Verdict:
    """The verdict a hunt's outcome gives (a hunt made, or a series of calls watched)."""
    if verdict.given_back:
        return Verdict.GIVEN_BACK
    if verdict.leaking:
        return Verdict.LEAK
    if not verdict.series:
        return Verdict.TOO_FEW_CALLS
    if verdict.suspect:
        return Verdict.WARMUP_OR_BOUNDED_CACHE if verdict.cleared_note is not None else Verdict.UNCONFIRMED
    return Verdict.OK


# --------------------------------------------------------------------------------------
# explanations (data; rendered by leakhunt.explanation and the report renderers)


def _figures(measurement: Measurement, budget: Budget | None) -> tuple[Figure, ...]:
    limits = budget.limits() if budget is not None else {}
    out = []
    for name in FIGURES:
        value = measurement.figure(name)
        if name not in limits and (value is None or (name == "file" and abs(value) < _FILE_SHOWN)):
            continue  # file-backed pages are news only when a budget limits them, or they are many
        out.append(Figure(name, value, limits.get(name), budget.spelled(name) if budget is not None else None))
    return tuple(out)


def _where(measurement: Measurement, survivors: Survivors | None = None) -> dict[str, int | None]:
    where: dict[str, int | None] = {}
    domains = measurement.traced_growth_by_domain
    traced = measurement.figure("traced")
    if domains is None and traced is None and survivors is not None and survivors.by_kind:
        # untraced: where the survivors the roots keep live, by kind
        where.update({_KIND_PLACE.get(kind, kind): size for kind, size in survivors.by_kind if kind != "arrow"})
        where["arrow"] = measurement.arrow_growth
        if measurement.allocator_retention:
            where["allocator_retention"] = measurement.allocator_retention
        return where
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


def _roots_part(evidence: Evidence, retained: bool) -> tuple[tuple[Root, ...], str, list[str]]:
    """The roots, what is said instead of them, and notes on the search."""
    survivors = evidence.survivors
    notes: list[str] = []
    if survivors is None:
        return (), ("not looked for: the block was not measured with attribution" if retained else ""), notes
    if survivors.skipped:
        notes.append(f"{format_size(survivors.skipped)} more was not searched: the search's time ran out")
    unexplained = ""
    if not survivors.roots and not evidence.traced and not survivors.data_told:
        unexplained = ("no object of the block that leakhunt can tell apart untraced holds it: arrays and Arrow "
                       f"objects put into older containers are told apart by a trace ({advice(evidence.front, 'trace')})")
    elif not survivors.roots:
        unexplained = ("no buffer this block created is still alive: the growth is many small objects "
                       "(see the allocation sites and the types that grew) or native memory")
    return survivors.roots, unexplained, notes


def _sites_notes(evidence: Evidence, retained: bool) -> tuple[bool, list[str]]:
    traced = evidence.traced
    notes: list[str] = []
    if retained and not traced and evidence.sites and evidence.user_trace:
        traced = True
        notes.append("the allocation sites include memory older than the block: tracemalloc was started "
                     "by you, so leakhunt did not restart it")
    return traced, notes


def _peak_notes(measurement: Measurement, peak: PeakEvidence | None) -> list[str]:
    if peak is None:
        return []
    notes = []
    if peak.traced_peak and peak.level and peak.level < 0.9 * peak.traced_peak:
        notes.append(f"the snapshot of the peak holds {format_size(peak.level)} of the traced peak "
                     f"{format_size(peak.traced_peak)} (it was sampled every {peak.interval * 1000:g} ms)")
    if not peak.sites and peak.traced_peak is not None and (measurement.peak or 0) > 2 * peak.traced_peak:
        notes.append("most of the peak was not traced memory (Arrow's pool or native allocations)")
    return notes + list(peak.notes)


def _differs(a: int | None, b: int | None) -> bool:
    if a is None or b is None:
        return False
    return abs(a - b) > max(0.1 * abs(b), 1 << 20)


def _second_notes(evidence: Evidence, violations: Sequence[Violation]) -> list[str]:
    second = evidence.second
    if second is None or not evidence.second_traced:
        return []
    differs = [f"{FIGURE_LABELS[v.figure]} {format_size(second.figure(v.figure))}" for v in violations
               if _differs(second.figure(v.figure), v.value)]
    if not differs:
        return []
    return ["the traced second call read " + ", ".join(differs) + " (the figures above are the first call's)"]


def _excluded_notes(measurement: Measurement, evidence: Evidence) -> list[str]:
    """What threads older than the block allocated during it, which is not counted."""
    if not measurement.excluded:
        return []
    threads = ", ".join(evidence.threads) or "threads"
    return [f"{format_size(measurement.excluded)} that threads older than the block allocated during it "
            f"is not counted ({threads})"]


def explain_budget(measurement: Measurement, budget: Budget | None, violations: Sequence[Violation], title: str,
                   evidence: Evidence, notes: Sequence[str] = ()) -> Explanation:
    """Why a block broke its budget: from its figures and the evidence gathered."""
    figures = {v.figure for v in violations}
    retained = bool(figures & set(RETAINED))
    roots, unexplained, root_notes = _roots_part(evidence, retained)
    extra = [*notes, *root_notes, *_excluded_notes(measurement, evidence), *_second_notes(evidence, violations)]
    traced, site_notes = _sites_notes(evidence, retained)
    extra += site_notes
    peak_sites: tuple[Site, ...] = ()
    if "peak" in figures and evidence.peak is not None:
        peak_sites = evidence.peak.sites
        extra += _peak_notes(measurement, evidence.peak)
    second = evidence.second if evidence.second_traced else None
    # every byte of the figure that broke the budget (the first call's), the roots as the call
    # shown found them (a traced second call's pymalloc arenas and malloc heap are warm: it
    # keeps less than the first call did of the same memory)
    accounting = _accounting(measurement, evidence) if retained else ()
    unaccounted = ((measurement.figure("rss") or 0) - sum(size for _, size in accounting)) if accounting else None
    return Explanation(
        title=title,
        headline="broke its memory budget",
        figures=_figures(measurement, budget),
        where=_where(second if second is not None else measurement, evidence.survivors) if retained else {},
        roots=roots,
        unexplained=unexplained,
        sites=evidence.sites if retained else (),
        peak_sites=peak_sites,
        type_growth=evidence.types if retained else (),
        hint=_hint(roots, figures, evidence, retained, unaccounted, traced, _allocator_kept(measurement, accounting)),
        notes=tuple(extra),
        traced=traced or bool(peak_sites),
        accounting=accounting,
        accounted_of=measurement.figure("rss") if accounting else None,
    )


def _allocator_kept(measurement: Measurement, accounting: tuple[tuple[str, int], ...]) -> str | None:
    """The allocator's place (pymalloc's, the native allocators') whose free memory is most of
    the kept figure, more than any other place; None when there is none."""
    places = dict(accounting)
    for place in ("pymalloc", "allocators"):
        kept = places.get(place, 0)
        if kept and kept * 2 >= (measurement.figure("rss") or 0) and kept >= max(places.values()):
            return place
    return None


def _hint(roots: tuple[Root, ...], figures: set[str], evidence: Evidence, retained: bool,
          unaccounted: int | None, traced: bool, allocator_kept: str | None = None) -> str:
    survivors = evidence.survivors
    # "no Python object holds it" only when every survivor was searched
    native = bool(retained and survivors is not None and not roots and not survivors.skipped
                  and (evidence.traced or survivors.data_told))
    looked = (survivors is not None and (evidence.traced or bool(roots) or survivors.data_told)) or not retained
    return hint_for(roots, figures, native=native, looked=looked, front=evidence.front, unexplained=unaccounted,
                    traced=traced or bool(evidence.sites), allocator_kept=allocator_kept)


def _accounting(measurement: Measurement, evidence: Evidence) -> tuple[tuple[str, int], ...]:
    """Every byte of the retained (anonymous) figure in a named place: what the roots keep,
    the modules loaded, Arrow's pool beyond what the roots hold, and what had no root."""
    survivors = evidence.survivors
    figure = measurement.figure("rss")
    if survivors is None or figure is None:
        return ()
    # the anonymous memory the imports took, measured around them, or what of theirs was found
    # alive, whichever is more: a lazy import inside the block may take no new pages (freed
    # memory reused) while the module objects it made are found among the survivors
    imports = max(evidence.imports or 0, survivors.imports)
    arrow = max(0, (measurement.arrow_growth or 0) - survivors.rooted_arrow)
    places = [("roots", survivors.rooted), ("imports", imports), ("arrow", arrow)]
    if measurement.pymalloc_kept is not None:
        places.append(("pymalloc", measurement.pymalloc_kept))
    if measurement.allocators_kept is not None:
        places.append(("allocators", measurement.allocators_kept))
    return (*places, ("unrooted", survivors.unrooted))


def explain_kept(measurement: Measurement, budget: Budget | None, title: str, evidence: Evidence,
                 notes: Sequence[str] = ()) -> Explanation:
    """What a block keeps alive at its end, within its budget (``leakhunt run --trace``)."""
    explanation = explain_budget(measurement, budget, [Violation("rss", measurement.figure("rss") or 0, 0)],
                                 title, evidence, notes)
    return replace(explanation, headline=f"kept {format_size(measurement.figure('rss'))} at exit")


def explain_leak(verdict: LeakVerdict, title: str) -> Explanation:
    """Why a hunted block leaks: its series, and what the confirming calls left alive."""
    from leakhunt.hunt import NAMES
    from leakhunt.report.explain_text import series_text

    notes = [f"{verdict.evidence or 'confirmed over a second window of calls'}; {verdict.calls} calls in all"]
    for name, values in {**verdict.series, **{f"{n} (confirming)": v for n, v in verdict.confirm_series.items()}}.items():
        slope, steps = series_text(name.split(" ")[0], values)
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

