"""why_alive(): labelled paths from roots down to an object, through edges the gc cannot see.

One fresh interpreter builds every retention pattern at once and reports the paths; each test
then checks one pattern. The heap of pytest itself would make paths (and timings) depend on
whatever ran before.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from engine_subprocess import run_scenario
from leakhunt import RetentionPaths, why_alive

pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

SCENARIO = """
import functools
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from leakhunt import why_alive
from leakhunt.retention import biggest_buffers

def summary(r):
    return {"text": str(r), "lines": [str(p) for p in r], "complete": r.complete, "note": r.note,
            "size": r.size, "target": r.target, "count": len(r)}

out = {}

# numpy: a view keeps its base; the gc sees neither edge.
VIEW = np.ones(1_000_000)[10:20]
out["numpy_view"] = summary(why_alive(VIEW.base))

# pandas: a 1-row slice keeps the whole block.
HOLD = []
frame = pd.DataFrame(np.ones((100_000, 10)))
HOLD.append(frame.iloc[:1])
del frame
out["pandas_block"] = summary(why_alive(HOLD[0]._mgr.blocks[0].values.base))

# Arrow: a 1-row slice holds every buffer of its parent.
ARROW_HOLD = [pa.table({"x": pc.add(pa.array(np.arange(1_000_000)), 1)}).slice(0, 1)]
out["arrow_slice"] = summary(why_alive(ARROW_HOLD[0]))
arrow_found = [(type(o).__name__, s) for o, s in biggest_buffers(min_size=7_000_000, limit=5)]
out["arrow_biggest"] = arrow_found

# A class attribute.
class Registry:
    entries = []
Registry.entries.append(np.ones(50_000))
out["class_attribute"] = summary(why_alive(Registry.entries[0]))

# A closure cell.
def make_scorer():
    weights = np.ones(60_000)
    def score(x):
        return x * weights.sum()
    return score
SCORER = make_scorer()
out["closure"] = summary(why_alive(SCORER.__closure__[0].cell_contents))

# An lru_cache.
@functools.lru_cache(maxsize=4)
def load(key):
    return np.ones(70_000)
out["lru_cache"] = summary(why_alive(load("a")))

# A dict whose values are all untracked (CPython untracks such a dict).
TABLES = {"daily": np.ones(80_000)}
out["untracked_dict"] = summary(why_alive(TABLES["daily"]))

# A local of a frame further up the stack; the frame that asks (holding it as an argument)
# and why_alive's own frames are left out.
def outer():
    keep_me = np.ones(90_000)
    return ask(keep_me)
def ask(arr):
    return summary(why_alive(arr))
out["other_frame_local"] = outer()

def lonely():
    only_here = np.ones(10)
    return summary(why_alive(only_here))
out["argument_only"] = lonely()

# Bounds.
DEEP = np.ones(1000)
for _ in range(40):
    DEEP = [DEEP]
def probe_deep(**kw):
    inner = DEEP
    for _ in range(40):
        inner = inner[0]
    return summary(why_alive(inner, **kw))
out["deep"] = probe_deep(max_depth=5)
out["deep_found"] = probe_deep(max_depth=60, max_paths=1)
out["timed_out"] = summary(why_alive(VIEW.base, timeout=1e-9))
emit(out)
"""


@pytest.fixture(scope="module")
def found() -> dict[str, Any]:
    result: dict[str, Any] = run_scenario(SCENARIO)
    return result


def test_follows_a_numpy_view_to_its_base(found: dict[str, Any]) -> None:
    assert "VIEW (global in __main__) -> .base ndarray 7.6 MiB" in found["numpy_view"]["lines"]
    assert found["numpy_view"]["size"] == 8_000_000
    assert found["numpy_view"]["target"] == "ndarray 7.6 MiB"


def test_follows_pandas_blocks_to_their_array(found: dict[str, Any]) -> None:
    assert found["pandas_block"]["lines"][0] == (
        "HOLD (global in __main__) -> list[0] -> DataFrame (1 row x 10 cols) -> block values (view)"
        " -> .base ndarray 7.6 MiB"
    )


def test_reports_an_arrow_slice_with_every_buffer_it_holds(found: dict[str, Any]) -> None:
    assert found["arrow_slice"]["lines"][0] == (
        "ARROW_HOLD (global in __main__) -> list[0] -> pyarrow Table (1 row) holding buffers of 7.6 MiB"
    )
    assert found["arrow_slice"]["size"] == 8_000_000
    assert ["Table", 8_000_000] in found["arrow_biggest"]


def test_names_class_attributes(found: dict[str, Any]) -> None:
    assert "Registry (global in __main__) -> .entries -> list[0] -> ndarray 390.6 KiB" in found["class_attribute"]["lines"]


def test_names_closure_variables(found: dict[str, Any]) -> None:
    assert "SCORER (global in __main__) -> closure variable 'weights' -> ndarray 468.8 KiB" in found["closure"]["lines"]


def test_names_lru_cache_entries(found: dict[str, Any]) -> None:
    assert "load (global in __main__) -> lru_cache entry -> ndarray 546.9 KiB" in found["lru_cache"]["lines"]
    assert not any("-> ->" in line for line in found["lru_cache"]["lines"])


def test_sees_into_dicts_the_gc_does_not_track(found: dict[str, Any]) -> None:
    assert "TABLES (global in __main__) -> dict['daily'] -> ndarray 625.0 KiB" in found["untracked_dict"]["lines"]


def test_finds_locals_of_other_frames_and_leaves_out_its_own(found: dict[str, Any]) -> None:
    [line] = found["other_frame_local"]["lines"]
    assert line.startswith("keep_me (local in outer at <string>:")
    assert line.endswith("ndarray 703.1 KiB")
    for result in found.values():
        if isinstance(result, dict):
            for text in result["lines"]:
                assert "why_alive" not in text and "retention.py" not in text
                assert "(local in ask " not in text  # the asking frame's argument is not a reason


def test_an_object_held_only_by_the_asker_has_no_path(found: dict[str, Any]) -> None:
    result = found["argument_only"]
    assert result["count"] == 0
    assert result["text"] == "ndarray 80 B: no path from a module global or a frame local was found"


def test_is_bounded_in_depth(found: dict[str, Any]) -> None:
    assert found["deep"]["count"] == 0 and not found["deep"]["complete"]
    assert found["deep"]["note"] == "search stopped by its depth, width or time bound"
    assert found["deep_found"]["complete"] and found["deep_found"]["count"] == 1
    assert found["deep_found"]["lines"][0].startswith("DEEP (global in __main__) -> list[0] -> list[0]")


def test_is_bounded_in_time(found: dict[str, Any]) -> None:
    assert not found["timed_out"]["complete"]
    assert found["timed_out"]["note"] == "search stopped by its depth, width or time bound"


def test_in_process_result_type_and_argument_errors() -> None:
    result = why_alive(object(), timeout=2.0)
    assert isinstance(result, RetentionPaths)
    assert list(result) == [] and len(result) == 0
    with pytest.raises(ValueError, match="max_paths=0"):
        why_alive(1, max_paths=0)
    with pytest.raises(ValueError, match="timeout=0"):
        why_alive(1, timeout=0)


def test_main_without_a_file_is_the_users_code() -> None:
    """``python -c`` (and a REPL, a notebook) runs a ``__main__`` with no file: its globals are
    the user's roots, not a library's (a library's small roots are hidden and never choose the
    hint); an installed module without a file would still be a library's."""
    code = ("import sys; from leakhunt.retention import _library_module; "
            "print(_library_module('__main__'), _library_module('sys'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
