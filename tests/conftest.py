"""Order of the suite under pytest-xdist (``pytest -n 2``, the README's command).

xdist hands tests out in collection order: each worker first takes a run of consecutive tests,
then a few at a time as it finishes them. tests/test_zoo.py sorts last by name and is among the
slowest modules (pytest subprocesses, and a module fixture that runs tests/zoo/library.py for
about 20 s): at the end of the run its long tests kept one worker busy while the other had none
left, and its library tests, handed out two at a time, ran that fixture on both workers. Under
xdist it is collected first, whole: it then falls in the first worker's first run of tests, and
the run ends on short unit tests. Without xdist the order is pytest's own.
"""

from __future__ import annotations

import pytest

#: Modules collected first under xdist (their own order kept).
FIRST = ("test_zoo.py",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # not an xdist worker
        return
    items.sort(key=lambda item: item.path.name not in FIRST)  # a stable sort: the rest keep their order
