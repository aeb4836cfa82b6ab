"""leakhunt on Dask: the worker plugin, the cluster report, budgets, `leakhunt dask`, faults.

Most tests share one ``LocalCluster(processes=True)`` of 2 single-threaded workers (module
fixture): each watch measures from its own start, and ``client`` empties what the task
functions keep before each test, so the tests stay independent. Tests that kill, add or block
workers get a cluster of their own. Several threads per worker are in test_dask_threads.py.
The task functions live in ``dask_tasks`` (workers import them by reference).
"""

from __future__ import annotations

import json
import re
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

import dask_tasks as T  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

from engine_subprocess import run_scenario  # noqa: E402
from leakhunt import MemoryBudgetExceeded  # noqa: E402
from leakhunt.dask import ClusterReport, watch  # noqa: E402

MB = 1_000_000
MiB = 1 << 20
TESTS = Path(__file__).parent


def _cluster(threads: int, **kwargs: Any) -> LocalCluster:
    return LocalCluster(n_workers=kwargs.pop("n_workers", 2), threads_per_worker=threads, processes=True,
                        dashboard_address=":0", silence_logs=logging.CRITICAL, **kwargs)


@pytest.fixture(scope="module")
def _environment_restored() -> Iterator[None]:
    # A nanny sets distributed.nanny.pre-spawn-environ (MALLOC_TRIM_THRESHOLD_=65536) in *this*
    # process's environment and leaves it there: every later subprocess would inherit a glibc
    # without its dynamic mmap threshold, and other tests' figures moved (a 200 KiB leak read
    # 204 KiB per call in tests/test_hunt.py).
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def shared(_environment_restored: None) -> Iterator[Client]:
    with _cluster(1) as cluster, Client(cluster, set_as_default=False) as c:
        c.wait_for_workers(2)
        yield c


@pytest.fixture
def client(shared: Client) -> Client:
    shared.run(T.reset)
    return shared


def _gather(client: Client, fn: Any, n: int, start: int = 0) -> list[Any]:
    return client.gather(client.map(fn, range(start, start + n), pure=False))


# ------------------------------------------------------------------------------ verdicts


def test_a_2_mb_per_call_leak_is_reported_with_its_figure_and_its_path(client: Client) -> None:
    with watch(client) as w:
        _gather(client, T.leak_step, 60)
    report = w.report
    assert report is not None
    leak = report.prefix("leak_step")
    assert leak.verdict == "leak" and leak.calls == 60
    assert 0.75 * T.LEAK_BYTES <= leak.retained_per_call <= 1.25 * T.LEAK_BYTES
    addresses = sorted(w_.address for w_ in report.workers)
    assert leak.note == f"confirmed on {', '.join(addresses)} (2 of 2 workers)"  # the workers, by name
    assert leak.explanation is not None and "leaks" in leak.explanation.headline
    data = report.to_dict()
    task = data["tasks"][0]
    assert {"prefix", "calls", "retained_per_call", "peak", "verdict"} <= set(task)
    assert task["verdict"] == "leak" and isinstance(task["retained_per_call"], int)
    assert data["verdicts"]["leak"]  # the meaning, from leakhunt.judge.VERDICTS
    for worker in data["workers"]:
        assert {"address", "rss", "managed", "unmanaged", "python_heap", "numpy", "arrow",
                "allocator_retention"} <= set(worker)
        assert all(isinstance(worker[k], int) for k in ("rss", "managed", "unmanaged", "numpy", "python_heap"))
        assert worker["arrow"] is None  # pyarrow was never imported on the workers
    # The leaked arrays are numpy's, and the survivors' path names the module-level list.
    calls = {row["address"]: row["calls"] for row in leak.workers}
    for worker in report.workers:
        assert worker.numpy >= 0.9 * calls[worker.address] * T.LEAK_BYTES
        assert worker.survivors[0].root == "LEAKED (global in dask_tasks)"
        assert worker.survivors[0].buffers == calls[worker.address]
    text = report.explain()
    assert "leak_step" in text and "LEAK" in text and "LEAKED (global in dask_tasks) -> list[" in text
    assert "recycle workers" in text and "--lifetime" in text  # the advice for a confirmed leak


