"""The casebook's documented leaks as pytest fixtures.

Reproduce a leak from the casebook in your own tests: to see what leakhunt reports for it, to
check that your budgets would catch it, or to teach. Data is generated in ``tmp_path`` while
the fixture is set up, so generating it is not part of the test's measured call.

Parametrise ``casebook_case`` indirectly with case names::

    @pytest.mark.parametrize("casebook_case", ["row_slice"], indirect=True)
    @pytest.mark.memory_budget(rss="30 MB")
    def test_sample_rows(casebook_case):
        casebook_case.leaky()   # keeps 8 batches alive: breaks the budget

``casebook_case.budget`` is the case's own budget, for ``memory_budget(**casebook_case.budget)``.
Or ask for any case from the ``casebook`` factory (its data is then generated when you call it).

The fixture keeps what each call returned until teardown, as a long-lived results list would:
memory a "retained" case holds is still alive when leakhunt reads the end of the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from casebook import CASE_NAMES, SIZES, get_case
from casebook._case import Case

__all__ = ["PreparedCase", "casebook", "casebook_case"]


class PreparedCase:
    """A case with its data ready: call ``leaky()`` or ``fixed()`` (or an alternative)."""

    def __init__(self, case: Case, size: str, workdir: Path, *, warm: bool = True) -> None:
        self.case = case
        self.size = size
        self.params: dict[str, Any] = case.prepare(size, workdir)
        self.kept: list[Any] = []
        if warm:
            case.warm_up(workdir)
        # Hand memory that setup and earlier tests freed back to the OS now. Otherwise the
        # test's own allocations reuse it and its RSS growth reads as zero: leakhunt's cheap
        # per-test path does not settle at the start of every test.
        from leakhunt.settle import settle

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
        return self.case.budget(self.params)

    def run(self, variant: str) -> Any:
        result = self.case.variant(variant)(self.params)
        self.kept.append(result)
        return result

    def leaky(self) -> Any:
        """Run the leaky version; what it returns stays alive until the fixture's teardown."""
        return self.run("leaky")

    def fixed(self) -> Any:
        """Run the fixed version; what it returns stays alive until the fixture's teardown."""
        return self.run("fixed")

    def release(self) -> None:
        self.kept.clear()

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
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r} for case {name!r}: use one of {', '.join(SIZES)}")
    return PreparedCase(get_case(name), size, workdir)


@pytest.fixture
def casebook_case(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
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
def casebook(tmp_path: Path) -> Any:
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

    factory: Callable[..., PreparedCase] = make
    yield factory
    for prepared in made:
        prepared.release()
