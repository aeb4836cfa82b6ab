"""Import-heavy: import pandas and pyarrow, build a 10-row frame and an Arrow table from it.

Almost all of its memory and time is importing: the case where a tracer's cost per allocation
weighs most (issue 20's table: plain 1.2 s, `memray run --native` 4.8 s).
"""

import pandas as pd
import pyarrow as pa

frame = pd.DataFrame({"id": range(10), "name": [f"item {i}" for i in range(10)], "price": [1.5 * i for i in range(10)]})
table = pa.Table.from_pandas(frame)
print(table.num_rows, "rows")
