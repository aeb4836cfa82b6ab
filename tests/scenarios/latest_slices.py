"""Issue 19's LATEST example, a script: 40 ten-row slices of fresh 2 MB Arrow tables appended to a
module list (each slice keeps every buffer of its table). Run by tests/test_search_complete.py
and benchmarks/explain_speed.py under ``leakhunt run``: the script's imports (numpy, pyarrow)
leave thousands of small survivors beside LATEST's."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

base = pa.array(np.arange(250_000, dtype="int64"))  # the input, 1.9 MiB
LATEST = []
for i in range(40):
    table = pa.table({"x": pc.add(base, i)})  # a fresh 2 MB table
    LATEST.append(table.slice(0, 10))  # ten rows of it, every buffer of it
del table
