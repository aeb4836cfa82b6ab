"""Why memray's own reader is slow on the captures of polars scripts under ``--trace=native``.

``leakhunt run --trace=native`` switches polars' jemalloc to hand freed memory back at once
(``leakhunt.native.AllocatorSwitch``: ``_RJEM_MALLOC_CONF=retain:false,dirty_decay_ms:0,
muzzy_decay_ms:0``) and Arrow's pool to the system allocator, so memray sees polars' and Arrow's
buffers at their lines. jemalloc then maps and unmaps each extent, small slabs included: the
capture holds thousands of ``mmap``/``munmap`` records, many of them live at once. memray's
``FileReader()`` finds the high-water mark in a first pass over the capture before anything can
be read, and that pass is what grows.

For each script this records it with ``memray run --native --no-compress`` as memray does, and
again with the switch's settings in the environment, then prints for each capture: the records,
the ``mmap`` and ``munmap`` records, the most mappings alive at once, and the CPU seconds of
``FileReader()`` (memray's high-water-mark pass) and of one pass over
``get_allocation_records()`` (medians of ``--rounds`` reads, each in a fresh process).

    python benchmarks/memray_reader_mmaps.py [--rounds 3] [--scripts polars_arrow_join,pipeline]

Run it alone: it times things.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from native_cost import SCRIPTS, chosen_scripts, rounds  # noqa: E402 - the same scripts

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from leakhunt.native import AllocatorSwitch  # noqa: E402 - the settings leakhunt records with

SWITCH = {AllocatorSwitch.ARROW: "system", AllocatorSwitch.JEMALLOC: AllocatorSwitch.JEMALLOC_CONF}
MMAP, MUNMAP = 14, 15  # memray.AllocatorType

_READ = textwrap.dedent("""
    import json, sys, time
    import memray

    t0 = time.process_time()
    reader = memray.FileReader(sys.argv[1], max_memory_records=10**9)
    ctor = time.process_time() - t0
    t0 = time.process_time()
    records = mmaps = munmaps = 0
    live, most = {}, 0
    for r in reader.get_allocation_records():
        records += 1
        if r.allocator == %d:
            mmaps += 1
            live[r.address] = r.size
            most = max(most, len(live))
        elif r.allocator == %d:
            munmaps += 1
            live.pop(r.address, None)
    records_seconds = time.process_time() - t0
    print(json.dumps({"records": records, "mmaps": mmaps, "munmaps": munmaps, "most_live": most,
                      "ctor": ctor, "pass": records_seconds}))
""" % (MMAP, MUNMAP))


def record(script: Path, capture: Path, switched: bool) -> None:
    env = dict(os.environ, **SWITCH) if switched else {k: v for k, v in os.environ.items() if k not in SWITCH}
    subprocess.run([sys.executable, "-m", "memray", "run", "--native", "--no-compress", "-q", "-f", "-o",
                    str(capture), str(script)], env=env, stdout=subprocess.DEVNULL, check=True, timeout=1800)


def read(capture: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _READ, str(capture)], capture_output=True, text=True, check=True,
                         timeout=1800)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=rounds, default=3)
    parser.add_argument("--scripts", default="polars_arrow_join,pandas_arrow_parquet,pipeline")
    args = parser.parse_args()
    names = chosen_scripts(parser, args.scripts)
    print(f"memray's reader on `memray run --native` captures, with and without leakhunt's allocator switch "
          f"({', '.join(f'{k}={v}' for k, v in SWITCH.items())}); CPU seconds, medians of {args.rounds} reads.\n")
    print("| script | allocators | records | mmap | munmap | most mappings alive | FileReader() | records pass |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="leakhunt-mmaps-") as tmp:
        for name in names:
            for switched in (False, True):
                capture = Path(tmp) / f"{name}-{switched}.bin"
                record(SCRIPTS[name], capture, switched)
                reads = [read(capture) for _ in range(args.rounds)]
                first = reads[0]
                print(f"| {name} | {'switched' if switched else 'as they are'} | {first['records']:,} "
                      f"| {first['mmaps']:,} | {first['munmaps']:,} | {first['most_live']:,} "
                      f"| {statistics.median(r['ctor'] for r in reads):.2f} s "
                      f"| {statistics.median(r['pass'] for r in reads):.2f} s |", flush=True)
                capture.unlink()


if __name__ == "__main__":
    main()
