"""One owner of a measured block, from its start to its verdict.

A :class:`Block` chooses the meter its :class:`Policy` needs (cheap, exact, traced), measures the
block, holds it to its budget (calling it a second time where the rule in :mod:`leakhunt.judge`
needs one, traced when the first call was not, so that what keeps the memory can be shown),
hunts it when asked, gathers the explanation's evidence, and returns one
:class:`~leakhunt.judge.Judgement`. Every front end is a caller: the ``memory_budget`` decorator
and context manager, the pytest plugin (one block per test), ``leakhunt run`` (the script as one
block). None of them decides a verdict or edits a judgement.

:class:`SessionMeter` owns what spans many blocks of one process (a pytest session): the heap
frozen at the start so that settling walks only what later blocks made, the trims before cheap
blocks, and the session's own figures.

The user's block is called again only through ``again``, a callable the front end provides; an
``Exception`` from it is recorded, never raised (a ``BaseException`` such as a signal's passes).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

from leakhunt import defaults, probes
from leakhunt.budget import Budget, check
from leakhunt.caches import CacheMark, charge, filled
from leakhunt.caches import mark as mark_caches
from leakhunt.imports import ImportMeter
from leakhunt.judge import RETAINED, Evidence, Judgement, PeakEvidence, judge, standing, unjudged
from leakhunt.measure import Measurement, Measurer, after_decay, confirm
from leakhunt.settle import freeze_heap, refreeze_heap, settle, thaw_heap, trim
from leakhunt.tracing import TRACE_FRAMES

if TYPE_CHECKING:
    from leakhunt.attribution import Scope, Survivors
    from leakhunt.hunt import LeakVerdict

__all__ = ["Block", "HuntSettings", "Policy", "SessionMeter", "settle_listed"]


@dataclass(frozen=True)
class HuntSettings:
    """How a block is hunted: the per-call growth that counts as a leak, and the calls."""

    threshold: int = defaults.THRESHOLD
    repeat: int = defaults.REPEAT
    warmup: int = defaults.WARMUP


@dataclass(frozen=True)
class Policy:
    """What to do with a block.

    ``budget``: the limits it is held to; ``hunt``: repeat it and judge per-call growth;
    ``trace``: trace the block itself (its sites and survivors then explain a failure without a
    second call); ``rerun``: a failure may be checked and explained by calling the block again;
    ``children``: measure child processes too; ``exact``: settle both ends even without a
    budget; ``explain_kept``: explain what the block keeps even within its budget (when it kept
    at least ``explain_floor`` bytes beyond what its imports took);
    ``report_growth``: a cheaply measured block whose growth a report lists has it confirmed
    after a trim; ``peak_sites``: sample the allocations alive at the traced peak (by default
    when the budget limits the peak); ``meter_imports``: measure what the block's imports take
    (:class:`leakhunt.imports.ImportMeter`) when it may explain what it keeps, for the every-byte
    line's "modules and code loaded" (False: the caller measures them and passes them to
    :meth:`Block.finish`, as ``leakhunt run`` does).
    """

    budget: Budget | None = None
    hunt: HuntSettings | None = None
    trace: bool = False
    rerun: bool = True
    children: bool = False
    exact: bool = False
    explain: bool = True
    explain_kept: bool = False
    explain_floor: int = 0
    report_growth: bool = False
    trace_frames: int = TRACE_FRAMES
    # sample the allocations alive at the peak (None: when a peak limit asks); a callable: the peak
    # source to make for a block with a peak limit, traced or not (leakhunt.native.NativePeakSource)
    peak_sites: bool | Callable[[], Any] | None = None
    front: str = "api"  # whose options the explanation's advice names: pytest, run or api (leakhunt.hints)
    meter_imports: bool = True

    @classmethod
    def of(cls, budget: Budget | None, *, hunt_repeat: int | None = None,
           threshold: int = defaults.THRESHOLD, **kwargs: Any) -> Policy:
        """The policy of a budget (its ``leak=`` asks for a hunt) and of a run-wide hunt
        (``hunt_repeat`` measured calls at ``threshold``; a budget's own ``leak=`` wins)."""
        hunt = None
        if budget is not None and budget.leak is not None:
            hunt = HuntSettings(budget.leak, budget.repeat, budget.warmup)
        elif hunt_repeat:
            hunt = HuntSettings(threshold, hunt_repeat, defaults.WARMUP)
        return cls(budget=budget, hunt=hunt, **kwargs)

    @property
    def cheap(self) -> bool:
        """No limit to hold the block to, nothing to trace or settle: two readings and the peak."""
        return not (self.budget is not None and self.budget.limits()) and not (self.exact or self.trace)

    def measurer(self) -> Measurer:
        """The meter this policy needs."""
        budget = self.budget
        children = self.children or (budget is not None and budget.children is not None)
        if self.cheap:
            # Cheap by design: no settling; tracemalloc only if already running. A trim, when
            # due, is the session's (SessionMeter.before_cheap_block).
            return Measurer(settle=False, trace=None, children=children, domains=False, trim=False)
        trace = self.trace or (budget is not None and budget.traced is not None)
        if trace:
            peak_sites = self.peak_sites if self.peak_sites is not None else (
                budget is not None and budget.peak is not None)
            return Measurer(settle=True, trace=True, children=children, domains=True, attribute=True,
                            peak_sites=peak_sites, trace_frames=self.trace_frames, baseline=self.explain_kept)
        native = callable(self.peak_sites) and budget is not None and budget.peak is not None
        # explaining what an untraced block keeps: its data holders told from older ones
        return Measurer.exact(trace=False, children=children, peak_sites=self.peak_sites if native else False,
                              baseline=self.explain_kept)


class Block:
    """A measured block: ``start()``, the user's code, ``stop()``, then ``finish()`` for the
    judgement (or :meth:`call` for all of it around one function call)."""

    def __init__(self, title: str, policy: Policy | None = None, *, measurement: Measurement | None = None) -> None:
        """``measurement``: a block measured elsewhere (recorded figures), to be judged."""
        self.title = title
        self.policy = policy if policy is not None else Policy()
        self.measurement: Measurement | None = measurement
        self.concurrent: tuple[str, ...] = ()  # threads of other blocks that ran at the same time
        self._measurer: Measurer | None = None
        self._caches: CacheMark | None = None  # how full the user's caches were at the start
        self._imports: ImportMeter | None = None  # what the block's imports take

    # ------------------------------------------------------------------ measuring
    def start(self) -> Block:
        _ACTIVE.enter(self)
        try:
            if _retained_limit(self.policy):
                self._caches = mark_caches()  # the user's caches the block fills are its kept memory
            if self.policy.meter_imports and (_retained_limit(self.policy) or self.policy.explain_kept):
                self._imports = ImportMeter().install()
            self._measurer = self.policy.measurer().start()
        except BaseException:
            self._remove_meter()
            _ACTIVE.leave(self)
            raise
        return self

    @property
    def started(self) -> bool:
        return self._measurer is not None

    @property
    def scope(self) -> Scope | None:
        return self._measurer.scope if self._measurer is not None else None

    def stop(self) -> Measurement:
        if self._measurer is None:
            raise RuntimeError(f"{self.title}: Block.stop() called before start()")
        if self.measurement is None:
            try:
                measurement = self._measurer.stop()
            finally:
                self._remove_meter()
                self.concurrent = _ACTIVE.leave(self)
            if self.policy.cheap and self.policy.report_growth and _listed(measurement.rss_growth):
                measurement = confirm(measurement, collect=False)
            elif _decides_kept(self.policy, measurement):
                measurement = after_decay(measurement)  # polars' allocator purges on a timer
            if self.concurrent:
                # Another block ran at the same time in another thread: resident memory is the
                # process's, and what one thread made cannot be told from what the other made.
                # Fail safe: nothing is left out as "another thread's", the budget holds the total.
                measurement = replace(measurement, excluded=0)
            self.measurement = measurement
        return self.measurement

    def _remove_meter(self) -> None:
        if self._imports is not None:
            self._imports.remove()

    def close(self) -> None:
        """End what the measurement left open for explaining (its trace); idempotent."""
        if self._measurer is not None:
            self._measurer.close()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, Judgement]:
        """Measure one call of ``fn`` and judge it (calling it again where the policy needs it).
        An exception from the call propagates, unjudged."""
        self.start()
        try:
            result = fn(*args, **kwargs)
        except BaseException:
            self.stop()
            self.close()
            raise
        self.stop()
        return result, self.finish(again=lambda: fn(*args, **kwargs))

    # ------------------------------------------------------------------ judging
    def finish(self, *, outcome: str = "passed", again: Callable[[], Any] | None = None,
               named: dict[str, Any] | None = None, peak: Any = None, imports: int | None = None) -> Judgement:
        """The judgement of the block whose body ended with ``outcome`` (``passed``, or how it
        failed). ``again`` calls the body once more (to confirm a failure, explain it, hunt);
        ``named`` objects count as roots (a test's fixture values); ``peak`` is a peak sampler
        of the caller's and ``imports`` the anonymous memory the block's imports took
        (``leakhunt run``'s :class:`~leakhunt.imports.ImportMeter`)."""
        if imports is None and self._imports is not None and self._imports.modules:
            imports = self._imports.bytes
        try:
            measurement = self.measurement
            if measurement is None or outcome != "passed":
                verdict = unjudged(passed=outcome == "passed", measured=measurement is not None,
                                   hunted=self.policy.hunt is not None)
                return Judgement(self.title, verdict, measurement=measurement, budget=self.policy.budget)
            if self.policy.explain_kept and not _kept_enough(measurement, imports, self.policy.explain_floor):
                self.policy = replace(self.policy, explain_kept=False)  # too little kept to search for
            evidence = replace(self._evidence(measurement, again, named, peak), front=self.policy.front)
            if self._measurer is not None:
                measurement = self.measurement = self._measurer.completed(measurement)
            if imports is not None:
                evidence = replace(evidence, imports=imports)
            verdict = None
            if self.policy.hunt is not None and not standing(measurement, self.policy.budget, evidence)[0]:
                verdict, error = self._hunt(again)
                evidence = replace(evidence, hunt_error=error)
            return judge(measurement, self.policy.budget, verdict, title=self.title, evidence=evidence,
                         explain=self.policy.explain)
        finally:
            self.close()

    def _hunt(self, again: Callable[[], Any] | None) -> tuple[LeakVerdict | None, str | None]:
        from leakhunt.hunt import hunt

        settings = self.policy.hunt
        assert settings is not None
        if again is None or not self.policy.rerun:
            return None, "not hunted: the block cannot be called again"
        try:
            # the block's own call was the first warm-up call; traced: pymalloc hides a
            # small-object leak in RSS for many calls (its arenas are reused first); attribute:
            # a confirmed leak comes with what the confirmation's calls left alive
            return hunt(again, threshold=settings.threshold, repeat=settings.repeat,
                        warmup=max(0, settings.warmup - 1), trace=True, attribute=True), None
        except Exception as exc:  # a failing repetition is never called a leak
            return None, f"not hunted: repeating it raised {_describe(exc)}"

    def _evidence(self, measurement: Measurement, again: Callable[[], Any] | None,
                  named: dict[str, Any] | None, peak: Any) -> Evidence:
        """Everything the judgement weighs beside the first measurement (the rule is
        :func:`leakhunt.judge.standing`'s): what the first call left alive under the user's roots
        decides when it holds the excess; otherwise a second call does - traced when the first
        call was not, so that it also explains."""
        policy = self.policy
        violations = check(measurement, policy.budget) if policy.budget is not None else []
        if not violations and not policy.explain_kept:
            return Evidence()
        figures = {v.figure for v in violations}
        excess = max((v.value - v.limit for v in violations if v.figure in RETAINED), default=0)
        found = self._first_call(excess > 0 or policy.explain_kept, named, peak, figures)
        first_own = found.attributable
        first_imports = found.survivors.imports if found.survivors is not None else None
        if self._second_call_needed(found, violations, excess, again):
            # The second call is traced whatever the first was (the rule sees the same evidence
            # in every mode): it decides what the first call's survivors did not, and what it
            # made explains (with the lines that allocated it, which an untraced call lacks).
            second = self._traced_call(again, named, peak_sites=_wants_peak_sites(found, figures),  # type: ignore[arg-type]
                                       retained=excess > 0 or policy.explain_kept)
            second.first_own = first_own
            if found.peak_seen:
                second.peak = found.peak  # the first call's own peak, not the second's snapshot
            if second.second is None and found.survivors is not None:
                found.notes.extend(second.notes)  # the second call failed: the first call's survivors explain
            else:
                # what the first call put into the user's caches is still the explanation's
                second.survivors = charge(second.survivors, found.cache_roots, counted=False)
                found = second
        if self.concurrent:
            found.notes.insert(0, f"other blocks ran at the same time (in {', '.join(self.concurrent)}): the figures "
                                  f"are the whole process's, which cannot be split between them, so the budget holds "
                                  f"them all (and the block was not called again)")
        return replace(found.evidence(first_own, policy.explain_kept), first_imports=first_imports)

    def _first_call(self, retained: bool, named: dict[str, Any] | None, peak: Any, figures: set[str]) -> _Found:
        """What the first call left alive (when a retained figure is explained) and its peak."""
        measurer = self._measurer
        scope = measurer.scope if measurer is not None else None
        if peak is None and measurer is not None:
            peak = measurer.peak
        traced_first = scope is not None and scope.fresh  # before the survivors' search stops the trace
        source = peak
        peak, peak_seen = _first_peak(peak, figures, traced_first)
        found = _Found.of(scope, named, peak=peak) if retained and scope is not None else _Found(peak=peak)
        if retained and not found.sites:
            # an untraced block whose caller recorded it (leakhunt run's memray capture): the
            # lines whose allocations were alive at its end
            found.sites = tuple(getattr(source, "end_sites", ()))
        if retained and self._caches is not None:
            found.cache_roots = filled(self._caches, scope.created_here if scope is not None else None)
            found.survivors = charge(found.survivors, found.cache_roots, counted=traced_first)
        found.traced_first = traced_first
        found.peak_seen = peak_seen
        return found

    def _second_call_needed(self, found: _Found, violations: list[Any], excess: int,
                            again: Callable[[], Any] | None) -> bool:
        """A broken limit that the first call does not settle: its survivors do not hold the
        excess, or an untraced first call cannot show where the memory was allocated (or what
        was alive at the peak)."""
        if again is None or not self.policy.rerun or not violations or self.concurrent:
            return False
        decided = found.attributable is not None and excess and found.attributable >= excess
        peak_sites = _wants_peak_sites(found, {v.figure for v in violations})
        if decided and sum(r.size for r in found.cache_roots) >= excess:
            return peak_sites  # the user's caches hold it: a second call would only hit them, making nothing
        return bool((not decided or not found.traced_first) and (excess or peak_sites))

    def _traced_call(self, again: Callable[[], Any], named: dict[str, Any] | None, *, peak_sites: bool,
                     retained: bool) -> _Found:
        """Call the block again, traced: its figures, and what it left alive."""
        budget = self.policy.budget
        measurer = Measurer.exact(trace=True, peak_sites=peak_sites,
                                  children=self.policy.children or (budget is not None and budget.children is not None))
        self.close()
        measurer.start()
        try:
            again()
        except Exception as exc:
            measurer.stop()
            measurer.close()
            return _Found(notes=[f"calling the block a second time, traced, to explain it failed: {_describe(exc)}"])
        except BaseException:
            measurer.stop()
            measurer.close()
            raise
        try:
            second = measurer.stop()
            looked_for = "what keeps the memory" if retained else "what was alive at its peak"
            found = _Found.of(measurer.scope, named, peak=measurer.peak) if retained else _Found(peak=measurer.peak)
            found.second = measurer.completed(second)
            found.second_traced = found.traced = True
            found.notes.insert(0, f"leakhunt called it a second time, traced, to find {looked_for} "
                                  f"(shown: what that call made)")
            return found
        finally:
            measurer.close()


