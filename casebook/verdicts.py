"""The casebook's policy: how measured figures become verdicts.

Every figure is a :class:`Band`: the median of its runs, and the range that noise could put it
in — at least every run, and at least :data:`SPREAD` (memory) or :data:`TIME_SPREAD` (time)
either side of the median: how far the median of the same code moved between separate
invocations of the casebook (``benchmarks/casebook_stability.py`` measures both). A verdict is
decided only when the whole band lies on one side of the line that decides it; when the line
falls inside the band the verdict is **inconclusive**, never a guess.

- A variant **breaks** its case's budget when its band lies above the budget, **keeps** it when
  the band lies below.
- A growth story is measured at two data sizes (the full size, and half or a quarter of it): a
  figure **grows** when more than :data:`GROWTH_LINE` of a proportional increase shows up at the
  full size, and is **flat** when less does.
- A claim is a range the story (or the casebook) puts a quantity in: it **holds** when the
  measured band lies inside that range, **does not hold** when the band lies outside it, and is
  inconclusive otherwise. A claim of several parts is **partly** true when some hold and some do
  not.
- A case's verdict follows from its variants' (:func:`case_verdict`); each claim's from the rule
  written next to it in its case module, over the figures here (:class:`Evidence`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Sequence

from casebook.model import Ruling
from casebook.results import CaseResult, VariantResult

__all__ = [
    "CASE_VERDICTS",
    "CPU_SPREAD",
    "Band",
    "ClaimResult",
    "Evidence",
    "GROWTH_LINE",
    "Missing",
    "NOISE_FLOOR",
    "SPREAD",
    "TIME_SPREAD",
    "band_of",
    "both",
    "budget_rule",
    "budget_verdict",
    "case_band",
    "case_verdict",
    "fraction_text",
    "growth_rule",
    "growth_shape",
    "holds_data_rule",
    "judge_claims",
    "ratio",
    "ratio_rule",
    "reproduced",
    "rule",
    "size_text",
    "speed_rule",
    "time_growth_rule",
    "within",
]

#: How far the median of a memory figure moved between invocations of the casebook on the same
#: code, as a share of it: under 2.5% for the cases of numpy and pandas buffers
#: (benchmarks/casebook_stability.md), rounded up; a case whose figures move more says so
#: (``Case.spread``).
SPREAD = 0.05
#: How far the ratio of two variants' CPU times moved between invocations (the figures speed
#: claims read: up to 28.5%, benchmarks/casebook_stability.md), rounded up...
CPU_SPREAD = 0.3
#: ...and their wall times, which other work on a shared machine moves far more (up to 158%
#: for the Dask cluster's); a case whose times move less says so (``Case.time_spread``).
TIME_SPREAD = 1.6
#: The figures that are times, and the spread of each.
_TIME_FIGURES = {"seconds": TIME_SPREAD, "cpu_seconds": CPU_SPREAD}
#: Below this, a memory figure is noise (arena steps, import caches): ratios treat it as this much.
NOISE_FLOOR = 1024 * 1024
#: The share of a proportional increase that separates "grows" from "flat": with half the data,
#: a figure grows when the full size reads more than 1.25 times as much.
GROWTH_LINE = 0.25

BudgetVerdict = Literal["breaks", "keeps", "inconclusive"]
Shape = Literal["grows", "flat", "inconclusive"]
Verdict = Literal["holds", "does not hold", "partly", "inconclusive"]

#: Every case verdict, with what it means.
CASE_VERDICTS: Mapping[str, str] = {
    "reproduced": "the story's code breaks the budget and its fix keeps it",
    "reproduced, story's fix falls short": "the story's fix breaks the budget too; the casebook's keeps it",
    "reproduced, no fix keeps it": "every fix breaks the budget as well",
    "reproduced, casebook's fix fails": "the story's fix keeps the budget but the casebook's does not",
    "not reproduced": "the story's code keeps the budget",
    "myth: does not hold": "the code the story blamed keeps the budget: the claim is false here",
    "myth: holds after all": "the code the story blamed breaks the budget: the claim is true here",
    "inconclusive": "the budget fell within the spread of a deciding figure (or it was not measured)",
    "claims only": "nothing to budget: the case judges claims",
    "not run": "a library the case needs is not installed (it says which extra to install)",
}


@dataclass(frozen=True)
class Band:
    """A measured quantity: its median ``value`` and the range ``low``..``high`` noise could
    put it in."""

    value: float
    low: float
    high: float

    def floored(self) -> Band:
        """The band with every bound at least the noise floor (for ratios of memory figures)."""
        return Band(*(max(v, NOISE_FLOOR) for v in (self.value, self.low, self.high)))

    def __truediv__(self, other: Band) -> Band:
        """The quotient, as wide as the two bands allow (``other`` must be positive)."""
        return Band(self.value / other.value, self.low / other.high, self.high / other.low)

    def scaled(self, factor: float) -> Band:
        return Band(self.value * factor, self.low * factor, self.high * factor)

    def minus(self, other: Band) -> Band:
        return Band(self.value - other.value, self.low - other.high, self.high - other.low)

    def plus(self, other: Band) -> Band:
        return Band(self.value + other.value, self.low + other.low, self.high + other.high)

    @classmethod
    def exact(cls, value: float) -> Band:
        return cls(value, value, value)


def band_of(values: Sequence[float], spread: float) -> Band:
    """The band of a figure's runs: every run, and at least ``spread`` either side of the median."""
    middle = statistics.median(values)
    return Band(middle, min(min(values), middle * (1 - spread)), max(max(values), middle * (1 + spread)))


