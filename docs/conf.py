"""Sphinx configuration of the lob documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors; ``tests/test_docs_build.py``
runs exactly this). Notebooks are rendered by nbsphinx from their stored outputs (never executed here:
``pytest --nbval-lax`` executes them). nbsphinx converts markdown cells with pandoc; the ``pypandoc_binary``
wheel ships one, put on PATH below when no system pandoc exists.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
from docutils import nodes
from docutils.parsers.rst import Directive, directives

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

if shutil.which("pandoc") is None:
    try:
        import pypandoc

        os.environ["PATH"] = str(Path(pypandoc.get_pandoc_path()).parent) + os.pathsep + os.environ["PATH"]
    except (ImportError, OSError):
        pass  # nbsphinx then reports the missing pandoc itself

import lob  # noqa: E402

project = "lob"
author = "the lob developers"
copyright = "2026, the lob developers"
release = version = lob.__version__

extensions = [
    "myst_parser",
    "nbsphinx",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "notebooks/nbval_sanitize.cfg", "notebooks/README.md"]
master_doc = "index"

myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

nbsphinx_execute = "never"          # outputs stored in the notebooks; nbval executes them in the test suite
nbsphinx_allow_errors = False
nbsphinx_prolog = """
.. note:: This page is a notebook from ``notebooks/``, rendered with the outputs stored in it. Open it in
   JupyterLab to run it; live widgets move only in a running kernel.
"""

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_typehints = "none"          # signatures hold them; numpydoc sections describe them
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True           # Attributes sections as fields, not duplicate attribute entries

html_theme = "alabaster"
html_title = f"lob {release}"
html_static_path: list[str] = []
# BokehJS for the notebooks' Bokeh outputs, copied from the installed bokeh (the saved notebooks do not carry
# the ~2 MB inline loader, see lob.viz.strip_loader; no CDN); pages without Bokeh ignore it
html_js_files: list[str] = []
try:
    from bokeh.util.paths import bokehjs_path

    _BOKEHJS = [bokehjs_path() / "js" / f"{name}.min.js" for name in ("bokeh", "bokeh-widgets", "bokeh-tables")]
    _static = Path(__file__).resolve().parent / "_build" / "bokehjs"
    _static.mkdir(parents=True, exist_ok=True)
    for _js in _BOKEHJS:
        shutil.copyfile(_js, _static / _js.name)
    html_static_path.append(str(_static))
    html_js_files += [_js.name for _js in _BOKEHJS]
except ImportError:      # no viz extra: the notebooks' Bokeh figures stay blank, the rest builds
    pass
html_theme_options = {"description": "limit-order-book research, Jupyter first", "fixed_sidebar": True,
                      "page_width": "1100px", "sidebar_width": "230px"}


class DtypeTable(Directive):
    """``.. lob-dtype:: EVENT_DTYPE``: a table of the fields of a lob record dtype, read from the dtype
    itself (the dtypes are derived from the C structs; the docs must not restate them by hand)."""

    required_arguments = 1
    option_spec = {"caption": directives.unchanged}

    def run(self):
        dt = getattr(lob, self.arguments[0])
        table = nodes.table()
        group = nodes.tgroup(cols=4)
        table += group
        for w in (3, 2, 1, 1):
            group += nodes.colspec(colwidth=w)
        head = nodes.thead()
        body = nodes.tbody()
        group += head
        group += body

        def row(cells, parent):
            r = nodes.row()
            for c in cells:
                e = nodes.entry()
                e += nodes.paragraph(text=str(c))
                r += e
            parent += r

        row(["field", "type", "offset", "bytes"], head)
        for name in dt.names:
            t, off = dt.fields[name][:2]
            row([name, np.dtype(t).name, off, t.itemsize], body)
        title = nodes.title(text=self.options.get("caption", f"lob.{self.arguments[0]} ({dt.itemsize} bytes)"))
        table.insert(0, title)
        return [table]


def _notebook_links(app, docname, source):
    """Notebooks link to the docs as ``../docs/page.md`` (right on GitHub, where they sit in ``notebooks/``);
    here they are rendered as ``docs/notebooks/...``, one level down from the pages they link to."""
    if docname.startswith("notebooks/"):
        source[0] = source[0].replace("](../docs/", "](../")


def setup(app):
    app.add_directive("lob-dtype", DtypeTable)
    app.connect("source-read", _notebook_links)
    return {"parallel_read_safe": True}
