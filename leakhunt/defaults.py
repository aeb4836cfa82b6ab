"""Defaults, stated once: every front end (decorator, pytest plugin, ``leakhunt run``, Dask)
and every docs page that names one reads it from here."""

from __future__ import annotations

__all__ = ["REPEAT", "WARMUP", "THRESHOLD", "THRESHOLD_TEXT", "DASK_THRESHOLD", "DASK_THRESHOLD_TEXT",
           "DASK_THREADED_NOISE", "STAYED_UP", "TRIM_AFTER"]

#: Measured calls of a leak hunt (and of its confirmation window).
REPEAT = 10
#: Unmeasured calls before a hunt measures: imports, caches, first-use initialisation.
WARMUP = 3
#: Per-call growth that counts as a leak.
THRESHOLD = 64 * 1024
THRESHOLD_TEXT = "64 KiB"
#: Per-call growth that counts as a leak of a Dask task prefix: tasks are coarser than tests,
#: and a worker's unmanaged memory moves by up to ~1 MB between tasks with several threads.
DASK_THRESHOLD = 1024 * 1024
DASK_THRESHOLD_TEXT = "1 MiB"
#: Per-task noise of the figures shared among tasks that run at once (several threads per worker:
#: settled readings move by +-1-1.4 MB with several busy threads, measured). Each window's
#: spread of figures can raise it (``leakhunt.hunt.SeriesHunt(spread_noise=True)``).
DASK_THREADED_NOISE = 1024 * 1024
#: Growth from which a cheaply measured block's figure, when a report lists it, is confirmed
#: after a trim (the report's "memory stayed up" table starts there).
STAYED_UP = 1024 * 1024
#: RSS rise since the last trim from which a session trims before its next cheap block.
TRIM_AFTER = 1024 * 1024

#: leakhunt run explains what a script kept at its end (by default) when it kept at least this
#: much anonymous memory beyond what its imports took: a search of everything the script left
#: alive takes seconds
EXIT_EXPLAIN_FLOOR = 16 * 1024 * 1024
EXIT_EXPLAIN_FLOOR_TEXT = "16 MiB"

#: allocation sites an explanation lists (the biggest lines whose memory is still alive)
EXPLANATION_SITES = 5
