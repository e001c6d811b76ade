"""``lob.Book``: one symbol's order book, standalone or as a view into an ``Exchange``."""
from __future__ import annotations

import html
import inspect

import numpy as np
import pandas as pd

from lob._core import ORDER_DTYPE  # noqa: F401  (documented with the book)

__all__ = ["Book"]

_SIDE = ("buy", "sell")
_TYPE = ("limit", "market", "stop", "stop_limit")
_TIF = ("gtc", "ioc", "fok", "day")


def _exchange_doc(method):
    """Complete a Book method's docstring with the Parameters, Returns and Raises sections of the Exchange
    method of the same name, without its ``symbol`` parameter (written once, where the Exchange method is)."""
    from lob.exchange import Exchange  # it imports lob.book only inside functions: no cycle at import

    own = inspect.cleandoc(method.__doc__ or "")
    summary, _, examples = own.partition("\nExamples\n--------\n")
    full = inspect.cleandoc(getattr(Exchange, method.__name__).__doc__ or "")
    start = full.find("\nParameters\n")
    sections = full[start:].split("\nExamples\n--------\n")[0] if start >= 0 else ""
    lines, skip = [], False
    for line in sections.splitlines():
        if line.startswith("symbol :"):
            skip = True
            continue
        if skip and line.startswith(" "):
            continue
        skip = False
        lines.append(line)
    doc = summary.rstrip() + "\n" + "\n".join(lines).rstrip()
    if examples:
        doc += "\n\nExamples\n--------\n" + examples
    method.__doc__ = doc
    return method


