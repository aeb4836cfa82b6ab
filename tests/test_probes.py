"""Raw readings: each a number where it can be had and None (never a crash) where it cannot."""

from __future__ import annotations

import gc
import sys
import threading

import pytest

from engine_subprocess import run_scenario
from leakhunt import probes
from leakhunt.probes import Reading

LINUX = sys.platform.startswith("linux")


def test_rss_is_a_positive_int() -> None:
    value = probes.rss()
    assert isinstance(value, int) and value > 0


@pytest.mark.skipif(not LINUX, reason="statm is Linux's")
def test_rss_anon_is_part_of_rss_and_hwm_is_above_it() -> None:
    anon, resident, high = probes.rss_anon(), probes.rss(), probes.hwm()
    assert anon is not None and resident is not None and high is not None
    assert 0 < anon <= resident
    assert high >= anon


def test_read_takes_every_cheap_figure() -> None:
    reading = probes.read()
    assert isinstance(reading, Reading)
    assert reading.rss is not None and reading.rss > 0
    assert reading.traced_domains is None and reading.children is None  # costly: only when asked


def test_object_counts_count_instances_by_module_and_name() -> None:
    class Marker:  # objgraph names a type by its module and __name__
        pass

    made = [Marker() for _ in range(123)]
    counts = probes.object_counts()
    assert counts[f"{__name__}.Marker"] == 123
    assert counts["list"] > 0 and "builtins.list" not in counts  # builtins are named without their module
    del made
    assert probes.object_counts()[f"{__name__}.Marker"] == 0


def test_probes_without_pyarrow_or_tracing_are_none_and_import_nothing() -> None:
    # Importing leakhunt and taking every reading must not import pyarrow (or pandas, numpy):
    # that would cost 100+ ms and change what is measured.
    result = run_scenario(
        """
        import importlib, pkgutil
        import leakhunt
        for mod in ("units", "probes", "settle", "measure", "budget", "hunt", "retention", "growth",
                    "explanation", "judge", "guard", "attribution", "tracing", "frames", "defaults"):
            importlib.import_module("leakhunt." + mod)
        from leakhunt import probes, settle, measure
        reading = probes.read(domains=True, children=True)
        settled = settle()
        with measure(children=True, domains=True) as m:
            pass
        emit({
            "arrow": probes.arrow(), "traced": probes.traced(), "domains": probes.traced_by_domain(),
            "reading_arrow": reading.arrow, "reading_traced": reading.traced,
            "reading_domains": reading.traced_domains, "reading_children": reading.children,
            "arrow_released": settled.arrow_released,
            "m_arrow": m.arrow_growth, "m_traced": m.traced_growth,
            "imported": sorted(n for n in ("pyarrow", "pandas", "numpy") if n in sys.modules),
        })
        """
    )
    assert result["imported"] == []
    assert result["arrow"] is None and result["reading_arrow"] is None and result["m_arrow"] is None
    assert result["traced"] is None and result["reading_traced"] is None and result["m_traced"] is None
    assert result["domains"] is None and result["reading_domains"] is None
    assert result["reading_children"] == 0  # no children: nothing to sum
    assert result["arrow_released"] is False


def test_arrow_reads_the_pool_once_pyarrow_is_imported() -> None:
    pytest.importorskip("pyarrow")
    result = run_scenario(
        """
        from leakhunt import probes
        before = probes.arrow()
        import pyarrow as pa
        empty = probes.arrow()
        buf = pa.allocate_buffer(30_000_000)
        emit({"before": before, "empty": empty, "with_buffer": probes.arrow()})
        """
    )
    assert result["before"] is None
    assert isinstance(result["empty"], int)
    assert result["with_buffer"] - result["empty"] >= 30_000_000