def within(q: Band, low: float = -math.inf, high: float = math.inf) -> Verdict:
    """holds when the band lies in ``low``..``high``, does not hold when it lies outside,
    inconclusive when a bound falls inside it."""
    if low <= q.low and q.high <= high:
        return "holds"
    if q.high < low or q.low > high:
        return "does not hold"
    return "inconclusive"


def ratio(a: float | int, b: float | int) -> float:
    """``a / b`` with both taken as at least the noise floor: tiny figures are noise."""
    return max(a, NOISE_FLOOR) / max(b, NOISE_FLOOR)


def variant_band(result: VariantResult | None, figure: str, spread: float | None = None,
                 case_spread: float | None = None) -> Band | None:
    """The band of ``figure`` over a variant's runs, or None where it has none: ``spread`` when
    given, else the case's spread (or :data:`SPREAD`) for memory and :data:`TIME_SPREAD` for time."""
    values = [] if result is None else result.values(figure)
    if not values:
        return None
    if spread is None:
        spread = _TIME_FIGURES.get(figure, SPREAD if case_spread is None else case_spread)
    return band_of(values, spread)


def for_ratio(spread: float) -> float:
    """The spread to give each side of a ratio so that the ratio moves by ``spread`` at most: the
    medians of one invocation move together more often than not (benchmarks/casebook_stability.py
    measures how far each claim's deciding ratio moved)."""
    return math.sqrt(1 + spread) - 1


def case_spread(case: Any, figure: str, variant: str | None = None) -> float:
    """The spread of ``figure``: the variant's where it measured one, else its case's, else the
    casebook's."""
    time = figure in _TIME_FIGURES
    own = None
    if variant is not None and case.has(variant):
        found = case.variant(variant)
        own = found.time_spread if time else found.spread
    if own is None:
        own = case.time_spread if time else case.spread
    if own is None:
        own = _TIME_FIGURES[figure] if time else SPREAD
    return own


def case_band(r: CaseResult, result: VariantResult | None, figure: str, *, ratio: bool = False,
              spread: float | None = None) -> Band | None:
    """The band of a variant's figure with its spread (``ratio``: as one side of a ratio;
    ``spread``: this one instead)."""
    if spread is None:
        spread = case_spread(r.case, figure, None if result is None else (result.stand_in or result.name))
        spread = for_ratio(spread) if ratio else spread
    return variant_band(result, figure, spread)


