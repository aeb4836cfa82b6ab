"""The native backend's pieces that need no recording: the one pass over a capture
(leakhunt.native_capture.scan) on hand-made records, how a stack is described, the flame graph's
tree, the allocator switch and the backend's availability."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import pytest

from leakhunt import frames, native
from leakhunt import native_capture as nc
from leakhunt.report.flame import CUT, flame_json, flame_tree
from leakhunt.tracing import Stack

MAIN = 1
WORKER = 7
MALLOC, FREE, MMAP, MUNMAP = 6, 5, 14, 15
USER = os.path.abspath(__file__)
LIB = os.path.join(sys.prefix, "lib", "python3", "site-packages", "polars", "frame.py")


@dataclass
class Record:
    """The attributes of memray's AllocationRecord that the scan reads."""

    allocator: int
    address: int
    size: int
    stack_id: int = 0
    tid: int = MAIN
    native_stack_id: int = 0
    thread_name: str = ""
    marker: bool = False

    def stack_trace(self, max_stacks: int | None = None) -> list[tuple[str, str, int]]:
        return [("_tick", native.__file__, 1)] if self.marker else []


def scan(records: list[Record], peak: int, **kwargs: object) -> nc.Scan:
    return nc.scan(records, peak=peak, main_tid=MAIN, is_marker=lambda r: r.marker, marker_size=native.MARKER + 1,
                   **kwargs)  # type: ignore[arg-type]


def marker(address: int) -> Record:
    return Record(MALLOC, address, native.MARKER + 1, stack_id=99, tid=5, marker=True)


def test_the_state_at_the_high_water_mark_is_the_peak_and_not_before_it() -> None:
    # A (30) is freed before B (80) is made: at the peak only B (and C, 5, still alive) count.
    records = [Record(MALLOC, 0x10, 5, stack_id=3), Record(MALLOC, 0x20, 30, stack_id=1), Record(FREE, 0x20, 0),
               Record(MALLOC, 0x30, 80, stack_id=2), Record(FREE, 0x30, 0), Record(MALLOC, 0x40, 10, stack_id=1)]
    out = scan(records, peak=85)
    assert out.exact and out.peak == 85
    assert {key[0]: size for key, (size, _) in out.at_peak.items()} == {3: 5, 2: 80}
    assert {key[0]: size for key, (size, _) in out.at_end.items()} == {3: 5, 1: 10}
    totals = {key[0]: entry for key, entry in out.totals.items()}
    assert totals[1][:2] == [40, 2] and totals[1][3] == 30  # allocated 40 in all, at most 30 at once
    assert totals[2][:2] == [80, 1]


def test_a_partial_munmap_leaves_the_rest_mapped() -> None:
    records = [Record(MMAP, 0x1000, 0x3000, stack_id=4), Record(MUNMAP, 0x2000, 0x1000),
               Record(MALLOC, 0x9000, 1, stack_id=5)]
    out = scan(records, peak=0x3000)
    assert out.at_peak[(4, 0, -1)] == [0x3000, 1]
    assert out.at_end[(4, 0, -1)] == [0x2000, 2]  # split in two ranges by the unmap in its middle


def test_a_worker_thread_is_charged_to_where_the_target_was() -> None:
    # no Python stack (a polars worker): charged to the state after the second tick
    records = [marker(0x1), Record(FREE, 0x1, 0), Record(MALLOC, 0x50, 7, stack_id=8),
               marker(0x2), Record(FREE, 0x2, 0), Record(MALLOC, 0x60, 100_000, tid=WORKER, native_stack_id=42)]
    out = scan(records, peak=100_007)
    assert out.ticks == 2
    worker = [key for key in out.at_peak if key[0] < 0]
    assert len(worker) == 1 and worker[0][1:] == (42, WORKER)
    assert out.states[nc.state_of(worker[0])] == ("tick", 2)  # the tick, newer than the main thread's record
    assert out.peak_tick == 2


def test_leakhunts_own_threads_and_the_markers_are_charged_to_no_line() -> None:
    records = [marker(0x1), Record(MALLOC, 0x70, 50, tid=9, thread_name="leakhunt-sampler"),
               Record(MALLOC, 0x80, 20, stack_id=6)]
    out = scan(records, peak=native.MARKER + 1 + 70)  # the marker is still alive: memray counts it
    assert list(out.at_peak) == [(6, 0, -1)]  # the heap counts all three, as memray does; one line is charged


def test_a_heap_that_never_reaches_memrays_figure_is_read_again_to_its_own_maximum() -> None:
    records = [Record(MALLOC, 0x10, 30, stack_id=1), Record(FREE, 0x10, 0), Record(MALLOC, 0x20, 20, stack_id=2)]
    first = scan(records, peak=99)
    assert not first.exact and first.best_index == 1
    again = scan(records, peak=99, stop_at=first.best_index)
    assert again.exact and {k[0] for k in again.at_peak} == {1} and again.peak == 30


