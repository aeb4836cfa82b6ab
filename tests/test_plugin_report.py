"""The test report's model and renderers (leakhunt.report), without pytest runs: data in, lines out."""

from __future__ import annotations

import io
import json
import os
import re

import pytest

import leakhunt.report
from leakhunt.report import (
    SCHEMA,
    SCHEMA_VERSION,
    HtmlReport,
    JsonReport,
    SessionFigures,
    TestRecord,
    TestReport,
    TextReport,
    write_report,
)

MIB = 1024 * 1024


def sample() -> TestReport:
    records = (
        TestRecord("t.py::test_keeps", "passed", rss_growth=30 * MIB, peak=31 * MIB, settled=True),
        TestRecord("t.py::test_peak", "failed", verdict="over_budget", peak=120 * MIB, rss_growth=0,
                   settled=True, budget={"peak": 50_000_000},
                   violations=[{"figure": "peak", "value": 120 * MIB, "limit": 50_000_000}]),
        TestRecord("t.py::test_leaks", "failed", verdict="leak", rss_growth=200 * 1024,
                   peak=200 * 1024, leak_per_call=200 * 1024, leak_accounting="traced"),
        TestRecord("t.py::test_cache", "passed", verdict="warmup_or_bounded_cache", rss_growth=4096, peak=4096,
                   note="warm-up or bounded cache: memory grew at first, then stopped (not a leak)"),
        TestRecord("t.py::test_<script>", "passed", verdict="opted_out"),
    )
    sessions = (SessionFigures(start_rss=100 * MIB, end_rss=140 * MIB, peak_rss=230 * MIB, worker="gw0"),
                SessionFigures(start_rss=100 * MIB, end_rss=101 * MIB, peak_rss=150 * MIB, worker="gw1"))
    return TestReport(records=records, sessions=sessions, settings={"report": True}, created="now", version="0.1.0")


def test_public_surface() -> None:
    assert sorted(leakhunt.report.__all__) == leakhunt.report.__all__
    assert set(leakhunt.report.__all__) == {
        "FORMATS", "HtmlReport", "JsonReport", "ReportPath", "ReportPathError", "SCHEMA", "SCHEMA_VERSION",
        "SessionFigures", "TEST_REPORT_FORMATS", "TestRecord", "TestReport", "TextReport", "check_report_path",
        "write_atomic", "write_report"}


def test_record_round_trips_through_user_properties() -> None:
    record = sample().records[1]
    props = record.to_properties()
    assert ("leakhunt.verdict", "over_budget") in props
    assert all(value is not None for _, value in props)  # unknown figures are left out
    assert dict(props)["leakhunt.budget"] == '{"peak": 50000000}'
    assert TestRecord.from_properties([("user", 1), *props]) == record
    assert TestRecord.from_properties([("user", 1)]) is None


def test_session_aggregates() -> None:
    report = sample()
    assert report.growth == 41 * MIB  # summed over the processes
    assert report.peak == 130 * MIB  # the highest of the processes
    assert report.peak_rss == 230 * MIB  # the session's true peak, resident
    assert report.complete and report.completeness() is None
    assert [r.nodeid for r in report.top_by_peak(2)] == ["t.py::test_peak", "t.py::test_keeps"]
    assert [r.nodeid for r in report.stayed_up()] == ["t.py::test_keeps", "t.py::test_leaks"]
    assert report.verdict_counts()["opted_out"] == 1


def test_text_report_lines() -> None:
    out = io.StringIO()
    TextReport(sample(), top=2).render(out)
    lines = out.getvalue().splitlines()
    assert lines[0] == ("session: peak 130.0 MiB above start (RSS 230.0 MiB), growth +41.0 MiB "
                        "over 5 tests (2 processes)")
    assert "top 2 by peak" in lines and "top 2 by RSS growth" in lines
    # nothing was traced and pyarrow was not in use: those columns say nothing and are left out
    assert any(re.fullmatch(r" *peak +rss growth +verdict +test", line) for line in lines)
    assert any(re.fullmatch(r" *120\.0 MiB +0 B +over_budget +t\.py::test_peak", line) for line in lines)
    assert any(re.fullmatch(r" *\+200\.0 KiB/call +leak +t\.py::test_leaks", line) for line in lines)
    assert any("warm-up or bounded cache" in line for line in lines)
    assert max(len(line) for line in lines) <= 100


