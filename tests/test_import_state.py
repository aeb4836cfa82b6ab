"""What a block's imports left alive is placed by forward walks, not searched backwards
(leakhunt/import_state.py; issue 20 item 4: the exit explanation of ``leakhunt run`` searched
2,500 small chunks pandas, pyarrow and polars left, seconds per script).

Each case runs in a subprocess (a fresh heap): a block (:class:`leakhunt.attribution.Scope`,
untraced, with a baseline of the data holders, as ``leakhunt run`` opens it) that imports pandas
and does one more thing, then :func:`leakhunt.attribution.survivors`, counting the chunks the
backward search is asked about.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from leakhunt.import_state import MIN_CHUNKS

_PROBE = """\
import json, sys
from leakhunt import attribution
from leakhunt.attribution import Scope, survivors

searched = []
search = attribution.paths_to


def counting(targets, **options):
    searched.extend(id(t) for t in targets)
    return search(targets, **options)


attribution.paths_to = counting
scope = Scope(trace=False, baseline=True)
import pandas
{body}
found = survivors(scope)
scope.close()
print(json.dumps({{"searched": len(searched), "imports": found.imports, "unrooted": found.unrooted,
                   "skipped": found.skipped, "roots": [[r.root, r.size] for r in found.roots]}}))
"""


def _probe(body: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(body=textwrap.dedent(body))], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_what_imports_left_is_code_loaded_without_a_search() -> None:
    """Importing pandas leaves thousands of small chunks (typing's caches, registries, the
    namespaces of wrapped functions): code loaded, placed without a backward search (it searched
    about 2,400 of them); nothing is a root and nothing is left unsearched."""
    found = _probe("")
    assert found["searched"] < MIN_CHUNKS, found
    assert found["imports"] > 4 * 2**20, found
    assert found["roots"] == [] and found["skipped"] == 0, found


@pytest.mark.parametrize(("body", "root", "size"), [
    # a library function's lru_cache filled by the user's calls: 5,000 small compiled patterns
    ("import fnmatch\nSEEN = [fnmatch.filter(['a'], str(i)) for i in range(5000)]",
     "_compile_pattern (global in fnmatch)", 1_000_000),
    # the user's array in a library's registry (weakref.finalize keeps its arguments)
    ("import weakref, numpy as np\nclass Conn: pass\nCONNS = [Conn()]\nweakref.finalize(CONNS[0], len, np.ones(500_000))",
     "finalize (global in weakref)", 4_000_000),
])
def test_what_a_library_holds_for_the_user_is_still_a_root(body: str, root: str, size: int) -> None:
    """Beside the same imports, what the user's calls left in a library's state is still
    searched and named by the library's global that keeps it."""
    found = _probe(body)
    kept = dict(found["roots"])
    assert root in kept and kept[root] >= size, found


@pytest.mark.parametrize("held", [True, False])
def test_what_no_root_reaches_is_rootless_and_what_a_global_holds_is_its(held: bool) -> None:
    """300 small dicts the user's global holds are that global's; the same dicts held by nothing
    a search can follow (a reference taken in C) are memory no Python object holds, told by the
    forward walk from every root rather than searched one by one."""
    if held:
        found = _probe("HELD = [{'held': [i]} for i in range(300)]")
        assert dict(found["roots"]).get("HELD (global in __main__)", 0) >= 300 * 64, found
    else:
        leak = "import ctypes\nfor i in range(300):\n    ctypes.pythonapi.Py_IncRef(ctypes.py_object({'held': [i]}))"
        without = _probe("")
        found = _probe(leak)
        assert found["unrooted"] - without["unrooted"] >= 300 * 64, (found, without)
        assert found["searched"] < MIN_CHUNKS and found["skipped"] == 0, found


# ------------------------------------------------------------------ the walk of what any root reaches
# (_reachable goes on from the libraries' labels, not over them again, when _labels_reached says
# it reaches all they label: these compare it with the whole walk)


def _walk_inputs() -> tuple:
    from leakhunt import import_state as ist
    from leakhunt.heap import module_dicts

    library, user = ist._namespaces()
    namespaces = module_dicts()
    framework = {rid for rid, name in namespaces.items() if name.split(".", 1)[0] in ist._frames.FRAMEWORK}
    roots = ist._user_roots(user, None)
    stop = ist._user_reach(roots, set(namespaces)) | set(namespaces)
    modules = ist._modules()
    for module in modules:
        namespace = getattr(module, "__dict__", None)
        if isinstance(namespace, dict) and id(namespace) not in namespaces:
            library[id(namespace)] = namespace
    unentered: list = []
    labels = ist._library_labels(library, stop, ist._import_state_globals(), unentered)
    return library, framework, roots, stop, modules, labels, unentered


