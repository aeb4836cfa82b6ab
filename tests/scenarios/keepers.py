"""Seven tests sharing one process: four keep memory through four different roots, three
allocate and free. Copied into a pytester directory as test_keepers.py by
tests/test_diagnosis.py and by benchmarks/diagnosis_orders.py, and run in several orders."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

PREVIEWS = []
TABLES = []
CALLBACKS = []
ARRAYS = {}


@pytest.mark.memory_budget(rss="10 MB")
def test_frame_slice():
    frame = pd.DataFrame(np.random.default_rng(0).random((400_000, 10)))  # 30.5 MiB
    PREVIEWS.append(frame.iloc[:1])  # a 1-row view pins the whole block


@pytest.mark.memory_budget(rss="10 MB")
def test_arrow_table():
    ids = pa.array(np.arange(4_000_000, dtype="int64"))
    TABLES.append(pa.table({"x": pc.multiply(ids, 2)}))  # 30.5 MiB in Arrow's pool


@pytest.mark.memory_budget(rss="10 MB")
def test_closure():
    data = np.ones(4_000_000)  # 30.5 MiB
    CALLBACKS.append(lambda: float(data.sum()))


@pytest.mark.memory_budget(rss="10 MB")
def test_dict_of_arrays():
    for i in range(4):
        ARRAYS[f"part{i}"] = np.full(1_000_000, i, dtype="float64")  # 4 x 7.6 MiB


@pytest.mark.memory_budget(rss="10 MB")
def test_transient_numpy():
    big = np.ones(8_000_000)  # 61 MiB, freed
    assert big.sum() == 8_000_000


@pytest.mark.memory_budget(rss="10 MB")
def test_groupby_roundtrip():
    frame = pd.DataFrame({"k": np.arange(1_000_000) % 100, "v": np.ones(1_000_000)})
    assert len(frame.groupby("k").v.sum()) == 100


@pytest.mark.memory_budget(rss="10 MB")
def test_arrow_roundtrip():
    table = pa.table({"x": np.arange(1_000_000), "y": np.ones(1_000_000)})
    assert len(table.to_pandas()) == 1_000_000
