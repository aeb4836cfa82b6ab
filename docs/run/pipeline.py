"""A small daily-revenue job: the example profiled in docs/run.md.

It has the two things `leakhunt run` is for: a transient peak (the merge) and memory that
stays (a 10-row slice kept in a module-level list pins the whole enriched frame).
"""

import sys

import numpy as np
import pandas as pd

RECENT = []  # the last rows of every run, for a dashboard


def load(n: int = 1_500_000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "store": rng.integers(0, 500, n),
        "qty": rng.integers(1, 10, n),
        "price": rng.random(n) * 100,
    })


def enrich(df: pd.DataFrame) -> pd.DataFrame:
    means = df.groupby("store", as_index=False)["price"].mean().rename(columns={"price": "store_mean"})
    out = df.merge(means, on="store")
    out["revenue"] = out["qty"] * out["price"]
    return out


def main() -> None:
    enriched = enrich(load())
    revenue = enriched.groupby("store")["revenue"].sum()
    if "--fixed" in sys.argv:
        RECENT.append(enriched.iloc[-10:].copy())  # ten rows of its own
    else:
        RECENT.append(enriched.iloc[-10:])  # a view: it keeps the whole frame alive
    print(f"top store: {revenue.idxmax()} ({revenue.max():,.0f})")


if __name__ == "__main__":
    main()
