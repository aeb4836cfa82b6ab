"""Geometry of the retention graph the HTML reports draw (the flame graph of the stacks alive at
the peak is :mod:`leakhunt.report.flame`, drawn in the page by ``flame.js``).

Layout only (numbers and strings); the templates turn it into inline SVG. It is laid out here
rather than by a graph library because its shape is fixed - a retention path is a chain - and
the page must stay self-contained.
"""

from __future__ import annotations

from dataclasses import dataclass

from leakhunt.explanation import Root
from leakhunt.report.explain_text import root_headline
from leakhunt.units import format_size

__all__ = [
    "GraphEdge",
    "GraphNode",
    "RetentionPicture",
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
                            headline=root_headline(root), text=root.text)
