"""Free memory the native allocators keep resident: a named place of the every-byte accounting.

Settling (:mod:`leakhunt.settle`) hands back what the allocators agree to give back; some freed
memory stays resident anyway, and no object holds it. Two allocators keep it where it can be
measured, each as *resident bytes of its own mappings minus the bytes it has allocated*:

* **glibc malloc, every arena**: the main arena (the ``[heap]`` mapping) and the arenas of the
  threads (Arrow's, polars', numpy's workers allocate from per-thread arenas, each in 64 MiB
  heaps of its own). ``malloc_trim(0)`` gives back only whole free pages; what sits among live
  chunks, and memory a thread's arena got back after the trim ran, stays. In use: glibc's
  ``mallinfo2().uordblks`` (every arena; chunks mapped on their own are not in these mappings);
  resident: ``/proc/self/smaps``. A thread's heap is told by its address (aligned to the heap
  size) and by glibc's ``heap_info`` header at its start, which must point at an arena.
* **Arrow's pool** when it is mimalloc or jemalloc (its default): the mapping that holds the
  pool's allocations (found with one 64-byte allocation, freed at once) resident, minus
  ``bytes_allocated()``. After ``release_unused()`` mimalloc can still hold pages resident
  that hold no allocation (freed ones not yet purged; the rest of a page it touched for a small
  allocation): benchmarks/scripts/pandas_arrow_parquet.py left 7.4 MiB so, with nothing
  allocated (benchmarks/exit_mappings.py).
  With ``ARROW_DEFAULT_MEMORY_POOL=system`` (as under ``--trace=native``) Arrow allocates from
  malloc's arenas, counted above.

What this cannot see: polars' jemalloc, linked into polars without its statistics (nothing says
which of its pages are allocated); pymalloc's free memory is a place of its own
(:func:`leakhunt.probes.pymalloc_free`). Reading costs a pass over ``/proc/self/smaps``
(milliseconds with pandas, Arrow and polars loaded): only where kept memory is explained.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["MallocTicker", "NativeFree", "free_total", "kept", "mallinfo", "native_free"]

#: glibc's largest heap of a thread's arena, on 64-bit (HEAP_MAX_SIZE = 2 * 4 * 1024 * 1024 *
#: sizeof(long)); every such heap starts at a multiple of it.
HEAP_MAX = 64 * 1024 * 1024
_WORD = ctypes.sizeof(ctypes.c_void_p)
_HEX = frozenset(b"0123456789abcdef")


@dataclass(frozen=True)
class NativeFree:
    """Resident bytes the native allocators hold free, each ``None`` where it cannot be read."""

    malloc: int | None  # glibc malloc, every arena: resident in its heaps beyond what is in use
    arrow_pool: int  # Arrow's pool (mimalloc, jemalloc): resident beyond bytes_allocated

    @property
    def total(self) -> int | None:
        return None if self.malloc is None else self.malloc + self.arrow_pool


@dataclass(frozen=True)
class _Mapping:
    start: int
    end: int
    perms: str
    name: str
    rss: int


def native_free() -> NativeFree | None:
    """The resident free memory of the native allocators now; ``None`` without /proc."""
    pool = _arrow_pool()  # first: its probe allocation must be in the mappings read
    mappings = _smaps()
    if mappings is None:
        return None
    return NativeFree(malloc=_malloc_free(mappings), arrow_pool=_arrow_pool_free(pool, mappings))


def free_total() -> int | None:
    """All of :func:`native_free` in one figure (``None`` where malloc's cannot be read)."""
    reading = native_free()
    return None if reading is None else reading.total


def kept(after: int | None, before: int | None) -> int | None:
    """What the allocators came to hold free between two readings (never below zero)."""
    return None if after is None or before is None else max(0, after - before)


def _smaps() -> list[_Mapping] | None:
    mappings: list[_Mapping] = []
    head: list[bytes] | None = None
    try:
        with open("/proc/self/smaps", "rb") as f:
            for line in f:  # a line at a time: the whole text is a megabyte with Arrow loaded
                if line.startswith(b"Rss:"):
                    if head is not None:
                        start, end = (int(x, 16) for x in head[0].split(b"-"))
                        name = head[5].decode(errors="replace") if len(head) > 5 else ""
                        mappings.append(_Mapping(start, end, head[1].decode(), name, int(line.split()[1]) * 1024))
                    head = None
                elif line[0] in _HEX and b"-" in line[:20]:
                    head = line.split()
    except OSError:
        return None
    return mappings


# --------------------------------------------------------------------------------------
# glibc malloc


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


_MALLINFO: list[Any] = []  # [mallinfo2] or [None] off glibc (or before 2.33)


def mallinfo() -> _MallInfo2 | None:
    """glibc's ``mallinfo2()`` (every arena), ``None`` off glibc or before glibc 2.33."""
    if not _MALLINFO:
        try:
            from leakhunt.probes import libc

            function = libc().mallinfo2
            function.restype = _MallInfo2
            _MALLINFO.append(function)
        except (OSError, AttributeError):
            _MALLINFO.append(None)
    return None if _MALLINFO[0] is None else _MALLINFO[0]()


def _malloc_free(mappings: list[_Mapping]) -> int | None:
    """Resident bytes of malloc's heaps (main and threads' arenas) beyond the bytes in use."""
    info = mallinfo()
    if info is None:
        return None
    heaps = [m for m in mappings if m.name == "[heap]"]
    heaps += _thread_heaps(mappings)
    # In-use chunks a program never wrote are not resident: the difference is then short of the
    # free memory, never above it.
    return max(0, sum(m.rss for m in heaps) - int(info.uordblks))


def _thread_heaps(mappings: list[_Mapping]) -> list[_Mapping]:
    """The heaps of the threads' arenas: anonymous read-write mappings at a multiple of
    HEAP_MAX whose first words are glibc's ``heap_info`` (``ar_ptr``, ``prev``, ``size``,
    ``mprotect_size``): an arena's first heap holds the arena right after its header and has
    no previous heap; a later heap points at the arena of a first heap and at a heap found."""
    headers = _heap_headers([m for m in mappings if not m.name and m.start % HEAP_MAX == 0
                             and m.perms.startswith("rw") and m.end - m.start <= HEAP_MAX])
    arenas = {ar_ptr for m, (ar_ptr, prev) in headers.items() if prev == 0 and m.start < ar_ptr < m.start + 128}
    found = {m.start: m for m, (ar_ptr, prev) in headers.items() if prev == 0 and ar_ptr in arenas}
    grew = True
    while grew:  # an arena's heaps chain back to its first one
        later = {m.start: m for m, (ar_ptr, prev) in headers.items()
                 if m.start not in found and prev in found and ar_ptr in arenas}
        found.update(later)
        grew = bool(later)
    return list(found.values())


def _heap_headers(candidates: list[_Mapping]) -> dict[_Mapping, tuple[int, int]]:
    """``{mapping: (ar_ptr, prev)}`` of the candidates whose header's sizes fit a heap. Read
    through /proc/self/mem, not by address: a mapping another thread unmaps meanwhile is an
    error to read, not a crash."""
    if not candidates:
        return {}
    try:
        memory = os.open("/proc/self/mem", os.O_RDONLY)
    except OSError:
        return {}
    headers = {}
    try:
        for m in candidates:
            try:
                header = os.pread(memory, 4 * _WORD, m.start)
            except OSError:
                continue
            if len(header) < 4 * _WORD:
                continue
            ar_ptr, prev, size, protected = struct.unpack("4N", header)
            if ar_ptr and 0 < size <= protected <= min(HEAP_MAX, m.end - m.start + 4096):
                headers[m] = (ar_ptr, prev)
    finally:
        os.close(memory)
    return headers


# --------------------------------------------------------------------------------------
# Arrow's pool


def _arrow_pool() -> tuple[int, int] | None:
    """``(address in the pool's mapping, bytes allocated)`` of Arrow's pool when it is an
    allocator of its own (mimalloc, jemalloc) that has allocated before; ``None`` otherwise
    (the system allocator's memory is malloc's; a pool never used has nothing to keep, and
    leakhunt does not make it reserve its arena)."""
    pa = sys.modules.get("pyarrow")
    if pa is None:
        return None
    try:
        pool = pa.default_memory_pool()
        if pool.backend_name not in ("mimalloc", "jemalloc") or not pool.max_memory():
            return None
        address = pa.allocate_buffer(64, memory_pool=pool).address  # freed at once
        return address, pool.bytes_allocated()
    except Exception:  # noqa: BLE001  (a pyarrow without these: not readable)
        return None


def _arrow_pool_free(pool: tuple[int, int] | None, mappings: list[_Mapping]) -> int:
    """Resident bytes of the mapping Arrow's pool allocates from, beyond its allocations."""
    if pool is None:
        return 0
    address, allocated = pool
    home = next((m for m in mappings if m.start <= address < m.end), None)
    return 0 if home is None else max(0, home.rss - allocated)


# --------------------------------------------------------------------------------------
# at every tick: malloc's resident free memory, without smaps


class MallocTicker:
    """Resident free memory of malloc's heaps, cheap enough to read every 10 ms while a script
    runs (the high-water mark is one of those moments; :class:`leakhunt.native.LineTicks`).

    smaps takes tens of milliseconds; here the heaps are found in ``/proc/self/maps`` (and by
    their ``heap_info``) only when what the threads' arenas took from the system changes
    (``mallinfo2().arena`` beyond the main arena's break), at most every :attr:`REFIND`
    seconds, and each read counts their resident pages with ``mincore(2)``: the
    main arena from its start to the current break (``sbrk(0)``), each thread's heap whole.
    Minus the bytes in use, as :func:`native_free` does; a heap made since the last search is
    missed until the next (short, never over)."""

    #: Seconds between two searches of the mappings (a few thousand lines of /proc/self/maps to
    #: parse in a heap of millions of objects: pymalloc's arenas are mappings of their own).
    REFIND = 1.0
    #: ... and when the threads' arenas grew by more than _UNKNOWN since (a new heap, maybe).
    SOON = 0.05

    def __init__(self) -> None:
        self._libc: Any = None
        self._heaps: list[tuple[int, int]] = []  # (start, length) of the threads' heaps
        self._brk_start: int | None = None
        self._arena = -1
        self._found_at = -1e9
        self._vector = bytearray(0)

    def read(self) -> int | None:
        """Resident bytes malloc's heaps hold beyond the bytes in use; ``None`` off glibc."""
        info = mallinfo()
        if info is None or not self._ready():
            return None
        brk = self._libc.sbrk(0)
        # what the threads' arenas took from the system (all arenas but the main one's break)
        threads = info.arena - (brk - self._brk_start if self._brk_start is not None else 0)
        now = time.perf_counter()
        # the threads' arenas grew since the last search (a new heap, maybe): searched again
        # soon; any other change, at most every REFIND seconds
        unknown = threads - self._arena > _UNKNOWN
        if threads != self._arena and now - self._found_at >= (self.SOON if unknown else self.REFIND):
            self._find()
            self._arena, self._found_at = threads, now
        resident = 0
        if self._brk_start is not None:
            resident += self._resident(self._brk_start, brk - self._brk_start)
        for start, length in self._heaps:
            resident += self._resident(start, length)
        return max(0, resident - int(info.uordblks))

    def _ready(self) -> bool:
        if self._libc is None:
            try:
                from leakhunt.probes import libc as c_library

                libc = c_library()
                libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
                libc.sbrk.argtypes, libc.sbrk.restype = [ctypes.c_ssize_t], ctypes.c_void_p
                self._libc = libc
            except (OSError, AttributeError):
                self._libc = False
        return bool(self._libc)

    def _find(self) -> None:
        mappings = _maps()
        if mappings is None:
            return
        self._brk_start = next((m.start for m in mappings if m.name == "[heap]"), None)
        self._heaps = [(m.start, _heap_span(m, mappings)) for m in _thread_heaps(mappings)]

    def _resident(self, start: int, length: int) -> int:
        """Resident bytes of [start, start + length) (0 where it is no longer mapped)."""
        pages = (length + _PAGE - 1) // _PAGE
        if pages <= 0:
            return 0
        if len(self._vector) < pages:
            self._vector = bytearray(pages)
        vector = (ctypes.c_char * len(self._vector)).from_buffer(self._vector)
        if self._libc.mincore(start, pages * _PAGE, vector) != 0:
            return 0  # unmapped since it was found (ENOMEM)
        del vector
        return self._vector.count(1, 0, pages) * _PAGE  # counted in place: no copy of the vector


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: How much the threads' arenas may grow before the heaps are searched again soon.
_UNKNOWN = 1 << 20


def _heap_span(heap: _Mapping, mappings: list[_Mapping]) -> int:
    """A thread's heap: its read-write part and the reserved (PROT_NONE) rest, up to HEAP_MAX."""
    rest = next((m for m in mappings if m.start == heap.end and m.perms.startswith("---")), None)
    end = heap.end if rest is None else min(rest.end, heap.start + HEAP_MAX)
    return end - heap.start


def _maps() -> list[_Mapping] | None:
    """The mappings without their sizes in pages (``/proc/self/maps``: no page walks)."""
    mappings = []
    try:
        with open("/proc/self/maps", "rb") as f:
            for line in f:
                head = line.split()
                start, end = (int(x, 16) for x in head[0].split(b"-"))
                name = head[5].decode(errors="replace") if len(head) > 5 else ""
                mappings.append(_Mapping(start, end, head[1].decode(), name, 0))
    except OSError:
        return None
    return mappings
