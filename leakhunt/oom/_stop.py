"""Stopping the guarded thread from the watcher: a ``MemoryError`` raised in it, not a kill.

Two ways exist to raise an exception in another thread, and the guard uses the first where it
can:

- **a signal to the guarded thread, whose handler raises** (``signal.pthread_kill``). Python
  runs signal handlers in the main thread only, so this needs the guarded thread to be the main
  thread and a handler installed from it. It is the robust way: a signal also interrupts a
  main thread blocked in a system call or a lock (waiting for ``future.result()`` while worker
  threads allocate, ``time.sleep``, a socket read), which an asynchronous exception never does
  until the call returns. The signal is a real-time one (``SIGRTMIN`` and up) whose handler is
  the default, so no handler of the user's is replaced; a handler the user installs later on
  the same signal is never called by us (the guard checks before sending).
- **``PyThreadState_SetAsyncExc``** through ctypes, for any other thread (a guard entered in a
  worker thread), or when no signal is free: the exception is raised when that thread next
  runs Python code.

Either way the stop is only raised while the guard is *armed* (a front end arms it around the
user's code: a test, a script, a block), so it never lands in leakhunt's own bookkeeping.
A forked child gets the default handler back at once: the child runs the user's code untouched.
"""

from __future__ import annotations

import os
import signal
import threading
import weakref
from typing import Any

__all__ = ["Stopper"]

_installed: weakref.WeakSet[Stopper] = weakref.WeakSet()


def _reset_in_child() -> None:
    """After a fork, in the child: our handlers go back to the default they replaced."""
    for stopper in list(_installed):
        if stopper.signum is not None and signal.getsignal(stopper.signum) == stopper._handle:
            signal.signal(stopper.signum, signal.SIG_DFL)
    _installed.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)


def _free_signal() -> int | None:
    """A real-time signal nobody handles (its handler is the default), or None."""
    low, high = getattr(signal, "SIGRTMIN", None), getattr(signal, "SIGRTMAX", None)
    if low is None or high is None:
        return None
    for signum in range(int(low) + 2, int(high) + 1):  # the first two are the most often taken
        try:
            if signal.getsignal(signum) == signal.SIG_DFL:
                return signum
        except (ValueError, OSError):
            continue
    return None


class Stopper:
    """Raises ``MemoryError(message)`` in ``thread`` (default: the thread that makes it)."""

    def __init__(self, thread: threading.Thread | None = None) -> None:
        self.thread = thread or threading.current_thread()
        self.pid = os.getpid()
        self.armed = False
        self.signum: int | None = None
        self.message: str | None = None
        self.raised: BaseException | None = None  # the exception raised through the signal
        self.raised_type: type[BaseException] | None = None  # the class raised asynchronously
        self.how = "async"  # "signal" or "async": how a stop is delivered

    def install(self) -> Stopper:
        main = threading.main_thread()
        if self.thread is main and threading.current_thread() is main:
            signum = _free_signal()
            if signum is not None:
                signal.signal(signum, self._handle)
                self.signum = signum
                self.how = "signal"
                _installed.add(self)
        return self

    def uninstall(self) -> None:
        self.armed = False
        self.message = None
        if self.signum is not None and os.getpid() == self.pid and \
                threading.current_thread() is threading.main_thread():
            if signal.getsignal(self.signum) == self._handle:
                signal.signal(self.signum, signal.SIG_DFL)
            self.signum = None
        _installed.discard(self)

    def fire(self, message: str) -> bool:
        """Ask the thread to raise; False when not armed (nothing is raised)."""
        if not self.armed or os.getpid() != self.pid or not self.thread.is_alive():
            return False
        self.message = message
        if self.signum is not None and signal.getsignal(self.signum) == self._handle:
            assert self.thread.ident is not None
            signal.pthread_kill(self.thread.ident, self.signum)
            return True
        return self._async(message)

    def is_ours(self, exc: BaseException | None) -> bool:
        """Is ``exc`` the MemoryError this stopper raised?"""
        if exc is None:
            return False
        return exc is self.raised or (self.raised_type is not None and isinstance(exc, self.raised_type))

    def _handle(self, signum: int, frame: Any) -> None:
        message, self.message = self.message, None
        if os.getpid() != self.pid or message is None or not self.armed:
            return  # a stale signal: the guarded code has ended
        exc = MemoryError(message)
        self.raised = exc
        raise exc

    def _async(self, message: str) -> bool:
        import ctypes

        def init(exc: BaseException, *args: Any) -> None:
            MemoryError.__init__(exc, *(args or (message,)))

        # Shown as "MemoryError: ..." in tracebacks, as the signal's exception is.
        cls = type("MemoryError", (MemoryError,), {"__init__": init, "__module__": "builtins"})
        self.raised_type = cls
        assert self.thread.ident is not None
        done = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread.ident), ctypes.py_object(cls))
        return bool(done == 1)
