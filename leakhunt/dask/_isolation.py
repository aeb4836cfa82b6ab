"""Tasks one at a time on a worker with several threads, while a suspect prefix is confirmed.

With several threads, tasks run at once and share one process: the memory that moves between
two task events belongs to one of the tasks running then, and nothing in a process's resident
memory says which. Measured on a pipeline of four prefixes computed together (issue 23, two and
four threads; ``python benchmarks/dask_attribution.py``, tables in benchmarks/dask.md):
splitting each step equally among the running tasks diluted a 2 MiB leak by up to 19 % and put
up to a MiB per call on clean prefixes; each task's whole span, or regressions on per-prefix
call counts or on the phases of each task's life, put 1.0 to 3.6 MiB per call on some clean
prefix, and the whole span read the leak at up to 6.6 MiB, because the prefixes of a dataframe
pipeline run in lock-step and a neighbour's 20 MB temporary lands on whoever runs beside it.

So a prefix is only *suspected* from the shared figures. Its confirmation window is measured
the way a single-threaded worker measures every task: while the prefix has tasks coming on this
worker, the worker runs its tasks one at a time (``WorkerState.nthreads``, the number of tasks
Dask lets execute at once, is set to 1), each of the prefix's tasks is settled around and read
alone, and the worker gets its threads back as soon as the prefix has nothing waiting here.
Results are unchanged; that stretch of the computation runs on one thread. A budget bounds the
cost: isolated time stays under ``share`` of the watch so far (plus ``allowance`` seconds);
past it the worker keeps its threads and the confirmation stays open (the verdict says so).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Collection

__all__ = ["Isolation", "READY"]

#: Worker task states of a task that can start as soon as a thread is free.
READY = frozenset({"ready", "constrained"})


class Isolation:
    """Runs a worker's tasks one at a time around the tasks of a confirming prefix.

    The worker becomes one thread wide just before such a task can start (when it arrives with
    its inputs here, or when its last input arrives: Dask decides to start a task in the same
    step, right after), so it starts once the tasks running beside it have ended, and runs
    alone; the threads come back when no task of a confirming prefix is ready or running.

    ``note(key, start, finish)`` on every transition; ``hold(confirming, running)`` after each
    task ends; ``restore()`` gives the threads back for good (block end, teardown).
    """

    def __init__(self, worker: Any, threads: int, prefix_of: Callable[[Any], str], *, share: float = 0.5,
                 allowance: float = 10.0) -> None:
        self.worker = worker
        self.threads = threads
        self.prefix_of = prefix_of
        self.share = share
        self.allowance = allowance
        self.ready: dict[str, int] = {}  # prefix -> its tasks in a READY state here
        self.names: frozenset[str] = frozenset()  # the confirming prefixes
        self.active = False
        self.exhausted = False  # the budget was spent: no more isolation this block
        self.seconds = 0.0  # time spent isolated
        self.stretches = 0
        self._began = time.perf_counter()
        self._since = 0.0

    def note(self, key: Any, start: str, finish: str) -> None:
        entered, left = finish in READY, start in READY
        if entered != left:
            name = self.prefix_of(key)
            count = self.ready.get(name, 0) + (1 if entered else -1)
            if count > 0:
                self.ready[name] = count
            else:
                self.ready.pop(name, None)
        if self.names and finish in ("waiting", "memory") and start != finish:
            self._before_start(key, finish)

    def _before_start(self, key: Any, finish: str) -> None:
        """Isolate if a confirming prefix's task is about to become ready: ``key`` itself (it
        arrived with its inputs here), or a task waiting for ``key`` alone (its last input)."""
        ts = self.worker.state.tasks.get(key)
        if ts is None:
            return
        candidates = (ts,) if finish == "waiting" else tuple(ts.dependents)
        for task in candidates:
            if task.state == "waiting" and not task.waiting_for_data and self.prefix_of(task.key) in self.names:
                self._isolate()
                return

    def hold(self, confirming: Collection[str], running: Collection[str]) -> None:
        """After a task ended: stay one thread wide while a confirming prefix has a task ready or
        running here, else give the threads back."""
        self.names = frozenset(confirming)
        busy = any(self.ready.get(name) for name in self.names) or any(name in self.names for name in running)
        if busy:
            self._isolate()
            self.check_budget()
        else:
            self.restore()

    def _isolate(self) -> None:
        if self.active or self.exhausted or self.threads <= 1:
            return
        if not self._within_budget(0.0):
            self.exhausted = True
            return
        self.active = True
        self.stretches += 1
        self._since = time.perf_counter()
        self.worker.state.nthreads = 1

    def _within_budget(self, running: float) -> bool:
        elapsed = time.perf_counter() - self._began
        return self.seconds + running <= self.share * elapsed + self.allowance

    def check_budget(self) -> None:
        """Give the threads back if this stretch has spent the budget (called at task events)."""
        if self.active and not self._within_budget(time.perf_counter() - self._since):
            self.restore()
            self.exhausted = True

    def restore(self) -> None:
        """Give the worker its threads back, and have Dask fill them at once."""
        if not self.active:
            return
        self.active = False
        self.seconds += time.perf_counter() - self._since
        state = self.worker.state
        if state.nthreads == 1:  # ours: nobody else changed it meanwhile
            state.nthreads = self.threads
        loop = getattr(self.worker, "loop", None)
        if loop is not None:
            loop.add_callback(_fill_threads, self.worker)


def _fill_threads(worker: Any) -> None:
    """Start the ready tasks the restored threads can take now, rather than at the next event.
    Dask's own unpause event does exactly that (``_ensure_computing``); sent only when the
    worker is running (not paused for memory), so that it changes nothing else."""
    from distributed.worker_state_machine import UnpauseEvent

    if worker.state.running and getattr(worker.status, "name", "") == "running":
        worker.handle_stimulus(UnpauseEvent(stimulus_id=f"leakhunt-threads-back-{time.time()}"))
