"""``memory_budget``: hold a block or a function to a budget. A front end of
:class:`leakhunt.lifecycle.Block`, which measures, hunts when ``leak=`` asks, and judges; this
module raises the judgement's :class:`~leakhunt.MemoryBudgetExceeded` when it failed.

A ``with`` block (and a coroutine) cannot be called a second time, so it is traced itself: the
explanation then shows only what the block made. A decorated function is measured untraced and,
when it breaks its budget, called again traced to explain it.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar, overload

from leakhunt.budget import KEYWORDS, LIMITS, Budget
from leakhunt.judge import Judgement
from leakhunt.lifecycle import Block, Policy
from leakhunt.measure import Measurement

__all__ = ["memory_budget", "measured_elsewhere", "run_with_budget"]

F = TypeVar("F", bound=Callable[..., Any])

# Set by a front end (the pytest plugin) that measures a call itself: the decorated function it
# measures (its own ``@memory_budget`` then only calls it, instead of measuring it a second
# time), or True inside a bare ``measured_elsewhere()`` block (every decorator only calls). A
# budget on a helper that the measured test calls is the user's own check, and still applies.
_measured_elsewhere: contextvars.ContextVar[object] = contextvars.ContextVar("leakhunt_measured_elsewhere",
                                                                             default=None)


@contextmanager
def measured_elsewhere(fn: Callable[..., Any] | None = None) -> Iterator[None]:
    """Inside this block the ``@memory_budget`` decorator of ``fn`` only calls its function
    (``fn``: the decorated function, a method bound to it, or a wrapper stacked on it): the
    caller measures that call itself. Without ``fn``, every decorator in the block only calls its function."""
    token = _measured_elsewhere.set(True if fn is None else _budget_wrapper(fn))
    try:
        yield
    finally:
        _measured_elsewhere.reset(token)


def _budget_wrapper(fn: Any) -> Any:
    """The ``@memory_budget`` wrapper of ``fn`` - a decorated function, a method bound to one, or
    a wrapper stacked on one (``mock.patch``, pytest-asyncio: ``functools.wraps`` copies the
    budget attribute onto them) - or None when ``fn`` carries no budget."""
    fn = getattr(fn, "__func__", fn)
    if getattr(fn, "__leakhunt_budget__", None) is None:
        return None
    while getattr(getattr(fn, "__wrapped__", None), "__leakhunt_budget__", None) is not None:
        fn = fn.__wrapped__  # the decorator's own wrapper is the innermost carrier
    return fn


class memory_budget:
    """Hold a block or a function to a memory budget.

    As a context manager::

        with memory_budget(rss="20 MB", peak="500 MB"):
            work()

    As a decorator (plain and ``async`` functions); ``leak=`` repeats the function and fails
    when memory keeps growing call after call::

        @memory_budget(leak="64 KiB", repeat=10)
        def test_no_leak(): ...

    Breaking the budget raises :class:`MemoryBudgetExceeded` (an ``AssertionError``) whose
    message says what grew, where it lives and what keeps it alive. After the block,
    ``.measurement`` and ``.judgement`` hold the figures and the verdict.
    """

    def __init__(self, *args: Any, rss: int | str | None = None, peak: int | str | None = None,
                 traced: int | str | None = None, arrow: int | str | None = None,
                 children: int | str | None = None, file: int | str | None = None,
                 leak: int | str | None = None, repeat: int | None = None, warmup: int | None = None,
                 **unknown: Any) -> None:
        if unknown:  # Python's own TypeError would not list what is accepted
            raise TypeError(f"memory_budget() got an unknown keyword {sorted(unknown)[0]!r}; "
                            f"accepted keywords: {', '.join(KEYWORDS)}")
        if args:
            what = getattr(args[0], "__qualname__", None) or repr(args[0])
            raise TypeError(
                f"memory_budget takes keywords only, got the positional argument {what}; "
                f"write @memory_budget(rss=\"50 MB\") (with parentheses and a limit), not @memory_budget"
            )
        given = {k: v for k, v in dict(rss=rss, peak=peak, traced=traced, arrow=arrow, children=children,
                                       file=file, leak=leak, repeat=repeat, warmup=warmup).items() if v is not None}
        self.budget = Budget.from_kwargs("memory_budget", **given)
        if self.budget.is_empty:
            raise ValueError(f"memory_budget() needs at least one limit ({', '.join(LIMITS)}), "
                             f"e.g. memory_budget(rss=\"50 MB\")")
        self._block: Block | None = None
        self.measurement: Measurement | None = None
        self.judgement: Judgement | None = None

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> memory_budget:
        if self.budget.leak is not None:
            raise TypeError(
                "memory_budget(leak=...) repeats a function, so it works only as a decorator; "
                "as a context manager use rss=, peak=, traced=, arrow= or children="
            )
        self._block = Block("the block", Policy.of(self.budget, trace=True, rerun=False)).start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        block = self._block
        assert block is not None
        try:
            self.measurement = block.stop()
        finally:
            # a block that failed on its own is not blamed for its memory
            self.judgement = block.finish(outcome="passed" if exc_type is None else "failed")
        if self.judgement.failed:
            raise self.judgement.error()

    # -- decorator -------------------------------------------------------------------------

    @overload
    def __call__(self, fn: F) -> F: ...

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        budget = self.budget
        title = getattr(fn, "__qualname__", repr(fn))
        if inspect.iscoroutinefunction(fn):
            if budget.leak is not None:
                raise TypeError(f"{title}: memory_budget(leak=...) cannot repeat an async function; "
                                f"use rss=/peak= on it, or hunt() a sync wrapper")

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                elsewhere = _measured_elsewhere.get()
                if elsewhere is True or elsewhere is async_wrapper:
                    return await fn(*args, **kwargs)
                block = Block(title, Policy.of(budget, trace=True, rerun=False)).start()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException:
                    block.stop()
                    block.close()
                    raise
                block.stop()
                judgement = block.finish()
                if judgement.failed:
                    raise judgement.error()
                return result

            async_wrapper.__leakhunt_budget__ = budget  # type: ignore[attr-defined]
            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            elsewhere = _measured_elsewhere.get()
            if elsewhere is True or elsewhere is wrapper:
                return fn(*args, **kwargs)
            return run_with_budget(fn, args, kwargs, budget, title)

        wrapper.__leakhunt_budget__ = budget  # type: ignore[attr-defined]
        return wrapper


def run_with_budget(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                    budget: Budget, title: str) -> Any:
    """Call ``fn`` under ``budget``: measured once for the figures (called again to confirm and
    explain a failure), hunted for ``leak``."""
    result, judgement = Block(title, Policy.of(budget)).call(fn, *args, **kwargs)
    if judgement.failed:
        raise judgement.error()
    return result
