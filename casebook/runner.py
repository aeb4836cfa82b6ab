"""Run cases: set up data once per case and size, measure every run in a fresh process.

For each case the runner plans *chains*: one per data size (the full size, and half of it for
a growth story), each a setup step then one step per run of each variant. Every step is a
process of its own (:mod:`casebook.child`), forked from a server that has imported numpy,
pandas, pyarrow and leakhunt once: a fresh heap for every run, without paying for the imports
each time. Chains run ``jobs`` at a time; a case marked ``exclusive`` (a process pool, whose
workers a neighbour would slow) takes every slot while it runs. Memory figures are per
process, so measuring two variants side by side does not change them;
``benchmarks/casebook_parallel.py`` checks that.
"""

from __future__ import annotations

import multiprocessing
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from casebook import child
from casebook.model import KIND_ORDER, Case
from casebook.protocol import Report, Request, RunFigures, read_params, write_params
from casebook.results import CaseResult, VariantResult

__all__ = ["CaseError", "Progress", "run_case", "run_cases", "versions"]

#: How long one step may take before we give up on it (large sizes included).
STEP_TIMEOUT = 1800
#: What the fork server imports once, for every process it forks.
PRELOAD = ["numpy", "pandas", "pyarrow", "pyarrow.parquet", "pyarrow.csv", "pyarrow.compute",
           "psutil", "leakhunt", "casebook.child"]
# Optional modules a case or a variant may need -> the extra that installs them
# (pyproject.toml); any other missing module is the casebook's own extra.
_EXTRAS = {"polars": "compare", "duckdb": "compare", "dask": "dask", "distributed": "dask"}


def missing_module(modules: Sequence[str]) -> str | None:
    """The first of ``modules`` (dotted names) whose package is not installed, or None."""
    for module in modules:
        package = module.split(".")[0]
        try:
            found = find_spec(package)
        except (ImportError, ValueError):  # a broken install, or a module set to None
            found = None
        if found is None:
            return package
    return None


def install_hint(module: str) -> str:
    """What to install for ``module``, in the words a user types."""
    return f"install leakhunt[{_EXTRAS.get(module, 'casebook')}] ({module} is not installed)"


class CaseError(RuntimeError):
    """A step of a case failed in its process; the message carries its output's tail."""


class Progress:
    """What the runner reports while it works; the default reports nothing."""

    def start(self, total: int) -> None:
        """``total`` steps are planned."""

    def step(self, text: str) -> None:
        """A step (``text`` says which) begins."""

    def done(self, text: str) -> None:
        """A step ended."""


@dataclass
class _Step:
    kind: str  # "setup", "run", "explain" or "profile"
    names: tuple[str, ...] = ()  # the variants it measures, in one process
    runs: int = 1

    @property
    def label(self) -> str:
        what = ", ".join(self.names) or "data"
        return what if self.kind in ("setup", "run") else f"{what} ({self.kind})"


@dataclass
class _Chain:
    case: Case
    scale: float
    steps: list[_Step]
    overrides: Mapping[str, Any] = field(default_factory=dict)  # parameters a claim's flip changes
    results: list[VariantResult] = field(default_factory=list)
    error: str | None = None


class _Slots:
    """``jobs`` slots; an exclusive step takes them all, and new steps wait while it waits."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.free = count
        self.waiting_exclusive = 0
        self.cond = threading.Condition()

    @contextmanager
    def hold(self, exclusive: bool) -> Iterator[None]:
        need = self.count if exclusive else 1
        with self.cond:
            if exclusive:
                self.waiting_exclusive += 1
                self.cond.wait_for(lambda: self.free >= need)
                self.waiting_exclusive -= 1
            else:
                self.cond.wait_for(lambda: self.free >= need and self.waiting_exclusive == 0)
            self.free -= need
        try:
            yield
        finally:
            with self.cond:
                self.free += need
                self.cond.notify_all()


def versions() -> dict[str, str]:
    """The versions the figures were measured on."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("leakhunt", "numpy", "pandas", "pyarrow", "polars", "duckdb", "dask", "distributed",
                 "memory_profiler"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    try:
        out["glibc"] = "-".join(platform.libc_ver())
    except Exception:  # pragma: no cover - libc_ver reads the executable; never fatal
        pass
    return out


