"""Resolve the native frames of the biggest allocations at a capture's peak, in a helper process.

Resolving a native frame loads the symbols of its library the first time (about 0.2 s for
numpy's, Arrow's or polars', 0.4 s for the interpreter's here), all of it under the GIL. So
:class:`leakhunt.native.NativeRecorder` starts this module as a child process the moment the
recording stops: it reads memray's high-water mark (its own pass over the capture, in memray's
C++ reader), then resolves the biggest stacks there, biggest first, printing one JSON line per
stack. The parent reads the capture meanwhile (:mod:`leakhunt.native_capture`); on two cores the
two run side by side. The parent takes what is printed by the time it needs it and ends the
child, so the frames never cost more than the time it would wait anyway (plus the budget it
grants).

Run as ``python -m leakhunt.native_frames CAPTURE LIMIT SECONDS``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

__all__ = ["FRAMES", "RESERVATION_MIN", "main", "resolve"]

#: Native frames resolved per stack: enough to name the library's function that allocated;
#: deeper frames reach the interpreter, whose symbols take the longest to load.
FRAMES = 6
#: Mappings from this size up are resolved first: they may be an allocator's arena (mimalloc
#: reserves 1 GiB), which is not memory until used.
RESERVATION_MIN = 64 << 20
_MMAP = 14
_ARENA = 1 << 20  # a pymalloc arena: Python objects, nothing to resolve


def _order(records: list[Any], limit: int) -> list[Any]:
    """Big mappings first (possible arenas), then the biggest stacks; one per native stack."""
    records = sorted(records, key=lambda r: -r.size)
    big = [r for r in records if r.allocator == _MMAP and r.size >= RESERVATION_MIN]
    taken = {id(r) for r in big}
    rest = [r for r in records if not (r.allocator == _MMAP and r.size == _ARENA) and id(r) not in taken]
    seen: set[int] = set()
    out = []
    for record in big + rest[:limit]:
        if record.native_stack_id and record.native_stack_id not in seen:
            seen.add(record.native_stack_id)
            out.append(record)
    return out


def resolve(path: str, limit: int, seconds: float, out: IO[str]) -> int:
    """Print ``{"nid", "size", "mmap", "frames"}`` per stack; return how many were resolved."""
    import memray

    t0 = time.perf_counter()
    with memray.FileReader(path) as reader:
        records = list(reader.get_high_watermark_allocation_records(merge_threads=False))
        done = 0
        for record in _order(records, limit):
            arena = record.allocator == _MMAP and record.size >= RESERVATION_MIN  # resolved whatever the time
            if time.perf_counter() - t0 > seconds and not arena:
                break
            try:
                frames = [f[0] for f in record.native_stack_trace(max_stacks=FRAMES)]
            except Exception:  # noqa: BLE001 - a stack memray cannot resolve is left out
                continue
            out.write(json.dumps({"nid": record.native_stack_id, "size": record.size,
                                  "mmap": record.allocator == _MMAP, "frames": frames}) + "\n")
            out.flush()
            done += 1
    return done


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3:
        print("usage: python -m leakhunt.native_frames CAPTURE LIMIT SECONDS", file=sys.stderr)
        return 2
    try:
        resolve(args[0], int(args[1]), float(args[2]), sys.stdout)
    except (OSError, ValueError, BrokenPipeError) as exc:
        print(f"leakhunt.native_frames: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - run by leakhunt.native as a child process
    sys.exit(main())
