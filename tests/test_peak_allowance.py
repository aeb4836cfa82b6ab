"""PeakSnapshots' cost controls used by `leakhunt run --trace`: the time allowance and imports.

The thread is parked (a long interval) and :meth:`check` is called by hand, so each test
decides exactly when a snapshot may be taken. Allocations are bytearrays of known sizes, far
from the 25 % rule's edge.
"""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import pytest

from leakhunt.tracing import PeakSnapshots

MIB = 1024 * 1024


@pytest.fixture()
def traced():  # type: ignore[no-untyped-def]
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc already running")
    tracemalloc.start(1)
    try:
        yield
    finally:
        tracemalloc.stop()


def test_spent_allowance_skips_small_rises_but_not_big_ones(traced: None) -> None:
    peaks = PeakSnapshots(interval=3600, budget=0.0).start()
    try:
        first = bytearray(8 * MIB)
        peaks.check()
        assert peaks.snapshots == 1
        peaks.seconds = 1.5  # as if snapshots had cost 1.5 s: the allowance (1 s) is spent, not twice over
        second = bytearray(1 * MIB)  # +12 %: more than a step, less than a quarter
        peaks.check()
        assert peaks.snapshots == 1
        third = bytearray(8 * MIB)  # now +112 % over the snapshot held: taken anyway
        peaks.check()
        assert peaks.snapshots == 2 and peaks.level >= 17 * MIB
    finally:
        peaks.stop()
    del first, second, third


def test_twice_the_allowance_spent_skips_even_big_rises(traced: None) -> None:
    # a heap that keeps growing would otherwise pay a snapshot at every quarter (issue 20)
    peaks = PeakSnapshots(interval=3600, budget=0.0).start()
    try:
        first = bytearray(8 * MIB)
        peaks.check()
        peaks.seconds = 2.5  # over twice the allowance of 1 s
        second = bytearray(16 * MIB)  # +200 %
        peaks.check()
        assert peaks.snapshots == 1 and peaks.level < 9 * MIB
    finally:
        peaks.stop()
    del first, second


def test_a_snapshot_that_would_take_the_allowance_twice_over_is_not_taken(traced: None) -> None:
    # counted with the one to take: the last snapshot's time estimates it (issue 20: a growing
    # heap's snapshots overshot the allowance, 32 % of a run)
    peaks = PeakSnapshots(interval=3600, budget=0.0).start()
    try:
        first = bytearray(8 * MIB)
        peaks.check()
        peaks.seconds, peaks.last_cost = 1.5, 0.1  # within twice the allowance after one more
        second = bytearray(16 * MIB)  # +200 %: the next one estimated at 3 x 0.1 s
        peaks.check()
        assert peaks.snapshots == 2
        peaks.seconds, peaks.last_cost = 1.5, 0.2  # past it after one more: 3 x 0.2 s
        third = bytearray(48 * MIB)  # +200 % again
        peaks.check()
        assert peaks.snapshots == 2 and peaks.level < 25 * MIB
    finally:
        peaks.stop()
    del first, second, third


def test_without_a_budget_every_step_is_taken(traced: None) -> None:
    peaks = PeakSnapshots(interval=3600).start()
    try:
        first = bytearray(8 * MIB)
        peaks.check()
        peaks.seconds = 10.0
        second = bytearray(1 * MIB)
        peaks.check()
        assert peaks.snapshots == 2
    finally:
        peaks.stop()
    del first, second


@pytest.mark.parametrize("skip", [True, False])
def test_no_snapshot_while_importing(traced: None, tmp_path: Path, skip: bool) -> None:
    module = tmp_path / "lh_importing_module.py"
    module.write_text("import builtins\nDATA = bytearray(4 * 1024 * 1024)\nbuiltins._lh_peaks.check()\n")
    peaks = PeakSnapshots(interval=3600, skip_imports=skip).start()
    import builtins

    builtins._lh_peaks = peaks  # type: ignore[attr-defined]
    sys.path.insert(0, str(tmp_path))
    try:
        import lh_importing_module  # noqa: F401 - its import calls check()
        assert peaks.snapshots == (0 if skip else 1)
        peaks.check()  # after the import: taken either way
        assert peaks.snapshots == 1 if skip else peaks.snapshots >= 1
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("lh_importing_module", None)
        del builtins._lh_peaks  # type: ignore[attr-defined]
        peaks.stop()
