"""Loading two tables into pandas to join and sum them, when the database can do it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from casebook._case import Case, Params
from casebook.top_n import SOURCE

SIZES = {
    "warmup": {"orders": 500, "items_per_order": 3, "days": 365, "first_day": 0, "last_day": 180},
    "small": {"orders": 150_000, "items_per_order": 4, "days": 365, "first_day": 0, "last_day": 180},
    "medium": {"orders": 1_000_000, "items_per_order": 5, "days": 365, "first_day": 0, "last_day": 180},
    "large": {"orders": 3_000_000, "items_per_order": 5, "days": 365, "first_day": 0, "last_day": 180},
}

CATEGORIES = ("books", "garden", "kitchen", "music", "outdoor", "sports", "tools", "toys")


def setup(p: Params, workdir: Path) -> Params:
    """An SQLite shop database: orders and their items, generated from a fixed seed."""
    import random

    rnd = random.Random(11)
    path = workdir / "shop.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, day INTEGER, customer INTEGER)")
        con.execute("CREATE TABLE order_items (order_id INTEGER, category TEXT, price REAL, "
                    "quantity INTEGER, note TEXT)")
        con.executemany(
            "INSERT INTO orders VALUES (?, ?, ?)",
            ((i, rnd.randrange(p["days"]), rnd.randrange(50_000)) for i in range(p["orders"])),
        )
        con.executemany(
            "INSERT INTO order_items VALUES (?, ?, ?, ?, ?)",
            (
                (i, CATEGORIES[rnd.randrange(8)], round(rnd.uniform(1, 200), 2),
                 rnd.randrange(1, 10), f"gift wrap {i % 97}")
                for i in range(p["orders"])
                for _ in range(p["items_per_order"])
            ),
        )
        con.execute("CREATE INDEX items_by_order ON order_items (order_id)")
    con.close()
    return {**p, "path": str(path)}


def leaky(p: Params) -> Any:
    """Pull both tables into pandas, merge them, then aggregate."""
    import pandas as pd

    with sqlite3.connect(p["path"]) as con:
        orders = pd.read_sql("SELECT * FROM orders WHERE day BETWEEN ? AND ?", con,
                             params=(p["first_day"], p["last_day"]))
        items = pd.read_sql("SELECT * FROM order_items", con)
    merged = orders.merge(items, left_on="id", right_on="order_id")
    merged["total"] = merged["price"] * merged["quantity"]
    summary = merged.groupby("category").agg(total=("total", "sum"), quantity=("quantity", "sum"))
    return summary.reset_index()


def fixed(p: Params) -> Any:
    """Send the join and the sums to the database; only eight rows come back."""
    import pandas as pd

    query = """
        SELECT i.category, SUM(i.price * i.quantity) AS total, SUM(i.quantity) AS quantity
        FROM orders AS o JOIN order_items AS i ON i.order_id = o.id
        WHERE o.day BETWEEN ? AND ?
        GROUP BY i.category
        ORDER BY i.category
    """
    with sqlite3.connect(p["path"]) as con:
        return pd.read_sql(query, con, params=(p["first_day"], p["last_day"]))


def budget(p: Params) -> dict[str, int]:
    # 100 bytes an order: the answer has eight rows; the leak holds every item, twice.
    return {"peak": p["orders"] * 100}


CASE = Case(
    name="sql_aggregate",
    title="Aggregate in the database, not in pandas",
    source=SOURCE,
    story=(
        "The same write-up's sales report read an orders table and an order-items table into "
        "pandas with `SELECT *`, merged them and grouped by category. The join alone made "
        "another full copy. Moving the join and the sums into one SQL query returned a few "
        "rows instead of every item."
    ),
    claim=(
        "Loading whole tables to join and aggregate them in pandas needs memory for every "
        "row (twice, with the merge); an aggregating query needs memory for the answer."
    ),
    metric="peak",
    sizes=SIZES,
    leaky=leaky,
    fixed=fixed,
    budget=budget,
    setup=setup,
    lesson=(
        "Let the database filter, join and aggregate, and read back only the summary. Here "
        "the database is SQLite from the standard library; the same holds for any server."
    ),
)