def test_traced_by_domain_puts_numpy_buffers_in_the_numpy_domain() -> None:
    pytest.importorskip("numpy")
    result = run_scenario(
        """
        import tracemalloc
        import numpy as np
        from leakhunt import probes
        tracemalloc.start()
        before = probes.traced_by_domain()
        arr = np.ones(2_500_000)            # 20 MB in numpy's domain
        small = [str(i) * 3 for i in range(20_000)]  # Python heap
        after = probes.traced_by_domain()
        emit({"before": before, "after": after, "traced": probes.traced()})
        """
    )
    before, after = result["before"], result["after"]
    assert set(after) == {"python", "numpy", "pandas", "other"}
    assert after["numpy"] - before["numpy"] >= 20_000_000
    assert 500_000 < after["python"] - before["python"] < 10_000_000
    assert result["traced"] >= sum(after.values()) - 1_000_000


@pytest.mark.skipif(not LINUX, reason="VmHWM reset is Linux's")
def test_peak_window_sees_a_freed_block_and_nested_windows_keep_the_outer_peak() -> None:
    pytest.importorskip("numpy")
    result = run_scenario(
        """
        import numpy as np
        from leakhunt.probes import PeakWindow
        with PeakWindow() as outer:
            big = np.ones(150_000_000 // 8)   # touched: 150 MB resident
            del big
            with PeakWindow() as inner:       # opening resets VmHWM: the outer window keeps 150 MB
                small = np.ones(10_000_000 // 8)
                del small
        emit({"outer": outer.peak - outer.start, "inner": inner.peak - inner.start,
              "mode": outer.mode})
        """
    )
    assert result["mode"] == "hwm"
    assert result["outer"] >= 140_000_000
    assert 5_000_000 <= result["inner"] < 60_000_000


@pytest.mark.skipif(not LINUX, reason="the meter's common case is Linux's /proc")
@pytest.mark.parametrize("path", ["common", "general"])
def test_quick_meter_reads_growth_and_peak_and_nests_with_windows(path: str) -> None:
    # The plugin's cheapest path (issue 9): a kept block reads as growth, a freed one as peak
    # only, and a window around the meter keeps a peak reached inside it (and vice versa). The
    # meter's common case is written out inline; "general" (no getrusage) takes PeakWindow's
    # methods: both give the same figures.
    pytest.importorskip("numpy")
    result = run_scenario(
        """
        import numpy as np
        from leakhunt import probes
        from leakhunt.measure import from_sample
        from leakhunt.probes import PeakWindow, QuickMeter
        if PATH == "general":
            probes._resource = None
        opened = []
        _open = PeakWindow.open
        PeakWindow.open = lambda self, start=None: opened.append(1) or _open(self, start)
        meter = QuickMeter()
        with PeakWindow() as outer:
            meter.start()
            kept = np.ones(60_000_000 // 8)
            transient = np.ones(100_000_000 // 8)
            del transient
            with PeakWindow() as inner:          # resets the mark: the meter keeps its peak
                small = np.ones(5_000_000 // 8)
            kept_figures = from_sample(meter.stop())
            opened.clear()
            meter.start()                        # the same meter again: a fresh window
            freed = np.ones(80_000_000 // 8)
            del freed
            freed_figures = from_sample(meter.stop())
        emit({"kept": kept_figures.rss_growth, "kept_peak": kept_figures.peak,
              "freed": freed_figures.rss_growth, "freed_peak": freed_figures.peak,
              "outer": outer.peak - outer.start, "seconds": kept_figures.seconds, "opened": len(opened)})
        """.replace("PATH", repr(path)),
        small_parent=True,  # above getrusage's floor, whatever this pytest process's peak
    )
    # the second start: inline once the floor under getrusage is known (the first may learn it)
    assert result["opened"] == (0 if path == "common" else 1)
    assert result["kept"] >= 55_000_000
    assert result["kept_peak"] >= 150_000_000
    assert result["freed"] < 20_000_000
    assert result["freed_peak"] >= 75_000_000
    assert result["outer"] >= 150_000_000
    assert result["seconds"] > 0


