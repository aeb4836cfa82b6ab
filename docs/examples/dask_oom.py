"""The OOM guard on a Dask worker: the diagnosis the client keeps after the nanny's restart.

Run: python docs/examples/dask_oom.py   (prints the report docs/oom.md shows)

One local worker process with a 300 MB memory_limit; ``load_files`` keeps every 10 MiB "file" it
reads in a local list. At Dask's pause fraction (80 %) the worker's guard sends its diagnosis to
the scheduler; the task then grows on until the nanny restarts the worker at 95 %, and the task
fails with KilledWorker (no retries here).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import dask
import numpy as np
from distributed import Client, LocalCluster
from distributed.scheduler import KilledWorker

from leakhunt.dask import watch


def load_files(n: int) -> int:
    """Keeps every file it reads. Once its worker's guard has crossed, it waits until the whole
    diagnosis has reached the scheduler (a real job would not wait: the nanny may then restart the
    worker before the diagnosis has left it, and the report has its first steps only)."""
    from distributed import get_client

    def diagnosed(whole: bool) -> bool:  # whole: the last step too (the split of resident memory)
        events = get_client().get_events("leakhunt-oom")
        return any(msg["diagnosis"]["where"] or not whole for _, msg in events)

    files = []
    waited = False
    for _ in range(n):
        files.append(np.ones(10 * 1024 * 1024 // 8))
        time.sleep(0.02)
        if not waited and diagnosed(whole=False):
            deadline = time.monotonic() + 60
            while not diagnosed(whole=True) and time.monotonic() < deadline:
                time.sleep(0.05)
            waited = True
    return len(files)


def main() -> None:
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, memory_limit="300MB",
                          dashboard_address=":0", silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
            sys.path.insert(0, str(Path(__file__).parent))  # the worker imports load_files from here too
            import dask_oom

            try:
                with watch(client) as w:
                    client.submit(dask_oom.load_files, 60, pure=False).result()
            except KilledWorker as exc:
                print(f"KilledWorker: {exc}\n")
            print(w.report.explain())


if __name__ == "__main__":
    main()