def _retained_limit(policy: Policy) -> bool:
    """A limit on memory the block keeps (a cache it fills is such memory: :mod:`leakhunt.caches`)."""
    return not policy.cheap and policy.budget is not None and any(f in RETAINED for f in policy.budget.limits())


def _wants_peak_sites(found: _Found, figures: set[str]) -> bool:
    """A broken peak that the first call's own peak source did not explain."""
    return "peak" in figures and not ((found.traced_first and found.peak is not None) or found.peak_seen)


def _first_peak(peak: Any, figures: set[str], traced_first: bool) -> tuple[Any, bool]:
    """(the first call's peak source, for a broken peak only: a source may cost to read, as
    memray's capture does; whether it saw that call's own peak untraced - leakhunt.native's -
    which then explains a broken peak without a second call)."""
    if "peak" not in figures or peak is None:
        return None, False
    return peak, not traced_first and bool(peak.sites)


class _Found:
    """What was found about a block's memory: its survivors, sites and types, its peak."""

    def __init__(self, *, peak: Any = None, notes: list[str] | None = None) -> None:
        self.peak = peak
        self.notes: list[str] = notes or []
        self.second: Measurement | None = None
        self.second_traced = False
        self.traced_first = False  # the first call was traced freshly
        self.peak_seen = False  # the first call's peak source saw its own peak (leakhunt.native)
        self.first_own: int | None = None
        self.cache_roots: tuple[Any, ...] = ()  # the user's caches the first call filled (leakhunt.caches)
        self.survivors: Survivors | None = None
        self.sites: tuple[Any, ...] = ()
        self.types: tuple[tuple[str, int], ...] = ()
        self.user_trace = False
        self.traced = False
        self.threads: tuple[str, ...] = ()

    @property
    def attributable(self) -> int | None:
        """What the user's roots keep, counted alike traced or not; None: not looked for."""
        return None if self.survivors is None else self.survivors.attributable

    def evidence(self, first_own: int | None, explain_kept: bool) -> Evidence:
        return Evidence(second=self.second, second_traced=self.second_traced, survivors=self.survivors,
                        sites=self.sites, user_trace=self.user_trace, traced=self.traced, types=self.types,
                        peak=PeakEvidence.of(self.peak), threads=self.threads, notes=tuple(self.notes),
                        explain_kept=explain_kept,
                        first_own=first_own if self.first_own is None else self.first_own)

    @classmethod
    def of(cls, scope: Scope | None, named: dict[str, Any] | None, *, peak: Any = None) -> _Found:
        """Survivors, sites and types of the block ``scope`` watched (while its trace runs)."""
        found = cls(peak=peak)
        if scope is None:
            return found
        from leakhunt.attribution import survivors

        # the survivors' search reads what needs the scope's trace first (the sites among it),
        # then stops the trace, and the rest runs untraced
        found.traced = scope.fresh
        try:
            found.survivors = survivors(scope, named=named, sites=True)
        except Exception as exc:  # a walk that went wrong must never hide the failure itself
            found.survivors = None
            found.notes.append(f"what keeps the memory could not be found: {_describe(exc)}")
        found.sites = found.survivors.sites if found.survivors is not None else ()
        found.user_trace = bool(found.sites) and not found.traced
        found.threads = tuple(scope.active_threads())
        found.types = found.survivors.types if found.survivors is not None else ()
        return found


