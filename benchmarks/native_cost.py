"""What tracing costs, side by side, and how much of the peak the sites explain (issue 20).

For each script (benchmarks/scripts/*.py and docs/run/pipeline.py) this runs, alternately and
several rounds:

* plain ``python script.py``;
* ``memray run --native`` (memray's own run, its defaults: the capture compressed at exit);
* ``leakhunt run --trace=native`` (memray recording, then leakhunt reading the capture);
* ``leakhunt run --trace=tracemalloc`` (``--skip-tracemalloc NAME`` leaves a script out:
  tracemalloc makes an object-heavy script tens of times slower).

Each run's wall time is that of the whole process (interpreter start-up included, as a user
waits for it); CPU is the process's user + system time (children included; for the native
backend also the CPU time of the capture's reader, which is nobody's child: its reading, and
what it spent while the script ran, its start and its looks at the capture so far). Printed: medians,
the ratios the targets are about (native <= 1.3x memray's own run; <= 5x plain on an
import-heavy script), the native backend's coverage (the sites' share of the resident anonymous
memory above the start at the peak; goal >= 90 %), how long reading the capture took, the
judgement at the end (what keeps memory alive then: ``judgement_seconds``, run alongside the
reading) and all leakhunt did after the script returned (``after_seconds``), and the
tracemalloc path's snapshot cost as a share of its run (the docs promise under a tenth).

    python benchmarks/native_cost.py [--rounds 5] [--scripts pipeline,concat_loop] [--small] [--no-explain]

``--small`` passes each script a smaller size (a quick development run; not for the tables).
The machine must be quiet: two benchmarks at once on two cores measure nothing.

leakhunt's own modules are compiled to bytecode before the first run (:func:`compile_leakhunt`),
as ``pip install`` compiles them and as memray's are in site-packages: in a checkout with
``PYTHONDONTWRITEBYTECODE=1`` every ``leakhunt run`` would otherwise compile leakhunt's sources
again (about 0.1 s of CPU per run here), a cost no installed copy pays.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from leakhunt.units import whole_number

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {path.stem: path for path in sorted((ROOT / "benchmarks" / "scripts").glob("*.py"))}
SCRIPTS["pipeline"] = ROOT / "docs" / "run" / "pipeline.py"
#: Arguments for --small (the scripts' own defaults otherwise).
SMALL = {"pandas_arrow_parquet": ["400000"], "polars_arrow_join": ["600000"], "concat_loop": ["12"],
         "object_heavy": ["100000"]}
MODES = ("plain", "memray", "native", "tracemalloc")


#: Options given to every ``leakhunt run`` (``--no-explain``: without the judgement at the end).
LEAKHUNT_OPTIONS: list[str] = []


def command(mode: str, script: Path, args: list[str], out: Path) -> list[str]:
    python = sys.executable
    if mode == "plain":
        return [python, str(script), *args]
    if mode == "memray":
        return [python, "-m", "memray", "run", "--native", "-q", "-f", "-o", str(out / "memray.bin"), str(script),
                *args]
    return [python, "-m", "leakhunt.cli", "run", f"--trace={mode}", "--no-status", "-q", *LEAKHUNT_OPTIONS, "--json",
            str(out / f"{mode}.json"), str(script), *args]


def run_once(mode: str, script: Path, args: list[str], out: Path) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(command(mode, script, args, out), cwd=script.parent, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} {script.name} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    result = {"wall": wall, "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}
    if mode in ("native", "tracemalloc"):
        record = json.loads((out / f"{mode}.json").read_text())
        result.update(_figures(mode, record))
        # the capture's reader is nobody's child (leakhunt.native.CaptureRead): its CPU time is in
        # the record, the reading's and what it spent before (its start, its looks at the capture)
        result["cpu"] += result.get("reader_cpu", 0.0) + result.get("reader_ahead_cpu", 0.0)
    return result


def _figures(mode: str, record: dict) -> dict[str, float]:
    if mode == "native":
        native = record.get("native") or {}
        return {"coverage": native.get("coverage") or 0.0, "reading": native.get("seconds") or 0.0,
                "judgement": record.get("judgement_seconds") or 0.0, "after": record.get("after_seconds") or 0.0,
                "allocations": native.get("allocations") or 0, "reader_cpu": native.get("cpu_seconds") or 0.0,
                "reader_ahead_cpu": native.get("ahead_cpu_seconds") or 0.0}
    trace = record.get("trace") or {}
    seconds = record.get("seconds") or 0.0
    return {"snapshots": trace.get("snapshot_seconds", 0.0) / seconds if seconds else 0.0,
            "snapshot_count": trace.get("snapshots", 0)}


#: A ``--rounds`` value (argparse ``type=``), for every benchmark of the native backend: an error
#: names anything but a whole number, 1 or more
rounds = whole_number("--rounds", 1)


def chosen_scripts(parser: argparse.ArgumentParser, text: str) -> list[str]:
    """The scripts a ``--scripts`` option names (comma-separated); an unknown name is an error
    that names it and the accepted ones."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCRIPTS]
    if unknown:
        parser.error(f"--scripts: unknown script {unknown[0]!r}: expected one of {', '.join(SCRIPTS)}")
    return names


