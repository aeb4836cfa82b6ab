"""The OOM guard on Dask workers: a worker's diagnosis reaches the client's report, and stays
there after the nanny restarts the worker.

A fresh ``LocalCluster`` of one single-threaded worker with a 300 MB ``memory_limit`` per test:
the nanny restarts the worker at 95 % of it, the guard writes at Dask's pause fraction (80 %).
"""

from __future__ import annotations

import logging
import os
from typing import Iterator

import pytest

pytest.importorskip("distributed")

import dask  # noqa: E402
import oom_dask_tasks as T  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402
from distributed.scheduler import KilledWorker  # noqa: E402

from leakhunt.dask import ClusterReport, watch  # noqa: E402


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    saved = dict(os.environ)  # a nanny leaves MALLOC_TRIM_THRESHOLD_ in this process's environment
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def client() -> Iterator[Client]:
    # The scheduler runs in this process: one death of a worker fails the task (no retries).
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, memory_limit="300MB",
                          dashboard_address=":0", silence_logs=logging.CRITICAL) as cluster, \
                Client(cluster, set_as_default=False) as c:
            c.wait_for_workers(1)
            yield c


def test_a_workers_diagnosis_outlives_its_restart(client: Client) -> None:
    with pytest.raises(KilledWorker):
        with watch(client) as w:
            client.submit(T.grow_until_restarted, pure=False).result()
    report = w.report
    assert report is not None and report.oom
    # the first crossing, complete (the task waited for it); a second one higher up may follow
    # before the restart, with its figures at least
    assert [d.number for d in report.oom] == list(range(1, len(report.oom) + 1))
    assert len({d.pid for d in report.oom}) == 1
    diagnosis = report.oom[0]
    assert diagnosis.complete
    assert diagnosis.limit.source.startswith("Dask worker memory_limit") and diagnosis.limit.value == 300_000_000
    assert diagnosis.threshold_text == "80%"  # Dask's pause fraction
    (task,) = diagnosis.context["tasks running"]
    assert task.startswith("grow_until_restarted-")
    assert diagnosis.roots[0].root.startswith("held (local in grow_until_restarted at oom_dask_tasks.py:")
    assert any(note.startswith("then the nanny restarted this worker") for note in diagnosis.notes)
    text = report.explain()
    assert "out-of-memory guard: workers near their memory limit, diagnosed before the nanny's restart" in text
    assert "(this worker left the cluster afterwards: restarted or killed)" in text
    assert ClusterReport.from_dict(report.to_dict()).oom == report.oom


def test_a_worker_under_the_threshold_has_no_diagnosis(client: Client) -> None:
    with watch(client) as w:
        assert client.submit(T.keep_a_little, 20, pure=False).result() == 20
    assert w.report is not None and w.report.oom == ()
    assert "out-of-memory guard" not in w.report.explain()
    assert w.report.to_dict()["oom"] == []


@pytest.mark.parametrize(("value", "message"), [
    ("99%", r"the nanny restarts a worker at 95% of its memory_limit"),
    ("1GB", r"a size applies to no worker in particular"),
    ("lots", r"invalid watch\(oom_guard=...\) 'lots'"),
])
def test_a_bad_threshold_is_refused_before_anything_runs(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        watch(object(), oom_guard=value)
