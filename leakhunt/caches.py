"""Memory a block put into a cache the user's code owns: the user's kept memory.

A ``functools.lru_cache``/``functools.cache`` of the user's (a function defined in the user's
code, not an installed library's) filled by a block keeps what the block made for as long as the
process lives. A second call of the block finds it cached and makes nothing new, so the
second-call rule (:func:`leakhunt.judge.standing`) would call the first call's growth one-time
initialisation; an untraced first call cannot even see it (the values are held by the cache's
own dict, which is older than the block, and numpy arrays are not tracked by the gc). So the
block's start records how full each of the user's caches is (:func:`mark`), and a block whose
retained figures broke their budget counts the entries added since (:func:`filled`) as kept by
the cache, named as the root, whatever the options (issue 21 item 8). Unbounded caches only
(``maxsize=None``): a bounded one is bounded by design, and the C implementation's entries do
not show their results to Python.

What :func:`mark` costs at a budgeted block's start: one ``len(sys.modules)``, and one
``cache_info()`` per cache of the user's found so far; modules imported since the previous mark
are looked through once (their globals and the attributes of their classes). A cache created
later than its module's import (inside a function) is not seen.
"""

from __future__ import annotations

import gc
import sys
import types
import weakref
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from leakhunt import frames as _frames
from leakhunt.explanation import Root
from leakhunt.hints import pattern_of
from leakhunt.retention import RetentionPath
from leakhunt.sizing import holding

if TYPE_CHECKING:
    from leakhunt.attribution import Survivors

__all__ = ["CacheMark", "charge", "filled", "mark"]


@dataclass(frozen=True)
class _Entry:
    """One cache of the user's: where it is reachable from (a module global, or a class
    attribute), and its fill at the mark."""

    ref: Any  # weakref to the lru_cache wrapper
    module: str
    name: str  # the module global's name (the class's name for a cached method)
    owner: Any  # weakref to the class for a cached method, else None
    size: int
    misses: int


@dataclass(frozen=True)
class CacheMark:
    """How full each of the user's caches was when a block started."""

    entries: tuple[_Entry, ...]


class _Registry:
    """The user's caches, found module by module as modules are imported."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}  # module name -> id of the module looked through
        self.count = -1
        # id of the wrapper -> (wrapper ref, module, name, owner ref): one entry per cache, labelled
        # by the module that defines it where another module imported it too
        self.found: dict[int, tuple[Any, str, str, Any]] = {}

    def refresh(self) -> None:
        if len(sys.modules) == self.count:
            return
        for name, module in list(sys.modules.items()):
            if self.seen.get(name) == id(module):
                continue  # looked through (a module imported again under its name is looked at again)
            self.seen[name] = id(module)
            if _user_module(module):
                for found in _caches_in(module):
                    self.add(found)
        self.count = len(sys.modules)
        self.found = {key: f for key, f in self.found.items() if f[0]() is not None}

    def add(self, found: tuple[Any, str, str, Any]) -> None:
        wrapper = found[0]()
        key = id(wrapper)
        known = self.found.get(key)
        if known is None or known[0]() is not wrapper or getattr(wrapper, "__module__", None) == found[1]:
            self.found[key] = found


def _user_module(module: Any) -> bool:
    """A module of the user's code: not an installed library's, the standard library's or
    leakhunt's; ``__main__`` without a file is code typed by the user (``python -c``, a REPL)."""
    if not isinstance(module, types.ModuleType):
        return False
    filename = getattr(module, "__file__", None)
    if not isinstance(filename, str):
        return module.__name__ == "__main__"
    return _frames.kind(filename) == _frames.USER


def _unbounded(obj: Any) -> bool:
    """An unbounded ``functools`` cache (``functools.cache``, ``lru_cache(maxsize=None)``)."""
    if type(obj).__name__ != "_lru_cache_wrapper":
        return False
    try:
        return obj.cache_parameters().get("maxsize") is None
    except Exception:
        return False


def _caches_in(module: types.ModuleType) -> list[tuple[Any, str, str, Any]]:
    found = []
    for name, value in list(vars(module).items()):
        if _unbounded(value):
            found.append((weakref.ref(value), module.__name__, name, None))
        elif isinstance(value, type) and value.__module__ == module.__name__:
            for attr in list(vars(value).values()):
                if _unbounded(attr):
                    found.append((weakref.ref(attr), module.__name__, name, weakref.ref(value)))
    return found


