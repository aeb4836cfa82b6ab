"""``leakhunt run``'s live status line: one line at the bottom of the terminal, the target's
output printed above it.

While the status is up, the target's ``sys.stderr`` (and ``sys.stdout`` when it is a terminal
too) go through :class:`_LinesAbove`, which passes whole lines only, so a line of the target's
is never cut by the status. The status is drawn by the sampler's thread (:meth:`LiveStatus.update`,
twice a second) and taken down, once, when the target's lines come; after lines it is drawn
again only if it has not been drawn for :data:`REDRAW_AFTER` seconds. So the number of draws
follows the time the run takes, not the number of lines it prints (issue 21: it was redrawn
before every line, and a script printing 10,000 lines ran 18x slower). When the target writes
a partial line and flushes it - a prompt, a progress bar of its own - or redraws a line with
``\\r``, the status steps aside for the rest of the run.

The sampler never waits for the terminal: if the target is writing, that update is skipped (the
next one draws). A forked copy of the target writes straight to the terminal, never the status.
"""

from __future__ import annotations

import io
import threading
import time
from typing import IO, Any, Callable

from leakhunt.process_local import Owner

__all__ = ["LiveStatus", "REDRAW_AFTER"]

#: After the target's lines, the status is drawn again at once only if it was last drawn this
#: many seconds ago; otherwise the sampler's next update draws it.
REDRAW_AFTER = 0.1

_CLEAR = "\r\x1b[K"  # to the start of the line, erase it


class LiveStatus:
    """A live status line on ``stream`` (a terminal). ``draws`` counts the times it was drawn.

    ``clock``: the time in seconds (``time.monotonic``), replaceable in tests.
    """

    def __init__(self, stream: IO[str], *, clock: Callable[[], float] = time.monotonic) -> None:
        from leakhunt.report.console import console

        terminal = console(stream)
        self.stream = stream
        self.width = max(20, terminal.width)
        self.dim = terminal.color_system is not None and not terminal.no_color
        self.clock = clock
        self.active = False
        self.draws = 0
        self._text = ""
        self._shown = False  # the status is on the terminal's last line now
        self._drawn_at = float("-inf")
        self._lock = threading.Lock()
        self._owner = Owner()
        self._saved: list[tuple[str, Any]] = []

    def start(self) -> LiveStatus:
        import sys

        self.active = True
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if name == "stdout" and not _isatty(stream):
                continue  # a pipe or a file: the status on the terminal cannot garble it
            self._saved.append((name, stream))
            setattr(sys, name, _LinesAbove(self, stream))
        return self

    def update(self, text: str) -> None:
        """Show ``text`` as the status (called from the sampler's thread)."""
        if not self.active or not self._lock.acquire(blocking=False):
            return  # the target is writing: the next update draws
        try:
            self._text = text
            if self.active:
                self._draw()
        except Exception:  # noqa: BLE001 - a status line must never break the run
            self.active = False
        finally:
            self._lock.release()

    def print_lines(self, text: str, out: Any) -> None:
        """Print whole lines of the target's output (``text`` ends with a newline) to ``out``
        (the target's stdout or stderr) above the status."""
        if not self._owner.here():  # a forked copy of the target: straight through, no status
            out.write(text)
            return
        with self._lock:
            self._clear()
            out.write(text)
            out.flush()
            if self.active and self._text and self.clock() - self._drawn_at >= REDRAW_AFTER:
                self._draw()

    def step_aside(self) -> None:
        """Take the status down for good: the target's output goes straight through from now on."""
        if not self.active:
            return
        self.active = False
        if self._owner.here():
            with self._lock:
                self._clear()

    def stop(self) -> None:
        """Take the status down and give the target's streams back (pending partial lines are written)."""
        import sys

        self.step_aside()  # first: what is pending is written below a cleared status
        for name, original in reversed(self._saved):
            current = getattr(sys, name)
            if isinstance(current, _LinesAbove):
                current.release()
                setattr(sys, name, original)  # only ours: a stream the target installed stays
        self._saved.clear()

    def _draw(self) -> None:
        text = self._text[: self.width - 1]  # never wraps: a wrapped line could not be erased
        self.stream.write("\r" + (f"\x1b[2m{text}\x1b[0m" if self.dim else text) + "\x1b[K")
        self.stream.flush()
        self._shown = True
        self._drawn_at = self.clock()
        self.draws += 1

    def _clear(self) -> None:
        if self._shown:
            self.stream.write(_CLEAR)
            self.stream.flush()
            self._shown = False


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _LinesAbove(io.TextIOBase):
    """A text stream that passes whole lines to :meth:`LiveStatus.print_lines`.

    Anything else (``fileno``, ``encoding``, ``isatty``, ``buffer``) is the wrapped stream's.
    """

    def __init__(self, status: LiveStatus, original: Any) -> None:
        super().__init__()
        self._status = status
        self._original = original
        self._pending = ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return _isatty(self._original)

    def fileno(self) -> int:
        return int(self._original.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self._original, "encoding", "utf-8"))

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not self._status.active:
            return int(self._original.write(text))
        if "\r" in text:  # the target redraws a line of its own: let it have the terminal
            self._status.step_aside()
            self._original.write(self._pending + text)
            self._pending = ""
            return len(text)
        data = self._pending + text
        end = data.rfind("\n") + 1
        self._pending = data[end:]
        if end:
            self._status.print_lines(data[:end], self._original)
        return len(text)

    def flush(self) -> None:
        if self._pending and self._status.active:
            # a partial line flushed on purpose (a prompt, dots of progress): it must show now
            self._status.step_aside()
        if self._pending and not self._status.active:
            self._original.write(self._pending)
            self._pending = ""
        self._original.flush()

    def release(self) -> None:
        """Write what is pending straight to the wrapped stream."""
        if self._pending:
            self._original.write(self._pending)
            self._pending = ""
        try:
            self._original.flush()
        except (OSError, ValueError):
            pass
