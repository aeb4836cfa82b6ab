"""Does making a PyArrow table from a DataFrame duplicate its data?"""

from __future__ import annotations

from typing import Any

from casebook.data import frame_bytes, make_batch
from casebook.model import Case, Claim, Observed, Params, Ruling, Variant
from casebook.verdicts import Evidence, ratio, rule, size_text

SIZES = {
    "warmup": {"rows": 1_000, "cols": 8},
    "test": {"rows": 200_000, "cols": 8},
    "small": {"rows": 1_000_000, "cols": 8},
    "medium": {"rows": 4_000_000, "cols": 8},
    "large": {"rows": 10_000_000, "cols": 8},
}


def _convert(frame: Any, size: int) -> Observed:
    import pyarrow as pa
    from leakhunt import measure

    with measure(settle=False) as m:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    return Observed((frame, table), copied=m.peak, frame=size)


def columns(p: Params) -> Observed:
    """A frame whose columns each sit in one contiguous buffer (as read_csv and concat make)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({f"c{i}": rng.random(p["rows"]) for i in range(p["cols"])})
    frame["key"] = rng.integers(0, 100, p["rows"])
    return _convert(frame, frame_bytes(p["rows"], p["cols"]))


def rows(p: Params) -> Observed:
    """A frame wrapped around a row-major 2-D array: each column is strided."""
    return _convert(make_batch(1, p["rows"], p["cols"]), frame_bytes(p["rows"], p["cols"]))


def _duplicates(e: Evidence) -> Ruling:
    shares = {name: ratio(e.value(name, "copied"), e.value(name, "frame")) for name in ("columns", "rows")}
    text = (f"converting a {size_text(e.value('columns', 'frame'))} frame copied "
            f"{size_text(e.value('columns', 'copied'))} ({shares['columns']:.0%}) when its columns "
            f"were contiguous and {size_text(e.value('rows', 'copied'))} ({shares['rows']:.0%}) "
            f"when they were strided views of a row-major array")
    figures = {f"{name} copied": e.value(name, "copied") for name in shares}
    figures["frame"] = e.value("columns", "frame")
    if all(s >= 0.8 for s in shares.values()):
        return rule("holds", text, **figures)
    if all(s <= 0.2 for s in shares.values()):
        return rule("does not hold", text, **figures)
    return rule("partly", text, **figures)


CASE = Case(
    name="arrow_copy",
    title="Does a PyArrow table duplicate the DataFrame? (claim)",
    story="missing_days",
    summary=(
        "Among its root causes, the missing-days write-up lists that creating PyArrow tables "
        "duplicated the data in memory, and that nothing cleaned up the copies. Whether "
        "`pa.Table.from_pandas` copies depends on how the frame's columns are laid out."
    ),
    lesson=(
        "Arrow can wrap a numeric column's buffer without copying it when the column is one "
        "contiguous run of values without nulls, which is how `read_csv`, `read_parquet` and "
        "`concat` lay frames out. A frame built around a row-major 2-D array has strided "
        "columns, and those are copied. Strings in pandas 3 are already Arrow data. Measure "
        "before blaming the conversion; `leakhunt.measure()` around the call says it in one line."
    ),
    metric="peak",
    sizes=SIZES,
    expect="claims",
    variants=(
        Variant("columns", columns, "part", "`from_pandas` of a frame of contiguous columns"),
        Variant("rows", rows, "part", "`from_pandas` of a frame over a row-major array"),
    ),
    claims=(
        Claim("Creating a PyArrow table from a DataFrame duplicates its data in memory.", _duplicates),
    ),
    flip={"columns": "rows"},
    imports=("numpy", "pandas", "pyarrow"),
    helpers=(make_batch,),
)
