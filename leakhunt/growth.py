"""Object-count growth by type across a block (counts by objgraph, through probes.object_counts)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from leakhunt.probes import object_counts
from leakhunt.settle import settle

__all__ = ["GrowthHandle", "track_growth"]


class GrowthHandle:
    """``handle.growth``: ``[(type name, +count), ...]`` largest first, after the block."""

    def __init__(self, top: int) -> None:
        self.top = top
        self.growth: list[tuple[str, int]] = []
        self.done = False

    def __str__(self) -> str:
        if not self.done:
            return "object growth: (block still running)"
        if not self.growth:
            return "object growth: none"
        width = max(len(name) for name, _ in self.growth)
        return "\n".join(f"{name:<{width}}  {delta:+,}" for name, delta in self.growth)

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(self.growth)


@contextmanager
def track_growth(top: int = 10) -> Iterator[GrowthHandle]:
    """Count gc-tracked objects by type before and after the block (both settled)::

        with track_growth() as g:
            work()
        print(g)        # one line per type: name  +count, top N first

    Only types that grew are listed. numpy arrays and Arrow objects are not gc-tracked and do
    not appear; use ``measure()`` and ``why_alive()`` for them.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"track_growth(top=...) must be a whole number >= 1, got {top!r}")
    handle = GrowthHandle(top)
    settle()
    before = object_counts()
    try:
        yield handle
    finally:
        settle()
        after = object_counts()
        after.subtract(before)
        del before
        after["collections.Counter"] -= 1  # the "before" counts, alive when "after" was taken
        # Our own Counter and its frame are not the user's growth.
        handle.growth = [(name, n) for name, n in after.most_common() if n > 0][:top]
        handle.done = True
