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
        # Indented head, one line per test: readable, and the per-test lines use json's C
        # encoder (indent=2 everywhere takes the pure-Python one: seconds for a big suite).
        document = self.report.to_dict()
        tests = document.pop("tests")
        head = json.dumps(document, indent=2)
        file.write(head[: head.rindex("}")].rstrip() + ',\n  "tests": [')
        for i, test in enumerate(tests):
            file.write(("\n    " if i == 0 else ",\n    ") + json.dumps(test))
        file.write("\n  ]\n}\n" if tests else "]\n}\n")
