# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The backtest step loop in C: time search, the latency queue, history application, fill accounting and marks.

:class:`lob.replay.Backtest` drives one :class:`StepLoop` per run. The strategy is a :class:`CompiledStrategy`
(a ``cdef class``: the built-in market makers' compiled forms, or one's own, see docs/market_making.md), or
any Python strategy behind :class:`PyStrategy`, which gives it the context of the strategy protocol
(``ctx.book``, ``ctx.ts_ns``, ``ctx.position``, ``ctx.open_orders``) and turns what it returns into intents.
Both go through the same loop, so a strategy's Python and compiled forms meet the same rules.

The loop over steps holds no Python object: for a strategy that ``runs_nogil`` (its ``*_nogil`` hooks
overridden: the built-in makers, :class:`CFuncStrategy` / ``lob.replay.NumbaStrategy``) ``run_chunk`` releases
the GIL and history goes through the engine's per-event C path; the GIL is taken only for Python strategies'
hooks, a Python queue model, a latency callable, and a market-data port attached to the engine.

The rules (the module docstring of :mod:`lob.replay.backtest` describes the impact modes): history up to
each boundary (a strategy arrival or the end of a decision step) goes first, then what arrives at the
boundary, then the strategy decides at step ends; a quiet stretch with nothing in flight skips its empty
steps.
"""
cimport cython
from cpython.ref cimport PyObject
from libc.math cimport INFINITY, fabs
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset

import numpy as np

from lob._engine cimport (ADD, CANCEL, MODIFY, BookC, Event, Fill, Report, FILLED, CANCELLED, REJECTED, NEW,
                          LIMIT, MARKET, GTC, IOC, FOK, DAY, FLAG_POST_ONLY, INVALID_PRICE, INVALID_PRICE_TICK,
                          INVALID_QTY, UNKNOWN_ORDER, core_apply, core_best, core_book, core_depth, core_level_qty,
                          core_order_total, core_queue_ahead)
from lob.errors import ConfigError
from lob.queue._compiled cimport CompiledQueueModel, QueueState


_ACTIONS = ("submit", "cancel", "modify")
_TIF_NAMES = ("gtc", "ioc", "fok", "day")
_TIF_CODES = {"gtc": 0, "ioc": 1, "fok": 2, "day": 3}
_SIDE_CODES = {"buy": 0, "sell": 1}

cdef OrderRec _order_dummy
cdef FillRec _fill_dummy
cdef MarkRec _mark_dummy
ORDER_REC_DTYPE = np.asarray(<OrderRec[:1]>&_order_dummy).dtype
FILL_REC_DTYPE = np.asarray(<FillRec[:1]>&_fill_dummy).dtype
MARK_REC_DTYPE = np.asarray(<MarkRec[:1]>&_mark_dummy).dtype

cdef enum:
    DEPTH_LEVELS = 1000          # levels an 'off' aggressor may walk


cdef void* grow_buffer(void* p, int64_t* cap, int64_t need, size_t item) except NULL nogil:
    # p resized to hold at least need items of item bytes (capacity doubles from 64); cap is updated
    cdef int64_t c = cap[0]
    cdef void* q
    if need <= c and p != NULL:
        return p
    if need < 1:
        need = 1
    c = c * 2 if c else 64
    while c < need:
        c *= 2
    q = realloc(p, c * item)
    if q == NULL:
        with gil:
            raise MemoryError()
    cap[0] = c
    return q


cdef inline void _qs_load(QueueState* st, OpenOrder* o) noexcept nogil:
    st.ahead = o.queue_ahead
    st.traded = o.traded
    st.data[0] = o.qdata[0]
    st.data[1] = o.qdata[1]


cdef inline void _qs_store(OpenOrder* o, QueueState* st) noexcept nogil:
    o.queue_ahead = st.ahead
    o.traded = st.traded
    o.qdata[0] = st.data[0]
    o.qdata[1] = st.data[1]


cdef inline bint _before(Pending* a, Pending* b) noexcept nogil:
    return a.arrival < b.arrival or (a.arrival == b.arrival and a.seq < b.seq)


cdef class CompiledStrategy:
    """Base of compiled strategies: override the C methods (``cdef int on_book(self, StepLoop loop) except -1``).

    ``on_start`` runs once before the data, ``on_book`` at the end of every decision step, ``on_fill`` after
    each fill of the strategy's orders (when ``wants_fills``), ``on_trade`` for each historical trade (when
    ``wants_trades``). They read the loop (``loop.best_bid()``, ``loop.best_ask()``, ``loop.position``,
    ``loop.open_orders[:loop.n_open]``, ``loop.now``) and act with ``loop.submit/cancel/modify``.

    The loop calls ``on_book_nogil``/``on_fill_nogil``/``on_trade_nogil``; by default they take the GIL and call
    the three above. A strategy that overrides them (``cdef int on_book_nogil(self, StepLoop loop) except -1
    nogil``) and sets ``self.runs_nogil = True`` runs with the loop over steps released from the GIL (the
    built-in makers and :class:`lob.replay.NumbaStrategy` do): other Python threads run meanwhile.
    """

    cdef int on_start(self, StepLoop loop) except -1:
        return 0

    cdef int on_book(self, StepLoop loop) except -1:
        return 0

    cdef int on_fill(self, StepLoop loop, const FillRec* fill) except -1:
        return 0

    cdef int on_trade(self, StepLoop loop, int64_t price, int64_t qty, int aggressor, int64_t ts_ns) except -1:
        return 0

    cdef int on_book_nogil(self, StepLoop loop) except -1 nogil:
        with gil:
            return self.on_book(loop)

    cdef int on_fill_nogil(self, StepLoop loop, const FillRec* fill) except -1 nogil:
        with gil:
            return self.on_fill(loop, fill)

    cdef int on_trade_nogil(self, StepLoop loop, int64_t price, int64_t qty, int aggressor,
                            int64_t ts_ns) except -1 nogil:
        with gil:
            return self.on_trade(loop, price, qty, aggressor, ts_ns)

    def sync(self, strategy):
        """Copy the state a run left here onto the strategy's Python form (after a compiled run)."""


