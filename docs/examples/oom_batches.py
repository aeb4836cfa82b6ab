"""The batch loop of the casebook's first story, at a size that fits a small limit: each batch's
one-row sample is a view that keeps the whole batch alive (docs/oom.md runs it under the guard)."""

import numpy as np

results = []
for i in range(40):
    batch = np.random.default_rng(i).random((1_000_000, 2))  # 15.3 MiB
    results.append(batch[:1])  # a one-row view: the whole batch stays alive
print(f"{len(results)} batches")
