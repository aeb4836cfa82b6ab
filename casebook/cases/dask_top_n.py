"""Dask's advice: read the big CSV in blocks on a cluster. What does each worker hold?"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from casebook.data import write_sales_csv
from casebook.model import Case, Claim, Flip, Params, Ruling, Variant
from casebook.verdicts import Evidence, band_text, ratio_rule, rule, size_text, within

# The story: 8 workers, `blocksize='64MB'`, "100MB" per worker, on its 10 GB sales file (rows of
# about 200 bytes). Here 2 workers (2 cores) and a file of a little more than one block per
# worker at the story's block size, so that both work at once (the per-worker figure is the
# workers' total over their number).
SIZES = {
    "warmup": {"rows": 2_000, "blocksize": "16kB", "small_blocksize": "4kB", "workers": 2},
    # The test size keeps a block or more for each worker with blocks four times smaller.
    "test": {"rows": 200_000, "blocksize": "16MB", "small_blocksize": "2MB", "workers": 2},
    "small": {"rows": 700_000, "blocksize": "64MB", "small_blocksize": "8MB", "workers": 2},
    "medium": {"rows": 1_400_000, "blocksize": "64MB", "small_blocksize": "8MB", "workers": 2},
    "large": {"rows": 2_800_000, "blocksize": "64MB", "small_blocksize": "8MB", "workers": 2},
}
# What the answer needs, read with its types given (the fix reads nothing else).
COLUMNS = {"order_id": "int64", "quantity": "int64", "price": "float64"}

#: What the story says a worker needs with 64 MB blocks ("Memory per worker: 100MB").
CLAIMED_PER_WORKER = 100_000_000
STORY_BLOCK = 64_000_000


def setup(p: Params, workdir: Path) -> Params:
    path = write_sales_csv(workdir / "sales.csv", p["rows"], wide=True)
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


def pandas_rows(p: Params) -> Any:
    """No cluster: pandas reads the whole file, then computes row by row (`iterrows`)."""
    import heapq

    import pandas as pd

    df = pd.read_csv(p["path"])
    totals = ((row.quantity * row.price, index) for index, row in df.iterrows())
    return heapq.nlargest(100, (t for t in totals if t[0] > 1000.0))


def _block_bytes(text: str) -> int:
    from leakhunt import parse_size

    return parse_size(text)


def budget(p: Params) -> int:
    # The story's own figure, for its block size: 100 MB per worker with 64 MB blocks.
    return CLAIMED_PER_WORKER * _block_bytes(p["blocksize"]) // STORY_BLOCK


def _per_worker(e: Evidence) -> Ruling:
    growth = e.band("leaky")
    idle = e.value("leaky", "children_idle") / e.param("workers")
    claimed = budget(e.params())
    share = growth.scaled(1 / claimed)
    return rule(within(share, high=1.25),
                f"with {e.param('blocksize')} blocks each worker's work took {band_text(growth)} at "
                f"the peak, against the {size_text(claimed)} claimed ({share.value:.1f}x); its own "
                f"interpreter held {size_text(idle)} more before any work",
                **{"worker growth": growth.value, "worker idle": idle, "claimed": claimed})


def _bounds_the_job(e: Evidence) -> Ruling:
    workers = e.param("workers")
    growth = e.band("fixed", ratio=True).scaled(workers)
    whole = e.band("pandas", "peak", ratio=True)
    share = growth.floored() / whole.floored()
    return rule(within(share, high=0.5),
                f"the cluster's workers grew by {size_text(growth.value)} in all, against "
                f"{size_text(whole.value)} for pandas reading the whole "
                f"{size_text(e.param('file_bytes'))} file in one process ({share.value:.0%})",
                **{"cluster growth": growth.value, "pandas peak": whole.value})


def _parallel_speedup(e: Evidence) -> Ruling:
    """The story's 4-8x on 8 workers is half to all of the workers' count; here, the speed-up
    over pandas alone per worker, in wall time (the work runs in other processes)."""
    dask, alone = e.band("leaky", "seconds", ratio=True), e.band("pandas", "seconds", ratio=True)
    workers = e.param("workers")
    per_worker = (alone / dask).scaled(1 / workers)
    return rule(within(per_worker, low=0.5),
                f"pandas alone took {alone.value:.2f} s, the story's Dask code on {workers} workers "
                f"{dask.value:.2f} s: {alone.value / dask.value:.2f}x, {per_worker.value:.2f} of the "
                f"workers' count (the story: 4-8x on 8 workers, 0.5 to 1)",
                **{"pandas seconds": alone.value, "leaky seconds": dask.value})


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
        Variant("pandas_rows", pandas_rows, "flip", "pandas alone, row by row", context=False),
    ),
    claims=(
        Claim("With `blocksize='64MB'` each worker needs about 100 MB (800 MB for 8 workers).",
              _per_worker, section="7. Dask for Parallel Processing",
              flip=Flip("8 MB blocks and only the needed columns", variants={"leaky": "fixed"})),
        Claim("Dask's parallel workers make the analysis 4-8x faster (8 workers).", _parallel_speedup,
              section="7. Dask for Parallel Processing",
              flip=Flip("pandas alone computing row by row (`iterrows`)", variants={"pandas": "pandas_rows"})),
        Claim("Moving a large-file job to Dask bounds its memory.", _bounds_the_job,
              source="missing_days", section="Additional Optimizations 1",
              flip=Flip("blocks bigger than the file, every column", variants={"fixed": "small_blocks"},
                        params={"small_blocksize": "1GB"})),
        # "Several times less" held at the story's sizes (3.2x with 64MB and 8MB blocks) but read
        # 1.9x-2.2x at the test size, within the spread of 2x: the lesson is the direction and a
        # clear margin, which every size decides.
        Claim("A worker's working memory follows the block size: blocks eight times smaller need "
              "markedly less (two thirds or under).",
              lambda e: ratio_rule(e, "leaky", "small_blocks", low=1.5, says=lambda a, b, q: (
                  f"per worker, {band_text(a)} with {e.param('blocksize')} blocks and {band_text(b)} "
                  f"with {e.param('small_blocksize')} blocks ({q.value:.1f}x)")),
              origin="casebook", section="7. Dask for Parallel Processing",
              flip=Flip("the same block size on both sides", variants={"small_blocks": "leaky"})),
    ),
    # A worker's figures moved by up to 6.4% between invocations (benchmarks/casebook_stability.md):
    # Dask's own threads and caches.
    spread=0.1,
    flip={"fixed": "leaky"},
    causes={"small_blocks": "blocks eight times smaller",
            "fixed": "smaller blocks and only the needed columns"},
    imports=("numpy", "pandas", "pyarrow", "dask.dataframe", "distributed"),
    helpers=(write_sales_csv,),
)