@cython.final
cdef class StepLoop:
    """One backtest run: the engine, the strategy's orders and records (see the module docstring).

    Parameters
    ----------
    exchange : lob.Exchange
        Its engine is driven directly (no per-call Python path, no listeners, no risk).
    sym, owner : int
        Symbol index and the strategy's owner id.
    impact : int
        0 full, 1 consume, 2 off.
    step_ns : int
    tick, lot : float
    maker_bps, taker_bps : float
    latency : (submit_ns, cancel_ns, modify_ns) or a callable(action name) -> ns
    strategy : CompiledStrategy
    queue_model : lob.queue.models.QueueModel or lob.queue._compiled.CompiledQueueModel, optional
        The queue estimate of virtual orders: a compiled model runs without the GIL, a Python one is called
        with it; None: the risk-averse rule, compiled.
    """

    def __cinit__(self):
        self.open_orders = NULL
        self.heap = NULL
        self.orders = NULL
        self.fills = NULL
        self.marks = NULL
        self.scratch = NULL
        self.depth_p = NULL
        self.depth_q = NULL

    def __init__(self, exchange, int sym, int64_t owner, int impact, int64_t step_ns, double tick, double lot,
                 double maker_bps, double taker_bps, latency, CompiledStrategy strategy, queue_model=None):
        self.engine = exchange._engine
        self.book = core_book(self.engine, sym)
        self.sym = sym
        self.owner = owner
        self.impact = impact
        self.step_ns = step_ns
        self.tick = tick
        self.lot = lot
        self.maker_bps = maker_bps
        self.taker_bps = taker_bps
        if callable(latency):
            self.latency_fn = latency
            self.has_latency_fn = True
        else:
            self.latency_fn = None
            self.has_latency_fn = False
            for i in range(3):
                self.latency[i] = latency[i]
        self.strategy = strategy
        if isinstance(queue_model, CompiledQueueModel):
            self.cqueue = queue_model
            queue_model = None
        else:
            self.cqueue = CompiledQueueModel()
        self.queue_model = queue_model
        self.py_queue = queue_model is not None
        self.qstates = {}
        self.tags = [""]
        self.tag_index = {"": 0}
        self.now = 0
        self.started = False
        self.skip_check = False
        self.position = 0
        self.cash = 0.0
        self.fees_paid = 0.0
        self.next_id = 1 << 50
        self.depth_p = <int64_t*>malloc(DEPTH_LEVELS * sizeof(int64_t))
        self.depth_q = <int64_t*>malloc(DEPTH_LEVELS * sizeof(int64_t))
        if self.depth_p == NULL or self.depth_q == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.open_orders)
        free(self.heap)
        free(self.orders)
        free(self.fills)
        free(self.marks)
        free(self.scratch)
        free(self.depth_p)
        free(self.depth_q)

    # --- what strategies read -------------------------------------------------------------------
    cdef inline int64_t best_bid(self) noexcept nogil:
        return core_best(self.book, 0)

    cdef inline int64_t best_ask(self) noexcept nogil:
        return core_best(self.book, 1)

    cdef int64_t level_qty(self, int side, int64_t price) noexcept nogil:
        return core_level_qty(self.book, side, price)

    cdef int32_t find_open(self, uint64_t order_id) noexcept nogil:
        cdef int32_t i
        for i in range(self.n_open):
            if self.open_orders[i].order_id == order_id:
                return i
        return -1

    cdef int32_t tag_id(self, str tag) except -1:
        cdef object i = self.tag_index.get(tag)
        if i is None:
            i = len(self.tags)
            self.tags.append(tag)
            self.tag_index[tag] = i
        return i

    # --- what strategies do ---------------------------------------------------------------------
    cdef int64_t _latency(self, int action) except -1 nogil:
        cdef int64_t v
        if not self.has_latency_fn:
            return self.latency[action]
        with gil:
            v = self.latency_fn(_ACTIONS[action])
            if v < 0:
                raise ConfigError(f"latency must be >= 0 ns, got {v!r} for a {_ACTIONS[action]}")
        return v

    cdef uint64_t submit(self, int side, int64_t price, int64_t qty, int tif=GTC, bint post_only=False,
                         int32_t tag=0, uint64_t order_id=0, int reject=0) except 0 nogil:
        """Queue a new order (price 0: market); returns its id (``order_id`` or the next of the run's)."""
        cdef Pending p
        if order_id == 0:
            order_id = self.next_id
            self.next_id += 1
        p.arrival = self.now + self._latency(INTENT_SUBMIT)
        p.order_id = order_id
        p.price = price
        p.qty = qty
        p.tag = tag
        p.action = INTENT_SUBMIT
        p.side = <uint8_t>side
        p.tif = <uint8_t>tif
        p.post_only = post_only
        p.reject = <uint8_t>reject
        self._push(&p)
        return order_id

    cdef int cancel(self, uint64_t order_id) except -1 nogil:
        cdef Pending p
        memset(&p, 0, sizeof(Pending))
        p.arrival = self.now + self._latency(INTENT_CANCEL)
        p.order_id = order_id
        p.action = INTENT_CANCEL
        return self._push(&p)

    cdef int modify(self, uint64_t order_id, int64_t qty, int64_t price) except -1 nogil:
        """New total quantity (-1 keeps) and/or price (0 keeps)."""
        cdef Pending p
        memset(&p, 0, sizeof(Pending))
        p.arrival = self.now + self._latency(INTENT_MODIFY)
        p.order_id = order_id
        p.qty = qty
        p.price = price
        p.action = INTENT_MODIFY
        return self._push(&p)

    # --- the latency queue (binary heap) --------------------------------------------------------
    cdef int _push(self, Pending* p) except -1 nogil:
        cdef int64_t i, parent
        self.heap = <Pending*>grow_buffer(self.heap, &self.cap_heap, self.n_pending + 1, sizeof(Pending))
        self.seq += 1
        p.seq = self.seq
        i = self.n_pending
        self.n_pending += 1
        while i > 0:
            parent = (i - 1) >> 1
            if not _before(p, &self.heap[parent]):
                break
            self.heap[i] = self.heap[parent]
            i = parent
        self.heap[i] = p[0]
        return 0

    cdef int _pop(self, Pending* out) except -1 nogil:
        cdef int64_t i = 0, c, n
        cdef Pending last
        out[0] = self.heap[0]
        self.n_pending -= 1
        n = self.n_pending
        if n == 0:
            return 0
        last = self.heap[n]
        while True:
            c = 2 * i + 1
            if c >= n:
                break
            if c + 1 < n and _before(&self.heap[c + 1], &self.heap[c]):
                c += 1
            if not _before(&self.heap[c], &last):
                break
            self.heap[i] = self.heap[c]
            i = c
        self.heap[i] = last
        return 0

    # --- the run --------------------------------------------------------------------------------
    def start(self):
        """Call the strategy's on_start (before the data)."""
        self.strategy.on_start(self)

    def run_chunk(self, const Event[::1] events not None):
        """Run a chunk of historical events (EVENT_DTYPE, in time order) through the loop (without the GIL when
        the strategy ``runs_nogil``)."""
        cdef const Event* ev
        cdef int64_t n = events.shape[0]
        if n == 0:
            return
        ev = &events[0]
        if self.strategy.runs_nogil:
            with nogil:
                self.run_events(ev, n)
        else:
            self.run_events(ev, n)

    def finish(self):
        """Send what is still in flight after the last event, then take the final mark."""
        cdef Pending it
        while self.n_pending:
            self._pop(&it)
            if it.arrival > self.now:
                self.now = it.arrival
            self._send(&it)
        self._mark()

    cdef int run_events(self, const Event* ev, int64_t n) except -1 nogil:
        cdef int64_t start = 0, end, next_step, bound
        cdef Pending it
        cdef bint stepped
        if not self.started:
            self.started = True
            self.last_step = ev[0].ts_ns
        if self.skip_check:
            # the last step of the previous chunk used up its events: the quiet-stretch check looks here
            self.skip_check = False
            if self.n_pending == 0 and ev[0].ts_ns > self.last_step + self.step_ns:
                self.last_step += (ev[0].ts_ns - self.last_step) // self.step_ns * self.step_ns
        while start < n:
            next_step = self.last_step + self.step_ns
            bound = next_step
            if self.n_pending and self.heap[0].arrival < bound:
                bound = self.heap[0].arrival
            end = start
            while end < n and ev[end].ts_ns <= bound:
                end += 1
            if end > start:
                self._apply_history(&ev[start], end - start)
                start = end
            if end >= n and bound > ev[n - 1].ts_ns:
                break                       # the boundary lies in a later chunk
            self.now = bound
            while self.n_pending and self.heap[0].arrival <= bound:
                self._pop(&it)
                self._send(&it)
            if bound == next_step:
                self.last_step = next_step
                self._mark()
                self.decisions += 1
                self.strategy.on_book_nogil(self)
                if self.n_pending == 0:
                    if start < n:
                        if ev[start].ts_ns > next_step + self.step_ns:
                            # a quiet stretch (a halt, the lunch lull): skip the empty steps
                            self.last_step += (ev[start].ts_ns - next_step) // self.step_ns * self.step_ns
                    else:
                        self.skip_check = True
        return 0

    cdef int _apply_history(self, const Event* ev, int64_t n) except -1 nogil:
        cdef Report* reps
        cdef Fill* fs
        cdef int64_t nr, nf, i, nh = 0
        cdef Fill* f
        self._apply(ev, n, &reps, &nr, &fs, &nf)
        if nf:
            self.scratch = <Fill*>grow_buffer(self.scratch, &self.cap_scratch, nf, sizeof(Fill))
            memcpy(self.scratch, fs, nf * sizeof(Fill))
            for i in range(nf):
                f = &self.scratch[i]
                if f.maker_owner == self.owner or f.taker_owner == self.owner:
                    self._on_real_fill(f)
                else:
                    nh += 1
            if nh:
                if self.n_open and self.impact != IMPACT_FULL:
                    for i in range(nf):
                        f = &self.scratch[i]
                        if f.maker_owner != self.owner and f.taker_owner != self.owner:
                            self._virtual_fills(f)
                    if self.n_open:
                        self._clip()
                if self.strategy.wants_trades:
                    for i in range(nf - 1, -1, -1):
                        f = &self.scratch[i]
                        if f.maker_owner != self.owner and f.taker_owner != self.owner:
                            self.now = f.ts_ns
                            break
                    for i in range(nf):
                        f = &self.scratch[i]
                        if f.maker_owner != self.owner and f.taker_owner != self.owner:
                            self.strategy.on_trade_nogil(self, f.price_ticks, f.qty_lots, f.aggressor, f.ts_ns)
        elif self.n_open and self.impact != IMPACT_FULL:
            self._clip()
        return 0

    # --- sending intents ------------------------------------------------------------------------
    cdef int64_t _record_order(self, Pending* it) except -1 nogil:
        cdef OrderRec* r
        self.orders = <OrderRec*>grow_buffer(self.orders, &self.cap_orders, self.n_orders + 1, sizeof(OrderRec))
        r = &self.orders[self.n_orders]
        r.order_id = it.order_id
        r.ts_ns = self.now
        r.price = it.price
        r.qty = it.qty
        r.queue_ahead = -1
        r.tag = it.tag
        r.side = it.side
        r.tif = it.tif
        r.status = -1
        r.reserved = 0
        self.n_orders += 1
        return self.n_orders - 1

    cdef int _send(self, Pending* it) except -1 nogil:
        cdef int32_t i
        cdef OpenOrder o
        cdef Event e
        cdef Report* reps
        cdef Fill* fs
        cdef int64_t nr, nf, k, total
        cdef int64_t ri
        i = self.find_open(it.order_id)
        if it.action == INTENT_CANCEL:
            if i < 0:
                return 0
            o = self.open_orders[i]
            self._open_remove(i)
            if not o.virtual:
                memset(&e, 0, sizeof(Event))
                e.ts_ns = self.now
                e.order_id = it.order_id
                e.owner = self.owner
                e.symbol = <uint16_t>self.sym
                e.action = CANCEL
                self._apply(&e, 1, &reps, &nr, &fs, &nf)
            return 0
        if it.action == INTENT_MODIFY:
            if i < 0:
                return 0
            o = self.open_orders[i]
            if not o.virtual:
                memset(&e, 0, sizeof(Event))
                e.ts_ns = self.now
                e.order_id = it.order_id
                e.owner = self.owner
                e.symbol = <uint16_t>self.sym
                e.action = MODIFY
                e.price_ticks = it.price
                if it.qty >= 0:
                    e.qty_lots = it.qty
                else:
                    total = core_order_total(self.book, it.order_id)
                    e.qty_lots = total if total >= 0 else 1
                self._apply(&e, 1, &reps, &nr, &fs, &nf)
                self.scratch = <Fill*>grow_buffer(self.scratch, &self.cap_scratch, nf, sizeof(Fill))
                memcpy(self.scratch, fs, nf * sizeof(Fill))
                if reps[0].status != REJECTED:
                    self.open_orders[i].price = reps[0].price_ticks
                    self.open_orders[i].qty = reps[0].remaining_lots
                    self.open_version += 1
                    if reps[0].remaining_lots == 0:
                        self._open_remove(i)
                elif reps[0].reason == UNKNOWN_ORDER:
                    self._open_remove(i)
                for k in range(nf):
                    if self.scratch[k].taker_order_id == it.order_id and self.scratch[k].taker_owner == self.owner:
                        self._book_fill(it.order_id, self.scratch[k].aggressor, self.scratch[k].price_ticks,
                                        self.scratch[k].qty_lots, False, -1, self.scratch[k].ts_ns)
                    if self.scratch[k].maker_owner == self.owner:
                        self._on_real_fill(&self.scratch[k])
                return 0
            # a virtual order is replaced: a submit with the same id at the new price/quantity
            self._open_remove(i)
            it.action = INTENT_SUBMIT
            it.side = o.side
            it.tif = o.tif
            it.post_only = 0
            it.reject = 0
            it.tag = 0
            if it.qty < 0:
                it.qty = o.qty
            if it.price == 0:
                it.price = o.price
        ri = self._record_order(it)
        if self.impact == IMPACT_OFF:
            return self._virtual_submit(it, ri)
        if self.impact == IMPACT_CONSUME:
            return self._submit_real(it, ri, IOC)
        return self._submit_real(it, ri, it.tif)

    cdef int _submit_real(self, Pending* it, int64_t ri, int tif) except -1 nogil:
        cdef Event e
        cdef Report* reps
        cdef Fill* fs
        cdef int64_t nr, nf, k, left, q
        cdef OpenOrder o
        cdef Fill* f
        memset(&e, 0, sizeof(Event))
        e.ts_ns = self.now
        e.order_id = it.order_id
        e.owner = self.owner
        e.price_ticks = it.price
        e.qty_lots = it.qty
        e.symbol = <uint16_t>self.sym
        e.action = ADD
        e.side = it.side
        e.type = LIMIT if it.price else MARKET
        e.tif = <uint8_t>tif
        e.flags = FLAG_POST_ONLY if (it.post_only and self.impact == IMPACT_FULL) else 0
        e.reserved = it.reject
        self._apply(&e, 1, &reps, &nr, &fs, &nf)
        self.orders[ri].status = reps[0].status
        left = reps[0].remaining_lots
        self.scratch = <Fill*>grow_buffer(self.scratch, &self.cap_scratch, nf, sizeof(Fill))
        memcpy(self.scratch, fs, nf * sizeof(Fill))
        for k in range(nf):
            f = &self.scratch[k]
            if f.taker_order_id == it.order_id and f.taker_owner == self.owner:
                self._book_fill(it.order_id, it.side, f.price_ticks, f.qty_lots, False, -1, f.ts_ns)
            if f.maker_owner == self.owner:
                self._on_real_fill(f)           # a self-trade: the strategy's resting order was the maker
        if self.impact == IMPACT_FULL and left > 0:
            # rests in the book: the displayed quantity ahead of it at entry
            q = core_queue_ahead(self.book, it.order_id)
            self.orders[ri].queue_ahead = q
            o.order_id = it.order_id
            o.price = reps[0].price_ticks
            o.qty = left
            o.queue_ahead = q if q >= 0 else 0
            o.shown = 0
            o.traded = 0.0
            o.side = it.side
            o.virtual = 0
            o.tif = it.tif
            o.reserved = 0
            o.qdata[0] = 0.0
            o.qdata[1] = 0.0
            self._open_add(&o)
        if self.impact == IMPACT_CONSUME:
            left = it.qty - reps[0].cum_filled_lots if reps[0].status != REJECTED else 0
            if left > 0 and it.price != 0 and it.tif != IOC and it.tif != FOK:
                self._virtual_rest(it, left, ri)
        return 0

    cdef int _virtual_submit(self, Pending* it, int64_t ri) except -1 nogil:
        # take displayed liquidity without removing it, rest the remainder virtually
        cdef int64_t qty = it.qty, take
        cdef int32_t k, n
        if it.reject:
            self.orders[ri].status = REJECTED
            return 0
        n = core_depth(self.book, 1 - it.side, self.depth_p, self.depth_q, DEPTH_LEVELS)
        for k in range(n):
            if qty == 0 or (it.price != 0 and (self.depth_p[k] > it.price if it.side == 0
                                              else self.depth_p[k] < it.price)):
                break
            take = self.depth_q[k] if self.depth_q[k] < qty else qty
            self._book_fill(it.order_id, it.side, self.depth_p[k], take, False, -1, self.now)
            qty -= take
        self.orders[ri].status = FILLED if qty == 0 else NEW
        if qty > 0 and it.price != 0 and it.tif != IOC and it.tif != FOK:
            self._virtual_rest(it, qty, ri)
        return 0

    cdef int _virtual_rest(self, Pending* it, int64_t qty, int64_t ri) except -1 nogil:
        cdef OpenOrder o
        cdef int64_t shown = core_level_qty(self.book, it.side, it.price)
        cdef QueueState st
        memset(&st, 0, sizeof(QueueState))
        if self.py_queue:
            with gil:
                self._py_new_order(it.order_id, shown, &st.ahead)
        else:
            self.cqueue.new_order(&st, <double>shown)
        self.orders[ri].queue_ahead = st.ahead
        o.order_id = it.order_id
        o.price = it.price
        o.qty = qty
        o.queue_ahead = st.ahead
        o.shown = shown
        o.traded = st.traded
        o.qdata[0] = st.data[0]
        o.qdata[1] = st.data[1]
        o.side = it.side
        o.virtual = 1
        o.tif = it.tif
        o.reserved = 0
        return self._open_add(&o)

    # --- fills ----------------------------------------------------------------------------------
    cdef int _on_real_fill(self, const Fill* f) except -1 nogil:
        cdef bint maker = f.maker_owner == self.owner
        cdef uint64_t oid = f.maker_order_id if maker else f.taker_order_id
        cdef int side = (1 - f.aggressor) if maker else f.aggressor
        cdef int32_t i
        if maker:
            i = self.find_open(oid)
            if i >= 0:
                self.open_orders[i].qty -= f.qty_lots
                self.open_version += 1
                if self.open_orders[i].qty <= 0:
                    self._open_remove(i)
        return self._book_fill(oid, side, f.price_ticks, f.qty_lots, maker, 0 if maker else -1, f.ts_ns)

    cdef int _book_fill(self, uint64_t oid, int side, int64_t price, int64_t qty, bint maker, double queue_ahead,
                        int64_t ts) except -1 nogil:
        cdef int sign = 1 if side == 0 else -1
        cdef double notional = <double>price * self.tick * <double>qty * self.lot
        cdef double fee = notional * (self.maker_bps if maker else self.taker_bps) / 10000
        cdef FillRec* r
        self.position += sign * qty
        self.cash -= sign * notional + fee
        self.fees_paid += fee
        self.fills = <FillRec*>grow_buffer(self.fills, &self.cap_fills, self.n_fills + 1, sizeof(FillRec))
        r = &self.fills[self.n_fills]
        r.ts_ns = ts
        r.order_id = oid
        r.price = price
        r.qty = qty
        r.queue_ahead = queue_ahead
        r.position = self.position
        r.fee = fee
        r.side = <uint8_t>side
        r.maker = maker
        r.reserved0 = 0
        r.reserved1 = 0
        self.n_fills += 1
        if self.strategy.wants_fills:
            self.strategy.on_fill_nogil(self, r)
        return 0

    cdef int _virtual_fills(self, const Fill* f) except -1 nogil:
        # one historical trade against the virtual orders, in their insertion order
        cdef int64_t p = f.price_ticks, q = f.qty_lots, take, reach
        cdef int aggr = f.aggressor
        cdef int32_t i = 0
        cdef OpenOrder* o
        cdef bint better
        cdef uint64_t oid
        cdef int side
        cdef int64_t price
        cdef double ahead
        cdef QueueState st
        while i < self.n_open:
            o = &self.open_orders[i]
            if not o.virtual or o.side == aggr:
                i += 1
                continue
            better = p < o.price if o.side == 0 else p > o.price
            if better:
                # a trade through the limit means the level at the limit is empty: nothing is ahead
                o.queue_ahead = 0.0
                if self.py_queue:
                    with gil:
                        self._py_through(o.order_id)
                take = o.qty if o.qty < q else q
            elif p == o.price:
                if self.py_queue:
                    with gil:
                        reach = self._py_trade(i, q)
                    o = &self.open_orders[i]
                else:                               # the compiled model (default: the risk-averse rule)
                    _qs_load(&st, o)
                    reach = self.cqueue.trade(&st, <double>q)
                    _qs_store(o, &st)
                take = o.qty if o.qty < reach else reach
            else:
                i += 1
                continue
            if take > 0:
                o.qty -= take
                self.open_version += 1
                oid, side, price, ahead = o.order_id, o.side, o.price, o.queue_ahead
                if o.qty == 0:
                    self._open_remove(i)
                else:
                    i += 1
                self._book_fill(oid, side, price, take, True, ahead, f.ts_ns)
            else:
                i += 1
        return 0

    cdef int _clip(self) except -1 nogil:
        # changes of the displayed size at a virtual order's price move its estimate as the queue model says
        # (risk-averse: what is ahead never exceeds what is displayed)
        cdef int32_t i
        cdef int64_t shown
        cdef OpenOrder* o
        cdef QueueState st
        for i in range(self.n_open):
            o = &self.open_orders[i]
            if not o.virtual:
                continue
            shown = core_level_qty(self.book, o.side, o.price)
            if self.py_queue:
                with gil:
                    self._py_depth(i, shown)
            elif shown != o.shown or o.traded != 0.0:
                _qs_load(&st, o)
                self.cqueue.depth(&st, <double>o.shown, <double>shown)
                _qs_store(o, &st)
                o.shown = shown
        return 0

    # --- a Python queue model (with the GIL) ----------------------------------------------------------
    cdef int _py_new_order(self, uint64_t order_id, int64_t shown, double* ahead) except -1:
        from lob.queue.models import QueueState as PyQueueState

        st = PyQueueState()
        self.queue_model.new_order(st, shown)
        ahead[0] = st.ahead
        self.qstates[order_id] = st
        return 0

    cdef int64_t _py_trade(self, int32_t i, int64_t q) except -1:
        cdef OpenOrder* o = &self.open_orders[i]
        st = self.qstates[o.order_id]
        reach = int(self.queue_model.trade(st, q))
        o = &self.open_orders[i]
        o.queue_ahead = st.ahead
        return reach

    cdef int _py_through(self, uint64_t order_id) except -1:
        self.qstates[order_id].ahead = 0.0
        return 0

    cdef int _py_depth(self, int32_t i, int64_t shown) except -1:
        cdef OpenOrder* o = &self.open_orders[i]
        st = self.qstates[o.order_id]
        if shown != o.shown or st.traded:
            self.queue_model.depth(st, o.shown, shown)
            o = &self.open_orders[i]
            o.shown = shown
            o.queue_ahead = st.ahead
        return 0

    # --- the engine -----------------------------------------------------------------------------
    cdef int _apply(self, const Event* ev, int64_t n, Report** reps, int64_t* nr, Fill** fs,
                    int64_t* nf) except -1 nogil:
        # core_apply without the GIL: the engine's per-event path; core_apply itself (with the GIL) when a
        # market-data consumer is attached (its error check raises) or the output buffers are not set up yet
        cdef int64_t i
        if self.engine.md != NULL or self.engine.rep_cap < 64 or self.engine.fill_cap < 64:
            with gil:
                core_apply(self.engine, ev, n, reps, nr, fs, nf)
            return 0
        self.engine.rep_n = 0
        self.engine.fill_n = 0
        for i in range(n):
            self.engine._process_one(&ev[i], i)
        reps[0] = self.engine.rep_buf
        nr[0] = self.engine.rep_n
        fs[0] = self.engine.fill_buf
        nf[0] = self.engine.fill_n
        return 0

    # --- open orders ----------------------------------------------------------------------------
    cdef int _open_add(self, OpenOrder* o) except -1 nogil:
        cdef int64_t cap = self.cap_open
        self.open_orders = <OpenOrder*>grow_buffer(self.open_orders, &cap, self.n_open + 1, sizeof(OpenOrder))
        self.cap_open = <int32_t>cap
        self.open_orders[self.n_open] = o[0]
        self.n_open += 1
        self.open_version += 1
        return 0

    cdef void _open_remove(self, int32_t i) noexcept nogil:
        cdef int32_t j
        if self.open_orders[i].virtual and self.py_queue:
            with gil:
                self.qstates.pop(self.open_orders[i].order_id, None)
        for j in range(i, self.n_open - 1):
            self.open_orders[j] = self.open_orders[j + 1]
        self.n_open -= 1
        self.open_version += 1

    # --- marks and results ----------------------------------------------------------------------
    cdef int _mark(self) except -1 nogil:
        cdef int64_t bid = core_best(self.book, 0), ask = core_best(self.book, 1)
        cdef double mid, pos
        cdef MarkRec* m
        if bid == 0 or ask == 0:
            return 0
        mid = <double>(bid + ask) / 2 * self.tick
        pos = <double>self.position * self.lot
        self.marks = <MarkRec*>grow_buffer(self.marks, &self.cap_marks, self.n_marks + 1, sizeof(MarkRec))
        m = &self.marks[self.n_marks]
        m.ts_ns = self.now
        m.mid = mid
        m.position = pos
        m.cash = self.cash
        m.pnl = self.cash + pos * mid
        m.fees = self.fees_paid
        self.n_marks += 1
        return 0

    def records(self):
        """(orders, fills, marks) as structured arrays (ORDER_REC_DTYPE, FILL_REC_DTYPE, MARK_REC_DTYPE)."""
        o = np.empty(self.n_orders, ORDER_REC_DTYPE)
        f = np.empty(self.n_fills, FILL_REC_DTYPE)
        m = np.empty(self.n_marks, MARK_REC_DTYPE)
        cdef OrderRec[::1] ov = o
        cdef FillRec[::1] fv = f
        cdef MarkRec[::1] mv = m
        if self.n_orders:
            memcpy(&ov[0], self.orders, self.n_orders * sizeof(OrderRec))
        if self.n_fills:
            memcpy(&fv[0], self.fills, self.n_fills * sizeof(FillRec))
        if self.n_marks:
            memcpy(&mv[0], self.marks, self.n_marks * sizeof(MarkRec))
        return o, f, m

    def open_order_list(self):
        """The strategy's open orders: a list of (order_id, virtual, side, price_ticks, qty_lots, tif, queue_ahead)."""
        cdef int32_t i
        cdef OpenOrder* o
        out = []
        for i in range(self.n_open):
            o = &self.open_orders[i]
            out.append((o.order_id, bool(o.virtual), o.side, o.price, o.qty, _TIF_NAMES[o.tif], o.queue_ahead))
        return out

    # --- hosts that own the order flow (lob.sim.StrategyAgent): the strategy decides, the host sends -----
    def host_state(self, int64_t now, int64_t position, list open_orders):
        """Set the clock, the position (lots) and the open orders ``[(order_id, side, price_ticks, qty_lots)]``
        the strategy sees at its next decision."""
        cdef OpenOrder o
        self.now = now
        self.position = position
        self.n_open = 0
        for oid, side, price, qty in open_orders:
            o.order_id = oid
            o.side = side
            o.price = price
            o.qty = qty
            o.queue_ahead = 0
            o.shown = 0
            o.traded = 0.0
            o.virtual = 0
            o.tif = 0
            o.reserved = 0
            o.qdata[0] = 0.0
            o.qdata[1] = 0.0
            self._open_add(&o)

    def host_decide(self):
        """Let the strategy decide (``on_book``); return its intents in order as tuples
        ``(action, order_id, side, price_ticks, qty_lots, tif, post_only, tag)`` (action: submit/cancel/modify)."""
        self.decisions += 1
        self.strategy.on_book_nogil(self)
        return self._drain()

    def host_fill(self, int64_t ts_ns, uint64_t order_id, int side, int64_t price, int64_t qty, bint maker):
        """Hand the strategy a fill of its own (``on_fill``); returns the intents it wrote."""
        cdef FillRec f
        memset(&f, 0, sizeof(FillRec))
        f.ts_ns = ts_ns
        f.order_id = order_id
        f.price = price
        f.qty = qty
        f.queue_ahead = -1
        f.position = self.position
        f.side = <uint8_t>side
        f.maker = maker
        if self.strategy.wants_fills:
            self.strategy.on_fill_nogil(self, &f)
        return self._drain()

    def host_trade(self, int64_t price, int64_t qty, int aggressor, int64_t ts_ns):
        """Hand the strategy a trade of the market (``on_trade``); returns the intents it wrote."""
        if self.strategy.wants_trades:
            self.strategy.on_trade_nogil(self, price, qty, aggressor, ts_ns)
        return self._drain()

    cdef list _drain(self):
        cdef Pending it
        cdef list out = []
        while self.n_pending:
            self._pop(&it)
            out.append((_ACTIONS[it.action], it.order_id, it.side, it.price, it.qty, _TIF_NAMES[it.tif],
                        bool(it.post_only), self.tags[it.tag]))
        return out


