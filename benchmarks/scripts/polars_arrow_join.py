"""polars joins and window functions on Arrow data, with a pandas report at the end.

Orders and customers arrive as Arrow tables (an engine's usual hand-off); polars joins them,
ranks each customer's orders and keeps the three biggest, and pandas formats the report. Most
of the memory is polars' own, built by its worker threads (no Python stack), and Arrow's.
"""

import sys

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

ORDERS = int(sys.argv[1]) if len(sys.argv) > 1 else 3_000_000


def arrow_inputs(n: int) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(11)
    customers = pa.table({"customer": pa.array(np.arange(n // 20)),
                          "region": pa.array(rng.integers(0, 50, n // 20))})
    amount = pa.array(rng.random(n) * 200)
    orders = pa.table({"order": pa.array(np.arange(n)),
                       "customer": pa.array(rng.integers(0, n // 20, n)),
                       "amount": amount,
                       "taxed": pc.multiply(amount, 1.2)})
    return orders, customers


def top_orders(orders: pa.Table, customers: pa.Table) -> pl.DataFrame:
    joined = pl.from_arrow(orders).join(pl.from_arrow(customers), on="customer")
    ranked = joined.with_columns(rank=pl.col("amount").rank(descending=True).over("customer"))
    return ranked.filter(pl.col("rank") <= 3).sort(["region", "amount"], descending=[False, True])


def main() -> None:
    orders, customers = arrow_inputs(ORDERS)
    top = top_orders(orders, customers)
    report = top.to_pandas()
    per_region = report.groupby("region")["amount"].agg(["count", "sum"])
    print(f"{len(report):,} top orders in {len(per_region)} regions")


if __name__ == "__main__":
    main()
