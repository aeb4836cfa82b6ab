"""census(): what this process's memory is made of (live data by kind, allocator retention)."""

from __future__ import annotations

import pytest

from engine_subprocess import run_scenario

pytest.importorskip("numpy")

MiB = 1024 * 1024


def test_census_puts_arrays_under_numpy_strings_under_the_heap_and_arrow_under_arrow() -> None:
    result = run_scenario(
        """
        import numpy as np, pyarrow as pa, pyarrow.compute as pc
        from leakhunt.census import census
        pc.add(pa.array(np.arange(3)), 1)  # Arrow's first compute call builds 16 MB of Python objects
        before = census(settle=True)
        ARRAYS = [np.ones(2_000_000 // 8) for _ in range(10)]          # 20 MB of numpy
        VIEWS = [a[:10] for a in ARRAYS]                                # views: not counted twice
        TEXT = ["x" * 1000 + str(i) for i in range(10_000)]            # ~10 MB of str
        TABLE = pc.add(pa.array(np.arange(1_000_000)), 1)              # 8 MB in Arrow's pool
        after = census(settle=True)
        managed = census(exclude=[ARRAYS[:5]])
        emit({"numpy": after.numpy - before.numpy, "heap": after.python_heap - before.python_heap,
              "arrow": after.arrow, "excluded": managed.excluded_numpy, "numpy_left": managed.numpy - before.numpy,
              "retention": after.allocator_retention, "unsettled": managed.allocator_retention,
              "file_backed": after.file_backed, "rss": after.rss})
        """
    )
    assert 20_000_000 <= result["numpy"] <= 20_000_000 + 64 * 1024  # (+ small arrays the imports made)
    assert 10 * 10**6 <= result["heap"] <= 14 * 10**6  # the strings, the lists and the views' headers
    assert result["arrow"] == 8_000_000
    assert result["excluded"] == 10_000_000 and 10_000_000 <= result["numpy_left"] <= 10_000_000 + 64 * 1024
    assert result["retention"] is not None and result["retention"] >= 0
    assert result["unsettled"] is None  # not settled: what the allocators keep is unknown
    assert 0 < result["file_backed"] < result["rss"]


def test_census_without_numpy_or_pyarrow_imported() -> None:
    result = run_scenario(
        """
        from leakhunt.census import census
        c = census()
        emit({"numpy": c.numpy, "arrow": c.arrow, "heap": c.python_heap, "mods": [m for m in sys.modules if m in ("numpy", "pyarrow")]})
        """
    )
    assert result["numpy"] == 0 and result["arrow"] is None and result["heap"] > 0
    assert result["mods"] == []  # the census never imports them