def test_describe_finds_the_users_line_and_the_library_that_allocated() -> None:
    stack = (("with_columns", LIB, 120), ("main", USER, 10), ("<module>", USER, 30))
    origin = native._describe(stack, thread=False)
    assert origin is not None and origin.line == (USER, 10)
    assert origin.library == "polars" and origin.via.endswith("frame.py:120")
    ours = (("helper", frames.own_dirs()[0] + "native.py", 1), ("<module>", USER, 30))
    assert native._describe(ours, thread=False) is None  # leakhunt's own allocation


def test_an_import_through_leakhunts_import_meter_is_the_import_lines() -> None:
    # leakhunt run's ImportMeter wraps each import's exec_module: its frame sits between the
    # user's import line and the module's own code, and must not make the memory leakhunt's
    meter = os.path.join(os.path.dirname(frames.__file__), "imports.py")
    stack = (("<module>", LIB, 3), ("exec_module", meter, 80), ("<module>", USER, 1))
    origin = native._describe(stack, thread=False)
    assert origin is not None and origin.line == (USER, 1) and origin.library == "polars"


def test_native_library_names_the_c_code() -> None:
    assert native.native_library(["arrow::PoolBuffer::Reserve(long)", "PyObject_Call"]) == "pyarrow"
    assert native.native_library(["_rjem_je_pages_map", "rayon_core::registry"]) == "polars"
    assert native.native_library(["default_malloc", "PyDataMem_UserNEW"]) == "numpy"
    assert native.native_library(["list_resize", "_PyList_AppendTakeRef"]) == "Python"
    assert native.native_library(["some_function"]) == ""


def test_the_flame_tree_grafts_a_cut_stack_under_its_call_instead_of_a_second_root() -> None:
    ours = frames.own_dirs()[0] + "run_command.py"
    whole = Stack(frames=((LIB, 5, "x"), (USER, 10, "df = f()"), (USER, 30, "main()"), (ours, 1, "")), size=100, count=1)
    cut = Stack(frames=((LIB, 9, "y"), (LIB, 5, "x")), size=50, count=1)  # the frame limit cut it at LIB:5
    root = flame_tree([whole, cut])
    assert [c.frame for c in root.children.values()] == [(USER, 30)]  # one root: the script
    lib = root.children[(USER, 30)].children[(USER, 10)].children[(LIB, 5)]
    assert lib.size == 150 and (LIB, 9) in lib.children
    assert root.size == 150
    lonely = Stack(frames=((LIB, 77, "z"),), size=10, count=1)
    assert CUT in {c.text for c in flame_tree([whole, lonely]).children.values()}


def test_the_flame_json_stays_inside_its_script_element() -> None:
    stack = Stack(frames=((USER, 3, 'x = "</script><b>"'), (frames.own_dirs()[0] + "cli.py", 1, "")), size=1, count=1)
    assert "</script>" not in flame_json([stack])


def test_the_console_script_is_leakhunts_own(tmp_path) -> None:  # type: ignore[no-untyped-def]
    entry = tmp_path / "bin" / "leakhunt"
    entry.parent.mkdir()
    entry.write_text("import sys\nfrom leakhunt.cli import main\nsys.exit(main())\n")
    assert frames.kind(str(entry)) == frames.USER
    frames.mark_ours(str(entry))
    assert frames.kind(str(entry)) == frames.OURS