def test_text_report_shows_traced_and_arrow_columns_when_measured() -> None:
    report = TestReport(records=(TestRecord("t.py::test_a", "passed", peak=MIB, rss_growth=MIB, settled=True,
                                            traced_growth=512 * 1024, arrow_growth=0),))
    out = io.StringIO()
    TextReport(report).render(out)
    assert re.search(r"peak +rss growth +traced +arrow +verdict +test", out.getvalue())


def test_text_report_fits_the_width_and_keeps_the_test_name() -> None:
    long_id = "tests/" + "deeply/nested/" * 8 + "test_module.py::test_the_name_that_matters[case-1]"
    report = TestReport(records=(TestRecord(long_id, "passed", peak=3 * MIB, rss_growth=2 * MIB, settled=True),))
    for width in (80, 100, 200):
        out = io.StringIO()
        TextReport(report, width=width).render(out)
        lines = out.getvalue().splitlines()
        assert max(len(line) for line in lines) <= min(width, 100)
        assert any(line.endswith("test_module.py::test_the_name_that_matters[case-1]") and "\u2026" in line
                   for line in lines)


def test_text_report_marks_verdicts_for_the_terminal_writer() -> None:
    written: list[tuple[str, dict[str, bool]]] = []
    TextReport(sample(), top=2).write(lambda text, **markup: written.append((text, markup)))
    styled = {text.strip(): markup for text, markup in written if markup}
    assert styled["over_budget"] == {"red": True, "bold": True}
    assert styled["1 warmup_or_bounded_cache"] == {"yellow": True}
    assert styled["1 leak"] == {"red": True, "bold": True}  # in the verdict counts line
    assert "".join(text for text, _ in written) == _plain(sample())


def _plain(report: TestReport) -> str:
    out = io.StringIO()
    TextReport(report, top=2).render(out)
    return out.getvalue()


def test_json_report_is_versioned_and_reads_back() -> None:
    out = io.StringIO()
    JsonReport(sample()).render(out)
    data = json.loads(out.getvalue())
    assert (data["schema"], data["schema_version"]) == (SCHEMA, SCHEMA_VERSION)
    assert data["session"]["processes"][0]["growth"] == 40 * MIB
    assert data["tests"][2]["leak_per_call"] == 200 * 1024
    again = TestReport.from_dict(data)
    assert again.records == sample().records
    with pytest.raises(ValueError, match="schema_version 99"):
        TestReport.from_dict({**data, "schema_version": 99})
    with pytest.raises(ValueError, match="not a leakhunt test report"):
        TestReport.from_dict({"schema": "other"})


def test_html_report_is_self_contained_and_escaped() -> None:
    pytest.importorskip("jinja2")
    pytest.importorskip("matplotlib")
    out = io.StringIO()
    HtmlReport(sample()).render(out)
    page = out.getvalue()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "test_&lt;script&gt;" in page and "test_<script>" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "@import" not in page and not re.search(r"url\((?!#)", page)
    # one row per test in the sortable table, the two charts, the failing tests listed first
    assert page.count("<tr data-test=") == 5
    assert 'id="leakhunt-top-tests"' in page and 'id="leakhunt-distribution"' in page
    assert page.index('id="failures"') < page.index('id="every-test"')
    assert 'href="#t-t-py-test_peak"' in page and 'id="t-t-py-test_peak"' in page


def test_write_report_is_atomic_and_picks_the_format(tmp_path: pytest.TempPathFactory) -> None:
    pytest.importorskip("jinja2")
    target = tmp_path / "sub" / "r.json"  # type: ignore[operator]
    write_report(sample(), target)
    assert json.loads(target.read_text())["schema"] == SCHEMA
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    write_report(sample(), target.with_suffix(".html"))
    assert target.with_suffix(".html").read_text().startswith("<!DOCTYPE html>")
    write_report(sample(), target.with_suffix(".txt"))
    assert target.with_suffix(".txt").read_text().startswith("session: peak 130.0 MiB")
    assert sorted(p.name for p in target.parent.iterdir()) == ["r.html", "r.json", "r.txt"]  # no temporary left
    with pytest.raises(ValueError, match=r"'r\.xml'.*must end in \.json, \.html, \.htm or \.txt"):
        write_report(sample(), "r.xml")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
