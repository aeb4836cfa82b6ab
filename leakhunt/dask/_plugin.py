"""The worker side: a ``WorkerPlugin`` that measures every task the worker runs.

A task runs between its transition to ``executing`` and its transition out of it (to
``memory``, ``error``, ...). Dask calls :meth:`LeakhuntPlugin.transition` on the worker's event
loop for both, so every figure here is read from that one thread, never from a task's.

Per task, cheaply (no garbage collection): its peak (:class:`leakhunt.probes.PeakWindow`: the
process's high-water mark while it ran, above its start) and what it left behind: the growth of
*unmanaged* memory (anonymous RSS minus Dask's managed data, so a result the worker keeps is not
counted, nor data that arrives or leaves) and of Arrow's pool. With several threads, tasks run at
once: the growth between two consecutive task starts or ends is shared equally among the tasks
running in between (docs/dask.md says how precise that is). Each prefix's series on the worker
is hunted by :class:`leakhunt.hunt.SeriesHunt`: a suspect window is confirmed over the next
window with settled readings (a collection and a trim around each of those tasks only).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from dask.utils import key_split
from distributed.diagnostics.plugin import WorkerPlugin

from leakhunt import defaults, probes
from leakhunt.dask import _oom
from leakhunt.hunt import NOISE, SeriesHunt
from leakhunt.probes import PeakWindow
from leakhunt.settle import freeze_heap, settle, thaw_heap, trim

__all__ = ["LeakhuntPlugin", "RUNNING"]

#: Worker task states in which a task's function is running.
RUNNING = frozenset({"executing", "long-running"})

#: Per-task noise with several threads (FINDINGS.md: settled readings move by +-1-1.4 MB with
#: several busy threads); each window's spread of deltas can raise it (SeriesHunt.spread_noise).
THREADED_NOISE = 1024 * 1024


@dataclass
class _Running:
    prefix: str
    window: PeakWindow
    started: float
    retained: float = 0.0  # its share of unmanaged growth while it ran
    arrow: float = 0.0  # its share of Arrow pool growth while it ran


@dataclass
class _Prefix:
    hunt: SeriesHunt
    calls: int = 0
    errors: int = 0
    peak: int = 0
    retained: int = 0
    arrow: int = 0
    seconds: float = 0.0
    confirm_calls: int = 0
    deltas: list[int] = field(default_factory=list)  # first calls' retained, for the report

    def to_dict(self) -> dict[str, Any]:
        verdict = self.hunt.verdict()
        return {
            "calls": self.calls, "errors": self.errors, "peak": self.peak, "retained": self.retained,
            "arrow": self.arrow, "seconds": self.seconds, "hunt": verdict.to_dict(),
            "judged": self.hunt.judged, "confirming": self.hunt.confirming, "settled_calls": self.confirm_calls,
            "first_deltas": self.deltas,
        }


class LeakhuntPlugin(WorkerPlugin):
    """Measures every task on a worker; registered by :func:`leakhunt.dask.watch`.

    ``threshold``, ``repeat`` and ``warmup`` are the hunt's (:class:`leakhunt.hunt.SeriesHunt`).
    The state lives on the worker's copy of the plugin; :func:`leakhunt.dask._worker.collect`
    reads it.
    """

    idempotent = False

    def __init__(self, *, threshold: int, repeat: int = defaults.REPEAT, warmup: int = defaults.WARMUP,
                 survivor_min: int = 1 << 20,
                 version: str = "", oom: dict[str, Any] | None = None) -> None:
        self.threshold = threshold
        self.oom = oom  # the OOM guard's settings (leakhunt.dask._oom), None: off
        self.repeat = repeat
        self.warmup = warmup
        self.survivor_min = survivor_min
        self.version = version
        self._reset()

    def _reset(self) -> None:
        self.worker: Any = None
        self.nthreads = 1
        self.started = 0.0
        self.baseline: frozenset[int] = frozenset()  # big buffers alive before: not the block's survivors
        self.running: dict[Any, _Running] = {}
        self.prefixes: dict[str, _Prefix] = {}
        self.ignored = 0  # tasks that were already running when the plugin arrived
        self.frozen = False  # we froze the gc heap for a confirmation window
        self._last_unmanaged = 0
        self._last_arrow = 0
        self.unmanaged_start = 0  # unmanaged memory when the watch began (after a trim)
        self.oom_guard: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # Only the settings travel to the workers; each worker starts its own state.
        return {"threshold": self.threshold, "repeat": self.repeat, "warmup": self.warmup,
                "survivor_min": self.survivor_min, "version": self.version, "oom": self.oom}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    # ------------------------------------------------------------------ lifecycle
    def setup(self, worker: Any) -> None:
        from leakhunt.attribution import buffer_baseline

        self.worker = worker
        self.nthreads = max(1, int(getattr(worker.state, "nthreads", 1) or 1))
        # Hand back what allocators kept from earlier work, or the first tasks reuse it and their
        # growth reads as zero (no collection: that would cost the block half a second here).
        trim()
        # Buffers alive now are not the block's survivors (one heap pass).
        self.baseline = buffer_baseline()
        self.started = time.time()
        self._last_unmanaged, self._last_arrow = self._reading()
        self.unmanaged_start = self._last_unmanaged
        self.oom_guard = _oom.start(self, worker)  # the diagnosis before the nanny's restart

    def teardown(self, worker: Any) -> None:
        _oom.stop(self.oom_guard)
        self.oom_guard = None
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

    # ------------------------------------------------------------------ per task
    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish in RUNNING and start not in RUNNING:
            self._task_started(key)
        elif start in RUNNING and finish not in RUNNING:
            self._task_ended(key, finish)

    def _reading(self) -> tuple[int, int]:
        anon = probes.rss_anon()
        if anon is None:
            anon = probes.rss() or 0
        state = self.worker.state
        spilled = getattr(self.worker.data, "spilled_total", None)
        managed = state.nbytes - (spilled.memory if spilled is not None else 0)
        return anon - managed, probes.arrow() or 0

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

    def _prefix(self, name: str) -> _Prefix:
        entry = self.prefixes.get(name)
        if entry is None:
            threaded = self.nthreads > 1
            entry = self.prefixes[name] = _Prefix(SeriesHunt(
                self.threshold, repeat=self.repeat, warmup=self.warmup, accounting="unmanaged",
                noise=THREADED_NOISE if threaded else NOISE["rss"], spread_noise=threaded))
        return entry

    def _task_started(self, key: Any) -> None:
        name = key_split(key)
        if self._prefix(name).hunt.confirming:
            settle()  # a confirmation window: a settled start reading for this task
        self._advance()
        self.running[key] = _Running(name, PeakWindow().open(), time.perf_counter())

    def _task_ended(self, key: Any, finish: str) -> None:
        task = self.running.get(key)
        if task is None:
            self.ignored += 1
            return
        entry = self._prefix(task.prefix)
        confirming = entry.hunt.confirming
        if confirming:
            settle()
        self._advance()
        del self.running[key]
        top = task.window.close()
        start = task.window.start
        peak = max(0, top - start) if top is not None and start is not None else 0
        retained = int(task.retained)
        entry.calls += 1
        entry.seconds += time.perf_counter() - task.started
        if finish == "error":
            entry.errors += 1  # a failed task is never called a leak: its traceback holds its frames
        else:
            entry.hunt.add(retained)
            if entry.hunt.confirming and not confirming:
                self._freeze()
            elif confirming and not entry.hunt.confirming and not any(p.hunt.confirming for p in self.prefixes.values()):
                self._thaw()
        entry.confirm_calls += confirming
        entry.peak = max(entry.peak, peak)
        entry.retained += retained
        entry.arrow += int(task.arrow)
        if len(entry.deltas) < 64:
            entry.deltas.append(retained)

    # ------------------------------------------------------------------ read out
    def unmanaged_growth(self) -> int:
        """Unmanaged memory now minus when the watch began (read it after settling)."""
        return self._reading()[0] - self.unmanaged_start

    def snapshot(self) -> dict[str, Any]:
        """The per-prefix figures so far, as plain data (it crosses the network)."""
        return {
            "nthreads": self.nthreads,
            "since": self.started,
            "running": len(self.running),
            "ignored": self.ignored,
            "prefixes": {name: entry.to_dict() for name, entry in self.prefixes.items()},
        }
