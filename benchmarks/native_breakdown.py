"""Where the time of ``leakhunt run --trace=native`` goes, against ``memray run --native`` (issue 20).

For each script, in CPU seconds (user + system, the steadier figure on a shared machine):

* the start-up of each front end on an empty script: plain ``python``, ``memray run --native``
  and ``leakhunt run --trace=native`` (interpreter, imports, the recorder's start and stop, and
  for leakhunt the read of a capture with almost nothing in it);
* the whole run of the script: plain, ``memray run --native``, ``memray run`` (Python stacks
  only: what recording without native stacks would save), ``leakhunt run --trace=native``;
* reading the capture, split: memray's own reader on the capture leakhunt kept
  (``--keep-capture``), measured in a fresh process — ``FileReader()`` (memray's pass that finds
  the high-water mark), the first pass over ``get_allocation_records()`` (which also loads every
  loaded library's symbols: libbacktrace, once per process), a second pass (the records alone),
  and one ``stack_trace()`` per distinct Python stack — and what leakhunt's read took in all
  (``native.cpu_seconds`` of the JSON: the reading thread's CPU time inside the run), with what
  the reader spent before the script returned (``native.ahead_cpu_seconds``: its start, and its
  looks at the capture so far, which load most symbols then). The rest is leakhunt's own Python
  (following the heap, charging stacks to lines, building the sites, resolving the few native
  stacks it shows) and the reader's start.

    python benchmarks/native_breakdown.py [--rounds 3] [--scripts import_heavy,pipeline]

Medians of ``--rounds`` alternated runs. Run it alone: two benchmarks at once on two cores
measure nothing. leakhunt's modules are compiled to bytecode first, as in native_cost.py.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from native_cost import SCRIPTS, chosen_scripts, compile_leakhunt, rounds  # noqa: E402 - the same scripts, the same bytecode

#: memray's reader on a kept capture, each part timed in CPU seconds (a fresh process: the
#: symbol tables memray's reader loads are cached per process).
_READER = textwrap.dedent("""
    import json, sys, time
    import memray

    def timed(work):
        t0 = time.process_time()
        out = work()
        return time.process_time() - t0, out

    def records(reader):
        stacks = {}
        n = 0
        for r in reader.get_allocation_records():
            n += 1
            if r.allocator not in (1, 5, 15) and r.stack_id and r.stack_id not in stacks:
                stacks[r.stack_id] = r
            r.size, r.address, r.tid, r.native_stack_id
        return n, stacks

    init, reader = timed(lambda: memray.FileReader(sys.argv[1], max_memory_records=10**9))
    first, (n, stacks) = timed(lambda: records(reader))
    second, _ = timed(lambda: records(reader))
    traces, _ = timed(lambda: [r.stack_trace(max_stacks=10_000) for r in stacks.values()])
    print(json.dumps({"init": init, "first": first, "second": second, "traces": traces, "records": n,
                      "stacks": len(stacks)}))
""")


def cpu(command: list[str], cwd: Path) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def commands(script: Path, out: Path) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "plain": [python, str(script)],
        "memray": [python, "-m", "memray", "run", "--native", "-q", "-f", "-o", str(out / "memray.bin"), str(script)],
        "python_stacks": [python, "-m", "memray", "run", "-q", "-f", "-o", str(out / "memray.bin"), str(script)],
        "leakhunt": [python, "-m", "leakhunt.cli", "run", "--trace=native", "--no-status", "-q", "--json",
                     str(out / "run.json"), "--keep-capture", str(out / "capture.bin"), str(script)],
    }


def one_round(script: Path, out: Path, round_no: int) -> dict[str, float]:
    runs = commands(script, out)
    order = list(runs) if round_no % 2 == 0 else list(runs)[::-1]
    result = {mode: cpu(runs[mode], script.parent) for mode in order}
    native = json.loads((out / "run.json").read_text())["native"]
    # the capture's reader is nobody's child (leakhunt.native.CaptureRead): its CPU time is in the
    # record, the reading's and what it spent while the script ran (its start, its looks at the capture)
    ahead = native.get("ahead_cpu_seconds") or 0.0
    result["leakhunt"] += native["cpu_seconds"] + ahead
    reader = json.loads(subprocess.run([sys.executable, "-c", _READER, str(out / "capture.bin")],
                                       capture_output=True, text=True, check=True).stdout)
    result.update({"read": native["cpu_seconds"], "ahead": ahead, "init": reader["init"], "symbols": reader["first"] - reader["second"],
                   "records": reader["second"], "traces": reader["traces"]})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=rounds, default=3)
    parser.add_argument("--scripts", default="import_heavy,pipeline,pandas_arrow_parquet,polars_arrow_join",
                        help=f"comma-separated, of: {', '.join(SCRIPTS)}")
    args = parser.parse_args()
    names = chosen_scripts(parser, args.scripts)
    compiled = compile_leakhunt()
    rows: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="leakhunt-native-breakdown-") as tmp:
        out = Path(tmp)
        empty = out / "empty.py"
        empty.write_text("pass\n")
        for round_no in range(args.rounds):
            for name in ["(empty script)", *names]:
                script = empty if name == "(empty script)" else SCRIPTS[name]
                rows.setdefault(name, []).append(one_round(script, out, round_no))
                print(f"round {round_no + 1}/{args.rounds} {name}", file=sys.stderr)
    print(f"Printed by `python benchmarks/native_breakdown.py --rounds {args.rounds} --scripts {','.join(names)}`: "
          f"CPU seconds, medians of {args.rounds} alternated rounds; {compiled}. `leakhunt read`: the reading "
          "thread's CPU time inside the run; the memray columns: memray's reader alone on the same capture.\n")
    print(table(rows))


def table(rows: dict[str, list[dict[str, float]]]) -> str:
    columns = [("plain", "plain"), ("memray", "memray run --native"), ("python_stacks", "memray run (no --native)"),
               ("leakhunt", "leakhunt --trace=native (with its reading)"),
               ("read", "leakhunt read"), ("ahead", "reader before the script returned"),
               ("init", "memray FileReader()"), ("symbols", "memray symbol loading"),
               ("records", "memray records"), ("traces", "memray stack traces"),
               ("own", "the rest: leakhunt's own Python, the reader's start")]
    lines = ["| script | " + " | ".join(title for _, title in columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, runs in rows.items():
        for run in runs:
            # the symbols are mostly loaded before the script returns (leakhunt.native._Warmer)
            run["own"] = run["read"] + run["ahead"] - run["init"] - run["symbols"] - run["records"] - run["traces"]
        cells = [f"{statistics.median(r[key] for r in runs):.2f} s" for key, _ in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
