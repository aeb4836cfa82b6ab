"""Settling a worker's task threads: what Arrow's pool keeps is kept per thread.

pyarrow's default pool (mimalloc in the wheels) keeps the memory a thread freed in that thread's
heap, and ``release_unused()`` hands back only the calling thread's. leakhunt settles on the
worker's event loop, so memory freed by Arrow work in Dask's task threads stayed resident and
read as growth. Measured on issue 23's P2P shuffle (4 threads per worker, ``tests/dask_pipelines.py``
``shuffled``): after the shuffle and with the leak dropped, a settled worker still held 115-130 MiB
more than before it, neither glibc's (``mallinfo2``), nor Arrow's live bytes, nor Python's;
with ``ARROW_DEFAULT_MEMORY_POOL=system`` it held none, and ``release_unused()`` run on each of
the four task threads gave back 75-85 MiB of it. That memory is freed, not alive: a second
shuffle on the same workers grew by the leak alone.

:func:`release_on_threads` runs ``release_unused()`` once on every thread of the worker's
thread pools, while they are idle (the callers settle between tasks, with none running). It
never imports pyarrow and never waits long: a thread busy with something else breaks the
rendezvous after ``timeout`` and nothing is released there.
"""

from __future__ import annotations

import concurrent.futures
import sys
import threading
from typing import Any

from leakhunt.settle import release_arrow_pool

__all__ = ["RENDEZVOUS_SECONDS", "release_on_threads"]

#: How long a thread waits for the pool's other threads; also the most a call waits in all.
RENDEZVOUS_SECONDS = 0.5


def _pools(worker: Any) -> list[tuple[concurrent.futures.ThreadPoolExecutor, int]]:
    """The worker's thread pools that run tasks, with their sizes."""
    executors = getattr(worker, "executors", None) or {}
    out = []
    for executor in executors.values():
        size = int(getattr(executor, "_max_workers", 0) or 0)
        if isinstance(executor, concurrent.futures.ThreadPoolExecutor) and size > 0:
            out.append((executor, size))
    return out


def release_on_threads(worker: Any, timeout: float = RENDEZVOUS_SECONDS) -> int:
    """Release Arrow's unused pool memory on every thread of ``worker``'s thread pools.

    Each pool of ``n`` threads gets ``n`` jobs that meet at a barrier, so that each runs on a
    thread of its own. Returns how many threads released (0 when pyarrow is not imported).
    """
    if "pyarrow" not in sys.modules:
        return 0
    return sum(_release_pool(executor, size, timeout) for executor, size in _pools(worker))


def _release_pool(executor: concurrent.futures.ThreadPoolExecutor, size: int, timeout: float) -> int:
    barrier = threading.Barrier(size, timeout=timeout)

    def job() -> bool:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:  # a thread busy elsewhere: release nowhere
            return False
        return release_arrow_pool()

    try:
        futures = [executor.submit(job) for _ in range(size)]
    except RuntimeError:  # the pool is shutting down
        return 0
    done, _ = concurrent.futures.wait(futures, timeout=2 * timeout)
    barrier.abort()  # jobs still queued return at once when a thread takes them
    return sum(1 for f in done if not f.exception() and f.result())
