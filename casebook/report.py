"""Render case results: the terminal tables (through rich) and the JSON document.

The terminal output fits 100 columns, has colour only on a terminal (and never with
``NO_COLOR`` set: rich honours it), and shows a myth that does not hold as a myth, not as a
failure.
"""

from __future__ import annotations

import json
from typing import IO, Any, Mapping, Sequence

from casebook.model import METRICS
from casebook.results import CaseResult, VariantResult
from casebook.verdicts import (
    CASE_VERDICTS,
    CPU_SPREAD,
    GROWTH_LINE,
    SPREAD,
    TIME_SPREAD,
    budget_verdict,
    case_verdict,
    growth_shape,
    judge_claims,
    ratio,
    reproduced,
    case_band,
)

__all__ = ["SCHEMA", "WIDTH", "console", "render_json", "render_table", "to_document", "versions_line"]

#: Identifies the document ``leakhunt casebook --json`` prints.
SCHEMA = "leakhunt.casebook/3"
#: The terminal output's width at most.
WIDTH = 100

# How each verdict looks in the table: short, and coloured by what it means for the reader.
_VERDICT_STYLE: Mapping[str, tuple[str, str]] = {
    "reproduced": ("reproduced", "green"),
    "reproduced, story's fix falls short": ("story's fix short", "yellow"),
    "reproduced, no fix keeps it": ("no fix keeps it", "red"),
    "reproduced, casebook's fix fails": ("our fix fails", "red"),
    "not reproduced": ("not reproduced", "yellow"),
    "myth: does not hold": ("myth: does not hold", "cyan"),
    "myth: holds after all": ("myth: holds", "yellow"),
    "inconclusive": ("inconclusive", "magenta"),
    "claims only": ("claims only", "blue"),
    "not run": ("not run", "dim"),
}
_CLAIM_STYLE: Mapping[str | None, str] = {
    "holds": "green", "does not hold": "cyan", "partly": "yellow", "inconclusive": "magenta", None: "dim",
}


def console(file: IO[str], *, force_terminal: bool | None = None) -> Any:
    """A rich console for ``file``: 100 columns at most, colour only where it belongs."""
    from rich.console import Console

    probe = Console(file=file, force_terminal=force_terminal)
    width = min(WIDTH, probe.width) if probe.is_terminal else WIDTH
    return Console(file=file, width=width, force_terminal=force_terminal, highlight=False)


def versions_line(versions: Mapping[str, str]) -> str:
    keys = ("python", "numpy", "pandas", "pyarrow", "polars", "duckdb", "dask")
    return ", ".join(f"{k} {versions[k]}" for k in keys if k in versions)


def _size(value: float | int | None) -> str:
    from leakhunt import format_size

    return "n/a" if value is None else format_size(int(value))


def _metric(result: VariantResult | None, metric: str) -> float | int | None:
    return None if result is None else result.median(metric)


def best_ratio(r: CaseResult) -> float | None:
    """The story's code over the casebook's best fix, on the case's metric."""
    best = r.case.best_fix
    if r.case.expect == "claims" or best is None:
        return None
    leaky, fixed = _metric(r.get("leaky"), r.case.metric), _metric(r.get(best), r.case.metric)
    return None if leaky is None or fixed is None else ratio(leaky, fixed)


def _verdict_table(results: Sequence[CaseResult]) -> Any:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0), show_edge=False)
    for name in ("case", "metric"):
        table.add_column(name, no_wrap=True)
    for name in ("budget", "story", "its fix", "our fix", "x"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for r in results:
        metric = r.case.metric
        label, style = _VERDICT_STYLE[case_verdict(r)]
        value = best_ratio(r)
        shown_metric = "" if r.case.expect == "claims" else ("workers" if metric == "worker_peak" else metric)
        figures = [_size(_metric(r.get(role), metric)) if r.get(role) else ""
                   for role in ("leaky", "story_fix", "fixed")]
        table.add_row(r.case.name, shown_metric, _size(r.limit) if r.limit is not None else "", *figures,
                      "" if value is None else f"{value:.1f}", Text(label, style=style))
    return table


def _ledger(results: Sequence[CaseResult]) -> Any:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    ledger = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0), show_edge=False,
                   title="claims, as measured here", title_justify="left")
    ledger.add_column("case", no_wrap=True)
    ledger.add_column("verdict", no_wrap=True)
    ledger.add_column("claim", overflow="fold")
    for r in results:
        if r.not_run:
            continue  # said once below, with what to install
        for claim in judge_claims(r):
            shown = claim.verdict or "not measured"
            ledger.add_row(r.case.name, Text(shown, style=_CLAIM_STYLE[claim.verdict]), claim.text)
    return ledger


