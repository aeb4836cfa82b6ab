"""How much of what a script kept, and of its peak, leakhunt's explanations name (issue 19 item 6).

For each script (benchmarks/scripts/*.py and docs/run/pipeline.py) this runs ``leakhunt run
--explain --json`` untraced and with ``--trace=native`` once each (``--explain``: whatever the
script kept) and prints, from the JSON:

* at exit: the explained share (the named places — roots, modules and code loaded, Arrow's pool
  — over the anonymous memory the script kept, settled), its parts, and the first root;
* at the peak (native backend): the coverage — the share of the resident anonymous memory above
  the start at the high-water mark that the sites charged to lines account for — and, with the
  freed memory malloc's arenas held resident then, every byte named.

Goal: >= 90 % at exit and at the peak.

    python benchmarks/explained_share.py [--scripts pipeline,polars_arrow_join] [--small]

``--small`` passes the scripts a smaller size (a quick development run; not for the tables).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from native_cost import SCRIPTS, SMALL, chosen_scripts  # noqa: E402  (the same scripts and sizes)

from leakhunt.units import format_size  # noqa: E402

_PLACES = {"roots": "roots", "imports": "code", "arrow": "arrow", "pymalloc": "pymalloc",
           "allocators": "allocators", "unrooted": "no root"}


def run(script: Path, args: list[str], native: bool, out: Path) -> dict:
    path = out / f"{script.stem}-{'native' if native else 'plain'}.json"
    command = [sys.executable, "-m", "leakhunt.cli", "run", "--no-status", "--explain", "--json", str(path)]
    command += ["--trace=native"] if native else []
    subprocess.run([*command, str(script), *args], cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False, timeout=1800)
    return json.loads(path.read_text())


def at_exit(record: dict) -> str:
    explanation = record.get("explanation") or {}
    of = explanation.get("accounted_of")
    parts = dict(explanation.get("accounting") or ())
    if not of:
        return "not explained"
    named = sum(size for place, size in parts.items() if place != "unrooted")  # as Explanation.explained
    roots = explanation.get("roots") or []
    first = roots[0]["root"] if roots else "-"
    split = ", ".join(f"{_PLACES.get(k, k)} {format_size(v)}" for k, v in parts.items() if v)
    return f"{min(1.0, named / of):.0%} of {format_size(of)} ({split}); first root {first}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scripts", default=",".join(SCRIPTS))
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    names = chosen_scripts(parser, args.scripts)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for name in names:
            script_args = SMALL.get(name, []) if args.small else []
            plain = run(SCRIPTS[name], script_args, False, out)
            native = run(SCRIPTS[name], script_args, True, out)
            coverage = (native.get("native") or {}).get("coverage")
            accounted = (native.get("native") or {}).get("accounted")
            print(f"{name}:")
            print(f"  at exit, untraced:        {at_exit(plain)}")
            print(f"  at exit, --trace=native:  {at_exit(native)}")
            print(f"  at the peak (native):     {'n/a' if coverage is None else f'{coverage:.0%}'} sites"
                  f"{'' if accounted is None else f', {accounted:.0%} with malloc free memory'}")


if __name__ == "__main__":
    main()
