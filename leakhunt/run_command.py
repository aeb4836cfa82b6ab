"""``leakhunt run``: run a script or module as ``python`` would and profile its memory over time.

The target runs in this process (``__name__ == "__main__"``, its own ``sys.argv``, its exit
status kept) while :class:`leakhunt.timeline.Sampler` records the timeline and
:class:`leakhunt.measure.Measurer` takes the exact peak (the kernel's high-water mark) and the
settled growth. The figures are written even when the target raises or is interrupted.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import datetime as _dt
import importlib.machinery
import importlib.util
import io
import os
import runpy
import shlex
import sys
import time
import traceback
import tracemalloc
import types
from dataclasses import replace
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from leakhunt import defaults, tracing
from leakhunt.budget import FIGURES
from leakhunt.machine import environment
from leakhunt.outside import OutsideSampler
from leakhunt.process_local import LocalHandler, Owner
from leakhunt.timeline import DEFAULT_INTERVAL, RunRecord, Sampler, Site, TraceAtPeak, parse_interval
from leakhunt.units import whole_number

if TYPE_CHECKING:
    from leakhunt.report.files import ReportPath

__all__ = ["configure_parser", "misplaced_options", "run", "Target", "record_run"]

PROG = "leakhunt run"
# Budget keywords that make sense for one run of a script (leak/repeat/warmup need repeats).
_RUN_BUDGET_KEYWORDS = FIGURES
#: Frames kept per traced allocation with --trace (the library's default).
TRACE_FRAMES = tracing.TRACE_FRAMES
DEFAULT_TOP = 10  # --top: allocation sites shown with --trace


class UsageError(Exception):
    """A bad command line: printed as ``leakhunt run: error: ...``, exit status 2."""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.usage = (
        "leakhunt run [options] script.py [args ...]\n"
        "       leakhunt run [options] -m module [args ...]"
    )
    parser.epilog = (
        "Options go before the script: everything after the script (or after -m module) is the "
        "target's own arguments, as with python. Example: leakhunt run -o report.html script.py. "
        "Exit status: the target's; 1 when it passed but broke --budget; 2 for a bad command line."
    )
    own: dict[str, bool] = {}  # flag -> takes a value

    def add(*flags: str, **kwargs: Any) -> None:
        takes_value = kwargs.get("action") not in ("store_true", "store_false", "store_const")
        own.update((flag, takes_value) for flag in flags if flag.startswith("-"))
        parser.add_argument(*flags, **kwargs)

    add("-m", dest="module", nargs=argparse.REMAINDER, metavar="module",
        help="run a library module as a script, like python -m")
    add("--interval", type=_interval_type, default=DEFAULT_INTERVAL, metavar="TIME",
        help="sampling interval for the timeline: '10ms' (default), '0.5s', '0.02'")
    add("--children", action="store_true",
        help="also sample child processes' memory (PSS, sampled every 50 ms at most)")
    add("--trace", dest="trace", action="store_const", const="auto", default=None,
        help="trace allocations: the sites and stacks alive at the peak. With memray installed "
             "(pip install \"leakhunt[native]\") every allocation, native ones included (Arrow, polars, "
             "pandas' C code), alive at the exact high-water mark; otherwise tracemalloc (Python objects "
             "and numpy only, snapshotted near the peak)")
    add("--trace=native", dest="trace", action="store_const", const="native",
        help="trace with memray (native backend), whatever is installed; falls back to tracemalloc, "
             "and says why, where memray cannot run")
    add("--trace=tracemalloc", dest="trace", action="store_const", const="tracemalloc",
        help="trace with tracemalloc (Python objects and numpy only, snapshotted near the peak; "
             "the lines that allocated what is alive at exit)")
    add("--trace-frames", type=whole_number("--trace-frames", 1, 100), default=None, metavar="N",
        help=f"frames kept per traced allocation with tracemalloc (default {TRACE_FRAMES}): fewer is "
             "faster, but may not reach your line from deep inside a library")
    add("--keep-capture", metavar="FILE",
        help="with the native backend: keep memray's capture file as FILE (open it with memray's own "
             "reporters: memray flamegraph FILE); the JSON report names it")
    add("-o", "--output", metavar="REPORT",
        help="write the report: REPORT.html (self-contained page: timeline, peak, flame graph), "
             "REPORT.txt (the summary as text), REPORT.json (the figures and samples) or "
             "REPORT.png (the timeline plot)")
    add("--json", metavar="PATH.json", help="also write the figures and samples as JSON (for leakhunt report)")
    add("--budget", type=_budget_type, metavar="SPEC",
        help="fail (exit 1) when the run breaks it: e.g. 'peak=1GB,rss=100MB' "
             "(rss: settled final growth; peak: above the start; arrow; traced; children)")
    add("--top", type=whole_number("--top", 0), default=None, metavar="N",
        help=f"allocation sites to show with --trace (default {DEFAULT_TOP})")
    add("--explain", dest="explain", action="store_true", default=None,
        help="look for what keeps memory alive at the script's end whatever it kept (by default: when it "
             f"kept {defaults.EXIT_EXPLAIN_FLOOR_TEXT} or more beyond what its imports took, or broke --budget)")
    add("--no-explain", dest="explain", action="store_false",
        help="do not look for what keeps memory alive at the script's end (the search over what the "
             "script left alive takes seconds on a large heap); the figures are the same")
    add("--no-status", dest="status", action="store_false",
        help="no live status line (it is shown on stderr only when stderr is a terminal)")
    add("-q", "--quiet", action="store_true",
        help="no live status line and no summary (errors and budget failures still print)")
    from leakhunt.oom._cli import add_run_options

    add_run_options(add)
    parser.add_argument("target", nargs="?", metavar="script.py", help="the script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="args", help="the target's arguments")
    parser.set_defaults(_own_options=own)


# --------------------------------------------------------------------------------------
# argument types: each error names the value and the accepted form


def _interval_type(text: str) -> float:
    try:
        return parse_interval(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _budget_type(text: str) -> Any:
    from leakhunt.budget import Budget

    try:
        budget = Budget.from_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    keys = {item.partition("=")[0].strip() for item in text.split(",")}
    extra = [k for k in ("leak", "repeat", "warmup") if k in keys]
    if extra:
        raise argparse.ArgumentTypeError(
            f"invalid --budget {text!r}: {extra[0]}= needs repeated calls, and `leakhunt run` runs the "
            f"target once (use: {', '.join(_RUN_BUDGET_KEYWORDS)})"
        )
    if budget.is_empty:
        raise argparse.ArgumentTypeError(f"invalid --budget {text!r}: it sets no limit "
                                         f"(use: {', '.join(_RUN_BUDGET_KEYWORDS)})")
    return budget


# --------------------------------------------------------------------------------------
# the target


class Target:
    """What to run: a script path or a module name, and the ``sys.argv`` it gets."""

    def __init__(self, *, script: str | None = None, module: str | None = None, args: list[str] | None = None):
        if (script is None) == (module is None):
            raise UsageError("give a script to run, or -m and a module name")
        self.script = script
        self.module = module
        self.args = list(args or [])
        self.main_module: types.ModuleType | None = None  # the script's __main__, once it ran

    @property
    def label(self) -> str:
        return f"-m {self.module}" if self.module else str(self.script)

    def check(self) -> None:
        """Raise :class:`UsageError` when the target cannot be found, before anything runs."""
        if self.script is not None:
            if not os.path.exists(self.script):
                raise UsageError(f"cannot open script {self.script!r}: no such file")
            if os.path.isdir(self.script) and not os.path.exists(os.path.join(self.script, "__main__.py")):
                raise UsageError(f"cannot run {self.script!r}: a directory needs a __main__.py")
        else:
            assert self.module is not None
            if not self.module or self.module.startswith(".") or not all(
                part.isidentifier() for part in self.module.split(".")
            ):
                raise UsageError(f"invalid module name {self.module!r}")
            # Only the top-level name: finding a submodule would import its package now.
            top = self.module.split(".")[0]
            # looked up as it will be run: with the current directory first on sys.path (python -m)
            found = top in sys.modules or importlib.machinery.PathFinder.find_spec(top, [self.sys_path0()]) is not None
            if not found and importlib.util.find_spec(top) is None:
                raise UsageError(f"no module named {top!r} (for -m {self.module})")

    def execute(self) -> dict[str, Any] | None:
        """Run the target as ``__main__``; return its globals (kept alive by the caller)."""
        if self.module is not None:
            sys.argv = [self.module, *self.args]  # run_module puts the file path in argv[0]
            return runpy.run_module(self.module, run_name="__main__", alter_sys=True)
        assert self.script is not None
        sys.argv = [self.script, *self.args]
        path = os.path.abspath(self.script)
        if os.path.isdir(path) or not path.endswith((".py", ".pyw")) and _is_zip(path):
            return runpy.run_path(path, run_name="__main__")
        # Like `python script.py`: __file__ absolute, argv[0] as typed, a fresh __main__ module.
        with io.open_code(path) as f:
            source = f.read()
        code = compile(source, path, "exec", dont_inherit=True)
        module = types.ModuleType("__main__")
        module.__dict__.update(__file__=path, __cached__=None, __builtins__=builtins)
        self.main_module = module
        saved_main = sys.modules.get("__main__")
        sys.modules["__main__"] = module
        try:
            exec(code, module.__dict__)
        finally:
            if saved_main is not None:
                sys.modules["__main__"] = saved_main
        return module.__dict__

    def sys_path0(self) -> str:
        if self.module is not None:
            return os.getcwd()
        assert self.script is not None
        path = os.path.abspath(self.script)
        return path if os.path.isdir(path) or _is_zip(path) else os.path.dirname(path)


def _is_zip(path: str) -> bool:
    import zipfile

    return os.path.isfile(path) and zipfile.is_zipfile(path)


def _exit_status(exc: SystemExit, stderr: IO[str]) -> int:
    """The status `python` would exit with for ``SystemExit(code)``."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF if code >= 0 else code % 256
    print(code, file=stderr)  # sys.exit("message"): Python prints it and exits 1
    return 1