# ------------------------------------------------------------------------------------------------
# Python strategies
# ------------------------------------------------------------------------------------------------
@cython.final
cdef class LoopContext:
    """What a Python strategy sees (the strategy protocol's ``ctx``): read live from the loop, cached."""
    cdef StepLoop _loop
    cdef readonly object book
    cdef readonly object symbol
    cdef object _open
    cdef int64_t _open_version

    def __init__(self, StepLoop loop, book, symbol):
        self._loop = loop
        self.book = book
        self.symbol = symbol
        self._open = None
        self._open_version = -1

    @property
    def ts_ns(self):
        return self._loop.now

    @property
    def position(self):
        return self._loop.position * self._loop.lot

    @property
    def open_orders(self):
        """``{order_id: {"virtual", "side", "price", "qty", "tif", "queue_ahead"}}`` (ticks and lots)."""
        cdef StepLoop L = self._loop
        cdef int32_t i
        cdef OpenOrder* o
        if self._open is None or self._open_version != L.open_version:
            d = {}
            for i in range(L.n_open):
                o = &L.open_orders[i]
                d[o.order_id] = dict(virtual=bool(o.virtual), side=o.side, price=o.price, qty=o.qty,
                                     tif=_TIF_NAMES[o.tif], queue_ahead=o.queue_ahead)
            self._open = d
            self._open_version = L.open_version
        return self._open


