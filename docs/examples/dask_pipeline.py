"""leakhunt on a Dask cluster: a pipeline with one leaking step, watched task by task.

Run: python docs/examples/dask_pipeline.py   (prints the report docs/dask.md shows)

Two local worker processes, one thread each; the steps are in dask_steps.py.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from distributed import Client, LocalCluster

sys.path.insert(0, str(Path(__file__).parent))  # the workers find dask_steps here too

import dask_steps  # noqa: E402

from leakhunt.dask import watch  # noqa: E402


def main() -> None:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        with watch(client) as w:
            parsed = client.map(dask_steps.parse, range(80), pure=False)
            enriched = client.map(dask_steps.enrich, parsed, pure=False)
            results = client.gather(client.map(dask_steps.summarise, enriched, pure=False))
        print(f"{len(results)} summaries gathered\n")
        print(w.report.explain())
        task = w.report.to_dict()["tasks"][0]
        print("\nw.report.to_dict()['tasks'][0] ->",
              {k: task[k] for k in ("prefix", "calls", "retained_per_call", "peak", "verdict")})


if __name__ == "__main__":
    main()
