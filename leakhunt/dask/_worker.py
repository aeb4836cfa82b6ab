"""Functions the client runs on every worker (``client.run``) and on the scheduler: plain data.

They live in an importable module because ``client.run`` sends functions by reference: a
worker without leakhunt installed cannot run them, and :func:`check` says so first.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

__all__ = ["check", "collect", "dask_memory", "inspect_worker", "scheduler_memory", "survivor_roots"]

#: glibc's trim threshold, which Dask's nanny sets for the workers it starts
#: (``distributed.nanny.pre-spawn-environ``).
TRIM_VARIABLE = "MALLOC_TRIM_THRESHOLD_"


def check() -> dict[str, Any]:
    """leakhunt's version and the pid on this worker. Sent by reference like the others: on a
    worker without leakhunt, ``client.run`` returns the ModuleNotFoundError of unpickling it."""
    try:
        import leakhunt
    except ImportError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"version": leakhunt.__version__, "pid": os.getpid()}


def _managed(worker: Any) -> tuple[int, list[Any]]:
    """Dask's managed memory in RAM (bytes, by ``sizeof``) and the values it holds."""
    data = worker.data
    spilled = getattr(data, "spilled_total", None)
    managed = int(worker.state.nbytes) - (int(spilled.memory) if spilled is not None else 0)
    fast = getattr(data, "fast", data)  # a SpillBuffer keeps what is in RAM in .fast
    try:
        values = list(fast.values())
    except Exception:
        values = []
    return max(0, managed), values


def dask_memory(worker: Any) -> dict[str, Any]:
    """The worker as Dask sees it: its memory limit, the fractions of it at which Dask spills,
    pauses and terminates, what it spilled to disk, and glibc's trim threshold."""
    manager = getattr(worker, "memory_manager", None)
    limit = int(getattr(manager, "memory_limit", 0) or 0) or None
    spilled = getattr(worker.data, "spilled_total", None)
    nanny_terminate = None
    try:
        import dask

        nanny_terminate = dask.config.get("distributed.worker.memory.terminate")
    except Exception:
        pass
    return {
        "memory_limit": limit,
        "fractions": {
            "target": getattr(manager, "memory_target_fraction", None),
            "spill": getattr(manager, "memory_spill_fraction", None),
            "pause": getattr(manager, "memory_pause_fraction", None),
            "terminate": nanny_terminate,
        },
        "spilled": int(spilled.disk) if spilled is not None else 0,
        "paused": getattr(getattr(worker, "status", None), "name", "") == "paused",
        "trim_threshold": os.environ.get(TRIM_VARIABLE),
    }


class _NotManaged:
    """What :func:`leakhunt.attribution.survivors` asks of a scope, on a worker: a buffer counts
    unless Dask manages it or it was alive before the watch began (``baseline``)."""

    def __init__(self, managed: set[int], baseline: set[int] | None) -> None:
        self.managed = managed
        self.baseline = baseline

    def created_here(self, obj: Any) -> bool:
        return id(obj) not in self.managed and (self.baseline is None or id(obj) not in self.baseline)


def survivor_roots(*, exclude: set[int], baseline: set[int] | None = None, min_size: int = 1 << 20,
                   paths: int = 3) -> list[dict[str, Any]]:
    """The biggest buffers alive that Dask does not manage, grouped by the root that keeps them
    (:class:`leakhunt.explanation.Root` as dicts, at most ``paths`` roots)."""
    from leakhunt.attribution import survivors

    found = survivors(_NotManaged(exclude, baseline), min_size=min_size, max_roots=paths)  # type: ignore[arg-type]
    roots = [root.to_dict() for root in found.roots]
    del found
    # The search leaves reference cycles (its paths hold the buffers they reach and the frames of
    # the search): collected now, or they keep the user's buffers alive after the user drops them
    # (measured: 40 x 2 MiB arrays still resident after their list was cleared, until a gc).
    gc.collect()
    return roots


def inspect_worker(*, dask_worker: Any, settle: bool = True, paths: int = 3, min_size: int = 1 << 20,
                   baseline: set[int] | None = None) -> dict[str, Any]:
    """This worker's memory: Dask's managed part, and the unmanaged rest split by kind.

    ``rss`` is the resident memory now: after settling when ``settle`` (``rss_before_settle``
    is what it was before, and ``allocator_retention`` the difference settling gave back)."""
    from leakhunt.census import census, data_buffers

    managed, values = _managed(dask_worker)
    taken = census(settle=settle, exclude=values)
    owners, _ = data_buffers(values)
    managed_ids = set(owners)
    managed_ids.update(id(v) for v in values)
    now = taken.rss_settled if taken.rss_settled is not None else taken.rss
    # Managed bytes that are not numpy or Arrow data are Python objects (sizeof() counts them).
    managed_python = max(0, managed - taken.excluded_numpy - taken.excluded_arrow)
    python_heap = max(0, taken.python_heap - managed_python)
    unexplained = None
    if now is not None:
        unexplained = max(0, now - managed - python_heap - taken.numpy - (taken.arrow or 0) - (taken.file_backed or 0))
    roots = survivor_roots(exclude=managed_ids, baseline=baseline, min_size=min_size, paths=paths) if paths else []
    out = {
        "address": dask_worker.address,
        "pid": os.getpid(),
        "nthreads": int(getattr(dask_worker.state, "nthreads", 1) or 1),
        "rss": now,
        "rss_before_settle": taken.rss if settle else None,
        "managed": managed,
        "unmanaged": None if now is None else now - managed,
        "python_heap": python_heap,
        "numpy": taken.numpy,
        "arrow": taken.arrow,
        "allocator_retention": taken.allocator_retention,
        "file_backed": taken.file_backed,
        "unexplained": unexplained,
        "settled": settle,
        "survivors": roots,
        "python": sys.version.split()[0],
    }
    out.update(dask_memory(dask_worker))
    return out


def collect(*, dask_worker: Any, name: str, settle: bool = True, paths: int = 3) -> dict[str, Any]:
    """The watch's figures on this worker: its plugin's per-prefix series and the worker split."""
    plugin = dask_worker.plugins.get(name)
    plugin = getattr(plugin, "inner", plugin)  # the plugin as registered: a shim around ours
    error = getattr(dask_worker.plugins.get(name), "error", None)
    if plugin is None or error:
        return {"address": dask_worker.address,
                "error": error or "leakhunt's plugin is not on this worker (it could not be set up here)"}
    nthreads = plugin.nthreads
    plugin.release()  # threads back, heap thawed (gc.get_objects() does not list frozen objects)
    snapshot = plugin.snapshot()
    figures = inspect_worker(dask_worker=dask_worker, settle=settle, paths=paths, min_size=plugin.survivor_min,
                             baseline=set(plugin.baseline))
    figures["nthreads"] = nthreads
    snapshot["unmanaged_growth"] = plugin.unmanaged_growth()  # after inspect_worker settled
    figures["tasks"] = snapshot
    return figures


def scheduler_memory(dask_scheduler: Any) -> dict[str, dict[str, int]]:
    """Each worker's memory as the scheduler sees it (``distributed.scheduler.MemoryState``):
    process, managed, unmanaged old and recent, spilled."""
    out = {}
    for address, ws in dask_scheduler.workers.items():
        state = ws.memory
        out[address] = {"process": state.process, "managed": state.managed, "unmanaged_old": state.unmanaged_old,
                        "unmanaged_recent": state.unmanaged_recent, "spilled": state.spilled}
    return out
