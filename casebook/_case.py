"""What a case is: a story, a claim, a leaky and a fixed version, and how to judge them.

This module imports nothing heavy: the CLI lists and validates cases without paying for pandas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

__all__ = ["Case", "SIZES", "METRICS", "NOISE_FLOOR"]

SIZES = ("small", "medium", "large")
METRICS = ("peak", "retained")

# Below this, a figure is noise (arena steps, import caches): ratios treat it as this much.
NOISE_FLOOR = 1024 * 1024

Params = Mapping[str, Any]


@dataclass(frozen=True)
class Case:
    """One story from a seed document, reproduced and fixed.

    ``leaky`` and ``fixed`` take the data that ``setup`` prepared (JSON-able: plain values and
    paths as strings) and return what the caller keeps. For a "retained" case that return
    value is the point: memory is read while it is still alive.
    """

    name: str
    title: str
    source: str  # the seed document's title
    story: str  # what happened, in our words
    claim: str  # the claim we measure
    metric: Literal["peak", "retained"]
    sizes: Mapping[str, Params]  # small / medium / large -> parameters
    leaky: Callable[[Params], Any]
    fixed: Callable[[Params], Any]
    budget: Callable[[Params], dict[str, int]]  # budget keywords (rss / peak / children) in bytes
    lesson: str  # the fix, in one or two sentences
    setup: Callable[[Params, Path], Params] | None = None  # unmeasured data preparation
    expect: Literal["leak", "myth"] = "leak"
    # Count child processes' memory in the peak (process pools).
    children: bool = False
    # False: do not settle after the call. For cases about what settling itself gives back.
    settle_after: bool = True
    # Other ways to do the same job, measured side by side (name -> function, like fixed).
    alternatives: Mapping[str, Callable[[Params], Any]] = field(default_factory=dict)
    # Modules an alternative needs; missing ones skip that alternative.
    alternative_requires: Mapping[str, str] = field(default_factory=dict)
    # Variants to profile line by line with memory_profiler for the docs.
    line_profile: tuple[str, ...] = ()
    # Imported before measuring: importing pandas alone costs ~90 MB of RSS, which is not
    # what any case is about.
    imports: tuple[str, ...] = ("numpy", "pandas")
    # Helpers whose source the docs show next to leaky/fixed.
    helpers: tuple[Callable[..., Any], ...] = ()

    def params(self, size: str) -> dict[str, Any]:
        if size not in self.sizes:
            raise ValueError(f"unknown size {size!r} for case {self.name!r}: use one of {', '.join(SIZES)}")
        return dict(self.sizes[size])

    def variant(self, name: str) -> Callable[[Params], Any]:
        if name == "leaky":
            return self.leaky
        if name == "fixed":
            return self.fixed
        if name in self.alternatives:
            return self.alternatives[name]
        accepted = ", ".join(["leaky", "fixed", *self.alternatives])
        raise ValueError(f"case {self.name!r} has no variant {name!r}: use one of {accepted}")

    def warm_up(self, workdir: Path, variants: tuple[str, ...] = ("leaky", "fixed")) -> None:
        """Import what the case uses and run ``variants`` once on tiny data in ``workdir``.

        First use costs memory that stays (imports, lazily built tables, the Arrow pool's
        first segments); none of that is the pattern a case is about.
        """
        import importlib
        import shutil

        for module in self.imports:
            importlib.import_module(module)
        if "warmup" not in self.sizes:
            return
        scratch = workdir / "warmup"
        scratch.mkdir(exist_ok=True)
        try:
            params = self.prepare("warmup", scratch)
            for name in variants:
                self.variant(name)(params)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def prepare(self, size: str, workdir: Path) -> dict[str, Any]:
        """Parameters for ``size`` plus whatever ``setup`` generated into ``workdir``."""
        params = self.params(size)
        params["workdir"] = str(workdir)
        if self.setup is not None:
            params = dict(self.setup(params, workdir))
            params["workdir"] = str(workdir)
        return params