@pytest.mark.skipif(not LINUX, reason="the kernel's mark and /proc/self/statm are Linux's")
@pytest.mark.parametrize("path", ["meter", "meter-general", "window", "measurer", "measurer-trim"])
def test_a_peak_is_never_below_the_growth_it_ends_with(path: str) -> None:
    # The kernel's mark moves in steps of 32 pages here (benchmarks/mark_lag.py) while statm reads
    # every page: a block that keeps 12 pages used to read a growth of 48 KiB and a peak of 0
    # (so did many of the synthetic benchmark's tests under --leak-report). Every path folds its
    # exact end reading into the peak.
    result = run_scenario(
        """
        import mmap
        from leakhunt import probes
        from leakhunt.measure import Measurer, from_sample
        from leakhunt.probes import PeakWindow, QuickMeter
        if PATH == "meter-general":
            probes._resource = None
        kept, pairs = [], []
        meter = QuickMeter()
        for _ in range(20):
            block = mmap.mmap(-1, 12 * mmap.PAGESIZE)
            if PATH.startswith("meter"):
                meter.start()
            elif PATH == "window":
                window = PeakWindow().open()
            else:
                measurer = Measurer(settle=False, trim=PATH == "measurer-trim").start()
            for page in range(12):
                block[page * mmap.PAGESIZE] = 1
            kept.append(block)
            if PATH.startswith("meter"):
                figures = from_sample(meter.stop())
                pairs.append((figures.rss_growth, figures.peak))
            elif PATH == "window":
                peak = window.close()
                pairs.append((probes.rss() - window.start, peak - window.start))
            else:
                figures = measurer.stop()
                measurer.close()
                pairs.append((figures.rss_growth, figures.peak))
        emit(pairs)
        """.replace("PATH", repr(path)),
        small_parent=True,  # above getrusage's floor: the mark is read, not /proc/self/status
    )
    page = 4096
    assert [pair for pair in result if pair[0] < 12 * page] == [], result
    assert [pair for pair in result if pair[1] < pair[0]] == [], result


@pytest.mark.skipif(not LINUX, reason="the kernel's mark and /proc/self/statm are Linux's")
@pytest.mark.parametrize("path", ["meter", "meter-general", "window"])
def test_the_mark_is_reset_only_when_it_stands_above_the_start(path: str) -> None:
    # Issue 9: a window opened where the mark is no higher than the RSS it starts from leaves the
    # mark alone (one system call fewer per test of a flat suite). The figures must not change:
    # a peak reached before the window opened is never its peak, and one reached inside is.
    pytest.importorskip("numpy")
    result = run_scenario(
        """
        import os
        import numpy as np
        from leakhunt import probes
        from leakhunt.measure import from_sample
        from leakhunt.probes import PeakWindow, QuickMeter
        if PATH == "meter-general":
            probes._resource = None
        learnt = probes.PeakWindow().open()  # opens the files and learns whether the mark resets
        learnt.close()
        resets = []
        real_write = os.write
        def counted_write(fd, data):  # every reset is a write to clear_refs, whichever path
            if fd == probes._fds.get("clear_refs"):
                resets.append(1)
            return real_write(fd, data)
        os.write = counted_write
        meter = QuickMeter()
        def measured(touch):
            before = len(resets)
            if PATH.startswith("meter"):
                meter.start()
                touch()
                figures = from_sample(meter.stop())
                peak = figures.peak
            else:
                window = PeakWindow().open()
                touch()
                peak = window.close() - window.start
            return {"peak": peak, "reset": len(resets) - before}
        def transient(size):
            def touch():
                block = np.ones(size // 8)
                del block
            return touch
        nothing = lambda: None
        transient(100_000_000)()             # a peak before any window: the mark stands high
        first = measured(nothing)            # must reset: else it reads the 100 MB
        second = measured(transient(50_000_000))  # the mark is at the start: no reset needed
        third = measured(nothing)            # the 50 MB peak stands above the start: reset
        emit({"first": first, "second": second, "third": third, "mode": learnt.mode})
        """.replace("PATH", repr(path)),
        small_parent=True,  # above getrusage's floor, whatever this pytest process's peak
    )
    if result["mode"] != "hwm":
        pytest.skip("the kernel's mark cannot be reset here: windows sample instead")
    first, second, third = result["first"], result["second"], result["third"]
    assert first["peak"] < 20_000_000 and third["peak"] < 20_000_000, result
    assert second["peak"] >= 45_000_000, result
    assert (first["reset"], second["reset"], third["reset"]) == (1, 0, 1), result