def test_churn_a_bounded_cache_and_gathered_results_are_not_leaks(client: Client) -> None:
    plain = _gather(client, T.big_result, 4)
    with watch(client) as w:
        _gather(client, T.churn_step, 40)
        _gather(client, T.cache_step, 40)
        failed = client.gather(client.map(T.failing_step, range(20), pure=False), errors="skip")
        results = []
        for batch in range(4):  # 20 MB results, gathered batch by batch: managed, then released
            results.append(_gather(client, T.big_result, 10, start=10 * batch))
    report = w.report
    assert report is not None
    verdicts = {t.prefix: t.verdict for t in report.tasks}
    assert verdicts["churn_step"] == "ok" and verdicts["big_result"] == "ok"
    assert verdicts["cache_step"] in ("ok", "warmup_or_bounded_cache")
    failing = report.prefix("failing_step")
    assert failing.verdict == "too_few_calls" and failing.errors == 20 and failed == []  # failed tasks: never hunted
    assert "20 failed calls never hunted" in failing.note
    assert report.prefix("churn_step").peak >= 40 * MB  # the 50 MB is seen as a peak, not left behind
    for name in ("churn_step", "big_result"):
        assert abs(report.prefix(name).retained_per_call) < 256 * 1024
    # the cache grew over its first 8 calls per worker, then stopped: under the threshold per call
    assert report.prefix("cache_step").retained_per_call < 1024 * 1024
    # watching does not change results
    assert all((a == b).all() for a, b in zip(plain, results[0][:4]))
    assert float(results[3][9][0]) == 39.0


def test_the_split_puts_a_kept_arrow_table_under_arrow(client: Client) -> None:
    with watch(client) as w:
        _gather(client, T.keep_arrow_table, 4)
    report = w.report
    assert report is not None
    arrow = sum(w_.arrow or 0 for w_ in report.workers)
    numpy = sum(w_.numpy or 0 for w_ in report.workers)
    assert arrow >= 4 * 16 * MB
    assert numpy < 16 * MB  # the tables' memory is Arrow's, not numpy's
    roots = [r.root for w_ in report.workers for r in w_.survivors]
    assert "KEPT_TABLES (global in dask_tasks)" in roots
    # issue 23: equal-sized tables collapsed into one ("keeps 1 buffer"); by their buffers'
    # addresses four equal tables are four
    kept_roots = [r for w_ in report.workers for r in w_.survivors if r.root == "KEPT_TABLES (global in dask_tasks)"]
    assert sum(r.buffers for r in kept_roots) == 4
    assert sum(r.size for r in kept_roots) >= 4 * 16 * MB
    kept = report.prefix("keep_arrow_table")
    assert kept.verdict == "too_few_calls"  # 4 calls: too few to hunt, even over both workers
    assert "watch(..., warmup=0, repeat=5)" in kept.note


def test_twenty_calls_over_two_workers_are_judged_together(client: Client) -> None:
    workers = sorted(client.scheduler_info()["workers"])
    with watch(client) as w:  # 10 calls on each worker: fewer than a warm-up and a window on either
        for fn in (T.leak_step, T.churn_step):
            client.gather([client.map(fn, range(10 * i, 10 * i + 10), pure=False, workers=[address])
                           for i, address in enumerate(workers)])
    report = w.report
    assert report is not None
    leak, churn = report.prefix("leak_step"), report.prefix("churn_step")
    assert sorted(row["calls"] for row in leak.workers) == [10, 10]
    assert {row["verdict"] for row in leak.workers} == {"too_few_calls"}  # no worker alone could
    assert leak.verdict == "leak" and 0.75 * T.LEAK_BYTES <= leak.retained_per_call <= 1.25 * T.LEAK_BYTES
    assert "judged over all workers together" in leak.note
    assert churn.verdict == "ok" and "judged over all workers together" in churn.note
    assert report.headline().endswith("1 leaking")


# ------------------------------------------------------------------------------ advice


def test_memory_the_allocator_kept_is_named_with_what_to_do_and_the_current_rss(client: Client) -> None:
    with watch(client) as w:
        _gather(client, T.fragment, 4)
    report = w.report
    assert report is not None
    kept = [w_ for w_ in report.workers if (w_.allocator_retention or 0) >= 20 * MiB]
    assert kept, [w_.allocator_retention for w_ in report.workers]
    worker = kept[0]
    assert worker.rss_before_settle - worker.rss >= 20 * MiB  # "rss" is now, after leakhunt's settle
    assert worker.trim_threshold == "65536"  # Dask's nanny set it
    advice = "\n".join(report.advice)
    assert f"{worker.address}: the allocator kept" in advice and "leakhunt's settle" in advice
    assert "client.run(trim_memory)" in advice and "malloc_trim(0)" in advice
    assert "MALLOC_TRIM_THRESHOLD_ is already set on this worker (65536" in advice
    assert "--lifetime" not in advice  # nothing leaks here
    text = report.explain()
    assert f"rss {_size(worker.rss)} now (settled; {_size(worker.rss_before_settle)} before)" in text


