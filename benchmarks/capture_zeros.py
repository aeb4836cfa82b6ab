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
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memray_reader_mmaps import read, record  # noqa: E402 - memray's capture as memray leaves it, its reader timed
from native_cost import ROOT, SCRIPTS, chosen_scripts, rounds  # noqa: E402 - the same scripts

sys.path.insert(0, str(ROOT))
from leakhunt.native import capture_end, trim_capture  # noqa: E402


def contents(capture: Path) -> tuple[int, int]:
    """memray's peak and a digest of every record of a capture, read here (not timed)."""
    import memray

    reader = memray.FileReader(str(capture), max_memory_records=10**9)
    return reader.metadata.peak_memory, hash(tuple((r.allocator, r.size, r.address, r.stack_id)
                                                   for r in reader.get_allocation_records()))


def one(script: Path, out: Path) -> dict[str, float]:
    capture, trimmed = out / "capture.bin", out / "trimmed.bin"
    record(script, capture, switched=False)
    size = capture.stat().st_size
    zeros = size - capture_end(str(capture))
    shutil.copy(capture, trimmed)
    trim_capture(str(trimmed))
    if contents(trimmed) != contents(capture):
        raise SystemExit(f"{script.name}: the trimmed capture does not read the same")
    return {"size": size, "zeros": zeros, "as_left": read(capture)["ctor"], "trimmed": read(trimmed)["ctor"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=rounds, default=3)
    parser.add_argument("--scripts", default=",".join(SCRIPTS))
    args = parser.parse_args()
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
