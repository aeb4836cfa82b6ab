"""leakhunt on Dask: the worker plugin, the cluster report, budgets, `leakhunt dask`, faults.

Each test gets a fresh ``LocalCluster(processes=True)`` of 2 single-threaded workers (about 2 s):
no test inherits another's memory or allocator state, and a test that kills a worker cannot slow
the next one (restarting a shared cluster's workers took as long and, under load, sometimes timed
out). The task functions live in ``dask_tasks`` (workers import them by reference).
"""

from __future__ import annotations

import json
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
TESTS = Path(__file__).parent


def _cluster(threads: int, **kwargs: Any) -> LocalCluster:
    return LocalCluster(n_workers=kwargs.pop("n_workers", 2), threads_per_worker=threads, processes=True,
                        dashboard_address=":0", silence_logs=logging.CRITICAL, **kwargs)


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    # A nanny sets distributed.nanny.pre-spawn-environ (MALLOC_TRIM_THRESHOLD_=65536) in *this*
    # process's environment and leaves it there: every later subprocess would inherit a glibc
    # without its dynamic mmap threshold, and other tests' figures moved (a 200 KiB leak read
    # 204 KiB per call in tests/test_hunt.py).
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def client() -> Iterator[Client]:
    with _cluster(1) as cluster, Client(cluster, set_as_default=False) as c:
        c.wait_for_workers(2)
        yield c


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
    data = report.to_dict()
    task = data["tasks"][0]
    assert {"prefix", "calls", "retained_per_call", "peak", "verdict"} <= set(task)
    assert task["verdict"] == "leak" and isinstance(task["retained_per_call"], int)
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
    assert verdicts == {"churn_step": "ok", "cache_step": "ok", "big_result": "ok", "failing_step": "unjudged"}
    assert failed == [] and report.prefix("failing_step").errors == 20  # failed tasks are counted, never hunted
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
    assert report.prefix("keep_arrow_table").verdict == "unjudged"  # 4 calls: too few to hunt


def test_two_threads_per_worker_keep_the_verdicts() -> None:
    with _cluster(2) as cluster, Client(cluster, set_as_default=False) as client:
        with watch(client) as w:
            _gather(client, T.leak_step, 80)  # overlapping tasks scatter the series: room for a second window
            _gather(client, T.churn_step, 60)
            _gather(client, T.cache_step, 60)
            _gather(client, T.big_result, 60)
    report = w.report
    assert report is not None
    assert {t.prefix: t.verdict for t in report.tasks} == {
        "leak_step": "leak", "churn_step": "ok", "cache_step": "ok", "big_result": "ok"}
    assert 0.75 * T.LEAK_BYTES <= report.prefix("leak_step").retained_per_call <= 1.25 * T.LEAK_BYTES
    assert all(w_.nthreads == 2 for w_ in report.workers)
    assert any("several threads per worker" in note for note in report.notes)


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
    ({"churn": "traced=1MB"}, "traced= is not measured per task on a cluster; accepted keywords: peak, rss, arrow, leak"),
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
    again = ClusterReport.from_dict(data)
    assert again.to_dict() == report.to_dict()
    assert again.explain() == report.explain()
    page = report.write(tmp_path / "cluster.html").read_text()
    assert "<h1>leakhunt: memory on the cluster</h1>" in page
    assert "LEAKED (global in dask_tasks) -&gt; list[" in page  # escaped by the template
    assert ">leak</td>" in page.replace("\n", "") or "leak (confirmed" in page
    with pytest.raises(ValueError, match="must end in .json, .html"):
        report.write(tmp_path / "cluster.txt")
    with pytest.raises(ValueError, match="not a leakhunt cluster report"):
        ClusterReport.from_dict({"schema": "leakhunt-test-report"})


# ------------------------------------------------------------------------------ the command


def _leakhunt(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leakhunt.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=TESTS)