def test_the_advice_when_the_trim_threshold_is_not_set_and_when_little_was_kept() -> None:
    from leakhunt.dask import WorkerFigures
    from leakhunt.dask._advice import advice

    unset = WorkerFigures(address="tcp://w:1", rss=200 * MiB, rss_before_settle=300 * MiB,
                          allocator_retention=100 * MiB, settled=True)
    text = "\n".join(advice([unset], [], 10.0))
    assert "MALLOC_TRIM_THRESHOLD_ is not set on this worker" in text and "pre-spawn-environ" in text
    little = WorkerFigures(address="tcp://w:1", rss=200 * MiB, rss_before_settle=202 * MiB,
                           allocator_retention=2 * MiB, trim_threshold="65536", settled=True)
    assert advice([little], [], 10.0) == []


def _size(value: int | None) -> str:
    from leakhunt.units import format_size

    return format_size(value)


# ------------------------------------------------------------------------------ budgets


def test_a_broken_cluster_budget_names_the_prefix_the_worker_and_the_figure(client: Client) -> None:
    with pytest.raises(MemoryBudgetExceeded) as info:
        with watch(client, budget={"churn_*": "peak=10MB", "leak_*": "rss=500MB"}):
            _gather(client, T.churn_step, 6)
            _gather(client, T.leak_step, 6)
    message = str(info.value)
    violations = info.value.violations
    assert violations and {v.prefix for v in violations} == {"churn_step"}
    assert {v.figure for v in violations} == {"peak"}
    assert all(v.worker.startswith("tcp://") and v.worker in message for v in violations)
    assert "churn_step on tcp://" in message and "peak" in message and "budget 9.5 MiB" in message
    assert info.value.measurement is None


def test_a_cluster_budget_that_holds_does_not_raise_and_rss_budgets_catch_leftovers(client: Client) -> None:
    with watch(client, budget={"churn_*": "peak=500MB", "leak_*": "rss=500MB"}) as w:
        _gather(client, T.churn_step, 6)
        _gather(client, T.leak_step, 6)
    assert w.report is not None and not w.report.violations
    with pytest.raises(MemoryBudgetExceeded, match=r"leak_step on tcp://\S+: rss"):
        with watch(client, budget={"leak_step": "rss=5MB"}):
            _gather(client, T.leak_step, 12)


def test_a_block_that_raises_is_not_judged_but_still_reported(client: Client) -> None:
    w = watch(client, budget={"churn_*": "peak=1MB"})
    with pytest.raises(ZeroDivisionError):
        with w:
            _gather(client, T.churn_step, 4)
            1 / 0
    assert w.report is not None and w.report.prefix("churn_step").calls == 4


@pytest.mark.parametrize("budget, message", [
    ({"churn": "peak=lots"}, "watch budget for 'churn': peak='lots' is not a valid size"),
    ({"churn": "traced=1MB"}, "unknown memory budget keyword 'traced'; accepted keywords: peak, rss, arrow, leak"),
    ({"churn": "repeat=5"}, "unknown memory budget keyword 'repeat'; accepted keywords: peak, rss, arrow, leak"),
    ({"": "peak=1MB"}, "the key '' is not a task-prefix pattern"),
    ("peak=1GB", "takes a dict of task-prefix pattern -> budget spec, got 'peak=1GB'"),
])
def test_bad_budgets_are_refused_before_any_work(budget: Any, message: str) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        watch(None, budget=budget)  # refused before the client is even looked at
    assert message in str(info.value)


def test_bad_watch_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="watch repeat=1 is not valid"):
        watch(None, repeat=1)
    with pytest.raises(TypeError, match="expected a distributed.Client or a scheduler address, got 42"):
        watch(42)


# ------------------------------------------------------------------------------ reports


