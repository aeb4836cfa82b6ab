"""Memory a test puts into a cache the user's code owns is kept memory, in every mode; a library's
one-time initialisation (its own cache filled once, a native first-use allocation) is not
(issue 21 item 8, issue 19 item 9; leakhunt/caches.py, docs/plugin.md's rule).

Each file runs in a pytest process of its own (``runpytest_subprocess``): RSS, the gc and the
caches are per process."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from engine_subprocess import run_scenario  # noqa: E402

MiB = 1 << 20
MODES = [None, "--leak-trace", "--leak-no-rerun"]
UNBOUNDED_HINT = "an unbounded cache (functools.cache, lru_cache(maxsize=None)) keeps every result"
METHOD_HINT = "functools.cache/lru_cache on a method keeps every self it was called with alive"



def _native_once() -> str:
    """tests/zoo/budgets.py's one-time native initialisation (8 MB malloc'd on the first call
    only): its ``libc`` set-up, ``_NATIVE`` and ``warm_up_native_once``, as source."""
    source = (Path(__file__).parent / "zoo" / "budgets.py").read_text()
    wanted = ("libc", "_NATIVE", "warm_up_native_once")
    parts = ["import ctypes"]
    for node in ast.parse(source).body:
        names = [getattr(node, "name", None)] + [ast.unparse(t).split(".")[0] for t in getattr(node, "targets", ())]
        if any(name in wanted for name in names):
            parts.append(ast.get_source_segment(source, node) or "")
    return "\n".join(parts) + "\n"


NATIVE = _native_once()

USER_CACHES = NATIVE + '''
import functools

import numpy as np
import pytest


@functools.cache
def load(key):
    return np.full(500_000, key, dtype="float64")  # 3.8 MiB per key


class Model:
    @functools.lru_cache(maxsize=None)
    def features(self, key):  # the key holds self
        return np.full(500_000, key, dtype="float64")


MODEL = Model()


@pytest.mark.memory_budget(rss="5 MB")
def test_fills_a_cache():
    for key in range(4):
        load(key)


@pytest.mark.memory_budget(rss="5 MB")
def test_fills_a_class_cache():
    for key in range(4):
        MODEL.features(key)


def test_fills_it_unbudgeted():
    for key in range(10, 14):
        load(key)


@pytest.mark.memory_budget(rss="3 MB")
def test_reads_what_another_test_cached_and_warms_up_natively():
    """What an earlier test cached is not this test's; its one-time native cost is not kept."""
    for key in range(10, 14):
        load(key)
    warm_up_native_once()


@pytest.mark.memory_budget(rss="50 MB")
def test_fills_a_cache_within_its_budget():
    for key in range(20, 24):
        load(key)
'''

CACHED_DATA = '''
import functools

import numpy as np


@functools.cache
def rows(key):
    return np.full(500_000, key, dtype="float64")  # 3.8 MiB per key
'''

IMPORTED = '''
import pytest

from cached_data import rows


@pytest.mark.memory_budget(rss="5 MB")
def test_fills_an_imported_cache():
    for key in range(4):
        rows(key)
'''

LIBRARY = '''
import functools

import numpy as np


@functools.lru_cache(maxsize=None)
def table(key):
    return np.full(500_000, key, dtype="float64")  # 3.8 MiB per key: the library's own cache
'''

LIBRARY_TESTS = '''
import libcache
import pytest


@pytest.mark.memory_budget(rss="5 MB")
def test_fills_a_library_cache():
    for key in range(4):
        libcache.table(key)
