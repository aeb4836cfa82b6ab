"""The batch loop dies at its memory limit: killed, nothing to read - unless a guard wrote first.

Run as a module (``python -m casebook.cases.killed_batch loop BATCHES ROWS COLS``), it is the job
itself; the case's variants start it in a process of its own under a memory limit: a child
memory cgroup of ours where the machine lets us make one (the kernel's OOM killer ends the job,
as in a container), else a watchdog that kills the job with SIGKILL when its resident memory
passes the limit (what Dask's nanny does to a worker).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from casebook.data import frame_bytes, make_batch
from casebook.model import Case, Claim, Flip, Observed, Params, Ruling, Variant
from casebook.verdicts import Evidence, rule, size_text

# A batch is rows x (cols + 1) float64s; the job would run for `batches` batches, far past the limit.
SIZES = {
    "warmup": {"rows": 1_000, "cols": 10, "batches": 1, "limit": 2_000_000_000},
    "test": {"rows": 25_000, "cols": 10, "batches": 200, "limit": 250_000_000},
    "small": {"rows": 250_000, "cols": 10, "batches": 200, "limit": 400_000_000},
    "medium": {"rows": 500_000, "cols": 10, "batches": 200, "limit": 1_000_000_000},
    "large": {"rows": 1_000_000, "cols": 10, "batches": 200, "limit": 2_000_000_000},
}
KILLED = -9  # the job's exit status when SIGKILL ended it


def batch_loop(batches: int, rows: int, cols: int) -> list[Any]:
    """The story's loop, scaled: one batch per "file", a one-row sample of each kept.

    The story kept `processed.mean()`; here the sample is `iloc[:1]`, a view that pins its
    batch's whole block (the `row_slice` case): what makes the loop grow to the limit today.
    """
    results = []
    for i in range(batches):
        processed = make_batch(i, rows, cols)
        results.append(processed.iloc[:1])
    return results


def one_big_batch(rows: int, cols: int) -> Any:
    """The story's last step: one allocation bigger than the room left ("Unable to allocate 1.2 GB")."""
    return make_batch(0, rows, cols)


# --------------------------------------------------------------------------------------
# the limit


def _own_memory_group() -> tuple[Path, int] | None:
    """This process's memory cgroup directory and its version, where a child can be made."""
    try:
        members = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in mounts:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or fields[3] != "/":
            continue
        if tail[0] == "cgroup" and "memory" in tail[2].split(","):
            path = next((m.split(":", 2)[2] for m in members if "memory" in m.split(":", 2)[1].split(",")), None)
            if path is not None:
                return Path(fields[4]) / path.lstrip("/"), 1
        if tail[0] == "cgroup2":
            path = next((m.split(":", 2)[2] for m in members if m.startswith("0::")), None)
            if path is not None and (Path(fields[4]) / path.lstrip("/") / "memory.max").exists():
                return Path(fields[4]) / path.lstrip("/"), 2
    return None


@contextmanager
def memory_group(limit: int) -> Iterator[Path | None]:
    """A child memory cgroup of ours with ``limit`` bytes, removed afterwards; None where the
    machine does not let us make one (no root, no memory controller)."""
    own = _own_memory_group()
    group = None
    if own is not None and os.geteuid() == 0:
        parent, version = own
        candidate = parent / f"casebook-{os.getpid()}-{time.monotonic_ns()}"
        try:
            candidate.mkdir()
            (candidate / ("memory.max" if version == 2 else "memory.limit_in_bytes")).write_text(str(limit))
            group = candidate
        except OSError:
            if candidate.exists():
                candidate.rmdir()
    try:
        yield group
    finally:
        if group is not None:
            for _ in range(100):  # the group empties when its last process is reaped
                try:
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)


def _resident(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def run_job(p: Params, job: list[str], guard: list[str] | None) -> Observed:
    """Run the job (``python -m casebook.cases.killed_batch *job``) under the case's limit,
    under ``leakhunt run`` and ``guard``'s options when given; what was left afterwards."""
    workdir = Path(p["workdir"])
    report = workdir / "oom.json"
    report.unlink(missing_ok=True)
    module = ["-m", __name__, *job]
    with memory_group(p["limit"]) as group:
        if guard is None:
            argv = [sys.executable, *module]
        else:
            given = [] if group is not None else ["--memory-limit", str(p["limit"])]  # the watchdog's limit
            argv = [sys.executable, "-m", "leakhunt.cli", "run", "-q", *guard, *given, "--oom-report", str(report),
                    *module]
        if group is not None:  # into the group before the job starts: everything it allocates is charged there
            argv = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(group), *argv]
        with open(workdir / "job.log", "w") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
            while process.poll() is None:
                if group is None and _resident(process.pid) > p["limit"]:
                    process.kill()  # the watchdog: SIGKILL past the limit
                time.sleep(0.01)
    crossings = json.loads(report.read_text())["crossings"] if report.exists() else []
    roots = [r["root"] for c in crossings for r in c.get("roots", ())]
    return Observed(process.returncode, killed=int(process.returncode == KILLED), reported=int(bool(crossings)),
                    named=int(any(root.startswith("results (") for root in roots)),
                    exit_status=process.returncode, kernel=int(group is not None))


# --------------------------------------------------------------------------------------
# variants


def _loop(p: Params) -> list[str]:
    return ["loop", str(p["batches"]), str(p["rows"]), str(p["cols"])]


def unguarded(p: Params) -> Observed:
    """The story's loop under the limit, as it ran: no guard."""
    return run_job(p, _loop(p), None)


