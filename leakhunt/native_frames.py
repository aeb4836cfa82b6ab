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


def _says_nothing(record: Any) -> bool:
    """Whether the Python frames already say which library allocated: the innermost frame is a
    library's or the interpreter's own, not the user's line calling C code directly nor a worker
    thread without a Python stack (those are what native frames are resolved for)."""
    from leakhunt import frames

    try:
        top = record.stack_trace(max_stacks=1)
    except Exception:  # noqa: BLE001
        return False
    return bool(top) and frames.kind(top[0][1]) != frames.USER


def _order(records: list[Any], limit: int) -> list[Any]:
    """Big mappings first (possible arenas), then the biggest stacks whose Python frames do not
    say which library's C code allocated, up to ``limit``; one per native stack."""
    records = sorted(records, key=lambda r: -r.size)
    big = [r for r in records if r.allocator == _MMAP and r.size >= RESERVATION_MIN]
    out: list[Any] = []
    seen: set[int] = set()

    def take(record: Any) -> None:
        if record.native_stack_id and record.native_stack_id not in seen:
            seen.add(record.native_stack_id)
            out.append(record)

    for record in big:
        take(record)
    wanted = len(out) + limit
    for record in records:
        if len(out) >= wanted:
            break
        if not (record.allocator == _MMAP and record.size == _ARENA) and not _says_nothing(record):
            take(record)
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
