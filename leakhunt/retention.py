"""Why is this memory still alive? Reference paths from roots down to an object.

The garbage collector knows most edges (lists, dicts, instances, pandas internals), but not the
ones that keep data work's big buffers alive: a numpy view holds its ``.base`` through a C
pointer that ``gc.get_referents`` never reports, and numpy arrays are not gc-tracked at all, so
``gc.get_referrers(base)`` returns nothing (FINDINGS.md). We walk backwards with
``gc.get_referrers`` one level at a time, and add the hidden ``view -> .base`` edges ourselves
from one forward pass over the heap. Arrow slices keep their parent's buffers in C++; we report
them with the size of every buffer they hold (``get_total_buffer_size``).

Roots: module globals (by name), frame locals of live threads (by name), and anything a module
global reaches (class attributes, closure cells, ``lru_cache`` wrappers) with labelled edges.
"""

from __future__ import annotations

import gc
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any

from leakhunt import frames as _frames
from leakhunt.explanation import PathStep
from leakhunt.settle import thawed
from leakhunt.units import format_size

__all__ = ["HeapScan", "RetentionPath", "RetentionPaths", "why_alive", "paths_to", "biggest_buffers", "describe",
           "buffer_size"]

_CONTAINERS = (list, tuple, dict, set, frozenset)
_PANDAS_INTERNALS = ("pandas.core.internals", "pandas._libs.internals")
# Attributes through which pandas and pyarrow objects hold their data, checked by identity
# when an object has no __dict__ entry for the edge.
_KNOWN_ATTRS = ("_mgr", "values", "_values", "_data", "_ndarray", "_pa_array", "blocks", "obj",
                "_obj_with_exclusions", "_selected_obj", "base", "array", "_cache")


# ---------------------------------------------------------------------------------------
# sizes and descriptions


def _numpy() -> Any:
    return sys.modules.get("numpy")


def _is_ndarray(obj: Any) -> bool:
    np = _numpy()
    return np is not None and isinstance(obj, np.ndarray)


_ARROW_KINDS = ("Table", "RecordBatch", "ChunkedArray", "Array", "Buffer")


def _arrow_types() -> tuple[type, ...]:
    """pyarrow's data-holding classes, or () when pyarrow is not imported."""
    pa = sys.modules.get("pyarrow")
    if pa is None:
        return ()
    return tuple(cls for cls in (getattr(pa, name, None) for name in _ARROW_KINDS) if isinstance(cls, type))


def _arrow_kind(obj: Any) -> str | None:
    pa = sys.modules.get("pyarrow")
    if pa is None:
        return None
    for name in _ARROW_KINDS:
        cls = getattr(pa, name, None)
        if cls is not None and isinstance(obj, cls):
            return name
    return None


def buffer_size(obj: Any) -> int | None:
    """Bytes of data an object keeps alive by itself (numpy buffer, Arrow buffers, bytes)."""
    if _is_ndarray(obj):
        return int(obj.nbytes)
    kind = _arrow_kind(obj)
    if kind == "Buffer":
        return int(obj.size)
    if kind is not None:
        try:
            return int(obj.get_total_buffer_size())
        except Exception:
            return int(getattr(obj, "nbytes", 0))
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return sys.getsizeof(obj)
    return None


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def describe(obj: Any) -> str:
    """A short human description: ``DataFrame (1 row)``, ``ndarray 95.4 MiB (view)``."""
    tp = type(obj)
    name = tp.__name__
    module = tp.__module__ or ""
    try:
        if module.startswith("pandas"):
            if name == "DataFrame":
                return f"DataFrame ({_rows(len(obj))} x {obj.shape[1]} cols)"
            if name == "Series":
                return f"Series ({_rows(len(obj))})"
            if name.endswith("Index"):
                return f"{name} ({len(obj):,} entries)"
            if "GroupBy" in name:
                return name
        if _is_ndarray(obj):
            if obj.base is not None:
                return f"ndarray view {obj.shape} of a larger buffer"
            return f"ndarray {format_size(obj.nbytes)}"
        kind = _arrow_kind(obj)
        if kind is not None:
            size = buffer_size(obj)
            if kind == "Buffer":
                return f"pyarrow Buffer {format_size(size)}"
            return f"pyarrow {kind} ({_rows(len(obj))}) holding buffers of {format_size(size)}"
        if isinstance(obj, (bytes, bytearray)):
            return f"{name} {format_size(len(obj))}"
        if isinstance(obj, types.FunctionType):
            return f"function {obj.__qualname__}"
        if isinstance(obj, type):
            return f"class {obj.__qualname__}"
        if isinstance(obj, types.ModuleType):
            return f"module {obj.__name__}"
        if name == "_lru_cache_wrapper":
            return f"lru_cache {getattr(obj, '__qualname__', '?')}"
    except Exception:  # describing must never fail an explanation
        pass
    return name


