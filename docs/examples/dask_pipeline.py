"""leakhunt on a Dask cluster: a pipeline with one leaking step, watched task by task.

Run: python docs/examples/dask_pipeline.py   (prints the report docs/dask.md shows)

Two local worker processes, one thread each; the steps are in dask_steps.py. After the watched
block it breaks a budget on purpose, then runs ``leakhunt dask ADDRESS --settle`` on the same
cluster, as you would on yours.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from distributed import Client, LocalCluster

sys.path.insert(0, str(Path(__file__).parent))  # the workers find dask_steps here too

import dask_steps  # noqa: E402

from leakhunt import MemoryBudgetExceeded  # noqa: E402
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
        print("\n$ # the same steps under a budget: parse may peak at 20 MB per task")
        try:
            with watch(client, budget={"parse": "peak=20MB"}):
                client.gather(client.map(dask_steps.parse, range(4), pure=False))
        except MemoryBudgetExceeded as exc:
            print("\n".join(str(exc).splitlines()[:3]))
        address = client.scheduler.address
        print(f"\n$ leakhunt dask {address} --settle")
        command = [sys.executable, "-m", "leakhunt.cli", "dask", address, "--settle"]
        print(subprocess.run(command, capture_output=True, text=True, check=True).stdout, end="")


if __name__ == "__main__":
    main()
