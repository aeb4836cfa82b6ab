"""SIGINT and SIGTERM during a session: the report says how the session ended, and is written.

pytest turns the first Ctrl-C into a KeyboardInterrupt and reports the session as interrupted,
but a second Ctrl-C that lands while pytest handles the first skips that bookkeeping (issue 13:
a report of 9 of 30 tests said ``"interrupted": false``), and SIGTERM (a CI timeout, ``kill``,
a container stop) ends the process before any ``finally`` runs: no report, and an older one
left in place looking current. So while a session that writes a report runs:

- every SIGINT is remembered here, then handled as before (the handler that was installed,
  Python's KeyboardInterrupt by default): whatever pytest manages to record, the report knows;
- SIGTERM, when nobody else handles it, ends the session as Ctrl-C does: pytest's summary,
  JUnit XML and the report are written, the report says it was terminated, and the exit status
  is 143 (128 + 15, what a shell reports for a SIGTERM). The handler raises
  :class:`SessionTerminated`, a ``KeyboardInterrupt``: no ``except Exception`` - the test's,
  the library's, the plugin's around a hunt's repetitions or a second call - can swallow it
  (issue 21: pytest's ``Exit`` is an ``Exception``, and a SIGTERM inside ``--leak-hunt``'s
  repetitions was recorded as "not hunted" while the session ran on until SIGKILL);
- while the report file itself is being written (milliseconds), either signal waits until the
  file is complete, then takes effect.

Handlers are installed only from the main thread, and only over Python's default handlers;
the previous ones are put back when the session ends. They act only in the process that
installed them (:class:`leakhunt.process_local.LocalHandler`): a forked child - a
multiprocessing worker - gets the previous disposition back, so ``Pool.terminate()`` and
``Process.terminate()`` end it as they would without leakhunt. Our frames are hidden from
pytest's traceback (``__tracebackhide__``): a Ctrl-C points at the user's line.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from leakhunt.process_local import LocalHandler

__all__ = ["SessionSignals", "SessionTerminated", "TERM_EXIT"]

#: Exit status of a session ended by SIGTERM: what a shell shows for a process it killed.
TERM_EXIT = 128 + signal.SIGTERM


class SessionTerminated(KeyboardInterrupt):
    """SIGTERM: pytest ends the session as for Ctrl-C (its runner re-raises a KeyboardInterrupt
    from any test phase), and the plugin makes the exit status :data:`TERM_EXIT`."""


class SessionSignals:
    """Installs the handlers; ``received`` lists the signals seen (names, in order)."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self._handlers: dict[int, LocalHandler] = {}
        self._deferring = False
        self._deferred: list[int] = []

    def install(self) -> SessionSignals:
        wanted = []
        if callable(signal.getsignal(signal.SIGINT)):  # Python's KeyboardInterrupt, or someone's handler
            wanted.append(signal.SIGINT)
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:  # a handler someone installed is left alone
            wanted.append(signal.SIGTERM)
        for signum in wanted:
            handler = LocalHandler(signum, self._handle)
            if handler.install():  # (nothing off the main thread)
                self._handlers[signum] = handler
        return self

    def uninstall(self) -> None:
        for handler in self._handlers.values():
            handler.uninstall()
        self._handlers.clear()

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
        """Hold SIGINT and SIGTERM until the block ends (the report file being written, at the
        end of the session). A SIGTERM held there has nothing left to stop: the session ends as
        it was ending, with exit status :data:`TERM_EXIT` (``terminated``); raised there, it
        would escape pytest's end of session as an uncaught KeyboardInterrupt."""
        if self._deferring:
            yield
            return
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        held, self._deferred = self._deferred, []
        if held and signal.SIGTERM not in held:
            self._act(held[0], None)

    def _handle(self, signum: int, frame: Any) -> None:
        __tracebackhide__ = True
        self.received.append(signal.Signals(signum).name)
        if self._deferring:
            self._deferred.append(signum)
            return
        self._act(signum, frame)

    def _act(self, signum: int, frame: Any) -> None:
        __tracebackhide__ = True
        if signum == signal.SIGTERM:
            # pytest ends the session as for Ctrl-C (its summary is only printed for its own exit
            # statuses); the plugin sets TERM_EXIT once it is printed
            raise SessionTerminated("leakhunt: terminated by SIGTERM; the session's figures are written")
        handler = self._handlers.get(signum)
        previous: Callable[[int, Any], Any] | Any = handler.previous if handler else signal.default_int_handler
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt
