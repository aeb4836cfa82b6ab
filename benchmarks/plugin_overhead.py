"""Overhead of the plugin on real third-party suites: pandas' own test packages.

pandas ships its tests in its wheel, so ``pytest --pyargs pandas.tests.frame.methods`` runs a real
suite of thousands of millisecond tests. For each suite this alternates, round after round, a
plain run, a ``--leak-report`` run (with a JSON report file, the most expensive form) and
pytest-memray's ``--memray`` run, and reports the median wall time of each and the ratios.

pytest-memray is not a dependency of leakhunt: install it next to it to compare
(``pip install pytest-memray``); without it the memray column is left out.

    python benchmarks/plugin_overhead.py --rounds 3 --memray-rounds 1 --out benchmarks/plugin.md

Target (issue 3): ``--leak-report`` at most 1.10x the plain run.
"""

from __future__ import annotations

import argparse
import importlib.util
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", nargs="+", default=SUITES,
                        help="dotted pandas test packages, or synthetic:N for N millisecond tests")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memray-rounds", type=int, default=1, help="memray is slow: fewer rounds")
    parser.add_argument("--out", type=Path, help="append the Markdown table to this file")
    parser.add_argument("--breakdown", action="store_true",
                        help="instead: one --leak-report run per suite, timing leakhunt's per-test code")
    args = parser.parse_args()
    if args.breakdown:
        import pandas

        with tempfile.TemporaryDirectory(prefix="leakhunt-cost-") as tmp:
            for suite in args.suites:
                lines = breakdown(suite, Path(tmp), Path(pandas.__file__).parent)
                print(f"{suite}: " + "; ".join(lines), flush=True)
                if args.out:
                    with args.out.open("a", encoding="utf-8") as file:
                        file.write(f"- `{suite}`: " + "; ".join(lines) + "\n")
        return 0
    has_memray = importlib.util.find_spec("pytest_memray") is not None

    rows = []
    import pandas

    cwd = Path(pandas.__file__).parent
    with tempfile.TemporaryDirectory(prefix="leakhunt-overhead-") as tmp:
        report_file = Path(tmp) / "r.json"
        for suite in args.suites:
            wall: dict[str, list[float]] = {"plain": [], "report": [], "memray": []}
            cpu: dict[str, list[float]] = {"plain": [], "report": [], "memray": []}
            outcome = ""
            if suite.startswith("synthetic:"):
                target = synthetic_suite(Path(tmp), int(suite.split(":")[1]))
            else:
                target = suite_path(suite)
            for round_no in range(args.rounds):
                modes = {
                    "plain": [target],
                    "report": [target, "--leak-report", f"--leak-report-file={report_file}"],
                }
                if has_memray and round_no < args.memray_rounds:
                    modes["memray"] = [target, "-p", "memray", "--memray"]
                for mode, extra in modes.items():
                    seconds, cpu_seconds, tail = timed([*BASE, *extra], cwd)
                    wall[mode].append(seconds)
                    cpu[mode].append(cpu_seconds)
                    print(f"{suite:32} round {round_no + 1} {mode:7} wall {seconds:7.1f} s  cpu {cpu_seconds:7.1f} s"
                          f"  {tail}", flush=True)
                    if mode == "plain":
                        outcome = tail
            rows.append((suite, outcome, wall, cpu))

    def med(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    lines = [
        f"### Overhead on pandas' own test suites (Python {sys.version.split()[0]}, {os.cpu_count()} cores)",
        "",
        "Medians over the rounds; runs alternate plain / `--leak-report` / `--memray` within each round.",
        "CPU = user + system time of the pytest process (steady when other jobs load the machine);",
        "wall = elapsed time.",
        "",
        "| suite | tests | plain CPU | `--leak-report` CPU | ratio | `--memray` CPU | ratio "
        "| plain wall | `--leak-report` wall | ratio | `--memray` wall | ratio | rounds (memray) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for suite, outcome, wall, cpu in rows:
        cells = []
        for table in (cpu, wall):
            plain, report, memray = med(table["plain"]), med(table["report"]), med(table["memray"])
            assert plain is not None and report is not None
            cells.append(f"{plain:.1f} s | {report:.1f} s | {report / plain:.2f}x")
            cells.append(f"{memray:.1f} s | {memray / plain:.2f}x" if memray is not None else "n/a | n/a")
        lines.append(f"| `{suite}` | {outcome.strip('= ')} | {' | '.join(cells)} | "
                     f"{len(wall['plain'])} ({len(wall['memray'])}) |")
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with args.out.open("a", encoding="utf-8") as file:
            file.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
