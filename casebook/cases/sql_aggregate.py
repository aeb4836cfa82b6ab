"""Loading two tables into pandas to join and sum them, when the database can do it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import os

from casebook.model import Case, Claim, Flip, Observed, Params, Ruling, Variant
from casebook.verdicts import Evidence, band_text, both, budget_rule, growth_rule, rule, size_text, speed_rule, within

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
        con.execute("CREATE INDEX orders_by_day ON orders (day)")
    con.close()
    return {**p, "path": str(path), "db_bytes": os.path.getsize(path)}


def _load(p: Params) -> tuple[Any, Any]:
    import pandas as pd

    with sqlite3.connect(p["path"]) as con:
        orders = pd.read_sql("SELECT * FROM orders WHERE day BETWEEN ? AND ?", con,
                             params=(p["first_day"], p["last_day"]))
        items = pd.read_sql("SELECT * FROM order_items", con)
    return orders, items


def leaky(p: Params) -> Observed:
    """The story's "before": pull both tables into pandas, merge them, then aggregate. What
    loading left and what the merge added are measured on the way (settled)."""
    from leakhunt import measure

    with measure() as loading:
        orders, items = _load(p)
    with measure() as merging:
        merged = orders.merge(items, left_on="id", right_on="order_id")
    merged["total"] = merged["price"] * merged["quantity"]
    summary = merged.groupby("category").agg(total=("total", "sum"), quantity=("quantity", "sum"))
    return Observed(summary.reset_index(), loaded=loading.rss_growth, merged=merging.rss_growth)


def load_chunked(p: Params) -> Any:
    """Both tables into pandas, read in chunks of 5,000 rows and concatenated."""
    import pandas as pd

    with sqlite3.connect(p["path"]) as con:
        orders = pd.concat(pd.read_sql("SELECT * FROM orders WHERE day BETWEEN ? AND ?", con,
                                       params=(p["first_day"], p["last_day"]), chunksize=5_000))
        items = pd.concat(pd.read_sql("SELECT * FROM order_items", con, chunksize=5_000))
    return orders, items


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
    share, merged, loaded = e.ratio("leaky", "leaky", "merged", base_figure="loaded")
    return rule(within(share, low=0.8),
                f"loading both tables left {size_text(loaded.value)}; the merge added "
                f"{size_text(merged.value)} ({share.value:.0%} of it)",
                **{"loaded": loaded.value, "merged": merged.value})


def _twice_the_table(e: Evidence) -> Ruling:
    peak, size = e.band("load_only"), e.param("db_bytes")
    factor = peak.scaled(1 / size)
    return rule(within(factor, 1.5, 2.5),
                f"reading both tables into pandas peaked at {band_text(peak)} for a "
                f"{size_text(size)} database: {factor.value:.1f}x",
                **{"load_only peak": peak.value, "database": size})


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
        Variant("load_only", load_only, "part", "both tables into pandas, nothing else", growth=True),
        Variant("load_chunked", load_chunked, "flip", "both tables into pandas in chunks"),
    ),
    claims=(
        Claim("Aggregating in the database needs memory for the answer only, whatever the "
              "tables' size (1 MB instead of 270 GB).",
              lambda e: both(budget_rule(e, "story_fix", holds_if="keeps"),
                             growth_rule(e, "story_fix", holds_if="flat")),
              section="6. Real-World: E-Commerce Analytics",
              flip=Flip("both tables read into pandas instead", variants={"story_fix": "load_only"})),
        Claim("Merging the loaded tables in pandas makes another full copy (+150 GB on the 120 GB "
              "loaded).", _merge_copies, section="6. Real-World: E-Commerce Analytics",
              flip=Flip("a report over the whole year", params={"last_day": 364})),
        Claim("Reading a table into pandas takes about twice its size (the orders' 10 GB took "
              "20 GB).", _twice_the_table, section="6. Real-World: E-Commerce Analytics",
              flip=Flip("the tables read in chunks of 5,000 rows", variants={"load_only": "load_chunked"})),
        Claim("Aggregating in the database made the report 90 times faster (45 minutes to 30 "
              "seconds).", lambda e: speed_rule(e, "leaky", "story_fix", low=90),
              section="6. Real-World: E-Commerce Analytics",
              flip=Flip("a report over one day", params={"last_day": 0})),
    ),
    flip={"story_fix": "load_only"},
)
