# cython: language_level=3
"""The market-data recorder in C: trade tape, trade columns (for bars), BBO changes and L2 snapshots.

The engine feeds it through its ``MdPort`` (``lob/_engine.pxd``) from the output records it writes, on the
batch path and on the per-call path alike, one event at a time: the fills an event produced, the book it
touched, and, before the first event at or past the next multiple of the snapshot interval, the books as
they stand then. Nothing here depends on how the events were batched.

Every cache is a ring of fixed-size int64 records that grows by doubling up to its bound and then drops
its oldest record:

* tape: the newest ``tape_size`` fills of a symbol, whole ``Fill`` records (maker/taker ids and owners);
* trades: (ts_ns, price_ticks, qty_lots) of every fill within ``retention_ns`` of the event clock, at most
  ``max_trades`` (bars are computed from these);
* bbo: (ts_ns, seq, bid, bid_qty, ask, ask_qty) after every event that changed the best prices or their
  displayed quantities, at most ``bbo_size``;
* snapshots: at every multiple T of the interval crossed by the event clock, for every symbol, the best
  ``depth`` levels per side as they stand after every event with ts_ns < T; at most
  ``retention_ns // interval + 1`` (capped by ``max_snapshots``) per symbol.
"""
cimport cython
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport INT64_MAX, INT64_MIN, int32_t, int64_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy

import numpy as np
cimport numpy as cnp

from lob._engine cimport ADD, BUY, CANCEL, LIMIT, MARKET, REDUCE, SELL, BookC, Event, Fill, Level, MdPort, Report

cnp.import_array()

FILL_WORDS = sizeof(Fill) // 8


cdef struct Ring:               # fixed-size int64 records, oldest first from head
    int64_t* data
    int64_t width               # int64 words per record
    int64_t alloc               # records allocated
    int64_t cap                 # records kept at most
    int64_t head
    int64_t n
    int64_t dropped             # records dropped as the ring rolled


cdef inline int64_t* _push(Ring* r) noexcept nogil:
    # the slot for a new newest record (the oldest is dropped when the ring is at its bound); NULL: no memory
    cdef int64_t k
    if r.n < r.alloc:                    # the common case: room left (no division: the index wraps once)
        k = r.head + r.n
        if k >= r.alloc:
            k -= r.alloc
        r.n += 1
        return r.data + k * r.width
    return _push_full(r)


cdef int64_t* _push_full(Ring* r) noexcept nogil:
    cdef int64_t na, first
    cdef int64_t* p
    if r.n == r.alloc:
        if r.alloc >= r.cap:
            p = r.data + r.head * r.width
            r.head += 1
            if r.head == r.alloc:
                r.head = 0
            r.dropped += 1
            return p
        na = r.alloc * 2 if r.alloc else 16
        if na > r.cap:
            na = r.cap
        if r.head == 0:
            # in order already: realloc (a large block is remapped, not copied, and its pages stay mapped)
            p = <int64_t*>realloc(r.data, na * r.width * sizeof(int64_t))
            if p == NULL:
                return NULL
        else:
            p = <int64_t*>malloc(na * r.width * sizeof(int64_t))
            if p == NULL:
                return NULL
            first = r.alloc - r.head          # unwrap: oldest first
            memcpy(p, r.data + r.head * r.width, first * r.width * sizeof(int64_t))
            memcpy(p + first * r.width, r.data, (r.n - first) * r.width * sizeof(int64_t))
            free(r.data)
        r.data = p
        r.alloc = na
        r.head = 0
    p = r.data + ((r.head + r.n) % r.alloc) * r.width
    r.n += 1
    return p


cdef inline int64_t* _oldest(Ring* r) noexcept nogil:
    return r.data + r.head * r.width


cdef inline void _pop(Ring* r) noexcept nogil:
    r.head += 1
    if r.head == r.alloc:
        r.head = 0
    r.n -= 1
    r.dropped += 1


cdef object _rows(Ring* r):
    # the records oldest first, as an (n, width) int64 array (a copy)
    out = np.empty((r.n, r.width), dtype=np.int64)
    cdef int64_t first
    cdef int64_t* o = <int64_t*>cnp.PyArray_DATA(out)
    if r.n:
        first = r.alloc - r.head
        if first >= r.n:
            memcpy(o, r.data + r.head * r.width, r.n * r.width * sizeof(int64_t))
        else:
            memcpy(o, r.data + r.head * r.width, first * r.width * sizeof(int64_t))
            memcpy(o + first * r.width, r.data, (r.n - first) * r.width * sizeof(int64_t))
    return out