_SAME_REACH = """\
import json, sys
sys.path.insert(0, {tests!r})
import pandas
from leakhunt import import_state as ist
from test_import_state import _walk_inputs



def compare():  # (locals: what the walks make is no global of __main__'s, which both would reach)
    library, framework, roots, stop, modules, labels, unentered = _walk_inputs()
    whole = ist._reachable(roots, framework, modules)
    return {{"taken": ist._labels_reached(library, modules, framework, labels, stop),
            "same": ist._reachable(roots, framework, modules, (labels, unentered)) == whole,
            "whole": len(whole), "labels": len(labels)}}


print(json.dumps(compare()))
"""


def test_the_walk_from_the_labels_reaches_what_the_whole_walk_reaches() -> None:
    # in a fresh interpreter that imported pandas, as `leakhunt run` leaves one (under pytest,
    # its aliases of modules - py.path for _pytest._py.path - send the walk over the whole heap)
    import os

    code = _SAME_REACH.format(tests=os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["taken"] and found["same"], found
    assert found["whole"] > found["labels"] > 10_000, found  # (the walks did walk pandas' heap)


_DEAD_END = "def boom():\n    kept = [object(), object()]\n    raise ValueError(kept)\n"


def test_a_dead_end_frame_a_library_holds_sends_the_walk_over_the_whole_heap() -> None:
    # a traceback kept in a library's namespace (json's), whose frame is leakhunt's own code (a
    # dead end: no search passes it): the libraries' walk enters the frame and labels its
    # locals, which no root of a search reaches - so the labels must not be taken as reached
    import os

    import leakhunt
    from leakhunt import import_state as ist

    namespace: dict = {}
    exec(compile(_DEAD_END, os.path.join(os.path.dirname(leakhunt.__file__), "_dead_end_probe.py"), "exec"),
         namespace)
    try:
        namespace["boom"]()
    except ValueError as exc:
        json._leakhunt_probe = exc.__traceback__.tb_next  # type: ignore[attr-defined]
    namespace.clear()
    kept = id(json._leakhunt_probe.tb_frame.f_locals["kept"])  # type: ignore[attr-defined]
    try:
        library, framework, roots, stop, modules, labels, unentered = _walk_inputs()
        assert kept in labels
        assert not ist._labels_reached(library, modules, framework, labels, stop)
        whole = ist._reachable(roots, framework, modules)
        assert kept not in whole
        assert kept in ist._reachable(roots, framework, modules, (labels, unentered))  # what the check prevents
    finally:
        del json._leakhunt_probe  # type: ignore[attr-defined]


def test_a_library_namespace_whose_module_the_walk_does_not_start_from_sends_it_over_the_whole_heap() -> None:
    # a module named as the framework's (so not a start of the walk from every module) under a
    # library's name in sys.modules: the labels are not taken as reached (the whole walk runs)
    import types

    from leakhunt import import_state as ist

    alias = types.ModuleType("_pytest._leakhunt_probe")
    alias.kept = [object()]  # type: ignore[attr-defined]
    sys.modules["leakhunt_probe_alias"] = alias
    try:
        library, framework, roots, stop, modules, labels, unentered = _walk_inputs()
        assert id(alias.__dict__) in library
        assert not ist._labels_reached(library, modules, framework, labels, stop)
    finally:
        del sys.modules["leakhunt_probe_alias"]


def test_a_small_dict_only_a_library_function_holds_is_its_code() -> None:
    # a few entries (one group: read by gc.get_referrers' own pass): the attribute dict of a
    # standard library function is held by that function alone, as its own code; a dict a list
    # of the test's also holds is not
    import json as library_module

    from leakhunt.attribution import _Chunk
    from leakhunt.import_state import _held_as_code

    library_module.dumps._leakhunt_probe = 1  # type: ignore[attr-defined]  # (makes its __dict__)
    also_held = [{"probe": 2}]
    try:
        chunks = [_Chunk(library_module.dumps.__dict__), _Chunk(also_held[0])]
        for chunk in chunks:
            chunk.python = 100
        assert _held_as_code(chunks, {}, set()) == [chunks[0]]
    finally:
        del library_module.dumps._leakhunt_probe  # type: ignore[attr-defined]
