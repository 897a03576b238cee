"""Every Python code block of the user guide runs, in order, file by file; exported syntax shown is current."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs"
BLOCK = re.compile(r"^\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", re.M)
#: A block shown after the comment ``.. exported: <expression>`` is what the expression returns
EXPORTED = re.compile(r"^\.\. exported: (.+)\n\n\.\. code-block:: \w+\n\n((?:(?:   .*)?\n)+)", re.MULTILINE)


def unindent(block: str) -> str:
    return re.sub(r"^   ", "", block, flags=re.M)


def python_blocks(path: Path) -> list[str]:
    return [unindent(block) for block in BLOCK.findall(path.read_text())]


def run_page(page: str, monkeypatch) -> dict:
    """Run the page's Python blocks in order from the repository root; return their namespace."""
    monkeypatch.chdir(DOCS.parent)  # the examples read files relative to the repository root
    monkeypatch.setenv("MPLBACKEND", "Agg")  # plots are drawn, never shown
    namespace: dict = {}
    for block in python_blocks(DOCS / page):
        exec(compile(block, f"{page}", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.rst") if python_blocks(p)))
def test_code_blocks_run(page, monkeypatch):
    run_page(page, monkeypatch)


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.rst") if EXPORTED.search(p.read_text())))
def test_exported_syntax_shown_is_what_the_exports_print(page, monkeypatch):
    namespace = run_page(page, monkeypatch)
    for expression, block in EXPORTED.findall((DOCS / page).read_text()):
        assert eval(expression, namespace) == unindent(block).strip("\n"), expression


def test_every_page_is_in_the_table_of_contents():
    index = (DOCS / "index.rst").read_text()
    for page in DOCS.glob("*.rst"):
        if page.name != "index.rst":
            assert f"   {page.stem}\n" in index, page.name


def test_sphinx_builds_the_guide_without_warnings(tmp_path):
    """The user guide and the API reference build with warnings as errors."""
    from sphinx.cmd import build

    status = build.build_main(["-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(tmp_path / "html")])
    assert status == 0
    assert (tmp_path / "html" / "api.html").exists()
