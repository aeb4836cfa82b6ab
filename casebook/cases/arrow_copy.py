"""Does making a PyArrow table from a DataFrame duplicate its data?"""

from __future__ import annotations

import time
from typing import Any

from casebook.data import DAY_BYTES_PER_ROW, make_day
from casebook.model import Case, Claim, Flip, Observed, Params, Ruling, Variant
from casebook.verdicts import Evidence, band_text, rule, size_text, within

SIZES = {
    "warmup": {"days": 2, "rows_per_day": 1_000},
    "test": {"days": 4, "rows_per_day": 200_000},
    "small": {"days": 8, "rows_per_day": 500_000},
    "medium": {"days": 20, "rows_per_day": 1_000_000},
    "large": {"days": 40, "rows_per_day": 1_000_000},
}


def _convert(frame: Any) -> Observed:
    """Convert ``frame`` as the story's job did, and report what the conversion alone added."""
    import pyarrow as pa
    from leakhunt import measure

    started = time.time()
    with measure(settle=False) as m:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    # The page's timeline shows the conversion, not the making of the frame before it.
    return Observed((frame, table), copied=m.peak, focus_start=started, focus_end=time.time())


def as_pandas_makes(p: Params) -> Observed:
    """Days of trades concatenated, as the story's job held them: pandas lays each column out
    in one contiguous buffer (so do `read_csv`, `read_parquet` and the default constructor)."""
    import pandas as pd

    frame = pd.concat([make_day(day, p["rows_per_day"]) for day in range(p["days"])], ignore_index=True)
    return _convert(frame)


def strided(p: Params) -> Observed:
    """The same numbers in a frame wrapped around one row-major 2-D array (`copy=False`): each
    column is a strided view, which Arrow cannot wrap."""
    import numpy as np
    import pandas as pd

    rows = p["days"] * p["rows_per_day"]
    values = np.random.default_rng(1).random((rows, 5))
    frame = pd.DataFrame(values, columns=["time", "price", "size", "bid", "ask"], copy=False)
    frame["venue"] = np.zeros(rows, dtype=np.int32)
    return _convert(frame)


def _data_bytes(e: Evidence) -> int:
    return int(e.param("days") * e.param("rows_per_day") * DAY_BYTES_PER_ROW)


def _duplicates(e: Evidence) -> Ruling:
    copied, data = e.band("as_pandas_makes", "copied"), _data_bytes(e)
    share = copied.scaled(1 / data)
    return rule(within(share, low=0.5),
                f"converting {size_text(data)} of days concatenated by pandas allocated "
                f"{band_text(copied)} ({share.value:.0%} of the data)",
                **{"copied": copied.value, "data": data})


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
        "Arrow wraps a numeric column's buffer without copying it when the column is one "
        "contiguous run of values without nulls, which is how pandas 3 lays frames out by "
        "default: `concat`, `read_csv`, `read_parquet` and the constructor from a 2-D array all "
        "give contiguous columns. A frame wrapped around a row-major array with `copy=False` has "
        "strided columns, and those are copied. Strings in pandas 3 are already Arrow data. "
        "Measure before blaming the conversion; `leakhunt.measure()` around the call says it in "
        "one line."
    ),
    metric="peak",
    sizes=SIZES,
    expect="claims",
    variants=(
        Variant("as_pandas_makes", as_pandas_makes, "part",
                "`from_pandas` of days concatenated by pandas (contiguous columns)"),
        Variant("strided", strided, "flip", "`from_pandas` of a frame over a row-major array (`copy=False`)"),
    ),
    claims=(
        Claim("Creating PyArrow tables from the DataFrames duplicates their data in memory.",
              _duplicates, section="Root Causes 4",
              flip=Flip("a frame wrapped around a row-major array with `copy=False`",
                        variants={"as_pandas_makes": "strided"})),
    ),
    imports=("numpy", "pandas", "pyarrow"),
    helpers=(make_day,),
)