cdef struct Sym:
    Ring tape
    Ring trades
    Ring bbo
    Ring snaps
    int64_t last[4]             # bid, bid_qty, ask, ask_qty last recorded
    int64_t trim_at             # the clock past which the oldest trade may be out of retention (a lower
                                # bound: reading the oldest record per fill would miss the cache)
    int64_t fills               # fills seen
    int32_t has_bbo


cdef struct State:
    MdPort port                 # first: the engine's MdPort* is a State*
    Sym* syms
    int32_t n_syms
    int32_t started
    int64_t interval
    int64_t depth
    int64_t retention
    int64_t clock               # the event clock: the largest ts_ns seen
    int64_t tape_size
    int64_t max_trades
    int64_t bbo_size
    int64_t snap_cap


cdef inline int64_t _add_sat(int64_t a, int64_t b) noexcept nogil:
    return INT64_MAX if a > INT64_MAX - b else a + b


cdef inline int64_t _floor_to(int64_t ts, int64_t step) noexcept nogil:
    cdef int64_t q = ts // step          # C division truncates toward zero
    if q * step > ts:
        q -= 1
    return q * step


cdef Sym* _sym(State* st, int32_t i) noexcept nogil:
    cdef Sym* p
    cdef int32_t n, k
    if i >= st.n_syms:
        n = i + 1 if i + 1 > 2 * st.n_syms else 2 * st.n_syms
        p = <Sym*>realloc(st.syms, n * sizeof(Sym))
        if p == NULL:
            return NULL
        for k in range(st.n_syms, n):
            p[k].tape.data = NULL
            p[k].tape.width = sizeof(Fill) // 8
            p[k].tape.cap = st.tape_size
            p[k].trades.data = NULL
            p[k].trades.width = 3
            p[k].trades.cap = st.max_trades
            p[k].bbo.data = NULL
            p[k].bbo.width = 6
            p[k].bbo.cap = st.bbo_size
            p[k].snaps.data = NULL
            p[k].snaps.width = 4 + 6 * st.depth
            p[k].snaps.cap = st.snap_cap
            p[k].tape.alloc = p[k].trades.alloc = p[k].bbo.alloc = p[k].snaps.alloc = 0
            p[k].tape.head = p[k].trades.head = p[k].bbo.head = p[k].snaps.head = 0
            p[k].tape.n = p[k].trades.n = p[k].bbo.n = p[k].snaps.n = 0
            p[k].tape.dropped = p[k].trades.dropped = p[k].bbo.dropped = p[k].snaps.dropped = 0
            p[k].has_bbo = 0
            p[k].trim_at = INT64_MAX
            p[k].fills = 0
        st.syms = p
        st.n_syms = n
    return &st.syms[i]


cdef inline void _best(const BookC* b, int side, int64_t* price, int64_t* qty) noexcept nogil:
    cdef int32_t n = b.n_levels[side]
    cdef const Level* L
    if n == 0:
        price[0] = 0
        qty[0] = 0
    else:
        L = &b.levels[b.side_levels[side][n - 1].level]
        price[0] = L.price
        qty[0] = L.qty


cdef inline bint _may_move_top(Sym* S, const Event* ev, const Report* reports, int64_t n_reports,
                               int64_t n_fills) noexcept nogil:
    # False only when the event cannot have changed the best levels: reading them after every event costs
    # cache misses on deep books. Anything not provably harmless reads them.
    cdef int64_t px
    cdef int side
    if not S.has_bbo or n_fills or n_reports != 1:
        return True
    if ev.action == ADD:
        if ev.type == MARKET:                   # no fill: it never rests
            return False
        if ev.type != LIMIT:
            return True
        px = ev.price_ticks
        side = ev.side
    elif ev.action == CANCEL or ev.action == REDUCE:
        px = reports[0].price_ticks             # the target's price and side, from the engine's report
        side = reports[0].side
    else:
        return True                             # modify, session end, halt, resume
    if side == BUY:
        return S.last[0] == 0 or px >= S.last[0]
    if side == SELL:
        return S.last[2] == 0 or px <= S.last[2]
    return True


