"""Overhead of the plugin on real third-party suites: pandas' own test packages.

pandas ships its tests in its wheel, so its own test packages run as real suites of thousands
of millisecond tests. Each mode is measured in *alternated pairs*: a plain run and a run with
the mode, one after the other, the order swapped from pair to pair; the ratio of a pair is
mode / plain, and the table gives the median ratio over the pairs and their range (wall time,
and CPU time of the pytest process beside it).

Modes: ``report`` (``--leak-report`` with a JSON file: the cheap path on every test), ``budget``
(``--memory-budget=rss=1GB,peak=4GB``: the exact path on every test), ``hunt``
(``--leak-hunt``: bound (warm-up + repeats + 1) = 14x), ``memray`` (pytest-memray's ``--memray``,
when installed: ``pip install pytest-memray``).

    python benchmarks/plugin_overhead.py --suites pandas.tests.series.methods --modes report --pairs 5
    python benchmarks/plugin_overhead.py --breakdown --suites synthetic:3000 pandas.tests.series.methods
    python benchmarks/plugin_overhead.py --breakdown --modes budget --suites pandas.tests.series.methods [--no-refreeze]
    python benchmarks/plugin_overhead.py --interleaved 3000 --pairs 5
    python benchmarks/plugin_overhead.py --instructions 1000 2000    # needs valgrind

The pytest runs have Python's bytecode cache on (as an installed package has it), and each
configuration runs once unmeasured before the pairs, so no pair pays for compiling.

Run it alone on a quiet machine: two benchmarks at once on two cores measure nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITES = ["pandas.tests.reshape.merge", "pandas.tests.frame.methods", "pandas.tests.series.methods"]
BASE = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:hypothesispytest", "--no-header",
        "-W", "ignore"]


SYNTHETIC_TEST = "def test_{i}():\n    np.arange(20_000).sum()\n    [str(x) for x in range(300)]\n"


def synthetic_suite(directory: Path, count: int) -> str:
    """``synthetic:N``: N tests of about a millisecond each, the worst case for a per-test cost."""
    path = directory / f"test_synthetic_{count}.py"
    path.write_text("import numpy as np\n\n" + "".join(SYNTHETIC_TEST.format(i=i) for i in range(count)))
    return str(path)


# A pytest plugin (written to a temporary directory and loaded with -p) that adds up the wall time
# spent inside leakhunt's code in the pytest process: per test, the Measurer, the QuickMeter and the hooks of the
# path in use (``_ReportOnly`` for a session that only reports, ``_PerTest`` otherwise); at the end,
# the records, the report file and the session's end; and what the garbage collector took (a
# collection of the oldest generation walks the whole heap). Calls nest (the logreport hook runs
# the trim check, decide runs finish), so lines overlap. It patches the classes when it is
# imported (-p imports it before any plugin is configured).
BREAKDOWN_PLUGIN = """
import functools, gc, os, sys, time

import leakhunt.measure
import leakhunt.attribution as attribution
import leakhunt.lifecycle as lifecycle
import pytest_leakhunt.per_test as per_test
import pytest_leakhunt.report_file as report_file
import pytest_leakhunt.session as session

PARTS = {}
GC = {}
_gc_started = [0.0]


def _timed(fn, name=None):
    name = name or fn.__qualname__

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            PARTS[name] = PARTS.get(name, 0.0) + time.perf_counter() - started
    return wrapper


measure = sys.modules["leakhunt.measure"]  # the package exports a function of that name
measure.Measurer.start = _timed(measure.Measurer.start)
measure.Measurer.stop = _timed(measure.Measurer.stop)
probes = sys.modules["leakhunt.probes"]
probes.QuickMeter.start = _timed(probes.QuickMeter.start)  # the report-only path's meter (and Measurer's cheap case)
probes.QuickMeter.stop = _timed(probes.QuickMeter.stop)
for name in ("keep", "_make_records", "_end_session"):
    setattr(session.LeakHunt, name, _timed(getattr(session.LeakHunt, name)))
