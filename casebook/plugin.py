"""The casebook's stories as pytest fixtures (entry point ``pytest11``: ``casebook``).

Reproduce a story from the casebook in your own tests: to see what leakhunt reports for it, to
check that your budgets would catch it, or to teach. Data is generated in ``tmp_path`` while
the fixture is set up, so generating it is not part of the test's measured call.

Parametrise ``casebook_case`` indirectly with case names::

    @pytest.mark.parametrize("casebook_case", ["row_slice"], indirect=True)
    @pytest.mark.memory_budget(rss="30 MB")
    def test_sample_rows(casebook_case):
        casebook_case.leaky()   # keeps 8 batches alive: breaks the budget

``casebook_case.budget`` is the case's own budget as ``memory_budget`` keywords. Or ask for any
case from the ``casebook`` factory (its data is then generated when you call it).

The fixture keeps what each call returned until teardown, as a long-lived results list would:
memory a "retained" case holds is still alive when leakhunt reads the end of the test.

This module imports no case until a fixture is used, so that registering it costs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from casebook import CASE_NAMES, get_case
from casebook.model import SIZES, Case

__all__ = ["PreparedCase", "casebook", "casebook_case"]

# The case's metric -> the memory_budget keyword that limits it.
_KEYWORD = {"retained": "rss", "peak": "peak", "worker_peak": "children"}
_FIXTURE_SIZES = (*SIZES, "test")


class PreparedCase:
    """A case with its data ready: call ``leaky()`` or ``fixed()``, or ``run(variant)``."""

    def __init__(self, case: Case, size: str, workdir: Path, *, warm: bool = True) -> None:
        from leakhunt import settle

        self.case = case
        self.size = size
        self.params: dict[str, Any] = case.prepare(size, workdir)
        self.kept: list[Any] = []
        self._context: Any = None
        if case.context is not None:
            self._context = case.context(self.params)
            self.params.update(self._context.__enter__())
        if warm:
            variants = tuple(v for v in ("leaky", case.best_fix) if v and case.has(v))
            case.warm_up(workdir, variants, self.params)
        # Hand memory that setup and earlier tests freed back to the OS now. Otherwise the
        # test's own allocations reuse it and its RSS growth reads as zero: leakhunt's cheap
        # per-test path does not settle at the start of every test.
        settle()

    @property
    def name(self) -> str:
        return self.case.name

    @property
    def metric(self) -> str:
        return self.case.metric

    @property
    def budget(self) -> dict[str, int]:
        """The case's budget at this size, as ``memory_budget`` keywords (bytes)."""
        limit = self.case.limit(self.params)
        if limit is None:
            raise ValueError(f"case {self.name!r} only judges claims: it has no budget")
        return {_KEYWORD[self.case.metric]: limit}

    def run(self, variant: str) -> Any:
        """Run a variant by name; what it returns stays alive until the fixture's teardown."""
        result = self.case.variant(variant).fn(self.params)
        self.kept.append(result)
        return result

    def leaky(self) -> Any:
        """Run the story's code."""
        return self.run("leaky")

    def fixed(self) -> Any:
        """Run the casebook's recommended fix (the story's own where there is no better one)."""
        best = self.case.best_fix
        if best is None:
            raise ValueError(f"case {self.name!r} only judges claims: it has no fix")
        return self.run(best)

    def release(self) -> None:
        self.kept.clear()
        if self._context is not None:
            context, self._context = self._context, None
            context.__exit__(None, None, None)

    def __repr__(self) -> str:
        return f"<PreparedCase {self.name} size={self.size} metric={self.metric}>"


def _parse_param(param: Any) -> tuple[str, str]:
    if isinstance(param, str):
        return param, "small"
    if isinstance(param, (tuple, list)) and len(param) == 2:
        return str(param[0]), str(param[1])
    raise ValueError(
        f"casebook_case: parametrise with a case name or (name, size), got {param!r}; "
        f"cases: {', '.join(CASE_NAMES)}"
    )


def _prepare(name: str, size: str, workdir: Path) -> PreparedCase:
    if size not in _FIXTURE_SIZES:
        raise ValueError(f"unknown size {size!r} for case {name!r}: use one of {', '.join(SIZES)}")
    return PreparedCase(get_case(name), size, workdir)


@pytest.fixture
def casebook_case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PreparedCase]:
    """A casebook case, data generated: parametrise indirectly with a name or (name, size)."""
    if not hasattr(request, "param"):
        raise pytest.UsageError(
            "casebook_case needs a case: @pytest.mark.parametrize('casebook_case', "
            f"['row_slice'], indirect=True); cases: {', '.join(CASE_NAMES)}"
        )
    name, size = _parse_param(request.param)
    prepared = _prepare(name, size, tmp_path)
    yield prepared
    prepared.release()


@pytest.fixture
def casebook(tmp_path: Path) -> Iterator[Callable[..., PreparedCase]]:
    """A factory: ``casebook("top_n", size="small")`` returns a :class:`PreparedCase`.

    Its data is generated when you call it, so call it from your own fixture if the test's
    memory budget should not include that.
    """
    made: list[PreparedCase] = []

    def make(name: str, size: str = "small") -> PreparedCase:
        workdir = tmp_path / f"{name}-{len(made)}"
        workdir.mkdir()
        prepared = _prepare(name, size, workdir)
        made.append(prepared)
        return prepared

    yield make
    for prepared in made:
        prepared.release()
