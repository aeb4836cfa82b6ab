"""Reproducers run through leakhunt's library API (hunt, why_alive, memory_budget as a decorator and
as a context manager) in a fresh interpreter. tests/test_zoo.py runs this file with
tests/engine_subprocess.py's run_scenario (which defines ``emit``) and reads back one JSON
object: for each case, what leakhunt said. tests/zoo/catalogue.py says what is true of each."""

import functools
import gc
import time

import numpy as np
import pandas as pd

from leakhunt import MemoryBudgetExceeded, hunt, memory_budget, why_alive
from leakhunt.hints import HINTS

out = {}


def _roots(verdict_or_explanation):
    return [{"root": r.root, "size": r.size, "buffers": r.buffers, "pattern": r.pattern, "text": r.text}
            for r in verdict_or_explanation.roots]


def _judged(fn):
    """Call a budgeted function (or block): the failure's text ("" when it passed), and how long
    it took, explanation included."""
    start = time.perf_counter()
    try:
        fn()
    except MemoryBudgetExceeded as exc:
        text = str(exc)
    else:
        text = ""
    return {"failed": bool(text), "text": text, "seconds": time.perf_counter() - start}


# numpy/numpy#19091: a row of a 2-D array is a view that keeps the whole array -------------------
ROWS = []


def array():
    return np.random.default_rng(0).random((3000, 40))  # 938 KiB


def keep_last_row():
    ROWS.append(array()[-1])


start = time.perf_counter()
verdict = hunt(keep_last_row)
out["numpy_19091"] = {"leaking": verdict.leaking, "roots": _roots(verdict), "text": verdict.explain("keep_last_row"),
                      "seconds": time.perf_counter() - start}


# pandas-dev/pandas#32433: an object stored in its own DataFrame: a cycle through an object array ---
class MemoryLeakDemoDF:
    def __init__(self, df):
        self.df = df
        df.loc[0, "object"] = self  # the frame's object column holds self, which holds the frame


def make_demo():
    MemoryLeakDemoDF(pd.DataFrame({"a": np.ones(50_000)}))  # 391 KiB each


start = time.perf_counter()
verdict = hunt(make_demo)
out["pandas_32433"] = {"leaking": verdict.leaking, "roots": _roots(verdict), "text": verdict.explain("make_demo"),
                       "seconds": time.perf_counter() - start}
gc.collect()
demo = [o for o in gc.get_objects() if type(o) is MemoryLeakDemoDF][0]
out["pandas_32433_why_alive"] = str(why_alive(demo))
del demo


# pandas-dev/pandas#60640: why_alive on one of the objects a 1-row slice pins ----------------------
class Record:
    def __init__(self, value):
        self.__value = value


KEPT = []
series = pd.Series([Record(i) for i in range(20_000)])
KEPT.append(series[-1:])
one = series.iloc[5_000]
del series
found = why_alive(one)
out["pandas_60640_element"] = {"lines": [str(p) for p in found], "complete": found.complete, "note": found.note}
found = why_alive(KEPT[0])
out["pandas_60640_slice"] = {"lines": [str(p) for p in found], "size": found.size}
del one, found


# uneven growth: 7.6 MiB in 3 calls of 10 -------------------------------------------------------
STEPS = []
calls = [0]


def grows_now_and_then():
    calls[0] += 1
    if calls[0] % 4 == 0:
        STEPS.append(np.ones(1_000_000))


verdict = hunt(grows_now_and_then)
out["uneven"] = {"leaking": verdict.leaking, "text": verdict.explain("grows_now_and_then")}


# pandas-dev/pandas#49582: the filtered copy keeps its rows' dicts (an object column) --------------
SUBSETS = []


def get_df(n):
    df = pd.DataFrame({"a": np.linspace(0, 1e6, n), "b": None, "c": None})
    df["b"] = "blabla"
    for i in df.index:
        df.at[i, "c"] = {f"blabla_{j}": j for j in range(i)}
    return df


@memory_budget(rss="1 MB")
def get_filtered_df(n=1000):
    df = get_df(n)
    df["d"] = 2 * df.a
    out = df[df.d.between(1e5, 5e5)].copy()
    del df
    SUBSETS.append(out)


out["pandas_49582"] = _judged(get_filtered_df)


# dask/dask#3530: a threaded computation over numpy chunks keeps nothing --------------------------
import dask.array as da  # noqa: E402 - imported before the block: the report is about computing


def dask_sum():
    x = da.random.random((4000, 4000), chunks=(500, 500))  # 122 MiB in 64 chunks, never all at once
    assert float(x.sum().compute(scheduler="threads")) > 0


dask_sum()  # the first run starts the scheduler's thread pool, kept for the next: one-time


def dask_sum_again():
    with memory_budget(rss="20 MB"):  # the report: memory growing run after run
        dask_sum()


out["dask_3530"] = _judged(dask_sum_again)


# issue 19, item 9: an unbounded lru_cache filled 500 times: every entry counted -----------------
@functools.lru_cache(maxsize=None)
def cached_step(key):
    return np.full(8_192, key, dtype="float64")  # 64 KiB


def fill_cache():
    with memory_budget(rss="5 MB"):
        for key in range(500):
            cached_step(key)


out["lru_cache_500"] = _judged(fill_cache)


# ipython/ipython#11572 (issue 21, item 5): a stored exception's traceback keeps its frames' locals --
LAST_ERROR = {}


def load_batch():
    rows = np.ones(1_000_000)  # 7.6 MiB, a local of the frame that raises
    raise ValueError(f"bad batch of {len(rows)} rows")


def keep_error():
    try:
        load_batch()
    except ValueError as exc:
        LAST_ERROR["load"] = exc


def why_stored():
    """why_alive on the raising frame's local, found on the heap (the asker's own local is no path)."""
    rows = next(o for o in gc.get_referents(*gc.get_objects()) if type(o) is np.ndarray and o.size == 1_000_000)
    return [str(p) for p in why_alive(rows)]


keep_error()
out["stored_exception_why_alive"] = why_stored()


# issue 19, item 8: why_alive at module level, and a method cache's path -------------------------
ALONE = np.ones(100)
out["module_level"] = str(why_alive(ALONE))


class Model:
    def __init__(self):
        self.weights = np.ones(10_000)

    @functools.lru_cache(maxsize=None)
    def score(self, x):
        return float(self.weights.sum()) * x


Model().score(1)
cached_model = [o for o in gc.get_objects() if type(o) is Model][0]
out["method_cache_path"] = [str(p) for p in why_alive(cached_model.weights)]
del cached_model
out["hints"] = HINTS
emit(out)  # noqa: F821 (defined by tests/engine_subprocess.py's prelude)
