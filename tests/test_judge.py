"""The one judgement: verdicts and explanations from recorded measurements, no subprocess."""

from __future__ import annotations

import json

import pytest

from leakhunt.budget import Budget, Violation
from leakhunt.explanation import Explanation, Figure, PathStep, Root, Site
from leakhunt.hunt import LeakVerdict
from leakhunt.judge import VERDICTS, Evidence, Verdict, hint_for, judge
from leakhunt.lifecycle import Block, Policy
from leakhunt.measure import Measurement
from leakhunt.probes import Reading

MiB = 1 << 20


def recorded(rss: int, peak: int = 0, *, traced: int | None = None, arrow: int | None = None,
             excluded: int = 0) -> Measurement:
    """A measurement as a front end would have recorded it: ``rss`` growth, settled."""
    before = Reading(time=0.0, rss=100 * MiB, rss_anon=80 * MiB, traced=0 if traced is not None else None,
                     arrow=0 if arrow is not None else None)
    after = Reading(time=1.0, rss=100 * MiB + rss, rss_anon=80 * MiB + rss, traced=traced, arrow=arrow)
    return Measurement(before=before, after=after, peak_rss=100 * MiB + peak, peak=peak, traced_peak=None,
                       arrow_peak=None, children_peak=None, allocator_retention=0, seconds=1.0, settled=True,
                       traced=traced is not None, excluded=excluded)


def test_within_budget_is_ok_and_over_it_is_over_budget() -> None:
    budget = Budget(rss=20 * MiB)
    assert judge(recorded(5 * MiB), budget).verdict == "ok"
    failed = judge(recorded(50 * MiB), budget, title="t::x")
    assert failed.verdict == "over_budget" and failed.failed
    assert failed.violations == (Violation("rss", 50 * MiB, 20 * MiB),)
    assert str(failed.explanation).startswith("t::x broke its memory budget\n  rss grew 50.0 MiB (budget 20.0 MiB)")
    # no attribution was possible: the hint says how to get it, never points at empty paths
    assert "was not looked for" in failed.explanation.hint
    json.dumps(failed.to_dict())


@pytest.mark.parametrize(("skipped", "native"), [(0, True), (8 * MiB, False)])
def test_no_python_object_is_said_only_after_every_survivor_was_searched(skipped: int, native: bool) -> None:
    """A block whose data holders were told apart (a baseline, untraced), no root found: "no
    Python object holds it" only when nothing was left unsearched."""
    from leakhunt.attribution import Survivors

    survivors = Survivors(roots=(), found=0, buffers=0, skipped=skipped, data_told=True)
    failed = judge(recorded(50 * MiB), Budget(rss=20 * MiB), evidence=Evidence(survivors=survivors))
    assert ("no Python object of this block holds the growth" in failed.explanation.hint) is native
    assert "was not looked for" not in failed.explanation.hint


def test_older_threads_memory_is_not_the_blocks() -> None:
    measurement = recorded(30 * MiB, traced=30 * MiB, excluded=25 * MiB)
    assert measurement.figure("rss") == 5 * MiB and measurement.figure("traced") == 5 * MiB
    assert judge(measurement, Budget(rss=20 * MiB, traced=20 * MiB)).verdict == "ok"
    assert judge(recorded(30 * MiB, traced=30 * MiB), Budget(traced=20 * MiB)).verdict == "over_budget"


def recorded_block(measurement: Measurement, budget: Budget) -> Block:
    """A block whose first call was measured elsewhere: the lifecycle judges it from there."""
    return Block("the block", Policy.of(budget), measurement=measurement)


def test_the_second_call_rule_is_pure() -> None:
    budget = Budget(rss=20 * MiB)
    one_time = judge(recorded(50 * MiB), budget, evidence=Evidence(second=recorded(1 * MiB)))
    assert one_time.verdict is Verdict.OK and one_time.explanation is None
    assert any("not counted (first imports" in n for n in one_time.notes)
    kept = judge(recorded(50 * MiB), budget, evidence=Evidence(second=recorded(48 * MiB)))
    assert kept.verdict is Verdict.OVER_BUDGET and kept.failed
    assert any("a second call kept 48.0 MiB too" in n for n in kept.explanation.notes)
    # no second call: the first call's excess stands
    assert judge(recorded(50 * MiB), budget).verdict is Verdict.OVER_BUDGET


def test_a_second_call_within_the_limit_is_one_time_initialisation() -> None:
    calls = []
    judgement = recorded_block(recorded(50 * MiB), Budget(rss=20 * MiB)).finish(again=lambda: calls.append(1))
    assert calls == [1]
    assert judgement.verdict == "ok" and judgement.explanation is None
    assert any("not counted (first imports, pools, caches: one-time initialisation)" in n for n in judgement.notes)


def test_a_second_call_that_keeps_memory_too_fails() -> None:
    np = pytest.importorskip("numpy")
    kept = []
    block = recorded_block(recorded(50 * MiB), Budget(rss=20 * MiB))
    judgement = block.finish(again=lambda: kept.append(np.ones(6_000_000)))
    assert judgement.verdict == "over_budget"
    [root] = judgement.explanation.roots  # what the traced second call made, and only that
    assert root.buffers == 1 and root.size == 48_000_000 and "local in" in root.root
    assert any("called it a second time, traced" in n for n in judgement.explanation.notes)


