"""The one template set every HTML report is built from (Jinja2).

Templates live in ``leakhunt/report/templates/``:

``base.html.j2``
    the page: inline style sheet, header, ``content`` block, footer; nothing is fetched.
``macros.html.j2``
    pieces every report shares: ``verdict(v)``, ``figure_table(rows)``, ``sites_table(sites)``,
    ``retention_graph(picture)``, ``explanation(e)``, ``chart(svg)``.
``flame.html.j2``, ``flame.js``, ``flame.css``
    the flame graph of the stacks alive at the peak (``flame(tree_json, id)``, ``assets()``):
    search, zoom, the line on hover; the tree is :func:`leakhunt.report.flame.flame_json`.
``test_report.html.j2`` and ``run_report.html.j2``
    the pytest test report and the ``leakhunt run`` report.

A new report (the Dask cluster report, for one) adds ``<name>.html.j2`` that starts with
``{% extends "base.html.j2" %}`` and ``{% import "macros.html.j2" as m %}``, fills the
``title``, ``heading`` and ``content`` blocks (``scripts`` for inline JavaScript), and renders
with :func:`render`. Its own template directory can be passed as ``extra_dirs``.

Every value is HTML-escaped unless marked safe (the SVG that matplotlib draws); sizes go
through the ``size`` and ``signed`` filters (:func:`leakhunt.units.format_size`).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import IO, Any, Sequence

from leakhunt.units import format_limit, format_size

__all__ = ["TEMPLATES", "environment", "render"]

#: The directory of the shared template set.
TEMPLATES = Path(__file__).resolve().parent / "templates"

_EXTRA = 'pip install "leakhunt[html]"'


def _jinja2() -> Any:
    try:
        import jinja2
    except ImportError as exc:
        raise ImportError(f"the HTML reports need Jinja2: {_EXTRA} ({exc})") from None
    return jinja2


def _signed(value: int | float | None) -> str:
    return format_size(value, signed=True)


# where a long token may break: after a path's '/', a node id's '::', '[' and ',', a name's '_'
# and '-', and a '.' or '-' not before a digit (1.5 and -1 stay whole; so does every number)
_BREAK_AFTER = re.compile(r"(::|[/\\\[,_]|[.-](?!\d))")
# the space between a figure's number and its unit (19.1 MiB, 20 MB)
_FIGURE_SPACE = re.compile(r"(?<=\d) (?=[KMGTPE]?i?B\b)")


def breakable(text: object) -> Any:
    """``text`` escaped, with a line-break opportunity (``<wbr>``) after each separator of a test
    id or path, so a long token wraps at its parts in a table cell, never inside a word or number."""
    from markupsafe import Markup, escape  # Jinja2's own dependency

    return Markup(_BREAK_AFTER.sub(r"\1<wbr>", str(escape("" if text is None else str(text)))))


def unbroken(text: object) -> Any:
    """``text`` escaped, each figure's number and unit joined by a no-break space (``19.1 MiB``):
    a budget cell (``rss=20MB = 19.1 MiB, peak=1.0 GiB``) wraps between its words, never inside a
    figure."""
    from markupsafe import Markup, escape  # Jinja2's own dependency

    return Markup(_FIGURE_SPACE.sub("\u00a0", str(escape("" if text is None else str(text)))))


def _percent(part: int | float | None, whole: int | float | None) -> str:
    if part is None or not whole:
        return ""
    return f"{100.0 * part / whole:.0f}%"


@functools.lru_cache(maxsize=8)
def environment(extra_dirs: Sequence[str | os.PathLike[str]] = ()) -> Any:
    """The Jinja2 environment of the shared templates (and of ``extra_dirs``, searched first)."""
    jinja2 = _jinja2()
    loader = jinja2.FileSystemLoader([*(os.fspath(d) for d in extra_dirs), str(TEMPLATES)])
    env = jinja2.Environment(
        loader=loader,
        autoescape=True,  # every template is HTML
        undefined=jinja2.StrictUndefined,  # a misspelt name is an error, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["size"] = format_size
    env.filters["signed"] = _signed
    env.filters["breakable"] = breakable  # a test id or path in a cell: wraps at its parts
    env.filters["unbroken"] = unbroken  # a budget in a cell: no figure split from its unit
    env.filters["limit"] = format_limit  # a budget's limit: 'budget 20MB = 19.1 MiB'
    from leakhunt.report.model import budget_text

    env.globals["budget_text"] = budget_text
    env.globals["percent"] = _percent
    from leakhunt.explanation import FIGURE_LABELS
    from leakhunt.report import explain_text
    from leakhunt.report.pictures import retention_picture

    for name in ("where_text", "root_headline", "figure_limit_text", "site_text"):  # the one text renderer's words
        env.filters[name] = getattr(explain_text, name)

    env.globals["figure_labels"] = FIGURE_LABELS
    env.globals["retention_picture"] = retention_picture
    return env


def render(template: str, file: IO[str], /, *, extra_dirs: Sequence[str | os.PathLike[str]] = (),
           **context: Any) -> None:
    """Render ``template`` with ``context`` into ``file``, streamed (a 5,000-test table is big)."""
    tmpl = environment(tuple(extra_dirs)).get_template(template)
    for chunk in tmpl.generate(**context):
        file.write(chunk)

