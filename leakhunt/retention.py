"""Why is this memory still alive? Reference paths from roots down to objects: one backward search.

:func:`paths_to` walks backwards from any number of targets at once, one level at a time, with
``gc.get_referrers`` plus the edges the gc cannot see (a numpy view's ``.base``, an object
array's elements, an untracked container's items: :class:`leakhunt.heap.HeapScan`). Roots, best
first: a global of the user's code, an object the caller names (a test's fixture values), a
local of a frame of the user's, a global of a library, a local of a library's frame. The test
framework's own objects and frames (pytest, pluggy, xdist, leakhunt) are never roots and never
on a path: the real holder behind them is found instead. :func:`why_alive` is the same search
from one object, keeping up to a few paths.
"""

from __future__ import annotations

import gc
import sys
import time
import types
from itertools import compress, repeat
from dataclasses import dataclass, field
from typing import Any, Callable

from leakhunt import frames as _frames
from leakhunt.cycles import CYCLE_ROOT, is_object_array, object_array_cycle
from leakhunt.frames import FRAMEWORK
from leakhunt.explanation import PathStep
from leakhunt.heap import HeapScan, children, live_frames, module_dicts
from leakhunt.settle import thawed
from leakhunt.sizing import data_size, holding
from leakhunt.units import format_size

__all__ = ["FRAMEWORK", "RetentionPath", "RetentionPaths", "why_alive", "paths_to", "biggest_buffers", "describe",
           "buffer_size", "is_framework"]

_CONTAINERS = (list, tuple, dict, set, frozenset)
_PANDAS_INTERNALS = ("pandas.core.internals", "pandas._libs.internals")
# Attributes through which pandas and pyarrow objects hold their data, checked by identity
# when an object has no __dict__ entry for the edge.
_KNOWN_ATTRS = ("_mgr", "values", "_values", "_data", "_ndarray", "_pa_array", "blocks", "obj",
                "_obj_with_exclusions", "_selected_obj", "base", "array", "_cache")
#: Root kinds, best first.
RANKS = {"global": 0, "named": 1, "local": 2, "library": 3, "library-local": 4}


def buffer_size(obj: Any) -> int | None:
    """Bytes of data an object keeps alive by itself (:func:`leakhunt.sizing.data_size`)."""
    return data_size(obj)


def _top_package(name: str) -> str:
    return name.split(".", 1)[0]


def is_framework(obj: Any) -> bool:
    """An object of the test framework's (or of leakhunt's)."""
    module = type(obj).__module__
    return isinstance(module, str) and _top_package(module) in FRAMEWORK


def _framework_file(filename: str) -> bool:
    if _frames.is_ours(filename):
        return True
    short = _frames.short_path(filename)
    return short != filename and _top_package(short.replace("/", ".")) in FRAMEWORK


# ---------------------------------------------------------------------------------------
# descriptions


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _is_ndarray(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray)


def _describe_pandas(obj: Any, name: str) -> str | None:
    if name == "DataFrame":
        return f"DataFrame ({_rows(len(obj))} x {obj.shape[1]} cols)"
    if name == "Series":
        return f"Series ({_rows(len(obj))})"
    if name.endswith("Index"):
        return f"{name} ({len(obj):,} entries)"
    if "GroupBy" in name:
        return name
    return None


def _describe_data(obj: Any, name: str, module: str) -> str | None:
    if _is_ndarray(obj):
        if obj.base is not None:
            return f"ndarray view {obj.shape} of a larger buffer"
        kind = " of objects" if obj.dtype.hasobject else ""
        return f"ndarray{kind} {format_size(obj.nbytes)}"
    if module.startswith("pyarrow") and name in ("Table", "RecordBatch", "ChunkedArray", "Buffer") \
            or (module.startswith("pyarrow") and name.endswith("Array")):
        size = data_size(obj)
        if name == "Buffer":
            return f"pyarrow Buffer {format_size(size)}"
        return f"pyarrow {name} ({_rows(len(obj))}) holding buffers of {format_size(size)}"
    if module.startswith("polars") and name in ("DataFrame", "Series"):
        return f"polars {name} ({_rows(len(obj))}, estimated {format_size(data_size(obj))})"
    if isinstance(obj, (bytes, bytearray)):
        return f"{name} {format_size(len(obj))}"
    return None


