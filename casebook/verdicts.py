"""The casebook's policy: how measured figures become verdicts.

- A variant **breaks** its case's budget when the median of its runs is at least
  :data:`LEAKY_MARGIN` times the budget, **keeps** it at most :data:`FIXED_MARGIN` times, and
  is **inconclusive** in between: a verdict must not rest on a figure that noise could move
  across the line.
- A growth story is measured at two data sizes (the full size, and half or a quarter of it):
  a figure **grows** when it is at least :data:`GROWS` times larger at the full size, is
  **flat** at most :data:`FLAT` times (or when both are under :data:`NOISE_FLOOR`), and is in
  between otherwise.
- A case's verdict follows from its variants' (see :func:`case_verdict`); each claim's from the
  rule written next to it in its case module, over the figures here (:class:`Evidence`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping

from casebook.model import Ruling
from casebook.results import CaseResult, VariantResult

__all__ = [
    "CASE_VERDICTS",
    "ClaimResult",
    "Evidence",
    "FIXED_MARGIN",
    "FLAT",
    "GROWS",
    "LEAKY_MARGIN",
    "Missing",
    "NOISE_FLOOR",
    "budget_verdict",
    "fraction_text",
    "case_verdict",
    "growth_shape",
    "judge_claims",
    "ratio",
    "reproduced",
    "rule",
    "share_rule",
    "size_text",
]

LEAKY_MARGIN = 1.5
FIXED_MARGIN = 0.8
GROWS = 1.5
FLAT = 1.2
# Below this, a figure is noise (arena steps, import caches): ratios treat it as this much.
NOISE_FLOOR = 1024 * 1024

BudgetVerdict = Literal["breaks", "keeps", "inconclusive"]
Shape = Literal["grows", "flat", "between"]

#: Every case verdict, with what it means.
CASE_VERDICTS: Mapping[str, str] = {
    "reproduced": "the story's code breaks the budget and its fix keeps it",
    "reproduced, story's fix falls short": "the story's fix breaks the budget too; the casebook's keeps it",
    "reproduced, no fix keeps it": "every fix breaks the budget as well",
    "reproduced, casebook's fix fails": "the story's fix keeps the budget but the casebook's does not",
    "not reproduced": "the story's code keeps the budget",
    "myth: does not hold": "the code the story blamed keeps the budget: the claim is false here",
    "myth: holds after all": "the code the story blamed breaks the budget: the claim is true here",
    "inconclusive": "a deciding figure fell between the margins (or was not measured)",
    "claims only": "nothing to budget: the case judges claims",
    "not run": "a library the case needs is not installed (it says which extra to install)",
}


def budget_verdict(value: float | int | None, limit: int | None) -> BudgetVerdict | None:
    if value is None or limit is None or limit <= 0:
        return None
    if value >= LEAKY_MARGIN * limit:
        return "breaks"
    if value <= FIXED_MARGIN * limit:
        return "keeps"
    return "inconclusive"


def growth_shape(smaller: float | int | None, full: float | int | None) -> Shape | None:
    """How a figure changed from the smaller data to the full size: grows, flat, or between."""
    if smaller is None or full is None:
        return None
    if max(smaller, full) < NOISE_FLOOR:
        return "flat"
    factor = max(full, NOISE_FLOOR) / max(smaller, NOISE_FLOOR)
    if factor >= GROWS:
        return "grows"
    if factor <= FLAT:
        return "flat"
    return "between"


def fraction_text(scale: float) -> str:
    """``0.5`` -> "half the data", as the pages and the evidence say it."""
    return {0.5: "half the data", 0.25: "a quarter of the data"}.get(scale, f"{scale:g}x the data")


def ratio(a: float | int, b: float | int) -> float:
    """``a / b`` with both taken as at least the noise floor: tiny figures are noise."""
    return max(a, NOISE_FLOOR) / max(b, NOISE_FLOOR)


def _variant_verdict(r: CaseResult, name: str | None) -> BudgetVerdict | None:
    result = r.get(name) if name else None
    if result is None:
        return None
    return budget_verdict(result.median(r.case.metric), r.limit)


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
    """What a claim's rule may read: medians by variant, figure and data size, and the budget."""

    def __init__(self, result: CaseResult) -> None:
        self.result = result
        self.case = result.case

    def _get(self, variant: str, scale: float = 1.0) -> VariantResult:
        found = self.result.get(variant, scale)
        if found is None:
            why = self.result.skipped.get(variant, "not measured in this run")
            where = f"at {fraction_text(scale)} " if scale != 1.0 else ""
            raise Missing(f"`{variant}` {where}was not measured: {why}")
        return found

    def value(self, variant: str, figure: str | None = None, scale: float = 1.0) -> float:
        """The median of ``figure`` (default: the case's metric) over ``variant``'s runs."""
        name = figure or self.case.metric
        value = self._get(variant, scale).median(name)
        if value is None:
            raise Missing(f"`{variant}` has no {name} figure here")
        return value

    def seconds(self, variant: str) -> float:
        return self.value(variant, "seconds")

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
        verdict = budget_verdict(self.value(variant, figure), self.limit)
        assert verdict is not None
        return verdict

    def shape(self, variant: str, figure: str | None = None) -> tuple[Shape, float, float]:
        """The growth shape of ``variant``'s figure from the smaller data to the full size, and
        both values."""
        smaller = self.value(variant, figure, self.case.growth_scale)
        full = self.value(variant, figure, 1.0)
        shape = growth_shape(smaller, full)
        assert shape is not None
        return shape, smaller, full


