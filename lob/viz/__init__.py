"""Notebook widgets and Bokeh charts for ``lob`` (the only package that imports bokeh and ipywidgets).

``import lob`` never imports this package; ``import lob.viz`` needs the ``viz`` extra
(``pip install 'lobkit[viz]'``: bokeh, jupyter_bokeh, ipywidgets, jupyterlab).

* :class:`DepthChart` and :func:`depth_app`: cumulative depth of one book (Bokeh, live in the notebook
  through ``jupyter_bokeh.BokehModel``, or in a Bokeh server document).
* :class:`PriceChart` and :func:`price_app`: best bid / ask / mid over time and the trades.
* :class:`LadderWidget`: the book as an HTML price ladder (ipywidgets).
* :func:`scorecard_figure`: PnL, inventory (and any other column) of a strategy run over time.
* :class:`ReplayPlayer`: play / pause / speed / scrub over an event stream (LOBSTER or any
  ``lob.EVENT_DTYPE`` array) with the depth, ladder and price views attached.
* :class:`OrderTicket`: an order-entry form that submits to an ``Exchange`` and shows the report.
* :func:`output_notebook`: load BokehJS into the notebook page from the installed bokeh (no network); the
  charts' widgets call it themselves, call it before ``bokeh.io.show`` of a plain figure.
* :func:`save_html`: a standalone HTML file (inline Bokeh JS) of a chart, for screenshots and docs.
"""
from lob.viz._common import require

require("bokeh", "lob.viz")
require("ipywidgets", "lob.viz")
require("jupyter_bokeh", "lob.viz")

from lob.viz._common import output_notebook, save_html  # noqa: E402
from lob.viz.depth import DepthChart, depth_app, depth_columns  # noqa: E402
from lob.viz.ladder import LadderWidget  # noqa: E402
from lob.viz.player import ReplayPlayer  # noqa: E402
from lob.viz.scorecard import scorecard_figure  # noqa: E402
from lob.viz.ticket import OrderTicket  # noqa: E402
from lob.viz.trades import PriceChart, price_app  # noqa: E402

__all__ = [
    "DepthChart", "depth_app", "depth_columns", "PriceChart", "price_app", "LadderWidget",
    "scorecard_figure", "ReplayPlayer", "OrderTicket", "save_html", "output_notebook",
]
