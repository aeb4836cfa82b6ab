"""`leakhunt casebook`: run the casebook's cases and show leaky versus fixed, side by side.

Imported by the `leakhunt` dispatcher to build its parser, so this module stays light: no
pandas, no case module, until ``run`` is called.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from casebook import CASE_NAMES
from casebook._case import SIZES

__all__ = ["configure_parser", "run"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run real leak stories from data pipelines: each case's leaky and fixed versions, each "
        "in a fresh process, measured on the libraries installed here. Progress goes to "
        "stderr; the table (or JSON) to stdout."
    )
    parser.add_argument(
        "cases", nargs="*", metavar="CASE",
        help=f"cases to run (default: all): {', '.join(CASE_NAMES)}",
    )
    # Validated in run() rather than with `choices`, so the error names the value and lists
    # the accepted ones in the same words as an unknown case.
    parser.add_argument("--size", default="small", metavar="SIZE",
                        help=f"data size: {', '.join(SIZES)} (default: small, seconds per case)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--markdown", metavar="DIR", type=Path,
                        help="also write one Markdown page per case, and a results summary, into DIR")
    parser.add_argument("--no-alternatives", action="store_true",
                        help="skip the side-by-side alternatives (generator, polars, duckdb, ...)")


def _error(message: str) -> int:
    print(f"leakhunt casebook: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    unknown = [name for name in args.cases if name not in CASE_NAMES]
    if unknown:
        return _error(f"unknown case {unknown[0]!r}; accepted cases: {', '.join(CASE_NAMES)}")
    if args.size not in SIZES:
        return _error(f"unknown size {args.size!r}; accepted sizes: {', '.join(SIZES)}")

    from casebook import get_case
    from casebook.report import render_json, render_table
    from casebook.runner import CaseError, run_case, versions

    names = list(dict.fromkeys(args.cases)) or list(CASE_NAMES)
    results = []
    failures = []
    for index, name in enumerate(names, 1):
        case = get_case(name)
        print(f"[{index}/{len(names)}] {name}: {case.title}", file=sys.stderr, flush=True)
        try:
            results.append(run_case(
                case, args.size,
                progress=sys.stderr,
                why=args.markdown is not None and case.metric == "retained",
                profile=args.markdown is not None,
                alternatives=not args.no_alternatives,
            ))
        except CaseError as exc:
            print(f"  {exc}", file=sys.stderr)
            failures.append(name)

    found = versions()
    if args.json:
        render_json(results, found, sys.stdout)
    else:
        render_table(results, found, sys.stdout)
    if args.markdown is not None and results:
        from casebook.markdown import write_pages

        for path in write_pages(results, found, args.markdown):
            print(f"wrote {path}", file=sys.stderr)
    if failures:
        print(f"leakhunt casebook: {len(failures)} case(s) failed: {', '.join(failures)}",
              file=sys.stderr)
        return 1
    return 0