def test_the_allocator_switch_changes_only_what_is_leakhunts_to_change(monkeypatch: pytest.MonkeyPatch) -> None:
    environ: dict[str, str] = {}
    monkeypatch.delitem(sys.modules, "pyarrow", raising=False)
    monkeypatch.delitem(sys.modules, "polars", raising=False)
    switch = native.AllocatorSwitch(environ=environ).apply()
    assert environ == {"ARROW_DEFAULT_MEMORY_POOL": "system", "_RJEM_MALLOC_CONF": native.AllocatorSwitch.JEMALLOC_CONF}
    assert any("system allocator" in note for note in switch.notes)
    switch.restore()
    assert environ == {}
    mine = {"ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}
    switch = native.AllocatorSwitch(environ=mine).apply()
    assert mine["ARROW_DEFAULT_MEMORY_POOL"] == "jemalloc"  # the user's setting stays, and the report says so
    assert any("jemalloc" in note and "yours" in note for note in switch.notes)


def test_polars_loaded_under_the_switch_purges_at_once_so_its_decay_is_not_waited_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import types

    settle = importlib.import_module("leakhunt.settle")  # the module (leakhunt.settle is also a function)
    polars = types.SimpleNamespace(jemalloc_conf="dirty_decay_ms:500,muzzy_decay_ms:1000")
    monkeypatch.setattr(settle, "_polars_started_with", None)
    monkeypatch.delenv("_RJEM_MALLOC_CONF", raising=False)
    monkeypatch.setitem(sys.modules, "polars", polars)
    assert settle.decay_seconds() == 1.5  # polars' own settings
    monkeypatch.setenv("_RJEM_MALLOC_CONF", "dirty_decay_ms:200")
    assert settle.decay_seconds() == pytest.approx(1.2)  # the user's, over polars' own
    monkeypatch.delenv("_RJEM_MALLOC_CONF")
    monkeypatch.delitem(sys.modules, "polars")
    environ: dict[str, str] = {}
    switch = native.AllocatorSwitch(environ=environ).apply()
    monkeypatch.setitem(sys.modules, "polars", polars)  # loaded while recording
    switch.restore()
    assert environ == {} and settle.decay_seconds() == 0.0


def test_unavailable_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    assert "Linux and macOS only" in (native.unavailable() or "")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setitem(sys.modules, "memray", None)  # import memray raises ImportError
    reason = native.unavailable() or ""
    assert "memray is not installed" in reason and 'leakhunt[native]' in reason


def test_a_peak_round_trips_through_json() -> None:
    site = native.NativeSite(file=USER, line=3, code="x", size=10, count=1, libraries=(("numpy", 10),),
                             native=("default_malloc",))
    peak = native.NativePeak(time=1.0, heap=12, explained=10, anon_above_start=20, rss=30, sites=(site,),
                             libraries=(("numpy", 10),), totals=(native.LineTotal(USER, 3, "x", 50, 5, 10, 0, 10),),
                             reservations=(native.Reservation(2 << 30, "mimalloc (Arrow's pool)", "a.py:1"),),
                             stacks=(Stack(frames=(("<native>", 0, "f"), (USER, 3, "x")), size=10, count=1),),
                             notes=("n",), phases=(("scan", 0.5),))
    again = native.NativePeak.from_dict(peak.to_dict())
    assert again == peak and again.coverage == 0.5
    assert list(native.churn_findings(peak.totals, minimum=1)) == list(peak.totals)  # 50 allocated, 10 held


class _SlowReading:
    """A MallocTicker whose reading takes ``cost`` seconds (a heap of millions of chunks)."""

    def __init__(self, cost: float) -> None:
        self.cost, self.reads = cost, 0

    def read(self) -> int:
        import time

        time.sleep(self.cost)
        self.reads += 1
        return self.reads


def test_malloc_is_read_near_the_most_resident_memory_and_at_most_a_twentieth_of_the_time() -> None:
    import time

    ticks = native.LineTicks(0)
    ticks._malloc = slow = _SlowReading(0.005)  # type: ignore[assignment]
    now = time.perf_counter()
    assert ticks._malloc_kept(now, 100 << 20) == 1  # the most so far: read
    # the next reading waits twenty times what this one took (5 ms: 0.1 s), whatever the ticks
    assert ticks._malloc_kept(now + 0.01, 101 << 20) is None  # (the reading ended after now)
    later = time.perf_counter() + 0.2
    assert ticks._malloc_kept(later, 80 << 20) is None  # far below the most seen: not the peak's tick
    assert ticks._malloc_kept(later, 99 << 20) == 2  # within 2 % of it: read
    assert slow.reads == 2


def test_a_costly_malloc_reading_still_leaves_one_within_the_peaks_reach() -> None:
    import time

    ticks = native.LineTicks(0)
    ticks._malloc = slow = _SlowReading(0.05)  # type: ignore[assignment]
    assert ticks._malloc_kept(time.perf_counter(), 100 << 20) == 1
    # twenty times 50 ms would be a second: the wait is cut to the reach of the peak's look
    reach = native._KEPT_TICKS * ticks.interval
    assert ticks._malloc_kept(time.perf_counter() + reach, 100 << 20) == 2
    assert slow.reads == 2


def test_the_peaks_malloc_reading_is_the_nearest_on_either_side_within_reach() -> None:
    reader = native._Reader.__new__(native._Reader)
    kept: list[int | None] = [10, None, None, 50, None, None, 70] + [None] * 30
    reader.ticks = type("Ticks", (), {"kept": kept})()
    assert reader._kept(4) == 40  # min(50, 70) - the first reading (10)
    assert reader._kept(3) == 40
    assert reader._kept(5) == 40  # no reading on the ticks beside it: the nearest ones
    assert reader._kept(6) == 60
    assert reader._kept(6 + native._KEPT_TICKS + 1) is None  # nothing within reach
