"""The casebook's pictures, drawn with matplotlib from measured results.

- memory over time: every variant's median run on one axis, from the start of the call;
- peak against data size, for growth stories: the story's code grows, a fix stays flat.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from casebook.results import CaseResult

__all__ = ["growth_plot", "timeline_plot"]

_MIB = 2**20


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is in the casebook's extras
        raise ImportError("the casebook's plots need matplotlib: pip install \"leakhunt[plot]\"") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=100, metadata={"Software": None})
    tmp.replace(path)
    return path


def timeline_plot(r: CaseResult, path: Path) -> Path | None:
    """Memory over the call of each variant's median run; None if none was sampled."""
    lines = [v for v in r.variants if v.timeline and r.case.variant(v.name).timeline]
    if not lines:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.8), layout="constrained")
    try:
        for variant in lines:
            assert variant.timeline is not None
            xs = [t for t, _ in variant.timeline]
            ys = [b / _MIB for _, b in variant.timeline]
            ax.plot(xs, ys, label=variant.name, linewidth=1.6,
                    linestyle="-" if variant.kind in ("leaky", "story_fix", "fixed") else "--")
        # The curve is RSS above the start: its highest point is the peak, so a peak budget
        # limits it; a budget on what stays after the call (retained) or on each worker does not.
        if r.limit is not None and r.case.metric == "peak" and not r.case.children:
            ax.axhline(r.limit / _MIB, color="grey", linestyle=":", linewidth=1)
            ax.annotate("peak budget", (0, r.limit / _MIB), xytext=(2, 2), textcoords="offset points",
                        fontsize=8, color="grey")
        who = "the process and its workers (RSS)" if r.case.children else "the process (RSS)"
        ax.set_xlabel("seconds since the call began")
        ax.set_ylabel("MiB above the start")
        ax.set_title(f"{r.case.name}: memory of {who} during the median run", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        return _save(fig, path)
    finally:
        plt.close(fig)


def _budget_line(ax: Any, r: CaseResult, key: str) -> None:
    """The budget at each data size: a growth plot shows the figure the budget limits."""
    by_size = {v.params[key]: v.params for v in r.results if key in v.params}
    limits = {x: r.case.limit(params) for x, params in sorted(by_size.items())}
    if limits and None not in limits.values():
        ax.plot(list(limits), [limit / _MIB for limit in limits.values()], color="grey", linestyle=":",
                linewidth=1, label="budget")


def growth_plot(r: CaseResult, path: Path) -> Path | None:
    """The case's metric against the data size, for the variants measured at two sizes."""
    key = r.case.growth_keys[0] if r.case.growth_keys else None
    names = [v.name for v in r.variants if r.get(v.name, r.case.growth_scale) is not None]
    if key is None or not names:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.8), layout="constrained")
    metric = r.case.metric
    try:
        for name in names:
            points = [(p.params[key], p.median(metric)) for p in (r.get(name, scale) for scale in r.scales)
                      if p is not None and p.median(metric) is not None]
            ax.plot([x for x, _ in points], [y / _MIB for _, y in points], marker="o", label=name,
                    linewidth=1.6)
        _budget_line(ax, r, key)
        ax.set_xlabel(f"data size ({key.replace('_', ' ')})")
        ax.set_ylabel(f"{metric.replace('_', ' ')}, MiB (median)")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{r.case.name}: {metric.replace('_', ' ')} as the data grows", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        return _save(fig, path)
    finally:
        plt.close(fig)