# ---------------------------------------------------------------------------------------
# edges


def _edge(parent: Any, child: Any) -> str:
    """How ``parent`` refers to ``child``: ``[0]``, ``['key']``, ``.attr``, ``.base`` or ``''``."""
    try:
        if isinstance(parent, (list, tuple)):
            for i, item in enumerate(parent):
                if item is child:
                    return f"[{i}]"
        elif isinstance(parent, dict):
            for key, value in parent.items():
                if value is child:
                    return f"[{key!r}]"
                if key is child:
                    return " key"
        elif isinstance(parent, (set, frozenset)):
            return " member"
        elif isinstance(parent, types.CellType):
            return ".cell_contents"
        elif isinstance(parent, types.FunctionType):
            if parent.__closure__:
                for name, cell in zip(parent.__code__.co_freevars, parent.__closure__):
                    if cell is child:
                        return f" closure variable {name!r}"
            if parent.__defaults__ is child:
                return ".__defaults__"
        elif _is_ndarray(parent) and parent.base is child:
            return ".base"
        elif type(parent).__name__ == "_lru_cache_wrapper":
            return " lru_cache entry ->"  # the C cache's links are not Python-visible steps
        instance_dict = getattr(parent, "__dict__", None)
        if isinstance(instance_dict, dict):
            if instance_dict is child:
                return ".__dict__"
            for key, value in instance_dict.items():
                if value is child:
                    return f".{key}"
        for slot in getattr(type(parent), "__slots__", ()) or ():
            if isinstance(slot, str) and getattr(parent, slot, None) is child:
                return f".{slot}"
        for attr in _KNOWN_ATTRS:
            try:
                if getattr(parent, attr, None) is child:
                    return f".{attr}"
            except Exception:
                continue
    except Exception:
        pass
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


