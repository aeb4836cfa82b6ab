"""Diagnosis in a real suite: explanations name the test's own culprit, figures do not move with
test order, and every limit a user writes is checked.

Each scenario is a test file run in a fresh pytest process (``runpytest_subprocess``): the
allocator, the gc and tracemalloc are shared between the tests of that file, as in a real suite.
"""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

SCENARIOS = Path(__file__).parent / "scenarios"
MiB = 1 << 20
OWN_ROOTS = {
    "test_frame_slice": "PREVIEWS (global in test_keepers)",
    "test_arrow_table": "TABLES (global in test_keepers)",
    "test_closure": "CALLBACKS (global in test_keepers)",
    "test_dict_of_arrays": "ARRAYS (global in test_keepers)",
}
OWN_HINTS = {
    "test_frame_slice": "a slice or view keeps its whole parent buffer",
    "test_arrow_table": "a module-level list keeps everything appended to it",
    "test_closure": "a function (a callback, a lambda) keeps every variable it closes over alive",
    "test_dict_of_arrays": "a module-level dict keeps every value stored in it",
}


def _run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, dict[str, Any]]]:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", *args,
                                           "--leak-report-file=report.json", timeout=600)
    data = json.loads((pytester.path / "report.json").read_text())
    assert data["schema_version"] == 2
    return result, {t["nodeid"].split("::", 1)[1]: t for t in data["tests"]}


def _no_leakhunt_inside(explanation: dict[str, Any]) -> None:
    text = json.dumps(explanation)
    for marker in ("/leakhunt/", "pytest_leakhunt", "(global in leakhunt"):
        assert marker not in text, (marker, text)


def _run_order(path: Path, seed: int) -> dict[str, dict[str, Any]]:
    report = path / f"report-{seed}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "randomly", f"--randomly-seed={seed}", "-p", "no:cacheprovider",
         "-p", "no:xdist", "test_keepers.py", f"--leak-report-file={report}"],
        cwd=path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]  # four tests fail
    return {t["nodeid"].split("::", 1)[1]: t for t in json.loads(report.read_text())["tests"]}


def test_every_explanation_names_its_own_root_in_five_orders(tmp_path: Path) -> None:
    pytest.importorskip("pytest_randomly")
    shutil.copy(SCENARIOS / "keepers.py", tmp_path / "test_keepers.py")
    # Five separate processes, two at a time (each is single-threaded; the figures are per process).
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda seed: _run_order(tmp_path, seed), (1, 2, 3, 4, 5)))
    for tests in runs:
        failing = {name for name, t in tests.items() if t["verdict"] == "over_budget"}
        assert failing == set(OWN_ROOTS), failing
        for name, root in OWN_ROOTS.items():
            explanation = tests[name]["explanation"]
            roots = [r["root"] for r in explanation["roots"]]
            assert roots == [root], (name, roots)  # its own root, and nobody else's
            assert explanation["roots"][0]["site"]["file"].endswith("test_keepers.py")
            assert OWN_HINTS[name] in explanation["hint"]
            _no_leakhunt_inside(explanation)
        for name in ("test_transient_numpy", "test_groupby_roundtrip", "test_arrow_roundtrip"):
            assert tests[name]["verdict"] == "ok" and tests[name]["explanation"] is None
    for name in OWN_ROOTS:  # the retained figure a budget checks does not move with the order
        values = [tests[name]["rss_growth"] for tests in runs]
        assert max(values) - min(values) <= 0.15 * max(values), (name, values)
        assert min(values) > 25 * MiB


LEAKS = '''
import ctypes

import numpy as np
import pytest

HISTORY = []
CACHE = {}
BATCHES = []
FIXTURE_DATA = []
MY_CACHE = {}
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]


@pytest.mark.memory_budget(rss="10 MB")
def test_appends():
    HISTORY.append(np.ones(4_000_000))  # 30.5 MiB per call


@pytest.mark.memory_budget(rss="10 MB")
def test_overwrites():
    CACHE["latest"] = np.ones(4_000_000)  # a second call replaces the first call's array


@pytest.mark.memory_budget(rss="20 MB")
def test_eight_batches():
    for _ in range(8):
        BATCHES.append(np.ones(2_000_000)[:10])  # each view pins 15.3 MiB


def test_fills_fixture_data():  # no budget: its memory belongs to nobody else
    for _ in range(12):
        FIXTURE_DATA.append(np.ones(3_000_000 // 8))


@pytest.mark.memory_budget(rss="1 MB")
def test_my_cache():
    MY_CACHE["latest"] = np.ones(2_500_000 // 8)


@pytest.mark.memory_budget(rss="10 MB")
def test_native_leak():
    block = libc.malloc(30 * 1024 * 1024)  # never freed: no Python object holds it
    libc.memset(block, 1, 30 * 1024 * 1024)


@pytest.mark.memory_budget(peak="40 MB")
def test_peak():
    def spike():
        frame = np.ones(10_000_000)  # 76.3 MiB, alive only inside spike()
        return float(frame.sum())
    assert spike() == 10_000_000
'''


