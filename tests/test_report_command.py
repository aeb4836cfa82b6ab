"""`leakhunt report`: one command renders either kind of saved report as HTML or text."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from leakhunt.report import JsonReport
from test_html_reports import sample_report


def leakhunt(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leakhunt.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    out = io.StringIO()
    JsonReport(sample_report(12)).render(out)
    path = tmp_path / "tests.json"
    path.write_text(out.getvalue())
    return path


def test_test_report_to_html_and_text(saved: Path, tmp_path: Path) -> None:
    pytest.importorskip("jinja2")
    proc = leakhunt("report", saved.name, "-o", "out/page.html", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "out" / "page.html").read_text()
    assert '<table class="tests" id="tests">' in page and '<svg class="graph"' in page
    proc = leakhunt("report", saved.name, "-o", "page.txt", "--top", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "page.txt").read_text()
    assert "top 3 by peak" in text and "why they failed" in text
    assert "HOLD (global in test_etl) -> list -> DataFrame" in text  # the explanation, as text
    assert "\x1b[" not in text and max(len(line) for line in text.splitlines()) <= 100


def test_a_text_test_report_is_the_same_file_from_the_plugin_and_from_the_command(saved: Path, tmp_path: Path) -> None:
    """The plugin's --leak-report-file=x.txt (TextReport.render, as write_report calls it) and
    `leakhunt report x.json -o y.txt` write one file: the tables, then why the tests failed."""
    from leakhunt.report import TestReport, write_report

    write_report(TestReport.from_dict(json.loads(saved.read_text())), tmp_path / "plugin.txt")
    proc = leakhunt("report", saved.name, "-o", "command.txt", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "plugin.txt").read_text()
    assert text == (tmp_path / "command.txt").read_text()
    why = text.index("\nwhy they failed\n")
    assert text.index("top 10 by peak") < why < text.index("HOLD (global in test_etl) -> list -> DataFrame")
    assert max(len(line) for line in text.splitlines()) <= 100


def test_test_report_to_the_terminal(saved: Path, tmp_path: Path) -> None:
    proc = leakhunt("report", saved.name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("session: peak 300.0 MiB above start")
    assert "over_budget" in proc.stdout and max(len(line) for line in proc.stdout.splitlines()) <= 100


def test_schema_1_test_reports_are_read(saved: Path, tmp_path: Path) -> None:
    data = json.loads(saved.read_text())
    data["schema_version"] = 1
    for test in data["tests"]:
        test.pop("explanation", None)
    (tmp_path / "v1.json").write_text(json.dumps(data))
    proc = leakhunt("report", "v1.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "test_daily_means" in proc.stdout and "why they failed" not in proc.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["tests.json", "-o", "plot.png"], "a test report is written as .html, .htm or .txt"),
    (["missing.json", "-o", "r.xml"], "-o 'r.xml' has suffix '.xml'"),  # the output is checked first
    (["tests.json", "-o", "tests.json/r.html"], "'tests.json' is a file, not a directory"),
    (["tests.json", "--top", "0"], "invalid --top '0'"),
])
def test_bad_outputs(saved: Path, tmp_path: Path, args: list[str], message: str) -> None:
    proc = leakhunt("report", *args, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tests.json"]
