"""Dask's advice: read the big CSV in blocks on a cluster. What does each worker hold?"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from casebook.data import write_sales_csv
from casebook.model import Case, Claim, Params, Ruling, Variant
from casebook.verdicts import Evidence, banded, budget_rule, ratio, size_text

# The story: 8 workers, `blocksize='64MB'`, "100MB" per worker. Here 2 workers (2 cores) and
# a file of a little more than one block per worker at the story's block size, so that both
# work at once (the per-worker figure is the workers' total over their number).
SIZES = {
    "warmup": {"rows": 2_000, "blocksize": "16kB", "small_blocksize": "4kB", "workers": 2},
    # The test size needs a full block for each worker too, so it is the small size.
    "test": {"rows": 5_400_000, "blocksize": "64MB", "small_blocksize": "8MB", "workers": 2},
    "small": {"rows": 5_400_000, "blocksize": "64MB", "small_blocksize": "8MB", "workers": 2},
    "medium": {"rows": 11_000_000, "blocksize": "64MB", "small_blocksize": "8MB", "workers": 2},
    "large": {"rows": 22_000_000, "blocksize": "64MB", "small_blocksize": "8MB", "workers": 2},
}
# What the answer needs, read with its types given (the fix reads nothing else).
COLUMNS = {"order_id": "int64", "quantity": "int64", "price": "float64"}

#: What the story says a worker needs with 64 MB blocks ("Memory per worker: 100MB").
CLAIMED_PER_WORKER = 100_000_000
STORY_BLOCK = 64_000_000


def setup(p: Params, workdir: Path) -> Params:
    path = write_sales_csv(workdir / "sales.csv", p["rows"])
    return {**p, "path": str(path), "file_bytes": os.path.getsize(path)}


@contextmanager
def cluster(p: Params) -> Iterator[dict[str, Any]]:
    """A local cluster of `workers` single-threaded worker processes, started before measuring.

    The workers' memory is counted once each has answered (it runs Dask's worker code). Between
    runs every worker settles (garbage collection and allocator trimming), as this process does.
    """
    from distributed import Client, LocalCluster
    from leakhunt import settle

    with LocalCluster(n_workers=p["workers"], threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as local, \
            Client(local) as client:
        client.wait_for_workers(p["workers"])
        pids = sorted(client.run(os.getpid).values())  # each worker answers: it runs Dask's code

        def between_runs() -> None:
            client.run(settle)

        yield {"client": client, "between_runs": between_runs, "worker_pids": pids}


def top_100(path: str, blocksize: str, threshold: float = 1000.0, n: int = 100, **read: Any) -> Any:
    """The story's Dask code: lazy blocks, a new column, a filter, `nlargest`, `compute()`."""
    import dask.dataframe as dd

    df = dd.read_csv(path, blocksize=blocksize, **read)
    df["total"] = df["quantity"] * df["price"]
    filtered = df[df["total"] > threshold]
    top = filtered.nlargest(n, "total")
    return top.compute()


def leaky(p: Params) -> Any:
    """The story's blocks of 64 MB."""
    return top_100(p["path"], p["blocksize"])


def fixed(p: Params) -> Any:
    """Blocks eight times smaller, and only the needed columns: each task parses far less."""
    return top_100(p["path"], p["small_blocksize"], usecols=list(COLUMNS), dtype=COLUMNS)


def small_blocks(p: Params) -> Any:
    """Only the blocks eight times smaller."""
    return top_100(p["path"], p["small_blocksize"])


def pandas(p: Params) -> Any:
    """No cluster: pandas reads the whole file in this process."""
    import pandas as pd

    df = pd.read_csv(p["path"])
    df["total"] = df["quantity"] * df["price"]
    return df[df["total"] > 1000.0].nlargest(100, "total")


def _block_bytes(text: str) -> int:
    from leakhunt import parse_size

    return parse_size(text)


def budget(p: Params) -> int:
    # The story's own figure, for its block size: 100 MB per worker with 64 MB blocks.
    return CLAIMED_PER_WORKER * _block_bytes(p["blocksize"]) // STORY_BLOCK


