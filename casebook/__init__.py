"""The casebook: leak stories from data pipelines, each reproduced, fixed and measured.

Each case lives in its own module (``casebook/<name>.py``) and exposes ``CASE``. This package
imports no case module until asked, so listing and validating names stays cheap.
"""

from __future__ import annotations

import importlib

from casebook._case import METRICS, NOISE_FLOOR, SIZES, Case

__all__ = ["CASE_NAMES", "Case", "METRICS", "NOISE_FLOOR", "SIZES", "all_cases", "get_case"]

# The order of the casebook: the seed stories in turn, myths next to the facts they test.
CASE_NAMES: tuple[str, ...] = (
    "mean_myth",
    "row_slice",
    "numpy_view",
    "index_slice",
    "groupby_held",
    "concat_loop",
    "last_timestamp",
    "row_buffer",
    "result_queue",
    "frames_alive",
    "chunked_csv",
    "top_n",
    "sql_aggregate",
    "gc_myth",
    "allocator_retention",
)


def get_case(name: str) -> Case:
    """The case called ``name``; ``ValueError`` naming it and listing the accepted names."""
    if name not in CASE_NAMES:
        raise ValueError(f"unknown case {name!r}: accepted cases are {', '.join(CASE_NAMES)}")
    case = importlib.import_module(f"casebook.{name}").CASE
    assert isinstance(case, Case) and case.name == name, f"casebook.{name}.CASE is misnamed"
    return case


def all_cases() -> list[Case]:
    return [get_case(name) for name in CASE_NAMES]
