"""A comparison with a baseline as one self-contained HTML page (``leakhunt report NEW.json
--compare BASE.json -o diff.html``): cards of the counts, a chart of the biggest changes, each
regression with its explanation, and every test in a table sortable by change (the biggest
growth first) and filterable by status. Built from the shared templates
(:mod:`leakhunt.report.templating`); nothing is fetched."""

from __future__ import annotations

import math
from typing import IO, Any

from leakhunt.baseline import FIGURES, Comparison
from leakhunt.report.html import _anchor

__all__ = ["CompareHtml", "STATUSES"]

#: The statuses of a compared test, in the order the page shows them, and what each means.
STATUSES: dict[str, str] = {
    "regressed": "a figure grew beyond the rule",
    "improved": "a figure shrank beyond the rule",
    "same": "within the rule",
    "new": "not in the baseline",
    "gone": "only in the baseline",
    "not_compared": "did not pass, or was not measured, in one of the two",
}


class CompareHtml:
    """``CompareHtml(comparison, new_name="new.json", base_name="base.json").render(file)``."""

    def __init__(self, comparison: Comparison, *, new_name: str = "this run", base_name: str = "the baseline",
                 version: str = "", top: int = 20) -> None:
        self.comparison = comparison
        self.new_name = new_name
        self.base_name = base_name
        self.version = version
        self.top = top

    def context(self) -> dict[str, Any]:
        from leakhunt.report.compare_chart import changes_svg

        comparison = self.comparison
        used: set[str] = set()
        regressions = [{"change": c, "anchor": _anchor(c.nodeid, used)} for c in comparison.regressions()]
        anchors = {item["change"].nodeid: item["anchor"] for item in regressions}
        compared = comparison.compared()
        rest = [t for t in comparison.tests if not t.figures]
        order = {status: i for i, status in enumerate(STATUSES)}
        rest.sort(key=lambda t: (order.get(t.status, len(order)), t.nodeid))
        rows = [{"change": c, "anchor": anchors.get(c.nodeid), "figures": {f.name: f for f in c.figures}}
                for c in compared + rest]
        return {
            "comparison": comparison,
            "new_name": self.new_name,
            "base_name": self.base_name,
            "version": self.version,
            "statuses": list(STATUSES),
            "status_help": STATUSES,
            "counts": comparison.counts(),
            "figures": FIGURES,
            "regressions": regressions,
            "rows": rows,
            "chart": changes_svg(compared, top=self.top),
            "inf": math.inf,
        }

    def render(self, file: IO[str]) -> None:
        from leakhunt.report.templating import render

        render("compare.html.j2", file, **self.context())
