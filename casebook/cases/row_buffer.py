"""A writer's row buffer, flushed with `Table.from_pylist` only when it is full."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from casebook.data import product_batch
from casebook.model import Case, Claim, Flip, Observed, Params, Ruling, Variant
from casebook.verdicts import (
    Band,
    Evidence,
    both,
    budget_rule,
    growth_rule,
    ratio_rule,
    rule,
    size_text,
    speed_rule,
    within,
)

# Batches arrive whole, as a pool worker's result does; the buffer flushes every
# `flush_batches` batches. Micro-batches are the story's 10,000 products. The other parameters
# are what the claims' flips change: longer SMILES strings (`extra` characters), a writer that
# keeps what it flushed, and pyarrow's default dictionary pages (`dictionary`).
_FLIPS = {"extra": 0, "keep_flushed": False, "dictionary": True}
SIZES = {
    size: {**params, **_FLIPS}
    for size, params in {
        "warmup": {"batches": 2, "batch": 500, "flush_batches": 2, "micro": 100},
        "test": {"batches": 12, "batch": 30_000, "flush_batches": 6, "micro": 10_000},
        "small": {"batches": 12, "batch": 30_000, "flush_batches": 6, "micro": 10_000},
        "medium": {"batches": 24, "batch": 100_000, "flush_batches": 8, "micro": 10_000},
        "large": {"batches": 40, "batch": 200_000, "flush_batches": 8, "micro": 10_000},
    }.items()
}

#: About what one product dict costs in memory with its values (CPython 3.11, 64-bit).
PRODUCT_BYTES = 450


def schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("product_id", pa.int64()),
        ("smiles", pa.string()),
        ("parent", pa.int64()),
        ("weight", pa.float64()),
        ("score", pa.float64()),
    ])


class StreamingParquetWriter:
    """The story's writer, as its analysis quotes it: a buffer, flushed when it is full."""

    def __init__(self, output_path: str, schema: Any, flush_interval: int, dictionary: bool = True,
                 keep_flushed: bool = False) -> None:
        self.output_path = output_path
        self.schema = schema
        self.flush_interval = flush_interval
        self.dictionary = dictionary
        self.buffer: list[dict[str, Any]] = []
        self.flushed: list[list[dict[str, Any]]] | None = [] if keep_flushed else None
        self.writer: Any = None
        self.total_written = 0

    def write_batch(self, products: list[dict[str, Any]]) -> None:
        self.buffer.extend(products)
        if len(self.buffer) >= self.flush_interval:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.buffer:
            return
        table = pa.Table.from_pylist(self.buffer, schema=self.schema)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.output_path, self.schema, use_dictionary=self.dictionary)
        self.writer.write_table(table)
        self.total_written += len(self.buffer)
        if self.flushed is not None:
            self.flushed.append(self.buffer)  # kept (for a retry, say): a new list takes its place
            self.buffer = []
        else:
            self.buffer.clear()

    def close(self) -> int:
        self._flush()
        if self.writer is not None:
            self.writer.close()
        return self.total_written


class BufferOnlyWriter(StreamingParquetWriter):
    """The same buffering, but a flush only drops the buffer: what the dicts alone cost."""

    def _flush(self) -> None:
        self.total_written += len(self.buffer)
        self.buffer.clear()


class ConvertOnlyWriter(StreamingParquetWriter):
    """The same buffer, converted with `Table.from_pylist` at each flush but not written."""

    def _flush(self) -> None:
        import pyarrow as pa

        table = pa.Table.from_pylist(self.buffer, schema=self.schema)
        self.total_written += table.num_rows
        del table
        self.buffer.clear()


class ImmediateParquetWriter(StreamingParquetWriter):
    """The story's Solution A: no buffering, every batch written as it arrives."""

    def write_batch(self, products: list[dict[str, Any]]) -> None:
        if not products:
            return
        self._flush_products(products)

    def _flush_products(self, products: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(products, schema=self.schema)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.output_path, self.schema)
        else:
            table = table.cast(self.schema)
        self.writer.write_table(table)
        self.total_written += len(products)
        gc.collect()


def _output(p: Params) -> str:
    return str(Path(p["workdir"]) / "products.parquet")


def _run(p: Params, writer: StreamingParquetWriter, collect_after_flush: bool = False) -> int:
    for i in range(p["batches"]):
        writer.write_batch(product_batch(i, p["batch"], p["extra"]))  # one worker's result, as it arrives
        if collect_after_flush and not writer.buffer:
            gc.collect()
    return writer.close()