def test_leakhunt_dask_prints_the_split_and_the_path_to_the_module_level_list(client: Client, tmp_path: Path) -> None:
    _gather(client, T.leak_step, 10)
    address = client.scheduler.address
    out = tmp_path / "inspect.json"
    proc = _leakhunt("dask", address, "--settle", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "rss " in proc.stdout and "= managed" in proc.stdout and "unmanaged" in proc.stdout
    assert "live data: numpy" in proc.stdout and "allocator kept" in proc.stdout
    assert "LEAKED (global in dask_tasks) -> list[" in proc.stdout
    data = json.loads(out.read_text())
    assert data["tasks"] == [] and len(data["workers"]) == 2
    assert sum(w["numpy"] for w in data["workers"]) >= 10 * T.LEAK_BYTES
    assert all(w["allocator_retention"] is not None for w in data["workers"])
    unsettled = _leakhunt("dask", address, "--paths", "0")
    assert unsettled.returncode == 0, unsettled.stderr
    assert "allocator retention not measured" in unsettled.stdout and "LEAKED" not in unsettled.stdout


@pytest.mark.parametrize("args, message", [
    (["dask", "tcp://127.0.0.1:9", "--timeout", "1"], "cannot connect to the scheduler at 'tcp://127.0.0.1:9'"),
    (["dask", "tcp://127.0.0.1:9", "--min-size", "big"], "--min-size: "),
    (["dask", "tcp://127.0.0.1:9", "--json", f"{__file__}/x.json"], "is a file, not a directory"),
    (["dask", "tcp://127.0.0.1:9", "--json", "x.txt"], "--json 'x.txt' has suffix '.txt': the file name must end in .json"),
    (["dask", "tcp://127.0.0.1:9", "--paths", "-1"], "--paths -1 is not valid"),
])
def test_leakhunt_dask_bad_input_is_a_clear_error(args: list[str], message: str) -> None:
    proc = _leakhunt(*args)
    assert proc.returncode == 2
    assert message in proc.stderr


# ------------------------------------------------------------------------------ faults


def test_a_worker_that_dies_mid_block_loses_only_its_own_figures() -> None:
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


def test_leakhunt_missing_on_the_workers_is_a_clear_error(tmp_path: Path) -> None:
    with _cluster(1, n_workers=1, preload=[str(TESTS / "dask_block_leakhunt.py")]) as cluster, \
            Client(cluster, set_as_default=False) as client:
        with pytest.raises(ImportError) as info:
            with watch(client):
                pass
        message = str(info.value)
        assert "leakhunt is not importable on 1 of 1 Dask workers" in message
        assert "No module named 'leakhunt'" in message and 'pip install "leakhunt[dask]"' in message
        assert "tcp://" in message


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
        emit({"message": message, "code": code, "stderr": err.getvalue(), "help": help_code})
        """
    )
    assert 'pip install "leakhunt[dask]"' in result["message"]
    assert result["code"] == 2 and 'pip install "leakhunt[dask]"' in result["stderr"]
    assert result["help"] == 0  # `leakhunt --help` does not need distributed


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
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*test_over_budget*",
        "*MemoryBudgetExceeded: the watched block broke its cluster memory budget:*",
        "*churn_step on tcp://*: peak (highest task peak above its start) * > budget 9.5 MiB*",
    ])
    out = result.stdout.str()
    # the failure section of the test that failed on its own says nothing of the budget (the
    # short summary may repeat the other test's message, as wide as the terminal allows)
    own = out.split("_ test_failing_on_its_own_is_not_judged _", 1)[1].split("short test summary info", 1)[0]
    assert "the test's own failure" in own and "broke its cluster memory budget" not in own


# ------------------------------------------------------------------------------ docs


def test_the_docs_example_prints_what_docs_dask_md_shows() -> None:
    script = TESTS.parent / "docs" / "examples" / "dask_pipeline.py"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()  # "    enrich   80   5.5 MiB ..."
            if line.split()[:1] in (["enrich"], ["parse"], ["summarise"]) and line.split()[1].isdigit()}
    assert rows["enrich"].endswith("LEAK (confirmed on 2 of 2 workers)")
    assert rows["parse"].endswith(" ok") and rows["summarise"].endswith(" ok")
    assert proc.stdout.count("SEEN (global in dask_steps) -> list[0] -> ndarray 3.8 MiB") == 4  # watch + leakhunt dask
    assert "parse on tcp://" in proc.stdout and "> budget 19.1 MiB (from 'parse')" in proc.stdout
    page = (TESTS.parent / "docs" / "dask.md").read_text()
    for fixed in ("LEAK (confirmed on 2 of 2 workers)", "SEEN (global in dask_steps) -> list[0] -> ndarray 3.8 MiB",
                  "> budget 19.1 MiB (from 'parse')", "allocator kept"):
        assert fixed in page


def test_the_dask_package_exports_exactly_its_public_names() -> None:
    import leakhunt.dask as package

    assert package.__all__ == sorted(package.__all__)
    assert set(package.__all__) == {"ClusterReport", "LeakhuntPlugin", "PrefixFigures", "PrefixViolation", "Watch",
                                    "WorkerFigures", "inspect_cluster", "watch"}
    assert all(getattr(package, name).__module__ == "leakhunt.dask" for name in package.__all__)


def _collected(growth: int, retained: int) -> dict[str, Any]:
    leaking = {"leaking": True, "suspect": True, "per_call": retained // 30, "note": None}
    entry = {"calls": 33, "retained": retained, "peak": 10, "arrow": 0, "judged": True, "hunt": leaking}
    return {"tcp://w:1": {"tasks": {"prefixes": {"shuffle-transfer": entry}, "unmanaged_growth": growth}}}


def test_growth_given_back_before_the_block_ends_is_not_a_leak() -> None:
    from leakhunt.dask._report import RELEASED, merge

    held = merge(_collected(growth=58 * MB, retained=60 * MB))[0]  # still there at the end: a leak
    assert held.verdict == "leak"
    released = merge(_collected(growth=1 * MB, retained=60 * MB))[0]  # given back by the end (a P2P shuffle)
    assert released.verdict == "ok" and released.note == RELEASED


def test_a_cluster_gone_before_the_block_ends_gives_a_report_that_says_so() -> None:
    with _cluster(1) as cluster, Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(2)
        w = watch(client)
        with w:
            _gather(client, T.churn_step, 2)
            cluster.close()
    assert w.report is not None and w.report.workers == ()
    assert any("could not be collected" in note for note in w.report.notes)
