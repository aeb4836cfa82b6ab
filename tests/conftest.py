"""Order of the suite under pytest-xdist (``pytest -n 2``, the README's command).

xdist hands tests out in collection order: each worker first takes a run of consecutive tests,
then a few at a time as it finishes them. tests/test_zoo.py sorts last by name and is among the
slowest modules (pytest subprocesses, and a module fixture that runs tests/zoo/library.py for
15-25 s). Handed out two at a time at the end of the run, its library tests ran that fixture on
both workers (a whole run with -n 2 set it up for test_library_reproducers[pandas_49582], 16.6 s,
and for [numpy_19091], 15.4 s), and its long tests could leave one worker busy while the other had
nothing left. Under xdist it is collected first, whole: it falls in the first worker's first run
of tests (the fixture is set up once), and the run ends on short unit tests. Without xdist the
order is pytest's own.
"""

from __future__ import annotations

import pytest

#: Modules collected first under xdist (their own order kept).
FIRST = ("test_zoo.py",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # not an xdist worker
        return
    items.sort(key=lambda item: item.path.name not in FIRST)  # a stable sort: the rest keep their order