def _kept_enough(measurement: Measurement, imports: int | None, floor: int) -> bool:
    """Did the block keep at least ``floor`` bytes beyond what its imports took?"""
    kept = measurement.figure("rss")
    return not floor or kept is None or kept - (imports or 0) >= floor


def _decides_kept(policy: Policy, measurement: Measurement) -> bool:
    """Does the block's kept memory decide or get explained: a broken retained limit, or a run
    explaining what it kept?"""
    if policy.explain_kept:
        return True
    budget = policy.budget
    return budget is not None and any(v.figure in RETAINED for v in check(measurement, budget))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _listed(growth: int | None) -> bool:
    """A cheap growth a report lists (it is then confirmed after a trim)."""
    return growth is not None and growth >= defaults.STAYED_UP


def settle_listed(sample: probes.Sample) -> tuple[probes.Sample | Measurement, str | None, int | None]:
    """A :class:`~leakhunt.probes.QuickMeter` sample as a report keeps it: ``(figures, note, RSS
    at its end)``; a growth the report lists is confirmed after a trim (``figures`` is then a
    settled :class:`~leakhunt.measure.Measurement`)."""
    before, after = sample[probes.SAMPLE_RSS_BEFORE], sample[probes.SAMPLE_RSS_AFTER]
    if before is None or after is None or not _listed(after - before):
        return sample, None, after
    from leakhunt.measure import from_sample

    try:
        return confirm(from_sample(sample), collect=False), None, after
    except Exception as exc:  # never turn a measurement problem into a crash
        return sample, f"leakhunt could not confirm the growth: {_describe(exc)}", after


