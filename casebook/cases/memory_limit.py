"""Does `resource.setrlimit(RLIMIT_AS, 8 GB)` limit a process to 8 GB of memory?"""

from __future__ import annotations

from casebook.model import Case, Claim, Flip, Observed, Params, Ruling, Variant
from casebook.verdicts import Evidence, rule, size_text, within

# The story's own limit, at every size: finding how much of it a job can use costs no memory
# (what is reserved is never touched).
SIZES = {size: {"limit": 8 << 30} for size in ("warmup", "test", "small", "medium", "large")}
#: How much the job asks for at a time, untouched, until the limit refuses it.
STEP = 64 << 20


def _reserve_until_refused(step: int, most: int) -> int:
    """Reserve (allocate, never touch) `step` bytes at a time until the allocator refuses:
    what a job could still have used. Touching nothing, it costs no resident memory."""
    import numpy as np

    held = []
    try:
        while len(held) * step < most:
            held.append(np.empty(step, dtype=np.uint8))
    except MemoryError:
        pass
    return len(held) * step


def story(p: Params) -> Observed:
    """The story's safety net in a data job's process (numpy, pandas and pyarrow loaded and
    used): `RLIMIT_AS` at `limit`, then as much memory as the job could get under it."""
    import resource

    import psutil
    import pyarrow as pa

    pa.array(range(1000))  # the job has used Arrow: its pool has reserved its first segments
    info = psutil.Process().memory_info()
    old = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (p["limit"], old[1]))
    try:
        more = _reserve_until_refused(STEP, p["limit"])
    finally:
        resource.setrlimit(resource.RLIMIT_AS, old)
    return Observed(None, usable=info.rss + more, limit=p["limit"], address_space=info.vms, resident=info.rss)


def _limits_memory(e: Evidence) -> Ruling:
    usable, limit = e.band("story", "usable"), e.value("story", "limit")
    share = usable.scaled(1 / limit)
    vms, rss = e.value("story", "address_space"), e.value("story", "resident")
    return rule(within(share, low=0.9),
                f"under a limit of {size_text(limit)}, the process could use {size_text(usable.value)} "
                f"of memory at most ({share.value:.0%}): before the job it had {size_text(vms)} of "
                f"address space reserved and {size_text(rss)} resident, and the limit counts the "
                f"address space", **{"usable": usable.value, "limit": limit, "address space": vms,
                                     "resident": rss})


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
        "allocator arenas, Arrow's pool). Under the story's 8 GB limit, that reserve is memory the "
        "job can never use; under a limit a few times larger it matters less (the flip). To cap "
        "what a job really uses, limit resident memory: a cgroup (`systemd-run -p "
        "MemoryMax=8G`, a container's limit), or a `leakhunt.memory_budget(rss=..., peak=...)` "
        "in the test that runs it."
    ),
    metric="peak",
    sizes=SIZES,
    expect="claims",
    variants=(
        Variant("story", story, "part", "`RLIMIT_AS` at 8 GB, then as much as the job can get",
                timeline=False),
    ),
    claims=(
        Claim("`resource.setrlimit(RLIMIT_AS, (8 GB, -1))` limits the process to 8 GB of memory.",
              _limits_memory, section="Additional Optimizations 3",
              flip=Flip("a limit of 64 GB", params={"limit": 64 << 30})),
    ),
    imports=("numpy", "pandas", "pyarrow", "psutil"),
    helpers=(_reserve_until_refused,),
)