def _describe_code(obj: Any, name: str) -> str | None:
    if isinstance(obj, types.FunctionType):
        return f"function {obj.__qualname__}"
    if isinstance(obj, type):
        return f"class {obj.__qualname__}"
    if isinstance(obj, types.ModuleType):
        return f"module {obj.__name__}"
    if isinstance(obj, types.FrameType):
        return f"frame of {obj.f_code.co_name}() at {obj.f_code.co_filename.rsplit('/', 1)[-1]}:{obj.f_lineno}"
    if isinstance(obj, BaseException):
        return f"{name} ({str(obj)[:40]!r})" if str(obj) else name
    if name == "_lru_cache_wrapper":
        return f"lru_cache {getattr(obj, '__qualname__', '?')}"
    return None


def describe(obj: Any) -> str:
    """A short human description: ``DataFrame (1 row x 10 cols)``, ``ndarray 95.4 MiB``."""
    tp = type(obj)
    name = tp.__name__
    module = tp.__module__ or ""
    try:
        found = (_describe_pandas(obj, name) if module.startswith("pandas") else None) \
            or _describe_data(obj, name, module) or _describe_code(obj, name)
        if found:
            return found
    except Exception:  # describing must never fail an explanation
        pass
    return name


# ---------------------------------------------------------------------------------------
# edges


def _edge_in_container(parent: Any, child: Any) -> str | None:
    if isinstance(parent, (list, tuple)):
        return next((f"[{i}]" for i, item in enumerate(parent) if item is child), None)
    if isinstance(parent, dict):
        for key, value in parent.items():
            if value is child:
                return f"[{key!r}]"
            if key is child:
                return " key"
        return None
    if isinstance(parent, (set, frozenset)):
        return " member"
    return None


def _edge_in_code(parent: Any, child: Any) -> str | None:
    if isinstance(parent, types.CellType):
        return ".cell_contents"
    if isinstance(parent, types.FunctionType):
        names = zip(parent.__code__.co_freevars, parent.__closure__ or ())
        found = next((f" closure variable {name!r}" for name, cell in names if cell is child), None)
        return found or (".__defaults__" if parent.__defaults__ is child else None)
    if isinstance(parent, types.FrameType):
        try:
            items = list(parent.f_locals.items())
        except Exception:
            return None
        return next((f" local {name!r}" for name, value in items if value is child), None)
    if isinstance(parent, types.TracebackType):
        return ".tb_frame" if parent.tb_frame is child else (".tb_next" if parent.tb_next is child else None)
    if isinstance(parent, BaseException) and parent.__traceback__ is child:
        return ".__traceback__"
    if type(parent).__name__ == "_lru_cache_wrapper":
        return " cache" if isinstance(child, dict) else " lru_cache entry"  # its dict, or a linked entry
    return None


def _edge_in_array(parent: Any, child: Any) -> str | None:
    if not _is_ndarray(parent):
        return None
    if parent.base is child:
        return ".base"
    if parent.dtype.hasobject:
        from leakhunt.heap import object_elements

        return next((f"[{i}]" for i, item in enumerate(object_elements(parent)) if item is child), None)
    return None


def _edge_by_attribute(parent: Any, child: Any) -> str | None:
    instance_dict = getattr(parent, "__dict__", None)
    if isinstance(instance_dict, dict):
        if instance_dict is child:
            return ".__dict__"
        found = next((f".{key}" for key, value in instance_dict.items() if value is child), None)
        if found:
            return found
    for slot in getattr(type(parent), "__slots__", ()) or ():
        if isinstance(slot, str) and getattr(parent, slot, None) is child:
            return f".{slot}"
    for attr in _KNOWN_ATTRS:
        try:
            if getattr(parent, attr, None) is child:
                return f".{attr}"
        except Exception:
            continue
    return None


