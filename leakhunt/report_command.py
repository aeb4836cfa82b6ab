"""``leakhunt report``: render a saved report - a ``leakhunt run`` JSON or a pytest test report JSON.

``leakhunt report IN.json`` prints it as text; ``-o OUT.html`` writes the page, ``-o OUT.txt``
the text, ``-o OUT.png`` the timeline plot of a run. Test reports of schema versions 1 and 2
are read (1 carries no explanations). ``--compare BASE.json`` compares a test report with a
baseline (:mod:`leakhunt.baseline`): the regressions, the biggest first; the exit status is 1
when a test regressed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from leakhunt.units import whole_number

__all__ = ["configure_parser", "load", "run"]

PROG = "leakhunt report"
DEFAULT_RULE = "20%,4MiB"  # leakhunt.baseline's defaults (tests/test_baseline.py checks they agree)
_RUN_FORMATS = ("html", "text", "png")
_TEST_FORMATS = ("html", "text")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.usage = ("leakhunt report IN.json [-o OUT.html | -o OUT.txt | -o OUT.png]\n"
                    "       leakhunt report NEW.json --compare BASE.json [--regression PCT] [-o diff.html]")
    parser.epilog = ("IN.json is a file written by `leakhunt run --json` (or -o run.json), by "
                     "`pytest --leak-report-file=report.json` or a cluster report (`leakhunt dask --json cluster.json`, "
                     "ClusterReport.write; reading it needs leakhunt[dask]). Without -o the text goes to the terminal.")
    parser.add_argument("json_file", metavar="IN.json",
                        help="a `leakhunt run` JSON file, a pytest test report JSON file or a cluster report")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="write OUT.html (a self-contained page), OUT.txt (text) or, for a run, "
                             "OUT.png (the timeline plot); the suffix picks the format")
    parser.add_argument("--top", type=whole_number("--top", 1), default=10, metavar="N",
                        help="allocation sites (a run) or tests per table (a test report) to show (default 10)")
    parser.add_argument("--compare", metavar="BASE.json",
                        help="compare the test report IN.json with the baseline BASE.json (an earlier "
                             "`pytest --leak-report-file=BASE.json`): exit status 1 when a test regressed")
    parser.add_argument("--regression", metavar="PCT[,SIZE]",
                        help="with --compare: growth over the baseline that counts as a regression "
                             f"(default {DEFAULT_RULE.replace('%', '%%')}: a percentage, and a floor below which nothing is one)")


class UsageError(Exception):
    """A bad input or output: printed as ``leakhunt report: error: ...``, exit status 2."""


def load(path: str) -> Any:
    """The :class:`~leakhunt.timeline.RunRecord`, :class:`~leakhunt.report.model.TestReport` or
    cluster report (``leakhunt.dask.ClusterReport``, which needs ``distributed``) in ``path``."""
    from leakhunt.report.cluster import SCHEMA as CLUSTER_SCHEMA
    from leakhunt.report.model import SCHEMA as TEST_SCHEMA
    from leakhunt.report.model import TestReport
    from leakhunt.timeline import SCHEMA as RUN_SCHEMA
    from leakhunt.timeline import RunRecord

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise UsageError(f"cannot read {path!r}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"cannot read {path!r}: it is a directory") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" ({exc.msg} at line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise UsageError(f"{path!r} is not JSON{where}") from None
    schema = data.get("schema") if isinstance(data, dict) else None
    try:
        if schema == RUN_SCHEMA:
            return RunRecord.from_dict(data)
        if schema == TEST_SCHEMA:
            return TestReport.from_dict(data)
        if schema == CLUSTER_SCHEMA:
            return _cluster_report(path, data)
    except (ValueError, TypeError, KeyError) as exc:
        raise UsageError(f"{path!r}: {exc}") from None
    found = schema if schema is not None else (type(data).__name__ if not isinstance(data, dict) else None)
    raise UsageError(f"{path!r} is not a `leakhunt run --json` file, a pytest test report or a cluster report "
                     f"(schema {found!r}; expected {RUN_SCHEMA!r}, {TEST_SCHEMA!r} or {CLUSTER_SCHEMA!r})")


def _cluster_report(path: str, data: dict[str, Any]) -> Any:
    try:
        from leakhunt.dask import ClusterReport
    except ImportError as exc:  # distributed missing: the error names what to install
        raise UsageError(f"{path!r} is a cluster report: {exc}") from None
    return ClusterReport.from_dict(data)


def _comparing(args: argparse.Namespace) -> Any:
    """(baseline report, rule) of --compare, checked before any work; None without it."""
    from leakhunt.baseline import BaselineError, Rule, load_report

    if args.compare is None:
        if args.regression is not None:
            raise UsageError("--regression only applies with --compare: add it, or drop it")
        return None
    try:
        rule = Rule.parse(args.regression, where="--regression") if args.regression is not None else Rule()
        return load_report(args.compare, option="--compare"), rule
    except BaselineError as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _compare(report: Any, comparing: Any, args: argparse.Namespace, checked: Any) -> int:
    """The comparison as text (the terminal, or -o .txt) or HTML; 1 when a test regressed."""
    from leakhunt.baseline import compare
    from leakhunt.report.files import write_atomic

    base, rule = comparing
    comparison = compare(report, base, rule)
    status = 1 if comparison.regressions() else 0
    if checked is None:
        from leakhunt.report.compare_text import CompareText
        from leakhunt.report.console import console, print_blocks

        out = console(sys.stdout)
        print_blocks(CompareText(comparison, baseline=args.compare, top=args.top, width=out.width).blocks(), out)
        return status

    def write() -> None:
        if checked.format == "text":
            from leakhunt.report.compare_text import CompareText

            write_atomic(checked.path, CompareText(comparison, baseline=args.compare, top=args.top).render)
        else:
            from leakhunt.report.compare_html import CompareHtml

            page = CompareHtml(comparison, new_name=args.json_file, base_name=args.compare, version=report.version)
            write_atomic(checked.path, page.render)

    return _written(args.output, write) or status


def _written(output: str, write: Any) -> int:
    """``write()`` the output: 0, or 2 with the error printed (an extra missing, a disk full)."""
    try:
        write()
    except ImportError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG}: error: cannot write {output!r}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {output}", file=sys.stderr)
    return 0


def _cluster(report: Any, checked: Any, output: str | None) -> int:
    """A saved cluster report (``leakhunt dask``, ``leakhunt.dask.watch``) as text or a page."""
    from leakhunt.report.cluster import ClusterHtmlReport, ClusterTextReport
    from leakhunt.report.files import write_atomic

    if checked is None:
        sys.stdout.write(report.explain() + "\n")
        return 0
    render = ClusterTextReport(report).render if checked.format == "text" else ClusterHtmlReport(report).render
    return _written(output, lambda: write_atomic(checked.path, render))


def run(args: argparse.Namespace) -> int:
    from leakhunt.report.files import ReportPathError, check_report_path, write_atomic
    from leakhunt.timeline import RunRecord

    try:
        # the output first: a bad path is said before any work, whatever the input is
        checked = None
        if args.output is not None:
            checked = check_report_path(args.output, option="-o", formats=_RUN_FORMATS)
        comparing = _comparing(args)
        item = load(args.json_file)
        is_run = isinstance(item, RunRecord)
        is_cluster = type(item).__name__ == "ClusterReport"
        if comparing is not None:
            if is_run or is_cluster:
                what = "a `leakhunt run` file" if is_run else "a cluster report"
                raise UsageError(f"--compare compares test reports: {args.json_file!r} is {what}")
            if checked is not None and checked.format not in _TEST_FORMATS:
                raise UsageError(f"-o {args.output!r}: a comparison is written as .html, .htm or .txt")
            return _compare(item, comparing, args, checked)
        if checked is not None and not is_run and checked.format not in _TEST_FORMATS:
            what = "a cluster report" if is_cluster else "a test report"
            raise UsageError(f"-o {args.output!r}: {what} is written as .html, .htm or .txt "
                             "(a .png plot is for a `leakhunt run` file)")
    except (UsageError, ReportPathError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    from leakhunt.report.console import console, print_test_report
    from leakhunt.report.run_report import RunReport

    if is_cluster:
        return _cluster(item, checked, args.output)

    def text(file: Any, *, plain: bool) -> None:
        out = console(file, plain=plain)
        if is_run:
            RunReport(item, top=args.top).print(out)
        else:
            print_test_report(item, out, top=args.top)

    if checked is None:
        text(sys.stdout, plain=False)
        return 0

    def write() -> None:
        if is_run:
            RunReport(item, top=args.top).write(checked)
        elif checked.format == "text":
            from leakhunt.report.text import TextReport

            write_atomic(checked.path, TextReport(item, top=args.top).render)
        else:
            from leakhunt.report.html import HtmlReport

            write_atomic(checked.path, HtmlReport(item).render)

    return _written(args.output, write)
