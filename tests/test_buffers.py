"""held_buffers names each buffer by its address, so data shared between objects counts once;
the Dask worker's ledger of its data (leakhunt.dask._ledger) is built on it."""

from __future__ import annotations

import numpy as np
import pytest

from leakhunt.buffers import held_buffers

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")

ROWS = 100_000


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"k": rng.integers(0, 10, ROWS), "x": rng.random(ROWS),
                         "name": pd.array(rng.choice(["a", "b"], ROWS), dtype="string[pyarrow]")})


def test_a_derived_frame_shares_its_parents_columns_and_only_the_new_one_is_new() -> None:
    df = _frame()
    parent = held_buffers([df])
    child = held_buffers([df.assign(z=df.x * 2)])
    assert set(parent) <= set(child)
    new = sum(size for address, size in child.items() if address not in parent)
    assert ROWS * 8 <= new < ROWS * 8 + 4096  # the z column (and a new columns index), nothing else
    # Dask's sizeof counts the child in full: the whole parent again
    from dask.sizeof import sizeof

    assert sizeof(df.assign(z=df.x * 2)) > sum(parent.values())


def test_views_count_their_base_once_and_arrow_is_counted_by_its_buffers() -> None:
    base = np.zeros(1_000_000)
    assert held_buffers([base[10:], base[:5], base]) == {base.__array_interface__["data"][0]: base.nbytes}
    table = pa.table({"x": pa.array(np.arange(1000, dtype="int64"))})
    found = held_buffers([table, table.column(0), table.slice(0, 10)])
    assert sum(found.values()) == 8000  # one data buffer, whatever holds it
    assert held_buffers([table.column(0).to_numpy()]) == found  # a zero-copy numpy view of it


def test_the_ledger_counts_shared_buffers_once_and_until_the_last_holder_leaves() -> None:
    pytest.importorskip("distributed")
    from leakhunt.dask._ledger import DataLedger

    df = _frame()
    child = df.assign(z=df.x * 2)
    ledger = DataLedger()
    ledger.add("parent", df, 10 << 20)
    first = ledger.held
    ledger.add("child", child, 10 << 20)
    new = sum(size for address, size in held_buffers([child]).items() if address not in held_buffers([df]))
    assert ledger.held - first == new + (10 << 20) - sum(held_buffers([child]).values())
    assert new < 2 * ROWS * 8
    ledger.remove("parent")
    assert ledger.buffers == sum(held_buffers([child]).values())  # the child still holds the shared columns
    ledger.remove("child")
    assert ledger.held == 0 and len(ledger) == 0
    ledger.add("small", 12345, 28)  # under the walking size: counted by sizeof alone
    assert ledger.held == 28