_EDGES: tuple[Callable[[Any, Any], str | None], ...] = (_edge_in_container, _edge_in_code, _edge_in_array,
                                                       _edge_by_attribute)


def _edge(parent: Any, child: Any) -> str:
    """How ``parent`` refers to ``child``: ``[0]``, ``['key']``, ``.attr``, ``.base`` or ``''``."""
    for find in _EDGES:
        try:
            found = find(parent, child)
        except Exception:
            found = None
        if found is not None:
            return found
    return ""


def _is_attr_dict(owner: Any, d: Any) -> bool:
    """Is ``d`` the dict behind ``owner.__dict__`` (an instance's, or a class's mappingproxy)?"""
    if not isinstance(d, dict):
        return False
    ns = getattr(owner, "__dict__", None)
    if ns is d:
        return True
    return isinstance(owner, type) and isinstance(ns, types.MappingProxyType) and len(ns) == len(d) \
        and all(ns.get(k) is v for k, v in list(d.items())[:8])


def _is_internal(obj: Any) -> bool:
    """pandas' block machinery: shown as one 'block values' step, not five."""
    module = type(obj).__module__ or ""
    return module.startswith(_PANDAS_INTERNALS)


# ---------------------------------------------------------------------------------------
# paths


def _said_by_next(parent: Any, child: Any) -> bool:
    """A step the next one says: an instance's or class's ``__dict__`` (shown as ``.attr``), a
    function's closure tuple (the next step names the variable)."""
    return _is_attr_dict(parent, child) or (isinstance(parent, types.FunctionType) and parent.__closure__ is child)


class _Renderer:
    """A chain of objects as display steps and as :class:`PathStep` nodes."""

    def __init__(self, root: str, chain: tuple[Any, ...]) -> None:
        self.chain = chain
        self.parts = [root]
        self.nodes = [PathStep(root)]
        self.pending = ""  # the edge into the next node, when it was said before the node
        self.in_internals = False

    def node(self, obj: Any, edge: str) -> None:
        self.nodes.append(PathStep(describe(obj), edge.strip(), holding(obj).size if _sized(obj) else None))

    def render(self) -> tuple[list[str], list[PathStep]]:
        chain = self.chain
        if len(chain) == 1:  # the root holds the object itself: still say what it is
            self.parts.append(describe(chain[0]))
            self.node(chain[0], "")
        for i in range(1, len(chain)):
            self.step(i)
        return self.parts, self.nodes

    def step(self, i: int) -> None:
        chain = self.chain
        parent, child = chain[i - 1], chain[i]
        last = i == len(chain) - 1
        if not last and (_is_internal(child) or (self.in_internals and isinstance(child, _CONTAINERS))):
            self.in_internals = True
            return
        if self.in_internals and _is_ndarray(child):
            self.block_values(child)
            return
        self.in_internals = False
        if not last and _said_by_next(parent, child):
            return
        owner = chain[i - 2] if i >= 2 else None
        edge = self.edge_into(owner, parent, child)
        if edge is not None:
            self.show(parent, child, edge, last)

    def edge_into(self, owner: Any, parent: Any, child: Any) -> str | None:
        """The edge from ``parent`` to ``child`` as shown (``owner`` holds ``parent``); ``None``
        when the step was said already (a closure variable's name)."""
        edge = _edge(parent, child)
        if isinstance(parent, dict) and _is_attr_dict(owner, parent) and edge.startswith("['"):
            return "." + edge[2:-2]
        if isinstance(child, types.CellType) and isinstance(owner, types.FunctionType):
            names = dict(zip(owner.__code__.co_freevars, owner.__closure__ or ()))
            edge = next((f" closure variable {n!r}" for n, c in names.items() if c is child), edge)
            self.parts.append(edge.strip(" ->"))
            self.pending = edge.strip(" ->")
            return None
        return "" if isinstance(parent, types.CellType) else edge

    def block_values(self, child: Any) -> None:
        self.in_internals = False
        label = "block values (view)" if child.base is not None else f"block values {describe(child)}"
        self.parts.append(label)
        self.nodes.append(PathStep(label, self.pending, None if child.base is not None else holding(child).size))
        self.pending = ""

    def show(self, parent: Any, child: Any, edge: str, last: bool) -> None:
        shown = last or not isinstance(child, _CONTAINERS)
        if edge == " lru_cache entry" and shown:  # a step of its own: "lru_cache entry -> ndarray"
            self.parts.append(edge.strip())
            edge = ""
        if edge.startswith("[") and isinstance(parent, _CONTAINERS + (_ndarray_type(),)):
            self.parts.append(f"{type(parent).__name__}{edge}")
            self.nodes.append(PathStep(type(parent).__name__, self.pending))
            self.pending = edge
            if shown:
                self.parts.append(describe(child))
                self.node(child, self.pending)
                self.pending = ""
        elif shown:
            self.parts.append(f"{edge.strip()} {describe(child)}".strip())
            self.node(child, f"{self.pending} {edge}")
            self.pending = ""
        elif edge.strip():
            self.parts.append(edge.strip())
            self.pending = f"{self.pending} {edge.strip()}".strip()


