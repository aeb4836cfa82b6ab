"""Bring the process to a quiet state before a reading that decides something.

Settling is what makes two RSS readings comparable: garbage that only a collection frees is
collected, and memory that allocators keep after a free (glibc arenas, Arrow's pool) is handed
back to the OS. It costs milliseconds on a big heap, so callers use it only where a figure
decides an outcome.

One allocator cannot be asked: polars' own copy of jemalloc gives freed memory back on a timer
(its background thread, after ``dirty_decay_ms`` and ``muzzy_decay_ms``: ``polars.jemalloc_conf``,
500 and 1000 ms in polars 2.1). A join that freed 300 MiB is still resident for about a second
after it returns: nothing for half a second, then steps (measured: 336 MiB resident for 0.65 s
after a frame of 275 MiB was dropped, 61 MiB from 1.27 s on), and RSS cannot tell those pages
from live ones. Nothing can ask it to purge sooner without changing the user's allocator, so
where the end figure decides (a broken budget, what a run kept) it is read again after the
decay times (:func:`wait_for_decay`, :func:`leakhunt.measure.after_decay`).
"""

from __future__ import annotations

import collections
import ctypes
import gc
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

__all__ = ["SettleResult", "settle", "trim", "wait_for_decay", "decay_seconds", "malloc_trim", "release_arrow_pool", "freeze_heap", "refreeze_heap", "thaw_heap",
           "thawed"]


@dataclass(frozen=True)
class SettleResult:
    collected: int  # objects the collector found unreachable, over all passes
    passes: int
    trimmed: bool  # glibc malloc_trim ran
    arrow_released: bool  # pyarrow's default pool was asked to release unused memory


_trim: Callable[[int], Any] | None | bool = False  # False: not looked up yet


def malloc_trim() -> bool:
    """Call glibc's ``malloc_trim(0)``: return freed heap pages to the OS. False if absent."""
    global _trim
    if _trim is False:
        _trim = None
        if sys.platform.startswith("linux"):
            try:
                from leakhunt.probes import libc

                fn = libc().malloc_trim
                fn.argtypes = [ctypes.c_size_t]
                fn.restype = ctypes.c_int
                _trim = fn
            except (OSError, AttributeError):  # musl and others have no malloc_trim
                _trim = None
    if _trim is None:
        return False
    _trim(0)  # type: ignore[operator]
    return True


def release_arrow_pool() -> bool:
    """Ask pyarrow's default pool to give unused memory back, if pyarrow is imported."""
    pa = sys.modules.get("pyarrow")
    if pa is None:
        return False
    try:
        pa.default_memory_pool().release_unused()
        return True
    except Exception:
        return False


#: RSS is read every _DECAY_POLL s; once it has fallen, the wait ends when it fell less than
#: _DECAY_STILL bytes over the last _DECAY_QUIET s (the decay purges in steps, pauses between)
_DECAY_POLL = 0.05
_DECAY_QUIET = 0.5
_DECAY_STILL = 1024 * 1024


#: The jemalloc settings polars' allocator started with when leakhunt gave them for a recording
#: (``_RJEM_MALLOC_CONF``, :class:`leakhunt.native.AllocatorSwitch`); None: leakhunt gave none.
_polars_started_with: str | None = None


def polars_started_with(conf: str) -> None:
    """polars' jemalloc was started with ``conf`` (read once, when polars loads): the decay
    times of :func:`decay_seconds` are these from now on."""
    global _polars_started_with
    _polars_started_with = conf


def decay_seconds() -> float:
    """The longest a loaded allocator that gives memory back on a timer may keep freed memory:
    polars' jemalloc, dirty then muzzy decay (``polars.jemalloc_conf``, then what polars was
    started with: ``_RJEM_MALLOC_CONF``, which overrides it); 0 when polars is not loaded or
    purges at once."""
    pl = sys.modules.get("polars")
    if pl is None:
        return 0.0
    conf = getattr(pl, "jemalloc_conf", None)
    confs = [conf if isinstance(conf, str) else "", _polars_started_with or os.environ.get("_RJEM_MALLOC_CONF", "")]
    times: dict[str, int] = {}
    for text in confs:  # a later setting overrides an earlier one, as jemalloc reads them
        times.update((kind, int(ms)) for kind, ms in re.findall(r"(dirty|muzzy)_decay_ms:(-?\d+)", text))
    if not times:
        return 1.5  # a polars without the setting: its usual 500 + 1000 ms
    if any(ms < 0 for ms in times.values()):
        return 0.0  # never purges on a timer: nothing to wait for
    return sum(times.values()) / 1000


