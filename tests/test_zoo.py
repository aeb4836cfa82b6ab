"""The zoo: reproducers of real leak reports (tests/zoo/), each asserting the verdict and the root
leakhunt names first, as tests/zoo/catalogue.py says. The pytest files run in a subprocess of
their own (gc, tracemalloc and RSS are per process), the budgets in two orders; the library
script runs in a fresh interpreter (tests/engine_subprocess.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from engine_subprocess import run_scenario  # noqa: E402
from zoo.catalogue import FILES, by_file  # noqa: E402

ZOO = Path(__file__).parent / "zoo"
TABLE_MODULE = "import numpy as np\n\nTABLE = np.ones(2_000_000)  # 15.3 MiB, built once, at import\n"


def _run(pytester: pytest.Pytester, file: str, *args: str) -> dict[str, dict]:
    """Run one reproducer file under pytest; ``{test name: its record in the JSON report}``."""
    source, name = FILES[file]
    pytester.path.joinpath(name).write_text((ZOO / source).read_text())
    pytester.path.joinpath("zoo_table.py").write_text(TABLE_MODULE)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:xdist", "-p", "no:cacheprovider",
                                           "--leak-report-file=report.json", *args, timeout=900)
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    data = json.loads(pytester.path.joinpath("report.json").read_text())
    return {t["nodeid"].split("::")[-1]: t for t in data["tests"]}


def _first_root(record: dict) -> str | None:
    roots = (record.get("explanation") or {}).get("roots") or []
    return roots[0]["root"] if roots else None


def _check(records: dict[str, dict], file: str, names: tuple[str, ...] = ()) -> None:
    """Every case of ``file`` (or those ``names``): its verdict, and the root it names first."""
    wrong = []
    for case in by_file(file):
        if names and case.name not in names:
            continue
        record = records[case.name]
        root = _first_root(record)
        if record["verdict"] != case.verdict:
            wrong.append(f"{case.name} ({case.report}): verdict {record['verdict']}, want {case.verdict}")
        elif case.root is not None and (root is None or case.root not in root):
            wrong.append(f"{case.name} ({case.report}): first root {root!r}, want {case.root!r}")
    assert not wrong, "\n".join(wrong)


def test_budget_reproducers(pytester: pytest.Pytester) -> None:
    _check(_run(pytester, "budgets"), "budgets")


def test_budget_reproducers_in_reverse_order(pytester: pytest.Pytester) -> None:
    names = [c.name for c in reversed(by_file("budgets"))]
    pytester.path.joinpath("conftest.py").write_text(
        "ORDER = %r\n\n"
        "def pytest_collection_modifyitems(items):\n"
        "    items.sort(key=lambda item: ORDER.index(item.name))\n" % (names,))
    _check(_run(pytester, "budgets"), "budgets")


def test_hunt_reproducers(pytester: pytest.Pytester) -> None:
    _check(_run(pytester, "hunts", "--leak-hunt"), "hunts")


def test_plot_and_polars_reproducers(pytester: pytest.Pytester) -> None:
    _check(_run(pytester, "plots"), "plots")


MODES = [None, "--leak-trace", "--leak-no-rerun"]


@pytest.mark.parametrize("flag", MODES)
def test_import_passes_and_unbounded_cache_fails_in_every_mode(pytester: pytest.Pytester,
                                                               flag: str | None) -> None:
    """Issue 21, item 8, one run of both tests for each option: a module imported inside a budgeted
    test (15.3 MiB built at import) is code loaded, not the test's growth, whether or not the test
    may be called a second time; an lru_cache(maxsize=None) the test fills with the same four keys
    keeps 15.3 MiB for good: over a 5 MB budget whatever the options."""
    _check(_run(pytester, "modes", *([flag] if flag else [])), "modes",
           ("test_imports_a_module", "test_fills_an_unbounded_cache"))


@pytest.fixture(scope="module")
def library_answers(tmp_path_factory: pytest.TempPathFactory) -> dict:
    script = tmp_path_factory.mktemp("zoo") / FILES["library"][1]
    return run_scenario((ZOO / FILES["library"][0]).read_text(), script=script, timeout=900)


def _library_verdict(answer: dict) -> tuple[str, str | None]:
    """A library case's verdict and first root: a hunt's ``leaking``, a budget's failure text."""
    if "leaking" in answer:
        roots = answer.get("roots") or []
        return ("leak" if answer["leaking"] else "ok"), (roots[0]["root"] if roots else None)
    if not answer["failed"]:
        return "ok", None
    lines = answer["text"].splitlines()
    after = [i for i, line in enumerate(lines) if line.strip() == "still alive because:"]
    root = lines[after[0] + 1].strip() if after and after[0] + 1 < len(lines) else None
    return "over_budget", root


@pytest.mark.parametrize("case", by_file("library"), ids=lambda c: c.name)
def test_library_reproducers(library_answers: dict, case) -> None:
    verdict, root = _library_verdict(library_answers[case.name])
    assert verdict == case.verdict, (case.report, library_answers[case.name])
    if case.root is not None:
        assert root is not None and case.root in root, (case.report, library_answers[case.name])


def test_why_alive_follows_object_columns(library_answers: dict) -> None:
    """pandas-dev/pandas#60640 from one of the objects: the path runs through the object array the
    1-row slice pins, and the slice's size is the 20,000 objects, not its pointer array."""
    element = library_answers["pandas_60640_element"]
    assert element["lines"] and "ndarray[5000] -> Record" in element["lines"][0], element
    assert element["lines"][0].startswith("KEPT (global in __main__)"), element
    assert library_answers["pandas_60640_slice"]["size"] > 20_000 * 56, library_answers["pandas_60640_slice"]


def test_why_alive_on_a_cycle_through_an_object_array(library_answers: dict) -> None:
    """pandas-dev/pandas#32433: garbage held by nothing but a cycle through a DataFrame's object
    column: why_alive says so rather than naming no path."""
    assert "no root holds it: it is in a reference cycle through a numpy object array" in \
        library_answers["pandas_32433_why_alive"]


def test_uneven_growth_is_said_as_it_was(library_answers: dict) -> None:
    """Issue 19, item 4: growth in 3 calls of 10 is not called a per-call leak, and the text says
    how often it grew."""
    uneven = library_answers["uneven"]
    assert not uneven["leaking"] and "grew in 3 of 10 calls" in uneven["text"], uneven


def test_method_cache_path_has_one_arrow_per_step(library_answers: dict) -> None:
    """Issue 19, item 8: a method cache's path, labelled by the module that defines the class."""
    paths = library_answers["method_cache_path"]
    assert any(p.startswith("Model (global in __main__) -> .score lru_cache") for p in paths), paths
    assert not any("-> ->" in p for p in paths), paths
    assert not any("__mp_main__" in p for p in paths), paths


def test_why_alive_through_a_stored_exception(library_answers: dict) -> None:
    """Issue 21, item 5 (ipython/ipython#11572): a local of a frame that raised, kept by a stored
    exception's traceback: the path runs from the dict that stores the exception through its
    traceback's frame, although that frame is on no live stack."""
    paths = library_answers["stored_exception_why_alive"]
    assert paths and paths[0].startswith("LAST_ERROR (global in __main__)"), paths
    assert "ndarray" in paths[0] and "frame" in paths[0].lower(), paths