_OUR_FILES = {os.path.normcase(os.path.abspath(f)) for f in (__file__, runpy.__file__)}


def _ours(filename: str) -> bool:
    # runpy is a frozen module since 3.11: its frames say "<frozen runpy>"; leakhunt's own
    # frames around the target (the OOM guard's arming, leakhunt.oom._cli) are ours too
    from leakhunt.frames import is_ours

    return filename == "<frozen runpy>" or os.path.normcase(os.path.abspath(filename)) in _OUR_FILES \
        or is_ours(filename)


def _strip_our_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """Drop the leading frames of leakhunt and runpy: Python shows none for `python script.py`."""
    while tb is not None and _ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return tb


def _format_exception(exc: BaseException) -> str:
    tb = _strip_our_frames(exc.__traceback__)
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _print_error(exc: BaseException, stderr: IO[str]) -> None:
    """The target's error as Python prints it: through ``sys.excepthook`` (it may be customised)."""
    if stderr is sys.stderr:
        tb = _strip_our_frames(exc.__traceback__)
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
    else:
        stderr.write(_format_exception(exc))


# --------------------------------------------------------------------------------------
# recording a run


def record_run(
    target: Target,
    *,
    interval: float = DEFAULT_INTERVAL,
    children: bool = False,
    trace: bool | str = False,
    top: int = 10,
    trace_frames: int = TRACE_FRAMES,
    budget: Any = None,
    status: Callable[[str], None] | None = None,
    stderr: IO[str] | None = None,
    keep_capture: str | None = None,
    explain: bool | None = None,
) -> RunRecord:
    """Run ``target`` under the sampler and return its :class:`RunRecord`.

    ``trace``: False, ``"tracemalloc"`` (True means the same), ``"native"`` (memray: the
    allocations alive at the exact high-water mark, :mod:`leakhunt.native`) or ``"auto"``
    (native where memray can record, else tracemalloc). Where the native backend cannot record
    (memray missing, an unsupported platform, another memray tracker active) the run is traced
    with tracemalloc instead and the record's ``trace_note`` says why.

    ``explain``: say what keeps the memory the script kept at its end alive (the roots, each
    buffer once, and the explained share), whatever the backend; ``None`` (the default): when it
    kept at least :data:`leakhunt.defaults.EXIT_EXPLAIN_FLOOR` beyond what its imports took;
    ``False``: only a broken budget is explained.

    An exception in the target is printed to ``stderr`` as Python prints it (through
    ``sys.excepthook``) and recorded; the figures up to that point are kept.
    """
    from leakhunt.imports import ImportMeter
    from leakhunt.lifecycle import Block, Policy
    from leakhunt.probes import PeakWindow

    stderr = stderr if stderr is not None else sys.stderr
    saved_argv, saved_path0 = sys.argv[:], sys.path[0] if sys.path else None
    started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    tracer = _Tracer(trace, top=top, trace_frames=trace_frames, keep_capture=keep_capture, status=status,
                     stderr=stderr)
    # The run is one block of the library's lifecycle, with attribution (leakhunt.attribution.Scope):
    # what is alive at exit is told from what existed before (the gc-tracked objects by a frozen
    # heap, the data holders by a baseline taken at the start, or with --trace=tracemalloc by
    # their tracebacks) and grouped by root; the judgement then explains what the run keeps,
    # within its budget or not. The peak's sites come from the tracer (below): memray's capture
    # (the native backend) or the run's own snapshots of tracemalloc. A trace the user started
    # is left running.
    traced = tracer.backend == "tracemalloc"
    block = Block(target.label, Policy.of(budget, trace=traced, rerun=False, exact=True, explain_kept=explain is not False,
                                          explain_floor=defaults.EXIT_EXPLAIN_FLOOR if explain is None else 0,
                                          trace_frames=trace_frames, peak_sites=False, front="run",
                                          meter_imports=False))  # its own ImportMeter, below
    sampler = Sampler(interval, children=children, status=status)
    outcome = _Outcome()  # its kept: the target's globals (or the failing traceback), alive until read
    _set_path0(target.sys_path0())
    outside = OutsideSampler(interval)  # RSS read from another process: no gap while C code holds the GIL
    outside.start()
    block.start()
    try:
        tracer.start()
        window = PeakWindow().open()  # the exact peak: the kernel's high-water mark while it is open
        sampler.start()
        owner = Owner()
        restore_sigterm = _write_figures_on_sigterm()
        # what the script's imports take (a line of its own); what its first lines' library imports
        # make is set aside with the heap that existed before the run (leakhunt/imports.py)
        imports = ImportMeter(freeze=block.scope is not None and block.scope.owns_freeze).install()
    except BaseException:
        tracer.abandon()
        raise
    try:
        _execute(target, outcome, stderr)
    finally:
        returned = time.perf_counter()
        if not owner.here():  # a forked copy of the target reached its end: no figures, no summary
            _end_forked_copy(outcome.status, outcome.error, stderr)
        imports.remove()
        restore_sigterm()
        timeline, ran = _timeline(sampler, outside)
        window.close()
        tracer.stop(timeline)
        tracer.read_meanwhile(_run_peak_rss(window, timeline, None))
        measurement = block.stop()
        sys.argv = saved_argv
        if saved_path0 is not None:
            sys.path[0] = saved_path0
    ended = outcome.figures()  # the traceback as it was raised, before it is printed
    if outcome.error is not None:
        _print_error(outcome.error, stderr)
    measurement = _peak_figures(measurement, window, timeline, sampler.arrow_max, children)

    # The judgement (the library's, as for every front end) while the target's globals are alive;
    # memray's capture is read meanwhile, in a second process (leakhunt.native.CaptureRead).
    block.measurement = measurement
    if block.policy.explain_kept or budget is not None:
        _say(status, "leakhunt: the script returned; looking for what keeps memory alive at its end")
    try:
        judging = time.perf_counter()
        with _as_main(target.main_module or outcome.kept):
            judgement = block.finish(peak=tracer.peak_source(), imports=imports.bytes)
        judged = time.perf_counter()
        native = tracer.native_peak()
    finally:
        tracer.close()
    outcome.kept = None
    return RunRecord(
        target=target.label,
        argv=[target.module or str(target.script), *target.args],
        started_at=started_at,
        seconds=ran,
        start_rss=measurement.before.rss,
        peak_rss=measurement.peak_rss,
        peak_above_start=measurement.peak,
        peak_source="hwm" if window.mode == "hwm" else "sampled",
        final_rss=measurement.after.rss,
        final_growth=measurement.figure("rss"),
        file_backed_growth=measurement.file_backed_growth,
        allocator_retention=measurement.allocator_retention,
        arrow_peak=measurement.arrow_peak,
        arrow_final=measurement.after.arrow,
        children_peak=measurement.children_peak,
        traced_peak=measurement.traced_peak,
        tracing_overhead=measurement.tracing_overhead,
        samples=timeline,
        violations=judgement.violations,
        explanation=judgement.explanation,
        environment=environment(),
        sampler_cpu=sampler.cpu_seconds + outside.cpu_seconds,
        native=native,
        trace_backend=tracer.backend,
        trace_note=tracer.note,
        after_seconds=round(time.perf_counter() - returned, 3),
        judgement_seconds=round(judged - judging, 3),
        **ended,
        **_peak_time(timeline),
        **_imports_figures(imports),
        **_budget_figures(budget),
        trace=_trace_at_peak(tracer.peaks, timeline, tracer.overhead) if tracer.peaks is not None else None,
    )


