"""The suite of docs/ci.md: a baseline run, then the same suite with test_keeps keeping more.

    pytest docs/examples/test_ci_example.py -p no:randomly --leak-report-file=base.json
    KEEP_MORE=10 pytest docs/examples/test_ci_example.py -p no:randomly --leak-baseline=base.json
"""

import os

import numpy as np

RESULTS = []
MORE = int(os.environ.get("KEEP_MORE", "0"))  # MiB that test_keeps keeps beyond its 20: the "edit"


def frame_of(mib):
    return np.ones(mib * 1024 * 1024 // 8)  # written: resident


def test_keeps():
    RESULTS.append(frame_of(20 + MORE))


def test_transient():
    assert frame_of(30).sum() > 0


def test_small():
    assert sum(range(1000)) == 499500