def compile_leakhunt(root: Path = ROOT) -> str:
    """Compile the modules of the leakhunt checkout at ``root`` to bytecode (into their
    ``__pycache__``), as an install does."""
    ok = compileall.compile_dir(str(root / "leakhunt"), quiet=1)
    state = "compiled" if ok else "not all compiled (see the errors above)"
    return f"leakhunt's modules {state} to bytecode before the runs, as pip install does"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def bench(names: list[str], rounds: int, small: bool, skip: set[str]) -> dict[str, dict[str, list[dict[str, float]]]]:
    results: dict[str, dict[str, list[dict[str, float]]]] = {name: {m: [] for m in MODES} for name in names}
    with tempfile.TemporaryDirectory(prefix="leakhunt-native-bench-") as tmp:
        out = Path(tmp)
        for round_no in range(rounds):
            for name in names:
                modes = [m for m in MODES if not (m == "tracemalloc" and name in skip)]
                # alternate the order each round: no mode always runs on a warm (or cold) machine
                for mode in (modes if round_no % 2 == 0 else modes[::-1]):
                    result = run_once(mode, SCRIPTS[name], SMALL.get(name, []) if small else [], out)
                    results[name][mode].append(result)
                    print(f"round {round_no + 1}/{rounds} {name:22} {mode:12} {result['wall']:7.2f} s", file=sys.stderr)
    return results


def table(results: dict[str, dict[str, list[dict[str, float]]]]) -> str:
    lines = ["| script | plain | memray run --native | leakhunt native | leakhunt tracemalloc | native / memray | "
             "native / plain | coverage (native) | reading the capture | judgement at the end | after the script | "
             "tracemalloc snapshots / run |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, modes in results.items():
        wall = {mode: median([r["wall"] for r in runs]) for mode, runs in modes.items()}
        native = modes["native"]
        tm = modes["tracemalloc"]
        cells = [name] + [f"{wall[m]:.2f} s" if modes[m] else "skipped" for m in MODES]
        cells.append(f"{wall['native'] / wall['memray']:.2f}x")
        cells.append(f"{wall['native'] / wall['plain']:.2f}x")
        cells.append(f"{median([r['coverage'] for r in native]):.0%}")
        cells.append(f"{median([r['reading'] for r in native]):.2f} s")
        cells.append(f"{median([r['judgement'] for r in native]):.2f} s")
        cells.append(f"{median([r['after'] for r in native]):.2f} s")
        cells.append(f"{median([r['snapshots'] for r in tm]):.1%}" if tm else "skipped")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_table(results: dict[str, dict[str, list[dict[str, float]]]]) -> str:
    lines = ["| script (CPU seconds) | plain | memray run --native | leakhunt native (with the capture's reading) | "
             "leakhunt tracemalloc |",
             "|---|---:|---:|---:|---:|"]
    for name, modes in results.items():
        cells = [name] + [f"{median([r['cpu'] for r in modes[m]]):.2f} s" if modes[m] else "skipped" for m in MODES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=rounds, default=5)
    parser.add_argument("--scripts", default=",".join(SCRIPTS), help=f"comma-separated, of: {', '.join(SCRIPTS)}")
    parser.add_argument("--small", action="store_true", help="smaller sizes: a development run, not for the tables")
    parser.add_argument("--skip-tracemalloc", default="object_heavy",
                        help="scripts not run under tracemalloc (comma-separated; default object_heavy)")
    parser.add_argument("--no-explain", action="store_true",
                        help="leakhunt run --no-explain: without the judgement of what keeps memory alive at the end")
    args = parser.parse_args()
    if args.no_explain:
        LEAKHUNT_OPTIONS.append("--no-explain")
    names = chosen_scripts(parser, args.scripts)
    skip = {n.strip() for n in args.skip_tracemalloc.split(",") if n.strip()}
    compiled = compile_leakhunt()
    results = bench(names, args.rounds, args.small, skip)
    import memray

    versions = {name: getattr(sys.modules.get(name), "__version__", "?") for name in ("memray",)}
    print(f"Measured by `python benchmarks/native_cost.py --rounds {args.rounds}"
          f"{' --small' if args.small else ''}{' --no-explain' if args.no_explain else ''}` on {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"memray {versions['memray'] or memray.__version__}; medians of {args.rounds} alternating rounds, "
          f"wall time of the whole process; {compiled}.\n")
    print(table(results))
    print()
    print(cpu_table(results))


if __name__ == "__main__":
    main()
