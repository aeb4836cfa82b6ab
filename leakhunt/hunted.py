"""What :func:`leakhunt.hunt` may call, checked before the first call (issue 21).

``hunt(fn, *args, threshold=..., repeat=..., **kwargs)`` passes ``args`` and ``kwargs`` to
``fn``, and keeps its own options (:data:`OPTIONS`). Two mistakes used to give a confident
wrong verdict:

- ``hunt(process, df, threshold=3)`` where ``process`` has a ``threshold`` parameter: hunt
  took 3 as its own threshold (3 bytes per call) and ``process`` ran with its default. Which
  one the caller meant cannot be told, so the clash is refused, naming both ways to say it
  (bind the function's keyword with ``functools.partial``, or pass hunt's to a ``lambda``).
  Only an option the caller gave is checked: a function whose parameter of that name keeps
  its default is hunted as asked.
- a generator function (or an ``async`` one): calling it runs none of its body, so every call
  measured nothing and the verdict was "does not leak". It is refused, with the way to hunt it.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, TypeVar

__all__ = ["OPTIONS", "check_callable", "checks_callable"]

#: hunt()'s own keyword options.
OPTIONS = ("threshold", "repeat", "warmup", "confirm", "trace", "attribute")

F = TypeVar("F", bound=Callable[..., Any])


def checks_callable(hunt: F) -> F:
    """Decorate :func:`leakhunt.hunt.hunt`: :func:`check_callable` with the options the caller
    gave (a decorator sees them; defaults are not given)."""
    @functools.wraps(hunt)
    def checked(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        check_callable(fn, args, [name for name in kwargs if name in OPTIONS])
        return hunt(fn, *args, **kwargs)
    return checked  # type: ignore[return-value]


def check_callable(fn: Any, args: tuple[Any, ...] = (), given: list[str] | tuple[str, ...] = ()) -> None:
    """Raise ``TypeError`` when ``fn`` cannot be hunted as asked (see the module's docstring)."""
    if not callable(fn):
        raise TypeError(f"hunt() needs a function to call, got {fn!r}")
    name = getattr(fn, "__qualname__", None) or getattr(getattr(fn, "func", None), "__qualname__", None) or "fn"
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(f"hunt({name}): {name} is a generator function: calling it runs none of its body, so "
                        f"nothing would be measured; hunt a function that runs it to the end, e.g. "
                        f"hunt(lambda: collections.deque({name}(...), maxlen=0))")
    if inspect.iscoroutinefunction(fn):
        raise TypeError(f"hunt({name}): {name} is an async function: calling it only makes a coroutine; hunt a "
                        f"function that runs it, e.g. hunt(lambda: asyncio.run({name}(...)))")
    clashes = [option for option in given if option in _keywords(fn, args)]
    if clashes:
        option = clashes[0]
        raise TypeError(
            f"hunt({name}, ..., {option}=...): {option!r} is one of hunt's own options and also a parameter of "
            f"{name}, so which one you meant cannot be told (hunt's options: {', '.join(OPTIONS)}). To give it to "
            f"{name}, bind it: hunt(functools.partial({name}, {option}=...), ...); to set hunt's, call {name} "
            f"in a lambda: hunt(lambda: {name}(...), {option}=...)")


def _keywords(fn: Any, args: tuple[Any, ...]) -> set[str]:
    """The parameters of ``fn`` a keyword could still set: not bound by ``args`` or a partial."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to compare
        return set()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = {n for n, p in signature.parameters.items() if p.kind in kinds}
    names -= set(getattr(fn, "keywords", None) or ())  # functools.partial: already given to the function
    try:
        names -= set(signature.bind_partial(*args).arguments)
    except TypeError:  # more arguments than parameters: the call itself will say so
        pass
    return names
