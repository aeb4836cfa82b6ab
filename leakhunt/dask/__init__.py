"""leakhunt on a Dask cluster: every worker measured through Dask's own ``WorkerPlugin``.

::

    from leakhunt.dask import watch

    with watch(client) as w:
        client.gather(client.map(step, parts))
    print(w.report.explain())          # per task prefix and per worker
    w.report.to_dict()                 # {"tasks": [...], "workers": [...]}

``distributed`` is an optional extra: ``pip install "leakhunt[dask]"``. leakhunt must be
installed on the workers too (the plugin runs there).
"""

from __future__ import annotations

try:
    import distributed as _distributed  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f"leakhunt.dask needs Dask's distributed scheduler, which is not installed ({exc}); "
        f'install it with: pip install "leakhunt[dask]"'
    ) from exc

from leakhunt.dask._plugin import LeakhuntPlugin
from leakhunt.dask._report import (
    ClusterReport,
    PrefixFigures,
    PrefixViolation,
    WorkerFigures,
)
from leakhunt.dask._watch import Watch, inspect_cluster, watch, watch_for

__all__ = [
    "ClusterReport",
    "LeakhuntPlugin",
    "PrefixFigures",
    "PrefixViolation",
    "Watch",
    "WorkerFigures",
    "inspect_cluster",
    "watch",
    "watch_for",
]

for _name in __all__:
    globals()[_name].__module__ = "leakhunt.dask"
del _name
