"""The seed stories' statements the casebook does not judge, each with the reason.

Every claim a story makes either has a verdict (a :class:`casebook.model.Claim` of some case,
which records the story's section) or is listed here with why it is left out: it is the same
claim as one judged elsewhere, it is about something else than Python memory on this machine,
or it states a fact of the story's own run that nothing here can re-measure. The claims page
(``docs/casebook/claims.md``) lists both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

__all__ = ["OMITTED", "Omitted"]


@dataclass(frozen=True)
class Omitted:
    """A statement of a story left without a verdict: where it is, what it says, and why."""

    section: str
    claim: str  # in our words
    reason: str


_SAME = "the same claim as"

OMITTED: Mapping[str, tuple[Omitted, ...]] = {
    "batch_loop": (
        Omitted("Symptoms", "Memory grew from 200 MB to 8 GB over 100 files of 50 MB and the job "
                "died at file 83; 4 files' worth (200 MB) was expected.",
                "a record of the story's own run; the mechanism it is blamed on is judged in "
                "mean_myth (Root Cause)"),
        Omitted("Verification, test 3", "The fixed job processed all 100 files in 45 seconds.",
                "a wall time of the story's job on its data, with nothing to compare it to"),
        Omitted("Verification, test 4", "All 47 existing tests pass.",
                "about the story's own test suite"),
        Omitted("Prevention 2", "Always convert to primitive types for long-lived storage.",
                f"{_SAME} numpy_view's Prevention 2 claim (primitive types break the chain)"),
        Omitted("Related Issues", "Stack Overflow and pandas#12345 describe hidden references in "
                "Index objects.", "links without content (the issue number is a placeholder)"),
        Omitted("Lessons Learned 1", "Memory leaks are not always obvious.",
                "an opinion, not a statement about memory that a measurement can decide"),
        Omitted("Lessons Learned 2", "Garbage collection is reference-based: an object with a "
                "reference is not freed.",
                f"{_SAME} the Investigation's hypothesis 1 and 2 claim (gc_myth, source: this story)"),
        Omitted("Lessons Learned 4", "A minimal reproduction (3 files instead of 100) made the "
                "cause obvious.", "advice on method; the casebook's cases are such reproductions"),
    ),
    "missing_days": (
        Omitted("Root Causes 2", "No memory release between iterations.",
                f"{_SAME} Root Causes 2, first claim (concat_loop: the merged frame keeps all the data)"),
        Omitted("Root Causes 3", "DataFrames weren't deleted after use.",
                f"{_SAME} Solutions Implemented 4 (gc_myth: `del` lowers the peak)"),
        Omitted("Solutions Implemented 1", "Reading only the metadata and the last row group, "
                "only the needed columns, with immediate cleanup.",
                f"{_SAME} last_timestamp's Solutions Implemented 1 claim"),
        Omitted("Best Practices 3", "Clear lists and dictionaries explicitly.",
                "the story's `batch_data.clear()`: part of its fix, measured as a whole in "
                "concat_loop; no separate claim"),
        Omitted("Best Practices 4", "Use generators, process incrementally, avoid accumulating "
                "all data.", f"{_SAME} the batch-loop report's Prevention 1 (mean_myth) and the "
                "large-dataset write-up's generator claim (top_n)"),
        Omitted("Usage; Files Modified; Emergency Rollback", "How to run and roll back the fix.",
                "instructions for the story's own project"),
        Omitted("Testing Recommendations", "Watch `ps`/`htop`; test with 5, then 10, then 30 days.",
                "advice on method (the casebook measures growth at two data sizes itself)"),
        Omitted("Additional Optimizations 2", "Profile with `python -m memory_profiler`.",
                "a tool suggestion; the casebook shows memory_profiler's line tables on its pages"),
        Omitted("Summary", "The pipeline can now process unlimited amounts of data without memory "
                "issues (TB-scale).", f"{_SAME} Solutions Implemented 2 (concat_loop: memory stops "
                "growing with the days); the terabytes are the story's own run"),
    ),
    "gc_post": (
        Omitted("Out-of-memory issue", "With Spark, out-of-memory can still happen when data is "
                "collected back to the driver.", "about Spark, which the casebook does not run"),
        Omitted("1: signal Garbage Collector asap", "`del df2` could release up to 1038.8 MiB.",
                "a reading of the post's profile; what decides how much a `del` gives back is "
                "judged in frames_alive (`del df1` gives its memory back)"),
        Omitted("2: use chunked/iterator output", "The chunked API split the output into 30 "
                "chunks (the Occurrences column).", "a description of memory_profiler's table"),
        Omitted("Note: Monitor Memory in Python", "Install memory-profiler, decorate with "
                "`@profile`, run with `-m memory_profiler`.",
                "a how-to for a tool; the casebook shows its tables on this story's pages"),
    ),
    "large_dataset": (
        Omitted("Overview; 10. Results and Impact", "OOM errors went from 3-4 a day to none a "
                "month; the largest dataset from 10 GB to 500 GB+.", "records of the story's own "
                "operations"),
        Omitted("1. Problem: Loading Entire Dataset", "Result: out of memory on a 32 GB machine.",
                "a consequence of the peak judged in the story's several-times-the-file claim"),
        Omitted("2. Solution 1: Pandas Chunking", "Each chunk is 50 MB, its top 100 rows 10 MB; "
                "500 chunks' tops make 500 MB, the peak (99% less).",
                "an arithmetic slip (100 rows of this data are about 20 KB) and a ratio set by the "
                "file's size; the chunked code's constant memory is judged in top_n"),
        Omitted("3. Solution 2: Polars", "polars has a query optimizer and uses all CPU cores.",
                "a description of the engine; its memory and speed are judged in top_n"),
        Omitted("4. Node.js Streaming", "csv-parser streams keep a Node.js job at 5 MB instead of "
                "30 GB.", "about Node.js, which the casebook does not run"),
        Omitted("5. Generator Pattern", "Each stage holds one row (a few KB); `top_n` holds 100.",
                f"{_SAME} the generator pipeline's constant-memory claim (top_n)"),
        Omitted("6. Real-World: E-Commerce Analytics", "The items table (50 GB) took 100 GB; the "
                "report peaked at 270 GB.", f"{_SAME} the reading-takes-twice and merge claims "
                "(sql_aggregate); the totals are the story's own run"),
        Omitted("7. Dask for Parallel Processing", "Dask loads lazily: nothing is computed "
                "before `compute()`.", "a description of Dask's API"),
        Omitted("8. Memory Monitoring", "The monitor shows polars streaming using little memory.",
                f"{_SAME} the monitor claim (tracemalloc_monitor)"),
        Omitted("9. Optimization Decision Tree", "Under 1 GB use pandas; 10-100 GB polars, Dask "
                "or a database; over 100 GB a database, Spark or Ray.",
                "advice by dataset size; the 1-10 GB branch's claim is judged in top_n, Spark and "
                "Ray are not run here"),
        Omitted("10. Results and Impact", "Infrastructure costs fell by 94% ($23,000 a year).",
                "about money"),
    ),
    "transform_pipeline": (
        Omitted("Part 1, timeline", "Memory went from 68.5% to 94.2% in the final stage; flushes "
                "of 490K-939K products against 150K-550K in normal operation; 1 h 48 min for the "
                "last 15 batches.", "the story's own logs; the casebook models its normal operation "
                "and final stage with them (result_queue)"),
        Omitted("Part 2, Problem 2", "`flush_interval = 2000` would flush at 2,000 products; the "
                "buffer reached 841K.", "the write-up's own reasoning, which it corrects itself"),
        Omitted("Part 4, Factor B", "The results waiting in the executor and the writer's buffer "
                "exist at the same time.", "true by construction whenever a buffering writer takes "
                "results from a queue: they are different objects, and while both are alive their "
                "memory adds up; how full the buffer is when the queue peaks depends on where the "
                "last flush fell, which the logs do not give. Each is measured on its own "
                "(result_queue, row_buffer)"),
        Omitted("Part 4, Factor C", "The Bloom-filter deduplication makes 100-200 MB of temporary "
                "lists per call.", "the story's deduplication code is not in the write-up"),
        Omitted("Part 4, Factor D", "The OS file cache holds 2-3 GB of the 9 GB output and "
                "reduces available memory (Windows).", "about Windows' file cache; on Linux file "
                "pages are not process memory (top_n shows them apart)"),
        Omitted("Part 5, Fix 2", "Bloom-filter deduplication cut its memory from 9.9 GB to 69 MB.",
                "the story's deduplication code is not in the write-up"),
        Omitted("Part 5, Fix 3; Part 6", "The root causes, restated and ranked.",
                "the same claims as Part 2 (row_buffer, result_queue, allocator_retention)"),
        Omitted("Part 8, Solution D", "A streaming writer needs significant refactoring and is "
                "riskier.", "about effort, not memory"),
        Omitted("Part 9; Part 10", "The action plan and the success targets (under 70%, 1500 "
                "molecules/s).", "plans and targets, not claims"),
    ),
}
