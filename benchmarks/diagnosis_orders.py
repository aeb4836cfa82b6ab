"""Run tests/scenarios/keepers.py in several orders and print each test's verdict, retained
figure and root per order: the figures a budget checks must not move with test order.

    python benchmarks/diagnosis_orders.py [--seeds 1 2 3 4 5]

Each order is a fresh ``pytest -p randomly --randomly-seed=N`` run (pytest-randomly) with the
test report written to JSON; the table is read back from those reports.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCENARIO = Path(__file__).resolve().parent.parent / "tests" / "scenarios" / "keepers.py"
MiB = 1 << 20


def run_order(workdir: Path, seed: int) -> dict[str, dict]:
    report = workdir / f"report-{seed}.json"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "randomly", f"--randomly-seed={seed}",
           "-p", "no:cacheprovider", "-p", "no:xdist", "test_keepers.py", f"--leak-report-file={report}"]
    subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900)
    data = json.loads(report.read_text())
    return {t["nodeid"].split("::")[-1]: t for t in data["tests"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        shutil.copy(SCENARIO, workdir / "test_keepers.py")
        runs = {seed: run_order(workdir, seed) for seed in args.seeds}
    names = sorted(next(iter(runs.values())))
    head = "| test | verdict | " + " | ".join(f"seed {s}" for s in args.seeds) + " | spread | root named |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name in names:
        rows = [runs[s][name] for s in args.seeds]
        verdicts = sorted({r["verdict"] for r in rows})
        values = [r["rss_growth"] for r in rows]
        spread = None
        if None not in values:
            width = max(values) - min(values)
            spread = f"{width / MiB:.1f} MiB ({width / max(abs(max(values)), 1) * 100:.0f} %)"
        roots = sorted({root["root"] for r in rows for root in ((r.get("explanation") or {}).get("roots") or [])})
        figures = " | ".join(f"{v / MiB:.1f} MiB" for v in values)
        print(f"| {name} | {'/'.join(verdicts)} | {figures} | "
              f"{spread or 'n/a'} | {', '.join(roots) or '-'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
