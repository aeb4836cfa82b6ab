"""How right and how cheap is `leakhunt run`?

For each workload script this runs, alternately and several times:

* plain ``python script.py``, reading the OS's own maximum RSS for that process
  (``os.wait4``'s rusage, the figure ``/usr/bin/time -v`` prints), and
* ``leakhunt run --json r.json script.py`` (default 10 ms interval), reading the peak it reports.

Accuracy: the reported ``peak_rss`` against the plain run's OS maximum (target: within 5%).
Overhead: each script times its own work (``WORK <wall> <cpu>`` on stdout), so interpreter and
leakhunt start-up are left out and what remains is the cost of sampling (target: <= 5%).
Medians over the repeats; the machine may be shared, so the spread is printed too.

    python benchmarks/run_accuracy.py [--repeats 5] [--write benchmarks/run.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

MiB = 1024 * 1024

WORKLOADS: dict[str, str] = {
    # 400 MB transient blocks, 40 MB kept per round: a spiky numpy timeline
    "numpy_spikes": """
        import time
        import numpy as np
        t0, c0 = time.perf_counter(), time.process_time()
        keep = []
        for i in range(6):
            block = np.ones(400 * 1024 * 1024 // 8)
            keep.append(block[:1000].copy())
            del block
            keep.append(np.random.default_rng(i).random(5_000_000))
        print("WORK", time.perf_counter() - t0, time.process_time() - c0)
    """,
    # the everyday pipeline: build, group, merge
    "pandas_groupby": """
        import time
        import numpy as np
        import pandas as pd
        t0, c0 = time.perf_counter(), time.process_time()
        rng = np.random.default_rng(0)
        n = 3_000_000
        df = pd.DataFrame({"k": rng.integers(0, 10_000, n), "v": rng.random(n), "w": rng.random(n)})
        for _ in range(3):
            g = df.groupby("k").agg(v_mean=("v", "mean"), w_sum=("w", "sum")).reset_index()
            merged = df.merge(g, on="k")
            merged["r"] = merged["v"] / merged["v_mean"]
            del merged
        print("WORK", time.perf_counter() - t0, time.process_time() - c0)
    """,
    # Arrow's pool (mimalloc) and a round trip to pandas
    "arrow_table": """
        import time
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc
        t0, c0 = time.perf_counter(), time.process_time()
        rng = np.random.default_rng(0)
        n = 3_000_000
        for _ in range(3):
            table = pa.table({"a": rng.random(n), "b": rng.integers(0, 100, n)})
            table = table.filter(pc.greater(table["a"], 0.1)).sort_by("a")
            frame = table.to_pandas()
            del table, frame
        print("WORK", time.perf_counter() - t0, time.process_time() - c0)
    """,
    # a small script: leakhunt's own few MiB are a visible share of its peak
    "small_script": """
        import time
        t0, c0 = time.perf_counter(), time.process_time()
        data = bytearray(30 * 1024 * 1024)
        total = sum(data[::4096])
        print("WORK", time.perf_counter() - t0, time.process_time() - c0)
    """,
    # pure Python: the interpreter holds the GIL all the time, the sampler's worst case
    "python_objects": """
        import json, time
        t0, c0 = time.perf_counter(), time.process_time()
        rows = [{"id": i, "name": f"user{i}", "score": i * 0.5} for i in range(1_500_000)]
        text = json.dumps(rows[:300_000])
        total = sum(r["score"] for r in rows if r["id"] % 3 == 0)
        del rows
        print("WORK", time.perf_counter() - t0, time.process_time() - c0)
    """,
}


def _maxrss_from_out(out: str) -> int:
    for line in out.splitlines():
        if line.startswith("MAXRSS "):
            return int(line.split()[1])
    raise RuntimeError(f"no MAXRSS line in {out!r}")


def _work(out: str) -> tuple[float, float]:
    """(wall, CPU) seconds of the script's work, as it printed them."""
    for line in out.splitlines():
        if line.startswith("WORK "):
            _, wall, cpu = line.split()
            return float(wall), float(cpu)
    raise RuntimeError(f"no WORK line in {out!r}")


# A tiny launcher: runs a command as its child and prints that child's own max RSS (wait4).
LAUNCHER = textwrap.dedent("""
    import os, subprocess, sys
    proc = subprocess.Popen(sys.argv[1:])
    _, status, usage = os.wait4(proc.pid, 0)
    sys.stdout.flush()
    print("MAXRSS", usage.ru_maxrss * 1024, flush=True)
    sys.exit(os.waitstatus_to_exitcode(status))
""")


def measure(cmd: list[str], workdir: Path) -> tuple[int, tuple[float, float], float, str]:
    """(OS max RSS, work seconds, wall seconds, stdout) of ``cmd`` run under the launcher."""
    launcher = workdir / "launch.py"
    if not launcher.exists():
        launcher.write_text(LAUNCHER)
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, str(launcher), *cmd], cwd=workdir, capture_output=True,
                          text=True)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return _maxrss_from_out(proc.stdout), _work(proc.stdout), wall, proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", action="append", help="run only these workloads")
    parser.add_argument("--write", metavar="PATH", help="also write the results as Markdown")
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="leakhunt-bench-") as tmp:
        workdir = Path(tmp)
        for name, source in WORKLOADS.items():
            if args.only and name not in args.only:
                continue
            script = workdir / f"{name}.py"
            script.write_text(textwrap.dedent(source))
            plain_rss: list[int] = []
            lh_peak: list[int] = []
            lh_osmax: list[int] = []
            plain_work: list[float] = []
            lh_work: list[float] = []
            plain_cpu: list[float] = []
            lh_cpu: list[float] = []
            lh_sampler: list[float] = []
            plain_wall: list[float] = []
            lh_wall: list[float] = []
            for i in range(args.repeats):
                # alternate the order so drift on a shared machine hits both sides alike
                for mode in (("plain", "leakhunt") if i % 2 == 0 else ("leakhunt", "plain")):
                    if mode == "plain":
                        rss, (work, cpu), wall, _ = measure([sys.executable, str(script)], workdir)
                        plain_rss.append(rss)
                        plain_work.append(work)
                        plain_cpu.append(cpu)
                        plain_wall.append(wall)
                    else:
                        out_json = workdir / f"{name}.json"
                        rss, (work, cpu), wall, _ = measure(
                            [sys.executable, "-m", "leakhunt.cli", "run", "-q", "--json", str(out_json),
                             str(script)], workdir)
                        data = json.loads(out_json.read_text())
                        lh_peak.append(data["peak_rss"])
                        lh_sampler.append(data["sampler_cpu"] / data["seconds"])
                        lh_osmax.append(rss)
                        lh_work.append(work)
                        lh_cpu.append(cpu)
                        lh_wall.append(wall)
            med = statistics.median
            row = {
                "workload": name,
                "os_max_rss_plain": med(plain_rss),
                "reported_peak": med(lh_peak),
                "peak_error": med(lh_peak) / med(plain_rss) - 1,
                "own_process_os_max": med(lh_osmax),
                "work_plain": med(plain_work),
                "work_leakhunt": med(lh_work),
                "overhead": med(lh_work) / med(plain_work) - 1,
                "cpu_plain": med(plain_cpu),
                "cpu_leakhunt": med(lh_cpu),
                "cpu_overhead": med(lh_cpu) / med(plain_cpu) - 1,
                # the least-disturbed run of each side (timeit's rule on a noisy machine)
                "cpu_overhead_min": min(lh_cpu) / min(plain_cpu) - 1,
                "wall_overhead_min": min(lh_work) / min(plain_work) - 1,
                "sampler_share": med(lh_sampler),
                "work_spread_plain": (min(plain_work), max(plain_work)),
                "work_spread_leakhunt": (min(lh_work), max(lh_work)),
                "wall_plain": med(plain_wall),
                "wall_leakhunt": med(lh_wall),
            }
            rows.append(row)
            print(_line(row), flush=True)

    ab = in_process_ab(args.repeats * 2)
    for name, r in ab.items():
        print(f"in-process, {name}: sampler {r['sampler vs alone (median)']:+.1%} (best runs "
              f"{r['sampler vs alone (best)']:+.1%}); idle-thread control {r['idle vs alone (median)']:+.1%} "
              f"(best runs {r['idle vs alone (best)']:+.1%})")
    text = render(rows, args.repeats, ab)
    print()
    print(text)
    if args.write:
        Path(args.write).write_text(text)
    return 0