def test_each_failure_shows_what_it_keeps_without_doubling_or_hiding(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leaks=LEAKS)
    result, tests = _run(pytester, "-p", "no:randomly")
    assert {n for n, t in tests.items() if t["verdict"] == "over_budget"} == {
        "test_appends", "test_overwrites", "test_eight_batches", "test_my_cache", "test_native_leak", "test_peak"}
    for name in tests:
        if tests[name]["explanation"]:
            _no_leakhunt_inside(tests[name]["explanation"])

    # the traced second call shows what it made: one array, not two
    [root] = tests["test_appends"]["explanation"]["roots"]
    assert (root["root"], root["buffers"]) == ("HISTORY (global in test_leaks)", 1)
    # a second call that overwrites still shows the path, though it grew nothing itself
    [root] = tests["test_overwrites"]["explanation"]["roots"]
    assert root["text"] == "CACHE (global in test_leaks) -> dict['latest'] -> ndarray 30.5 MiB"
    assert any("the traced second call read" in n for n in tests["test_overwrites"]["explanation"]["notes"])
    # eight mid-size buffers under one root are one group, with no size cut-off
    [root] = tests["test_eight_batches"]["explanation"]["roots"]
    assert (root["root"], root["buffers"]) == ("BATCHES (global in test_leaks)", 8)
    # the eight parents' buffers, and the eight views themselves (objects put into an older list)
    assert 8 * 16_000_000 <= root["size"] <= 8 * 16_000_000 + 8 * 256, root
    assert root["pattern"] == "view"
    # the culprit is the test's own cache, not the biggest buffers of the process
    [root] = tests["test_my_cache"]["explanation"]["roots"]
    assert root["root"] == "MY_CACHE (global in test_leaks)"
    assert root["site"]["code"] == "MY_CACHE[\"latest\"] = np.ones(2_500_000 // 8)"
    # native memory: no path to show, and the hint says so instead of pointing at none
    native = tests["test_native_leak"]["explanation"]
    assert native["roots"] == [] and "native memory" in native["hint"]
    assert any("a second call kept" in n and "not one-time initialisation" in n for n in native["notes"])
    # a peak names the allocation alive at the high-water mark, by line
    peak = tests["test_peak"]["explanation"]
    assert peak["peak_sites"][0]["code"] == "frame = np.ones(10_000_000)  # 76.3 MiB, alive only inside spike()"
    result.stdout.fnmatch_lines(["*alive at the peak (biggest allocations, by line):",
                                 "*76.3 MiB  test_leaks.py:* (frame = np.ones(10_000_000)*"])


ORDER_SENSITIVE = '''
import numpy as np
import pyarrow as pa
import pytest

KEPT = []


def build_table(n=100_000):
    table = pa.table({"id": np.arange(n), "name": [f"name-{i}" for i in range(n)]})
    return table.to_pandas()


@pytest.mark.memory_budget(rss="20 MB")
def test_first_use_a():
    assert len(build_table()) == 100_000


@pytest.mark.memory_budget(rss="20 MB")
def test_first_use_b():
    assert len(build_table()) == 100_000


@pytest.mark.memory_budget(rss="20 MB")
def test_keeps_three_tables():
    KEPT.append(np.ones(1_000_000))      # 7.6 MiB
    KEPT.append(np.ones(1_000_000))      # 7.6 MiB
    KEPT.append(np.ones(1_250_000))      # 9.5 MiB: 24.8 MiB in all
'''


