"""Run cases: set up data once per case, measure each variant in a fresh process, judge.

The figures a case is judged on:

- ``peak``: the high-water mark of RSS above the start of the call (plus the child
  processes' PSS for cases that use a pool);
- ``retained``: settled RSS growth while what the call returned is still alive.

A case is *reproduced* when its leaky version breaks the case's budget and its fixed version
keeps it. ``ratio`` is leaky over fixed on the case's metric, each taken as at least
:data:`~casebook._case.NOISE_FLOOR` so that a fix that grows nothing does not divide by zero.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import IO, Any

from casebook._case import NOISE_FLOOR, Case

__all__ = ["VariantResult", "CaseResult", "CaseError", "run_case", "versions"]

# How long one variant may take before we give up on it (large sizes included).
VARIANT_TIMEOUT = 1800


class CaseError(RuntimeError):
    """A step of a case failed in its subprocess; the message carries its stderr tail."""


@dataclass(frozen=True)
class VariantResult:
    name: str
    peak: int | None
    retained: int | None
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def figure(self, metric: str) -> int | None:
        return self.peak if metric == "peak" else self.retained

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"peak": self.peak, "retained": self.retained, "seconds": self.seconds}
        for key in ("self_peak", "children_peak", "allocator_retention"):
            if self.extra.get(key) is not None:
                out[key] = self.extra[key]
        return out


@dataclass(frozen=True)
class CaseResult:
    case: Case
    size: str
    params: dict[str, Any]
    leaky: VariantResult
    fixed: VariantResult
    alternatives: dict[str, VariantResult]
    skipped: dict[str, str]  # alternative -> why it did not run

    @property
    def metric(self) -> str:
        return self.case.metric

    @property
    def budget(self) -> dict[str, int]:
        return self.case.budget(self.params)

    @property
    def limit(self) -> int:
        """The budget on the case's metric, in bytes."""
        key = "rss" if self.metric == "retained" else "peak"
        return self.budget[key]

    def breaks(self, variant: VariantResult) -> bool:
        value = variant.figure(self.metric)
        return value is not None and value > self.limit

    @property
    def ratio(self) -> float | None:
        leaky, fixed = self.leaky.figure(self.metric), self.fixed.figure(self.metric)
        if leaky is None or fixed is None:
            return None
        return max(leaky, NOISE_FLOOR) / max(fixed, NOISE_FLOOR)

    @property
    def reproduced(self) -> bool:
        return self.breaks(self.leaky) and not self.breaks(self.fixed)

    @property
    def verdict(self) -> str:
        """One plain sentence: did the story's claim hold here?"""
        if self.reproduced:
            if self.case.expect == "myth":
                return "reproduced: the claim holds here after all"
            return "reproduced"
        if self.breaks(self.fixed):
            return "NOT reproduced: the fixed version breaks the budget too"
        if self.case.expect == "myth":
            return "NOT reproduced: the claim does not hold here (a myth on these versions)"
        return "NOT reproduced: the leaky version keeps the budget"

    def to_dict(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "name": self.case.name,
            "title": self.case.title,
            "source": self.case.source,
            "metric": self.metric,
            "reproduced": self.reproduced,
            "expect": self.case.expect,
            "verdict": self.verdict,
            "size": self.size,
            "budget": self.budget,
            "ratio": None if ratio is None else round(ratio, 2),
            "leaky": self.leaky.to_dict(),
            "fixed": self.fixed.to_dict(),
            "alternatives": {name: v.to_dict() for name, v in self.alternatives.items()},
            "skipped": dict(self.skipped),
        }


def versions() -> dict[str, str]:
    """The versions the figures were measured on."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("leakhunt", "numpy", "pandas", "pyarrow", "polars", "duckdb", "memory_profiler"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    try:
        out["glibc"] = "-".join(platform.libc_ver())
    except Exception:  # pragma: no cover - libc_ver reads the executable; never fatal
        pass
    return out


def _child(args: list[str], what: str, env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "casebook._child", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        timeout=VARIANT_TIMEOUT,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or "").strip().splitlines()[-15:])
        raise CaseError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def _child_env() -> dict[str, str]:
    """The parent's environment, plus the path that makes `casebook` importable there."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_case(
    case: Case,
    size: str,
    *,
    progress: IO[str] | None = None,
    why: bool = False,
    profile: bool = False,
    alternatives: bool = True,
) -> CaseResult:
    """Set up ``case`` at ``size`` and measure each variant in its own process.

    ``why`` asks the leaky run for its retention path (why_alive); ``profile`` adds a
    memory_profiler line table for the variants the case names. Temporary data lives in a
    directory that is removed afterwards, whatever happens.
    """
    env = _child_env()

    def say(text: str) -> None:
        if progress is not None:
            print(text, file=progress, flush=True)

    workdir = Path(tempfile.mkdtemp(prefix=f"leakhunt-casebook-{case.name}-"))
    try:
        started = time.perf_counter()
        _child(["setup", case.name, size, str(workdir)], f"{case.name}: setup", env)
        if case.setup is not None:
            say(f"  {case.name}: data ready in {time.perf_counter() - started:.1f} s")
        params = json.loads((workdir / "params.json").read_text())

        names = ["leaky", "fixed"]
        skipped: dict[str, str] = {}
        if alternatives:
            for name in case.alternatives:
                module = case.alternative_requires.get(name)
                if module and find_spec(module) is None:
                    skipped[name] = f"{module} is not installed (pip install \"leakhunt[compare]\")"
                    continue
                names.append(name)

        results: dict[str, VariantResult] = {}
        for name in names:
            out = workdir / f"result-{name}.json"
            args = ["run", case.name, name, str(workdir), str(out)]
            if why and name == "leaky":
                args.append("--why")
            if profile and name in case.line_profile:
                args.append("--profile")
            _child(args, f"{case.name}: {name}", env)
            figures = json.loads(out.read_text())
            result = VariantResult(
                name=name,
                peak=figures.pop("peak"),
                retained=figures.pop("retained"),
                seconds=figures.pop("seconds"),
                extra=figures,
            )
            results[name] = result
            say(f"  {case.name}: {name:<9} {_brief(result, case.metric)}")
        return CaseResult(
            case=case,
            size=size,
            params={k: v for k, v in params.items() if k != "workdir"},
            leaky=results.pop("leaky"),
            fixed=results.pop("fixed"),
            alternatives=results,
            skipped=skipped,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _brief(result: VariantResult, metric: str) -> str:
    from leakhunt.units import format_size

    return (f"{metric} {format_size(result.figure(metric))}, "
            f"{result.seconds:.2f} s")