cdef inline int64_t _units(object value, double unit, str field, int* off) except? -1:
    # the per-call path's conversion (price -> ticks, qty -> lots): nearest unit, flag when off the grid
    cdef double v, x
    cdef int64_t t
    try:
        v = value
    except TypeError:
        raise ConfigError(f"intent field {field!r} must be a number, got {value!r}") from None
    if not (v >= 0) or v == INFINITY:
        raise ConfigError(f"intent field {field!r} must be a finite number >= 0, got {value!r}")
    x = v / unit
    if x >= 4.6e18:
        raise ConfigError(f"intent field {field!r} {value!r} is out of range")
    t = <int64_t>(x + 0.5)
    if fabs(x - t) > 1e-6 * (1.0 if x < 1e6 else x / 1e6):
        off[0] = 1
    return t


@cython.final
cdef class PyStrategy(CompiledStrategy):
    """A Python strategy (the protocol of :mod:`lob.mm.base`) run by the step loop."""
    cdef readonly object strategy
    cdef LoopContext ctx
    cdef object _on_book
    cdef object _on_fill
    cdef object _on_trade
    cdef object _on_start
    cdef object _as_intent
    cdef object _intent_types

    def __init__(self, strategy, as_intent, intent_types):
        self.strategy = strategy
        self._on_start = getattr(strategy, "on_start", None)
        self._on_book = getattr(strategy, "on_book", None)
        self._on_fill = getattr(strategy, "on_fill", None)
        self._on_trade = getattr(strategy, "on_trade", None)
        self.wants_fills = self._on_fill is not None
        self.wants_trades = self._on_trade is not None
        self._as_intent = as_intent
        self._intent_types = intent_types

    def bind(self, StepLoop loop, book, symbol):
        self.ctx = LoopContext(loop, book, symbol)

    cdef int _handle(self, StepLoop L, object intents) except -1:
        cdef int off
        cdef int reject
        cdef int64_t price, qty
        if not intents:
            return 0
        for x in intents:
            if type(x) not in self._intent_types:
                x = self._as_intent(x)
            action = x.action
            if action == "submit":
                side = _SIDE_CODES.get(x.side)
                if side is None:
                    raise ConfigError(f"intent field 'side' must be 'buy' or 'sell' on a submit, got {x.side!r}")
                tif = _TIF_CODES.get(x.tif)
                if tif is None:
                    raise ConfigError(f"intent field 'tif' must be one of {list(_TIF_CODES)}, got {x.tif!r}")
                off = 0
                reject = 0
                qty = _units(x.qty, L.lot, "qty", &off)
                if off or qty == 0:
                    reject = INVALID_QTY
                off = 0
                if x.price is None:
                    price = 0
                else:
                    price = _units(x.price, L.tick, "price", &off)
                    if off:
                        reject = INVALID_PRICE_TICK
                    elif price == 0:
                        reject = INVALID_PRICE
                oid = x.order_id
                L.submit(side, price, qty, tif, bool(x.post_only), L.tag_id(x.tag or ""),
                         0 if oid is None else oid, reject)
            elif action == "cancel":
                if x.order_id is None:
                    raise ConfigError("intent field 'order_id' is required on a cancel, got None")
                L.cancel(x.order_id)
            elif action == "modify":
                if x.order_id is None:
                    raise ConfigError("intent field 'order_id' is required on a modify, got None")
                off = 0
                qty = -1 if x.qty is None else _units(x.qty, L.lot, "qty", &off)
                price = 0 if x.price is None else _units(x.price, L.tick, "price", &off)
                L.modify(x.order_id, qty, price)
            else:
                raise ConfigError(f"intent action must be submit/cancel/modify, got {action!r}")
        return 0

    cdef int on_start(self, StepLoop loop) except -1:
        if self._on_start is not None:
            self._handle(loop, self._on_start(self.ctx))
        return 0

    cdef int on_book(self, StepLoop loop) except -1:
        if self._on_book is not None:
            self._handle(loop, self._on_book(self.ctx))
        return 0

    cdef int on_fill(self, StepLoop loop, const FillRec* f) except -1:
        fill = dict(ts_ns=f.ts_ns, order_id=f.order_id, side="buy" if f.side == 0 else "sell",
                    price=f.price * loop.tick, qty=f.qty * loop.lot, maker=bool(f.maker), fee=f.fee,
                    queue_ahead_at_fill=None if f.queue_ahead < 0 else f.queue_ahead,
                    position=f.position * loop.lot)
        self._handle(loop, self._on_fill(self.ctx, fill))
        return 0

    cdef int on_trade(self, StepLoop loop, int64_t price, int64_t qty, int aggressor, int64_t ts_ns) except -1:
        trade = dict(price=price * loop.tick, qty=qty * loop.lot, aggressor="buy" if aggressor == 0 else "sell",
                     ts_ns=ts_ns)
        self._handle(loop, self._on_trade(self.ctx, trade))
        return 0