def _line(r: dict) -> str:
    return (f"{r['workload']}: plain max RSS {r['os_max_rss_plain'] / MiB:.1f} MiB, reported "
            f"{r['reported_peak'] / MiB:.1f} MiB ({r['peak_error']:+.1%}); work {r['work_plain']:.2f} s -> "
            f"{r['work_leakhunt']:.2f} s ({r['overhead']:+.1%}); CPU {r['cpu_plain']:.2f} s -> "
            f"{r['cpu_leakhunt']:.2f} s ({r['cpu_overhead']:+.1%}); sampler thread {r['sampler_share']:.2%} CPU")


def _busy_python() -> float:
    """A pure-Python loop that holds the GIL throughout: the sampler's worst case."""
    began = time.perf_counter()
    total = 0
    for i in range(6_000_000):
        total += i % 7
    return time.perf_counter() - began


def _build_dicts() -> float:
    """Allocation-heavy Python: 1.5 M dicts (the python_objects workload), CPU seconds."""
    began = time.process_time()
    rows = [{"id": i, "name": f"user{i}", "score": i * 0.5} for i in range(1_500_000)]
    total = sum(r["score"] for r in rows if r["id"] % 3 == 0)
    del rows, total
    return time.process_time() - began


class _IdleThread:
    """A control: a thread that only waits. Whatever it "costs" is the machine's noise."""

    def __enter__(self) -> None:
        import threading

        self._event = threading.Event()
        self._thread = threading.Thread(target=self._event.wait)
        self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._event.set()
        self._thread.join()