@dataclass(frozen=True)
class RetentionPath:
    """One chain of references from a root down to the object."""

    root: str  # "HOLD (global in test_batch)"
    root_kind: str  # "global", "local", "other"
    chain: tuple[Any, ...] = field(repr=False, compare=False)  # root object ... target

    def steps(self) -> list[str]:
        """The path as display steps: containers show their index, attributes their name."""
        return self._render()[0]

    def nodes(self) -> tuple[PathStep, ...]:
        """The path as a graph: one :class:`~leakhunt.explanation.PathStep` per object shown,
        each with the edge that reaches it from the previous one and the data it holds."""
        return tuple(self._render()[1])

    def _render(self) -> tuple[list[str], list[PathStep]]:
        parts = [self.root]
        nodes = [PathStep(self.root)]
        pending = ""  # the edge into the next node, when it was said before the node

        def node(obj: Any, edge: str) -> None:
            nodes.append(PathStep(describe(obj), edge.strip(), buffer_size(obj)))

        chain = self.chain
        if len(chain) == 1:  # the root holds the object itself: still say what it is
            parts.append(describe(chain[0]))
            node(chain[0], "")
        in_internals = False
        for i in range(1, len(chain)):
            parent, child = chain[i - 1], chain[i]
            last = i == len(chain) - 1
            if not last and (_is_internal(child) or (in_internals and isinstance(child, _CONTAINERS))):
                in_internals = True
                continue
            if in_internals and _is_ndarray(child):
                in_internals = False
                if child.base is not None:
                    parts.append("block values (view)")
                    nodes.append(PathStep("block values (view)", pending))
                else:
                    parts.append(f"block values {describe(child)}")
                    nodes.append(PathStep(f"block values {describe(child)}", pending, buffer_size(child)))
                pending = ""
                continue
            in_internals = False
            if not last and _is_attr_dict(parent, child):
                continue  # an instance's or class's __dict__: the next step shows as .attr
            if not last and isinstance(parent, types.FunctionType) and parent.__closure__ is child:
                continue  # the closure tuple: the next step names the variable
            edge = _edge(parent, child)
            owner = chain[i - 2] if i >= 2 else None
            if isinstance(parent, dict) and _is_attr_dict(owner, parent) and edge.startswith("['"):
                edge = "." + edge[2:-2]
            elif isinstance(child, types.CellType) and isinstance(owner, types.FunctionType):
                names = dict(zip(owner.__code__.co_freevars, owner.__closure__ or ()))
                edge = next((f" closure variable {n!r} ->" for n, c in names.items() if c is child), edge)
                parts.append(edge.strip(" ->"))
                pending = edge.strip(" ->")
                continue
            elif isinstance(parent, types.CellType):
                edge = ""
            shown = last or not isinstance(child, _CONTAINERS)
            if edge.startswith("[") and isinstance(parent, _CONTAINERS):
                parts.append(f"{type(parent).__name__}{edge}")
                nodes.append(PathStep(type(parent).__name__, pending))
                pending = edge
                if shown:
                    parts.append(describe(child))
                    node(child, pending)
                    pending = ""
            elif shown:
                parts.append(f"{edge.strip()} {describe(child)}".strip())
                node(child, f"{pending} {edge}")
                pending = ""
            elif edge.strip():
                parts.append(edge.strip())
                pending = f"{pending} {edge.strip()}".strip()
        return parts, nodes

    def __str__(self) -> str:
        return " -> ".join(self.steps())


@dataclass(frozen=True)
class RetentionPaths:
    """The result of :func:`why_alive`: paths (shortest first) and what the search saw."""

    target: str
    size: int | None
    paths: tuple[RetentionPath, ...]
    complete: bool  # False when the depth or time bound stopped the search
    note: str = ""

    def __str__(self) -> str:
        if not self.paths:
            why = self.note or "no path from a module global or a frame local was found"
            return f"{self.target}: {why}"
        return "\n".join(str(p) for p in self.paths)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)


# ---------------------------------------------------------------------------------------
# roots


def _own_frame(frame: types.FrameType) -> bool:
    """A frame of leakhunt itself (the search, the explanation, a budget's wrapper, the plugin)."""
    return _frames.is_ours(frame.f_code.co_filename)


def _module_dicts() -> dict[int, str]:
    out: dict[int, str] = {}
    for name, module in list(sys.modules.items()):
        d = getattr(module, "__dict__", None)
        if isinstance(d, dict):
            out[id(d)] = name
    return out


def _live_frames(skip_depth: int) -> list[types.FrameType]:
    """Frames of every thread, minus ours (and the ``skip_depth`` callers above us)."""
    frames = []
    me = sys._getframe()
    skip: set[int] = set()
    f: types.FrameType | None = me
    for _ in range(skip_depth + 1):
        if f is None:
            break
        skip.add(id(f))
        f = f.f_back
    for top in sys._current_frames().values():
        f = top
        while f is not None:
            if id(f) not in skip and not _own_frame(f):
                frames.append(f)
            f = f.f_back
    return frames