'''


def _run(pytester: pytest.Pytester, source: str, *args: str) -> dict[str, dict]:
    pytester.path.joinpath("test_caches_case.py").write_text(source)
    pytester.path.joinpath("cached_data.py").write_text(CACHED_DATA)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:xdist", "-p", "no:cacheprovider",
                                           "--leak-report-file=report.json", *args, timeout=600)
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    data = json.loads(pytester.path.joinpath("report.json").read_text())
    return {t["nodeid"].split("::")[-1]: t for t in data["tests"]}


def _roots(record: dict) -> list[str]:
    return [r["root"] for r in (record.get("explanation") or {}).get("roots") or []]


@pytest.mark.parametrize("flag", MODES)
def test_a_cache_of_the_users_the_test_fills_is_kept_memory(pytester: pytest.Pytester, flag: str | None) -> None:
    records = _run(pytester, USER_CACHES, *([flag] if flag else []))
    for name, root, hint in (("test_fills_a_cache", "load (global in test_caches_case)", UNBOUNDED_HINT),
                             ("test_fills_a_class_cache", "Model (global in test_caches_case)", METHOD_HINT)):
        record = records[name]
        assert record["verdict"] == "over_budget", (flag, name, record)
        assert _roots(record)[:1] == [root], (flag, name, record)
        assert hint in record["explanation"]["hint"], (flag, name, record)
    assert records["test_fills_a_cache_within_its_budget"]["verdict"] == "ok", (flag, records)


def test_a_cache_imported_from_a_module_of_the_users_is_named_once(pytester: pytest.Pytester) -> None:
    """The cache is a global of the module that defines it and of the test file that imports it:
    one root, by the module that defines it, counted once."""
    record = _run(pytester, IMPORTED)["test_fills_an_imported_cache"]
    assert record["verdict"] == "over_budget", record
    assert _roots(record) == ["rows (global in cached_data)"], record
    assert 15 * MiB < record["explanation"]["roots"][0]["size"] < 16 * MiB, record


@pytest.mark.parametrize("flag", [None, "--leak-trace"])
def test_what_an_earlier_test_cached_is_not_the_tests(pytester: pytest.Pytester, flag: str | None) -> None:
    """The entries the test only read were there before it started; its 8 MB over a 3 MB budget
    is a native first-use allocation, one-time (a second call keeps nothing)."""
    records = _run(pytester, USER_CACHES, *([flag] if flag else []))
    record = records["test_reads_what_another_test_cached_and_warms_up_natively"]
    assert record["verdict"] == "ok", (flag, record)


def test_without_a_second_call_the_one_time_cost_counts(pytester: pytest.Pytester) -> None:
    """The other way for the test above: the one-time cost is what broke the budget, so under
    --leak-no-rerun (no second call can tell it was one-time) it counts, and no cache is named."""
    record = _run(pytester, USER_CACHES, "--leak-no-rerun")["test_reads_what_another_test_cached_and_warms_up_natively"]
    assert record["verdict"] == "over_budget", record
    assert not any(root.startswith("load ") for root in _roots(record)), record


@pytest.mark.parametrize("flag", [None, "--leak-trace"])
def test_a_librarys_cache_filled_once_is_one_time_initialisation(pytester: pytest.Pytester,
                                                                 flag: str | None) -> None:
    package = pytester.path / "site-packages" / "libcache"
    package.mkdir(parents=True)
    package.joinpath("__init__.py").write_text(LIBRARY)
    pytester.path.joinpath("conftest.py").write_text(
        "import sys\nsys.path.insert(0, %r)\nimport libcache  # noqa: F401\n" % str(package.parent))
    record = _run(pytester, LIBRARY_TESTS, *([flag] if flag else []))["test_fills_a_library_cache"]
    assert record["verdict"] == "ok", (flag, record)
    assert "one-time initialisation" in record["note"], (flag, record)


@pytest.mark.parametrize("as_script", [True, False], ids=["script", "python -c"])
def test_the_decorator_names_the_cache(tmp_path: Path, as_script: bool) -> None:
    """memory_budget as a decorator: the same rule (the function is called again traced, and a
    cache hit makes nothing: the cache is still named)."""
    answer = run_scenario('''
import functools
import numpy as np
from leakhunt import MemoryBudgetExceeded, memory_budget

@functools.cache
def load(key):
    return np.full(500_000, key, dtype="float64")

@memory_budget(rss="5 MB")
def step():
    for key in range(4):
        load(key)

try:
    step()
    RESULT = {"failed": False}
except MemoryBudgetExceeded as exc:
    RESULT = {"failed": True, "text": str(exc)}
emit(RESULT)
''', script=tmp_path / "cached_step.py" if as_script else None)
    assert answer["failed"], answer
    assert "load (global in __main__) keeps 4 buffers" in answer["text"], answer
