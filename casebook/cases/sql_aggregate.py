"""Loading two tables into pandas to join and sum them, when the database can do it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from casebook.model import Case, Claim, Params, Ruling, Variant
from casebook.verdicts import Evidence, both, budget_rule, growth_rule, share_rule, size_text

SIZES = {
    "warmup": {"orders": 500, "items_per_order": 3, "days": 365, "first_day": 0, "last_day": 180},
    "test": {"orders": 80_000, "items_per_order": 4, "days": 365, "first_day": 0, "last_day": 180},
    "small": {"orders": 100_000, "items_per_order": 4, "days": 365, "first_day": 0, "last_day": 180},
    "medium": {"orders": 1_000_000, "items_per_order": 5, "days": 365, "first_day": 0, "last_day": 180},
    "large": {"orders": 3_000_000, "items_per_order": 5, "days": 365, "first_day": 0, "last_day": 180},
}

CATEGORIES = ("books", "garden", "kitchen", "music", "outdoor", "sports", "tools", "toys")


def setup(p: Params, workdir: Path) -> Params:
    """An SQLite shop database: orders and their items, generated from a fixed seed."""
    import random

    rnd = random.Random(11)
    path = workdir / "shop.sqlite"
    con = sqlite3.connect(path)
    with con:
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


def _load(p: Params) -> tuple[Any, Any]:
    import pandas as pd

    with sqlite3.connect(p["path"]) as con:
        orders = pd.read_sql("SELECT * FROM orders WHERE day BETWEEN ? AND ?", con,
                             params=(p["first_day"], p["last_day"]))
        items = pd.read_sql("SELECT * FROM order_items", con)
    return orders, items


def leaky(p: Params) -> Any:
    """The story's "before": pull both tables into pandas, merge them, then aggregate."""
    orders, items = _load(p)
    merged = orders.merge(items, left_on="id", right_on="order_id")
    merged["total"] = merged["price"] * merged["quantity"]
    summary = merged.groupby("category").agg(total=("total", "sum"), quantity=("quantity", "sum"))
    return summary.reset_index()


def load_only(p: Params) -> Any:
    """Only the two `SELECT`s into pandas: what loading costs by itself."""
    return _load(p)


def story_fix(p: Params) -> Any:
    """The story's fix: send the join and the sums to the database; eight rows come back."""
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


def budget(p: Params) -> int:
    # 100 bytes an order: the answer has eight rows; the leak holds every item, twice.
    return p["orders"] * 100


def _merge_copies(e: Evidence) -> Ruling:
    return share_rule(
        e, "leaky", "load_only", holds=lambda m: m >= 1.8, fails=lambda m: m < 1.3,
        says=lambda whole, loaded, m: (
            f"loading both tables peaked at {size_text(loaded)}; merging and summing them, at "
            f"{size_text(whole)} ({m - 1:+.0%})"),
    )


CASE = Case(
    name="sql_aggregate",
    title="Aggregate in the database, not in pandas",
    story="large_dataset",
    summary=(
        "The same write-up's sales report read an orders table and an order-items table into "
        "pandas with `SELECT *`, merged them and grouped by category. Moving the join and the "
        "sums into one SQL query returned a few rows instead of every item: \"1MB vs 270GB\"."
    ),
    lesson=(
        "Let the database filter, join and aggregate, and read back only the summary. Here the "
        "database is SQLite from the standard library; the same holds for any server."
    ),
    metric="peak",
    sizes=SIZES,
    budget=budget,
    setup=setup,
    growth_keys=("orders",),
    variants=(
        Variant("leaky", leaky, "leaky", "both tables into pandas, merge, group", growth=True),
        Variant("story_fix", story_fix, "story_fix", "one aggregating SQL query", growth=True),
        Variant("load_only", load_only, "part", "both tables into pandas, nothing else"),
    ),
    claims=(
        Claim("Aggregating in the database needs memory for the answer only, whatever the "
              "tables' size.",
              lambda e: both(budget_rule(e, "story_fix", holds_if="keeps"),
                             growth_rule(e, "story_fix", holds_if="flat"))),
        Claim("Merging the loaded tables in pandas makes another full copy.", _merge_copies),
    ),
    flip={"story_fix": "load_only"},
)
