"""The markers, and which budget a test ends up with.

Where a budget can come from, nearest first:

1. the test's own marks: ``@pytest.mark.memory_budget(...)`` on the function, a
   ``pytest.param(..., marks=...)`` of a parametrisation, or the library's ``@memory_budget(...)``
   decorator (it leaves a ``Budget`` in ``fn.__leakhunt_budget__``). Two of these on one test are
   an error: there is no order between them that a reader could guess.
2. class-level, then module-level ``pytestmark``.
3. ``--memory-budget`` / ``memory_budget`` in the ini file.

Levels merge keyword by keyword, the nearer level winning: ``peak=1GB`` on a module and
``rss=20MB`` on a test give the test both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from leakhunt.budget import KEYWORDS, LIMITS, keyword_help

if TYPE_CHECKING:
    from leakhunt.budget import Budget

__all__ = ["MARKERS", "BudgetError", "resolve_budget", "opted_out"]

MARKERS = {
    "memory_budget": (
        f"memory_budget({keyword_help()}): fail the test when it breaks this memory budget (sizes like "
        "'50 MB'; rss is anonymous memory, file the file-backed pages; leak= repeats the test and fails "
        "on per-call growth)"
    ),
    "no_leak_check": "no_leak_check: leakhunt does not measure, budget or hunt this test",
}

_BUDGET_FIELDS = KEYWORDS


class BudgetError(Exception):
    """A misused marker: the message names the test and the value."""


def opted_out(item: pytest.Item) -> bool:
    return item.get_closest_marker("no_leak_check") is not None


def _budget_kwargs(budget: Budget) -> dict[str, Any]:
    """The keywords a ``Budget`` was built from (only those that were set)."""
    import dataclasses

    from leakhunt.budget import Budget

    values = {name: getattr(budget, name, None) for name in _BUDGET_FIELDS}
    defaults = {f.name: f.default for f in dataclasses.fields(Budget)}
    return {k: v for k, v in values.items() if v is not None and v != defaults.get(k)}


def _marker_kwargs(item: pytest.Item, mark: pytest.Mark) -> dict[str, Any]:
    if mark.args:
        raise BudgetError(
            f"{item.nodeid}: memory_budget takes keywords only, got positional "
            f"{', '.join(repr(a) for a in mark.args)} (write e.g. memory_budget(rss='50 MB'))"
        )
    return dict(mark.kwargs)


def resolve_budget(item: pytest.Item, default: Budget | None) -> Budget | None:
    """The budget of ``item``, or ``None``. Raises :class:`BudgetError` on misuse."""
    decorated = getattr(getattr(item, "obj", None), "__leakhunt_budget__", None)
    if default is None and decorated is None and item.get_closest_marker("memory_budget") is None:
        return None  # the common case, kept cheap: it runs for every test
    from leakhunt.budget import Budget

    own = [m for m in getattr(item, "own_markers", []) if m.name == "memory_budget"]
    sources = [f"@pytest.mark.memory_budget({_show(m.kwargs)})" for m in own]
    if isinstance(decorated, Budget):
        sources.append(f"@memory_budget({decorated.describe()})")
    if len(sources) > 1:
        raise BudgetError(
            f"{item.nodeid}: two memory budgets on one test: {' and '.join(sources)}; keep one"
        )

    levels: list[dict[str, Any]] = []  # nearest first
    if own:
        levels.append(_marker_kwargs(item, own[0]))
    elif isinstance(decorated, Budget):
        levels.append(_budget_kwargs(decorated))
    for node in item.listchain()[-2::-1]:  # class, module, package, ... (nearest first)
        for mark in getattr(node, "own_markers", []):
            if mark.name == "memory_budget":
                levels.append(_marker_kwargs(item, mark))
    if default is not None:
        levels.append(_budget_kwargs(default))
    if not levels:
        return None

    merged: dict[str, Any] = {}
    for level in reversed(levels):  # farthest first, nearer levels overwrite
        merged.update(level)
    try:
        budget = Budget.from_kwargs(where=item.nodeid, **merged)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        if item.nodeid not in message:
            message = f"{item.nodeid}: {message}"
        raise BudgetError(message) from None
    if budget.is_empty:
        raise BudgetError(f"{item.nodeid}: memory_budget sets no limit; give at least one of "
                          f"{', '.join(LIMITS)}, e.g. memory_budget(rss='50 MB')")
    return budget


def _show(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