for name in ("start", "stop", "finish"):
    setattr(lifecycle.Block, name, _timed(getattr(lifecycle.Block, name)))
lifecycle.mark_caches = _timed(lifecycle.mark_caches, "caches.mark")
lifecycle.Block._evidence = _timed(lifecycle.Block._evidence)
attribution.Scope.__init__ = _timed(attribution.Scope.__init__)
attribution.Scope.close = _timed(attribution.Scope.close)
per_test.PerTest._finish = _timed(per_test.PerTest._finish)
per_test.ReportOnly.pytest_runtest_logreport = _timed(per_test.ReportOnly.pytest_runtest_logreport)
report_file.ReportFile.write = _timed(report_file.ReportFile.write)
# Every reset of the kernel's mark is a write of "5" to /proc/self/clear_refs (the meter's inline
# path and PeakWindow.open's alike): counted here, as a window resets only a mark above its start.
_write, RESETS = os.write, [0]


def _counted_write(fd, data):
    if fd == probes._fds.get("clear_refs"):
        RESETS[0] += 1
    return _write(fd, data)


os.write = _counted_write
if os.environ.get("LEAKHUNT_COST_NO_REFREEZE"):  # what the settled path costs without it
    settle = sys.modules["leakhunt.settle"]
    settle.refreeze_heap = lambda: False


def _gc(phase, info):
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        count, seconds = GC.get(info["generation"], (0, 0.0))
        GC[info["generation"]] = (count + 1, seconds + time.perf_counter() - _gc_started[0])


gc.callbacks.append(_gc)
_T0 = time.perf_counter()
AT_END = ("LeakHunt._make_records", "ReportFile.write", "LeakHunt._end_session")


def pytest_unconfigure(config):
    wall = time.perf_counter() - _T0
    tests = config.getoption("leakhunt_cost_tests", 0) or 0
    owner = config.pluginmanager.get_plugin("leakhunt-session")
    per_test = config.pluginmanager.get_plugin("leakhunt-per-test")
    meter = getattr(owner, "meter", None)
    out = [f"path: {type(per_test).__name__}", f"trims: {getattr(meter, 'trims', 0)} for {tests} tests",
           f"resets of the mark: {RESETS[0]}"]
    own = 0.0
    for name, seconds in sorted(PARTS.items(), key=lambda kv: -kv[1]):
        if name in AT_END:
            out.append(f"{name}: {seconds * 1e3:.1f} ms (once)")
        else:
            out.append(f"{name}: {seconds / max(tests, 1) * 1e6:.1f} us/test")
    for generation, (count, seconds) in sorted(GC.items()):
        out.append(f"gc generation {generation}: {count} collections, {seconds * 1e3:.0f} ms "
                   f"({seconds / count * 1e3:.2f} ms each)")
    out.append(f"pytest process: {wall:.2f} s")
    sys.stderr.write("".join("leakhunt-cost " + line + "\\n" for line in out))


def pytest_addoption(parser):
    parser.addoption("--leakhunt-cost-tests", type=int, default=0, dest="leakhunt_cost_tests")


def pytest_collection_finish(session):
    session.config.option.leakhunt_cost_tests = len(session.items)
"""


# --interleaved: one pytest run of N synthetic tests in which every second test is marked
# no_leak_check; a plugin times each test's whole protocol (setup, call, teardown and every hook
# around them) and compares each measured test with the opted-out test after it. The machine's
# speed, which moves by 10-15 % between runs, is the same for two neighbouring tests, so the
# difference is leakhunt's per-test cost (the meter and its handling of the reading) with little
# noise. It leaves out what an opted-out test pays too (the hooks' calls) and the records and
# the report file at the end.
INTERLEAVED_TEST = "{mark}def test_{i}():\n    np.arange(20_000).sum()\n    [str(x) for x in range(300)]\n"
INTERLEAVED_PLUGIN = """
import statistics, sys, time

import pytest

TIMES = {}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        TIMES[item.name] = time.perf_counter() - started


