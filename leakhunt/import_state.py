"""What a block's imports left alive, told by two forward walks instead of a backward search.

A script run by ``leakhunt run`` is one block, its imports included: pandas, pyarrow and polars
leave thousands of small survivors behind (typing's caches, ``re``'s cache, the registries and
weak references of the classes they define...). The backward search
(:func:`leakhunt.retention.paths_to`) followed each of them up to a library's global, one pass
over the heap per level (docs/run/pipeline.py: 2,600 chunks, ~4.5 s of searching, for roots
never shown). :func:`mark` tells them apart with two walks forward, once each:

- from the user's roots: the globals of the user's modules (``__main__`` among them), the
  locals of every frame, the objects the caller names. What they reach is never import state:
  the search finds the user's root for it;
- from the namespaces of the libraries' modules, each object labelled by the global that
  reaches it first (breadth first).

Both walks stop at modules (a module's namespace is where a search stops too), at the test
framework's and leakhunt's objects, and the second at data holders (numpy arrays, Arrow and
polars objects, bytes). A chunk only the second walk reaches, holding no data, is *import
state* (code loaded, not searched) when everything such chunks under its global hold is below
what an explanation shows of a library's root (``_LIBRARY_SHOWN`` of
:mod:`leakhunt.attribution`): a library registry that the block filled (matplotlib's figures,
a library's cache of the user's objects, thousands of loggers) is still searched and named.
A chunk neither walk reaches is searched as before (what no Python object holds is only said
of a chunk searched to the end).
"""

from __future__ import annotations

import gc
import sys
import types
from typing import Any, Callable, Iterable

from leakhunt import frames as _frames
from leakhunt.defaults import THRESHOLD
from leakhunt.heap import PLAIN, _maybe_data_type, children, live_frames, module_dicts
from leakhunt.sizing import is_data

__all__ = ["mark", "MIN_CHUNKS"]

#: Below this many chunks left to search (or beyond what the user's roots reach), the search is
#: cheap: nothing is told here.
MIN_CHUNKS = 256
_ATOMIC = frozenset({int, float, complex, bool, type(None), str, bytes})
_STOP: dict[type, bool] = {}


def _stops(tp: type) -> bool:
    """A walk does not enter objects of this type: modules, the framework's and leakhunt's own."""
    found = _STOP.get(tp)
    if found is None:
        found = _STOP[tp] = issubclass(tp, types.ModuleType) or _framework_type(tp)
    return found


def _ndarray() -> type | None:
    np = sys.modules.get("numpy")
    return np.ndarray if np is not None else None


def _user_reach(starts: Iterable[Any], namespaces: set[int]) -> set[int]:
    """Ids of everything the user's roots reach (breadth first, through gc's referents and the
    edges only a numpy array knows: its ``.base``, an object array's elements; not from an
    instance to its class, which a backward search does not take either)."""
    seen: set[int] = set()
    frontier = [o for o in starts if type(o) not in _ATOMIC and id(o) not in namespaces and not _stops(type(o))]
    seen.update(map(id, frontier))
    while frontier:
        held = _held(frontier)
        frontier = []
        for obj in held:
            oid = id(obj)
            if oid in seen or type(obj) in _ATOMIC:
                continue
            seen.add(oid)
            if oid not in namespaces and not _stops(type(obj)):
                frontier.append(obj)
        del held
    return seen


def _held(frontier: list[Any]) -> list[Any]:
    """What the objects hold (as :func:`_user_reach` says): plain containers a batch at a time."""
    ndarray = _ndarray()
    plain = [o for o in frontier if type(o) in PLAIN]
    held: list[Any] = []
    for i in range(0, len(plain), 1024):
        held.extend(gc.get_referents(*plain[i:i + 1024]))
    for obj in frontier:
        tp = type(obj)
        if tp in PLAIN:
            continue
        if ndarray is not None and isinstance(obj, ndarray):
            held.extend(children(obj))  # and a subclass's attributes, below
        held.extend(ref for ref in gc.get_referents(obj) if ref is not tp)
    return held


_ENTER, _NOT, _MAYBE_DATA, _CLASS = range(4)
_LIBRARY_KIND: dict[type, int] = {}