def budget_verdict(q: Band | None, limit: int | None) -> BudgetVerdict | None:
    """breaks when the band lies above ``limit``, keeps when below, inconclusive otherwise."""
    if q is None or limit is None or limit <= 0:
        return None
    if q.low > limit:
        return "breaks"
    if q.high < limit:
        return "keeps"
    return "inconclusive"


def growth_line(scale: float) -> float:
    """The full-size over smaller-size ratio that separates grows from flat at ``scale``."""
    return 1 + GROWTH_LINE * (1 / scale - 1)


def _shape(growth: Band, scale: float) -> Shape:
    verdict = within(growth, low=growth_line(scale))
    return {"holds": "grows", "does not hold": "flat"}.get(verdict, "inconclusive")  # type: ignore[return-value]


def growth_shape(r: CaseResult, variant: str, figure: str | None = None) -> Shape | None:
    """How a variant's figure changed from the smaller data to the full size: grows, flat, or
    inconclusive when the line falls within the spread; None where it was not measured twice."""
    try:
        return Evidence(r).shape(variant, figure)[0]
    except Missing:
        return None


def fraction_text(scale: float) -> str:
    """``0.5`` -> "half the data", as the pages and the evidence say it."""
    return {0.5: "half the data", 0.25: "a quarter of the data"}.get(scale, f"{scale:g}x the data")


def _variant_verdict(r: CaseResult, name: str | None) -> BudgetVerdict | None:
    result = r.get(name) if name else None
    return budget_verdict(case_band(r, result, r.case.metric), r.limit)


def case_verdict(r: CaseResult) -> str:
    """The case's verdict (a key of :data:`CASE_VERDICTS`)."""
    case = r.case
    if r.not_run:
        return "not run"
    if case.expect == "claims":
        return "claims only"
    leaky = _variant_verdict(r, "leaky")
    deciding = _variant_verdict(r, case.deciding_fix)
    best = _variant_verdict(r, case.best_fix)
    if leaky is None or leaky == "inconclusive":
        return "inconclusive"
    if case.expect == "myth":
        return "myth: does not hold" if leaky == "keeps" else "myth: holds after all"
    if leaky == "keeps":
        return "not reproduced"
    if deciding is None:
        return "inconclusive"
    separate = case.best_fix != case.deciding_fix
    if deciding == "inconclusive":
        return "inconclusive"
    if deciding == "keeps":
        if separate and best == "breaks":
            return "reproduced, casebook's fix fails"
        return "reproduced"
    # The story's fix breaks the budget too.
    if separate and best == "keeps":
        return "reproduced, story's fix falls short"
    if separate and best == "inconclusive":
        return "inconclusive"
    return "reproduced, no fix keeps it"


def reproduced(r: CaseResult) -> bool:
    """The story's leak breaks the budget and a fix keeps it."""
    return case_verdict(r) in ("reproduced", "reproduced, story's fix falls short")


class Missing(Exception):
    """A claim needs a figure that was not measured here (a skipped variant)."""