def pytest_unconfigure(config):
    count = len(TIMES)
    pairs = [(TIMES[f"test_{k}"], TIMES[f"test_{k + 1}"]) for k in range(100, count - 1, 2)]  # 100 warm-up
    diffs = [a - b for a, b in pairs]
    sys.stderr.write(f"leakhunt-interleaved {statistics.median(a for a, _ in pairs) * 1e6:.1f} "
                     f"{statistics.median(b for _, b in pairs) * 1e6:.1f} {statistics.median(diffs) * 1e6:.1f}\\n")
"""


def interleaved(count: int, runs: int, directory: Path, cwd: Path) -> list[str]:
    """Per-test cost of --leak-report from neighbouring tests of one run (see INTERLEAVED_PLUGIN);
    the same runs without --leak-report are the control (their difference should read ~0)."""
    path = directory / f"test_interleaved_{count}.py"
    path.write_text("import numpy as np\nimport pytest\n\n" + "".join(
        INTERLEAVED_TEST.format(i=i, mark="@pytest.mark.no_leak_check\n" if i % 2 else "") for i in range(count)))
    (directory / "leakhunt_interleaved.py").write_text(INTERLEAVED_PLUGIN)
    env = {**_child_env(), "PYTHONPATH": str(directory)}
    lines = []
    for run in range(runs + 1):  # the first of each is a warm-up
        for label, extra in (("--leak-report", ["--leak-report"]), ("control (no option)", [])):
            proc = subprocess.run([sys.executable, "-m", "pytest", *BASE, str(path), "-p", "leakhunt_interleaved", *extra],
                                  cwd=cwd, capture_output=True, text=True, env=env)
            got = [line.split()[1:] for line in proc.stderr.splitlines() if line.startswith("leakhunt-interleaved")]
            if run == 0:
                continue
            if not got:
                lines.append(f"{label}: no figures (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
                continue
            measured, opted, diff = got[-1]
            lines.append(f"run {run} {label}: measured test {measured} us, opted-out neighbour {opted} us, "
                         f"median difference {diff} us")
    return lines


# --instructions: the machine's noise (10-15 % between identical runs) hides a cost of a few per
# cent unless many pairs are run. Instructions counted by valgrind's callgrind do not move between
# runs: a plain and a --leak-report run of two sizes of the synthetic suite split leakhunt's
# instructions into a per-test part (the difference of the differences) and a once-per-session
# part. The count is of user-space instructions only: the kernel's side of the system calls
# per test is not in it, nor is the time an instruction takes (a cold cache, a page fault).
def instructions(sizes: tuple[int, int], directory: Path, cwd: Path) -> list[str]:
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    counts: dict[tuple[int, str], int] = {}
    for size in sizes:
        folder = directory / f"instructions_{size}"
        folder.mkdir()
        target = synthetic_suite(folder, size)
        for mode, extra in (("plain", []), ("report", MODES["report"](folder))):
            # one unmeasured run first: bytecode caches written, as in the timed pairs
            subprocess.run([sys.executable, "-m", "pytest", *BASE, target, *extra], cwd=cwd,
                           capture_output=True, env=_child_env())
            out = folder / f"callgrind.{mode}"
            proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                   sys.executable, "-m", "pytest", *BASE, target, *extra],
                                  cwd=cwd, capture_output=True, text=True, env=_child_env())
            found = re.findall(r"Collected : (\d+)", proc.stderr)
            if not found:
                raise SystemExit(f"callgrind printed no count (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
            counts[size, mode] = int(found[-1])
    (small, large) = sizes
    lines = []
    for size in sizes:
        plain, report = counts[size, "plain"], counts[size, "report"]
        lines.append(f"synthetic:{size}: plain {plain / 1e6:,.0f} M instructions, --leak-report {report / 1e6:,.0f} M "
                     f"(+{(report - plain) / 1e6:,.1f} M, +{(report - plain) / plain * 100:.1f} %)")
    added_small = counts[small, "report"] - counts[small, "plain"]
    added_large = counts[large, "report"] - counts[large, "plain"]
    per_test = (added_large - added_small) / (large - small)
    plain_per_test = (counts[large, "plain"] - counts[small, "plain"]) / (large - small)
    once = added_small - per_test * small
    lines.append(f"per test: +{per_test / 1e3:,.1f} k instructions on a plain test's {plain_per_test / 1e3:,.0f} k "
                 f"(+{per_test / plain_per_test * 100:.1f} %; the records and the report file's line of each "
                 f"test included); once per session: +{once / 1e6:,.1f} M")
    if shutil.which("callgrind_annotate") is not None:
        folder = directory / f"instructions_{large}"
        plain, report = (_self_costs(folder / f"callgrind.{mode}") for mode in ("plain", "report"))
        added = sorted(((report.get(name, 0) - plain.get(name, 0), name) for name in set(plain) | set(report)),
                       reverse=True)
        total = counts[large, "report"] - counts[large, "plain"]
        lines.append(f"where the +{total / 1e6:,.1f} M go at {large} tests (callgrind_annotate, instructions in "
                     f"each C function itself; Python code runs in the interpreter loop):")
        lines.extend(f"  {diff / 1e6:8,.1f} M  {diff / total * 100:4.1f} %  {name}" for diff, name in added[:10])
    return lines


def _self_costs(path: Path) -> dict[str, int]:
    """Instructions by C function (file:function), from ``callgrind_annotate``'s listing."""
    out = subprocess.run(["callgrind_annotate", "--threshold=100", str(path)], capture_output=True, text=True).stdout
    costs: dict[str, int] = {}
    for line in out.splitlines():
        match = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*)", line)
        if match and "PROGRAM TOTALS" not in line:
            name = re.sub(r"\s*\[.*\]$", "", match.group(2)).rsplit("/", 1)[-1]
            costs[name] = costs.get(name, 0) + int(match.group(1).replace(",", ""))
    return costs


