"""What a library's import makes is set aside with the heap older than the run (leakhunt/imports.py:
``ImportMeter(freeze=True)``), but never anything of the user's: not what a user's module makes,
not what the user made before a lazy import (data, or more than a few small objects), not while
a thread of the user's runs. Each case runs in a fresh interpreter: it freezes the heap.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A block as `leakhunt run` opens one (a frozen heap, a baseline of the data holders), a meter
# that sets imports aside, then the case's lines; prints what was set aside and what the block's
# capture still holds (the case's KEEP, the imported module's functions).
PROGRAM = """\
import gc, json, sys, threading
from leakhunt.attribution import Scope
from leakhunt.imports import ImportMeter
assert {module!r} not in sys.modules
scope = Scope(trace=False, baseline=True)
meter = ImportMeter(freeze=scope.owns_freeze).install()
KEEP = None
{lines}
meter.remove()
scope.capture()
ids = {{id(o) for o in scope.captured}}
functions = [v for v in vars(sys.modules[{module!r}]).values() if type(v).__name__ == "function"]
print(json.dumps({{"frozen": meter.frozen, "modules": meter.modules,
                  "module_captured": any(id(f) in ids for f in functions),
                  "keep_captured": KEEP is not None and id(KEEP) in ids}}))
scope.close()
"""


def run(tmp_path: Path, lines: str, module: str = "plistlib") -> dict:
    program = PROGRAM.format(module=module, lines=textwrap.dedent(lines))
    proc = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_library_imported_first_is_set_aside(tmp_path: Path) -> None:
    found = run(tmp_path, "import plistlib")
    assert found["frozen"] == ["plistlib"]
    assert not found["module_captured"]  # code loaded: not among what the block made


@pytest.mark.parametrize(("before", "why"), [
    ("KEEP = [float(i) for i in range(200_000)]", "1.6 MB of a list and its floats"),
    ("import numpy\nKEEP = [numpy.ones(3)]", "data, however small"),
    ("KEEP = [[i] for i in range(3_000)]", "more objects than a script's first lines make"),
])
def test_what_the_user_made_before_a_lazy_import_keeps_it_from_being_set_aside(tmp_path: Path, before: str,
                                                                               why: str) -> None:
    found = run(tmp_path, f"{before}\nimport plistlib")
    assert found["modules"][-1] == "plistlib"
    assert "plistlib" not in found["frozen"], why
    assert found["keep_captured"] and found["module_captured"]


def test_a_few_small_objects_made_before_do_not_keep_it_from_being_set_aside(tmp_path: Path) -> None:
    """The other side of the case above: what a script's first lines make (100 small lists, well
    under leakhunt.imports.YOUNG_OBJECTS and YOUNG_BYTES) goes with the import."""
    found = run(tmp_path, "KEEP = [[i] for i in range(100)]\nimport plistlib")
    assert found["frozen"] == ["plistlib"] and not found["keep_captured"]


def test_the_users_own_module_is_not_set_aside(tmp_path: Path) -> None:
    """What a module of the user's makes when it loads is the user's (a table built at import):
    it is not frozen with the module, and then keeps a library imported after it from being."""
    (tmp_path / "helpers.py").write_text("TABLE = [float(i) for i in range(200_000)]\n")
    found = run(tmp_path, "import helpers\nKEEP = helpers.TABLE\nimport plistlib")
    assert found["modules"] == ["helpers", "plistlib"] and found["frozen"] == []
    assert found["keep_captured"]


def test_no_import_is_set_aside_while_a_thread_of_the_users_runs(tmp_path: Path) -> None:
    found = run(tmp_path, """
        stop = threading.Event()
        worker = threading.Thread(target=stop.wait)
        worker.start()
        import plistlib
        stop.set()
        worker.join()
        """)
    assert found["frozen"] == [] and found["module_captured"]


def test_an_import_inside_a_half_made_object_is_left_alone(tmp_path: Path) -> None:
    """A lazy import while an object is being built (pandas imports pyarrow inside
    DataFrame.__init__): its __sizeof__ may not work yet, and must not be called."""
    found = run(tmp_path, """
        class Frame:
            def __sizeof__(self):
                return self._mgr.nbytes  # not there until __init__ is done
            def __init__(self):
                import plistlib
                self._mgr = plistlib
        KEEP = Frame()
        """)
    assert found["modules"] == ["plistlib"] and found["frozen"] == ["plistlib"]
