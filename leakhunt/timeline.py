"""A run's memory over time: the sampler thread and the recorded run it produces.

:class:`Sampler` reads RSS, the Arrow pool and (optionally) the children's memory every
``interval`` seconds in a background thread. The sampler draws the timeline; the exact peak
comes from the kernel's high-water mark (:class:`leakhunt.probes.PeakWindow`), which sees spikes
shorter than any interval, and with ``--trace`` the allocations alive at the traced peak come
from :class:`leakhunt.tracing.PeakSnapshots` (:class:`TraceAtPeak` keeps what it found).
:class:`RunRecord` is the whole recorded run: figures, timeline, trace, outcome. It is what
``leakhunt run --json`` writes and ``leakhunt report`` reads.
"""

from __future__ import annotations

import math

import threading
import time
from array import array
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable

from leakhunt import probes
from leakhunt.budget import Violation
from leakhunt.explanation import Explanation
from leakhunt.native import NativePeak
from leakhunt.outside import OutsideSamples
from leakhunt.tracing import Stack
from leakhunt.units import format_size

__all__ = [
    "DEFAULT_INTERVAL",
    "SCHEMA",
    "Sampler",
    "Site",
    "Timeline",
    "TraceAtPeak",
    "RunRecord",
    "parse_interval",
]

#: Default sampling interval in seconds.
DEFAULT_INTERVAL = 0.01
#: Identifies the JSON document ``leakhunt run --json`` writes.
SCHEMA = "leakhunt.run/1"

_MIN_INTERVAL = 0.001
_MAX_INTERVAL = 60.0
_MISSING = -1  # stored in the sample arrays for "figure unavailable"


