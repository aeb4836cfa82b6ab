"""What Dask itself holds on a worker, counted by real bytes: its data and its shuffle buffers.

Dask's "managed memory" is the sum of ``sizeof()`` over the keys a worker holds. ``sizeof`` counts
a pandas frame's columns in full even when the frame shares them with another key (copy-on-write:
``df.assign(z=...)`` shares ``df``'s columns), so subtracting it from resident memory makes every
such task look as if it had freed memory (issue 23: -4.5 to -9.6 MiB per call for a clean
groupby). The :class:`DataLedger` counts each buffer once, by address
(:func:`leakhunt.buffers.held_buffers`), and keeps ``sizeof`` only for what is not a numpy or
Arrow buffer. A P2P shuffle holds its shards in buffers outside the worker's data until it
writes or unpacks them; :func:`shuffle_buffers` reads how much, from the shuffle extension's own
heartbeat.
"""

from __future__ import annotations

from typing import Any

from leakhunt.buffers import held_buffers

__all__ = ["DataLedger", "runs_only_shuffle_code", "shuffle_buffers", "SHUFFLE_MODULE", "WALK_FROM"]

#: Where Dask's P2P shuffle machinery lives: its unpack tasks (``shuffle_unpack``,
#: ``merge_unpack``, ``rechunk_unpack``) and barriers (``p2p_barrier``) call a function of it.
SHUFFLE_MODULE = "distributed.shuffle"

#: Functions outside it that only hand their task's input to it: dask-expr's shuffle-transfer
#: task calls ``distributed.shuffle._shuffle.shuffle_transfer`` and nothing else (the input it
#: shards is a reference to another task's result, never code run here).
SHUFFLE_FORWARDERS = frozenset({"dask.dataframe.dask_expr._shuffle._shuffle_transfer"})

#: Values smaller than this (by Dask's sizeof) are counted by sizeof, without a walk: a walk costs
#: tens to hundreds of microseconds (``python benchmarks/dask_overhead.py --per-task`` times one
#: for a pandas frame of three columns), and small values hardly share buffers worth counting.
WALK_FROM = 64 * 1024


class DataLedger:
    """Bytes Dask's data holds on one worker, each buffer counted once.

    ``add(key, value, nbytes)`` when a key enters the worker's memory (a result, data fetched
    from another worker, a scatter), ``remove(key)`` when it leaves it.
    """

    def __init__(self) -> None:
        self._keys: dict[Any, tuple[tuple[tuple[int, int], ...], int]] = {}
        self._refs: dict[int, int] = {}
        self.buffers = 0  # distinct buffer bytes held
        self.other = 0  # sizeof of what is not a buffer

    @property
    def held(self) -> int:
        return self.buffers + self.other

    def add(self, key: Any, value: Any, nbytes: int) -> None:
        if key in self._keys:
            self.remove(key)
        found = held_buffers([value]) if nbytes >= WALK_FROM else {}
        other = max(0, nbytes - sum(found.values()))
        self._keys[key] = (tuple(found.items()), other)
        self.other += other
        refs = self._refs
        for address, size in found.items():
            count = refs.get(address, 0)
            if not count:
                self.buffers += size
            refs[address] = count + 1

    def remove(self, key: Any) -> None:
        entry = self._keys.pop(key, None)
        if entry is None:
            return
        found, other = entry
        self.other -= other
        refs = self._refs
        for address, size in found:
            count = refs[address] - 1
            if count:
                refs[address] = count
            else:
                del refs[address]
                self.buffers -= size

    def __contains__(self, key: Any) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)


def shuffle_buffers(worker: Any) -> int:
    """Bytes a P2P shuffle holds in memory on ``worker`` (shards waiting to be sent or written),
    from the shuffle extension's heartbeat; 0 without one."""
    extension = worker.plugins.get("shuffle") if hasattr(worker, "plugins") else None
    heartbeat = getattr(extension, "heartbeat", None)
    if heartbeat is None:
        return 0
    try:
        runs = heartbeat()
    except Exception:  # a shuffle closing under us: no figure rather than a failed task hook
        return 0
    total = 0
    for run in runs.values():
        for part in ("comm", "disk"):
            total += int((run.get(part) or {}).get("memory") or 0)
    return total


def runs_only_shuffle_code(run_spec: Any) -> bool:
    """Whether a task runs Dask's P2P shuffle code and nothing else: its function is
    :data:`SHUFFLE_MODULE`'s (or one of :data:`SHUFFLE_FORWARDERS`) and no argument is a task of its own (fused code, which could be
    the user's). Such a task calls no code of the user's, so what it keeps is Dask's."""
    func = getattr(run_spec, "func", None)
    module = getattr(func, "__module__", None) or ""
    forwarder = f"{module}.{getattr(func, '__qualname__', '')}" in SHUFFLE_FORWARDERS
    if module != SHUFFLE_MODULE and not module.startswith(SHUFFLE_MODULE + ".") and not forwarder:
        return False
    from dask._task_spec import Task

    arguments = list(getattr(run_spec, "args", ()) or ()) + list((getattr(run_spec, "kwargs", None) or {}).values())
    return not any(isinstance(a, Task) for a in arguments)
