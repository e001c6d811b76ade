"""The server's live dashboard: depth, quotes and trades, top of book, market-maker inventory and PnL,
latency histogram and throughput, component health and incidents, with a symbol selector.

``dashboard_app(hub)`` is a Bokeh app function (``app(doc)``): ``lob.server`` mounts it at ``/dashboard`` on
its IOLoop, and a test can build it headless with ``dashboard_app(hub)(Document())``. It reads the server's
:class:`lob.server.hub.Hub` duck-typed (``exchange``, ``perf``, ``mm_stats()``, ``health()``,
``incidents.rows()``), so this module imports no tornado.
"""
from __future__ import annotations

import collections
import html
import time
from typing import Callable

from bokeh.document import Document
from bokeh.layouts import column, row
from bokeh.models import (ColumnDataSource, DataTable, DatetimeTickFormatter, Div, HoverTool, LinearAxis, LogTicker,
                          Range1d, Select, TableColumn)
from bokeh.plotting import figure

from lob.viz._common import ASK, BID, MID, TRADE
from lob.viz.depth import DepthChart
from lob.viz.trades import PriceChart

__all__ = ["dashboard_app", "Dashboard"]

_STATUS_COLOUR = {"ok": "#2e7d32", "disabled": "#78909c", "degraded": "#ef6c00", "down": "#c62828"}
_CSS = "font-family: Roboto, Helvetica, Arial, sans-serif; font-size: 13px; color: #263238;"
_W = 620


def _time_axis():
    # a new model per figure: a Bokeh model belongs to one document (one browser session)
    return DatetimeTickFormatter(milliseconds="%H:%M:%S", seconds="%H:%M:%S", minsec="%H:%M:%S", minutes="%H:%M",
                                 hourmin="%H:%M", hours="%H:%M")


def _fmt(x, nd=2):
    return "-" if x is None else f"{x:,.{nd}f}"


