"""``--leak-hunt`` on a test that leaks 20,000 small objects per call (issue 19, item 9): what
made it faster must not change what it says.

The confirmation window's first traced call runs under a profile function that does nothing
(:func:`leakhunt.tracing.line_tables`: CPython 3.11 then keeps each code object's line array,
and tracing an allocation costs less), and so does the traced heap walk of the explanation;
the data-only heap walk takes untracked containers a batch at a time
(:mod:`leakhunt.heap`). Each run below is a fresh pytest process (tracemalloc and the gc matter);
the same file is hunted once as leakhunt does it and once with ``line_tables`` a plain call,
and the explanations must name the same root, count and sizes. Timings are in
``benchmarks/explain_speed.py``, not here.
"""

from __future__ import annotations

import re
import sys

import pytest

from leakhunt import tracing

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:memray", "-p", "no:hypothesispytest")

LEAKER = """
LEAKED = []


def leak_objects():
    LEAKED.append([{"row": i} for i in range(20_000)])  # 20,000 small objects per call


def test_leaks_small_objects():
    leak_objects()
"""

#: leakhunt without the line-table priming: every call plain (the explanation to compare with)
PLAIN_CALLS = """
from leakhunt import tracing

tracing.line_tables = lambda fn, *args, **kwargs: fn(*args, **kwargs)
"""


def _explanation(pytester: pytest.Pytester) -> list[str]:
    result = pytester.runpytest_subprocess(*QUIET, "--leak-hunt")
    result.assert_outcomes(failed=1)
    lines = result.stdout.lines
    keep = re.compile(r"\s*(LEAKED .* keeps|LEAKED .* ->|\d+\.\d MiB\s+test_leaker\.py:|objects that grew|"
                      r"\(survivors of)")
    return [line.strip() for line in lines if keep.match(line)]


def test_the_hunt_names_leaked_and_every_object_the_window_kept(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leaker=LEAKER)
    shown = _explanation(pytester)
    text = "\n".join(shown)
    # ten calls of the confirmation window: 10 lists of 20,000 dicts each
    assert re.search(r"^LEAKED \(global in test_leaker\) keeps 200,010 objects, 4\d\.\d MiB:$", text, re.M), text
    assert re.search(r"^4\d\.\d MiB\s+test_leaker\.py:5 \(LEAKED\.append", text, re.M), text
    assert "(survivors of the 10 calls of the confirmation window)" in shown

    # the same hunt without the priming says the same (what is compared: root, count, sizes, sites)
    pytester.makeconftest(PLAIN_CALLS)
    assert _explanation(pytester) == shown


def test_line_tables_calls_through_and_restores_no_profiler() -> None:
    seen = []

    def body(a: int, *, b: int) -> int:
        seen.append(sys.getprofile())
        return a + b

    before = sys.getprofile()
    assert tracing.line_tables(body, 1, b=2) == 3
    assert sys.getprofile() is before
    if sys.version_info[:2] == (3, 11) and before is None:
        assert seen[0] is not None  # profiled while it ran
    else:
        assert seen[0] is before


def test_line_tables_leaves_a_users_profiler_alone() -> None:
    calls = []

    def users_profiler(frame, event, arg):  # type: ignore[no-untyped-def]
        calls.append(event)

    before = sys.getprofile()
    sys.setprofile(users_profiler)
    try:
        seen = []
        tracing.line_tables(lambda: seen.append(sys.getprofile()))
        assert seen == [users_profiler]
        assert sys.getprofile() is users_profiler
    finally:
        sys.setprofile(before)
    assert calls  # it kept seeing the calls


def test_line_tables_restores_after_an_exception() -> None:
    before = sys.getprofile()

    def boom() -> None:
        raise ValueError("from the block")

    with pytest.raises(ValueError, match="from the block"):
        tracing.line_tables(boom)
    assert sys.getprofile() is before
