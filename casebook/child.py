"""Run one step of a case in a fresh process, and write what it measured.

The runner forks these processes from a server that has imported the data libraries and
nothing else (:func:`serve`), or starts them with ``python -m casebook.child REQUEST.json``
where fork is not available. The request and the report are :mod:`casebook.protocol` files.
A fresh process per run means no run inherits another's heap, caches or allocator state (some
allocators, polars' for one, keep memory that no call can give back).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

from casebook import get_case
from casebook.explain import explain_retained
from casebook.model import Case, Observed, Variant
from casebook.protocol import Report, Request, RunFigures, read_params, write_params
from casebook.workers import WorkerMemory

__all__ = ["main", "serve"]


def _setup(case: Case, request: Request) -> None:
    workdir = Path(request.workdir)
    write_params(workdir, case.prepare(request.size, workdir, request.scale, request.overrides))


def _measure(case: Case, variant: Variant, params: dict[str, Any]) -> RunFigures:
    from leakhunt import measure, settle

    if not case.settle_after:
        settle()  # measure(settle=False) would start from an unsettled heap otherwise
    # A pool's or cluster's workers, started by the case's context before the call.
    pids = params.get("worker_pids", ()) if case.children and variant.context else ()
    with WorkerMemory(pids) as workers, measure(settle=case.settle_after) as m:
        started, cpu_started = time.time(), time.process_time()
        result = variant.fn(params)
        ended, cpu_ended = time.time(), time.process_time()
    # `result` is alive until here: a "retained" figure is read while the caller still holds it.
    measurement = m.measurement
    extra = dict(result.figures) if isinstance(result, Observed) else {}
    del result
    self_peak = measurement.peak
    children_peak = children_idle = None
    if pids:
        children_idle, children_peak = workers.idle, max(0, workers.peak - workers.idle)
    peak = self_peak
    if peak is not None and children_peak is not None:
        peak += children_peak
    return RunFigures(
        peak=peak,
        retained=measurement.rss_growth,
        seconds=round(measurement.seconds, 4),
        started=started,
        ended=ended,
        self_peak=self_peak,
        children_peak=children_peak,
        children_idle=children_idle,
        workers=len(pids) or None,
        allocator_retention=measurement.allocator_retention,
        arrow_peak=measurement.arrow_peak,
        cpu=round(sum(os.times()[:2]), 3),
        cpu_seconds=round(cpu_ended - cpu_started, 4),
        extra=extra,
    )


def _line_profile(variant: Variant, params: dict[str, Any]) -> str:
    """memory_profiler's line-by-line table for one call of the variant."""
    try:
        from memory_profiler import LineProfiler, show_results
    except ImportError:
        return "(memory_profiler is not installed: pip install \"leakhunt[casebook]\")"
    profiler = LineProfiler()
    profiler.add_function(variant.fn)
    profiler.enable_by_count()
    try:
        variant.fn(params)
    finally:
        profiler.disable_by_count()
    out = io.StringIO()
    show_results(profiler, stream=out, precision=1)
    # Paths relative to the checkout: the pages must not depend on where they were made.
    root = str(Path(__file__).resolve().parent.parent) + "/"
    return out.getvalue().replace(root, "")


def _run(case: Case, request: Request) -> Report:
    from leakhunt import settle

    workdir = Path(request.workdir)
    params = read_params(workdir)
    variants = [case.variant(name) for name in request.variants]
    if not variants:
        raise ValueError(f"casebook request for {case.name!r} names no variant")
    with contextlib.ExitStack() as stack:
        extra: dict[str, Any] = {}
        if case.context is not None and any(v.context for v in variants):
            extra = stack.enter_context(case.context(params))
        case.warm_up(workdir, tuple(v.name for v in variants), extra)
        first = variants[0]
        if request.step == "profile":
            settle()
            return Report(line_profile=_line_profile(first, _params_for(first, params, extra)))
        if request.step == "explain":
            limit = case.limit(params)
            settle()
            found = None if limit is None else explain_retained(first.fn, _params_for(first, params, extra), limit)
            if found is None:
                return Report()
            return Report(explanation=found[0], explanation_data=found[1])
        between_runs = extra.get("between_runs")
        runs: dict[str, tuple[RunFigures, ...]] = {}
        for variant in variants:
            call_params = _params_for(variant, params, extra)
            measured = []
            for _ in range(request.runs):
                if between_runs is not None and variant.context:
                    between_runs()
                measured.append(_measure(case, variant, call_params))
            runs[variant.name] = tuple(measured)
        return Report(runs=runs)


def _params_for(variant: Variant, params: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {**params, **extra} if variant.context else params


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m casebook.child REQUEST.json", file=sys.stderr)
        return 2
    request = Request.read(Path(args[0]))
    case = get_case(request.case)
    if request.step == "setup":
        _setup(case, request)
        return 0
    _run(case, request).write(Path(request.report))
    return 0


def serve(request_file: str, log_file: str) -> None:
    """Run a request in a process forked by the runner's fork server; output goes to the log."""
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    code = main([request_file])
    if code:
        raise SystemExit(code)


if __name__ == "__main__":
    sys.exit(main())
