"""Run one step of a case in this (fresh) process and write what it measured as JSON.

    python -m casebook._child setup CASE SIZE WORKDIR
    python -m casebook._child run CASE VARIANT WORKDIR OUT.json [--why] [--profile]

``setup`` generates the case's data into WORKDIR and saves the parameters there. ``run``
measures one variant on that data. A fresh process per variant means no variant inherits
another's heap, caches or allocator state. Results go to a file, not stdout, so that a case
that prints cannot corrupt them.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

from casebook import get_case
from casebook._case import Case

PARAMS_FILE = "params.json"

# What the leaky version returned, kept at module level while why_alive looks for its path:
# a module global is a root, as a long-lived results list is in a real job.
KEPT: list[Any] = []


def _setup(case: Case, size: str, workdir: Path) -> None:
    params = case.prepare(size, workdir)
    (workdir / PARAMS_FILE).write_text(json.dumps(params))


def _retention_path() -> str:
    """What why_alive says about the biggest buffer that what is in KEPT holds alive."""
    try:
        from leakhunt.retention import biggest_buffers, why_alive
    except ImportError as exc:  # the engine's retention module is not installed
        return f"(why_alive unavailable: {exc})"
    buffers = biggest_buffers()
    if not buffers:
        return "(no buffer of 1 MiB or more is alive)"
    target = buffers[0][0]
    del buffers  # our own list would show up as a path of its own
    return str(why_alive(target))


def _line_profile(case: Case, variant: str, params: dict[str, Any]) -> str:
    """memory_profiler's line-by-line table for one call of the variant."""
    try:
        from memory_profiler import LineProfiler, show_results
    except ImportError:
        return "(memory_profiler is not installed: pip install \"leakhunt[casebook]\")"
    fn = case.variant(variant)
    profiler = LineProfiler()
    profiler.add_function(fn)
    profiler.enable_by_count()
    try:
        fn(params)
    finally:
        profiler.disable_by_count()
    out = io.StringIO()
    show_results(profiler, stream=out, precision=1)
    # Paths relative to the checkout: the pages must not depend on where they were made.
    root = str(Path(__file__).resolve().parent.parent) + "/"
    return out.getvalue().replace(root, "")


def _run(case: Case, variant: str, workdir: Path, *, why: bool, profile: bool) -> dict[str, Any]:
    from leakhunt.measure import measure
    from leakhunt.settle import settle

    params = json.loads((workdir / PARAMS_FILE).read_text())
    fn = case.variant(variant)
    case.warm_up(workdir, (variant,))
    if not case.settle_after:
        settle()  # measure(settle=False) below would start from an unsettled heap otherwise
    with measure(settle=case.settle_after, children=case.children) as m:
        result = fn(params)
    measurement = m.measurement
    peak = measurement.peak
    if case.children and peak is not None:
        peak += measurement.children_peak or 0
    figures: dict[str, Any] = {
        "peak": peak,
        "retained": measurement.rss_growth,
        "seconds": round(measurement.seconds, 3),
        "self_peak": measurement.peak,
        "children_peak": measurement.children_peak,
        "arrow_peak": measurement.arrow_peak,
        "allocator_retention": measurement.allocator_retention,
    }
    KEPT.append(result)
    del result  # only KEPT holds it now, so the path starts at a global, not at our frame
    if why:
        figures["why_alive"] = _retention_path()
    KEPT.clear()
    if profile:
        settle()
        figures["line_profile"] = _line_profile(case, variant, params)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m casebook._child")
    sub = parser.add_subparsers(dest="step", required=True)
    p_setup = sub.add_parser("setup")
    p_setup.add_argument("case")
    p_setup.add_argument("size")
    p_setup.add_argument("workdir", type=Path)
    p_run = sub.add_parser("run")
    p_run.add_argument("case")
    p_run.add_argument("variant")
    p_run.add_argument("workdir", type=Path)
    p_run.add_argument("out", type=Path)
    p_run.add_argument("--why", action="store_true")
    p_run.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)

    case = get_case(args.case)
    if args.step == "setup":
        started = time.perf_counter()
        _setup(case, args.size, args.workdir)
        print(f"setup {case.name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        return 0
    figures = _run(case, args.variant, args.workdir, why=args.why, profile=args.profile)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(figures))
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
