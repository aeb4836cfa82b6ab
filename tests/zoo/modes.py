"""Issue 21, item 8: two tests whose verdict must not depend on the plugin's options. tests/test_zoo.py
copies this file into a pytester directory as test_zoo_modes.py (beside zoo_table.py, a module
the second test imports) and runs it by default, under --leak-trace and under --leak-no-rerun.

The rule (docs/plugin.md, "How the explanation is obtained, and the rule"): what the first call
left alive under the user's roots counts, and what it added to a cache of the user's is among it
(leakhunt/caches.py); an excess they do not hold is decided by a second call, which
--leak-no-rerun turns off (the excess then counts), and modules loaded are never counted."""

import functools

import numpy as np
import pytest


@functools.lru_cache(maxsize=None)
def load(key):
    return np.full(500_000, key, dtype="float64")  # 3.8 MiB per key


@pytest.mark.memory_budget(rss="5 MB")
def test_fills_an_unbounded_cache():
    """Fills the cache with the same four keys on every call: 15.3 MiB the cache keeps."""
    for key in range(4):
        load(key)


@pytest.mark.memory_budget(rss="5 MB")
def test_imports_a_module():
    """The module builds a 15.3 MiB table when it is first imported: a one-time cost."""
    import zoo_table

    assert zoo_table.TABLE.size == 2_000_000
