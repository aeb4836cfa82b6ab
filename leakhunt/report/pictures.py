"""Geometry of the pictures the HTML reports draw: a retention graph and an icicle of stacks.

Layout only (numbers and strings); the templates turn it into inline SVG. Both pictures are
laid out here rather than by a graph library because their shapes are fixed - a retention path
is a chain, an icicle is a tree of nested intervals - and the page must stay self-contained.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from leakhunt.explanation import Root
from leakhunt.units import format_size

if TYPE_CHECKING:
    from leakhunt.tracing import Stack

__all__ = [
    "FlameBox",
    "GraphEdge",
    "GraphNode",
    "IciclePicture",
    "RetentionPicture",
    "frame_kind",
    "icicle",
    "retention_picture",
]

_CHAR = 7.3  # width of one character of the 12 px monospace font the graph uses
_MAX_LABEL = 70  # characters shown in a node; the whole label is in its tooltip


@dataclass(frozen=True)
class GraphNode:
    x: float
    y: float
    w: float
    h: float
    label: str  # shown (shortened to fit)
    title: str  # tooltip: the whole label and size
    size: str  # "95.4 MiB" or ""
    kind: str  # root | step | buffer


@dataclass(frozen=True)
class GraphEdge:
    x: float
    y1: float
    y2: float
    label: str  # how the node above refers to the one below: "[0]", ".base", ...


@dataclass(frozen=True)
class RetentionPicture:
    """One root's representative path drawn top to bottom: root, ..., the buffer kept."""

    width: float
    height: float
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    headline: str  # "HOLD (global in etl) keeps 8 buffers, 122.0 MiB"
    text: str  # the path as one line


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def retention_picture(root: Root, *, node_height: float = 30.0, gap: float = 30.0) -> RetentionPicture:
    """Lay out ``root``'s path as a vertical chain of boxes, sizes on the nodes.

    The last node (the buffer kept alive) shows the root's total when its own size is unknown.
    A root without path steps is drawn as one node.
    """
    steps = list(root.path)
    labels = [s.label for s in steps] or [root.root]
    sizes: list[int | None] = [s.size for s in steps] or [root.size]
    if sizes[-1] is None and root.size:
        sizes[-1] = root.size
    size_texts = [format_size(s) if s is not None else "" for s in sizes]
    shown = [_shorten(label, _MAX_LABEL) for label in labels]
    widest = max(len(label) + (len(size) + 3 if size else 0) for label, size in zip(shown, size_texts))
    width = max(360.0, widest * _CHAR + 28)
    margin = 10.0
    nodes = []
    edges = []
    y = margin
    for i, (label, full, size) in enumerate(zip(shown, labels, size_texts)):
        kind = "root" if i == 0 else ("buffer" if i == len(labels) - 1 else "step")
        title = full + (f" ({size})" if size else "")
        nodes.append(GraphNode(x=margin, y=y, w=width, h=node_height, label=label, title=title,
                               size=size, kind=kind))
        if i + 1 < len(labels):
            edge = steps[i + 1].edge if i + 1 < len(steps) else ""
            edges.append(GraphEdge(x=margin + width / 2, y1=y + node_height, y2=y + node_height + gap,
                                   label=edge))
        y += node_height + gap
    height = y - gap + margin
    return RetentionPicture(width=width + 2 * margin, height=height, nodes=tuple(nodes), edges=tuple(edges),
                            headline=root.headline(), text=root.text)


# --------------------------------------------------------------------------------------
# icicle (a flame graph drawn root at the top)


@dataclass(frozen=True)
class FlameBox:
    x: float
    y: float
    w: float
    label: str  # shown when it fits
    title: str  # tooltip: where, code, size, share
    kind: str  # user | library | python | other | all


@dataclass(frozen=True)
class IciclePicture:
    width: float
    height: float
    row: float
    boxes: tuple[FlameBox, ...]
    total: int
    depth: int


def frame_kind(filename: str) -> str:
    """``user`` (your code), ``library`` (site-packages), ``python`` (the standard library), ``other``."""
    from leakhunt import frames

    if filename.startswith("<"):
        return "other"
    found = frames.kind(filename)
    if found == frames.USER:
        return "user"
    if found == frames.OURS:
        return "other"
    if any(marker in filename for marker in (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)):
        return "library"
    return "python"


class _Node:
    __slots__ = ("size", "count", "children")

    def __init__(self) -> None:
        self.size = 0
        self.count = 0
        self.children: dict[tuple[str, int], _Node] = {}


def icicle(
    stacks: Iterable[Stack],
    *,
    width: float = 1100.0,
    row: float = 18.0,
    min_width: float = 0.8,
    max_depth: int = 60,
) -> IciclePicture:
    """Lay out ``stacks`` (:class:`leakhunt.tracing.Stack`, frames newest first) as an icicle.

    The whole is at the top, callers above their callees. A box's width is its share of the
    bytes; siblings are ordered biggest first. Boxes narrower than ``min_width`` pixels are
    left out (their bytes still count in the parent). leakhunt's own frames and the frames that
    start a script (runpy) are not drawn.
    """
    from leakhunt import frames as _frames

    top = _Node()
    code: dict[tuple[str, int], str] = {}
    for stack in stacks:
        if stack.size <= 0:
            continue
        top.size += stack.size
        top.count += stack.count
        node = top
        path = [f for f in reversed(stack.frames) if not _frames.is_ours(f[0])]
        while path and path[0][0] == "<frozen runpy>":
            path.pop(0)
        for filename, line, text in path[:max_depth]:
            frame = (filename, line)
            if text:
                code.setdefault(frame, text)
            child = node.children.get(frame)
            if child is None:
                child = node.children[frame] = _Node()
            child.size += stack.size
            child.count += stack.count
            node = child
    boxes: list[FlameBox] = []
    total = top.size
    if total <= 0:
        return IciclePicture(width=width, height=row, row=row, boxes=(), total=0, depth=0)
    scale = width / total
    boxes.append(FlameBox(x=0.0, y=0.0, w=width, label=f"all: {format_size(total)} alive",
                          title=f"all stacks: {format_size(total)}", kind="all"))
    depth = 0
    pending: list[tuple[_Node, float, int]] = [(top, 0.0, 0)]
    while pending:
        node, x, level = pending.pop()
        for frame, child in sorted(node.children.items(), key=lambda kv: (-kv[1].size, kv[0])):
            w = child.size * scale
            if w < min_width:
                continue
            filename, line = frame
            short = _short(filename)
            where = f"{short}:{line}" if line > 0 else short
            text = code.get(frame, "")
            title = f"{where} {text}".rstrip() + (f"\n{format_size(child.size)} "
                                                   f"({100.0 * child.size / total:.1f}%)")
            fits = int((w - 6) // 6.6)  # characters of the 11 px font that fit in the box
            label = _shorten(where, fits) if fits >= 4 else ""
            boxes.append(FlameBox(x=x, y=(level + 1) * row, w=w, label=label, title=title,
                                  kind=frame_kind(filename)))
            depth = max(depth, level + 1)
            pending.append((child, x, level + 1))
            x += w
    return IciclePicture(width=width, height=(depth + 1) * row, row=row, boxes=tuple(boxes), total=total,
                         depth=depth)


def _short(filename: str) -> str:
    from leakhunt.frames import short_path

    if filename.startswith("<"):
        return filename
    shortened = short_path(filename)
    return shortened if shortened != filename else os.path.basename(filename)
