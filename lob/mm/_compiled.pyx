# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled forms of the built-in market makers, run by the backtest step loop (:mod:`lob.replay._steploop`).

Each mirrors its Python class in :mod:`lob.mm` operation for operation (the same floating-point
expressions in the same order, Python's round-half-even as ``rint``), so that a backtest gives identical
orders, fills, positions and PnL in either form (tests/test_backtest.py checks it on the GOOG day).
``MarketMaker.compiled()`` builds them; :meth:`CMarketMaker.sync` copies the state of a run back onto the
Python object.
"""
cimport cython
from libc.math cimport ceil, exp, floor, log, log1p, pow, rint, sqrt
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport free, malloc, realloc

from lob.replay._steploop cimport CompiledStrategy, FillRec, OpenOrder, StepLoop

import numpy as np

__all__ = ["CGrid", "CAvellanedaStoikov", "CGLFT", "CAdaptive"]

DEF MAX_QUOTES = 128
DEF LN2 = 0.6931471805599453


cdef class CMarketMaker(CompiledStrategy):
    """The compiled :class:`lob.mm.MarketMaker`: quotes -> cancel/replace, own position, kill on max_loss."""
    cdef double size
    cdef double max_position
    cdef double max_loss
    cdef bint has_max_loss
    cdef int64_t requote_ticks
    cdef public bint halted
    cdef public double halt_pnl
    cdef public int64_t cash_ticks
    cdef public int64_t position_lots
    cdef public double mid_ticks
    cdef public bint has_mid
    cdef public int64_t n_fills
    cdef double tick
    cdef double lot
    cdef int32_t tag_bid
    cdef int32_t tag_ask
    cdef int64_t q_side[MAX_QUOTES]
    cdef int64_t q_price[MAX_QUOTES]
    cdef int64_t q_qty[MAX_QUOTES]
    cdef int n_quotes

    def __init__(self, double size, double max_position, max_loss, int64_t requote_ticks):
        self.size = size
        self.max_position = max_position
        self.has_max_loss = max_loss is not None
        self.max_loss = max_loss if max_loss is not None else 0.0
        self.requote_ticks = requote_ticks
        self.wants_fills = True
        self.wants_trades = False

    cdef int on_start(self, StepLoop loop) except -1:
        self.tick = loop.tick
        self.lot = loop.lot
        self.tag_bid = loop.tag_id("bid")
        self.tag_ask = loop.tag_id("ask")
        return 0

    # --- for subclasses -------------------------------------------------------------------------
    cdef int observe(self, StepLoop loop, int64_t bid, int64_t ask) except -1:
        return 0

    cdef int quotes(self, StepLoop loop, int64_t bid, int64_t ask) except -1:
        return 0

    cdef inline int quote(self, int side, int64_t price, int64_t qty) except -1:
        if qty > 0 and self.n_quotes < MAX_QUOTES:
            self.q_side[self.n_quotes] = side
            self.q_price[self.n_quotes] = price
            self.q_qty[self.n_quotes] = qty
            self.n_quotes += 1
        return 0

    cdef inline int64_t size_lots(self):
        cdef int64_t n = <int64_t>rint(self.size / self.lot)
        return n if n > 1 else 1

    cdef inline double position(self, StepLoop loop):
        return loop.position * self.lot

    cdef inline double inventory(self, StepLoop loop):
        return self.position(loop) / self.size

    cdef inline bint can_buy(self, StepLoop loop, int64_t qty_lots):
        return self.position(loop) + qty_lots * self.lot <= self.max_position + 1e-9

    cdef inline bint can_sell(self, StepLoop loop, int64_t qty_lots):
        return self.position(loop) - qty_lots * self.lot >= -self.max_position - 1e-9

    cdef inline int bid_ask(self, double bid_px, double ask_px, int64_t best_bid, int64_t best_ask,
                            int64_t* b_out, int64_t* a_out) except -1:
        # MarketMaker.bid_ask_ticks: a bid down and an ask up to ticks, never crossing the opposite best
        cdef int64_t b = <int64_t>floor(bid_px + 1e-9)
        cdef int64_t a = <int64_t>ceil(ask_px - 1e-9)
        cdef int64_t t
        if b > best_ask - 1:
            b = best_ask - 1
        if a < best_bid + 1:
            a = best_bid + 1
        if b >= a:
            t = b
            b = a - 1
            a = t + 1
        b_out[0] = b if b > 1 else 1
        a_out[0] = a
        return 0

    # --- the protocol ---------------------------------------------------------------------------
    cdef int cancel_all(self, StepLoop loop) except -1:
        cdef int32_t i
        cdef int32_t n = loop.n_open
        cdef uint64_t* ids = <uint64_t*>malloc((n + 1) * sizeof(uint64_t))
        for i in range(n):
            ids[i] = loop.open_orders[i].order_id
        try:
            for i in range(n):
                loop.cancel(ids[i])
        finally:
            free(ids)
        return 0

    cdef int on_book(self, StepLoop loop) except -1:
        cdef int64_t bid = loop.best_bid(), ask = loop.best_ask()
        cdef double pnl
        if bid and ask:
            self.mid_ticks = (bid + ask) / 2.0
            self.has_mid = True
        self.observe(loop, bid, ask)
        if self.halted:
            return self.cancel_all(loop)
        if self.has_max_loss and self.has_mid:
            pnl = (self.cash_ticks + self.position_lots * self.mid_ticks) * self.tick * self.lot
            if pnl < -self.max_loss:
                self.halted = True
                self.halt_pnl = pnl
                return self.cancel_all(loop)
        if not (bid and ask):
            return 0
        self.n_quotes = 0
        self.quotes(loop, bid, ask)
        return self.reconcile(loop)

    cdef int reconcile(self, StepLoop loop) except -1:
        # MarketMaker.reconcile: keep the nearest open order (by id order on ties) within requote_ticks of
        # each desired quote; cancel the others (by id), then submit what is missing (in quote order)
        cdef int32_t n = loop.n_open
        cdef int32_t i, j, k, t, best
        cdef int64_t d, best_d
        cdef int32_t order[MAX_QUOTES]
        cdef bint used[MAX_QUOTES]
        cdef bint missing[MAX_QUOTES]
        cdef OpenOrder* o
        if n > MAX_QUOTES:
            return self._reconcile_big(loop)
        for i in range(n):                  # open orders sorted by id (insertion sort: a handful)
            j = i
            while j > 0 and loop.open_orders[order[j - 1]].order_id > loop.open_orders[i].order_id:
                order[j] = order[j - 1]
                j -= 1
            order[j] = i
            used[i] = False
        for k in range(self.n_quotes):
            best = -1
            best_d = 0
            for t in range(n):
                if used[t]:
                    continue
                o = &loop.open_orders[order[t]]
                if o.side != self.q_side[k]:
                    continue
                d = o.price - self.q_price[k]
                if d < 0:
                    d = -d
                if d <= self.requote_ticks and (best < 0 or d < best_d):
                    best = t
                    best_d = d
            missing[k] = best < 0
            if best >= 0:
                used[best] = True
        cdef uint64_t cancel_ids[MAX_QUOTES]
        cdef int32_t nc = 0
        for t in range(n):
            if not used[t]:
                cancel_ids[nc] = loop.open_orders[order[t]].order_id
                nc += 1
        for t in range(nc):
            loop.cancel(cancel_ids[t])
        for k in range(self.n_quotes):
            if missing[k]:
                loop.submit(<int>self.q_side[k], self.q_price[k], self.q_qty[k], 0, False,
                            self.tag_bid if self.q_side[k] == 0 else self.tag_ask)
        return 0

    cdef int _reconcile_big(self, StepLoop loop) except -1:
        # more open orders than the fixed buffers hold (a latency longer than the step): the same rule in Python
        opens = sorted(loop.open_order_list())
        used = set()
        missing = []
        for k in range(self.n_quotes):
            best = None
            for oid, virtual, side, price, qty, tif, qa in opens:
                if oid in used or side != self.q_side[k]:
                    continue
                d = abs(price - self.q_price[k])
                if d <= self.requote_ticks and (best is None or d < best[0]):
                    best = (d, oid)
            if best is not None:
                used.add(best[1])
            else:
                missing.append(k)
        for row in opens:
            if row[0] not in used:
                loop.cancel(row[0])
        for k in missing:
            loop.submit(<int>self.q_side[k], self.q_price[k], self.q_qty[k], 0, False,
                        self.tag_bid if self.q_side[k] == 0 else self.tag_ask)
        return 0

    cdef int on_fill(self, StepLoop loop, const FillRec* f) except -1:
        cdef int64_t sign = 1 if f.side == 0 else -1
        self.position_lots += sign * f.qty
        self.cash_ticks -= sign * f.price * f.qty
        self.n_fills += 1
        return 0

    def sync(self, strategy):
        strategy.position_lots = self.position_lots
        strategy.cash_ticks = self.cash_ticks
        strategy.n_fills = self.n_fills
        strategy.mid_ticks = self.mid_ticks if self.has_mid else None
        strategy._tick, strategy._lot = self.tick, self.lot
        strategy.halted = bool(self.halted)
        if self.halted:
            strategy.halt_reason = f"max_loss: pnl {self.halt_pnl:.2f} < -{strategy.max_loss}"


@cython.final
cdef class CGrid(CMarketMaker):
    """The compiled :class:`lob.mm.GridMaker`."""
    cdef int64_t levels
    cdef int64_t spacing
    cdef int64_t recenter
    cdef public int64_t center
    cdef public bint has_center
    cdef public int64_t recenters

    def __init__(self, int64_t levels, int64_t spacing_ticks, int64_t recenter_ticks, **kw):
        super().__init__(**kw)
        self.levels = levels
        self.spacing = spacing_ticks
        self.recenter = recenter_ticks

    cdef int quotes(self, StepLoop loop, int64_t bid, int64_t ask) except -1:
        cdef double mid = (bid + ask) / 2.0
        cdef int64_t n, i, b, a
        cdef double long_room, short_room, pos
        if not self.has_center or abs(mid - self.center) > self.recenter:
            self.center = <int64_t>rint(mid)
            self.has_center = True
            self.recenters += 1
        n = self.size_lots()
        pos = self.position(loop)
        long_room = self.max_position - pos
        short_room = self.max_position + pos
        for i in range(1, self.levels + 1):
            b = self.center - self.spacing * i
            a = self.center + self.spacing * i
            if b < ask and b > 0 and long_room >= (i * n) * self.lot - 1e-9:
                self.quote(0, b, n)
            if a > bid and short_room >= (i * n) * self.lot - 1e-9:
                self.quote(1, a, n)
        return 0

    def sync(self, strategy):
        CMarketMaker.sync(self, strategy)
        strategy.center = self.center if self.has_center else None
        strategy.recenters = self.recenters
