"""lob: a Jupyter-first library for limit-order-book research.

A Cython matching engine (``lob._engine``, driven by ``lob._core``) under a typed facade: :class:`Exchange`
(many symbols, one sequence of outputs) and :class:`Book` (one symbol). Integers inside (ticks, lots, ns), floats
at the edges.
``import lob`` never imports tornado, bokeh or ipywidgets.
"""
from lob import errors
from lob._core import (
    EVENT_DTYPE,
    FILL_DTYPE,
    ORDER_DTYPE,
    REPORT_DTYPE,
    ExecReport as Report,
    OrderInfo,
    Trade,
)
from lob.book import Book
from lob.enums import TIF, Action, ModifyPolicy, OrderType, Reason, Side, Status, STPMode
from lob.errors import LobError
from lob.exchange import Exchange, empty_events
from lob import journal  # noqa: F401  (registers the exchange's journal provider, lob.ports)

__version__ = "0.1.0"

__all__ = [
    "Book", "Exchange", "Report", "Trade", "OrderInfo", "empty_events",
    "EVENT_DTYPE", "REPORT_DTYPE", "FILL_DTYPE", "ORDER_DTYPE",
    "Action", "Side", "OrderType", "TIF", "Status", "Reason", "STPMode", "ModifyPolicy",
    "LobError", "errors",
]