def size_text(value: float | int) -> str:
    """A figure in bytes as leakhunt writes sizes (binary units)."""
    from leakhunt import format_size

    return format_size(int(value))


def rule(
    verdict: Literal["holds", "does not hold", "partly"], evidence: str, **figures: float | int | None
) -> Ruling:
    return Ruling(verdict, evidence, figures)


# -- rules shared by many claims ----------------------------------------------------------


def budget_rule(e: Evidence, variant: str, *, holds_if: BudgetVerdict = "breaks") -> Ruling:
    """A claim that ``variant`` breaks (or keeps) the budget: holds, does not hold, or partly."""
    value = e.value(variant)
    verdict = e.verdict(variant)
    metric = e.case.metric
    text = (f"`{variant}`: {metric} {size_text(value)} against a budget of {size_text(e.limit)} "
            f"({value / e.limit:.1f}x: {verdict})")
    if verdict == "inconclusive":
        return rule("partly", text + ", between the margins", **{f"{variant} {metric}": value, "budget": e.limit})
    outcome = "holds" if verdict == holds_if else "does not hold"
    return rule(outcome, text, **{f"{variant} {metric}": value, "budget": e.limit})


def growth_rule(e: Evidence, variant: str, *, holds_if: Shape = "grows", figure: str | None = None) -> Ruling:
    """A claim about how ``variant``'s figure follows the data: grows with it, or stays flat."""
    shape, smaller, full = e.shape(variant, figure)
    name = figure or e.case.metric
    text = (f"`{variant}`: {name} {size_text(smaller)} at {fraction_text(e.case.growth_scale)}, "
            f"{size_text(full)} at full size ({shape})")
    figures = {f"{variant} {name} at {e.case.growth_scale:g}x": smaller, f"{variant} {name}": full}
    if shape == "between":
        return rule("partly", text, **figures)
    return rule("holds" if shape == holds_if else "does not hold", text, **figures)


def both(first: Ruling, second: Ruling) -> Ruling:
    """Two conditions of one claim: holds if both hold, does not hold if neither, else partly."""
    verdicts = {first.verdict, second.verdict}
    if verdicts == {"holds"}:
        verdict = "holds"
    elif verdicts == {"does not hold"}:
        verdict = "does not hold"
    else:
        verdict = "partly"
    return Ruling(verdict, f"{first.evidence}; {second.evidence}", {**first.figures, **second.figures})


def banded(value: float, *, holds: Callable[[float], bool], fails: Callable[[float], bool],
           evidence: str, **figures: float | int | None) -> Ruling:
    """holds where ``holds(value)``, does not hold where ``fails(value)``, partly otherwise."""
    if holds(value):
        return rule("holds", evidence, **figures)
    if fails(value):
        return rule("does not hold", evidence, **figures)
    return rule("partly", evidence, **figures)


def share_rule(e: Evidence, variant: str, base: str, *, holds: Callable[[float], bool],
               fails: Callable[[float], bool], says: Callable[[float, float, float], str],
               figure: str | None = None) -> Ruling:
    """A claim about ``variant``'s figure as a multiple of ``base``'s (noise-floored).

    ``says(value, base value, multiple)`` words the evidence; the verdict is banded as in
    :func:`banded`.
    """
    name = figure or e.case.metric
    value, reference = e.value(variant, figure), e.value(base, figure)
    multiple = ratio(value, reference)
    return banded(multiple, holds=holds, fails=fails, evidence=says(value, reference, multiple),
                  **{f"{variant} {name}": value, f"{base} {name}": reference})


@dataclass(frozen=True)
class ClaimResult:
    text: str
    source: str  # the story the claim comes from
    verdict: str | None  # "holds", "does not hold", "partly"; None: not measured here
    evidence: str
    figures: Mapping[str, float | int | None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "claim": self.text,
            "source": self.source,
            "verdict": self.verdict,
            "evidence": self.evidence,
            "figures": dict(self.figures),
        }


def judge_claims(r: CaseResult) -> list[ClaimResult]:
    evidence = Evidence(r)
    out = []
    for claim in r.case.claims:
        if r.not_run:
            ruling = Ruling(None, f"not run: {r.not_run}")
        else:
            try:
                ruling = claim.decide(evidence)
            except Missing as exc:
                ruling = Ruling(None, f"not measured: {exc}")
        out.append(ClaimResult(claim.text, claim.source or r.case.story, ruling.verdict,
                               ruling.evidence, dict(ruling.figures)))
    return out
