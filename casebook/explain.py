"""Why the story's memory stays alive, in leakhunt's own words.

The one place the casebook asks leakhunt for an explanation: the public ``memory_budget`` runs
the library's judgement (``leakhunt.judge``) when the block ends; its failure text is what a
user would read, and ``.judgement.explanation`` the same explanation as data (what grew, where
it lives, the roots with their retention paths, a fix hint).
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["KEPT", "explain_retained"]

# What the explained call returned, held here while leakhunt looks for its path: a module
# global is a root, as a long-lived results list is in a real job.
KEPT: list[Any] = []


def explain_retained(fn: Callable[[Any], Any], params: Any, limit: int) -> tuple[str, dict[str, Any] | None] | None:
    """Call ``fn(params)`` under ``memory_budget(rss=limit)``: the failure text and data, or None.

    None means the call kept the budget: there is nothing to explain.
    """
    from leakhunt import MemoryBudgetExceeded, memory_budget

    guard = memory_budget(rss=limit)
    try:
        with guard:
            KEPT.append(fn(params))
    except MemoryBudgetExceeded as exc:
        judgement = guard.judgement
        explanation = getattr(judgement, "explanation", None)
        return str(exc), (explanation.to_dict() if explanation is not None else None)
    finally:
        KEPT.clear()
    return None
