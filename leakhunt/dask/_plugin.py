"""The worker side: a ``WorkerPlugin`` that measures every task the worker runs.

A task runs between its transition to ``executing`` and its transition out of it (to
``memory``, ``error``, ...). Dask calls :meth:`LeakhuntPlugin.transition` on the worker's event
loop for every transition, so every figure here is read from that one thread, never from a
task's.

Per task, cheaply (no garbage collection): its peak (:class:`leakhunt.probes.PeakWindow`: the
process's high-water mark while it ran, above its start) and what it left behind: the growth of
*unmanaged* memory, anonymous RSS minus what Dask holds (its data counted by real buffers,
:class:`~leakhunt.dask._ledger.DataLedger`, and a P2P shuffle's buffers), and of Arrow's pool.
Each prefix's series on the worker is hunted by :class:`leakhunt.hunt.SeriesHunt`; a suspect
window is confirmed over the next window with settled readings (a collection and a trim around
each of those tasks only).

With several threads the growth between two task events is shared equally among the tasks
running in between: good enough to *suspect* a prefix, not to judge it
(:mod:`leakhunt.dask._isolation` says why). A confirmation on such a worker counts only tasks
that ran alone, which the worker's :class:`~leakhunt.dask._isolation.Isolation` arranges.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from dask.utils import key_split
from distributed.diagnostics.plugin import WorkerPlugin

from leakhunt import defaults, probes
from leakhunt.dask import _oom
from leakhunt.dask._isolation import Isolation
from leakhunt.dask._ledger import DataLedger, shuffle_buffers
from leakhunt.hunt import NOISE, SeriesHunt
from leakhunt.probes import PeakWindow
from leakhunt.settle import freeze_heap, settle, thaw_heap, trim
from leakhunt.taskhunt import SharedSeriesHunt

__all__ = ["LeakhuntPlugin", "RUNNING", "Timeline"]

#: Worker task states in which a task's function is running.
RUNNING = frozenset({"executing", "long-running"})

THREADED_NOISE = defaults.DASK_THREADED_NOISE

#: Per-call figures kept per prefix for the report (and for judging a prefix over all workers
#: when no worker ran enough calls to judge it alone).
KEPT_FIGURES = 64


@dataclass
class _Running:
    prefix: str
    window: PeakWindow
    started: float
    solo: bool  # no other task ran beside it (so far)
    settled: bool  # its start reading was settled (a confirmation task)
    retained: float = 0.0  # its share of unmanaged growth while it ran
    arrow: float = 0.0  # its share of Arrow pool growth while it ran


@dataclass
class _Prefix:
    hunt: SeriesHunt | SharedSeriesHunt
    calls: int = 0
    errors: int = 0
    peak: int = 0
    retained: int = 0
    arrow: int = 0
    seconds: float = 0.0
    confirm_calls: int = 0  # calls measured alone and settled, for a confirmation
    shared_skipped: int = 0  # calls a confirmation could not use: another task ran beside them
    figures: list[int] = field(default_factory=list)  # the first calls' figures, in order
    open_window: list[int] = field(default_factory=list)  # the confirmation under way: its calls' figures

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls, "errors": self.errors, "peak": self.peak, "retained": self.retained,
            "arrow": self.arrow, "seconds": self.seconds, "hunt": self.hunt.verdict().to_dict(),
            "judged": self.hunt.judged, "confirming": self.hunt.confirming, "settled_calls": self.confirm_calls,
            "shared_skipped": self.shared_skipped, "figures": self.figures,
            "open_window": self.open_window if self.hunt.confirming else [],
        }


class Timeline:
    """Unmanaged memory over the block, at task events: at most ``size`` points, evenly thinned."""

    def __init__(self, size: int = 400) -> None:
        self.size = size
        self.points: list[tuple[float, int]] = []
        self._every = 1
        self._count = 0

    def add(self, seconds: float, value: int) -> None:
        self._count += 1
        if self._count % self._every:
            return
        self.points.append((round(seconds, 3), value))
        if len(self.points) >= 2 * self.size:
            self.points = self.points[::2]
            self._every *= 2


class LeakhuntPlugin(WorkerPlugin):
    """Measures every task on a worker; registered by :func:`leakhunt.dask.watch`.

    ``threshold``, ``repeat`` and ``warmup`` are the hunt's (:class:`leakhunt.hunt.SeriesHunt`);
    ``isolate``: confirm on a worker with several threads by running its tasks one at a time
    (:mod:`leakhunt.dask._isolation`). The state lives on the worker's copy of the plugin;
    :func:`leakhunt.dask._worker.collect` reads it.
    """

    idempotent = False

    def __init__(self, *, threshold: int, repeat: int = defaults.REPEAT, warmup: int = defaults.WARMUP,
                 survivor_min: int = 1 << 20, isolate: bool = True, version: str = "",
                 oom: dict[str, Any] | None = None) -> None:
        self.threshold = threshold
        self.oom = oom  # the OOM guard's settings (leakhunt.dask._oom), None: off
        self.repeat = repeat
        self.warmup = warmup
        self.survivor_min = survivor_min
        self.isolate = isolate
        self.version = version
        self._reset()

    def _settings(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "repeat": self.repeat, "warmup": self.warmup,
                "survivor_min": self.survivor_min, "isolate": self.isolate, "version": self.version,
                "oom": self.oom}

    def _reset(self) -> None:
        self.worker: Any = None
        self.nthreads = 1
        self.started = 0.0
        self.baseline: frozenset[int] = frozenset()  # big buffers alive before: not the block's survivors
        self.running: dict[Any, _Running] = {}
        self.deferred: list[Any] = []  # started while a finished task's end was still to come
        self.prefixes: dict[str, _Prefix] = {}
        self.ledger = DataLedger()
        self.timeline = Timeline()
        self.isolation: Isolation | None = None
        self.ignored = 0  # tasks that were already running when the plugin arrived
        self.frozen = False  # we froze the gc heap for a confirmation window
        self._last_unmanaged = 0
        self._last_arrow = 0
        self.unmanaged_start = 0  # unmanaged memory when the watch began (after a trim)
        self.oom_guard: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # Only the settings travel to the workers; each worker starts its own state.
        return self._settings()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("isolate", True)
        self.__dict__.setdefault("oom", None)
        self._reset()

    # ------------------------------------------------------------------ lifecycle
    def setup(self, worker: Any) -> None:
        from leakhunt.attribution import buffer_baseline

        self.worker = worker
        self.nthreads = max(1, int(getattr(worker.state, "nthreads", 1) or 1))
        if self.isolate and self.nthreads > 1:
            self.isolation = Isolation(worker, self.nthreads, key_split)
        self._ledger_existing(worker)
        # Hand back what allocators kept from earlier work, or the first tasks reuse it and their
        # growth reads as zero (no collection: that would cost the block half a second here).
        trim()
        # Buffers alive now are not the block's survivors (one heap pass).
        self.baseline = buffer_baseline()
        self.started = time.time()
        self._last_unmanaged, self._last_arrow = self._reading()
        self.unmanaged_start = self._last_unmanaged
        self.oom_guard = _oom.start(self, worker)  # the diagnosis before the nanny's restart

    def _ledger_existing(self, worker: Any) -> None:
        """The keys already in memory when the watch began are Dask's data too."""
        fast = getattr(worker.data, "fast", worker.data)
        for key, ts in list(worker.state.tasks.items()):
            if ts.state == "memory" and key in fast:
                self.ledger.add(key, fast[key], int(ts.nbytes or 0))

    def teardown(self, worker: Any) -> None:
        self.release()

    def release(self) -> None:
        """Stop everything the plugin changed on the worker (end of block, or teardown)."""
        _oom.stop(self.oom_guard)
        self.oom_guard = None
        if self.isolation is not None:
            self.isolation.restore()
        for task in self.running.values():
            task.window.close()
        self.running.clear()
        self._thaw()

    # A confirmation settles around each of its tasks: a full collection walks the whole worker
    # heap (0.2-0.7 s here with distributed and pandas loaded). Objects that exist when the window
    # starts cannot be garbage its tasks made, so freeze them for the window (leakhunt.settle's
    # freeze_heap, as hunt() does): a collection then walks only what came after.
    def _freeze(self) -> None:
        if not self.frozen:
            self.frozen = freeze_heap()

    def _thaw(self) -> None:
        if self.frozen:
            thaw_heap()
            self.frozen = False

    # ------------------------------------------------------------------ per transition
    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if self.isolation is not None:
            self.isolation.note(key, start, finish)
        if finish in RUNNING and start not in RUNNING:
            self._task_started(key)
        elif start in RUNNING and finish not in RUNNING:
            if finish == "memory":
                self._data_in(key)  # its result is Dask's data from now on: not left behind by it
            self._task_ended(key, finish)
        elif finish == "memory" and start != "memory":
            self._data_in(key)
        elif start == "memory" and finish != "memory":
            self._data_out(key)

    def _data_in(self, key: Any) -> None:
        """A key entered the worker's memory (a result, fetched data, a scatter)."""
        fast = getattr(self.worker.data, "fast", self.worker.data)
        ts = self.worker.state.tasks.get(key)
        try:
            value = fast[key]
        except KeyError:  # spilled straight to disk: not in memory
            return
        self.ledger.add(key, value, int(getattr(ts, "nbytes", 0) or 0))

    def _data_out(self, key: Any) -> None:
        self.ledger.remove(key)

    def _reading(self) -> tuple[int, int]:
        anon = probes.rss_anon()
        if anon is None:
            anon = probes.rss() or 0
        return anon - self.ledger.held - shuffle_buffers(self.worker), probes.arrow() or 0

    def _advance(self) -> None:
        """Share the growth since the last task event among the tasks running since then."""
        unmanaged, arrow = self._reading()
        running = self.running
        if running:
            n = len(running)
            grew, arrow_grew = (unmanaged - self._last_unmanaged) / n, (arrow - self._last_arrow) / n
            for task in running.values():
                task.retained += grew
                task.arrow += arrow_grew
        self._last_unmanaged, self._last_arrow = unmanaged, arrow
        self.timeline.add(time.time() - self.started, unmanaged - self.unmanaged_start)

    def _prefix(self, name: str) -> _Prefix:
        entry = self.prefixes.get(name)
        if entry is None:
            hunt: SeriesHunt | SharedSeriesHunt
            if self.nthreads > 1:
                hunt = SharedSeriesHunt(self.threshold, repeat=self.repeat, warmup=self.warmup, noise=THREADED_NOISE)
            else:
                hunt = SeriesHunt(self.threshold, repeat=self.repeat, warmup=self.warmup, accounting="unmanaged",
                                  noise=NOISE["rss"])
            entry = self.prefixes[name] = _Prefix(hunt)
        return entry

    def _confirming(self) -> set[str]:
        return {name for name, entry in self.prefixes.items() if entry.hunt.confirming}

    # ------------------------------------------------------------------ a task starts
    def _task_started(self, key: Any) -> None:
        # Dask starts the next task before it moves the finished one to memory (in the same
        # event): read this task's start after that, or it would take the finished task's result.
        if any(self._done(k) for k in self.running):
            self.deferred.append(key)
            return
        self._begin(key)

    def _done(self, key: Any) -> bool:
        ts = self.worker.state.tasks.get(key)
        return ts is None or bool(getattr(ts, "done", False))

    def _begin(self, key: Any) -> None:
        name = key_split(key)
        alone = not self.running and not getattr(self.worker.state, "long_running", None)
        settled = alone and self._prefix(name).hunt.confirming
        if settled:
            settle()  # a confirmation task that runs alone: a settled start reading
        self._advance()
        for other in self.running.values():
            other.solo = False
        self.running[key] = _Running(name, PeakWindow().open(), time.perf_counter(), solo=alone, settled=settled)

    # ------------------------------------------------------------------ a task ends
    def _task_ended(self, key: Any, finish: str) -> None:
        task = self.running.get(key)
        if task is None:
            self.ignored += 1
        else:
            self._end(key, task, finish)
        for later in self.deferred:
            self._begin(later)
        self.deferred.clear()
        if self.isolation is not None:
            self.isolation.hold(self._confirming(), {task.prefix for task in self.running.values()})

    def _end(self, key: Any, task: _Running, finish: str) -> None:
        entry = self._prefix(task.prefix)
        confirming = entry.hunt.confirming
        measured = confirming and task.settled and task.solo and len(self.running) == 1
        if measured:
            settle()
        self._advance()
        del self.running[key]
        top = task.window.close()
        start = task.window.start
        peak = max(0, top - start) if top is not None and start is not None else 0
        retained = int(task.retained)
        entry.calls += 1
        entry.seconds += time.perf_counter() - task.started
        entry.peak = max(entry.peak, peak)
        entry.retained += retained
        entry.arrow += int(task.arrow)
        if finish == "error":
            entry.errors += 1  # a failed task is never called a leak: its traceback holds its frames
        else:
            if len(entry.figures) < KEPT_FIGURES:
                entry.figures.append(retained)
            self._hunt(entry, retained, confirming, measured)
        entry.confirm_calls += measured

    def _hunt(self, entry: _Prefix, retained: int, confirming: bool, alone: bool) -> None:
        hunt = entry.hunt
        taken = not confirming or alone or not isinstance(hunt, SharedSeriesHunt)
        if isinstance(hunt, SharedSeriesHunt):
            hunt.add(retained, alone=alone)  # a confirmation only counts calls that ran alone
        else:
            hunt.add(retained)
        entry.shared_skipped += not taken
        if confirming and hunt.confirming:
            if taken:
                entry.open_window.append(retained)
        else:
            entry.open_window.clear()
        if entry.hunt.confirming and not confirming:
            self._freeze()
        elif confirming and not entry.hunt.confirming and not self._confirming():
            self._thaw()

    # ------------------------------------------------------------------ read out
    def unmanaged_growth(self) -> int:
        """Unmanaged memory now minus when the watch began (read it after settling)."""
        return self._reading()[0] - self.unmanaged_start

    def snapshot(self) -> dict[str, Any]:
        """The per-prefix figures so far, as plain data (it crosses the network)."""
        isolation = self.isolation
        return {
            "nthreads": self.nthreads,
            "since": self.started,
            "running": len(self.running),
            "ignored": self.ignored,
            "prefixes": {name: entry.to_dict() for name, entry in self.prefixes.items()},
            "timeline": list(self.timeline.points),
            "isolated_seconds": isolation.seconds if isolation is not None else 0.0,
            "isolated_stretches": isolation.stretches if isolation is not None else 0,
            "isolation_exhausted": isolation.exhausted if isolation is not None else False,
        }
