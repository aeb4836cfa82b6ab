"""Memory regressions: a test report compared with a saved one (the baseline).

Each test's peak (above its start) and retained figure (RSS growth) are compared with the
baseline's. A figure *regressed* when it grew by more than the rule's threshold (a share of the
baseline's figure) **and** by more than its floor (bytes): the floor keeps 4 KiB -> 8 KiB from
being called a regression, the threshold keeps a big test's run-to-run spread from being one.
Both defaults come from the run-to-run spread measured by ``benchmarks/baseline_noise.py``
(``benchmarks/baseline.md``). Tests only one of the two reports has are listed as new or gone.

The comparison is data (:class:`Comparison`); the pytest plugin (``--leak-baseline``), the
``leakhunt report NEW.json --compare BASE.json`` command and the renderers of
:mod:`leakhunt.report` only wire it and draw it.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from leakhunt.units import format_size, parse_size

if TYPE_CHECKING:
    from leakhunt.budget import Budget
    from leakhunt.explanation import Explanation
    from leakhunt.measure import Measurement
    from leakhunt.report.model import TestRecord, TestReport

__all__ = [
    "BaselineError",
    "Comparison",
    "DEFAULT_FLOOR",
    "DEFAULT_FLOOR_TEXT",
    "DEFAULT_THRESHOLD",
    "DEFAULT_THRESHOLD_TEXT",
    "FIGURES",
    "FigureChange",
    "Rule",
    "TestChange",
    "compare",
    "load_report",
]

#: Growth beyond the baseline's figure that counts as a regression, as a share of it. Run to run
#: in one order, pandas' series.methods' figures of 1 MiB or more moved by 0.6 % at most, but for
#: a first use of pyarrow (below the floor); the margin is for what earlier tests leave behind,
#: which moves a big test's retained figure more (benchmarks/baseline.md).
DEFAULT_THRESHOLD = 0.20
DEFAULT_THRESHOLD_TEXT = "20%"
#: Growth in bytes below which nothing is a regression: the largest run-to-run difference of any
#: test's figure on pandas' series.methods was 1.8 MiB in one order, 2.8 MiB in a shuffled one
#: (benchmarks/baseline.md); a floor of 4 MiB stays above both.
DEFAULT_FLOOR = 4 * 1024 * 1024
DEFAULT_FLOOR_TEXT = "4 MiB"

#: The figures compared: record field -> how a reader names it.
FIGURES: dict[str, str] = {"peak": "peak", "rss_growth": "retained"}

#: record field -> the budget keyword that limits the same figure
_BUDGET_KEYWORD = {"peak": "peak", "rss_growth": "rss"}

#: The test report schema versions a baseline may have (those :class:`TestReport` reads).
_READABLE = (1, 2)

#: The environment facts whose difference is worth a note, and how a note names them.
_ENVIRONMENT_NOTES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("leakhunt",), "another leakhunt version"),
    (("python", "python_build"), "another Python build"),
    (("machine", "libc"), "another machine (or C library)"),
    (("numpy", "pandas", "pyarrow", "polars"), "other library versions"),
)


class BaselineError(ValueError):
    """A baseline that cannot be compared with: the message names the file and what to do."""


@dataclass(frozen=True)
class Rule:
    """When a figure regressed: grown by more than ``threshold`` of the baseline's figure and by
    more than ``floor`` bytes."""

    threshold: float = DEFAULT_THRESHOLD
    floor: int = DEFAULT_FLOOR

    @classmethod
    def parse(cls, text: str | int | float, *, where: str = "") -> Rule:
        """``"20%"``, ``"20%,4MiB"`` (threshold, then floor) or a number (a percentage).

        ``ValueError`` quoting ``text`` and the accepted form."""
        prefix = f"{where}: " if where else ""
        accepted = "a percentage, optionally with a floor: '20%' or '20%,4MiB'"
        if isinstance(text, bool):
            raise ValueError(f"{prefix}invalid regression rule {text!r}: expected {accepted}")
        share, _, floor_text = str(text).partition(",")
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*%?\s*", share)
        if match is None:
            raise ValueError(f"{prefix}invalid regression rule {text!r}: expected {accepted}")
        threshold = float(match.group(1)) / 100
        if threshold <= 0 or not math.isfinite(threshold):
            raise ValueError(f"{prefix}invalid regression rule {text!r}: the percentage must be above 0")
        floor = DEFAULT_FLOOR
        if floor_text.strip():
            try:
                floor = parse_size(floor_text.strip())
            except ValueError as exc:
                raise ValueError(f"{prefix}invalid floor in {text!r}: {exc}") from None
        return cls(threshold=threshold, floor=floor)

    def describe(self) -> str:
        """'+20% and +1.0 MiB'."""
        return f"+{self.threshold * 100:g}% and +{format_size(self.floor)}"

    def limit(self, base: int) -> int:
        """The highest figure that is not a regression of ``base`` (memory given back counts as 0)."""
        base = max(base, 0)
        return max(base + self.floor, int(base * (1 + self.threshold)))

    def regressed(self, base: int, new: int) -> bool:
        return max(new, 0) > self.limit(base)

    def improved(self, base: int, new: int) -> bool:
        return max(base, 0) > self.limit(new)

    def budget(self, base: TestRecord) -> Budget | None:
        """The limits above which ``base``'s figures regressed, as a budget (None: none measured)."""
        from leakhunt.budget import Budget

        limits = {_BUDGET_KEYWORD[name]: self.limit(getattr(base, name)) for name in FIGURES
                  if getattr(base, name) is not None}
        return Budget(**limits) if limits else None


@dataclass(frozen=True)
class FigureChange:
    """One figure of one test in both reports. Negative figures (memory given back) count as 0."""

    name: str  # a key of FIGURES
    base: int | None
    new: int | None
    regressed: bool = False
    improved: bool = False

    @property
    def label(self) -> str:
        return FIGURES.get(self.name, self.name)

    @property
    def delta(self) -> int | None:
        if self.base is None or self.new is None:
            return None
        return max(self.new, 0) - max(self.base, 0)

    @property
    def ratio(self) -> float | None:
        """new / baseline (``inf`` from nothing to something; None when either is unknown)."""
        if self.base is None or self.new is None:
            return None
        base, new = max(self.base, 0), max(self.new, 0)
        if base == 0:
            return 1.0 if new == 0 else math.inf
        return new / base

    def ratio_text(self) -> str:
        ratio = self.ratio
        if ratio is None:
            return ""
        return "from 0" if math.isinf(ratio) else f"{ratio:.2f}x"

    def __str__(self) -> str:
        """'peak 42.0 MiB (baseline 12.0 MiB, 3.50x, +30.0 MiB)'."""
        return (f"{self.label} {format_size(self.new)} (baseline {format_size(self.base)}, "
                f"{self.ratio_text()}, {format_size(self.delta, signed=True)})")


@dataclass(frozen=True)
class TestChange:
    """One test in the comparison. ``status``: regressed, improved, same, new (only in this run),
    gone (only in the baseline) or not_compared (it did not pass in both, or was not measured)."""

    __test__ = False  # not a pytest test class

    nodeid: str
    status: str
    figures: tuple[FigureChange, ...] = ()
    #: the test's explanation in this run (it broke a budget or leaks), when it has one
    explanation: Explanation | None = None
    reason: str = ""  # why it was not compared

    @property
    def regressions(self) -> tuple[FigureChange, ...]:
        return tuple(f for f in self.figures if f.regressed)

    @property
    def change(self) -> int:
        """The biggest change of its figures in bytes (what the tables sort by)."""
        deltas = [f.delta for f in self.figures if f.delta is not None]
        return max(deltas, key=abs) if deltas else 0

    def headline(self) -> str:
        """'peak 42.0 MiB (baseline 12.0 MiB, 3.50x, +30.0 MiB)' for each regressed figure."""
        return "; ".join(str(f) for f in self.regressions)