class _Outcome:
    """How the target ended: its exit status, the exception it raised, and what it left alive."""

    def __init__(self) -> None:
        self.status = 0
        self.error: BaseException | None = None
        self.kept: Any = None

    def figures(self) -> dict[str, Any]:
        """The record's fields about the end: exit status, the exception's last line, its traceback."""
        error = self.error
        if error is None:
            return {"exit_status": self.status, "error": None, "error_traceback": None}
        return {"exit_status": self.status,
                "error": traceback.format_exception_only(type(error), error)[-1].strip(),
                "error_traceback": _format_exception(error)}


def _execute(target: Target, outcome: _Outcome, stderr: IO[str]) -> None:
    """Run the target, noting in ``outcome`` how it ended; its exceptions are reported, not ours."""
    try:
        outcome.kept = target.execute()
    except SystemExit as exc:
        outcome.status = _exit_status(exc, stderr)
        outcome.kept = exc
    except BaseException as exc:  # noqa: BLE001 - the target's failure is reported, not ours
        outcome.error = exc
        outcome.kept = exc
        outcome.status = 130 if isinstance(exc, KeyboardInterrupt) else 1


def _set_path0(path: str) -> None:
    """``sys.path[0]`` as Python sets it for the target (its script's folder, or the current one)."""
    if sys.path:
        sys.path[0] = path
    else:
        sys.path.append(path)


