"""Re-measure the facts that docs/accounting.md quotes, each in a fresh interpreter.

    python benchmarks/accounting_facts.py

Prints one line per fact. Numbers move with library versions and machines: the docs quote
the output of a run on the versions this prints first.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import textwrap

FACTS: dict[str, str] = {
    "hwm_reset": """
        import numpy as np
        from leakhunt import probes
        block = np.ones(300_000_000 // 8); del block
        before = probes.hwm()
        probes._reset_hwm()
        out = {"hwm_after_free": before, "hwm_after_reset": probes.hwm(), "rss": probes.rss()}
    """,
    "arrow_invisible_to_tracemalloc": """
        import tracemalloc
        import numpy as np, pyarrow as pa, pyarrow.compute as pc
        source = pa.array(np.arange(12_500_000))
        pc.add(pa.array([1]), 1)
        tracemalloc.start()
        t0, a0 = tracemalloc.get_traced_memory()[0], pa.total_allocated_bytes()
        table = pa.table({"x": pc.add(source, 1)})
        out = {"traced": tracemalloc.get_traced_memory()[0] - t0, "arrow": pa.total_allocated_bytes() - a0}
    """,
    "arrow_pool_keeps_rss": """
        import numpy as np, pyarrow as pa, pyarrow.compute as pc
        from leakhunt import probes
        from leakhunt.settle import malloc_trim
        source = pa.array(np.arange(62_500_000))
        r0 = probes.rss()
        table = pa.table({"x": pc.add(source, 1)})   # 500 MB in Arrow's pool
        r1 = probes.rss(); del table
        r2 = probes.rss(); malloc_trim()
        r3 = probes.rss(); pa.default_memory_pool().release_unused()
        r4 = probes.rss()
        out = {"pool": pa.default_memory_pool().backend_name, "with_table": r1 - r0, "after_del": r2 - r0,
               "after_malloc_trim": r3 - r0, "after_release_unused": r4 - r0}
    """,
    "malloc_trim_small_frames": """
        import gc
        import numpy as np, pandas as pd
        from leakhunt import probes
        from leakhunt.settle import malloc_trim
        r0 = probes.rss()
        frames = [pd.DataFrame(np.ones((1000, 8))) for _ in range(8000)]  # many 64 kB frames
        keep = frames[::500]
        r1 = probes.rss(); del frames; gc.collect()
        r2 = probes.rss(); malloc_trim()
        r3 = probes.rss()
        out = {"alive": r1 - r0, "after_free": r2 - r0, "after_malloc_trim": r3 - r0}
    """,
    "pymalloc_arenas": """
        import gc
        from leakhunt import probes
        from leakhunt.settle import malloc_trim
        r0 = probes.rss()
        objs = [(i, str(i)) for i in range(2_000_000)]
        r1 = probes.rss()
        objs = objs[::100]                          # free 99%
        gc.collect(); malloc_trim()
        r2 = probes.rss()
        out = {"alive": r1 - r0, "after_freeing_99_percent": r2 - r0}
    """,
    "slice_keeps_block": """
        import numpy as np, pandas as pd
        from leakhunt import measure
        results = {}
        for label, keep in [("iloc[:1]", lambda f: f.iloc[:1]), ("head(1).copy()", lambda f: f.head(1).copy()),
                            ("mean()", lambda f: f.mean()), ("to_numpy()[:1]", lambda f: f[0].to_numpy()[:1])]:
            held = []
            with measure() as m:
                for _ in range(10):
                    frame = pd.DataFrame(np.random.default_rng(0).random((800_000, 10)))  # 64 MB
                    held.append(keep(frame))
                    del frame
            results[label] = m.rss_growth
            del held
        out = results
    """,
    "gc_collect_with_pandas": """
        import gc, time
        import pandas as pd
        gc.collect()
        n = len(gc.get_objects())
        t = time.perf_counter()
        for _ in range(20):
            gc.collect()
        out = {"objects": n, "ms_per_collect": (time.perf_counter() - t) / 20 * 1000}
    """,
}


def run(code: str) -> dict:
    source = textwrap.dedent(code) + "\nimport json; print(json.dumps(out))\n"
    proc = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    import numpy, pandas, pyarrow  # noqa: E401  (versions only)

    print(f"# Python {platform.python_version()}, numpy {numpy.__version__}, pandas {pandas.__version__}, "
          f"pyarrow {pyarrow.__version__}, {platform.system()} {platform.release()}")
    for name, code in FACTS.items():
        result = run(code)
        shown = {k: (f"{v / 2**20:.1f} MiB" if isinstance(v, int) and abs(v) > 100_000 else v)
                 for k, v in result.items()}
        print(f"{name}: {shown}")


if __name__ == "__main__":
    main()
