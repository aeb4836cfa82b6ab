"""Top N rows of a big CSV: whole-file load, filter and sort versus bounded passes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

from casebook.data import write_sales_csv
from casebook.model import Case, Claim, Params, Ruling, Variant
from casebook.verdicts import NOISE_FLOOR, Evidence, banded, both, budget_rule, growth_rule, ratio, share_rule, size_text

SIZES = {
    "warmup": {"rows": 5_000, "chunk": 1_000, "n": 10, "threshold": 1000.0},
    "test": {"rows": 400_000, "chunk": 25_000, "n": 100, "threshold": 1000.0},
    "small": {"rows": 1_000_000, "chunk": 100_000, "n": 100, "threshold": 1000.0},
    "medium": {"rows": 5_000_000, "chunk": 100_000, "n": 100, "threshold": 1000.0},
    "large": {"rows": 10_000_000, "chunk": 100_000, "n": 100, "threshold": 1000.0},
}


def setup(p: Params, workdir: Path) -> Params:
    path = write_sales_csv(workdir / "sales.csv", p["rows"])
    return {**p, "path": str(path), "file_bytes": os.path.getsize(path)}


def leaky(p: Params) -> Any:
    """The story's "before": load everything, add a column, filter, sort, take the head."""
    import pandas as pd

    df = pd.read_csv(p["path"])
    df["total"] = df["quantity"] * df["price"]
    df_filtered = df[df["total"] > p["threshold"]]
    df_sorted = df_filtered.sort_values("total", ascending=False)
    return df_sorted.head(p["n"])


def story_fix(p: Params) -> Any:
    """The story's chunked version as written: each chunk's top N kept in a list, then combined."""
    import pandas as pd

    top_sales = []
    for chunk in pd.read_csv(p["path"], chunksize=p["chunk"]):
        chunk["total"] = chunk["quantity"] * chunk["price"]
        filtered = chunk[chunk["total"] > p["threshold"]]
        top_chunk = filtered.nlargest(p["n"], "total")
        top_sales.append(top_chunk)
    return pd.concat(top_sales).nlargest(p["n"], "total")


def running_top(p: Params) -> Any:
    """Chunks, with every chunk folded into one running top N at once (all columns read)."""
    import pandas as pd

    best = None
    with pd.read_csv(p["path"], chunksize=p["chunk"]) as chunks:
        for chunk in chunks:
            total = chunk["quantity"] * chunk["price"]
            top = chunk.assign(total=total)[total > p["threshold"]].nlargest(p["n"], "total")
            best = top if best is None else pd.concat([best, top]).nlargest(p["n"], "total")
    return best.reset_index(drop=True)


def usecols_whole(p: Params) -> Any:
    """The whole file at once, but only the needed columns, with their types given."""
    import pandas as pd

    types = {"order_id": "int64", "quantity": "int64", "price": "float64"}
    df = pd.read_csv(p["path"], usecols=list(types), dtype=types)
    df["total"] = df["quantity"] * df["price"]
    return df[df["total"] > p["threshold"]].nlargest(p["n"], "total")


def fixed(p: Params) -> Any:
    """Chunks in, a running top N out, and only the needed columns: one chunk plus N rows."""
    import pandas as pd

    best = None
    types = {"order_id": "int64", "quantity": "int64", "price": "float64"}
    with pd.read_csv(p["path"], chunksize=p["chunk"], usecols=list(types), dtype=types) as chunks:
        for chunk in chunks:
            total = chunk["quantity"] * chunk["price"]
            top = chunk.assign(total=total)[total > p["threshold"]].nlargest(p["n"], "total")
            best = top if best is None else pd.concat([best, top]).nlargest(p["n"], "total")
    return best.reset_index(drop=True)


def steps_kept(p: Params) -> Any:
    """The story's steps, with every intermediate frame kept: what the copies add up to."""
    import pandas as pd

    df = pd.read_csv(p["path"])
    df["total"] = df["quantity"] * df["price"]
    df_filtered = df[df["total"] > p["threshold"]]
    df_sorted = df_filtered.sort_values("total", ascending=False)
    return df, df_filtered, df_sorted


