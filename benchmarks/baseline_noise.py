"""How much a test's memory figures move from run to run, and what the baseline rule makes of it.

Runs a test suite several times with ``--leak-report-file`` (the cheap per-test path, as a CI
job would), in the same order and in shuffled orders (pytest-randomly), and compares every run
with the first:

- the run-to-run difference of each test's peak and retained figure (bytes: median, 99th
  percentile, the largest) and, for tests whose figure is 1 MiB or more, the largest change as a
  share of the figure: the default floor and threshold of leakhunt.baseline are chosen above them;
- the regressions that leakhunt.baseline.compare finds with its default rule (there should be none);
- one more run in which one test is edited to keep ``--extra`` MiB more (a plugin wraps its
  function), compared with ``pytest --leak-baseline``: the regression should be caught, explained.

    python benchmarks/baseline_noise.py                       # pandas' series.methods, 3 + 1 runs
    python benchmarks/baseline_noise.py --runs 2 --shuffled 0 --suite PATH

The figures in benchmarks/baseline.md and docs/ci.md come from this command. Memory figures,
not timings, but run it on a quiet machine all the same: other processes change what the
allocator gives back.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from leakhunt.baseline import FIGURES, Rule, compare, load_report
from leakhunt.units import format_size

MIB = 1024 * 1024

#: The plugin that edits one test: it keeps LEAKHUNT_EDIT_MIB MiB more, in a module global.
EDIT_PLUGIN = '''
import functools
import os

import pytest

TARGET = os.environ["LEAKHUNT_EDIT_TEST"]
MIB = int(os.environ["LEAKHUNT_EDIT_MIB"])
KEPT = []


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if item.nodeid.endswith(TARGET):
            original = item.obj

            @functools.wraps(original)
            def edited(*args, **kwargs):
                result = original(*args, **kwargs)
                block = bytearray(MIB * 1024 * 1024)
                block[::4096] = b"x" * len(block[::4096])  # touched: resident
                KEPT.append(block)
                return result

            item.obj = edited
            return
    raise pytest.UsageError(f"no collected test ends with {TARGET!r}")
'''


def default_suite() -> str:
    import pandas

    return os.path.join(os.path.dirname(pandas.__file__), "tests", "series", "methods")


def pytest_run(suite: str, report: Path, *extra: str, env: dict[str, str] | None = None,
               cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", suite, "-q", "-p", "no:cacheprovider", "-W", "ignore",
               f"--leak-report-file={report}", *extra]
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()[-300:]
    print(f"  {report.name}: exit {proc.returncode}; {last}", flush=True)
    return proc


def spread(base_path: Path, other_path: Path) -> dict[str, dict[str, float]]:
    """Per figure: the differences of each test's figure between two runs."""
    base = {r.nodeid: r for r in load_report(base_path).records}
    other = {r.nodeid: r for r in load_report(other_path).records}
    out: dict[str, dict[str, float]] = {}
    for name in FIGURES:
        diffs, shares = [], []
        for nodeid, a in base.items():
            b = other.get(nodeid)
            if b is None or getattr(a, name) is None or getattr(b, name) is None:
                continue
            x, y = max(getattr(a, name), 0), max(getattr(b, name), 0)
            diffs.append(abs(y - x))
            if min(x, y) >= MIB:  # a share of a figure of 1 MiB or more in both runs
                shares.append(abs(y - x) / min(x, y))
        diffs.sort()
        n = len(diffs)
        out[name] = {"tests": n, "p50": diffs[n // 2] if n else 0, "p99": diffs[int(n * 0.99)] if n else 0,
                     "max": diffs[-1] if n else 0, "big": len(shares), "big_max_share": max(shares, default=0.0)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default=None, help="test path (default: pandas/tests/series/methods)")
    parser.add_argument("--runs", type=int, default=3, help="runs in the same order (default 3)")
    parser.add_argument("--shuffled", type=int, default=1, help="runs in shuffled orders (default 1)")
    parser.add_argument("--edit", default="test_rank.py::test_pct_max_many_rows",
                        help="the test edited to keep more (a node id's end)")
    parser.add_argument("--extra", type=int, default=10, help="MiB the edited test keeps more (default 10)")
    parser.add_argument("--out", default=None, help="directory for the reports (default: a temporary one)")
    args = parser.parse_args()
    suite = args.suite or default_suite()
    out = Path(args.out or tempfile.mkdtemp(prefix="leakhunt-noise-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"suite {suite}; reports in {out}")

    runs = []
    for i in range(args.runs):
        runs.append((f"same order #{i + 1}", out / f"same-{i + 1}.json"))
        pytest_run(suite, runs[-1][1], "-p", "no:randomly", cwd=out)
    for i in range(args.shuffled):
        runs.append((f"shuffled (seed {1000 + i})", out / f"shuffled-{i + 1}.json"))
        pytest_run(suite, runs[-1][1], "-p", "randomly", f"--randomly-seed={1000 + i}", cwd=out)

    base_path = runs[0][1]
    base = load_report(base_path)
    rule = Rule()
    print(f"\nEach run against {base_path.name}; regressions by the default rule ({rule.describe()}):\n")
    print("| run | figure | tests | median diff | p99 diff | largest diff | tests >= 1 MiB in both | largest change "
          "of those | regressions |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    worst = {name: 0.0 for name in FIGURES}
    for label, path in runs[1:]:
        regressions = compare(load_report(path), base, rule).regressions()
        for name, s in spread(base_path, path).items():
            worst[name] = max(worst[name], s["max"])
            print(f"| {label} | {FIGURES[name]} | {s['tests']:,.0f} | {format_size(s['p50'])} | "
                  f"{format_size(s['p99'])} | {format_size(s['max'])} | {s['big']:,.0f} | "
                  f"{s['big_max_share']:.1%} | {len(regressions)} |")
    print("\nlargest difference of any test, any run: "
          + ", ".join(f"{FIGURES[n]} {format_size(v)}" for n, v in worst.items())
          + f"; the default floor is {format_size(rule.floor)}")

    # one test edited to keep more: caught by pytest --leak-baseline, with its explanation
    plugin_dir = out / "edit"
    plugin_dir.mkdir(exist_ok=True)
    (plugin_dir / "leakhunt_edit.py").write_text(textwrap.dedent(EDIT_PLUGIN))
    env = {"LEAKHUNT_EDIT_TEST": args.edit, "LEAKHUNT_EDIT_MIB": str(args.extra),
           "PYTHONPATH": os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")])}
    edited = out / "edited.json"
    proc = pytest_run(suite, edited, "-p", "no:randomly", "-p", "leakhunt_edit", f"--leak-baseline={base_path}",
                      env=env, cwd=out)
    comparison = compare(load_report(edited), base, rule)
    caught = comparison.regressions()
    print(f"\n{args.edit} edited to keep {args.extra} MiB more: pytest --leak-baseline exit status {proc.returncode}; "
          f"{len(caught)} regression(s)")
    for change in caught:
        print(f"  {change.nodeid}: {change.headline()}")
        if change.explanation is not None:
            print(textwrap.indent("\n".join(change.explanation.lines()[1:6]), "    "))
    summary = {"suite": suite, "worst": worst, "regressions_unchanged": [
        len(compare(load_report(p), base, rule).regressions()) for _, p in runs[1:]],
        "edited_exit": proc.returncode, "edited_caught": [c.nodeid for c in caught]}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    ok = all(n == 0 for n in summary["regressions_unchanged"]) and [c for c in caught if c.nodeid.endswith(args.edit)]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