def _library_kind(tp: type) -> int:
    """Does the libraries' walk enter objects of this type: not modules, numpy arrays, nor the
    framework's; a class (``_CLASS``) not from the import state; a data holder is told by the
    object (:func:`leakhunt.sizing.is_data`)."""
    kind = _LIBRARY_KIND.get(tp)
    if kind is None:
        ndarray = _ndarray()
        if _stops(tp) or (ndarray is not None and issubclass(tp, ndarray)):
            kind = _NOT
        elif issubclass(tp, type):
            kind = _CLASS
        else:
            kind = _MAYBE_DATA if _maybe_data_type(tp) else _ENTER
        _LIBRARY_KIND[tp] = kind
    return kind


def _library_labels(namespaces: dict[int, dict[str, Any]], stop: set[int], import_state: set[int],
                    unentered: list[Any]) -> dict[int, int]:
    """``{id(object): label}`` for everything the libraries' globals reach (not entering what
    :func:`_library_kind` leaves, data holders, nor what ``stop`` names); the label is the id
    of the global's value that reaches it first, breadth first (the objects of one level are
    read a label at a time). Under the import state (``import_state``: typing's caches hold
    classes) the walk does not enter classes: the attributes of a class are another global's.
    The objects labelled but not entered go to ``unentered`` (where :func:`_reachable` goes on)."""
    label: dict[int, int] = {}
    frontier: list[Any] = []
    for namespace in namespaces.values():
        for value in list(namespace.values()):
            vid = id(value)
            if vid not in label and type(value) not in _ATOMIC:
                label[vid] = vid
                frontier.append(value)
    while frontier:
        by_label: dict[int, list[Any]] = {}
        for obj in frontier:
            kind = _library_kind(type(obj))
            if kind == _NOT or id(obj) in stop or (kind == _MAYBE_DATA and is_data(obj)):
                unentered.append(obj)
                continue
            mine = label[id(obj)]
            if kind != _CLASS or mine not in import_state:
                by_label.setdefault(mine, []).append(obj)
            else:
                unentered.append(obj)
        frontier = []
        for mine, group in by_label.items():
            for child in gc.get_referents(*group):
                cid = id(child)
                if cid not in label and type(child) not in _ATOMIC:
                    label[cid] = mine
                    frontier.append(child)
        by_label.clear()
    return label


def _namespaces() -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """The namespaces of the libraries' modules and of the user's (the framework's left out)."""
    from leakhunt.retention import _library_module

    library: dict[int, dict[str, Any]] = {}
    user: dict[int, dict[str, Any]] = {}
    for rid, name in module_dicts().items():
        if name.split(".", 1)[0] in _frames.FRAMEWORK:
            continue
        namespace = getattr(sys.modules.get(name), "__dict__", None)
        if isinstance(namespace, dict) and id(namespace) == rid:
            (library if _library_module(name) else user)[rid] = namespace
    return library, user


def _user_roots(user: dict[int, dict[str, Any]], named: dict[str, Any] | None) -> list[Any]:
    roots: list[Any] = [v for namespace in user.values() for v in list(namespace.values())]
    roots.extend((named or {}).values())
    for frame in live_frames(skip_depth=1):
        try:
            roots.extend(frame.f_locals.values())
        except Exception:
            continue
    return roots


_FRAMEWORK_TYPE: dict[type, bool] = {}


def _framework_type(tp: type) -> bool:
    """Objects of the test framework's and leakhunt's own types (a search never passes them)."""
    found = _FRAMEWORK_TYPE.get(tp)
    if found is None:
        module = getattr(tp, "__module__", None)
        found = _FRAMEWORK_TYPE[tp] = isinstance(module, str) and module.split(".", 1)[0] in _frames.FRAMEWORK
    return found


def _dead_end(obj: Any) -> bool:
    """A frame a backward search does not pass (a module's, the framework's)."""
    from leakhunt.retention import _framework_file

    code = obj.f_code
    return code.co_name == "<module>" or _framework_file(code.co_filename)


def _modules() -> list[types.ModuleType]:
    """Every module object alive but the framework's (also those not in ``sys.modules``: an
    extension's submodules, a module a program made)."""
    return [o for o in gc.get_objects() if isinstance(o, types.ModuleType)
            and str(getattr(o, "__name__", "")).split(".", 1)[0] not in _frames.FRAMEWORK]


