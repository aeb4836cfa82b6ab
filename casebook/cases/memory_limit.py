"""Does `resource.setrlimit(RLIMIT_AS, ...)` cap a process's memory?"""

from __future__ import annotations

from casebook.model import Case, Claim, Observed, Params, Ruling, Variant
from casebook.verdicts import Evidence, rule, size_text

SIZES = {
    "warmup": {"job_bytes": 1 << 20, "headroom": 4},
    "test": {"job_bytes": 64 << 20, "headroom": 4},
    "small": {"job_bytes": 64 << 20, "headroom": 4},
    "medium": {"job_bytes": 256 << 20, "headroom": 4},
    "large": {"job_bytes": 1 << 30, "headroom": 4},
}


def job(p: Params) -> float:
    """The work: a column of `job_bytes` numbers, summed."""
    import numpy as np

    values = np.ones(p["job_bytes"] // 8)
    return float(values.sum())


def _limited(p: Params, limit_from: str) -> Observed:
    import resource

    import psutil

    info = psutil.Process().memory_info()
    base = info.rss if limit_from == "resident" else info.vms
    limit = base + p["headroom"] * p["job_bytes"]
    old = resource.getrlimit(resource.RLIMIT_AS)
    failed = 0
    resource.setrlimit(resource.RLIMIT_AS, (limit, old[1]))
    try:
        try:
            job(p)
        except MemoryError:
            failed = 1
    finally:
        resource.setrlimit(resource.RLIMIT_AS, old)
    return Observed(failed, failed=failed, limit=limit, address_space=info.vms, resident=info.rss)


def story(p: Params) -> Observed:
    """The story's safety net, scaled: a limit of what is resident now plus four jobs' worth."""
    return _limited(p, "resident")


def from_address_space(p: Params) -> Observed:
    """The same headroom counted from the address space already reserved."""
    return _limited(p, "address space")


def _caps_memory(e: Evidence) -> Ruling:
    failed = e.value("story", "failed")
    limit, vms, rss = e.value("story", "limit"), e.value("story", "address_space"), e.value("story", "resident")
    need = e.value("job", "peak")
    text = (f"before the job the process had {size_text(vms)} of address space reserved but only "
            f"{size_text(rss)} resident; the job needs {size_text(need)} at its peak, and under a "
            f"limit of {size_text(limit)} it {'failed with MemoryError' if failed else 'ran'}")
    figures = {"failed": failed, "limit": limit, "address space": vms, "resident": rss, "job peak": need}
    if failed and rss + need < limit:
        return rule("does not hold", text + ": the limit counts address space, not memory", **figures)
    if not failed and vms <= 1.5 * rss:
        return rule("holds", text, **figures)
    return rule("partly", text, **figures)


CASE = Case(
    name="memory_limit",
    title="A memory limit with RLIMIT_AS (claim)",
    story="missing_days",
    summary=(
        "The missing-days write-up suggests a safety net for the future: "
        "`resource.setrlimit(resource.RLIMIT_AS, (8 * 1024**3, -1))` to \"limit to 8GB\"."
    ),
    lesson=(
        "`RLIMIT_AS` limits the address space, and a Python process with numpy, pandas and "
        "pyarrow loaded reserves far more address space than it keeps resident (thread stacks, "
        "allocator arenas, Arrow's pool). A limit meant for resident memory fails jobs that "
        "would fit. To cap what a job really uses, measure resident memory: a cgroup "
        "(`systemd-run -p MemoryMax=8G`, a container's limit), or a `leakhunt.memory_budget(rss=..., "
        "peak=...)` in the test that runs it."
    ),
    metric="peak",
    sizes=SIZES,
    expect="claims",
    variants=(
        Variant("story", story, "part", "`RLIMIT_AS` at resident memory plus 4 jobs"),
        Variant("job", job, "part", "the job without a limit"),
        Variant("from_address_space", from_address_space, "flip", "`RLIMIT_AS` at the address space plus 4 jobs"),
    ),
    claims=(
        Claim("Setting `RLIMIT_AS` with `resource.setrlimit` caps the memory the process uses.", _caps_memory),
    ),
    flip={"story": "from_address_space"},
    imports=("numpy", "pandas", "pyarrow", "psutil"),
)
