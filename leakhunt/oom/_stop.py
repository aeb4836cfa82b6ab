"""Reaching the guarded thread from the watcher: hold it while the diagnosis is taken, then
raise ``MemoryError`` in it when the guard stops the job.

Two ways exist to make another thread do something, and the guard uses the first where it can:

- **a signal to the guarded thread, with a handler of ours** (``signal.pthread_kill``). Python
  runs signal handlers in the main thread only, so this needs the guarded thread to be the main
  thread and the handler installed from it. It is the robust way: a signal also interrupts a
  main thread blocked in a system call or a lock (waiting for ``future.result()`` while worker
  threads allocate, ``time.sleep``, a socket read), which an asynchronous exception never does
  until the call returns. And the handler can *wait*: while the watcher takes the diagnosis,
  the guarded thread sits in the handler (its frames intact, the GIL free for the watcher),
  so the job cannot grow through that thread meanwhile and the diagnosis shows one moment.
  The wait is bounded (:data:`HOLD_TIMEOUT`), then the handler returns, or raises the stop.
  The signal is a real-time one (``SIGRTMIN + 2`` and up) whose handler is the default, so no
  handler of the user's is replaced; one the user installs later on it is never called by us
  (the guard checks before sending).
- **``PyThreadState_SetAsyncExc``** through ctypes, for any other thread (a guard entered in a
  worker thread), or when no signal is free: the exception is raised when that thread next
  runs Python code; that thread is not held meanwhile.

A stop is only raised while the guard is *armed* (front ends arm it around the user's code:
a test's phases, a script, a block), so it never lands in leakhunt's or pytest's own
bookkeeping. A forked child gets the default handler back at once (``os.register_at_fork``):
the child runs the user's code untouched.
"""

from __future__ import annotations

import os
import signal
import threading
import weakref
from typing import Any

__all__ = ["HOLD_TIMEOUT", "Interrupter"]

#: The longest the guarded thread is held while a diagnosis is taken (seconds).
HOLD_TIMEOUT = 60.0

_installed: weakref.WeakSet[Interrupter] = weakref.WeakSet()


def _reset_in_child() -> None:
    """After a fork, in the child: our handlers go back to the default they replaced."""
    for interrupter in list(_installed):
        if interrupter.signum is not None and signal.getsignal(interrupter.signum) == interrupter._handle:
            signal.signal(interrupter.signum, signal.SIG_DFL)
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


class Interrupter:
    """Holds and stops ``thread`` (default: the thread that makes it)."""

    def __init__(self, thread: threading.Thread | None = None) -> None:
        self.thread = thread or threading.current_thread()
        self.pid = os.getpid()
        self.armed = False
        self.signum: int | None = None
        self._released = threading.Event()
        self._released.set()
        self._message: str | None = None
        self.raised: BaseException | None = None  # the exception raised through the signal
        self.raised_type: type[BaseException] | None = None  # the class raised asynchronously

    @property
    def how(self) -> str:
        """``signal`` (held during a diagnosis, interruptible when blocked) or ``async``."""
        return "signal" if self.signum is not None else "async"

    def install(self) -> Interrupter:
        main = threading.main_thread()
        if self.thread is main and threading.current_thread() is main:
            signum = _free_signal()
            if signum is not None:
                signal.signal(signum, self._handle)
                self.signum = signum
                _installed.add(self)
        return self

    def uninstall(self) -> None:
        self.armed = False
        self._message = None
        self._released.set()
        if self.signum is not None and os.getpid() == self.pid and \
                threading.current_thread() is threading.main_thread():
            if signal.getsignal(self.signum) == self._handle:
                signal.signal(self.signum, signal.SIG_DFL)
            self.signum = None
        _installed.discard(self)

    def _ours(self) -> bool:
        return (self.signum is not None and os.getpid() == self.pid and self.thread.is_alive()
                and signal.getsignal(self.signum) == self._handle)

    def hold(self) -> None:
        """Ask the guarded thread to wait in our handler until :meth:`release` (signal only)."""
        if self._ours():
            assert self.signum is not None and self.thread.ident is not None
            self._released.clear()
            signal.pthread_kill(self.thread.ident, self.signum)

    def release(self, stop: str | None = None) -> bool:
        """Let the guarded thread go on; with ``stop``, it raises ``MemoryError(stop)`` first.
        Returns whether a stop was asked for (False when not armed)."""
        asked = stop is not None and self.armed and os.getpid() == self.pid and self.thread.is_alive()
        if not asked:
            self._released.set()
            return False
        assert stop is not None
        if self._ours():
            self._message = stop
            if self._released.is_set():  # nobody waits: send the signal that raises it
                signal.pthread_kill(self.thread.ident, self.signum)  # type: ignore[arg-type]
            self._released.set()
            return True
        self._released.set()
        return self._async(stop)

    def is_ours(self, exc: BaseException | None) -> bool:
        """Is ``exc`` the MemoryError this interrupter raised?"""
        if exc is None:
            return False
        return exc is self.raised or (self.raised_type is not None and isinstance(exc, self.raised_type))

    def _handle(self, signum: int, frame: Any) -> None:
        if os.getpid() != self.pid:
            return
        self._released.wait(HOLD_TIMEOUT)
        message, self._message = self._message, None
        if message is None or not self.armed:
            return  # held for a diagnosis, or a stale signal: the guarded code goes on
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
