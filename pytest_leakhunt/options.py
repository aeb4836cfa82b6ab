"""Command-line options, their ini twins, and the settings they make.

Every option has an ini twin of the same name with ``-`` as ``_`` (``--leak-report`` and
``leak_report``); the command line wins. Values are parsed here, so that a bad value is a
``pytest.UsageError`` quoting it, whichever side it came from. An ini twin takes the string an
ini file gives and, in pytest 9's native TOML tables (``[tool.pytest]``, ``pytest.toml``), the
TOML type the value naturally has: ``leak_report = true``, ``leak_hunt = 20``,
``leak_threshold = 65536``, ``memory_budget = {rss = "50 MB"}``.

An option that only matters beside another (``--leak-threshold`` without ``--leak-hunt``,
``--leak-report-top`` without ``--leak-report``) is an error on the command line; in an ini
file it is a default for the runs that use it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from leakhunt.units import format_size, parse_size

if TYPE_CHECKING:
    from leakhunt.budget import Budget

__all__ = ["OomSettings", "Settings", "addoption", "DEFAULT_REPEATS", "DEFAULT_THRESHOLD", "NATIVE", "PEAK_MODES",
           "SCOPES"]

DEFAULT_REPEATS = 10
DEFAULT_THRESHOLD = "64 KiB"
DEFAULT_TOP = 10
SCOPES = ("call", "setup-call-teardown")
#: reset: the kernel's high-water mark, reset before each test and restored at the end;
#: sample: the mark is never touched (a thread samples RSS; the mark counts when a test raised it)
PEAK_MODES = ("reset", "sample")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_HUNT_ON = "__default__"  # --leak-hunt without a value
_OOM_ON = "__default__"  # --leak-oom-guard without a value
#: --leak-trace=native / leak_trace = native: budgeted peaks explained by memray (leakhunt.native)
NATIVE = "native"


def addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("leakhunt", "memory budgets, reports and leak hunting (leakhunt)")

    def add(flag: str, ini_help: str, **kwargs: object) -> None:
        dest = flag.lstrip("-").replace("-", "_")
        group.addoption(flag, dest=dest, default=None, **kwargs)  # type: ignore[arg-type]
        # Registered as strings (an ini file gives strings; several options take more than one
        # form, leak_hunt = true or N): a native TOML value of another type is read from the
        # file by _native_toml, and every value is parsed and checked here.
        parser.addini(dest, ini_help, type="string", default=None)

    add("--leak-report", "print each test's memory at the end: true/false",
        action="store_true",
        help="measure every test cheaply and print the top tests by peak and by growth.")
    add("--leak-report-top", "how many tests each table of the terminal report shows",
        metavar="N", help=f"how many tests each table of --leak-report shows (default {DEFAULT_TOP}).")
    add("--leak-report-file", "write the test report to this .json, .html or .txt file",
        metavar="PATH", help="write every test's memory to PATH: .json (versioned schema), .html (a page "
                             "with every test and why the failing ones failed) or .txt.")
    add("--memory-budget", "default memory budget of every test, e.g. rss=50MB,peak=1GB",
        metavar="SPEC", help="default budget for every test, e.g. 'rss=50MB,peak=1GB'.")
    add("--leak-hunt", "hunt leaks in every test: true/false or the number of measured repeats",
        nargs="?", const=_HUNT_ON, metavar="N",
        help=f"repeat every passing test and fail those that grow call after call "
             f"(N measured repeats, default {DEFAULT_REPEATS}; write --leak-hunt=N).")
    add("--leak-threshold", "per-call growth that counts as a leak under hunting",
        metavar="SIZE", help=f"per-call growth that counts as a leak (default {DEFAULT_THRESHOLD}).")
    add("--leak-trace", "trace allocations for the whole session: true/false (tracemalloc), or native "
        "(memray: a broken peak budget shows the allocations alive at the test's own peak)",
        action="store_const", const=True,
        help="run the session under tracemalloc: traced figures for every test, no re-run to explain.")
    # argparse takes an option named with its value as is: `--leak-trace=native` is its own flag,
    # so a bare `--leak-trace` never swallows the test path after it
    group.addoption("--leak-trace=native", dest="leak_trace", action="store_const", const=NATIVE,
                    help="a test that breaks its peak budget shows the allocations alive at its own peak, "
                         "native ones included (memray; pip install \"leakhunt[native]\"); other tests "
                         "pay nothing.")
    add("--leak-children", "add child processes' memory (PSS) to every measurement: true/false",
        action="store_true", help="measure child processes too (PSS; costs ~0.2 ms per child per reading).")
    add("--leak-no-rerun", "do not re-run a failing test with tracing to explain it: true/false",
        action="store_true",
        help="do not re-run a test that broke its budget once under tracing to explain the failure.")
    add("--leak-scope", "what a test's measurement covers: call or setup-call-teardown",
        metavar="SCOPE", help="'call' (default) or 'setup-call-teardown' (adds function-scoped fixtures).")
    add("--leak-peak", "how per-test peaks are read: reset or sample",
        metavar="MODE", help="'reset' (default): the kernel's high-water mark, reset before each test and "
                             "restored at the end of the session; 'sample': never touch it (VmHWM, "
                             "ru_maxrss and /usr/bin/time read as without leakhunt during the session "
                             "too), a thread samples RSS every millisecond instead.")
    add("--leak-oom-guard", "guard against out-of-memory kills: true/false or the threshold (90%, 1.5GB)",
        nargs="?", const=_OOM_ON, metavar="THRESHOLD",
        help="watch memory against the limit that will kill the session (cgroup, rlimit, machine, or "
             "--leak-memory-limit); the test that reaches THRESHOLD (default 90%%) is stopped and fails "
             "with what is alive; write --leak-oom-guard=95%%.")
    add("--leak-memory-limit", "the limit for --leak-oom-guard, on the process's resident memory",
        metavar="SIZE", help="the limit for --leak-oom-guard on each test process's resident memory, e.g. "
                             "'2GB' (default: the cgroup's, an rlimit, or the machine's).")
    add("--leak-oom-action", "after an out-of-memory diagnosis: continue or stop the session",
        metavar="ACTION", help="after the failing test: 'continue' the session (default) or 'stop' it.")
    add("--leak-oom-report", "where --leak-oom-guard writes its diagnosis (.json or .txt)",
        metavar="PATH", help="where --leak-oom-guard writes the diagnosis: .json or .txt (default "
                             "leakhunt-oom.json; an xdist worker adds its id: leakhunt-oom-gw0.json).")


@dataclass(frozen=True)
class Settings:
    report: bool = False
    report_top: int = DEFAULT_TOP
    report_file: Path | None = None
    budget: Budget | None = None
    budget_spec: str | None = None
    hunt: int | None = None  # measured repeats, or None when not hunting every test
    threshold: int = 64 * 1024
    trace: bool = False
    native: bool = False  # peaks of budgeted tests explained by memray (--leak-trace=native)
    children: bool = False
    rerun: bool = True
    scope: str = "call"
    peak: str = "reset"
    oom: OomSettings | None = None  # --leak-oom-guard

    @property
    def active(self) -> bool:
        """Whether anything asks for a measurement of every test."""
        return bool(self.report or self.report_file or self.budget or self.hunt)

    def to_dict(self) -> dict[str, object]:
        return {
            "report": self.report,
            "report_top": self.report_top,
            "report_file": str(self.report_file) if self.report_file else None,
            "memory_budget": self.budget_spec,
            "leak_hunt": self.hunt,
            "leak_threshold": self.threshold,
            "leak_trace": NATIVE if self.native else self.trace,
            "leak_children": self.children,
            "leak_rerun": self.rerun,
            "leak_scope": self.scope,
            "leak_peak": self.peak,
            "leak_oom_guard": self.oom.to_dict() if self.oom is not None else None,
        }

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        def raw(dest: str) -> tuple[str, object]:
            value = config.getoption(dest)
            if value is not None:
                return "--" + dest.replace("_", "-"), value
            return f"ini option {dest}", _ini(config, dest)

        native = _is_native(raw("leak_trace")[1])

        def flag(dest: str) -> bool:
            where, value = raw(dest)
            if value is None or isinstance(value, bool):
                return bool(value)
            text = str(value).strip().lower()
            if isinstance(value, str) and text in _TRUE:
                return True
            if isinstance(value, str) and text in _FALSE:
                return False
            raise pytest.UsageError(f"{where}: expected {_ACCEPTED.get(dest, 'true or false')}, got {value!r}")

        where, top = raw("leak_report_top")
        report_top_where = where
        report_top = DEFAULT_TOP if top in (None, "") else _positive_int(where, top)

        where, path = raw("leak_report_file")
        report_file = None
        if path not in (None, ""):
            # one rule for every front end: suffix, directories and extras checked now, not at the end
            from leakhunt.report.files import ReportPathError, check_report_path

            try:
                report_file = check_report_path(str(path), option=where, formats=("json", "html", "text"),
                                                base=config.invocation_params.dir).path
            except ReportPathError as exc:
                raise pytest.UsageError(str(exc)) from None

        where, spec = raw("memory_budget")
        budget = None
        if spec not in (None, ""):
            from leakhunt.budget import Budget  # imported only when asked for: plugin load stays light

            try:
                if isinstance(spec, dict):  # a TOML table: memory_budget = {rss = "50 MB"}
                    budget = Budget.from_kwargs(where=f"{where}={spec!r}", **spec)
                elif isinstance(spec, str):
                    budget = Budget.from_spec(spec, where=f"{where}={spec!r}")
                else:
                    raise ValueError(f"{where}={spec!r}: expected KEY=SIZE[,KEY=SIZE...] such as "
                                     "'rss=50MB,peak=1GB' (or, in TOML, a table such as {rss = \"50 MB\"})")
            except ValueError as exc:
                raise pytest.UsageError(str(exc)) from None
            if budget.is_empty:
                budget = None

        where, hunt_value = raw("leak_hunt")
        hunt = None
        if hunt_value == _HUNT_ON or hunt_value is True:
            hunt = DEFAULT_REPEATS
        elif hunt_value is False:
            hunt = None
        elif isinstance(hunt_value, (int, float)):  # TOML: leak_hunt = 20
            hunt = _positive_int(where, hunt_value, minimum=4)
        elif hunt_value not in (None, ""):
            text = str(hunt_value).strip().lower()
            if text in ("true", "yes", "on"):
                hunt = DEFAULT_REPEATS
            elif text not in ("0", "false", "no", "off"):
                hunt = _positive_int(where, hunt_value, minimum=4, hint=(
                    " (write --leak-hunt=N, or put --leak-hunt after the test paths: "
                    "a bare value after it is read as N)"))

        where, threshold_value = raw("leak_threshold")
        threshold = parse_size(DEFAULT_THRESHOLD)
        if threshold_value not in (None, ""):
            try:
                threshold = parse_size(threshold_value)  # type: ignore[arg-type]  # TOML may give an int
            except ValueError as exc:
                raise pytest.UsageError(f"{where}: {exc}") from None
            if threshold <= 0:
                raise pytest.UsageError(f"{where}: the threshold must be above 0 B, got {threshold_value!r}")
            if where.startswith("--") and hunt is None:
                raise pytest.UsageError(
                    f"{where}={threshold_value} only applies when every test is hunted: add --leak-hunt, "
                    "or drop it (a test's own memory_budget(leak=SIZE) sets its own threshold)")
        if report_top_where.startswith("--") and not flag("leak_report"):
            raise pytest.UsageError(f"{report_top_where}={top} only applies to the terminal table of "
                                    "--leak-report: add --leak-report, or drop it")

        where, scope_value = raw("leak_scope")
        scope = "call" if scope_value in (None, "") else str(scope_value).strip()
        if scope not in SCOPES:
            raise pytest.UsageError(f"{where}: expected one of {', '.join(SCOPES)}, got {scope_value!r}")

        where, peak_value = raw("leak_peak")
        peak = "reset" if peak_value in (None, "") else str(peak_value).strip()
        if peak not in PEAK_MODES:
            raise pytest.UsageError(f"{where}: expected one of {', '.join(PEAK_MODES)}, got {peak_value!r}")

        return cls(
            oom=_oom_settings(raw, base=config.invocation_params.dir),
            report=flag("leak_report"),
            report_top=report_top,
            report_file=report_file,
            budget=budget,
            budget_spec=budget.describe() if budget else None,
            hunt=hunt,
            threshold=threshold,
            trace=False if native else flag("leak_trace"),
            native=native,
            children=flag("leak_children"),
            rerun=not flag("leak_no_rerun"),
            scope=scope,
            peak=peak,
        )

    def describe(self) -> str:
        """One line for the session header."""
        parts = []
        if self.report or self.report_file:
            parts.append("report" + (f" -> {self.report_file}" if self.report_file else ""))
        if self.budget:
            parts.append(f"default budget {self.budget.describe()}")
        if self.hunt:
            parts.append(f"hunting leaks ({self.hunt} repeats, threshold {format_size(self.threshold)}/call)")
        if self.trace:
            parts.append("tracing")
        if self.native:
            parts.append("peaks of budgeted tests explained by memray")
        if self.children:
            parts.append("children")
        if self.scope != "call":
            parts.append(f"scope {self.scope}")
        if self.peak != "reset":
            parts.append("peaks sampled (the kernel's high-water mark is left alone)")
        return ", ".join(parts)


@dataclass(frozen=True)
class OomSettings:
    """``--leak-oom-guard`` and its companions, checked (the guard itself is made per process)."""

    threshold: str | float = "90%"
    limit: str | int | None = None
    action: str = "continue"  # what the session does after a test crossed: continue or stop
    report: Path = Path("leakhunt-oom.json")
    report_given: str = "leakhunt-oom.json"
    # where each value came from (an option or its ini twin), for the guard's messages
    options: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"threshold": self.threshold, "limit": self.limit, "action": self.action,
                "report": str(self.report)}


def _oom_settings(raw: Any, *, base: Path) -> OomSettings | None:
    """The guard's settings; a companion option without --leak-oom-guard is an error on the
    command line (a default in an ini file)."""
    where, value = raw("leak_oom_guard")
    companions = [raw(dest) for dest in ("leak_memory_limit", "leak_oom_action", "leak_oom_report")]
    threshold = _oom_threshold(where, value)
    if threshold is None:
        given = [w for w, v in companions if w.startswith("--") and v not in (None, "")]
        if given:
            raise pytest.UsageError(f"{given[0]} only applies with --leak-oom-guard: add it, or drop {given[0]}")
        return None
    from leakhunt.oom import DEFAULT_REPORT, parse_action, parse_limit
    from leakhunt.report.files import check_report_path

    (limit_where, limit), (action_where, action), (report_where, report) = companions
    limit = None if limit in (None, "") else limit
    given = str(report) if report not in (None, "") else DEFAULT_REPORT
    try:
        if limit is not None:
            parse_limit(limit, option=limit_where)  # type: ignore[arg-type]
        action = parse_action(str(action), option=action_where) if action not in (None, "") else "continue"
        checked = check_report_path(given, option=report_where, formats=("json", "text"), base=base)
    except ValueError as exc:  # a ReportPathError is a ValueError
        raise pytest.UsageError(str(exc)) from None
    options = (("threshold", where), ("limit", limit_where), ("action", action_where), ("report", report_where))
    return OomSettings(threshold=threshold, limit=limit, action=action, report=checked.path,  # type: ignore[arg-type]
                       report_given=given, options=options)


def _oom_threshold(where: str, value: object) -> str | float | None:
    """--leak-oom-guard's threshold (the default for a bare flag or true), or None when off."""
    from leakhunt.oom import DEFAULT_THRESHOLD, parse_threshold

    text = str(value).strip().lower()
    if value in (None, False) or text in _FALSE:
        return None
    if value is True or value == _OOM_ON or text in _TRUE:
        return DEFAULT_THRESHOLD
    threshold = value if isinstance(value, (int, float)) else str(value)
    try:
        parse_threshold(threshold, option=where)
    except ValueError as exc:
        hint = (" (write --leak-oom-guard=90%, or put --leak-oom-guard after the test paths: a bare value "
                "after it is read as the threshold)") if where.startswith("--") else ""
        raise pytest.UsageError(f"{exc}{hint}") from None
    return threshold


