"""The ``dask_memory_budget`` fixture: a memory budget on the work a test sends to a Dask cluster.

::

    def test_pipeline(client, dask_memory_budget):
        dask_memory_budget(client, {"process": "peak=200MB,rss=10MB"})
        client.gather(client.map(process, parts))

Watching starts when the fixture is called; when the test's call ends, every worker's figures
are collected and a broken budget fails the test (a normal failure, with the cluster report as
its message). Wiring only: the watching and judging are ``leakhunt.dask.watch``'s, imported when
the fixture is called, so this plugin never needs ``distributed``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

__all__ = ["dask_memory_budget"]

_WATCHES = pytest.StashKey[list]()
_HOOKS_NAME = "leakhunt-dask-budget-hooks"


class _CallHooks:
    """Registered when the fixture is first set up: ends the test's watches after its call."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        # The test body starts its watches: read them after it ran.
        try:
            result = yield
        except BaseException as exc:
            _finish(item.stash.get(_WATCHES, []), exc)  # a test that failed on its own is not judged
            raise
        try:
            _finish(item.stash.get(_WATCHES, []), None)
        except AssertionError as exc:  # a broken budget (MemoryBudgetExceeded): its message is the failure
            pytest.fail(f"{_qualname(exc)}: {exc}", pytrace=False)
        return result


def _qualname(exc: BaseException) -> str:
    module = type(exc).__module__
    return f"{module}.{type(exc).__name__}" if module and module != "builtins" else type(exc).__name__


def _finish(watches: list[Any], exc: BaseException | None) -> None:
    first: BaseException | None = None
    for w in watches:
        if w.report is not None:
            continue  # the test ended it itself
        try:
            if exc is None:
                w.__exit__(None, None, None)
            else:
                w.__exit__(type(exc), exc, exc.__traceback__)
        except BaseException as error:  # the first broken budget is the failure; every watch still ends
            first = first or error
    if first is not None:
        raise first


@pytest.fixture
def dask_memory_budget(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Call it with a ``distributed.Client`` and ``{"prefix-pattern": "peak=1GB,rss=50MB"}``.

    Other keywords go to :func:`leakhunt.dask.watch` (``threshold``, ``repeat``, ...). Returns
    the watch: its ``report`` is ready after the test's call.
    """
    watches: list[Any] = []
    # Registered now, in the setup phase: the call phase takes its hooks when it starts, before
    # the test body calls the fixture.
    pluginmanager = request.config.pluginmanager
    if pluginmanager.get_plugin(_HOOKS_NAME) is None:
        pluginmanager.register(_CallHooks(), _HOOKS_NAME)

    def start(client: Any, budget: Any = None, **options: Any) -> Any:
        __tracebackhide__ = True  # a refused budget is the user's error: show their line, not ours
        from leakhunt.dask import watch

        try:
            w = watch(client, budget=budget, **options)
        except (ValueError, TypeError) as exc:
            pytest.fail(f"dask_memory_budget: {exc}", pytrace=False)
        w.__enter__()
        watches.append(w)
        return w

    request.node.stash[_WATCHES] = watches

    yield start
    _finish(watches, RuntimeError("the test ended before its call"))  # setup errors: end, do not judge
