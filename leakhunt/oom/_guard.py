"""The guard: a watcher thread that writes the diagnosis before the kill, then acts.

The watcher reads the figure the limit applies to every ``interval`` (one ``pread`` of a
``/proc`` or cgroup file: ``benchmarks/oom_watcher.py`` prints its CPU share). When the figure
reaches the threshold it takes the diagnosis (:mod:`leakhunt.oom._diagnosis`) while the guarded
thread waits in a signal handler (``hold``; :mod:`leakhunt.oom._stop`), writes it atomically
to the report path (the figures at once, then again with what is alive, and again with the
split of resident memory), prints a short
summary on stderr, and then does what was asked:

- ``continue`` (the default): carry on. The bar moves halfway up to the limit (5 % of the
  limit at least), so a second crossing higher up writes again; once the figure falls back
  below the threshold (less 5 % of the limit), the bar returns to the threshold.
- ``stop``: raise ``MemoryError`` with the diagnosis as its message in the guarded thread
  (:mod:`leakhunt.oom._stop`), so ``finally`` blocks run and the exit status says why — only
  while the guard is armed, and only when this process is the one the kernel would kill first
  among those sharing the limit.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import replace
from typing import IO, Any, Callable, Mapping

from leakhunt.oom._diagnosis import Diagnosis, alive, figures, render_report, split
from leakhunt.oom._limits import (
    Figure,
    Limit,
    find_limit,
    parse_action,
    parse_threshold,
    threshold_bytes,
)
from leakhunt.oom._stop import Interrupter
from leakhunt.units import format_size

__all__ = ["DEFAULT_INTERVAL", "DEFAULT_REPORT", "DEFAULT_THRESHOLD", "OomGuard", "oom_guard"]

DEFAULT_THRESHOLD = "90%"
DEFAULT_REPORT = "leakhunt-oom.json"
#: Seconds between two readings (the watcher's CPU share: benchmarks/oom_watcher.py prints it).
DEFAULT_INTERVAL = 0.01
#: After a crossing the bar moves halfway up to the limit, by this share of the limit at least.
STEP = 0.05
#: Below the threshold by this share of the limit, the bar returns to the threshold.
REARM = 0.05

_STDERR: Any = object()  # oom_guard()'s default: sys.stderr when the guard is made
_OPTIONS = {"threshold": "threshold", "limit": "limit", "action": "action", "report": "report",
            "interval": "interval"}


def _interval(value: float | str, option: str) -> float:
    from leakhunt.timeline import parse_interval

    try:
        seconds = parse_interval(value)
    except ValueError as exc:
        raise ValueError(f"invalid {option} {value!r}: {exc}") from None
    if not 0.001 <= seconds <= 1.0:
        raise ValueError(f"invalid {option} {value!r}: expected from 1 ms to 1 s, like '10ms'")
    return seconds


class OomGuard:
    """Watches memory against the limit that will kill the process; see :func:`oom_guard`.

    Use it as a context manager, or :meth:`start` and :meth:`stop` it. ``crossings`` lists the
    diagnoses taken so far; ``cpu_seconds`` the watcher's CPU time, ``samples`` its readings.
    Front ends may pass ``found`` (a :class:`Limit` they know, e.g. a Dask worker's
    ``memory_limit``), ``scope`` (what counts as alive, for :func:`leakhunt.attribution.survivors`;
    or a callable that makes it at each crossing),
    ``context`` (a callable giving what runs now, for the diagnosis), ``on_crossing`` (called
    with each diagnosis, first with the figures, then complete), and ``options`` (the names of
    their own options, for error messages). ``hold=False`` never holds the guarded thread during
    a diagnosis (a Dask worker's main thread is its event loop: holding it would not stop the
    task threads that grow).
    """

    def __init__(self, threshold: float | int | str = DEFAULT_THRESHOLD, *, limit: int | str | None = None,
                 action: str = "continue", report: str | os.PathLike[str] | None = DEFAULT_REPORT,
                 interval: float | str = DEFAULT_INTERVAL, paths: int = 5, stderr: IO[str] | None = None,
                 found: Limit | None = None, scope: Any = None,
                 context: Callable[[], Mapping[str, Any]] | None = None,
                 on_crossing: Callable[[Diagnosis], None] | None = None,
                 options: Mapping[str, str] | None = None, hold: bool = True) -> None:
        names = {**_OPTIONS, **(options or {})}
        fraction_or_bytes = parse_threshold(threshold, option=names["threshold"])
        self.action = parse_action(action, option=names["action"])
        self.interval = _interval(interval, names["interval"])
        if isinstance(paths, bool) or not isinstance(paths, int) or paths < 0:
            raise ValueError(f"invalid paths {paths!r}: expected a whole number >= 0")
        self.limit = found if found is not None else find_limit(limit, option=names["limit"])
        self.threshold = threshold_bytes(fraction_or_bytes, self.limit, option=names["threshold"])
        self.threshold_text = (f"{fraction_or_bytes * 100:g}%" if isinstance(fraction_or_bytes, float)
                               else format_size(fraction_or_bytes))
        self.report = None
        self.report_format = "json"
        if report is not None:
            from leakhunt.report.files import ReportPathError, check_report_path

            try:
                checked = check_report_path(report, option=names["report"], formats=("json", "text"))
            except ReportPathError as exc:
                raise ValueError(str(exc)) from None
            self.report, self.report_format = checked.path, checked.format
        self.report_given = os.fspath(report) if report is not None else None
        self.paths = paths
        self.stderr = stderr
        self.scope = scope
        self.context = context
        self.on_crossing = on_crossing
        self.hold = hold
        self.crossings: list[Diagnosis] = []
        self.cpu_seconds = 0.0
        self.samples = 0
        self.highest: int | None = None
        self.error: BaseException | None = None  # a failure inside the watcher, kept for the caller
        self._later: list[str] = []  # messages of a crossing, printed after it
        self._interrupter = Interrupter()
        self._reader: Figure = self.limit.reader()
        self._bar = self.threshold
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    # ------------------------------------------------------------------ lifecycle
    def describe(self, *, action: bool = True) -> str:
        """'threshold 90% (1.8 GiB) of 2.0 GiB (cgroup v1 ...), on the cgroup usage; action continue'."""
        text = f"threshold {self.threshold_text} ({format_size(self.threshold)}) of {self.limit.describe()}"
        return f"{text}; action {self.action}" if action else text

    def start(self) -> OomGuard:
        if self._thread is not None:
            raise RuntimeError("an OomGuard can be started once; make a new one")
        # What the diagnosis needs is imported now: an import at the crossing costs memory and time.
        import leakhunt.attribution
        import leakhunt.census
        import leakhunt.report.files  # noqa: F401

        if self.action == "stop" or self.hold:
            self._interrupter.install()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="leakhunt-oom-guard", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Disarm, stop the watcher (a diagnosis being taken is finished first), remove the handler."""
        self._interrupter.armed = False
        self._halt.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._interrupter.uninstall()
        self._reader.close()

    def __enter__(self) -> OomGuard:
        self.start()
        self.armed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def armed(self) -> bool:
        """Whether a ``stop`` action may raise now (front ends arm it around the user's code)."""
        return self._interrupter.armed

    @armed.setter
    def armed(self, value: bool) -> None:
        self._interrupter.armed = bool(value)

    @property
    def signum(self) -> int | None:
        """The real-time signal that reaches the guarded thread, or None (leakhunt.oom._stop)."""
        return self._interrupter.signum

    @property
    def stop_delivery(self) -> str:
        """How a stop reaches the guarded thread: ``signal`` or ``async`` (see leakhunt.oom._stop)."""
        return self._interrupter.how

    def stopped(self, exc: BaseException | None) -> bool:
        """Is ``exc`` the MemoryError this guard raised to stop the guarded code?"""
        return self._interrupter.is_ours(exc)

    # ------------------------------------------------------------------ the watcher
    def _run(self) -> None:
        began = time.thread_time()
        reader = self._reader
        before: int | None = None
        try:
            while not self._halt.is_set():
                value = reader.read()
                if value is not None:
                    self.samples += 1
                    if self.highest is None or value > self.highest:
                        self.highest = value
                    if value >= self._bar:
                        value = reader.exact(value)
                    if value >= self._bar:
                        self._cross(value, before)
                    elif value < self.threshold - REARM * self.limit.value:
                        self._bar = self.threshold
                    before = value
                time.sleep(self.interval)
        except BaseException as exc:  # pragma: no cover - never let the thread die silently
            self.error = exc
        finally:
            self.cpu_seconds = time.thread_time() - began

    def _cross(self, value: int, before: int | None) -> None:
        started = time.perf_counter()
        diagnosis = figures(number=len(self.crossings) + 1, at=time.time(), elapsed=started - self._t0,
                            limit=self.limit, threshold=self._bar, threshold_text=self._bar_text(),
                            value=value, before=before, interval=self.interval, context=self._context(),
                            action=self.action)
        if self.hold:
            self._interrupter.hold()  # the guarded thread waits in our handler (leakhunt.oom._stop)
        stop = None
        try:
            self._record(diagnosis, first=True)
            for step in (self._alive, self._split):  # what is alive first: it names the cause
                diagnosis = replace(step(diagnosis), seconds=time.perf_counter() - started)
                self._record(diagnosis, first=False)
            if self.action == "stop" and diagnosis.largest is not False:
                stop = str(diagnosis)
        finally:
            self._interrupter.release(stop)
        # Printed once the guarded thread goes on: held in the middle of a write to the same
        # stream, it would hold the stream's lock the print needs.
        self.say(diagnosis.summary(self.report_given))
        for line in self._later:
            self.say(line)
        self._later.clear()
        self._bar = value + max((self.limit.value - value) // 2, int(STEP * self.limit.value))

    def _bar_text(self) -> str:
        if self._bar == self.threshold:
            return self.threshold_text
        return f"{self.threshold_text}, raised after crossing {len(self.crossings)}"

    def _alive(self, diagnosis: Diagnosis) -> Diagnosis:
        """What is alive; tried twice, as other threads may change the heap while it is walked."""
        error: Exception | None = None
        for _ in range(2):
            try:
                scope = self.scope() if callable(self.scope) else self.scope
                return alive(diagnosis, scope=scope, paths=self.paths)
            except Exception as exc:
                error = exc
        return replace(diagnosis, notes=(*diagnosis.notes, (f"the search of what is alive failed: "
                                                           f"{type(error).__name__}: {error}")))

    def _split(self, diagnosis: Diagnosis) -> Diagnosis:
        try:
            return split(diagnosis)
        except Exception as exc:  # noqa: BLE001 - what is written already stands
            return replace(diagnosis, notes=(*diagnosis.notes, f"the split of resident memory failed: "
                                                               f"{type(exc).__name__}: {exc}"))

    def _context(self) -> dict[str, Any]:
        if self.context is None:
            return {}
        try:
            return dict(self.context())
        except Exception as exc:
            return {"context": f"unavailable ({type(exc).__name__}: {exc})"}

    def _record(self, diagnosis: Diagnosis, *, first: bool) -> None:
        if first:
            self.crossings.append(diagnosis)
        else:
            self.crossings[-1] = diagnosis
        if self.report is not None:
            self._write()
        if self.on_crossing is not None:
            try:
                self.on_crossing(diagnosis)
            except Exception as exc:  # noqa: BLE001 - a broken callback must not lose the diagnosis
                self._later.append(f"leakhunt: the OOM guard's callback failed: {type(exc).__name__}: {exc}")

    def _write(self) -> None:
        from leakhunt.report.files import write_atomic

        assert self.report is not None
        crossings = list(self.crossings)
        try:
            write_atomic(self.report, lambda f: render_report(crossings, self.report_format, f))
        except OSError as exc:
            self._later.append(f"leakhunt: cannot write the OOM diagnosis to {self.report_given!r}: "
                               f"{exc.strerror or exc}")

    def say(self, text: str) -> None:
        """Print a line on the guard's stderr (nothing without one); never fails."""
        if self.stderr is None:
            return
        try:
            print(text, file=self.stderr, flush=True)
        except (OSError, ValueError):
            pass


def oom_guard(threshold: float | int | str = DEFAULT_THRESHOLD, *, limit: int | str | None = None,
              action: str = "continue", report: str | os.PathLike[str] | None = DEFAULT_REPORT,
              interval: float | str = DEFAULT_INTERVAL, paths: int = 5,
              stderr: IO[str] | None | Any = _STDERR) -> OomGuard:
    """Guard a block against running out of memory: the diagnosis is written before the kill::

        with leakhunt.oom_guard("90%", action="stop"):
            run_the_job()

    ``limit`` is the memory that will stop the process: by default the cgroup's limit, else
    ``RLIMIT_AS``/``RLIMIT_DATA``, else the machine's memory, whichever has the least room
    left (``guard.limit`` says which, on which figure); a size such as ``"2 GB"`` applies to
    this process's resident memory. ``threshold`` is a share of it (``"90%"``, ``0.9``) or a
    size below it. When the figure reaches the threshold, the diagnosis (figures, the biggest
    roots alive with their paths and sizes, the split of resident memory, the allocation sites
    when tracemalloc is tracing) is written to ``report`` (``.json`` or ``.txt``, atomically;
    ``None`` for no file) and summarised on ``stderr``; then ``action``: ``"continue"`` (a
    second crossing higher up writes again) or ``"stop"`` (``MemoryError`` with the diagnosis
    as its message, raised in the thread that entered the block). ``stderr`` (default
    ``sys.stderr``; ``None`` for silence) gets a short summary of each crossing. Bad values raise
    ``ValueError`` naming the value and the accepted form, before anything starts.
    """
    return OomGuard(threshold, limit=limit, action=action, report=report, interval=interval, paths=paths,
                    stderr=sys.stderr if stderr is _STDERR else stderr)
