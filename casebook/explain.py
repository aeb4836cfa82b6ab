"""Why the leaky version's memory stays alive, in leakhunt's own words.

The one place the casebook asks leakhunt for an explanation: through the public
``memory_budget``, whose failure message is the library's explanation (what grew, where it
lives, the retention path from a root down to the buffer, a fix hint).
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["KEPT", "explain_retained"]

# What the explained call returned, held here while leakhunt looks for its path: a module
# global is a root, as a long-lived results list is in a real job.
KEPT: list[Any] = []


def explain_retained(fn: Callable[[Any], Any], params: Any, limit: int) -> str | None:
    """Call ``fn(params)`` under ``memory_budget(rss=limit)``; the failure text, or None.

    None means the call kept the budget: there is nothing to explain.
    """
    from leakhunt import MemoryBudgetExceeded, memory_budget

    try:
        with memory_budget(rss=limit):
            KEPT.append(fn(params))
    except MemoryBudgetExceeded as exc:
        return str(exc)
    finally:
        KEPT.clear()
    return None