def test_the_report_round_trips_through_json_and_renders_html(client: Client, tmp_path: Path) -> None:
    with watch(client) as w:
        _gather(client, T.leak_step, 50)
    report = w.report
    assert report is not None
    report.write(tmp_path / "cluster.json")
    data = json.loads((tmp_path / "cluster.json").read_text())
    assert data["schema"] == "leakhunt-cluster-report" and data["tasks"][0]["verdict"] == "leak"
    assert data["scheduler"] == client.scheduler.address and data["started"].endswith("+00:00")
    for worker in data["workers"]:  # Dask's own figures beside leakhunt's
        assert worker["memory_limit"] > 0 and worker["spilled"] == 0
        assert set(worker["fractions"]) == {"target", "spill", "pause", "terminate"}
        assert worker["unmanaged_old"] is not None and worker["unmanaged_recent"] is not None
        assert len(worker["timeline"]) >= 2  # unmanaged memory over the block
    again = ClusterReport.from_dict(data)
    assert again.to_dict() == report.to_dict()
    assert again.explain() == report.explain()
    page = report.write(tmp_path / "cluster.html").read_text()
    assert "<h1>memory on the cluster</h1>" in page
    assert "LEAKED (global in dask_tasks) -&gt; list[" in page  # escaped by the template
    assert client.scheduler.address in page and data["started"] in page
    assert 'id="leakhunt-unmanaged"' in page  # each worker's unmanaged memory over the block
    assert 'id="leakhunt-series-leak_step"' in page  # the prefix's hunt series
    # leakhunt report reads it back by its schema: the same text, the same page
    from leakhunt.cli import main as cli

    assert cli(["report", str(tmp_path / "cluster.json"), "-o", str(tmp_path / "again.txt")]) == 0
    assert (tmp_path / "again.txt").read_text() == report.explain() + "\n"
    assert cli(["report", str(tmp_path / "cluster.json"), "-o", str(tmp_path / "again.html")]) == 0
    assert (tmp_path / "again.html").read_text() == page
    assert cli(["report", str(tmp_path / "cluster.json"), "-o", str(tmp_path / "again.png")]) == 2
    assert "settled at the end" in page
    with pytest.raises(ValueError, match="must end in .json, .html"):
        report.write(tmp_path / "cluster.txt")
    with pytest.raises(ValueError, match="not a leakhunt cluster report"):
        ClusterReport.from_dict({"schema": "leakhunt-test-report"})


# ------------------------------------------------------------------------------ the command


def _leakhunt(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leakhunt.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=TESTS)


def test_leakhunt_dask_prints_the_split_and_the_path_to_the_module_level_list(client: Client, tmp_path: Path) -> None:
    _gather(client, T.leak_step, 10)
    address = client.scheduler.address
    out, page = tmp_path / "inspect.json", tmp_path / "inspect.html"
    proc = _leakhunt("dask", address, "--settle", "--json", str(out), "--html", str(page))
    assert proc.returncode == 0, proc.stderr
    assert "rss " in proc.stdout and "= managed" in proc.stdout and "unmanaged" in proc.stdout
    assert "live data: numpy" in proc.stdout and "allocator kept" in proc.stdout
    assert "LEAKED (global in dask_tasks) -> list[" in proc.stdout
    data = json.loads(out.read_text())
    assert data["tasks"] == [] and len(data["workers"]) == 2 and data["kind"] == "inspection"
    assert sum(w["numpy"] for w in data["workers"]) >= 10 * T.LEAK_BYTES
    assert all(w["allocator_retention"] is not None for w in data["workers"])
    html = page.read_text()
    assert address in html and data["started"] in html and "settled first" in html
    assert "0 task prefixes" not in html
    unsettled = _leakhunt("dask", address, "--paths", "0")
    assert unsettled.returncode == 0, unsettled.stderr
    assert "allocator retention not measured" in unsettled.stdout and "LEAKED" not in unsettled.stdout