def _frame_label(frame: types.FrameType, name: str) -> str:
    code = frame.f_code
    return f"{name} (local in {code.co_name} at {code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno})"


# ---------------------------------------------------------------------------------------
# hidden edges


_ATOMIC = (int, float, complex, str, bool, type(None))


class HeapScan:
    """One pass over the heap: the edges ``gc.get_referrers`` cannot see, and the data buffers.

    Edges, as ``{id(child): [parents]}``, of two kinds: a numpy view's ``.base`` (arrays have
    no gc traversal), and anything held by a container the gc does not track (CPython untracks
    a dict or tuple whose items all have untracked types, so a dict of arrays is invisible to
    ``get_referrers``). Every such parent is itself a referent of a tracked object or of a frame
    local, so one forward pass finds them all. On the way it collects the buffers (numpy
    owners, Arrow objects, bytes) of ``min_size`` bytes and more, which are invisible to
    ``gc.get_objects()`` too.

    The heap is walked with ``gc.get_referents`` over batches of objects: one list per batch
    rather than one per object, which matters under tracemalloc (every list is traced).
    """

    def __init__(self, *, min_size: int | None = None, edges: bool = True) -> None:
        np = _numpy()
        ndarray = np.ndarray if np is not None else None
        arrow_types = _arrow_types()
        containers = _CONTAINERS
        walk = (ndarray, *containers) if ndarray is not None else containers  # what can hide an edge
        wanted = (*walk, bytes, bytearray, *arrow_types)
        self.edges: dict[int, list[Any]] = {}
        buffers: dict[int, tuple[Any, int]] = {}
        seen: set[int] = set()
        stack: list[Any] = []
        edge_map = self.edges
        collect = min_size is not None
        floor = min_size or 0
        is_tracked = gc.is_tracked

        def consider(obj: Any) -> None:
            if ndarray is not None and isinstance(obj, ndarray):
                owner = obj
                while isinstance(owner.base, ndarray):
                    owner = owner.base
                size = int(owner.nbytes)
                if size >= floor and id(owner) not in buffers:
                    buffers[id(owner)] = (owner, size)
            elif isinstance(obj, (bytes, bytearray)):
                size = sys.getsizeof(obj)
                if size >= floor:
                    buffers[id(obj)] = (obj, size)
            elif arrow_types and isinstance(obj, arrow_types):
                size = buffer_size(obj) or 0
                if size >= floor:
                    buffers.setdefault(id(obj), (obj, size))

        def visit(ref: Any) -> None:
            stack.append(ref)
            while stack:
                obj = stack.pop()
                if id(obj) in seen:
                    continue
                if ndarray is not None and isinstance(obj, ndarray):
                    seen.add(id(obj))
                    if collect:
                        consider(obj)
                    base = obj.base
                    if base is not None and not isinstance(base, _ATOMIC):
                        if edges:
                            edge_map.setdefault(id(base), []).append(obj)
                        stack.append(base)
                        if collect and not isinstance(base, walk):
                            consider(base)
                elif isinstance(obj, containers) and not is_tracked(obj):
                    seen.add(id(obj))
                    for child in gc.get_referents(obj):
                        if not isinstance(child, _ATOMIC):
                            if edges:
                                edge_map.setdefault(id(child), []).append(obj)
                            if isinstance(child, walk):
                                stack.append(child)
                            elif collect:
                                consider(child)

        def take(ref: Any) -> None:
            if isinstance(ref, walk) and not is_tracked(ref):
                visit(ref)  # considers what it walks
            elif collect:
                consider(ref)

        # Everything worth a look is untracked (arrays, buffers, containers the gc gave up on),
        # except Arrow objects, which may be tracked: test the cheap things first.
        skip = {int, float, str, bool, type(None), complex, type, types.CodeType}
        objects = gc.get_objects()
        for i in range(0, len(objects), 1024):
            for ref in gc.get_referents(*objects[i:i + 1024]):
                if is_tracked(ref):
                    if arrow_types and collect and isinstance(ref, arrow_types):
                        consider(ref)
                elif type(ref) not in skip and isinstance(ref, wanted):
                    take(ref)
        del objects
        for frame in _live_frames(skip_depth=1):
            try:
                values = list(frame.f_locals.values())
            except Exception:
                continue
            for value in values:
                if isinstance(value, wanted):
                    take(value)
        ranked = sorted(buffers.values(), key=lambda pair: pair[1], reverse=True)
        buffers.clear()
        # An Arrow table and its columns share buffers: keep the largest holder of a size only once.
        self.buffers: list[tuple[Any, int]] = []
        arrow_sizes: set[int] = set()
        for obj, size in ranked:
            if _arrow_kind(obj) is not None:
                if size in arrow_sizes:
                    continue
                arrow_sizes.add(size)
            self.buffers.append((obj, size))

    def clear(self) -> None:
        self.edges.clear()
        self.buffers.clear()


