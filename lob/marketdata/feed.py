"""A sequence-numbered level-2 delta + trade stream, and the client side that rebuilds books from it.

``L2Feed`` turns an exchange's outputs into messages. Per symbol it keeps the displayed depth it last
published and, after every batch or request, publishes only the levels that changed:

* ``{"type": "level2_update", "symbol": s, "seq": n, "snapshot": True, "bids": [[price, qty], ...],
  "asks": [...]}`` first for each subscriber (the full depth),
* ``{"type": "level2_update", "symbol": s, "seq": n, "prev_seq": m, "snapshot": False,
  "changes": [["buy"|"sell", price, qty], ...]}`` (qty 0 removes a level),
* ``{"type": "trade", "symbol": s, "seq": ..., "price": ..., "qty": ..., "aggressor": ..., "ts_ns": ...,
  "maker_order_id": ..., "taker_order_id": ..., "maker_owner": ..., "taker_owner": ...}`` (owner names, None
  for anonymous orders).

Feed sequence numbers are per symbol and consecutive, so a client detects a gap when ``prev_seq`` is not
the last ``seq`` it applied (and asks for a new snapshot). Prices and quantities are in user units.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from lob._core import FILL_DTYPE

__all__ = ["L2Feed", "BookBuilder"]

_SYM, _SEQ, _TS, _PX, _QTY, _AGG, _MOID, _TOID, _MOWN, _TOWN = (
    FILL_DTYPE.names.index(n) for n in ("symbol", "seq", "ts_ns", "price_ticks", "qty_lots", "aggressor",
                                        "maker_order_id", "taker_order_id", "maker_owner", "taker_owner"))


class L2Feed:
    """Publish level-2 deltas and trades of an exchange to subscriber callbacks.

    Parameters
    ----------
    exchange : lob.Exchange
    depth : int
        Levels per side tracked (a level moving outside is published as removed).
    """

    def __init__(self, exchange, depth: int = 50):
        self.exchange = exchange
        self.depth = depth
        self._last: dict[int, tuple[dict, dict]] = {}
        self._seq: dict[int, int] = {}
        self._subs: dict[int, list[Callable[[dict], None]]] = {}
        self._all: list[Callable[[dict], None]] = []
        exchange.add_listener(self)

    def _levels(self, i: int):
        return self._side(i, 0), self._side(i, 1)

    def _side(self, i: int, side: int) -> dict:
        return dict(self.exchange.depth_array(i, side, self.depth)[:, :2].tolist())

    def snapshot(self, symbol) -> dict:
        """The current full-depth message of a symbol (what a new subscriber receives first)."""
        info = self.exchange.info(symbol)
        i = info.index
        if i not in self._last:
            self._last[i] = self._levels(i)
            self._seq.setdefault(i, 0)
        bids, asks = self._last[i]
        return {"type": "level2_update", "symbol": info.name, "seq": self._seq[i], "snapshot": True,
                "bids": [[info.price(p), info.qty(q)] for p, q in sorted(bids.items(), reverse=True)],
                "asks": [[info.price(p), info.qty(q)] for p, q in sorted(asks.items())]}

    def subscribe(self, symbol, callback: Callable[[dict], None]) -> dict:
        """Call ``callback(message)`` for every later message of a symbol; return the snapshot to start from."""
        info = self.exchange.info(symbol)
        self._subs.setdefault(info.index, []).append(callback)
        return self.snapshot(info.index)

    def subscribe_all(self, callback: Callable[[dict], None]) -> None:
        """Call ``callback(message)`` for every message of every symbol."""
        self._all.append(callback)

    def unsubscribe(self, symbol, callback) -> None:
        subs = self._subs.get(self.exchange.info(symbol).index, [])
        if callback in subs:
            subs.remove(callback)

    def _emit(self, i: int, msg: dict):
        for cb in list(self._subs.get(i, ())) + self._all:
            cb(msg)

    def __call__(self, events, reports, fills):
        if not len(events):
            return
        if len(fills):
            infos = self.exchange._infos
            owner = self.exchange.owner_name
            for row in fills.tolist():
                i = row[_SYM]
                info = infos[i]
                self._emit(i, {"type": "trade", "symbol": info.name, "seq": row[_SEQ],
                               "price": info.price(row[_PX]), "qty": info.qty(row[_QTY]),
                               "aggressor": "buy" if row[_AGG] == 0 else "sell", "ts_ns": row[_TS],
                               "maker_order_id": row[_MOID], "taker_order_id": row[_TOID],
                               "maker_owner": owner(row[_MOWN]), "taker_owner": owner(row[_TOWN])})
        single = len(events) == 1
        syms = [int(events["symbol"][0])] if single else np.unique(events["symbol"]).tolist()
        for i in syms:
            if i not in self._last and not self._subs.get(i) and not self._all:
                continue
            old = self._last.get(i)
            if old is not None and single:
                # one request touches only the sides of its reports (the order and any side effects) and, when
                # it trades, the makers' side: the other side's depth is the one published last
                touched = set(reports["side"].tolist())
                if len(fills):
                    touched.update(1 - a for a in fills["aggressor"].tolist())
                new = tuple(self._side(i, side) if side in touched else old[side] for side in (0, 1))
            else:
                old = old or ({}, {})
                new = self._levels(i)
            changes = []
            for side, name in ((0, "buy"), (1, "sell")):
                o, n = old[side], new[side]
                if o == n:
                    continue
                side_changes = [(p, q) for p, q in n.items() if o.get(p) != q]
                side_changes += [(p, 0) for p in o if p not in n]
                side_changes.sort()
                changes += [(name, p, q) for p, q in side_changes]
            self._last[i] = new
            if not changes:
                continue
            prev = self._seq.get(i, 0)
            self._seq[i] = prev + 1
            info = self.exchange._infos[i]
            self._emit(i, {"type": "level2_update", "symbol": info.name, "seq": prev + 1, "prev_seq": prev,
                           "snapshot": False,
                           "changes": [[s, info.price(p), info.qty(q)] for s, p, q in changes]})


class BookBuilder:
    """The client side: rebuild displayed books from ``level2_update`` messages and detect gaps.

    Examples
    --------
    >>> import lob
    >>> ex = lob.Exchange(symbols=["X"]); feed = L2Feed(ex); client = BookBuilder()
    >>> client.apply(feed.subscribe("X", client.apply))
    >>> _ = ex.submit("X", "buy", 3, price=9.5, ts_ns=1)
    >>> client.books["X"]
    {'bids': [[9.5, 3]], 'asks': []}
    """

    def __init__(self):
        self._bids: dict[str, dict] = {}
        self._asks: dict[str, dict] = {}
        self.seq: dict[str, int] = {}
        self.gaps: list[tuple[str, int, int]] = []      # (symbol, expected prev_seq, got prev_seq)

    def apply(self, msg: dict) -> None:
        if msg.get("type") != "level2_update":
            return
        s = msg["symbol"]
        if msg.get("snapshot"):
            self._bids[s] = {p: q for p, q in msg["bids"]}
            self._asks[s] = {p: q for p, q in msg["asks"]}
            self.seq[s] = msg["seq"]
            return
        if s not in self.seq:
            return                                      # deltas before the snapshot are ignored
        if msg["prev_seq"] != self.seq[s]:
            self.gaps.append((s, self.seq[s], msg["prev_seq"]))
        for side, p, q in msg["changes"]:
            book = self._bids[s] if side == "buy" else self._asks[s]
            if q:
                book[p] = q
            else:
                book.pop(p, None)
        self.seq[s] = msg["seq"]

    @property
    def books(self) -> dict:
        return {s: {"bids": [[p, q] for p, q in sorted(self._bids[s].items(), reverse=True)],
                    "asks": [[p, q] for p, q in sorted(self._asks[s].items())]} for s in self._bids}
