"""Settling a worker's task threads: what Arrow's pool keeps is kept per thread.

pyarrow's default pool (mimalloc in the wheels) keeps the memory a thread freed in that thread's
heap, and ``release_unused()`` hands back only the calling thread's. leakhunt settles on the
worker's event loop, so memory freed by Arrow work in Dask's task threads stayed resident and
read as growth. ``python benchmarks/dask_shuffle_memory.py`` (issue 23's P2P shuffle behind a
leak, ``tests/dask_pipelines.py``, 4 threads per worker): after the shuffle, with the leak
dropped and the worker settled on one thread, it held 124-134 MiB more than before, neither
glibc's (``mallinfo2``) nor Arrow's live bytes; ``release_unused()`` on every task thread gave
back 40-80 MiB of it; with the system allocator as Arrow's pool (``--arrow-pool system``) the
worker held 13-23 MiB more. That memory is freed, not
alive: after a second shuffle the worker held no more than after the first.

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


def _pools(worker: Any) -> list[tuple[concurrent.futures.Executor, int]]:
    """The worker's thread pools, with their sizes: Dask's own ``ThreadPoolExecutor`` (a copy of
    the standard library's, not a subclass of it) and the standard library's."""
    executors = getattr(worker, "executors", None) or {}
    out = []
    for executor in executors.values():
        size = int(getattr(executor, "_max_workers", 0) or 0)
        if isinstance(executor, concurrent.futures.Executor) and hasattr(executor, "_threads") and size > 0:
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


def _release_pool(executor: concurrent.futures.Executor, size: int, timeout: float) -> int:
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