def _hidden_edges() -> dict[int, list[Any]]:
    return HeapScan(edges=True).edges


# ---------------------------------------------------------------------------------------
# the search


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

    The search goes backwards from ``obj`` one level at a time, following numpy ``.base``
    edges that the gc cannot see, and stops after ``max_paths`` paths, ``max_depth`` levels or
    ``timeout`` seconds of searching after one pass over the heap (``complete`` is then
    false); ``max_frontier`` cuts wide levels. Its own frames are left out, and so is the
    caller's frame holding ``obj`` as the argument it passed.
    """
    with thawed():  # frozen objects are invisible to gc.get_referrers
        return _why_alive(obj, max_paths=max_paths, max_depth=max_depth, timeout=timeout,
                          max_frontier=max_frontier, _skip_callers=_skip_callers + 1)


def _why_alive(
    obj: Any,
    *,
    max_paths: int = 3,
    max_depth: int = 25,
    timeout: float = 5.0,
    max_frontier: int = 200,
    _skip_callers: int = 0,
) -> RetentionPaths:
    if max_paths < 1 or max_depth < 1 or timeout <= 0:
        raise ValueError(
            f"why_alive needs max_paths >= 1, max_depth >= 1 and timeout > 0; "
            f"got max_paths={max_paths!r}, max_depth={max_depth!r}, timeout={timeout!r}"
        )
    module_dicts = _module_dicts()
    frames = _live_frames(skip_depth=1 + _skip_callers)
    caller = sys._getframe(1 + _skip_callers)
    frame_ids = {id(f): f for f in frames}
    # f_locals dicts: reading f_locals makes CPython keep a dict per frame; it is a root.
    locals_dicts: dict[int, types.FrameType] = {}
    local_roots: dict[int, str] = {}
    for f in frames:
        if f.f_code.co_name == "<module>" and f.f_globals is f.f_locals:
            continue  # a module frame's locals are its globals, found as such
        try:
            loc = f.f_locals
        except Exception:
            continue
        locals_dicts[id(loc)] = f
        for name, value in loc.items():
            if value is obj and f is caller:
                continue  # the argument the caller passed us is not why it is alive
            local_roots.setdefault(id(value), _frame_label(f, name))
        del loc

    # next_hop[id(x)] = the object x refers to on the way to obj; keeps everything alive.
    next_hop: dict[int, Any] = {id(obj): None}
    keep: dict[int, Any] = {id(obj): obj}
    paths: list[RetentionPath] = []
    frontier: list[Any] = [obj]
    ignore = {id(next_hop), id(keep), id(paths), id(frontier), id(module_dicts), id(frame_ids),
              id(locals_dicts), id(local_roots), id(frames), id(sys._getframe())}
    complete = True

    def chain_from(start: Any) -> tuple[Any, ...]:
        out = [start]
        nxt = next_hop.get(id(start))
        while nxt is not None:
            out.append(nxt)
            nxt = next_hop.get(id(nxt))
        return tuple(out)

    def add_root_path(label: str, kind: str, start: Any) -> None:
        paths.append(RetentionPath(root=label, root_kind=kind, chain=chain_from(start)))

    if id(obj) in local_roots:
        add_root_path(local_roots[id(obj)], "local", obj)
    hidden = _hidden_edges()
    # The clock starts after the one pass over the heap: under a user's tracemalloc that pass
    # alone can take seconds on a loaded machine, and a bound it eats finds no path at all.
    deadline = time.perf_counter() + timeout
    ignore.add(id(hidden))
    ignore.update(id(parents) for parents in hidden.values())  # our lists are not referrers

    def enough() -> bool:
        # Temporaries in frames are found first (they are near); keep looking for a global.
        return len(paths) >= max_paths and any(p.root_kind == "global" for p in paths)

    depth = 0
    while frontier and not enough():
        if depth >= max_depth or time.perf_counter() > deadline:
            complete = False
            break
        depth += 1
        frontier_ids = {id(x) for x in frontier}
        ignore.add(id(frontier_ids))
        # An exact tuple is passed through to get_referrers uncopied, so this very tuple is the
        # one that shows up among the referrers, and we can leave it out by identity.
        args = tuple(frontier)
        referrers = gc.get_referrers(*args)
        ignore.add(id(referrers))
        ignore.add(id(args))
        candidates: list[tuple[Any, Any]] = []  # (referrer, the frontier object it holds)
        for ref in referrers:
            rid = id(ref)
            if rid in ignore or rid in next_hop:
                continue
            if isinstance(ref, types.FrameType):
                if _own_frame(ref) or rid not in frame_ids or ref.f_code.co_name == "<module>":
                    continue  # a module frame's locals are its globals: found as globals
            held = next((r for r in gc.get_referents(ref) if id(r) in frontier_ids), None)
            if held is None:
                continue
            candidates.append((ref, held))
        for held in frontier:
            for parent in hidden.get(id(held), ()):
                if id(parent) not in next_hop and id(parent) not in ignore:
                    candidates.append((parent, held))
        ignore.discard(id(args))
        del referrers, args
        new_frontier: list[Any] = []
        for ref, held in candidates:
            rid = id(ref)
            if rid in next_hop:
                continue
            if rid in module_dicts:
                edge = _edge(ref, held)
                name = edge[2:-2] if edge.startswith("['") else "?"
                label = f"{name} (global in {module_dicts[rid]})"
                add_root_path(label, "global", held)
            elif rid in locals_dicts or rid in frame_ids:
                label = local_roots.get(id(held))
                if label is not None:  # None: the caller's own argument, not a reason
                    add_root_path(label, "local", held)
            else:
                next_hop[rid] = held
                keep[rid] = ref
                if id(ref) in local_roots:
                    add_root_path(local_roots[rid], "local", ref)
                new_frontier.append(ref)
            if enough():
                break
        candidates.clear()
        # Wide levels (a popular object) are cut: paths through them are rarely the story.
        if len(new_frontier) > max_frontier:
            complete = False
            new_frontier = new_frontier[:max_frontier]
        frontier[:] = new_frontier
    paths.sort(key=lambda p: (p.root_kind != "global", len(p.chain)))
    unique: dict[str, RetentionPath] = {}
    for path in paths:
        unique.setdefault(str(path), path)
    paths[:] = list(unique.values())[:max_paths]
    note = "" if complete else "search stopped by its depth, width or time bound"
    size = buffer_size(obj)
    result = RetentionPaths(target=describe(obj), size=size, paths=tuple(paths), complete=complete, note=note)
    next_hop.clear()
    keep.clear()
    hidden.clear()
    return result


def biggest_buffers(min_size: int = 1 << 20, limit: int = 5) -> list[tuple[Any, int]]:
    """The biggest data buffers alive (numpy bases, Arrow objects, bytes), largest first.

    numpy arrays and Arrow objects are invisible to ``gc.get_objects()``; they are found as
    referents of tracked objects and of frame locals, and views are resolved to the buffer
    that owns the memory.
    """
    with thawed():
        scan = HeapScan(min_size=min_size, edges=False)
    return scan.buffers[:limit]


# ---------------------------------------------------------------------------------------
# many targets at once


def paths_to(
    targets: list[Any],
    *,
    max_depth: int = 25,
    timeout: float = 5.0,
    max_frontier: int = 2000,
    skip_module: Any = None,
    scan: HeapScan | None = None,
    named: dict[str, Any] | None = None,
    library_module: Any = None,
) -> list[RetentionPath | None]:
    """One path from a root to each of ``targets``, found by one backwards search from all of
    them together.

    Every level of the search is one ``gc.get_referrers`` pass over the heap whatever the
    number of targets, so explaining sixty buffers costs about what explaining one does, and
    buffers held by the same container meet on the way up. Roots, best first: a global of the
    user's code, an object the caller ``named`` (``{"label": obj}``, e.g. a test's fixture
    values), a frame local, a global of a library (``library_module(name)`` says which
    modules are libraries'). ``skip_module(name)`` leaves a module's globals out (leakhunt's
    own). ``None`` where no root was reached within the bounds.
    """
    module_dicts = {k: v for k, v in _module_dicts().items() if not (skip_module and skip_module(v))}
    frames = _live_frames(skip_depth=1)
    frame_ids = {id(f): f for f in frames}
    locals_dicts: dict[int, types.FrameType] = {}
    local_roots: dict[int, str] = {}
    for f in frames:
        if f.f_code.co_name == "<module>" and f.f_globals is f.f_locals:
            continue
        try:
            loc = f.f_locals
        except Exception:
            continue
        locals_dicts[id(loc)] = f
        for name, value in loc.items():
            local_roots.setdefault(id(value), _frame_label(f, name))
        del loc

    keep: dict[int, Any] = {id(t): t for t in targets}  # every node seen, kept alive by id
    ups: dict[int, list[int]] = {}  # id(node) -> ids of the objects found referring to it
    roots: dict[int, tuple[str, str]] = {}  # id(node held directly by a root) -> (label, kind)
    frontier: list[Any] = list({id(t): t for t in targets}.values())
    named_roots = {id(obj): label for label, obj in (named or {}).items()}
    for rid_, label in named_roots.items():
        local_roots[rid_] = label  # found like a local, ranked above one
    library = {rid_ for rid_, name in module_dicts.items() if library_module and library_module(name)}
    rank = {"global": 0, "named": 1, "local": 2, "library": 3}

    def kind_of_local(oid: int) -> str:
        return "named" if oid in named_roots else "local"

    def better(oid: int, label: str, kind: str) -> None:
        old = roots.get(oid)
        if old is None or rank[kind] < rank[old[1]]:
            roots[oid] = (label, kind)

    for t in frontier:
        if id(t) in local_roots:
            roots[id(t)] = (local_roots[id(t)], kind_of_local(id(t)))
    hidden = scan.edges if scan is not None else _hidden_edges()
    ignore = {id(keep), id(ups), id(roots), id(frontier), id(module_dicts), id(frame_ids), id(locals_dicts),
              id(local_roots), id(frames), id(hidden), id(targets), id(sys._getframe()), id(named),
              id(named_roots)}
    ignore.update(id(parents) for parents in hidden.values())
    deadline = time.perf_counter() + timeout
    target_ids = [id(t) for t in targets]
    complete = True

    def resolved(tid: int) -> bool:
        # a user's global or a named root reachable upwards from the target in what is explored
        seen = {tid}
        todo = [tid]
        while todo:
            nid = todo.pop()
            if roots.get(nid, ("", "library"))[1] in ("global", "named"):
                return True
            for up in ups.get(nid, ()):
                if up not in seen:
                    seen.add(up)
                    todo.append(up)
        return False

    depth = 0
    while frontier:
        if depth >= max_depth or time.perf_counter() > deadline:
            complete = False
            break
        if all(resolved(t) for t in target_ids):
            break
        depth += 1
        frontier_ids = {id(x) for x in frontier}
        args = tuple(frontier)
        referrers = gc.get_referrers(*args)
        ignore.update((id(referrers), id(args), id(frontier_ids)))
        new_frontier: list[Any] = []
        pairs: list[tuple[Any, Any]] = []
        for ref in referrers:
            rid = id(ref)
            if rid in ignore:
                continue
            if isinstance(ref, types.FrameType):
                if _own_frame(ref) or rid not in frame_ids or ref.f_code.co_name == "<module>":
                    continue
            for held in gc.get_referents(ref):
                if id(held) in frontier_ids:
                    pairs.append((ref, held))
        for held in frontier:
            for parent in hidden.get(id(held), ()):
                if id(parent) not in ignore:
                    pairs.append((parent, held))
        del referrers, args
        for ref, held in pairs:
            rid, hid = id(ref), id(held)
            if rid in module_dicts:
                edge = _edge(ref, held)
                name = edge[2:-2] if edge.startswith("['") else "?"
                label = f"{name} (global in {module_dicts[rid]})"
                better(hid, label, "library" if rid in library else "global")
                continue
            if rid in locals_dicts or rid in frame_ids:
                if hid in local_roots:
                    better(hid, local_roots[hid], kind_of_local(hid))
                continue
            parents = ups.setdefault(hid, [])
            if rid not in parents:
                parents.append(rid)
            if rid not in keep:
                keep[rid] = ref
                if rid in local_roots:
                    better(rid, local_roots[rid], kind_of_local(rid))
                new_frontier.append(ref)
        pairs.clear()
        if len(new_frontier) > max_frontier:
            complete = False
            new_frontier = new_frontier[:max_frontier]
        frontier[:] = new_frontier
        del new_frontier  # a list holding the frontier would be found as its referrer

    out: list[RetentionPath | None] = []
    for tid in target_ids:
        out.append(_shortest(tid, ups, roots, keep))
    keep.clear()
    ups.clear()
    if scan is None:
        hidden.clear()
    del complete
    return out


def _shortest(tid: int, ups: dict[int, list[int]], roots: dict[int, tuple[str, str]],
              keep: dict[int, Any]) -> RetentionPath | None:
    """Breadth-first upwards from a target: the nearest root of the best kind (a user's global,
    then a named root, a frame local, a library's global); nearest within a kind."""
    rank = {"global": 0, "named": 1, "local": 2, "library": 3}
    prev: dict[int, int | None] = {tid: None}
    level = [tid]
    best: int | None = None
    while level:
        nxt: list[int] = []
        for nid in level:
            found = roots.get(nid)
            if found is not None:
                if found[1] == "global":
                    return _chain_path(nid, prev, roots, keep)
                if best is None or rank[found[1]] < rank[roots[best][1]]:
                    best = nid
            for up in ups.get(nid, ()):
                if up not in prev:
                    prev[up] = nid
                    nxt.append(up)
        level = nxt
    return _chain_path(best, prev, roots, keep) if best is not None else None


def _chain_path(start: int, prev: dict[int, int | None], roots: dict[int, tuple[str, str]],
                keep: dict[int, Any]) -> RetentionPath:
    chain = []
    nid: int | None = start
    while nid is not None:
        chain.append(keep[nid])
        nid = prev[nid]
    label, kind = roots[start]
    kind = {"named": "local", "library": "global"}.get(kind, kind)
    return RetentionPath(root=label, root_kind=kind, chain=tuple(chain))
