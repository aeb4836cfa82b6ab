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

__all__ = ["DataLedger", "shuffle_buffers", "WALK_FROM"]

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
