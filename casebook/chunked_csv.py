"""Reading a whole CSV to aggregate it, when chunks would do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from casebook._case import Case, Params
from casebook._data import write_sales_csv
from casebook.frames_alive import SOURCE

SIZES = {
    "warmup": {"rows": 5_000, "chunk": 1_000},
    "small": {"rows": 1_500_000, "chunk": 100_000},
    "medium": {"rows": 6_000_000, "chunk": 200_000},
    "large": {"rows": 20_000_000, "chunk": 200_000},
}


def setup(p: Params, workdir: Path) -> Params:
    return {**p, "path": str(write_sales_csv(workdir / "sales.csv", p["rows"]))}


def leaky(p: Params) -> Any:
    """Load the whole file, then compute revenue per store."""
    import pandas as pd

    sales = pd.read_csv(p["path"])
    sales["revenue"] = sales["quantity"] * sales["price"]
    return sales.groupby("store")["revenue"].sum()


def fixed(p: Params) -> Any:
    """Read a chunk at a time and keep only the running totals."""
    import pandas as pd

    totals = None
    with pd.read_csv(p["path"], chunksize=p["chunk"], usecols=["store", "quantity", "price"]) as chunks:
        for chunk in chunks:
            part = (chunk["quantity"] * chunk["price"]).groupby(chunk["store"]).sum()
            totals = part if totals is None else totals.add(part, fill_value=0)
    return totals.rename("revenue")


def budget(p: Params) -> dict[str, int]:
    # 50 bytes a row, about half of what the whole-file read needs: room for many chunks.
    return {"peak": p["rows"] * 50}


CASE = Case(
    name="chunked_csv",
    title="Whole-file read versus chunked iteration",
    source=SOURCE,
    story=(
        "The same post's second advice: when one frame is too big, ask the reader for "
        "chunks. Its profile showed memory flat across 30 chunks, because each new chunk "
        "replaced the previous one."
    ),
    claim=(
        "Aggregating a CSV chunk by chunk keeps the peak at about one chunk, while "
        "`read_csv` of the whole file holds every row (and the parser's buffers) at once."
    ),
    metric="peak",
    sizes=SIZES,
    leaky=leaky,
    fixed=fixed,
    budget=budget,
    setup=setup,
    lesson=(
        "`read_csv(..., chunksize=N)` returns a reader; keep only what the answer needs (here "
        "50 running totals). `usecols` also skips building columns you never read, such as "
        "the string product codes."
    ),
    helpers=(write_sales_csv,),
)
