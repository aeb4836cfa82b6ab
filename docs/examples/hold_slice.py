"""A one-row slice that keeps a 95 MiB frame alive, caught by a memory budget.

Run: python docs/examples/hold_slice.py   (prints the explanation the README shows)
"""

import numpy as np
import pandas as pd

from leakhunt import MemoryBudgetExceeded, memory_budget

HOLD = []


def daily_means() -> None:
    frame = pd.DataFrame(np.random.default_rng(0).random((1_250_000, 10)))  # 95.4 MiB of floats
    HOLD.append(frame.iloc[:1])  # a view: the whole block stays alive


if __name__ == "__main__":
    try:
        with memory_budget(rss="20 MB"):
            daily_means()
    except MemoryBudgetExceeded as exc:
        print(exc)
