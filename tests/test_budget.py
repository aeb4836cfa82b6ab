"""memory_budget as context manager and decorator, its errors, and the failure explanation."""

from __future__ import annotations

import asyncio
import json
import pickle
import re
from pathlib import Path

import pytest

from engine_subprocess import run_scenario
from leakhunt import Budget, MemoryBudgetExceeded, Violation, measure, memory_budget
from leakhunt import guard as guard_module
from leakhunt.units import ACCEPTED_UNITS

MB = 1_000_000


def test_a_retained_50_mb_array_breaks_rss_20_mb() -> None:
    pytest.importorskip("numpy")
    result = run_scenario(
        """
        import numpy as np
        from leakhunt import MemoryBudgetExceeded, memory_budget
        HOLD = []
        try:
            with memory_budget(rss="20 MB"):
                HOLD.append(np.ones(50_000_000 // 8))
        except MemoryBudgetExceeded as exc:
            emit({"is_assertion": isinstance(exc, AssertionError), "message": str(exc),
                  "violations": [[v.figure, v.value, v.limit] for v in exc.violations],
                  "rss_growth": exc.measurement.figure("rss")})
        else:
            emit({"raised": False})
        """
    )
    assert result.get("raised", True)
    assert result["is_assertion"]
    [(figure, value, limit)] = result["violations"]
    assert (figure, limit) == ("rss", 20 * MB)
    assert value >= 45 * MB and value == result["rss_growth"]
    message = result["message"]
    assert message.startswith("the block broke its memory budget")
    assert "(budget 20 MB = 19.1 MiB)" in message  # the user's spelling beside the binary figure
    assert "HOLD (global in __main__) -> list[0] -> ndarray 47.7 MiB" in message
    assert "fix hint:" in message


def test_a_200_mb_transient_passes_rss_20_mb_and_breaks_peak_50_mb() -> None:
    pytest.importorskip("numpy")
    result = run_scenario(
        """
        import numpy as np
        from leakhunt import MemoryBudgetExceeded, memory_budget
        def transient():
            tmp = np.ones(200_000_000 // 8)
            return float(tmp[0])
        with memory_budget(rss="20 MB") as ok:
            transient()
        try:
            with memory_budget(rss="20 MB", peak="50 MB"):
                transient()
        except MemoryBudgetExceeded as exc:
            emit({"ok_rss": ok.measurement.rss_growth, "message": str(exc),
                  "violations": [[v.figure, v.value, v.limit] for v in exc.violations]})
        else:
            emit({"raised": False})
        """
    )
    assert result.get("raised", True)
    assert result["ok_rss"] < 20 * MB
    [(figure, value, limit)] = result["violations"]  # peak only: rss stayed in budget
    assert (figure, limit) == ("peak", 50 * MB)
    assert value >= 190 * MB
    assert "(budget 50 MB = 47.7 MiB)" in result["message"]
    assert "process in chunks or stream" in result["message"]


HOLD_SLICE = """
import numpy as np
import pandas as pd
from leakhunt import MemoryBudgetExceeded, memory_budget
{setup}
HOLD = []
def daily_means():
    frame = pd.DataFrame(np.ones((1_250_000, 10)), copy=False)   # 100 MB in one block
    HOLD.append(frame.iloc[:1])                       # a 1-row view of the whole block
try:
    with memory_budget({budget}):
        daily_means()
except MemoryBudgetExceeded as exc:
    emit({{"message": str(exc), "figures": [v.figure for v in exc.violations]}})
else:
    emit({{"raised": False}})
"""


def test_hold_of_a_frame_slice_explanation_names_hold_and_the_95_mib_buffer() -> None:
    pytest.importorskip("pandas")
    result = run_scenario(HOLD_SLICE.format(setup="", budget='rss="20 MB"'))
    assert result.get("raised", True)
    message = result["message"]
    assert result["figures"] == ["rss"]
    assert ("HOLD (global in __main__) -> list[0] -> DataFrame (1 row x 10 cols) -> block values (view)"
            " -> .base ndarray 95.4 MiB") in message
    assert "store .copy() or plain values" in message
    # a with block cannot be called again to explain it: it is traced from the start
    assert "biggest allocation sites alive (traced):" in message


