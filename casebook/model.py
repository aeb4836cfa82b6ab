"""What a case is: a story's own code beside its fixes, a budget, and the claims it judges.

This module imports nothing heavy: the CLI lists and validates cases without paying for pandas.
The policy that turns figures into verdicts lives in :mod:`casebook.verdicts`.
"""

from __future__ import annotations

import importlib
import shutil
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping

if TYPE_CHECKING:
    from casebook.verdicts import Evidence

__all__ = [
    "Case",
    "Claim",
    "Flip",
    "METRICS",
    "Observed",
    "Params",
    "Ruling",
    "SIZES",
    "Variant",
    "VariantKind",
]

#: The sizes a user can ask for. Cases also define "warmup" (the unmeasured first call) and
#: "test" (the test suite's size: seconds per case, still far from every budget).
SIZES = ("small", "medium", "large")

#: Figures a case can be judged on, and what each means.
METRICS: Mapping[str, str] = {
    "peak": "high-water RSS above the start of the call (plus the pool workers' growth, for pools)",
    "retained": "settled RSS growth while what the call returned is still alive",
    "worker_peak": "the cluster workers' peak PSS above their idle level, per worker",
}

Params = Mapping[str, Any]

VariantKind = Literal["leaky", "story_fix", "fixed", "part", "alternative", "flip"]
ClaimVerdict = Literal["holds", "does not hold", "partly", "inconclusive"]
#: Whose claim it is: the story's own, or a lesson the casebook draws from measuring it.
Origin = Literal["story", "casebook"]

# The order variants are shown in: the story's code, its fix, the casebook's fix, the rest.
KIND_ORDER: Mapping[str, int] = {"leaky": 0, "story_fix": 1, "fixed": 2, "part": 3, "alternative": 4, "flip": 5}


@dataclass(frozen=True)
class Variant:
    """One way to do a case's job.

    ``kind`` says whose code it is: ``leaky`` is the story's code as written (scaled down),
    ``story_fix`` the story's own fix, ``fixed`` the casebook's fix where it does better,
    ``part`` a variant that isolates one cause or one claim, ``alternative`` another tool
    (skipped when its module is missing), ``flip`` a variant only the test suite runs, to show
    that the case's verdict can come out the other way.
    """

    name: str
    fn: Callable[[Params], Any]
    kind: VariantKind
    label: str  # what it does, in a few words, for tables
    requires: str | None = None  # a module it needs; missing: the variant is skipped
    growth: bool = False  # also measured at half the data (growth stories)
    profile: bool = False  # memory_profiler's line table on the case page
    context: bool = True  # runs inside the case's context (pool, cluster), when it has one
    timeline: bool = True  # drawn on the page's memory-over-time picture
    # How far this variant's medians moved between invocations (memory figures; times as a
    # ratio to the story's code's), where it moves more or less than its case's
    # (benchmarks/casebook_stability.py measures both); None: its case's.
    spread: float | None = None
    time_spread: float | None = None


