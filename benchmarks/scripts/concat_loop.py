"""Thirty days of data concatenated one day at a time, then handed to Arrow and polars.

`cur = pd.concat([cur, day])` copies everything kept so far on every pass: the run allocates
many times what it keeps (the casebook's concat_loop case). The total kept is then converted to
an Arrow table and summarised by polars.
"""

import sys

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

DAYS = int(sys.argv[1]) if len(sys.argv) > 1 else 30
ROWS_PER_DAY = 200_000


def day(i: int) -> pd.DataFrame:
    rng = np.random.default_rng(i)
    return pd.DataFrame({"day": np.full(ROWS_PER_DAY, i), "sensor": rng.integers(0, 500, ROWS_PER_DAY),
                         "value": rng.random(ROWS_PER_DAY)})


def main() -> None:
    cur = day(0)
    for i in range(1, DAYS):
        cur = pd.concat([cur, day(i)], ignore_index=True)  # copies all days so far, every day
    table = pa.Table.from_pandas(cur, preserve_index=False)
    per_sensor = pl.from_arrow(table).group_by("sensor").agg(pl.col("value").mean())
    print(f"{len(cur):,} rows, {per_sensor.height} sensors")


if __name__ == "__main__":
    main()
