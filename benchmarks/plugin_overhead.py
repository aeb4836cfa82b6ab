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
    python benchmarks/plugin_overhead.py --breakdown --suites pandas.tests.series.methods

Run it alone on a quiet machine: two benchmarks at once on two cores measure nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
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


# A pytest plugin (written to a temporary directory and loaded with -p) that adds up the CPU time
# spent inside leakhunt's per-test code: the Measurer and the plugin's decisions. Calls nest
# (_decide runs check_budget and finish), so the lines overlap; Measurer + _decide is the total.
BREAKDOWN_PLUGIN = """
import functools, sys, time

PARTS = {}


def _timed(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        started = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            PARTS[fn.__qualname__] = PARTS.get(fn.__qualname__, 0.0) + time.process_time() - started
    return wrapper


def pytest_configure(config):
    import leakhunt.measure
    import pytest_leakhunt.session as session

    measure = sys.modules["leakhunt.measure"]  # the package exports a function of that name
    measure.Measurer.start = _timed(measure.Measurer.start)
    measure.Measurer.stop = _timed(measure.Measurer.stop)
    for name in ("decide", "finish", "record", "pytest_runtest_logreport"):
        setattr(session.LeakHunt, name, _timed(getattr(session.LeakHunt, name)))
    session._PerTest._decide = _timed(session._PerTest._decide)
    session.resolve_budget = _timed(session.resolve_budget)


def pytest_terminal_summary(terminalreporter):
    tests = sum(len(terminalreporter.stats.get(key, [])) for key in ("passed", "failed"))
    owner = terminalreporter.config.pluginmanager.get_plugin("leakhunt-session")
    terminalreporter.write_line(f"leakhunt-cost trims: {owner.trims} before {tests} tests")
    for name, seconds in sorted(PARTS.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"leakhunt-cost {name}: {seconds / max(tests, 1) * 1e6:.0f} us/test")
"""


def breakdown(suite: str, directory: Path, cwd: Path) -> list[str]:
    (directory / "leakhunt_cost.py").write_text(BREAKDOWN_PLUGIN)
    target = synthetic_suite(directory, int(suite.split(":")[1])) if suite.startswith("synthetic:") else suite_path(suite)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *BASE, target, "-p", "leakhunt_cost", "--leak-report",
         f"--leak-report-file={directory / 'r.json'}"],
        cwd=cwd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(directory)},
    )
    return [line.replace("leakhunt-cost ", "") for line in proc.stdout.splitlines() if line.startswith("leakhunt-cost")]


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
    proc = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd, capture_output=True, text=True)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", nargs="+", default=SUITES,
                        help="dotted pandas test packages, or synthetic:N for N millisecond tests")
    parser.add_argument("--modes", nargs="+", default=["report"], choices=sorted(MODES))
    parser.add_argument("--pairs", type=int, default=5, help="alternated pairs per suite and mode (default 5)")
    parser.add_argument("--out", type=Path, help="append the Markdown table to this file")
    parser.add_argument("--breakdown", action="store_true",
                        help="instead: one --leak-report run per suite, timing leakhunt's per-test code")
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error(f"--pairs must be >= 1, got {args.pairs}")
    import pandas

    cwd = Path(pandas.__file__).parent
    if args.breakdown:
        with tempfile.TemporaryDirectory(prefix="leakhunt-cost-") as tmp:
            for suite in args.suites:
                lines = breakdown(suite, Path(tmp), cwd)
                print(f"{suite}: " + "; ".join(lines), flush=True)
                if args.out:
                    with args.out.open("a", encoding="utf-8") as file:
                        file.write(f"- `{suite}`: " + "; ".join(lines) + "\n")
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
        return f"**{statistics.median(values):.2f}x** ({min(values):.2f}-{max(values):.2f})"

    lines = [
        f"### Alternated pairs (Python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        "Each pair is a plain run and a run with the mode, back to back, the order swapped from pair",
        "to pair; ratio = mode / plain within a pair. Median ratio, with the range over the pairs.",
        "",
        "| suite | tests | mode | pairs | plain wall (median) | mode wall (median) | wall ratio | CPU ratio | bound "
        "| verdicts (last pair) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for suite, mode, data in rows:
        lines.append(
            f"| `{suite}` | {data['tail'][0].strip('= ')} | `{mode}` | {len(data['wall'])} | "
            f"{statistics.median(data['plain_wall']):.1f} s | {statistics.median(data['mode_wall']):.1f} s | "
            f"{ratio(data['wall'])} | {ratio(data['cpu'])} | {BOUNDS[mode]} | "
            f"{data['verdicts'][-1] if data['verdicts'] else ''} |")
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with args.out.open("a", encoding="utf-8") as file:
            file.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
