"""How much anonymous memory the modules imported during a run took: a line of their own.

Importing pandas and pyarrow adds tens of MiB of resident memory (about 88 MiB, much of it file-backed): module code,
classes and functions, and what C extensions allocate when they load. That is neither the
user's data nor a leak. :class:`ImportMeter` reads anonymous RSS around the execution of each
module imported while it is installed (nested imports count once, in the outermost), so an
explanation can name it: "libraries and modules loaded: 88.1 MiB".

It sits first on ``sys.meta_path`` while installed: it asks the finders after it for the spec,
as the import system would, and wraps the exec_module of that module's own loader instance for
the length of the import (a loader shared by several modules, such as the built-in and frozen
importers, is left alone: those modules are tiny). The spec returned is the one the other
finders made. Nothing is left behind when it is removed.

With ``freeze=True`` (``leakhunt run``, whose block froze the heap that existed before it:
:class:`leakhunt.attribution.Scope`), what a library's import made is set aside with that older
heap once the import is done (:func:`leakhunt.settle.refreeze_heap`: the import's garbage
collected, the rest frozen). An explanation of what the run keeps then never walks it: the
tens of thousands of classes, functions and registries that pandas, pyarrow and polars make when
they load are code loaded, which :func:`leakhunt.import_state.mark` otherwise tells apart one
survivor at a time (docs/run/pipeline.py: 8,600 chunks, most of the judgement at its end).
Freezing cannot pick objects: everything made since the last freeze goes too. So an import is
set aside only when that is nothing of the user's worth explaining: a library's module (not the
user's), imported by the main thread with no other thread of the user's alive, when what was
made since the last freeze is at most :data:`YOUNG_OBJECTS` objects holding at most
:data:`YOUNG_BYTES` (a script's first lines before its imports: its code's constants, the
importer's state). The first import that finds more ends it for the run: the imports a script
makes on its first lines are set aside; a lazy import once the script has made its data is not,
nor any after it. The bytes are counted over the run: what the user made before the imports set
aside, which an explanation then does not count as the run's, is at most that.
"""

from __future__ import annotations

import gc
import sys
import threading
from typing import Any

from leakhunt import frames as _frames
from leakhunt import probes
from leakhunt.heap import _maybe_data_type
from leakhunt.settle import refreeze_heap

__all__ = ["ImportMeter", "YOUNG_OBJECTS", "YOUNG_BYTES"]

#: At most this many objects made since the last freeze for an import to be set aside ...
YOUNG_OBJECTS = 2_000
#: ... holding at most this many bytes (theirs and what they hold that the gc does not track).
YOUNG_BYTES = 1 << 20


class ImportMeter:
    """``install()`` ... ``remove()``; ``bytes`` is the anonymous RSS the imports added (each
    outermost import's growth, never below 0), ``modules`` the names of those imported,
    ``frozen`` those set aside with the older heap (``freeze``: see the module's docstring)."""

    def __init__(self, *, freeze: bool = False) -> None:
        self.bytes = 0
        self.modules: list[str] = []
        self.frozen: list[str] = []
        self._freeze = freeze
        self._young = 0  # bytes of the objects set aside so far that no import made
        self._depth = 0
        self._installed = False
        self._thread = threading.get_ident()

    def install(self) -> ImportMeter:
        if not self._installed and probes.rss_anon() is not None:
            if self._freeze:  # (what tells a library's module from the user's imports sysconfig's data)
                _frames.own_dirs(), _frames.library_dirs()
            sys.meta_path.insert(0, self)  # type: ignore[arg-type]
            self._installed = True
            self._thread = threading.get_ident()
        return self

    def remove(self) -> None:
        if self._installed:
            self._installed = False
            try:
                sys.meta_path.remove(self)  # type: ignore[arg-type]
            except ValueError:
                pass

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if threading.get_ident() != self._thread:
            return None  # other threads' imports are theirs
        if name.partition(".")[0] == "leakhunt":
            return None  # leakhunt's own modules, loaded by its measuring: never the block's code
        spec = None
        for finder in list(sys.meta_path):
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        if spec is None:
            return None
        loader = spec.loader
        if loader is not None and not isinstance(loader, type) and hasattr(loader, "exec_module") \
                and "exec_module" not in getattr(loader, "__dict__", {}):
            loader.exec_module = self._timed(loader, name)
        return spec

    def _timed(self, loader: Any, name: str) -> Any:
        original = type(loader).exec_module

        def exec_module(module: Any) -> None:
            try:
                del loader.exec_module  # this import only
            except AttributeError:
                pass
            outermost = self._depth == 0
            before = probes.rss_anon() if outermost else None
            aside = outermost and self._freeze and self._may_set_aside(module)
            self._depth += 1
            try:
                original(loader, module)
            finally:
                self._depth -= 1
                if outermost and before is not None:
                    after = probes.rss_anon()
                    if after is not None:
                        self.bytes += max(0, after - before)
                    self.modules.append(name)
                if aside and _alone():
                    refreeze_heap()
                    self.frozen.append(name)
        return exec_module

    def _may_set_aside(self, module: Any) -> bool:
        """May what this import makes be frozen when it is done (the module's docstring)? Once
        not, never again in this run (what the user made since will only grow). Nothing the
        user's code defines runs here: sizes are read from the interpreter's own types."""
        try:
            filename = getattr(module, "__file__", None)
            if isinstance(filename, str) and _frames.kind(filename) == _frames.USER:
                return False  # the user's module: what it makes when loaded is the user's
            young = _young_bytes(YOUNG_BYTES - self._young) if gc.isenabled() and _alone() else None
        except Exception:  # never the user's import's failure
            young = None
        if young is None:
            self._freeze = False
        else:
            self._young += young
        return self._freeze

    def __enter__(self) -> ImportMeter:
        return self.install()

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _alone() -> bool:
    """No thread of the user's runs beside the main thread (leakhunt's own are named so)."""
    main = threading.main_thread()
    return all(t is main or t.name.startswith("leakhunt") for t in threading.enumerate())


def _young_bytes(budget: int) -> int | None:
    """The bytes held by the objects made since the last freeze and by what they hold that the
    gc does not track (strings, numbers, tuples of them); ``None`` when they are more than
    :data:`YOUNG_OBJECTS` objects or ``budget`` bytes, or hold data (a numpy array, an Arrow or
    polars object): the user's. The walk stops as soon as it knows."""
    young = gc.get_objects()
    try:
        if len(young) > YOUNG_OBJECTS:
            return None
        total = 0
        seen: set[int] = set()
        stack = young[:]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            tp = type(obj)
            if _maybe_data_type(tp) and not issubclass(tp, (bytes, bytearray)):  # (code's bytes: sized)
                return None
            # the interpreter's own types say their size; for any other, the object's own part
            # (its __sizeof__ may be the library's code, on a half-made object)
            builtin = getattr(tp, "__module__", None) == "builtins"
            total += sys.getsizeof(obj) if builtin else object.__sizeof__(obj)
            if total > budget:
                return None
            stack.extend(child for child in gc.get_referents(obj) if not gc.is_tracked(child))
        return total
    finally:
        young.clear()

