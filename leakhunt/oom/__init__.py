"""The out-of-memory guard: the limit that will kill the process, a cheap watcher, and the
diagnosis written before the kill.

::

    from leakhunt import oom_guard

    with oom_guard("90%", action="stop"):     # the cgroup's limit, an rlimit, or the machine's
        run_the_job()

Front ends: ``leakhunt run --oom-guard[=90%]``, ``pytest --leak-oom-guard``, and the Dask worker
plugin of :func:`leakhunt.dask.watch`. docs/oom.md says what it watches, what it costs and
what it cannot catch.
"""

from __future__ import annotations

from leakhunt.oom._diagnosis import Diagnosis
from leakhunt.oom._guard import (
    DEFAULT_INTERVAL,
    DEFAULT_REPORT,
    DEFAULT_THRESHOLD,
    OomGuard,
    oom_guard,
)
from leakhunt.oom._limits import (
    ACTIONS,
    Limit,
    cgroup_limit,
    find_limit,
    find_limits,
    parse_action,
    parse_limit,
    parse_threshold,
)

__all__ = [
    "ACTIONS",
    "DEFAULT_INTERVAL",
    "DEFAULT_REPORT",
    "DEFAULT_THRESHOLD",
    "Diagnosis",
    "Limit",
    "OomGuard",
    "cgroup_limit",
    "find_limit",
    "find_limits",
    "oom_guard",
    "parse_action",
    "parse_limit",
    "parse_threshold",
]

for _name in ("Diagnosis", "Limit", "OomGuard", "cgroup_limit", "find_limit", "find_limits", "oom_guard",
              "parse_action", "parse_limit", "parse_threshold"):
    globals()[_name].__module__ = "leakhunt.oom"
del _name
