"""parse_size and format_size: the unit rules of DESIGN.md; whole_number, the command-line options' whole numbers."""

from __future__ import annotations

import argparse
import re

import pytest

from leakhunt import format_size, parse_size
from leakhunt.units import ACCEPTED_UNITS, whole_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50 MB", 50_000_000),
        ("50MB", 50_000_000),
        ("50mb", 50_000_000),
        ("  50 Mb  ", 50_000_000),
        ("1 kB", 1_000),
        ("1 KB", 1_000),
        ("2 GB", 2_000_000_000),
        ("1 TB", 10**12),
        ("64KiB", 65_536),
        ("64 kib", 65_536),
        ("1 MiB", 1_048_576),
        ("1.5 GiB", 1_610_612_736),
        ("1 TiB", 1024**4),
        ("0.5 KiB", 512),
        (".5 kB", 500),
        ("1.5gb", 1_500_000_000),
        ("100", 100),
        ("100 B", 100),
        ("100b", 100),
        ("0", 0),
    ],
)
def test_parse_size_strings(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_parse_size_ints_are_bytes() -> None:
    assert parse_size(0) == 0
    assert parse_size(123_456) == 123_456


def test_parse_size_decimal_and_binary_units_differ() -> None:
    assert parse_size("1 MB") == 1000**2
    assert parse_size("1 MiB") == 1024**2


@pytest.mark.parametrize(
    "bad",
    ["20 XB", "abc", "-5 MB", "", "MB", "1.2.3 MB", "5 M B", "1e6", "ten MB", 3.5, None, True, -1, [50]],
)
def test_parse_size_rejects_bad_input_quoting_it_and_listing_units(bad: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_size(bad)  # type: ignore[arg-type]
    message = str(info.value)
    assert repr(bad) in message
    assert ACCEPTED_UNITS in message
    for unit in ("B", "kB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB"):
        assert unit in message


@pytest.mark.parametrize("text", ["1.5", "1.5 B", "0.5b", ".5"])
def test_a_size_in_bytes_must_be_whole(text: str) -> None:
    # issue 13: "rss=1.5" became a 2-byte budget; a unit was forgotten, so say so
    with pytest.raises(ValueError, match=r"must be a whole number; give a unit for a fraction") as info:
        parse_size(text)
    assert repr(text) in str(info.value)


def test_a_whole_number_of_bytes_may_be_written_with_a_point() -> None:
    assert parse_size("10.0") == 10
    assert parse_size("1.5 kB") == 1500  # with a unit, a fraction is fine


def test_parse_size_names_the_unknown_unit() -> None:
    with pytest.raises(ValueError, match=r"unknown unit 'XB'"):
        parse_size("20 XB")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536.0, "1.5 KiB"),
        (100_000_000, "95.4 MiB"),
        (20_000_000, "19.1 MiB"),
        (1024**3, "1.0 GiB"),
        (5 * 1024**4, "5.0 TiB"),
        (2048 * 1024**4, "2048.0 TiB"),
        (-2048, "-2.0 KiB"),
        (None, "n/a"),
    ],
)
def test_format_size_uses_binary_units(value: int | float | None, expected: str) -> None:
    assert format_size(value) == expected


def test_format_size_signed() -> None:
    assert format_size(2048, signed=True) == "+2.0 KiB"
    assert format_size(-2048, signed=True) == "-2.0 KiB"
    assert format_size(0, signed=True) == "0 B"
    assert format_size(None, signed=True) == "n/a"


@pytest.mark.parametrize("n", [0, 1, 1023, 4096, 123_456_789, 7 * 1024**3])
def test_format_then_parse_comes_back_within_rounding(n: int) -> None:
    # Output is rounded to one decimal, so the round trip is close, not exact.
    assert abs(parse_size(format_size(n)) - n) <= max(1, n * 0.001)


@pytest.mark.parametrize(("text", "low", "high", "value"), [("3", 1, None, 3), ("0", 0, None, 0), ("100", 1, 100, 100)])
def test_whole_number_takes_what_is_in_range(text: str, low: int, high: int | None, value: int) -> None:
    assert whole_number("--n", low, high)(text) == value


@pytest.mark.parametrize(("text", "low", "high", "accepted"), [
    ("0", 1, None, "a whole number >= 1"), ("x", 1, None, "a whole number >= 1"), ("2.5", 0, None, "a whole number >= 0"),
    ("101", 1, 100, "a whole number from 1 to 100"), ("0", 1, 100, "a whole number from 1 to 100"),
])
def test_whole_number_names_the_option_the_value_and_the_accepted_form(text: str, low: int, high: int | None,
                                                                        accepted: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=rf"^invalid --n '{re.escape(text)}': expected {accepted}$"):
        whole_number("--n", low, high)(text)
