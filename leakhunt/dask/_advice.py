"""What to do about what a cluster report found, in Dask's own terms.

Two findings need an action a Dask user can take today: memory the allocator kept after frees
(Dask's warning calls it "unmanaged memory ... may not be released to the OS"), and a confirmed
leak, which fills the workers until the fix lands. Each piece of advice names the worker, the
figure, and the command.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from leakhunt.units import format_size

__all__ = ["advice", "TRIM_RECIPE", "RETENTION_WORTH"]

#: Allocator retention worth an action: at least this much, and 5 % of the worker's memory.
RETENTION_WORTH = 16 << 20

TRIM_RECIPE = ("client.run(trim_memory) with def trim_memory(): import ctypes; "
               "return ctypes.CDLL(\"libc.so.6\").malloc_trim(0)")


def _retention(worker: Any) -> str | None:
    kept = worker.allocator_retention
    before = worker.rss_before_settle or worker.rss or 0
    if not kept or kept < max(RETENTION_WORTH, before // 20):
        return None
    text = (f"{worker.address}: the allocator kept {format_size(kept)} after frees, which leakhunt's settle at the "
            f"end of the block just gave back (rss {format_size(before)} -> {format_size(worker.rss)}; not a leak). "
            f"To hand such memory back on a running cluster: {TRIM_RECIPE}")
    if worker.arrow is not None:
        text += "; for Arrow's pool, pyarrow.default_memory_pool().release_unused() on the workers"
    if worker.trim_threshold is not None:
        text += (f". MALLOC_TRIM_THRESHOLD_ is already set on this worker ({worker.trim_threshold}, as Dask's nanny "
                 f"sets it) and glibc still kept this much: trim after memory-heavy stages, or process in smaller "
                 f"partitions")
    else:
        text += (". MALLOC_TRIM_THRESHOLD_ is not set on this worker: start workers with it (Dask's nanny sets "
                 "65536 through distributed.nanny.pre-spawn-environ) so that glibc returns freed memory sooner")
    return text


def _leak(task: Any, workers: dict[str, Any], seconds: float | None) -> str:
    text = (f"{task.prefix} leaks {format_size(task.retained_per_call)} per call ({task.note or 'confirmed'}): until "
            f"the fix lands, recycle workers before it fills them - dask worker --lifetime 1h --lifetime-stagger 5m "
            f"--lifetime-restart (Worker(lifetime=...), or distributed.worker.lifetime.duration)")
    pace = _time_to_pause(task, workers, seconds)
    return text + (f"; {pace}" if pace else "")


def _time_to_pause(task: Any, workers: dict[str, Any], seconds: float | None) -> str | None:
    """How long, at the watched pace, before the leak alone takes a worker to Dask's pause fraction."""
    if not seconds or not task.retained_per_call or task.retained_per_call <= 0:
        return None
    for row in task.workers:
        worker = workers.get(row["address"])
        if worker is None or not worker.memory_limit or not row.get("calls"):
            continue
        pause = worker.fractions.get("pause")
        if not isinstance(pause, (int, float)) or isinstance(pause, bool) or not worker.rss:
            continue
        rate = task.retained_per_call * row["calls"] / seconds
        room = pause * worker.memory_limit - worker.rss
        if room <= 0:
            return f"{worker.address} is past Dask's pause fraction already"
        return (f"at the watched pace ({format_size(rate)}/s on {worker.address}) the leak alone reaches Dask's pause "
                f"fraction ({pause * 100:.0f} % of {format_size(worker.memory_limit)}) in about "
                f"{_duration(room / rate)}")
    return None


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def advice(workers: Sequence[Any], tasks: Iterable[Any], seconds: float | None) -> list[str]:
    """Advice for a report's workers and task prefixes, most urgent first."""
    by_address = {w.address: w for w in workers if not w.error}
    out = [_leak(task, by_address, seconds) for task in tasks if task.verdict == "leak"]
    out.extend(text for text in (_retention(w) for w in by_address.values()) if text)
    return out
