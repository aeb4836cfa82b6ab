"""Reproducers of real leak reports (matplotlib, polars) and of issue 19's file-backed memory, each a
test with a budget, in a process of their own (matplotlib and polars together with pandas would
take a process past 300 MB). tests/test_zoo.py copies this file into a pytester directory as
test_zoo_plots.py; tests/zoo/catalogue.py says what is true of each test."""

import numpy as np
import pytest

SLICES = []
CLOSED = []


@pytest.mark.memory_budget(rss="2 MB")
def test_matplotlib_8519_figures_not_closed():
    """matplotlib/matplotlib#8519: pyplot keeps every figure until it is closed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    for _ in range(2):
        fig, ax = plt.subplots()
        ax.imshow(np.random.default_rng(0).random((700, 700)))  # 3.7 MiB each


@pytest.mark.memory_budget(rss="2 MB")
def test_matplotlib_8519_fixed_with_close():
    """matplotlib/matplotlib#8519, fixed as its maintainers say: plt.close(fig)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    for _ in range(2):
        fig, ax = plt.subplots()
        ax.imshow(np.random.default_rng(0).random((700, 700)))
        plt.close(fig)


@pytest.mark.memory_budget(rss="2 MB")
def test_polars_3972_slices_keep_buffers():
    """pola-rs/polars#3972: a slice only moves an offset: it keeps its parent's buffer."""
    import polars as pl
    for _ in range(4):
        frame = pl.DataFrame({"x": np.arange(250_000)})  # 1.9 MiB each
        SLICES.append(frame.slice(0, 10))


@pytest.mark.memory_budget(rss="2 MB")
def test_polars_3972_fixed_with_a_small_frame():
    """pola-rs/polars#3972, the other way: a frame of the ten rows themselves keeps 80 bytes."""
    import polars as pl
    for _ in range(4):
        frame = pl.DataFrame({"x": np.arange(250_000)})
        SLICES.append(pl.DataFrame({"x": frame["x"].head(10).to_list()}))


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "values.bin"
    np.arange(4_000_000, dtype="float64").tofile(path)  # 30.5 MiB
    return path


@pytest.mark.memory_budget(rss="2 MB")
def test_memmap_pages_are_not_anonymous_memory(data_file):
    """Issue 19, item 6: a memory map's pages are file-backed: not charged to rss."""
    values = np.memmap(data_file, dtype="float64", mode="r")
    assert float(values.sum()) > 0  # every page read
    CLOSED.append(values)


@pytest.mark.memory_budget(rss="2 MB", file="2 MB")
def test_memmap_pages_checked_when_asked(data_file):
    """Issue 19, item 6, the other way: a budget on file-backed memory counts them."""
    values = np.memmap(data_file, dtype="float64", mode="r")
    assert float(values.sum()) > 0
    CLOSED.append(values)
