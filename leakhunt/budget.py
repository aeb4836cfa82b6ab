"""Memory budgets: a spec, a check, and ``memory_budget`` as context manager and decorator."""

from __future__ import annotations

import contextvars
import functools
import inspect
import tracemalloc
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, Callable, Iterator, TypeVar, overload

from leakhunt.measure import Measurement, Measurer
from leakhunt.units import format_size, parse_size

__all__ = [
    "Budget",
    "Violation",
    "MemoryBudgetExceeded",
    "memory_budget",
    "check",
    "FIGURES",
    "KEYWORDS",
    "measured_elsewhere",
]

#: Budget keywords that limit a figure of a single measurement.
FIGURES = ("rss", "peak", "traced", "arrow", "children")
#: Every keyword ``memory_budget`` and the pytest marker accept.
KEYWORDS = FIGURES + ("leak", "repeat", "warmup")

_FIGURE_HELP = {
    "rss": "settled RSS growth",
    "peak": "high-water mark above the start",
    "traced": "tracemalloc growth",
    "arrow": "Arrow pool growth",
    "children": "child processes' peak memory",
    "leak": "growth per call over repeats",
}

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Budget:
    """Limits in bytes (``None``: no limit), and the repetition settings for ``leak``."""

    rss: int | None = None
    peak: int | None = None
    traced: int | None = None
    arrow: int | None = None
    children: int | None = None
    leak: int | None = None
    repeat: int = 10
    warmup: int = 3

    @classmethod
    def from_kwargs(cls, where: str = "", **kwargs: Any) -> Budget:
        """Validate keywords as users write them: sizes as ints or strings like ``"50 MB"``.

        Errors are ``ValueError`` naming ``where`` (a test or call), the keyword and the value.
        """
        prefix = f"{where}: " if where else ""
        unknown = sorted(set(kwargs) - set(KEYWORDS))
        if unknown:
            raise ValueError(
                f"{prefix}unknown memory budget keyword {unknown[0]!r}; "
                f"accepted keywords: {', '.join(KEYWORDS)}"
            )
        values: dict[str, Any] = {}
        for key, value in kwargs.items():
            if value is None:
                continue
            if key in ("repeat", "warmup"):
                low = 2 if key == "repeat" else 0
                if isinstance(value, bool) or not isinstance(value, int) or value < low:
                    raise ValueError(f"{prefix}{key}={value!r} is not valid: expected a whole number >= {low}")
                values[key] = value
                continue
            try:
                values[key] = parse_size(value)
            except ValueError as exc:
                raise ValueError(f"{prefix}{key}={value!r} is not a valid size ({exc})") from None
        return cls(**values)

    @classmethod
    def from_spec(cls, spec: str, where: str = "") -> Budget:
        """Parse ``"rss=50MB,peak=1GB"`` (the grammar of ``--memory-budget`` and ``--budget``)."""
        prefix = f"{where}: " if where else ""
        if not isinstance(spec, str) or not spec.strip():
            raise ValueError(f"{prefix}empty memory budget {spec!r}: expected KEY=SIZE[,KEY=SIZE...], "
                             f"e.g. 'rss=50MB,peak=1GB'")
        kwargs: dict[str, Any] = {}
        for item in spec.split(","):
            key, sep, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key or not value:
                raise ValueError(
                    f"{prefix}bad memory budget {spec!r}: {item.strip()!r} is not KEY=SIZE "
                    f"(keys: {', '.join(KEYWORDS)}; sizes like 50MB or 64KiB)"
                )
            if key in kwargs:
                raise ValueError(f"{prefix}bad memory budget {spec!r}: {key!r} is given twice")
            kwargs[key] = int(value) if key in ("repeat", "warmup") and value.isdigit() else value
        return cls.from_kwargs(where, **kwargs)

    def limits(self) -> dict[str, int]:
        """The figure limits that are set, by keyword (without ``leak``)."""
        return {name: getattr(self, name) for name in FIGURES if getattr(self, name) is not None}

    @property
    def is_empty(self) -> bool:
        return not self.limits() and self.leak is None

    def merged_over(self, default: Budget | None) -> Budget:
        """This budget, with limits it does not set taken from ``default``."""
        if default is None:
            return self
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in FIGURES + ("leak",):
            if values[name] is None:
                values[name] = getattr(default, name)
        return Budget(**values)

    def describe(self) -> str:
        parts = [f"{name}={format_size(limit)}" for name, limit in self.limits().items()]
        if self.leak is not None:
            parts.append(f"leak={format_size(self.leak)}/call (repeat={self.repeat}, warmup={self.warmup})")
        return ", ".join(parts) or "no limits"

    def to_dict(self) -> dict[str, int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Violation:
    """A figure that went over its limit."""

    figure: str
    value: int
    limit: int

    def __str__(self) -> str:
        return f"{_FIGURE_HELP.get(self.figure, self.figure)} {format_size(self.value)} > budget {format_size(self.limit)}"


def check(measurement: Measurement, budget: Budget) -> list[Violation]:
    """The figures of ``measurement`` that break ``budget``. Unavailable figures never break it."""
    out = []
    for name, limit in budget.limits().items():
        value = measurement.figure(name)
        if value is not None and value > limit:
            out.append(Violation(name, value, limit))
    return out


class MemoryBudgetExceeded(AssertionError):
    """A block or test broke its memory budget. ``str()`` is the full explanation."""

    def __init__(self, message: str, measurement: Measurement | None, violations: list[Violation]) -> None:
        super().__init__(message)
        self.measurement = measurement
        self.violations = violations

    def __reduce__(self) -> tuple[Any, ...]:
        # args holds only the message: without this, unpickling (a process pool sending the
        # failure back to its parent) calls __init__ with one argument and fails.
        return (type(self), (str(self), self.measurement, self.violations))


MemoryBudgetExceeded.__module__ = "leakhunt"

# Set by a front end (the pytest plugin) that measures a test itself, so a ``@memory_budget``
# decorator on the same test does not measure it a second time.
_measured_elsewhere: contextvars.ContextVar[bool] = contextvars.ContextVar("leakhunt_measured_elsewhere",
                                                                           default=False)


@contextmanager
def measured_elsewhere() -> Iterator[None]:
    """Inside this block ``@memory_budget`` decorators only call their function."""
    token = _measured_elsewhere.set(True)
    try:
        yield
    finally:
        _measured_elsewhere.reset(token)


def _measurer_for(budget: Budget) -> Measurer:
    return Measurer(settle=True, trace=True if budget.traced is not None else None,
                    children=budget.children is not None, objects=True, domains=True)


_TRACE_FRAMES = 10  # enough to reach the user's own line below pandas' and numpy's frames


@contextmanager
def _traced_for(budget: Budget) -> Iterator[None]:
    """A ``traced=`` budget traces its block *and* the explanation of a failure.

    The trace must outlive the measurement: the explanation names the lines that allocated the
    survivors, and a stopped trace has forgotten them. A trace the user started is left alone.
    """
    started = budget.traced is not None and not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(_TRACE_FRAMES)
    try:
        yield
    finally:
        if started:
            tracemalloc.stop()


def _enforce(measurement: Measurement, budget: Budget, title: str) -> None:
    violations = check(measurement, budget)
    if violations:
        from leakhunt.explain import explain

        raise MemoryBudgetExceeded(explain(measurement, violations, title=title, budget=budget),
                                   measurement, violations)


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
    message says what grew, where it lives and what keeps it alive.
    """

    def __init__(self, *args: Any, rss: int | str | None = None, peak: int | str | None = None,
                 traced: int | str | None = None, arrow: int | str | None = None,
                 children: int | str | None = None, leak: int | str | None = None,
                 repeat: int | None = None, warmup: int | None = None, **unknown: Any) -> None:
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
                                       leak=leak, repeat=repeat, warmup=warmup).items() if v is not None}
        self.budget = Budget.from_kwargs("memory_budget", **given)
        self._measurer: Measurer | None = None
        self._trace: Any = None
        self.measurement: Measurement | None = None

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> memory_budget:
        if self.budget.leak is not None:
            raise TypeError(
                "memory_budget(leak=...) repeats a function, so it works only as a decorator; "
                "as a context manager use rss=, peak=, traced=, arrow= or children="
            )
        self._trace = _traced_for(self.budget)
        self._trace.__enter__()
        self._measurer = _measurer_for(self.budget).start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._measurer is not None
        try:
            self.measurement = self._measurer.stop()
            if exc_type is None:  # a block that failed on its own is not blamed for its memory
                _enforce(self.measurement, self.budget, "the block")
        finally:
            self._trace.__exit__(None, None, None)

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
                if _measured_elsewhere.get():
                    return await fn(*args, **kwargs)
                with _traced_for(budget):
                    measurer = _measurer_for(budget).start()
                    try:
                        result = await fn(*args, **kwargs)
                    finally:
                        measurement = measurer.stop()
                    _enforce(measurement, budget, title)
                return result

            async_wrapper.__leakhunt_budget__ = budget  # type: ignore[attr-defined]
            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _measured_elsewhere.get():
                return fn(*args, **kwargs)
            return run_with_budget(fn, args, kwargs, budget, title)

        wrapper.__leakhunt_budget__ = budget  # type: ignore[attr-defined]
        return wrapper


def run_with_budget(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                    budget: Budget, title: str) -> Any:
    """Call ``fn`` under ``budget``: measured once for the figures, hunted for ``leak``."""
    result = None
    called = False
    if budget.limits():
        with _traced_for(budget):
            measurer = _measurer_for(budget).start()
            try:
                result = fn(*args, **kwargs)
            finally:
                measurement = measurer.stop()
            _enforce(measurement, budget, title)
        called = True
    elif budget.leak is not None and budget.warmup > 0:
        result = fn(*args, **kwargs)  # the first warm-up call: the decorated function returns its result
        called = True
    if budget.leak is not None:
        from leakhunt.hunt import hunt

        warmup = max(0, budget.warmup - (1 if called else 0))  # the call above warmed up
        verdict = hunt(fn, *args, threshold=budget.leak, repeat=budget.repeat, warmup=warmup, **kwargs)
        if verdict.leaking:
            raise MemoryBudgetExceeded(verdict.explain(title=title), None, [
                Violation("leak", verdict.per_call or 0, budget.leak)])
    return result