_REGISTRY = _Registry()


def mark() -> CacheMark:
    """How full each of the user's caches is now (at a block's start)."""
    _REGISTRY.refresh()
    entries = []
    for ref, module, name, owner in _REGISTRY.found.values():
        wrapper = ref()
        if wrapper is not None:
            info = wrapper.cache_info()
            entries.append(_Entry(ref, module, name, owner, info.currsize, info.misses))
    return CacheMark(tuple(entries))


def filled(start: CacheMark | None, created_here: Any = None) -> tuple[Root, ...]:
    """The user's caches the block filled since ``start``, each as a root keeping what the
    entries added since hold (biggest first). ``created_here(obj)``: whether the block's own
    survivors' search already counts a gc-tracked value (``True``: it does, and it is left out
    of the size here, so nothing is counted twice)."""
    if start is None:
        return ()
    roots = []
    for entry in start.entries:
        wrapper = entry.ref()
        if wrapper is None:
            continue
        values = _added(wrapper, entry)
        if values:
            root = _root(wrapper, entry, values, created_here)
            if root is not None:
                roots.append(root)
    return tuple(sorted(roots, key=lambda r: r.size, reverse=True))


def _added(wrapper: Any, entry: _Entry) -> list[Any]:
    """The values of the entries an unbounded cache gained since the mark: the newest ones (its
    dict keeps the order entries were inserted in). A bounded cache is left alone: it is bounded
    by design, and the C implementation's entries do not show their results to Python."""
    info = wrapper.cache_info()
    if info.maxsize is not None:
        return []
    added = min(info.misses - entry.misses, info.currsize - entry.size)
    if added <= 0:
        return []
    table = next((d for d in gc.get_referents(wrapper) if type(d) is dict and len(d) == info.currsize), None)
    return list(table.values())[-added:] if table is not None else []


def _root(wrapper: Any, entry: _Entry, values: list[Any], created_here: Any) -> Root | None:
    from leakhunt.attribution import kept_by

    size = 0
    for value in values:
        if created_here is not None and gc.is_tracked(value) and created_here(value):
            continue
        size += kept_by(value) or 0
    if not size:
        return None
    owner = entry.owner() if entry.owner is not None else None
    table = next((d for d in gc.get_referents(wrapper) if type(d) is dict), None)
    chain = ((owner,) if owner is not None else ()) + (wrapper,) + ((table,) if table is not None else ()) \
        + (max(values, key=lambda v: kept_by(v) or 0),)
    path = RetentionPath(f"{entry.name} (global in {entry.module})", "global", chain)
    buffers = sum(len(holding(v).buffers or ()) for v in values)
    return Root(root=path.root, kind="global", buffers=buffers, size=size, path=path.nodes(), text=str(path),
                pattern=pattern_of(chain, "global", path.root), objects=len(values))


def charge(survivors: Survivors | None, roots: tuple[Root, ...], *, counted: bool) -> Survivors | None:
    """``survivors`` with the caches' ``roots`` (from :func:`filled`) among them, what they keep
    counted as the user's (``attributable``: whatever the mode). ``counted``: the survivors'
    own search (a fresh trace) already counted the values behind a root of the same name in
    what roots keep, so only ``attributable`` gains them."""
    if not roots:
        return survivors
    from leakhunt.attribution import Survivors

    if survivors is None:
        survivors = Survivors(roots=(), found=0, buffers=0)
    shown = {r.root: r for r in survivors.roots}
    added = gained = 0
    for root in roots:
        same = shown.get(root.root)
        if same is not None and counted:
            continue
        added += root.size
        if same is not None:
            shown[root.root] = replace(same, size=same.size + root.size, buffers=same.buffers + root.buffers)
        else:
            shown[root.root] = root
            gained += root.buffers
    ranked = tuple(sorted(shown.values(), key=lambda r: r.size, reverse=True))
    total = sum(r.size for r in roots)
    return replace(survivors, roots=ranked, found=survivors.found + added, buffers=survivors.buffers + gained,
                   rooted=survivors.rooted + added, user_rooted=survivors.user_rooted + added,
                   attributable=survivors.attributable + total)
