"""measure() and settle(): the figures of a block, and what settling does and leaves alone."""

from __future__ import annotations

import gc
import json

import pytest

from engine_subprocess import run_scenario
from leakhunt import Measurement, measure, settle
from leakhunt.settle import SettleResult

pytest.importorskip("numpy")

MB = 1_000_000


def test_settle_returns_a_settle_result_and_collects_cycles() -> None:
    result = run_scenario(
        """
        import gc
        from leakhunt import settle
        from leakhunt.settle import SettleResult
        gc.disable()
        for _ in range(1000):
            a = []; a.append(a)      # a cycle only the collector frees
        del a
        state = (gc.isenabled(), gc.get_threshold())
        r = settle()
        emit({"type": type(r).__name__, "is_result": isinstance(r, SettleResult),
              "collected": r.collected, "passes": r.passes, "trimmed": r.trimmed,
              "arrow_released": r.arrow_released,
              "state_kept": (gc.isenabled(), gc.get_threshold()) == state})
        """
    )
    assert result["type"] == "SettleResult" and result["is_result"]
    assert result["collected"] >= 1000
    assert 2 <= result["passes"] <= 4  # the last pass freed nothing, or the bound stopped it
    assert result["arrow_released"] is False  # pyarrow is not imported
    assert result["state_kept"]  # settling never turns gc on or changes its thresholds


def test_settle_in_process_and_its_bound() -> None:
    result = settle(max_passes=1)
    assert isinstance(result, SettleResult)
    assert result.passes == 1
    with pytest.raises(ValueError, match="max_passes must be >= 1, got 0"):
        settle(max_passes=0)


def test_settle_releases_the_arrow_pool_when_pyarrow_is_imported() -> None:
    pytest.importorskip("pyarrow")
    result = run_scenario(
        """
        import pyarrow
        from leakhunt import settle
        emit({"arrow_released": settle().arrow_released})
        """
    )
    assert result["arrow_released"] is True


def test_retained_array_shows_in_rss_growth_and_transient_only_in_peak() -> None:
    result = run_scenario(
        """
        import numpy as np
        from leakhunt import measure
        HOLD = []
        with measure() as kept:
            HOLD.append(np.ones(50_000_000 // 8))      # 50 MB, touched, kept
        with measure() as transient:
            tmp = np.ones(200_000_000 // 8)            # 200 MB, freed before the block ends
            del tmp
        emit({name: m.measurement.to_dict() for name, m in (("kept", kept), ("transient", transient))})
        """
    )
    kept, transient = result["kept"], result["transient"]
    assert kept["rss_growth"] >= 45 * MB
    assert kept["peak"] >= 45 * MB
    assert kept["settled"] is True
    assert kept["traced"] is False and kept["traced_growth"] is None  # nobody was tracing
    assert kept["arrow_growth"] is None  # pyarrow not imported
    assert kept["allocator_retention"] >= 0
    assert transient["rss_growth"] < 10 * MB
    assert transient["peak"] >= 190 * MB


def test_the_cheap_path_does_not_settle() -> None:
    result = run_scenario(
        """
        import numpy as np
        from leakhunt import measure
        with measure(settle=False) as m:
            kept = np.ones(30_000_000 // 8)
        emit({"settled": m.settled, "retention": m.allocator_retention, "rss": m.rss_growth})
        """
    )
    assert result["settled"] is False
    assert result["retention"] is None  # only settling can tell what the allocator kept
    assert result["rss"] >= 25 * MB


def test_trace_true_splits_traced_growth_by_domain_and_stops_its_own_trace() -> None:
    result = run_scenario(
        """
        import tracemalloc
        import numpy as np
        from leakhunt import measure
        with measure(trace=True) as m:
            kept = np.ones(40_000_000 // 8)
            words = [str(i) for i in range(100_000)]
        emit({"traced": m.traced_growth, "domains": m.traced_growth_by_domain,
              "traced_peak": m.traced_peak, "still_tracing": tracemalloc.is_tracing()})
        """
    )
    assert result["traced"] >= 40 * MB
    assert result["domains"]["numpy"] >= 40 * MB
    assert 2 * MB < result["domains"]["python"] < 20 * MB
    assert result["traced_peak"] >= result["traced"] - MB
    assert result["still_tracing"] is False


