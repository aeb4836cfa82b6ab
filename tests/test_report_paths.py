"""Report paths: one rule for the plugin and every command, checked before anything runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from leakhunt.report import files
from leakhunt.report.files import ReportPathError, check_report_path, write_atomic


def test_the_suffix_picks_the_format(tmp_path: Path) -> None:
    for name, fmt in (("r.json", "json"), ("r.HTML", "html"), ("r.htm", "html"), ("r.txt", "text")):
        checked = check_report_path(name, option="-o", base=tmp_path)
        assert (checked.format, checked.path, str(checked)) == (fmt, tmp_path / name, name)
    assert check_report_path("plot.png", option="-o", formats=("png",), base=tmp_path).format == "png"


@pytest.mark.parametrize(("path", "formats", "message"), [
    ("r.xml", ("json", "html", "text"), "-o 'r.xml' has suffix '.xml': the file name must end in .json, .html, .htm, .txt"),
    ("report", ("json",), "-o 'report' has no suffix: the file name must end in .json"),
    ("r.png", ("json", "html", "text"), "-o 'r.png' has suffix '.png'"),
    ("", ("html",), "-o '': give a file name ending in .html, .htm"),
    ("adir", ("html", "json"), "-o 'adir' is a directory: give a file name such as 'adir/report.html'"),
    ("afile/r.json", ("json",), "-o 'afile/r.json': 'afile' is a file, not a directory"),
    ("afile/deeper/r.json", ("json",), "-o 'afile/deeper/r.json': 'afile' is a file, not a directory"),
])
def test_bad_paths_name_the_path_and_why(tmp_path: Path, path: str, formats: tuple[str, ...], message: str) -> None:
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("")
    with pytest.raises(ReportPathError) as info:
        check_report_path(path, option="-o", formats=formats, base=tmp_path)
    assert str(info.value).startswith(message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"]  # nothing created


def test_missing_directories_are_fine_and_made_when_written(tmp_path: Path) -> None:
    checked = check_report_path("a/b/r.json", option="-o", base=tmp_path)
    assert not (tmp_path / "a").exists()
    write_atomic(checked.path, lambda f: f.write("{}"))
    assert (tmp_path / "a" / "b" / "r.json").read_text() == "{}"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_a_directory_we_cannot_write_in(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ReportPathError, match="cannot create files in 'locked' \\(permission denied\\)"):
            check_report_path("locked/r.json", option="-o", base=tmp_path)
    finally:
        locked.chmod(0o700)


def test_a_format_whose_extra_is_missing_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = files.importlib.util.find_spec
    monkeypatch.setattr(files.importlib.util, "find_spec", lambda name: None if name == "jinja2" else real(name))
    with pytest.raises(ReportPathError, match=r"a HTML report needs jinja2: pip install \"leakhunt\[html\]\""):
        check_report_path("r.html", option="--leak-report-file", base=tmp_path)
    assert check_report_path("r.json", option="--leak-report-file", base=tmp_path).format == "json"


def test_write_atomic_leaves_nothing_behind_on_error(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")

    def broken(file: object) -> None:
        raise RuntimeError("render failed")

    with pytest.raises(RuntimeError):
        write_atomic(target, broken)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


# --------------------------------------------------------------------------------------
# the plugin: a write that fails at the end


def test_report_write_failing_at_the_end_is_a_warning_after_the_summary(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_moves="""
        import pathlib, shutil

        def test_replaces_the_report_directory_with_a_file():
            # the session's start wrote a "running" report into out/; it becomes a file
            shutil.rmtree("out")
            pathlib.Path("out").write_text("not a directory any more")

        def test_fails():
            assert False
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider",
                                           "--leak-report-file=out/report.html", "--junitxml=junit.xml")
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the tests' outcome, not ours
    lines = result.stdout.lines
    summary = next(i for i, line in enumerate(lines) if "1 failed, 1 passed" in line)
    xml = next(i for i, line in enumerate(lines) if "generated xml file" in line)
    warning = next(i for i, line in enumerate(lines) if line.startswith("leakhunt: warning:"))
    assert xml < summary < warning  # after pytest's own summary, after JUnit XML was written
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "could not write the leakhunt report to" in lines[warning] and "out/report.html" in lines[warning]
    assert (pytester.path / "junit.xml").exists()
    saved = lines[warning].split("the figures were saved to '", 1)[1].split("'", 1)[0]
    try:
        data = json.loads(Path(saved).read_text())
        assert [t["nodeid"].split("::")[1] for t in data["tests"]] == [
            "test_replaces_the_report_directory_with_a_file", "test_fails"]
        # nothing measured is lost: the saved figures render like any report
        proc = subprocess.run([sys.executable, "-m", "leakhunt.cli", "report", saved, "-o", "again.txt"],
                              cwd=pytester.path, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "test_fails" in (pytester.path / "again.txt").read_text()
    finally:
        os.unlink(saved)


def test_report_path_checked_when_the_session_starts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    pytester.makefile(".txt", out="a file where a directory should be")
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--leak-report-file=out.txt/r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--leak-report-file 'out.txt/r.json': 'out.txt' is a file, not a directory*"])
    assert "test_a" not in result.stdout.str()  # before any test ran


def test_a_checked_path_leaves_nothing_behind(tmp_path: Path) -> None:
    # whether a file can be created is tried with a probe file, removed at once
    check_report_path("r.json", option="-o", base=tmp_path)
    check_report_path("a/b/r.html", option="-o", base=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.isfile("/proc/self/status"), reason="needs Linux's /proc")
def test_a_file_system_that_takes_no_new_files_is_a_usage_error_first(pytester: pytest.Pytester) -> None:
    # issue 21: os.access says root may write in /proc; the path was accepted and failed at the
    # end of the session, after every test had run
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--leak-report-file=/proc/x.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--leak-report-file '/proc/x.json': cannot create files in '/proc' (*)*"])
    assert "test_a" not in result.stdout.str()
    proc = subprocess.run([sys.executable, "-m", "leakhunt.cli", "run", "-o", "/proc/x.json", "test_a.py"],
                          cwd=pytester.path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "cannot create files in '/proc'" in proc.stderr
