"""``ReferenceBook``: the executable specification of the matching rules (docs/matching.md).

Slow on purpose and obviously correct: plain lists and dicts, one rule per branch, no indices to keep
in sync. It takes the same integer events as ``lob.Exchange.apply`` and returns the same report and fill
arrays, byte for byte, so property tests can hold the compiled engine to it. Use it to test your own
strategies' assumptions too.

Examples
--------
>>> import lob
>>> from lob.testing import ReferenceBook
>>> ev = lob.empty_events(2)
>>> ev["side"] = [1, 0]; ev["price_ticks"] = [100, 101]; ev["qty_lots"] = [5, 3]
>>> reports, fills = ReferenceBook().apply(ev)
>>> fills["price_ticks"].tolist(), fills["qty_lots"].tolist()
([100], [3])
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lob._core import FILL_DTYPE, ORDER_DTYPE, REPORT_DTYPE
from lob.enums import Action, OrderType, Reason, Status, STPMode, TIF, ModifyPolicy
from lob.errors import ConfigError

__all__ = ["ReferenceBook"]

BUY, SELL = 0, 1
MAX_PRICE, MAX_QTY, MAX_ID = 2 ** 32 - 1, 2 ** 30 - 1, 2 ** 63 - 1
POST_ONLY, SLIDE, REPLAY_LEVEL = 1, 2, 4
RESTING, STOP = 1, 2


@dataclass
class _Order:
    order_id: int
    owner: int
    side: int
    type: int
    tif: int
    flags: int
    price: int          # limit price (0 for stop-market)
    qty: int            # open quantity, displayed + hidden
    visible: int
    display: int
    filled: int
    ts: int
    stop: int = 0
    state: int = RESTING


@dataclass
class _Book:
    spec: dict
    bids: dict = field(default_factory=dict)    # price -> list of _Order (FIFO)
    asks: dict = field(default_factory=dict)
    stops: list = field(default_factory=list)   # pending stop _Orders in arrival order
    last: int = 0
    halted: bool = False
    consistency_errors: int = 0     # replay events rejected as inconsistent with the book

    def side(self, s):
        return self.bids if s == BUY else self.asks

    def find(self, oid):
        for book in (self.bids, self.asks):
            for queue in book.values():
                for o in queue:
                    if o.order_id == oid:
                        return o
        for o in self.stops:
            if o.order_id == oid:
                return o
        return None

    def best(self, s):
        book = self.side(s)
        if not book:
            return 0
        return max(book) if s == BUY else min(book)

    def remove(self, o):
        if o.state == STOP:
            self.stops.remove(o)
            return
        book = self.side(o.side)
        book[o.price].remove(o)
        if not book[o.price]:
            del book[o.price]

    def levels_best_first(self, s):
        book = self.side(s)
        return sorted(book, reverse=(s == BUY))


DEFAULT_SPEC = dict(min_qty=1, max_qty=0, band_bps=0, ref_price=0, market_band_ticks=0,
                    stp=int(STPMode.STP_NONE), modify_policy=int(ModifyPolicy.PRIORITY_STANDARD))


class ReferenceBook:
    """A pure-Python multi-symbol matching engine with the integer interface of ``Engine``.

    Parameters
    ----------
    n_symbols : int
        Number of books (symbol indices 0 .. n_symbols-1).
    specs : list of dict, optional
        Integer rules per symbol, keys as in ``Engine.set_spec`` (min_qty, max_qty, band_bps, ref_price,
        market_band_ticks, stp, modify_policy).
    """

    def __init__(self, n_symbols: int = 1, specs=None):
        specs = [{}] * n_symbols if specs is None else list(specs)
        if len(specs) != n_symbols:
            raise ConfigError(f"specs must have one dict per symbol ({n_symbols}), got {len(specs)}")
        for s in specs:
            unknown = sorted(set(s) - set(DEFAULT_SPEC))
            if unknown:
                raise ConfigError(f"unknown spec keys {unknown}; the keys are {sorted(DEFAULT_SPEC)}")
        self.books = [_Book(spec={**DEFAULT_SPEC, **s}) for s in specs]
        self.seq = 0
        self.next_auto_id = 1
        self._reports: list[dict] = []
        self._fills: list[dict] = []

    # --- outputs --------------------------------------------------------------------------------
    def _report(self, **kw):
        self.seq += 1
        r = dict(ts_ns=0, seq=self.seq, order_id=0, owner=0, price_ticks=0, filled_lots=0, cum_filled_lots=0,
                 remaining_lots=0, notional=0, event_index=0, symbol=0, action=0, side=0,
                 status=int(Status.REJECTED), reason=0, type=0, reserved=0)
        r.update(kw)
        self._reports.append(r)
        return r

    def _echo(self, ev, idx):
        return self._report(ts_ns=int(ev["ts_ns"]), order_id=int(ev["order_id"]), owner=int(ev["owner"]),
                            price_ticks=int(ev["price_ticks"]), event_index=idx, symbol=int(ev["symbol"]),
                            action=int(ev["action"]), side=int(ev["side"]), type=int(ev["type"]))

    def _about(self, sym, o, ts, idx, action, status, reason):
        return self._report(ts_ns=ts, order_id=o.order_id, owner=o.owner,
                            price_ticks=o.price if o.state == RESTING else 0, cum_filled_lots=o.filled,
                            remaining_lots=o.qty if status < Status.FILLED else 0, event_index=idx, symbol=sym,
                            action=action, side=o.side, status=status, reason=reason, type=o.type)

    # --- batch ----------------------------------------------------------------------------------
    def apply(self, events):
        """Apply a batch of ``EVENT_DTYPE`` events; return (reports, fills) like ``Exchange.apply``."""
        self._reports, self._fills = [], []
        for idx, ev in enumerate(events):
            self._one(ev, idx)
        reports = np.zeros(len(self._reports), dtype=REPORT_DTYPE)
        for i, r in enumerate(self._reports):
            for k, v in r.items():
                reports[k][i] = v
        fills = np.zeros(len(self._fills), dtype=FILL_DTYPE)
        for i, f in enumerate(self._fills):
            for k, v in f.items():
                fills[k][i] = v
        return reports, fills

    def _one(self, ev, idx):
        sym = int(ev["symbol"])
        if sym >= len(self.books):
            self._echo(ev, idx)["reason"] = int(Reason.UNKNOWN_SYMBOL)
            return
        b = self.books[sym]
        action = int(ev["action"])
        if int(ev["reserved"]):
            r = self._echo(ev, idx)                 # an edge rejection carried in the event
            r["reason"] = int(ev["reserved"])
            return
        if action == Action.ADD:
            self._add(b, sym, ev, idx)
        elif action == Action.CANCEL:
            self._cancel(b, sym, ev, idx)
        elif action == Action.MODIFY:
            self._modify(b, sym, ev, idx)
        elif action == Action.REDUCE:
            self._reduce(b, sym, ev, idx)
        elif action == Action.SESSION_END:
            self._session_end(b, sym, int(ev["ts_ns"]), idx)
        elif action == Action.HALT:
            b.halted = True
        elif action == Action.RESUME:
            b.halted = False
        elif action == Action.REPLAY_ADD:
            self._replay_add(b, sym, ev, idx)
        elif action == Action.REPLAY_EXECUTE:
            self._replay_execute(b, sym, ev, idx)
        elif action == Action.REPLAY_DELETE:
            self._replay_delete(b, sym, ev, idx)
        else:
            self._echo(ev, idx)["reason"] = int(Reason.INVALID_ORDER)

    # --- validation -----------------------------------------------------------------------------
    def _price_reason(self, b, price):
        if price <= 0 or price > MAX_PRICE:
            return int(Reason.INVALID_PRICE)
        if b.spec["band_bps"] > 0:
            ref = b.last or b.spec["ref_price"]
            if ref > 0 and abs(price - ref) * 10000 > b.spec["band_bps"] * ref:
                return int(Reason.PRICE_BAND)
        return 0

    def _qty_bad(self, b, qty):
        return qty <= 0 or qty > MAX_QTY or qty < b.spec["min_qty"] or (b.spec["max_qty"] > 0 and qty > b.spec["max_qty"])

    # --- add ------------------------------------------------------------------------------------
    def _add(self, b, sym, ev, idx):
        r = self._echo(ev, idx)
        side, typ, tif, flags = int(ev["side"]), int(ev["type"]), int(ev["tif"]), int(ev["flags"])
        owner, qty, price = int(ev["owner"]), int(ev["qty_lots"]), int(ev["price_ticks"])
        stop, display, ts, oid = int(ev["stop_ticks"]), int(ev["display_lots"]), int(ev["ts_ns"]), int(ev["order_id"])
        reason = 0
        if side > 1 or typ > 3 or tif > 3 or flags > 3 or owner < 0 or owner >= 2 ** 32 or oid > MAX_ID:
            reason = Reason.INVALID_ORDER
        elif b.halted:
            reason = Reason.HALTED
        elif self._qty_bad(b, qty) or display < 0 or display > MAX_QTY or display > qty:
            reason = Reason.INVALID_QTY
        elif typ in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            reason = self._price_reason(b, price)
        if not reason and typ in (OrderType.STOP, OrderType.STOP_LIMIT) and not 0 < stop <= MAX_PRICE:
            reason = Reason.INVALID_PRICE
        if not reason:
            if oid == 0:
                oid = self.next_auto_id
                r["order_id"] = oid
            elif b.find(oid) is not None:
                reason = Reason.DUPLICATE_ORDER_ID
        if reason:
            r["reason"] = int(reason)
            return
        self.next_auto_id = max(self.next_auto_id, oid + 1)
        if typ in (OrderType.MARKET, OrderType.STOP):
            r["price_ticks"] = 0
        if typ in (OrderType.STOP, OrderType.STOP_LIMIT) and not self._triggered(side, stop, b.last):
            b.stops.append(_Order(oid, owner, side, typ, tif, 0, price if typ == OrderType.STOP_LIMIT else 0, qty,
                                  qty, display if display < qty else 0, 0, ts, stop, STOP))
            r["status"] = int(Status.NEW)
            r["remaining_lots"] = qty
            return
        enter_type = OrderType.MARKET if typ == OrderType.STOP else (
            OrderType.LIMIT if typ == OrderType.STOP_LIMIT else typ)
        self._enter(b, sym, r, oid, owner, side, enter_type, tif, flags, price, qty, display, 0, ts, idx)
        self._release_stops(b, sym, ts, idx)

    @staticmethod
    def _triggered(side, stop, last):
        if last == 0:
            return False
        return last >= stop if side == BUY else last <= stop

    def _enter(self, b, sym, r, oid, owner, side, typ, tif, flags, price, qty, display, filled_before, ts, idx):
        opp = 1 - side
        opp_best = b.best(opp)
        market = typ == OrderType.MARKET
        if market:
            if opp_best == 0:
                limit = 0
            elif b.spec["market_band_ticks"] > 0:
                band = b.spec["market_band_ticks"]
                limit = opp_best + band if side == BUY else opp_best - band
            else:
                limit = None      # any price
        else:
            limit = price
            crosses = opp_best != 0 and (price >= opp_best if side == BUY else price <= opp_best)
            if flags & (POST_ONLY | SLIDE) and crosses:
                if flags & SLIDE:
                    price = opp_best - 1 if side == BUY else opp_best + 1
                    limit = price
                if not flags & SLIDE or price <= 0:
                    r.update(status=int(Status.REJECTED), reason=int(Reason.POST_ONLY_WOULD_CROSS),
                             cum_filled_lots=filled_before)
                    return
                r["price_ticks"] = price
        if tif == TIF.FOK and (opp_best == 0 or self._available(b, side, limit, owner, qty) < qty):
            r.update(status=int(Status.CANCELLED), reason=int(Reason.FOK_UNFILLABLE), cum_filled_lots=filled_before)
            return
        rem, stp_hit = qty, 0
        if opp_best != 0 and self._marketable(side, limit, opp_best):
            rem, stp_hit = self._match(b, sym, r, oid, owner, side, limit, qty, ts, idx)
        r["cum_filled_lots"] = filled_before + r["filled_lots"]
        if stp_hit == 1:
            r.update(status=int(Status.CANCELLED), reason=int(Reason.SELF_TRADE))
            return
        if rem == 0:
            if stp_hit == 2:            # STP decrement took its last lots; filled after a decrement is 3
                r.update(status=int(Status.CANCELLED), reason=int(Reason.SELF_TRADE))
            else:
                r["status"] = int(Status.FILLED)
            return
        if market or tif in (TIF.IOC, TIF.FOK):
            r.update(status=int(Status.CANCELLED), reason=int(Reason.NO_LIQUIDITY))
            return
        disp = display if 0 < display < rem else 0
        o = _Order(oid, owner, side, OrderType.LIMIT, tif, flags, price, rem, disp or rem, disp,
                   filled_before + r["filled_lots"], ts)
        b.side(side).setdefault(price, []).append(o)
        r["remaining_lots"] = rem
        r["status"] = int(Status.PARTIALLY_FILLED if o.filled > 0 else Status.NEW)

    @staticmethod
    def _marketable(side, limit, level_price):
        if limit is None:
            return True
        return level_price <= limit if side == BUY else level_price >= limit

    def _stp_mode(self, b, owner):
        return b.spec["stp"] if owner != 0 else STPMode.STP_NONE

    def _available(self, b, side, limit, owner, need):
        stp = self._stp_mode(b, owner)
        avail = 0
        for p in b.levels_best_first(1 - side):
            if not self._marketable(side, limit, p):
                break
            for o in b.side(1 - side)[p]:
                if stp != STPMode.STP_NONE and o.owner == owner:
                    if stp in (STPMode.STP_CANCEL_NEWEST, STPMode.STP_CANCEL_BOTH):
                        return avail
                    continue
                avail += o.qty
                if avail >= need:
                    return avail
        return avail

    def _match(self, b, sym, r, oid, owner, side, limit, rem, ts, idx):
        stp = self._stp_mode(b, owner)
        opp_book = b.side(1 - side)
        stp_hit = 0
        while rem > 0 and opp_book:
            p = b.best(1 - side)
            if not self._marketable(side, limit, p):
                break
            queue = opp_book[p]
            while rem > 0 and queue:
                o = queue[0]
                if stp != STPMode.STP_NONE and o.owner == owner:
                    if stp == STPMode.STP_CANCEL_NEWEST:
                        return rem, 1
                    if stp in (STPMode.STP_CANCEL_OLDEST, STPMode.STP_CANCEL_BOTH):
                        self._about(sym, o, ts, idx, Action.CANCEL, Status.CANCELLED, Reason.SELF_TRADE)
                        queue.pop(0)
                        if stp == STPMode.STP_CANCEL_BOTH:
                            if not queue:
                                del opp_book[p]
                            return rem, 1
                        continue
                    q = min(rem, o.visible)          # decrement
                    rem -= q
                    stp_hit = 2
                    o.visible -= q
                    o.qty -= q
                    if o.qty == 0:
                        self._about(sym, o, ts, idx, Action.CANCEL, Status.CANCELLED, Reason.SELF_TRADE)
                        queue.pop(0)
                    else:
                        self._about(sym, o, ts, idx, Action.REDUCE,
                                    Status.PARTIALLY_FILLED if o.filled > 0 else Status.NEW, Reason.SELF_TRADE)
                        if o.visible == 0:
                            self._refresh(queue, o, ts)
                    continue
                q = min(rem, o.visible)
                if stp_hit == 2:
                    stp_hit = 3                      # decremented, then filled: the fill decides the status
                self.seq += 1
                self._fills.append(dict(ts_ns=ts, seq=self.seq, price_ticks=p, qty_lots=q, maker_order_id=o.order_id,
                                        taker_order_id=oid, maker_owner=o.owner, taker_owner=owner, symbol=sym,
                                        aggressor=side, reserved0=0, reserved1=0))
                rem -= q
                r["filled_lots"] += q
                r["notional"] += q * p
                b.last = p
                o.visible -= q
                o.qty -= q
                o.filled += q
                if o.qty == 0:
                    queue.pop(0)
                elif o.visible == 0:
                    self._refresh(queue, o, ts)
            if not queue:
                del opp_book[p]
        return rem, stp_hit

    @staticmethod
    def _refresh(queue, o, ts):
        queue.remove(o)
        o.visible = min(o.display, o.qty)
        o.ts = ts
        queue.append(o)

    def _release_stops(self, b, sym, ts, idx):
        queue = []
        last = None
        while True:
            if b.last != last:
                last = b.last
                fired = [o for o in b.stops if self._triggered(o.side, o.stop, last)]
                b.stops = [o for o in b.stops if o not in fired]
                queue.extend(fired)
            if not queue:
                return
            o = queue.pop(0)
            r = self._report(ts_ns=ts, order_id=o.order_id, owner=o.owner, price_ticks=o.price,
                             cum_filled_lots=o.filled, event_index=idx, symbol=sym, action=int(Action.ADD),
                             side=o.side, type=o.type)
            self._enter(b, sym, r, o.order_id, o.owner, o.side,
                        OrderType.MARKET if o.type == OrderType.STOP else OrderType.LIMIT, o.tif, 0, o.price, o.qty,
                        o.display, o.filled, ts, idx)

    # --- replay mode: applied as given, never matched ------------------------------------------
    def _inconsistent(self, b, r, reason):
        r["reason"] = int(reason)
        b.consistency_errors += 1

    def _resting(self, b, oid):
        o = b.find(oid)
        return o if o is not None and o.state == RESTING else None

    def _replay_add(self, b, sym, ev, idx):
        r = self._echo(ev, idx)
        r["type"] = int(OrderType.LIMIT)
        side, owner, qty, price = int(ev["side"]), int(ev["owner"]), int(ev["qty_lots"]), int(ev["price_ticks"])
        oid = int(ev["order_id"])
        if side > 1 or not 0 <= owner < 2 ** 32 or oid > MAX_ID:
            r["reason"] = int(Reason.INVALID_ORDER)
        elif not 0 < qty <= MAX_QTY:
            r["reason"] = int(Reason.INVALID_QTY)
        elif not 0 < price <= MAX_PRICE:
            r["reason"] = int(Reason.INVALID_PRICE)
        elif oid != 0 and b.find(oid) is not None:
            self._inconsistent(b, r, Reason.DUPLICATE_ORDER_ID)
        elif b.best(1 - side) and (price >= b.best(SELL) if side == BUY else price <= b.best(BUY)):
            self._inconsistent(b, r, Reason.REPLAY_CROSSED)
        else:
            if oid == 0:
                oid = r["order_id"] = self.next_auto_id
            self.next_auto_id = max(self.next_auto_id, oid + 1)
            b.side(side).setdefault(price, []).append(
                _Order(oid, owner, side, OrderType.LIMIT, TIF.GTC, 0, price, qty, qty, 0, 0, int(ev["ts_ns"])))
            r.update(status=int(Status.NEW), remaining_lots=qty)

    def _take(self, b, o, q, ts):
        # q (<= open qty) of a resting order executed in place, displayed part first
        o.filled += q
        if q >= o.qty:
            b.remove(o)
            return
        o.qty -= q
        o.visible = max(o.visible - q, 0)
        if o.visible == 0:
            self._refresh(b.side(o.side)[o.price], o, ts)

    def _replay_execute(self, b, sym, ev, idx):
        r = self._echo(ev, idx)
        r["type"] = int(OrderType.LIMIT)
        qty, price, ts = int(ev["qty_lots"]), int(ev["price_ticks"]), int(ev["ts_ns"])
        if not 0 < qty <= MAX_QTY:
            r["reason"] = int(Reason.INVALID_QTY)
            return
        if not 0 <= price <= MAX_PRICE:
            r["reason"] = int(Reason.INVALID_PRICE)
            return
        oid = int(ev["order_id"])
        o = self._resting(b, oid)
        if o is not None:
            r.update(side=o.side, owner=o.owner, price_ticks=o.price)
            if price != 0 and price != o.price:
                return self._inconsistent(b, r, Reason.REPLAY_PRICE_MISMATCH)
            if qty > o.qty:
                return self._inconsistent(b, r, Reason.REPLAY_OVERSIZED)
            r.update(remaining_lots=o.qty - qty, cum_filled_lots=o.filled + qty,
                     status=int(Status.PARTIALLY_FILLED if o.qty > qty else Status.FILLED))
            self._take(b, o, qty, ts)
        elif b.find(oid) is None and int(ev["flags"]) & REPLAY_LEVEL and price > 0:
            side = BUY if price in b.bids else SELL
            queue = b.side(side).get(price)
            if not queue:
                return self._inconsistent(b, r, Reason.UNKNOWN_ORDER)
            if sum(x.qty for x in queue) < qty:
                return self._inconsistent(b, r, Reason.REPLAY_OVERSIZED)
            r.update(side=side, owner=0, price_ticks=price, cum_filled_lots=qty, status=int(Status.FILLED))
            rem = qty
            while rem > 0:
                x = b.side(side)[price][0]
                q = min(rem, x.visible)
                rem -= q
                self._take(b, x, q, ts)
        else:
            return self._inconsistent(b, r, Reason.UNKNOWN_ORDER)
        r.update(filled_lots=qty, notional=qty * r["price_ticks"])

    def _replay_delete(self, b, sym, ev, idx):
        r = self._echo(ev, idx)
        r["type"] = int(OrderType.LIMIT)
        qty, price = int(ev["qty_lots"]), int(ev["price_ticks"])
        if not 0 <= qty <= MAX_QTY:
            r["reason"] = int(Reason.INVALID_QTY)
            return
        o = self._resting(b, int(ev["order_id"]))
        if o is None:
            return self._inconsistent(b, r, Reason.UNKNOWN_ORDER)
        r.update(side=o.side, owner=o.owner, type=o.type, price_ticks=o.price, cum_filled_lots=o.filled)
        if price != 0 and price != o.price:
            return self._inconsistent(b, r, Reason.REPLAY_PRICE_MISMATCH)
        if qty > o.qty:
            return self._inconsistent(b, r, Reason.REPLAY_OVERSIZED)
        if qty in (0, o.qty):
            r["status"] = int(Status.CANCELLED)
            b.remove(o)
            return
        o.qty -= qty
        o.visible = min(o.visible, o.qty)
        r.update(remaining_lots=o.qty, status=int(Status.PARTIALLY_FILLED if o.filled > 0 else Status.NEW))

    # --- cancel / reduce / modify ---------------------------------------------------------------
    def _target(self, b, ev, r):
        o = b.find(int(ev["order_id"]))
        if o is None:
            r["reason"] = int(Reason.UNKNOWN_ORDER)
            return None
        if int(ev["owner"]) != 0 and int(ev["owner"]) != o.owner:
            r["reason"] = int(Reason.NOT_OWNER)
            return None
        r.update(side=o.side, type=o.type, owner=o.owner)
        return o

    def _cancel(self, b, sym, ev, idx):
        r = self._echo(ev, idx)
        o = self._target(b, ev, r)
        if o is None:
            return
        r.update(price_ticks=o.price, cum_filled_lots=o.filled, status=int(Status.CANCELLED))
        b.remove(o)

    def _reduce(self, b, sym, ev, idx):
        r = self._echo(ev, idx)
        o = self._target(b, ev, r)
        if o is None:
            return
        by = int(ev["qty_lots"])
        if by <= 0 or by > MAX_QTY:
            r["reason"] = int(Reason.INVALID_QTY)
            return
        r.update(price_ticks=o.price, cum_filled_lots=o.filled)
        if by >= o.qty:
            r["status"] = int(Status.CANCELLED)
            b.remove(o)
            return
        o.qty -= by
        o.visible = o.qty if o.state == STOP else min(o.visible, o.qty)
        r.update(remaining_lots=o.qty, status=int(Status.PARTIALLY_FILLED if o.filled > 0 else Status.NEW))

    def _modify(self, b, sym, ev, idx):
        r = self._echo(ev, idx)
        if b.halted:
            r["reason"] = int(Reason.HALTED)
            return
        o = self._target(b, ev, r)
        if o is None:
            return
        total, new_price, ts = int(ev["qty_lots"]), int(ev["price_ticks"]), int(ev["ts_ns"])
        r.update(cum_filled_lots=o.filled, price_ticks=o.price)
        if total <= 0 or total > MAX_QTY or (b.spec["max_qty"] > 0 and total > b.spec["max_qty"]):
            r.update(reason=int(Reason.INVALID_QTY), remaining_lots=o.qty)
            return
        stop = int(ev["stop_ticks"])
        if stop != 0 and not 0 < stop <= MAX_PRICE:
            r.update(reason=int(Reason.INVALID_PRICE), remaining_lots=o.qty)
            return
        if new_price != 0 and o.type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            reason = self._price_reason(b, new_price)
            if reason:
                r.update(reason=reason, remaining_lots=o.qty)
                return
        if total <= o.filled:
            r["status"] = int(Status.FILLED)
            b.remove(o)
            return
        new_open = total - o.filled
        if o.state == STOP:
            o.qty = o.visible = new_open
            if o.type == OrderType.STOP_LIMIT and new_price != 0:
                o.price = new_price
            if stop > 0:
                o.stop = stop
            r.update(price_ticks=o.price, remaining_lots=o.qty, status=int(Status.NEW))
            self._release_stops(b, sym, ts, idx)
            return
        price = new_price or o.price
        r["price_ticks"] = price
        if price == o.price and new_open == o.qty:
            r.update(remaining_lots=o.qty, status=int(Status.PARTIALLY_FILLED if o.filled > 0 else Status.NEW))
            return
        opp_best = b.best(1 - o.side)
        if o.flags & (POST_ONLY | SLIDE) and opp_best and (
                price >= opp_best if o.side == BUY else price <= opp_best):
            r.update(reason=int(Reason.POST_ONLY_WOULD_CROSS), remaining_lots=o.qty)
            return
        if price == o.price and new_open < o.qty and b.spec["modify_policy"] == ModifyPolicy.PRIORITY_STANDARD:
            o.qty = new_open
            o.visible = min(o.visible, new_open)
            r.update(remaining_lots=new_open, status=int(Status.PARTIALLY_FILLED if o.filled > 0 else Status.NEW))
            return
        b.remove(o)
        self._enter(b, sym, r, o.order_id, o.owner, o.side, OrderType.LIMIT, o.tif, o.flags, price, new_open,
                    o.display, o.filled, ts, idx)
        self._release_stops(b, sym, ts, idx)

    def _session_end(self, b, sym, ts, idx):
        for o in list(b.stops):
            if o.tif == TIF.DAY:
                r = self._about(sym, o, ts, idx, Action.CANCEL, Status.CANCELLED, Reason.EXPIRED)
                r["price_ticks"] = o.price
                b.stops.remove(o)
        for s in (BUY, SELL):
            for p in b.levels_best_first(s):
                for o in list(b.side(s)[p]):
                    if o.tif == TIF.DAY:
                        self._about(sym, o, ts, idx, Action.CANCEL, Status.CANCELLED, Reason.EXPIRED)
                        b.remove(o)

    # --- reading --------------------------------------------------------------------------------
    def orders(self, sym: int = 0) -> np.ndarray:
        """Live orders as ``ORDER_DTYPE`` in the engine's order: bids best first, asks best first, stops."""
        b = self.books[sym]
        rows = []
        for s in (BUY, SELL):
            for p in b.levels_best_first(s):
                rows.extend(b.side(s)[p])
        rows.extend(b.stops)
        out = np.zeros(len(rows), dtype=ORDER_DTYPE)
        for i, o in enumerate(rows):
            out[i] = (o.order_id, o.owner, o.price, o.qty, o.visible, o.display, o.filled, o.ts,
                      o.stop if o.state == STOP else 0, sym, o.side, o.type, o.tif, o.flags, o.state, 0)
        return out

    def depth(self, sym: int, side: int, n: int) -> np.ndarray:
        """(k, 4) int64: price, displayed qty, n_orders, total qty of the best k <= n levels."""
        b = self.books[sym]
        rows = [(p, sum(o.visible for o in b.side(side)[p]), len(b.side(side)[p]), sum(o.qty for o in b.side(side)[p]))
                for p in b.levels_best_first(side)[:n]]
        return np.array(rows, dtype=np.int64).reshape(-1, 4)

    def best_prices(self, sym: int = 0):
        """(best bid, best ask) in ticks; 0 for an empty side."""
        b = self.books[sym]
        return b.best(BUY), b.best(SELL)

    def consistency_errors(self, sym: int = 0) -> int:
        """Replay events of a book rejected as inconsistent with it."""
        return self.books[sym].consistency_errors

    def last_price(self, sym: int = 0) -> int:
        """Last trade price in ticks; 0 before the first trade."""
        return self.books[sym].last
