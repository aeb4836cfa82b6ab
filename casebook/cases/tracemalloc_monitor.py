"""Can tracemalloc tell how much memory a data job used?"""

from __future__ import annotations

import tracemalloc
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from casebook.data import write_sales_csv
from casebook.model import Case, Claim, Flip, Observed, Params, Ruling, Variant
from casebook.verdicts import Evidence, both, rule, size_text, within

SIZES = {
    "warmup": {"rows": 5_000},
    "test": {"rows": 100_000},
    "small": {"rows": 300_000},
    "medium": {"rows": 2_000_000},
    "large": {"rows": 10_000_000},
}


def setup(p: Params, workdir: Path) -> Params:
    return {**p, "path": str(write_sales_csv(workdir / "sales.csv", p["rows"], wide=True))}


@contextmanager
def memory_monitor(label: str, report: dict[str, Any]) -> Iterator[None]:
    """The story's monitor: tracemalloc and psutil around a block (figures kept, not printed)."""
    import psutil

    tracemalloc.start()
    process = psutil.Process()
    mem_before = process.memory_info().rss
    yield
    mem_after = process.memory_info().rss
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    report.update(label=label, rss_delta=mem_after - mem_before, traced_peak=peak)


def pandas(p: Params) -> Observed:
    """The story's "Pandas load_all" under its monitor."""
    import pandas as pd

    report: dict[str, Any] = {}
    with memory_monitor("Pandas load_all", report):
        df = pd.read_csv(p["path"])
    return Observed(df, traced_peak=report["traced_peak"])


def polars(p: Params) -> Observed:
    """The story's "Polars streaming" under its monitor."""
    import polars as pl

    report: dict[str, Any] = {}
    with memory_monitor("Polars streaming", report):
        df = pl.scan_csv(p["path"]).collect(engine="streaming")
    return Observed(df, traced_peak=report["traced_peak"])


def numpy_job(p: Params) -> Observed:
    """A job tracemalloc does see in full: numpy arrays, under the same monitor."""
    import numpy as np

    report: dict[str, Any] = {}
    with memory_monitor("numpy", report):
        values = np.random.default_rng(1).random((p["rows"], 4))
        totals = values[:, 0] * values[:, 1]
    return Observed((values, totals), traced_peak=report["traced_peak"])


def _sees(e: Evidence, variant: str) -> Ruling:
    """The monitor's traced peak against the call's RSS peak: it shows the memory when it sees
    at least half of it."""
    share, traced, peak = e.ratio(variant, variant, "traced_peak", base_figure="peak")
    return rule(within(share, low=0.5),
                f"{variant}: tracemalloc's peak {size_text(traced.value)} of an RSS peak of "
                f"{size_text(peak.value)} ({share.value:.0%})",
                **{f"{variant} traced peak": traced.value, f"{variant} peak": peak.value})


_NUMPY = Flip("a job of numpy arrays under the same monitor", variants={"pandas": "numpy_job", "polars": "numpy_job"})

CASE = Case(
    name="tracemalloc_monitor",
    title="tracemalloc as the memory monitor (claim)",
    story="large_dataset",
    summary=(
        "The large-dataset write-up measures each approach with a `memory_monitor` built on "
        "`tracemalloc.get_traced_memory()` on its 10 GB sales file (rows of about 200 bytes), and "
        "the batch-loop report recommends "
        "`tracemalloc` snapshots to find where memory goes."
    ),
    lesson=(
        "tracemalloc sees allocations made through Python's allocator: Python objects and numpy "
        "buffers. It does not see Arrow's memory pool, which holds pandas 3's strings, everything "
        "pyarrow reads, and polars' data. Measure RSS (its peak and settled growth) for the "
        "whole picture, as leakhunt does, and use tracemalloc for where Python-side memory was "
        "allocated."
    ),
    metric="peak",
    sizes=SIZES,
    setup=setup,
    expect="claims",
    variants=(
        Variant("pandas", pandas, "part", "`pd.read_csv` under the story's monitor"),
        Variant("polars", polars, "alternative", "polars streaming under the story's monitor",
                requires="polars"),
        Variant("numpy_job", numpy_job, "flip", "numpy arrays under the story's monitor"),
    ),
    claims=(
        Claim("A tracemalloc-based monitor shows how much memory each approach (pandas, polars) "
              "used.", lambda e: both(_sees(e, "pandas"), _sees(e, "polars")), section="8. Memory Monitoring",
              flip=_NUMPY),
        Claim("tracemalloc's statistics show where a pandas job's memory goes.",
              lambda e: _sees(e, "pandas"), source="batch_loop", section="Prevention 3",
              flip=Flip("a job of numpy arrays under the same monitor", variants={"pandas": "numpy_job"})),
    ),
    imports=("numpy", "pandas", "pyarrow", "psutil"),
    helpers=(write_sales_csv,),
)
