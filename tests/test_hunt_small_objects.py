"""``--leak-hunt`` on a test that leaks 20,000 small objects per call (issue 19, item 9): what
made it faster must not change what it says.

The hunt's first warm-up call runs under a profile function until the test's own code is
entered (:func:`leakhunt.tracing.line_tables_above_user`: CPython 3.11 then keeps the line array
of each of pytest's functions on the way, and tracing an allocation costs less), the traced
heap walk of the explanation runs under one (:func:`leakhunt.tracing.line_tables`);
the data-only heap walk takes untracked containers a batch at a time
(:mod:`leakhunt.heap`). Each run below is a fresh pytest process (tracemalloc and the gc matter);
the same file is hunted once as leakhunt does it and once with both plain calls,
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

tracing.line_tables = tracing.line_tables_above_user = lambda fn, *args, **kwargs: fn(*args, **kwargs)
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


def test_line_tables_above_user_stops_at_the_users_code() -> None:
    from leakhunt import frames

    inside = []

    def users_code() -> None:  # this file is the user's (tests/, not a library's)
        inside.append(sys.getprofile())

    def framework(fn):  # type: ignore[no-untyped-def]
        return fn()

    assert frames.kind(users_code.__code__.co_filename) == frames.USER
    before = sys.getprofile()
    tracing.line_tables_above_user(framework, users_code)
    assert sys.getprofile() is before
    if sys.version_info[:2] == (3, 11) and before is None:
        # the profile function saw this file's first frame entered and ended: the user's code ran
        # unprofiled (framework() is this file's too, so it ended there already)
        assert inside == [None]


def test_the_first_traced_call_is_charged_nothing_for_the_line_arrays() -> None:
    # the arrays are built in a warm-up call, which is not measured: in the confirmation window
    # the first call's traced growth is the same as the next one's (the list LEAKED grows its
    # own array on the fourth call, so only the first two are compared)
    from engine_subprocess import run_scenario

    result = run_scenario("""
        from leakhunt import hunt
        LEAKED = []
        def step():
            LEAKED.append([{"row": i} for i in range(2_000)])
        series = hunt(step, trace=True, warmup=3, repeat=10).confirm_series["traced"]
        emit([series[i + 1] - series[i] for i in range(len(series) - 1)])
    """)
    assert result[0] == result[1] > 400_000, result


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


#: Lists of rows in every shape the fast path takes or refuses, each kept by a module list; the
#: survivors' search is run with the fast path and with it off (leakhunt.leaf_rows.MIN_ROWS),
#: and every figure must be the same.
ROW_SHAPES = """
import leakhunt.attribution as attribution
import leakhunt.leaf_rows as leaf_rows
from leakhunt.attribution import Scope, survivors

SHARED = 10 ** 9 + 7
GLOBAL_VALUES = [f"kept{i}" for i in range(300)]


def shapes():
    keep = []
    keep.append([{"row": i} for i in range(2_000)])                              # constant key, own ints
    keep.append([{f"k{i}": float(i), "s": f"v{i}"} for i in range(500)])       # own keys, floats, strings
    keep.append([{"a": SHARED, "b": None, "c": True} for _ in range(300)])     # shared and singleton values
    keep.append([{"v": GLOBAL_VALUES[i]} for i in range(300)])                 # values held elsewhere too
    keep.append([{"n": {"inner": i}} for i in range(300)])                     # a nested dict: walked one by one
    row = {"same": 1}
    keep.append([row] * 100)                                                    # one row listed twice: one by one
    keep.append([{k: k} for k in (f"x{i}" for i in range(300))])               # a key that is its own value
    keep.append(tuple({"t": i * 1.5} for i in range(300)))                      # a tuple of rows
    keep.append([{1: "int key"} for _ in range(300)])                            # a key that is not a string
    keep.append([{"row": i} for i in range(10)])                                # too few for the fast path
    return keep


KEPT = []
TAKEN = []
_leaf_dicts = attribution.leaf_dicts


def counting(holder, rows, *args):
    out = _leaf_dicts(holder, rows, *args)
    if out is not None:
        TAKEN.append(out[0])
    return out


attribution.leaf_dicts = counting


def figures(fast):
    leaf_rows.MIN_ROWS = 64 if fast else 1 << 60
    scope = Scope(trace=True)
    KEPT.append(shapes())
    found = survivors(scope)
    scope.close()
    KEPT.clear()
    taken = sorted(TAKEN)
    TAKEN.clear()
    return {"found": found.found, "objects": found.objects, "rooted": found.rooted,
            "roots": [(r.root, r.size, r.objects) for r in found.roots], "taken": taken}


emit({"fast": figures(True), "slow": figures(False), "again": figures(True)})
"""


def test_the_row_fast_path_counts_what_the_walk_one_at_a_time_counts() -> None:
    from engine_subprocess import run_scenario

    result = run_scenario(ROW_SHAPES)
    # the lists of plain rows were taken at once; the nested, repeated, int-keyed and short ones not
    assert result["fast"]["taken"] == result["again"]["taken"] == [300, 300, 300, 300, 500, 2_000]
    assert result["slow"]["taken"] == []
    for run in result.values():
        run.pop("taken")
    assert result["fast"] == result["slow"] == result["again"], result
    roots = result["fast"]["roots"]
    assert roots and roots[0][0] == "KEPT (global in __main__)", roots
    # every row of every shape (4,600, the nested one's inner dicts too) and the 11 lists and tuple
    assert roots[0][2] == 4_622



def test_a_snapshot_is_grouped_alike_while_tracing_and_after() -> None:
    # by_traceback groups by the frames tuple while tracemalloc traces (nothing allocated per
    # trace) and by the tuple's id once it has stopped (faster): the groups must be the same
    from engine_subprocess import run_scenario

    result = run_scenario("""
        import tracemalloc
        from leakhunt import tracing
        tracemalloc.start(10)
        KEEP = []
        def rows():
            KEEP.append([{"row": i} for i in range(3_000)])
        def strings():
            KEEP.append([str(i) * 3 for i in range(1_000)])
        for _ in range(3):
            rows()
            strings()
        snapshot = tracemalloc.take_snapshot()
        def grouped():
            return sorted((list(frames), sum(sizes), len(sizes))
                          for frames, sizes in tracing.by_traceback(snapshot).items())
        traced = grouped()
        tracemalloc.stop()
        emit({"traced": traced, "untraced": grouped(),
              "sites": [s.to_dict() for s in tracing.summarise(snapshot, user_only=True)[1]]})
    """)
    assert result["traced"] == result["untraced"]
    assert len(result["untraced"]) >= 2 and result["sites"], result


def test_line_tables_ends_its_profile_function_after_a_while() -> None:
    """A walk over 200,000 objects of an object column paid a Python call per C call under the
    profile function for its whole length (a zoo budget's explanation 14 s -> 20 s): the
    function ends itself once the call has run LINE_TABLE_EVENTS events."""
    import sys

    from leakhunt import tracing

    if sys.version_info[:2] != (3, 11):
        pytest.skip("line_tables profiles on CPython 3.11 only")

    def walk(n: int) -> tuple[bool, bool]:
        early = sys.getprofile() is not None
        for _ in range(n):
            len(())  # one C call: two profile events
        return early, sys.getprofile() is not None

    assert tracing.line_tables(walk, tracing.LINE_TABLE_EVENTS) == (True, False)
    assert tracing.line_tables(walk, 10) == (True, True)
    assert sys.getprofile() is None
