"""How long explaining a leak of many small objects takes (issue 19, item 9: explaining a leak of
20,000 small objects per call in at most 2 s; ``--leak-hunt`` on such a test at most 5x its
plain time).

    python benchmarks/explain_speed.py                      # 20,000 objects, 3 runs of each
    python benchmarks/explain_speed.py --objects 2000 --runs 1   # a quick look

Run it alone on a quiet machine: it times things. Each measurement is a fresh interpreter (or a
fresh pytest process); the figure printed is the median of the runs.

- ``budget``: ``@memory_budget(traced=...)`` on a function keeping N small dicts per call: the
  failing call's time (its explanation included: the survivors' search, the sites, the
  types) minus the same function's plain time. The code runs under ``python -c`` (whose
  ``__main__`` is the user's, as a script's): the first call is untraced, so a second, traced
  call shows the lines, and its survivors are searched too (two searches);
- ``hunt``: ``leakhunt.hunt`` on that function (warm-up, windows, confirmation and the
  survivors of the confirmation window);
- ``pytest``: a file of one such test, ``pytest`` plain and ``pytest --leak-hunt`` (whole
  processes, so the interpreter's start is in both), and their ratio;
- ``run``: ``leakhunt run --trace=tracemalloc`` on issue 19's ``LATEST`` script (40 ten-row
  slices of fresh 2 MB Arrow tables kept in a module list; its imports leave thousands of small
  survivors beside them) against ``python`` on it, and whether the explanation left anything
  "not searched" (item 1: nothing may be). ``--objects`` does not change it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))

LEAKER = """
LEAKED = []


def leak_objects():
    LEAKED.append([{{"row": i}} for i in range({n})])  # {n} small objects per call
"""

BUDGET = LEAKER + """
import json, time
from leakhunt import MemoryBudgetExceeded, memory_budget

leak_objects()  # warm: the same code's first call
t0 = time.perf_counter(); leak_objects(); plain = time.perf_counter() - t0
budgeted = memory_budget(traced="100 KB")(leak_objects)
t0 = time.perf_counter()
try:
    budgeted()
    failed = False
except MemoryBudgetExceeded:
    failed = True
total = time.perf_counter() - t0
print(json.dumps({{"plain": plain, "total": total, "failed": failed}}))
"""

HUNT = LEAKER + """
import json, time
from leakhunt import hunt

t0 = time.perf_counter(); verdict = hunt(leak_objects); total = time.perf_counter() - t0
print(json.dumps({{"total": total, "leaking": verdict.leaking, "roots": [r.root for r in verdict.roots]}}))
"""

TEST_FILE = LEAKER + """

def test_leaks_small_objects():
    leak_objects()
"""


LATEST = ROOT / "tests" / "scenarios" / "latest_slices.py"  # issue 19's example, one file for the test and this


def _python(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"the measurement failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(lines[-1])


def _pytest(where: Path, *flags: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist", "-p",
                    "no:cacheprovider", "test_leaker.py", *flags], cwd=where, env=ENV, capture_output=True,
                   timeout=600)
    return time.perf_counter() - t0


def _timed(where: Path, *command: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *command], cwd=where, env=ENV, capture_output=True, text=True,
                          timeout=900)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return elapsed, proc.stdout + proc.stderr


def _run_latest(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        (where / "latest.py").write_text(LATEST.read_text())
        plain = statistics.median(_timed(where, "latest.py")[0] for _ in range(runs))
        traced = [_timed(where, "-m", "leakhunt.cli", "run", "--trace=tracemalloc", "latest.py") for _ in range(runs)]
    unsearched = sum("not searched" in out for _, out in traced)
    named = sum("LATEST (global in __main__) keeps 40 buffers" in out for _, out in traced)
    print(f"run: leakhunt run --trace=tracemalloc on the LATEST script: "
          f"{statistics.median(t for t, _ in traced):.2f} s, plain python {plain:.2f} s (median of {runs}); "
          f"LATEST named in {named} of {runs}; something left not searched in {unsearched} of {runs}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=20_000, help="small objects kept per call (default 20000)")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per measurement (default 3)")
    parser.add_argument("--cases", default="budget,hunt,pytest,run",
                        help="which measurements, comma-separated (default budget,hunt,pytest,run)")
    args = parser.parse_args(argv)
    cases = set(args.cases.split(","))
    if not cases <= set(_CASES):
        parser.error(f"--cases takes some of {','.join(_CASES)} (got {args.cases!r})")
    if args.objects < 1 or args.runs < 1:
        parser.error(f"--objects and --runs must be at least 1 (got {args.objects}, {args.runs})")
    n, runs = args.objects, args.runs
    if "budget" in cases:
        _budget(n, runs)
    if "hunt" in cases:
        _hunt(n, runs)
    if "pytest" in cases:
        _plugin(n, runs)
    if "run" in cases:
        _run_latest(runs)
    print(f"python {sys.version.split()[0]}")
    return 0


_CASES = ("budget", "hunt", "pytest", "run")


def _budget(n: int, runs: int) -> None:
    budgets = [_python(textwrap.dedent(BUDGET.format(n=n))) for _ in range(runs)]
    explain = statistics.median(b["total"] - b["plain"] for b in budgets)
    print(f"budget: explaining a failed call keeping {n:,} objects: {explain:.2f} s (median of {runs}; "
          f"plain call {statistics.median(b['plain'] for b in budgets) * 1000:.1f} ms; "
          f"failed {sum(b['failed'] for b in budgets)} of {runs}); target <= 2 s")


def _hunt(n: int, runs: int) -> None:
    hunts = [_python(textwrap.dedent(HUNT.format(n=n))) for _ in range(runs)]
    print(f"hunt: hunt() of a function keeping {n:,} objects per call: {statistics.median(h['total'] for h in hunts):.2f} s "
          f"(median of {runs}; leaking {sum(h['leaking'] for h in hunts)} of {runs}; root {hunts[0]['roots'][:1]})")


def _plugin(n: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        (where / "test_leaker.py").write_text(textwrap.dedent(TEST_FILE.format(n=n)))
        plain = statistics.median(_pytest(where) for _ in range(runs))
        hunted = statistics.median(_pytest(where, "--leak-hunt") for _ in range(runs))
    print(f"pytest: one test keeping {n:,} objects per call: plain {plain:.2f} s, --leak-hunt {hunted:.2f} s: "
          f"{hunted / plain:.1f}x (median of {runs} processes each); target <= 5x")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
