"""Tasks one at a time on a worker with several threads, while a suspect prefix is confirmed.

With several threads, tasks run at once and share one process: the memory that moves between
two task events belongs to one of the tasks running then, and nothing in a process's resident
memory says which. Measured on a pipeline of four prefixes computed together (issue 23, four
threads): splitting each step equally among the running tasks, or regressing the worker's
growth on per-prefix call counts, or on each task's share of every interval, all leave errors
of 1-3 MiB per call on clean prefixes and 25-50 % on a 2 MiB leak, because the prefixes of a
dataframe pipeline run in lock-step and a neighbour's 20 MB temporary lands on whoever runs
beside it (benchmarks/dask.md has the figures and the script that prints them).

So a prefix is only *suspected* from the shared figures. Its confirmation window is measured
the way a single-threaded worker measures every task: while the prefix has tasks waiting on
this worker, the worker runs its tasks one at a time (``WorkerState.nthreads`` is set to 1, the
number of tasks Dask lets execute at once), each of the prefix's tasks is settled around and
read alone, and the worker gets its threads back as soon as the window is done or the prefix
has nothing waiting. Results are unchanged; that stretch of the computation runs on one thread.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

__all__ = ["Isolation", "PENDING"]

#: Worker task states of a task that can run on this worker now (its inputs are here) and has not
#: started: isolating while a task waits for inputs would only slow the others down.
PENDING = frozenset({"ready", "constrained"})


class Isolation:
    """Runs a worker's tasks one at a time while a confirming prefix has tasks waiting here.

    ``note(key, prefix, start, finish)`` on every transition keeps the count of each prefix's
    waiting tasks; ``update(confirming)`` after each task event isolates or gives the threads
    back; ``restore()`` gives them back for good (block end, teardown).
    """

    def __init__(self, worker: Any, threads: int, prefix_of: Callable[[Any], str]) -> None:
        self.worker = worker
        self.threads = threads
        self.prefix_of = prefix_of
        self.waiting: dict[str, int] = {}
        self.active = False
        self.seconds = 0.0  # time spent isolated
        self.stretches = 0
        self._since = 0.0

    def note(self, key: Any, start: str, finish: str) -> None:
        entered, left = finish in PENDING, start in PENDING
        if entered == left:
            return
        name = self.prefix_of(key)
        count = self.waiting.get(name, 0) + (1 if entered else -1)
        if count > 0:
            self.waiting[name] = count
        else:
            self.waiting.pop(name, None)

    def update(self, confirming: Iterable[str]) -> None:
        want = self.threads > 1 and any(self.waiting.get(name) for name in confirming)
        if want and not self.active:
            self.active = True
            self.stretches += 1
            self._since = time.perf_counter()
            self.worker.state.nthreads = 1
        elif self.active and not want:
            self.restore()

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
