"""Measure a block: readings before and after, the peak in between, and what settling gave back."""

from __future__ import annotations

import time
import tracemalloc
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator

from leakhunt import probes
from leakhunt import tracing as _tracing
from leakhunt.allocators import free_total as _allocators_free
from leakhunt.allocators import kept as _kept
from leakhunt.probes import PeakWindow, Reading, Sample
from leakhunt.settle import settle as _settle
from leakhunt.settle import decay_seconds, wait_for_decay
from leakhunt.settle import trim as _trim
from leakhunt.tracing import TRACE_FRAMES, PeakSnapshots, TraceHandle

if TYPE_CHECKING:
    from leakhunt.attribution import Scope

__all__ = ["Measurement", "Measurer", "MeasureHandle", "confirm", "from_sample", "measure", "sample_figures",
           "waited_children_peak"]


def _diff(after: int | None, before: int | None) -> int | None:
    if after is None or before is None:
        return None
    return after - before


@dataclass(slots=True)
class Measurement:
    """What a block did to memory. Every figure is bytes, or ``None`` where unavailable.

    ``rss_growth`` is settled-after minus settled-before when ``settled`` is true, and a cheap
    unsettled difference otherwise. ``allocator_retention`` is the RSS that settling at the end
    gave back: memory freed but kept by an allocator, which is not a leak.

    A value (``dataclasses.replace`` makes a changed copy); not frozen only because a frozen
    dataclass costs several times as much to build, once per measured test (issue 9).
    """

    before: Reading
    after: Reading
    peak_rss: int | None
    peak: int | None
    traced_peak: int | None
    arrow_peak: int | None
    children_peak: int | None
    allocator_retention: int | None
    seconds: float
    settled: bool
    traced: bool
    #: traced bytes still alive that threads older than the block allocated during it: left
    #: out of the block's rss and traced figures (see :class:`leakhunt.attribution.Scope`)
    excluded: int = 0
    #: memory tracemalloc itself took during the block (its trace tables), when leakhunt traced
    #: the block freshly: in RSS, but not the block's
    tracing_overhead: int = 0
    #: free memory Python's allocator kept in arenas that still hold live objects, added during
    #: the block (read when the block's kept memory is explained; ``None``: not read)
    pymalloc_kept: int | None = None
    #: free memory the native allocators (glibc malloc's arenas, the threads' included; Arrow's
    #: pool) kept resident, added during the block (:mod:`leakhunt.allocators`; read when the
    #: block's kept memory is explained; ``None``: not read)
    allocators_kept: int | None = None

    @property
    def rss_growth(self) -> int | None:
        return _diff(self.after.rss, self.before.rss)

    @property
    def rss_anon_growth(self) -> int | None:
        return _diff(self.after.rss_anon, self.before.rss_anon)

    @property
    def file_backed_growth(self) -> int | None:
        """Resident file-backed pages the block added (memory maps, libraries loaded, a file's
        pages mapped while it is read): in RSS, but not what a leak grows."""
        total, anon = self.rss_growth, self.rss_anon_growth
        return None if total is None or anon is None else total - anon

    @property
    def traced_growth(self) -> int | None:
        return _diff(self.after.traced, self.before.traced)

    @property
    def arrow_growth(self) -> int | None:
        if self.before.arrow is None and self.after.arrow is not None:
            return self.after.arrow  # pyarrow was imported inside the block: its pool began at 0
        return _diff(self.after.arrow, self.before.arrow)

    @property
    def children_growth(self) -> int | None:
        return _diff(self.after.children, self.before.children)

    @property
    def traced_growth_by_domain(self) -> dict[str, int] | None:
        before, after = self.before.traced_domains, self.after.traced_domains
        if before is None or after is None:
            return None
        return {name: after.get(name, 0) - before.get(name, 0) for name in after}

    def figure(self, name: str) -> int | None:
        """A figure by its budget keyword (rss, peak, traced, arrow, children, file): what a
        budget checks. ``rss`` is anonymous resident memory (file-backed pages are ``file``);
        rss and traced leave out what older threads allocated during the block and
        tracemalloc's own memory."""
        if name == "rss":
            growth = self.rss_anon_growth if self.rss_anon_growth is not None else self.rss_growth
            return None if growth is None else growth - self.excluded - self.tracing_overhead
        if name == "traced":
            return None if self.traced_growth is None else self.traced_growth - self.excluded
        if name == "file":
            return self.file_backed_growth
        return {"peak": self.peak, "arrow": self.arrow_growth, "children": self.children_peak}[name]

    def to_dict(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict (bytes as ints, None as null)."""
        return {
            "rss_growth": self.rss_growth,
            "rss_anon_growth": self.rss_anon_growth,
            "file_backed_growth": self.file_backed_growth,
            "peak": self.peak,
            "peak_rss": self.peak_rss,
            "traced_growth": self.traced_growth,
            "traced_growth_by_domain": self.traced_growth_by_domain,
            "traced_peak": self.traced_peak,
            "arrow_growth": self.arrow_growth,
            "arrow_peak": self.arrow_peak,
            "children_peak": self.children_peak,
            "allocator_retention": self.allocator_retention,
            "seconds": self.seconds,
            "settled": self.settled,
            "traced": self.traced,
            "excluded": self.excluded,
            "tracing_overhead": self.tracing_overhead,
            "pymalloc_kept": self.pymalloc_kept,
            "allocators_kept": self.allocators_kept,
            "before": asdict(self.before),
            "after": asdict(self.after),
        }


class Measurer:
    """Two-step measurement for callers that cannot wrap a ``with`` block (pytest hooks).

    ``settle=False`` is the cheap path: no garbage collection, just readings and the peak.
    ``trace``: ``None`` uses tracemalloc only if it is already running, ``True`` starts it
    for the block (and stops it after), ``False`` ignores it. A trace the user started is never
    stopped or reset. ``children`` adds the memory of child processes started during the block
    (costly: reads smaps). ``domains`` splits the traced figure by domain (takes snapshots;
    default: when tracing was started here). ``trim`` (with ``settle=False``) hands freed memory
    back to the OS before the start reading, without a collection: otherwise the block could
    reuse memory an allocator kept from earlier work, and its growth would read as zero.

    ``attribute`` opens a :class:`leakhunt.attribution.Scope` at the start (the heap frozen, a
    fresh trace of the block when ``trace``, the threads and children that existed before it):
    what an explanation needs to show only the block's own survivors. The scope stays open after :meth:`stop` (the
    survivors are looked at after the figures); :meth:`close` ends it. ``peak_sites`` samples
    the allocations alive at the traced high-water mark (:class:`leakhunt.tracing.PeakSnapshots`);
    a callable instead makes the peak source to use, traced or not (``start()``, ``stop()``,
    then ``sites``: :class:`leakhunt.native.NativePeakSource`, memray's exact peak).
    """

    # A measurement's state, before start(): class-level defaults, set on the instance when used.
    scope: Scope | None = None
    peak: Any = None  # PeakSnapshots, or the caller's peak source
    measurement: Measurement | None = None
    _trace_handle: TraceHandle | None = None
    _window: PeakWindow | None = None
    _before: Reading | None = None
    _t0 = 0.0
    _traced_peak_before: int | None = None
    _children_sampler: _ChildrenSampler | None = None
    _arrow_max_before: int | None = None
    _exclude_pids: frozenset[int] = frozenset()
    _children_mark: tuple[int | None, int] = (None, 0)
    _tm_before: int | None = None
    _pymalloc_before: int | None = None
    _native_before: int | None = None
    _late: tuple[int | None, int | None, int | None] | None = None
    _foreign_before = 0
    _domains = False
    _meter: probes.QuickMeter | None = None

    def __init__(
        self,
        *,
        settle: bool = True,
        trace: bool | None = None,
        children: bool = False,
        domains: bool | None = None,
        trace_frames: int = TRACE_FRAMES,
        trim: bool = False,
        attribute: bool = False,
        peak_sites: bool | Callable[[], Any] = False,
        baseline: bool = False,
    ) -> None:
        self.settle = settle
        self.baseline = baseline
        self.trace = trace
        self.children = children
        self.domains = domains
        self.trace_frames = trace_frames
        self.trim = trim
        self.attribute = attribute
        self.peak_sites = peak_sites
        # (the state of a measurement starts from the class-level defaults above: this runs per test)
        # Nothing to settle, trace, sample or attribute: the per-test path of --leak-report,
        # kept to one reading and a peak reset at each end (issue 9).
        self._quick = not (settle or trim or attribute or peak_sites or children or domains or trace)

    @classmethod
    def exact(cls, *, trace: bool = False, children: bool = False,
              peak_sites: bool | Callable[[], Any] = False, baseline: bool = False) -> Measurer:
        """The measurement a budget decides on: settled at both ends, so its figures read the
        same whatever ran earlier in the process. ``trace`` also traces the block freshly with
        attribution ready (the survivors of the block, the sites; ``peak_sites``: the
        allocations alive at its peak) - what an explanation needs, at tracemalloc's cost."""
        if trace:
            return cls(settle=True, trace=True, children=children, domains=True, attribute=True,
                       peak_sites=peak_sites)
        # untraced, the block's gc-tracked survivors are still told apart (a frozen heap: free)
        return cls(settle=True, trace=None, children=children, domains=False, attribute=True,
                   peak_sites=peak_sites if callable(peak_sites) else False, baseline=baseline)

    @property
    def tracing(self) -> bool:
        return self.trace is not False and tracemalloc.is_tracing()

    @property
    def fresh(self) -> bool:
        """Every traced allocation was made inside the block."""
        handle = self.scope.trace if self.scope is not None else self._trace_handle
        return bool(handle is not None and handle.fresh and handle.active)

    def start(self) -> Measurer:
        if self._quick:
            return self._start_quick()
        # Settle first, then start a fresh trace: every trace is then the block's (other
        # threads' allocations from this moment on included, and told apart at the end).
        if self.attribute:
            # leakhunt's own module, loaded before the settle: what its first import leaves
            # freed is then settled before the start reading (imported between the two, it moved
            # a budgeted test's figure by 3.6 MiB: pandas#60640's reproducer in tests/zoo)
            import leakhunt.attribution  # noqa: F401
        if self.settle:
            _settle()
        elif self.trim:
            _trim()
        # pymalloc's statistics are unreadable while tracemalloc runs: read before the trace
        self._pymalloc_before = probes.pymalloc_free() if self.settle else None  # 0.2 ms
        self._native_before = self._native_free(at_start=True)
        self._open_trace()
        domains = self.domains if self.domains is not None else self.fresh
        self._domains = bool(domains and self.tracing)
        self._before = self._reading()
        self._foreign_before = 0
        if self.scope is not None and self.settle:
            # Older threads allocate between the trace's start and this reading, too: the part
            # of the block's figures that is theirs is what they add from here on.
            foreign, traced_now = self.scope.foreign_traced(at_start=True)
            if traced_now is not None and self._before.traced is not None:
                self._before = replace(self._before, traced=traced_now)
                self._foreign_before = foreign
        self._mark_traced_start()
        self._arrow_max_before = probes.arrow_pool_max()
        if self.children:
            self._children_mark = (probes.children_hwm(), probes.forks())
            self._children_sampler = _ChildrenSampler(exclude_pids=self._exclude_pids)
            self._children_sampler.start()
        if callable(self.peak_sites):
            self.peak = self.peak_sites().start()  # the caller's peak source (leakhunt.native)
        elif self.peak_sites and self.tracing:
            self.peak = PeakSnapshots().start()
        # The window starts from the reading just taken when nothing ran in between.
        quiet = self._children_sampler is None and self.peak is None
        self._window = PeakWindow().open(start=self._before.rss if quiet else None)
        self._t0 = time.perf_counter()
        return self

    def _open_trace(self) -> None:
        """The scope (attribution, and the block's fresh trace when asked), or only a trace."""
        if self.attribute:
            from leakhunt.attribution import Scope

            self.scope = Scope(trace=bool(self.trace), frames=self.trace_frames, children=self.children,
                               baseline=self.baseline)
            self._exclude_pids = self.scope.children
        elif self.trace:
            self._trace_handle = _tracing.start(self.trace_frames)
        elif self.children:
            self._exclude_pids = _child_pids()

    def _mark_traced_start(self) -> None:
        """What tracemalloc holds at the start: its own memory (never the block's) and its peak."""
        self._tm_before = _tracing.own_memory() if self.fresh else None
        if self.fresh:
            tracemalloc.reset_peak()  # our own trace: resetting its peak is ours to do
        if self.tracing:
            self._traced_peak_before = tracemalloc.get_traced_memory()[1]

    def _start_quick(self) -> Measurer:
        """The cheap start: a :class:`~leakhunt.probes.QuickMeter` (one reading, a peak reset)."""
        self._meter = probes.QuickMeter()
        self._meter.start()
        return self

    def _reading(self) -> Reading:
        reading = probes.read(domains=self._domains, children=self.children, exclude_pids=self._exclude_pids)
        if self.trace is False and reading.traced is not None:
            reading = _untraced(reading)
        return reading

    def stop(self) -> Measurement:
        if self._meter is not None:  # the quick path
            self.measurement = from_sample(self._meter.stop(), traced=self.trace is not False)
            self._meter = None
            return self.measurement
        if self._before is None or self._window is None:
            raise RuntimeError("Measurer.stop() called before start()")
        seconds = time.perf_counter() - self._t0
        peak_rss = self._window.close()
        if self.peak is not None:
            self.peak.stop()
        children_peak = self._children_peak(peak_rss)
        traced_peak = self._traced_peak() if self.tracing else None
        arrow_peak = self._arrow_peak()
        after, retention = self._end_reading()
        if peak_rss is not None and after.rss is not None:
            peak_rss = max(peak_rss, after.rss)  # what the steps since the window closed allocated
        if self._trace_handle is not None:
            self._trace_handle.stop()
            self._trace_handle = None
        peak = None
        if peak_rss is not None and self._before.rss is not None:
            peak = max(0, peak_rss - self._before.rss)
        if children_peak is not None and after.children is not None:
            children_peak = max(children_peak, after.children)
        after, excluded = self._foreign(after)
        pymalloc_after = probes.pymalloc_free() if self._pymalloc_before is not None else None
        native_after = self._native_free()
        if self.scope is not None and self.scope.fresh and self.settle:
            # traced: read again once the survivors' search has stopped the block's trace (completed())
            self.scope.on_release.append(self._read_late)
        overhead = 0
        if self._tm_before is not None and tracemalloc.is_tracing():
            overhead = max(0, _tracing.own_memory() - self._tm_before)
        self.measurement = Measurement(
            before=self._before, after=after, peak_rss=peak_rss, peak=peak, traced_peak=traced_peak,
            arrow_peak=arrow_peak, children_peak=children_peak, allocator_retention=retention, seconds=seconds,
            settled=self.settle, traced=self._before.traced is not None, excluded=excluded,
            tracing_overhead=overhead,
            pymalloc_kept=None if pymalloc_after is None else max(0, pymalloc_after - self._pymalloc_before),
            allocators_kept=_kept(native_after, self._native_before),
        )
        return self.measurement

    def _native_free(self, at_start: bool = False) -> int | None:
        """The native allocators' free memory (:mod:`leakhunt.allocators`; a pass over smaps,
        milliseconds) where kept memory is explained; at the end not while tracemalloc runs
        (malloc's heap holds its freed tables: read once the trace stops, :meth:`_read_late`)."""
        if at_start:
            return _allocators_free() if self.baseline and self.settle else None
        return _allocators_free() if self._native_before is not None and not tracemalloc.is_tracing() else None

    def _read_late(self) -> None:
        _trim()  # what tracemalloc's freed tables left in malloc's heap is given back now
        self._late = (probes.pymalloc_free() if self._pymalloc_before is not None else None, probes.rss_anon(),
                      _allocators_free() if self._native_before is not None else None)

    def completed(self, measurement: Measurement) -> Measurement:
        """``measurement`` with what could be read only after the block's trace stopped (read
        when the survivors' search released it, before its walks): pymalloc's free memory, which
        its statistics do not show while tracemalloc runs, and the memory tracemalloc's own
        tables held at the block's end - the live ones (``tracing_overhead`` already) and the
        freed ones malloc could not give back while the trace ran, which fragment its heap and
        are gone when the trace stops: leakhunt's, never the block's."""
        if self._late is None:
            return measurement
        pymalloc, anon, native = self._late
        changes: dict[str, Any] = {}
        if measurement.pymalloc_kept is None and pymalloc is not None and self._pymalloc_before is not None:
            changes["pymalloc_kept"] = max(0, pymalloc - self._pymalloc_before)
        if measurement.allocators_kept is None and native is not None:
            changes["allocators_kept"] = _kept(native, self._native_before)
        at_end = measurement.after.rss_anon
        if anon is not None and at_end is not None and at_end - anon > measurement.tracing_overhead:
            changes["tracing_overhead"] = at_end - anon
        return replace(measurement, **changes) if changes else measurement

    def _children_peak(self, peak_rss: int | None) -> int | None:
        """The children's peak: sampled, or from the kernel's record of waited-for children."""
        if self._children_sampler is None:
            return None
        children_peak = self._children_sampler.stop()
        waited = waited_children_peak(self._children_mark, peak_rss, self._exclude_pids)
        if waited is not None and (children_peak is None or waited > children_peak):
            children_peak = waited
        return children_peak

    def _end_reading(self) -> tuple[Reading, int | None]:
        """The end reading (settled first when asked) and what settling gave back."""
        if not self.settle:
            return self._reading(), None
        unsettled_rss = probes.rss()
        _settle()
        after = self._reading()
        retention = None
        if unsettled_rss is not None and after.rss is not None:
            retention = max(0, unsettled_rss - after.rss)
        return after, retention

    def _foreign(self, after: Reading) -> tuple[Reading, int]:
        """What threads older than the block allocated during it (left out of its figures),
        with the traced figure read at the same moment."""
        if self.scope is None or not self.settle:
            return after, 0
        foreign, traced_now = self.scope.foreign_traced()
        if traced_now is None or after.traced is None:
            return after, 0
        return replace(after, traced=traced_now), max(0, foreign - self._foreign_before)

    def _traced_peak(self) -> int:
        """The traced high-water mark of the block, over its start."""
        assert self._before is not None
        current, peak_now = tracemalloc.get_traced_memory()
        return _traced_peak(self._before.traced, self._traced_peak_before, current, peak_now, fresh=self.fresh)

    def _arrow_peak(self) -> int | None:
        """Arrow's pool at its highest during the block, over its start."""
        assert self._before is not None
        return _arrow_peak(self._before.arrow, self._arrow_max_before, probes.arrow(), probes.arrow_pool_max())

    def close(self) -> None:
        """End what :meth:`stop` left open for explaining (the scope and its trace); idempotent."""
        if self.scope is not None:
            self.scope.close()
        if self._trace_handle is not None:
            self._trace_handle.stop()
            self._trace_handle = None


def from_sample(sample: Sample, *, traced: bool = True) -> Measurement:
    """The :class:`Measurement` of a :class:`~leakhunt.probes.QuickMeter` sample: the figures of
    the cheap path (nothing settled; traced figures when a trace of the user's ran throughout,
    unless ``traced=False``; Arrow's when pyarrow was imported), made when they are needed."""
    (t0, t1, rss_before, anon_before, rss_after, anon_after, peak_rss, traced_before, traced_peak_before,
     traced_after, traced_peak_after, arrow_before, arrow_max_before, arrow_after, arrow_max_after) = sample
    traced_peak = None
    if traced and traced_before is not None and traced_after is not None:
        traced_peak = _traced_peak(traced_before, traced_peak_before, traced_after, traced_peak_after)
    else:
        traced_before = traced_after = None
    peak = max(0, peak_rss - rss_before) if peak_rss is not None and rss_before is not None else None
    before = Reading(t0, rss_before, anon_before, traced_before, arrow_before)
    after = Reading(t1, rss_after, anon_after, traced_after, arrow_after)
    return Measurement(before, after, peak_rss, peak, traced_peak,
                       _arrow_peak(arrow_before, arrow_max_before, arrow_after, arrow_max_after), None, None,
                       t1 - t0, False, traced_before is not None)


def sample_figures(sample: Sample) -> tuple[float, int | None, int | None, int | None, int | None]:
    """``(seconds, rss growth, peak, traced growth, Arrow growth)`` of a
    :class:`~leakhunt.probes.QuickMeter` sample: what :func:`from_sample`'s measurement gives as
    ``seconds``, ``figure("rss")``, ``peak``, ``figure("traced")`` and ``arrow_growth``, without
    building it (a report of thousands of tests makes one row per test from these)."""
    (t0, t1, rss_before, anon_before, rss_after, anon_after, peak_rss, traced_before, _, traced_after, _,
     arrow_before, _, arrow_after, _) = sample
    if anon_before is not None and anon_after is not None:  # figure("rss") is anonymous memory
        growth: int | None = anon_after - anon_before
    else:
        growth = None if rss_after is None or rss_before is None else rss_after - rss_before
    return (t1 - t0,
            growth,
            None if peak_rss is None or rss_before is None else max(0, peak_rss - rss_before),
            None if traced_after is None or traced_before is None else traced_after - traced_before,
            arrow_after if arrow_before is None else None if arrow_after is None else arrow_after - arrow_before)


def _traced_peak(before: int | None, peak_before: int | None, current: int, peak_now: int,
                 fresh: bool = False) -> int:
    """tracemalloc's high-water mark over a block's start. A trace that is not the block's own
    (``fresh``) keeps its earlier peak: it tells the block's only when it rose."""
    base = before or 0
    if fresh or peak_before is None or peak_now > peak_before:
        return peak_now - base
    return max(current, base) - base  # only the ends are known


def _arrow_peak(before: int | None, max_before: int | None, now: int | None, max_now: int | None) -> int | None:
    """Arrow's default pool at its highest during a block, over its start. The pool's maximum
    cannot be reset: it tells the block's peak only when it rose."""
    if max_now is None:
        return None
    if before is None:
        return max_now  # pyarrow was imported inside the block: its pool was born there
    if max_before is not None and max_now > max_before:
        return max_now - before
    return max(before, now or 0) - before


def _untraced(reading: Reading) -> Reading:
    """A reading without its traced figure (``trace=False``: the block ignores tracemalloc)."""
    return Reading(reading.time, reading.rss, reading.rss_anon, None, reading.arrow, None, reading.children)


def waited_children_peak(mark: tuple[int | None, int], own_peak: int | None,
                         existing: frozenset[int]) -> int | None:
    """The peak of a child that started and ended inside a block, from the kernel's record.

    ``mark`` is ``(probes.children_hwm(), probes.forks())`` at the block's start, ``own_peak``
    this process's peak RSS during the block, ``existing`` the children alive at its start.
    A sampler reading live children misses one that lives shorter than its interval; the
    kernel's high-water mark of waited-for children does not, but it only ever rises, and it
    counts what a child shares with us (:func:`leakhunt.probes.children_hwm`). So a rise counts
    only when no child older than the block was reaped during it (it would be that child's),
    and what we could have lent the child is left out: a child that ran another program
    inherited at most our own mark, so its figure counts only above it; after a Python-level
    fork the child's pages include ours, so our peak is subtracted (a lower bound).
    """
    before, forks_before = mark
    after = probes.children_hwm()
    if before is None or after is None or after <= before:
        return None
    if existing and not existing <= _child_pids():
        return None  # an older child ended during the block: the rise may be its
    ours = max(v for v in (own_peak, probes.hwm(), 0) if v is not None)
    if probes.forks() > forks_before:
        own = after - ours
        return own if own > 0 else None
    return after if after > ours else None


def _child_pids() -> frozenset[int]:
    from leakhunt.attribution import _child_pids as pids

    return pids()


def confirm(measurement: Measurement, *, collect: bool = True) -> Measurement:
    """Read the end of a cheap measurement again after settling; the start stays as read.

    ``collect=False`` only hands freed memory back (``malloc_trim``, Arrow's pool) without a
    garbage collection: a full collection took 170 ms on pandas' test-suite heap, fine once to
    decide a budget, far too much to tidy a report's figures.
    """
    if collect:
        _settle()
    else:
        _trim()
    after = probes.read(children=measurement.after.children is not None)
    if measurement.before.traced is None and after.traced is not None:
        after = replace(after, traced=None)
    retention = None
    if measurement.after.rss is not None and after.rss is not None:
        retention = max(0, measurement.after.rss - after.rss)
    return replace(measurement, after=after, settled=True, allocator_retention=retention)


def after_decay(measurement: Measurement) -> Measurement:
    """The end of a settled measurement read again once an allocator that purges on a timer
    (polars' jemalloc, :func:`leakhunt.settle.wait_for_decay`) has had its time: what it gave
    back is allocator retention, not growth. Unchanged when no such allocator is loaded."""
    if not measurement.settled or not decay_seconds() or measurement.after.rss is None:
        return measurement
    wait_for_decay()
    resident, anon = probes.rss(), probes.rss_anon()
    if resident is None or resident >= measurement.after.rss:
        return measurement
    after = replace(measurement.after, rss=resident, rss_anon=anon)
    purged = measurement.after.rss - resident
    return replace(measurement, after=after, allocator_retention=(measurement.allocator_retention or 0) + purged)


#: Seconds between two readings of the children's PSS (each costs ~0.2 ms per child). A child
#: that ends between two readings is seen through the kernel's record (waited_children_peak).
CHILDREN_INTERVAL = 0.05


class _ChildrenSampler:
    """Sample the children's PSS in a thread: children come and go within a block."""

    def __init__(self, interval: float | None = None, exclude_pids: frozenset[int] = frozenset()) -> None:
        import threading

        self.interval = CHILDREN_INTERVAL if interval is None else interval
        self.exclude_pids = exclude_pids
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leakhunt-children", daemon=True)

    def _run(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self.interval):
                break

    def _sample(self) -> None:
        value = probes.children_memory(exclude_pids=self.exclude_pids)
        if value is not None and (self.peak is None or value > self.peak):
            self.peak = value

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int | None:
        self._stop.set()
        self._thread.join()
        self._sample()
        return self.peak


class MeasureHandle:
    """What ``with measure() as m`` gives: the figures of :class:`Measurement` after the block."""

    def __init__(self) -> None:
        self.measurement: Measurement | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        measurement = self.__dict__.get("measurement")
        if measurement is None:
            raise RuntimeError(f"the measurement is not ready: read m.{name} after the with block ends")
        return getattr(measurement, name)

    def __repr__(self) -> str:
        if self.measurement is None:
            return "<MeasureHandle (block still running)>"
        from leakhunt.units import format_size

        m = self.measurement
        return (f"<Measurement rss_growth={format_size(m.rss_growth)} peak={format_size(m.peak)} "
                f"traced_growth={format_size(m.traced_growth)} arrow_growth={format_size(m.arrow_growth)}>")


@contextmanager
def measure(
    *, settle: bool = True, trace: bool | None = None, children: bool = False, domains: bool | None = None
) -> Iterator[MeasureHandle]:
    """Measure the memory of a block::

        with measure() as m:
            work()
        m.rss_growth, m.peak, m.traced_growth, m.arrow_growth   # bytes or None

    The figures are taken even when the block raises.
    """
    measurer = Measurer(settle=settle, trace=trace, children=children, domains=domains)
    handle = MeasureHandle()
    measurer.start()
    try:
        yield handle
    finally:
        handle.measurement = measurer.stop()
