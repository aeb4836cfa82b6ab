"""The casebook: leak stories from data pipelines, each reproduced, fixed and measured.

Each case lives in its own module (``casebook/cases/<name>.py``) and exposes ``CASE``. This
package imports no case module until asked, so listing and validating names stays cheap.
"""

from __future__ import annotations

import importlib

from casebook.model import SIZES, Case

__all__ = ["CASE_NAMES", "Case", "SIZES", "all_cases", "get_case"]

# The order of the casebook: the seed stories in turn, myths next to the facts they test.
CASE_NAMES: tuple[str, ...] = (
    # Bug Report Example: DataFrame Memory Leak in Batch Processing
    "mean_myth",
    "row_slice",
    "numpy_view",
    "index_slice",
    "groupby_held",
    "killed_batch",
    # Memory Leak Fix Documentation
    "concat_loop",
    "parquet_append",
    "last_timestamp",
    "gc_myth",
    "arrow_copy",
    "memory_limit",
    # Python Memory & Garbage Collection
    "frames_alive",
    "chunked_csv",
    # Large Dataset Memory Optimization
    "top_n",
    "tracemalloc_monitor",
    "sql_aggregate",
    "dask_top_n",
    # Root Cause Analysis: Transform Pipeline Memory Crisis
    "row_buffer",
    "result_queue",
    "allocator_retention",
)


def get_case(name: str) -> Case:
    """The case called ``name``; ``ValueError`` naming it and listing the accepted names."""
    if name not in CASE_NAMES:
        raise ValueError(f"unknown case {name!r}: accepted cases are {', '.join(CASE_NAMES)}")
    case = importlib.import_module(f"casebook.cases.{name}").CASE
    if not isinstance(case, Case) or case.name != name:
        raise RuntimeError(f"casebook.cases.{name}.CASE is not the case {name!r}")
    return case


def all_cases() -> list[Case]:
    return [get_case(name) for name in CASE_NAMES]
