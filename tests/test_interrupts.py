"""The library never swallows a KeyboardInterrupt, SystemExit or other BaseException (issue 21).

Ctrl-C, the pytest plugin's SIGTERM (:class:`pytest_leakhunt.signals.SessionTerminated`, a
KeyboardInterrupt) and ``sys.exit()`` must stop the program wherever they land: in a hunt's
warm-up, in its measured windows, in the second call that explains a broken budget. The library
notes an ``Exception`` from the user's callable (a repetition that failed) and lets anything
else through. The plugin's side is in tests/test_faults.py (a SIGTERM inside a repetition).
"""

from __future__ import annotations

import gc

import pytest

from leakhunt import hunt, memory_budget


class _Stop(BaseException):
    """Neither an Exception nor one of Python's own: a library must still not catch it."""


def _raising_on_call(n: int, exc: BaseException, keep: list[bytes] | None = None):
    calls = []

    def fn() -> None:
        calls.append(1)
        if keep is not None:
            keep.append(b"x" * (20 * 2**20))  # resident: over a 5 MB budget
        if len(calls) == n:
            raise exc
    return fn


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3), _Stop()], ids=type)
@pytest.mark.parametrize("call", [2, 5], ids=["warm-up", "window"])
def test_hunt_lets_a_stop_through(exc: BaseException, call: int) -> None:
    frozen = gc.get_freeze_count()
    with pytest.raises(type(exc)):
        hunt(_raising_on_call(call, exc), repeat=4, warmup=3, threshold="1 MB")
    assert gc.get_freeze_count() == frozen  # and the hunt's own state is undone on the way


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3), _Stop()], ids=type)
def test_the_second_call_that_explains_a_budget_lets_a_stop_through(exc: BaseException) -> None:
    keep: list[bytes] = []
    budgeted = memory_budget(rss="5 MB")(_raising_on_call(2, exc, keep))
    with pytest.raises(type(exc)):
        budgeted()  # the first call breaks the budget; the second, explaining it, stops
    assert len(keep) == 2


def test_an_exception_in_the_second_call_is_noted_not_raised() -> None:
    # the other way: a plain exception there is the block's own failure, noted in the explanation
    keep: list[bytes] = []
    budgeted = memory_budget(rss="5 MB")(_raising_on_call(2, ValueError("second time"), keep))
    with pytest.raises(AssertionError) as failure:  # MemoryBudgetExceeded
        budgeted()
    assert "ValueError: second time" in str(failure.value)
