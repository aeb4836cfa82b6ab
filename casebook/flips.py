"""Measure what turns each verdict around: every claim's flip, and each case's.

A claim's :class:`~casebook.model.Flip` names variants to measure in place of the ones its rule
reads, and parameters to change. :func:`check_flips` measures a case once as it is, then every
flip, and judges each claim both ways; the test suite asserts that each verdict comes out the
other way (``tests/test_casebook_flips.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace as _replace
from typing import Any, Mapping, Sequence

from casebook.model import Case, Claim, Flip
from casebook.results import CaseResult, VariantResult
from casebook.runner import CaseError, run_cases
from casebook.verdicts import case_verdict, judge_claim

__all__ = ["FlipOutcome", "check_flips", "resolve", "substitute"]


@dataclass(frozen=True)
class FlipOutcome:
    """One verdict measured as the case is and with its flip (``claim`` None: the case's own)."""

    claim: Claim | None
    before: str | None
    after: str | None
    before_evidence: str
    after_evidence: str
    skipped: str | None = None  # why it could not be measured here
    timed: bool = False  # the rule reads a time (wall or CPU), which one run at the test size moves most
    reads: tuple[str, ...] = ()  # the variants the rule read, as the case is


def resolve(case: Case, size: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """A flip's parameters with the callable ones computed from the case's parameters at ``size``
    (a flip may say "the small frame as big as the big one")."""
    base = case.params(size)
    return {key: value(base) if callable(value) else value for key, value in params.items()}


def substitute(result: CaseResult, stand_ins: Mapping[str, str]) -> CaseResult:
    """``result`` with each variant named in ``stand_ins`` replaced, at every data size, by the
    figures of the variant that stands in for it."""
    if not stand_ins:
        return result
    measured: list[VariantResult] = []
    for v in result.results:
        if v.name in stand_ins:
            continue
        measured.append(v)
    for role, stand_in in stand_ins.items():
        measured += [_replace(v, name=role, stand_in=stand_in) for v in result.results if v.name == stand_in]
    return _replace(result, results=tuple(measured))


#: Runs of each variant when a noisy reading is measured again (see :func:`_measured_again`).
TIMED_RUNS = 3


def _measure(case: Case, size: str, names: Sequence[str], overrides: Mapping[str, Any], *,
             jobs: int, growth: bool = True, runs: int = 1) -> CaseResult:
    results, failures = run_cases([case], size, runs=runs, jobs=jobs, growth=growth,
                                  only={case.name: list(dict.fromkeys(names))},
                                  overrides={case.name: dict(overrides)} if overrides else None)
    if failures:
        raise CaseError(failures[case.name])
    return results[0]


def _normal_names(case: Case) -> list[str]:
    names = [v.name for v in case.variants if v.kind != "flip"]
    names += list(case.flip.values())
    for claim in case.claims:
        if claim.flip is not None and not claim.flip.params:
            names += list(claim.flip.variants.values())
    return list(dict.fromkeys(names))


def _outcome(case_result: CaseResult, claim: Claim) -> tuple[str | None, str]:
    judged, _ = judge_claim(case_result, claim)
    return judged.verdict, judged.evidence


def check_flips(case: Case, size: str = "test", *, jobs: int = 1) -> list[FlipOutcome]:
    """Measure ``case`` at ``size`` (one run of each variant), then with each claim's flip, and
    return every verdict both ways: the case's own first, then each claim's."""
    normal = _measure(case, size, _normal_names(case), {}, jobs=jobs)
    out: list[FlipOutcome] = []
    if case.expect != "claims" and case.flip:
        flipped = substitute(normal, case.flip)
        out.append(FlipOutcome(None, case_verdict(normal), case_verdict(flipped), "", ""))
    by_params: dict[tuple[tuple[str, Any], ...], list[tuple[Claim, set[str], bool, tuple[str, ...]]]] = {}
    for claim in case.claims:
        flip: Flip | None = claim.flip
        judged, evidence = judge_claim(normal, claim)
        read, timed = evidence.read, bool({"seconds", "cpu_seconds"} & evidence.figures)
        reads = tuple(sorted({name for name, _ in read}))
        if flip is None:
            out.append(FlipOutcome(claim, judged.verdict, None, judged.evidence, "", skipped="no flip"))
            continue
        if judged.verdict is None:
            out.append(FlipOutcome(claim, None, None, judged.evidence, "", skipped=judged.evidence))
            continue
        if not flip.params:
            after, evidence_after = _outcome(substitute(normal, flip.variants), claim)
            out.append(FlipOutcome(claim, judged.verdict, after, judged.evidence, evidence_after, timed=timed,
                                   reads=reads))
            continue
        key = tuple(sorted(resolve(case, size, flip.params).items()))
        names = {flip.variants.get(name, name) for name, _ in read}
        by_params.setdefault(key, []).append((claim, names, timed, reads))
    for key, claims in by_params.items():
        names = sorted(set().union(*(names for _, names, _, _ in claims)))
        remeasured = _measure(case, size, names, dict(key), jobs=jobs)
        for claim, _, timed, reads in claims:
            assert claim.flip is not None
            before, before_evidence = _outcome(normal, claim)
            after, evidence_after = _outcome(substitute(remeasured, claim.flip.variants), claim)
            out.append(FlipOutcome(claim, before, after, before_evidence, evidence_after, timed=timed,
                                   reads=reads))
    return [_measured_again(case, size, o, jobs=jobs) for o in out]


def _noisy(o: FlipOutcome) -> bool:
    """Is ``o`` a reading one run can get wrong: a time claim whose two readings came out the same,
    or a memory claim read as inconclusive on either side?"""
    if o.timed:
        return o.before == o.after
    return "inconclusive" in (o.before, o.after)


def _measured_again(case: Case, size: str, o: FlipOutcome, *, jobs: int) -> FlipOutcome:
    """``o`` again from the median of :data:`TIMED_RUNS` runs of each variant it reads, when one run
    may have misread it (:func:`_noisy`). One run of a second or less moves a CPU time by more
    than the claims' margins (row_buffer's Solution A read 0.8x and 1.6x its writer's time in two
    runs of the same code); a peak measured while other work loads the machine may move too
    (concat_loop's batched writer once read 101 and 177 MiB at a quarter and at the whole of its
    data, under a fresh-clone CI's two test workers: "inconclusive"). So one noisy reading is
    taken again, from medians, before the flip is called a failure; a flip that does not work
    still reads the same."""
    if o.claim is None or o.claim.flip is None or not _noisy(o):
        return o
    claim, flip, read = o.claim, o.claim.flip, list(o.reads)
    if flip.params:
        normal = _measure(case, size, read, {}, jobs=jobs, runs=TIMED_RUNS)
        key = resolve(case, size, flip.params)
        flipped = _measure(case, size, sorted({flip.variants.get(n, n) for n in read}), key,
                           jobs=jobs, runs=TIMED_RUNS)
    else:
        names = sorted(set(read) | set(flip.variants.values()))
        normal = flipped = _measure(case, size, names, {}, jobs=jobs, runs=TIMED_RUNS)
    before, before_evidence = _outcome(normal, claim)
    after, after_evidence = _outcome(substitute(flipped, flip.variants), claim)
    return FlipOutcome(claim, before, after, before_evidence, after_evidence, timed=o.timed, reads=o.reads)