@dataclass(frozen=True)
class Ruling:
    """A claim's verdict and the figures that decide it.

    ``verdict`` is ``None`` when a variant the claim needs could not be measured here (a missing
    optional module); ``evidence`` then says why.
    """

    verdict: ClaimVerdict | None
    evidence: str
    figures: Mapping[str, float | int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Flip:
    """What turns one claim's verdict around: variants measured in place of the ones its rule
    reads (``variants``: the variant the rule names -> the one measured instead), and
    parameters changed (``params``), with ``why`` in a few words. The test suite measures it."""

    why: str
    variants: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """Something a story says (or the casebook concludes), in our words, and how the measured
    figures decide it.

    ``section`` is where in the story it comes from; ``origin`` says whether it is the story's
    own claim or the casebook's lesson. ``source`` is the story (a key of
    :data:`casebook.stories.STORIES`) when the claim comes from another story than the case's
    own. ``flip`` is what makes its verdict come out the other way.
    """

    text: str
    decide: Callable[[Evidence], Ruling]
    section: str = ""
    origin: Origin = "story"
    flip: Flip | None = None
    source: str | None = None


class Observed:
    """What a variant returns when it also has figures of its own to report.

    ``value`` is kept alive like any returned value; ``figures`` (numbers) travel with the
    run's measurements, for claims that need more than peak and retained memory.
    """

    __slots__ = ("value", "figures")

    def __init__(self, value: Any, **figures: float | int | None) -> None:
        self.value = value
        self.figures = figures


@dataclass(frozen=True)
class Case:
    """A story from a seed document: its code, its fix, ours, and the claims we judge."""

    name: str
    title: str
    story: str  # a key of casebook.stories.STORIES
    summary: str  # what happened, in our words
    lesson: str  # what to do, in a few sentences
    metric: str  # a key of METRICS
    sizes: Mapping[str, Params]  # warmup / test / small / medium / large -> parameters
    variants: tuple[Variant, ...]
    claims: tuple[Claim, ...]
    # The metric's limit in bytes for given parameters, or None for a case that only judges
    # claims (nothing to budget).
    budget: Callable[[Params], int] | None = None
    setup: Callable[[Params, Path], Params] | None = None  # unmeasured data preparation
    # Entered once per process before the runs; yields parameters to add (a pool, a client).
    # A callable under "between_runs" is called before each measured run (to settle workers);
    # "worker_pids" names the worker processes whose memory the case counts (children=True).
    context: Callable[[Params], AbstractContextManager[dict[str, Any]]] | None = None
    # "leak": the story's code leaks; "myth": the story blames something that turns out not
    # to; "claims": there is no leaky/fixed pair, only claims.
    expect: Literal["leak", "myth", "claims"] = "leak"
    # Parameters that scale the data: a growth story is also measured with these multiplied by
    # growth_scale (half the data unless a wider span is needed to see the shape).
    growth_keys: tuple[str, ...] = ()
    growth_scale: float = 0.5
    # Count child processes' memory (pools). Runs alone: a neighbour would slow its workers.
    children: bool = False
    exclusive: bool = False
    # False: do not settle after the call. For the case about what settling itself gives back.
    settle_after: bool = True
    # How far the median of this case's memory figures moved between invocations, as a share
    # (benchmarks/casebook_stability.py measures it); None: the casebook's default,
    # casebook.verdicts.SPREAD. A verdict is decided only beyond it.
    spread: float | None = None
    # The same for its times (CPU and wall), as a ratio to the story's code's; None: the
    # casebook's (casebook.verdicts.CPU_SPREAD, TIME_SPREAD).
    time_spread: float | None = None
    # Imported before measuring: importing pandas alone costs ~90 MB of RSS.
    imports: tuple[str, ...] = ("numpy", "pandas")
    # Helpers whose source the page shows next to the variants.
    helpers: tuple[Callable[..., Any], ...] = ()
    # Which variant stands in for which, to make the verdict come out the other way (tests).
    flip: Mapping[str, str] = field(default_factory=dict)
    # variant -> the cause it isolates, for the "where the gain comes from" table.
    causes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"case {self.name!r}: variant names repeat: {names}")
        if self.metric not in METRICS:
            raise ValueError(f"case {self.name!r}: unknown metric {self.metric!r}; use one of {', '.join(METRICS)}")
        if self.expect != "claims":
            if "leaky" not in names or not ({"story_fix", "fixed"} & set(names)):
                raise ValueError(f"case {self.name!r}: a leak or myth needs a 'leaky' and a fix variant")
            if self.budget is None:
                raise ValueError(f"case {self.name!r}: a leak or myth needs a budget")
        for role, stand_in in self.flip.items():
            if role not in names or stand_in not in names:
                raise ValueError(f"case {self.name!r}: flip {role!r} -> {stand_in!r} names a missing variant")
        for claim in self.claims:
            for role, stand_in in (claim.flip.variants.items() if claim.flip else ()):
                if role not in names or stand_in not in names:
                    raise ValueError(f"case {self.name!r}: the flip of {claim.text[:40]!r}... names a "
                                     f"missing variant: {role!r} -> {stand_in!r}")

    # -- variants --------------------------------------------------------------------------

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        accepted = ", ".join(v.name for v in self.variants)
        raise ValueError(f"case {self.name!r} has no variant {name!r}: use one of {accepted}")

    def has(self, name: str) -> bool:
        return any(v.name == name for v in self.variants)

    @property
    def deciding_fix(self) -> str | None:
        """The fix the verdict judges: the story's own where it has one, else the casebook's."""
        if self.has("story_fix"):
            return "story_fix"
        return "fixed" if self.has("fixed") else None

    @property
    def best_fix(self) -> str | None:
        """The fix the casebook recommends: its own where it has one, else the story's."""
        if self.has("fixed"):
            return "fixed"
        return "story_fix" if self.has("story_fix") else None

    def leaky(self, params: Params) -> Any:
        return self.variant("leaky").fn(params)

    def fixed(self, params: Params) -> Any:
        """The casebook's recommended fix (the story's own where the casebook has no better)."""
        best = self.best_fix
        if best is None:
            raise ValueError(f"case {self.name!r} has no fix: it only judges claims")
        return self.variant(best).fn(params)

    # -- sizes and data --------------------------------------------------------------------

    def params(self, size: str, scale: float = 1.0, overrides: Params | None = None) -> dict[str, Any]:
        """Parameters for ``size``, with ``overrides`` (a claim's flip) applied; ``scale`` < 1
        then shrinks the growth keys (growth stories)."""
        if size not in self.sizes:
            accepted = ", ".join(s for s in (*SIZES, "test") if s in self.sizes)
            raise ValueError(f"unknown size {size!r} for case {self.name!r}: use one of {accepted}")
        params = dict(self.sizes[size])
        unknown = set(overrides or {}) - set(params)
        if unknown:
            raise ValueError(f"case {self.name!r} has no parameter {sorted(unknown)[0]!r}: "
                             f"its parameters are {', '.join(params)}")
        params.update(overrides or {})
        if scale != 1.0:
            if not self.growth_keys:
                raise ValueError(f"case {self.name!r} is not a growth story: it has no scale {scale}")
            for key in self.growth_keys:
                params[key] = max(1, int(round(params[key] * scale)))
        return params

    def limit(self, params: Params) -> int | None:
        """The budget on the case's metric, in bytes, or None for a claims-only case."""
        return None if self.budget is None else int(self.budget(params))

    def prepare(self, size: str, workdir: Path, scale: float = 1.0,
                overrides: Params | None = None) -> dict[str, Any]:
        """Parameters for ``size`` plus whatever ``setup`` generated into ``workdir``."""
        params = self.params(size, scale, overrides)
        params["workdir"] = str(workdir)
        if self.setup is not None:
            params = dict(self.setup(params, workdir))
            params["workdir"] = str(workdir)
        return params

    def warm_up(self, workdir: Path, variants: tuple[str, ...], extra: Params | None = None) -> None:
        """Import what the case uses and run ``variants`` once on tiny data in ``workdir``.

        First use costs memory that stays (imports, lazily built tables, the Arrow pool's
        first segments); none of that is the pattern a case is about.
        """
        for module in self.imports:
            importlib.import_module(module)
        if "warmup" not in self.sizes:
            return
        scratch = workdir / "warmup"
        scratch.mkdir(exist_ok=True)
        try:
            params = self.prepare("warmup", scratch)
            for name in variants:
                variant = self.variant(name)
                call_params = {**params, **(extra or {})} if variant.context else params
                variant.fn(call_params)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