def _peak_figures(measurement: Any, window: Any, timeline: Any, arrow_max: int | None, children: bool) -> Any:
    """The measurement with the run's peaks: one figure per concept, in the record, the summary and
    the explanation alike. The peak is the window's (or the sampler's, when higher)."""
    # Arrow: pyarrow is usually imported by the target; the engine then counts its pool from 0
    # and takes the pool's own maximum as the peak. The sampler may have seen a higher point.
    arrow_peak = _arrow_peak(measurement.arrow_peak, arrow_max, measurement.before.arrow)
    children_peak = timeline.max_of("children") if children else None
    start_rss = measurement.before.rss
    peak_rss = _run_peak_rss(window, timeline, measurement.peak_rss)
    peak_above = None if peak_rss is None or start_rss is None else max(0, peak_rss - start_rss)
    return replace(measurement, arrow_peak=arrow_peak, children_peak=children_peak, peak=peak_above,
                   peak_rss=peak_rss)


def _run_peak_rss(window: Any, timeline: Any, measured: int | None) -> int | None:
    """The run's peak of resident memory: the window's (else the measurement's), or the
    sampler's when it saw higher (sampled fallback)."""
    peak_rss = window.peak if window.peak is not None else measured
    peak_at = timeline.max_rss()
    if peak_at is not None and (peak_rss is None or peak_at[1] > peak_rss):
        peak_rss = peak_at[1]
    return peak_rss


