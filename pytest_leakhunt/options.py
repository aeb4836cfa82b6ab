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
from typing import TYPE_CHECKING, Any, Sequence

import pytest

from leakhunt.units import format_size, parse_size

if TYPE_CHECKING:
    from leakhunt.budget import Budget

__all__ = ["OomSettings", "Settings", "addoption", "flag_of", "spelled", "DEFAULT_REPEATS", "DEFAULT_THRESHOLD",
           "NATIVE", "PEAK_MODES", "SCOPES"]

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


def flag_of(dest: str) -> str:
    """The command-line option of a setting (``leak_report_top`` → ``--leak-report-top``): every
    option is its ini twin's name with ``_`` as ``-``."""
    return "--" + dest.replace("_", "-")


def spelled(dest: str, value: object) -> str:
    """An option as a user writes it: ``--leak-report`` for a flag that is on, else
    ``--leak-threshold=64 KiB``."""
    return flag_of(dest) if value is True else f"{flag_of(dest)}={value}"


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
    add("--leak-baseline", "compare every test's memory with this saved report (.json)",
        metavar="BASE.json", help="compare each test's peak and retained memory with the report saved in "
                                  "BASE.json (--leak-report-file=BASE.json of an earlier run); regressions fail "
                                  "the session.")
    add("--leak-regression", "growth over the baseline that is a regression, e.g. 20% or 20%,4MiB",
        metavar="PCT[,SIZE]", help="growth over the baseline's figure that counts as a regression: a percentage "
                                   "and, optionally, a floor in bytes below which nothing is one (default "
                                   "20%%,4MiB).")
    add("--leak-regression-warn", "report regressions against the baseline as warnings: true/false",
        action="store_true", help="report regressions as warnings: the session's status is left alone.")
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
    threshold_given: str = DEFAULT_THRESHOLD  # as the user wrote it, for the report's options
    trace: bool = False
    native: bool = False  # peaks of budgeted tests explained by memray (--leak-trace=native)
    children: bool = False
    rerun: bool = True
    scope: str = "call"
    peak: str = "reset"
    oom: OomSettings | None = None  # --leak-oom-guard
    baseline: Path | None = None  # --leak-baseline
    baseline_given: str | None = None  # its path as the user wrote it, for messages
    regression: str | None = None  # --leak-regression, as given (checked)
    regression_warn: bool = False

    @property
    def active(self) -> bool:
        """Whether anything asks for a measurement of every test."""
        return bool(self.report or self.report_file or self.budget or self.hunt or self.baseline)

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
            "leak_baseline": str(self.baseline) if self.baseline else None,
            "leak_regression": self.regression,
            "leak_regression_warn": self.regression_warn,
            "options": list(self.options()),
        }

    def options(self) -> tuple[str, ...]:
        """The settings that shaped the run's figures, as the options that give them
        (``--leak-report-top=10``, ``--leak-threshold=64 KiB``): what a report's reader knows.
        A companion shows only beside the option it serves; off flags are left out."""
        given = (
            ("leak_report", self.report), ("leak_report_top", self.report_top if self.report else None),
            ("memory_budget", self.budget.spec() if self.budget else None), ("leak_hunt", self.hunt),
            ("leak_threshold", self.threshold_given if self.hunt else None),
            ("leak_trace", NATIVE if self.native else self.trace), ("leak_children", self.children),
            ("leak_no_rerun", not self.rerun), ("leak_scope", self.scope), ("leak_peak", self.peak),
            ("leak_baseline", self.baseline_given), ("leak_regression", self.regression),
            ("leak_regression_warn", self.regression_warn),
            ("leak_oom_guard", self.oom.threshold if self.oom is not None else None),
        )
        return tuple(spelled(dest, value) for dest, value in given if value not in (None, False))

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        raw = _Raw(config)
        base = config.invocation_params.dir
        native = _is_native(raw("leak_trace")[1])
        report_top = _report_top(raw)
        report_file = _report_file(raw, base)
        budget = _budget(raw)
        hunt = _hunt(raw)
        threshold = _threshold(raw, hunt)
        _check_report_top(raw)
        scope = _one_of(raw, "leak_scope", "call", SCOPES)
        peak = _one_of(raw, "leak_peak", "reset", PEAK_MODES)
        baseline, regression = _baseline_settings(raw, base=base)
        if raw.given("leak_regression_warn") and raw.flag("leak_regression_warn") and baseline is None:
            raise pytest.UsageError("--leak-regression-warn only applies with --leak-baseline: add it, or drop it")
        return cls(
            baseline=baseline,
            baseline_given=str(raw("leak_baseline")[1]) if baseline is not None else None,
            regression=regression,
            regression_warn=raw.flag("leak_regression_warn"),
            oom=_oom_settings(raw, base=base),
            report=raw.flag("leak_report"),
            report_top=report_top,
            report_file=report_file,
            budget=budget,
            budget_spec=budget.describe() if budget else None,
            hunt=hunt,
            threshold=threshold,
            threshold_given=str(raw("leak_threshold")[1] or DEFAULT_THRESHOLD),
            trace=False if native else raw.flag("leak_trace"),
            native=native,
            children=raw.flag("leak_children"),
            rerun=not raw.flag("leak_no_rerun"),
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


class _Raw:
    """An option's raw value and where it came from: the command line, else its ini twin."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def __call__(self, dest: str) -> tuple[str, object]:
        value = self.config.getoption(dest)
        if value is not None:
            return flag_of(dest), value
        return f"ini option {dest}", _ini(self.config, dest)

    def given(self, dest: str) -> bool:
        """Whether the command line gave it (not an ini file's default)."""
        return self(dest)[0].startswith("--")

    def flag(self, dest: str) -> bool:
        where, value = self(dest)
        if value is None or isinstance(value, bool):
            return bool(value)
        text = str(value).strip().lower()
        if isinstance(value, str) and text in _TRUE:
            return True
        if isinstance(value, str) and text in _FALSE:
            return False
        raise pytest.UsageError(f"{where}: expected {_ACCEPTED.get(dest, 'true or false')}, got {value!r}")


def _report_top(raw: _Raw) -> int:
    """--leak-report-top: the terminal table's length (only with --leak-report: _check_report_top)."""
    where, top = raw("leak_report_top")
    return DEFAULT_TOP if top in (None, "") else _positive_int(where, top)


def _check_report_top(raw: _Raw) -> None:
    where, top = raw("leak_report_top")
    if where.startswith("--") and not raw.flag("leak_report"):
        raise pytest.UsageError(f"{where}={top} only applies to the terminal table of "
                                "--leak-report: add --leak-report, or drop it")


def _report_file(raw: _Raw, base: Path) -> Path | None:
    """--leak-report-file: one rule for every front end (suffix, directories and extras checked
    now, not at the end)."""
    where, path = raw("leak_report_file")
    if path in (None, ""):
        return None
    from leakhunt.report.files import ReportPathError, check_report_path

    try:
        return check_report_path(str(path), option=where, formats=("json", "html", "text"), base=base).path
    except ReportPathError as exc:
        raise pytest.UsageError(str(exc)) from None


def _budget(raw: _Raw) -> Any:
    """--memory-budget: the session's default budget (None when it sets no limit)."""
    where, spec = raw("memory_budget")
    if spec in (None, ""):
        return None
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
    return None if budget.is_empty else budget


def _hunt(raw: _Raw) -> int | None:
    """--leak-hunt: the repeats for every test, or None."""
    where, hunt_value = raw("leak_hunt")
    if hunt_value == _HUNT_ON or hunt_value is True:
        return DEFAULT_REPEATS
    if hunt_value is False or hunt_value in (None, ""):
        return None
    if isinstance(hunt_value, (int, float)):  # TOML: leak_hunt = 20
        return _positive_int(where, hunt_value, minimum=4)
    text = str(hunt_value).strip().lower()
    if text in ("true", "yes", "on"):
        return DEFAULT_REPEATS
    if text in ("0", "false", "no", "off"):
        return None
    return _positive_int(where, hunt_value, minimum=4)


def _threshold(raw: _Raw, hunt: int | None) -> int:
    """--leak-threshold: what a hunted test may keep per call; only with --leak-hunt."""
    where, threshold_value = raw("leak_threshold")
    if threshold_value in (None, ""):
        return parse_size(DEFAULT_THRESHOLD)
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
    return threshold


def _one_of(raw: _Raw, dest: str, default: str, allowed: Sequence[str]) -> str:
    """A value from a fixed set (--leak-scope, --leak-peak)."""
    where, value = raw(dest)
    chosen = default if value in (None, "") else str(value).strip()
    if chosen not in allowed:
        raise pytest.UsageError(f"{where}: expected one of {', '.join(allowed)}, got {value!r}")
    return chosen


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


def _baseline_settings(raw: Any, *, base: Path) -> tuple[Path | None, str | None]:
    """--leak-baseline's path (the file is read when the session is configured) and the
    --leak-regression rule, checked; the rule without a baseline is an error on the command line."""
    from leakhunt.baseline import Rule

    where, path = raw("leak_baseline")
    rule_where, rule = raw("leak_regression")
    if rule not in (None, ""):
        try:
            Rule.parse(rule, where=rule_where)  # type: ignore[arg-type]
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    if path in (None, ""):
        if rule not in (None, "") and rule_where.startswith("--"):
            raise pytest.UsageError(f"{rule_where}={rule} only applies with --leak-baseline: add it, or drop it")
        return None, None
    return base / Path(str(path)), None if rule in (None, "") else str(rule)


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
        raise pytest.UsageError(str(exc)) from None
    return threshold


_MISSING = object()
#: What a flag option accepts, where it is more than true or false.
_ACCEPTED = {"leak_trace": "true, false or native"}


def _is_native(value: object) -> bool:
    """``--leak-trace=native`` / ``leak_trace = native``."""
    return isinstance(value, str) and value.strip().lower() == NATIVE


def _hunt_value(text: str) -> bool:
    """Whether ``text`` is a value of --leak-hunt: a whole number, or true/false."""
    word = text.strip().lower()
    return word.isdigit() or word in _TRUE or word in _FALSE


def _oom_value(text: str) -> bool:
    """Whether ``text`` is a value of --leak-oom-guard: a threshold (90%, 1.5GB), or true/false."""
    from leakhunt.oom import parse_threshold

    if text.strip().lower() in _TRUE or text.strip().lower() in _FALSE:
        return True
    try:
        parse_threshold(text, option="--leak-oom-guard")
    except ValueError:
        return False
    return True


#: Options whose value is optional, and what their values look like: the argument after one of
#: them is its value only when it looks like one; otherwise it is a test path, as a user means
#: ``pytest --leak-hunt tests/`` (issue 26).
_OPTIONAL_VALUES = {"--leak-hunt": _hunt_value, "--leak-oom-guard": _oom_value}


def free_paths(args: list[str]) -> list[str]:
    """Rewrite ``args`` in place so that an optional value never swallows a test path
    (``--leak-hunt tests/`` becomes ``--leak-hunt=true tests/``); returns the paths freed."""
    freed = []
    for i, arg in enumerate(args[:-1]):
        if arg == "--":
            break
        looks = _OPTIONAL_VALUES.get(arg)
        following = args[i + 1]
        if looks is not None and not following.startswith("-") and not looks(following):
            args[i] = f"{arg}=true"
            freed.append(following)
    return freed


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
