"""Signal handlers and end-of-run work that act only in the process that installed them.

A process made by ``fork`` (``os.fork``, multiprocessing's ``"fork"`` start method, a pool's
workers) inherits its parent's Python signal handlers and at-exit callbacks. A handler of
leakhunt's there runs inside the user's code: a SIGTERM handler that raises turned
``Pool.terminate()`` into an exception inside a worker's task, so the worker never ended and
the pool hung (issue 21: a pool's ``map_async(...).get(timeout=...)`` hung a test forever), and
``Process.terminate()`` gave exit status 1 instead of ``-SIGTERM``. So:

- :class:`LocalHandler` remembers the process that installed it. In a forked child the
  disposition that was there before is put back at the fork (``os.register_at_fork``), so the
  child runs the user's code as it would without leakhunt; should the signal come before that
  (or through a handler that chains to ours), the handler acts as the previous disposition
  would: the default action (SIGTERM ends the process), ignored, or the previous handler.
- :class:`Owner` says whether the current process is the one that made it, for work that ends
  a run (a summary, a report file) and must not be done again by a forked copy of the process.

(The at-exit restore of the kernel's high-water mark is the probes' own: a forked child forgets
the parent's resets at the fork, :func:`leakhunt.probes._forget_resets`.)
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Callable

__all__ = ["LocalHandler", "Owner", "act_as"]

Handler = Callable[[int, Any], Any]


class Owner:
    """The process that made this object; :meth:`here` is False in a forked copy of it."""

    __slots__ = ("pid",)

    def __init__(self) -> None:
        self.pid = os.getpid()

    def here(self) -> bool:
        return os.getpid() == self.pid


class LocalHandler:
    """A signal handler that runs ``handler(signum, frame)`` only in the installing process.

    ``install()`` replaces the current disposition (it returns False, installing nothing, off
    the main thread, where Python allows no handler); ``uninstall()`` puts the previous one back
    if ours is still the installed one. ``previous`` is the disposition ours replaced.
    """

    def __init__(self, signum: int, handler: Handler) -> None:
        self.signum = signum
        self.handler = handler
        self.previous: Any = None
        self.owner: Owner | None = None
        self.receive: Handler = self._receive  # one bound method: signal.getsignal() returns it

    def install(self) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return False
        self.previous = signal.signal(self.signum, self.receive)
        self.owner = Owner()
        _installed.append(self)
        return True

    @property
    def installed(self) -> bool:
        """Whether ours is the handler in place now."""
        return signal.getsignal(self.signum) == self.receive

    def uninstall(self) -> None:
        if self in _installed:
            _installed.remove(self)
        if self.owner is not None and self.owner.here() and self.installed:
            signal.signal(self.signum, _settable(self.previous))

    def _receive(self, signum: int, frame: Any) -> None:
        __tracebackhide__ = True  # pytest shows the user's line, not ours
        if self.owner is not None and self.owner.here():
            self.handler(signum, frame)
        else:
            self._forget()
            act_as(self.previous, signum, frame)

    def _forget(self) -> None:
        """In a forked child: the previous disposition back, where ours is still in place."""
        try:
            if self.installed:
                signal.signal(self.signum, _settable(self.previous))
        except (ValueError, OSError):  # not the main thread: the handler itself acts as the previous
            pass


def act_as(disposition: Any, signum: int, frame: Any) -> None:
    """Do what ``disposition`` (a handler, ``SIG_IGN``, ``SIG_DFL``) would do with the signal."""
    __tracebackhide__ = True
    if disposition == signal.SIG_IGN:
        return
    if callable(disposition):
        disposition(signum, frame)
        return
    # SIG_DFL, or None (a handler installed outside Python, which cannot be called from here)
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)  # delivered to this thread before it returns: SIGTERM ends the process


def _settable(disposition: Any) -> Any:
    """``signal.signal`` takes a handler, SIG_IGN or SIG_DFL; None (set outside Python) is SIG_DFL."""
    return signal.SIG_DFL if disposition is None else disposition


_installed: list[LocalHandler] = []


def _after_fork_in_child() -> None:
    for handler in _installed:
        handler._forget()
    _installed.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