def test_leakhunt_dask_watch_reports_the_tasks_of_a_period(client: Client, tmp_path: Path) -> None:
    import threading

    address = client.scheduler.address
    proc = subprocess.Popen([sys.executable, "-m", "leakhunt.cli", "dask", address, "--watch", "4s",
                             "--json", str(tmp_path / "w.json")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=TESTS)
    stop = threading.Event()

    def work() -> None:  # the cluster's own client code, which the command does not touch
        i = 0
        while not stop.is_set() and i < 100:  # each call keeps 2 MB: at most 200 MB on the workers
            client.gather(client.submit(T.leak_step, i, pure=False))
            i += 1
            stop.wait(0.02)

    deadline = time.monotonic() + 60
    while "leakhunt-" not in str(client.run(T.plugin_names)) and time.monotonic() < deadline:
        time.sleep(0.2)
    worker = threading.Thread(target=work)
    worker.start()
    try:
        out, err = proc.communicate(timeout=180)
    finally:
        stop.set()
        worker.join()
    assert proc.returncode == 0, err
    assert "watching " in err and "for 4 s" in err
    data = json.loads((tmp_path / "w.json").read_text())
    leak = next(t for t in data["tasks"] if t["prefix"] == "leak_step")
    # all 100 calls of the loop fall within the 4 s watched here (leak_step: 100 calls)
    assert leak["calls"] >= 20 and leak["verdict"] in ("leak", "unconfirmed", "too_few_calls")
    assert "leak_step" in out and data["kind"] == "watch"


@pytest.mark.parametrize("args, message", [
    (["dask", "tcp://127.0.0.1:9", "--timeout", "1"], "cannot connect to the scheduler at 'tcp://127.0.0.1:9'"),
    (["dask", "tcp://127.0.0.1:9", "--min-size", "big"], "--min-size: "),
    (["dask", "tcp://127.0.0.1:9", "--watch", "soon"], "--watch 'soon' is not a duration"),
    (["dask", "tcp://127.0.0.1:9", "--watch", "0s"], "--watch '0s' is not a duration > 0"),
    (["dask", "tcp://127.0.0.1:9", "--json", f"{__file__}/x.json"], "is a file, not a directory"),
    (["dask", "tcp://127.0.0.1:9", "--json", "x.txt"], "--json 'x.txt' has suffix '.txt': the file name must end in .json"),
    (["dask", "tcp://127.0.0.1:9", "--paths", "-1"], "--paths -1 is not valid"),
])
def test_leakhunt_dask_bad_input_is_a_clear_error(args: list[str], message: str) -> None:
    proc = _leakhunt(*args)
    assert proc.returncode == 2
    assert message in proc.stderr


# ------------------------------------------------------------------------------ faults


def test_a_worker_that_dies_mid_block_loses_only_its_own_figures(_environment_restored: None) -> None:
    with _cluster(1) as cluster, Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(2)
        pids = client.run(os.getpid)
        victim, survivor = sorted(pids)
        with watch(client) as w:
            _gather(client, T.leak_step, 20)
            os.kill(pids[victim], signal.SIGKILL)
            deadline = time.monotonic() + 30
            while victim in client.scheduler_info()["workers"] and time.monotonic() < deadline:
                time.sleep(0.1)
            client.gather(client.map(T.leak_step, range(20, 50), pure=False, workers=[survivor]))
        report = w.report
    assert report is not None
    assert report.lost_workers == (victim,)
    assert survivor in {x.address for x in report.workers}
    row = next(r for r in report.prefix("leak_step").workers if r["address"] == survivor)
    assert row["calls"] >= 30 and row["verdict"] == "leak"
    assert f"{victim}: left the cluster during the block; its figures are lost" in report.explain()


def test_leakhunt_missing_on_the_workers_is_a_clear_error(_environment_restored: None) -> None:
    with _cluster(1, n_workers=1, preload=[str(TESTS / "dask_block_leakhunt.py")]) as cluster, \
            Client(cluster, set_as_default=False) as client:
        with pytest.raises(ImportError) as info:
            with watch(client):
                pass
        message = str(info.value)
        assert "leakhunt is not importable on 1 of 1 Dask workers" in message
        assert "No module named 'leakhunt'" in message and 'pip install "leakhunt[dask]"' in message
        assert "tcp://" in message


def _start_worker(address: str, *, preload: Path | None) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--no-nanny", "--nthreads", "1",
            "--no-dashboard"]
    if preload is not None:
        argv += ["--preload", str(preload)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), *sys.path]))
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, env=env)


