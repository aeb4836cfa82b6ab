"""What `--leak-trace=native` costs per budgeted test, and what explaining a broken peak costs.

A generated file of ``--tests`` tests, each with a peak budget it keeps (a little numpy work),
run by pytest alternately with the budgets alone and with ``--leak-trace=native`` (memray
records every budgeted test's call; the capture is read only for a test that breaks its peak
budget). Then one test that breaks its peak budget, explained by each path: the default (a
traced second call, tracemalloc) and the native one (memray's sites at the first call's own peak).
The cheap path (``--leak-report`` without budgets) never loads the backend
(tests/test_native.py::test_the_cheap_path_never_loads_the_native_backend).

    python benchmarks/native_plugin.py [--tests 200] [--rounds 5]

Wall time of the whole pytest process; medians. Run it alone on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

KEPT = """
import numpy as np
import pytest

@pytest.mark.parametrize("i", range({tests}))
@pytest.mark.memory_budget(peak="500 MB")
def test_small(i):
    assert np.ones(100_000 + i).sum() > 0
"""

BROKEN = """
import numpy as np
import pytest

@pytest.mark.memory_budget(peak="50 MB")
def test_spike():
    block = np.ones(150 * 1024 * 1024 // 8)
    assert block[0] == 1.0
"""


def pytest_run(folder: Path, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *args],
                          cwd=folder, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"pytest {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return wall


def alternate(folder: Path, variants: dict[str, list[str]], rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_no in range(rounds):
        for name in (names if round_no % 2 == 0 else names[::-1]):
            times[name].append(pytest_run(folder, *variants[name]))
            print(f"round {round_no + 1}/{rounds} {name:28} {times[name][-1]:6.2f} s", file=sys.stderr)
    return times


def tracker_cost(times: int = 20) -> float:
    """Median seconds to start and stop a memray Tracker (with native traces) in this process."""
    import memray

    values = []
    with tempfile.TemporaryDirectory(prefix="leakhunt-tracker-") as tmp:
        for i in range(times):
            t0 = time.perf_counter()
            with memray.Tracker(os.path.join(tmp, f"{i}.bin"), native_traces=True):
                pass
            values.append(time.perf_counter() - t0)
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leakhunt-native-plugin-") as tmp:
        folder = Path(tmp)
        (folder / "kept").mkdir()
        (folder / "kept" / "test_kept.py").write_text(textwrap.dedent(KEPT.format(tests=args.tests)))
        (folder / "broken").mkdir()
        (folder / "broken" / "test_broken.py").write_text(textwrap.dedent(BROKEN))
        kept = alternate(folder / "kept", {"budgets": [], "budgets + --leak-trace=native": ["--leak-trace=native"]},
                         args.rounds)
        broken = alternate(folder / "broken", {"explained by a traced second call": [],
                                               "explained by memray (--leak-trace=native)": ["--leak-trace=native"]},
                           args.rounds)
    base, native = statistics.median(kept["budgets"]), statistics.median(kept["budgets + --leak-trace=native"])
    print(f"Measured by `python benchmarks/native_plugin.py --tests {args.tests} --rounds {args.rounds}`; "
          f"medians of {args.rounds} alternating rounds, wall time of the pytest process.\n")
    print("| run | wall | per budgeted test |")
    print("|---|---:|---:|")
    print(f"| {args.tests} tests keeping a peak budget | {base:.2f} s | |")
    print(f"| the same with `--leak-trace=native` | {native:.2f} s | +{1000 * (native - base) / args.tests:.1f} ms |")
    for name, values in broken.items():
        print(f"| one test breaking its peak budget, {name} | {statistics.median(values):.2f} s | |")
    print(f"\nmemray's own part: starting and stopping a Tracker (native traces) in one process, median of 20: "
          f"{1000 * tracker_cost():.1f} ms")


if __name__ == "__main__":
    main()
