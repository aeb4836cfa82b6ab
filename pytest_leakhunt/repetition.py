"""A test's body once more: a hunt's repetitions, and the second call that explains a broken budget.

The library repeats a callable and notes an ``Exception`` from it as the reason a repetition
failed; the plugin gives it :func:`body`, which runs the test as its own call did:

- with the same fixture values; a unittest test against a private result, so that a failing
  repetition raises its own exception and never reaches the test's report;
- a doctest with the globals it started with: pytest's doctest runner clears them after a run,
  so a repeated doctest failed on its first name (issue 21: the explanation showed an internal
  ``_RepetitionFailed: UnexpectedException``) - :func:`prepare` keeps a copy before the call;
- without showing the repetitions' warnings again: pytest shows those of the test's own call,
  once (issue 21: ``--leak-hunt`` re-emitted each repetition's warnings, 21 -> 294 on pyarrow's
  tests);
- pytest's outcomes (``pytest.fail``, ``skip``, ``xfail``: BaseExceptions the library rightly
  never catches) become plain exceptions of the same name (:class:`Failed`, :class:`Skipped`,
  :class:`XFailed`), so the note reads ``Skipped: no network``;
- ``pytest.exit()`` stops the session, as in the test's own call: the library would note an
  ``Exception``, so it travels as :class:`StopSession` (a BaseException) and the plugin raises
  the original again (:func:`reraise_stop`). A KeyboardInterrupt - Ctrl-C, or SIGTERM's
  :class:`~pytest_leakhunt.signals.SessionTerminated` - passes through untouched.
"""

from __future__ import annotations

import contextlib
import unittest
import warnings
from typing import Any, Callable, Iterator

import pytest

__all__ = ["Failed", "Skipped", "StopSession", "XFailed", "body", "prepare", "reraise_stop"]

_GLOBALS = pytest.StashKey[dict]()


class Failed(Exception):
    """``pytest.fail()`` in a repetition."""


class XFailed(Failed):
    """``pytest.xfail()`` in a repetition."""


class Skipped(Exception):
    """``pytest.skip()`` in a repetition."""


class StopSession(BaseException):
    """``pytest.exit()`` in a repetition, on its way past the library to the plugin."""

    def __init__(self, exit: BaseException) -> None:
        super().__init__(str(exit))
        self.exit = exit


_PLAIN: tuple[tuple[type[BaseException], type[Exception]], ...] = (
    (pytest.xfail.Exception, XFailed), (pytest.fail.Exception, Failed), (pytest.skip.Exception, Skipped))


def prepare(item: pytest.Item) -> None:
    """Before the test's own call: keep what the call changes and a repetition needs (a
    doctest's globals)."""
    dtest = getattr(item, "dtest", None)
    globs = getattr(dtest, "globs", None)
    if isinstance(globs, dict):
        item.stash[_GLOBALS] = dict(globs)


def body(item: pytest.Item) -> Callable[[], None]:
    """A callable that runs the test body once more (see the module's docstring)."""
    run = _runner(item)

    def call() -> None:
        with _quiet_warnings(), _plain_outcomes():
            run()
    return call


def reraise_stop(stop: StopSession) -> None:
    """Raise the ``pytest.exit()`` that :class:`StopSession` carried past the library."""
    raise stop.exit.with_traceback(stop.exit.__traceback__)


def _runner(item: pytest.Item) -> Callable[[], None]:
    instance = getattr(item, "instance", None)
    if isinstance(instance, unittest.TestCase):
        def run_testcase() -> None:
            result = _FirstProblem()
            instance.run(result)
            if result.problem is not None:
                raise result.problem
        return run_testcase
    saved = item.stash.get(_GLOBALS, None)
    if saved is not None:
        def run_doctest() -> None:
            globs = item.dtest.globs  # type: ignore[attr-defined]
            globs.clear()
            globs.update(saved)
            item.runtest()
        return run_doctest
    return item.runtest


class _FirstProblem(unittest.TestResult):
    """A unittest result that keeps the first error or failure itself (not its text)."""

    def __init__(self) -> None:
        super().__init__()
        self.problem: BaseException | None = None

    def addError(self, test: Any, err: Any) -> None:
        self._keep(err)

    def addFailure(self, test: Any, err: Any) -> None:
        self._keep(err)

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        if err is not None:
            self._keep(err)

    def _keep(self, err: Any) -> None:
        if self.problem is None:
            self.problem = err[1]


@contextlib.contextmanager
def _quiet_warnings() -> Iterator[None]:
    """The warnings of a repetition are recorded here and dropped; the filters still apply
    (a warning turned into an error still raises)."""
    with warnings.catch_warnings(record=True):
        yield


@contextlib.contextmanager
def _plain_outcomes() -> Iterator[None]:
    try:
        yield
    except pytest.exit.Exception as exc:
        raise StopSession(exc) from None
    except (pytest.fail.Exception, pytest.skip.Exception) as exc:
        plain = next(cls for outcome, cls in _PLAIN if isinstance(exc, outcome))
        raise plain(str(exc)) from None
