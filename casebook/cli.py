"""`leakhunt casebook`: run the casebook's cases and show every story's code beside its fixes.

Imported by the `leakhunt` dispatcher to build its parser, so this module stays light: no
pandas, no case module, no rich, until ``run`` is called.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from casebook import CASE_NAMES
from casebook.model import SIZES

__all__ = ["configure_parser", "run"]

# "test" is the test suite's size: seconds per case, still far from every budget.
_ACCEPTED_SIZES = (*SIZES, "test")
_MIN_RUNS = 3


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run real leak stories from data pipelines: each story's own code, its own fix and the "
        "casebook's, each variant in a fresh process, measured several times on the libraries "
        "installed here, with a verdict on every claim the story makes. Progress goes to "
        "stderr; the tables (or JSON) to stdout."
    )
    parser.add_argument(
        "cases", nargs="*", metavar="CASE",
        help=f"cases to run (default: all): {', '.join(CASE_NAMES)}",
    )
    # Validated in run() rather than with `choices`, so the error names the value and lists
    # the accepted ones in the same words as an unknown case.
    parser.add_argument("--size", default="small", metavar="SIZE",
                        help=f"data size: {', '.join(SIZES)} (default: small, a few minutes in all)")
    parser.add_argument("--runs", default=str(_MIN_RUNS), metavar="N",
                        help=f"runs of each variant; verdicts use the median (default and minimum: {_MIN_RUNS})")
    parser.add_argument("--jobs", default=None, metavar="N",
                        help="variants measured at the same time (default: 2, or 1 on one core)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--markdown", metavar="DIR", type=Path,
                        help="also write one Markdown page per case, plots, and a summary, into DIR")
    parser.add_argument("--no-alternatives", action="store_true",
                        help="skip the other tools measured beside pandas (generator, polars, duckdb)")


def _error(message: str) -> int:
    print(f"leakhunt casebook: error: {message}", file=sys.stderr)
    return 2


def _whole(value: str, low: int) -> int | None:
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= low else None


class _Plain:
    """Progress as plain lines on stderr: one per finished step."""

    def __init__(self) -> None:
        self.total = 0
        self.count = 0
        self.lock = threading.Lock()
        self.started = time.perf_counter()

    def start(self, total: int) -> None:
        self.total = total

    def step(self, text: str) -> None:
        pass

    def done(self, text: str) -> None:
        with self.lock:
            self.count += 1
            elapsed = time.perf_counter() - self.started
            print(f"[{self.count}/{self.total} {elapsed:5.0f} s] {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class _Bar:
    """Progress as a rich progress bar on stderr (a terminal): what runs now, and how far."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.running: list[str] = []
        self.lock = threading.Lock()
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=Console(file=sys.stderr), transient=True,
        )
        self.task: Any = None

    def start(self, total: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("casebook", total=total)

    def _show(self) -> None:
        text = ", ".join(self.running[-2:]) or "casebook"
        self.progress.update(self.task, description=text[:48].ljust(48))

    def step(self, text: str) -> None:
        with self.lock:
            self.running.append(text)
            self._show()

    def done(self, text: str) -> None:
        with self.lock:
            if text in self.running:
                self.running.remove(text)
            self.progress.advance(self.task)
            self._show()

    def close(self) -> None:
        self.progress.stop()


def _checked(args: argparse.Namespace) -> tuple[int, int] | str:
    """The runs and jobs asked for, or the error that names the bad value."""
    unknown = [name for name in args.cases if name not in CASE_NAMES]
    if unknown:
        return f"unknown case {unknown[0]!r}; accepted cases: {', '.join(CASE_NAMES)}"
    if args.size not in _ACCEPTED_SIZES:
        return f"unknown size {args.size!r}; accepted sizes: {', '.join(SIZES)}"
    runs = _whole(args.runs, _MIN_RUNS)
    if runs is None:
        return (f"--runs {args.runs!r} is not valid: expected a whole number >= {_MIN_RUNS} "
                f"(a verdict is the median of at least {_MIN_RUNS} runs)")
    default_jobs = "2" if (os.cpu_count() or 1) >= 2 else "1"
    jobs = _whole(args.jobs or default_jobs, 1)
    if jobs is None:
        return f"--jobs {args.jobs!r} is not valid: expected a whole number >= 1"
    if args.markdown is not None and args.markdown.exists() and not args.markdown.is_dir():
        return f"--markdown {str(args.markdown)!r} is not a directory"
    return runs, jobs


def _show(results: list[Any], failures: dict[str, str], args: argparse.Namespace) -> None:
    """The tables or JSON on stdout, the pages when asked, and what did not run on stderr."""
    from casebook.report import render_json, render_table
    from casebook.runner import versions

    found = versions()
    if args.json:
        render_json(results, found, sys.stdout, failures)
    else:
        render_table(results, found, sys.stdout, failures=failures)
    if args.markdown is not None and results:
        from casebook.markdown import write_pages

        for path in write_pages(results, found, args.markdown):
            print(f"wrote {path}", file=sys.stderr)
    for r in results:
        if r.not_run:
            print(f"leakhunt casebook: {r.case.name} not run: {r.not_run}", file=sys.stderr)
    for name, error in failures.items():
        print(f"leakhunt casebook: {name} failed:\n{error}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    checked = _checked(args)
    if isinstance(checked, str):
        return _error(checked)
    runs, jobs = checked

    from casebook import get_case
    from casebook.runner import run_cases

    names = list(dict.fromkeys(args.cases)) or list(CASE_NAMES)
    progress = _Bar() if sys.stderr.isatty() else _Plain()
    started = time.perf_counter()
    try:
        results, failures = run_cases(
            [get_case(name) for name in names], args.size, runs=runs, jobs=jobs,
            explain=args.markdown is not None, profile=args.markdown is not None,
            timelines=args.markdown is not None, alternatives=not args.no_alternatives,
            progress=progress,
        )
    finally:
        progress.close()
    elapsed = time.perf_counter() - started
    runs_done = [run for r in results for v in r.results for run in v.runs]
    cpu = sum(run.cpu or 0 for run in runs_done)
    print(f"leakhunt casebook: {len(names)} case(s) in {elapsed:.0f} s; {len(runs_done)} measured runs "
          f"took {cpu:.0f} s of CPU", file=sys.stderr)
    _show(results, failures, args)
    return 1 if failures else 0