def render_table(results: Sequence[CaseResult], versions: Mapping[str, str], file: IO[str], *,
                 failures: Mapping[str, str] | None = None, force_terminal: bool | None = None) -> None:
    """The verdict table, then the claim ledger, then a line per case not run or failed."""
    from rich.text import Text

    out = console(file, force_terminal=force_terminal)
    size = results[0].size if results else "?"
    runs = results[0].runs if results else 0
    out.print(f"leakhunt casebook, size {size}, median of {runs} runs: {versions_line(versions)}")
    out.print(f"verdicts: decided only when a figure's runs and {SPREAD:.0%} or more either side of "
              f"their median (the spread between invocations) fall on one side of the line; "
              f"otherwise inconclusive", style="dim")
    out.print(_verdict_table(results))
    ledger = _ledger(results)
    if ledger.row_count:
        out.print(ledger)
    for r in results:
        if r.not_run:
            out.print(Text(f"{r.case.name}: not run: {r.not_run}", style="yellow"))
    done = sum(reproduced(r) for r in results)
    leaks = sum(r.case.expect == "leak" and not r.not_run for r in results)
    out.print(f"{done} of {leaks} leak stories reproduced; evidence for each claim: --json or "
              f"--markdown DIR.")
    for name, error in (failures or {}).items():
        out.print(Text(f"{name}: failed: {error.splitlines()[0]}", style="red"))


def _variant_document(r: CaseResult, name: str) -> dict[str, Any]:
    metric = r.case.metric
    points = [v for v in r.results if v.name == name]
    full = r.get(name)
    out: dict[str, Any] = {"kind": points[0].kind, "label": points[0].label, "points": []}
    for point in points:
        entry = point.to_dict(metric)
        entry["verdict"] = budget_verdict(case_band(r, point, metric), r.case.limit(point.params))
        if point.timeline:
            entry["timeline"] = [list(p) for p in point.timeline]
        out["points"].append(entry)
    smaller = r.get(name, r.case.growth_scale)
    if smaller is not None and full is not None:
        out["growth"] = {"scale": r.case.growth_scale, "smaller": smaller.median(metric),
                         "full": full.median(metric),
                         "shape": growth_shape(r, name)}
    if full is not None and full.explanation:
        out["explanation"] = full.explanation
        out["explanation_data"] = full.explanation_data
    if full is not None and full.line_profile:
        out["line_profile"] = full.line_profile
    return out


def _medians(result: VariantResult | None, metric: str) -> dict[str, Any] | None:
    if result is None:
        return None
    return {name: result.median(name) for name in dict.fromkeys(("peak", "retained", "seconds", metric))}


def causes(r: CaseResult) -> list[dict[str, Any]]:
    """Where the gain comes from: each cause's variant against the story's code."""
    metric = r.case.metric
    leaky = _metric(r.get("leaky"), metric)
    out = []
    for name, cause in r.case.causes.items():
        value = _metric(r.get(name), metric)
        if value is None:
            continue
        gain = None if leaky is None else ratio(leaky, value)
        out.append({"variant": name, "cause": cause, metric: value, "gain": gain})
    return out


def case_document(r: CaseResult) -> dict[str, Any]:
    from casebook.stories import STORIES

    case = r.case
    names = list(dict.fromkeys(v.name for v in r.results))
    value = best_ratio(r)
    doc: dict[str, Any] = {
        "name": case.name,
        "title": case.title,
        "story": case.story,
        "source": STORIES[case.story].title,
        "metric": case.metric,
        "expect": case.expect,
        "size": r.size,
        "runs": r.runs,
        "params": r.params,
        "budget": None if r.limit is None else {case.metric: r.limit},
        "verdict": case_verdict(r),
        "reproduced": reproduced(r),
        "ratio": None if value is None else round(value, 2),
        "claims": [c.to_dict() for c in judge_claims(r)],
        "variants": {name: _variant_document(r, name) for name in names},
        "causes": causes(r),
        "skipped": dict(r.skipped),
        "not_run": r.not_run,
    }
    if case.expect != "claims":
        doc["leaky"] = _medians(r.get("leaky"), case.metric)
        doc["fixed"] = _medians(r.get(case.best_fix or ""), case.metric)
    return doc


def to_document(results: Sequence[CaseResult], versions: Mapping[str, str],
                failures: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "size": results[0].size if results else None,
        "runs": results[0].runs if results else None,
        "margins": {"spread": SPREAD, "cpu_spread": CPU_SPREAD, "time_spread": TIME_SPREAD,
                    "growth_line": GROWTH_LINE},
        "metrics": dict(METRICS),
        "verdicts": dict(CASE_VERDICTS),
        "versions": dict(versions),
        "cases": [case_document(r) for r in results],
        "failures": dict(failures or {}),
    }


def render_json(results: Sequence[CaseResult], versions: Mapping[str, str], file: IO[str],
                failures: Mapping[str, str] | None = None) -> None:
    json.dump(to_document(results, versions, failures), file, indent=2)
    file.write("\n")
