"""Best bid / ask / mid over time and the trades of one symbol (Bokeh, streamed with a rollover)."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from bokeh.document import Document
from bokeh.models import ColumnDataSource, DatetimeTickFormatter, HoverTool
from bokeh.plotting import figure

from lob.viz._common import ASK, BID, MID, TRADE, bokeh_widget

__all__ = ["PriceChart", "price_app"]

_NAN = float("nan")


class PriceChart:
    """Quotes (bid, ask, mid) sampled on each ``sample()`` and every trade of a symbol, on a time axis.

    The chart listens to the book's exchange (``Exchange.add_listener``) and buffers the fills of its
    symbol as integers; ``flush()`` streams the buffered quotes and trades into the Bokeh sources with a
    rollover, so memory stays bounded on long runs. ``update()`` is ``sample()`` then ``flush()``.

    Parameters
    ----------
    book : lob.Book
        A view of ``Exchange.book(symbol)`` (or a standalone book).
    rollover : int
        Points kept per series.
    width, height : int
    time_axis : bool
        x is the event time (``ts_ns``) on a datetime axis; False: x counts samples (for flows without time).

    Attributes
    ----------
    quotes : ColumnDataSource
        ``x, bid, ask, mid`` (x in ms for the datetime axis).
    trades : ColumnDataSource
        ``x, price, qty, size, aggressor, seq``.

    Examples
    --------
    >>> import lob
    >>> ex = lob.Exchange(symbols=["X"])
    >>> chart = PriceChart(ex.book("X"))
    >>> _ = ex.submit("X", "sell", 5, price=10.0, ts_ns=1_000_000)
    >>> _ = ex.submit("X", "buy", 2, price=10.0, ts_ns=2_000_000)
    >>> chart.update()
    >>> chart.trades.data["price"], chart.trades.data["qty"], chart.quotes.data["ask"]
    ([10.0], [2.0], [10.0])
    """

    def __init__(self, book, rollover: int = 2000, width: int = 640, height: int = 260, time_axis: bool = True):
        self.rollover = int(rollover)
        self.time_axis = bool(time_axis)
        self.book = None
        self.quotes = ColumnDataSource({"x": [], "bid": [], "ask": [], "mid": []}, name="quotes")
        self.trades = ColumnDataSource({"x": [], "price": [], "qty": [], "size": [], "aggressor": [], "seq": []},
                                       name="trades")
        f = figure(width=width, height=height, title="", x_axis_type="datetime" if self.time_axis else "linear",
                   x_axis_label="time" if self.time_axis else "sample", y_axis_label="price",
                   toolbar_location="above", tools="pan,xwheel_zoom,box_zoom,reset,save")
        f.step(x="x", y="bid", source=self.quotes, mode="after", line_color=BID, line_width=2, legend_label="bid")
        f.step(x="x", y="ask", source=self.quotes, mode="after", line_color=ASK, line_width=2, legend_label="ask")
        f.line(x="x", y="mid", source=self.quotes, line_color=MID, line_dash="dotted", legend_label="mid")
        dots = f.scatter(x="x", y="price", size="size", source=self.trades, fill_color=TRADE, fill_alpha=0.25,
                         line_color=TRADE, line_alpha=0.6, legend_label="trades")
        f.add_tools(HoverTool(renderers=[dots], tooltips=[("price", "@price{0.00[00]}"), ("qty", "@qty{0,0}"),
                                                          ("aggressor", "@aggressor"), ("seq", "@seq")]))
        if self.time_axis:
            f.xaxis.formatter = DatetimeTickFormatter(milliseconds="%H:%M:%S.%3N", seconds="%H:%M:%S",
                                                      minsec="%H:%M:%S", minutes="%H:%M", hourmin="%H:%M",
                                                      hours="%H:%M")
        f.legend.label_text_font_size = "11px"
        f.legend.spacing = 2
        f.add_layout(f.legend[0], "right")       # outside the plot: never covers the prices
        f.title.text_font_size = "13px"
        self.figure = f
        self.layout = f
        self._n = 0
        self.bind(book)

    # --- wiring -------------------------------------------------------------------------------------
    def bind(self, book) -> None:
        """Follow another book (e.g. after the exchange was rebuilt): clears the series."""
        if self.book is not None:
            try:
                self.book.exchange.remove_listener(self._on_batch)
            except ValueError:       # the old exchange already dropped it
                pass
        self.book = book
        self._sym = book.exchange.symbol_index(book.symbol)
        self._last_ts = 0
        self._pending_q = {"x": [], "bid": [], "ask": [], "mid": []}
        self._pending_t = {k: [] for k in self.trades.data}
        self._n = 0
        self.quotes.data = {k: [] for k in self.quotes.data}
        self.trades.data = {k: [] for k in self.trades.data}
        self.figure.title.text = f"{book.symbol} quotes and trades"
        book.exchange.add_listener(self._on_batch)

    def _x(self, ts_ns: int) -> float:
        return ts_ns / 1e6 if self.time_axis else float(self._n)

    def _on_batch(self, events, reports, fills) -> None:
        if len(events):
            mine = events["symbol"] == self._sym
            if mine.any():
                self._last_ts = int(events["ts_ns"][mine][-1])
        if len(fills) == 0:
            return
        f = fills[fills["symbol"] == self._sym]
        if len(f) == 0:
            return
        tick, lot = self.book.tick_size, self.book.lot_size
        qty = f["qty_lots"] * lot
        t = self._pending_t
        t["x"].extend((f["ts_ns"] / 1e6).tolist() if self.time_axis else [float(self._n)] * len(f))
        t["price"].extend((f["price_ticks"] * tick).round(10).tolist())
        t["qty"].extend(qty.tolist())
        t["size"].extend(np.clip(3 + 1.1 * np.sqrt(qty), 3, 14).tolist())
        t["aggressor"].extend(["buy" if a == 0 else "sell" for a in f["aggressor"]])
        t["seq"].extend(f["seq"].tolist())

    # --- drawing ------------------------------------------------------------------------------------
    def sample(self, ts_ns: int | None = None) -> None:
        """Buffer the current best bid / ask / mid at ``ts_ns`` (default: the last event time seen)."""
        bid, ask = self.book.best_bid(), self.book.best_ask()
        b = bid[0] if bid else _NAN
        a = ask[0] if ask else _NAN
        m = (b + a) / 2 if not (math.isnan(b) or math.isnan(a)) else _NAN
        q = self._pending_q
        q["x"].append(self._x(self._last_ts if ts_ns is None else int(ts_ns)))
        q["bid"].append(b)
        q["ask"].append(a)
        q["mid"].append(m)
        self._n += 1

    def flush(self) -> None:
        """Stream the buffered quotes and trades into the Bokeh sources (one message each)."""
        if self._pending_q["x"]:
            self.quotes.stream(self._pending_q, rollover=self.rollover)
            self._pending_q = {k: [] for k in self._pending_q}
        if self._pending_t["x"]:
            self.trades.stream(self._pending_t, rollover=self.rollover)
            self._pending_t = {k: [] for k in self._pending_t}

    def update(self, ts_ns: int | None = None) -> None:
        """``sample(ts_ns)`` then ``flush()``."""
        self.sample(ts_ns)
        self.flush()

    def close(self) -> None:
        """Stop listening to the exchange."""
        try:
            self.book.exchange.remove_listener(self._on_batch)
        except ValueError:
            pass

    def widget(self):
        """A ``jupyter_bokeh.BokehModel`` ipywidget of the chart."""
        if getattr(self, "_widget", None) is None:
            # one widget per chart: a Bokeh model belongs to one document
            self._widget = bokeh_widget(self.layout)
        return self._widget

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.widget()._repr_mimebundle_(include=include, exclude=exclude)


def price_app(book, period_ms: int = 250, **kwargs) -> Callable[[Document], None]:
    """A Bokeh app function ``app(doc)``: a :class:`PriceChart` of ``book`` sampled every ``period_ms``."""

    def app(doc: Document) -> None:
        chart = PriceChart(book, **kwargs)
        doc.add_root(chart.layout)
        doc.title = f"{book.symbol} quotes and trades"
        if period_ms:
            doc.add_periodic_callback(chart.update, period_ms)
        doc.on_session_destroyed(lambda ctx: chart.close())
        doc.lob_chart = chart

    return app
