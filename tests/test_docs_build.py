"""The Sphinx docs build with warnings as errors, and the pages hold what they are built from."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lob

pytest.importorskip("sphinx", reason="the docs extra (sphinx, myst-parser, nbsphinx) is not installed")
pytest.importorskip("nbsphinx", reason="the docs extra (sphinx, myst-parser, nbsphinx) is not installed")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    p = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-E", "-q", "-b", "html", "-d", str(out / "doctrees"),
                        str(ROOT / "docs"), str(out / "html")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"sphinx-build -W failed:\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
    return out / "html"


def text(path):
    return re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8"))


def test_every_page_and_notebook_is_built(html):
    for page in ("index", "install", "architecture", "matching", "data_formats", "benchmarks", "api"):
        assert (html / f"{page}.html").exists(), page
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    for nb in notebooks:
        assert (html / "notebooks" / f"{nb}.html").exists(), nb
    index = (html / "index.html").read_text(encoding="utf-8")
    for nb in notebooks:
        assert f"notebooks/{nb}.html" in index


def test_notebooks_render_their_stored_outputs(html):
    page = text(html / "notebooks" / "02_matching_rules.html")
    # printed by a checked cell of the notebook, not written in its source
    assert "post_only_would_cross" in page and "fok_unfillable" in page
    assert 'href="../matching.html' in (html / "notebooks" / "02_matching_rules.html").read_text(encoding="utf-8")


def test_dtype_tables_are_read_from_the_dtypes(html):
    page = text(html / "data_formats.html")
    for dt in (lob.EVENT_DTYPE, lob.REPORT_DTYPE, lob.FILL_DTYPE, lob.ORDER_DTYPE):
        for name in dt.names:
            assert re.search(rf"\b{name}\b", page), name
        assert f"({dt.itemsize} bytes)" in page


def test_api_reference_comes_from_the_docstrings(html):
    page = (html / "api.html").read_text(encoding="utf-8")
    for name in ("lob.Exchange.submit", "lob.Exchange.apply", "lob.Book.depth", "lob.viz.DepthChart",
                 "lob.viz.ReplayPlayer.step_to", "lob.testing.reference.ReferenceBook", "lob.Book.cancel",
                 "lob.Book.modify", "lob.Book.reduce"):
        assert f'id="{name}"' in page, name
    # a numpydoc Parameters section rendered as a field list
    assert "Parameters" in page and "tick_size" in page


def test_benchmarks_page_includes_the_readme_figures(html):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = [l for l in readme.split("## Performance", 1)[1].split("## Layout", 1)[0].splitlines() if l.startswith("| `")]
    assert rows
    page = text(html / "benchmarks.html")
    for r in rows:
        workload = r.split("|")[1].strip().strip("`").split("`")[0]
        assert workload in page
