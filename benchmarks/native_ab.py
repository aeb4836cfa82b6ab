"""``leakhunt run --trace=native`` from two checkouts of leakhunt, side by side (issue 20).

A change to the native backend is judged against the code before it on the same machine in the
same minutes: each round runs each script once under each checkout (the order alternating from
round to round), and the table gives the median and the minimum wall time of the whole process,
the median time the capture's reading took (``native.seconds``), and what the capture's reader
spent while the script ran (``native.ahead_cpu_seconds``, its passes ``native.ahead_passes``;
0 for a checkout that does not record them). Both checkouts' modules are compiled to bytecode
first, as ``pip install`` leaves them.

    git worktree add /tmp/leakhunt-base HEAD~1
    python benchmarks/native_ab.py --base /tmp/leakhunt-base [--new .] [--rounds 8] \\
        [--scripts pipeline,import_heavy,concat_loop]

The machine must be quiet: two benchmarks at once on two cores measure nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from native_cost import SCRIPTS, chosen_scripts, compile_leakhunt, rounds


def checkout(parser: argparse.ArgumentParser, option: str, text: str) -> Path:
    """A checkout of leakhunt (a directory holding ``leakhunt/native.py``), or an error naming it."""
    path = Path(text).resolve()
    if not (path / "leakhunt" / "native.py").is_file():
        parser.error(f"{option}: {text!r} is not a checkout of leakhunt (expected a directory holding "
                     "leakhunt/native.py)")
    return path


def one_run(root: Path, script: Path, out: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(root))
    report = out / "run.json"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "leakhunt.cli", "run", "--trace=native", "--no-status", "-q",
                           "--json", str(report), str(script)], cwd=script.parent, env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{root}: {script.name} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    native = json.loads(report.read_text())["native"]
    return {"wall": wall, "reading": native.get("seconds") or 0.0,
            "ahead": native.get("ahead_cpu_seconds") or 0.0, "passes": native.get("ahead_passes") or 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the checkout before the change")
    parser.add_argument("--new", default=str(Path(__file__).resolve().parent.parent),
                        help="the checkout with the change (default: this one)")
    parser.add_argument("--rounds", type=rounds, default=8)
    parser.add_argument("--scripts", default="pipeline,import_heavy,concat_loop",
                        help=f"comma-separated, of: {', '.join(SCRIPTS)}")
    args = parser.parse_args()
    roots = {"base": checkout(parser, "--base", args.base), "new": checkout(parser, "--new", args.new)}
    names = chosen_scripts(parser, args.scripts)
    for root in roots.values():
        compile_leakhunt(root)
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="leakhunt-native-ab-") as tmp:
        for round_no in range(args.rounds):
            for name in names:
                order = ["base", "new"] if round_no % 2 == 0 else ["new", "base"]
                for which in order:
                    runs.setdefault((name, which), []).append(one_run(roots[which], SCRIPTS[name], Path(tmp)))
                print(f"round {round_no + 1}/{args.rounds} {name}", file=sys.stderr)
    print(f"Printed by `python benchmarks/native_ab.py --rounds {args.rounds} --scripts {','.join(names)}`: "
          f"base {roots['base']}, new {roots['new']}; wall time of the whole `leakhunt run --trace=native`, "
          f"{args.rounds} rounds alternated.\n")
    print("| script | checkout | wall, median | wall, min | reading, median | reader ahead (CPU), median | passes |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in names:
        for which in ("base", "new"):
            rows = runs[(name, which)]
            med = {key: statistics.median(r[key] for r in rows) for key in ("wall", "reading", "ahead", "passes")}
            print(f"| {name} | {which} | {med['wall']:.2f} s | {min(r['wall'] for r in rows):.2f} s | "
                  f"{med['reading']:.2f} s | {med['ahead']:.2f} s | {med['passes']:g} |")


if __name__ == "__main__":
    main()
