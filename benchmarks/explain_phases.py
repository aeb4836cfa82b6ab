"""Where the CPU time of ``pytest --leak-hunt`` on a test keeping many small objects goes (issue
19, item 9): the companion of ``benchmarks/explain_speed.py``, which times the whole process.

    python benchmarks/explain_phases.py                 # 20,000 small dicts per call, one run
    python benchmarks/explain_phases.py --objects 2000
    python benchmarks/explain_phases.py --plain-calls --frames 3   # the experiments below

One fresh pytest process runs ``explain_speed.py``'s test file under ``--leak-hunt`` with a
conftest that times leakhunt's phases in CPU seconds (``time.process_time``: a figure that load
from other processes inflates less than wall time): the calls of the hunt's windows, the
survivors' search and its steps (the heap walk under the block's trace, the snapshot and its
summary, the walk for hidden edges, the chunk walk, the roots' search and forward walks). It
also prints the process's own CPU time beside a plain run's. The timers wrap private functions,
so this script follows leakhunt's internals: a renamed step shows as missing, not as zero.
Development figures: the lead's quiet-machine figures come from ``explain_speed.py``.

Two experiments: ``--frames N`` keeps N frames per traced allocation in the hunt's confirmation
window (leakhunt keeps ``leakhunt.tracing.TRACE_FRAMES``); ``--plain-calls`` makes
``leakhunt.tracing.line_tables`` and ``line_tables_above_user`` plain calls (the frames' line
tables are then scanned for every traced allocation, as before them).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from explain_speed import ENV, TEST_FILE  # noqa: E402  (the same test file)

TIMERS = '''
import atexit, json, os, sys, time
import leakhunt.attribution as attribution
import leakhunt.heap as heap
hunt_module = sys.modules["leakhunt.hunt"]  # leakhunt.hunt is also the function
SPENT = {}


def timed(owner, name, label):
    fn = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            key = label(args, kwargs) if callable(label) else label
            SPENT[key] = SPENT.get(key, 0.0) + time.process_time() - start

    setattr(owner, name, wrapper)


def window(args, kwargs):
    traced = len(args) > 5 and args[5] is not None
    return "hunt: the confirmation window (traced calls)" if traced else "hunt: the first window (untraced calls)"


def walk(args, kwargs):
    return ("survivors: heap walk for data holders, under the trace" if kwargs.get("edges") is False
            else "survivors: heap walk for hidden edges")


timed(hunt_module, "_window", window)
timed(hunt_module, "_survivors_of", "survivors: in all")
timed(attribution, "_summary", "survivors: summary of the snapshot")
timed(attribution, "_chunks", "survivors: chunk walk")
timed(attribution, "_root_chunks", "survivors: roots (backward search and forward walks)")
timed(attribution, "created_types", "survivors: created types")
timed(attribution.tracemalloc, "take_snapshot", "survivors: tracemalloc snapshot")
_scan_init = heap.HeapScan.__init__


def scan_init(self, *args, **kwargs):
    start = time.process_time()
    try:
        _scan_init(self, *args, **kwargs)
    finally:
        key = walk(args, kwargs)
        SPENT[key] = SPENT.get(key, 0.0) + time.process_time() - start


heap.HeapScan.__init__ = scan_init


if os.environ.get("LEAKHUNT_PHASES_FRAMES"):
    _frames = int(os.environ["LEAKHUNT_PHASES_FRAMES"])
    _scope_init = attribution.Scope.__init__

    def scope_init(self, *args, frames=None, **kwargs):
        _scope_init(self, *args, frames=_frames, **kwargs)

    attribution.Scope.__init__ = scope_init
if os.environ.get("LEAKHUNT_PHASES_PLAIN_CALLS"):
    import leakhunt.tracing as tracing

    tracing.line_tables = tracing.line_tables_above_user = lambda fn, *args, **kwargs: fn(*args, **kwargs)


@atexit.register
def report():
    with open(os.environ["LEAKHUNT_PHASES"], "w") as out:
        json.dump(SPENT, out)
'''


def _run(where: Path, *flags: str, phases: Path | None = None, extra: dict[str, str] | None = None) -> float:
    """CPU seconds (user + system) of one pytest process."""
    env = dict(ENV, LEAKHUNT_PHASES=str(phases), **(extra or {})) if phases is not None else ENV
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist", "-p",
                    "no:cacheprovider", "test_leaker.py", *flags], cwd=where, env=env, capture_output=True,
                   timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=20_000, help="small objects kept per call (default 20000)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per traced allocation in the confirmation window (default: leakhunt's)")
    parser.add_argument("--plain-calls", action="store_true",
                        help="leakhunt.tracing.line_tables and line_tables_above_user as plain calls")
    args = parser.parse_args(argv)
    if args.objects < 1:
        parser.error(f"--objects must be at least 1 (got {args.objects})")
    if args.frames is not None and not 1 <= args.frames <= 100:
        parser.error(f"--frames takes 1 to 100 (got {args.frames})")
    extra = {"LEAKHUNT_PHASES_FRAMES": str(args.frames)} if args.frames is not None else {}
    if args.plain_calls:
        extra["LEAKHUNT_PHASES_PLAIN_CALLS"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        (where / "test_leaker.py").write_text(textwrap.dedent(TEST_FILE.format(n=args.objects)))
        plain = _run(where)
        (where / "conftest.py").write_text(TIMERS)
        phases = where / "phases.json"
        hunted = _run(where, "--leak-hunt", phases=phases, extra=extra)
        spent = json.loads(phases.read_text()) if phases.exists() else {}
    asked = [f"{args.frames} frames" if args.frames is not None else "", "plain calls" if args.plain_calls else ""]
    print(f"pytest --leak-hunt, one test keeping {args.objects:,} objects per call (CPU seconds, one run each; "
          f"development figures){''.join(f'; {a}' for a in asked if a)}")
    print(f"  process: plain {plain:.2f} s, --leak-hunt {hunted:.2f} s ({hunted / plain:.1f}x, with the timers)")
    for label, seconds in sorted(spent.items()):
        print(f"  {label}: {seconds:.2f} s")
    print(f"python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
