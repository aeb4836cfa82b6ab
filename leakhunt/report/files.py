"""Report files: one rule for every front end, checked before any work, written atomically.

:func:`check_report_path` runs when a pytest session or a ``leakhunt`` command starts: the
suffix picks the format (the same suffixes everywhere), a missing directory is created when the
file is written (as pytest does for ``--junitxml``), and a path that cannot be written - its
parent is a file, the directory is not writable, the path is a directory, an extra the format
needs is missing - is a :class:`ReportPathError` naming the path and why, before anything runs
(whether a file can be created is tried: a file is made and removed in the nearest directory).
:func:`write_atomic` renders into a temporary file next to the target and renames it over the
target, so a reader never sees half a file and an interrupt never leaves one.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterable

__all__ = [
    "FORMATS",
    "ReportPath",
    "ReportPathError",
    "check_report_path",
    "write_atomic",
    "write_atomic_binary",
]

#: suffix -> format. The same table for the pytest plugin and every command.
FORMATS: dict[str, str] = {".json": "json", ".html": "html", ".htm": "html", ".txt": "text", ".png": "png"}

# format -> (modules it needs, the extra that installs them)
_NEEDS: dict[str, tuple[tuple[str, ...], str]] = {
    "html": (("jinja2", "matplotlib"), "html"),
    "png": (("matplotlib",), "html"),
}


class ReportPathError(ValueError):
    """A report path that cannot be written; the message names the path and the reason."""


@dataclass(frozen=True)
class ReportPath:
    """A checked report path: absolute, with the format its suffix picks."""

    path: Path
    format: str  # json | html | text | png
    given: str  # the path as the user wrote it, for messages

    def __str__(self) -> str:
        return self.given


def _suffixes(formats: Iterable[str]) -> list[str]:
    """The suffixes of ``formats``, in their order."""
    return [suffix for fmt in formats for suffix, known in FORMATS.items() if known == fmt]


def check_report_path(
    path: str | os.PathLike[str],
    *,
    option: str,
    formats: Iterable[str] = ("json", "html", "text"),
    base: str | os.PathLike[str] | None = None,
) -> ReportPath:
    """Check that a report can be written to ``path``, and which format its suffix picks.

    ``option`` names where the path came from (``--leak-report-file``, ``-o``, ``ini option
    leak_report_file``); ``formats`` are those the caller can write; a relative ``path`` is
    taken from ``base`` (default: the current directory). Missing directories are made when the
    file is written; only a probe file is made (and removed) in the nearest one that exists, to
    know that a file can be created there. Raises :class:`ReportPathError`.
    """
    formats = tuple(formats)
    given = os.fspath(path)
    accepted = ", ".join(_suffixes(formats))
    if not given.strip():
        raise ReportPathError(f"{option} {given!r}: give a file name ending in {accepted}")
    target = Path(given)
    if not target.is_absolute():
        target = Path(base if base is not None else os.getcwd()) / target
    if target.is_dir():
        example = os.path.join(given, "report" + _suffixes(formats)[0])
        raise ReportPathError(f"{option} {given!r} is a directory: give a file name such as {example!r}")
    suffix = target.suffix.lower()
    fmt = FORMATS.get(suffix)
    if fmt is None or fmt not in formats:
        what = f"suffix {suffix!r}" if suffix else "no suffix"
        raise ReportPathError(f"{option} {given!r} has {what}: the file name must end in {accepted} "
                              "(the suffix picks the format)")
    # The nearest directory that exists must be a writable directory: everything below it is
    # created when the file is written.
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ReportPathError(f"{option} {given!r}: {_shown(parent, base)!r} is a file, not a directory")
    problem = _cannot_create_in(parent)
    if problem is not None:
        raise ReportPathError(f"{option} {given!r}: cannot create files in {_shown(parent, base)!r} ({problem})")
    needs = _NEEDS.get(fmt)
    if needs is not None:
        modules, extra = needs
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            raise ReportPathError(f"{option} {given!r}: a {fmt.upper()} report needs {' and '.join(missing)}: "
                                  f'pip install "leakhunt[{extra}]"')
    return ReportPath(path=target, format=fmt, given=given)


def _cannot_create_in(directory: Path) -> str | None:
    """Why a file cannot be created in ``directory`` (None when it can): by creating one and
    removing it. ``os.access`` answers yes to root for /proc, /sys and other file systems that
    refuse every new file (issue 21: ``--leak-report-file=/proc/x.json`` failed at the end)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".leakhunt-", suffix=".tmp", dir=directory)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "permission denied"
        if exc.errno == errno.ENOENT:  # the directory exists: its file system makes no new files
            return "this file system does not take new files"
        return exc.strerror or str(exc)
    os.close(fd)
    _unlink_quietly(probe)
    return None


def _shown(path: Path, base: str | os.PathLike[str] | None) -> str:
    """``path`` relative to ``base`` (or the current directory) when below it, else absolute."""
    try:
        return str(path.relative_to(Path(base if base is not None else os.getcwd())))
    except ValueError:
        return str(path)


def write_atomic(path: str | os.PathLike[str], render: Callable[[IO[str]], None]) -> Path:
    """Render into a temporary file next to ``path``, then rename it over ``path``.

    Missing directories are created. On any error (the render's or the file system's) the
    temporary file is removed and the error raised; ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a report is an ordinary file
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            render(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return target


def write_atomic_binary(path: str | os.PathLike[str], save: Callable[[str], None]) -> Path:
    """Like :func:`write_atomic` for a writer that takes a file name (matplotlib's ``savefig``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        save(tmp)
        os.replace(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
