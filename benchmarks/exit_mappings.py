"""Where a script's anonymous memory is at its end, by kind of mapping (docs/accounting.md).

Runs a script's ``main()`` in this process (its module code first: the imports), settles
(gc, ``malloc_trim``, Arrow's ``release_unused``, polars' decay time) after the imports and after
``main()``, and prints, from ``/proc/self/smaps``, the resident anonymous memory of each kind of
mapping: malloc's main arena (``[heap]``), the heaps of the threads' malloc arenas, the threads'
stacks (the mapping each thread's stack pointer is in, read from ``/proc/self/task/*/syscall``),
the mapping Arrow's pool allocates from, libraries' own pages (copied on write), and the rest;
then what :mod:`leakhunt.allocators` reads (free memory the allocators keep).

    python benchmarks/exit_mappings.py benchmarks/scripts/pandas_arrow_parquet.py [script args]

Run it with ``ARROW_DEFAULT_MEMORY_POOL=system`` and
``_RJEM_MALLOC_CONF=retain:false,dirty_decay_ms:0,muzzy_decay_ms:0`` for the allocators that
``--trace=native`` sets.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from leakhunt import allocators  # noqa: E402
from leakhunt.settle import settle, wait_for_decay  # noqa: E402
from leakhunt.probes import rss_anon  # noqa: E402
from leakhunt.units import format_size  # noqa: E402


def _stack_pointers() -> list[int]:
    found = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/syscall") as f:
                fields = f.read().split()
        except OSError:
            continue
        if len(fields) >= 8:  # "number args... sp pc"; a running thread reads "running"
            found.append(int(fields[-2], 16))
    return found


def by_kind() -> dict[str, int]:
    mappings = allocators._smaps() or []
    heaps = {m.start for m in allocators._thread_heaps(mappings)}
    pool = allocators._arrow_pool()
    sps = _stack_pointers()
    anon = _anonymous()
    kinds: dict[str, int] = {}
    for m in mappings:
        size = anon.get(m.start, 0)
        if not size:
            continue
        if m.name == "[heap]":
            kind = "malloc's main arena ([heap])"
        elif m.start in heaps:
            kind = "malloc's threads' arenas"
        elif m.name.startswith("/"):
            kind = "libraries' pages copied on write"
        elif any(m.start <= sp < m.end for sp in sps) or m.name == "[stack]":
            kind = "thread stacks"
        elif pool is not None and m.start <= pool[0] < m.end:
            kind = "Arrow's pool (its mapping)"
        else:
            kind = "other anonymous mappings"
        kinds[kind] = kinds.get(kind, 0) + size
    return kinds


def _anonymous() -> dict[int, int]:
    """{mapping start: its Anonymous bytes} (smaps)."""
    out: dict[int, int] = {}
    start = None
    with open("/proc/self/smaps", "rb") as f:
        for line in f:
            if line.startswith(b"Anonymous:") and start is not None:
                out[start] = int(line.split()[1]) * 1024
            elif line[0] in b"0123456789abcdef" and b"-" in line[:20]:
                start = int(line.split(b"-")[0], 16)
    return out


def report(label: str) -> None:
    settle()
    wait_for_decay()
    settle()
    kinds = by_kind()
    free = allocators.native_free()
    print(f"{label}: anonymous {format_size(rss_anon() or 0)}; threads {len(os.listdir('/proc/self/task'))}")
    for kind, size in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:36s} {format_size(size)}")
    if free is not None:
        print(f"  leakhunt.allocators: malloc free {format_size(free.malloc or 0)}, "
              f"Arrow's pool free {format_size(free.arrow_pool)}")


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: python benchmarks/exit_mappings.py SCRIPT [ARGS...]")
    script = Path(sys.argv[1])
    sys.argv = [str(script), *sys.argv[2:]]
    namespace = {"__name__": "exit_mappings_target", "__file__": str(script)}
    report("at the start")
    exec(compile(script.read_text(), str(script), "exec"), namespace)  # noqa: S102  (the script's imports)
    report("after its imports")
    namespace["main"]()
    report("after main()")


if __name__ == "__main__":
    main()
