"""Shared pieces of ``lob.viz``: optional-dependency check, colours, standalone HTML export."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

__all__ = ["require", "save_html", "output_notebook", "bokeh_widget", "BID", "ASK", "MID", "TRADE"]

BID = "#2e7d32"      # bids green
ASK = "#c62828"      # asks red
MID = "#546e7a"
TRADE = "#1565c0"


def require(module: str, what: str) -> None:
    """Raise an ImportError naming the extra to install when an optional dependency is missing."""
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"{what} requires {module!r}: install the viz extra, pip install 'lobkit[viz]'")


def save_html(obj, path, title: str = "lob") -> Path:
    """Write a Bokeh model (or a chart of this package) to a standalone HTML file with inline BokehJS.

    Parameters
    ----------
    obj : bokeh LayoutDOM, or an object with a ``layout`` attribute (:class:`lob.viz.DepthChart`, ...)
    path : str or Path
    title : str

    Returns
    -------
    Path
        The file written (no network needed to view it).
    """
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    model = getattr(obj, "layout", obj)
    path = Path(path)
    path.write_text(file_html(model, INLINE, title), encoding="utf-8")
    return path


# BokehJS parts sent to the notebook page: the core, its widgets and tables (the mathjax and gl bundles only
# serve LaTeX labels and WebGL output, which lob does not draw: ~2 MB less per notebook)
_COMPONENTS = ["bokeh", "bokeh-widgets", "bokeh-tables"]
LOADER_KEY = "lob_bokehjs"    # metadata key of the loader output (saved notebooks drop its 2 MB payload)
_loaded_in = None      # the kernel (IPython shell) this process last sent BokehJS to


def _shell():
    """The running IPython kernel shell, or None (plain Python, a terminal IPython, tests)."""
    import sys

    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    ip = get_ipython()
    return ip if ip is not None and getattr(ip, "kernel", None) is not None else None


def loader_js() -> str:
    """The script that defines ``window.Bokeh`` from the installed bokeh's inline bundle (no network).

    It runs synchronously where the page executes it and does nothing when the same BokehJS version is
    already loaded.
    """
    import bokeh
    from bokeh.core.templates import AUTOLOAD_NB_JS
    from bokeh.embed.bundle import bundle_for_objs_and_resources
    from bokeh.resources import Resources

    bundle = bundle_for_objs_and_resources(None, Resources(mode="inline", components=_COMPONENTS))
    js = AUTOLOAD_NB_JS.render(bundle=bundle, elementid=None, force=True, timeout=5000, register_mime=True)
    version = json.dumps(bokeh.__version__)
    return f"if (!(window.Bokeh !== undefined && window.Bokeh.version === {version})) {{\n{js}\n}}\n"


def output_notebook(force: bool = False) -> bool:
    """Load BokehJS into the notebook page from the installed ``bokeh`` package (inline: no CDN, no network).

    Publishes one ``application/javascript`` output that defines ``window.Bokeh`` synchronously when the
    page renders it, so before any Bokeh widget displayed after it, and points ``bokeh.io.show`` at the
    notebook. The charts of this package call it when their first widget is made, so a notebook needs no
    ``output_notebook()`` of its own; call it before ``bokeh.io.show(figure)`` of a plain Bokeh figure.
    Works in JupyterLab, Notebook 7, nbclassic and VS Code (a trusted notebook runs the output).

    Parameters
    ----------
    force : bool
        Send BokehJS again even if this kernel has sent it (e.g. after reloading the browser page).

    Returns
    -------
    bool
        True if BokehJS was sent now; False outside a Jupyter kernel or when this kernel already sent it.
    """
    global _loaded_in
    ip = _shell()
    if ip is None or (ip is _loaded_in and not force):
        return False
    from bokeh.io.state import curstate
    from IPython.display import publish_display_data

    curstate().output_notebook()             # bokeh.io.show renders into the notebook
    publish_display_data({"application/javascript": loader_js()}, metadata={LOADER_KEY: True})
    _loaded_in = ip
    return True


def bokeh_widget(layout):
    """A ``jupyter_bokeh.BokehModel`` ipywidget of a Bokeh model, with BokehJS loaded in the page first."""
    from jupyter_bokeh import BokehModel

    output_notebook()
    return BokehModel(layout)


def ns_to_ms(ts_ns):
    """Nanoseconds -> milliseconds (what a Bokeh datetime axis expects)."""
    return ts_ns / 1e6