@pytest.mark.skipif(not LINUX, reason="getrusage's mark above the floor is Linux's")
def test_a_window_in_one_thread_sees_memory_another_thread_touched() -> None:
    # The mark is the process's: read through getrusage(RUSAGE_THREAD) from a worker thread (a
    # Dask worker's task thread) it still counts what the main thread allocated meanwhile.
    pytest.importorskip("numpy")
    result = run_scenario(
        """
        import threading
        import numpy as np
        from leakhunt import probes
        opened, allocated, closed = threading.Event(), threading.Event(), {}
        def task():
            window = probes.PeakWindow().open()
            opened.set()
            allocated.wait(60)
            closed["peak"] = window.close() - window.start
            closed["mode"] = window.mode
        worker = threading.Thread(target=task)
        worker.start()
        opened.wait(60)
        block = np.ones(80_000_000 // 8)
        del block
        allocated.set()
        worker.join()
        emit(closed)
        """,
        small_parent=True,
    )
    if result["mode"] != "hwm":
        pytest.skip("the kernel's mark cannot be reset here: windows sample instead")
    assert result["peak"] >= 75_000_000


def test_peak_window_falls_back_to_a_sampling_thread_and_stops_it() -> None:
    pytest.importorskip("numpy")
    result = run_scenario(
        """
        import threading, time
        import numpy as np
        from leakhunt import probes
        probes._reset_hwm = lambda: False     # as where /proc/self/clear_refs is not writable
        window = probes.PeakWindow().open()
        held = np.ones(100_000_000 // 8)
        deadline = time.monotonic() + 60      # hold until the sampler has seen it (not a timing claim)
        while window._max - window.start < 90_000_000 and time.monotonic() < deadline:
            time.sleep(0.005)
        del held
        running = [t.name for t in threading.enumerate()]
        window.close()
        emit({"mode": window.mode, "peak": window.peak - window.start, "running": running,
              "after": [t.name for t in threading.enumerate()]})
        """
    )
    assert result["mode"] == "sampled"
    assert result["peak"] >= 90_000_000
    assert "leakhunt-peak-sampler" in result["running"]
    assert "leakhunt-peak-sampler" not in result["after"]


def test_children_memory_sums_live_children_and_filters_by_pid() -> None:
    result = run_scenario(
        """
        import subprocess
        from leakhunt import probes
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import sys; b = b'x' * 60_000_000; print('ready', flush=True); sys.stdin.read()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        child.stdout.readline()
        total = probes.children_memory()
        only_it = probes.children_memory(include_pids=[child.pid])
        nobody = probes.children_memory(include_pids=[])
        child.stdin.close(); child.wait()
        emit({"total": total, "only_it": only_it, "nobody": nobody, "gone": probes.children_memory()})
        """
    )
    assert result["total"] >= 55_000_000
    assert result["only_it"] >= 55_000_000
    assert result["nobody"] == 0
    assert result["gone"] == 0


def test_children_memory_leaves_out_the_resource_tracker() -> None:
    result = run_scenario(
        """
        from multiprocessing import resource_tracker
        from leakhunt import probes
        resource_tracker.ensure_running()
        tracker = resource_tracker._resource_tracker._pid
        import psutil
        kids = [p.pid for p in psutil.Process().children(recursive=True)]
        counted = [p.pid for p in probes._child_processes()]
        emit({"tracker": tracker, "kids": kids, "counted": counted,
              "memory": probes.children_memory()})
        """
    )
    assert result["tracker"] in result["kids"]
    assert result["tracker"] not in result["counted"]
    assert result["memory"] == 0