def _timeline(sampler: Sampler, outside: OutsideSampler) -> tuple[Any, float]:
    """The run's timeline: Arrow's pool (and the children) as the script's thread sampled them,
    RSS as the outside process read it (or the thread, where that process could not run); and
    the seconds it spans, the script's run (not the tracer's work after it: the duration and
    the timeline end together)."""
    timeline = sampler.stop()
    ran = timeline.t[-1] if timeline.t else 0.0
    samples = outside.stop()
    return (timeline.with_outside(samples, sampler.t0) if samples is not None else timeline), ran


def _peak_time(timeline: Any) -> dict[str, Any]:
    peak_at = timeline.max_rss()
    return {"peak_time": peak_at[0] if peak_at is not None else None}


def _imports_figures(imports: Any) -> dict[str, Any]:
    return {"imports": imports.bytes if imports.modules else None, "imported": len(imports.modules),
            "imports_set_aside": list(imports.frozen)}


def _budget_figures(budget: Any) -> dict[str, Any]:
    if budget is None:
        return {"budget": None, "budget_limits": {}}
    return {"budget": budget.describe(), "budget_limits": budget.limits()}


def _trace_at_peak(peaks: tracing.PeakSnapshots, timeline: Any, overhead: int) -> TraceAtPeak | None:
    """What :class:`leakhunt.tracing.PeakSnapshots` found, as the run records it."""
    if peaks.taken_at is None:
        return None
    # the RSS sample nearest the snapshot
    rss = 0
    if len(timeline):
        i = min(range(len(timeline.t)), key=lambda k: abs(timeline.t[k] - peaks.taken_at))
        rss = timeline.rss[i] or 0
    sites = tuple(Site(filename=s.file, lineno=s.line, size=s.size, count=s.count, code=s.code,
                       via=_via(s.file, s.line, peaks.stacks)) for s in peaks.sites)
    return TraceAtPeak(time=peaks.taken_at, rss=rss, traced=peaks.level, domains=dict(peaks.domains), sites=sites,
                       snapshots=peaks.snapshots, snapshot_seconds=peaks.seconds, tracemalloc_overhead=overhead,
                       stacks=peaks.stacks)


def _backend(trace: bool | str) -> tuple[str | None, str | None]:
    """(the backend to trace with, or None; why it is not the one asked for)."""
    if trace is False or trace is None:
        return None, None
    if trace is True or trace == "tracemalloc":
        return "tracemalloc", None
    if trace not in ("auto", "native"):
        raise ValueError(f"trace={trace!r}: expected False, True, 'tracemalloc', 'native' or 'auto'")
    from leakhunt.native import unavailable

    reason = unavailable()
    if reason is None:
        return "native", None
    if trace == "auto":
        return "tracemalloc", f"traced with tracemalloc: {reason}"
    return "tracemalloc", f"the native backend cannot record here ({reason}): traced with tracemalloc instead"