class Book:
    """A limit order book with price-time priority.

    Standalone, ``Book(tick_size=0.01)`` is a one-symbol exchange with the same per-order methods
    (without the symbol argument). ``Exchange.book(symbol)`` returns a live view of one symbol.

    Parameters
    ----------
    tick_size, lot_size : float
        Price and quantity increments.
    symbol : str
        Name of the symbol (standalone books only).
    **spec
        Rules as in :meth:`lob.Exchange.add_symbol` (``stp=``, ``price_band=``, ...).

    Examples
    --------
    >>> b = Book(tick_size=0.01)
    >>> _ = b.submit("buy", 5, price=99.98); _ = b.submit("sell", 3, price=100.02)
    >>> b.best_bid(), b.best_ask(), b.spread()
    ((99.98, 5), (100.02, 3), 0.04)
    """

    def __init__(self, tick_size: float = 0.01, lot_size: float = 1, symbol: str = "BOOK", **spec):
        from lob.exchange import Exchange

        ex = Exchange()
        ex.add_symbol(symbol, tick_size=tick_size, lot_size=lot_size, **spec)
        self._ex = ex
        self._info = ex.info(symbol)
        self._i = self._info.index
        self._eng = ex._engine

    @classmethod
    def _view(cls, ex, info) -> "Book":
        self = cls.__new__(cls)
        self._ex = ex
        self._info = info
        self._i = info.index
        self._eng = ex._engine
        return self

    # --- identity -------------------------------------------------------------------------------
    @property
    def symbol(self) -> str:
        """Name of the symbol."""
        return self._info.name

    @property
    def exchange(self):
        """The exchange this book belongs to (a private one for a standalone book)."""
        return self._ex

    @property
    def tick_size(self) -> float:
        """Price increment: prices are whole multiples of it."""
        return self._info.tick_size

    @property
    def lot_size(self) -> float:
        """Quantity increment: quantities are whole multiples of it."""
        return self._info.lot_size

    # --- orders ---------------------------------------------------------------------------------
    # each takes the arguments of the Exchange method of the same name but ``symbol`` (tests/test_stubs.py
    # checks the parameters agree); the docstring's parameter sections are the Exchange method's
    @_exchange_doc
    def submit(self, side, qty, price=None, type="limit", tif="gtc", owner=None, post_only=False,
               display_qty=None, stop_price=None, order_id=None, ts_ns=None):
        """Submit a new order to this book; return its execution report (:meth:`lob.Exchange.submit`).

        Examples
        --------
        >>> b = Book(tick_size=0.5)
        >>> _ = b.submit("sell", 5, price=100.0, owner="bob")
        >>> r = b.submit("buy", 8, price=100.5, owner="ann"); (r.status, r.filled_qty, r.remaining_qty)
        ('partially_filled', 5, 3)
        """
        return self._ex.submit(self._info, side, qty, price, type=type, tif=tif, owner=owner,
                               post_only=post_only, display_qty=display_qty, stop_price=stop_price,
                               order_id=order_id, ts_ns=ts_ns)

    @_exchange_doc
    def cancel(self, order_id, owner=None, ts_ns=None):
        """Cancel a resting order or a pending stop of this book; return its report
        (:meth:`lob.Exchange.cancel`).

        Examples
        --------
        >>> b = Book(); oid = b.submit("buy", 5, price=99.0).order_id
        >>> b.cancel(oid).status, b.cancel(oid).reason, len(b)
        ('cancelled', 'unknown_order', 0)
        """
        return self._ex.cancel(self._info, order_id, owner=owner, ts_ns=ts_ns)

    @_exchange_doc
    def modify(self, order_id, qty=None, price=None, owner=None, stop_price=None, ts_ns=None):
        """Change an order's total quantity (filled part included) and/or its price; return its report
        (:meth:`lob.Exchange.modify`).

        Examples
        --------
        >>> b = Book(); oid = b.submit("buy", 5, price=99.0).order_id
        >>> r = b.modify(oid, qty=3); (r.status, r.remaining_qty, b.queue_position(oid))
        ('new', 3, (0, 0))
        """
        return self._ex.modify(self._info, order_id, qty, price, owner=owner, stop_price=stop_price,
                               ts_ns=ts_ns)

    @_exchange_doc
    def reduce(self, order_id, by_qty, owner=None, ts_ns=None):
        """Take ``by_qty`` off an order's open quantity, keeping its time priority; return its report
        (:meth:`lob.Exchange.reduce`).

        Examples
        --------
        >>> b = Book(); oid = b.submit("buy", 5, price=99.0).order_id
        >>> r = b.reduce(oid, 2); (r.status, r.remaining_qty, b.best_bid())
        ('new', 3, (99.0, 3))
        """
        return self._ex.reduce(self._info, order_id, by_qty, owner=owner, ts_ns=ts_ns)

    @_exchange_doc
    def replay_add(self, side, qty, price, order_id=None, owner=None, ts_ns=None):
        """Replay mode: rest an order as given, never matched (:meth:`lob.Exchange.replay_add`)."""
        return self._ex.replay_add(self._info, side, qty, price, order_id=order_id, owner=owner, ts_ns=ts_ns)

    @_exchange_doc
    def replay_execute(self, order_id, qty, price=None, level: bool = False, ts_ns=None):
        """Replay mode: an execution of a resting order (:meth:`lob.Exchange.replay_execute`)."""
        return self._ex.replay_execute(self._info, order_id, qty, price=price, level=level, ts_ns=ts_ns)

    @_exchange_doc
    def replay_delete(self, order_id, qty=None, ts_ns=None):
        """Replay mode: a (partial) deletion (:meth:`lob.Exchange.replay_delete`)."""
        return self._ex.replay_delete(self._info, order_id, qty=qty, ts_ns=ts_ns)

    def consistency_errors(self) -> int:
        """Replay events of this book rejected as inconsistent with it."""
        return self._eng.consistency_errors(self._i)

    def apply(self, events: np.ndarray):
        """Apply a batch (the ``symbol`` field must be this book's index, 0 for a standalone book)."""
        return self._ex.apply(events)

    # --- reading --------------------------------------------------------------------------------
    def best_bid(self):
        """(price, displayed qty) of the best bid, or None."""
        return self._ex._best(self._info, 0)

    def best_ask(self):
        """(price, displayed qty) of the best ask, or None."""
        return self._ex._best(self._info, 1)

    def level(self, price):
        """``(displayed qty, n_orders)`` resting at ``price`` (on either side), or None: one hash lookup.

        Examples
        --------
        >>> b = Book(); _ = b.submit("buy", 5, price=99.5); _ = b.submit("buy", 2, price=99.5)
        >>> b.level(99.5), b.level(99.6)
        ((7, 2), None)
        """
        return self._ex._level(self._info, price)

    def best_ticks(self):
        """(best bid, best ask) in ticks; 0 for an empty side."""
        return self._eng.best_prices(self._i)

    def mid(self):
        """Mid price, or None when a side is empty."""
        bid, ask = self._eng.best_prices(self._i)
        if not bid or not ask:
            return None
        return (bid + ask) / 2 * self._info.tick_size

    def spread(self):
        """Best ask minus best bid, or None when a side is empty."""
        bid, ask = self._eng.best_prices(self._i)
        if not bid or not ask:
            return None
        return self._info.price(ask - bid)

    @property
    def last_price(self):
        """Price of the last trade, or None before the first."""
        t = self._eng.last_price(self._i)
        return self._info.price(t) if t else None

    def depth_ticks(self, n: int = 10) -> dict:
        """Best ``n`` levels per side in integer ticks and lots: ``{"bids": [(price, qty, n_orders)], ...}``."""
        return {k: [tuple(int(x) for x in row[:3]) for row in self._eng.depth(self._i, side, n)]
                for k, side in (("bids", 0), ("asks", 1))}

    def depth(self, n: int = 10) -> dict:
        """Best ``n`` displayed levels per side: ``{"bids": [(price, qty, n_orders), ...], "asks": [...]}``."""
        p, q = self._info.price, self._info.qty
        return {k: [(p(int(r[0])), q(int(r[1])), int(r[2])) for r in self._eng.depth(self._i, side, n)]
                for k, side in (("bids", 0), ("asks", 1))}

    def depth_frame(self, n: int = 10) -> pd.DataFrame:
        """The depth as a DataFrame: one row per level, bids then asks, best first."""
        rows = []
        for side, name in ((0, "bid"), (1, "ask")):
            for lvl, r in enumerate(self._eng.depth(self._i, side, n)):
                rows.append((name, lvl, self._info.price(int(r[0])), self._info.qty(int(r[1])), int(r[2]),
                             self._info.qty(int(r[3]))))
        return pd.DataFrame(rows, columns=["side", "level", "price", "qty", "orders", "total_qty"])

    def orders_array(self, include_stops: bool = True) -> np.ndarray:
        """Live orders as an ``ORDER_DTYPE`` array (bids best first, asks best first, then pending stops)."""
        return self._eng.orders(self._i, include_stops)

    def orders(self, include_stops: bool = True) -> pd.DataFrame:
        """Live orders in priority order as a DataFrame (prices and quantities in user units)."""
        a = self._eng.orders(self._i, include_stops)
        info = self._info
        owners = [self._ex.owner_name(int(o)) for o in a["owner"]]
        df = pd.DataFrame({
            "order_id": a["order_id"],
            "side": np.array(_SIDE)[a["side"]] if len(a) else np.array([], dtype=object),
            "price": a["price_ticks"] * info.tick_size,
            "qty": a["qty_lots"] * info.lot_size,
            "visible_qty": a["visible_lots"] * info.lot_size,
            "filled_qty": a["filled_lots"] * info.lot_size,
            "type": np.array(_TYPE)[a["type"]] if len(a) else np.array([], dtype=object),
            "tif": np.array(_TIF)[a["tif"]] if len(a) else np.array([], dtype=object),
            "owner": owners,
            "ts_ns": a["ts_ns"],
            "stop_price": np.where(a["stop_ticks"] > 0, a["stop_ticks"] * info.tick_size, np.nan),
            "pending_stop": a["state"] == 2,
        })
        return df

    def order(self, order_id: int):
        """A live order (:class:`lob.OrderInfo`), or None: the ``ORDER_DTYPE`` fields as attributes or items
        (``o.qty_lots``, ``o["side"]``), ``o.price`` / ``o.qty`` in user units; no numpy record is built.

        Examples
        --------
        >>> b = Book(); r = b.submit("sell", 5, price=100.25, owner="ann")
        >>> o = b.order(r.order_id); (o.price, o.qty, o.side_name, o.owner_name, o["qty_lots"])
        (100.25, 5, 'sell', 'ann', 5)
        """
        return self._ex._order(self._info, order_id)

    def queue_position(self, order_id: int):
        """(orders ahead, displayed quantity ahead) of a resting order at its level, or None."""
        q = self._eng.queue_position(self._i, order_id)
        return None if q is None else (q[0], self._info.qty(q[1]))

    def stats(self) -> dict:
        """Counts and allocated bytes of this book."""
        return self._eng.stats(self._i)

    def __len__(self) -> int:
        return self._eng.stats(self._i)["resting_orders"]

    def state_hash(self) -> str:
        """Hex digest of every live order in priority order: equal books, equal hashes."""
        return f"{self._eng.state_hash(self._i):016x}"

    def check_integrity(self) -> None:
        """Raise ``BookIntegrityError`` if an invariant is broken (crossed book, links, totals, id map)."""
        self._eng.check_integrity(self._i)

    def __repr__(self) -> str:
        return f"Book({self.symbol!r}, bid={self.best_bid()}, ask={self.best_ask()}, orders={len(self)})"

    def _repr_html_(self) -> str:
        return _ladder_html(self, 10)