def guarded(p: Params) -> Observed:
    """The same under `leakhunt run --oom-guard` (90% of the limit it finds, then carry on)."""
    return run_job(p, _loop(p), ["--oom-guard"])


def guarded_stop(p: Params) -> Observed:
    """`--oom-guard --oom-action stop`: the diagnosis, then MemoryError in the job."""
    return run_job(p, _loop(p), ["--oom-guard", "--oom-action", "stop"])


def one_jump(p: Params) -> Observed:
    """The guard against the story's last step: one batch twice the limit, in one allocation."""
    rows = 2 * p["limit"] // frame_bytes(1, p["cols"])
    return run_job(p, ["jump", str(rows), str(p["cols"])], ["--oom-guard"])


# --------------------------------------------------------------------------------------
# claims


def _how(e: Evidence, variant: str) -> str:
    status = int(e.value(variant, "exit_status"))
    killed = e.value(variant, "killed") == 1
    return "was killed (SIGKILL)" if killed else f"ended with exit status {status}"


def _enforcer(e: Evidence, variant: str) -> str:
    return "the kernel (a memory cgroup)" if e.value(variant, "kernel") == 1 else "a watchdog (SIGKILL past it)"


def _nothing_left(e: Evidence) -> Ruling:
    killed, reported = e.value("unguarded", "killed"), e.value("unguarded", "reported")
    text = (f"under a limit of {size_text(e.params()['limit'])} enforced by {_enforcer(e, 'unguarded')}, the loop "
            f"{_how(e, 'unguarded')}")
    figures = {"killed": killed, "report": reported}
    if killed == 1 and reported == 0:
        return rule("holds", text + ": no traceback, no figures, nothing about what was alive", **figures)
    return rule("does not hold", text, **figures)


def _guard_names_it(e: Evidence) -> Ruling:
    killed, reported, named = (e.value("guarded", f) for f in ("killed", "reported", "named"))
    text = f"with `--oom-guard` the loop {_how(e, 'guarded')}"
    figures = {"killed": killed, "report": reported, "names results": named}
    if reported == 1 and named == 1:
        return rule("holds", text + "; the report written before names `results` as what keeps the memory",
                    **figures)
    if reported == 1:
        return rule("partly", text + "; a report was written but names no root", **figures)
    return rule("does not hold", text + "; no report was written", **figures)


def _stop_instead(e: Evidence) -> Ruling:
    status, killed, named = (e.value("guarded_stop", f) for f in ("exit_status", "killed", "named"))
    text = f"with `--oom-action stop` the loop {_how(e, 'guarded_stop')}"
    figures = {"exit status": status, "killed": killed, "names results": named}
    if status == 1 and named == 1:
        return rule("holds", text + " (MemoryError, its message the diagnosis naming `results`)", **figures)
    return rule("does not hold", text, **figures)


CASE = Case(
    name="killed_batch",
    title="Killed at the limit: nothing left to read, unless the guard wrote first",
    story="batch_loop",
    summary=(
        "The batch loop kept one small piece of every file and grew until it crashed at file 83. "
        "In a container, or on a Dask worker, the end is a kill: no traceback, no report. The story "
        "then needed three hypotheses, objgraph and `gc.get_referents` to find the `results` list. "
        "This case runs the loop under a limit, without and with leakhunt's out-of-memory guard."
    ),
    lesson=(
        "A job killed for its memory leaves nothing to read. Run it under `leakhunt run --oom-guard` "
        "(or `with leakhunt.oom_guard():`, or `pytest --leak-oom-guard`): at 90% of the limit it "
        "finds (the cgroup's, an rlimit, the machine's) it writes what is alive and what keeps it, "
        "before the kill; `--oom-action stop` ends the job with a MemoryError carrying the same "
        "diagnosis. One allocation bigger than the room left still passes the limit between two "
        "samples: see docs/oom.md."
    ),
    metric="peak",
    sizes=SIZES,
    expect="claims",
    variants=(
        Variant("unguarded", unguarded, "part", "the loop under the limit, no guard"),
        Variant("guarded", guarded, "part", "the same under `leakhunt run --oom-guard`"),
        Variant("guarded_stop", guarded_stop, "part", "`--oom-guard --oom-action stop`"),
        Variant("one_jump", one_jump, "flip", "the guard against one allocation past the limit"),
    ),
    claims=(
        Claim("A job killed at its memory limit leaves nothing to say what filled its memory.", _nothing_left,
              section="Symptoms; Investigation Process", origin="casebook",
              flip=Flip("the same loop under the guard, which writes first", variants={"unguarded": "guarded"})),
        Claim("Under leakhunt's OOM guard the same job, killed the same way, leaves a report written before "
              "the kill that names what kept the memory.", _guard_names_it,
              section="Investigation Process", origin="casebook",
              flip=Flip("one allocation past the limit, between two of the guard's samples",
                        variants={"guarded": "one_jump"})),
        Claim("With the guard's stop action the job ends with a MemoryError carrying the diagnosis, "
              "instead of a kill.", _stop_instead, section="Symptoms", origin="casebook",
              flip=Flip("the guard's default action: carry on, then the kill",
                        variants={"guarded_stop": "guarded"})),
    ),
    flip={"guarded": "one_jump"},
    imports=("numpy", "pandas"),
    helpers=(batch_loop, one_big_batch, run_job),
)


def main(argv: list[str]) -> None:
    mode, *numbers = argv
    if mode == "loop":
        batches, rows, cols = map(int, numbers)
        batch_loop(batches, rows, cols)
    else:
        rows, cols = map(int, numbers)
        one_big_batch(rows, cols)


if __name__ == "__main__":
    main(sys.argv[1:])
