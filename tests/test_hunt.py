"""hunt(): repeat a call, suspect growth that goes on, confirm before calling it a leak."""

from __future__ import annotations

import re

import gc
import json

import pytest

from engine_subprocess import run_scenario
from leakhunt import LeakVerdict, hunt
from leakhunt.hunt import is_suspect, sen_slope

pytest.importorskip("numpy")

KiB = 1024

VERDICT = """
def verdict(v):
    return {"leaking": v.leaking, "suspect": v.suspect, "per_call": v.per_call,
            "accounting": v.accounting, "calls": v.calls, "note": v.cleared_note,
            "series": v.series, "confirm_series": v.confirm_series, "explain": v.explain("step")}
"""


def test_flags_a_200_kib_per_call_leak() -> None:
    result = run_scenario(
        VERDICT,
        """
        import numpy as np
        from leakhunt import hunt
        HOLD = []
        def step():
            HOLD.append(np.ones(200 * 1024 // 8))
        emit(verdict(hunt(step)))
        """
    )
    assert result["leaking"] and result["suspect"]
    assert result["accounting"] == "rss"
    assert 150 * KiB <= result["per_call"] <= 260 * KiB
    assert result["calls"] == 23  # 3 warm-up, 10 measured, 10 to confirm
    assert len(result["series"]["rss"]) == 11 and len(result["confirm_series"]["rss"]) == 11
    assert result["note"] is None
    assert re.match(r"step leaks 200\.\d KiB per call \(threshold 64\.0 KiB\)", result["explain"])


def test_clears_a_10_mb_transient() -> None:
    result = run_scenario(
        VERDICT,
        """
        import numpy as np
        from leakhunt import hunt
        def step():
            return float(np.ones(10_000_000 // 8).sum())   # 10 MB, freed by return
        emit(verdict(hunt(step)))
        """
    )
    assert not result["leaking"] and not result["suspect"]
    assert result["accounting"] is None
    assert result["calls"] == 13  # no suspect, no confirmation window
    assert result["confirm_series"] == {}
    assert result["explain"].startswith("step does not leak")


def test_clears_a_small_bounded_lru_cache_as_warm_up_or_cache() -> None:
    # Twelve entries of 200 KiB: the first window fills the cache (a suspect), the second
    # shows it stopped growing, so confirmation clears it.
    result = run_scenario(
        VERDICT,
        """
        import functools, itertools
        import numpy as np
        from leakhunt import hunt
        @functools.lru_cache(maxsize=12)
        def load(key):
            return np.ones(200 * 1024 // 8)
        keys = itertools.count()
        def step():
            load(next(keys))
        confirmed = verdict(hunt(step))
        load.cache_clear(); keys = itertools.count()
        unconfirmed = verdict(hunt(step, confirm=False))
        emit({"confirmed": confirmed, "unconfirmed": unconfirmed})
        """
    )
    confirmed = result["confirmed"]
    assert not confirmed["leaking"]
    assert confirmed["suspect"]
    assert confirmed["note"].startswith("warm-up or bounded cache")
    assert confirmed["explain"].startswith("step: warm-up or bounded cache")
    # Without the second window the same cache would have been called a leak.
    assert result["unconfirmed"]["leaking"]


def test_small_object_leak_shows_in_the_traced_accounting() -> None:
    result = run_scenario(
        VERDICT,
        """
        from leakhunt import hunt
        from leakhunt.hunt import sen_slope
        HOLD = []
        def step():
            HOLD.append([str(i) for i in range(4_000)])   # ~250 KiB of small objects per call
        v = hunt(step, trace=True)
        import tracemalloc
        out = verdict(v)
        out["traced_slope"] = sen_slope(v.series["traced"])
        out["tracing_after"] = tracemalloc.is_tracing()
        emit(out)
        """
    )
    assert result["leaking"]
    assert "traced" in result["series"]
    assert result["traced_slope"] >= 150 * KiB
    assert result["tracing_after"] is False  # hunt stopped the trace it started


def test_arrow_pool_leak_is_seen_in_the_arrow_accounting() -> None:
    pytest.importorskip("pyarrow")
    result = run_scenario(
        VERDICT,
        """
        import pyarrow as pa
        from leakhunt import hunt
        HOLD = []
        def step():
            HOLD.append(pa.allocate_buffer(200 * 1024))
        emit(verdict(hunt(step)))
        """
    )
    assert result["leaking"]
    assert "arrow" in result["series"]
    steps = [b - a for a, b in zip(result["series"]["arrow"], result["series"]["arrow"][1:])]
    assert all(step >= 200 * KiB for step in steps)


def test_arguments_are_passed_and_results_dropped() -> None:
    seen = []

    def step(a: int, *, b: int) -> list[int]:
        seen.append((a, b))
        return [0] * 10

    verdict = hunt(step, 1, b=2, repeat=3, warmup=1, threshold="10 MB")
    assert isinstance(verdict, LeakVerdict)
    assert seen == [(1, 2)] * 4
    json.dumps(verdict.to_dict())


def test_a_failing_call_propagates_and_restores_gc() -> None:
    calls = []

    def step() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")

    freeze_count = gc.get_freeze_count()
    with pytest.raises(RuntimeError, match="boom"):
        hunt(step, warmup=1, repeat=5)
    assert gc.get_freeze_count() == freeze_count
    assert gc.isenabled()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 0}, "hunt threshold must be > 0 bytes, got 0"),
        ({"threshold": "64 XB"}, "invalid size '64 XB'"),
        ({"repeat": 1}, "hunt repeat must be a whole number >= 2, got 1"),
        ({"warmup": -1}, "hunt warmup must be a whole number >= 0, got -1"),
    ],
)
def test_bad_settings_are_value_errors_quoting_them(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        hunt(lambda: None, **kwargs)  # type: ignore[arg-type]


def test_sen_slope_is_robust_to_one_jump() -> None:
    assert sen_slope([0, 10, 20, 30, 40]) == 10
    assert sen_slope([0, 10, 20, 1000, 40, 50]) == 10
    assert sen_slope([5]) == 0.0


def test_is_suspect_needs_slope_sign_and_end_to_end_growth() -> None:
    steady = [i * 100 for i in range(11)]
    assert is_suspect(steady, threshold=100, noise=10)
    assert not is_suspect(steady, threshold=200, noise=10)  # slope under threshold
    one_jump = [0] * 5 + [5000] * 6
    assert not is_suspect(one_jump, threshold=100, noise=10)  # a single step is not a trend
    assert not is_suspect([0, 100], threshold=50, noise=10)  # too few calls to judge


def test_without_statm_hunt_falls_back_to_plain_rss() -> None:
    # Off Linux there is no anonymous RSS; the hunt must still watch resident memory.
    result = run_scenario(
        VERDICT,
        """
        import numpy as np
        from leakhunt import hunt, measure, probes
        probes._statm = lambda: None
        HOLD = []
        def step():
            HOLD.append(np.ones(200 * 1024 // 8))
        with measure() as m:
            pass
        out = verdict(hunt(step))
        out.update(rss=probes.rss(), anon=probes.rss_anon(), anon_growth=m.rss_anon_growth,
                   rss_growth=m.rss_growth)
        emit(out)
        """,
    )
    assert result["rss"] > 0 and result["anon"] is None
    assert result["anon_growth"] is None and isinstance(result["rss_growth"], int)
    assert result["leaking"] and result["accounting"] == "rss"
