"""Run an engine scenario in a fresh interpreter and read back the JSON it prints.

RSS, the gc heap and tracemalloc are per process: a scenario that measures them runs alone in
its own interpreter, so tests neither disturb each other nor inherit pytest's heap.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

#: Imported by every scenario: ``emit(obj)`` prints the JSON line the test reads back.
PRELUDE = """\
import json, sys
def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\\n")
    sys.stdout.flush()
"""


def run_scenario(*code: str, script: Path | None = None, timeout: float = 300, small_parent: bool = False) -> Any:
    """Run the ``code`` parts (each dedented) after :data:`PRELUDE`; return the last JSON line printed.

    With ``script`` the code is written to that file and run from there, so tracebacks and
    tracemalloc name a real file with readable lines. ``small_parent``: started by a shell that
    forks it, so its getrusage floor is the shell's small peak, not this pytest process's
    (docs/accounting.md, "Reading the mark"): for a scenario that asserts which way the mark is read.
    """
    source = PRELUDE + "".join(textwrap.dedent(part) for part in code)
    if script is not None:
        script.write_text(source)
        argv = [sys.executable, str(script)]
    else:
        argv = [sys.executable, "-c", source]
    if small_parent:  # not the shell's last command, so it forks instead of exec-ing in place
        argv = ["/bin/sh", "-c", '"$@"; exit $?', "sh", *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"scenario failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("{", "["))]
    assert lines, f"scenario printed no JSON:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1])
