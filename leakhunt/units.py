"""Sizes: parse what users write, print what they read.

One place for the unit rules: decimal units are powers of 1000, binary units
powers of 1024, input is case-insensitive with an optional space, output is always binary.
"""

from __future__ import annotations

import argparse
import re
from typing import Callable

__all__ = ["parse_size", "format_size", "format_limit", "whole_number", "ACCEPTED_UNITS"]

_UNITS: dict[str, int] = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}

ACCEPTED_UNITS = "B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)"

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]+)?\s*$")


def parse_size(value: int | str) -> int:
    """Return ``value`` in bytes.

    ``value`` is an int (bytes) or a string such as ``"50 MB"``, ``"64KiB"`` or ``"1.5gb"``.
    A bare number in a string is bytes, and so must be whole: ``"1.5"`` is an error, not a
    2-byte size (a unit was most likely forgotten). Raises ``ValueError`` quoting the input.
    """
    if isinstance(value, bool):  # bool is an int subclass; True is never a size
        raise ValueError(f"invalid size {value!r}: expected bytes as an int or a string like '50 MB' "
                         f"(units: {ACCEPTED_UNITS})")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid size {value!r}: a size cannot be negative (units: {ACCEPTED_UNITS})")
        return value
    if not isinstance(value, str):
        raise ValueError(
            f"invalid size {value!r}: expected bytes as an int or a string like '50 MB' "
            f"(units: {ACCEPTED_UNITS})"
        )
    match = _SIZE_RE.match(value)
    if match is None:
        raise ValueError(
            f"invalid size {value!r}: expected a number and a unit, like '50 MB' or '64KiB' "
            f"(units: {ACCEPTED_UNITS})"
        )
    number, unit = match.groups()
    factor = _UNITS.get((unit or "b").lower())
    if factor is None:
        raise ValueError(f"invalid size {value!r}: unknown unit {unit!r} (units: {ACCEPTED_UNITS})")
    if factor == 1 and not float(number).is_integer():
        raise ValueError(f"invalid size {value!r}: a size in bytes must be a whole number; "
                         f"give a unit for a fraction, like '{number} MB' "
                         f"(units: {ACCEPTED_UNITS})")
    return int(round(float(number) * factor))


def format_size(n: int | float | None, *, signed: bool = False) -> str:
    """Format bytes with binary units: ``format_size(100_000_000) == '95.4 MiB'``.

    ``None`` prints as ``'n/a'``; ``signed=True`` prefixes positive values with ``+``.
    """
    if n is None:
        return "n/a"
    sign = "-" if n < 0 else ("+" if signed and n > 0 else "")
    size = abs(float(n))
    if size < 1024:
        return f"{sign}{int(size)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024 or unit == "TiB":
            return f"{sign}{size:.1f} {unit}"
    raise AssertionError("unreachable")


def format_limit(limit: int | None, given: str | None = None) -> str:
    """A limit as users read it: the binary figure, after the user's own spelling when that says
    something else: ``format_limit(20_000_000, "20MB") == '20MB = 19.1 MiB'``; without a spelling
    (or when it reads the same, ``"64 KiB"``) just ``'19.1 MiB'``. The one rendering of a budget's
    limits, wherever one is shown."""
    shown = format_size(limit)
    if not given or limit is None:
        return shown
    spelled = " ".join(given.split())
    if _same(spelled, shown):
        return shown
    return f"{spelled} = {shown}"


def _same(spelled: str, shown: str) -> bool:
    """Whether ``spelled`` reads as ``shown`` ('64KiB' and '64.0 KiB'; '1024' and '1.0 KiB' do not)."""
    def key(text: str) -> str:
        return re.sub(r"\.0+(?=[a-z]|$)", "", text.replace(" ", "").lower())

    return key(spelled) == key(shown)


def whole_number(option: str, low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type=`` for a whole-number option from ``low`` (to ``high``): anything else
    is an error that names the option, the value and the accepted form."""
    accepted = f"a whole number from {low} to {high}" if high is not None else f"a whole number >= {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"invalid {option} {text!r}: expected {accepted}")
        return value

    return parse
