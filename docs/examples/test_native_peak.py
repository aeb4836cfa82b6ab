"""The example of docs/plugin.md's `--leak-trace=native`: run it with
`ARROW_DEFAULT_MEMORY_POOL=system pytest --leak-trace=native docs/examples/test_native_peak.py`."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest


@pytest.mark.memory_budget(peak="100 MB")
def test_daily_totals():
    prices = np.random.default_rng(0).random(5_000_000)  # numpy
    taxed = pc.multiply(pa.array(prices), 1.2)  # Arrow's pool
    ranked = pc.sort_indices(taxed)  # Arrow's pool again: all three alive at the peak
    assert len(ranked) == len(prices)
