"""Judging a task prefix from several workers (leakhunt.taskhunt), and the verdicts it adds to
leakhunt.judge.VERDICTS. Pure functions on made-up series: no cluster."""

from __future__ import annotations

import pytest

from leakhunt.hunt import LeakVerdict, SeriesHunt
from leakhunt.judge import VERDICTS, judge
from leakhunt.taskhunt import (
    DASK_SHUFFLE,
    MIN_WINDOW,
    SHARED_CLEARED,
    SharedSeriesHunt,
    WorkerSeries,
    closed,
    given_back,
    held_by_leaks,
    judge_prefix,
    own_per_call,
    pooled_verdict,
    verdict_from_dict,
)

MiB = 1024 * 1024
LIMIT = MiB  # the Dask threshold


def _hunted(figures: list[int], *, repeat: int = 10, warmup: int = 3) -> LeakVerdict:
    hunt = SeriesHunt(LIMIT, repeat=repeat, warmup=warmup, accounting="unmanaged", noise=16 * 1024)
    for figure in figures:
        hunt.add(figure)
    return hunt.verdict()


def _series(address: str, figures: list[int], **kwargs: object) -> WorkerSeries:
    verdict = kwargs.pop("verdict", None) or _hunted(figures)
    return WorkerSeries(address=address, verdict=verdict, calls=len(figures), figures=tuple(figures[:64]),
                        retained=sum(figures), **kwargs)  # type: ignore[arg-type]


def _judge(series: list[WorkerSeries], **kwargs: object):  # noqa: ANN202
    options = {"threshold": LIMIT, "warmup": 3, "repeat": 10, "noise": 16 * 1024, "spread_noise": False}
    options.update(kwargs)
    return judge_prefix("step", series, **options)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ judge's new verdicts


def test_the_new_verdicts_are_in_the_one_table_and_judge_returns_each() -> None:
    for name in ("unconfirmed", "too_few_calls", "given_back"):
        assert name in VERDICTS and VERDICTS[name]
    few = _hunted([2 * MiB] * 8)  # no full window after the warm-up
    assert judge(None, None, few).verdict == "too_few_calls"
    open_ = _hunted([2 * MiB] * 20)  # suspect, confirmation half done
    assert open_.suspect and not open_.leaking and judge(None, None, open_).verdict == "unconfirmed"
    leak = _hunted([2 * MiB] * 30)
    assert judge(None, None, leak).verdict == "leak"
    from dataclasses import replace

    assert judge(None, None, replace(leak, leaking=False, given_back=True)).verdict == "given_back"
    cleared = _hunted([2 * MiB] * 13 + [0] * 10)  # grew, then stopped: the confirmation cleared it
    assert judge(None, None, cleared).verdict == "warmup_or_bounded_cache"
    assert judge(None, None, _hunted([0] * 30)).verdict == "ok"


def test_a_verdict_crosses_the_network_as_data_and_back() -> None:
    verdict = _hunted([2 * MiB] * 30)
    again = verdict_from_dict(verdict.to_dict())
    assert again == verdict


# ------------------------------------------------------------------------ given back


def test_given_back_names_only_the_leaks_the_settled_growth_cannot_hold() -> None:
    # a real leak (120 MiB) beside a shuffle's transfers (300 MiB, given back when it unpacked)
    assert given_back({"leaky": 120 * MiB, "shuffle-transfer": 300 * MiB}, 125 * MiB) == {"shuffle-transfer"}
    assert given_back({"leaky": 120 * MiB, "shuffle-transfer": 300 * MiB}, 430 * MiB) == set()
    assert given_back({"leaky": 120 * MiB}, 2 * MiB) == {"leaky"}
    assert given_back({"leaky": 120 * MiB}, 100 * MiB) == set()  # what settling cannot give back
    assert given_back({"leaky": 120 * MiB}, 60 * MiB) == set()  # older memory freed during the watch
    assert given_back({"leaky": 120 * MiB}, None) == set()  # not measured: nothing is relabelled


def test_a_prefix_given_back_on_a_worker_reads_given_back_and_the_other_leak_stays() -> None:
    leak = [2 * MiB] * 30
    judged = _judge([_series("tcp://a:1", leak)], released=["tcp://a:1"])
    assert judged.verdict == "given_back" and "given back on tcp://a:1" in judged.notes[0]
    kept = _judge([_series("tcp://a:1", leak), _series("tcp://b:2", leak)], released=["tcp://a:1"])
    assert kept.verdict == "leak"
    assert kept.notes[0] == "confirmed on tcp://b:2 (1 of 2 workers)"