def test_a_second_call_that_raises_keeps_the_failure() -> None:
    def boom() -> None:
        raise RuntimeError("not repeatable")

    judgement = recorded_block(recorded(50 * MiB), Budget(rss=20 * MiB)).finish(again=boom)
    assert judgement.verdict == "over_budget"
    assert any("failed: RuntimeError: not repeatable" in n for n in judgement.explanation.notes)


def test_peak_only_failure_hints_at_chunks() -> None:
    judgement = judge(recorded(0, peak=300 * MiB), Budget(peak=100 * MiB))
    assert judgement.verdict == "over_budget"
    assert judgement.explanation.hint.startswith("the memory was freed, but too much was alive at once")
    assert judgement.explanation.where == {}  # nothing was kept: where it lives is not the story


def _verdict(leaking: bool, suspect: bool) -> LeakVerdict:
    return LeakVerdict(leaking=leaking, suspect=suspect, per_call=200 * 1024 if suspect else None,
                       accounting="rss" if suspect else None, threshold=64 * 1024, calls=23,
                       series={"rss": [0, 200 * 1024, 400 * 1024]},
                       cleared_note=None if leaking or not suspect else "warm-up or bounded cache")


@pytest.mark.parametrize(("leaking", "suspect", "expected"), [
    (True, True, "leak"), (False, True, "warmup_or_bounded_cache"), (False, False, "ok")])
def test_hunt_verdicts(leaking: bool, suspect: bool, expected: str) -> None:
    judgement = judge(None, None, _verdict(leaking, suspect), title="t::y")
    assert judgement.verdict == expected and expected in VERDICTS
    if leaking:
        assert judgement.violations == (Violation("leak", 200 * 1024, 64 * 1024),)
        assert str(judgement.explanation).startswith("t::y leaks 200.0 KiB per call (threshold 64.0 KiB)")


@pytest.mark.parametrize(("pattern", "words"), [
    ("view", "a slice or view keeps its whole parent buffer"),
    ("groupby", "GroupBy"), ("cache", "bound it (maxsize)"), ("closure", "closes over"),
    ("list", "module-level list"), ("dict", "module-level dict"), ("arrow_slice", "Arrow slice")])
def test_hint_is_chosen_from_the_roots_pattern(pattern: str, words: str) -> None:
    root = Root("X (global in m)", "global", 1, 10, (PathStep("X (global in m)"),), "X", pattern=pattern)
    library = Root("Y (global in pandas)", "global", 3, 99, (PathStep("Y"),), "Y", pattern="cache", library=True)
    assert words in hint_for([library, root], {"rss"})  # the user's root wins over a library's


@pytest.mark.parametrize(("unexplained", "estimated", "minor"), [
    (80 * MiB, (), True),                        # a 1.6 KiB handle beside 80 MiB no object holds
    (8 * 1024, (), False),                       # the root keeps most of what is left: its hint
    (80 * MiB, (("DataFrame", 4),), False),      # a polars estimate: the root's size is not its memory
])
def test_roots_keeping_a_sliver_do_not_choose_the_hint(unexplained: int, estimated: tuple, minor: bool) -> None:
    root = Root("libc (global in __main__)", "global", 0, 1600, (PathStep("libc"),), "libc", pattern="attribute",
                estimated=estimated)
    hint = hint_for([root], {"rss"}, unexplained=unexplained, front="run", traced=False)
    assert ("the roots found keep only 1.6 KiB" in hint) is minor, hint
    assert ("leakhunt run --trace shows the lines" in hint) is minor
    if not minor:
        assert "through an attribute" in hint


def test_explanation_round_trips_through_its_dict_form() -> None:
    explanation = Explanation(
        title="t::z", headline="broke its memory budget",
        figures=(Figure("rss", 96 * MiB, 20 * MiB), Figure("peak", 191 * MiB)),
        where={"numpy": 95 * MiB, "python": 1, "arrow": None, "unaccounted": 0},
        roots=(Root("HOLD (global in t)", "global", 8, 122 * MiB,
                    (PathStep("HOLD (global in t)"), PathStep("list"), PathStep("ndarray 15.3 MiB", "[0]", 16 * 10**6)),
                    "HOLD (global in t) -> list[0] -> ndarray 15.3 MiB",
                    Site("/x/t.py", 14, "HOLD.append(...)", 16 * 10**6, 1), pattern="list"),),
        sites=(Site("/x/t.py", 14, "HOLD.append(...)", 122 * MiB, 8),), type_growth=(("list", 3),),
        hint="clear it", notes=("note",), traced=True)
    data = json.loads(json.dumps(explanation.to_dict()))
    assert Explanation.from_dict(data) == explanation
    text = str(explanation)
    assert "    HOLD (global in t) keeps 8 buffers, 122.0 MiB:" in text
    assert "      allocated at t.py:14 (HOLD.append(...))" in text
    assert "Arrow pool n/a (pyarrow not imported)" in text