@dataclass(frozen=True)
class Comparison:
    """A test report compared with its baseline."""

    rule: Rule
    tests: tuple[TestChange, ...]
    #: what differs between the two reports' environments (versions, machine, Python), and
    #: whether the baseline is complete; said beside the result, never a reason to refuse it
    notes: tuple[str, ...] = ()
    base_created: str = ""
    new_created: str = ""
    base_label: str = "baseline"
    new_label: str = "this run"

    def _with(self, status: str) -> list[TestChange]:
        return [t for t in self.tests if t.status == status]

    def regressions(self) -> list[TestChange]:
        """Regressed tests, the biggest growth first."""
        return sorted(self._with("regressed"), key=lambda t: (-t.change, t.nodeid))

    def improvements(self) -> list[TestChange]:
        return sorted(self._with("improved"), key=lambda t: (t.change, t.nodeid))

    def new_tests(self) -> list[TestChange]:
        return self._with("new")

    def gone_tests(self) -> list[TestChange]:
        return self._with("gone")

    def compared(self) -> list[TestChange]:
        """Tests compared (in both reports, passed and measured in both), by change, biggest first."""
        return sorted((t for t in self.tests if t.figures), key=lambda t: (-t.change, t.nodeid))

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for test in self.tests:
            counts[test.status] = counts.get(test.status, 0) + 1
        return counts

    def summary(self) -> str:
        """'2 regressed, 1 improved, 4,581 the same; 1 new, 1 gone (rule: +20% and +1.0 MiB)'."""
        counts = self.counts()
        head = [f"{counts.get(s, 0):,} {word}" for s, word in
                (("regressed", "regressed"), ("improved", "improved"), ("same", "the same"))]
        tail = [f"{counts[s]:,} {s}" for s in ("new", "gone") if counts.get(s)]
        if counts.get("not_compared"):
            tail.append(f"{counts['not_compared']:,} not compared (did not pass, or not measured, in both)")
        return ", ".join(head) + ("; " + ", ".join(tail) if tail else "") + f" (rule: {self.rule.describe()})"


# --------------------------------------------------------------------------------------
# comparing


def _comparable(record: TestRecord) -> str:
    """Why a record's figures cannot be compared ("" when they can): a test whose body did not
    pass has figures of a body cut short. One that broke its budget or leaks passed."""
    if record.verdict in ("opted_out", "not_measured"):
        return record.verdict.replace("_", " ")
    if record.outcome != "passed" and record.verdict not in ("over_budget", "leak"):
        return record.outcome
    return ""


def _figures(base: Any, new: Any, rule: Rule) -> tuple[FigureChange, ...]:
    out = []
    for name in FIGURES:
        b, n = getattr(base, name), getattr(new, name)
        if b is None or n is None:
            out.append(FigureChange(name, b, n))
            continue
        b0, n0 = max(b, 0), max(n, 0)
        out.append(FigureChange(name, b, n, regressed=rule.regressed(b0, n0), improved=rule.improved(b0, n0)))
    return tuple(out)


def _change(base: TestRecord, new: TestRecord, rule: Rule) -> TestChange:
    reasons = [f"{r} in {where}" for r, where in ((_comparable(base), "the baseline"), (_comparable(new), "this run"))
               if r]
    if reasons:
        return TestChange(new.nodeid, "not_compared", explanation=new.explanation, reason="; ".join(reasons))
    figures = _figures(base, new, rule)
    if any(f.regressed for f in figures):
        status = "regressed"
    elif any(f.improved for f in figures):
        status = "improved"
    else:
        status = "same"
    return TestChange(new.nodeid, status, figures, explanation=new.explanation)


def compare(new: TestReport, base: TestReport, rule: Rule | None = None) -> Comparison:
    """Compare every test of ``new`` with the same test (by node id) in ``base``."""
    rule = rule if rule is not None else Rule()
    old = {r.nodeid: r for r in base.records}
    seen = set()
    tests: list[TestChange] = []
    for record in new.records:
        seen.add(record.nodeid)
        before = old.get(record.nodeid)
        if before is None:
            tests.append(TestChange(record.nodeid, "new", explanation=record.explanation))
        else:
            tests.append(_change(before, record, rule))
    tests.extend(TestChange(r.nodeid, "gone") for r in base.records if r.nodeid not in seen)
    return Comparison(rule=rule, tests=tuple(tests), notes=tuple(notes(new, base)),
                      base_created=base.created, new_created=new.created)


def notes(new: TestReport, base: TestReport) -> list[str]:
    """What differs between the reports beside the code: environments, and a partial baseline."""
    out = []
    env_new, env_base = dict(new.environment), dict(base.environment)
    if not env_base or not env_new:
        which = "the baseline" if not env_base else "this run"
        out.append(f"{which} does not say what it was measured on (a report of an older leakhunt): "
                   "figures may differ for reasons other than the code")
    else:
        for keys, what in _ENVIRONMENT_NOTES:
            differ = [k for k in keys if env_base.get(k) != env_new.get(k) and (k in env_base or k in env_new)]
            if differ:
                changes = ", ".join(f"{k} {env_base.get(k, 'none')} -> {env_new.get(k, 'none')}" for k in differ)
                out.append(f"measured with {what} ({changes}): figures may differ for reasons other than the code")
    partial = base.completeness()
    if partial:
        out.append(f"the baseline is {partial}: its missing tests show as new")
    return out