def test_a_users_tracemalloc_is_left_running_and_not_reset() -> None:
    # measure(), memory_budget and hunt: each must leave the user's trace exactly as it was.
    result = run_scenario(
        """
        import tracemalloc
        import numpy as np
        from leakhunt import MemoryBudgetExceeded, hunt, measure, memory_budget
        tracemalloc.start(7)
        before = np.ones(1_000_000)                       # traced before any tool runs
        states = {}
        with measure() as m:
            x = np.ones(1_000_000)
        states["measure"] = (tracemalloc.is_tracing(), tracemalloc.get_traceback_limit())
        with measure(trace=True):
            pass
        states["measure_trace_true"] = (tracemalloc.is_tracing(), tracemalloc.get_traceback_limit())
        with memory_budget(rss="500 MB", traced="500 MB"):
            y = np.ones(1_000)
        try:
            with memory_budget(peak="1 MB", traced="100 MB"):  # peak: no survivor search
                z = np.ones(1_000_000)
                del z
        except MemoryBudgetExceeded as exc:
            states["broken"] = [exc.violations[0].figure, 0]
        states["memory_budget"] = (tracemalloc.is_tracing(), tracemalloc.get_traceback_limit())
        hunt(lambda: None, repeat=3, warmup=1, trace=True)
        states["hunt"] = (tracemalloc.is_tracing(), tracemalloc.get_traceback_limit())
        emit({"states": states, "traced_growth": m.traced_growth,
              "old_trace_kept": tracemalloc.get_object_traceback(before) is not None})
        """
    )
    assert result["states"].pop("broken") == ["peak", 0]  # the explanation ran under the trace
    for tool, state in result["states"].items():
        assert state == [True, 7], tool
    assert result["old_trace_kept"]  # nobody called tracemalloc.clear_traces() or stop()
    assert result["traced_growth"] >= 7 * MB  # the user's trace was used


def test_nested_measure_keeps_the_outer_peak() -> None:
    result = run_scenario(
        """
        import numpy as np
        from leakhunt import measure
        with measure() as outer:
            big = np.ones(150_000_000 // 8)
            del big
            with measure() as inner:           # opening the inner window resets VmHWM
                small = np.ones(10_000_000 // 8)
                del small
        with measure() as outer2:
            with measure() as inner2:          # a peak inside the inner block counts for both
                big = np.ones(120_000_000 // 8)
                del big
        emit({"outer": outer.peak, "inner": inner.peak, "outer2": outer2.peak, "inner2": inner2.peak})
        """
    )
    assert result["outer"] >= 140 * MB
    assert 5 * MB <= result["inner"] < 60 * MB
    assert result["inner2"] >= 110 * MB
    assert result["outer2"] >= 110 * MB


def test_arrow_table_kept_alive_shows_in_arrow_and_not_in_traced() -> None:
    pytest.importorskip("pyarrow")
    result = run_scenario(
        """
        import tracemalloc
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc
        from leakhunt import measure
        source = pa.array(np.arange(12_500_000, dtype=np.int64))  # wraps numpy memory, outside
        pc.add(pa.array([1, 2]), 1)                                # warm up compute kernels
        tracemalloc.start()
        KEEP = []
        with measure() as m:
            KEEP.append(pa.table({"x": pc.add(source, 1)}))         # 100 MB in Arrow's pool
        emit({"arrow": m.arrow_growth, "traced": m.traced_growth, "rss": m.rss_growth,
              "arrow_peak": m.arrow_peak})
        """
    )
    assert result["arrow"] >= 95 * MB
    assert result["arrow_peak"] >= 95 * MB
    assert result["traced"] < 5 * MB  # tracemalloc sees none of Arrow's pool
    assert result["rss"] >= 90 * MB


def test_figures_are_taken_when_the_block_raises() -> None:
    with pytest.raises(ZeroDivisionError):
        with measure(settle=False) as m:
            1 / 0
    assert isinstance(m.measurement, Measurement)
    assert isinstance(m.rss_growth, int)