def _ndarray_type() -> type:
    np = sys.modules.get("numpy")
    return np.ndarray if np is not None else type(None)


def _sized(obj: Any) -> bool:
    h = holding(obj)
    return h.data or h.size is None


@dataclass(frozen=True)
class RetentionPath:
    """One chain of references from a root down to the object."""

    root: str  # "HOLD (global in test_batch)"
    root_kind: str  # "global", "local", "other"
    chain: tuple[Any, ...] = field(repr=False, compare=False)  # root object ... target
    library: bool = False  # the root is a library's (a global of an installed package, a frame of one)

    def steps(self) -> list[str]:
        """The path as display steps: containers show their index, attributes their name."""
        return _Renderer(self.root, self.chain).render()[0]

    def nodes(self) -> tuple[PathStep, ...]:
        """The path as a graph: one :class:`~leakhunt.explanation.PathStep` per object shown,
        each with the edge that reaches it from the previous one and the data it holds."""
        return tuple(_Renderer(self.root, self.chain).render()[1])

    def extended(self, tail: tuple[Any, ...]) -> RetentionPath:
        """This path continued by ``tail`` (whose first object is this path's last)."""
        return RetentionPath(self.root, self.root_kind, self.chain + tail[1:], self.library)

    def __str__(self) -> str:
        return " -> ".join(self.steps())


@dataclass(frozen=True)
class RetentionPaths:
    """The result of :func:`why_alive`: paths (best first) and what the search saw."""

    target: str
    size: int | None  # what the object keeps alive, in all (its data and what it holds)
    paths: tuple[RetentionPath, ...]
    complete: bool  # False when the depth or time bound stopped the search
    note: str = ""

    def __str__(self) -> str:
        from leakhunt.report.explain_text import paths_text

        return paths_text(self)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)


# ---------------------------------------------------------------------------------------
# the search


def _library_module(name: str) -> bool:
    """Is the module an installed library's (or the standard library's), not the user's code?
    ``__main__`` is always the user's: a script, ``python -c``, a REPL or a notebook (which have
    no file)."""
    if name == "__main__":
        return False
    filename = getattr(sys.modules.get(name), "__file__", None)
    return not filename or _frames.kind(filename) != _frames.USER


def _global_label(name: str, module: str, value: Any) -> str:
    """``NAME (global in module)``, by the module that defines the value where it says so (a
    class or function imported elsewhere is labelled by its own module)."""
    own = getattr(value, "__module__", None) if isinstance(value, (type, types.FunctionType)) else None
    if isinstance(own, str) and own != module and own in sys.modules \
            and getattr(sys.modules[own], name, None) is value:
        module = own
    return f"{name} (global in {module})"


def _frame_label(frame: types.FrameType, name: str) -> str:
    code = frame.f_code
    return f"{name} (local in {code.co_name} at {code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno})"


def _defined_in(obj: Any, module: str) -> bool:
    """Does ``module`` define ``obj`` (a class or function), or the type of ``obj``?"""
    own = getattr(obj, "__module__", None) if isinstance(obj, (type, types.FunctionType)) else type(obj).__module__
    return own == module