class Evidence:
    """What a claim's rule may read: bands by variant, figure and data size, and the budget.

    ``read`` records every (variant, scale) a rule asked for: the test suite measures those
    again with a claim's flip.
    """

    def __init__(self, result: CaseResult) -> None:
        self.result = result
        self.case = result.case
        self.read: set[tuple[str, float]] = set()
        self.figures: set[str] = set()  # the figures a rule read (the flip tests ask for times)

    def _get(self, variant: str, scale: float = 1.0) -> VariantResult:
        self.read.add((variant, scale))
        found = self.result.get(variant, scale)
        if found is None:
            why = self.result.skipped.get(variant, "not measured in this run")
            where = f"at {fraction_text(scale)} " if scale != 1.0 else ""
            raise Missing(f"`{variant}` {where}was not measured: {why}")
        return found

    def band(self, variant: str, figure: str | None = None, scale: float = 1.0, *,
             ratio: bool = False) -> Band:
        """The band of ``figure`` (default: the case's metric) over ``variant``'s runs; with
        ``ratio``, as one side of a ratio (see :func:`for_ratio`)."""
        name = figure or self.case.metric
        self.figures.add(name)
        found = case_band(self.result, self._get(variant, scale), name, ratio=ratio)
        if found is None:
            raise Missing(f"`{variant}` has no {name} figure here")
        return found

    def ratio(self, variant: str, base: str, figure: str | None = None, *, scale: float = 1.0,
              base_figure: str | None = None, base_scale: float = 1.0) -> tuple[Band, Band, Band]:
        """``variant``'s figure over ``base``'s (noise-floored for memory): the ratio's band, and
        both figures' own bands."""
        if (figure or self.case.metric) in _TIME_FIGURES:
            return self._time_ratio(variant, base, figure or "", scale, base_scale)
        a = self.band(variant, figure, scale, ratio=True)
        b = self.band(base, base_figure or figure, base_scale, ratio=True)
        return a.floored() / b.floored(), self.band(variant, figure, scale), self.band(base, base_figure or figure, base_scale)

    def _time_ratio(self, variant: str, base: str, figure: str, scale: float,
                    base_scale: float) -> tuple[Band, Band, Band]:
        """Times are measured as a ratio to the story's code's time in the same invocation
        (benchmarks/casebook_stability.py): the ratio's band is its runs' and the larger of the
        two variants' spreads (none for the story's code, the reference)."""
        found = [self._get(variant, scale), self._get(base, base_scale)]
        a, b = (case_band(self.result, v, figure, spread=0.0) for v in found)
        self.figures.add(figure)
        if a is None or b is None:
            raise Missing(f"`{variant}` or `{base}` has no {figure} figure here")
        runs = a / b
        names = [v.stand_in or v.name for v in found]
        if names[0] == names[1]:  # one variant at two sizes: its own spread
            spread = case_spread(self.case, figure, names[0])
        else:
            spread = max(0.0 if name == "leaky" else case_spread(self.case, figure, name) for name in names)
        q = Band(runs.value, min(runs.low, runs.value / (1 + spread)), max(runs.high, runs.value * (1 + spread)))
        return q, a, b

    def value(self, variant: str, figure: str | None = None, scale: float = 1.0) -> float:
        """The median of ``figure`` over ``variant``'s runs."""
        return self.band(variant, figure, scale).value

    def seconds(self, variant: str) -> Band:
        return self.band(variant, "seconds")

    @property
    def limit(self) -> int:
        if self.result.limit is None:
            raise Missing(f"case {self.case.name!r} has no budget")
        return self.result.limit

    def params(self, scale: float = 1.0) -> dict[str, Any]:
        return self.result.params_at(scale)

    def param(self, key: str, scale: float = 1.0) -> Any:
        """One parameter of the data (a size, or what setup recorded, such as a file's bytes)."""
        params = self.params(scale)
        if key not in params:
            raise Missing(f"the parameter {key!r} was not recorded")
        return params[key]

    def verdict(self, variant: str, figure: str | None = None) -> BudgetVerdict:
        verdict = budget_verdict(self.band(variant, figure), self.limit)
        assert verdict is not None
        return verdict

    def shape(self, variant: str, figure: str | None = None) -> tuple[Shape, Band, Band]:
        """The growth shape of ``variant``'s figure from the smaller data to the full size, and
        both bands."""
        scale = self.case.growth_scale
        growth, full, smaller = self.ratio(variant, variant, figure, base_scale=scale)
        shape = _shape(growth, scale)
        return shape, smaller, full