def in_process_ab(rounds: int) -> dict[str, dict[str, float]]:
    """The same work with nothing else running, beside an idle thread (the control), and
    beside a running Sampler, rotated, in one process: no start-up, no second interpreter."""
    import contextlib
    import gc

    from leakhunt.timeline import Sampler

    setups = {"alone": contextlib.nullcontext, "idle thread": _IdleThread, "sampler": Sampler}
    out = {}
    for name, work in (("pure-Python loop (wall)", _busy_python), ("1.5 M dicts (process CPU)", _build_dicts)):
        times: dict[str, list[float]] = {setup: [] for setup in setups}
        work()  # warm up
        order = list(setups)
        for i in range(rounds):
            for setup in order[i % 3:] + order[:i % 3]:
                gc.collect()
                with setups[setup]():
                    times[setup].append(work())
        med = {k: statistics.median(v) for k, v in times.items()}
        best = {k: min(v) for k, v in times.items()}
        out[name] = {
            "rounds": rounds,
            **{f"median {k}": v for k, v in med.items()},
            "idle vs alone (median)": med["idle thread"] / med["alone"] - 1,
            "sampler vs alone (median)": med["sampler"] / med["alone"] - 1,
            "idle vs alone (best)": best["idle thread"] / best["alone"] - 1,
            "sampler vs alone (best)": best["sampler"] / best["alone"] - 1,
        }
    return out


def render(rows: list[dict], repeats: int, ab: dict[str, dict[str, float]]) -> str:
    import numpy
    import pandas
    import pyarrow

    lines = [
        "# `leakhunt run`: accuracy and overhead",
        "",
        f"Measured by `python benchmarks/run_accuracy.py --repeats {repeats}` on "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, numpy {numpy.__version__}, "
        f"pandas {pandas.__version__}, pyarrow {pyarrow.__version__}, {time.strftime('%Y-%m-%d', time.gmtime())}. "
        f"Medians of {repeats} alternating runs.",
        "",
        "**Peak**: the `peak_rss` that `leakhunt run` reports against the OS's own maximum RSS of a "
        "plain `python script.py` (the `ru_maxrss` of `wait4`, what `/usr/bin/time -v` prints). "
        "The last column is the OS's maximum RSS of the `leakhunt run` process itself.",
        "",
        "| workload | plain run, OS max RSS | reported peak | difference | leakhunt process, OS max RSS |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['os_max_rss_plain'] / MiB:.1f} MiB | {r['reported_peak'] / MiB:.1f} MiB"
                     f" | {r['peak_error']:+.1%} | {r['own_process_os_max'] / MiB:.1f} MiB |")
    lines += [
        "",
        "**Overhead** of sampling at the default 10 ms interval: each script times its own work "
        "(wall clock, and the CPU time of its whole process, sampler thread included), so "
        "interpreter and leakhunt start-up and the settling at each end are left out. CPU time "
        "is the steadier figure on a shared machine; the wall-clock ranges show the noise. "
        "Whole-process wall times are in the last two columns.",
        "",
        "| workload | sampler thread CPU / run time | CPU, plain | CPU, `leakhunt run` | CPU overhead "
        "(medians) | CPU overhead (best runs) | work wall, plain | work wall, `leakhunt run` | wall "
        "overhead (medians) | wall overhead (best runs) | range plain | range leakhunt "
        "| process wall plain | process wall leakhunt |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lo_p, hi_p = r["work_spread_plain"]
        lo_l, hi_l = r["work_spread_leakhunt"]
        lines.append(f"| {r['workload']} | {r['sampler_share']:.2%} | {r['cpu_plain']:.2f} s | {r['cpu_leakhunt']:.2f} s "
                     f"| {r['cpu_overhead']:+.1%} | {r['cpu_overhead_min']:+.1%} | {r['work_plain']:.2f} s "
                     f"| {r['work_leakhunt']:.2f} s | {r['overhead']:+.1%} | {r['wall_overhead_min']:+.1%} "
                     f"| {lo_p:.2f}–{hi_p:.2f} s | {lo_l:.2f}–{hi_l:.2f} s "
                     f"| {r['wall_plain']:.2f} s | {r['wall_leakhunt']:.2f} s |")
    lines += [
        "",
        "**In-process A/B/C**: the same work run alone, beside an idle thread (a control that costs "
        "nothing: whatever it shows is the machine's noise) and beside a running `Sampler` at 10 ms, "
        "rotated, in one process. The pure-Python loop holds the GIL throughout: the worst case for "
        "a sampling thread.",
        "",
        "| work | rounds | alone | idle thread | sampler | sampler vs alone (medians) | sampler vs alone "
        "(best runs) | control: idle vs alone (medians) | control (best runs) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in ab.items():
        lines.append(f"| {name} | {r['rounds']:.0f} | {r['median alone']:.3f} s | {r['median idle thread']:.3f} s "
                     f"| {r['median sampler']:.3f} s | {r['sampler vs alone (median)']:+.1%} "
                     f"| {r['sampler vs alone (best)']:+.1%} | {r['idle vs alone (median)']:+.1%} "
                     f"| {r['idle vs alone (best)']:+.1%} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
