"""An order ticket: ipywidgets that submit, cancel and modify orders on an ``Exchange`` and show the report."""
from __future__ import annotations

import html
import math
from typing import Callable

import ipywidgets as widgets

from lob.enums import TIF, OrderType, names
from lob.errors import LobError

__all__ = ["OrderTicket"]

_TYPES = names(OrderType)
_TIFS = names(TIF)


def _opt(x: float):
    """Widget number -> argument: 0 (the boxes' blank value; never a valid price or size) means "not given"."""
    return None if x is None or x == 0 or (isinstance(x, float) and math.isnan(x)) else x


class OrderTicket:
    """Order entry for a notebook: pick symbol, side, type, TIF, quantity and prices, press *Submit*.

    Every request goes through the same :meth:`lob.Exchange.submit` / ``cancel`` / ``modify`` as code
    does. The report (status, reason, fills) is shown under the form and kept in :attr:`reports`; a
    programming error (e.g. a NaN price) is shown as the ``LobError`` message and kept in
    :attr:`last_error`, never raised out of the widget callback.

    Parameters
    ----------
    exchange : lob.Exchange
    symbol : str, optional
        Initially selected symbol (default: the first).
    owner : str
        Initial owner name.
    on_report : callable, optional
        ``fn(report)`` after every accepted request (e.g. to refresh a depth chart).

    Examples
    --------
    >>> import lob
    >>> ex = lob.Exchange(symbols=["AAPL"])
    >>> t = OrderTicket(ex)
    >>> t.side.value, t.qty.value, t.price.value = "sell", 100, 150.0
    >>> t.submit().status
    'new'
    >>> t.side.value, t.qty.value, t.price.value = "buy", 40, 150.05
    >>> r = t.submit(); r.status, r.avg_price
    ('filled', 150.0)
    >>> "filled" in t.output.value
    True
    """

    def __init__(self, exchange, symbol: str | None = None, owner: str = "me",
                 on_report: Callable | None = None):
        self.exchange = exchange
        self.on_report = on_report
        self.reports: list = []
        self.last_error: LobError | None = None
        syms = exchange.symbols
        self.symbol = widgets.Dropdown(options=syms, value=symbol if symbol is not None else syms[0],
                                       description="symbol")
        self.side = widgets.ToggleButtons(options=["buy", "sell"], value="buy", description="side",
                                          style={"button_width": "70px"})
        self.type = widgets.Dropdown(options=list(_TYPES), value="limit", description="type")
        self.tif = widgets.Dropdown(options=list(_TIFS), value="gtc", description="tif")
        self.qty = widgets.FloatText(value=100, description="qty")
        self.price = widgets.FloatText(value=0.0, description="price")
        self.stop_price = widgets.FloatText(value=0.0, description="stop price")
        self.display_qty = widgets.FloatText(value=0.0, description="display qty")
        self.post_only = widgets.Dropdown(options=[("no", False), ("reject", True), ("slide", "slide")],
                                          value=False, description="post-only")
        self.owner = widgets.Text(value=owner, description="owner")
        self.order_id = widgets.IntText(value=0, description="order id")
        self.submit_button = widgets.Button(description="Submit", button_style="primary", icon="paper-plane")
        self.cancel_button = widgets.Button(description="Cancel id", icon="times")
        self.modify_button = widgets.Button(description="Modify id", icon="edit")
        self.output = widgets.HTML()
        self.submit_button.on_click(lambda _: self.submit())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.modify_button.on_click(lambda _: self.modify())
        self.type.observe(self._on_type, names="value")
        self._on_type({"new": self.type.value})
        left = widgets.VBox([self.symbol, self.side, self.type, self.tif, self.qty])
        right = widgets.VBox([self.price, self.stop_price, self.display_qty, self.post_only, self.owner])
        actions = widgets.HBox([self.submit_button, self.order_id, self.cancel_button, self.modify_button])
        self.widget = widgets.VBox([widgets.HBox([left, right]), actions, self.output])

    def _on_type(self, change) -> None:
        t = change["new"]
        self.price.disabled = t in ("market", "stop")
        self.stop_price.disabled = t not in ("stop", "stop_limit")

    # --- actions ------------------------------------------------------------------------------------
    def _done(self, report):
        self.last_error = None
        self.reports.append(report)
        if report.order_id:
            self.order_id.value = int(report.order_id)
        self.output.value = report._repr_html_()
        if self.on_report is not None:
            self.on_report(report)
        return report

    def _fail(self, err: LobError):
        self.last_error = err
        self.output.value = (f"<div style='color:#b71c1c'><b>{type(err).__name__}</b>: "
                             f"{html.escape(str(err))}</div>")
        return None

    def submit(self):
        """Submit the order on the form; return the report (None if the input raised a ``LobError``)."""
        t = self.type.value
        kwargs = dict(type=t, tif=self.tif.value, owner=self.owner.value or None,
                      post_only=self.post_only.value, display_qty=_opt(self.display_qty.value))
        if t in ("stop", "stop_limit"):
            kwargs["stop_price"] = _opt(self.stop_price.value)
        price = None if t in ("market", "stop") else _opt(self.price.value)
        try:
            r = self.exchange.submit(self.symbol.value, self.side.value, self.qty.value, price=price, **kwargs)
        except LobError as e:
            return self._fail(e)
        return self._done(r)

    def cancel(self):
        """Cancel the order whose id is in the ``order id`` box (as the ticket's owner)."""
        try:
            r = self.exchange.cancel(self.symbol.value, self.order_id.value, owner=self.owner.value or None)
        except LobError as e:
            return self._fail(e)
        return self._done(r)

    def modify(self):
        """Modify the order in the ``order id`` box to the form's quantity (new total) and price."""
        try:
            r = self.exchange.modify(self.symbol.value, self.order_id.value, qty=_opt(self.qty.value),
                                     price=_opt(self.price.value), owner=self.owner.value or None)
        except LobError as e:
            return self._fail(e)
        return self._done(r)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.widget._repr_mimebundle_(include=include, exclude=exclude)