class Dashboard:
    """The models and update logic of one dashboard session (one per browser tab).

    Parameters
    ----------
    hub : lob.server.hub.Hub
    symbol : str, optional
        Initially selected symbol (default the first listed).
    """

    def __init__(self, hub, symbol: str | None = None):
        self.hub = hub
        ex = hub.exchange
        self.symbol = symbol or ex.symbols[0]
        self.select = Select(title="", value=self.symbol, options=list(ex.symbols), width=110)
        self.select.on_change("value", lambda attr, old, new: self.set_symbol(new))
        self.title = Div(text=f"<div style='{_CSS} font-size:18px; font-weight:600'>lob &middot; simulated exchange"
                              f"</div>", width=300)
        self.tob = Div(text="", width=560)
        self.health_div = Div(text="", width=_W * 2, height=28)

        book = ex.book(self.symbol)
        self.depth = DepthChart(book, levels=15, width=_W, height=300)
        self.price = PriceChart(book, rollover=1500, width=_W, height=300)
        for f in (self.depth.figure, self.price.figure):
            f.toolbar.logo = None
            f.min_border_left = 60

        # market-maker inventory (left axis) and PnL (right axis) of the selected symbol
        self.mm = ColumnDataSource({"x": [], "inventory": [], "pnl": []}, name="mm")
        self._mm_hist: dict[str, collections.deque] = {s: collections.deque(maxlen=1200) for s in ex.symbols}
        f = figure(width=_W, height=250, x_axis_type="datetime", title="",
                   toolbar_location=None, tools="")
        f.step(x="x", y="inventory", source=self.mm, mode="after", line_color=MID, line_width=2,
               legend_label="inventory (lhs)")
        f.extra_y_ranges = {"pnl": Range1d(-1, 1)}
        f.add_layout(LinearAxis(y_range_name="pnl", axis_label="PnL"), "right")
        f.line(x="x", y="pnl", source=self.mm, y_range_name="pnl", line_color=TRADE, line_width=2,
               legend_label="PnL (rhs)")
        f.yaxis[0].axis_label = "inventory (shares)"
        f.legend.orientation = "horizontal"
        f.legend.label_text_font_size = "11px"
        f.legend.border_line_alpha = 0
        f.add_layout(f.legend[0], "below")      # under the axis: never over the lines
        f.xaxis.formatter = _time_axis()
        self.mm_fig = f

        # end-to-end order latency (HDR histogram buckets) and throughput
        self.lat = ColumnDataSource({"left": [], "right": [], "count": []}, name="latency")
        f = figure(width=_W // 2, height=250, x_axis_type="log", title="order latency (end to end, µs)",
                   toolbar_location=None, tools="")
        f.quad(left="left", right="right", bottom=0, top="count", source=self.lat, fill_color=TRADE,
               fill_alpha=0.55, line_color="white")
        f.add_tools(HoverTool(tooltips=[("≤ µs", "@right{0.0}"), ("count", "@count")]))
        f.y_range.start = 0
        f.xaxis.axis_label = "µs"
        f.xaxis.ticker = LogTicker(mantissas=[1])      # decades only: the labels of a narrow range never collide
        self.lat_fig = f
        self.tp = ColumnDataSource({"x": [], "current": []}, name="throughput")
        f = figure(width=_W - _W // 2, height=250, x_axis_type="datetime", title="throughput (events/s)",
                   toolbar_location=None, tools="")
        f.line(x="x", y="current", source=self.tp, line_color=BID, line_width=2)
        f.y_range.start = 0
        f.yaxis.axis_label = "events/s"
        f.xaxis.formatter = _time_axis()
        self.tp_fig = f

        self.incidents = ColumnDataSource({"time": [], "component": [], "severity": [], "message": []},
                                          name="incidents")
        # reorderable=False: column drag-reordering needs jquery-ui, which BokehJS does not ship (the page
        # logged "jquery-ui is required to enable DataTable.reorderable")
        self.incident_table = DataTable(source=self.incidents, width=_W * 2, height=150, index_position=None,
                                        reorderable=False,
                                        columns=[TableColumn(field="time", title="time", width=80),
                                                 TableColumn(field="component", title="component", width=100),
                                                 TableColumn(field="severity", title="severity", width=70),
                                                 TableColumn(field="message", title="incident", width=990)])
        self.incident_title = Div(text="", width=_W * 2)
        for f in (self.depth.figure, self.price.figure, self.mm_fig, self.lat_fig, self.tp_fig):
            f.title.text_font_size = "13px"
            f.background_fill_color = "#fafafa"
            f.border_fill_color = "white"
            f.outline_line_color = "#cfd8dc"
        self.layout = column(
            row(self.title, self.select, self.tob),
            self.health_div,
            row(self.depth.figure, self.price.figure),
            row(self.mm_fig, self.lat_fig, self.tp_fig),
            self.incident_title, self.incident_table,
            styles={"padding": "6px 12px"})
        self._incident_id = 0
        self.mm_fig.title.text = f"market maker {self.symbol}: inventory and PnL"
        self.update_fast()
        self.update_slow()

    # --- updates ------------------------------------------------------------------------------------
    def set_symbol(self, symbol: str) -> None:
        """Show another symbol (the selector calls this)."""
        self.symbol = symbol
        book = self.hub.exchange.book(symbol)
        self.depth.bind(book)
        self.price.bind(book)
        hist = self._mm_hist[symbol]
        self.mm_fig.title.text = f"market maker {symbol}: inventory and PnL"
        self.mm.data = {"x": [h[0] for h in hist], "inventory": [h[1] for h in hist], "pnl": [h[2] for h in hist]}
        self.update_fast()

    def update_fast(self) -> None:
        """Depth, quotes, trades, top of book, market-maker series (every 250 ms)."""
        self.depth.update()
        # sampled at the exchange's clock: a fresh chart has seen no event time yet
        self.price.update(self.hub.exchange.clock())
        book = self.hub.exchange.book(self.symbol)
        bid, ask = book.best_bid(), book.best_ask()
        stale = self.hub.is_stale(self.symbol) if hasattr(self.hub, "is_stale") else False
        badge = ("<span style='background:#c62828;color:white;border-radius:3px;padding:1px 6px;"
                 "margin-left:8px'>STALE</span>") if stale else ""
        cell = "<td style='padding:0 10px 0 0'>"
        self.tob.text = (
            f"<table style='{_CSS}'><tr>"
            f"{cell}<span style='color:{BID}'>bid</span> <b>{_fmt(bid and bid[0])}</b> x {bid[1] if bid else '-'}</td>"
            f"{cell}<span style='color:{ASK}'>ask</span> <b>{_fmt(ask and ask[0])}</b> x {ask[1] if ask else '-'}</td>"
            f"{cell}spread <b>{_fmt(book.spread())}</b></td>{cell}last <b>{_fmt(book.last_price)}</b></td>"
            f"{cell}seq {self.hub.exchange.seq:,}</td><td>{badge}</td></tr></table>")
        now = time.time() * 1000
        rows = {r["symbol"]: r for r in self.hub.mm_stats()}
        for s, hist in self._mm_hist.items():
            r = rows.get(s)
            if r is not None:
                hist.append((now, r["position"], r["pnl"]))
        r = rows.get(self.symbol)
        if r is not None:
            self.mm.stream({"x": [now], "inventory": [r["position"]], "pnl": [r["pnl"]]}, rollover=1200)
            pnl = self.mm.data["pnl"]
            lo, hi = min(pnl), max(pnl)
            pad = max(1.0, (hi - lo) * 0.1)
            rng = self.mm_fig.extra_y_ranges["pnl"]
            rng.start, rng.end = lo - pad, hi + pad

    def update_slow(self) -> None:
        """Latency histogram, throughput, health chips and incidents (every second)."""
        h = self.hub.perf.histogram("end_to_end")
        if len(h):
            right = (h["value_ns"] / 1e3).tolist()
            left = [right[0] / 1.5] + right[:-1]
            self.lat.data = {"left": left, "right": right, "count": h["count"].tolist()}
        tp = self.hub.perf.throughput()
        self.tp.stream({"x": [time.time() * 1000], "current": [tp["current"]]}, rollover=600)
        health = self.hub.health()
        chips = []
        for name, comp in health["components"].items():
            colour = _STATUS_COLOUR.get(comp["status"], "#78909c")
            chips.append(f"<span style='border:1px solid {colour};color:{colour};border-radius:10px;"
                         f"padding:1px 8px;margin-right:6px'>{html.escape(name.replace('_', ' '))}: "
                         f"{html.escape(comp['status'])}</span>")
        overall = _STATUS_COLOUR.get(health["status"], "#78909c")
        self.health_div.text = (f"<div style='{_CSS}'><b style='color:{overall}'>health {health['status']}</b>"
                                f"&nbsp;&nbsp;{''.join(chips)} &nbsp; {tp['current']:,.0f} events/s &middot; "
                                f"{len(getattr(self.hub, 'subscribers', ()))} stream clients</div>")
        total = self.hub.incidents.total
        self.incident_title.text = (f"<div style='{_CSS} font-weight:600'>incidents <span style='font-weight:400;"
                                    f"color:#607d8b'>({total} recorded{', none yet' if not total else ''})</span></div>")
        new = [r for r in self.hub.incidents.rows(200) if r["id"] > self._incident_id]
        if new:
            self._incident_id = new[-1]["id"]
            rows = list(reversed(new))          # newest first
            data = {"time": [time.strftime("%H:%M:%S", time.localtime(r["ts"])) for r in rows],
                    "component": [r["component"] for r in rows], "severity": [r["severity"] for r in rows],
                    "message": [r["message"] for r in rows]}
            old = self.incidents.data
            self.incidents.data = {k: (data[k] + list(old[k]))[:200] for k in data}

    def close(self) -> None:
        self.price.close()


def dashboard_app(hub, fast_ms: int = 250, slow_ms: int = 1000) -> Callable[[Document], None]:
    """A Bokeh app function: a :class:`Dashboard` of ``hub`` refreshed every ``fast_ms`` / ``slow_ms``.

    Parameters
    ----------
    hub : lob.server.hub.Hub
    fast_ms, slow_ms : int
        Refresh periods of the market views and of the health / latency views; 0 registers no callback
        (tests call ``doc.lob_dashboard.update_fast()``).
    """

    def app(doc: Document) -> None:
        dash = Dashboard(hub)
        doc.add_root(dash.layout)
        doc.title = "lob dashboard"
        if fast_ms:
            doc.add_periodic_callback(dash.update_fast, fast_ms)
        if slow_ms:
            doc.add_periodic_callback(dash.update_slow, slow_ms)
        doc.on_session_destroyed(lambda ctx: dash.close())
        doc.lob_dashboard = dash

    return app
