"""The out-of-memory guard on Dask workers: why did this worker die?

Dask's nanny restarts a worker whose resident memory passes the *terminate* fraction of its
``memory_limit`` (95 % by default); the user then sees ``KilledWorker`` and nothing about what
filled the worker. With ``watch(client, oom_guard=...)`` each worker runs a
:class:`leakhunt.oom.OomGuard` on its own resident memory against its ``memory_limit``, at a
threshold below the terminate fraction (by default Dask's *pause* fraction, 80 %: the worker
stops starting tasks there, and the running ones are what grows). At the crossing the worker's
diagnosis - the tasks running then, Dask's managed memory, and what else is alive with its
paths - is sent to the scheduler's event log (``Worker.log_event``, topic :data:`TOPIC`),
first the figures, then the whole diagnosis. The scheduler keeps it when the worker dies, so
the client's :class:`leakhunt.dask.ClusterReport` has it after the restart (``report.oom``).
"""

from __future__ import annotations

import sys
from typing import Any

import dask

from leakhunt import probes
from leakhunt.oom import Diagnosis, Limit, OomGuard, parse_threshold
from leakhunt.units import format_size

__all__ = ["TOPIC", "check_threshold", "collect", "start", "stop"]

#: The event-log topic the workers' diagnoses travel under.
TOPIC = "leakhunt-oom"
#: Dask's own topic for a worker the nanny restarted for its memory.
RESTART_TOPIC = "worker-restart-memory"
_MAX_KEYS = 20


def _fractions() -> tuple[float | None, float | None]:
    """Dask's pause and terminate fractions (None where turned off)."""
    memory = dask.config.get("distributed.worker.memory")
    pause, terminate = memory.get("pause"), memory.get("terminate")
    return (float(pause) if pause else None), (float(terminate) if terminate else None)


def check_threshold(value: Any) -> float | None:
    """``watch(oom_guard=...)``: True (Dask's pause fraction), False (off) or a share such as
    ``"85%"`` below the nanny's terminate fraction. Returns the fraction; None means the
    workers' own pause fraction. ``ValueError`` naming the value otherwise."""
    if value is True or value is None:
        return None
    accepted = "True (at Dask's pause fraction), False, or a share of each worker's memory_limit such as '85%'"
    try:
        fraction = parse_threshold(value, option="watch(oom_guard=...)")
    except ValueError as exc:
        raise ValueError(f"{exc}; watch(oom_guard=...) takes {accepted}") from None
    if not isinstance(fraction, float):
        raise ValueError(f"invalid watch(oom_guard={value!r}): a size applies to no worker in particular; "
                         f"give {accepted}")
    _, terminate = _fractions()
    if terminate is not None and fraction >= terminate:
        raise ValueError(f"invalid watch(oom_guard={value!r}): the nanny restarts a worker at {terminate:.0%} of "
                         f"its memory_limit (distributed.worker.memory.terminate), so the diagnosis must come "
                         f"below that; give {accepted}")
    return fraction


def _threshold(setting: float | None) -> float:
    if setting is not None:
        return setting
    pause, terminate = _fractions()
    if pause is not None and (terminate is None or pause < terminate):
        return pause
    return 0.9 * terminate if terminate is not None else 0.9


def _running(plugin: Any, worker: Any) -> dict[str, Any]:
    """The tasks running on the worker and Dask's managed memory, at the crossing."""
    keys: list[Any] = []
    for _ in range(3):  # the event loop changes the dict meanwhile
        try:
            keys = list(plugin.running)
            break
        except RuntimeError:
            continue
    shown = [str(k) for k in keys[:_MAX_KEYS]] + ([f"... {len(keys) - _MAX_KEYS} more"] if len(keys) > _MAX_KEYS else [])
    return {"worker": worker.address, "tasks running": shown,
            "managed by Dask": format_size(int(getattr(worker.state, "nbytes", 0) or 0))}


def _unmanaged(worker: Any) -> Any:
    """At a crossing: a scope that leaves Dask's managed data out of what is alive (its size is
    in the context; its paths would go through Dask's own structures)."""
    from leakhunt.census import data_buffers
    from leakhunt.dask._worker import _managed, _NotManaged

    _, values = _managed(worker)
    owners, _ = data_buffers(values)
    return _NotManaged(set(owners) | {id(v) for v in values}, None)


def start(plugin: Any, worker: Any) -> OomGuard | None:
    """Start the guard on this worker (``plugin.oom`` says how), or None: off, or no memory_limit."""
    setting = getattr(plugin, "oom", None)
    memory_limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
    if not setting or not memory_limit:
        return None
    _, terminate = _fractions()
    kill = f"; the nanny restarts it at {terminate:.0%}" if terminate else ""
    limit = Limit(value=int(memory_limit), source=f"Dask worker memory_limit{kill}", figure="rss",
                  where=str(worker.address), current=probes.rss())
    name = setting.get("watch", "")

    def send(diagnosis: Diagnosis) -> None:
        worker.log_event(TOPIC, {"watch": name, "address": str(worker.address), "diagnosis": diagnosis.to_dict()})

    guard = OomGuard(_threshold(setting.get("threshold")), found=limit, report=None, stderr=sys.stderr,
                     scope=lambda: _unmanaged(worker), context=lambda: _running(plugin, worker), on_crossing=send,
                     options={"threshold": "watch(oom_guard=...)"}, hold=False)
    return guard.start()


def stop(guard: OomGuard | None) -> None:
    if guard is not None:
        guard.stop()


def collect(client: Any, name: str, notes: list[str]) -> tuple[Diagnosis, ...]:
    """The workers' diagnoses of the watch ``name`` from the scheduler's event log (the last,
    most complete, of each crossing), with the nanny's restart that followed, if any. When the
    log cannot be read (the scheduler is gone), none, and a line in ``notes`` says so."""
    try:
        events, restart_events = client.get_events(TOPIC), client.get_events(RESTART_TOPIC)
    except Exception as exc:  # noqa: BLE001 - the rest of the report stands without them
        notes.append(f"the workers' out-of-memory diagnoses could not be collected: {type(exc).__name__}: {exc}")
        return ()
    latest: dict[tuple[Any, ...], Diagnosis] = {}
    for _, msg in events:  # in the order they came: each step adds to the last
        if isinstance(msg, dict) and msg.get("watch") == name:
            diagnosis = Diagnosis.from_dict(msg["diagnosis"])
            latest[(msg.get("address"), diagnosis.pid, diagnosis.number)] = diagnosis
    restarts = {msg.get("pid"): msg for _, msg in restart_events if isinstance(msg, dict)}
    out = []
    for diagnosis in sorted(latest.values(), key=lambda d: d.at):
        restart = restarts.get(diagnosis.pid)
        if restart is not None:
            diagnosis = _with_note(diagnosis, f"then the nanny restarted this worker, at rss "
                                              f"{format_size(restart.get('rss'))}")
        out.append(diagnosis)
    return tuple(out)


def _with_note(diagnosis: Diagnosis, note: str) -> Diagnosis:
    from dataclasses import replace

    return replace(diagnosis, notes=(*diagnosis.notes, note))
