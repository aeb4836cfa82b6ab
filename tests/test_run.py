"""`leakhunt run` and `leakhunt report`: figures, exit statuses, errors, the HTML report.

Every run whose memory matters happens in a subprocess (`python -m leakhunt.cli run ...`), so
the figures are the target's and not pytest's. Sizes are far from every tolerance.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from leakhunt.timeline import RunRecord, Sampler, Timeline, parse_interval

MiB = 1024 * 1024

# A transient 200 MiB peak and 50 MiB kept in a global: the figures the tests expect.
TRANSIENT_AND_KEPT = """
import numpy as np

KEPT = np.ones(50 * 1024 * 1024 // 8)          # 50 MiB, alive until the end

def transient():
    block = np.ones(200 * 1024 * 1024 // 8)    # 200 MiB, touched, then freed
    return float(block.sum())

transient()
"""


def leakhunt(*args: str, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leakhunt.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One real run of TRANSIENT_AND_KEPT with --json and -o, shared by several tests."""
    d = tmp_path_factory.mktemp("run")
    write(d / "job.py", TRANSIENT_AND_KEPT)
    proc = leakhunt("run", "--json", "run.json", "-o", "run.html", "job.py", cwd=d)
    assert proc.returncode == 0, proc.stderr
    return {"dir": d, "proc": proc, "json": json.loads((d / "run.json").read_text()),
            "html": (d / "run.html").read_text()}


# --------------------------------------------------------------------------------------
# figures


def test_transient_peak_and_kept_allocation_within_tolerance(profiled: dict) -> None:
    data = profiled["json"]
    # 250 MiB at the peak (+ numpy's import, ~12 MiB); 50 MiB kept (+ the import).
    assert 250 * MiB <= data["peak_above_start"] <= 300 * MiB
    assert 50 * MiB <= data["final_growth"] <= 85 * MiB
    # the transient part alone: what was freed between the peak and the end
    assert 185 * MiB <= data["peak_rss"] - data["final_rss"] <= 215 * MiB
    assert data["peak_rss"] == data["start_rss"] + data["peak_above_start"]
    assert data["peak_source"] == "hwm"
    assert data["arrow_peak"] is None  # pyarrow never imported: unavailable, not 0
    assert data["exit_status"] == 0 and data["error"] is None


def test_json_holds_the_samples(profiled: dict) -> None:
    samples = profiled["json"]["samples"]
    assert samples["interval"] == pytest.approx(0.01)
    n = len(samples["t"])
    assert n >= 2 and len(samples["rss"]) == len(samples["arrow"]) == len(samples["children"]) == n
    assert samples["t"] == sorted(samples["t"])
    assert max(v for v in samples["rss"] if v is not None) <= profiled["json"]["peak_rss"]


def test_json_says_what_leakhunt_spent_after_the_script(profiled: dict) -> None:
    """after_seconds: the script's return to the record; judgement_seconds: of that, saying what
    keeps the 50 MiB the job kept alive (due: above the exit explanation's floor)."""
    data = profiled["json"]
    assert data["explanation"] is not None
    assert 0 < data["judgement_seconds"] <= data["after_seconds"]


def test_terminal_summary(profiled: dict) -> None:
    err = profiled["proc"].stderr
    assert "leakhunt run: job.py" in err
    for label in ("peak RSS", "peak above start", "kept at the end", "Arrow pool peak", "exit status"):
        assert label in err
    assert "wrote run.json" in err and "wrote run.html" in err
    assert "\x1b[K" not in err  # no live status line when stderr is not a terminal


def test_arrow_pool_peak(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    write(tmp_path / "arrow_job.py", """
        import pyarrow as pa
        import pyarrow.compute as pc
        values = pa.array(range(4_000_000), type=pa.int64())   # 30.5 MiB in Arrow's pool
        doubled = pc.multiply(values, 2)                       # 30.5 MiB more
        del values, doubled
    """)
    proc = leakhunt("run", "-q", "--json", "r.json", "arrow_job.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert 55 * MiB <= data["arrow_peak"] <= 70 * MiB
    assert data["arrow_final"] == 0


def test_trace_shows_the_sites_alive_at_the_peak(tmp_path: Path) -> None:
    write(tmp_path / "traced.py", """
        import time
        kept = bytearray(30 * 1024 * 1024)           # line 3: kept

        def spike():
            big = bytearray(120 * 1024 * 1024)       # line 6: the peak
            time.sleep(1.0)                           # long enough for the sampler to see it, under load too
            return len(big)

        spike()
    """)
    proc = leakhunt("run", "--trace=tracemalloc", "--json", "r.json", "-o", "r.html", "traced.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    trace = json.loads((tmp_path / "r.json").read_text())["trace"]
    top = trace["sites"][0]
    assert top["filename"].endswith("traced.py") and top["lineno"] == 6
    assert 115 * MiB <= top["size"] <= 125 * MiB
    assert "bytearray(120" in top["code"]
    kept = [s for s in trace["sites"] if s["lineno"] == 3]
    assert kept and 29 * MiB <= kept[0]["size"] <= 31 * MiB
    assert trace["domains"]["python"] >= 145 * MiB
    assert "alive at the peak" in proc.stderr and "traced.py:6" in proc.stderr
    page = (tmp_path / "r.html").read_text()
    assert "The peak, explained" in page and "traced.py:6" in page and "bytearray(120" in page


def test_children_peak(tmp_path: Path) -> None:
    write(tmp_path / "workers.py", """
        import multiprocessing as mp
        import time

        def work(_):
            block = bytearray(100 * 1024 * 1024)     # 100 MiB in the child, touched
            time.sleep(0.6)                           # several 50 ms children samples
            return len(block)

        if __name__ == "__main__":
            with mp.get_context("fork").Pool(1) as pool:
                print(pool.map(work, [0]))
    """)
    proc = leakhunt("run", "--children", "--json", "r.json", "workers.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert 90 * MiB <= data["children_peak"] <= 160 * MiB
    assert data["peak_above_start"] < 50 * MiB  # the parent's own RSS did not move
    assert "children peak" in proc.stderr and "not sampled" not in proc.stderr


# --------------------------------------------------------------------------------------
# running like python


def test_target_sees_main_argv_and_its_exit_status(tmp_path: Path) -> None:
    write(tmp_path / "args.py", """
        import json, os, sys
        print(json.dumps({"name": __name__, "argv": sys.argv, "file": __file__,
                          "path0": sys.path[0]}))
        sys.exit(3)
    """)
    proc = leakhunt("run", "-q", "args.py", "--flag", "x", cwd=tmp_path)
    assert proc.returncode == 3
    seen = json.loads(proc.stdout)
    assert seen == {"name": "__main__", "argv": ["args.py", "--flag", "x"],
                    "file": str(tmp_path / "args.py"), "path0": str(tmp_path)}


def test_module_target(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write(pkg / "tool.py", """
        import sys
        print(__name__, sys.argv[1:])
    """)
    proc = leakhunt("run", "-q", "-m", "pkg.tool", "--json", "j", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "__main__ ['--json', 'j']"  # after -m, every argument is the module's


def test_exception_is_shown_like_python_and_figures_still_written(tmp_path: Path) -> None:
    write(tmp_path / "fails.py", """
        import numpy as np
        held = np.ones(40 * 1024 * 1024 // 8)

        def load():
            raise ValueError("no such column: 'price'")

        load()
    """)
    plain = subprocess.run([sys.executable, "fails.py"], cwd=tmp_path, capture_output=True, text=True)
    proc = leakhunt("run", "--json", "r.json", "-o", "r.html", "fails.py", cwd=tmp_path)
    assert proc.returncode == plain.returncode == 1
    assert proc.stderr.startswith(plain.stderr)  # the same traceback, then our summary
    assert "leakhunt" not in plain.stderr and "runpy" not in proc.stderr.split("leakhunt run:")[0]
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["error"] == "ValueError: no such column: 'price'"
    assert data["peak_above_start"] >= 40 * MiB
    assert "ValueError" in (tmp_path / "r.html").read_text()


def test_syntax_error_in_target(tmp_path: Path) -> None:
    write(tmp_path / "broken.py", "def f(:\n")
    proc = leakhunt("run", "-q", "broken.py", cwd=tmp_path)
    assert proc.returncode == 1
    assert "SyntaxError" in proc.stderr and "broken.py" in proc.stderr


def test_sigterm_still_writes_the_figures(tmp_path: Path) -> None:
    import signal
    import time

    write(tmp_path / "slow.py", """
        import time
        held = bytearray(40 * 1024 * 1024)
        print("started", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-m", "leakhunt.cli", "run", "--json", "r.json", "slow.py"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "started\n"
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143
    assert "terminated (SIGTERM)" in err
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["exit_status"] == 143 and data["peak_above_start"] >= 40 * MiB


# --------------------------------------------------------------------------------------
# budgets


@pytest.mark.parametrize(("spec", "status"), [("peak=60MB", 1), ("peak=2GB,rss=1GB", 0)])
def test_budget_exit_status(tmp_path: Path, spec: str, status: int) -> None:
    write(tmp_path / "job.py", """
        big = bytearray(150 * 1024 * 1024)
        del big
    """)
    proc = leakhunt("run", "--budget", spec, "--json", "r.json", "job.py", cwd=tmp_path)
    assert proc.returncode == status, proc.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    if status:
        assert "broke its memory budget" in proc.stderr
        assert "high-water mark above the start" in proc.stderr and "> budget 60MB = 57.2 MiB" in proc.stderr
        assert [v["figure"] for v in data["violations"]] == ["peak"]
    else:
        assert data["violations"] == [] and "ok" in proc.stderr


def test_budget_broken_is_reported_even_with_quiet(tmp_path: Path) -> None:
    write(tmp_path / "job.py", "kept = bytearray(80 * 1024 * 1024)\n")
    proc = leakhunt("run", "-q", "--budget", "rss=20MB", "job.py", cwd=tmp_path)
    assert proc.returncode == 1
    assert "settled anonymous RSS growth" in proc.stderr and "rss=20MB = 19.1 MiB" in proc.stderr


_NATIVE_80MB = """\
import ctypes
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
kept = libc.malloc(80 * 1024 * 1024)
ctypes.memset(kept, 1, 80 * 1024 * 1024)
"""


def test_budget_failure_advice_is_for_leakhunt_run(tmp_path: Path) -> None:
    """Issue 26: an untraced `leakhunt run --budget` failure advised pytest's options (memory no
    Python object holds: the advice is how to trace it)."""
    write(tmp_path / "job.py", _NATIVE_80MB)
    proc = leakhunt("run", "--budget", "rss=20MB", "-o", "r.html", "job.py", cwd=tmp_path)
    assert proc.returncode == 1
    page = (tmp_path / "r.html").read_text()
    assert "the roots found keep only" in proc.stderr  # a ctypes handle is not what keeps 80 MiB
    for text in (proc.stderr, page):
        assert "leakhunt run --trace" in text
        assert "pytest" not in text and "--leak-no-rerun" not in text and "--leak-trace" not in text
    assert proc.stderr.count("allocation sites: not traced") == 1


_KEPT_ARRAYS = """\
import numpy as np
KEPT = []
for i in range(4):
    KEPT.append(np.ones(2_500_000))  # 19.1 MiB each
"""


def test_an_untraced_run_names_what_keeps_its_memory_at_the_end(tmp_path: Path) -> None:
    """Issue 19 item 6: without --trace, the arrays the script made are told from older ones (a
    baseline of the data holders at the start), so its roots explain what it kept."""
    write(tmp_path / "job.py", _KEPT_ARRAYS)
    proc = leakhunt("run", "--json", "r.json", "job.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "alive at exit:" in proc.stderr
    assert "KEPT (global in __main__) keeps 4 buffers, 76.3 MiB" in proc.stderr
    share = int(re.search(r"(\d+)% of [^:]* explained", proc.stderr).group(1))
    assert share >= 90, proc.stderr
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["explanation"]["roots"][0]["root"].startswith("KEPT")
    # numpy, imported on the script's first line, was set aside (leakhunt/imports.py): the
    # arrays made after it are still the script's
    assert record["imports_set_aside"] == ["numpy"]


_FRAGMENTS = "ROWS = [{{'id': i, 'name': str(i)}} for i in range(600_000)]\n{keep}\ndel ROWS\n"


@pytest.mark.parametrize(("keep", "fragmented"), [("KEEP = ROWS[::100]", True), ("KEEP = None", False)])
def test_memory_pythons_allocator_keeps_is_a_named_place(tmp_path: Path, keep: str, fragmented: bool) -> None:
    """Keeping one small dict in a hundred keeps nearly every arena of pymalloc's: freed memory
    it can never give back, named as such (not 'not explained'); freeing them all keeps none."""
    write(tmp_path / "job.py", _FRAGMENTS.format(keep=keep))
    proc = leakhunt("run", "--explain", "--json", "r.json", "job.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    explanation = json.loads((tmp_path / "r.json").read_text())["explanation"]
    if explanation is None:  # kept nothing at all (RSS read no growth): nothing to explain
        assert not fragmented, proc.stderr
        return
    kept_by_pymalloc = dict(explanation["accounting"])["pymalloc"]
    if fragmented:
        assert kept_by_pymalloc > 100 * 2**20, explanation["accounting"]
        assert "freed, kept by Python's allocator" in proc.stderr and "not explained" not in proc.stderr
        assert explanation["roots"][0]["root"] == "KEEP (global in __main__)"
    else:
        assert kept_by_pymalloc < 8 * 2**20, explanation["accounting"]


@pytest.mark.parametrize(("options", "explained"), [((), False), (("--explain",), True)])
def test_a_script_that_kept_little_beyond_its_imports_is_not_searched(tmp_path: Path, options: tuple[str, ...],
                                                                       explained: bool) -> None:
    """The search over everything a script left alive takes seconds: by default it runs when the
    script kept 16 MiB or more beyond what its imports took; --explain asks for it anyway."""
    write(tmp_path / "job.py", "import numpy as np\nSMALL = np.ones(1000)\n")
    proc = leakhunt("run", *options, "job.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert ("alive at exit:" in proc.stderr) is explained
    assert "kept at the end" in proc.stderr


_REMEMBER = """\
import numpy as np

def remember(x, cache={default}):
    {body}

for i in range(4):
    remember(np.ones(2_500_000))  # 19.1 MiB each
"""


@pytest.mark.parametrize(("default", "body", "kept"), [
    ("[]", "cache.append(x)", True),
    ("None", "cache = [] if cache is None else cache\n    cache.append(x)", False),
])
def test_a_scripts_function_caching_in_its_default_argument_is_a_root(tmp_path: Path, default: str, body: str,
                                                                     kept: bool) -> None:
    """A function the script made is its code, unless it holds data: a list default appended to
    keeps every array (it was counted as code loaded: 6 % explained); with None as the default
    nothing is kept and the function is code again."""
    write(tmp_path / "job.py", _REMEMBER.format(default=default, body=body))
    proc = leakhunt("run", "--explain", "job.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert ("remember (global in __main__) keeps 4 buffers, 76.3 MiB" in proc.stderr) is kept, proc.stderr
    assert ("a default argument is made once" in proc.stderr) is kept
    if not kept:
        assert "remember (global in __main__)" not in proc.stderr


def test_no_explain_leaves_the_end_unexplained(tmp_path: Path) -> None:
    """The other way: --no-explain does not look for what keeps memory alive (same figures)."""
    write(tmp_path / "job.py", _KEPT_ARRAYS)
    proc = leakhunt("run", "--no-explain", "job.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "alive at exit:" not in proc.stderr and "KEPT" not in proc.stderr
    assert "kept at the end" in proc.stderr


def test_a_native_run_lists_the_lines_alive_at_the_end(tmp_path: Path) -> None:
    """With memray, what the run kept at its end comes with the lines that allocated it."""
    pytest.importorskip("memray")
    write(tmp_path / "job.py", _KEPT_ARRAYS)
    proc = leakhunt("run", "--trace=native", "job.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    end = proc.stderr.split("alive at exit:", 1)[1]
    assert "biggest allocation sites alive (traced):" in end
    assert re.search(r"76\.3 MiB  job\.py:4 \(KEPT\.append", end), end


_POLARS_FRAME = """\
import polars as pl
frame = pl.select(pl.int_range(0, 8_000_000).alias("x")).with_columns(y=pl.col("x") * 2, z=pl.col("x") + 1)
total = int(frame["z"].sum())  # 183 MiB in polars' own allocator
{end}
"""


@pytest.mark.parametrize(("end", "status"), [("del frame", 0), ("KEEP = [frame]", 1)])
def test_memory_polars_freed_is_not_kept(tmp_path: Path, end: str, status: int) -> None:
    """polars' jemalloc gives freed pages back on a timer (about a second later): a run that
    dropped its frame kept nothing, one that keeps it breaks the budget."""
    pytest.importorskip("polars")
    write(tmp_path / "job.py", _POLARS_FRAME.format(end=end))
    proc = leakhunt("run", "--budget", "rss=60MB", "job.py", cwd=tmp_path)
    assert proc.returncode == status, proc.stderr
    assert ("broke its memory budget" in proc.stderr) is bool(status)
    if status:  # the script's own module is where its roots live, and polars' classes are code
        assert "KEEP (global in __main__) keeps 1 buffer, 183.1 MiB" in proc.stderr
        assert "class DataFrame" not in proc.stderr and "(global in polars." not in proc.stderr


def test_target_failure_status_wins_over_budget(tmp_path: Path) -> None:
    write(tmp_path / "job.py", "x = bytearray(80 * 1024 * 1024)\nraise SystemExit(4)\n")
    proc = leakhunt("run", "-q", "--budget", "peak=1MB", "job.py", cwd=tmp_path)
    assert proc.returncode == 4


# --------------------------------------------------------------------------------------
# bad arguments: exit status 2 and a message that names the value


@pytest.mark.parametrize(("args", "message"), [
    (["missing.py"], "cannot open script 'missing.py'"),
    ([], "no script given"),
    (["-m"], "-m needs a module name"),
    (["-m", "no_such_module_xyz"], "no module named 'no_such_module_xyz'"),
    (["--interval", "0", "ok.py"], "invalid interval '0'"),
    (["--interval", "fast", "ok.py"], "invalid interval 'fast'"),
    (["--budget", "peak=lots", "ok.py"], "peak='lots' is not a valid size"),
    (["--budget", "speed=1MB", "ok.py"], "unknown memory budget keyword 'speed'"),
    (["--budget", "leak=1MB", "ok.py"], "leak= needs repeated calls"),
    (["--trace-frames", "0", "ok.py"], "invalid --trace-frames '0'"),
    # issue 26: an option that would change nothing is an error, and a near miss names the option
    (["--top", "3", "ok.py"], "--top only applies to a traced run: add --trace, or drop --top"),
    (["--trace-frames", "5", "--top", "2", "ok.py"], "--top and --trace-frames only apply to a traced run"),
    (["--trace-frame", "5", "--trace", "ok.py"], "unrecognized argument: '--trace-frame' (did you mean --trace-frames?)"),
    (["--tracee", "ok.py"], "leakhunt run: error: unrecognized argument: '--tracee' (did you mean --trace?)"),
    (["-o", "ok.py/r.html", "ok.py"], "-o 'ok.py/r.html': 'ok.py' is a file, not a directory"),
    (["--json", "ok.py/sub/r.json", "ok.py"], "--json 'ok.py/sub/r.json': 'ok.py' is a file, not a directory"),
    (["-o", "r.xml", "ok.py"], "-o 'r.xml' has suffix '.xml': the file name must end in .html, .htm, .txt, .json, .png"),
    (["--json", "r.html", "ok.py"], "--json 'r.html' has suffix '.html': the file name must end in .json"),
    (["-o", "adir", "ok.py"], "-o 'adir' is a directory: give a file name such as 'adir/report.html'"),
])
def test_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "ok.py").write_text("")
    (tmp_path / "adir").mkdir()
    proc = leakhunt("run", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not list(tmp_path.glob("*.json")) and not list(tmp_path.glob("*.html"))


def test_missing_matplotlib_names_the_extra(tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "matplotlib.py").write_text("raise ImportError('matplotlib is broken here')\n")
    (tmp_path / "ok.py").write_text("x = 1\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")]))
    proc = leakhunt("run", "-q", "--json", "r.json", "-o", "r.html", "ok.py", cwd=tmp_path, env=env)
    assert proc.returncode == 1
    assert 'pip install "leakhunt[html]"' in proc.stderr
    assert (tmp_path / "r.json").exists() and not (tmp_path / "r.html").exists()  # JSON still written


# --------------------------------------------------------------------------------------
# the HTML report and `leakhunt report`


def test_html_report_is_self_contained_with_the_plot(profiled: dict) -> None:
    page = profiled["html"]
    assert page.startswith("<!DOCTYPE html>")
    assert '<svg id="leakhunt-timeline"' in page and "<path" in page
    # nothing to fetch: no external src/href, no CSS url() or @import, no script
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert not re.search(r"url\((?!#)", page)  # url(#clip) points inside the page
    assert "@import" not in page and "<script" not in page
    assert "<metadata>" not in page
    assert "peak RSS" in page and "kept at the end" in page


def test_report_command_rerenders_a_saved_run(profiled: dict, tmp_path: Path) -> None:
    proc = leakhunt("report", str(profiled["dir"] / "run.json"), "-o", "again.html", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "again.html").read_text()
    assert '<svg id="leakhunt-timeline"' in page
    proc = leakhunt("report", str(profiled["dir"] / "run.json"), "-o", "plot.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    ("{not json", "is not JSON"),
    ('{"schema": "something.else"}', "is not a `leakhunt run --json` file, a pytest test report or a cluster report"),
    ('{"schema": "leakhunt.test-report", "schema_version": 7}', "unsupported leakhunt test report schema_version 7"),
])
def test_report_command_errors(tmp_path: Path, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "in.json").write_text(content)
    proc = leakhunt("report", "in.json", "-o", "out.html", cwd=tmp_path)
    assert proc.returncode == 2
    assert "'in.json'" in proc.stderr and message in proc.stderr
    assert not (tmp_path / "out.html").exists()


def test_record_round_trips_through_json(profiled: dict) -> None:
    record = RunRecord.from_dict(profiled["json"])
    assert record.to_dict() == profiled["json"]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (Debian: apt-get install chromium)")
def test_html_report_in_headless_chromium(profiled: dict, tmp_path: Path) -> None:
    image = pytest.importorskip("matplotlib.image")
    page = profiled["dir"] / "run.html"

    def chromium(*args: str) -> subprocess.CompletedProcess[str]:
        profile = tmp_path / f"profile{len(list(tmp_path.iterdir()))}"
        return subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
             "--window-size=1200,1000", *args],
            capture_output=True, text=True, timeout=90)

    def console_errors(stderr: str) -> list[str]:
        return [line for line in stderr.splitlines() if "CONSOLE" in line or "Failed to load" in line]

    # The check must be able to fail: a page with a broken script shows a console error.
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>undefinedFunction()</script></body></html>")
    assert console_errors(chromium("--dump-dom", bad.as_uri()).stderr)

    dom = chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr
    assert '<svg id="leakhunt-timeline"' in dom.stdout
    assert console_errors(dom.stderr) == []

    shot = tmp_path / "shot.png"
    proc = chromium(f"--screenshot={shot}", page.as_uri())
    assert proc.returncode == 0 and shot.exists(), proc.stderr
    pixels = image.imread(str(shot))[..., :3]
    # the RSS line is drawn in #1f77b4: the plot is on screen, not just in the DOM
    blue = (abs(pixels[..., 0] - 0x1F / 255) < 0.08) & (abs(pixels[..., 1] - 0x77 / 255) < 0.08) & (
        abs(pixels[..., 2] - 0xB4 / 255) < 0.08)
    assert blue.sum() > 300


# --------------------------------------------------------------------------------------
# the sampler, in process


def test_sampler_thread_always_stops() -> None:
    with Sampler(0.001, max_samples=16) as sampler:
        keep = [bytearray(1024) for _ in range(1000)]
        for _ in range(200):
            if len(sampler.timeline()) >= 12:
                break
            threading.Event().wait(0.005)
    timeline = sampler.timeline()
    assert not any(t.name == "leakhunt-sampler" for t in threading.enumerate())
    assert 2 <= len(timeline) < 16
    del keep


def test_sampler_compacts_long_runs_keeping_the_highs() -> None:
    sampler = Sampler(0.001, max_samples=16)
    sampler.start()
    try:
        while sampler.interval < 0.004:
            threading.Event().wait(0.005)
    finally:
        timeline = sampler.stop()
    assert len(timeline) < 16 and timeline.interval >= 0.004


def test_timeline_max_and_json() -> None:
    timeline = Timeline(interval=0.01, t=[0.0, 0.01, 0.02], rss=[5, 9, None], arrow=[None] * 3,
                        children=[None, 1, 2])
    assert timeline.max_rss() == (0.01, 9)
    assert timeline.max_of("children") == 2 and timeline.max_of("arrow") is None
    assert Timeline.from_dict(timeline.to_dict()) == timeline


@pytest.mark.parametrize(("text", "seconds"), [("10ms", 0.01), ("0.5s", 0.5), ("0.02", 0.02), (" 2 ms ", 0.002)])
def test_parse_interval(text: str, seconds: float) -> None:
    assert parse_interval(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["0", "0.1ms", "61s", "soon", "-1", "nan"])
def test_parse_interval_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text)):
        parse_interval(text)


def on_a_terminal(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``python -m leakhunt.cli *args`` with stdout and stderr on one pseudo-terminal."""
    pty = pytest.importorskip("pty")
    main, child = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "leakhunt.cli", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=child, stderr=child, env=env)
        os.close(child)
        child = -1
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        status = proc.wait(timeout=60)
    finally:
        os.close(main)
        if child != -1:
            os.close(child)
    return status, b"".join(chunks).decode(errors="replace")


_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

BATCHES = """
import sys, time
for i in range(1, 4):
    time.sleep(0.6)                      # the status is redrawn twice a second
    print(f"processed batch {i}")
    print(f"warning {i}", file=sys.stderr)
"""


def test_live_status_keeps_the_scripts_lines_whole(tmp_path: Path) -> None:
    write(tmp_path / "batches.py", BATCHES)
    status, out = on_a_terminal(["run", "batches.py"], tmp_path)
    assert status == 0
    lines = _ESCAPES.sub("", out).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    assert any(line.startswith("leakhunt:") and " rss " in line for line in lines)  # the live status ...
    for i in (1, 2, 3):  # ... never on a line of the script's
        assert f"processed batch {i}" in lines and f"warning {i}" in lines
    assert not any("processed" in line and "leakhunt:" in line for line in lines)
    assert "leakhunt run: batches.py" in lines  # then the summary


def test_live_status_can_be_turned_off(tmp_path: Path) -> None:
    write(tmp_path / "batches.py", BATCHES)
    status, out = on_a_terminal(["run", "--no-status", "batches.py"], tmp_path)
    assert status == 0
    plain = _ESCAPES.sub("", out)
    assert "processed batch 3" in plain and "leakhunt run: batches.py" in plain
    assert "leakhunt:    " not in plain  # no status line at all


def test_live_status_steps_aside_for_a_prompt(tmp_path: Path) -> None:
    write(tmp_path / "prompt.py", """
        import time
        time.sleep(0.7)
        print("continue? ", end="", flush=True)   # a partial line: must show at once, as typed
        time.sleep(0.7)
        print("yes")
    """)
    status, out = on_a_terminal(["run", "prompt.py"], tmp_path)
    assert status == 0
    plain = _ESCAPES.sub("", out)
    assert "continue? yes" in plain
    before, after = plain.split("continue? ", 1)
    assert "leakhunt:" in before and "leakhunt:    1." not in after  # no status drawn after the prompt


def test_no_color_means_no_colour(tmp_path: Path) -> None:
    write(tmp_path / "quick.py", "x = 1\n")
    env = dict(os.environ, NO_COLOR="1")
    status, out = on_a_terminal(["run", "--no-status", "quick.py"], tmp_path, env=env)
    assert status == 0 and "leakhunt run: quick.py" in _ESCAPES.sub("", out)
    assert not colours(out)  # bold may stay: NO_COLOR is about colour
    env.pop("NO_COLOR")
    status, out = on_a_terminal(["run", "--no-status", "quick.py"], tmp_path, env=env)
    assert colours(out)  # a terminal gets colour otherwise


def colours(text: str) -> list[int]:
    """The SGR colour parameters (foreground and background) in ``text``."""
    params = [int(p) for seq in re.findall(r"\x1b\[([0-9;]*)m", text) for p in seq.split(";") if p]
    return [p for p in params if 30 <= p <= 49 or 90 <= p <= 107]


def test_options_after_the_script_are_the_scripts_but_we_say_so(tmp_path: Path) -> None:
    write(tmp_path / "args.py", "import sys\nprint(sys.argv[1:])\n")
    proc = leakhunt("run", "args.py", "-o", "report.html", "--budget=peak=1GB", "--verbose", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.strip() == "['-o', 'report.html', '--budget=peak=1GB', '--verbose']"  # as python would
    warning = proc.stderr.splitlines()[0]
    assert warning.startswith("leakhunt run: warning: '-o', '--budget' after args.py go to args.py")
    assert warning.endswith("leakhunt run -o report.html --budget=peak=1GB args.py --verbose")
    assert not (tmp_path / "report.html").exists()
    proc = leakhunt("run", "args.py", "--verbose", cwd=tmp_path)  # nothing of ours: no warning
    assert "warning" not in proc.stderr
    # --trace takes no value: the option after it is moved on its own, with its value
    proc = leakhunt("run", "args.py", "--trace", "--top", "3", cwd=tmp_path)
    assert proc.stderr.splitlines()[0].endswith("leakhunt run --trace --top 3 args.py")


def test_docs_example_shows_the_kept_slice(tmp_path: Path) -> None:
    """docs/run.md's example: the slice kept in RECENT pins the 57 MiB enriched frame."""
    pytest.importorskip("pandas")
    example = Path(__file__).resolve().parent.parent / "docs" / "run" / "pipeline.py"
    growth = {}
    for variant in ([], ["--fixed"]):
        out = tmp_path / f"r{len(growth)}.json"
        proc = leakhunt("run", "-q", "--json", str(out), str(example), *variant, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("top store:")
        growth[tuple(variant)] = json.loads(out.read_text())["final_growth"]
    kept = growth[()] - growth[("--fixed",)]
    assert 45 * MiB <= kept <= 70 * MiB  # 1.5 M rows x 5 float64/int64 columns = 57.2 MiB


# --------------------------------------------------------------------------------------
# why memory is alive at exit (--trace=tracemalloc): the library's judgement, survivors grouped by root

KEEPS = """
import sys

RECENT = []                                        # "the last batches", for a dashboard

def batch():
    return bytearray(40 * 1024 * 1024)             # 40 MiB

RECENT.append(b"summary" if "--fixed" in sys.argv else batch())
"""


@pytest.mark.parametrize("fixed", [False, True])
def test_trace_says_why_memory_is_alive_at_exit(tmp_path: Path, fixed: bool) -> None:
    write(tmp_path / "keeps.py", KEEPS)
    proc = leakhunt("run", "--trace=tracemalloc", "--json", "r.json", "-o", "r.html", "keeps.py",
                    *(["--fixed"] if fixed else []),
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    explanation = data["explanation"]
    if fixed:  # a short summary of its own: nothing big is kept through RECENT
        assert explanation is None or "RECENT (global in __main__)" not in {r["root"] for r in explanation["roots"]}
        return
    assert explanation is not None and explanation["headline"].startswith("kept ")
    roots = {root["root"]: root for root in explanation["roots"]}
    root = roots["RECENT (global in __main__)"]
    assert 40 * MiB <= root["size"] <= 40 * MiB + 1024 and root["site"]["line"] == 7  # the line that allocated it
    assert [r["root"] for r in explanation["roots"]] == ["RECENT (global in __main__)"]  # its function is code
    assert [step["label"] for step in root["path"]] == ["RECENT (global in __main__)", "list", "bytearray 40.0 MiB"]
    assert explanation["hint"].startswith("a module-level list keeps everything appended to it")
    assert "alive at exit:" in proc.stderr and "RECENT (global in __main__) keeps 1 buffer, 40.0 MiB" in proc.stderr
    page = (tmp_path / "r.html").read_text()
    exit_section = page[page.index('id="exit"'):]
    assert '<svg class="graph"' in exit_section and "RECENT (global in __main__)" in exit_section


def test_budget_goes_through_the_judgement(tmp_path: Path) -> None:
    write(tmp_path / "keeps.py", KEEPS)
    proc = leakhunt("run", "--trace=tracemalloc", "--budget", "rss=10MB", "--json", "r.json", "keeps.py", cwd=tmp_path)
    assert proc.returncode == 1
    data = json.loads((tmp_path / "r.json").read_text())
    assert [v["figure"] for v in data["violations"]] == ["rss"] and data["violations"][0]["limit"] == 10_000_000
    explanation = data["explanation"]
    assert explanation["headline"] == "broke its memory budget"
    rss = next(f for f in explanation["figures"] if f["name"] == "rss")
    assert rss["limit"] == 10_000_000 and rss["broken"]
    assert any(r["root"] == "RECENT (global in __main__)" for r in explanation["roots"])


_FIGURES = """\
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

for i in range(3):
    fig, ax = plt.subplots()
    ax.imshow(np.random.default_rng(i).random((700, 700)))  # 3.7 MiB each
"""


def test_pyplots_registry_is_named_for_the_figures_it_keeps_and_the_scripts_global_for_its_own(
        tmp_path: Path) -> None:
    """matplotlib/matplotlib#8519 as a script: pyplot keeps every figure not closed. The global
    `fig` reaches the other figures too, but only through pyplot's class Gcf (its callbacks hold
    a closure over it), a library's global that keeps them whatever holds it: Gcf is named for
    those, the script's `fig` and `ax` for the last one."""
    pytest.importorskip("matplotlib")
    write(tmp_path / "plots.py", _FIGURES)
    proc = leakhunt("run", "--explain", "--json", "r.json", "plots.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    roots = {r["root"]: r for r in json.loads((tmp_path / "r.json").read_text())["explanation"]["roots"]}
    gcf = roots["Gcf (global in matplotlib._pylab_helpers)"]
    assert 6 * MiB < gcf["size"] < 9 * MiB, roots  # two figures' images
    own = sum(roots[name]["size"] for name in ("fig (global in __main__)", "ax (global in __main__)") if name in roots)
    assert 3 * MiB < own < 5 * MiB, roots  # the last figure's, by the script's globals
