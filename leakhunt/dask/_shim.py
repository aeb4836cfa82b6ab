"""The plugin as Dask ships it: a shell that loads leakhunt's plugin on the worker, if it can.

Dask sends a registered plugin to every worker that joins later and unpickles it while the
worker starts (``Worker.plugin_add``), outside any error handling: a plugin whose class lives in
leakhunt made a worker without leakhunt fail to start and stay in the scheduler as a zombie,
and the block's end then waited for it for ever (issue 23). This shell is pickled *by value*
(its code travels with it: :class:`by_value`), so it unpickles on any worker; its ``setup`` imports
leakhunt there and, where that fails, keeps the error and measures nothing. The worker starts,
and the report lists it with the error.

Nothing at module level refers to leakhunt: the class is shipped with its globals.
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["LeakhuntShell", "by_value"]


class LeakhuntShell(WorkerPlugin):
    """Loads :class:`leakhunt.dask.LeakhuntPlugin` on the worker with ``settings``; ``inner`` is
    that plugin, or ``None`` with ``error`` saying why it could not be loaded."""

    idempotent = False

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = dict(settings)
        self.inner: Any = None
        self.error = ""

    def setup(self, worker: Any) -> None:
        try:
            from leakhunt.dask._plugin import LeakhuntPlugin
        except ImportError as exc:
            self.error = (f"leakhunt is not importable on this worker ({type(exc).__name__}: {exc}); install it "
                          f"in the workers' environment: pip install \"leakhunt[dask]\"")
            return
        inner = LeakhuntPlugin(**self.settings)
        inner.setup(worker)
        self.inner = inner

    def teardown(self, worker: Any) -> None:
        if self.inner is not None:
            self.inner.teardown(worker)

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        inner = self.inner
        if inner is not None:
            inner.transition(key, start, finish, **kwargs)


class by_value:
    """``with by_value(): client.register_plugin(LeakhuntShell(settings))``: while inside, cloudpickle (and
    so Dask, which asks it for modules registered by value) pickles this module's classes with
    their code."""

    def __enter__(self) -> None:
        import sys

        import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])

    def __exit__(self, *exc: Any) -> None:
        import sys

        import cloudpickle

        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
