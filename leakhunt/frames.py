"""Whose code is this frame? The user's, a library's, or leakhunt's own: decided in one place.

Explanations charge memory to the user's line (``df.merge(...)`` in the test, not the line deep
inside pandas that allocated), and never show leakhunt's own frames or files: not the library,
not the pytest plugin. Everything that needs that decision asks :func:`kind`.

Pure string work after the first call (paths are resolved once): the peak sampler calls it from
a background thread while the measured code waits for the GIL.
"""

from __future__ import annotations

import functools
import linecache
import os
import sys
import sysconfig
import tracemalloc
from typing import Iterable, Sequence

__all__ = ["FRAMEWORK", "OURS", "LIBRARY", "USER", "kind", "is_ours", "is_import", "user_frame", "traceback_frames",
           "short_path", "code_line", "forget_lines", "own_dirs", "library_dirs", "mark_ours"]

OURS, LIBRARY, USER = "ours", "library", "user"

#: Packages of the test framework (and leakhunt): their objects and frames are never roots,
#: path steps or the block's own objects (and "_abc", the interpreter's isinstance caches:
#: bookkeeping, never why data is alive).
FRAMEWORK = ("_pytest", "pytest", "pluggy", "xdist", "execnet", "pytest_leakhunt", "leakhunt",
             "pytest_memray", "pytest_randomly", "pytest_cov", "_abc")


@functools.lru_cache(maxsize=1)
def own_dirs() -> tuple[str, ...]:
    """leakhunt's packages (the library and its pytest plugin) and tracemalloc's own module."""
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = {here, os.path.realpath(here)}
    plugin = os.path.join(os.path.dirname(here), "pytest_leakhunt")
    dirs.update({plugin, os.path.realpath(plugin)})
    return tuple(sorted(d + os.sep for d in dirs))


@functools.lru_cache(maxsize=1)
def library_dirs() -> tuple[str, ...]:
    """The standard library and site-packages directories of this interpreter."""
    dirs = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if key in paths:
            dirs.update({os.path.abspath(paths[key]), os.path.realpath(paths[key])})
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        lib = os.path.join(prefix, "lib")
        dirs.update({os.path.abspath(lib), os.path.realpath(lib)})
    return tuple(sorted(d + os.sep for d in dirs))


_TYPED = ("<string>", "<stdin>", "<console>", "<ipython-input-")
_SITE_MARKERS = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)
_TRACEMALLOC = tracemalloc.__file__
_cache: dict[str, str] = {}


_OWN_FILES: set[str] = set()


def mark_ours(filename: str) -> None:
    """Count one more file as leakhunt's own: the ``leakhunt`` console script, which sits in the
    environment's ``bin`` (not a library directory) and starts every ``leakhunt run``: its frame
    (``leakhunt:6``) must never read as the user's code."""
    for name in {filename, os.path.abspath(filename), os.path.realpath(filename)}:
        _OWN_FILES.add(name)
        _cache[name] = OURS


def kind(filename: str) -> str:
    """``"ours"``, ``"library"`` or ``"user"`` for a code file name (as frames give it)."""
    found = _cache.get(filename)
    if found is None:
        if filename.startswith(own_dirs()) or filename == _TRACEMALLOC or filename in _OWN_FILES:
            found = OURS
        elif filename.startswith("<"):
            # code typed by the user (python -c, a REPL, a notebook cell) is theirs; the rest
            # (<frozen importlib._bootstrap>, generated code) is not
            found = USER if filename.startswith(_TYPED) else LIBRARY
        elif filename.startswith(library_dirs()) or any(m in filename for m in _SITE_MARKERS):
            found = LIBRARY
        else:
            found = USER
        _cache[filename] = found
    return found


def is_ours(filename: str) -> bool:
    return kind(filename) == OURS


def user_frame(frames: Sequence[tuple[str, int]]) -> tuple[str, int] | None:
    """The newest user frame of ``frames`` (newest first), else the newest frame; ``None``
    when a frame of ours is newer than any user frame (the allocation is leakhunt's own).

    Returns the frame's own pair and allocates nothing - no loop iterator, no new tuple: it runs
    once per traceback of a snapshot while tracemalloc traces (and so slows) every allocation
    (leakhunt.tracing.by_traceback)."""
    cache = _cache
    i, n = 0, len(frames)
    while i < n:
        frame = frames[i]
        k = cache.get(frame[0]) or kind(frame[0])
        if k == OURS:
            return None
        if k == USER:
            return frame
        i += 1
    return frames[0] if n else None


def is_import(frames: Sequence[tuple[str, int]]) -> bool:
    """Was this allocated while a module was being imported?"""
    return any(f.startswith("<frozen importlib") for f, _ in frames)


def traceback_frames(traceback: Iterable[tracemalloc.Frame]) -> tuple[tuple[str, int], ...]:
    """A tracemalloc traceback (oldest first) as ``(filename, lineno)`` pairs, newest first."""
    return tuple((f.filename, f.lineno) for f in reversed(list(traceback)))


def short_path(filename: str) -> str:
    """``.../site-packages/pandas/core/frame.py`` -> ``pandas/core/frame.py``; others unchanged."""
    for marker in _SITE_MARKERS:
        if marker in filename:
            return filename.split(marker, 1)[1]
    for lib in library_dirs():
        if filename.startswith(lib):
            return filename[len(lib):]
    return filename


#: Source lines read by :func:`code_line`, by file. Not ``linecache``: lines cached there while a
#: block is watched would be objects the block made, and explained as the user's memory.
#: :func:`forget_lines` empties it once an explanation is made.
_LINES: dict[str, list[str]] = {}


def code_line(filename: str, lineno: int) -> str:
    """The stripped source line, or "" when there is none."""
    if filename.startswith("<") or lineno <= 0:
        return ""
    lines = _LINES.get(filename)
    if lines is None:
        cached = linecache.cache.get(filename)
        if cached is not None and len(cached) > 2:
            lines = cached[2]
        else:
            try:
                with open(filename, encoding="utf-8", errors="replace") as f:
                    lines = f.read().splitlines()
            except OSError:
                lines = []
        _LINES[filename] = lines
    return lines[lineno - 1].strip() if lineno <= len(lines) else ""


def forget_lines() -> None:
    """Let go of the source lines :func:`code_line` read."""
    _LINES.clear()