def _buffered(p: Params) -> StreamingParquetWriter:
    return StreamingParquetWriter(_output(p), schema(), p["flush_batches"] * p["batch"],
                                  dictionary=p["dictionary"], keep_flushed=p["keep_flushed"])


def leaky(p: Params) -> int:
    """The story's writer: batches pile up in the buffer until a flush converts them all."""
    return _run(p, _buffered(p))


def one_flush(p: Params) -> int:
    """The story's writer, given only as many batches as fill its buffer once: one flush."""
    return _run({**p, "batches": p["flush_batches"]}, _buffered(p))


def buffer_only(p: Params) -> int:
    """The same buffer, never converted: the writer buffer's own cost, without the Arrow copy."""
    return _run(p, BufferOnlyWriter(_output(p), schema(), p["flush_batches"] * p["batch"]))


def convert_only(p: Params) -> int:
    """The same buffer, converted to Arrow at each flush but not written: the Arrow copy's cost."""
    return _run(p, ConvertOnlyWriter(_output(p), schema(), p["flush_batches"] * p["batch"]))


def one_buffer(p: Params) -> Observed:
    """One full buffer, flushed by hand in steps: what the dicts hold (settled), what
    `Table.from_pylist` adds at its peak while they are alive, what writing the table adds at
    its peak, and what RSS reads after the flush against before it (not settled)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from leakhunt import measure

    with measure() as filling:
        buffer = [product for i in range(p["flush_batches"])
                  for product in product_batch(i, p["batch"], p["extra"])]
    with measure(settle=False) as flushing:
        with measure(settle=False) as converting:
            table = pa.Table.from_pylist(buffer, schema=schema())
        with pq.ParquetWriter(_output(p), schema(), use_dictionary=p["dictionary"]) as writer:
            with measure(settle=False) as writing:
                writer.write_table(table)
        del table
        buffer.clear()
    return Observed(None, dicts=filling.rss_growth, converted=converting.peak, written=writing.peak,
                    flush_delta=flushing.rss_growth)


def story_fix(p: Params) -> int:
    """The story's Solution A: flush every batch as it arrives (and collect garbage)."""
    return _run(p, ImmediateParquetWriter(_output(p), schema(), 1))


def keep_all(p: Params) -> int:
    """Solution A, edited to keep every batch it wrote (for a later check, say)."""
    writer = ImmediateParquetWriter(_output(p), schema(), 1)
    kept = []
    for i in range(p["batches"]):
        products = product_batch(i, p["batch"], p["extra"])
        writer.write_batch(products)
        kept.append(products)
    return writer.close() + 0 * len(kept)


def micro_batches(p: Params) -> int:
    """The story's Solution C: split each batch into micro-batches, collecting after each."""
    writer = ImmediateParquetWriter(_output(p), schema(), 1)
    for i in range(p["batches"]):
        final_products = product_batch(i, p["batch"], p["extra"])
        for start in range(0, len(final_products), p["micro"]):
            micro_batch = final_products[start:start + p["micro"]]
            writer.write_batch(micro_batch)
            gc.collect()  # free memory after each micro-batch
        del final_products
    return writer.close()