def _reachable(roots: list[Any], framework: set[int], modules: list[types.ModuleType],
               known: tuple[dict[int, int], list[Any]] | None = None) -> set[int]:
    """Ids of everything a root of the backward search reaches: every module object (its
    namespace and its own state) but the framework's, the locals of every frame and the
    caller's named objects; through every edge that search follows (gc's referents, a numpy
    array's ``.base`` and elements), and through every object it passes (not the framework's
    objects, namespaces and frames, nor a module's frame). What this does not reach, no
    search can find a root for. ``modules``: :func:`_modules`.

    ``known``: the libraries' labels and the objects labelled but not entered, when
    :func:`_labels_reached` says that this walk reaches every object labelled: those are not
    walked again, but from the ones not entered (what an object entered holds is labelled too,
    so no other way leads out of them)."""
    ndarray = _ndarray()
    starts = modules + roots
    seen: set[int] = set(framework)
    frontier: list[Any] = []
    if known is not None:
        labels, unentered = known
        seen.update(labels)
        frontier = [o for o in unentered if id(o) not in framework]
    frontier += _unseen(starts, seen)
    while frontier:
        held: list[Any] = []
        plain = [o for o in frontier if not _framework_type(type(o))
                 and not (type(o) is types.FrameType and _dead_end(o))]
        for i in range(0, len(plain), 1024):
            held.extend(gc.get_referents(*plain[i:i + 1024]))
        if ndarray is not None:
            for arr in frontier:
                if isinstance(arr, ndarray):
                    held.extend(children(arr))  # its base, an object array's elements
        frontier = _unseen(held, seen)
        del held, plain
    return seen


def _labels_reached(library: dict[int, dict[str, Any]], modules: list[types.ModuleType], framework: set[int],
                    labels: dict[int, int], stop: set[int]) -> bool:
    """Does :func:`_reachable` reach every object the libraries' walk labelled? It does when it
    starts from the module of every namespace that walk started from, and that walk entered
    nothing it does not pass: not the framework's objects (neither enters them), but a frame
    that is a dead end (a module's, the framework's), which the libraries' walk enters."""
    started = {id(m.__dict__) for m in modules if isinstance(getattr(m, "__dict__", None), dict)} - framework
    if not started.issuperset(library):
        return False
    frames = [f for f in gc.get_objects() if type(f) is types.FrameType and id(f) in labels and id(f) not in stop]
    entered = any(_dead_end(f) for f in frames)
    frames.clear()
    return not entered


def _unseen(objects: list[Any], seen: set[int]) -> list[Any]:
    """The objects not seen yet (each once), now seen; numbers and strings hold nothing."""
    out = []
    for obj in objects:
        oid = id(obj)
        if oid not in seen and type(obj) not in _ATOMIC:
            seen.add(oid)
            out.append(obj)
    return out


def _import_state_globals() -> set[int]:
    """Ids of the interpreter's import state that explanations count as code loaded whatever it
    holds (``_IMPORT_STATE`` of :mod:`leakhunt.attribution`: the table of loaded modules, the
    importers' cache, typing's registries that imports fill)."""
    from leakhunt.attribution import _IMPORT_STATE

    out = set()
    for label in _IMPORT_STATE:
        name, _, module = label[:-1].partition(" (global in ")
        found = getattr(sys.modules.get(module), name, None)
        if found is not None:
            out.add(id(found))
    return out


def _passed(ref: Any, skip: set[int]) -> bool:
    """Does a backward search pass this holder (not leakhunt's own, the framework's, a dead end)?"""
    from leakhunt.retention import is_framework

    return not (id(ref) in skip or is_framework(ref) or (type(ref) is types.FrameType and _dead_end(ref)))


def _holders(entries: list[Any], skip: set[int]) -> dict[int, list[Any]]:
    """``{id(entry): the objects holding it that a search passes}``, from one pass over the heap
    (for one group of entries, gc.get_referrers' own pass in C: a few times faster)."""
    from leakhunt.retention import referrers_by_group

    groups = [tuple(entries[i:i + 64]) for i in range(0, len(entries), 64)]
    holders: dict[int, list[Any]] = {}
    if len(groups) == 1:
        referrers = [gc.get_referrers(*groups[0])]
        skip = skip | {id(groups[0])}  # (which referrers_by_group leaves out too)
    else:
        referrers = referrers_by_group(groups) if groups else []
    for group, found in zip(groups, referrers):
        ids = {id(x) for x in group}
        for ref in found:
            if _passed(ref, skip):
                for held in gc.get_referents(ref):
                    if id(held) in ids:
                        holders.setdefault(id(held), []).append(ref)
        del found
    groups.clear()
    referrers.clear()
    return holders


