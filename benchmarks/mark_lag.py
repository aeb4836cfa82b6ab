"""How far the kernel's high-water mark lags the exact resident size, and what each reading
costs in a loop (Linux).

    python benchmarks/mark_lag.py

For each count of pages: reset the mark (``/proc/self/clear_refs``), touch that many new pages
of an anonymous mapping, then read the resident size from ``/proc/self/statm`` and the mark from
``getrusage().ru_maxrss``. Prints how far each moved, in pages, and how far the mark stands below
the resident size. On a kernel that counts resident pages per CPU and adds them to the total in
batches, the mark moves in steps while statm moves page by page (docs/accounting.md, "Reading
the mark"): why a window's peak takes its exact end reading too.

Then the cost of each reading the probes use, in a loop of 100,000 (median of 5 rounds): a
loop keeps the caches warm, so around real tests each costs several times more
(benchmarks/plugin.md, the breakdown).

Run it from a small parent (a shell): started by a bigger process, ``ru_maxrss`` reads that
process's peak as a floor and never moves at all.
"""

from __future__ import annotations

import mmap
import os
import platform
import resource
import statistics
import sys
import time

COUNTS = (1, 5, 10, 20, 31, 32, 33, 40, 63, 64, 100, 1000)
ROUNDS = 5


def main() -> int:
    if not sys.platform.startswith("linux"):
        print("mark_lag.py: Linux only (/proc/self/statm and /proc/self/clear_refs)", file=sys.stderr)
        return 2
    page = mmap.PAGESIZE
    statm = os.open("/proc/self/statm", os.O_RDONLY)
    try:
        clear = os.open("/proc/self/clear_refs", os.O_WRONLY)
    except OSError as exc:
        print(f"mark_lag.py: cannot reset the mark ({exc}); nothing to measure", file=sys.stderr)
        return 2

    def resident() -> int:
        return int(os.pread(statm, 256, 0).split()[1])

    def mark() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 // page

    print(f"kernel {platform.release()}, {os.cpu_count()} CPUs, page {page} B; {ROUNDS} rounds per row")
    print(f"{'pages touched':>13} | {'statm moved':>11} | {'mark moved':>10} | {'mark below statm (pages)':>24}")
    for count in COUNTS:
        moved, marked, below = set(), set(), []
        for _ in range(ROUNDS):
            os.write(clear, b"5")
            before, mark_before = resident(), mark()
            block = mmap.mmap(-1, count * page)
            for offset in range(0, count * page, page):
                block[offset] = 1
            after, mark_after = resident(), mark()
            block.close()
            if mark_before <= before:  # else the floor under ru_maxrss hides the mark
                moved.add(after - before)
                marked.add(mark_after - mark_before)
                below.append(after - mark_after)
        if not below:
            print(f"{count:>13} | the mark reads a floor above the resident size: start this from a shell")
            continue
        print(f"{count:>13} | {_span(moved):>11} | {_span(marked):>10} | {min(below):>11} to {max(below)}")

    status = os.open("/proc/self/status", os.O_RDONLY)
    readings = {
        "statm (pread)": lambda: os.pread(statm, 256, 0),
        "getrusage(RUSAGE_SELF)": lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "getrusage(RUSAGE_THREAD)": lambda: resource.getrusage(resource.RUSAGE_THREAD).ru_maxrss,
        "status (pread, VmHWM)": lambda: os.pread(status, 4096, 0),
        "clear_refs write (reset)": lambda: os.write(clear, b"5"),
    }
    print(f"\nthreads in this process: {len(os.listdir('/proc/self/task'))}")
    print(f"{'reading':>26} | us per call (median of 5 rounds of 100,000)")
    for name, read in readings.items():
        rounds = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(100_000):
                read()
            rounds.append((time.perf_counter() - started) / 100_000 * 1e6)
        print(f"{name:>26} | {statistics.median(rounds):.2f}")
    return 0


def _span(values: set[int]) -> str:
    return str(min(values)) if len(values) == 1 else f"{min(values)}-{max(values)}"


if __name__ == "__main__":
    sys.exit(main())