def test_figures_are_not_ready_inside_the_block() -> None:
    with measure(settle=False) as m:
        with pytest.raises(RuntimeError, match="read m.rss_growth after the with block"):
            m.rss_growth
        assert "still running" in repr(m)
    assert "rss_growth=" in repr(m)


def test_measurement_is_slotted_json_ready_and_names_figures_by_budget_keyword() -> None:
    with measure(settle=False) as m:
        pass
    measurement = m.measurement
    assert measurement is not None
    json.dumps(measurement.to_dict())
    assert measurement.figure("rss") == measurement.rss_growth
    assert measurement.figure("peak") == measurement.peak
    assert measurement.figure("arrow") == measurement.arrow_growth
    assert not hasattr(measurement, "__dict__")
    with pytest.raises(AttributeError):
        measurement.peek = 0  # type: ignore[attr-defined]


def test_children_peak_counts_a_child_alive_in_the_block() -> None:
    result = run_scenario(
        """
        import subprocess
        from leakhunt import measure
        with measure(children=True) as m:
            child = subprocess.Popen(
                [sys.executable, "-c",
                 "import sys; b = b'x' * 60_000_000; print('ready', flush=True); sys.stdin.read()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            child.stdout.readline()
        child.stdin.close(); child.wait()
        emit({"children_peak": m.children_peak, "rss": m.rss_growth})
        """
    )
    assert result["children_peak"] >= 55 * MB
    assert result["rss"] < 20 * MB  # the parent's own RSS does not move when a child allocates


def test_measure_leaves_gc_state_alone() -> None:
    enabled, thresholds = gc.isenabled(), gc.get_threshold()
    with measure():
        pass
    assert (gc.isenabled(), gc.get_threshold()) == (enabled, thresholds)


def test_confirm_rereads_the_end_after_settling_and_keeps_the_start() -> None:
    result = run_scenario(
        """
        import numpy as np
        from leakhunt.measure import Measurer, confirm
        KEEP = []
        m = Measurer(settle=False, trim=True).start()
        KEEP.append(np.ones(40_000_000 // 8))
        junk = [np.ones(1_000_000 // 8) for _ in range(20)]
        del junk
        cheap = m.stop()
        exact = confirm(cheap)
        trimmed = confirm(cheap, collect=False)
        emit({"cheap": cheap.rss_growth, "exact": exact.rss_growth, "settled": exact.settled,
              "same_start": exact.before == cheap.before, "trimmed": trimmed.rss_growth,
              "cheap_settled": cheap.settled})
        """
    )
    assert result["same_start"] and result["settled"] and not result["cheap_settled"]
    assert 35_000_000 < result["exact"] < 50_000_000  # the kept 40 MB, read after settling
    assert 35_000_000 < result["trimmed"] < 50_000_000


@pytest.mark.parametrize("sample", [
    # (t0, t1, rss, anon, rss after, anon after, peak rss, traced, traced peak, traced after,
    #  traced peak after, arrow, arrow max, arrow after, arrow max after)
    (1.0, 1.5, 100, 60, 180, 140, 400, None, None, None, None, None, None, None, None),
    (1.0, 1.25, 300, 200, 120, 40, 250, 10, 50, 30, 90, 0, 64, 128, 256),  # shrank; peak below the start
    (2.0, 2.5, 100, 60, 180, 140, 400, None, None, 30, 90, None, None, 4096, 8192),  # pyarrow imported inside
    (2.0, 2.5, None, None, None, None, None, 5, 5, None, None, None, None, None, None),  # no /proc
])
def test_sample_figures_are_the_figures_of_the_measurement_from_the_sample(sample: tuple) -> None:
    # The report-only path makes its rows with sample_figures; budgets and confirmations with
    # from_sample's Measurement. The two must agree figure for figure.
    from leakhunt.measure import from_sample, sample_figures

    m = from_sample(sample)
    assert sample_figures(sample) == (m.seconds, m.figure("rss"), m.peak, m.figure("traced"), m.arrow_growth)