def _held_as_code(chunks: list[Any], hidden: dict[int, list[Any]], ignore: set[int]) -> list[Any]:
    """The chunks whose entry is held only by library code, as its own code (a library
    function's ``__dict__``, a class's namespace...): whatever root a search finds for one, its
    path ends in that code and its part, which an explanation counts as code loaded (the
    ``_code_part`` rule of :mod:`leakhunt.attribution`). Holders a search does not pass
    (leakhunt's own lists and objects, the framework's frames) do not count."""
    from leakhunt.attribution import _code_part, _library_code

    # (from 64 KiB, a search may find the user's function at the root: data it holds, a root)
    wanted = [c for c in chunks if isinstance(c.entry, (dict, types.FunctionType, type)) and c.size < THRESHOLD]
    entries = [c.entry for c in wanted]
    holders = _holders(entries, set(ignore) | {id(wanted), id(chunks), id(entries)})
    entries.clear()
    return [c for c in wanted if not hidden.get(id(c.entry)) and holders.get(id(c.entry))
            and all(_library_code(h) and _code_part(h, c.entry) for h in holders[id(c.entry)])]


def _walks(named: dict[str, Any] | None, import_state: set[int],
           enough: Callable[[set[int]], bool]) -> tuple[set[int], dict[int, int], set[int], set[int]] | None:
    """The forward walks, once: (what the user's roots reach, the libraries' labels, what any
    root reaches, the framework's namespaces); ``None`` when, told what the user's roots reach,
    ``enough`` says the rest is not worth the walks (a block's survivors that a global of the
    user's keeps, which the first search finds with their root)."""
    library, user = _namespaces()
    namespaces = module_dicts()
    all_namespaces = set(namespaces)  # the framework's too: a walk stops at every module
    framework = {rid for rid, name in namespaces.items() if name.split(".", 1)[0] in _frames.FRAMEWORK}
    roots = _user_roots(user, named)
    users = _user_reach(roots, all_namespaces)
    if not enough(users):
        roots.clear()
        return None
    modules = _modules()
    for module in modules:  # one not in sys.modules: what it holds is its state (a search's root)
        namespace = getattr(module, "__dict__", None)
        if isinstance(namespace, dict) and id(namespace) not in all_namespaces:
            library[id(namespace)] = namespace
    unentered: list[Any] = []
    labels = _library_labels(library, users | all_namespaces, import_state, unentered)
    known = (labels, unentered) if _labels_reached(library, modules, framework, labels, users | all_namespaces) else None
    reached = _reachable(roots, framework, modules, known)
    roots.clear()
    modules.clear()
    unentered.clear()
    return users, labels, reached, framework


def _library_state(by_label: dict[int, list[Any]], threshold: int, import_state: set[int]) -> list[Any]:
    """Mark as code loaded the libraries' state under each global (the import state whatever
    it holds; another global's when all it holds of the block's is below ``threshold``);
    returns the chunks left (under a global holding more)."""
    left: list[Any] = []
    for label, group in by_label.items():
        if label in import_state or sum(c.size for c in group) < threshold:
            for chunk in group:
                chunk.is_import = True
        else:
            left.extend(group)
    return left


def mark(chunks: list[Any], threshold: int, named: dict[str, Any] | None = None,
         hidden: dict[int, list[Any]] | None = None, ignore: set[int] | None = None) -> int:
    """Place without a backward search what the module's docstring says: the chunks no root
    reaches (``unrooted``, searched to the end: the forward walk is the whole search), the
    libraries' state and the chunks only library code holds as its code (``is_import``);
    ``chunks`` are :class:`leakhunt.attribution._Chunk`, whose data (chunks holding buffers) is
    left to the search; ``hidden`` and ``ignore`` as the search's (edges the gc does not
    report, the caller's own containers). Returns how many were placed."""
    candidates = [c for c in chunks if not c.is_import and not c.buffers and not c.traced_only]
    if len(candidates) < MIN_CHUNKS:
        return 0
    import_state = _import_state_globals()
    walks = _walks(named, import_state, lambda users: sum(id(c.entry) not in users for c in candidates) >= MIN_CHUNKS)
    if walks is None:
        return 0
    users, labels, reached, framework = walks
    by_label: dict[int, list[Any]] = {}
    left: list[Any] = []  # for the search, unless only library code holds them, as its code
    for chunk in candidates:
        entry = id(chunk.entry)
        if entry not in reached:
            chunk.unrooted = chunk.searched = True
        elif entry in labels and entry not in users:
            by_label.setdefault(labels[entry], []).append(chunk)
        else:
            left.append(chunk)
    left += _library_state(by_label, threshold, import_state)
    for chunk in _held_as_code(left, hidden or {}, (ignore or set()) | framework | {id(candidates), id(left)}):
        chunk.is_import = True
    return sum(1 for c in candidates if c.is_import or c.unrooted)