# ------------------------------------------------------------------------------------------------
# A strategy's decision as a C function (a numba @cfunc): lob.replay.NumbaStrategy
# ------------------------------------------------------------------------------------------------
ctypedef int32_t (*decide_fn)(int64_t now, int64_t position, const int64_t* book, int32_t depth,
                              const int64_t* opens, int32_t n_open, int64_t* intents, int32_t cap,
                              double* state) noexcept nogil

DECIDE_SIGNATURE = ("int32(int64, int64, CPointer(int64), int32, CPointer(int64), int32, CPointer(int64), int32, "
                    "CPointer(float64))")
BOOK_FIELDS = ("bid_price", "bid_qty", "ask_price", "ask_qty")
OPEN_FIELDS = ("order_id", "side", "price", "qty", "virtual")
INTENT_FIELDS = ("action", "order_id", "side", "price", "qty", "tif", "post_only", "tag")

cdef enum:
    N_BOOK = 4
    N_OPEN = 5
    N_INTENT = 8


cdef class CFuncStrategy(CompiledStrategy):
    """A strategy whose decision is a C function at ``address``, called at each step end without the GIL.

    Use it through :class:`lob.replay.NumbaStrategy` (which takes a numba ``@cfunc``); the C signature is
    ``DECIDE_SIGNATURE``::

        int32 decide(int64 now_ns, int64 position_lots,
                     const int64* book, int32 depth,      # depth rows of BOOK_FIELDS (0: no level), best first
                     const int64* opens, int32 n_open,    # n_open rows of OPEN_FIELDS, in insertion order
                     int64* intents, int32 cap,           # write up to cap rows of INTENT_FIELDS
                     double* state)                       # the strategy's own values, kept across calls

    It returns the number of intent rows written (a negative number stops the run with an error). An intent
    row: ``action`` 0 submit, 1 cancel, 2 modify; ``order_id`` (cancel/modify; 0 on a submit: the next id);
    ``side`` 0 buy, 1 sell; ``price`` ticks (submit: 0 = market; modify: 0 keeps); ``qty`` lots (modify: -1
    keeps); ``tif`` 0 gtc, 1 ioc, 2 fok, 3 day; ``post_only`` 0/1; ``tag`` 0 none, ``i`` the i-th of ``tags``.
    """
    cdef decide_fn fn
    cdef readonly object func          # keeps the compiled function alive
    cdef readonly int32_t depth
    cdef readonly int32_t cap
    cdef readonly object state         # float64 array
    cdef readonly tuple tags
    cdef int32_t n_tags
    cdef double* state_p
    cdef int64_t* book_buf
    cdef int64_t* depth_p
    cdef int64_t* depth_q
    cdef int64_t* open_buf
    cdef int64_t cap_open_buf
    cdef int64_t* intent_buf
    cdef int32_t* tag_ids

    def __cinit__(self):
        self.book_buf = NULL
        self.depth_p = NULL
        self.depth_q = NULL
        self.open_buf = NULL
        self.intent_buf = NULL
        self.tag_ids = NULL

    def __init__(self, func, size_t address, int depth=5, int cap=64, state=None, tags=()):
        if address == 0:
            raise ConfigError("address must be a C function's address, got 0")
        if depth < 1:
            raise ConfigError(f"depth must be >= 1, got {depth!r}")
        if cap < 1:
            raise ConfigError(f"cap must be >= 1, got {cap!r}")
        tags = tuple(tags)
        for t in tags:
            if not isinstance(t, str) or not t:
                raise ConfigError(f"tags must be non-empty strings, got {t!r}")
        st = np.zeros(1) if state is None else state
        if not (isinstance(st, np.ndarray) and st.dtype == np.float64 and st.ndim == 1 and st.flags.c_contiguous
                and st.flags.writeable and st.size >= 1):
            raise ConfigError(f"state must be a writable contiguous 1-d float64 array of size >= 1, got {state!r}")
        self.fn = <decide_fn><size_t>address
        self.func = func
        self.depth = depth
        self.cap = cap
        self.state = st
        cdef double[::1] sv = st
        self.state_p = &sv[0]
        self.tags = tags
        self.n_tags = len(tags)
        self.book_buf = <int64_t*>malloc(N_BOOK * depth * sizeof(int64_t))
        self.depth_p = <int64_t*>malloc(depth * sizeof(int64_t))
        self.depth_q = <int64_t*>malloc(depth * sizeof(int64_t))
        self.intent_buf = <int64_t*>malloc(N_INTENT * cap * sizeof(int64_t))
        self.tag_ids = <int32_t*>malloc((len(tags) + 1) * sizeof(int32_t))
        if (self.book_buf == NULL or self.depth_p == NULL or self.depth_q == NULL or self.intent_buf == NULL
                or self.tag_ids == NULL):
            raise MemoryError()
        self.tag_ids[0] = 0
        self.wants_fills = False
        self.wants_trades = False
        self.runs_nogil = True

    def __dealloc__(self):
        free(self.book_buf)
        free(self.depth_p)
        free(self.depth_q)
        free(self.open_buf)
        free(self.intent_buf)
        free(self.tag_ids)

    cdef int on_start(self, StepLoop loop) except -1:
        for i, t in enumerate(self.tags):
            self.tag_ids[i + 1] = loop.tag_id(t)
        return 0

    cdef int on_book(self, StepLoop loop) except -1:
        return self.on_book_nogil(loop)             # for hosts that call the GIL hook

    cdef int on_book_nogil(self, StepLoop loop) except -1 nogil:
        cdef int32_t k, n, i
        cdef int64_t* row
        cdef OpenOrder* o
        memset(self.book_buf, 0, N_BOOK * self.depth * sizeof(int64_t))
        for k in range(2):
            n = core_depth(loop.book, k, self.depth_p, self.depth_q, self.depth)
            for i in range(n):
                self.book_buf[N_BOOK * i + 2 * k] = self.depth_p[i]
                self.book_buf[N_BOOK * i + 2 * k + 1] = self.depth_q[i]
        self.open_buf = <int64_t*>grow_buffer(self.open_buf, &self.cap_open_buf, N_OPEN * (loop.n_open + 1),
                                         sizeof(int64_t))
        for i in range(loop.n_open):
            o = &loop.open_orders[i]
            row = &self.open_buf[N_OPEN * i]
            row[0] = <int64_t>o.order_id
            row[1] = o.side
            row[2] = o.price
            row[3] = o.qty
            row[4] = o.virtual
        n = self.fn(loop.now, loop.position, self.book_buf, self.depth, self.open_buf, loop.n_open,
                    self.intent_buf, self.cap, self.state_p)
        if n < 0 or n > self.cap:
            with gil:
                raise ConfigError(f"the strategy's decide function returned {n} (intents written: 0..{self.cap}, "
                                  f"negative: an error) at ts_ns={loop.now}")
        for i in range(n):
            self._intent(loop, &self.intent_buf[N_INTENT * i], i)
        return 0

    cdef int _intent(self, StepLoop loop, const int64_t* r, int32_t i) except -1 nogil:
        # r: action, order_id, side, price, qty, tif, post_only, tag
        if r[0] == INTENT_SUBMIT:
            if (r[2] != 0 and r[2] != 1) or r[5] < 0 or r[5] > 3 or r[4] <= 0 or r[3] < 0 or r[1] < 0 \
                    or r[7] < 0 or r[7] > self.n_tags:
                return self._bad(loop, r, i)
            loop.submit(<int>r[2], r[3], r[4], <int>r[5], r[6] != 0, self.tag_ids[r[7]], <uint64_t>r[1])
        elif r[0] == INTENT_CANCEL:
            if r[1] <= 0:
                return self._bad(loop, r, i)
            loop.cancel(<uint64_t>r[1])
        elif r[0] == INTENT_MODIFY:
            if r[1] <= 0 or r[3] < 0 or r[4] < -1 or r[4] == 0:
                return self._bad(loop, r, i)
            loop.modify(<uint64_t>r[1], r[4], r[3])
        else:
            return self._bad(loop, r, i)
        return 0

    cdef int _bad(self, StepLoop loop, const int64_t* r, int32_t i) except -1 nogil:
        with gil:
            row = dict(zip(INTENT_FIELDS, [r[k] for k in range(N_INTENT)]))
            raise ConfigError(f"intent row {i} of the decide function at ts_ns={loop.now} is invalid: {row} "
                              f"(action 0/1/2; submit: side 0/1, qty > 0, price >= 0, tif 0-3, "
                              f"tag 0..{len(self.tags)}; cancel/modify: order_id > 0; modify: qty -1 or > 0)")