def fixed(p: Params) -> int:
    """One open ParquetWriter; each batch goes out as record batches of `micro` rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    written = 0
    # No dictionary pages: product ids and SMILES strings are all different, and a dictionary
    # of unique values costs memory for nothing.
    with pq.ParquetWriter(_output(p), schema(), use_dictionary=False) as writer:
        for i in range(p["batches"]):
            products = product_batch(i, p["batch"], p["extra"])
            for start in range(0, len(products), p["micro"]):
                writer.write_batch(pa.RecordBatch.from_pylist(products[start:start + p["micro"]],
                                                              schema=writer.schema))
            written += len(products)
            del products
    return written


def gc_after_flush(p: Params) -> int:
    """A fix that looks right and is not: the same buffer, with `gc.collect()` after flushes."""
    return _run(p, _buffered(p), collect_after_flush=True)


def budget(p: Params) -> int:
    # What writing one batch in hand may take with pyarrow's defaults: its dicts, their Arrow
    # copy and the Parquet writer's dictionary pages, together about four times the dicts,
    # with room to spare; six buffered batches do not fit.
    return 6 * p["batch"] * PRODUCT_BYTES


def _about_twice(e: Evidence) -> Ruling:
    share, converted, dicts = e.ratio("one_buffer", "one_buffer", "converted", base_figure="dicts")
    twice = Band(1 + share.value, 1 + share.low, 1 + share.high)
    return rule(within(twice, 1.75, 2.5),
                f"a full buffer's dicts held {size_text(dicts.value)}; `Table.from_pylist` added "
                f"{size_text(converted.value)} at its peak while they were alive: "
                f"{twice.value:.2f}x the dicts (the story: 0.5-1 GB of dicts, 1-2 GB in all)",
                **{"dicts": dicts.value, "converted": converted.value})


def _write_adds(e: Evidence) -> Ruling:
    written, _, _ = e.ratio("one_buffer", "one_buffer", "written", base_figure="dicts")
    return rule(within(written, low=0.33),
                f"writing the table (`write_table`, dictionary pages {'on' if e.param('dictionary') else 'off'}) "
                f"added {size_text(e.value('one_buffer', 'written'))} at its peak, "
                f"{written.value:.0%} of the {size_text(e.value('one_buffer', 'dicts'))} of dicts "
                f"(the story: 1-2 GB became 1.5-3 GB, a half more)",
                **{"written": e.value("one_buffer", "written"), "dicts": e.value("one_buffer", "dicts")})


def _flush_adds(e: Evidence) -> Ruling:
    delta, dicts = e.band("one_buffer", "flush_delta", ratio=True), e.value("one_buffer", "dicts")
    share = delta.scaled(1 / dicts)
    return rule(within(share, low=0.0),
                f"RSS read {size_text(abs(delta.value))} {'more' if delta.value >= 0 else 'less'} after "
                f"the flush than before it, against {size_text(dicts)} of dicts flushed",
                **{"flush_delta": delta.value, "dicts": dicts})


def _spikes_add_up(e: Evidence) -> Ruling:
    return ratio_rule(e, "leaky", "one_flush", low=1.25, says=lambda two, one, q: (
        f"with {e.param('batches') // e.param('flush_batches')} flushes the writer peaked at "
        f"{size_text(two.value)}, with one at {size_text(one.value)} ({q.value:.2f}x)"))


def _slower(variant: str, base: str, most: float) -> Any:
    return lambda e: speed_rule(e, variant, base, high=most)


CASE = Case(
    name="row_buffer",
    title="A row buffer converted with from_pylist when full",
    story="transform_pipeline",
    summary=(
        "A chemistry pipeline wrote its products through a buffering Parquet writer. In the "
        "final stage the buffer held up to 939,000 product dicts before a flush, and each flush "
        "turned the whole buffer into an Arrow table with `Table.from_pylist` while the dicts "
        "were still alive; memory went from 68% to 94%. The analysis blamed the buffer and "
        "\"PyArrow memory duplication\", and proposed flushing every batch at once (Solution A), "
        "micro-batches of 10,000 with `gc.collect()` (Solution C) or a streaming writer "
        "(Solution D)."
    ),
    lesson=(
        "The buffer is the problem: a writer that flushes only when full holds everything added "
        "since the last flush. The Arrow table is much smaller than the dicts it is made from "
        "(columns of numbers and one string buffer, against a dict and its objects per row): "
        "the conversion does not double the buffer unless long strings dominate it. Flushing "
        "each batch as it arrives bounds memory at a batch; writing record batches of 10,000 "
        "rows through one open `ParquetWriter`, without dictionary pages for unique values, "
        "bounds it lower still, and does not need a `gc.collect()` per micro-batch, which costs "
        "time and frees nothing."
    ),
    metric="peak",
    sizes=SIZES,
    budget=budget,
    # Growth in products: the buffer's size (flush_batches) and the batches that arrive.
    growth_keys=("batches", "flush_batches"),
    growth_scale=0.25,
    variants=(
        Variant("leaky", leaky, "leaky", "the story's writer: flush when the buffer is full",
                growth=True),
        # Between invocations Solution A's peak moved by 6.2% and its CPU time against the story's
        # writer's by 5.0%, Solution C's by 8.6% and 28.5%, the streaming writer's time by 6.6%,
        # the flush's RSS difference by 16.5% (benchmarks/casebook_stability.md): Python objects,
        # pymalloc's arenas and Arrow's pool.
        Variant("story_fix", story_fix, "story_fix", "Solution A: write every batch at once", growth=True,
                spread=0.1, time_spread=0.05),
        Variant("fixed", fixed, "fixed", "record batches of 10,000 through one writer", growth=True,
                time_spread=0.1),
        Variant("buffer_only", buffer_only, "part", "the same buffer, never converted"),
        Variant("convert_only", convert_only, "part", "the same buffer, converted but not written"),
        Variant("one_buffer", one_buffer, "part", "one full buffer, flushed step by step", timeline=False,
                spread=0.2),
        Variant("one_flush", one_flush, "part", "the story's writer, one buffer's worth of batches"),
        Variant("micro_batches", micro_batches, "part", "Solution C: micro-batches and `gc.collect()`",
                spread=0.1),
        Variant("keep_all", keep_all, "flip", "Solution A, keeping every batch it wrote", growth=True),
        Variant("gc_after_flush", gc_after_flush, "flip", "the story's writer, `gc.collect()` after flushes"),
    ),
    claims=(
        Claim("A writer buffer that flushes only when it is full holds every product added since "
              "the last flush, so its memory grows with the products between flushes.",
              lambda e: both(budget_rule(e, "leaky"), growth_rule(e, "leaky")),
              section="Part 2, Problem 2; Part 6, root cause 2",
              flip=Flip("Solution A's writer", variants={"leaky": "story_fix"})),
        Claim("`Table.from_pylist` duplicates the buffer: the dicts and their Arrow copy take about "
              "twice the buffer's memory (1-2 GB for 0.5-1 GB of dicts).", _about_twice,
              section="Part 2, Problem 3",
              flip=Flip("SMILES strings 100 characters longer (15,000 products a batch)",
                        params={"extra": 100, "batch": 15000})),
        Claim("Writing the table adds compression and encoding buffers on top (1.5-3 GB in all).",
              _write_adds, section="Part 2, Problem 3",
              flip=Flip("the writer without dictionary pages", params={"dictionary": False})),
        Claim("Each flush is a spike of its own: 8 flushes in the final stage add up to 8-16 GB.",
              _spikes_add_up, section="Part 6, root cause 3",
              flip=Flip("a writer that keeps what it flushed", params={"keep_flushed": True})),
        Claim("A flush adds to memory instead of freeing it (+0.1% to +1.2% of the machine).",
              _flush_adds, section="Part 1, critical observations; Part 2, Problem 3",
              flip=Flip("the writer without dictionary pages", params={"dictionary": False})),
        Claim("Solution A, flushing every batch as it arrives, removes the accumulation.",
              lambda e: both(budget_rule(e, "story_fix", holds_if="keeps"),
                             growth_rule(e, "story_fix", holds_if="flat")),
              section="Part 8, Solution A",
              flip=Flip("Solution A keeping every batch it wrote", variants={"story_fix": "keep_all"})),
        Claim("Solution A costs 10-20% of the throughput, at most.", _slower("story_fix", "leaky", 1.2),
              section="Part 8, Solution A",
              flip=Flip("a buffer that drops each batch instead of writing it, in its place",
                        variants={"story_fix": "buffer_only"})),
        Claim("Solution C, micro-batches of 10,000 with `gc.collect()` after each, bounds the "
              "memory of each write.", lambda e: budget_rule(e, "micro_batches", holds_if="keeps"),
              section="Part 8, Solution C",
              flip=Flip("the story's buffering writer", variants={"micro_batches": "leaky"})),
        Claim("Solution C is only slightly slower than the story's writer (more collector overhead).",
              _slower("micro_batches", "leaky", 1.25), section="Part 8, Solution C",
              flip=Flip("record batches through one writer, no `gc.collect()` (Solution D), in its place",
                        variants={"micro_batches": "fixed"})),
        Claim("Solution D, a streaming writer, keeps memory constant however many products arrive.",
              lambda e: both(budget_rule(e, "fixed", holds_if="keeps"), growth_rule(e, "fixed", holds_if="flat")),
              section="Part 8, Solution D",
              flip=Flip("a writer keeping every batch it wrote", variants={"fixed": "keep_all"})),
        Claim("Record batches of 10,000 through one open writer without dictionary pages need less "
              "than Solution A, with no `gc.collect()` at all.",
              lambda e: ratio_rule(e, "fixed", "story_fix", high=0.8, says=lambda d, a, q: (
                  f"the streaming writer peaked at {size_text(d.value)}, Solution A at "
                  f"{size_text(a.value)} ({q.value:.0%})")),
              origin="casebook", section="Part 8, Solution D",
              flip=Flip("Solution A in its place", variants={"fixed": "story_fix"})),
    ),
    flip={"story_fix": "gc_after_flush"},
    imports=("numpy", "pandas", "pyarrow", "pyarrow.parquet"),
    helpers=(StreamingParquetWriter, ImmediateParquetWriter, _run, product_batch),
)
