"""Rough edges of the HTML test report (issue 26): long tokens wrap at their parts and figures
never break, the charts' legends sit outside the bars, the footer shows the run's options as the
user writes them. The browser check skips when Chromium or playwright is absent."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest

from leakhunt.report import HtmlReport, SessionFigures, TestRecord, TestReport

pytest.importorskip("jinja2")
pytest.importorskip("matplotlib")

MIB = 1024 * 1024
LONG_ID = ("tests/io/parquet/test_daily_aggregation.py::test_daily_aggregation_keeps_only_the_summary"
           "[rows_1250000-columns_10-float64-1.5]")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def six_tests(settings: dict | None = None) -> TestReport:
    """Six tests as the issue's example: one long parametrised id, one budget, peaks far apart."""
    records = [TestRecord(LONG_ID, "passed", peak=23 * MIB, rss_growth=0, settled=True, seconds=0.01),
               TestRecord("test_sample.py::test_budget_held", "passed", peak=30 * MIB, rss_growth=28 * MIB,
                          settled=True, budget={"rss": 20_000_000, "peak": 500_000_000},
                          budget_given={"rss": "20MB", "peak": "500MB"}, seconds=0.01)]
    for name, peak in (("small", 780 * 1024), ("medium", 14 * MIB), ("keep", 8 * MIB), ("tiny", 8192)):
        records.append(TestRecord(f"test_sample.py::test_{name}", "passed", peak=peak, rss_growth=peak // 2,
                                  settled=True, seconds=0.01))
    return TestReport(records=tuple(records), sessions=(SessionFigures(100 * MIB, 200 * MIB, 300 * MIB),),
                      created="2026-12-06T10:00:00+00:00", version="0.1.0", settings=settings or {})


def render(report: TestReport) -> str:
    out = io.StringIO()
    HtmlReport(report).render(out)
    return out.getvalue()


def test_a_long_test_id_wraps_at_its_parts_never_inside_a_number() -> None:
    html = render(six_tests())
    cell = re.search(r'<td class="test">(.*?)</td>', html).group(1)
    assert cell.replace("<wbr>", "") == LONG_ID
    # a break opportunity after each separator of the id ...
    for part in ("tests/<wbr>", "io/<wbr>", "test_<wbr>daily_<wbr>", ".<wbr>py::<wbr>", "[<wbr>rows_<wbr>"):
        assert part in cell, part
    # ... and none inside a number: 1250000 and 1.5 stay whole
    assert "1250000-<wbr>columns" in cell and "float64-1.5]" in cell
    # a budget's figures keep their units: the cell may wrap between words, never in '19.1 MiB'
    assert "rss=20MB = 19.1\u00a0MiB, peak=500MB = 476.8\u00a0MiB" in html
    # the cell wraps at the <wbr>s, not at any character (which shrank it to a few letters)
    assert "overflow-wrap:anywhere" not in html


@pytest.mark.parametrize("chart", ["top_tests_figure", "distribution_figure"])
def test_a_charts_legend_is_outside_its_bars(chart: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from leakhunt.report import charts

    fig = getattr(charts, chart)(six_tests().records)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # the layout engine places the legend
    renderer = canvas.get_renderer()
    (ax,) = fig.axes
    legends = fig.legends + ([ax.get_legend()] if ax.get_legend() else [])
    assert len(legends) == 1
    legend, plot = legends[0].get_window_extent(renderer), ax.get_window_extent(renderer)
    assert not legend.overlaps(plot), (legend, plot)
    assert legend.y1 <= plot.y0  # under the axes, the whole width free for the bars


def test_the_footer_shows_the_options_as_written() -> None:
    options = ["--leak-report", "--leak-report-top=10", "--leak-hunt=4", "--leak-threshold=64 KiB"]
    footer = re.search(r"<footer[^>]*>(.*?)</footer>", render(six_tests({"leak_threshold": 65536, "options": options})),
                       re.DOTALL).group(1)
    assert "--leak-report --leak-report-top=10 --leak-hunt=4 --leak-threshold=64 KiB" in footer
    assert "leak_threshold" not in footer and "65536" not in footer


def test_a_report_written_before_options_still_shows_its_settings() -> None:
    footer = re.search(r"<footer[^>]*>(.*?)</footer>", render(six_tests({"report_top": 10})), re.DOTALL).group(1)
    assert "report_top=10" in footer


def test_the_plugin_writes_the_options_the_user_gave(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="""
        import pytest

        @pytest.mark.memory_budget(rss="1 GB")
        def test_a():
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--leak-report", "--leak-hunt=4",
                                           "--leak-threshold=100KB", "--memory-budget=peak=2GB",
                                           "--leak-report-file=r.html")
    result.assert_outcomes(passed=1)
    html = (pytester.path / "r.html").read_text()
    footer = re.search(r"<footer[^>]*>(.*?)</footer>", html, re.DOTALL).group(1)
    assert ("--leak-report --leak-report-top=10 --memory-budget=peak=2GB --leak-hunt=4 --leak-threshold=100KB "
            "--leak-scope=call --leak-peak=reset") in footer
    assert "leak_threshold" not in footer and "report_top" not in footer
    # the JSON report keeps its settings (the schema) and gains the same spelling
    pytester.runpytest_subprocess("-p", "no:randomly", "--leak-report-file=r.json").assert_outcomes(passed=1)
    settings = json.loads((pytester.path / "r.json").read_text())["settings"]
    assert settings["leak_threshold"] == 65536
    assert settings["options"] == ["--leak-scope=call", "--leak-peak=reset"]


def test_settings_options_follow_the_option_names() -> None:
    """Every option a Settings can spell is one the plugin defines (one naming rule, flag_of)."""
    from pytest_leakhunt.options import Settings, flag_of

    settings = Settings(report=True, hunt=5, threshold=131072, threshold_given="128 KiB", children=True,
                        rerun=False, trace=True, scope="setup-call-teardown", peak="sample")
    spelled = settings.options()
    assert spelled == ("--leak-report", "--leak-report-top=10", "--leak-hunt=5", "--leak-threshold=128 KiB",
                       "--leak-trace", "--leak-children", "--leak-no-rerun", "--leak-scope=setup-call-teardown",
                       "--leak-peak=sample")
    assert flag_of("leak_report_top") == "--leak-report-top"


def test_the_table_fits_a_900_pixel_window_with_a_long_id(tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("no chromium installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    path = tmp_path / "report.html"
    path.write_text(render(six_tests()))
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 900, "height": 900})
            page.goto(path.as_uri())
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            lines = page.evaluate("""Array.from(document.querySelectorAll('td.test')).map(td => {
                const range = document.createRange(); range.selectNodeContents(td);
                const tops = Array.from(range.getClientRects()).map(r => Math.round(r.top));
                return [td.textContent, new Set(tops).size]; })""")
            budget_rects = page.evaluate("""Array.from(document.querySelectorAll('td.budget')).filter(
                td => td.textContent).map(td => td.getBoundingClientRect().width)""")
        finally:
            browser.close()
    assert overflow <= 0  # no horizontal scroll for the page
    long_lines = dict(lines)[LONG_ID]
    assert 1 < long_lines <= 8  # wrapped, at its parts (not one character a line)
    assert budget_rects and all(width > 60 for width in budget_rects)
