"""Every verdict of the casebook comes out the other way with its flip, measured.

Each case is measured once at its "test" size (one run of each variant), then with every
claim's flip (the variants its rule reads replaced, or parameters changed) and with the case's
own flip; each verdict must be decided both ways and differ. A claim judged on time may be
inconclusive as measured here, from one run of each variant: wall time, which other work on a
shared machine moves by up to 160% (``casebook.verdicts.TIME_SPREAD``), and CPU time, which one
run of a second or less moves further than the spread measured between medians of three runs;
its flip must still come out decided. A
claim whose variant needs a library that is not installed is skipped, and says which.
"""

from __future__ import annotations

import pytest

from casebook import CASE_NAMES, get_case
from casebook.flips import check_flips

DECIDED = ("holds", "does not hold", "partly")


@pytest.mark.parametrize("name", CASE_NAMES)
def test_every_verdict_comes_out_the_other_way(name: str) -> None:
    case = get_case(name)
    outcomes = check_flips(case, "test", jobs=1)
    missing = [o.skipped for o in outcomes if o.skipped and "not installed" in o.skipped]
    wrong = []
    for o in outcomes:
        what = "the case's verdict" if o.claim is None else repr(o.claim.text)
        if o.skipped and "not installed" in o.skipped:
            continue
        if o.claim is None:
            decided = "inconclusive" not in (o.before, o.after)
        else:
            decided = (o.before in DECIDED or (o.timed and o.before == "inconclusive")) and o.after in DECIDED
        if not decided or o.before == o.after:
            wrong.append(f"{what}: {o.before} -> {o.after}\n  before: {o.before_evidence}\n"
                         f"  after: {o.after_evidence}")
    assert not wrong, "\n".join(wrong)
    assert len(outcomes) == len(case.claims) + (1 if case.expect != "claims" else 0)
    if missing:
        pytest.skip(f"{len(missing)} claim(s) not measured here: {missing[0]}")
