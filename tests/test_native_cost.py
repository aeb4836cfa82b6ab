"""What reading memray's capture costs the run: the native backend's read pauses Python's cyclic
garbage collector (the collections it would trigger walk everything the script left alive, and
find nothing) and always leaves the collector as it found it; it records its own CPU time.

Each check records a small block in a subprocess (memray allows one tracker per process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("memray")
if not sys.platform.startswith(("linux", "darwin")):  # pragma: no cover - memray's platforms
    pytest.skip("memray runs on Linux and macOS only", allow_module_level=True)

READ = """
import gc, json, sys
from leakhunt.native import NativePeak, NativeRecorder

if sys.argv[1] == "off":
    gc.disable()
recorder = NativeRecorder().start()
kept = [bytearray(1024) for _ in range(2000)]
recorder.stop()
during = []
peak = recorder.analyse(status=lambda text: during.append((text, gc.isenabled())))
recorder.close()
again = NativePeak.from_dict(json.loads(json.dumps(peak.to_dict())))
print(json.dumps({"during": during, "after": gc.isenabled(), "sites": len(peak.sites), "cpu": peak.cpu_seconds,
                  "wall": peak.seconds, "cpu_again": again.cpu_seconds}))
"""


def _read(collector: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(READ), collector], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_read_pauses_the_collector_and_switches_it_back_on() -> None:
    out = _read("on")
    assert out["sites"] >= 1
    said = [enabled for text, enabled in out["during"] if "reading the allocations" in text]
    assert said and not any(said), out["during"]  # paused while the records are read
    assert out["after"] is True


def test_the_reads_cpu_time_is_recorded_and_survives_the_json() -> None:
    out = _read("on")
    assert 0 < out["cpu"] <= out["wall"] + 0.05  # the reading thread's CPU: within the read's wall time
    assert out["cpu_again"] == out["cpu"]


def test_a_collector_the_script_switched_off_stays_off() -> None:
    out = _read("off")
    assert out["after"] is False
