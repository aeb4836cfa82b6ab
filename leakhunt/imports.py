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
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from leakhunt import probes

__all__ = ["ImportMeter"]


class ImportMeter:
    """``install()`` ... ``remove()``; ``bytes`` is the anonymous RSS the imports added (each
    outermost import's growth, never below 0), ``modules`` the names of those imported."""

    def __init__(self) -> None:
        self.bytes = 0
        self.modules: list[str] = []
        self._depth = 0
        self._installed = False
        self._thread = threading.get_ident()

    def install(self) -> ImportMeter:
        if not self._installed and probes.rss_anon() is not None:
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
        return exec_module

    def __enter__(self) -> ImportMeter:
        return self.install()

    def __exit__(self, *exc: Any) -> None:
        self.remove()
