"""leakhunt on a Dask cluster with several threads per worker: a dask.dataframe pipeline.

Run: python docs/examples/dask_threads.py   (prints the report docs/dask.md shows)

Two local worker processes with four threads each (Dask's default is several): the frame's
partitions are parsed (a 40 MB temporary each), enriched (``enrich`` keeps 4 MB per call: the
leak) and summed by key, and a mean is taken beside them, all computed together, so the tasks of
every prefix run side by side. Then a step that leaves freed memory in glibc's heap, to show the
advice about memory the allocator keeps. The steps are in dask_steps.py.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import dask
import dask.dataframe as dd
from distributed import Client, LocalCluster

sys.path.insert(0, str(Path(__file__).parent))  # the workers find dask_steps here too

import dask_steps  # noqa: E402

from leakhunt.dask import watch  # noqa: E402


def main() -> None:
    with LocalCluster(n_workers=2, threads_per_worker=4, processes=True, dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        frame = dd.from_map(dask_steps.parse, list(range(120)))
        enriched = frame.map_partitions(dask_steps.enrich)
        with watch(client) as w:
            totals, mean = dask.compute(enriched.groupby("key").weight.sum(), frame.value.mean())
        print(f"{len(totals)} keys summed, mean {mean:.3f}\n")
        print(w.report.explain())
        print("\n$ # a step that leaves freed memory in glibc's heap")
        with watch(client) as w:
            client.gather(client.map(dask_steps.regroup, range(4), pure=False))
        print("\n".join(w.report.explain().split("  what to do:\n", 1)[1].splitlines()[:2]))


if __name__ == "__main__":
    main()
