"""Measured results: each variant's runs at each data size, and a case's results together.

Plain data; the verdicts are computed from it by :mod:`casebook.verdicts`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Mapping

from casebook.model import Case
from casebook.protocol import RunFigures

__all__ = ["VariantResult", "CaseResult"]


@dataclass(frozen=True)
class VariantResult:
    """Every run of one variant at one data size (``scale`` 1.0, or less for growth stories)."""

    name: str
    kind: str
    label: str
    scale: float
    params: Mapping[str, Any]
    runs: tuple[RunFigures, ...]
    # Memory over the median run: (seconds since the call began, bytes above its start).
    timeline: tuple[tuple[float, int], ...] | None = None
    explanation: str | None = None
    explanation_data: Mapping[str, Any] | None = None
    line_profile: str | None = None
    stand_in: str | None = None  # the variant that ran in this one's place (flip tests)

    def values(self, figure: str) -> list[float | int]:
        return [v for v in (run.figure(figure) for run in self.runs) if v is not None]

    def median(self, figure: str) -> float | int | None:
        """The median over the runs (None if no run has the figure)."""
        values = self.values(figure)
        if not values:
            return None
        middle = statistics.median(values)
        return int(middle) if all(isinstance(v, int) for v in values) else middle

    def spread(self, figure: str) -> tuple[float | int, float | int] | None:
        values = self.values(figure)
        return (min(values), max(values)) if values else None

    def median_run(self, figure: str) -> int:
        """The index of the run whose ``figure`` is the median (for its timeline)."""
        indexed = [(run.figure(figure), i) for i, run in enumerate(self.runs)]
        ordered = sorted((v, i) for v, i in indexed if v is not None)
        if not ordered:
            return 0
        return ordered[(len(ordered) - 1) // 2][1]

    def to_dict(self, metric: str) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "scale": self.scale,
            "params": {k: v for k, v in self.params.items() if k != "workdir"},
            "median": {name: self.median(name) for name in dict.fromkeys(("peak", "retained", "seconds", metric))},
            "metric": self.median(metric),
            "runs": [{**run.to_dict(), metric: run.figure(metric)} for run in self.runs],
            **({"stand_in": self.stand_in} if self.stand_in else {}),
        }


@dataclass(frozen=True)
class CaseResult:
    """All of one case's measurements at one size."""

    case: Case
    size: str
    runs: int
    results: tuple[VariantResult, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)  # variant -> why it did not run
    not_run: str | None = None  # why the whole case did not run: what to install

    def get(self, name: str, scale: float = 1.0) -> VariantResult | None:
        for result in self.results:
            if result.name == name and result.scale == scale:
                return result
        return None

    @property
    def variants(self) -> list[VariantResult]:
        """The variants measured at full size, in the case's order."""
        return [r for r in self.results if r.scale == 1.0]

    @property
    def scales(self) -> list[float]:
        return sorted({r.scale for r in self.results})

    @property
    def smaller(self) -> float | None:
        """The smaller data size of a growth story (its ``growth_scale``), if it was measured."""
        below = [s for s in self.scales if s < 1.0]
        return below[0] if below else None

    @property
    def params(self) -> dict[str, Any]:
        """The parameters at full size (without the work directory)."""
        full = self.variants
        source = full[0].params if full else self.case.params(self.size)
        return {k: v for k, v in source.items() if k != "workdir"}

    def params_at(self, scale: float) -> dict[str, Any]:
        for result in self.results:
            if result.scale == scale:
                return {k: v for k, v in result.params.items() if k != "workdir"}
        return self.case.params(self.size, scale)

    @property
    def limit(self) -> int | None:
        return self.case.limit(self.params)