#: Groups of 64 targets from which one pass over the heap finds the referrers of all the
#: groups (below, a call of gc.get_referrers per group is faster).
_ONE_PASS_GROUPS = 6


def referrers_by_group(groups: list[tuple[Any, ...]]) -> list[list[Any]]:
    """``gc.get_referrers(*group)`` for each group, from one pass over the heap: the gc-tracked
    objects (in the gc's order) holding an object of the group; the groups themselves are not
    referrers. The heap is read a batch of objects at a time, and a batch holding none of the
    targets (most) is passed over from one referents list."""
    wanted = {id(x) for group in groups for x in group}
    own = {id(groups)} | {id(group) for group in groups}
    objects = gc.get_objects()
    hits: list[Any] = []
    for i in range(0, len(objects), 512):
        batch = objects[i:i + 512]
        if wanted.isdisjoint(map(id, gc.get_referents(*batch))):
            continue
        for j in range(0, len(batch), 16):
            part = batch[j:j + 16]
            if not wanted.isdisjoint(map(id, gc.get_referents(*part))):
                hits.extend(o for o in part if id(o) not in own and not wanted.isdisjoint(map(id, gc.get_referents(o))))
    del objects, batch
    group_of: dict[int, list[int]] = {}  # id(target) -> the groups it is in
    for i, group in enumerate(groups):
        for x in group:
            group_of.setdefault(id(x), []).append(i)
    out: list[list[Any]] = [[] for _ in groups]
    for obj in hits:  # each referrer once, in every group it holds a target of (in the gc's order)
        touched = {i for held in gc.get_referents(obj) for i in group_of.get(id(held), ())}
        for i in touched:
            out[i].append(obj)
    hits.clear()
    return out


