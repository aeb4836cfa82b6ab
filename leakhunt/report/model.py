"""The test report's data: one record per test, the session's figures, and their aggregate.

Front ends (the pytest plugin) fill these; renderers (text, JSON, HTML) only read them. A record
also travels as flat ``leakhunt.*`` properties (pytest's ``user_properties``): that is how the
figures reach JUnit XML and how pytest-xdist workers hand them to the controller.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from leakhunt.defaults import STAYED_UP
from leakhunt.explanation import Explanation
from leakhunt.judge import VERDICTS

if TYPE_CHECKING:
    from leakhunt.budget import Budget
    from leakhunt.judge import Judgement
    from leakhunt.measure import Measurement
    from leakhunt.probes import Sample

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "VERDICTS",
    "SessionFigures",
    "TestRecord",
    "TestReport",
]

SCHEMA = "leakhunt.test-report"
# 2: each test carries "explanation" (leakhunt.explanation.Explanation.to_dict()) when it failed
#    its budget or leaks; 1 had figures only.
SCHEMA_VERSION = 2

_PREFIX = "leakhunt."


@dataclass(slots=True)
class TestRecord:
    """One test's memory. Figures are bytes or ``None`` (not measured, or unavailable).

    Kept for every test until the session ends: slots, no per-record dict. A value; not frozen,
    which costs several times as much to build, once per test. Made by :meth:`from_judgement`
    (a judged test) or :meth:`from_figures` (the cheap path's figures).
    """

    __test__ = False  # not a pytest test class, despite the name

    nodeid: str
    outcome: str  # passed | failed | skipped | error | crashed (its xdist worker died)
    verdict: str = "ok"
    scope: str = "call"
    seconds: float | None = None
    rss_growth: int | None = None
    peak: int | None = None
    traced_growth: int | None = None
    arrow_growth: int | None = None
    children_peak: int | None = None
    settled: bool = False  # rss_growth was confirmed after settling the process
    leak_per_call: int | None = None
    leak_accounting: str | None = None
    budget: dict[str, int] | None = None
    violations: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None
    worker: str | None = None
    explanation: Explanation | None = None  # why a failing or leaking test failed

    @classmethod
    def from_judgement(cls, nodeid: str, outcome: str, scope: str, judgement: Judgement, *,
                       worker: str | None = None) -> TestRecord:
        """The record of a judged test."""
        hunt = judgement.hunt
        return cls(
            nodeid, outcome, judgement.verdict.value, scope, *_figures(judgement.measurement),
            leak_per_call=None if hunt is None else hunt.per_call,
            leak_accounting=None if hunt is None else hunt.accounting,
            budget=None if judgement.budget is None else _budget_dict(judgement.budget),
            violations=[{"figure": v.figure, "value": v.value, "limit": v.limit} for v in judgement.violations],
            note="; ".join(judgement.notes) or None,
            worker=worker,
            explanation=judgement.explanation,
        )

    @classmethod
    def from_figures(cls, nodeid: str, outcome: str, verdict: str, scope: str,
                     figures: Measurement | Sample | None, *, note: str | None = None) -> TestRecord:
        """The record of a cheaply measured test: a QuickMeter sample, or its confirmed
        measurement."""
        return cls(nodeid, outcome, verdict, scope, *_figures(figures), note=note)

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: its deep copy costs more than the measurement (thousands of tests).
        data = {name: getattr(self, name) for name in _RECORD_FIELDS}
        data["budget"] = dict(self.budget) if self.budget is not None else None
        data["violations"] = [dict(v) for v in self.violations]
        data["explanation"] = self.explanation.to_dict() if self.explanation is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TestRecord:
        values = {k: v for k, v in data.items() if k in _RECORD_FIELDS}
        if isinstance(values.get("explanation"), Mapping):
            values["explanation"] = Explanation.from_dict(values["explanation"])
        return cls(**values)

    def to_properties(self) -> list[tuple[str, Any]]:
        """Flat ``(name, value)`` pairs for ``user_properties``; ``None`` figures are left out.

        Scalars stay scalars (JUnit XML shows them as they are); the budget and the violations
        are JSON text.
        """
        props: list[tuple[str, Any]] = []
        for name in _RECORD_FIELDS:
            value = getattr(self, name)
            if value is None or (name == "violations" and not value):
                continue
            if isinstance(value, Explanation):
                value = value.to_dict()
            if isinstance(value, (dict, list)):
                value = json.dumps(value, sort_keys=True)
            props.append((_PREFIX + name, value))
        return props

    @classmethod
    def from_properties(cls, props: Iterable[tuple[str, Any]]) -> TestRecord | None:
        """The record carried by ``props``, or ``None`` when they carry none."""
        data: dict[str, Any] = {}
        for name, value in props:
            if name == "leakhunt.nodeid" and "nodeid" in data:  # a second record: keep the last
                data = {}
            if isinstance(name, str) and name.startswith(_PREFIX):
                data[name[len(_PREFIX):]] = value
        if "nodeid" not in data:
            return None
        for key in ("budget", "violations", "explanation"):
            if isinstance(data.get(key), str):
                data[key] = json.loads(data[key])
        return cls.from_dict(data)


_RECORD_FIELDS = tuple(f.name for f in fields(TestRecord))


def _figures(m: Any) -> tuple[Any, ...]:
    """A measurement's figures in TestRecord's order after (nodeid, outcome, verdict, scope); a
    QuickMeter sample's without making a Measurement of it (one per test of the report)."""
    if m is None:
        return (None, None, None, None, None, None, False)
    if type(m) is tuple:
        from leakhunt.measure import sample_figures

        seconds, rss_growth, peak, traced_growth, arrow_growth = sample_figures(m)
        return (round(seconds, 6), rss_growth, peak, traced_growth, arrow_growth, None, False)
    return (round(m.seconds, 6), m.figure("rss"), m.peak, m.figure("traced"), m.arrow_growth,
            m.children_peak, m.settled)


def _budget_dict(budget: Budget) -> dict[str, int]:
    limits = dict(budget.limits())
    if budget.leak is not None:
        limits.update(leak=budget.leak, repeat=budget.repeat, warmup=budget.warmup)
    return limits


@dataclass(frozen=True)
class SessionFigures:
    """The process (or, under xdist, one worker) over the whole session."""

    start_rss: int | None = None
    end_rss: int | None = None
    peak_rss: int | None = None
    worker: str | None = None
    #: why this process's figures are missing (an xdist worker that crashed); None when it finished
    lost: str | None = None

    @property
    def growth(self) -> int | None:
        if self.start_rss is None or self.end_rss is None:
            return None
        return self.end_rss - self.start_rss

    @property
    def peak(self) -> int | None:
        """Peak above the session's start."""
        if self.start_rss is None or self.peak_rss is None:
            return None
        return max(0, self.peak_rss - self.start_rss)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["growth"] = self.growth
        data["peak"] = self.peak
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionFigures:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _key(value: int | None) -> int:
    return value if value is not None else -(2**63)


@dataclass(frozen=True)
class TestReport:
    """Everything a renderer needs, aggregated once."""

    __test__ = False

    records: tuple[TestRecord, ...]
    sessions: tuple[SessionFigures, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    stayed_up_min: int = STAYED_UP
    created: str = ""
    version: str = ""
    #: tests the session collected (None: not known, e.g. a report written before collection)
    collected: int | None = None
    #: collected tests with no record: never run (interrupted, stopped early) or lost
    missing: tuple[str, ...] = ()
    #: why the session ended before running every test (Ctrl-C, SIGTERM, -x); or, in a report
    #: written when the session started, that it has not finished
    stopped: str | None = None
    #: the session was still running when this file was written (see ``stopped``)
    running: bool = False

    @property
    def complete(self) -> bool:
        """Every collected test ran and has its record, and the session ended normally."""
        return not (self.running or self.interrupted or self.missing or self.stopped)

    def completeness(self) -> str | None:
        """One line saying what this report lacks, or None when it is complete."""
        if self.complete:
            return None
        if self.running:
            return f"incomplete: {self.stopped}"
        parts = []
        if self.collected is not None:
            parts.append(f"{len(self.missing)} of {self.collected} collected tests have no record")
        elif self.missing:
            parts.append(f"{len(self.missing)} tests have no record")
        reason = self.stopped or ("interrupted" if self.interrupted else None)
        if reason:
            parts.append(reason)
        return "incomplete: " + "; ".join(parts)

    @property
    def peak(self) -> int | None:
        """The session's peak above its start: the highest over the processes that ran tests."""
        peaks = [s.peak for s in self.sessions if s.peak is not None]
        return max(peaks) if peaks else None

    @property
    def peak_rss(self) -> int | None:
        """The highest resident set of a process that ran tests, during the session (bytes): the
        session's true peak, whatever leakhunt reset between tests."""
        peaks = [s.peak_rss for s in self.sessions if s.peak_rss is not None]
        return max(peaks) if peaks else None

    @property
    def growth(self) -> int | None:
        """Total RSS growth over the session, summed over the processes that ran tests."""
        growths = [s.growth for s in self.sessions if s.growth is not None]
        return sum(growths) if growths else None

    @classmethod
    def running_since(cls, created: str, *, settings: dict[str, Any], version: str) -> TestReport:
        """The report written when a session starts: it says the session has not finished (it
        stays if the process is killed before the end)."""
        return cls(records=(), settings=settings, created=created, running=True, version=version,
                   stopped=(f"written when the session started ({created}); the session has not finished, "
                            "or ended without writing its figures (killed by SIGKILL or the out-of-memory "
                            "killer, or crashed)"))

    def measured(self) -> list[TestRecord]:
        return [r for r in self.records if r.verdict not in ("opted_out", "not_measured")]

    def top_by_peak(self, n: int) -> list[TestRecord]:
        rows = [r for r in self.measured() if r.peak is not None]
        return sorted(rows, key=lambda r: (-_key(r.peak), r.nodeid))[:n]

    def top_by_growth(self, n: int) -> list[TestRecord]:
        rows = [r for r in self.measured() if r.rss_growth is not None]
        return sorted(rows, key=lambda r: (-_key(r.rss_growth), r.nodeid))[:n]

    def stayed_up(self) -> list[TestRecord]:
        """Tests after which memory stayed up: settled growth of at least ``stayed_up_min``,
        or a confirmed leak. A test that leaks only once still shows here."""
        rows = [
            r for r in self.measured()
            if r.verdict == "leak"
            or (r.settled and r.rss_growth is not None and r.rss_growth >= self.stayed_up_min)
        ]
        return sorted(rows, key=lambda r: (-_key(r.rss_growth), r.nodeid))

    def failures(self) -> list[TestRecord]:
        return [r for r in self.records if r.verdict in ("over_budget", "leak")]

    def verdict_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.records:
            counts[record.verdict] = counts.get(record.verdict, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON document (docs/plugin.md describes every field)."""
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "leakhunt_version": self.version,
            "created": self.created,
            "interrupted": self.interrupted,
            "complete": self.complete,
            "running": self.running,
            "stopped": self.stopped,
            "settings": self.settings,
            "session": {
                "peak": self.peak,
                "peak_rss": self.peak_rss,
                "growth": self.growth,
                "tests": len(self.records),
                "collected": self.collected,
                # not known before the tests are collected (a report written as the session starts):
                # null, never a 0 that a report saying it is incomplete would contradict (issue 21)
                "missing": None if self.collected is None else len(self.missing),
                "missing_tests": None if self.collected is None else list(self.missing),
                "verdicts": self.verdict_counts(),
                "processes": [s.to_dict() for s in self.sessions],
                "stayed_up": [
                    {"nodeid": r.nodeid, "rss_growth": r.rss_growth, "verdict": r.verdict}
                    for r in self.stayed_up()
                ],
            },
            "tests": [r.to_dict() for r in self.records],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TestReport:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a leakhunt test report: schema is {data.get('schema')!r}, expected {SCHEMA!r}")
        if data.get("schema_version") not in (1, SCHEMA_VERSION):  # 1 lacks explanations only
            raise ValueError(
                f"unsupported leakhunt test report schema_version {data.get('schema_version')!r} "
                f"(this version reads 1 to {SCHEMA_VERSION})"
            )
        session = data.get("session", {})
        return cls(
            records=tuple(TestRecord.from_dict(r) for r in data.get("tests", [])),
            sessions=tuple(SessionFigures.from_dict(s) for s in session.get("processes", [])),
            settings=dict(data.get("settings", {})),
            interrupted=bool(data.get("interrupted", False)),
            created=str(data.get("created", "")),
            version=str(data.get("leakhunt_version", "")),
            collected=session.get("collected"),
            missing=tuple(session.get("missing_tests") or ()),
            stopped=data.get("stopped"),
            running=bool(data.get("running", False)),
        )