def _per_worker(e: Evidence) -> Ruling:
    growth = e.value("leaky")
    idle = e.value("leaky", "children_idle") / e.param("workers")
    total = idle + growth
    claimed = budget(e.params())
    share = ratio(total, claimed)
    return banded(share, holds=lambda s: s <= 1.25, fails=lambda s: s >= 1.5,
                  evidence=(f"with {e.param('blocksize')} blocks each worker held "
                            f"{size_text(idle)} idle (PSS) and grew by {size_text(growth)} at the "
                            f"peak: {size_text(total)} against the {size_text(claimed)} claimed "
                            f"({share:.1f}x)"),
                  **{"worker idle": idle, "worker growth": growth, "claimed": claimed})


def _follows_blocks(e: Evidence) -> Ruling:
    big, small = e.value("leaky"), e.value("small_blocks")
    blocks = _block_bytes(e.param("blocksize")) / _block_bytes(e.param("small_blocksize"))
    factor = ratio(big, small)
    return banded(factor, holds=lambda f: f >= 2.0, fails=lambda f: f <= 1.2,
                  evidence=(f"per worker, {size_text(big)} with {e.param('blocksize')} blocks "
                            f"and {size_text(small)} with {e.param('small_blocksize')} blocks "
                            f"({factor:.1f}x for {blocks:.0f}x smaller blocks)"),
                  **{"leaky worker growth": big, "small_blocks worker growth": small})


def _bounds_the_job(e: Evidence) -> Ruling:
    workers = e.param("workers")
    growth = e.value("fixed") * workers
    total = growth + e.value("fixed", "children_idle")
    whole = e.value("pandas", "peak")
    text = (f"the cluster's workers grew by {size_text(growth)} in all, {size_text(total)} with "
            f"their idle interpreters, against {size_text(whole)} for pandas reading the whole "
            f"{size_text(e.param('file_bytes'))} file in one process")
    figures = {"cluster growth": growth, "cluster total": total, "pandas peak": whole}
    if total <= 0.5 * whole:
        return Ruling("holds", text, figures)
    if growth <= 0.5 * whole:
        return Ruling("partly", text + ": the work is bounded, the workers' own memory is not small",
                      figures)
    return Ruling("does not hold", text, figures)


CASE = Case(
    name="dask_top_n",
    title="Top N on a Dask cluster: memory per worker",
    story="large_dataset",
    summary=(
        "The large-dataset write-up's last option runs the same top-100 query with "
        "`dask.dataframe.read_csv(filename, blocksize='64MB')` on 8 workers, and reports "
        "\"Memory per worker: 100MB\", 800 MB in all against 46 GB for pandas. The missing-days "
        "write-up also names Dask as the next step for large files."
    ),
    lesson=(
        "A worker's memory is its own interpreter (pandas, Dask and distributed loaded) plus "
        "what its running task holds, which follows the block size: a parsed block is several "
        "times its bytes of CSV. Smaller blocks, and reading only the columns the answer needs, "
        "bound the work per worker; nothing shrinks the interpreter. Count the workers' memory "
        "as a whole (PSS, so that shared pages are not counted twice), as here."
    ),
    metric="worker_peak",
    sizes=SIZES,
    budget=budget,
    setup=setup,
    context=cluster,
    children=True,
    variants=(
        Variant("leaky", leaky, "leaky", "`dd.read_csv(blocksize='64MB')`, top 100",
                requires="distributed"),
        Variant("fixed", fixed, "fixed", "8 MB blocks, only the needed columns",
                requires="distributed"),
        Variant("small_blocks", small_blocks, "part", "8 MB blocks, every column", requires="distributed"),
        Variant("pandas", pandas, "part", "pandas alone, the whole file in one process", context=False),
    ),
    claims=(
        Claim("With `blocksize='64MB'` each worker needs about 100 MB (800 MB for 8 workers).",
              _per_worker),
        Claim("Each worker's memory follows the block size, not the file size.", _follows_blocks),
        Claim("Moving a large-file job to Dask bounds its memory.", _bounds_the_job,
              source="missing_days"),
        Claim("With 64 MB blocks a worker's working memory stays within the claimed 100 MB.",
              lambda e: budget_rule(e, "leaky", holds_if="keeps")),
    ),
    flip={"fixed": "leaky"},
    causes={"small_blocks": "blocks eight times smaller",
            "fixed": "smaller blocks and only the needed columns"},
    imports=("numpy", "pandas", "pyarrow", "dask.dataframe", "distributed"),
    helpers=(write_sales_csv,),
)
