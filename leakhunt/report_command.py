"""``leakhunt report``: re-render a saved ``leakhunt run --json`` file as the HTML report."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable

__all__ = ["configure_parser", "run"]

PROG = "leakhunt report"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.usage = "leakhunt report run.json -o report.html  (or -o timeline.png for the plot alone)"
    parser.add_argument("json_file", metavar="run.json", help="a file written by `leakhunt run --json`")
    parser.add_argument("-o", "--output", metavar="REPORT.html", required=True,
                        help="where to write the HTML report; a name ending in .png gets the plot alone")
    parser.add_argument("--top", type=int, default=10, metavar="N",
                        help="allocation sites to show when the run was traced (default 10)")


def run(args: argparse.Namespace) -> int:
    from leakhunt.report.files import write_atomic
    from leakhunt.timeline import RunRecord

    path = args.json_file
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        record = RunRecord.from_dict(data)
    except FileNotFoundError:
        return _error(f"cannot read {path!r}: no such file")
    except OSError as exc:
        return _error(f"cannot read {path!r}: {exc.strerror or exc}")
    except json.JSONDecodeError as exc:
        return _error(f"{path!r} is not JSON ({exc.msg} at line {exc.lineno})")
    except (ValueError, TypeError, KeyError) as exc:
        return _error(f"{path!r}: {exc}")
    out = args.output
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        return _error(f"cannot write -o {out!r}: directory {parent!r} does not exist")
    try:
        from leakhunt.report.timeline_html import plot_png, render_html

        if out.lower().endswith(".png"):
            _write_png_atomic(out, lambda path: plot_png(record, path))
        else:
            write_atomic(out, lambda f: render_html(record, f, top=args.top))
    except ImportError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"cannot write {out!r}: {exc.strerror or exc}")
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _write_png_atomic(path: str, save: Callable[[str], None]) -> None:
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.{os.getpid()}.tmp.png")
    try:
        save(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2
