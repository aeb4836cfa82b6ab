"""What a P2P shuffle leaves on a worker with several threads, and what settling gives back.

Run: python benchmarks/dask_shuffle_memory.py [--threads 4] [--partitions 120]

On a ``LocalCluster`` of 2 worker processes, issue 23's ``shuffled`` block
(``tests/dask_pipelines.py``: a leak of 2 MiB per call in front of a P2P shuffle) runs twice,
unwatched. After each, the leak is dropped and each worker is settled as leakhunt settles it
(``leakhunt.settle.settle``: a collection, pyarrow's ``release_unused()`` on the calling thread,
``malloc_trim``); the script prints the worker's anonymous resident memory against where it
started, glibc's heap and mmapped bytes (``mallinfo2``) and Arrow's live bytes; then the same
after pyarrow's ``release_unused()`` on every thread of the worker's pools (its default pool,
mimalloc, keeps what each thread freed in that thread's heap; leakhunt's settle releases only
the calling thread's).
``--arrow-pool system`` starts the workers with ``ARROW_DEFAULT_MEMORY_POOL=system``. Figures, not
timings: fine on a busy machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # dask_pipelines, for the workers too

MiB = 1024 * 1024


def release_on_threads(worker: object, timeout: float = 0.5) -> int:
    """pyarrow's ``release_unused()`` once on every thread of the worker's thread pools (idle
    here): n jobs per pool of n threads meet at a barrier, so that each runs on a thread of its
    own. Dask's ThreadPoolExecutor is a copy of the standard library's, not a subclass of it."""
    import concurrent.futures
    import threading

    import pyarrow as pa

    released = 0
    for executor in getattr(worker, "executors", {}).values():
        size = int(getattr(executor, "_max_workers", 0) or 0)
        if not hasattr(executor, "_threads") or size < 1:
            continue
        barrier = threading.Barrier(size, timeout=timeout)

        def job(barrier: threading.Barrier = barrier) -> bool:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                return False
            pa.default_memory_pool().release_unused()
            return True

        done, _ = concurrent.futures.wait([executor.submit(job) for _ in range(size)], timeout=2 * timeout)
        released += sum(1 for f in done if f.result())
    return released


def _state(dask_worker: object) -> dict[str, float]:
    """Settled as leakhunt settles (on this thread), then Arrow's pool on every task thread."""
    import ctypes

    import pyarrow as pa

    from leakhunt import probes
    from leakhunt.settle import settle

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                    "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Mallinfo2
    settle()
    info = libc.mallinfo2()
    settled = (probes.rss_anon() or 0) / MiB
    threads = release_on_threads(dask_worker)
    return {"settled": settled, "glibc_heap": info.arena / MiB, "glibc_mmap": info.hblkhd / MiB,
            "arrow_live": pa.default_memory_pool().bytes_allocated() / MiB, "threads": threads,
            "every_thread": (probes.rss_anon() or 0) / MiB}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--partitions", type=int, default=120)
    parser.add_argument("--arrow-pool", default=None, help="ARROW_DEFAULT_MEMORY_POOL for the workers")
    args = parser.parse_args()
    if args.arrow_pool:
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = args.arrow_pool
    import dask
    import dask_pipelines as P
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=args.threads, processes=True, dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        dask.compute(*P.mixed(4), scheduler=client)
        client.run(P.reset)
        start = client.run(_state)
        print(f"{args.threads} threads per worker, Arrow pool {args.arrow_pool or 'default'}; MiB of anonymous "
              "memory above the start, the leak dropped")
        print("| shuffle | worker | settled (this thread) | glibc heap | glibc mmap | Arrow live | "
              "settled (every task thread) | threads |")
        print("|---|---|---|---|---|---|---|---|")
        for run in (1, 2):
            dask.compute(*P.shuffled(args.partitions), scheduler=client)
            client.run(P.reset)
            for address, s in client.run(_state).items():
                base = start[address]["every_thread"]
                print(f"| {run} | {address} | {s['settled'] - base:+.0f} | {s['glibc_heap']:.0f} | "
                      f"{s['glibc_mmap']:.0f} | {s['arrow_live']:.0f} | {s['every_thread'] - base:+.0f} | "
                      f"{s['threads']} |", flush=True)


if __name__ == "__main__":
    main()
