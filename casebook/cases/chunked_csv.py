"""Reading a whole CSV to aggregate it, when chunks would do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from casebook.data import write_sales_csv
from casebook.model import Case, Claim, Flip, Params, Ruling, Variant
from casebook.verdicts import Evidence, band_text, both, budget_rule, growth_rule, ratio_rule

SIZES = {
    "warmup": {"rows": 5_000, "chunk": 1_000},
    "test": {"rows": 300_000, "chunk": 50_000},
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


def story_fix(p: Params) -> Any:
    """The post's advice: iterate over chunks; each new chunk replaces the previous one."""
    import pandas as pd

    totals = None
    with pd.read_csv(p["path"], chunksize=p["chunk"]) as reader:
        for chunk in reader:
            chunk["revenue"] = chunk["quantity"] * chunk["price"]
            part = chunk.groupby("store")["revenue"].sum()
            totals = part if totals is None else totals.add(part, fill_value=0)
    return totals


def usecols_only(p: Params) -> Any:
    """The whole file at once, but only the three columns the answer needs."""
    import pandas as pd

    sales = pd.read_csv(p["path"], usecols=["store", "quantity", "price"])
    sales["revenue"] = sales["quantity"] * sales["price"]
    return sales.groupby("store")["revenue"].sum()


def fixed(p: Params) -> Any:
    """Chunks and `usecols`: read a chunk at a time, and only the needed columns."""
    import pandas as pd

    totals = None
    with pd.read_csv(p["path"], chunksize=p["chunk"], usecols=["store", "quantity", "price"]) as reader:
        for chunk in reader:
            part = (chunk["quantity"] * chunk["price"]).groupby(chunk["store"]).sum()
            totals = part if totals is None else totals.add(part, fill_value=0)
    return totals.rename("revenue")


def chunks_kept(p: Params) -> Any:
    """A fix that looks right and is not: read in chunks, keep them all, concatenate."""
    import pandas as pd

    with pd.read_csv(p["path"], chunksize=p["chunk"]) as reader:
        sales = pd.concat(list(reader), ignore_index=True)
    sales["revenue"] = sales["quantity"] * sales["price"]
    return sales.groupby("store")["revenue"].sum()


def _chunks_flat(e: Evidence) -> Ruling:
    return both(budget_rule(e, "story_fix", holds_if="keeps"), growth_rule(e, "story_fix", holds_if="flat"))


_CHUNKS_KEPT = Flip("the chunks kept and concatenated", variants={"story_fix": "chunks_kept"})


def budget(p: Params) -> int:
    # 50 bytes a row, about half of what the whole-file read needs: room for many chunks.
    return p["rows"] * 50


CASE = Case(
    name="chunked_csv",
    title="Whole-file read versus chunked iteration",
    story="gc_post",
    summary=(
        "The same post's second advice: when one frame is too big, ask the reader for chunks. "
        "It claimed memory stays flat because each chunk replaces the previous one, though its "
        "own profile of 30 chunks shows the process at 779 MiB after starting from 167 MiB."
    ),
    lesson=(
        "`read_csv(..., chunksize=N)` returns a reader; keep only what the answer needs (here 50 "
        "running totals) and memory is one chunk, whatever the file size. `usecols` is a "
        "separate saving: it skips building the columns you never read (the product codes are "
        "strings), and on its own it shrinks the whole-file read a lot (see where the gain "
        "comes from)."
    ),
    metric="peak",
    sizes=SIZES,
    budget=budget,
    setup=setup,
    growth_keys=("rows",),
    variants=(
        Variant("leaky", leaky, "leaky", "`read_csv` the whole file", growth=True, profile=True),
        Variant("story_fix", story_fix, "story_fix", "`chunksize`, every column", growth=True, profile=True),
        Variant("fixed", fixed, "fixed", "`chunksize` and `usecols`", growth=True),
        Variant("usecols_only", usecols_only, "part", "the whole file, `usecols` only"),
        Variant("chunks_kept", chunks_kept, "flip", "`chunksize`, chunks kept and concatenated", growth=True),
    ),
    claims=(
        Claim("A single frame read whole needs memory for all of it, more as the file grows.",
              lambda e: both(budget_rule(e, "leaky"), growth_rule(e, "leaky")),
              section="2: use chunked/iterator output",
              flip=Flip("the chunked reader instead", variants={"leaky": "story_fix"})),
        Claim("With a chunked reader memory does not increase: each new chunk replaces the "
              "previous one (the post's own profile read 167 MiB, then 779 MiB over 30 chunks).",
              _chunks_flat, section="2: use chunked/iterator output", flip=_CHUNKS_KEPT),
        Claim("Reading a CSV in chunks inside a `with` block frees each chunk automatically.",
              _chunks_flat, source="batch_loop", section="Prevention 4", flip=_CHUNKS_KEPT),
        Claim("`usecols` alone, reading only the columns the answer needs, cuts the whole-file "
              "read by more than a third.",
              lambda e: ratio_rule(e, "usecols_only", "leaky", high=0.67, says=lambda a, b, q: (
                  f"the whole file with `usecols` peaked at {band_text(a)}, every column at "
                  f"{band_text(b)} ({q.value:.0%})")),
              origin="casebook", section="2: use chunked/iterator output",
              flip=Flip("every column read", variants={"usecols_only": "leaky"})),
    ),
    flip={"story_fix": "chunks_kept"},
    causes={"story_fix": "chunks", "usecols_only": "usecols", "fixed": "chunks and usecols"},
    imports=("numpy", "pandas", "pyarrow"),
    helpers=(write_sales_csv,),
)