# --------------------------------------------------------------------------------------
# explaining a regression while the test can still be called


def explain_regression(measurement: Measurement, base: TestRecord, rule: Rule, *, title: str,
                       again: Callable[[], Any] | None, rerun: bool = True,
                       named: dict[str, Any] | None = None, front: str = "pytest") -> tuple[Explanation | None, str | None]:
    """Why a block's figures regressed against ``base``: ``(explanation, None)``; ``(None, note)``
    when the library's second-call rule finds the growth was one-time initialisation; ``(None,
    None)`` when nothing regressed.

    The block is judged by the lifecycle (:class:`leakhunt.lifecycle.Block`) against the rule's
    limits as a budget: it is called once more, traced (``again``), so that what keeps the memory
    and the lines that allocated it are found, exactly as for a broken budget. Call it while the
    block can still run (a test's fixtures are alive)."""
    from dataclasses import replace

    from leakhunt.budget import check
    from leakhunt.lifecycle import Block, Policy

    limits = rule.budget(base)
    if limits is None or not check(measurement, limits):
        return None, None
    judgement = Block(title, Policy(budget=limits, rerun=rerun, front=front), measurement=measurement).finish(
        again=again, named=named)
    changes = [c for c in _figures(base, _Figures(measurement), rule) if c.regressed]
    if judgement.explanation is None or not changes:
        return None, "; ".join(judgement.notes) or None
    headline = "regressed against the baseline: " + "; ".join(str(c) for c in changes)
    # the limits were the rule's, not a budget the user set: the comparison says the figures
    return replace(judgement.explanation, headline=headline, figures=()), None


class _Figures:
    """A measurement's figures under the names of a record's fields."""

    def __init__(self, measurement: Measurement) -> None:
        self.peak = measurement.peak
        self.rss_growth = measurement.figure("rss")


# --------------------------------------------------------------------------------------
# reading a baseline


def load_report(path: str | os.PathLike[str], *, option: str = "the baseline", given: str | None = None) -> TestReport:
    """The test report saved in ``path`` (``pytest --leak-report-file=BASE.json``).

    :class:`BaselineError` for a file that is missing, not JSON, not a test report (a ``leakhunt
    run`` file), of a schema this leakhunt does not read, or a report of a session that never
    finished: each message names the file (as ``given``, default ``path``) and how to make a good one."""
    from leakhunt.report.model import SCHEMA, SCHEMA_VERSION, TestReport

    given = given if given is not None else os.fspath(path)
    remake = f"write a new one with this leakhunt: pytest --leak-report-file={given}"
    data = _read_json(os.fspath(path), option, given)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise BaselineError(f"{option} {given!r} is not a pytest test report (schema {found!r}, expected "
                            f"{SCHEMA!r}): {remake}")
    version = data.get("schema_version")
    if version not in _READABLE:
        raise BaselineError(f"{option} {given!r} has schema_version {version!r}, which this leakhunt cannot "
                            f"compare with (it reads {', '.join(map(str, _READABLE))}; {SCHEMA_VERSION} is "
                            f"current): {remake}")
    try:
        report = TestReport.from_dict(data)
    except (ValueError, TypeError, KeyError) as exc:
        raise BaselineError(f"{option} {given!r} is malformed ({exc}): {remake}") from None
    if report.running:
        raise BaselineError(f"{option} {given!r} was written when a session started and holds no figures "
                            f"(that session never finished): {remake}")
    return report


def _read_json(path: str, option: str, given: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise BaselineError(f"{option} {given!r}: no such file") from None
    except IsADirectoryError:
        raise BaselineError(f"{option} {given!r} is a directory: give the JSON file a test report was "
                            "written to") from None
    except OSError as exc:
        raise BaselineError(f"{option} {given!r}: cannot read it ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" ({exc.msg} at line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise BaselineError(f"{option} {given!r} is not JSON{where}") from None
