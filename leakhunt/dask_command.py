"""``leakhunt dask SCHEDULER_ADDRESS``: inspect a running Dask cluster once.

For every worker: resident memory, Dask's managed part, and the unmanaged rest split into
numpy, Arrow, the Python heap, allocator retention (with ``--settle``), code and libraries and
what none of those explain; then the biggest buffers Dask does not manage and what keeps them
alive. It answers Dask's "Unmanaged memory use is high: a leak, or not released to the OS?".

``distributed`` is imported only when the command runs, so ``leakhunt --help`` works without it.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["configure_parser", "run"]

PROG = "leakhunt dask"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.usage = "leakhunt dask SCHEDULER_ADDRESS [--settle] [--json PATH] [--html PATH]"
    parser.add_argument("address", metavar="SCHEDULER_ADDRESS",
                        help="the scheduler, e.g. tcp://10.0.0.5:8786 (as Client() takes it)")
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
    except ValueError as exc:
        return _error(f"--min-size: {exc}")
    from leakhunt.report.files import ReportPathError, check_report_path

    for flag, path, fmt in (("--json", args.json, "json"), ("--html", args.html, "html")):
        if path is not None:
            try:  # the one report-path rule of every front end (leakhunt.report.files)
                check_report_path(path, option=flag, formats=(fmt,))
            except ReportPathError as exc:
                return _error(str(exc))
    try:
        from distributed import Client

        from leakhunt.dask import inspect_cluster
    except ImportError as exc:
        return _error(str(exc) if "leakhunt[dask]" in str(exc) else
                      f'{exc}; `leakhunt dask` needs Dask\'s distributed: pip install "leakhunt[dask]"')
    try:
        client = Client(args.address, timeout=f"{args.timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        return _error(f"cannot connect to the scheduler at {args.address!r} within {args.timeout:g} s: {exc}")
    try:
        report = inspect_cluster(client, settle=args.settle, paths=args.paths, min_size=min_size)
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