def _ladder_html(book: Book, n: int) -> str:
    """A price ladder: asks above (best at the bottom), bids below, with size bars."""
    d = book.depth(n)
    asks, bids = d["asks"], d["bids"]
    biggest = max([q for _, q, _ in asks + bids] or [1])
    dec = max(0, -int(np.floor(np.log10(book.tick_size)))) if book.tick_size < 1 else 0

    def row(price, qty, count, side):
        w = int(100 * qty / biggest) if biggest else 0
        colour = "#e57373" if side == "ask" else "#81c784"
        bar = f"<div style='background:{colour};height:10px;width:{w}px'></div>"
        left = bar if side == "bid" else ""
        right = bar if side == "ask" else ""
        return (f"<tr><td style='text-align:right'>{qty if side == 'bid' else ''}</td><td>{left}</td>"
                f"<td style='text-align:center;font-weight:bold'>{price:.{dec}f}</td><td>{right}</td>"
                f"<td>{qty if side == 'ask' else ''}</td><td style='color:#888'>{count}</td></tr>")

    body = "".join(row(p, q, c, "ask") for p, q, c in reversed(asks))
    spread = book.spread()
    body += (f"<tr><td colspan=6 style='text-align:center;color:#888'>spread "
             f"{'-' if spread is None else f'{spread:.{dec}f}'}</td></tr>")
    body += "".join(row(p, q, c, "bid") for p, q, c in bids)
    return (f"<table style='font-family:monospace;font-size:12px'><caption>{html.escape(book.symbol)}"
            f"</caption><tr><th>bid qty</th><th></th><th>price</th><th></th><th>ask qty</th><th>#</th></tr>"
            f"{body}</table>")
