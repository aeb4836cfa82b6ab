"""The public surface: exactly the names of DESIGN.md (and their types), nothing by accident."""

from __future__ import annotations

import importlib.metadata
import pkgutil
import types
from pathlib import Path

import leakhunt
from engine_subprocess import run_scenario

PUBLIC = [
    "Budget",
    "LeakVerdict",
    "Measurement",
    "MemoryBudgetExceeded",
    "RetentionPaths",
    "Violation",
    "format_size",
    "hunt",
    "measure",
    "memory_budget",
    "oom_guard",
    "parse_size",
    "settle",
    "track_growth",
    "why_alive",
]

#: The names DESIGN.md fixes: users, docs and tests depend on them.
DESIGN_NAMES = {"memory_budget", "MemoryBudgetExceeded", "measure", "hunt", "why_alive", "track_growth",
                "parse_size", "format_size"}


def test_all_is_sorted_and_exactly_the_public_surface() -> None:
    assert leakhunt.__all__ == sorted(leakhunt.__all__)
    assert leakhunt.__all__ == PUBLIC
    assert DESIGN_NAMES <= set(leakhunt.__all__)
    surface = {
        name
        for name, value in vars(leakhunt).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)  # submodules are not the curated surface
        and name != "annotations"  # from __future__ import annotations
    }
    assert surface == set(PUBLIC)


def test_star_import_gives_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from leakhunt import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(PUBLIC)


def test_exception_is_shown_as_leakhunt_memory_budget_exceeded() -> None:
    assert leakhunt.MemoryBudgetExceeded.__module__ == "leakhunt"
    assert issubclass(leakhunt.MemoryBudgetExceeded, AssertionError)


def test_version_matches_the_installed_distribution() -> None:
    assert leakhunt.__version__ == importlib.metadata.version("leakhunt")


def test_package_is_typed() -> None:
    assert (Path(leakhunt.__file__).parent / "py.typed").is_file()


def test_leakhunt_never_imports_pytest_nor_the_data_libraries() -> None:
    modules = sorted(m.name for m in pkgutil.walk_packages(leakhunt.__path__, "leakhunt."))
    assert "leakhunt.measure" in modules and "leakhunt.retention" in modules
    result = run_scenario(
        f"""
        import importlib
        import leakhunt
        after_package = sorted(sys.modules)
        for name in {modules!r}:
            importlib.import_module(name)
        emit({{"package": [m for m in after_package if m.split(".")[0] in
                           ("pytest", "_pytest", "pyarrow", "pandas", "numpy", "matplotlib")],
              "all": [m for m in sys.modules if m.split(".")[0] in ("pytest", "_pytest", "pluggy")]}})
        """
    )
    assert result["all"] == []  # no module of leakhunt imports pytest
    assert result["package"] == []  # `import leakhunt` costs no heavy import
