"""The example suite of docs/plugin.md: run it with the commands shown there."""

import numpy as np
import pandas as pd
import pytest

from leakhunt import memory_budget

RESULTS = []  # a module global: whatever goes in here stays alive
HISTORY = []


def daily_frame(rows=2_000_000):
    return pd.DataFrame({"price": np.random.rand(rows), "qty": np.random.rand(rows)})


@pytest.mark.memory_budget(rss="20 MB")
def test_daily_means():
    frame = daily_frame()
    RESULTS.append(frame.iloc[:1])  # a 1-row slice is a view: it pins the whole block


@memory_budget(rss="20 MB", peak="100 MB")
def test_daily_means_fixed():
    frame = daily_frame()
    RESULTS.append(frame.iloc[:1].copy())


@pytest.mark.parametrize("rows", [
    pytest.param(100_000, id="small"),
    pytest.param(4_000_000, id="large", marks=pytest.mark.memory_budget(peak="50 MB")),
])
def test_totals(rows):
    frame = daily_frame(rows)
    assert (frame.price * frame.qty).sum() > 0


def test_appends_history():
    HISTORY.append(np.ones(25_000))  # 195 KiB per call, never released


@pytest.mark.no_leak_check
def test_warms_a_cache():
    HISTORY.append(np.ones(10))
