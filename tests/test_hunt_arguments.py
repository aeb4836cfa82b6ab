"""hunt()'s arguments are checked before the first call (issue 21; leakhunt/hunted.py).

``hunt(fn, df, threshold=3)`` silently took 3 bytes as hunt's own threshold when ``fn`` has a
``threshold`` parameter, and a generator function "did not leak" although its body never ran.
"""

from __future__ import annotations

import asyncio
import collections
import functools

import pytest

from leakhunt import hunt, memory_budget


def counted(calls: list[object]):
    def process(df: object, threshold: float = 0.5, *, trace: str = "off") -> None:
        calls.append((threshold, trace))
    return process


@pytest.mark.parametrize("option", ["threshold", "trace"])
def test_an_option_that_is_also_the_functions_parameter_is_refused_before_any_call(option: str) -> None:
    calls: list[object] = []
    with pytest.raises(TypeError) as refused:
        hunt(counted(calls), [1], **{option: 3})
    message = str(refused.value)
    assert f"hunt(counted.<locals>.process, ..., {option}=...): {option!r} is one of hunt's own options" in message
    assert f"functools.partial(counted.<locals>.process, {option}=...)" in message  # the way to say either
    assert calls == []


def test_the_ways_the_refusal_names_say_which_was_meant() -> None:
    calls: list[object] = []
    process = counted(calls)
    # the function's threshold: bound first; hunt's threshold is its own
    verdict = hunt(functools.partial(process, threshold=3), [1], threshold="1 MiB", repeat=3, warmup=0, confirm=False)
    assert verdict.threshold == 1024 * 1024 and calls and all(c == (3, "off") for c in calls)
    calls.clear()
    verdict = hunt(lambda: process([1], threshold=5), threshold="2 MiB", repeat=3, warmup=0, confirm=False)
    assert verdict.threshold == 2 * 1024 * 1024 and all(c == (5, "off") for c in calls)
    calls.clear()
    verdict = hunt(process, [1], 7, repeat=3, warmup=0, threshold="1 MiB", confirm=False)  # given positionally
    assert all(c == (7, "off") for c in calls)


def test_an_option_not_given_is_no_clash() -> None:
    calls: list[object] = []
    verdict = hunt(counted(calls), [1], repeat=3, warmup=1)  # its threshold parameter keeps its default
    assert not verdict.leaking and calls[0] == (0.5, "off")


def test_every_option_is_hunts_own() -> None:
    import inspect

    from leakhunt.hunted import OPTIONS

    parameters = inspect.signature(hunt).parameters
    assert set(OPTIONS) == {n for n, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _gen(n: int):
    yield from range(n)


async def _coro() -> None:
    await asyncio.sleep(0)


@pytest.mark.parametrize(("fn", "kind", "way"), [
    (_gen, "a generator function", "collections.deque(_gen(...), maxlen=0)"),
    (functools.partial(_gen, 3), "a generator function", "collections.deque(_gen(...), maxlen=0)"),
    (_coro, "an async function", "asyncio.run(_coro(...))"),
])
def test_a_function_whose_call_runs_none_of_its_body_is_refused(fn: object, kind: str, way: str) -> None:
    with pytest.raises(TypeError, match=rf"is {kind}: .* e\.g\. hunt\(lambda: {way.replace('(', '[(]').replace(')', '[)]')}\)"):
        hunt(fn)


def test_the_way_to_hunt_a_generator_runs_its_body() -> None:
    ran: list[int] = []

    def produce():
        ran.append(1)
        yield 1

    hunt(lambda: collections.deque(produce(), maxlen=0), repeat=3, warmup=0, confirm=False)
    assert len(ran) == 3


def test_the_decorators_hunt_gives_the_function_its_own_keywords() -> None:
    # memory_budget(leak=...) hunted fn(*args, **kwargs) through hunt(**kwargs): a keyword of the
    # function named like one of hunt's options was taken by hunt (confirm=) or refused (trace=)
    seen: list[tuple[object, object]] = []

    @memory_budget(leak="1 MB", repeat=3, warmup=1)
    def step(confirm: object = "default", trace: object = "default") -> None:
        seen.append((confirm, trace))

    step(confirm="mine", trace="mine too")
    assert len(seen) >= 4 and set(seen) == {("mine", "mine too")}
