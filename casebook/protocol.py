"""The protocol between the runner and the processes it starts: requests and reports as JSON.

The runner writes a request file and starts ``python -m casebook.child REQUEST``; the child
answers by writing a report file, atomically, that the runner reads when the child exits. Files,
not pipes: a case that prints cannot corrupt its own figures. Everything both sides exchange is
defined here, once.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Mapping

__all__ = [
    "PARAMS_FILE",
    "Request",
    "RunFigures",
    "Report",
    "read_params",
    "write_params",
    "write_json_atomically",
]

#: Written by the setup step into the work directory; read by every run step.
PARAMS_FILE = "params.json"

Step = Literal["setup", "run", "explain", "profile"]


def write_json_atomically(path: Path, document: Any) -> None:
    """Write ``document`` as JSON to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document))
    os.replace(tmp, path)


def write_params(workdir: Path, params: Mapping[str, Any]) -> None:
    write_json_atomically(workdir / PARAMS_FILE, dict(params))


def read_params(workdir: Path) -> dict[str, Any]:
    params: dict[str, Any] = json.loads((workdir / PARAMS_FILE).read_text())
    return params


@dataclass(frozen=True)
class Request:
    """One step for a child process.

    ``setup`` generates a case's data into ``workdir`` at ``size`` and ``scale``. ``run``
    measures each of ``variants`` ``runs`` times on that data, one variant after the other
    (the runner asks for one run of one variant: a fresh process for every run). ``explain``
    runs the first variant under its budget for leakhunt's explanation
    of what stays alive; ``profile`` runs it under memory_profiler's line profiler. The answer
    goes to ``report``.
    """

    step: Step
    case: str
    workdir: str
    report: str
    size: str = "small"
    scale: float = 1.0
    variants: tuple[str, ...] = ()
    runs: int = 1
    overrides: dict[str, Any] = field(default_factory=dict)  # parameters changed (a claim's flip)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Request:
        data = json.loads(text)
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"casebook request: unknown fields {sorted(unknown)}")
        data["variants"] = tuple(data.get("variants", ()))
        return cls(**data)

    def write(self, path: Path) -> None:
        path.write_text(self.to_json())

    @classmethod
    def read(cls, path: Path) -> Request:
        return cls.from_json(path.read_text())


@dataclass(frozen=True)
class RunFigures:
    """What one measured call did. Bytes (or ``None`` where unavailable) and seconds.

    ``started``/``ended`` are wall-clock times (``time.time()``), so that a timeline sampled
    from outside the process can be cut to the call. ``extra`` holds the figures a variant
    reported itself (:class:`casebook.model.Observed`).
    """

    peak: int | None
    retained: int | None
    seconds: float
    started: float
    ended: float
    self_peak: int | None = None
    children_peak: int | None = None  # child processes' peak PSS above their level at the start
    children_idle: int | None = None  # their PSS at the start
    workers: int | None = None
    allocator_retention: int | None = None
    arrow_peak: int | None = None
    cpu: float | None = None  # the process's CPU seconds when the run ended (warm-up included)
    # CPU seconds of the call, every thread of the process: what the call cost, whatever else
    # the machine was doing (wall time is `seconds`).
    cpu_seconds: float | None = None
    # The peak without the file-backed pages the call mapped (a CSV's own pages while a parser
    # reads it): what the call itself allocated. Set by the runner from samples of the process
    # (casebook.runner._with_anon_peak).
    anon_peak: int | None = None
    extra: dict[str, float | int | None] = field(default_factory=dict)

    def figure(self, name: str) -> float | int | None:
        """A figure by name: a field, ``worker_peak``, or one the variant reported."""
        if name == "worker_peak":
            if self.children_peak is None or not self.workers:
                return None
            return self.children_peak // self.workers
        if name in self.extra:
            return self.extra[name]
        value = getattr(self, name, None)
        return value if isinstance(value, (int, float)) or value is None else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunFigures:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class Report:
    """A child's answer to a ``run`` or ``profile`` request: the runs of each variant."""

    runs: Mapping[str, tuple[RunFigures, ...]] = field(default_factory=dict)
    explanation: str | None = None  # leakhunt's failure text
    explanation_data: dict[str, Any] | None = None  # the same explanation as data (to_dict())
    line_profile: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": {name: [r.to_dict() for r in runs] for name, runs in self.runs.items()},
            "explanation": self.explanation,
            "explanation_data": self.explanation_data,
            "line_profile": self.line_profile,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        return cls(
            runs={name: tuple(RunFigures.from_dict(r) for r in runs)
                  for name, runs in data.get("runs", {}).items()},
            explanation=data.get("explanation"),
            explanation_data=data.get("explanation_data"),
            line_profile=data.get("line_profile"),
        )

    def write(self, path: Path) -> None:
        write_json_atomically(path, self.to_dict())

    @classmethod
    def read(cls, path: Path) -> Report:
        return cls.from_dict(json.loads(path.read_text()))
