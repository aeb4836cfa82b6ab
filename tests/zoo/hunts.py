"""Reproducers run under ``pytest --leak-hunt``: per-call leaks from real reports, and their
not-a-leak twins. tests/test_zoo.py copies this file into a pytester directory as
test_zoo_hunts.py; tests/zoo/catalogue.py says what is true of each test."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

VIEWS = []
TABLES = []
_IMPORT_TIME_ARRAY = pa.array(np.arange(250_000, dtype="int64"))  # as big as each kept table


def test_numpy_10273_slices_keep_their_arrays():
    """numpy/numpy#10273: a list of 10-element slices keeps every array they were cut from."""
    a = np.random.default_rng(0).random(100_000)  # 781 KiB
    VIEWS.append(a[:10])


def test_numpy_10273_fixed_with_a_copy():
    """numpy/numpy#10273, as its maintainers say: np.array(a[:10]) keeps 80 bytes."""
    a = np.random.default_rng(0).random(100_000)
    VIEWS.append(np.array(a[:10]))


def test_pandas_54352_copy_does_not_leak():
    """pandas-dev/pandas#54352: DataFrame.copy() in a loop (fixed by pandas-dev/pandas#55008)."""
    df = pd.DataFrame(np.random.default_rng(0).random((1000, 20)))
    for _ in range(200):
        df.copy()


def test_ten_tables_in_a_window():
    """Issue 19, item 1: a table kept per call, beside an Arrow array of its size made at import."""
    ids = pa.array(np.arange(250_000, dtype="int64"))
    TABLES.append(pa.table({"x": pc.multiply(ids, 2)}))
