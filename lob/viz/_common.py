"""Shared pieces of ``lob.viz``: optional-dependency check, colours, standalone HTML export."""
from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["require", "save_html", "BID", "ASK", "MID", "TRADE"]

BID = "#2e7d32"      # bids green
ASK = "#c62828"      # asks red
MID = "#546e7a"
TRADE = "#1565c0"


def require(module: str, what: str) -> None:
    """Raise an ImportError naming the extra to install when an optional dependency is missing."""
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"{what} requires {module!r}: install the viz extra, pip install 'lob[viz]'")


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


def ns_to_ms(ts_ns):
    """Nanoseconds -> milliseconds (what a Bokeh datetime axis expects)."""
    return ts_ns / 1e6