class _Search:
    """The state of one backward search from ``targets`` (see :func:`paths_to`)."""

    def __init__(self, targets: list[Any], *, scan: HeapScan | None, named: dict[str, Any] | None,
                 caller: types.FrameType | None = None, ignore: set[int] | None = None) -> None:
        self.targets = targets
        self.target_ids = {id(t) for t in targets}
        modules = module_dicts()
        # the test framework's globals (and leakhunt's) are never roots, nor a way up to one
        framework = {rid for rid, name in modules.items() if _top_package(name) in FRAMEWORK}
        self.modules = {rid: name for rid, name in modules.items() if rid not in framework}
        self.library = {rid for rid, name in self.modules.items() if _library_module(name)}
        self.frames = {id(f): f for f in live_frames()}  # leakhunt's own are left out
        self.locals: dict[int, types.FrameType] = {}  # id(f_locals dict) -> frame
        self.local_roots: dict[int, tuple[str, str]] = {}  # id(value) -> (label, kind)
        # the caller's own variable holding a target it passed is not why the target is alive
        self.caller = caller
        self.caller_globals = id(caller.f_globals) if caller is not None and caller.f_code.co_name == "<module>" else None
        self._frame_roots()
        for label, obj in (named or {}).items():
            self.local_roots[id(obj)] = (label, "named")
        self.keep: dict[int, Any] = {id(t): t for t in targets}  # every node seen, kept alive by id
        # id(node) -> ids of the objects found referring to it, in the order found (a dict: a
        # node held by thousands, a class, is looked up in it once per referrer)
        self.ups: dict[int, dict[int, None]] = {}
        self.roots: dict[int, tuple[str, str]] = {}  # id(node held directly by a root) -> (label, kind)
        self.defined: set[int] = set()  # library roots held by a global of the module defining them
        self.hidden = scan.edges if scan is not None else HeapScan(data=False).edges
        self.own_scan = scan is None
        self.ignore = {id(self.keep), id(self.ups), id(self.roots), id(self.modules), id(self.frames),
                       id(self.locals), id(self.local_roots), id(self.hidden), id(targets), id(self),
                       id(self.__dict__), id(named), id(self.target_ids)}
        self.ignore.update(id(parents) for parents in self.hidden.values())
        self.ignore.update(framework)
        self.ignore.update(ignore or ())
        for t in targets:
            if id(t) in self.local_roots:
                self.better(id(t), *self.local_roots[id(t)])

    def _frame_roots(self) -> None:
        targets = self.target_ids
        for f in self.frames.values():
            if f.f_code.co_name == "<module>" and f.f_globals is f.f_locals:
                continue  # a module frame's locals are its globals, found as such
            filename = f.f_code.co_filename
            if _framework_file(filename):
                continue  # the test framework's frames are never roots
            kind = "library-local" if _frames.kind(filename) == _frames.LIBRARY else "local"
            try:
                loc = f.f_locals
            except Exception:
                continue
            self.locals[id(loc)] = f
            for name, value in loc.items():
                if not (f is self.caller and id(value) in targets):
                    self.local_roots.setdefault(id(value), (_frame_label(f, name), kind))

    def better(self, oid: int, label: str, kind: str) -> None:
        old = self.roots.get(oid)
        if old is None or RANKS[kind] < RANKS[old[1]]:
            self.roots[oid] = (label, kind)

    def resolved(self, tid: int) -> bool:
        """A user's global or a named root is reachable upwards from the target."""
        seen = {tid}
        todo = [tid]
        while todo:
            nid = todo.pop()
            if self.roots.get(nid, ("", "library"))[1] in ("global", "named"):
                return True
            for up in self.ups.get(nid, ()):
                if up not in seen:
                    seen.add(up)
                    todo.append(up)
        return False

    def referrer_pairs(self, frontier: list[Any]) -> list[tuple[Any, Any]]:
        """(referrer, the frontier object it holds) for one level."""
        frontier_ids = {id(x) for x in frontier}
        pairs: list[tuple[Any, Any]] = []
        # get_referrers compares every referent with each target: 64 targets a call, a pass
        # over the heap each; a wide level is one pass for all (referrers_by_group)
        groups = [tuple(frontier[start:start + 64]) for start in range(0, len(frontier), 64)]
        found = referrers_by_group(groups) if len(groups) >= _ONE_PASS_GROUPS else None
        for i, args in enumerate(groups):
            referrers = found[i] if found is not None else gc.get_referrers(*args)
            self.ignore.update((id(referrers), id(args), id(frontier_ids), id(pairs)))
            for ref in referrers:
                if id(ref) in self.ignore or self._dead_end(ref):
                    continue
                held = gc.get_referents(ref)  # what it holds of the frontier, picked in C
                picked: Any = compress(held, map(frontier_ids.__contains__, map(id, held)))
                if id(type(ref)) in frontier_ids:
                    # (an instance holds its class, but never keeps it alive: its module does)
                    own_class = type(ref)
                    picked = [h for h in picked if h is not own_class]
                pairs.extend(zip(repeat(ref), picked))
                del held, picked
            del referrers, args
        for held in frontier:
            pairs.extend((parent, held) for parent in self.hidden.get(id(held), ()) if id(parent) not in self.ignore)
        return pairs

    def _dead_end(self, ref: Any) -> bool:
        if isinstance(ref, types.FrameType):
            # a frame on no live stack (a stored exception's traceback, a suspended generator)
            # is a holder like any other: its locals stay alive while it does (issue 21, item 5)
            return ref.f_code.co_name == "<module>" or _framework_file(ref.f_code.co_filename)
        return is_framework(ref) and id(ref) not in self.modules

    def level(self, frontier: list[Any]) -> list[Any]:
        """One level upwards: roots met are recorded; the next frontier is returned."""
        new_frontier: list[Any] = []
        for ref, held in self.referrer_pairs(frontier):
            rid, hid = id(ref), id(held)
            if rid in self.modules:
                if rid == self.caller_globals and hid in self.target_ids:
                    continue  # at module level: the caller's own global holding what it asks about
                name = _edge(ref, held)
                label = _global_label(name[2:-2] if name.startswith("['") else "?", self.modules[rid], held)
                self.better(hid, label, "library" if rid in self.library else "global")
                if rid in self.library and _defined_in(held, self.modules[rid]):
                    self.defined.add(hid)
                continue
            if rid in self.locals or rid in self.frames:
                if hid in self.local_roots:
                    self.better(hid, *self.local_roots[hid])
                continue
            if isinstance(ref, types.ModuleType):  # a module's own state (atexit's callbacks)
                self.better(hid, f"{ref.__name__} (state of the module)", "library")
                continue
            parents = self.ups.setdefault(hid, {})
            if rid not in parents:
                parents[rid] = None
            if rid not in self.keep:
                self.keep[rid] = ref
                if rid in self.local_roots:
                    self.better(rid, *self.local_roots[rid])
                new_frontier.append(ref)
        return new_frontier

    def paths(self, tid: int, limit: int) -> list[RetentionPath]:
        """Breadth-first upwards from a target: the nearest roots, best kind first."""
        prev: dict[int, int | None] = {tid: None}
        level = [tid]
        found: list[int] = []
        while level:
            nxt: list[int] = []
            for nid in level:
                if nid in self.roots:
                    found.append(nid)
                    if self.roots[nid][1] == "library":
                        # a library's global keeps it whatever holds that global's object: a root
                        # above it (a user's figure whose callbacks reach pyplot's Gcf class, which
                        # holds every other figure: matplotlib/matplotlib#8519) is not why
                        continue
                for up in self.ups.get(nid, ()):
                    if up not in prev:
                        prev[up] = nid
                        nxt.append(up)
            level = nxt
        # stable: nearest first; of a library's roots, one that the module defining it holds first
        # (logging's own Logger, not another library's global alias of one)
        ranked = sorted(found, key=lambda nid: (RANKS[self.roots[nid][1]],
                                                self.roots[nid][1] == "library" and nid not in self.defined))
        out: list[RetentionPath] = []
        labels: set[str] = set()
        for nid in ranked:
            path = self.chain(nid, prev)
            if path.root not in labels:
                labels.add(path.root)
                out.append(path)
            if len(out) >= limit:
                break
        return out

    def chain(self, start: int, prev: dict[int, int | None]) -> RetentionPath:
        chain = []
        nid: int | None = start
        while nid is not None:
            chain.append(self.keep[nid])
            nid = prev[nid]
        label, kind = self.roots[start]
        library = kind in ("library", "library-local")
        shown = {"named": "local", "library": "global", "library-local": "local"}.get(kind, kind)
        return RetentionPath(root=label, root_kind=shown, chain=tuple(chain), library=library)

    def close(self) -> None:
        """Let go of everything the search holds (frames among it: no cycle may keep them)."""
        self.keep.clear()
        self.ups.clear()
        self.frames.clear()
        self.locals.clear()
        self.local_roots.clear()
        self.targets = []
        self.caller = None
        if self.own_scan:
            self.hidden.clear()


