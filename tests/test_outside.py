"""Issue 26, timelines that tell the truth: RSS read from outside the script has no gap where
C code holds the GIL; the in-process thread's gaps are marked as gaps, and the sample count said."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from leakhunt.outside import OutsideSamples
from leakhunt.report.timeline_text import gaps_text
from leakhunt.timeline import Timeline

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# ctypes.PyDLL calls C without releasing the GIL: usleep holds it for a whole second, as a long
# sort or a C extension that keeps the GIL would.
HOLD_THE_GIL = "import ctypes\nctypes.PyDLL(None).usleep(1_000_000)\n"


def test_the_outside_sampler_reads_while_the_gil_is_held() -> None:
    """Both samplers over the same second with the GIL held: the thread sees a gap of about a
    second, the outside process none."""
    code = textwrap.dedent("""
        import ctypes, json, time
        from leakhunt.outside import OutsideSampler
        from leakhunt.timeline import Sampler

        outside = OutsideSampler(0.01)
        assert outside.start(), outside.note
        sampler = Sampler(0.01).start()
        time.sleep(0.1)
        block = bytearray(40 * 1024 * 1024)
        ctypes.PyDLL(None).usleep(1_000_000)
        del block
        time.sleep(0.1)
        inside = sampler.stop()
        samples = outside.stop()
        merged = inside.with_outside(samples, sampler.t0)
        print(json.dumps({"inside": inside.gaps(), "merged": merged.gaps(), "outside": merged.outside,
                          "count": merged.count(), "peak": merged.max_of("rss") - min(samples.rss)}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert max(b - a for a, b in seen["inside"]) >= 0.95  # the thread: a gap of a second
    assert seen["outside"] and seen["count"] >= 30
    assert all(b - a < 0.5 for a, b in seen["merged"])  # the other process went on reading
    assert seen["peak"] >= 35 * 1024 * 1024  # and saw the 40 MiB held during the gap


def test_leakhunt_run_draws_the_timeline_from_outside(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text("block = bytearray(40 * 1024 * 1024)\n" + HOLD_THE_GIL)
    proc = subprocess.run([sys.executable, "-m", "leakhunt.cli", "run", "--json", "r.json", "-o", "r.html", "job.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    samples = json.loads((tmp_path / "r.json").read_text())["samples"]
    times = [t for t, rss in zip(samples["t"], samples["rss"]) if rss is not None]
    assert samples["outside"] is True and len(times) >= 30
    assert max(b - a for a, b in zip(times, times[1:])) < 0.5
    assert f"{len(times)} samples every 10 ms" in proc.stderr and "no sample for" not in proc.stderr
    assert f"RSS read every 10 ms from outside the script (another process): {len(times)} samples." in \
        (tmp_path / "r.html").read_text()


def test_a_gap_is_marked_and_said() -> None:
    timeline = Timeline(interval=0.01, t=[0.0, 0.01, 1.01, 1.02, 1.03], rss=[5, 6, 9, 9, None],
                        arrow=[None] * 5, children=[None] * 5)
    assert timeline.gaps() == [(0.01, 1.01)] and timeline.count() == 4
    assert gaps_text(timeline) == ", no sample for 1.00 s (1 gap)"
    steady = Timeline(interval=0.01, t=[0.0, 0.01, 0.02, 0.05], rss=[5, 6, 9, 9], arrow=[None] * 4,
                      children=[None] * 4)
    assert steady.gaps() == [] and gaps_text(steady) == ""  # a few late ticks are not a gap


def test_outside_samples_merge_on_the_run_s_clock() -> None:
    inside = Timeline(interval=0.01, t=[0.0, 0.5, 1.0], rss=[1, 2, 3], arrow=[10, None, 30], children=[None] * 3)
    outside = OutsideSamples(t=(99.9, 100.2, 100.7, 101.4), rss=(4, 5, 6, 7), interval=0.01, cpu_seconds=0.0)
    merged = inside.with_outside(outside, t0=100.0)
    assert merged.outside and merged.count() == 3 and merged.count("arrow") == 2
    # before the run's start and after its end (the tracer's work): left out; the run's own last
    # sample ends it
    assert [round(t, 6) for t in merged.t] == [0.0, 0.2, 0.7, 1.0]
    assert merged.rss == [None, 5, 6, 3] and merged.arrow == [10, None, None, 30]
    other_clock = OutsideSamples(t=(5000.0,), rss=(4,), interval=0.01, cpu_seconds=0.0)
    assert inside.with_outside(other_clock, t0=100.0) is inside
    assert Timeline.from_dict(merged.to_dict()).outside  # the JSON says who read RSS


def test_the_duration_is_the_script_s_run_and_the_timeline_ends_with_it(tmp_path: Path) -> None:
    """A traced run's duration once included the tracer's work after the script (the settling
    and the reading of what was alive): the timeline ended seconds before the duration did."""
    (tmp_path / "job.py").write_text("import numpy as np\nkeep = [np.ones(100_000) for _ in range(60)]\n"
                                     "rows = [list(range(200)) for _ in range(3000)]\n")
    proc = subprocess.run([sys.executable, "-m", "leakhunt.cli", "run", "-q", "--trace=tracemalloc", "--json",
                           "r.json", "job.py"], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "r.json").read_text())
    samples = record["samples"]
    assert samples["outside"] and samples["t"][-1] == round(record["seconds"], 6)  # the run's own end
