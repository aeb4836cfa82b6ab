"""The HTML reports in a real browser (headless Chromium through playwright), and their templates.

The pages must work with no network: no console errors, the table sorts and filters, the
retention graph and the charts are drawn on screen (not only present in the DOM). The tests
skip when Chromium or playwright is absent.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from leakhunt.explanation import Explanation, Figure, PathStep, Root, Site
from leakhunt.report import HtmlReport, SessionFigures, TestRecord, TestReport
from leakhunt.report.pictures import retention_picture

pytest.importorskip("jinja2")
pytest.importorskip("matplotlib")

MIB = 1024 * 1024
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def held_slice() -> Explanation:
    """The explanation of a test that keeps a 1-row slice of a 95 MiB frame in a global."""
    path = (PathStep("HOLD (global in test_etl)"), PathStep("list"), PathStep("DataFrame (1 row x 10 cols)", "[0]"),
            PathStep("block values (view)", "._mgr"), PathStep("ndarray 95.4 MiB", ".base", 100_000_000))
    site = Site("/src/test_etl.py", 12, "frame = pd.DataFrame(np.ones((1_250_000, 10)))", 100_000_000, 1)
    root = Root(root="HOLD (global in test_etl)", kind="global", buffers=1, size=100_000_000, path=path,
                text=" -> ".join(step.label for step in path), site=site)
    return Explanation(
        title="test_etl.py::test_daily_means", headline="broke its memory budget",
        figures=(Figure("rss", 96 * MIB, 20_000_000), Figure("peak", 190 * MIB)),
        where={"numpy": 95 * MIB, "python": 600_000, "arrow": 0, "unaccounted": 0},
        roots=(root,), sites=(site,), type_growth=(("list", 3),),
        hint="a slice or view keeps its whole parent buffer; store .copy() or plain values instead", traced=True)


def sample_report(n: int = 40) -> TestReport:
    records = [TestRecord("test_etl.py::test_daily_means", "failed", verdict="over_budget", peak=190 * MIB,
                          rss_growth=96 * MIB, settled=True, budget={"rss": 20_000_000},
                          violations=[{"figure": "rss", "value": 96 * MIB, "limit": 20_000_000}],
                          explanation=held_slice(), seconds=0.5)]
    for i in range(n):  # sizes from 4 KiB to 156 MiB, all below the failing test's peak
        peak = 4096 * (1 + (i * 7919) % 40_000)
        records.append(TestRecord(f"tests/test_m{i % 5}.py::test_case[{i}]", "passed", peak=peak,
                                  rss_growth=peak // 4, settled=True, seconds=0.01 * i))
    records.append(TestRecord("tests/test_x.py::test_<script>alert(1)</script>", "skipped", verdict="not_measured"))
    return TestReport(records=tuple(records), sessions=(SessionFigures(100 * MIB, 200 * MIB, 400 * MIB),),
                      created="2026-12-01T10:00:00+00:00", version="0.1.0")


def render(report: TestReport) -> str:
    out = io.StringIO()
    HtmlReport(report).render(out)
    return out.getvalue()


# --------------------------------------------------------------------------------------
# the page, as text


def test_failing_test_has_its_explanation_and_retention_graph() -> None:
    page = render(sample_report())
    section = page[page.index('id="t-test_etl-py-test_daily_means"'):page.index('id="charts"')]
    assert "broke its memory budget" in section and "Fix hint" in section
    assert '<svg class="graph"' in section
    for label in ("HOLD (global in test_etl)", "DataFrame (1 row x 10 cols)", "ndarray 95.4 MiB", ".base", "[0]"):
        assert label in section
    assert section.count("<rect") == 5  # a node per step, root to buffer
    assert "95.4 MiB" in section  # the size on the buffer's node


def test_a_report_without_explanations_still_says_what_broke() -> None:
    record = TestRecord("t.py::test_peak", "failed", verdict="over_budget", peak=120 * MIB, rss_growth=0,
                        settled=True, violations=[{"figure": "peak", "value": 120 * MIB, "limit": 50_000_000}])
    page = render(TestReport(records=(record,)))
    assert "No explanation was recorded" in page and "peak: 120.0 MiB (budget 47.7 MiB)" in page
    assert "retention" not in page.split('id="every-test"')[0].lower()  # no graph without a path


def test_names_are_escaped_everywhere() -> None:
    page = render(sample_report(3))
    assert "<script>alert(1)</script>" not in page
    assert "test_&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_chart_and_table_stay_bounded_at_5000_tests() -> None:
    page = render(sample_report(5000))
    assert page.count("<tr data-test=") == 5002
    top = page[page.index('id="leakhunt-top-tests"'):]
    top = top[: top.index("</svg>")]
    # the top 20 by peak are labelled (the failing test and 19 others); the rest are in the histogram
    assert top.count("test_case[") == 19 and "test_daily_means" in top
    assert "memory per test (log scale)" in page and ">tests<" in page  # labelled axes


def test_retention_picture_layout() -> None:
    picture = retention_picture(held_slice().roots[0])
    assert [n.kind for n in picture.nodes] == ["root", "step", "step", "step", "buffer"]
    assert [e.label for e in picture.edges] == ["", "[0]", "._mgr", ".base"]
    assert picture.nodes[-1].size == "95.4 MiB" and picture.nodes[0].size == ""
    ys = [n.y for n in picture.nodes]
    assert ys == sorted(ys) and picture.height > ys[-1]
    long = Root(root="R", kind="other", buffers=2, size=3 * MIB, path=(PathStep("x" * 200),), text="x")
    only = retention_picture(long)
    assert len(only.nodes) == 1 and only.nodes[0].label.endswith("\u2026") and only.nodes[0].size == "3.0 MiB"
    assert only.nodes[0].title.startswith("x" * 200)


# --------------------------------------------------------------------------------------
# in the browser


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if CHROMIUM is None:
        pytest.skip("no chromium installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser, path: Path):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, errors, requests


def test_the_browser_check_can_fail(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>undefinedFunction()</script>"
                   "<img src='https://example.invalid/x.png'></body></html>")
    page, errors, requests = open_page(browser, bad)
    assert errors and any(url.startswith("https:") for url in requests)
    page.close()


def visible_box(page, selector: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    element = page.locator(selector).first
    element.scroll_into_view_if_needed()
    assert element.is_visible(), selector
    box = element.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 40, (selector, box)
    return box


def test_test_report_sorts_filters_and_draws(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "report.html"
    path.write_text(render(sample_report()))
    page, errors, requests = open_page(browser, path)
    try:
        assert all(url.startswith("file:") for url in requests)  # nothing fetched
        visible_box(page, "svg.graph")  # the retention graph, on screen
        visible_box(page, "#leakhunt-top-tests")
        visible_box(page, "#leakhunt-distribution")
        # the graph's buffer node is drawn in its colour (CSS applied, not a black box)
        fill = page.eval_on_selector("svg.graph .n-buffer rect", "e => getComputedStyle(e).fill")
        assert fill == "rgb(253, 226, 222)"

        def peaks() -> list[float]:
            return page.eval_on_selector_all(
                "#tests tbody tr:not(.hidden)",
                "rows => rows.map(r => r.cells[3].dataset.value === '' ? null : Number(r.cells[3].dataset.value))")

        peak_header = page.locator("#tests th[data-key=peak]")
        peak_header.click()
        assert peak_header.get_attribute("aria-sort") == "ascending"
        ascending = [p for p in peaks() if p is not None]
        assert ascending == sorted(ascending) and peaks()[-1] is None  # unknown figures last
        peak_header.click()
        descending = [p for p in peaks() if p is not None]
        assert descending == sorted(descending, reverse=True) and descending[0] == 190 * MIB

        page.fill("#test-filter", "test_m3")
        shown = page.eval_on_selector_all("#tests tbody tr:not(.hidden)", "rows => rows.map(r => r.dataset.test)")
        assert shown and all("test_m3" in name for name in shown)
        assert page.inner_text("#shown-count") == str(len(shown))
        page.fill("#test-filter", "")
        page.select_option("#verdict-filter", "over_budget")
        shown = page.eval_on_selector_all("#tests tbody tr:not(.hidden)", "rows => rows.map(r => r.dataset.test)")
        assert shown == ["test_etl.py::test_daily_means"]
        # the row links to its explanation
        page.click("#tests a[href^='#t-']")
        assert page.evaluate("location.hash") == "#t-test_etl-py-test_daily_means"
        assert errors == []
    finally:
        page.close()


def test_report_of_a_real_pytest_run(browser, pytester: pytest.Pytester) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_real="""
        import numpy as np
        import pytest

        KEEP = []

        @pytest.mark.memory_budget(rss="10 MB")
        def test_keeps_too_much():
            KEEP.append(np.ones(40 * 1024 * 1024 // 8))      # 40 MiB kept

        def test_transient():
            assert np.ones(30 * 1024 * 1024 // 8).sum() > 0  # 30 MiB, freed

        def test_nothing():
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "--leak-report",
                                           "--leak-report-file=out/report.html")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["leakhunt report written to *report.html"])
    path = pytester.path / "out" / "report.html"
    page, errors, _ = open_page(browser, path)
    try:
        failing = page.locator("section.explain").first
        failing.scroll_into_view_if_needed()
        text = failing.inner_text()
        assert "test_keeps_too_much" in text and "KEEP (global in test_real)" in text
        # the plugin's explanation, with the picture of the path from KEEP to the 40 MiB buffer
        graph = failing.locator("svg.graph").first
        graph.scroll_into_view_if_needed()
        box = graph.bounding_box()
        assert graph.is_visible() and box is not None and box["height"] > 60
        assert "40.0 MiB" in graph.inner_html()
        assert page.locator("#tests tbody tr").count() == 3
        visible_box(page, "#leakhunt-top-tests")
        assert errors == []
    finally:
        page.close()


@pytest.mark.parametrize("backend", ["native", "tracemalloc"])
def test_run_report_draws_timeline_and_flame_graph(browser, tmp_path: Path, backend: str) -> None:  # type: ignore[no-untyped-def]
    if backend == "native":
        pytest.importorskip("memray")
    (tmp_path / "job.py").write_text(
        "import time\n"
        "kept = bytearray(30 * 1024 * 1024)\n"
        "def spike():\n"
        "    big = bytearray(100 * 1024 * 1024)\n"
        "    time.sleep(0.3)\n"
        "    return len(big)\n"
        "spike()\n")
    proc = subprocess.run([sys.executable, "-m", "leakhunt.cli", "run", f"--trace={backend}", "-o", "run.html",
                           "--json", "run.json", "job.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    page, errors, requests = open_page(browser, tmp_path / "run.html")
    try:
        assert all(url.startswith("file:") for url in requests)
        visible_box(page, "#leakhunt-timeline")
        assert "job.py:4" in page.inner_text("#peak ~ table.sites")
        box = visible_box(page, "#leakhunt-flame .flame-canvas")  # the stacks alive at the peak
        assert box["height"] >= 2 * 18  # the whole, and the frames below it
        user = page.locator("#leakhunt-flame .fb.k-user")
        assert user.count() >= 2  # the script's own lines
        labels = [user.nth(i).inner_text() for i in range(user.count())]
        assert any(label.startswith("job.py:4") for label in labels), labels  # a line's label starts with it
        assert not any("leakhunt" in label or "runpy" in label for label in labels)
        page.fill("#leakhunt-flame input[type=search]", "bytearray(100")  # search marks the line
        assert page.locator("#leakhunt-flame .fb.hit").count() >= 1
        assert "(" in page.inner_text("#leakhunt-flame .flame-status")
        spike = page.locator("#leakhunt-flame .fb.k-user", has_text="job.py:4").first
        before = spike.bounding_box()["width"]
        page.locator("#leakhunt-flame .fb.k-user", has_text="job.py:7").first.click()  # zoom into spike()
        after = page.locator("#leakhunt-flame .fb.k-user", has_text="job.py:4").first.bounding_box()["width"]
        assert after > before  # the zoomed box fills the width
        spike.hover()
        tip = page.inner_text("#leakhunt-flame .flame-tip")
        assert "job.py:4" in tip and "MiB" in tip  # hover: the whole line and its size
        assert errors == []
    finally:
        page.close()

