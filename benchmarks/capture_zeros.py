"""What the zeros at the end of an uncompressed memray capture cost its reader (issue 20).

memray's writer grows its capture file ahead of what it writes, by a tenth of its size at a
time, and leaves the rest zero-filled. On an uncompressed capture (leakhunt's: it skips the
compression at exit, as ``memray run --no-compress`` does) memray's reader finds where the
records end by stepping back over those zeros one byte at a time. ``leakhunt.native.trim_capture``
cuts them when the recording stops.

For each script this records it with ``memray run --native --no-compress`` (the capture as
memray's writer leaves it), then prints the capture's size, its zero bytes at the end, and the
CPU seconds of memray's ``FileReader()`` (its first pass, which finds the high-water mark) on
that capture and on the same capture trimmed, each read in a fresh process (medians of
``--rounds`` recordings). It also checks the trimmed capture reads the same records and peak.

    python benchmarks/capture_zeros.py [--rounds 3] [--scripts concat_loop,polars_arrow_join]

Run it alone: it times things.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from native_cost import ROOT, SCRIPTS, chosen_scripts  # noqa: E402 - the same scripts

sys.path.insert(0, str(ROOT))
from leakhunt.native import capture_end, trim_capture  # noqa: E402

#: memray's first pass over a capture, in CPU seconds, and what it read (a fresh process).
_READ = """
import json, sys, time
import memray
t0 = time.process_time()
reader = memray.FileReader(sys.argv[1], max_memory_records=10**9)
seconds = time.process_time() - t0
digest = hash(tuple((r.allocator, r.size, r.address, r.stack_id) for r in reader.get_allocation_records()))
print(json.dumps({"seconds": seconds, "peak": reader.metadata.peak_memory, "records": digest}))
"""


def read(capture: Path) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", _READ, str(capture)], capture_output=True, text=True,
                          env={"PYTHONHASHSEED": "0", "PATH": ""})
    if proc.returncode != 0:
        raise SystemExit(f"reading {capture} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def one(script: Path, out: Path) -> dict[str, float]:
    capture = out / "capture.bin"
    proc = subprocess.run([sys.executable, "-m", "memray", "run", "--native", "--no-compress", "-q", "-f", "-o",
                           str(capture), str(script)], cwd=script.parent, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"memray run {script.name} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    size = capture.stat().st_size
    zeros = size - capture_end(str(capture))
    as_left = read(capture)
    trimmed = out / "trimmed.bin"
    shutil.copy(capture, trimmed)
    trim_capture(str(trimmed))
    cut = read(trimmed)
    if (cut["peak"], cut["records"]) != (as_left["peak"], as_left["records"]):
        raise SystemExit(f"{script.name}: the trimmed capture does not read the same")
    return {"size": size, "zeros": zeros, "as_left": as_left["seconds"], "trimmed": cut["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scripts", default=",".join(SCRIPTS))
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds: expected a whole number of at least 1, got {args.rounds}")
    names = chosen_scripts(parser, args.scripts)
    rows = []
    with tempfile.TemporaryDirectory(prefix="leakhunt-zeros-") as tmp:
        for name in names:
            runs = [one(SCRIPTS[name], Path(tmp)) for _ in range(args.rounds)]
            rows.append((name, *(statistics.median(r[k] for r in runs) for k in ("size", "zeros", "as_left", "trimmed"))))
            print(f"{name}: done", file=sys.stderr)
    print(f"Measured by `python benchmarks/capture_zeros.py --rounds {args.rounds}`: medians of {args.rounds} "
          "recordings by `memray run --native --no-compress`, memray's FileReader() in CPU seconds, each read "
          "in a fresh process.\n")
    print("| script | capture | zeros at its end | FileReader(), as memray leaves it | FileReader(), trimmed |")
    print("|---|---:|---:|---:|---:|")
    for name, size, zeros, as_left, trimmed in rows:
        print(f"| {name} | {size / 2**20:.1f} MiB | {zeros / 2**10:.0f} KiB | {as_left:.3f} s | {trimmed:.3f} s |")


if __name__ == "__main__":
    main()
