"""pandas -> Arrow -> Parquet and back, then a polars summary of the same table.

A daily sales extract: build a 2 M-row frame, convert it to an Arrow table, write it as Parquet
and read one column group back, hand the table to polars for a per-store summary, and merge the
summary into the frame. The peak is the merge, with the frame, its Arrow copy and the read-back
table alive together.
"""

import os
import sys
import tempfile

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000


def build(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({
        "store": rng.integers(0, 1000, rows),
        "units": rng.integers(1, 20, rows),
        "price": rng.random(rows) * 50,
        "day": rng.integers(0, 365, rows),
    })


def main() -> None:
    sales = build(ROWS)
    table = pa.Table.from_pandas(sales, preserve_index=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sales.parquet")
        pq.write_table(table, path, row_group_size=250_000)
        back = pq.read_table(path, columns=["store", "units", "price"])
    summary = (pl.from_arrow(back)
               .group_by("store")
               .agg(pl.col("units").sum().alias("units_sold"), (pl.col("units") * pl.col("price")).sum().alias("revenue"))
               .to_pandas())
    enriched = sales.merge(summary, on="store")
    enriched["share"] = enriched["units"] / enriched["units_sold"]
    print(f"{len(enriched):,} rows, top store revenue {summary['revenue'].max():,.0f}")


if __name__ == "__main__":
    main()