def test_reading_is_a_slotted_value() -> None:
    # Not frozen (a frozen dataclass costs several times as much to build, and a reading is
    # taken twice per measured test: issue 9), but slotted: no per-instance dict, and a misspelt figure cannot be added.
    reading = probes.read()
    assert not hasattr(reading, "__dict__")
    with pytest.raises(AttributeError):
        reading.rsss = 0  # type: ignore[attr-defined]


def test_object_counts_do_not_change_gc_state() -> None:
    enabled, thresholds = gc.isenabled(), gc.get_threshold()
    probes.object_counts()
    assert (gc.isenabled(), gc.get_threshold()) == (enabled, thresholds)


def test_no_thread_left_behind_by_a_reading() -> None:
    before = {t.name for t in threading.enumerate()}
    probes.read(domains=True, children=True)
    with probes.PeakWindow():
        pass
    assert {t.name for t in threading.enumerate()} <= before


def test_readings_in_a_forked_child_describe_the_child() -> None:
    # /proc/self descriptors are kept open between readings; one inherited across fork would
    # still describe the parent, so the child must reopen them.
    code = """
import json, os
import numpy as np
from leakhunt import probes
probes.rss(); probes.hwm()  # open the descriptors in the parent
parent = probes.rss()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    keep = np.ones(80_000_000 // 8)
    os.write(w, json.dumps({"child": probes.rss(), "hwm": probes.hwm()}).encode())
    os._exit(0)
os.waitpid(pid, 0)
child = json.loads(os.read(r, 1000))
emit({"parent": parent, "parent_after": probes.rss(), **child})
"""
    out = run_scenario(code)
    assert out["child"] - out["parent"] > 60_000_000  # the child's 80 MB, not the parent's figure
    assert out["hwm"] >= out["child"]
    assert abs(out["parent_after"] - out["parent"]) < 20_000_000


def test_the_cheap_mark_is_the_kernels_mark_even_under_a_big_parents_floor() -> None:
    # getrusage's ru_maxrss carries the peak from before exec as a floor: a Python spawned by a
    # 200 MB parent reads 200 MB there. hwm_mark() must read the process's own mark all the same.
    code = """
import json, subprocess, sys
import numpy as np
parent = np.ones(200 * 2**20 // 8)  # touched: resident in the parent when it spawns
child = '''
import json, resource
import numpy as np
from leakhunt import probes
ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
marks = [probes.hwm_mark(), probes.hwm()]
block = np.ones(30 * 2**20 // 8)  # rises above its own mark, still under the parent's floor
marks += [probes.hwm_mark(), probes.hwm(), probes.hwm_mark()]
print(json.dumps({"ru": ru, "marks": marks}))
'''
out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout
emit(json.loads(out.splitlines()[-1]))
"""
    out = run_scenario(code)
    mib = 2**20
    assert out["ru"] > 190 * mib  # the floor is there (the other way round of what is tested)
    a, b, c, d, e = out["marks"]
    slack = 2**20  # the kernel's counters are per CPU: two readings may differ by a few pages
    assert a <= b + slack and b <= c + slack and c <= d + slack and d <= e + slack  # one figure
    assert b < 150 * mib and d - b > 25 * mib  # the child's own mark, not the parent's floor


def test_the_cheap_mark_follows_the_kernels_mark_without_a_floor() -> None:
    import numpy as np

    slack = 2**20  # per-CPU counters: a few pages apart
    block = np.ones(64 * 2**20 // 8)
    above = probes.rss()
    marks = [probes.hwm_mark(), probes.hwm(), probes.hwm_mark()]
    del block
    assert all(m >= above - slack for m in marks)
    assert abs(marks[0] - marks[1]) < slack and abs(marks[2] - marks[1]) < slack