def paths_to(
    targets: list[Any],
    *,
    max_paths: int = 1,
    max_depth: int = 25,
    timeout: float = 5.0,
    max_frontier: int = 2000,
    scan: HeapScan | None = None,
    named: dict[str, Any] | None = None,
    ignore: set[int] | None = None,
    _caller: types.FrameType | None = None,
) -> tuple[list[list[RetentionPath]], bool]:
    """Up to ``max_paths`` paths from distinct roots to each of ``targets`` (best root first),
    found by one backwards search from all of them together, and whether the search was
    complete (``False``: a depth, width or time bound stopped it).

    Every level of the search is one pass over the heap whatever the number of targets, and
    targets held by the same container meet on the way up. ``named``: objects that count as
    roots under a label (``{"cache (fixture)": value}``), ranked above frame locals and library
    globals; ``ignore``: ids of the caller's own containers, never a way up. The caller must see
    frozen objects (:func:`leakhunt.settle.thawed`).
    """
    search = _Search(targets, scan=scan, named=named, caller=_caller, ignore=ignore)
    frontier: list[Any] = list({id(t): t for t in targets}.values())
    deadline = time.perf_counter() + timeout
    complete = True
    target_ids = [id(t) for t in targets]
    depth = 0
    try:
        while frontier:
            if depth >= max_depth or time.perf_counter() > deadline:
                complete = False
                break
            if max_paths == 1 and all(search.resolved(t) for t in target_ids):
                break
            depth += 1
            frontier = search.level(frontier)
            if len(frontier) > max_frontier:  # wide levels (a popular object) are cut
                complete = False
                frontier = frontier[:max_frontier]
        return [search.paths(tid, max_paths) for tid in target_ids], complete
    finally:
        frontier = []
        search.close()