class _Tracer:
    """What ``--trace`` runs beside the target: memray (:mod:`leakhunt.native`) or tracemalloc's
    snapshots of the peak (:class:`leakhunt.tracing.PeakSnapshots`). Started after the
    measurement's start, stopped before its end; where memray cannot record (another tracker is
    active), tracemalloc traces the run instead and :attr:`note` says why."""

    def __init__(self, trace: bool | str, *, top: int, trace_frames: int, keep_capture: str | None,
                 status: Callable[[str], None] | None, stderr: IO[str]) -> None:
        self.backend, self.note = _backend(trace)
        self.stderr = stderr
        if self.note:
            self._warn()
        self.top = top
        self.trace_frames = trace_frames
        self.keep_capture = keep_capture
        self.status = status
        self.recorder: Any = None
        self.peaks: tracing.PeakSnapshots | None = None
        self.overhead = 0  # tracemalloc's own memory at the end
        self._handle: tracing.TraceHandle | None = None
        self._reading: Any = None  # memray's capture, being read by a second process
        self._native: Any = None
        self._read = False
        self._peak_rss: int | None = None

    def start(self) -> None:
        if self.backend == "native":
            from leakhunt.native import NativeRecorder, NativeUnavailable

            try:
                self.recorder = NativeRecorder(keep=self.keep_capture).start()
                # the process that reads the capture after the script: loading meanwhile
                self._reading = self.recorder.reader_ahead()
            except NativeUnavailable as exc:
                self.backend = "tracemalloc"
                self.note = f"the native backend cannot record here ({exc}): traced with tracemalloc instead"
                self._warn()
                self._handle = tracing.start(self.trace_frames)  # the peak's sites at least
        if self.backend == "tracemalloc" and tracemalloc.is_tracing():
            # the allocations alive at the traced peak; snapshots may take 10% of the run, none while importing
            self.peaks = tracing.PeakSnapshots(limit=max(self.top, 1), budget=0.1, skip_imports=True).start()

    def _warn(self) -> None:
        """Say it before the target runs, where a user watching the run sees it."""
        print(f"{PROG}: {self.note}", file=self.stderr)

    def stop(self, timeline: Any) -> None:
        if self.recorder is not None:
            self.recorder.stop()
        if self.peaks is not None:
            self.overhead = tracing.own_memory()
            _say(self.status, f"leakhunt: the script returned at {timeline.t[-1] if timeline.t else 0:.1f} s; "
                              "summarising the traced allocations at the peak")
            self.peaks.stop()

    def read_meanwhile(self, peak_rss: int | None) -> None:
        """Hand memray's capture to the second process launched before the script; the run's end
        (polars' purge, what the script kept) is looked at meanwhile. Where that cannot be,
        :meth:`native_peak` reads it here."""
        self._peak_rss = peak_rss
        if self.recorder is None:
            return
        try:
            self._reading = self.recorder.analyse_elsewhere(top=max(self.top, 10), peak_rss=peak_rss,
                                                            reading=self._reading)
        except Exception:  # noqa: BLE001 - read here instead (native_peak)
            if self._reading is not None:
                self._reading.close()
            self._reading = None

    def peak_source(self) -> Any:
        """What the judgement reads the peak's sites from: memray's peak (read when first asked
        for), or tracemalloc's snapshots."""
        if self.recorder is None:
            return self.peaks
        from leakhunt.native import NativePeakSource

        return NativePeakSource.later(self.native_peak, limit=max(self.top, 1))

    def native_peak(self) -> Any:
        """The recorded peak, read once; never lost to an error in reading it (the run's figures stay)."""
        if self.recorder is None or self._read:
            return self._native
        self._read = True
        try:
            if self._reading is not None:
                _say(self.status, "leakhunt: reading memray's capture (in a second process)")
                self._native = self._reading.result(self.status)
            else:
                self._native = self.recorder.analyse(top=max(self.top, 10), status=self.status,
                                                     peak_rss=self._peak_rss)
        except Exception as exc:  # noqa: BLE001 - a capture we cannot read must not cost the report
            print(f"{PROG}: could not read memray's capture: {type(exc).__name__}: {exc}", file=self.stderr)
        return self._native

    def abandon(self) -> None:
        """The run stopped before the script (Ctrl-C, an error): memray stops recording, the
        reader launched for it ends now, not with this process, and nothing is left in TMPDIR."""
        if self.recorder is not None:
            self.recorder.stop()
        self.close()

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        if self._handle is not None:
            self._handle.stop()
        if self._reading is not None:
            self._reading.close()


def _say(status: Callable[[str], None] | None, text: str) -> None:
    if status is not None:
        try:
            status(text)
        except Exception:  # noqa: BLE001 - a broken status line never stops the run
            pass


def _via(filename: str, lineno: int, stacks: Sequence[tracing.Stack]) -> str | None:
    """Where the biggest allocation charged to a user line really happened, when elsewhere
    (``pandas/io/parsers/readers.py:1026`` under ``df = pd.read_csv(...)``)."""
    from leakhunt.frames import short_path, user_frame

    best: tracing.Stack | None = None
    for stack in stacks:
        if user_frame([(f, n) for f, n, _ in stack.frames]) == (filename, lineno):
            if best is None or stack.size > best.size:
                best = stack
    if best is None or not best.frames:
        return None
    inner_file, inner_line, _ = best.frames[0]
    return None if inner_file == filename else f"{short_path(inner_file)}:{inner_line}"


