"""How long polars' allocator keeps memory it freed (the fact behind leakhunt.settle.wait_for_decay).

polars carries its own jemalloc, which gives freed pages back on a timer (``polars.jemalloc_conf``:
its dirty and muzzy decay times). This builds a frame of three 8-byte columns (polars' own
allocations), drops it, and prints the resident memory every 50 ms for two seconds; then the same
through ``leakhunt.measure`` (settled) and a budgeted block, whose kept figure is read again
after the decay.

    python benchmarks/polars_decay.py [--rows 12000000]
"""

from __future__ import annotations

import argparse
import gc
import time

from leakhunt import format_size, probes
from leakhunt.settle import decay_seconds


def frame(rows: int):
    import polars as pl

    return pl.select(pl.int_range(0, rows).alias("x")).with_columns(y=pl.col("x") * 2, z=pl.col("x") + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=12_000_000)
    args = parser.parse_args()
    import polars as pl

    print(f"polars {pl.__version__}, jemalloc_conf {getattr(pl, 'jemalloc_conf', None)!r}: "
          f"decay {decay_seconds():.2f} s")
    start = probes.rss() or 0
    data = frame(args.rows)
    print(f"frame of {args.rows:,} rows: {format_size(data.estimated_size())}")
    del data
    gc.collect()
    t0 = time.perf_counter()
    readings = []
    while time.perf_counter() - t0 < 2.0:
        readings.append((time.perf_counter() - t0, (probes.rss() or 0) - start))
        time.sleep(0.05)
    for seconds, above in readings:
        print(f"  {seconds:5.2f} s after the drop: {format_size(above)} above the start")
    from leakhunt.lifecycle import Block, Policy
    from leakhunt.budget import Budget

    block = Block("dropped frame", Policy.of(Budget.from_kwargs(rss="50MB")))
    block.start()
    data = frame(args.rows)
    del data
    measurement = block.stop()
    block.close()
    print(f"a budgeted block that dropped its frame: kept {format_size(measurement.figure('rss'))}, "
          f"allocator retention {format_size(measurement.allocator_retention or 0)}")


if __name__ == "__main__":
    main()