def test_workers_that_join_during_a_block_are_measured_or_listed_with_the_error(_environment_restored: None) -> None:
    started: list[subprocess.Popen[str]] = []
    with _cluster(1, n_workers=1) as cluster, Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(1)
        first = set(client.scheduler_info()["workers"])
        try:
            with watch(client) as w:
                started.append(_start_worker(client.scheduler.address, preload=TESTS / "dask_block_leakhunt.py"))
                started.append(_start_worker(client.scheduler.address, preload=None))
                client.wait_for_workers(3, timeout=60)
                joined = sorted(set(client.scheduler_info()["workers"]) - first)
                # every worker runs tasks: the one without leakhunt started, and is no zombie
                for address in joined:
                    assert client.submit(T.leak_step, 7, workers=[address], pure=False).result(timeout=60) == 7
            report = w.report
        finally:
            for proc in started:
                proc.terminate()
                proc.wait(timeout=30)
    assert report is not None
    errors = {x.address: x.error for x in report.workers if x.error}
    assert len(errors) == 1
    (bare, error), = errors.items()
    assert "ModuleNotFoundError" in error and 'pip install "leakhunt[dask]"' in error
    measured = [x for x in report.workers if not x.error]
    assert {x.address for x in measured} == (first | set(joined)) - {bare}
    assert any(f"joined during the block (measured from when they joined): {', '.join(joined)}" == note
               for note in report.notes)
    assert f"{bare}\n      no figures: " in report.explain() and "No module named 'leakhunt'" in report.explain()


def test_without_distributed_leakhunt_dask_names_the_extra() -> None:
    result = run_scenario(
        """
        sys.modules["distributed"] = None  # as if it were not installed
        try:
            import leakhunt.dask
        except ImportError as exc:
            message = str(exc)
        from leakhunt.cli import main
        import contextlib, io
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["dask", "tcp://127.0.0.1:9"])
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["--help"])
            except SystemExit as stop:
                help_code = stop.code
        import json, os, tempfile
        saved = os.path.join(tempfile.mkdtemp(), "cluster.json")
        with open(saved, "w") as f:
            json.dump({"schema": "leakhunt-cluster-report", "schema_version": 2}, f)
        report_err = io.StringIO()
        with contextlib.redirect_stderr(report_err):
            report_code = main(["report", saved])
        emit({"message": message, "code": code, "stderr": err.getvalue(), "help": help_code,
              "report_code": report_code, "report_stderr": report_err.getvalue()})
        """
    )
    assert 'pip install "leakhunt[dask]"' in result["message"]
    assert result["code"] == 2 and 'pip install "leakhunt[dask]"' in result["stderr"]
    assert result["help"] == 0  # `leakhunt --help` does not need distributed
    # a saved cluster report read back: the error names the file and the extra
    assert result["report_code"] == 2 and "is a cluster report" in result["report_stderr"]
    assert 'pip install "leakhunt[dask]"' in result["report_stderr"]


def test_a_cluster_gone_before_the_block_ends_gives_a_report_that_says_so(_environment_restored: None) -> None:
    with _cluster(1) as cluster, Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(2)
        w = watch(client)
        with w:
            _gather(client, T.churn_step, 2)
            cluster.close()
    assert w.report is not None and w.report.workers == ()
    assert any("could not be collected" in note for note in w.report.notes)


# ------------------------------------------------------------------------------ pytest fixture


