"""What a budgeted block's own imports take is named in its every-byte line, as ``leakhunt run``
names a script's: "modules and code loaded" (``leakhunt.imports.ImportMeter``, installed by the
block). A module made here mallocs 24 MB at import and keeps only the address, so no Python
object sizes it; the test that imports it also keeps 8 MB at every call (a second call breaks
the budget too). The same malloc in a test's body is not an import.

Each file runs in a pytest process of its own (``runpytest_subprocess``): RSS and imports are
the process's.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:memray", "-p", "no:xdist")

NATIVE_AT_IMPORT = '''
import ctypes

_libc = ctypes.CDLL("libc.so.6")
_libc.malloc.restype = ctypes.c_void_p
ADDRESS = _libc.malloc(24_000_000)
ctypes.memset(ADDRESS, 1, 24_000_000)  # resident: 22.9 MiB that only the import knows of
'''

TESTS = '''
import ctypes

import pytest

KEPT = []


@pytest.mark.memory_budget(rss="4 MB")
def test_imports_a_heavy_module():
    import native_at_import  # noqa: F401
    KEPT.append(bytearray(8_000_000))  # kept at every call: not one-time


@pytest.mark.memory_budget(rss="4 MB")
def test_mallocs_in_its_body():
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    address = libc.malloc(24_000_000)
    ctypes.memset(address, 1, 24_000_000)
'''


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libc.so.6 and RssAnon: Linux")
def test_a_blocks_own_imports_are_named_as_code_loaded_and_a_malloc_in_its_body_is_not(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(native_at_import=NATIVE_AT_IMPORT, test_imports=TESTS)
    result = pytester.runpytest_subprocess(*QUIET, "test_imports.py")
    out = result.stdout.str()
    result.assert_outcomes(failed=2)
    # the failures' section only: with CI set, pytest repeats each whole message in the short
    # test summary
    failures = out.split("short test summary")[0]
    imported, _, body = failures.partition("test_mallocs_in_its_body broke its memory budget")
    assert body, failures
    assert "test_imports_a_heavy_module broke its memory budget" in imported
    line = next(ln for ln in imported.splitlines() if "every byte:" in ln)
    assert "modules and code loaded 2" in line and "held by the roots 7.6 MiB" in line, line
    assert "modules and code loaded" not in body, body


def test_leakhunts_own_imports_are_never_the_blocks() -> None:
    # leakhunt loads some of its modules while it measures (leakhunt.attribution at a block's
    # start): they are not the code the block loaded
    code = ("from leakhunt.imports import ImportMeter\n"
            "meter = ImportMeter().install()\n"
            "import leakhunt.report.flame, leakhunt.leaf_rows\n"
            "import fractions, colorsys\n"
            "meter.remove()\n"
            "print(sorted(meter.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "['colorsys', 'fractions']", out.stdout