def size_text(value: float | int) -> str:
    """A figure in bytes as leakhunt writes sizes (binary units)."""
    from leakhunt import format_size

    return format_size(int(value))


def band_text(q: Band) -> str:
    """A memory band as the evidence writes it: "52.0 MiB (48.1-57.2 MiB)"."""
    return f"{size_text(q.value)} ({size_text(q.low)}-{size_text(q.high)})"


def rule(verdict: Verdict, evidence: str, **figures: float | int | None) -> Ruling:
    if verdict == "inconclusive" and "within the spread" not in evidence:
        evidence += ": within the spread of the runs, inconclusive"
    return Ruling(verdict, evidence, figures)


# -- rules shared by many claims ----------------------------------------------------------


def budget_rule(e: Evidence, variant: str, *, holds_if: Literal["breaks", "keeps"] = "breaks") -> Ruling:
    """A claim that ``variant`` breaks (or keeps) the case's budget."""
    q = e.band(variant)
    verdict = budget_verdict(q, e.limit)
    metric = e.case.metric
    text = (f"`{variant}`: {metric} {band_text(q)} against a budget of {size_text(e.limit)} "
            f"({q.value / e.limit:.1f}x: {verdict})")
    figures = {f"{variant} {metric}": q.value, "budget": e.limit}
    if verdict == "inconclusive":
        return rule("inconclusive", text, **figures)
    return rule("holds" if verdict == holds_if else "does not hold", text, **figures)


def growth_rule(e: Evidence, variant: str, *, holds_if: Literal["grows", "flat"] = "grows",
                figure: str | None = None) -> Ruling:
    """A claim about how ``variant``'s figure follows the data: grows with it, or stays flat."""
    shape, smaller, full = e.shape(variant, figure)
    name = figure or e.case.metric
    scale = e.case.growth_scale
    text = (f"`{variant}`: {name} {size_text(smaller.value)} at {fraction_text(scale)}, "
            f"{size_text(full.value)} at full size ({shape}: the line is "
            f"{growth_line(scale):.2f}x)")
    figures = {f"{variant} {name} at {scale:g}x": smaller.value, f"{variant} {name}": full.value}
    if shape == "inconclusive":
        return rule("inconclusive", text, **figures)
    return rule("holds" if shape == holds_if else "does not hold", text, **figures)


def holds_data_rule(e: Evidence, variant: str, data: int, what: str, figure: str | None = None) -> Ruling:
    """A claim that ``variant`` needs memory for all of ``data`` bytes (``what`` names them):
    its figure is at least the data."""
    q = e.band(variant, figure)
    name = figure or e.case.metric
    return rule(within(q.scaled(1 / data), low=1.0),
                f"`{variant}`: {name} {band_text(q)} for {size_text(data)} of {what} "
                f"({q.value / data:.1f}x)", **{f"{variant} {name}": q.value, what: data})


def time_growth_rule(e: Evidence, variant: str, *, holds_if: Literal["grows", "flat"] = "grows") -> Ruling:
    """A claim about how ``variant``'s CPU time follows the data (the runs already made)."""
    scale = e.case.growth_scale
    growth, full, smaller = e.ratio(variant, variant, "cpu_seconds", base_scale=scale)
    verdict = within(growth, low=growth_line(scale))
    shape = {"holds": "grows", "does not hold": "flat"}.get(verdict, "inconclusive")
    text = (f"`{variant}` took {smaller.value:.2f} s of CPU time with {fraction_text(scale)} and "
            f"{full.value:.2f} s with all of it ({shape}: the line is {growth_line(scale):.2f}x)")
    figures = {f"{variant} cpu_seconds at {scale:g}x": smaller.value, f"{variant} cpu_seconds": full.value}
    if shape == "inconclusive":
        return rule("inconclusive", text, **figures)
    return rule("holds" if shape == holds_if else "does not hold", text, **figures)


