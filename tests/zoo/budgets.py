"""Reproducers of real leak reports (pandas, pyarrow, CPython) and of issues 19 and 21, each a test
with a budget. tests/test_zoo.py copies this file into a pytester directory as
test_zoo_budgets.py and runs it in several orders; benchmarks/zoo.py runs each test alone. Each
docstring names its report; tests/zoo/catalogue.py says what is true of each test and what
leakhunt must say of it."""

import ctypes
import logging.handlers
import functools
import threading
import weakref

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

KEPT_SERIES = []
SUBSETS = []
TABLES = []
LAST_ERROR = {}
FINALIZERS = []
LOCAL = threading.local()
_IMPORT_TIME_ARRAY = pa.array(np.arange(250_000, dtype="int64"))  # as big as each kept table


class Record:
    def __init__(self, value):
        self.__value = value


# 4 MB: the one object a copy keeps can pin a 1 MiB arena of pymalloc's or two (after other
# tests freed theirs); the slice keeps 19 MiB. 2,000 objects of 10 KB each rather than 200,000
# small ones: as many bytes, and objects that no longer slow every later test's explanation.
@pytest.mark.memory_budget(rss="4 MB")
def test_pandas_60640_object_series_slice():
    """pandas-dev/pandas#60640: a 1-row slice of a Series of 2,000 objects pins them all."""
    series = pd.Series([Record(bytes(10_000)) for _ in range(2_000)])
    series = series[-1:]
    KEPT_SERIES.append(series)


@pytest.mark.memory_budget(rss="4 MB")
def test_pandas_60640_fixed_with_copy():
    """pandas-dev/pandas#60640, as its reporter expected: a copy keeps one object."""
    series = pd.Series([Record(bytes(10_000)) for _ in range(2_000)])
    KEPT_SERIES.append(series[-1:].copy())


@pytest.mark.memory_budget(rss="8 MB")
def test_pandas_44983_copy_in_a_loop():
    """pandas-dev/pandas#44983: DataFrame.copy() 10,000 times keeps nothing."""
    df = pd.DataFrame(data={"col": [0] * 1000})
    for _ in range(10_000):
        df.copy()


class Model:
    def __init__(self):
        self.weights = np.ones(500_000)  # 3.8 MiB

    @functools.lru_cache(maxsize=None)
    def score(self, x):
        return float(self.weights.sum()) * x


@pytest.mark.memory_budget(rss="2 MB")
def test_cpython_102618_method_cache_keeps_self():
    """python/cpython#102618: a cache on a method keeps every instance it was called on."""
    for _ in range(2):
        Model().score(2)


def load_batch():
    rows = np.ones(1_000_000)  # 7.6 MiB, a local of the frame that raises
    raise ValueError(f"bad batch of {len(rows)} rows")


@pytest.mark.memory_budget(rss="2 MB")
def test_ipython_11572_stored_exception():
    """ipython/ipython#11572: a stored exception keeps its traceback's frames and their locals."""
    try:
        load_batch()
    except ValueError as exc:
        LAST_ERROR["load"] = exc


@pytest.mark.memory_budget(rss="8 MB")
def test_arrow_36100_from_pylist_memory_given_back():
    """apache/arrow#36100: from_pylist's memory is given back to the allocator: not a leak."""
    record = {f"column_{i}": "abcdefghijklmnopqrstuvwxyz"[: 10 + i] for i in range(15)}
    for _ in range(5):
        pa.Table.from_pylist([record] * 50_000)


@pytest.mark.memory_budget(rss="1 MB")
def test_arrow_table_kept_beside_an_equal_one():
    """Issue 19, item 1: the kept table is named, though an Arrow array of its size exists."""
    ids = pa.array(np.arange(250_000, dtype="int64"))
    TABLES.append(pa.table({"x": pc.multiply(ids, 2)}))


@pytest.mark.memory_budget(rss="1 MB")
def test_arrow_table_not_kept():
    """Issue 19, item 1, the other way: the same table, dropped."""
    ids = pa.array(np.arange(250_000, dtype="int64"))
    assert pa.table({"x": pc.multiply(ids, 2)}).num_rows == 250_000


libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
_NATIVE = {}


def warm_up_native_once():
    if "buf" not in _NATIVE:  # one-time native initialisation, 8 MB, first call only
        block = libc.malloc(8_000_000)
        libc.memset(block, 1, 8_000_000)
        _NATIVE["buf"] = block


@pytest.mark.memory_budget(rss="1 MB")
def test_one_time_native_initialisation():
    """Issue 19, item 5: a one-time native cost passes; the traced call's tables are not the test's."""
    warm_up_native_once()


@pytest.mark.memory_budget(rss="1 MB")
def test_native_memory_every_call():
    """Issue 19, item 5, the other way: native memory kept on every call fails."""
    block = libc.malloc(8_000_000)
    libc.memset(block, 1, 8_000_000)


@pytest.mark.memory_budget(rss="1 MB")
def test_logging_handler_buffers_records():
    """Issue 21, item 7: a logging handler is explained through logging, not pytest's frames."""
    handler = logging.handlers.MemoryHandler(capacity=10**9)
    logger = logging.getLogger("zoo.buffered")
    logger.addHandler(handler)
    logger.propagate = False
    payload = np.ones(500_000)  # 3.8 MiB, kept by the buffered record's args
    logger.warning("batch %s", payload)


class Connection:
    pass


def _close(payload):
    pass


@pytest.mark.memory_budget(rss="1 MB")
def test_weakref_finalize_payload():
    """Issue 21, item 7: a weakref.finalize payload is explained through finalize's registry."""
    conn = Connection()
    FINALIZERS.append(conn)
    weakref.finalize(conn, _close, np.ones(500_000))  # 3.8 MiB until conn dies


@pytest.mark.memory_budget(rss="1 MB")
def test_thread_local_keeps_a_value():
    """Issue 19, item 8: a threading.local keeps its value for as long as the thread lives."""
    # 38.1 MiB: above glibc's largest mmap threshold (32 MiB), so always fresh pages. At 3.8 MiB,
    # as the first test of a process (the file in reverse order), it could land on heap pages
    # pytest had freed and read under the 1 MB budget (fresh-clone CI, 2026-12-06)
    LOCAL.frame = np.ones(5_000_000)
