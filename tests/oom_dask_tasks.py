"""Task functions for the Dask tests of the OOM guard (workers import them by reference)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

STEP = 10 * 1024 * 1024  # bytes kept per step
MAX_STEPS = 60  # 600 MiB: never reached under the tests' 300 MB memory_limit (the nanny restarts first)


def _guard() -> Any:
    from distributed import get_worker

    for plugin in get_worker().plugins.values():
        plugin = getattr(plugin, "inner", plugin)  # leakhunt's plugin travels inside a shell
        guard = getattr(plugin, "oom_guard", None)
        if guard is not None:
            return guard
    raise RuntimeError("no OOM guard on this worker")


def _diagnosed() -> bool:
    """Has the scheduler received this worker's complete diagnosis?"""
    from distributed import get_client

    from leakhunt.dask._oom import TOPIC

    return any(isinstance(msg, dict) and msg["diagnosis"]["complete"] for _, msg in get_client().get_events(TOPIC))


def grow_until_restarted(pause: float = 0.02) -> int:
    """Keeps 10 MiB per step in a local list until the worker's guard crosses its threshold,
    waits until the scheduler holds the complete diagnosis, then grows on until the nanny
    restarts the worker (each wait is bounded: the test fails rather than hangs)."""
    held = []
    guard = _guard()
    while not guard.crossings and len(held) < MAX_STEPS:
        held.append(np.ones(STEP // 8))
        time.sleep(pause)
    deadline = time.monotonic() + 60
    while not _diagnosed() and time.monotonic() < deadline:
        time.sleep(0.05)
    while len(held) < MAX_STEPS:
        held.append(np.ones(STEP // 8))
        time.sleep(pause)
    return len(held)


def keep_a_little(mib: int) -> int:
    """Stays far under the threshold: ``mib`` MiB, kept until the task returns."""
    held = [np.ones(1024 * 1024 // 8) for _ in range(mib)]
    return len(held)
