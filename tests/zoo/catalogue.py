"""What is true of each reproducer in tests/zoo/, and what leakhunt must say of it.

One entry per case: the report it reproduces (``repository#number``, or the issue of this
repository whose example it is), the truth (``leak`` or ``not a leak``, as the report's
maintainers concluded), the verdict leakhunt must give, and the root it must name first (a
substring of the first root's label; ``None`` where no Python object holds the memory, or where
nothing is kept). tests/test_zoo.py asserts every entry; benchmarks/zoo.py prints them as a table.

``file`` says where the case lives and how it is run:

- ``budgets``: tests/zoo/budgets.py, ``pytest`` with the budgets in its markers;
- ``hunts``: tests/zoo/hunts.py, ``pytest --leak-hunt``;
- ``plots``: tests/zoo/plots_and_polars.py, ``pytest`` (a process of its own: matplotlib and polars);
- ``modes``: tests/zoo/modes.py, ``pytest`` by default, ``--leak-trace`` and ``--leak-no-rerun``;
- ``library``: tests/zoo/library.py, a script of ``hunt``/``why_alive``/``memory_budget`` calls
  (its case names are the keys of the JSON it prints).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Case", "CASES", "FILES", "by_file"]

#: file key -> the reproducer file in tests/zoo/ and the name it is copied to for pytest
FILES = {
    "budgets": ("budgets.py", "test_zoo_budgets.py"),
    "hunts": ("hunts.py", "test_zoo_hunts.py"),
    "plots": ("plots_and_polars.py", "test_zoo_plots.py"),
    "modes": ("modes.py", "test_zoo_modes.py"),
    "library": ("library.py", "zoo_library.py"),
}

LEAK, NOT_A_LEAK = "leak", "not a leak"


@dataclass(frozen=True)
class Case:
    name: str  # the test's name (or the library script's key)
    file: str  # a key of FILES
    report: str  # repository#number, or this repository's issue
    truth: str  # LEAK or NOT_A_LEAK
    verdict: str  # the verdict leakhunt must give: over_budget/ok (budgets), leak/ok (hunts)
    root: str | None  # a substring of the first root's label, or None


CASES: tuple[Case, ...] = (
    # budgets -------------------------------------------------------------------------------------
    Case("test_pandas_60640_object_series_slice", "budgets", "pandas-dev/pandas#60640", LEAK, "over_budget",
         "KEPT_SERIES (global in test_zoo_budgets)"),
    Case("test_pandas_60640_fixed_with_copy", "budgets", "pandas-dev/pandas#60640", NOT_A_LEAK, "ok", None),
    Case("test_pandas_44983_copy_in_a_loop", "budgets", "pandas-dev/pandas#44983", NOT_A_LEAK, "ok", None),
    Case("test_cpython_102618_method_cache_keeps_self", "budgets", "python/cpython#102618", LEAK, "over_budget",
         "Model (global in test_zoo_budgets)"),
    Case("test_ipython_11572_stored_exception", "budgets", "ipython/ipython#11572", LEAK, "over_budget",
         "LAST_ERROR (global in test_zoo_budgets)"),
    Case("test_arrow_36100_from_pylist_memory_given_back", "budgets", "apache/arrow#36100", NOT_A_LEAK, "ok", None),
    Case("test_arrow_table_kept_beside_an_equal_one", "budgets", "leakhunt issue 19 (1)", LEAK, "over_budget",
         "TABLES (global in test_zoo_budgets)"),
    Case("test_arrow_table_not_kept", "budgets", "leakhunt issue 19 (1)", NOT_A_LEAK, "ok", None),
    Case("test_one_time_native_initialisation", "budgets", "leakhunt issue 19 (5)", NOT_A_LEAK, "ok", None),
    Case("test_native_memory_every_call", "budgets", "leakhunt issue 19 (5)", LEAK, "over_budget", None),
    Case("test_logging_handler_buffers_records", "budgets", "leakhunt issue 21 (7)", LEAK, "over_budget",
         "Logger (global in logging)"),
    Case("test_weakref_finalize_payload", "budgets", "leakhunt issue 21 (7)", LEAK, "over_budget",
         "finalize (global in weakref)"),
    Case("test_thread_local_keeps_a_value", "budgets", "leakhunt issue 19 (8)", LEAK, "over_budget",
         "LOCAL (global in test_zoo_budgets)"),
    # hunts ---------------------------------------------------------------------------------------
    Case("test_numpy_10273_slices_keep_their_arrays", "hunts", "numpy/numpy#10273", LEAK, "leak",
         "VIEWS (global in test_zoo_hunts)"),
    Case("test_numpy_10273_fixed_with_a_copy", "hunts", "numpy/numpy#10273", NOT_A_LEAK, "ok", None),
    Case("test_pandas_54352_copy_does_not_leak", "hunts", "pandas-dev/pandas#54352", NOT_A_LEAK, "ok", None),
    Case("test_ten_tables_in_a_window", "hunts", "leakhunt issue 19 (1)", LEAK, "leak",
         "TABLES (global in test_zoo_hunts)"),
    # plots and polars ----------------------------------------------------------------------------
    Case("test_matplotlib_8519_figures_not_closed", "plots", "matplotlib/matplotlib#8519", LEAK, "over_budget",
         "Gcf (global in matplotlib._pylab_helpers)"),
    Case("test_matplotlib_8519_fixed_with_close", "plots", "matplotlib/matplotlib#8519", NOT_A_LEAK, "ok", None),
    Case("test_polars_3972_slices_keep_buffers", "plots", "pola-rs/polars#3972", LEAK, "over_budget",
         "SLICES (global in test_zoo_plots)"),
    Case("test_polars_3972_fixed_with_a_small_frame", "plots", "pola-rs/polars#3972", NOT_A_LEAK, "ok", None),
    Case("test_memmap_pages_are_not_anonymous_memory", "plots", "leakhunt issue 19 (6)", NOT_A_LEAK, "ok", None),
    Case("test_memmap_pages_checked_when_asked", "plots", "leakhunt issue 19 (6)", LEAK, "over_budget",
         "CLOSED (global in test_zoo_plots)"),
    # modes: the same verdict by default, under --leak-trace and under --leak-no-rerun -------------
    Case("test_fills_an_unbounded_cache", "modes", "leakhunt issue 21 (8)", LEAK, "over_budget",
         "load (global in test_zoo_modes)"),
    Case("test_imports_a_module", "modes", "leakhunt issue 21 (8)", NOT_A_LEAK, "ok", None),
    # library: hunt, why_alive, memory_budget -----------------------------------------------------
    Case("numpy_19091", "library", "numpy/numpy#19091", LEAK, "leak", "ROWS (global in __main__)"),
    Case("pandas_32433", "library", "pandas-dev/pandas#32433", LEAK, "leak",
         "a reference cycle through a numpy object array"),
    Case("pandas_49582", "library", "pandas-dev/pandas#49582", LEAK, "over_budget", "SUBSETS (global in __main__)"),
    Case("dask_3530", "library", "dask/dask#3530", NOT_A_LEAK, "ok", None),
    Case("lru_cache_500", "library", "leakhunt issue 19 (9)", LEAK, "over_budget", "cached_step (global in __main__)"),
)


def by_file(file: str) -> list[Case]:
    """The cases of one reproducer file, in the file's order."""
    return [c for c in CASES if c.file == file]