# ------------------------------------------------------------------------ small runs


def test_ten_calls_on_each_of_two_workers_are_judged_together() -> None:
    leak = [2 * MiB] * 10
    judged = _judge([_series("tcp://a:1", leak), _series("tcp://b:2", leak)])
    assert judged.verdict == "leak" and judged.per_call == 2 * MiB
    assert "judged over all workers together (10 on tcp://a:1, 10 on tcp://b:2; windows of 7 calls" in judged.notes[0]
    clean = _judge([_series("tcp://a:1", [4096] * 10), _series("tcp://b:2", [-4096] * 10)])
    assert clean.verdict == "ok"


def test_too_few_calls_even_together_says_what_more_calls_would_settle() -> None:
    judged = _judge([_series("tcp://a:1", [2 * MiB] * 5), _series("tcp://b:2", [2 * MiB] * 4)])
    assert judged.verdict == "too_few_calls"
    note = judged.notes[0]
    assert "5 on tcp://a:1, 4 on tcp://b:2" in note and "16 calls here" in note
    assert "warm-up" in note and "watch(..., warmup=0, repeat=5)" in note


def test_pooled_windows_are_never_shorter_than_the_minimum() -> None:
    series = [_series("tcp://a:1", [2 * MiB] * (3 + MIN_WINDOW)), _series("tcp://b:2", [2 * MiB] * (3 + MIN_WINDOW))]
    verdict, note = pooled_verdict(series, threshold=LIMIT, warmup=3, repeat=10, noise=16 * 1024, spread_noise=False)
    assert verdict.leaking and f"windows of {MIN_WINDOW} calls" in note
    verdict, _ = pooled_verdict(series[:1], threshold=LIMIT, warmup=3, repeat=10, noise=16 * 1024, spread_noise=False)
    assert not verdict.series  # 5 calls after the warm-up: not two windows


# ------------------------------------------------------------------------ several threads


def test_shared_figures_only_raise_suspicion_and_calls_measured_alone_decide() -> None:
    hunt = SharedSeriesHunt(LIMIT, repeat=10, warmup=3, noise=MiB)
    for _ in range(13):
        hunt.add(700 * 1024)  # a diluted leak: under the threshold, over half of it
    assert hunt.confirming and not hunt.leaking
    for _ in range(25):
        hunt.add(9 * MiB)  # neighbours' temporaries landing on it: never counted while confirming
    assert hunt.confirming
    for _ in range(10):
        hunt.add(2 * MiB, alone=True)
    verdict = hunt.verdict()
    assert verdict.leaking and verdict.per_call == 2 * MiB and "measured alone" in (verdict.evidence or "")
    assert judge(None, None, verdict).verdict == "leak"


def test_a_shared_suspicion_that_alone_calls_do_not_confirm_is_cleared() -> None:
    hunt = SharedSeriesHunt(LIMIT, repeat=10, warmup=3, noise=MiB)
    for _ in range(13):
        hunt.add(2 * MiB)  # a neighbour's leak shared onto a clean prefix
    for _ in range(10):
        hunt.add(8 * 1024, alone=True)
    verdict = hunt.verdict()
    assert not verdict.leaking and verdict.cleared_note == SHARED_CLEARED
    assert judge(None, None, verdict).verdict == "warmup_or_bounded_cache"


def test_a_confirmation_the_calls_ended_in_is_judged_on_the_calls_it_had() -> None:
    hunt = SharedSeriesHunt(LIMIT, repeat=10, warmup=3, noise=MiB)
    for _ in range(13):
        hunt.add(2 * MiB)
    for _ in range(6):
        hunt.add(2 * MiB, alone=True)
    series = WorkerSeries("tcp://a:1", hunt.verdict(), calls=19, open_window=hunt.open_window, shared=True)
    assert judge(None, None, series.verdict).verdict == "unconfirmed"
    done = closed(series, noise=MiB)
    assert done.verdict.leaking and "shorter window of 6 calls" in (done.verdict.evidence or "")
    assert own_per_call(done) == 2 * MiB
    short = WorkerSeries("tcp://a:1", hunt.verdict(), calls=17, open_window=hunt.open_window[:3], shared=True)
    assert closed(short, noise=MiB).verdict == short.verdict  # 3 calls: still unconfirmed


