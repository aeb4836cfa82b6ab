"""What the exit explanation of ``leakhunt run`` costs (issue 20 item 4), and how much of it is
the backward search.

For each script (benchmarks/scripts/*.py and docs/run/pipeline.py) this runs ``leakhunt run
--explain`` untraced and with ``--trace=native`` in a fresh interpreter, and prints from inside
that process: the CPU seconds of the judgement at the script's end (the explanation of what it
kept: the heap walks, the chunks, placing them and the backward search), the chunks the
survivors were split into, how many of them the forward walks of ``leakhunt/import_state.py``
placed, how many the backward search (``leakhunt.retention.paths_to``) was asked about and its
CPU seconds, and the roots named (but the variables of this benchmark's own wrapper). ``--profile N`` adds the N costliest functions of the
judgement (cProfile, cumulative).

    python benchmarks/exit_explanation.py [--scripts pipeline,import_heavy] [--small] [--profile 25]

It times things: run it alone for figures that count; on a shared machine its CPU seconds are
development figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from native_cost import ROOT, SCRIPTS, SMALL, chosen_scripts  # noqa: E402  (the same scripts and sizes)

ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))

# Runs `leakhunt run` in this process, timing the judgement (Block.finish) and counting what the
# forward walks placed and what the backward search was asked about; prints one JSON line.
_INSIDE = """
import cProfile, io, json, pstats, sys, time
import leakhunt.attribution as attribution, leakhunt.lifecycle as lifecycle
try:
    import leakhunt.import_state as import_state
except ImportError:  # a checkout from before the forward walks: nothing is placed by them
    import_state = None
figures = {"chunks": 0, "placed": 0, "searched": 0, "search_cpu": 0.0, "cpu": 0.0}
profile_lines = int(sys.argv[1])
finish, root_chunks, paths_to = lifecycle.Block.finish, attribution._root_chunks, attribution.paths_to
mark = import_state.mark if import_state is not None else None

def timed_finish(self, *args, **kwargs):
    profiler = cProfile.Profile() if profile_lines else None
    start = time.process_time()
    if profiler:
        profiler.enable()
    try:
        return finish(self, *args, **kwargs)
    finally:
        if profiler:
            profiler.disable()
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(profile_lines)
            figures["profile"] = text.getvalue()
        figures["cpu"] = time.process_time() - start

def counted_mark(*args, **kwargs):
    placed = mark(*args, **kwargs)
    figures["placed"] += placed
    return placed

def counted_root_chunks(chunks, *args, **kwargs):
    figures["chunks"] += len(chunks)
    return root_chunks(chunks, *args, **kwargs)

def counted_paths_to(targets, **kwargs):
    start = time.process_time()
    try:
        return paths_to(targets, **kwargs)
    finally:
        figures["searched"] += len(targets)
        figures["search_cpu"] += time.process_time() - start

lifecycle.Block.finish = timed_finish
if import_state is not None:
    import_state.mark = counted_mark
attribution._root_chunks = counted_root_chunks
attribution.paths_to = counted_paths_to
from leakhunt.cli import main
sys.argv = ["leakhunt", *sys.argv[2:]]
try:
    main()
finally:
    sys.stdout.write("\\nEXIT-FIGURES " + json.dumps(figures) + "\\n")
"""


def run(script: Path, args: list[str], native: bool, out: Path, profile: int) -> dict:
    record = out / f"{script.stem}-{'native' if native else 'untraced'}.json"
    command = ["run", "--no-status", "--explain", "--json", str(record), *(["--trace=native"] if native else [])]
    proc = subprocess.run([sys.executable, "-c", _INSIDE, str(profile), *command, str(script), *args], cwd=out,
                          env=ENV, capture_output=True, text=True, timeout=1800)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("EXIT-FIGURES ")), None)
    if line is None:
        raise SystemExit(f"{script.name}: no figures ({proc.returncode}):\n{proc.stderr[-2000:]}")
    figures = json.loads(line.split(" ", 1)[1])
    explanation = json.loads(record.read_text()).get("explanation") or {}
    # (this benchmark's own wrapper of the judgement is a frame like any other: its variables
    # are left out of the roots shown here)
    figures["roots"] = [r["root"] for r in explanation.get("roots") or [] if " at <string>:" not in r["root"]]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scripts", default=",".join(SCRIPTS))
    parser.add_argument("--small", action="store_true", help="the scripts' smaller sizes (a quick look)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the N costliest functions of the judgement (cProfile)")
    args = parser.parse_args()
    names = chosen_scripts(parser, args.scripts)
    if args.profile < 0:
        parser.error(f"--profile must be 0 or more (got {args.profile})")
    print("| script | run | judgement at exit (CPU) | chunks | placed by the forward walks | searched backwards "
          "| backward search (CPU) | roots named |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for native in (False, True):
                f = run(SCRIPTS[name], SMALL.get(name, []) if args.small else [], native, Path(tmp), args.profile)
                print(f"| {name} | {'native' if native else 'untraced'} | {f['cpu']:.2f} s | {f['chunks']:,} "
                      f"| {f['placed']:,} | {f['searched']:,} | {f['search_cpu']:.2f} s | {', '.join(f['roots'])} |",
                      flush=True)
                if args.profile:
                    print(f"\n```text\n{f['profile'].strip()}\n```\n", flush=True)


if __name__ == "__main__":
    main()
