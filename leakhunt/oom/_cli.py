"""``leakhunt run``'s options for the guard, and the guard around the target.

``leakhunt run --oom-guard[=90%] [--memory-limit SIZE] [--oom-action continue|stop]
[--oom-report PATH] script.py``: the values are checked before the target runs (exit status 2
and a message naming the value); the guard is armed only while the target's own code runs,
so a stop never lands in the recording of the run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import IO, Any, Callable, Iterator

from leakhunt.oom._guard import DEFAULT_REPORT, DEFAULT_THRESHOLD, OomGuard
from leakhunt.oom._limits import ACTIONS, parse_threshold

__all__ = ["add_run_options", "guard_from_args", "guarding"]

_OPTIONS = {"threshold": "--oom-guard", "limit": "--memory-limit", "action": "--oom-action",
            "report": "--oom-report"}


def add_run_options(add: Callable[..., None]) -> None:
    """Add the guard's options through ``add(*flags, **argparse_kwargs)``."""
    add("--oom-guard", nargs="?", const=DEFAULT_THRESHOLD, metavar="THRESHOLD",
        help=f"watch memory against the limit that will kill the run (the cgroup's, an rlimit, the "
             f"machine's, or --memory-limit) and, at THRESHOLD ('{DEFAULT_THRESHOLD}' by default, or a "
             "size), write what is alive before the kill; write --oom-guard=95%%")
    add("--memory-limit", metavar="SIZE",
        help="the limit for --oom-guard, on the run's resident memory: '2GB', '512 MiB' "
             "(default: the limit found)")
    add("--oom-action", metavar="ACTION",
        help="after writing the diagnosis: 'continue' (default; a crossing higher up writes again) or "
             "'stop' (raise MemoryError in the script, with the diagnosis: exit status 1)")
    add("--oom-report", metavar="PATH",
        help=f"where --oom-guard writes the diagnosis: .json or .txt (default {DEFAULT_REPORT})")


def _took_the_script(args: argparse.Namespace) -> bool:
    """``leakhunt run --oom-guard script.py``: argparse gives the optional value the script's
    name (and the script's first argument becomes the target). Put them back where they belong
    when the value is no threshold but a file to run."""
    value = args.oom_guard
    try:
        parse_threshold(value)
        return False
    except ValueError:
        pass
    if not (value.endswith((".py", ".pyw")) or os.path.exists(value)):
        return False
    if args.target is not None:
        args.args = [args.target, *args.args]
    args.target = value
    args.oom_guard = DEFAULT_THRESHOLD
    return True


def guard_from_args(args: argparse.Namespace, stderr: IO[str] | None) -> OomGuard | None:
    """The guard the options ask for, checked (``ValueError`` naming the value), not started.

    Call it before reading the target from ``args``: a bare ``--oom-guard`` before the script
    is mended here (see :func:`_took_the_script`).
    """
    threshold = getattr(args, "oom_guard", None)
    if threshold is not None and getattr(args, "module", None) is None:
        _took_the_script(args)
        threshold = args.oom_guard
    if threshold is None:
        extra = [flag for flag, dest in (("--memory-limit", "memory_limit"), ("--oom-action", "oom_action"),
                                         ("--oom-report", "oom_report")) if getattr(args, dest, None) is not None]
        if extra:
            raise ValueError(f"{extra[0]} only applies with --oom-guard: add --oom-guard, or drop it")
        return None
    action = args.oom_action if args.oom_action is not None else ACTIONS[0]
    report = args.oom_report if args.oom_report is not None else DEFAULT_REPORT
    return OomGuard(threshold, limit=args.memory_limit, action=action, report=report, stderr=stderr,
                    options=_OPTIONS)


@contextlib.contextmanager
def guarding(guard: OomGuard | None, target: Any, *, prog: str, quiet: bool = False) -> Iterator[None]:
    """Run the block under ``guard`` (nothing when None), armed while ``target.execute`` runs."""
    if guard is None:
        yield
        return
    if not quiet:
        guard.say(f"{prog}: OOM guard: {guard.describe()}; diagnosis to {guard.report_given}")
    execute = target.execute

    def armed_execute() -> Any:
        guard.armed = True
        try:
            return execute()
        finally:
            guard.armed = False

    target.execute = armed_execute
    guard.start()
    try:
        yield
    finally:
        guard.stop()
        target.execute = execute
        if guard.crossings:
            many = len(guard.crossings) > 1
            guard.say(f"{prog}: the OOM guard wrote {len(guard.crossings)} diagnos{'es' if many else 'is'} "
                      f"to {guard.report_given}")