_MISSING = object()
#: What a flag option accepts, where it is more than true or false.
_ACCEPTED = {"leak_trace": "true, false or native"}


def _is_native(value: object) -> bool:
    """``--leak-trace=native`` / ``leak_trace = native``."""
    return isinstance(value, str) and value.strip().lower() == NATIVE


def _ini(config: pytest.Config, name: str) -> object:
    """The ini twin's value (None when unset), in the type the file gives it.

    pytest checks an ini value against the type the option was registered with; in a native
    TOML table a value of another type is a TypeError (issue 13: ``leak_report = true`` in
    ``[tool.pytest]`` was "expects a string, got bool"). Our options take several types, so the
    value is then read from that table as TOML typed it, and parsed here like any other.
    """
    try:
        return config.getini(name)
    except (TypeError, pytest.UsageError):  # pytest >= 9.2 reports the TypeError as a UsageError
        value = _native_toml(config, name)
        if value is _MISSING:
            raise
        return value


def _native_toml(config: pytest.Config, name: str) -> object:
    """``name`` from the native TOML table of the config file, as pytest 9 chooses it:
    ``[pytest]`` of pytest.toml or .pytest.toml, else ``[tool.pytest]`` of pyproject.toml."""
    path = config.inipath
    if path is None or path.suffix != ".toml":
        return _MISSING
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - pytest depends on tomli there
        import tomli as tomllib
    data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    if path.name in ("pytest.toml", ".pytest.toml"):
        table = data.get("pytest", {})
    else:
        table = {k: v for k, v in data.get("tool", {}).get("pytest", {}).items() if k != "ini_options"}
    return table.get(name, _MISSING)


def _positive_int(where: str, value: object, *, minimum: int = 1, hint: str = "") -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise pytest.UsageError(f"{where}: expected a whole number, got {value!r}{hint}")
    try:
        number = int(str(value).strip()) if not isinstance(value, (int, float)) else int(value)
    except ValueError:
        raise pytest.UsageError(f"{where}: expected a whole number, got {value!r}{hint}") from None
    if number < minimum:
        raise pytest.UsageError(f"{where}: must be >= {minimum}, got {value!r}")
    return number