def test_traced_explanation_splits_where_it_lives_and_names_the_allocating_line(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    script = tmp_path / "batch_job.py"
    result = run_scenario(
        HOLD_SLICE.format(setup="import tracemalloc; tracemalloc.start(10)", budget='rss="20 MB", traced="20 MB"'),
        script=script,
    )
    message = result["message"]
    assert sorted(result["figures"]) == ["rss", "traced"]
    assert "where it lives: numpy buffers 95.4 MiB" in message
    assert "HOLD (global in __main__) -> list[0]" in message
    # The innermost line of the user's own code, not the outermost caller.
    line = script.read_text().splitlines().index(
        "    frame = pd.DataFrame(np.ones((1_250_000, 10)), copy=False)   # 100 MB in one block") + 1
    assert f"allocated at batch_job.py:{line} (frame = pd.DataFrame(np.ones((1_250_000, 10)), copy=False)" in message
    assert "biggest allocation sites alive (traced):" in message


def test_arrow_budget_names_the_arrow_pool() -> None:
    pytest.importorskip("pyarrow")
    result = run_scenario(
        """
        import pyarrow as pa
        from leakhunt import MemoryBudgetExceeded, memory_budget
        KEEP = []
        try:
            with memory_budget(arrow="20 MB"):
                KEEP.append(pa.allocate_buffer(60_000_000))
        except MemoryBudgetExceeded as exc:
            emit({"message": str(exc), "figures": [v.figure for v in exc.violations]})
        """
    )
    assert result["figures"] == ["arrow"]
    assert "Arrow pool 57.2 MiB" in result["message"]
    assert "KEEP (global in __main__) -> list[0] -> pyarrow Buffer 57.2 MiB" in result["message"]


def test_a_block_that_raises_is_not_blamed_for_its_memory() -> None:
    pytest.importorskip("numpy")
    result = run_scenario(
        """
        import numpy as np
        from leakhunt import memory_budget
        HOLD = []
        try:
            with memory_budget(rss="1 MB") as budget:
                HOLD.append(np.ones(30_000_000 // 8))
                raise KeyError("the block's own failure")
        except Exception as exc:
            emit({"type": type(exc).__name__, "measured": budget.measurement.rss_growth})
        """
    )
    assert result["type"] == "KeyError"
    assert result["measured"] >= 25 * MB


def test_sync_decorator_keeps_the_function_and_breaks_on_growth() -> None:
    pytest.importorskip("numpy")
    result = run_scenario(
        """
        import numpy as np
        from leakhunt import MemoryBudgetExceeded, memory_budget
        HOLD = []
        @memory_budget(rss="20 MB")
        def fine(n):
            "Docstring kept."
            return n * 2
        @memory_budget(rss="20 MB")
        def leaky():
            HOLD.append(np.ones(50_000_000 // 8))
        out = {"value": fine(21), "name": fine.__name__, "doc": fine.__doc__,
               "budget": fine.__leakhunt_budget__.rss}
        try:
            leaky()
        except MemoryBudgetExceeded as exc:
            out["first_line"] = str(exc).splitlines()[0]
        emit(out)
        """
    )
    assert result["value"] == 42
    assert (result["name"], result["doc"], result["budget"]) == ("fine", "Docstring kept.", 20 * MB)
    assert result["first_line"] == "leaky broke its memory budget"


def test_async_decorator_measures_the_coroutine() -> None:
    pytest.importorskip("numpy")
    result = run_scenario(
        """
        import asyncio, inspect
        import numpy as np
        from leakhunt import MemoryBudgetExceeded, memory_budget
        HOLD = []
        @memory_budget(rss="20 MB")
        async def fine():
            await asyncio.sleep(0)
            return "done"
        @memory_budget(rss="20 MB")
        async def leaky():
            await asyncio.sleep(0)
            HOLD.append(np.ones(50_000_000 // 8))
        out = {"is_coroutine_function": inspect.iscoroutinefunction(leaky), "value": asyncio.run(fine())}
        try:
            asyncio.run(leaky())
        except MemoryBudgetExceeded as exc:
            out["figures"] = [v.figure for v in exc.violations]
            out["first_line"] = str(exc).splitlines()[0]
        emit(out)
        """
    )
    assert result["is_coroutine_function"]
    assert result["value"] == "done"
    assert result["figures"] == ["rss"]
    assert result["first_line"] == "leaky broke its memory budget"


def test_leak_decorator_repeats_and_fails_a_per_call_leak() -> None:
    pytest.importorskip("numpy")
    result = run_scenario(
        """
        import numpy as np
        from leakhunt import MemoryBudgetExceeded, memory_budget
        HOLD = []
        calls = {"leaky": 0, "clean": 0}
        @memory_budget(leak="64 KiB", repeat=10)
        def leaky():
            calls["leaky"] += 1
            HOLD.append(np.ones(200 * 1024 // 8))
        @memory_budget(leak="64 KiB", repeat=10)
        def clean():
            calls["clean"] += 1
            return np.ones(10_000_000 // 8).sum()
        out = {}
        try:
            leaky()
        except MemoryBudgetExceeded as exc:
            v = exc.violations[0]
            out.update(figure=v.figure, value=v.value, limit=v.limit,
                       measured=exc.measurement is not None and exc.measurement.seconds > 0, message=str(exc))
        clean()
        out["calls"] = calls
        emit(out)
        """
    )
    assert result["figure"] == "leak"
    assert 150 * 1024 <= result["value"] <= 260 * 1024
    assert result["limit"] == 64 * 1024
    assert result["measured"] is True  # the first call's figures ride along with the hunt's verdict
    assert re.search(r"leaky leaks 200\.\d KiB per call", result["message"])
    # what the confirmation window's ten calls left alive, grouped by root: no extra call
    assert "HOLD (global in __main__) keeps 10 buffers, 2.0 MiB" in result["message"]
    assert result["calls"]["leaky"] == 23  # 3 warm-up + 10 + 10 to confirm
    assert result["calls"]["clean"] == 13  # no suspect: no confirmation window


def test_leak_on_the_context_manager_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"memory_budget\(leak=\.\.\.\) repeats a function, so it works only as a decorator"):
        with memory_budget(leak="64 KiB"):
            pass


