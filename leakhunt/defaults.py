"""Defaults, stated once: every front end (decorator, pytest plugin, ``leakhunt run``, Dask)
and every docs page that names one reads it from here."""

from __future__ import annotations

__all__ = ["REPEAT", "WARMUP", "THRESHOLD", "THRESHOLD_TEXT"]

#: Measured calls of a leak hunt (and of its confirmation window).
REPEAT = 10
#: Unmeasured calls before a hunt measures: imports, caches, first-use initialisation.
WARMUP = 3
#: Per-call growth that counts as a leak.
THRESHOLD = 64 * 1024
THRESHOLD_TEXT = "64 KiB"