def both(*parts: Ruling) -> Ruling:
    """A claim of several parts: holds if all hold; partly if some hold and some do not; does
    not hold if none holds and some do not (the claim cannot hold, whatever an undecided part
    would say); inconclusive otherwise."""
    verdicts = {part.verdict for part in parts}
    if verdicts == {"holds"}:
        verdict: Verdict = "holds"
    elif {"holds", "does not hold"} <= verdicts:
        verdict = "partly"
    elif "does not hold" in verdicts and "holds" not in verdicts:
        verdict = "does not hold"
    else:
        verdict = "inconclusive"
    figures: dict[str, float | int | None] = {}
    for part in parts:
        figures.update(part.figures)
    return Ruling(verdict, "; ".join(part.evidence for part in parts), figures)


def ratio_rule(e: Evidence, variant: str, base: str, *, low: float = -math.inf, high: float = math.inf,
               says: Callable[[Band, Band, Band], str], figure: str | None = None,
               base_figure: str | None = None) -> Ruling:
    """A claim that ``variant``'s figure over ``base``'s (noise-floored) lies in ``low``..``high``.

    ``says(variant band, base band, ratio band)`` words the evidence.
    """
    name, base_name = figure or e.case.metric, base_figure or figure or e.case.metric
    q, a, b = e.ratio(variant, base, figure, base_figure=base_figure)
    return rule(within(q, low, high), says(a, b, q), **{f"{variant} {name}": a.value, f"{base} {base_name}": b.value})


def speed_rule(e: Evidence, slow: str, fast: str, *, low: float = -math.inf, high: float = math.inf,
               clock: Literal["cpu", "wall"] = "cpu") -> Ruling:
    """A claim that ``slow`` takes ``low``..``high`` times as long as ``fast``, from the runs
    already made: their CPU time (``clock="cpu"``: code that runs in this process's one thread,
    which the machine's other work hardly moves), or their wall time (code that runs in several
    threads or processes, or waits)."""
    figure = "cpu_seconds" if clock == "cpu" else "seconds"
    q, a, b = e.ratio(slow, fast, figure)
    what = "CPU time" if clock == "cpu" else "wall time"
    return rule(within(q, low, high),
                f"`{slow}` took {a.value:.2f} s of {what}, `{fast}` {b.value:.2f} s: {q.value:.1f}x",
                **{f"{slow} {figure}": a.value, f"{fast} {figure}": b.value})


@dataclass(frozen=True)
class ClaimResult:
    text: str
    source: str  # the story the claim comes from
    section: str  # where in the story
    origin: str  # "story" or "casebook"
    verdict: str | None  # "holds", "does not hold", "partly", "inconclusive"; None: not measured
    evidence: str
    figures: Mapping[str, float | int | None]
    flip: str | None  # what turns the verdict around

    def to_dict(self) -> dict[str, Any]:
        return {
            "claim": self.text,
            "source": self.source,
            "section": self.section,
            "origin": self.origin,
            "verdict": self.verdict,
            "evidence": self.evidence,
            "figures": dict(self.figures),
            "flip": self.flip,
        }


def judge_claim(r: CaseResult, claim: Any) -> tuple[ClaimResult, Evidence]:
    """One claim's result, and what its rule read (``Evidence.read``, ``Evidence.figures``)."""
    evidence = Evidence(r)
    if r.not_run:
        ruling = Ruling(None, f"not run: {r.not_run}")
    else:
        try:
            ruling = claim.decide(evidence)
        except Missing as exc:
            ruling = Ruling(None, f"not measured: {exc}")
    flip = None if claim.flip is None else claim.flip.why
    return ClaimResult(claim.text, claim.source or r.case.story, claim.section, claim.origin,
                       ruling.verdict, ruling.evidence, dict(ruling.figures), flip), evidence


def judge_claims(r: CaseResult) -> list[ClaimResult]:
    return [judge_claim(r, claim)[0] for claim in r.case.claims]
