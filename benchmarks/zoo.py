"""The zoo's table: each reproducer of tests/zoo/ (real leak reports, and maintainers' "not a
leak" answers), what is true of it, the verdict leakhunt gave, the root it named first, the
explained share and the time. tests/test_zoo.py asserts the same cases; this prints them.

    python benchmarks/zoo.py                 # every file (about 5 minutes alone)
    python benchmarks/zoo.py budgets hunts   # some files (keys of tests/zoo/catalogue.py's FILES)

Each pytest reproducer runs alone, in a pytest process of its own (``--leak-report-file``; the
time is the whole process's, its start and imports included: the plugin explains after pytest
times the test); the library script runs once in a fresh interpreter (its time is measured
around each call, explanation included). Times are not benchmarks unless the machine is quiet;
tests/test_zoo.py runs the files whole, and the budgets in two orders.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import importlib.util  # noqa: E402

from engine_subprocess import run_scenario  # noqa: E402

from leakhunt.explanation import Explanation  # noqa: E402

# by its path: this script's own name is zoo, which a package tests/zoo cannot win against
_spec = importlib.util.spec_from_file_location("zoo_catalogue", ROOT / "tests" / "zoo" / "catalogue.py")
catalogue = importlib.util.module_from_spec(_spec)
sys.modules["zoo_catalogue"] = catalogue  # dataclasses look their module up
_spec.loader.exec_module(catalogue)
CASES, FILES, by_file = catalogue.CASES, catalogue.FILES, catalogue.by_file

ZOO = ROOT / "tests" / "zoo"
FLAGS = {"hunts": ["--leak-hunt"]}
_SHARE = re.compile(r"(\d+)% of [^:]* explained")


def _pytest_file(file: str, where: Path) -> dict[str, tuple[str, str | None, float | None, float]]:
    """``{test: (verdict, first root, explained share, seconds)}``: each test run alone, in a
    pytest process of its own (the time is the process's: the interpreter's start and imports,
    the test, the plugin's second call and explanation)."""
    source, name = FILES[file]
    (where / name).write_text((ZOO / source).read_text())
    (where / "zoo_table.py").write_text("import numpy as np\n\nTABLE = np.ones(2_000_000)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = {}
    for case in by_file(file):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist", "-p",
                        "no:cacheprovider", f"{name}::{case.name}", "--leak-report-file=report.json",
                        *FLAGS.get(file, [])], cwd=where, env=env, capture_output=True, text=True, timeout=1800)
        seconds = time.perf_counter() - start
        record = json.loads((where / "report.json").read_text())["tests"][0]
        data = record.get("explanation")
        explanation = Explanation.from_dict(data) if data else None
        root = explanation.roots[0].root if explanation is not None and explanation.roots else None
        share = explanation.explained if explanation is not None else None
        out[case.name] = (record["verdict"], root, share, seconds)
    return out


def _library(where: Path) -> dict[str, tuple[str, str | None, float | None, float]]:
    answers = run_scenario((ZOO / FILES["library"][0]).read_text(), script=where / FILES["library"][1],
                           timeout=1800)
    out = {}
    for case in by_file("library"):
        answer = answers[case.name]
        if "leaking" in answer:
            verdict = "leak" if answer["leaking"] else "ok"
            root = answer["roots"][0]["root"] if answer.get("roots") else None
        else:
            verdict = "over_budget" if answer["failed"] else "ok"
            lines = answer["text"].splitlines()
            at = [i for i, line in enumerate(lines) if line.strip() == "still alive because:"]
            root = lines[at[0] + 1].strip().split(" keeps ")[0] if at else None
        found = _SHARE.search(answer.get("text", ""))
        share = int(found.group(1)) / 100 if found else None
        out[case.name] = (verdict, root, share, answer.get("seconds", 0.0))
    return out


def main(argv: list[str]) -> int:
    files = argv or list(FILES)
    unknown = [f for f in files if f not in FILES]
    if unknown:
        print(f"unknown file {unknown[0]!r}: one of {', '.join(FILES)}", file=sys.stderr)
        return 2
    rows = []
    for file in files:
        with tempfile.TemporaryDirectory() as tmp:
            got = _library(Path(tmp)) if file == "library" else _pytest_file(file, Path(tmp))
        for case in by_file(file):
            verdict, root, share, seconds = got.get(case.name, ("missing", None, None, 0.0))
            right = verdict == case.verdict and (case.root is None or (root is not None and case.root in root))
            rows.append((case.report, case.name, case.truth, verdict, root or "-",
                         "-" if share is None else f"{share:.0%}", f"{seconds:.2f}", "yes" if right else "NO"))
    head = ("report", "reproducer", "truth", "verdict", "root named first", "explained", "time s", "as due")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    for row in [head] + rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    wrong = sum(1 for r in rows if r[-1] != "yes")
    print(f"\n{len(rows) - wrong} of {len(rows)} as due; {sum(1 for c in CASES if c.file in files)} cases, "
          f"python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