def test_leak_on_an_async_function_is_a_type_error_naming_it() -> None:
    async def step() -> None:
        pass

    with pytest.raises(TypeError, match="step: memory_budget.leak=.... cannot repeat an async function"):
        memory_budget(leak="64 KiB")(step)


def test_unknown_keyword_is_a_type_error_listing_the_accepted_ones() -> None:
    with pytest.raises(TypeError) as info:
        memory_budget(rsss="20 MB")  # type: ignore[call-arg]
    message = str(info.value)
    assert "'rsss'" in message
    assert "rss, peak, traced, arrow, children, file, leak, repeat, warmup" in message


@pytest.mark.parametrize("bad", ["20 XB", "twenty", "-1 MB", 2.5])
def test_bad_size_is_a_value_error_quoting_it_and_listing_units(bad: object) -> None:
    with pytest.raises(ValueError) as info:
        memory_budget(rss=bad)  # type: ignore[arg-type]
    message = str(info.value)
    assert f"rss={bad!r}" in message
    assert ACCEPTED_UNITS in message


@pytest.mark.parametrize(("key", "value"), [("repeat", 1), ("repeat", "10"), ("warmup", -1), ("repeat", True)])
def test_bad_repeat_or_warmup_is_a_value_error(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"{key}={value!r} is not valid: expected a whole number"):
        memory_budget(leak="64 KiB", **{key: value})  # type: ignore[arg-type]


def test_measured_elsewhere_makes_the_decorator_only_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_measuring(self: object) -> None:
        raise AssertionError("measured twice")

    monkeypatch.setattr(guard_module.Block, "start", no_measuring)

    @memory_budget(rss="1 MB")
    def step() -> str:
        return "called"

    async def astep() -> str:
        return "called"

    wrapped = memory_budget(rss="1 MB")(astep)
    with guard_module.measured_elsewhere():
        assert step() == "called"
        assert asyncio.run(wrapped()) == "called"
    with guard_module.measured_elsewhere(step):  # only this one: the caller measures it
        assert step() == "called"
    with guard_module.measured_elsewhere(wrapped), pytest.raises(AssertionError, match="measured twice"):
        step()  # another decorated function keeps its own budget


