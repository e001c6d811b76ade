"""The book as a price ladder in an ipywidgets ``HTML`` widget."""
from __future__ import annotations

import html
import math

import ipywidgets as widgets

from lob.viz._common import ASK, BID

__all__ = ["LadderWidget", "ladder_html"]


def _decimals(tick: float) -> int:
    return max(0, -math.floor(math.log10(tick) + 1e-9)) if tick < 1 else 0


def ladder_html(book, levels: int = 10) -> str:
    """HTML of a price ladder: asks above (best at the bottom), the spread, bids below, with size bars.

    Parameters
    ----------
    book : lob.Book
    levels : int
        Levels per side.
    """
    d = book.depth(levels)
    asks, bids = d["asks"], d["bids"]
    biggest = max([q for _, q, _ in asks + bids] or [1])
    dec = _decimals(book.tick_size)
    cell = "padding:1px 6px"

    def row(price, qty, count, side):
        w = max(1, int(90 * qty / biggest))
        colour = ASK if side == "ask" else BID
        bar = f"<div style='background:{colour};opacity:.45;height:11px;width:{w}px'></div>"
        bid_q, ask_q = (f"{qty:,g}", "") if side == "bid" else ("", f"{qty:,g}")
        return (f"<tr><td style='{cell};color:#999;text-align:right'>{count if side == 'bid' else ''}</td>"
                f"<td style='{cell};text-align:right'>{bid_q}</td>"
                f"<td style='{cell};direction:rtl'>{bar if side == 'bid' else ''}</td>"
                f"<td style='{cell};text-align:center;font-weight:bold;color:{colour}'>{price:.{dec}f}</td>"
                f"<td style='{cell}'>{bar if side == 'ask' else ''}</td>"
                f"<td style='{cell};text-align:right'>{ask_q}</td>"
                f"<td style='{cell};color:#999'>{count if side == 'ask' else ''}</td></tr>")

    body = "".join(row(p, q, c, "ask") for p, q, c in reversed(asks))
    spread = book.spread()
    last = book.last_price
    body += (f"<tr><td colspan=7 style='text-align:center;color:#666;border-top:1px solid #ddd;"
             f"border-bottom:1px solid #ddd'>spread {'-' if spread is None else f'{spread:.{dec}f}'}"
             f" &nbsp; last {'-' if last is None else f'{last:.{dec}f}'}</td></tr>")
    body += "".join(row(p, q, c, "bid") for p, q, c in bids)
    head = "".join(f"<th style='{cell}'>{h}</th>" for h in ("#", "bid qty", "", "price", "", "ask qty", "#"))
    return (f"<table class='lob-ladder' style='font-family:monospace;font-size:12px;border-collapse:collapse'>"
            f"<caption style='font-weight:bold'>{html.escape(str(book.symbol))}</caption><tr>{head}</tr>"
            f"{body}</table>")


class LadderWidget:
    """A live price ladder: ``update()`` re-renders the ``HTML`` widget from the book.

    Parameters
    ----------
    book : lob.Book
    levels : int

    Examples
    --------
    >>> import lob
    >>> b = lob.Book(tick_size=0.01)
    >>> w = LadderWidget(b, levels=3)
    >>> _ = b.submit("sell", 7, price=100.01); w.update()
    True
    >>> "100.01" in w.widget.value
    True
    """

    def __init__(self, book, levels: int = 10):
        self.book = book
        self.levels = int(levels)
        self.widget = widgets.HTML(value=ladder_html(book, self.levels))

    def bind(self, book) -> None:
        """Show another book and redraw."""
        self.book = book
        self.update()

    def update(self) -> bool:
        """Re-render; return True if the HTML changed (only then does anything go to the browser)."""
        new = ladder_html(self.book, self.levels)
        if new == self.widget.value:
            return False
        self.widget.value = new
        return True

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.widget._repr_mimebundle_(include=include, exclude=exclude)
