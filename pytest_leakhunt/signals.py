"""SIGINT and SIGTERM during a session: the report says how the session ended, and is written.

pytest turns the first Ctrl-C into a KeyboardInterrupt and reports the session as interrupted,
but a second Ctrl-C that lands while pytest handles the first skips that bookkeeping (issue 13:
a report of 9 of 30 tests said ``"interrupted": false``), and SIGTERM (a CI timeout, ``kill``,
a container stop) ends the process before any ``finally`` runs: no report, and an older one
left in place looking current. So while a session that writes a report runs:

- every SIGINT is remembered here, then handled as before (the handler that was installed,
  Python's KeyboardInterrupt by default): whatever pytest manages to record, the report knows;
- SIGTERM, when nobody else handles it, ends the session as Ctrl-C does (``pytest.exit``):
  pytest's summary, JUnit XML and the report are written, the report says it was terminated,
  and the exit status is 143 (128 + 15, what a shell reports for a SIGTERM);
- while the report file itself is being written (milliseconds), either signal waits until the
  file is complete, then takes effect.

Handlers are installed only from the main thread, and only over Python's default handlers;
the previous ones are put back when the session ends.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import pytest

__all__ = ["SessionSignals", "TERM_EXIT"]

#: Exit status of a session ended by SIGTERM: what a shell shows for a process it killed.
TERM_EXIT = 128 + signal.SIGTERM


class SessionSignals:
    """Installs the handlers; ``received`` lists the signals seen (names, in order)."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self._previous: dict[int, Any] = {}
        self._deferring = False
        self._deferred: list[int] = []

    def install(self) -> SessionSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        if callable(signal.getsignal(signal.SIGINT)):  # Python's KeyboardInterrupt, or someone's handler
            self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._handle)
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:  # a handler someone installed is left alone
            self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._handle)
        return self

    def uninstall(self) -> None:
        for signum, previous in self._previous.items():
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, previous)
        self._previous.clear()

    @property
    def terminated(self) -> bool:
        return "SIGTERM" in self.received

    def describe(self) -> str | None:
        """How the signals ended the session, for the report: None when none came."""
        if not self.received:
            return None
        name = "SIGTERM" if self.terminated else "SIGINT"
        how = "terminated by SIGTERM" if self.terminated else "interrupted by SIGINT (Ctrl-C)"
        times = self.received.count(name)
        return how + (f", received {times} times" if times > 1 else "")

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold SIGINT and SIGTERM until the block ends (a report file being written)."""
        if self._deferring:
            yield
            return
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        held, self._deferred = self._deferred, []
        if held:
            self._act(held[0], None)

    def _handle(self, signum: int, frame: Any) -> None:
        self.received.append(signal.Signals(signum).name)
        if self._deferring:
            self._deferred.append(signum)
            return
        self._act(signum, frame)

    def _act(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGTERM:
            # pytest.exit's exception: pytest ends the session as for Ctrl-C (its summary is only
            # printed for its own exit statuses); the plugin sets TERM_EXIT once it is printed
            raise pytest.exit.Exception("leakhunt: terminated by SIGTERM; the session's figures are written")
        previous: Callable[[int, Any], Any] | Any = self._previous.get(signum, signal.default_int_handler)
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt
