"""Cumulative depth chart of one book: Bokeh figure, live in a notebook or a Bokeh server document."""
from __future__ import annotations

from typing import Callable

from bokeh.document import Document
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.plotting import figure

from lob.viz._common import ASK, BID, bokeh_widget

__all__ = ["DepthChart", "depth_app", "depth_columns"]

_COLUMNS = ("price", "qty", "cum", "orders")


def depth_columns(book, levels: int = 10) -> tuple[dict, dict]:
    """Columns of the depth chart: ``(bids, asks)``, each ``{"price", "qty", "cum", "orders"}`` lists.

    Both sides are sorted by ascending price, the order a step line is drawn in; ``cum`` is the quantity
    available at that price or better (bids: at or above it, asks: at or below it).

    Parameters
    ----------
    book : lob.Book
    levels : int
        Price levels per side.

    Examples
    --------
    >>> import lob
    >>> b = lob.Book(tick_size=0.01)
    >>> for px, q in [(99.98, 5), (99.99, 2), (100.01, 3)]:
    ...     _ = b.submit("buy" if px < 100 else "sell", q, price=px)
    >>> bids, asks = depth_columns(b)
    >>> bids["price"], bids["cum"], asks["cum"]
    ([99.98, 99.99], [7, 2], [3])
    """
    d = book.depth(levels)
    out = []
    for side in ("bids", "asks"):
        rows = d[side]                       # best first
        cum, total = [], 0
        for _, q, _ in rows:
            total += q
            cum.append(total)
        cols = {"price": [r[0] for r in rows], "qty": [r[1] for r in rows], "cum": cum,
                "orders": [r[2] for r in rows]}
        if side == "bids":                   # ascending price for drawing
            cols = {k: v[::-1] for k, v in cols.items()}
        out.append(cols)
    return out[0], out[1]


def _step_area(cols: dict, mode: str) -> dict:
    """The outline of a step line as plain points, for a ``varea`` under it.

    ``mode="before"``: between two prices the value of the right one (bids); ``"after"``: of the left one
    (asks). BokehJS 3.9's own ``varea_step`` hangs the page when its source is empty (an empty book), so
    the area is drawn with ``varea`` over these points instead.
    """
    x, y = cols["price"], cols["cum"]
    if not x:
        return {"x": [], "y": []}
    xs, ys = [x[0]], [y[0]]
    for i in range(1, len(x)):
        xs += [x[i - 1], x[i]] if mode == "before" else [x[i], x[i]]
        ys += [y[i], y[i]] if mode == "before" else [y[i - 1], y[i]]
    return {"x": xs, "y": ys}


def _update_source(source: ColumnDataSource, new: dict) -> str:
    """Send only what changed: ``patch`` the changed cells when the row count holds, else replace the data.

    Returns ``"patch"``, ``"replace"`` or ``"none"`` (what was done, for tests and logging).
    """
    old = source.data
    n = len(new["price"])
    if n != len(old["price"]):
        source.data = new
        return "replace"
    patches = {}
    for k, values in new.items():
        changed = [(i, v) for i, (v, w) in enumerate(zip(values, old[k])) if v != w]
        if changed:
            patches[k] = changed
    if not patches:
        return "none"
    source.patch(patches)
    return "patch"


class DepthChart:
    """Cumulative depth of a book (bids green, asks red) with per-level bars; ``update()`` redraws.

    Parameters
    ----------
    book : lob.Book
        The book to draw (``Exchange.book(symbol)`` is a live view, so ``update()`` reads the current state).
    levels : int
        Price levels per side.
    width, height : int
        Figure size in pixels.
    title : str, optional
        Defaults to the symbol.

    Attributes
    ----------
    bids, asks : ColumnDataSource
        Columns ``price, qty, cum, orders`` (see :func:`depth_columns`).
    figure : bokeh Figure
    layout : the Bokeh model to show (the figure).

    Examples
    --------
    >>> import lob
    >>> b = lob.Book(tick_size=0.01)
    >>> _ = b.submit("buy", 5, price=99.99)
    >>> chart = DepthChart(b)
    >>> chart.bids.data["cum"]
    [5]
    >>> _ = b.submit("buy", 2, price=99.99); chart.update()
    'patch'
    >>> chart.bids.data["cum"]
    [7]
    """

    def __init__(self, book, levels: int = 10, width: int = 640, height: int = 320, title: str | None = None):
        self.levels = int(levels)
        self.book = book
        bids, asks = depth_columns(book, self.levels)
        self.bids = ColumnDataSource(bids, name="bids")
        self.asks = ColumnDataSource(asks, name="asks")
        self._areas = {"before": ColumnDataSource(_step_area(bids, "before"), name="bids_area"),
                       "after": ColumnDataSource(_step_area(asks, "after"), name="asks_area")}
        tick = book.tick_size
        f = figure(width=width, height=height, title=title or f"{book.symbol} depth",
                   x_axis_label="price", y_axis_label="quantity", toolbar_location="above",
                   tools="pan,xwheel_zoom,box_zoom,reset,save")
        for src, colour, mode in ((self.bids, BID, "before"), (self.asks, ASK, "after")):
            f.vbar(x="price", top="qty", width=tick * 0.8, source=src, fill_color=colour, line_color=None,
                   fill_alpha=0.25)
            f.varea(x="x", y1=0, y2="y", source=self._areas[mode], fill_color=colour, fill_alpha=0.12)
            f.step(x="price", y="cum", mode=mode, source=src, line_color=colour, line_width=2)
            f.scatter(x="price", y="cum", source=src, size=5, color=colour)
        f.add_tools(HoverTool(tooltips=[("price", "@price{0.00[00]}"), ("level qty", "@qty{0,0}"),
                                        ("cumulative", "@cum{0,0}"), ("orders", "@orders")]))
        f.y_range.start = 0
        f.xaxis.axis_label_text_font_size = f.yaxis.axis_label_text_font_size = "12px"
        f.xaxis.major_label_text_font_size = f.yaxis.major_label_text_font_size = "11px"
        f.title.text_font_size = "13px"
        self.figure = f
        self.layout = f
        self._set_title()

    def _set_title(self) -> None:
        bid, ask = self.book.best_bid(), self.book.best_ask()
        fmt = lambda x: "-" if x is None else f"{x[0]:g} x {x[1]:g}"
        self.figure.title.text = f"{self.book.symbol} depth   bid {fmt(bid)}   ask {fmt(ask)}"

    def bind(self, book) -> None:
        """Show another book (e.g. the same symbol on a rebuilt exchange) and redraw."""
        self.book = book
        self.update()

    def update(self) -> str:
        """Redraw from the book's current state; return what was sent for the bids (patch/replace/none)."""
        bids, asks = depth_columns(self.book, self.levels)
        what = _update_source(self.bids, bids)
        if _update_source(self.asks, asks) != "none" or what != "none":
            self._areas["before"].data = _step_area(bids, "before")
            self._areas["after"].data = _step_area(asks, "after")
        self._set_title()
        return what

    def widget(self):
        """A ``jupyter_bokeh.BokehModel`` ipywidget of the chart: display it once, then ``update()`` moves it."""
        if getattr(self, "_widget", None) is None:
            # one widget per chart: a Bokeh model belongs to one document
            self._widget = bokeh_widget(self.layout)
        return self._widget

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.widget()._repr_mimebundle_(include=include, exclude=exclude)


def depth_app(book, levels: int = 10, period_ms: int = 250, **kwargs) -> Callable[[Document], None]:
    """A Bokeh app function ``app(doc)``: a :class:`DepthChart` of ``book`` refreshed every ``period_ms``.

    The same function serves a Bokeh server (``Server({"/depth": depth_app(book)})``), ``bokeh.io.show``
    in a notebook, and tests (``depth_app(book)(Document())``).

    Parameters
    ----------
    book : lob.Book
    levels : int
    period_ms : int
        Refresh period of the periodic callback; 0 registers none (the caller calls ``doc.chart.update()``).
    **kwargs
        Passed to :class:`DepthChart`.
    """

    def app(doc: Document) -> None:
        chart = DepthChart(book, levels=levels, **kwargs)
        doc.add_root(chart.layout)
        doc.title = f"{book.symbol} depth"
        if period_ms:
            doc.add_periodic_callback(chart.update, period_ms)
        doc.lob_chart = chart  # the tests and server reach the chart through the document

    return app
