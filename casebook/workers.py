"""The memory of a pool's or a cluster's worker processes, as a whole: the one place it is read.

Workers are started before a measured call and counted only once they have answered, so a
process caught between fork and exec (a copy of its parent for a moment) is never counted.
Their memory is their proportional set size (PSS): pages they share with each other or with
this process are split between them, not counted once per process.

leakhunt's public ``measure(children=True)`` counts only children started during the block,
and these workers are started before it; when leakhunt can measure given processes (its Dask
front end, issue 12), this module is what switches.
"""

from __future__ import annotations

import threading
from typing import Iterable

__all__ = ["WorkerMemory", "pss"]


def pss(pids: Iterable[int]) -> int:
    """The summed PSS of the live processes among ``pids``, in bytes (USS or RSS where PSS is
    not readable)."""
    import psutil

    total = 0
    for pid in pids:
        try:
            info = psutil.Process(pid).memory_full_info()
        except (psutil.Error, OSError):
            continue  # gone, or not ours to read
        total += int(getattr(info, "pss", None) or getattr(info, "uss", None) or info.rss)
    return total


class WorkerMemory:
    """The workers' PSS at the start of a block (``idle``) and its highest value during it,
    sampled every ``interval`` seconds in a thread (``peak``)::

        with WorkerMemory(pids) as workers:
            call()
        workers.idle, workers.peak   # bytes
    """

    def __init__(self, pids: Iterable[int], interval: float = 0.05) -> None:
        self.pids = tuple(pids)
        self.interval = interval
        self.idle = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="casebook-workers", daemon=True)

    def _sample(self) -> None:
        self.peak = max(self.peak, pss(self.pids))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> WorkerMemory:
        self.idle = self.peak = pss(self.pids)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