def read_only(p: Params) -> Any:
    """Only `pd.read_csv` of the whole file: what reading costs by itself."""
    import pandas as pd

    return pd.read_csv(p["path"])


def read_csv_streaming(filename: str) -> Iterator[dict[str, str]]:
    import csv

    with open(filename, newline="") as f:
        yield from csv.DictReader(f)


def calculate_totals(rows: Iterator[dict[str, str]]) -> Iterator[dict[str, Any]]:
    for row in rows:
        row["total"] = float(row["quantity"]) * float(row["price"])
        yield row


def filter_high_value(rows: Iterator[dict[str, Any]], threshold: float) -> Iterator[dict[str, Any]]:
    for row in rows:
        if row["total"] > threshold:
            yield row


def generator(p: Params) -> list[dict[str, Any]]:
    """The story's generator pipeline: one row in flight, a heap of N at the end."""
    import heapq

    rows = read_csv_streaming(p["path"])
    high_value = filter_high_value(calculate_totals(rows), p["threshold"])
    return heapq.nlargest(p["n"], high_value, key=lambda x: x["total"])


def polars(p: Params) -> Any:
    """The story's polars version: a lazy scan, collected with the streaming engine."""
    import polars as pl

    return (
        pl.scan_csv(p["path"])
        .with_columns((pl.col("quantity") * pl.col("price")).alias("total"))
        .filter(pl.col("total") > p["threshold"])
        .sort("total", descending=True)
        .head(p["n"])
        .collect(engine="streaming")  # the story's `collect(streaming=True)`, renamed in polars 1
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


def budget(p: Params) -> int:
    # 50 bytes a row, about half of what reading the whole file needs; a chunk fits many times.
    return p["rows"] * 50


def _read_csv_twice(e: Evidence) -> Ruling:
    peak, size = e.value("read_only"), e.param("file_bytes")
    factor = ratio(peak, size)
    return banded(factor, holds=lambda f: 1.5 <= f <= 2.5, fails=lambda f: f > 3.0 or f < 1.0,
                  evidence=f"`pd.read_csv` peaked at {size_text(peak)} for a {size_text(size)} file "
                           f"({factor:.1f}x)",
                  **{"read_only peak": peak, "file": size})


def _steps_add_copies(e: Evidence) -> Ruling:
    return share_rule(
        e, "steps_kept", "read_only", figure="retained", holds=lambda m: m >= 1.8, fails=lambda m: m < 1.3,
        says=lambda kept, read, m: (
            f"the frame read holds {size_text(read)}; with the new column, the filtered copy and "
            f"the sorted copy kept too, {size_text(kept)} ({m:.1f}x)"),
    )


def _several_times_the_file(e: Evidence) -> Ruling:
    size, peak, read = e.param("file_bytes"), e.value("leaky"), e.value("read_only")
    factor = ratio(peak, size)
    return banded(factor, holds=lambda f: f >= 3.5, fails=lambda f: f < 2.0,
                  evidence=(f"the story's code peaked at {size_text(peak)} for a {size_text(size)} "
                            f"file ({factor:.1f}x); reading alone peaked at {size_text(read)}: "
                            f"the peak is the parser's, before any copy"),
                  **{"leaky peak": peak, "read_only peak": read, "file": size})


def _constant(e: Evidence, variant: str) -> Ruling:
    """Constant memory means the peak does not follow the file: judged by how much of each
    extra megabyte of CSV shows up in the peak (a fixed overhead would hide that in a ratio)."""
    scale = e.case.growth_scale
    small, full = e.value(variant, scale=scale), e.value(variant)
    more_file = e.param("file_bytes") - e.param("file_bytes", scale)
    slope = (full - small) / max(more_file, NOISE_FLOOR)
    return banded(slope, holds=lambda s: s <= 0.1, fails=lambda s: s >= 0.3,
                  evidence=(f"`{variant}` peaked at {size_text(small)} for a "
                            f"{size_text(e.param('file_bytes', scale))} file and {size_text(full)} "
                            f"for {size_text(e.param('file_bytes'))}: {slope:.2f} MiB more per MiB "
                            f"of CSV"),
                  **{f"{variant} peak at {scale:g}x": small, f"{variant} peak": full, "slope": slope})


def _generator_flat(e: Evidence) -> Ruling:
    shape = growth_rule(e, "generator", holds_if="flat")
    peak = e.value("generator")
    tiny = banded(peak, holds=lambda v: v <= 2 * 2**20, fails=lambda v: v > 16 * 2**20,
                  evidence=f"peak {size_text(peak)} in {e.seconds('generator'):.1f} s "
                           f"(the chunked fix: {e.seconds('fixed'):.1f} s)",
                  **{"generator seconds": e.seconds("generator"), "fixed seconds": e.seconds("fixed")})
    return both(shape, tiny)


CASE = Case(
    name="top_n",
    title="Top N of a big CSV without loading it",
    story="large_dataset",
    summary=(
        "A write-up on multi-gigabyte datasets started from a sales analysis that read a 10 GB "
        "CSV whole, added a total column, filtered, sorted and kept the first 100 rows, at 46 GB "
        "of RAM. It proposed pandas chunking, polars' streaming engine, a Python generator "
        "pipeline, SQL and Dask instead, each said to run in constant memory."
    ),
    lesson=(
        "Fold each chunk into a bounded top N (`nlargest` on the running result plus the chunk), "
        "and read only the columns the answer needs, with their types given; the two savings "
        "add up (see where the gain comes from). The story's own chunked code is bounded too; it "
        "keeps each chunk's top N in a list, which grows by N rows per chunk. The generator "
        "pipeline is tiny and slow: pure Python per row. polars' streaming engine is not "
        "constant: its peak grows with the file."
    ),
    metric="peak",
    sizes=SIZES,
    budget=budget,
    setup=setup,
    growth_keys=("rows",),
    growth_scale=0.25,
    variants=(
        Variant("leaky", leaky, "leaky", "read, add a column, filter, sort, head", growth=True, profile=True),
        Variant("story_fix", story_fix, "story_fix", "chunks, a top N per chunk in a list", growth=True),
        Variant("fixed", fixed, "fixed", "chunks, `usecols`, a running top N", growth=True),
        Variant("running_top", running_top, "part", "chunks and a running top N, every column"),
        Variant("usecols_whole", usecols_whole, "part", "the whole file, `usecols` and dtypes"),
        Variant("read_only", read_only, "part", "`pd.read_csv` of the whole file, nothing else"),
        Variant("steps_kept", steps_kept, "part", "the story's steps, every frame kept"),
        Variant("generator", generator, "alternative", "the story's generator pipeline", growth=True),
        Variant("polars", polars, "alternative", "polars, streaming engine", requires="polars", growth=True),
        Variant("duckdb", duckdb, "alternative", "duckdb, the query in SQL", requires="duckdb"),
    ),
    claims=(
        Claim("`pd.read_csv` needs about twice the file's size in memory (20 GB for 10 GB).",
              _read_csv_twice),
        Claim("Adding a column, filtering and sorting each add a copy of the data.", _steps_add_copies),
        Claim("The story's code peaks at several times the file's size (46 GB for 10 GB).",
              _several_times_the_file),
        Claim("Processing the file in chunks keeps memory constant, whatever its size.",
              lambda e: both(budget_rule(e, "story_fix", holds_if="keeps"),
                             growth_rule(e, "story_fix", holds_if="flat"))),
        Claim("polars' streaming engine runs in constant memory (200-300 MB for the 10 GB file).",
              lambda e: _constant(e, "polars")),
        Claim("A pipeline of generators runs in constant memory, under 1 MB.", _generator_flat),
    ),
    flip={"story_fix": "read_only"},
    causes={"story_fix": "chunks (the story's code)", "running_top": "chunks and a running top N",
            "usecols_whole": "usecols and dtypes", "fixed": "all of them"},
    imports=("numpy", "pandas", "pyarrow"),
    helpers=(write_sales_csv, read_csv_streaming, calculate_totals, filter_high_value),
)
