"""Every Python code block of the user guide runs, in order, file by file."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs"
BLOCK = re.compile(r"^\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", re.M)


def python_blocks(path: Path) -> list[str]:
    return [re.sub(r"^   ", "", block, flags=re.M) for block in BLOCK.findall(path.read_text())]


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.rst") if python_blocks(p)))
def test_code_blocks_run(page, monkeypatch):
    monkeypatch.chdir(DOCS.parent)  # the examples read files relative to the repository root
    namespace: dict = {}
    for block in python_blocks(DOCS / page):
        exec(compile(block, f"{page}", "exec"), namespace)


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