cdef void _after(void* port, const Event* ev, const BookC* b, const Report* reports, int64_t n_reports,
                 const Fill* fills, int64_t n_fills, uint64_t seq) noexcept nogil:
    cdef State* st = <State*>port
    cdef Sym* S = &st.syms[ev.symbol] if ev.symbol < st.n_syms else _sym(st, ev.symbol)
    cdef int64_t k, bid, bq, ask, aq, horizon
    cdef int64_t* w
    if S == NULL:
        st.port.error = 1
        return
    if ev.ts_ns > st.clock:
        st.clock = ev.ts_ns
    if n_fills:
        if st.clock > S.trim_at:
            horizon = st.clock - st.retention
            while S.trades.n and _oldest(&S.trades)[0] < horizon:
                _pop(&S.trades)
            S.trim_at = _add_sat(_oldest(&S.trades)[0], st.retention) if S.trades.n else INT64_MAX
        for k in range(n_fills):
            w = _push(&S.tape)
            if w == NULL:
                st.port.error = 1
                return
            memcpy(w, &fills[k], sizeof(Fill))
            if S.trades.n == 0:
                S.trim_at = _add_sat(fills[k].ts_ns, st.retention)
            w = _push(&S.trades)
            if w == NULL:
                st.port.error = 1
                return
            w[0] = fills[k].ts_ns
            w[1] = fills[k].price_ticks
            w[2] = fills[k].qty_lots
        S.fills += n_fills
    if not _may_move_top(S, ev, reports, n_reports, n_fills):
        return
    _best(b, 0, &bid, &bq)
    _best(b, 1, &ask, &aq)
    if S.has_bbo and bid == S.last[0] and bq == S.last[1] and ask == S.last[2] and aq == S.last[3]:
        return
    w = _push(&S.bbo)
    if w == NULL:
        st.port.error = 1
        return
    w[0] = ev.ts_ns
    w[1] = <int64_t>seq
    w[2] = bid
    w[3] = bq
    w[4] = ask
    w[5] = aq
    S.last[0] = bid
    S.last[1] = bq
    S.last[2] = ask
    S.last[3] = aq
    S.has_bbo = 1


cdef int _snapshot(State* st, Sym* S, const BookC* b, int64_t T, uint64_t seq) noexcept nogil:
    cdef int64_t* w = _push(&S.snaps)
    cdef int64_t* row
    cdef int side, i, k
    cdef int32_t n
    cdef const Level* L
    if w == NULL:
        return -1
    w[0] = T
    w[1] = <int64_t>seq
    for side in range(2):
        n = b.n_levels[side]
        k = n if n < st.depth else <int>st.depth
        w[2 + side] = k
        row = w + 4 + side * 3 * st.depth
        for i in range(k):
            L = &b.levels[b.side_levels[side][n - 1 - i].level]
            row[3 * i] = L.price
            row[3 * i + 1] = L.qty
            row[3 * i + 2] = L.count
    return 0


cdef void _boundary(void* port, int64_t ts, BookC** books, int32_t n_books, uint64_t seq) noexcept nogil:
    cdef State* st = <State*>port
    cdef int64_t last, T
    cdef int32_t s
    cdef Sym* S
    if not st.started:
        # the grid starts after the first event: the first snapshot is at the next multiple
        st.started = 1
        st.port.next_ts = _floor_to(ts, st.interval) + st.interval
        return
    last = _floor_to(ts, st.interval)
    T = st.port.next_ts
    if (last - T) // st.interval >= st.snap_cap:
        T = last - (st.snap_cap - 1) * st.interval      # older ones would roll off the ring at once
    while T <= last:
        for s in range(n_books):
            S = _sym(st, s)
            if S == NULL or _snapshot(st, S, books[s], T, seq) < 0:
                st.port.error = 1
                st.port.next_ts = last + st.interval
                return
        T += st.interval
    st.port.next_ts = last + st.interval


cdef inline int64_t _ring_bytes(Ring* r) noexcept:
    return r.alloc * r.width * sizeof(int64_t)


