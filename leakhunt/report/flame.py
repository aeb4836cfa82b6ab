"""The tree a report's flame graph draws: stacks alive at the peak, merged by frame.

Built here from :class:`leakhunt.tracing.Stack` (either backend: tracemalloc's stacks, or the
native backend's, whose native frames are ``("<native>", 0, function)`` and whose worker-thread
part hangs under a ``("<thread>", 0, ...)`` frame), drawn by ``flame.js`` in the page itself
(``flame.html.j2``): zoom by clicking a box, search, hover for the line, flame or icicle. The
page stays self-contained: the tree is inlined as JSON.

Every stack is rooted at the target's own outermost frame: leakhunt's frames, the console script
that started it and runpy's are left out. tracemalloc keeps a fixed number of frames per
allocation, so a deep stack arrives without its outer frames; rather than drawn as a second
root, it is grafted under the heaviest box of the same frame (the call it was cut from), or,
when no such box exists, under one box that says the stacks were cut.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from leakhunt import frames as _frames
from leakhunt.units import format_size

if TYPE_CHECKING:
    from leakhunt.tracing import Stack

__all__ = ["FlameNode", "flame_tree", "flame_json", "frame_kind", "CUT"]

#: The box under which stacks cut by tracemalloc's frame limit hang when no box has their frame.
CUT = "(outer frames cut by the tracing frame limit)"
_RUNPY = "<frozen runpy>"
_IMPORTLIB = "<frozen importlib"
_MAX_DEPTH = 120


@dataclass
class FlameNode:
    """One box: a frame, the bytes alive under it, its callees."""

    frame: tuple[str, int]
    text: str
    kind: str
    size: int = 0
    count: int = 0
    children: dict[tuple[str, int], FlameNode] = field(default_factory=dict)

    def child(self, frame: tuple[str, int], text: str, kind: str) -> FlameNode:
        node = self.children.get(frame)
        if node is None:
            node = self.children[frame] = FlameNode(frame=frame, text=text, kind=kind)
        elif text and not node.text:
            node.text = text
        return node

    def to_dict(self, total: int, min_share: float) -> dict[str, Any]:
        """The JSON the page draws: ``n`` labels (longest first), ``t`` the tooltip, ``k`` the kind,
        ``v`` bytes, ``c`` children (boxes under ``min_share`` of the total are folded into
        their parent's own bytes)."""
        out: dict[str, Any] = {"n": _labels(self), "t": _tooltip(self, total), "k": self.kind, "v": self.size}
        kids = [c for c in sorted(self.children.values(), key=lambda c: (-c.size, c.frame))
                if c.size >= min_share * total]
        if kids:
            out["c"] = [c.to_dict(total, min_share) for c in kids]
        return out


def frame_kind(filename: str) -> str:
    """``user`` (your code), ``library`` (site-packages), ``python`` (the standard library and
    the interpreter), ``native`` (C, C++ or Rust code), ``thread`` (a worker thread), ``other``."""
    if filename == "<native>":
        return "native"
    if filename == "<thread>":
        return "thread"
    if filename.startswith("<"):
        return "user" if _frames.kind(filename) == _frames.USER else "python"
    found = _frames.kind(filename)
    if found == _frames.USER:
        return "user"
    if found == _frames.OURS:
        return "other"
    if any(marker in filename for marker in (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)):
        return "library"
    return "python"


def _outer_first(stack: Stack) -> tuple[list[tuple[str, int, str]], bool]:
    """The stack's frames outermost first without leakhunt's and runpy's, and without the import
    machinery's between two modules (an import nested ten deep would be sixty rows of it); and
    whether it reached its outer end (a frame of ours or runpy's was there: it was not cut by a
    frame limit)."""
    kept = []
    whole = False
    last = len(stack.frames) - 1
    for i, (filename, line, text) in enumerate(reversed(stack.frames)):
        if filename == _RUNPY or (not filename.startswith("<") and _frames.is_ours(filename)):
            whole = True
            continue
        if filename.startswith(_IMPORTLIB) and i != last:
            continue
        kept.append((filename, line, text))
    return kept, whole


def flame_tree(stacks: Iterable[Stack], *, title: str = "alive at the peak") -> FlameNode:
    """Merge ``stacks`` (frames newest first) into one tree under a root box."""
    root = FlameNode(frame=("", 0), text=title, kind="all")
    cut: list[tuple[list[tuple[str, int, str]], int, int]] = []
    for stack in stacks:
        if stack.size <= 0:
            continue
        frames, whole = _outer_first(stack)
        if not whole and not any(f[0] in ("<native>", "<thread>") for f in frames):
            cut.append((frames, stack.size, stack.count))  # tracemalloc's limit cut its outer frames
            continue
        _add(root, frames, stack.size, stack.count)
    for frames, size, count in cut:
        _add(_graft_point(root, frames), frames, size, count, under=True, root=root)
    return root


def _add(node: FlameNode, frames: list[tuple[str, int, str]], size: int, count: int, *, under: bool = False,
         root: FlameNode | None = None) -> None:
    """Add a stack's bytes to ``node`` and down its frames (``under``: ``node`` is a box inside
    the tree, whose ancestors get the bytes too)."""
    if under and root is not None:
        for ancestor in _path_to(root, node):
            ancestor.size += size
            ancestor.count += count
    else:
        node.size += size
        node.count += count
    start = 1 if under and frames and node.frame == (frames[0][0], frames[0][1]) else 0
    for filename, line, text in frames[start:start + _MAX_DEPTH]:
        node = node.child((filename, line), text, frame_kind(filename))
        node.size += size
        node.count += count


def _graft_point(root: FlameNode, frames: list[tuple[str, int, str]]) -> FlameNode:
    """Where a cut stack belongs: the heaviest box of its outermost frame, else the CUT box."""
    if frames:
        target = (frames[0][0], frames[0][1])
        best = None
        pending = [root]
        while pending:
            node = pending.pop()
            if node.frame == target and (best is None or node.size > best.size):
                best = node
            pending.extend(node.children.values())
        if best is not None:
            return best
    return root.child(("<cut>", 0), CUT, "other")


def _path_to(root: FlameNode, target: FlameNode) -> list[FlameNode]:
    """The boxes from the root down to ``target``, both included."""
    path: list[FlameNode] = []

    def walk(node: FlameNode) -> bool:
        path.append(node)
        if node is target:
            return True
        if any(walk(child) for child in node.children.values()):
            return True
        path.pop()
        return False

    walk(root)
    return path


def _short(filename: str) -> str:
    if filename.startswith("<"):
        return filename
    shortened = _frames.short_path(filename)
    return shortened if shortened != filename else os.path.basename(filename)


def _labels(node: FlameNode) -> list[str]:
    """Labels from the most to the least informative: the page shows the first that fits whole,
    else the first cut where the last would fit with room to spare, else the last cut. No label
    starts with a directory: a box cut to "pandas/co..." says nothing."""
    filename, line = node.frame
    if node.kind in ("all", "native", "thread") or filename == "<cut>":
        return [node.text]
    short = _short(filename)
    base = os.path.basename(filename) if not filename.startswith("<") else filename
    where = f"{short}:{line}" if line > 0 else short
    base_where = f"{base}:{line}" if line > 0 else base
    text = node.text
    if node.kind == "user" and text:
        return [f"{base_where}  {text}", base_where]
    if text:  # a library's frame: its function and file; the package's path is in the tooltip
        return [f"{text}  {base_where}", base_where]
    return [where, base_where]


def _tooltip(node: FlameNode, total: int) -> str:
    filename, line = node.frame
    share = f"{100.0 * node.size / total:.1f}%" if total else ""
    size = f"{format_size(node.size)} ({share}), {node.count:,} allocation{'s' if node.count != 1 else ''}"
    if node.kind == "all" or filename in ("<native>", "<thread>", "<cut>"):
        return f"{node.text}\n{size}"
    where = f"{filename}:{line}" if line > 0 else filename
    return f"{where}\n{node.text}\n{size}" if node.text else f"{where}\n{size}"


def flame_json(stacks: Iterable[Stack], *, title: str = "alive at the peak", min_share: float = 0.0005) -> str:
    """The tree of ``stacks`` as the JSON ``flame.html.j2`` inlines (safe inside a script element)."""
    import json

    root = flame_tree(stacks, title=title)
    return json.dumps(root.to_dict(root.size, min_share), separators=(",", ":")).replace("</", "<\\/")