def test_the_dask_memory_budget_fixture_fails_a_test_that_breaks_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(dask_tasks=(TESTS / "dask_tasks.py").read_text())  # importable by the workers
    pytester.makepyfile(
        """
        import logging
        import pytest
        from distributed import Client, LocalCluster
        import dask_tasks as T

        @pytest.fixture(scope="module")
        def client():
            with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                              silence_logs=logging.CRITICAL) as cluster, Client(cluster) as c:
                yield c

        def test_within_budget(client, dask_memory_budget):
            w = dask_memory_budget(client, {"churn_step": "peak=500MB"})
            client.gather(client.map(T.churn_step, range(4), pure=False))

        def test_over_budget(client, dask_memory_budget):
            dask_memory_budget(client, {"churn_step": "peak=10MB"})
            client.gather(client.map(T.churn_step, range(4), pure=False))

        def test_failing_on_its_own_is_not_judged(client, dask_memory_budget):
            dask_memory_budget(client, {"churn_step": "peak=10MB"})
            client.gather(client.map(T.churn_step, range(4), pure=False))
            assert False, "the test's own failure"

        def test_a_keyword_a_cluster_budget_refuses(client, dask_memory_budget):
            dask_memory_budget(client, {"churn_step": "traced=10MB"})
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines([
        "*_ test_over_budget _*",
        "leakhunt.MemoryBudgetExceeded: the watched block broke its cluster memory budget:",
        "  churn_step on tcp://*: peak (highest task peak above its start) * > budget 9.5 MiB*",
    ])
    out = result.stdout.str()
    over = out.split("_ test_over_budget _", 1)[1].split("_ test_failing_on_its_own_is_not_judged _", 1)[0]
    # the message, not leakhunt's own source: no code lines, no leakhunt or pluggy frames
    assert "leakhunt/" not in over and "pluggy" not in over and "    def " not in over
    assert len(over.splitlines()) < 80
    # the failure section of the test that failed on its own says nothing of the budget
    own = out.split("_ test_failing_on_its_own_is_not_judged _", 1)[1].split("_ test_a_keyword", 1)[0]
    assert "the test's own failure" in own and "broke its cluster memory budget" not in own
    result.stdout.fnmatch_lines(["*unknown memory budget keyword 'traced'; accepted keywords: peak, rss, arrow, leak*"])


# ------------------------------------------------------------------------------ docs and API


def test_the_docs_example_prints_what_docs_dask_md_shows() -> None:
    script = TESTS.parent / "docs" / "examples" / "dask_pipeline.py"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()  # "    enrich   80   5.5 MiB ..."
            if line.split()[:1] in (["enrich"], ["parse"], ["summarise"]) and line.split()[1].isdigit()}
    assert rows["enrich"].endswith("(2 of 2 workers))") and " LEAK (confirmed on tcp://" in rows["enrich"]
    assert rows["parse"].endswith(" ok") and rows["summarise"].endswith(" ok")
    # watch + leakhunt dask, on both workers; which of the equal 3.8 MiB arrays a path shows
    # depends on the order the worker's heap is walked in (list[0] in docs/dask.md, list[3] seen)
    assert len(re.findall(r"SEEN \(global in dask_steps\) -> list\[\d+\] -> ndarray 3\.8 MiB", proc.stdout)) == 4
    assert "parse on tcp://" in proc.stdout and "> budget 19.1 MiB (from 'parse')" in proc.stdout
    page = (TESTS.parent / "docs" / "dask.md").read_text()
    for fixed in ("(2 of 2 workers))", "SEEN (global in dask_steps) -> list[0] -> ndarray 3.8 MiB",
                  "> budget 19.1 MiB (from 'parse')", "allocator kept", "client.run(trim_memory)"):
        assert fixed in page


def test_the_dask_package_exports_exactly_its_public_names() -> None:
    import leakhunt.dask as package

    assert package.__all__ == sorted(package.__all__)
    assert set(package.__all__) == {"ClusterReport", "LeakhuntPlugin", "PrefixFigures", "PrefixViolation", "Watch",
                                    "WorkerFigures", "inspect_cluster", "watch", "watch_for"}
    assert all(getattr(package, name).__module__ == "leakhunt.dask" for name in package.__all__)


def _collected(growth: int, held: dict[str, int]) -> dict[str, Any]:
    """What one worker's collect() sends, with a confirmed leak for each prefix in ``held``."""
    from leakhunt.hunt import SeriesHunt

    prefixes = {}
    for name, per_call in held.items():
        hunt = SeriesHunt(MiB, repeat=10, warmup=3, accounting="unmanaged", noise=16 * 1024)
        for _ in range(30):
            hunt.add(per_call)
        prefixes[name] = {"calls": 30, "retained": 30 * per_call, "peak": 10, "arrow": 0,
                          "hunt": hunt.verdict().to_dict()}
    return {"tcp://w:1": {"tasks": {"nthreads": 1, "prefixes": prefixes, "unmanaged_growth": growth}}}


def test_growth_given_back_before_the_block_ends_is_not_a_leak_and_the_real_leak_stays() -> None:
    from leakhunt.dask._report import merge

    held = merge(_collected(growth=58 * MB, held={"shuffle-transfer": 2 * MB}))[0]
    assert held.verdict == "leak"  # still there at the end: a leak
    released = merge(_collected(growth=1 * MB, held={"shuffle-transfer": 2 * MB}))[0]  # given back by the end
    assert released.verdict == "given_back" and "given back on tcp://w:1" in released.note
    both = {t.prefix: t.verdict for t in merge(_collected(growth=62 * MB, held={"leaky": 2 * MB,
                                                                                 "shuffle-transfer": 10 * MB}))}
    assert both == {"leaky": "leak", "shuffle-transfer": "given_back"}  # decided per prefix
