"""``leakhunt run``'s live status line is drawn as often as time passes, not once per line (issue 21).

It was redrawn before every line the target printed: a script printing 10,000 lines ran 18x
slower in a terminal. No timing here: the draws are counted, in the terminal's output (the
status text appears once per draw) and on :class:`leakhunt.report.live_status.LiveStatus`.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest
from test_run import on_a_terminal

LINES = 10_000


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_burst_of_lines_takes_the_status_down_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from leakhunt.report.live_status import REDRAW_AFTER, LiveStatus

    now = [100.0]
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    status = LiveStatus(terminal, clock=lambda: now[0]).start()
    try:
        status.update("STATUS one")
        for i in range(LINES):
            print(f"line {i}", file=sys.stderr)      # the clock stands still: one burst
        assert status.draws == 1
        now[0] += 2 * REDRAW_AFTER                   # time passes: the next line brings it back
        print("after a while", file=sys.stderr)
        assert status.draws == 2
        status.update("STATUS two")                  # the sampler's next update
        assert status.draws == 3
    finally:
        status.stop()
    out = terminal.getvalue()
    plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out).replace("\r", "\n")
    lines = [line for line in plain.split("\n") if line]
    assert [line for line in lines if not line.startswith("STATUS")] == [f"line {i}" for i in range(LINES)] + [
        "after a while"]  # every line whole, in order, none on the status's line
    assert out.count("STATUS one") == 2 and out.count("STATUS two") == 1
    assert out.endswith("\r\x1b[K")  # erased at the end


def test_the_sampler_never_waits_for_the_terminal() -> None:
    # while the target writes (the lock held), an update is skipped, not queued behind it
    from leakhunt.report.live_status import LiveStatus

    terminal = FakeTerminal()
    status = LiveStatus(terminal)
    status.active = True
    with status._lock:
        status.update("STATUS")
    assert status.draws == 0 and terminal.getvalue() == ""
    status.update("STATUS")
    assert status.draws == 1


MANY_LINES = f"""
import time
time.sleep(0.7)                 # the first status (after 0.5 s) is up
for i in range({LINES}):
    print(f"line {{i}}")
"""


def test_a_script_printing_many_lines_in_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "many.py").write_text(MANY_LINES)
    status, out = on_a_terminal(["run", "many.py"], tmp_path)
    assert status == 0
    draws = len(re.findall(r"leakhunt: +\d+\.\d s", out))
    assert 1 <= draws <= 100, draws  # was one per line: 10,000
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    printed = [line for line in plain if line.startswith("line ")]
    assert printed == [f"line {i}" for i in range(LINES)]