@contextlib.contextmanager
def _as_main(main: Any) -> Iterator[None]:
    """The target's module back in ``sys.modules["__main__"]`` while its survivors are named
    (``RECENT (global in __main__)``); ``main`` is the module, its globals, or anything else."""
    if isinstance(main, dict):
        module = types.ModuleType("__main__")
        module.__dict__.update(main)
        main = module
    if not isinstance(main, types.ModuleType):
        yield
        return
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved
        else:
            sys.modules.pop("__main__", None)


class _Terminated(SystemExit):
    """SIGTERM during the run: end the target like Python's default would, but let us write."""


def _write_figures_on_sigterm() -> Callable[[], None]:
    """Turn SIGTERM (a CI timeout, ``kill``, a container stop) into an exit the figures survive.

    Only when SIGTERM has its default action: a handler the caller installed is left alone,
    and one the target installs replaces ours. Only in this process: a forked child of the
    target (a multiprocessing worker) gets the default back, so ``Pool.terminate()`` ends it
    silently, as without leakhunt (:mod:`leakhunt.process_local`). Returns the function that
    restores the default.
    """
    import signal

    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return lambda: None

    def on_sigterm(signum: int, frame: Any) -> None:
        print(f"{PROG}: terminated (SIGTERM); writing the figures so far", file=sys.stderr)
        raise _Terminated(128 + signum)

    handler = LocalHandler(signal.SIGTERM, on_sigterm)
    return handler.uninstall if handler.install() else (lambda: None)


def _end_forked_copy(status: int, error: BaseException | None, stderr: IO[str]) -> None:
    """A forked copy of the target (``os.fork()`` in the script, a child that was not ended with
    ``os._exit``) ran to the end of the script: it exits as it would under ``python script.py``
    - its error printed, its status, the interpreter's own exit (at-exit callbacks, buffers
    flushed) - and never measures, prints a summary or writes the run's report (issue 21: such a
    child printed a second summary and overwrote the report)."""
    if error is not None:
        _print_error(error, stderr)
    raise SystemExit(status)


def _arrow_peak(from_pool: int | None, sampled: int | None, before: int | None) -> int | None:
    base = before or 0
    candidates = [v for v in (from_pool, None if sampled is None else sampled - base) if v is not None]
    return max(candidates) if candidates else None


# --------------------------------------------------------------------------------------
# the command


def run(args: argparse.Namespace) -> int:
    stderr = sys.stderr
    try:
        oom = _oom_guard(args, stderr)  # first: a bare --oom-guard may have taken the script's name
        target = _target_from_args(args)
        target.check()
        outputs = _check_outputs(args)
        _check_keep_capture(args)
        trace = _trace_choice(args.trace, args.budget)
        top, frames = _trace_options(args, trace)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=stderr)
        return 2
    for warning in misplaced_options(target, getattr(args, "_own_options", {})):
        print(f"{PROG}: warning: {warning}", file=stderr)
    budget = args.budget
    children = args.children or (budget is not None and budget.children is not None)
    live = None
    if args.status and not args.quiet and _isatty(stderr) and os.environ.get("TERM") != "dumb":
        from leakhunt.report.live_status import LiveStatus

        live = LiveStatus(stderr)

    from leakhunt.oom._cli import guarding

    try:
        if live is not None:
            live.start()
        with guarding(oom, target, prog=PROG, quiet=args.quiet):
            record = record_run(target, interval=args.interval, children=children, trace=trace, top=top,
                                trace_frames=frames, budget=budget,
                                status=live.update if live is not None else None, stderr=stderr,
                                keep_capture=args.keep_capture, explain=args.explain)
    finally:
        if live is not None:
            live.stop()

    from leakhunt.report.console import console
    from leakhunt.report.run_report import RunReport

    try:  # the target's buffered output first, so the summary comes after it
        sys.stdout.flush()
    except (OSError, ValueError):
        pass

    written: list[str] = []
    failed = False
    for option, checked in outputs:
        failed |= not _write(option, checked, record, top, written, stderr)
    out = console(stderr)
    if not args.quiet:
        RunReport(record, top=min(top, 5)).print(out, written=written)
    elif record.violations:
        RunReport(record, top=0).print_verdict(out, written=written)
    if record.exit_status != 0:
        return record.exit_status
    if record.violations or failed:
        return 1
    return 0


def _trace_choice(asked: str | None, budget: Any) -> bool | str:
    """The backend ``--trace`` asks for; a ``traced=`` budget limits tracemalloc's figure."""
    if budget is not None and budget.traced is not None and asked in (None, "auto"):
        return "tracemalloc"
    return asked or False