@cython.final
cdef class Recorder:
    """The C side of :class:`lob.marketdata.MarketData` (see the module docstring)."""
    cdef State* st

    def __cinit__(self, int64_t tape_size, int64_t interval_ns, int64_t depth, int64_t retention_ns,
                  int64_t max_trades, int64_t bbo_size, int64_t max_snapshots):
        self.st = <State*>calloc(1, sizeof(State))
        if self.st == NULL:
            raise MemoryError()
        self.st.port.next_ts = INT64_MIN       # the first event starts the grid
        self.st.port.boundary = _boundary
        self.st.port.after = _after
        self.st.interval = interval_ns
        self.st.depth = depth
        self.st.retention = retention_ns
        self.st.clock = INT64_MIN
        self.st.tape_size = tape_size
        self.st.max_trades = max_trades
        self.st.bbo_size = bbo_size
        self.st.snap_cap = min(retention_ns // interval_ns + 1, max_snapshots)

    def __dealloc__(self):
        cdef int32_t i
        if self.st != NULL:
            for i in range(self.st.n_syms):
                free(self.st.syms[i].tape.data)
                free(self.st.syms[i].trades.data)
                free(self.st.syms[i].bbo.data)
                free(self.st.syms[i].snaps.data)
            free(self.st.syms)
            free(self.st)

    def port(self):
        """A PyCapsule of this recorder's ``MdPort*`` for ``Engine.set_md_port``."""
        return PyCapsule_New(self.st, b"lob.MdPort", NULL)

    cdef Sym* _s(self, int32_t i) except NULL:
        if i < 0:
            raise IndexError(f"symbol index {i} is negative")
        cdef Sym* S = _sym(self.st, i)
        if S == NULL:
            raise MemoryError()
        return S

    @property
    def clock(self):
        """The event clock (largest ts_ns seen), or None before the first event."""
        return None if self.st.clock == INT64_MIN else self.st.clock

    @property
    def snapshot_capacity(self):
        return self.st.snap_cap

    def tape(self, int32_t i):
        """The rolling tape of symbol ``i``: (n, FILL_WORDS) int64 rows of ``Fill`` records, oldest first."""
        return _rows(&self._s(i).tape)

    def trades(self, int32_t i):
        """(n, 3) int64 rows (ts_ns, price_ticks, qty_lots) of the fills within retention, oldest first."""
        cdef Sym* S = self._s(i)
        rows = _rows(&S.trades)
        if S.trades.n and rows[0, 0] < self.st.clock - self.st.retention:
            rows = rows[rows[:, 0] >= self.st.clock - self.st.retention]
        return rows

    def bbo(self, int32_t i):
        """(n, 6) int64 rows (ts_ns, seq, bid, bid_qty, ask, ask_qty) of the BBO changes, oldest first."""
        return _rows(&self._s(i).bbo)

    def snapshots(self, int32_t i):
        """(n, 4 + 6 * depth) int64 rows: ts_ns, seq, n_bids, n_asks, then depth x (price, qty, orders) for
        the bids and the asks (rows past n_bids / n_asks are undefined)."""
        return _rows(&self._s(i).snaps)

    def counts(self, int32_t i):
        """Records held and dropped per cache of symbol ``i`` and the fills seen."""
        cdef Sym* S = self._s(i)
        return dict(fills=S.fills, tape=S.tape.n, trades=S.trades.n, trades_dropped=S.trades.dropped,
                    bbo=S.bbo.n, bbo_dropped=S.bbo.dropped, snapshots=S.snaps.n, snapshots_dropped=S.snaps.dropped)

    def memory(self):
        """Bytes allocated per cache, summed over symbols."""
        cdef int32_t i
        cdef int64_t t = 0, tr = 0, b = 0, s = 0
        for i in range(self.st.n_syms):
            t += _ring_bytes(&self.st.syms[i].tape)
            tr += _ring_bytes(&self.st.syms[i].trades)
            b += _ring_bytes(&self.st.syms[i].bbo)
            s += _ring_bytes(&self.st.syms[i].snaps)
        return dict(tape=t, trades=tr, bbo=b, snapshots=s, state=sizeof(State) + self.st.n_syms * sizeof(Sym),
                    total=t + tr + b + s + sizeof(State) + self.st.n_syms * sizeof(Sym))