def parse_interval(value: str | float) -> float:
    """Seconds from ``"10ms"``, ``"0.5s"``, ``"0.02"`` (seconds) or a number.

    Raises ``ValueError`` quoting the input when it is not a duration from 1 ms to 60 s.
    """
    accepted = "a duration from 1ms to 60s, such as '10ms', '0.5s' or '0.02' (seconds)"
    if isinstance(value, bool):
        raise ValueError(f"invalid interval {value!r}: expected {accepted}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        factor = 1.0
        if text.endswith("ms"):
            text, factor = text[:-2], 0.001
        elif text.endswith("s"):
            text = text[:-1]
        try:
            seconds = float(text.strip()) * factor
        except ValueError:
            raise ValueError(f"invalid interval {value!r}: expected {accepted}") from None
    if not (_MIN_INTERVAL <= seconds <= _MAX_INTERVAL) or seconds != seconds:
        raise ValueError(f"invalid interval {value!r}: expected {accepted}")
    return seconds


# --------------------------------------------------------------------------------------
# Findings


@dataclass(frozen=True)
class Site:
    """One allocation site alive at the traced peak.

    ``filename:lineno`` is the innermost frame in the user's own code (not the standard
    library or site-packages), so ``df.merge(...)`` is charged to the line that called it.
    ``via`` is the innermost frame of the biggest allocation there, when it is elsewhere.
    """

    filename: str
    lineno: int
    size: int
    count: int
    code: str = ""
    via: str | None = None


@dataclass(frozen=True)
class TraceAtPeak:
    """The traced allocations alive at the traced high-water mark (``--trace``).

    ``traced`` is what the snapshot held and ``traced_peak`` (on the record) the true traced
    peak: the snapshot is taken within the sampling interval of the peak, so the two are close.
    """

    time: float  # seconds since the run started
    rss: int  # RSS (sampled) at that moment
    traced: int  # traced bytes above the start in that snapshot
    domains: dict[str, int]  # traced bytes by domain (python, numpy, pandas, other)
    sites: tuple[Site, ...]  # biggest first
    snapshots: int  # how many snapshots the run took
    snapshot_seconds: float  # time they cost, all together
    tracemalloc_overhead: int  # memory tracemalloc itself used at the end
    stacks: tuple[Stack, ...] = ()  # the stacks alive then, biggest first (the flame graph)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "stacks"}
        out["domains"] = dict(self.domains)
        out["sites"] = [asdict(site) for site in self.sites]
        # Stacks share most frames: a table of frames (file, line, code), each stack as indexes
        # into it, newest frame first.
        index: dict[tuple[str, int, str], int] = {}
        for stack in self.stacks:
            for frame in stack.frames:
                index.setdefault(frame, len(index))
        out["stacks"] = {
            "frames": [list(frame) for frame in index],
            "stacks": [[[index[frame] for frame in s.frames], s.size, s.count] for s in self.stacks],
        }
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TraceAtPeak:
        kwargs = _known(cls, data)
        kwargs["sites"] = tuple(Site(**_known(Site, s)) for s in data.get("sites", ()))
        kwargs["domains"] = dict(data.get("domains") or {})
        table = data.get("stacks") or {}
        try:
            frames = [(str(f), int(line), str(code)) for f, line, code in table.get("frames", ())]
            kwargs["stacks"] = tuple(Stack(frames=tuple(frames[i] for i in ids), size=int(size), count=int(count))
                                     for ids, size, count in table.get("stacks", ()))
        except (IndexError, ValueError, TypeError) as exc:
            raise ValueError(f"trace.stacks is malformed ({exc})") from None
        return cls(**kwargs)


#: A stretch with no sample is a gap when it is longer than this many intervals, and than _GAP_MIN.
_GAP_FACTOR = 4
_GAP_MIN = 0.1  # seconds


@dataclass(frozen=True)
class Timeline:
    """The samples: parallel columns, ``None`` where a figure was unavailable (or not read at
    that moment: the RSS read from outside and Arrow's pool read inside have their own times)."""

    interval: float  # the interval the sampler ended with (it doubles when it compacts)
    t: list[float]  # seconds since the run started
    rss: list[int | None]
    arrow: list[int | None]
    children: list[int | None]
    #: RSS read from another process (leakhunt.outside): no gap while C code holds the GIL
    outside: bool = False

    def __len__(self) -> int:
        return len(self.t)

    def max_rss(self) -> tuple[float, int] | None:
        """(time, rss) of the highest sample, or None without samples."""
        best: tuple[float, int] | None = None
        for t, value in zip(self.t, self.rss):
            if value is not None and (best is None or value > best[1]):
                best = (t, value)
        return best

    def max_of(self, column: str) -> int | None:
        values = [v for v in getattr(self, column) if v is not None]
        return max(values) if values else None

    def count(self, column: str = "rss") -> int:
        """How many samples read ``column``."""
        return sum(v is not None for v in getattr(self, column))

    def gaps(self, column: str = "rss") -> list[tuple[float, float]]:
        """The stretches (start, end) in which ``column`` has no sample for more than four
        intervals (and 0.1 s): a thread of the script was not scheduled (C code held the GIL),
        or the machine was too busy to run the sampler."""
        times = [t for t, v in zip(self.t, getattr(self, column)) if v is not None]
        limit = max(_GAP_FACTOR * self.interval, _GAP_MIN)
        return [(a, b) for a, b in zip(times, times[1:]) if b - a > limit]

    def with_outside(self, samples: OutsideSamples, t0: float) -> Timeline:
        """This timeline's Arrow and children samples with the RSS read from outside
        (:mod:`leakhunt.outside`; times on ``t0``'s clock), in time order, ending with this
        timeline's own last sample: what the outside process read after the script's end (the
        tracer's work) is not the script's. Samples from another clock (more than a minute apart)
        are not merged."""
        end = self.t[-1] if self.t else math.inf
        moved = [(t - t0, rss) for t, rss in zip(samples.t, samples.rss) if t0 <= t and t - t0 < end]
        if not moved or moved[0][0] > 60.0:
            return self
        rows: list[tuple[float, int | None, int | None, int | None]] = [
            (t, None, a, c) for t, a, c in zip(self.t[:-1], self.arrow, self.children) if a is not None or c is not None]
        rows.extend((t, rss, None, None) for t, rss in moved)
        rows.append((self.t[-1], self.rss[-1], self.arrow[-1], self.children[-1]))
        rows.sort(key=lambda row: row[0])
        return Timeline(interval=samples.interval, t=[r[0] for r in rows], rss=[r[1] for r in rows],
                        arrow=[r[2] for r in rows], children=[r[3] for r in rows], outside=True)

    def to_dict(self) -> dict[str, Any]:
        return {"interval": self.interval, "t": [round(t, 6) for t in self.t], "rss": self.rss,
                "arrow": self.arrow, "children": self.children, "outside": self.outside}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timeline:
        t = [float(x) for x in data.get("t", [])]
        n = len(t)

        def column(name: str) -> list[int | None]:
            values = list(data.get(name) or [None] * n)
            if len(values) != n:
                raise ValueError(f"samples.{name} has {len(values)} values but samples.t has {n}")
            return [None if v is None else int(v) for v in values]

        return cls(interval=float(data.get("interval", DEFAULT_INTERVAL)), t=t, rss=column("rss"),
                   arrow=column("arrow"), children=column("children"), outside=bool(data.get("outside", False)))


@dataclass(frozen=True)
class RunRecord:
    """Everything ``leakhunt run`` recorded about one run. Figures are bytes or ``None``."""

    target: str  # "script.py" or "-m package.module"
    argv: list[str]  # sys.argv the target saw
    started_at: str  # ISO 8601 UTC
    seconds: float
    exit_status: int
    error: str | None  # the exception's last line ("ValueError: boom") when the target raised
    error_traceback: str | None  # the traceback as Python printed it
    start_rss: int | None
    peak_rss: int | None  # absolute high-water RSS during the run
    peak_above_start: int | None
    peak_time: float | None  # seconds since start of the highest sample
    peak_source: str  # "hwm" (kernel high-water mark) or "sampled"
    final_rss: int | None  # RSS after the run, settled
    final_growth: int | None  # anonymous RSS kept at the end (settled), tracemalloc's own memory left out
    allocator_retention: int | None  # RSS settling gave back at the end: freed, not a leak
    arrow_peak: int | None  # Arrow pool's highest allocation during the run
    arrow_final: int | None
    children_peak: int | None  # highest sampled sum of the children's PSS (--children)
    traced_peak: int | None  # tracemalloc's peak during the run (--trace)
    trace: TraceAtPeak | None
    samples: Timeline
    budget: str | None = None  # the budget, described ("peak=953.7 MiB")
    budget_limits: dict[str, int] = field(default_factory=dict)  # by keyword, bytes
    violations: tuple[Violation, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    sampler_cpu: float = 0.0  # CPU seconds the sampler thread used: what sampling cost
    explanation: Explanation | None = None  # what is alive at exit (--trace), or why the budget broke
    tracing_overhead: int = 0  # tracemalloc's own memory (--trace): not the target's, not in final_growth
    file_backed_growth: int | None = None  # file-backed pages added (libraries' code, memory maps): not a leak
    imports: int | None = None  # of final_growth: anonymous memory the script's imports took
    imported: int = 0  # modules imported by the script (outermost imports)
    # of those, the libraries whose objects were set aside with the heap older than the run
    # (leakhunt/imports.py): code loaded, which the judgement at the end does not walk
    imports_set_aside: list[str] = field(default_factory=list)
    native: NativePeak | None = None  # the native backend's peak (memray; leakhunt.native)
    trace_backend: str | None = None  # "native", "tracemalloc" or None (not traced)
    trace_note: str | None = None  # why the run was not traced with the backend asked for
    # wall seconds after the script returned until the record was complete, and of those the
    # judgement's (what keeps memory alive at the end); memray's capture is read alongside
    after_seconds: float | None = None
    judgement_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": SCHEMA}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "samples":
                value = value.to_dict()
            elif f.name in ("trace", "native", "explanation"):
                value = value.to_dict() if value is not None else None
            elif f.name == "violations":
                value = [asdict(v) for v in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Rebuild a record from :meth:`to_dict` output. ``ValueError`` on anything else."""
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a `leakhunt run --json` file (schema {found!r}, expected {SCHEMA!r})")
        kwargs = _known(cls, data)
        missing = [f.name for f in fields(cls) if f.name not in data
                   and f.name not in _OPTIONAL]
        if missing:
            raise ValueError(f"`leakhunt run --json` file lacks {', '.join(missing)}")
        kwargs["samples"] = Timeline.from_dict(data["samples"] or {})
        kwargs["trace"] = TraceAtPeak.from_dict(data["trace"]) if data.get("trace") else None
        kwargs["native"] = NativePeak.from_dict(data["native"]) if data.get("native") else None
        kwargs["violations"] = tuple(Violation(**_known(Violation, v)) for v in data.get("violations") or ())
        kwargs["argv"] = list(data.get("argv") or [])
        kwargs["imports_set_aside"] = [str(name) for name in data.get("imports_set_aside") or []]
        kwargs["environment"] = dict(data.get("environment") or {})
        kwargs["budget_limits"] = {str(k): int(v) for k, v in (data.get("budget_limits") or {}).items()}
        kwargs["explanation"] = Explanation.from_dict(data["explanation"]) if data.get("explanation") else None
        return cls(**kwargs)


#: RunRecord fields a `leakhunt run --json` file may lack (written by an older leakhunt).
_OPTIONAL = ("budget", "budget_limits", "violations", "environment", "sampler_cpu", "explanation",
             "tracing_overhead", "file_backed_growth", "imports", "imported", "native", "trace_backend", "trace_note",
             "after_seconds", "judgement_seconds", "imports_set_aside")


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


# --------------------------------------------------------------------------------------
# The sampler


class Sampler:
    """Samples memory in a background thread from :meth:`start` to :meth:`stop`.

    ``status``: called from the sampler's thread with a one-line status twice a second (the
    time, RSS and its maximum so far), or None.
    ``max_samples``: when reached, the samples are halved (each pair keeps its higher RSS) and
    the interval doubles, so a long run's timeline stays small.
    Use as a context manager or call :meth:`stop` in a ``finally``: the thread is always joined.
    """

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL,
        *,
        children: bool = False,
        status: Callable[[str], None] | None = None,
        max_samples: int = 200_000,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.interval = parse_interval(interval)
        self.children = children
        self.status = status
        self.max_samples = max(16, max_samples)
        self._clock = clock
        self._t = array("d")
        self._rss = array("q")
        self._arrow = array("q")
        self._children = array("q")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._lock = threading.Lock()
        self.error: BaseException | None = None  # a failure inside the thread, kept for the caller
        self.cpu_seconds = 0.0  # CPU time the thread used: the sampling cost
        # children are costly to read (psutil walks /proc): at most every 50 ms
        self._children_every = max(1, round(0.05 / self.interval))
        self._last_children: int | None = None
        self._max_rss = 0
        self._max_arrow: int | None = None

    # lifecycle -------------------------------------------------------------------------

    def start(self) -> Sampler:
        if self._thread is not None:
            raise RuntimeError("Sampler.start() called twice")
        self._t0 = self._clock()
        self._sample(self._t0)  # the first sample is taken before the target runs
        self._thread = threading.Thread(target=self._run, name="leakhunt-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Timeline:
        """Stop and join the thread, take a last sample, return the timeline."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._sample(self._clock())
        return self.timeline()

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def t0(self) -> float:
        return self._t0

    # results ---------------------------------------------------------------------------

    def timeline(self) -> Timeline:
        with self._lock:
            def col(values: array) -> list[int | None]:
                return [None if v == _MISSING else int(v) for v in values]

            return Timeline(interval=self.interval, t=[t - self._t0 for t in self._t],
                            rss=col(self._rss), arrow=col(self._arrow), children=col(self._children))

    @property
    def arrow_max(self) -> int | None:
        return self._max_arrow

    # the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        began = time.thread_time()
        try:
            next_status = self._clock() + 0.5
            while not self._pause():
                now = self._clock()
                rss = self._sample(now)
                if self.status is not None and now >= next_status:
                    next_status = now + 0.5
                    self._show_status(now, rss)
        except BaseException as exc:  # pragma: no cover - never let the thread die silently
            self.error = exc
        finally:
            self.cpu_seconds = time.thread_time() - began

    def _pause(self) -> bool:
        """Sleep one interval; True when asked to stop.

        ``time.sleep`` in slices of at most 50 ms rather than ``Event.wait``: a wait builds and
        acquires a lock each time, which doubled the sampler's CPU cost per tick.
        """
        remaining = self.interval
        while remaining > 0 and not self._stop.is_set():
            step = min(remaining, 0.05)
            time.sleep(step)
            remaining -= step
        return self._stop.is_set()

    def _sample(self, now: float) -> int | None:
        rss = probes.rss()
        arrow = probes.arrow()
        children = None
        if self.children:
            n = len(self._t)
            if n % self._children_every == 0 or self._stop.is_set():
                self._last_children = probes.children_memory()
            children = self._last_children
        with self._lock:
            self._t.append(now)
            self._rss.append(_MISSING if rss is None else rss)
            self._arrow.append(_MISSING if arrow is None else arrow)
            self._children.append(_MISSING if children is None else children)
            if len(self._t) >= self.max_samples:
                self._compact()
        if rss is not None and rss > self._max_rss:
            self._max_rss = rss
        if arrow is not None and (self._max_arrow is None or arrow > self._max_arrow):
            self._max_arrow = arrow
        return rss

    def _compact(self) -> None:
        """Halve the samples, each pair keeping its higher-RSS sample; double the interval."""
        keep = [i if self._rss[i] >= self._rss[i + 1] else i + 1 for i in range(0, len(self._t) - 1, 2)]
        if len(self._t) % 2:
            keep.append(len(self._t) - 1)
        for name in ("_t", "_rss", "_arrow", "_children"):
            old = getattr(self, name)
            setattr(self, name, array(old.typecode, (old[i] for i in keep)))
        self.interval = min(self.interval * 2, _MAX_INTERVAL)
        self._children_every = max(1, round(0.05 / self.interval))

    # status line ---------------------------------------------------------------------------

    def _show_status(self, now: float, rss: int | None) -> None:
        assert self.status is not None
        parts = [f"leakhunt: {now - self._t0:6.1f} s", f"rss {format_size(rss)}",
                 f"max {format_size(self._max_rss)}"]
        if self._max_arrow is not None:
            parts.append(f"arrow max {format_size(self._max_arrow)}")
        if self._last_children is not None:
            parts.append(f"children {format_size(self._last_children)}")
        try:
            self.status("  ".join(parts))
        except Exception:  # noqa: BLE001 - a broken status must not stop the sampling
            self.status = None
