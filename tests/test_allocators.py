"""Freed memory the native allocators keep resident is a named place of the every-byte line
(leakhunt/allocators.py): a thread's malloc arena, Arrow's pool; and nothing is named where
no allocator keeps anything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from leakhunt.hints import NATIVE_ALLOCATORS_KEPT

MiB = 2**20

# A thread allocates 15,000 pairs (4,000 bytes, written; 64 bytes) from its own malloc arena and
# frees the big ones: each freed chunk lies between two live small ones and spans no whole page,
# so malloc_trim cannot give any of it back (~57 MiB resident and free, ~1.2 MiB live). With
# KEEP_SMALL False the small ones are freed too and the arena has nothing to keep. Both keep a
# 30 MiB bytes object in a global, so there is always something to explain.
_THREAD_ARENA = """
import ctypes, threading
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
KEEP_SMALL = {keep_small}
BLOB = b"\\x01" * (30 * 2**20)
SMALL = []

def work():
    big = []
    for _ in range(15_000):
        p = libc.malloc(4000)
        ctypes.memset(p, 1, 4000)
        big.append(p)
        SMALL.append(libc.malloc(64))
    for p in big:
        libc.free(p)
    if not KEEP_SMALL:
        while SMALL:
            libc.free(SMALL.pop())

thread = threading.Thread(target=work)
thread.start()
thread.join()
"""


def _run(tmp_path: Path, source: str) -> tuple[dict, str]:
    (tmp_path / "job.py").write_text(source)
    proc = subprocess.run([sys.executable, "-m", "leakhunt.cli", "run", "--no-status", "--explain",
                           "--json", "r.json", "job.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads((tmp_path / "r.json").read_text()), proc.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's arenas and /proc/self/smaps")
@pytest.mark.parametrize("keep_small", [True, False])
def test_free_memory_a_threads_malloc_arena_keeps_is_named(tmp_path: Path, keep_small: bool) -> None:
    """~57 MiB freed among live chunks of a thread's arena: named, not 'not explained'; all of
    it freed: malloc_trim gives it back and nothing is named."""
    record, stderr = _run(tmp_path, _THREAD_ARENA.format(keep_small=keep_small))
    assert record["explanation"] is not None, stderr
    explanation = record["explanation"]
    places = dict(explanation["accounting"])
    assert explanation["roots"][0]["root"].startswith("BLOB"), explanation["roots"]
    if keep_small:
        assert 40 * MiB < places["allocators"] < 70 * MiB, places
        assert "free, kept by the native allocators" in stderr
        assert explanation["explained"] > 0.9, places
        assert explanation["hint"] == NATIVE_ALLOCATORS_KEPT, explanation["hint"]  # most of the figure
    else:
        assert places["allocators"] < 4 * MiB, places
        assert "free, kept by the native allocators" not in stderr
        assert explanation["hint"] != NATIVE_ALLOCATORS_KEPT


_AT_THE_PEAK = _THREAD_ARENA + """
import time
libc.malloc_trim(0)                  # what a trim can give back is given back (glibc's own trim
time.sleep(0.3)                      # threshold moves with the process's history), ticks read it
PEAK = b"\\x02" * (60 * 2**20)         # the high-water mark: 60 MiB on top of the arena
time.sleep(0.3)
del PEAK
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's arenas, mincore")
@pytest.mark.parametrize("keep_small", [True, False])
def test_at_the_peak_free_memory_a_threads_arena_holds_is_named(tmp_path: Path, keep_small: bool) -> None:
    """--trace=native: at the high-water mark, the ~57 MiB a thread's arena holds free among
    live chunks is resident memory no allocation holds: named (malloc's arenas), and the peak's
    every-byte share counts it; with the chunks all freed, nothing is named."""
    pytest.importorskip("memray")
    (tmp_path / "job.py").write_text(_AT_THE_PEAK.format(keep_small=keep_small))
    proc = subprocess.run([sys.executable, "-m", "leakhunt.cli", "run", "--no-status", "--trace=native",
                           "--json", "r.json", "job.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    native = json.loads((tmp_path / "r.json").read_text())["native"]
    assert native["coverage"] is not None, native
    if keep_small:
        assert 40 * MiB < native["malloc_kept"] < 70 * MiB, native["malloc_kept"]
        assert native["accounted"] >= native["coverage"] + 0.25, (native["coverage"], native["accounted"])
        assert "malloc's arenas held" in proc.stderr
    else:
        assert native["malloc_kept"] < 4 * MiB, native["malloc_kept"]
        assert native["accounted"] - native["coverage"] < 0.05, (native["coverage"], native["accounted"])