@pytest.mark.parametrize("shared, expected", [(True, None), (False, 4096)])
def test_on_several_threads_only_calls_measured_alone_give_a_prefix_its_figure(shared: bool, expected: int | None) -> None:
    figures = [4096] * 30
    judged = _judge([_series("tcp://a:1", figures, shared=shared)])
    assert judged.verdict == "ok" and judged.per_call == expected


def test_confirmations_cut_short_on_two_workers_are_judged_together() -> None:
    rows = []
    for address in ("tcp://a:1", "tcp://b:2"):
        hunt = SharedSeriesHunt(LIMIT, repeat=10, warmup=3, noise=MiB)
        for _ in range(13):
            hunt.add(2 * MiB)
        for _ in range(3):
            hunt.add(4096, alone=True)
        rows.append(WorkerSeries(address, hunt.verdict(), calls=16, open_window=hunt.open_window, shared=True))
    judged = _judge(rows, noise=MiB, spread_noise=True)
    assert judged.verdict == "warmup_or_bounded_cache"
    assert "confirmation judged on 6 calls of 2 workers together (tcp://a:1, tcp://b:2)" in judged.notes
    # 3 calls alone on one worker: no evidence by themselves; the prefix is judged from all its calls
    alone = _judge(rows[:1], noise=MiB, spread_noise=True)
    assert alone.verdict != "unconfirmed"
    assert "suspected from shared figures on tcp://a:1, where its calls ended before 5 ran alone" in alone.notes


# ------------------------------------------------------------------------ Dask's own P2P shuffle tasks


@pytest.mark.parametrize("dask_shuffle", [True, False])
def test_a_growth_in_tasks_that_run_only_dasks_shuffle_code_is_dasks_not_a_leak(dask_shuffle: bool) -> None:
    # The same confirmed growth on both workers: a leak when the prefix runs the user's code,
    # ok and named as the shuffle's when its tasks run only distributed.shuffle's code.
    series = [_series(f"tcp://w{i}", [2 * MiB] * 30, dask_shuffle=dask_shuffle) for i in (1, 2)]
    assert all(s.verdict.leaking for s in series)
    judged = _judge(series)
    if dask_shuffle:
        assert judged.verdict == "ok", judged.notes
        assert any(DASK_SHUFFLE in note and "tcp://w1, tcp://w2" in note for note in judged.notes)
        assert held_by_leaks({"p2pshuffle": series[0]}) == {}  # never counted as a leak the worker holds
    else:
        assert judged.verdict == "leak"
        assert held_by_leaks({"step": series[0]}) == {"step": 30 * 2 * MiB}


def test_a_shuffle_prefix_that_did_not_grow_carries_no_shuffle_note() -> None:
    judged = _judge([_series("tcp://w1", [0] * 30, dask_shuffle=True)])
    assert judged.verdict == "ok" and not any(DASK_SHUFFLE in note for note in judged.notes)


def test_only_a_task_that_runs_nothing_but_distributed_shuffle_code_is_dasks() -> None:
    pytest.importorskip("distributed")
    from dask._task_spec import Task, TaskRef
    from distributed.shuffle._core import p2p_barrier
    from distributed.shuffle._shuffle import shuffle_unpack

    from leakhunt.dask._ledger import runs_only_shuffle_code

    def users(frame: object) -> object:
        return frame

    assert runs_only_shuffle_code(Task(("p2pshuffle-x", 0), shuffle_unpack, "x", 0, TaskRef("shuffle-barrier-x")))
    assert runs_only_shuffle_code(Task("shuffle-barrier-x", p2p_barrier, "x", 1, 2))
    from dask.dataframe.dask_expr._shuffle import _shuffle_transfer  # dask-expr's forwarder into it

    assert runs_only_shuffle_code(Task(("shuffle-transfer-x", 0), _shuffle_transfer, TaskRef("p"), "x", 0))
    assert not runs_only_shuffle_code(Task(("shuffle-transfer-x", 0), _shuffle_transfer, Task("inner", users, 1), "x", 0))
    assert not runs_only_shuffle_code(Task(("leaky-x", 0), users, TaskRef("p")))
    # the user's code fused into the task: not Dask's alone
    assert not runs_only_shuffle_code(Task(("p2pshuffle-x", 0), shuffle_unpack, "x", 0, Task("inner", users, 1)))
    assert not runs_only_shuffle_code(None)