def wait_for_decay() -> float:
    """When an allocator that purges on a timer is loaded (:func:`decay_seconds`), wait for its
    purge: until RSS, once it has fallen, is still for half a second; at most the decay times
    and a quarter second. Returns the seconds waited (0: nothing to wait for)."""
    from leakhunt.probes import rss

    limit = decay_seconds()
    now = rss()
    if not limit or now is None:
        return 0.0
    limit += 0.25
    start = time.perf_counter()
    window = collections.deque([now], maxlen=round(_DECAY_QUIET / _DECAY_POLL) + 1)
    fell = False
    while time.perf_counter() - start < limit:
        time.sleep(_DECAY_POLL)
        window.append(rss())
        if window[-1] is None:
            break
        fell = fell or window[-2] - window[-1] >= _DECAY_STILL
        if fell and len(window) == window.maxlen and window[0] - window[-1] < _DECAY_STILL:
            break
    return time.perf_counter() - start


def trim() -> None:
    """Hand freed memory back to the OS without a garbage collection (sub-millisecond).

    Before a cheap reading: memory an allocator kept from earlier frees would otherwise be
    reused by the measured code, and its growth would read as zero.
    """
    release_arrow_pool()
    malloc_trim()


def settle(max_passes: int = 4) -> SettleResult:
    """Collect garbage until a pass frees nothing (at most ``max_passes``), then trim.

    Never imports pyarrow; never changes gc thresholds or whether gc is enabled.
    """
    if max_passes < 1:
        raise ValueError(f"max_passes must be >= 1, got {max_passes!r}")
    collected = 0
    passes = 0
    for passes in range(1, max_passes + 1):
        freed = gc.collect()
        collected += freed
        if freed == 0:
            break
    arrow_released = release_arrow_pool()
    trimmed = malloc_trim()
    return SettleResult(collected=collected, passes=passes, trimmed=trimmed, arrow_released=arrow_released)


# --------------------------------------------------------------------------------------
# freezing the heap that existed before a run


def freeze_heap() -> bool:
    """Move every object the collector tracks now into the permanent generation
    (``gc.freeze()``), so that a full collection afterwards walks only objects made later.

    On the heap of a pandas test suite a full collection took 64 ms, and 0.002 ms with that heap
    frozen (`python benchmarks/engine.py`): what makes settling per test affordable. Returns
    whether it froze: never when the collector is disabled or something is frozen already
    (someone else's freeze is theirs). Frozen garbage is collected after :func:`thaw_heap`.
    """
    global _FROZEN_BY_US
    if not gc.isenabled() or gc.get_freeze_count():
        return False
    gc.freeze()
    _FROZEN_BY_US = True
    return True


#: whether :func:`freeze_heap` froze the heap and :func:`thaw_heap` has not undone it yet
_FROZEN_BY_US = False


def something_frozen() -> bool:
    """Is any object in the permanent generation? ``gc.get_freeze_count()`` counts them one by
    one on Python 3.11 (2.8 ms on pandas' test heap, frozen), so under :func:`freeze_heap` it is
    not asked: a per-block question must stay cheap."""
    return _FROZEN_BY_US or bool(gc.get_freeze_count())


def refreeze_heap() -> None:
    """Between measured blocks, under one's own :func:`freeze_heap`: collect what was made since
    the last freeze, then freeze the survivors too.

    Without it every settle walks everything a long run made since it froze, and each
    collection grows with the run (1,055 budgeted tests of pandas' ``series.methods``: 23.4 s in
    pytest without it, 5.65 s with it; ``benchmarks/plugin.md``). The collection first keeps
    garbage out of the permanent generation (it would outlive the run)."""
    gc.collect()
    gc.freeze()


def thaw_heap() -> None:
    """Undo :func:`freeze_heap`: frozen objects are collected as usual again."""
    global _FROZEN_BY_US
    gc.unfreeze()
    _FROZEN_BY_US = False


@contextmanager
def thawed() -> Iterator[None]:
    """See the whole heap inside the block: frozen objects are invisible to
    ``gc.get_objects()`` and ``gc.get_referrers()``, which the retention search walks.

    A frozen heap is unfrozen for the block and frozen again after it; the objects frozen
    then are every object alive at that moment (the collector has no way to freeze only the
    former set).
    """
    if not gc.get_freeze_count():
        yield
        return
    gc.unfreeze()
    try:
        yield
    finally:
        gc.freeze()