class _Active:
    """The blocks being measured now, and which ones overlapped in time (in other threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocks: dict[int, tuple[Block, str, set[str]]] = {}

    def enter(self, block: Block) -> None:
        name = threading.current_thread().name
        with self._lock:
            others = {entry[1] for entry in self._blocks.values() if entry[1] != name}
            for other, other_name, seen in self._blocks.values():
                if other_name != name:
                    seen.add(name)
            self._blocks[id(block)] = (block, name, others)

    def leave(self, block: Block) -> tuple[str, ...]:
        with self._lock:
            entry = self._blocks.pop(id(block), None)
        return tuple(sorted(entry[2])) if entry is not None else ()


_ACTIVE = _Active()


# --------------------------------------------------------------------------------------
# the session: what spans many blocks of one process


class SessionMeter:
    """The process over a session of many blocks (a pytest session).

    ``settling``: blocks will settle (budgets, hunts), so the heap the session starts with is
    frozen (a full collection then walks only what the session made) and every settled block's
    survivors are frozen after it (:meth:`after_settled_block`). Before a cheap block,
    :meth:`before_cheap_block` hands freed memory back to the system when RSS rose since the
    last trim. ``sample_peaks``: the kernel's high-water mark is never reset (a thread samples).
    """

    def __init__(self, *, settling: bool, sample_peaks: bool = False, trace: bool = False) -> None:
        self.settling = settling
        self.trims = 0  # trims before cheap blocks (benchmarks read it)
        self.hwm_restored: bool | None = None
        self._sample_peaks = sample_peaks
        self._hwm_allowed: bool | None = None
        self._frozen = False
        self._trace_asked = trace
        self._trace: Any = None
        self._start: int | None = None
        self._rss_after_trim: int | None = None
        self._window: probes.PeakWindow | None = None

    def start(self) -> SessionMeter:
        if self._sample_peaks:
            self._hwm_allowed = probes.allow_hwm_reset(False)
        # Budgeted blocks settle (a full collection) before and after; hunts after every call.
        # A full collection walks the whole heap: 64 ms on pandas' test suite. The heap that
        # exists now is frozen, so a collection walks only what the session made; it is thawed
        # at the end, and for a moment whenever an explanation searches the heap.
        self._frozen = self.settling and freeze_heap()
        if self._trace_asked:
            from leakhunt import tracing

            self._trace = tracing.start()  # a trace of the user's is left alone
        # No collection here (it can take 100+ ms on a big heap); the end collects once.
        trim()
        self._start = self._rss_after_trim = probes.rss()
        self._window = probes.PeakWindow().open()
        return self

    @property
    def started(self) -> bool:
        return self._window is not None

    def before_cheap_block(self) -> None:
        """Before a cheaply measured block: hand freed memory back to the system if RSS rose
        since the last trim.

        Without a trim a block reuses memory glibc kept from earlier frees, and a retained
        leak reads as no growth (the casebook's slice cases: 122 MiB kept, 0 B read). But a
        trim walks the whole heap, and there is something to hand back only if RSS rose since
        the last trim: freed memory an allocator keeps was resident, so it raised RSS when
        allocated."""
        rss = probes.rss()
        if rss is not None and not self.rose_since_trim(rss):
            return
        self.trim_now()

    def rose_since_trim(self, rss: int) -> bool:
        """Whether RSS (read just now) rose :data:`leakhunt.defaults.TRIM_AFTER` or more since
        the last trim; a lower reading becomes the level to rise from."""
        level = self._rss_after_trim
        if level is None or rss - level >= defaults.TRIM_AFTER:
            return True
        if rss < level:
            self._rss_after_trim = rss
        return False

    def trim_now(self) -> None:
        trim()
        self.trims += 1
        self._rss_after_trim = probes.rss()

    def after_settled_block(self) -> None:
        """After a settled block (a budget, a hunt): freeze what it left alive, so that the next
        block's settling walks only what that block makes."""
        if self._frozen:
            refreeze_heap()

    def finish(self) -> tuple[int | None, int | None, int | None]:
        """End the session: ``(start RSS, end RSS, peak RSS)``; the kernel's mark is restored
        and the heap thawed. Idempotent: a second call returns ``(None, None, None)``."""
        window, self._window = self._window, None
        if window is None:
            return None, None, None
        peak = window.close()
        if self._hwm_allowed is not None:
            probes.allow_hwm_reset(self._hwm_allowed)
            self._hwm_allowed = None
        else:  # VmHWM, ru_maxrss and /usr/bin/time read the true peak again
            self.hwm_restored = probes.restore_hwm()
        if self._frozen:
            # The session's garbage is collected while the heap of its start is still frozen: a
            # collection walks only what the session made.
            settle(max_passes=1)
            self.release()
        else:
            # A session that only reports is not collected: a full collection walks the whole
            # heap, which the cheap path pays nowhere else. Freed memory is handed back.
            trim()
        self._stop_trace()
        return self._start, probes.rss(), peak

    def release(self) -> None:
        """Thaw the heap and stop the session's trace (a session that never finished)."""
        if self._frozen:
            thaw_heap()
            self._frozen = False
        self._stop_trace()

    def _stop_trace(self) -> None:
        if self._trace is not None:
            self._trace.stop()
            self._trace = None