def _context() -> Any:
    """Fork server where the platform has one (Linux, macOS); a fresh interpreter elsewhere."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


#: A sample of a process's memory: (wall-clock time, RSS, anonymous RSS), bytes.
Sample = tuple[float, int, int]


def _sample(proc: Any, children: bool) -> list[Sample]:
    """RSS (plus its children's, for pools) and anonymous RSS of ``proc`` every few
    milliseconds, until it exits. Read from outside: a thread of the measured process would
    take the GIL from the code it measures."""
    import psutil

    interval = 0.05 if children else 0.01
    points: list[Sample] = []
    deadline = time.time() + STEP_TIMEOUT
    try:
        watched = psutil.Process(proc.pid)
        while proc.exitcode is None and time.time() < deadline:
            info = watched.memory_info()
            rss = info.rss
            if children:
                for kid in watched.children(recursive=True):
                    try:
                        rss += kid.memory_info().rss
                    except psutil.Error:
                        pass
            # statm's "shared" is the file-backed pages (and shared memory): the rest is anonymous
            points.append((time.time(), rss, info.rss - info.shared))
            proc.join(interval)
    except psutil.Error:
        pass  # the process ended between two samples: what was sampled stands
    return points


def _window(run: RunFigures) -> tuple[float, float]:
    """The part of a call its figures are about: the whole call, or the part a variant named
    (``focus_start``/``focus_end``, wall-clock times it reported)."""
    start, end = run.extra.get("focus_start"), run.extra.get("focus_end")
    if start is None or end is None:
        return run.started, run.ended
    return float(start), float(end)


def _cut(points: Sequence[Sample], started: float, ended: float, column: int = 1) -> tuple[tuple[float, int], ...]:
    """The samples of one call, as (seconds since its start, bytes above its start)."""
    before = [p for p in points if p[0] <= started]
    inside = [p for p in points if started < p[0] <= ended]
    base = before[-1][column] if before else (inside[0][column] if inside else None)
    if base is None:
        return ()
    return ((0.0, 0), *((round(p[0] - started, 4), p[column] - base) for p in inside))


def _with_anon_peak(run: RunFigures, points: Sequence[Sample]) -> RunFigures:
    """The run with ``anon_peak``: its peak without the file-backed pages it mapped (the pages
    of a CSV a parser maps while it reads, say). Those pages come and go slowly, so samples
    every few milliseconds catch them where they would miss a short peak of anonymous memory:
    the peak (exact, from the kernel's high-water mark) less the most file-backed memory sampled
    above the start. None when no sample fell inside the call."""
    if run.peak is None:
        return run
    files = [(t, rss - anon, 0) for t, rss, anon in points]
    cut = _cut(files, *_window(run), column=1)
    if len(cut) < 2:
        return run
    return _replace(run, anon_peak=max(0, run.peak - max(0, max(b for _, b in cut))))


# multiprocessing's exit code for a process whose status the fork server could not report (the
# server's connection broke): the run says nothing of the case, so it is run once more, in a
# process of a fork server started afresh. Seen once in three runs of the whole casebook in a row.
_SERVER_LOST = 255


def _spawn(ctx: Any, request: Request, workdir: Path, what: str, index: int, *,
           children: bool = False) -> tuple[Report | None, list[Sample]]:
    try:
        return _spawn_once(ctx, request, workdir, what, index, children=children)
    except _ServerLost:
        return _spawn_once(ctx, request, workdir, what, index, children=children)


class _ServerLost(CaseError):
    pass


def _spawn_once(ctx: Any, request: Request, workdir: Path, what: str, index: int, *,
                children: bool = False) -> tuple[Report | None, list[Sample]]:
    request_file = workdir / f"request-{index}.json"
    request.write(request_file)
    log = workdir / f"log-{index}.txt"
    proc = ctx.Process(target=child.serve, args=(str(request_file), str(log)), name=f"casebook {what}")
    proc.start()
    try:
        points = _sample(proc, children) if request.step == "run" else []
        proc.join(STEP_TIMEOUT)
        if proc.exitcode is None:
            raise CaseError(f"{what} took more than {STEP_TIMEOUT} s")
    finally:
        if proc.exitcode is None:
            proc.kill()
            proc.join()
    if proc.exitcode != 0:
        text = log.read_text(errors="replace") if log.exists() else ""
        tail = "\n".join(text.strip().splitlines()[-15:])
        error = _ServerLost if proc.exitcode == _SERVER_LOST else CaseError
        raise error(f"{what} failed (exit {proc.exitcode}):\n{tail}")
    if request.step == "setup":
        return None, points
    return Report.read(Path(request.report)), points


def _plan(case: Case, *, runs: int, alternatives: bool, growth: bool, explain: bool, profile: bool,
          only: Sequence[str] | None, overrides: Mapping[str, Any] | None = None,
          plot_growth: bool = False) -> tuple[list[_Chain], dict[str, str]]:
    overrides = dict(overrides or {})
    skipped: dict[str, str] = {}
    chosen = []
    for variant in sorted(case.variants, key=lambda v: KIND_ORDER[v.kind]):
        if only is not None:
            if variant.name not in only:
                continue
        elif variant.kind == "flip":
            continue
        if variant.kind == "alternative" and not alternatives:
            skipped[variant.name] = "alternatives were not asked for (--no-alternatives)"
            continue
        if variant.requires and missing_module([variant.requires]):
            skipped[variant.name] = install_hint(variant.requires.split(".")[0])
            continue
        chosen.append(variant)

    def steps(scale: float) -> list[_Step]:
        names = [v.name for v in chosen if scale == 1.0 or v.growth]
        out = [_Step("setup")]
        for name in names:
            out += [_Step("run", (name,)) for _ in range(runs)]
            if scale == 1.0 and explain and name == "leaky" and case.metric == "retained":
                out.append(_Step("explain", (name,)))
            if scale == 1.0 and profile and case.variant(name).profile:
                out.append(_Step("profile", (name,)))
        return out

    chains = [_Chain(case, 1.0, steps(1.0), overrides)]
    if growth and case.growth_keys and any(v.growth for v in chosen):
        # The rule compares the full size with growth_scale; a picture of the growth also gets
        # the point between them (two points show no shape).
        between = (1 + case.growth_scale) / 2
        for scale in (case.growth_scale, *((between,) if plot_growth else ())):
            chains.append(_Chain(case, scale, steps(scale), overrides))
    return chains, skipped


@dataclass
class _Collected:
    """What a chain's steps gave back, by variant."""

    params: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, list[RunFigures]] = field(default_factory=dict)
    samples: dict[str, list[list[Sample]]] = field(default_factory=dict)
    notes: dict[tuple[str, str], Any] = field(default_factory=dict)

    def add(self, step: _Step, report: Report) -> None:
        name = step.names[0] if step.names else ""
        if step.kind == "explain" and report.explanation:
            self.notes[(name, "explanation")] = report.explanation
            self.notes[(name, "explanation_data")] = report.explanation_data
        elif step.kind == "profile" and report.line_profile:
            self.notes[(name, "line_profile")] = report.line_profile
        for variant, measured in report.runs.items():
            self.runs.setdefault(variant, []).extend(measured)

    def results(self, case: Case, scale: float) -> list[VariantResult]:
        out = []
        for name, measured in self.runs.items():
            variant = case.variant(name)
            result = VariantResult(name=name, kind=variant.kind, label=variant.label, scale=scale,
                                   params=self.params, runs=tuple(measured),
                                   explanation=self.notes.get((name, "explanation")),
                                   explanation_data=self.notes.get((name, "explanation_data")),
                                   line_profile=self.notes.get((name, "line_profile")))
            taken = self.samples.get(name)
            if taken and len(taken) == len(measured):
                middle = result.median_run(case.metric)
                result = _replace(result, timeline=_cut(taken[middle], *_window(measured[middle])))
            out.append(result)
        return out


def _step(chain: _Chain, step: _Step, index: int, size: str, workdir: Path, ctx: Any,
          label: str) -> tuple[Report | None, list[Sample]]:
    """Run one step of a chain: the setup in this process when the case has none of its own,
    anything else in a fresh one."""
    case = chain.case
    if step.kind == "setup" and case.setup is None:
        write_params(workdir, case.prepare(size, workdir, chain.scale, chain.overrides))
        return None, []
    request = Request(step.kind, case.name, str(workdir), str(workdir / f"report-{index}.json"),
                      size=size, scale=chain.scale, variants=step.names, runs=step.runs,
                      overrides=dict(chain.overrides))
    report, points = _spawn(ctx, request, workdir, label, index, children=case.children)
    if step.kind == "run" and report is not None and not case.children:
        report = _replace(report, runs={name: tuple(_with_anon_peak(run, points) for run in measured)
                                        for name, measured in report.runs.items()})
    return report, points


def _run_chain(chain: _Chain, size: str, root: Path, ctx: Any, slots: _Slots,
               progress: Progress, timelines: bool) -> None:
    case = chain.case
    workdir = Path(tempfile.mkdtemp(prefix=f"{case.name}-{chain.scale}-", dir=root))
    at = "" if chain.scale == 1.0 else f" at {chain.scale:g}x"
    collected = _Collected()
    try:
        for index, step in enumerate(chain.steps):
            label = f"{case.name}{at}: {step.label}"
            progress.step(label)
            with slots.hold(case.exclusive):
                report, points = _step(chain, step, index, size, workdir, ctx, label)
            progress.done(label)
            if step.kind == "setup":
                collected.params = read_params(workdir)
                continue
            assert report is not None
            if timelines and step.kind == "run" and chain.scale == 1.0 and len(step.names) == 1:
                collected.samples.setdefault(step.names[0], []).append(points)
            collected.add(step, report)
        chain.results.extend(collected.results(case, chain.scale))
    except CaseError as exc:
        chain.error = str(exc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_cases(
    cases: Sequence[Case],
    size: str,
    *,
    runs: int = 3,
    jobs: int = 2,
    explain: bool = False,
    profile: bool = False,
    timelines: bool = False,
    alternatives: bool = True,
    growth: bool = True,
    only: Mapping[str, Sequence[str]] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Progress | None = None,
) -> tuple[list[CaseResult], dict[str, str]]:
    """Measure ``cases`` at ``size``: every variant ``runs`` times, each run in a fresh process.

    A case whose optional library (one of its ``imports``) is not installed is not run: its
    result has no measurements and ``not_run`` says what to install.

    ``explain`` asks the story's code of a "retained" case for leakhunt's explanation of what
    stays alive; ``profile`` adds memory_profiler line tables for the variants that ask for
    them; ``timelines`` keeps memory over time for the plots, and measures growth stories at
    a third data size for their pictures. ``only`` maps a case name to the variants to run
    (flip variants included) instead of all but the flips; ``overrides`` maps a case name to
    parameters to change (a claim's flip). Returns the
    results in the order of ``cases`` and, by case name, the error of each case that failed.
    Temporary data lives in one directory, removed afterwards whatever happens.
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs!r}")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs!r}")
    progress = progress or Progress()
    # A case whose optional library is missing is not run, and says what to install: it never
    # fails the command (the README's first line must work with the extra it names).
    not_run = {case.name: install_hint(absent) for case in cases
               if (absent := missing_module(case.imports)) is not None}
    plans = {case.name: _plan(case, runs=runs, alternatives=alternatives, growth=growth,
                              explain=explain, profile=profile,
                              only=None if only is None else only.get(case.name),
                              overrides=(overrides or {}).get(case.name), plot_growth=timelines)
             for case in cases if case.name not in not_run}
    all_chains = [chain for chains, _ in plans.values() for chain in chains]
    progress.start(sum(len(chain.steps) for chain in all_chains))
    # Exclusive chains first, then the longest: the tail of the run stays short.
    ordered = sorted(all_chains, key=lambda c: (not c.case.exclusive, -len(c.steps)))
    ctx = _context()
    slots = _Slots(jobs)
    root = Path(tempfile.mkdtemp(prefix="leakhunt-casebook-"))
    try:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="casebook") as pool:
            for future in [pool.submit(_run_chain, chain, size, root, ctx, slots, progress, timelines)
                           for chain in ordered]:
                future.result()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return _gather(cases, size, runs, plans, not_run)


def _gather(cases: Sequence[Case], size: str, runs: int, plans: Mapping[str, tuple[list[_Chain], dict[str, str]]],
            not_run: Mapping[str, str]) -> tuple[list[CaseResult], dict[str, str]]:
    """Each case's result in the order asked, and the error of each case that failed."""
    results: list[CaseResult] = []
    failures: dict[str, str] = {}
    for case in cases:
        if case.name in not_run:
            results.append(CaseResult(case=case, size=size, runs=runs, results=(), not_run=not_run[case.name]))
            continue
        chains, skipped = plans[case.name]
        errors = [chain.error for chain in chains if chain.error]
        if errors:
            failures[case.name] = errors[0]
            continue
        order = {v.name: i for i, v in enumerate(sorted(case.variants, key=lambda v: KIND_ORDER[v.kind]))}
        found = [r for chain in chains for r in chain.results]
        found.sort(key=lambda r: (order[r.name], -r.scale))
        results.append(CaseResult(case=case, size=size, runs=runs, results=tuple(found), skipped=skipped))
    return results, failures


def run_case(case: Case, size: str, **options: Any) -> CaseResult:
    """One case (see :func:`run_cases` for the options); ``CaseError`` if it failed."""
    results, failures = run_cases([case], size, **options)
    if failures:
        raise CaseError(failures[case.name])
    return results[0]
