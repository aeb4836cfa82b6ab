"""The examples in the docs run, and the docs build with ``mkdocs build --strict``.

Every ```python block of the engine's pages runs on its own in a fresh interpreter (blocks
allocate and measure memory). A block that must not run is preceded by a line
``<!-- no-run -->``; keep those rare.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

import leakhunt

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = ("index.md", "accounting.md", "api.md")
NO_RUN = "<!-- no-run -->"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def python_blocks(page: str) -> list[tuple[int, str, bool]]:
    """(line number, code, runs) for each ```python block of ``page``."""
    return blocks_of((DOCS / page).read_text())


def blocks_of(text: str) -> list[tuple[int, str, bool]]:
    blocks = []
    for match in _BLOCK.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        line = text.count("\n", 0, match.start()) + 1
        blocks.append((line, match.group(1), before.strip() != NO_RUN))
    return blocks


EXAMPLES = [
    pytest.param(code, runs, id=f"{page}:{line}")
    for page in PAGES
    for line, code, runs in python_blocks(page)
]


@pytest.mark.parametrize(("code", "runs"), EXAMPLES)
def test_example_runs(code: str, runs: bool, tmp_path: Path) -> None:
    if not runs:
        pytest.skip("marked <!-- no-run -->")
    for name in sorted(set(re.findall(r"^import (pyarrow|pandas|numpy)\b", code, re.M))):
        pytest.importorskip(name)  # the library needs none of them; some examples do
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"example failed:\n{code}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def test_no_run_marks_only_the_next_block() -> None:
    text = "# T\n\n<!-- no-run -->\n```python\nskip()\n```\n\n```python\nrun()\n```\n\n```sh\nls\n```\n"
    assert blocks_of(text) == [(4, "skip()\n", False), (8, "run()\n", True)]


def test_every_page_has_examples_and_few_are_skipped() -> None:
    blocks = [runs for page in PAGES for _, _, runs in python_blocks(page)]
    assert all(python_blocks(page) for page in PAGES)
    assert sum(not runs for runs in blocks) <= len(blocks) // 10


def test_api_page_documents_every_public_name() -> None:
    text = (DOCS / "api.md").read_text()
    headings = set(re.findall(r"^###+ `([A-Za-z_]+)", text, re.M))
    assert set(leakhunt.__all__) <= headings


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed")
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = tmp_path / "site"
    for page in (*PAGES, "plugin.md", "run.md", "reports.md", "reference.md"):
        assert (site / f"{page[:-3]}.html").is_file()  # page.html: links work on the site opened from disk
    pages = {path: path.read_text(encoding="utf-8") for path in site.rglob("*.html")}
    # offline: no script, style sheet or font is fetched from another site
    for path, html in pages.items():
        assert not re.search(r"""<(script|link)[^>]*(src|href)=["']https?://""", html), path
        assert "fonts.googleapis" not in html and "cdnjs" not in html, path
        # the reference is generated from docstrings: they too cite only what is in the repository
        assert "DESIGN.md" not in html and "FINDINGS.md" not in html, path
    for path in site.rglob("*.css"):
        assert not re.search(r"@import\s+url\(|url\(\s*['\"]?https?://", path.read_text(encoding="utf-8")), path
    # code is highlighted when the site is built (Pygments), not by a script in the browser
    assert '<div class="highlight">' in pages[site / "index.html"] and "hljs" not in pages[site / "index.html"]
    # the reference is generated from the docstrings: every public name, with its docstring's words
    reference = pages[site / "reference.html"]
    for name in leakhunt.__all__:
        assert re.search(rf'id="leakhunt(\.\w+)?\.{name}"', reference), name
        doc = (getattr(leakhunt, name).__doc__ or "").strip().split("\n")[0]
        words = re.sub(r"[`*:]", "", doc).split()[:3]
        assert words and all(word.split("(")[0] in reference for word in words), (name, words)


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed")
def test_the_site_reads_from_disk(tmp_path: Path) -> None:
    """Opened from disk (file://): links name their pages, the search box has its index as a
    script and a local worker shim, code blocks have a copy button, the home page a picture."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
                    "--site-dir", str(site)], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    home = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="plugin.html"' in home and 'href="plugin/"' not in home
    assert (site / "search" / "search_index.js").read_text(encoding="utf-8").startswith("var __index = ")
    assert '<script src="javascripts/iframe-worker-shim.js">' in home and "unpkg.com" not in home
    assert '"content.code.copy"' in home and '"search.highlight"' in home
    assert re.search(r'<img [^>]*src="run/timeline.png"', home) and (site / "run" / "timeline.png").is_file()
    assert '<link rel="stylesheet" href="stylesheets/extra.css">' in home


def test_mkdocs_config_has_a_nav_of_every_page() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    assert "\nnav:\n" in config and "name: material" in config
    listed = set(re.findall(r"([\w/]+\.md)", config.split("\nnav:\n", 1)[1].split("\nmarkdown_extensions:", 1)[0]))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert listed <= pages  # nothing in the nav that is not a page
    # every page is in the nav; a casebook case may instead be linked from the casebook's index
    # (its pages are generated: a new case should not need a hand edit of mkdocs.yml)
    index = (DOCS / "casebook.md").read_text()
    missing = {p for p in pages - listed if not (p.startswith("casebook/") and f"({p})" in index)}
    assert not missing, f"pages missing from the nav in mkdocs.yml: {sorted(missing)}"


def test_docs_cite_only_files_in_the_repository() -> None:
    code = [p for package in ("leakhunt", "pytest_leakhunt", "casebook", "benchmarks") for p in (ROOT / package).rglob("*.py")]
    for path in [*DOCS.rglob("*.md"), ROOT / "README.md", *code]:
        text = path.read_text(encoding="utf-8")
        for name in ("DESIGN.md", "FINDINGS.md", "STYLE.md", "seeds/"):
            assert name not in text, f"{path.relative_to(ROOT)} cites {name}, which is not in the repository"


def test_no_function_is_over_complexity_20() -> None:
    """The rule the project keeps (docs/contributing.md): no function of the packages over
    cyclomatic complexity 20, as radon counts it."""
    radon = pytest.importorskip("radon.complexity")
    over = []
    for package in ("leakhunt", "pytest_leakhunt"):
        for path in (ROOT / package).rglob("*.py"):
            for block in radon.cc_visit(path.read_text(encoding="utf-8")):
                if block.complexity > 20:
                    over.append(f"{path.relative_to(ROOT)}:{block.lineno} {block.fullname} ({block.complexity})")
    assert not over, "over complexity 20: " + ", ".join(over)
