"""track_growth(): object-count growth by type across a block, settled on both ends."""

from __future__ import annotations

import pytest

from engine_subprocess import run_scenario
from leakhunt import track_growth


class Widget:
    pass


class Gadget:
    pass


KEEP: list[object] = []


def test_reports_plus_n_of_a_class_created_in_the_block() -> None:
    with track_growth() as growth:
        KEEP.extend(Widget() for _ in range(37))
    counts = dict(growth.growth)
    assert counts[f"{__name__}.Widget"] == 37
    assert growth.growth[0] == (f"{__name__}.Widget", 37)  # the biggest growth comes first
    assert "collections.Counter" not in counts  # the tool's own bookkeeping is not growth
    KEEP.clear()


def test_objects_freed_in_the_block_and_cycles_do_not_count() -> None:
    with track_growth() as growth:
        temporary = [Gadget() for _ in range(500)]
        del temporary
        for _ in range(100):
            cycle: list[object] = [Gadget()]
            cycle.append(cycle)  # garbage only the collector frees: settling frees it
        del cycle
    assert f"{__name__}.Gadget" not in dict(growth.growth)


def test_top_n_and_rendering() -> None:
    with track_growth(top=1) as growth:
        assert str(growth) == "object growth: (block still running)"
        KEEP.extend(Widget() for _ in range(20))
        KEEP.extend(Gadget() for _ in range(10))
    assert growth.growth == [(f"{__name__}.Widget", 20)]
    assert list(growth) == growth.growth
    assert str(growth) == f"{__name__}.Widget  +20"
    KEEP.clear()


def test_arrays_are_not_gc_tracked_and_do_not_show() -> None:
    np = pytest.importorskip("numpy")
    with track_growth() as growth:
        KEEP.extend(np.ones(10) for _ in range(50))
    assert "numpy.ndarray" not in dict(growth.growth)
    KEEP.clear()


def test_a_fresh_interpreter_shows_exactly_the_users_growth() -> None:
    result = run_scenario(
        """
        from leakhunt import track_growth
        class Order:
            pass
        KEEP = []
        with track_growth() as g:
            KEEP.extend(Order() for _ in range(250))
        with track_growth() as nothing:
            pass
        emit({"growth": g.growth, "text": str(g), "nothing": str(nothing)})
        """
    )
    assert result["growth"] == [["__main__.Order", 250]]
    assert result["text"] == "__main__.Order  +250"
    assert result["nothing"] == "object growth: none"


@pytest.mark.parametrize("top", [0, -1, 2.5, True])
def test_bad_top_is_a_value_error_quoting_it(top: object) -> None:
    with pytest.raises(ValueError, match=rf"got {top!r}"):
        with track_growth(top=top):  # type: ignore[arg-type]
            pass
