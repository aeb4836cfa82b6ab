"""Top N rows of a big CSV: whole-file load, filter and sort versus a bounded pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from casebook._case import Case, Params
from casebook._data import write_sales_csv

SOURCE = "Large Dataset Memory Optimization"

SIZES = {
    "warmup": {"rows": 5_000, "chunk": 1_000, "n": 10, "threshold": 1000.0},
    "small": {"rows": 1_000_000, "chunk": 100_000, "n": 100, "threshold": 1000.0},
    # Bigger chunks parse faster (fewer calls into the parser) and cost a little more memory.
    "medium": {"rows": 5_000_000, "chunk": 500_000, "n": 100, "threshold": 1000.0},
    "large": {"rows": 10_000_000, "chunk": 500_000, "n": 100, "threshold": 1000.0},
}


def setup(p: Params, workdir: Path) -> Params:
    return {**p, "path": str(write_sales_csv(workdir / "sales.csv", p["rows"]))}


def leaky(p: Params) -> Any:
    """The report's "before": load everything, add a column, filter, sort, take the head."""
    import pandas as pd

    sales = pd.read_csv(p["path"])
    sales["total"] = sales["quantity"] * sales["price"]
    high = sales[sales["total"] > p["threshold"]]
    ranked = high.sort_values("total", ascending=False)
    return ranked.head(p["n"])


def fixed(p: Params) -> Any:
    """Chunks in, a running top N out: memory is one chunk plus N rows."""
    import pandas as pd

    best = None
    # Read only the columns the answer needs, with their types given: no inference per chunk.
    types = {"order_id": "int64", "quantity": "int64", "price": "float64"}
    with pd.read_csv(p["path"], chunksize=p["chunk"], usecols=list(types), dtype=types) as chunks:
        for chunk in chunks:
            total = chunk["quantity"] * chunk["price"]
            top = chunk.assign(total=total)[total > p["threshold"]].nlargest(p["n"], "total")
            # Merge into the running top N at once: the report's version kept every chunk's
            # top N in a list until the end, which still grows with the file.
            best = top if best is None else pd.concat([best, top]).nlargest(p["n"], "total")
    return best.reset_index(drop=True)


def read_rows(path: str) -> Iterator[dict[str, str]]:
    import csv

    with open(path, newline="") as f:
        yield from csv.DictReader(f)


def with_totals(rows: Iterator[dict[str, str]]) -> Iterator[tuple[float, int]]:
    for row in rows:
        yield float(row["quantity"]) * float(row["price"]), int(row["order_id"])


def generator(p: Params) -> list[tuple[float, int]]:
    """A pipeline of generators: one row in flight, a heap of N at the end. Pure Python."""
    import heapq

    totals = with_totals(read_rows(p["path"]))
    return heapq.nlargest(p["n"], (t for t in totals if t[0] > p["threshold"]))


def polars(p: Params) -> Any:
    """polars, lazy scan with the streaming engine."""
    import polars as pl

    return (
        pl.scan_csv(p["path"])
        .with_columns((pl.col("quantity") * pl.col("price")).alias("total"))
        .filter(pl.col("total") > p["threshold"])
        .sort("total", descending=True)
        .head(p["n"])
        .collect(engine="streaming")
    )


def duckdb(p: Params) -> Any:
    """duckdb, the same query in SQL over the CSV file."""
    import duckdb as ddb

    with ddb.connect() as con:
        return con.execute(
            "SELECT order_id, quantity, price, quantity * price AS total "
            "FROM read_csv_auto(?) WHERE quantity * price > ? ORDER BY total DESC LIMIT ?",
            [p["path"], p["threshold"], p["n"]],
        ).fetchall()


def budget(p: Params) -> dict[str, int]:
    # 40 bytes a row, about a third of what the whole frame and its copies need.
    return {"peak": p["rows"] * 40}


CASE = Case(
    name="top_n",
    title="Top N of a big CSV without loading it",
    source=SOURCE,
    story=(
        "A write-up on multi-gigabyte datasets started from a sales analysis that read a "
        "10 GB CSV whole, added a total column, filtered, sorted and kept the first 100 rows. "
        "Each step added a copy, and the job ran out of memory several times a day. It "
        "proposed pandas chunking, polars, Node streams and Python generators instead."
    ),
    claim=(
        "Load, filter, sort, head holds the whole file and several copies of it; reading "
        "in chunks and keeping a running top N needs one chunk plus N rows, whatever the "
        "file size."
    ),
    metric="peak",
    sizes=SIZES,
    leaky=leaky,
    fixed=fixed,
    budget=budget,
    setup=setup,
    lesson=(
        "Fold each chunk into a bounded top N (`nlargest` on the running result plus the "
        "chunk) instead of collecting per-chunk results, and read only the columns the "
        "answer needs. The generator pipeline is just as bounded but runs pure Python per "
        "row. polars and duckdb are measured next to it as alternatives."
    ),
    alternatives={"generator": generator, "polars": polars, "duckdb": duckdb},
    alternative_requires={"polars": "polars", "duckdb": "duckdb"},
    line_profile=("leaky",),
    helpers=(write_sales_csv, read_rows, with_totals),
)
