"""``leakhunt dask SCHEDULER_ADDRESS``: inspect a running Dask cluster once, or watch it a while.

``--watch 60s`` registers leakhunt's worker plugin for that long on a cluster whose client code
you cannot wrap, and reports per task prefix as ``watch(client)`` does. Otherwise, for every worker: resident memory, Dask's managed part, and the unmanaged rest split into
numpy, Arrow, the Python heap, allocator retention (with ``--settle``), code and libraries and
what none of those explain; then the biggest buffers Dask does not manage and what keeps them
alive. It answers Dask's "Unmanaged memory use is high: a leak, or not released to the OS?".

``distributed`` is imported only when the command runs, so ``leakhunt --help`` works without it.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

__all__ = ["configure_parser", "run"]

PROG = "leakhunt dask"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.usage = "leakhunt dask SCHEDULER_ADDRESS [--watch DURATION] [--settle] [--json PATH] [--html PATH]"
    parser.add_argument("address", metavar="SCHEDULER_ADDRESS",
                        help="the scheduler, e.g. tcp://10.0.0.5:8786 (as Client() takes it)")
    parser.add_argument("--watch", metavar="DURATION",
                        help="watch the tasks the cluster runs for DURATION (e.g. 60s, 5m, 1h), then report per "
                             "task prefix and per worker (the workers are settled at the end); Ctrl-C ends it early")
    parser.add_argument("--settle", action="store_true",
                        help="collect garbage and hand freed memory back on each worker first, to measure "
                             "what the allocators kept (changes the workers' memory: it frees it)")
    parser.add_argument("--paths", type=int, default=3, metavar="N",
                        help="biggest survivors to search a retention path for, per worker (default 3; 0: none)")
    parser.add_argument("--min-size", default="1 MiB", metavar="SIZE",
                        help="smallest buffer counted as a survivor (default 1 MiB)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long to wait for the scheduler (default 10)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    parser.add_argument("--html", metavar="PATH", help="also write the report as an HTML page to PATH")


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds from ``"60s"``, ``"5m"``, ``"1h"`` or ``"90"`` (seconds); ``ValueError`` quoting it."""
    value = text.strip().lower()
    number = value.rstrip("abcdefghijklmnopqrstuvwxyz ")
    unit = value[len(number):].strip()
    try:
        seconds = float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        raise ValueError(f"--watch {text!r} is not a duration: expected a number with s, m or h, such as "
                         f"60s, 5m or 1h") from None
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"--watch {text!r} is not a duration > 0: expected e.g. 60s, 5m or 1h")
    return seconds


def _report(args: argparse.Namespace, client: Any, min_size: int, period: float | None) -> Any:
    from leakhunt.dask import inspect_cluster, watch

    if period is None:
        return inspect_cluster(client, settle=args.settle, paths=args.paths, min_size=min_size)
    w = watch(client, paths=args.paths, survivor_min=min_size)
    print(f"watching {args.address} for {period:g} s (Ctrl-C ends it early) ...", file=sys.stderr)
    with w:
        try:
            time.sleep(period)
        except KeyboardInterrupt:
            print("ended early: reporting what was watched", file=sys.stderr)
    return w.report


def run(args: argparse.Namespace) -> int:
    from leakhunt.units import parse_size

    # Every argument is checked before we connect: nothing is measured for a bad command line.
    if not args.address.strip():
        return _error("SCHEDULER_ADDRESS is empty: give the scheduler's address, e.g. tcp://10.0.0.5:8786")
    if args.paths < 0:
        return _error(f"--paths {args.paths} is not valid: expected a whole number >= 0")
    if args.timeout <= 0:
        return _error(f"--timeout {args.timeout} is not valid: expected seconds > 0")
    try:
        min_size = parse_size(args.min_size)
        period = parse_duration(args.watch) if args.watch is not None else None
    except ValueError as exc:
        return _error(str(exc) if str(exc).startswith("--watch") else f"--min-size: {exc}")
    from leakhunt.report.files import ReportPathError, check_report_path

    for flag, path, fmt in (("--json", args.json, "json"), ("--html", args.html, "html")):
        if path is not None:
            try:  # the one report-path rule of every front end (leakhunt.report.files)
                check_report_path(path, option=flag, formats=(fmt,))
            except ReportPathError as exc:
                return _error(str(exc))
    try:
        from distributed import Client

        import leakhunt.dask  # noqa: F401 - fail here, with the extra to install
    except ImportError as exc:
        return _error(str(exc) if "leakhunt[dask]" in str(exc) else
                      f'{exc}; `leakhunt dask` needs Dask\'s distributed: pip install "leakhunt[dask]"')
    try:
        client = Client(args.address, timeout=f"{args.timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        return _error(f"cannot connect to the scheduler at {args.address!r} within {args.timeout:g} s: {exc}")
    try:
        report = _report(args, client, min_size, period)
    except ImportError as exc:
        return _error(str(exc))
    finally:
        client.close()
    print(report.explain())
    for path in (args.json, args.html):
        if path is not None:
            try:
                report.write(path)
            except (OSError, ImportError) as exc:
                # the report is on the screen already: say which file is missing, and how to retry
                return _error(f"could not write {path!r} ({exc}); the report above is complete")
            print(f"wrote {path}", file=sys.stderr)
    return 0