def test_budget_from_kwargs_and_spec() -> None:
    budget = Budget.from_kwargs(rss="50 MB", peak=1024, leak="64KiB", repeat=5)
    assert budget == Budget(rss=50 * MB, peak=1024, leak=65_536, repeat=5)
    assert Budget.from_spec("rss=50MB, peak=1GB,leak=1MB,repeat=4") == Budget(rss=50 * MB, peak=10**9, leak=MB,
                                                                             repeat=4)
    with pytest.raises(ValueError, match=r"repeat=4 only applies to leak hunting: give leak=SIZE"):
        Budget.from_spec("rss=50MB,repeat=4")
    assert budget.limits() == {"rss": 50 * MB, "peak": 1024}
    # each limit as the user wrote it beside the binary figure; bytes and binary spellings read as shown
    assert budget.describe() == "rss=50 MB = 47.7 MiB, peak=1.0 KiB, leak=64.0 KiB/call (repeat=5, warmup=3)"
    assert Budget(rss=50 * MB).describe() == "rss=47.7 MiB"
    assert Budget().is_empty and not budget.is_empty
    assert Budget(rss=1).merged_over(Budget(rss=2, peak=3)) == Budget(rss=1, peak=3)
    json.dumps(budget.to_dict())


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "empty memory budget ''"),
        ("rss", "'rss' is not KEY=SIZE"),
        ("rss=1MB,rss=2MB", "'rss' is given twice"),
        ("size=1MB", "unknown memory budget keyword 'size'; accepted keywords: rss, peak"),
        ("rss=1XB", "rss='1XB' is not a valid size"),
    ],
)
def test_budget_spec_errors_quote_the_spec(spec: str, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        Budget.from_spec(spec, where="test_x")
    assert str(info.value).startswith("test_x: ")
    assert fragment in str(info.value)


def test_exception_type_and_violation_text() -> None:
    assert issubclass(MemoryBudgetExceeded, AssertionError)
    assert MemoryBudgetExceeded.__module__ == "leakhunt"
    exc = MemoryBudgetExceeded("text", None, [])
    assert (str(exc), exc.measurement, exc.violations) == ("text", None, [])
    assert str(Violation("rss", 50 * MB, 20 * MB)) == "settled anonymous RSS growth 47.7 MiB > budget 19.1 MiB"


def test_the_exception_survives_pickling_as_a_process_pool_sends_it() -> None:
    with measure(settle=False) as m:
        pass
    exc = MemoryBudgetExceeded("explanation", m.measurement, [Violation("rss", 2, 1)])
    back = pickle.loads(pickle.dumps(exc))
    assert str(back) == "explanation"
    assert back.violations == exc.violations
    assert back.measurement == exc.measurement


def test_a_traced_budget_keeps_tracing_through_its_explanation(tmp_path: Path) -> None:
    # tracemalloc is off: the budget turns it on for the block and for the explanation (which
    # names the allocating line), then off again.
    pytest.importorskip("numpy")
    script = tmp_path / "prices.py"
    result = run_scenario(
        """
        import tracemalloc
        import numpy as np
        from leakhunt import MemoryBudgetExceeded, memory_budget
        HOLD = []
        def load_prices():
            return np.ones(30_000_000 // 8)
        try:
            with memory_budget(traced="10 MB"):
                HOLD.append(load_prices())
        except MemoryBudgetExceeded as exc:
            emit({"message": str(exc), "tracing_after": tracemalloc.is_tracing()})
        """,
        script=script,
    )
    line = script.read_text().splitlines().index("    return np.ones(30_000_000 // 8)") + 1
    assert f"allocated at prices.py:{line} (return np.ones(30_000_000 // 8))" in result["message"]
    assert "biggest allocation sites alive (traced):" in result["message"]
    assert "<frozen" not in result["message"]
    assert result["tracing_after"] is False


def test_a_leak_only_decorator_returns_the_functions_result() -> None:
    calls = []

    @memory_budget(leak="10 MB", repeat=2, warmup=1)
    def step() -> str:
        calls.append(1)
        return "result"

    assert step() == "result"
    assert len(calls) == 3  # the warm-up call (whose result is returned) and 2 measured calls


def test_fix_hints_match_the_retention_pattern() -> None:
    pytest.importorskip("pandas")
    result = run_scenario(
        """
        import functools
        import numpy as np
        import pandas as pd
        from leakhunt import MemoryBudgetExceeded, memory_budget
        GROUPS = []
        @functools.lru_cache(maxsize=2)
        def load(day):
            return np.ones(40_000_000 // 8)
        hints = {}
        for name, work in [
            ("groupby", lambda: GROUPS.append(pd.DataFrame(np.ones((500_000, 10)), copy=False).groupby(0))),
            ("cache", lambda: load("monday")),
        ]:
            try:
                with memory_budget(rss="20 MB"):
                    work()
            except MemoryBudgetExceeded as exc:
                hints[name] = str(exc).splitlines()[-1]
            GROUPS.clear()
        emit(hints)
        """
    )
    assert result["groupby"] == ("  fix hint: a GroupBy object holds its whole frame; keep the aggregated result, "
                                 "not the GroupBy")
    assert result["cache"] == "  fix hint: a cache holds big values; bound it (maxsize) or cache something smaller"


def test_children_budget_blames_the_children_not_this_process() -> None:
    result = run_scenario(
        """
        import subprocess
        from leakhunt import MemoryBudgetExceeded, memory_budget
        try:
            with memory_budget(children="20 MB"):
                child = subprocess.Popen(
                    [sys.executable, "-c",
                     "import sys; b = b'x' * 60_000_000; print('ready', flush=True); sys.stdin.read()"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                child.stdout.readline()
        except MemoryBudgetExceeded as exc:
            emit({"message": str(exc), "figures": [v.figure for v in exc.violations]})
        child.stdin.close(); child.wait()
        """
    )
    assert result["figures"] == ["children"]
    assert "children peak" in result["message"] and "(budget 20 MB = 19.1 MiB)" in result["message"]
    assert "still alive because" not in result["message"]  # nothing in this process to look for
    assert "fix hint: child processes hold the memory" in result["message"]


THREADED_BLOCKS = """
import threading
import numpy as np
from leakhunt import MemoryBudgetExceeded, memory_budget

KEPT = []
meet = threading.Barrier(2)
out = {{}}

def task(name):
    try:
        with memory_budget(rss="10 MB"):
            KEPT.append(np.ones({n} // 8))
            meet.wait(timeout=30)  # both blocks are open at once
            meet.wait(timeout=30)
        out[name] = "passed"
    except MemoryBudgetExceeded as exc:
        out[name] = str(exc)
    except BaseException:  # anything else is the test's failure: said, not lost with the thread
        import traceback
        out[name] = "error: " + traceback.format_exc()

threads = [threading.Thread(target=task, args=(f"t{{i}}",), name=f"pipeline-{{i}}") for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
emit(out)
"""


@pytest.mark.parametrize(("kept", "fails"), [(32_000_000, True), (1_000_000, False)])
def test_blocks_in_concurrent_threads_hold_the_total_and_say_so(kept: int, fails: bool) -> None:
    # issue 21: two pipeline tasks in threads, each under memory_budget(rss="10 MB") and each
    # keeping 30.5 MiB, both passed (each counted the other, then left it out as another
    # thread's). Resident memory cannot be split between threads: both blocks are held to the
    # total (fail safe) and say so; the other way, two small blocks pass.
    result = run_scenario(THREADED_BLOCKS.format(n=kept))
    for name in ("t0", "t1"):
        if fails:
            assert result[name] != "passed"
            assert "rss grew" in result[name] and "other blocks ran at the same time (in pipeline-" in result[name]
        else:
            assert result[name] == "passed", result[name]



_SAMPLED = """
from leakhunt import MemoryBudgetExceeded, memory_budget

KEEP = []

@memory_budget(rss="5 MB")
def step():
    made = [{{"i": i, "s": str(i)}} for i in range(300_000)]  # about 80 MiB of small dicts
    KEEP.extend(made[::{every}])  # straight into an older list: no new container holds them

try:
    step()
    emit({{"passed": True}})
except MemoryBudgetExceeded as exc:
    emit({{"passed": False, "text": str(exc)}})
"""


def _explained(text: str) -> int:
    return int(re.search(r"(\d+)% of [^:]* explained", text).group(1))


@pytest.mark.parametrize(("every", "fails"), [(10, True), (100, False)])
def test_a_sample_kept_from_many_small_objects(every: int, fails: bool) -> None:
    """Keeping a sample of a big batch of small dicts pins most of pymalloc's arenas: the first
    call keeps ~80 MiB, nearly all of it free memory Python's allocator can never give back.
    Keeping one in ten (8 MiB a call) breaks `rss="5 MB"`: the explanation names that memory
    (not "not explained"), the list the dicts went into (untracked dicts put straight into an
    older list: no new container leads to them) and the allocator's hint. Keeping one in a
    hundred (~1 MiB a call) is one-time: the traced second call's kept memory is read after its
    trace stopped - the freed trace tables tracemalloc leaves in malloc's heap (~11 MiB, which
    failed it as "a second call kept 12 MiB too") are leakhunt's, not the block's."""
    from leakhunt.hints import ALLOCATOR_KEPT

    result = run_scenario(_SAMPLED.format(every=every))
    assert result["passed"] is not fails, result.get("text")
    if fails:
        text = result["text"]
        assert "KEEP (global in __main__) keeps 30,000 objects" in text, text
        assert "freed, kept by Python's allocator" in text and _explained(text) >= 90, text
        assert f"fix hint: {ALLOCATOR_KEPT}" in text, text


def test_a_kept_array_is_not_the_allocators_memory() -> None:
    """The other way: an array kept per call is what the roots hold, and its hint is the list's."""
    pytest.importorskip("numpy")
    from leakhunt.hints import HINTS

    result = run_scenario(
        """
        import numpy as np
        from leakhunt import MemoryBudgetExceeded, memory_budget
        KEEP = []

        @memory_budget(rss="5 MB")
        def step():
            KEEP.append(np.ones(40_000_000 // 8))

        try:
            step()
        except MemoryBudgetExceeded as exc:
            emit({"text": str(exc)})
        """
    )
    text = result["text"]
    assert f"fix hint: {HINTS['list']}" in text and "KEEP (global in __main__) keeps 1 buffer" in text, text
    assert _explained(text) >= 90, text


def test_strings_put_into_an_older_list_are_found() -> None:
    """Untracked objects (strings) the block put straight into a list made before it: the list
    is named with what it keeps, not "no buffer this block created is still alive"."""
    result = run_scenario(
        """
        from leakhunt import MemoryBudgetExceeded, memory_budget
        LOG = []

        @memory_budget(rss="2 MB", traced="2 MB")
        def step():
            LOG.extend(f"row {i} of the day's extract, kept by mistake" for i in range(60_000))

        try:
            step()
        except MemoryBudgetExceeded as exc:
            emit({"text": str(exc)})
        """
    )
    assert "LOG (global in __main__) keeps 60,000 objects" in result["text"], result["text"]


TRACE_STOPPED_MEANWHILE = """
import threading, tracemalloc
from leakhunt import attribution

idle = threading.Event()
older = threading.Thread(target=idle.wait, name="older")  # a thread older than the block
older.start()
scope = attribution.Scope(trace=True, freeze=False, children=False)
assert scope.fresh and scope.threads


def spans_then_trace_gone():
    # another thread's block, which started leakhunt's one trace, ends right here: after this
    # block's check that it traces, before its snapshot
    tracemalloc.stop()
    return (("older.py", 1, 99),)


scope.foreign_spans = spans_then_trace_gone
try:
    emit({"read": list(scope.foreign_traced(at_start=True))})
except RuntimeError as exc:
    emit({"error": str(exc)})
finally:
    idle.set()
    scope.close()
"""


def test_a_trace_stopped_by_another_threads_block_is_read_as_no_trace() -> None:
    # the fresh-clone CI once lost a block's outcome in a thread (test above): two blocks in
    # threads share leakhunt's one trace; the first one's end stopped it between the second's
    # check and its snapshot, and the second block's end raised RuntimeError. The other way
    # (the trace still on) is every other threaded test of this file.
    assert run_scenario(TRACE_STOPPED_MEANWHILE) == {"read": [0, None]}
