"""Synthetic casebook results, for the tests of verdicts, claims and rendering (no measuring)."""

from __future__ import annotations

import random
from typing import Any, Mapping

from casebook.model import Case
from casebook.protocol import RunFigures
from casebook.results import CaseResult, VariantResult

MIB = 2**20


def run(value: float | int | None = None, *, peak: int | None = None, retained: int | None = None,
        seconds: float = 0.5, cpu_seconds: float | None = None, **extra: Any) -> RunFigures:
    """One run; ``value`` sets both peak and retained unless they are given."""
    return RunFigures(
        peak=int(value) if peak is None and value is not None else peak,
        retained=int(value) if retained is None and value is not None else retained,
        seconds=seconds, started=100.0, ended=100.0 + seconds,
        cpu_seconds=seconds if cpu_seconds is None else cpu_seconds,
        children_peak=extra.pop("children_peak", None), children_idle=extra.pop("children_idle", None),
        workers=extra.pop("workers", None), extra=extra,
    )


def result(case: Case, figures: Mapping[tuple[str, float], list[RunFigures]], size: str = "small",
           params: Mapping[str, Any] | None = None, **kwargs: Any) -> CaseResult:
    """A CaseResult of ``case`` from {(variant, scale): [runs]}."""
    out = []
    for (name, scale), runs in figures.items():
        variant = case.variant(name)
        p = {**case.params(size, scale), **(params or {})}
        out.append(VariantResult(name=name, kind=variant.kind, label=variant.label, scale=scale,
                                 params=p, runs=tuple(runs), **kwargs.get(name, {})))
    return CaseResult(case=case, size=size, runs=max((len(r) for r in figures.values()), default=0),
                      results=tuple(out))


def simple(case: Case, values: Mapping[str, float | int], half: Mapping[str, float | int] | None = None,
           runs: int = 3) -> CaseResult:
    """Every named variant at full size with ``values`` (bytes), repeated ``runs`` times."""
    figures: dict[tuple[str, float], list[RunFigures]] = {
        (name, 1.0): [run(value) for _ in range(runs)] for name, value in values.items()}
    for name, value in (half or {}).items():
        figures[(name, case.growth_scale)] = [run(value) for _ in range(runs)]
    return result(case, figures)


_GRID = [0, MIB // 2, 2 * MIB, 3 * MIB, 4 * MIB, 6 * MIB, 8 * MIB, 12 * MIB, 32 * MIB, 64 * MIB,
         128 * MIB, 512 * MIB, 8 * 1024 * MIB]
# Figures that variants report themselves (casebook.model.Observed), in bytes...
_SIZES = ("copied", "frame", "freed", "found", "merge_peak", "usable", "limit", "address_space",
          "resident", "traced_peak", "dicts", "converted", "written", "loaded", "merged", "column",
          "filtered", "sorted", "anon_peak", "children_idle", "children_peak")
# ...signed...
_DELTAS = ("flush_delta",)
# ...and counts.
_COUNTS = ("normal_waiting", "drain_waiting")
# ...and yes/no (killed_batch).
_FLAGS = ("killed", "reported", "named", "kernel")


def random_result(case: Case, rnd: random.Random) -> CaseResult:
    """Every variant at both sizes with figures drawn from a coarse grid: anything can happen."""
    figures: dict[tuple[str, float], list[RunFigures]] = {}
    scales = (1.0, case.growth_scale) if case.growth_keys else (1.0,)
    for variant in case.variants:
        for scale in scales:
            extra: dict[str, Any] = {name: rnd.choice(_GRID[1:]) for name in _SIZES}
            extra.update({name: rnd.choice([-1, 1]) * rnd.choice(_GRID) for name in _DELTAS})
            extra.update({name: rnd.choice([0, 1, 2, 5, 12, 20]) for name in _COUNTS})
            extra.update({name: rnd.choice([0, 1]) for name in _FLAGS})
            extra["exit_status"] = rnd.choice([0, 1, -9])
            extra["workers"] = 2
            figures[(variant.name, scale)] = [run(rnd.choice(_GRID), seconds=rnd.choice([0.1, 1.0, 10.0]),
                                                  cpu_seconds=rnd.choice([0.05, 0.5, 5.0, 50.0]), **extra)]
    params = {"file_bytes": rnd.choice(_GRID[2:]), "db_bytes": rnd.choice(_GRID[2:]), "path": "sales.csv"}
    return result(case, figures, params=params)
