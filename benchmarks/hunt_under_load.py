"""Hunting a call that keeps nothing, with other processes keeping the CPUs busy (issue 13).

The control of issue 13: an Arrow table of 1 M integers and 1 M strings converted to pandas,
nothing kept. Each run hunts it in a fresh interpreter (``hunt(..., trace=True)``, as
``pytest --leak-hunt`` does) while ``--burners`` processes spin, and prints the verdict, how
many confirmation windows ran, and the per-call steps of each accounting in the first window:

    python benchmarks/hunt_under_load.py --runs 5 --burners 2

A line per run: ``leak`` / ``cleared`` / ``ok``, the windows, then ``rss`` and ``traced`` steps
per call (KiB). Growth in resident memory alone, in steps of about one pymalloc arena (1 MiB)
while tracemalloc moves by a few hundred bytes, is the allocator's, not a leak.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from plugin_detection import burning

RUN = """
import json
import numpy as np
import pyarrow as pa
from leakhunt.hunt import hunt

def control():
    table = pa.table({"i": np.arange(1_000_000), "s": pa.array([str(i) for i in range(1_000_000)])})
    frame = table.to_pandas()
    del frame, table

v = hunt(control, trace=True)
steps = {name: [s[i + 1] - s[i] for i in range(len(s) - 1)] for name, s in v.series.items()}
print(json.dumps({"leaking": v.leaking, "suspect": v.suspect, "windows": v.windows,
                  "accounting": v.accounting, "evidence": v.evidence, "steps": steps}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--burners", type=int, default=2, help="processes that keep a CPU busy each")
    args = parser.parse_args()
    alarms = 0
    print(f"{args.runs} runs, {args.burners} CPU burners alongside; steps per call in KiB (first window)")
    with burning(args.burners):
        for run in range(args.runs):
            out = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            verdict = "leak" if result["leaking"] else "cleared" if result["suspect"] else "ok"
            alarms += result["leaking"]
            steps = "  ".join(f"{name} " + " ".join(f"{d / 1024:+.1f}" for d in values)
                              for name, values in result["steps"].items() if name != "arrow")
            print(f"run {run + 1}: {verdict:7} confirmation windows {result['windows']}  {steps}", flush=True)
    print(f"false alarms: {alarms}/{args.runs}")
    return 0 if alarms == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