def breakdown(suite: str, mode: str, directory: Path, cwd: Path, refreeze: bool = True) -> list[str]:
    (directory / "leakhunt_cost.py").write_text(BREAKDOWN_PLUGIN)
    target = synthetic_suite(directory, int(suite.split(":")[1])) if suite.startswith("synthetic:") else suite_path(suite)
    env = {**_child_env(), "PYTHONPATH": str(directory)}
    if not refreeze:
        env["LEAKHUNT_COST_NO_REFREEZE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *BASE, target, "-p", "leakhunt_cost", *MODES[mode](directory)],
        cwd=cwd, capture_output=True, text=True, env=env,
    )
    lines = [line.replace("leakhunt-cost ", "") for line in proc.stderr.splitlines() if line.startswith("leakhunt-cost")]
    return lines or [f"no figures (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"]


def _child_env() -> dict[str, str]:
    """The pytest runs' environment: Python's bytecode cache on, as an installed package has it
    (a sandbox that sets PYTHONDONTWRITEBYTECODE would have every run rewrite and compile every
    test module again, in both runs of a pair)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def suite_path(suite: str) -> str:
    """``pandas.tests.frame.methods`` -> ``tests/frame/methods``, run from the pandas package.

    (``--pyargs`` from elsewhere leaves pandas' root conftest.py out of the initial conftests,
    and its ``pytest_collection_modifyitems`` then asks for options nobody registered.)
    """
    return "/".join(suite.split(".")[1:])


def timed(args: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall time and CPU time (user + system) of one pytest run, and its last line."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd, capture_output=True, text=True,
                          env=_child_env())
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    tail = (proc.stdout.strip().splitlines() or ["?"])[-1]
    return seconds, cpu, tail


MODES = {
    "report": lambda tmp: ["--leak-report", f"--leak-report-file={tmp / 'r.json'}"],
    "budget": lambda tmp: ["--memory-budget=rss=1GB,peak=4GB", f"--leak-report-file={tmp / 'r.json'}"],
    "hunt": lambda tmp: ["--leak-hunt", f"--leak-report-file={tmp / 'r.json'}"],
    "memray": lambda tmp: ["-p", "memray", "--memray"],
}
BOUNDS = {"report": "1.10x", "budget": "(reported)", "hunt": "14x", "memray": ""}


def pairs(suite: str, target: str, mode: str, count: int, tmp: Path, cwd: Path) -> dict[str, list[float]]:
    """``count`` alternated pairs of a plain run and a ``mode`` run; the ratios, times and tails."""
    out: dict[str, list] = {"wall": [], "cpu": [], "plain_wall": [], "mode_wall": [], "tail": [], "verdicts": []}
    for name, extra in (("plain", []), (mode, MODES[mode](tmp))):  # warm-up: caches written, not counted
        seconds = timed([*BASE, target, *extra], cwd)[0]
        print(f"{suite:30} warm-up {name:7} wall {seconds:7.1f} s (not counted)", flush=True)
    for i in range(count):
        order = [("plain", []), (mode, MODES[mode](tmp))]
        if i % 2:
            order.reverse()
        got: dict[str, tuple[float, float, str]] = {}
        for name, extra in order:
            got[name] = timed([*BASE, target, *extra], cwd)
            print(f"{suite:30} pair {i + 1} {name:7} wall {got[name][0]:7.1f} s  cpu {got[name][1]:7.1f} s  "
                  f"{got[name][2]}", flush=True)
        out["wall"].append(got[mode][0] / got["plain"][0])
        out["cpu"].append(got[mode][1] / got["plain"][1])
        out["plain_wall"].append(got["plain"][0])
        out["mode_wall"].append(got[mode][0])
        out["tail"].append(got["plain"][2])
        report = tmp / "r.json"
        if mode != "memray" and report.exists():
            counts: dict[str, int] = {}
            for test in json.loads(report.read_text())["tests"]:
                counts[test["verdict"]] = counts.get(test["verdict"], 0) + 1
            out["verdicts"].append(", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
            report.unlink()
    return out


def _rss_mib() -> float:
    with open("/proc/self/statm", "rb") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def median_interval(values: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A 95 % interval of the median of ``values`` (percentile bootstrap): on a machine whose
    identical runs differ by 10-15 %, how far the median of this many pairs can be trusted."""
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    return medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", nargs="+", default=SUITES,
                        help="dotted pandas test packages, or synthetic:N for N millisecond tests")
    parser.add_argument("--modes", nargs="+", default=["report"], choices=sorted(MODES))
    parser.add_argument("--pairs", type=int, default=5, help="alternated pairs per suite and mode (default 5)")
    parser.add_argument("--out", type=Path, help="append the Markdown table to this file")
    parser.add_argument("--breakdown", action="store_true",
                        help="instead: one run per suite and mode, timing leakhunt's code in the pytest process")
    parser.add_argument("--no-refreeze", action="store_true",
                        help="with --breakdown: leave out the refreeze after settled tests (its before)")
    parser.add_argument("--interleaved", type=int, metavar="TESTS",
                        help="instead: the per-test cost from neighbouring tests of one run, TESTS synthetic tests "
                             "with every second one opted out, --pairs runs (and as many control runs)")
    parser.add_argument("--instructions", type=int, nargs=2, metavar=("SMALL", "LARGE"),
                        help="instead: instructions counted by valgrind's callgrind, plain and --leak-report, "
                             "on SMALL and LARGE synthetic tests (per-test and once-per-session parts)")
    parser.add_argument("--parent-rss", type=int, default=0, metavar="MIB",
                        help="hold this many MiB in the benchmark process while it starts the runs: pytest "
                             "started by a bigger process (getrusage's floor; default 0)")
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error(f"--pairs must be >= 1, got {args.pairs}")
    if args.parent_rss < 0:
        parser.error(f"--parent-rss must be >= 0 (MiB), got {args.parent_rss}")
    # pandas' directory, without importing pandas here: a child's getrusage reports at least the
    # peak of the process that started it (docs/accounting.md, "the floor under getrusage"), so
    # this process stays small, as a shell or CI runner is, unless --parent-rss asks otherwise.
    spec = importlib.util.find_spec("pandas")
    if spec is None or spec.origin is None:
        parser.error("the benchmark runs pandas' own test suites: pip install pandas")
    cwd = Path(spec.origin).parent
    held = b"\x01" * (args.parent_rss * 2**20)  # written, so resident
    print(f"benchmark process: {_rss_mib():.0f} MiB resident while it starts the runs", flush=True)
    parent = f" (started by a {args.parent_rss} MiB process)" if args.parent_rss else ""
    if args.interleaved is not None:
        if args.interleaved < 200:
            parser.error(f"--interleaved needs at least 200 tests (100 are a warm-up), got {args.interleaved}")
        with tempfile.TemporaryDirectory(prefix="leakhunt-interleaved-") as tmp:
            for line in interleaved(args.interleaved, args.pairs, Path(tmp), cwd):
                print(line + parent, flush=True)
        del held
        return 0
    if args.instructions is not None:
        small, large = args.instructions
        if not 0 < small < large:
            parser.error(f"--instructions needs two sizes, the first smaller, both > 0; got {small} {large}")
        with tempfile.TemporaryDirectory(prefix="leakhunt-instructions-") as tmp:
            for line in instructions((small, large), Path(tmp), cwd):
                print(line + parent, flush=True)
        del held
        return 0
    if args.breakdown:
        with tempfile.TemporaryDirectory(prefix="leakhunt-cost-") as tmp:
            for suite in args.suites:
                for mode in args.modes:
                    breakdown(suite, mode, Path(tmp), cwd, refreeze=not args.no_refreeze)  # warm-up
                    lines = breakdown(suite, mode, Path(tmp), cwd, refreeze=not args.no_refreeze)
                    label = f"{suite} {mode}" + (" (no refreeze)" if args.no_refreeze else "") + parent
                    print(f"{label}: " + "; ".join(lines), flush=True)
                    if args.out:
                        with args.out.open("a", encoding="utf-8") as file:
                            file.write(f"- `{label}`: " + "; ".join(lines) + "\n")
        return 0
    if "memray" in args.modes and importlib.util.find_spec("pytest_memray") is None:
        parser.error("--modes memray needs pytest-memray: pip install pytest-memray")
    rows = []
    with tempfile.TemporaryDirectory(prefix="leakhunt-overhead-") as tmp:
        for suite in args.suites:
            target = synthetic_suite(Path(tmp), int(suite.split(":")[1])) if suite.startswith("synthetic:") \
                else suite_path(suite)
            for mode in args.modes:
                rows.append((suite, mode, pairs(suite, target, mode, args.pairs, Path(tmp), cwd)))

    def ratio(values: list[float]) -> str:
        low, high = median_interval(values)
        return (f"**{statistics.median(values):.2f}x** ({min(values):.2f}-{max(values):.2f}; "
                f"median {low:.2f}-{high:.2f})")

    lines = [
        f"### Alternated pairs (Python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        "Each pair is a plain run and a run with the mode, back to back, the order swapped from pair",
        "to pair; ratio = mode / plain within a pair. Median ratio, with the range over the pairs and",
        "a 95 % interval of the median (bootstrap over the pairs, 2,000 resamples, seed 0).",
        "",
        "| suite | tests | mode | pairs | plain wall (median) | mode wall (median) | wall ratio | CPU ratio | bound "
        "| verdicts (last pair) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for suite, mode, data in rows:
        lines.append(
            f"| `{suite}`{parent} | {data['tail'][0].strip('= ')} | `{mode}` | {len(data['wall'])} | "
            f"{statistics.median(data['plain_wall']):.1f} s | {statistics.median(data['mode_wall']):.1f} s | "
            f"{ratio(data['wall'])} | {ratio(data['cpu'])} | {BOUNDS[mode]} | "
            f"{data['verdicts'][-1] if data['verdicts'] else ''} |")
    lines.append("")
    del held
    text = "\n".join(lines)
    print(text)
    if args.out:
        with args.out.open("a", encoding="utf-8") as file:
            file.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
