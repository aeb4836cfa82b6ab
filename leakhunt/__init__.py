"""leakhunt: find, explain and budget memory leaks in Python data work."""

from __future__ import annotations

from leakhunt.budget import Budget, MemoryBudgetExceeded, Violation
from leakhunt.guard import memory_budget
from leakhunt.growth import track_growth
from leakhunt.hunt import LeakVerdict, hunt
from leakhunt.measure import Measurement, measure
from leakhunt.oom import oom_guard
from leakhunt.retention import RetentionPaths, why_alive
from leakhunt.settle import settle
from leakhunt.units import format_size, parse_size

__version__ = "0.1.0"

__all__ = [
    "Budget",
    "LeakVerdict",
    "Measurement",
    "MemoryBudgetExceeded",
    "RetentionPaths",
    "Violation",
    "format_size",
    "hunt",
    "measure",
    "memory_budget",
    "oom_guard",
    "parse_size",
    "settle",
    "track_growth",
    "why_alive",
]
