"""Object-heavy: an Arrow table turned into a million enriched dicts, and back into Arrow.

The script issue 20 met: a 1 M-row table -> ``to_pylist()`` -> a dict per row with derived
fields -> ``pa.Table.from_pylist``. Millions of small Python objects are alive at the peak: a
tracemalloc snapshot then holds millions of traces, and summarising it is what took
`leakhunt run --trace` 762 s (the script itself 5.5 s).
"""

import sys

import numpy as np
import pyarrow as pa

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
CATEGORIES = ["books", "garden", "kitchen", "toys", "tools", "music", "games", "sports"]


def load(rows: int) -> pa.Table:
    rng = np.random.default_rng(3)
    return pa.table({
        "sku": pa.array(np.arange(rows)),
        "category": pa.array([CATEGORIES[i % len(CATEGORIES)] for i in range(rows)]),
        "price": pa.array(rng.random(rows) * 100),
        "stock": pa.array(rng.integers(0, 500, rows)),
    })


def enrich(row: dict) -> dict:
    value = row["price"] * row["stock"]
    return {**row, "value": value, "label": f"{row['category']}-{row['sku']:07d}", "restock": row["stock"] < 20,
            "band": "high" if value > 20_000 else "low"}


def main() -> None:
    products = load(ROWS)
    rows = products.to_pylist()
    enriched = [enrich(row) for row in rows]
    result = pa.Table.from_pylist(enriched)
    restock = sum(1 for row in enriched if row["restock"])
    print(f"{result.num_rows:,} rows, {restock:,} to restock, {result.nbytes / 2**20:.1f} MiB as Arrow")


if __name__ == "__main__":
    main()
