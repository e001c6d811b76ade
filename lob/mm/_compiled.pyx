# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled forms of the built-in market makers, run by the backtest step loop (:mod:`lob.replay._steploop`).

Each mirrors its Python class in :mod:`lob.mm` operation for operation (the same floating-point
expressions in the same order, Python's round-half-even as ``rint``), so that a backtest gives identical
orders, fills, positions and PnL in either form (tests/test_backtest.py checks it on the GOOG day).
``MarketMaker.compiled()`` builds them; :meth:`CMarketMaker.sync` copies the state of a run back onto the
Python object. Their hooks are the ``nogil`` ones (``on_book_nogil``...): the step loop runs them without the
GIL, taking it only for the few Python calls (the arrival-rate fit every 50 books, the markout log).
"""
cimport cython
from libc.math cimport ceil, exp, floor, log, log1p, pow, rint, sqrt
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport free, malloc, realloc

from lob.replay._steploop cimport CompiledStrategy, FillRec, OpenOrder, StepLoop

import numpy as np


cdef enum:
    MAX_QUOTES = 128             # quotes per decision and open orders reconciled in C (more: in Python)


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
        self.runs_nogil = True

    cdef int on_start(self, StepLoop loop) except -1:
        self.tick = loop.tick
        self.lot = loop.lot
        self.tag_bid = loop.tag_id("bid")
        self.tag_ask = loop.tag_id("ask")
        return 0

    # --- for subclasses -------------------------------------------------------------------------
    cdef int observe(self, StepLoop loop, int64_t bid, int64_t ask) except -1 nogil:
        return 0

    cdef int quotes(self, StepLoop loop, int64_t bid, int64_t ask) except -1 nogil:
        return 0

    cdef inline int quote(self, int side, int64_t price, int64_t qty) noexcept nogil:
        if qty > 0 and self.n_quotes < MAX_QUOTES:
            self.q_side[self.n_quotes] = side
            self.q_price[self.n_quotes] = price
            self.q_qty[self.n_quotes] = qty
            self.n_quotes += 1
        return 0

    cdef inline int64_t size_lots(self) noexcept nogil:
        cdef int64_t n = <int64_t>rint(self.size / self.lot)
        return n if n > 1 else 1

    cdef inline double position(self, StepLoop loop) noexcept nogil:
        return loop.position * self.lot

    cdef inline double inventory(self, StepLoop loop) noexcept nogil:
        return self.position(loop) / self.size

    cdef inline bint can_buy(self, StepLoop loop, int64_t qty_lots) noexcept nogil:
        return self.position(loop) + qty_lots * self.lot <= self.max_position + 1e-9

    cdef inline bint can_sell(self, StepLoop loop, int64_t qty_lots) noexcept nogil:
        return self.position(loop) - qty_lots * self.lot >= -self.max_position - 1e-9

    cdef inline int bid_ask(self, double bid_px, double ask_px, int64_t best_bid, int64_t best_ask,
                            int64_t* b_out, int64_t* a_out) noexcept nogil:
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
    cdef int cancel_all(self, StepLoop loop) except -1 nogil:
        cdef int32_t i
        cdef int32_t n = loop.n_open
        cdef int r = 0
        cdef uint64_t* ids = <uint64_t*>malloc((n + 1) * sizeof(uint64_t))
        if ids == NULL:
            with gil:
                raise MemoryError()
        for i in range(n):
            ids[i] = loop.open_orders[i].order_id
        for i in range(n):
            r = loop.cancel(ids[i])
            if r < 0:
                break
        free(ids)
        return r

    cdef int on_book(self, StepLoop loop) except -1:
        return self.on_book_nogil(loop)

    cdef int on_book_nogil(self, StepLoop loop) except -1 nogil:
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

    cdef int reconcile(self, StepLoop loop) except -1 nogil:
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
            with gil:
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
        return self.on_fill_nogil(loop, f)

    cdef int on_trade(self, StepLoop loop, int64_t price, int64_t qty, int aggressor, int64_t ts_ns) except -1:
        return self.on_trade_nogil(loop, price, qty, aggressor, ts_ns)

    cdef int on_fill_nogil(self, StepLoop loop, const FillRec* f) except -1 nogil:
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

    cdef int quotes(self, StepLoop loop, int64_t bid, int64_t ask) except -1 nogil:
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


# ------------------------------------------------------------------------------------------------
# Estimators (lob.mm.estimators, the same arithmetic)
# ------------------------------------------------------------------------------------------------
cdef struct Ewma:                 # EwmaVolatility
    double halflife_s
    double var
    int64_t last_ts
    double last_mid
    bint has_last
    int64_t n


cdef inline void ewma_init(Ewma* v, double halflife_s, double initial) noexcept nogil:
    v.halflife_s = halflife_s
    v.var = initial * initial
    v.has_last = False
    v.n = 0


cdef inline void ewma_update(Ewma* v, int64_t ts_ns, double mid) noexcept nogil:
    cdef double dt, w
    if not v.has_last:
        v.last_ts = ts_ns
        v.last_mid = mid
        v.has_last = True
        return
    dt = (ts_ns - v.last_ts) / 1e9
    if dt <= 0:
        return
    w = 1.0 - exp(-dt / v.halflife_s * log(2.0))
    v.var += w * (pow(mid - v.last_mid, 2.0) / dt - v.var)
    v.last_ts = ts_ns
    v.last_mid = mid
    v.n += 1


cdef inline double ewma_sigma(Ewma* v) noexcept nogil:
    return sqrt(v.var if v.var > 0.0 else 0.0)


cdef class _Ring:
    """A growable FIFO of (int64 ts, double a, double b) rows (the estimators' deques)."""
    cdef int64_t* ts
    cdef double* a
    cdef double* b
    cdef int64_t head
    cdef int64_t n
    cdef int64_t cap

    def __dealloc__(self):
        free(self.ts)
        free(self.a)
        free(self.b)

    cdef int push(self, int64_t ts, double a, double b) except -1 nogil:
        cdef int64_t m, i
        if self.head + self.n == self.cap:
            if self.head > 0:                       # compact first
                m = self.n
                for i in range(m):
                    self.ts[i] = self.ts[self.head + i]
                    self.a[i] = self.a[self.head + i]
                    self.b[i] = self.b[self.head + i]
                self.head = 0
            if self.n == self.cap:
                self.cap = self.cap * 2 if self.cap else 256
                self.ts = <int64_t*>realloc(self.ts, self.cap * sizeof(int64_t))
                self.a = <double*>realloc(self.a, self.cap * sizeof(double))
                self.b = <double*>realloc(self.b, self.cap * sizeof(double))
                if self.ts == NULL or self.a == NULL or self.b == NULL:
                    with gil:
                        raise MemoryError()
        self.ts[self.head + self.n] = ts
        self.a[self.head + self.n] = a
        self.b[self.head + self.n] = b
        self.n += 1
        return 0

    cdef inline void pop(self) noexcept nogil:
        self.head += 1
        self.n -= 1
        if self.n == 0:
            self.head = 0


cdef class _Markouts:
    """MarkoutTracker: EWMA of the markouts of own fills at a horizon."""
    cdef int64_t horizon_ns
    cdef double alpha
    cdef public double score
    cdef _Ring pending                  # (ts, sign, price_ticks)
    cdef public list markouts

    def __init__(self, int64_t horizon_ns, double alpha=0.2):
        self.horizon_ns = horizon_ns
        self.alpha = alpha
        self.score = 0.0
        self.pending = _Ring()
        self.markouts = []

    cdef int on_fill(self, int64_t ts_ns, int sign, double price_ticks) except -1 nogil:
        return self.pending.push(ts_ns, sign, price_ticks)

    cdef int update(self, int64_t ts_ns, double mid) except -1 nogil:
        cdef double mo
        while self.pending.n and self.pending.ts[self.pending.head] + self.horizon_ns <= ts_ns:
            mo = <int>self.pending.a[self.pending.head] * (mid - self.pending.b[self.pending.head])
            self.pending.pop()
            with gil:
                self.markouts.append(mo)
            self.score += self.alpha * (mo - self.score)
        return 0

    cdef inline double toxicity(self) noexcept nogil:
        return -self.score if -self.score > 0.0 else 0.0


cdef class _Arrivals:
    """ArrivalFitter: trade depths from the mid over a rolling window; the fit is lob.mm.estimators.fit_intensity."""
    cdef int64_t window_ns
    cdef int64_t t0
    cdef bint has_t0
    cdef _Ring obs                      # (ts, depth, -)
    cdef object fit_fn

    def __init__(self, double window_s):
        from lob.mm.estimators import fit_intensity

        self.window_ns = <int64_t>(window_s * 1e9)
        self.has_t0 = False
        self.obs = _Ring()
        self.fit_fn = fit_intensity

    cdef int on_trade(self, int64_t ts_ns, double price_ticks, bint buy, double mid, bint has_mid) except -1 nogil:
        cdef double depth
        if not has_mid:
            return 0
        if not self.has_t0:
            self.t0 = ts_ns
            self.has_t0 = True
        depth = price_ticks - mid if buy else mid - price_ticks
        self.obs.push(ts_ns, depth if depth > 0.0 else 0.0, 0.0)
        while self.obs.n and self.obs.ts[self.obs.head] < ts_ns - self.window_ns:
            self.obs.pop()
        return 0

    cdef object fit(self, int64_t now_ns):
        cdef double span
        cdef int64_t d
        if not self.has_t0:
            return None
        d = now_ns - self.t0
        if d > self.window_ns:
            d = self.window_ns
        span = d / 1e9
        if span <= 0:
            return None
        depths = np.empty(self.obs.n)
        cdef double[::1] dv = depths
        for i in range(self.obs.n):
            dv[i] = self.obs.a[self.obs.head + i]
        return self.fit_fn(depths, span)


cdef inline double _trade_ticks(StepLoop loop, int64_t price) noexcept nogil:
    # the trade's price as the Python form sees it: price units back to ticks
    return (price * loop.tick) / loop.tick


# ------------------------------------------------------------------------------------------------
# Avellaneda-Stoikov, GLFT, adaptive
# ------------------------------------------------------------------------------------------------
@cython.final
cdef class CAvellanedaStoikov(CMarketMaker):
    """The compiled :class:`lob.mm.AvellanedaStoikov`."""
    cdef double gamma
    cdef bint k_fit
    cdef bint sigma_fixed_set
    cdef double sigma_fixed
    cdef double horizon_s
    cdef bint rolling
    cdef double min_tau_s
    cdef public double k
    cdef Ewma vol
    cdef _Arrivals fitter
    cdef int64_t t0
    cdef bint has_t0
    cdef public int64_t n_books

    def __init__(self, double gamma, k, sigma, double horizon_s, bint rolling, double k0, double min_tau_s,
                 double fit_window_s, double vol_halflife_s, **kw):
        super().__init__(**kw)
        self.gamma = gamma
        self.k_fit = k is None
        self.k = k0 if k is None else k
        self.sigma_fixed_set = sigma is not None
        self.sigma_fixed = sigma if sigma is not None else 0.0
        self.horizon_s = horizon_s
        self.rolling = rolling
        self.min_tau_s = min_tau_s
        ewma_init(&self.vol, vol_halflife_s, 1.0)
        self.fitter = _Arrivals(fit_window_s)
        self.wants_trades = True

    cdef inline double sigma(self) noexcept nogil:
        return self.sigma_fixed if self.sigma_fixed_set else ewma_sigma(&self.vol)

    cdef int observe(self, StepLoop loop, int64_t bid, int64_t ask) except -1 nogil:
        if not self.has_t0:
            self.t0 = loop.now
            self.has_t0 = True
        if bid and ask:
            ewma_update(&self.vol, loop.now, (bid + ask) / 2.0)
        self.n_books += 1
        if self.k_fit and self.n_books % 50 == 0:
            with gil:
                self._refit(loop.now)
        return 0

    cdef int _refit(self, int64_t now) except -1:
        fit = self.fitter.fit(now)
        if fit is not None:
            self.k = fit[1]
        return 0

    cdef int on_trade_nogil(self, StepLoop loop, int64_t price, int64_t qty, int aggressor,
                            int64_t ts_ns) except -1 nogil:
        return self.fitter.on_trade(ts_ns, _trade_ticks(loop, price), aggressor == 0, self.mid_ticks, self.has_mid)

    cdef int quotes(self, StepLoop loop, int64_t bid, int64_t ask) except -1 nogil:
        cdef double mid = (bid + ask) / 2.0
        cdef double tau, s2, r, half
        cdef int64_t b, a, n
        if self.rolling:
            tau = self.horizon_s
        else:
            tau = self.horizon_s - (loop.now - self.t0) / 1e9
            if tau < self.min_tau_s:
                tau = self.min_tau_s
        s2 = pow(self.sigma(), 2.0)
        r = mid - self.inventory(loop) * self.gamma * s2 * tau
        half = (self.gamma * s2 * tau + 2.0 / self.gamma * log1p(self.gamma / self.k)) / 2
        self.bid_ask(r - half, r + half, bid, ask, &b, &a)
        n = self.size_lots()
        if self.can_buy(loop, n):
            self.quote(0, b, n)
        if self.can_sell(loop, n):
            self.quote(1, a, n)
        return 0

    def sync(self, strategy):
        CMarketMaker.sync(self, strategy)
        strategy.k = self.k
        strategy._n = self.n_books
        strategy.t0 = self.t0 if self.has_t0 else None
        _sync_vol(strategy.vol, &self.vol)


@cython.final
cdef class CGLFT(CMarketMaker):
    """The compiled :class:`lob.mm.GLFT`."""
    cdef double gamma
    cdef bint A_fit
    cdef bint k_fit
    cdef double A_fixed
    cdef double k_fixed
    cdef bint sigma_fixed_set
    cdef double sigma_fixed
    cdef int64_t refit_every
    cdef public double A
    cdef public double k
    cdef public int64_t fits
    cdef public int64_t n_books
    cdef Ewma vol
    cdef _Arrivals fitter

    def __init__(self, double gamma, A, k, sigma, double A0, double k0, double fit_window_s, int64_t refit_every,
                 double vol_halflife_s, **kw):
        super().__init__(**kw)
        self.gamma = gamma
        self.A_fit = A is None
        self.k_fit = k is None
        self.A_fixed = A if A is not None else 0.0
        self.k_fixed = k if k is not None else 0.0
        self.A = A0 if A is None else A
        self.k = k0 if k is None else k
        self.sigma_fixed_set = sigma is not None
        self.sigma_fixed = sigma if sigma is not None else 0.0
        self.refit_every = refit_every
        ewma_init(&self.vol, vol_halflife_s, 1.0)
        self.fitter = _Arrivals(fit_window_s)
        self.wants_trades = True

    cdef inline double sigma(self) noexcept nogil:
        return self.sigma_fixed if self.sigma_fixed_set else ewma_sigma(&self.vol)

    cdef int observe(self, StepLoop loop, int64_t bid, int64_t ask) except -1 nogil:
        if bid and ask:
            ewma_update(&self.vol, loop.now, (bid + ask) / 2.0)
        self.n_books += 1
        if (self.A_fit or self.k_fit) and self.n_books % self.refit_every == 0:
            with gil:
                self._refit(loop.now)
        return 0

    cdef int _refit(self, int64_t now) except -1:
        fit = self.fitter.fit(now)
        if fit is not None:
            self.A = fit[0] if self.A_fit else self.A_fixed
            self.k = fit[1] if self.k_fit else self.k_fixed
            self.fits += 1
        return 0

    cdef int on_trade_nogil(self, StepLoop loop, int64_t price, int64_t qty, int aggressor,
                            int64_t ts_ns) except -1 nogil:
        return self.fitter.on_trade(ts_ns, _trade_ticks(loop, price), aggressor == 0, self.mid_ticks, self.has_mid)

    cdef int quotes(self, StepLoop loop, int64_t bid, int64_t ask) except -1 nogil:
        cdef double mid = (bid + ask) / 2.0
        cdef double q = self.inventory(loop)
        cdef double g = self.gamma, k = self.k, A = self.A, s = self.sigma()
        cdef double c1, c2, db, da
        cdef int64_t b, a, n
        if not (g > 0 and k > 0 and A > 0 and s >= 0):
            with gil:
                _glft_check(g, s, A, k)             # raises the Python form's ConfigError
        c1 = log1p(g / k) / g
        c2 = sqrt(pow(s, 2.0) * g / (2 * k * A) * pow(1 + g / k, 1 + k / g))
        db = c1 + (2 * q + 1) / 2 * c2
        da = c1 - (2 * q - 1) / 2 * c2
        self.bid_ask(mid - db, mid + da, bid, ask, &b, &a)
        n = self.size_lots()
        if self.can_buy(loop, n):
            self.quote(0, b, n)
        if self.can_sell(loop, n):
            self.quote(1, a, n)
        return 0

    def sync(self, strategy):
        CMarketMaker.sync(self, strategy)
        strategy.A, strategy.k, strategy.fits, strategy._n = self.A, self.k, self.fits, self.n_books
        _sync_vol(strategy.vol, &self.vol)


@cython.final
cdef class CAdaptive(CMarketMaker):
    """The compiled :class:`lob.mm.AdaptiveMarketMaker`."""
    cdef double base_spread_ticks
    cdef double vol_mult
    cdef double vol_horizon_s
    cdef double skew_ticks
    cdef double as_mult
    cdef Ewma vol
    cdef _Markouts markouts
    cdef int64_t lq_bid
    cdef int64_t lq_ask
    cdef double lq_half
    cdef bint has_lq

    def __init__(self, double base_spread_ticks, double vol_mult, double vol_horizon_s, double skew_ticks,
                 double as_mult, int64_t markout_ns, double vol_halflife_s, **kw):
        super().__init__(**kw)
        self.base_spread_ticks = base_spread_ticks
        self.vol_mult = vol_mult
        self.vol_horizon_s = vol_horizon_s
        self.skew_ticks = skew_ticks
        self.as_mult = as_mult
        ewma_init(&self.vol, vol_halflife_s, 0.5)
        self.markouts = _Markouts(markout_ns)

    cdef int observe(self, StepLoop loop, int64_t bid, int64_t ask) except -1 nogil:
        cdef double mid
        if bid and ask:
            mid = (bid + ask) / 2.0
            ewma_update(&self.vol, loop.now, mid)
            self.markouts.update(loop.now, mid)
        return 0

    cdef int quotes(self, StepLoop loop, int64_t bid, int64_t ask) except -1 nogil:
        cdef double mid = (bid + ask) / 2.0
        cdef double res = mid - self.skew_ticks * self.position(loop) / self.max_position
        cdef double half = (self.base_spread_ticks / 2 + self.vol_mult * ewma_sigma(&self.vol)
                            * pow(self.vol_horizon_s, 0.5) + self.as_mult * self.markouts.toxicity())
        cdef int64_t b, a, n
        self.bid_ask(res - half, res + half, bid, ask, &b, &a)
        n = self.size_lots()
        self.lq_bid, self.lq_ask, self.lq_half, self.has_lq = b, a, half, True
        if self.can_buy(loop, n):
            self.quote(0, b, n)
        if self.can_sell(loop, n):
            self.quote(1, a, n)
        return 0

    @property
    def last_quote(self):
        """(bid ticks, ask ticks, half spread) of the last quote, or None."""
        return (self.lq_bid, self.lq_ask, self.lq_half) if self.has_lq else None

    cdef int on_fill_nogil(self, StepLoop loop, const FillRec* f) except -1 nogil:
        CMarketMaker.on_fill_nogil(self, loop, f)
        return self.markouts.on_fill(f.ts_ns, 1 if f.side == 0 else -1, (f.price * loop.tick) / loop.tick)

    def sync(self, strategy):
        CMarketMaker.sync(self, strategy)
        strategy.last_quote = self.last_quote
        strategy.markouts.score = self.markouts.score
        strategy.markouts.markouts = list(self.markouts.markouts)
        _sync_vol(strategy.vol, &self.vol)


cdef int _glft_check(double g, double s, double A, double k) except -1:
    from lob.mm.glft import glft_coefficients
    glft_coefficients(g, s, A, k)
    return 0


cdef _sync_vol(v, Ewma* e):
    v.var = e.var
    v.n = e.n
    v._last = (e.last_ts, e.last_mid) if e.has_last else None


# the base class as a module attribute too (a cimport alone does not make one): the stubs import it from here
globals()["CompiledStrategy"] = CompiledStrategy
