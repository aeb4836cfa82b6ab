"""The structured explanation of a judgement: data only, rendered by the text, JSON and HTML renderers.

An :class:`Explanation` says what grew (each figure against its limit), where it lives (which
accounting holds it), what keeps it alive (survivors grouped by root, one representative path
each, with the line that allocated them), the biggest allocation sites (at the end, and at the
peak), which types grew, and a hint chosen from the paths' objects. It is built by
:func:`leakhunt.judge.judge`; front ends never build one themselves.

``Explanation.to_dict()`` is the form the JSON reports carry (``from_dict`` reads it back, so a
saved report re-renders), and ``str(explanation)`` is the failure text, rendered by
:mod:`leakhunt.report.explain_text` (the text methods here are calls of it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["Explanation", "Figure", "PathStep", "Root", "Site", "FIGURE_LABELS", "PLACES"]

#: How each figure reads in a sentence ("rss grew 96.1 MiB").
FIGURE_LABELS: dict[str, str] = {
    "rss": "rss grew",
    "file": "file-backed grew",
    "peak": "peak",
    "traced": "traced grew",
    "arrow": "arrow pool grew",
    "children": "children peak",
    "leak": "leak per call",
}


#: The named places an explanation accounts for (see :attr:`Explanation.accounting`).
PLACES: dict[str, str] = {
    "roots": "held by the roots",
    "imports": "modules and code loaded",
    "arrow": "Arrow's pool, held by no object of the block",
    "pymalloc": "freed, kept by Python's allocator",
    "allocators": "free, kept by the native allocators (malloc's arenas, Arrow's pool)",
    "unrooted": "objects of the block no root was found for",
}


@dataclass(frozen=True)
class Figure:
    """One figure of the judged measurement, with its limit (``None``: no limit)."""

    name: str  # rss | peak | traced | arrow | children | file | leak
    value: int | None
    limit: int | None = None
    given: str | None = None  # the limit as the user wrote it ("20MB"), shown beside the binary figure

    @property
    def broken(self) -> bool:
        return self.value is not None and self.limit is not None and self.value > self.limit

    def __str__(self) -> str:
        return _text().figure_text(self)

    def limit_text(self) -> str:
        """'20MB = 19.1 MiB' (:func:`leakhunt.units.format_limit`)."""
        return _text().figure_limit_text(self)

    def broken_text(self) -> str:
        """'rss grew 30.5 MiB > budget 20MB = 19.1 MiB'."""
        return _text().figure_broken_text(self)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "limit": self.limit, "broken": self.broken,
                "limit_given": self.given}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Figure:
        return cls(name=str(data["name"]), value=data.get("value"), limit=data.get("limit"),
                   given=data.get("limit_given"))


@dataclass(frozen=True)
class Site:
    """A source line that allocated memory that is still alive (or was alive at the peak)."""

    file: str  # path as tracemalloc gives it
    line: int
    code: str = ""  # the source line, stripped ("" when unavailable)
    size: int = 0  # bytes allocated there and alive
    count: int = 0  # allocations (0: unknown)

    @property
    def where(self) -> str:
        return f"{self.file.rsplit('/', 1)[-1]}:{self.line}"

    def __str__(self) -> str:
        return _text().site_text(self)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "code": self.code, "size": self.size, "count": self.count}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Site:
        return cls(file=str(data["file"]), line=int(data["line"]), code=str(data.get("code", "")),
                   size=int(data.get("size", 0)), count=int(data.get("count", 0)))


@dataclass(frozen=True)
class PathStep:
    """One node of a retention path.

    ``edge`` is how the previous node refers to this one (``[0]``, ``['key']``, ``.attr``,
    ``.base``, ``closure variable 'x'``; ``""`` for the root and for steps the gc does not
    name); ``label`` describes the node (``list``, ``DataFrame (1 row x 10 cols)``,
    ``ndarray 95.4 MiB``); ``size`` is the data the node holds by itself, where known.
    """

    label: str
    edge: str = ""
    size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "edge": self.edge, "size": self.size}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PathStep:
        return cls(label=str(data["label"]), edge=str(data.get("edge", "")), size=data.get("size"))


@dataclass(frozen=True)
class Root:
    """Survivors of the judged block that one root keeps alive.

    ``root`` names it (``"PREVIEWS (global in etl)"``), ``kind`` is ``global``, ``local``
    (a frame's variable) or ``other``; ``buffers`` and ``size`` count the survivors behind it;
    ``path`` is one representative path, root first; ``site`` is the line that allocated the
    biggest of them, when traced. ``pattern`` names what the path shows, read from its objects
    (``view``, ``arrow_slice``, ``groupby``, ``cache``, ``closure``, ``list``, ``dict``,
    ``local``, ``attribute``); ``library`` is true when the root is a global of an installed
    library (a cache of pandas', say) rather than of the user's code.
    """

    root: str
    kind: str
    buffers: int
    size: int
    path: tuple[PathStep, ...]
    text: str  # the path as one line: "HOLD (global in m) -> list[0] -> DataFrame ... -> ndarray 95.4 MiB"
    site: Site | None = None
    pattern: str = ""
    library: bool = False
    objects: int = 0  # objects of the block behind the root (0: not counted)
    unknown: tuple[tuple[str, int], ...] = ()  # (type, count) of holders leakhunt cannot size
    #: (type, count) of holders sized by their library's estimate (polars' ``estimated_size()``
    #: counts the rows a frame shows: a slice's share of its parent's buffers is not in it)
    estimated: tuple[tuple[str, int], ...] = ()

    def headline(self) -> str:
        return _text().root_headline(self)

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "kind": self.kind, "buffers": self.buffers, "size": self.size,
                "path": [s.to_dict() for s in self.path], "text": self.text,
                "site": self.site.to_dict() if self.site is not None else None,
                "pattern": self.pattern, "library": self.library, "objects": self.objects,
                "unknown": [[name, n] for name, n in self.unknown],
                "estimated": [[name, n] for name, n in self.estimated]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Root:
        site = data.get("site")
        return cls(root=str(data["root"]), kind=str(data.get("kind", "other")),
                   buffers=int(data.get("buffers", 1)), size=int(data.get("size", 0)),
                   path=tuple(PathStep.from_dict(s) for s in data.get("path", ())),
                   text=str(data.get("text", "")), site=Site.from_dict(site) if site else None,
                   pattern=str(data.get("pattern", "")), library=bool(data.get("library", False)),
                   objects=int(data.get("objects", 0)),
                   unknown=tuple((str(n), int(c)) for n, c in data.get("unknown", ())),
                   estimated=tuple((str(n), int(c)) for n, c in data.get("estimated", ())))


@dataclass(frozen=True)
class Explanation:
    """Why a block or test broke its budget (or leaks): every part a renderer shows.

    ``where`` splits the retained memory by accounting: keys ``python``, ``numpy``, ``pandas``
    (tracemalloc domains), ``traced`` (when not split by domain), ``arrow`` (the Arrow pool),
    ``unaccounted`` (RSS growth that none of those explain: native allocations) and
    ``allocator_retention`` (freed memory an allocator kept, given back by settling; not a
    leak); a value is ``None`` where the accounting was unavailable, a missing key where it
    does not apply.
    """

    title: str
    headline: str  # "broke its memory budget", "leaks 2.0 MiB per call", ...
    figures: tuple[Figure, ...] = ()
    where: Mapping[str, int | None] = field(default_factory=dict)
    roots: tuple[Root, ...] = ()
    unexplained: str = ""  # said instead of roots when none were found, and why
    sites: tuple[Site, ...] = ()  # biggest allocation sites of the block still alive at the end
    peak_sites: tuple[Site, ...] = ()  # biggest allocations alive at the high-water mark
    type_growth: tuple[tuple[str, int], ...] = ()  # (type name, +count), largest first
    hint: str = ""
    notes: tuple[str, ...] = ()  # how it was obtained (re-run, not traced, one-time initialisation)
    traced: bool = False  # allocation sites were available
    #: every byte of the figure explained in a named place: ``(place, bytes)`` (keys of
    #: :data:`PLACES`), and the figure they are a share of (``None``: not accounted)
    accounting: tuple[tuple[str, int], ...] = ()
    accounted_of: int | None = None

    @property
    def explained(self) -> float | None:
        """The explained share: bytes in named roots and named categories over the figure
        explained (1.0 at most); ``None`` when the block was not accounted for."""
        if self.accounted_of is None or self.accounted_of <= 0:
            return None
        named = sum(size for place, size in self.accounting if place != "unrooted")
        return min(1.0, named / self.accounted_of)

    # ------------------------------------------------------------------ forms
    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "headline": self.headline,
            "figures": [f.to_dict() for f in self.figures],
            "where": dict(self.where),
            "roots": [r.to_dict() for r in self.roots],
            "unexplained": self.unexplained,
            "sites": [s.to_dict() for s in self.sites],
            "peak_sites": [s.to_dict() for s in self.peak_sites],
            "type_growth": [{"type": name, "count": n} for name, n in self.type_growth],
            "hint": self.hint,
            "notes": list(self.notes),
            "traced": self.traced,
            "accounting": [[place, size] for place, size in self.accounting],
            "accounted_of": self.accounted_of,
            "explained": self.explained,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Explanation:
        return cls(
            title=str(data.get("title", "")),
            headline=str(data.get("headline", "")),
            figures=tuple(Figure.from_dict(f) for f in data.get("figures", ())),
            where=dict(data.get("where", {})),
            roots=tuple(Root.from_dict(r) for r in data.get("roots", ())),
            unexplained=str(data.get("unexplained", "")),
            sites=tuple(Site.from_dict(s) for s in data.get("sites", ())),
            peak_sites=tuple(Site.from_dict(s) for s in data.get("peak_sites", ())),
            type_growth=tuple((str(t["type"]), int(t["count"])) for t in data.get("type_growth", ())),
            hint=str(data.get("hint", "")),
            notes=tuple(str(n) for n in data.get("notes", ())),
            traced=bool(data.get("traced", False)),
            accounting=tuple((str(p), int(n)) for p, n in data.get("accounting", ())),
            accounted_of=data.get("accounted_of"),
        )

    def __str__(self) -> str:
        return _text().explanation_text(self)

    def broken_text(self) -> str:
        """The broken figures in one line ('rss grew 30.5 MiB > budget 20MB = 19.1 MiB'); "" when
        none is broken. The first line of a pytest failure (its short summary shows it)."""
        return _text().broken_text(self)

    def where_text(self) -> str:
        return _text().where_text(self)

    def accounting_text(self) -> str:
        return _text().accounting_text(self)

    def lines(self) -> list[str]:
        return _text().explanation_lines(self)


def _text() -> Any:
    """The explanation text renderer (:mod:`leakhunt.report.explain_text`), imported when text is
    asked for: the renderers import this module."""
    from leakhunt.report import explain_text

    return explain_text