def _trace_options(args: argparse.Namespace, trace: bool | str) -> tuple[int, int]:
    """``--top`` and ``--trace-frames``, which only a traced run uses: given without ``--trace``
    they would change nothing, which is an error (as the plugin's options are)."""
    if not trace:
        given = [flag for flag, value in (("--top", args.top), ("--trace-frames", args.trace_frames))
                 if value is not None]
        if given:
            names = " and ".join(given)
            raise UsageError(f"{names} only {'apply' if len(given) > 1 else 'applies'} to a traced run: "
                             f"add --trace, or drop {names}")
    return (DEFAULT_TOP if args.top is None else args.top,
            TRACE_FRAMES if args.trace_frames is None else args.trace_frames)


def _check_keep_capture(args: argparse.Namespace) -> None:
    """``--keep-capture FILE``: only with the native backend, into a directory that exists."""
    path = args.keep_capture
    if path is None:
        return
    if args.trace == "tracemalloc":
        raise UsageError("--keep-capture keeps memray's capture: it needs the native backend "
                         "(--trace or --trace=native), not --trace=tracemalloc")
    if args.trace is None:
        raise UsageError("--keep-capture keeps the capture of a traced run: add --trace")
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise UsageError(f"--keep-capture {path!r} is a directory: give a file name, such as run.bin")
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise UsageError(f"--keep-capture {path!r}: cannot write into {folder!r} (no such directory, or not writable)")


def _oom_guard(args: argparse.Namespace, stderr: IO[str]) -> Any:
    """The OOM guard --oom-guard asks for (leakhunt.oom), checked before the target runs."""
    from leakhunt.oom._cli import guard_from_args

    try:
        return guard_from_args(args, stderr)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def misplaced_options(target: Target, own: Mapping[str, bool]) -> list[str]:
    """Warnings for the target's arguments that look like ``leakhunt run``'s own options.

    ``leakhunt run script.py -o report.html`` passes ``-o report.html`` to the script, as
    ``python script.py -o report.html`` would; a user who meant it for us should hear so, with
    the command line that does what they meant. ``own`` maps each of our flags to whether it
    takes a value.
    """
    found: list[str] = []
    moved: list[str] = []
    kept: list[str] = []
    args = list(target.args)
    i = 0
    while i < len(args):
        arg = args[i]
        flag = arg.split("=", 1)[0] if arg.startswith("--") else arg
        if flag in own and flag != "-m":
            found.append(flag)
            moved.append(arg)
            if own[flag] and "=" not in arg and i + 1 < len(args):
                moved.append(args[i + 1])
                i += 1
        else:
            kept.append(arg)
        i += 1
    if not found:
        return []
    names = ", ".join(repr(f) for f in dict.fromkeys(found))
    many = len(set(found)) > 1
    head = ["-m", str(target.module)] if target.module is not None else [str(target.script)]
    command = " ".join(shlex.quote(a) for a in ["leakhunt", "run", *moved, *head, *kept])
    return [f"{names} after {target.label} {'go' if many else 'goes'} to {target.label}, not to leakhunt run "
            f"(everything after the script is its own, as with python); to give {'them' if many else 'it'} "
            f"to leakhunt run, put {'them' if many else 'it'} before the script: {command}"]


def _target_from_args(args: argparse.Namespace) -> Target:
    if args.module is not None:
        if not args.module:
            raise UsageError("-m needs a module name")
        if args.target is not None:  # pragma: no cover - argparse gives -m everything after it
            raise UsageError(f"give either a script ({args.target!r}) or -m {args.module[0]}, not both")
        return Target(module=args.module[0], args=args.module[1:])
    if args.target is None:
        raise UsageError("no script given (usage: leakhunt run [options] script.py [args ...])")
    return Target(script=args.target, args=args.args)


#: What each output option can write, by format (the suffix picks it).
_OUTPUT_FORMATS = {"-o": ("html", "text", "json", "png"), "--json": ("json",)}


def _check_outputs(args: argparse.Namespace) -> list[tuple[str, ReportPath]]:
    """The checked output paths, before anything runs; :class:`UsageError` naming a bad one."""
    from leakhunt.report.files import ReportPathError, check_report_path

    checked = []
    for option, path in (("--json", args.json), ("-o", args.output)):
        if path is None:
            continue
        try:
            checked.append((option, check_report_path(path, option=option, formats=_OUTPUT_FORMATS[option])))
        except ReportPathError as exc:
            raise UsageError(str(exc)) from None
    return checked


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _write(option: str, checked: ReportPath, record: RunRecord, top: int, written: list[str],
           stderr: IO[str]) -> bool:
    """Write one output; an error is printed (naming the path) and returned as False."""
    from leakhunt.report.run_report import RunReport

    try:
        RunReport(record, top=top).write(checked)
    except ImportError as exc:
        print(f"{PROG}: error: cannot write {option} {checked.given!r}: {exc}", file=stderr)
        return False
    except OSError as exc:
        print(f"{PROG}: error: cannot write {option} {checked.given!r}: {exc.strerror or exc}", file=stderr)
        return False
    written.append(checked.given)
    return True
