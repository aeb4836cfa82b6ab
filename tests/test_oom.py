"""The out-of-memory guard (leakhunt.oom): the limit it finds, its values, and what it does at a
crossing, through ``leakhunt run`` and ``leakhunt.oom_guard``.

Every guarded run is a subprocess (RSS, signals and threads are per process). Limits are given
on the command line (``--memory-limit 300MB``, on the process's resident memory) with
thresholds far from what the scripts reach; each script stays under 300 MB. Where the machine
lets a test create a memory cgroup, the kernel enforces a real limit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import leakhunt
from leakhunt.oom import (
    Diagnosis,
    Limit,
    OomGuard,
    cgroup_limit,
    find_limit,
    parse_action,
    parse_limit,
    parse_threshold,
)
from leakhunt.oom._diagnosis import jump_note

MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent

# Grows by 10 MiB arrays kept in a module global, every 20 ms, up to argv[1] MiB.
GROW = """
import sys, time
import numpy as np

RESULTS = []

def fill(mib):
    for _ in range(mib // 10):
        RESULTS.append(np.ones(10 * 1024 * 1024 // 8))
        time.sleep(0.02)

try:
    fill(int(sys.argv[1]))
finally:
    print("finally ran", file=sys.stderr)
"""


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


def leakhunt_run(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leakhunt.cli", "run", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def python(script: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script), *args], cwd=script.parent, capture_output=True, text=True,
                          timeout=timeout)


def crossings(path: Path) -> list[Diagnosis]:
    data = json.loads(path.read_text())
    assert data["schema"] == "leakhunt-oom-report"
    return [Diagnosis.from_dict(d) for d in data["crossings"]]


# --------------------------------------------------------------------------------------
# values: a clear error naming the value and the accepted form, before anything runs


@pytest.mark.parametrize("value", ["150%", "0%", "100%", "ninety", "-5MB", "5 GX", 1.5, 0.0, True])
def test_a_bad_threshold_names_the_value_and_the_accepted_form(value: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_threshold(value, option="--oom-guard")  # type: ignore[arg-type]
    message = str(info.value)
    assert f"invalid --oom-guard {value!r}" in message
    assert "like '90%'" in message and "like '1.5 GB'" in message


def test_thresholds_are_shares_or_sizes() -> None:
    assert parse_threshold("90%") == pytest.approx(0.9)
    assert parse_threshold(" 95.5 % ") == pytest.approx(0.955)
    assert parse_threshold(0.8) == pytest.approx(0.8)
    assert parse_threshold("1.5 GB") == 1_500_000_000
    assert parse_threshold(2048) == 2048


@pytest.mark.parametrize("value", ["0", "-1", "2 GX", "lots", 0])
def test_a_bad_limit_names_the_value(value: object) -> None:
    with pytest.raises(ValueError, match=rf"invalid --memory-limit {value!r}: .*'2 GB'"):
        parse_limit(value, option="--memory-limit")  # type: ignore[arg-type]


def test_a_bad_action_names_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match=r"invalid action 'kill': expected one of continue, stop"):
        parse_action("kill")


def test_a_size_threshold_must_be_below_the_limit() -> None:
    with pytest.raises(ValueError, match=r"invalid threshold 4.7 GiB: it is not below the memory limit, 953.7 MiB"):
        OomGuard("5GB", limit="1GB", report=None)


def test_the_report_path_is_checked_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"report 'x.html' has suffix '.html': the file name must end in .json, .txt"):
        OomGuard(limit="1GB", report=str(tmp_path / "x.html").replace(str(tmp_path) + os.sep, ""))
    with pytest.raises(ValueError, match=r"invalid interval '2s': expected from 1 ms to 1 s"):
        OomGuard(limit="1GB", report=None, interval="2s")


@pytest.mark.parametrize(("args", "message"), [
    (["--oom-guard=150%"], "invalid --oom-guard '150%'"),
    (["--memory-limit", "1GB"], "--memory-limit only applies with --oom-guard"),
    (["--oom-guard", "--memory-limit", "0"], "invalid --memory-limit '0': a memory limit must be above 0 B"),
    (["--oom-guard", "--oom-action", "kill"], "invalid --oom-action 'kill': expected one of continue, stop"),
    (["--oom-guard", "--oom-report", "x.html"], "--oom-report 'x.html' has suffix '.html'"),
    (["--oom-guard=5GB", "--memory-limit", "1GB"], "invalid --oom-guard 4.7 GiB: it is not below the memory limit"),
])
def test_leakhunt_run_refuses_bad_values_with_status_2(tmp_path: Path, args: list[str], message: str) -> None:
    write(tmp_path / "job.py", "print('ran')\n")
    proc = leakhunt_run(*args, "job.py", cwd=tmp_path)
    assert proc.returncode == 2
    assert f"leakhunt run: error: {message}" in proc.stderr
    assert "ran" not in proc.stdout  # nothing ran


# --------------------------------------------------------------------------------------
# finding the limit


def _machine(root: Path, *, cgroup: str, mountinfo: str, files: dict[str, str]) -> Path:
    """A directory laid out like a machine: /proc/self/cgroup, mountinfo, cgroup files."""
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/cgroup").write_text(textwrap.dedent(cgroup).lstrip())
    (root / "proc/self/mountinfo").write_text(textwrap.dedent(mountinfo).lstrip())
    for name, text in files.items():
        path = root / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_cgroup_v2_takes_the_lowest_memory_max_up_the_tree(tmp_path: Path) -> None:
    root = _machine(tmp_path, cgroup="0::/job/step\n",
                    mountinfo="30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n",
                    files={"/sys/fs/cgroup/memory.max": "max\n",
                           "/sys/fs/cgroup/job/memory.max": "1073741824\n",
                           "/sys/fs/cgroup/job/memory.current": "52428800\n",
                           "/sys/fs/cgroup/job/step/memory.max": "max\n",
                           "/sys/fs/cgroup/job/step/memory.current": "1048576\n"})
    limit = cgroup_limit(str(root))
    assert limit is not None
    assert (limit.value, limit.source, limit.figure) == (1 << 30, "cgroup v2 memory.max", "cgroup usage")
    assert limit.where == str(root / "sys/fs/cgroup/job")  # the group whose usage counts
    assert limit.current == 50 * MiB


def test_cgroup_v1_is_found_under_the_memory_controllers_mount(tmp_path: Path) -> None:
    root = _machine(tmp_path, cgroup="5:devices:/\n4:memory:/batch/42\n0::/\n",
                    mountinfo="""
                    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
                    """,
                    files={"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
                           "/sys/fs/cgroup/memory/batch/42/memory.limit_in_bytes": "536870912\n",
                           "/sys/fs/cgroup/memory/batch/42/memory.usage_in_bytes": "1048576\n",
                           "/sys/fs/cgroup/unified/cgroup.procs": ""})
    limit = cgroup_limit(str(root))
    assert limit is not None
    assert (limit.value, limit.source) == (512 * MiB, "cgroup v1 memory.limit_in_bytes")
    assert limit.where == str(root / "sys/fs/cgroup/memory/batch/42")


def test_a_containers_bind_mounted_group_is_its_mount_point(tmp_path: Path) -> None:
    root = _machine(tmp_path, cgroup="4:memory:/docker/abc\n",
                    mountinfo="35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n",
                    files={"/sys/fs/cgroup/memory/memory.limit_in_bytes": "268435456\n"})
    limit = cgroup_limit(str(root))
    assert limit is not None and limit.value == 256 * MiB
    assert limit.where == str(root / "sys/fs/cgroup/memory")


def test_no_cgroup_limit_when_every_level_is_unlimited(tmp_path: Path) -> None:
    root = _machine(tmp_path, cgroup="0::/job\n", mountinfo="30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
                    files={"/sys/fs/cgroup/memory.max": "max\n", "/sys/fs/cgroup/job/memory.max": "max\n"})
    assert cgroup_limit(str(root)) is None


def test_near_the_bar_a_cgroups_usage_leaves_out_its_inactive_file_pages(tmp_path: Path) -> None:
    group = tmp_path / "job"
    group.mkdir()
    (group / "memory.current").write_text("104857600\n")
    (group / "memory.stat").write_text("anon 50000000\nfile 54857600\ninactive_file 31457280\nactive_file 1\n")
    reader = Limit(value=200 * MiB, source="cgroup v2 memory.max", figure="cgroup usage", where=str(group)).reader()
    value = reader.read()
    assert value == 100 * MiB
    assert reader.exact(value) == 70 * MiB  # clean cache the kernel takes back before it kills


def test_an_rlimit_with_less_room_than_the_machine_is_the_limit(tmp_path: Path) -> None:
    script = write(tmp_path / "limits.py", """
        import json, resource
        from leakhunt.oom import find_limit
        size = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (size + 2 * 1024 ** 3, resource.RLIM_INFINITY))
        limit = find_limit()
        print(json.dumps({"source": limit.source, "figure": limit.figure, "value": limit.value,
                          "headroom": limit.headroom}))
    """)
    proc = python(script)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert (found["source"], found["figure"]) == ("RLIMIT_AS", "address space")
    assert 1.5 * 1024 ** 3 < found["headroom"] <= 2 * 1024 ** 3


def test_a_given_limit_applies_to_resident_memory() -> None:
    limit = find_limit("2GB", option="--memory-limit")
    assert (limit.value, limit.figure, limit.source) == (2_000_000_000, "rss", "given with --memory-limit")
    assert limit.current is not None and 0 < limit.current < limit.value


# --------------------------------------------------------------------------------------
# crossings


def test_the_report_names_the_root_and_a_second_crossing_higher_up_writes_again(tmp_path: Path) -> None:
    write(tmp_path / "job.py", GROW)
    proc = leakhunt_run("--oom-guard=30%", "--memory-limit", "300MB", "--oom-report", "oom.json",
                        "job.py", "190", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr  # continue: the script ran to its end
    assert "leakhunt run: OOM guard: threshold 30% (85.8 MiB) of 286.1 MiB (given with --memory-limit)" in proc.stderr
    found = crossings(tmp_path / "oom.json")
    assert len(found) == 2
    first, second = found
    assert first.threshold_text == "30%" and second.threshold_text == "30%, raised after crossing 1"
    assert first.threshold <= first.value < second.threshold <= second.value
    for diagnosis in found:
        assert diagnosis.complete
        assert diagnosis.roots[0].root == "RESULTS (global in __main__)"
        assert diagnosis.roots[0].text.startswith("RESULTS (global in __main__) -> list[0] -> ndarray 10.0 MiB")
        assert diagnosis.where["numpy"] >= 40 * MiB  # at least four of the arrays (where RSS crosses moves with leakhunt's own start)
    assert "leakhunt: biggest: RESULTS (global in __main__) keeps" in proc.stderr
    assert "the OOM guard wrote 2 diagnoses to oom.json" in proc.stderr


def test_back_below_the_threshold_the_bar_returns_to_it(tmp_path: Path) -> None:
    script = write(tmp_path / "twice.py", """
        import time
        import numpy as np
        import leakhunt

        RESULTS = []

        def fill(mib):
            for _ in range(mib // 10):
                RESULTS.append(np.ones(10 * 1024 * 1024 // 8))
                time.sleep(0.02)

        with leakhunt.oom_guard("30%", limit="300MB", report="oom.json", stderr=None):
            fill(120)
            RESULTS.clear()      # back to ~30 MiB: below the threshold, less 5% of the limit
            time.sleep(0.3)
            fill(120)            # under the raised bar (~186 MiB), over the threshold again
    """)
    proc = python(script)
    assert proc.returncode == 0, proc.stderr
    found = crossings(tmp_path / "oom.json")
    assert [d.threshold_text for d in found] == ["30%", "30%"]


def test_the_stop_action_ends_the_run_with_memory_error_and_status_1(tmp_path: Path) -> None:
    write(tmp_path / "job.py", GROW)
    proc = leakhunt_run("--oom-guard=40%", "--memory-limit", "300MB", "--oom-action", "stop",
                        "--oom-report", "oom.txt", "job.py", "250", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # an exception, not a signal
    assert "finally ran" in proc.stderr  # finally blocks ran
    assert "MemoryError: leakhunt OOM guard: crossing 1" in proc.stderr
    assert "RESULTS (global in __main__) keeps" in proc.stderr.split("MemoryError:", 1)[1]
    text = (tmp_path / "oom.txt").read_text()
    assert text.startswith("leakhunt OOM guard: crossing 1")
    assert "RESULTS (global in __main__) -> list[0] -> ndarray 10.0 MiB" in text
    assert "_cli.py" not in proc.stderr  # the traceback starts at the script, as python's does


def test_the_library_guard_stops_a_plain_script(tmp_path: Path) -> None:
    script = write(tmp_path / "guarded.py", """
        import sys, time
        import numpy as np
        import leakhunt

        RESULTS = []
        with leakhunt.oom_guard("40%", limit="300MB", action="stop", report="oom.json") as guard:
            assert guard.stop_delivery == "signal"
            for _ in range(25):
                RESULTS.append(np.ones(10 * 1024 * 1024 // 8))
                time.sleep(0.02)
        print("not reached")
    """)
    proc = python(script)
    assert proc.returncode == 1
    assert "not reached" not in proc.stdout
    message = proc.stderr.split("MemoryError: ", 1)[1]  # the diagnosis is the exception's message
    assert message.startswith("leakhunt OOM guard: crossing 1")
    assert "alive now, biggest roots (what keeps the memory):\n    RESULTS (global in __main__) keeps" in message
    diagnosis = crossings(tmp_path / "oom.json")[0]
    assert diagnosis.action == "stop" and diagnosis.roots[0].root == "RESULTS (global in __main__)"


def test_a_main_thread_blocked_in_a_wait_is_stopped_too(tmp_path: Path) -> None:
    script = write(tmp_path / "pool.py", """
        import concurrent.futures, time
        import numpy as np
        import leakhunt

        HELD = []

        def work():
            for _ in range(20):
                HELD.append(np.ones(10 * 1024 * 1024 // 8))
                time.sleep(0.02)
            return len(HELD)

        with leakhunt.oom_guard("30%", limit="300MB", action="stop", report="oom.json", stderr=None):
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                future = pool.submit(work)
                print("result", future.result())  # the main thread waits here while the worker grows
    """)
    proc = python(script)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "result" not in proc.stdout  # stopped while waiting, not after
    assert 'print("result", future.result())' in proc.stderr
    assert "MemoryError: leakhunt OOM guard" in proc.stderr
    assert crossings(tmp_path / "oom.json")[0].roots[0].root == "HELD (global in __main__)"


def test_a_guard_entered_in_another_thread_stops_that_thread(tmp_path: Path) -> None:
    script = write(tmp_path / "threaded.py", """
        import json, threading, time
        import numpy as np
        import leakhunt

        HELD = []
        out = {}

        def guarded():
            try:
                with leakhunt.oom_guard("30%", limit="300MB", action="stop", report=None, stderr=None) as guard:
                    out["how"] = guard.stop_delivery
                    for _ in range(200):
                        HELD.append(np.ones(1024 * 1024 // 8))
                        time.sleep(0.01)
            except MemoryError as exc:
                out["stopped"] = str(exc)

        thread = threading.Thread(target=guarded)
        thread.start()
        thread.join()
        print(json.dumps({"how": out["how"], "stopped": out.get("stopped"), "held": len(HELD)}))
    """)
    proc = python(script)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["how"] == "async"
    assert result["stopped"] is not None and "HELD (global in __main__) keeps" in result["stopped"]
    assert result["held"] < 200


def test_a_forked_child_gets_the_default_handler_back(tmp_path: Path) -> None:
    script = write(tmp_path / "forks.py", """
        import json, os, signal
        import leakhunt

        with leakhunt.oom_guard(limit="100GB", action="stop", report=None) as guard:
            signum = guard.signum
            ours = signal.getsignal(signum) != signal.SIG_DFL
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.write(w, b"1" if signal.getsignal(signum) == signal.SIG_DFL else b"0")
                os._exit(0)
            os.waitpid(pid, 0)
            child_default = os.read(r, 1) == b"1"
        print(json.dumps({"ours": ours, "child_default": child_default,
                          "after": signal.getsignal(signum) == signal.SIG_DFL}))
    """)
    proc = python(script)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"ours": True, "child_default": True, "after": True}


def test_a_report_that_cannot_be_written_is_said_and_the_job_goes_on(tmp_path: Path) -> None:
    script = write(tmp_path / "unwritable.py", """
        import shutil, time
        from pathlib import Path
        import numpy as np
        import leakhunt

        RESULTS = []
        with leakhunt.oom_guard("30%", limit="300MB", report="out/oom.json") as guard:
            shutil.rmtree("out", ignore_errors=True)
            Path("out").write_text("a file where the directory was")
            for _ in range(12):
                RESULTS.append(np.ones(10 * 1024 * 1024 // 8))
                time.sleep(0.02)
        print("done", len(guard.crossings))
    """)
    proc = python(script)
    assert proc.returncode == 0, proc.stderr
    assert "done 1" in proc.stdout
    assert "leakhunt: cannot write the OOM diagnosis to 'out/oom.json'" in proc.stderr
    assert "leakhunt: biggest: RESULTS (global in __main__) keeps" in proc.stderr  # the summary still


def test_under_the_threshold_nothing_is_written(tmp_path: Path) -> None:
    write(tmp_path / "job.py", GROW)
    proc = leakhunt_run("--oom-guard=50%", "--memory-limit", "300MB", "--oom-action", "stop", "job.py", "40",
                        cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "leakhunt-oom.json").exists()
    assert "diagnosis" not in proc.stderr.split("OOM guard:", 1)[1].split("\n", 1)[1]


def test_a_bare_oom_guard_before_the_script_leaves_the_script_alone(tmp_path: Path) -> None:
    write(tmp_path / "job.py", "import sys; print('args', sys.argv[1:])\n")
    proc = leakhunt_run("-q", "--oom-guard", "job.py", "a", "b", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "args ['a', 'b']" in proc.stdout


def test_under_tracing_the_diagnosis_names_the_allocation_sites(tmp_path: Path) -> None:
    script = write(tmp_path / "traced.py", """
        import time, tracemalloc
        import numpy as np
        import leakhunt

        tracemalloc.start(5)
        RESULTS = []
        with leakhunt.oom_guard("30%", limit="300MB", report="oom.json", stderr=None):
            for _ in range(15):
                RESULTS.append(np.ones(10 * 1024 * 1024 // 8))  # the site
                time.sleep(0.02)
    """)
    proc = python(script)
    assert proc.returncode == 0, proc.stderr
    diagnosis = crossings(tmp_path / "oom.json")[0]
    assert diagnosis.traced is not None and diagnosis.traced >= 40 * MiB
    assert diagnosis.where["numpy"] >= 40 * MiB  # the split from tracemalloc's domains
    assert diagnosis.sites[0].where == "traced.py:10" and "# the site" in diagnosis.sites[0].code
    assert diagnosis.roots[0].site is not None and diagnosis.roots[0].site.where == "traced.py:10"


# --------------------------------------------------------------------------------------
# the diagnosis as data and text


def _diagnosis(before: int | None, value: int) -> Diagnosis:
    limit = Limit(value=1000 * MiB, source="cgroup v2 memory.max", figure="cgroup usage", where="/sys/fs/cgroup/job")
    return Diagnosis(number=1, pid=42, at=0.0, elapsed=1.5, limit=limit, threshold=900 * MiB, threshold_text="90%",
                     value=value, before=before, interval=0.01)


def test_a_jump_larger_than_the_room_left_is_said() -> None:
    assert jump_note(_diagnosis(before=890 * MiB, value=905 * MiB)) is None
    note = jump_note(_diagnosis(before=400 * MiB, value=950 * MiB))
    assert note is not None and note.startswith("memory rose 550.0 MiB between two samples (10 ms), more than "
                                                "the 100.0 MiB the threshold leaves below the limit")


def test_a_diagnosis_round_trips_and_renders() -> None:
    diagnosis = _diagnosis(before=880 * MiB, value=905 * MiB)
    assert Diagnosis.from_dict(json.loads(json.dumps(diagnosis.to_dict()))) == diagnosis
    text = str(diagnosis)
    assert "cgroup usage 905.0 MiB (90% of the limit) crossed the threshold 90% (900.0 MiB) of the memory limit " \
           "1000.0 MiB (cgroup v2 memory.max, /sys/fs/cgroup/job), on the cgroup usage" in text
    assert "the sample before saw 880.0 MiB (samples every 10 ms)" in text
    assert "alive now: not found yet" in text


# --------------------------------------------------------------------------------------
# a real limit, enforced by the kernel


def _own_memory_cgroup() -> Path | None:
    """This process's memory cgroup directory (v1), where a child group can be made."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    path = next((line.split(":", 2)[2] for line in lines if "memory" in line.split(":", 2)[1].split(",")), None)
    for line in mounts:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if path is not None and tail[:1] == ["cgroup"] and "memory" in tail[2].split(",") and fields[3] == "/":
            return Path(fields[4]) / path.lstrip("/")
    return None


@pytest.fixture
def memory_cgroup() -> Path:
    """A child memory cgroup of ours with a 200 MB limit (cgroup v1, root); skipped elsewhere."""
    if os.geteuid() != 0:
        pytest.skip("creating a memory cgroup needs root")
    parent = _own_memory_cgroup()
    if parent is None or not (parent / "memory.limit_in_bytes").exists():
        pytest.skip("no cgroup v1 memory controller here")
    group = parent / f"leakhunt-test-{os.getpid()}"
    try:
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(str(200 * 1024 * 1024))
    except OSError as exc:
        pytest.skip(f"cannot create a memory cgroup under {parent}: {exc}")
    try:
        yield group
    finally:
        group.rmdir()


def test_under_a_kernel_enforced_limit_the_report_outlives_the_kill(tmp_path: Path, memory_cgroup: Path) -> None:
    write(tmp_path / "job.py", GROW)
    command = (f'echo $$ > {memory_cgroup}/cgroup.procs && exec "$0" -m leakhunt.cli run --oom-guard=60% '
               f'--oom-report oom.json job.py 400')
    proc = subprocess.run(["sh", "-c", command, sys.executable], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr  # killed by the kernel: no traceback, no summary
    assert "oom_kill 1" in (memory_cgroup / "memory.oom_control").read_text()
    found = crossings(tmp_path / "oom.json")
    assert found[0].limit.source == "cgroup v1 memory.limit_in_bytes"
    assert found[0].limit.value == 200 * 1024 * 1024 and found[0].limit.where == str(memory_cgroup)
    assert found[0].complete and found[0].roots[0].root == "RESULTS (global in __main__)"
    assert found[0].largest is True  # the process the kernel picks first in its group


def test_the_public_api_has_the_guard() -> None:
    assert leakhunt.oom_guard is leakhunt.oom.oom_guard
    assert (ROOT / "docs" / "oom.md").is_file()