@pytest.mark.parametrize("order", [("a", "b", "keeps"), ("keeps", "b", "a")])
def test_one_time_initialisation_is_not_charged_to_the_first_test(pytester: pytest.Pytester,
                                                                   order: tuple[str, ...]) -> None:
    pytester.makepyfile(test_order=ORDER_SENSITIVE)
    names = {"a": "test_first_use_a", "b": "test_first_use_b", "keeps": "test_keeps_three_tables"}
    _, tests = _run(pytester, "-p", "no:randomly", *[f"test_order.py::{names[k]}" for k in order])
    assert tests["test_first_use_a"]["verdict"] == "ok"
    assert tests["test_first_use_b"]["verdict"] == "ok"
    # whatever ran before (and whatever its explanation left behind), 24.8 MiB breaks 20 MB
    kept = tests["test_keeps_three_tables"]
    assert kept["verdict"] == "over_budget"
    assert 21 * MiB < kept["rss_growth"] < 28 * MiB  # anonymous memory: allocator reuse moves it by ~2 MiB
    [root] = kept["explanation"]["roots"]
    assert (root["root"], root["buffers"]) == ("KEPT (global in test_order)", 3)


OTHERS = '''
import multiprocessing
import threading
import time

import numpy as np
import pytest
from leakhunt import memory_budget

SINK = []
CHILDREN = []
KEEP = {}


def _allocate_forever():
    while True:
        SINK.append(bytearray(256 * 1024))
        time.sleep(0.002)


def _hold(mb, seconds):
    block = bytearray(mb * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page
    time.sleep(seconds)


def test_starts_a_writer_thread():
    threading.Thread(target=_allocate_forever, name="sink-writer", daemon=True).start()


def test_starts_a_worker():
    worker = multiprocessing.get_context("fork").Process(target=_hold, args=(80, 60), daemon=True)
    worker.start()
    CHILDREN.append(worker)
    time.sleep(1.0)  # the worker holds its 80 MB from here on


@pytest.mark.memory_budget(rss="20 MB", children="20 MB")
@pytest.mark.parametrize("n", [1, 2, 3])
def test_unrelated(n):
    data = np.ones(1_000_000)
    time.sleep(0.3)  # the writer thread allocates ~38 MB meanwhile
    assert data.sum() == 1_000_000


@memory_budget(children="20 MB")
def test_own_worker_counts():
    worker = multiprocessing.get_context("fork").Process(target=_hold, args=(80, 0.5))
    worker.start()
    worker.join()


@memory_budget(traced="1 MB")
def test_decorator_traced_limit():
    KEEP["traced"] = np.ones(5_000_000 // 8)


def test_zz_stop_workers():
    for worker in CHILDREN:
        worker.kill()
'''


def test_threads_children_and_decorator_limits(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_others=OTHERS)
    result, tests = _run(pytester, "-p", "no:randomly")
    # a thread and a process started by earlier tests are not the later tests' memory
    for n in (1, 2, 3):
        assert tests[f"test_unrelated[{n}]"]["verdict"] == "ok", tests[f"test_unrelated[{n}]"]
        assert (tests[f"test_unrelated[{n}]"]["children_peak"] or 0) < 20 * MiB
    # ... but a child the test starts itself is, though --leak-children was not given
    own = tests["test_own_worker_counts"]
    assert own["verdict"] == "over_budget" and own["children_peak"] > 60 * MiB
    # the decorator's traced= limit holds under the plugin, whatever other threads allocate
    traced = tests["test_decorator_traced_limit"]
    assert traced["verdict"] == "over_budget"
    assert 4.5 * MiB < traced["traced_growth"] < 6 * MiB
    [root] = traced["explanation"]["roots"]
    assert root["root"] == "KEEP (global in test_others)"
    assert "SINK" not in json.dumps(traced["explanation"])
    result.assert_outcomes(passed=6, failed=2)


def test_a_default_budget_fails_a_pipeline_test_in_any_order(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_pipeline='''
        import numpy as np
        import pandas as pd

        OUTPUTS = []

        def test_other():
            frame = pd.DataFrame({"a": np.ones(2_000_000)})
            assert frame.a.sum() == 2_000_000

        def test_pipeline():
            frame = pd.DataFrame({"a": np.ones(2_000_000), "b": np.ones(2_000_000)})
            OUTPUTS.append(frame[["a"]].iloc[:5])  # keeps 15.3 MiB per call
    ''')
    seen = []
    for args in (["test_pipeline.py::test_pipeline"],
                 ["test_pipeline.py::test_other", "test_pipeline.py::test_pipeline"],
                 ["--leak-report", "test_pipeline.py"]):
        _, tests = _run(pytester, "-p", "no:randomly", "--memory-budget=rss=10MB", *args)
        seen.append(tests["test_pipeline"]["rss_growth"])
        assert tests["test_pipeline"]["verdict"] == "over_budget", args
    assert max(seen) - min(seen) <= 0.15 * max(seen), seen
