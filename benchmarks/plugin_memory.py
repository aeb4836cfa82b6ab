"""The plugin's own memory: what it keeps per test for the whole session (issue 13, item 5).

Runs a generated suite of N empty tests in a fresh pytest process per mode and reads the
process's settled anonymous RSS twice: when collection has finished and when pytest prints its
terminal summary (every test has run, the report file is written, every record is still held).
The growth between the two, minus the same growth of a run without leakhunt's options, divided
by N, is what the plugin keeps per test.

    python benchmarks/plugin_memory.py --modes report report-file     # 12,000 tests
    python benchmarks/plugin_memory.py --tests 3000 --modes budget    # budgeted tests settle: slower

Figures are bytes per test. RSS moves in pages and pymalloc arenas: below ~1,000 tests the
per-test figure is mostly rounding; at 12,000 tests one arena (256 KiB) is 22 bytes per test.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

MODES: dict[str, list[str]] = {
    "plain": [],
    "report": ["--leak-report"],
    "report-file": ["--leak-report-file=report.json"],
    "budget": ["--memory-budget=peak=1GB"],
    "budget+report-file": ["--memory-budget=peak=1GB", "--leak-report-file=report.json"],
}
BASE = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:hypothesispytest", "-p", "no:xdist",
        "--no-header", "-W", "ignore"]

SUITE = """import pytest

@pytest.mark.parametrize("i", range({count}))
def test_empty(i):
    pass
"""

# Loaded with -p: reads settled anonymous RSS after collection and before the terminal summary.
PROBE = """import pytest

READINGS = {}


def _settled_anon():
    from leakhunt.probes import rss_anon
    from leakhunt.settle import settle

    settle()
    return rss_anon()


def pytest_collection_finish(session):
    READINGS["collected"] = _settled_anon()


@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    READINGS["ran"] = _settled_anon()
    terminalreporter.write_line(f"plugin-memory kept {READINGS['ran'] - READINGS['collected']} bytes")
"""


def run_mode(directory: Path, mode: str) -> int:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-m", "pytest", *BASE, "-p", "memprobe", *MODES[mode], "suite_test.py"],
                          cwd=directory, env=env, capture_output=True, text=True)
    found = re.search(r"plugin-memory kept (-?\d+) bytes", proc.stdout)
    if found is None:
        raise SystemExit(f"{mode}: no reading (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=12_000, help="tests in the generated suite (default 12000)")
    parser.add_argument("--modes", nargs="+", default=[m for m in MODES if m != "plain"], choices=list(MODES),
                        help="modes to compare with the plain run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="leakhunt-plugin-memory-") as tmp:
        directory = Path(tmp)
        (directory / "suite_test.py").write_text(SUITE.format(count=args.tests))
        (directory / "memprobe.py").write_text(PROBE)
        plain = run_mode(directory, "plain")
        print(f"{args.tests} empty tests; kept from collection to the summary, settled anonymous RSS")
        print("| mode | kept | kept by leakhunt | per test |")
        print("|---|---:|---:|---:|")
        print(f"| plain (no leakhunt option) | {plain / 2**20:.1f} MiB | - | - |", flush=True)
        for mode in args.modes:
            kept = run_mode(directory, mode)
            ours = kept - plain
            print(f"| {' '.join(MODES[mode])} | {kept / 2**20:.1f} MiB | {ours / 2**20:.1f} MiB "
                  f"| {ours / args.tests:.0f} B |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
