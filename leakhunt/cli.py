"""The ``leakhunt`` command: a dispatcher only.

Each subcommand lives with the code it fronts and exposes two functions,
``configure_parser(parser)`` and ``run(args) -> int``; this module only wires them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

# subcommand -> (module, one-line help). Modules are imported lazily so that
# `leakhunt --help` does not pay for pandas or matplotlib.
_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "casebook": ("casebook.cli", "run the casebook: real leak stories, leaky vs fixed, measured live"),
    "run": ("leakhunt.run_command", "run a script or module and profile its memory over time"),
    "report": ("leakhunt.report_command", "render a saved run or test report JSON as HTML or text"),
    "dask": ("leakhunt.dask_command", "inspect a running Dask cluster: each worker's memory split and survivors"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand's module is imported."""
    from leakhunt import __version__

    parser = argparse.ArgumentParser(
        prog="leakhunt",
        description="Memory-leak diagnostics for Python data work.",
    )
    parser.add_argument("--version", action="version", version=f"leakhunt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in _SUBCOMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.configure_parser(p)
        p.set_defaults(_run=module.run)
    return parser


def _console_script() -> None:
    """The ``leakhunt`` console script (pip's wrapper that calls :func:`main`) is leakhunt's
    frame, not the user's: tell :mod:`leakhunt.frames`."""
    main_module = sys.modules.get("__main__")
    path = getattr(main_module, "__file__", None)
    if path and getattr(main_module, "__spec__", None) is None and \
            os.path.splitext(os.path.basename(path))[0] in ("leakhunt", "leakhunt-script"):
        from leakhunt.frames import mark_ours

        mark_ours(path)


def main(argv: Sequence[str] | None = None) -> int:
    _console_script()
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Import only the chosen subcommand's module: `leakhunt run` must not pay for (or break on)
    # the casebook's pandas imports.
    chosen = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in _SUBCOMMANDS else None)
    argv = args_list
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    return int(args._run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
