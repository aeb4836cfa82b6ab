"""The JSON test report: one versioned document (schema in docs/plugin.md)."""

from __future__ import annotations

import json
from typing import IO

from leakhunt.report.model import TestReport

__all__ = ["JsonReport"]


class JsonReport:
    """``JsonReport(report).render(file)`` writes the versioned document."""

    def __init__(self, report: TestReport) -> None:
        self.report = report

    def render(self, file: IO[str]) -> None:
        json.dump(self.report.to_dict(), file, indent=2, sort_keys=False)
        file.write("\n")