def why_alive(
    obj: Any,
    *,
    max_paths: int = 3,
    max_depth: int = 25,
    timeout: float = 5.0,
    max_frontier: int = 200,
    _skip_callers: int = 0,
) -> RetentionPaths:
    """Labelled reference paths from roots (module globals, frame locals) down to ``obj``.

    ``str(why_alive(obj))`` gives one line per path, e.g.::

        HOLD (global in batch) -> list[0] -> DataFrame (1 row x 10 cols)
            -> block values (view) -> .base ndarray 95.4 MiB

    The search goes backwards from ``obj`` (:func:`paths_to`), following numpy ``.base`` edges
    and object arrays that the gc cannot see, and stops after ``max_depth`` levels or
    ``timeout`` seconds of searching (``complete`` is then false); ``max_frontier`` cuts wide
    levels. Its own frames are left out, and so is the caller's variable holding ``obj`` as
    the argument it passed. ``size`` is everything ``obj`` keeps alive, its data included.
    """
    if max_paths < 1 or max_depth < 1 or timeout <= 0:
        raise ValueError(
            f"why_alive needs max_paths >= 1, max_depth >= 1 and timeout > 0; "
            f"got max_paths={max_paths!r}, max_depth={max_depth!r}, timeout={timeout!r}"
        )
    caller = sys._getframe(_skip_callers + 1)
    with thawed():  # frozen objects are invisible to gc.get_referrers
        found, complete = paths_to([obj], max_paths=max_paths, max_depth=max_depth, timeout=timeout,
                                   max_frontier=max_frontier, _caller=caller)
    paths = found[0]
    note = "" if complete else "search stopped by its depth, width or time bound"
    if not paths and complete:
        note = _no_root_note(obj, caller.f_globals if caller.f_code.co_name == "<module>" else None)
    del caller
    from leakhunt.attribution import kept_by

    return RetentionPaths(target=describe(obj), size=kept_by(obj), paths=tuple(paths), complete=complete, note=note)


def _no_root_note(obj: Any, caller_globals: dict[str, Any] | None = None) -> str:
    chain = object_array_cycle(obj, children)
    if chain is not None and any(is_object_array(o) for o in chain):
        return (f"no root holds it: it is in {CYCLE_ROOT}: "
                + " -> ".join(RetentionPath("", "other", chain).steps()[1:]))
    frames = live_frames()
    skipped = {id(caller_globals)} if caller_globals is not None else set()  # the asker's own variable
    for f in frames:
        try:
            skipped.add(id(f.f_locals))
        except Exception:
            continue
    referrers = [r for r in gc.get_referrers(obj) if not isinstance(r, types.FrameType) and id(r) not in skipped]
    del frames
    if not referrers:
        return "no path from a module global or a frame local was found"
    return ("no root holds it: it is held only by a reference cycle (garbage that gc.collect() frees) "
            "or by a C extension's own reference")


def biggest_buffers(min_size: int = 1 << 20, limit: int = 5) -> list[tuple[Any, int]]:
    """The biggest data holders alive (numpy arrays that own their memory, Arrow objects, polars
    frames, bytes), largest first; of Arrow objects sharing buffers, the one that holds most."""
    with thawed():
        scan = HeapScan(edges=False)
    sized = [(obj, holding(obj)) for obj in scan.data]
    scan.clear()
    sized.sort(key=lambda pair: pair[1].size or 0, reverse=True)
    out: list[tuple[Any, int]] = []
    seen: set[Any] = set()
    for obj, held in sized:
        size = held.size or 0
        if size < min_size or len(out) >= limit:
            break
        keys = {key for key, _ in held.buffers}
        if keys and keys <= seen:
            continue  # a column or slice of a holder already listed
        seen.update(keys)
        out.append((obj, size))
    return out

