"""Render case results: the side-by-side text table and the JSON document."""

from __future__ import annotations

import json
from typing import IO, Any, Sequence

from casebook.runner import CaseResult, VariantResult
from leakhunt.units import format_size

__all__ = ["render_table", "render_json", "to_document", "versions_line"]

_HEADER = (
    ("case", 22, "<"),
    ("metric", 8, "<"),
    ("budget", 10, ">"),
    ("leaky peak", 11, ">"),
    ("retained", 10, ">"),
    ("s", 6, ">"),
    ("fixed peak", 11, ">"),
    ("retained", 10, ">"),
    ("s", 6, ">"),
    ("ratio", 7, ">"),
    ("reproduced", 10, "<"),
)


def _row(cells: Sequence[str]) -> str:
    parts = [f"{cell:{align}{width}}" for cell, (_, width, align) in zip(cells, _HEADER)]
    return "  ".join(parts).rstrip()


def _figures(v: VariantResult | None) -> list[str]:
    if v is None:
        return ["", "", ""]
    return [format_size(v.peak), format_size(v.retained), f"{v.seconds:.2f}"]


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}x"


def versions_line(versions: dict[str, str]) -> str:
    keys = ("python", "numpy", "pandas", "pyarrow", "polars", "duckdb")
    return ", ".join(f"{k} {versions[k]}" for k in keys if k in versions)


def render_table(results: Sequence[CaseResult], versions: dict[str, str], file: IO[str]) -> None:
    """The side-by-side table, then one plain line per case whose claim did not hold."""
    size = results[0].size if results else "?"
    print(f"leakhunt casebook, size {size}: {versions_line(versions)}", file=file)
    print("peak: high-water RSS above the start (plus pool workers' PSS); "
          "retained: settled RSS growth while the result is alive", file=file)
    print(file=file)
    print(_row([name for name, _, _ in _HEADER]), file=file)
    for r in results:
        print(_row([r.case.name, r.metric, format_size(r.limit), *_figures(r.leaky),
                    *_figures(r.fixed), _ratio(r.ratio), "yes" if r.reproduced else "NO"]), file=file)
        for name, alt in r.alternatives.items():
            # No ratio: the column is leaky over fixed, and an alternative is neither.
            print(_row([f"  {r.case.name}: {name}", "", "", "", "", "", *_figures(alt)]), file=file)
        for name, why in r.skipped.items():
            print(f"  {r.case.name}: {name} skipped: {why}", file=file)
    print(file=file)
    reproduced = sum(r.reproduced for r in results)
    print(f"{reproduced} of {len(results)} cases reproduced.", file=file)
    for r in results:
        if not r.reproduced:
            print(f"{r.case.name}: {r.verdict}.", file=file)


def to_document(results: Sequence[CaseResult], versions: dict[str, str]) -> dict[str, Any]:
    return {
        "cases": [r.to_dict() for r in results],
        "size": results[0].size if results else None,
        "versions": versions,
    }


def render_json(results: Sequence[CaseResult], versions: dict[str, str], file: IO[str]) -> None:
    json.dump(to_document(results, versions), file, indent=2)
    file.write("\n")
