# cython: language_level=3
"""The market-data recorder in C: trade tape, trade columns (for bars), BBO changes and L2 snapshots.

The engine feeds it through its ``MdPort`` (``lob/_engine.pxd``) from the output records it writes, on the
batch path and on the per-call path alike: before the first event at or past the next multiple of the
snapshot interval, the books as they stand then (``_boundary``); after every event, the event clock and a
BBO row when the best levels of the book it touched moved from the last row, which the engine writes into
this recorder's ring itself, branch-free (``MdSym``; ``_after`` only makes room); the fills, a hundred or
so at a time and at the end of every batch and call (``_fills``). Nothing here depends on how the events
were batched.

Every cache is a ring of fixed-size int64 records that grows by doubling up to its bound and then drops
its oldest record (past 256 KB a ring has a mapping of its own, kept for the next recorder when this one is
freed: see "ring memory" below):

* trades: (ts_ns, price_ticks, qty_lots) of every fill within ``retention_ns`` of the event clock, at most
  ``max_trades`` (bars are computed from these), and of the newest ``tape_size`` fills whatever their age
  (older ones are dropped as fills come, on the trade clock: the largest fill ts_ns, never past the event
  clock; ``trades()`` filters on the event clock);
* tape: the rest of the newest ``tape_size`` fills' ``Fill`` records (seq, maker/taker order ids and owners,
  symbol and aggressor): a tape row is this record with the ts, price and qty of its trade, the trade ring's
  newest records being the same fills (so a fill is written once, as 72 bytes in all);
* bbo: (ts_ns, seq, bid, bid_qty, ask, ask_qty) after every event that changed the best prices or their
  displayed quantities, at most ``bbo_size``;
* snapshots: at every multiple T of the interval crossed by the event clock, for every symbol, the best
  ``depth`` levels per side as they stand after every event with ts_ns < T; at most
  ``retention_ns // interval + 1`` (capped by ``max_snapshots``) per symbol.
"""
cimport cython
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport INT64_MAX, INT64_MIN, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t, uintptr_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy

cdef extern from "<sys/mman.h>" nogil:      # Python.h defines _GNU_SOURCE first: mremap is declared
    void* mmap(void* addr, size_t length, int prot, int flags, int fd, long offset)
    int munmap(void* addr, size_t length)
    void* mremap(void* old, size_t old_size, size_t new_size, int flags, ...)
    int PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MREMAP_MAYMOVE
    void* MAP_FAILED

cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    int pthread_mutex_init(pthread_mutex_t* m, const void* attr)
    int pthread_mutex_lock(pthread_mutex_t* m)
    int pthread_mutex_unlock(pthread_mutex_t* m)

import numpy as np
cimport numpy as cnp

from lob._engine cimport MD_FILLS_AT_ONCE, BookC, Event, Fill, Level, MdPort, MdSym

cnp.import_array()

cdef struct TapeRec:            # a tape record: the Fill's fields other than the trade's ts, price and qty
    uint64_t seq
    uint64_t maker_order_id
    uint64_t taker_order_id
    int64_t  maker_owner
    int64_t  taker_owner
    uint16_t symbol             # the Fill's last word as it is (Recorder.tape puts it back in place)
    uint8_t  aggressor
    uint8_t  reserved0
    uint32_t reserved1

cdef enum:
    TAPE_W = 6                  # int64 words of a TapeRec
assert sizeof(TapeRec) == TAPE_W * 8

FILL_WORDS = sizeof(Fill) // 8


# --- ring memory ------------------------------------------------------------------------------------
# A small ring lives in malloc'd memory. A ring of BIG bytes or more has a mapping of its own: it grows with
# mremap, which moves its pages without copying them (a heap block of that size would be copied on every
# doubling, since glibc serves blocks up to 32 MB from the heap once it has freed one that large).
# Fresh pages are faulted in one by one as the ring first fills (on a VM, ~2 us per 4 KB page: more than the
# recording itself), so the mappings of a recorder that is freed are kept, up to SPARE_BYTES in all, for
# the next recorders (an exchange per run of a notebook cell or a parameter sweep): a ring growing past BIG
# bytes takes the smallest spare mapping that fits, within its bound. ``release_spare_rings()`` unmaps them.
cdef enum:
    SPARE_SLOTS = 32
cdef size_t BIG = 256 * 1024
cdef size_t PAGE = 4096
cdef size_t SPARE_BYTES = 256 * 1024 * 1024
cdef void* _spare[SPARE_SLOTS]
cdef size_t _spare_size[SPARE_SLOTS]
cdef int _n_spare = 0
cdef size_t _spare_total = 0
cdef pthread_mutex_t _spare_lock
pthread_mutex_init(&_spare_lock, NULL)


cdef inline size_t _pages(size_t n) noexcept nogil:
    return (n + PAGE - 1) & ~(PAGE - 1)


cdef void _block_free(void* p, size_t mapped) noexcept nogil:
    # free a ring's memory: malloc'd (mapped == 0), or a mapping kept for the next ring or unmapped
    global _n_spare, _spare_total
    if p == NULL:
        return
    if mapped == 0:
        free(p)
        return
    pthread_mutex_lock(&_spare_lock)
    if _n_spare < SPARE_SLOTS and _spare_total + mapped <= SPARE_BYTES:
        _spare[_n_spare] = p
        _spare_size[_n_spare] = mapped
        _n_spare += 1
        _spare_total += mapped
        p = NULL
    pthread_mutex_unlock(&_spare_lock)
    if p != NULL:
        munmap(p, mapped)


cdef void* _spare_take(size_t need, size_t most, size_t* size) noexcept nogil:
    # the smallest spare mapping of ``need`` to ``most`` bytes (its size in ``size``), or NULL: never more
    # than the ring's bound (so that its memory is reported right), and no more room than it needs to grow
    global _n_spare, _spare_total
    cdef int i, best = -1
    cdef void* p = NULL
    if _n_spare == 0:                   # read without the lock: a miss only means a fresh mapping
        return NULL
    pthread_mutex_lock(&_spare_lock)
    for i in range(_n_spare):
        if need <= _spare_size[i] <= most and (best < 0 or _spare_size[i] < _spare_size[best]):
            best = i
    if best >= 0:
        p = _spare[best]
        size[0] = _spare_size[best]
        _spare_total -= _spare_size[best]
        _n_spare -= 1
        _spare[best] = _spare[_n_spare]
        _spare_size[best] = _spare_size[_n_spare]
    pthread_mutex_unlock(&_spare_lock)
    return p


def release_spare_rings():
    """Unmap the ring memory kept from freed recorders for the next ones."""
    global _n_spare, _spare_total
    with nogil:
        pthread_mutex_lock(&_spare_lock)
        while _n_spare:
            _n_spare -= 1
            munmap(_spare[_n_spare], _spare_size[_n_spare])
        _spare_total = 0
        pthread_mutex_unlock(&_spare_lock)


def spare_ring_bytes():
    """Bytes of ring memory kept for the next recorders."""
    return _spare_total


cdef struct Ring:               # fixed-size int64 records, oldest first from head
    int64_t* data
    int64_t width               # int64 words per record
    int64_t alloc               # records allocated
    int64_t cap                 # records kept at most
    int64_t head
    int64_t n
    int64_t dropped             # records dropped as the ring rolled
    size_t mapped               # bytes of its own mapping, or 0: malloc'd


cdef inline int64_t* _push(Ring* r, int64_t width) noexcept nogil:
    # the slot for a new newest record (the oldest is dropped when the ring is at its bound); NULL: no memory.
    # ``width`` is r.width, passed as a constant where the caller knows it (a multiply the compiler folds)
    cdef int64_t k
    if r.n < r.alloc:                    # room left (no division: the index wraps once)
        k = r.head + r.n
        if k >= r.alloc:
            k -= r.alloc
        r.n += 1
        return r.data + k * width
    if r.alloc == r.cap:                 # at its bound: the oldest record's slot takes the newest
        k = r.head
        r.head += 1
        if r.head == r.alloc:
            r.head = 0
        r.dropped += 1
        return r.data + k * width
    return _push_full(r)


cdef int64_t* _push_full(Ring* r) noexcept nogil:
    # grow a full ring below its bound, then push
    cdef int64_t* q
    if _grow(r) < 0:
        return NULL
    q = r.data + r.n * r.width
    r.n += 1
    return q


cdef int _grow(Ring* r) noexcept nogil:
    # grow a full ring below its bound (it may have wrapped: trades drop their oldest records by retention
    # too); -1: no memory
    cdef int64_t na
    cdef size_t size, got = 0, w = r.width * sizeof(int64_t)
    cdef void* p = NULL
    na = r.alloc * 2 if r.alloc else 16
    if na > r.cap:
        na = r.cap
    size = na * w
    if size < BIG:
        if r.head == 0:
            p = realloc(r.data, size)
            if p == NULL:
                return -1
        else:
            p = malloc(size)
            if p == NULL:
                return -1
            _unwrap(r, <int64_t*>p)
            free(r.data)
    else:
        p = _spare_take(size, _pages(r.cap * w), &got)
        if p == NULL and r.mapped and r.head == 0:
            got = _pages(size)
            p = mremap(r.data, r.mapped, got, MREMAP_MAYMOVE)
            if p == MAP_FAILED:
                return -1
        else:
            if p == NULL:
                got = _pages(size)
                p = mmap(NULL, got, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                if p == MAP_FAILED:
                    return -1
            _unwrap(r, <int64_t*>p)
            _block_free(r.data, r.mapped)
        na = <int64_t>(got // w)           # the whole mapping (its last page rounded up)
        if na > r.cap:
            na = r.cap
    r.data = <int64_t*>p
    r.mapped = got
    r.alloc = na
    r.head = 0
    return 0


cdef void _unwrap(Ring* r, int64_t* p) noexcept nogil:
    # copy a ring's records into p, oldest first
    _copy_out(r, 0, r.n, p)


cdef void _copy_out(Ring* r, int64_t skip, int64_t count, int64_t* p) noexcept nogil:
    # copy ``count`` records into p, oldest first, from the ``skip``-th oldest on
    cdef int64_t start, first
    cdef size_t w = r.width * sizeof(int64_t)
    if count <= 0:
        return
    start = r.head + skip
    if start >= r.alloc:
        start -= r.alloc
    first = r.alloc - start
    if first >= count:
        memcpy(p, r.data + start * r.width, count * w)
    else:
        memcpy(p, r.data + start * r.width, first * w)
        memcpy(p + first * r.width, r.data, (count - first) * w)


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
    _unwrap(r, <int64_t*>cnp.PyArray_DATA(out))
    return out


cdef struct Sym:
    Ring tape
    Ring trades
    Ring bbo
    Ring snaps
    int64_t* bbo_mark           # the engine writes BBO rows from here on (port.syms[i].next: the next one)
    int64_t trim_at             # the trade clock past which the oldest trade may be out of retention (a lower
                                # bound: reading the oldest record per fill would miss the cache)
    int64_t fills               # fills seen


cdef struct State:
    MdPort port                 # first: the engine's MdPort* is a State*
    Sym* syms
    int32_t n_syms
    int32_t started
    int64_t trade_clock         # the largest ts_ns of the fills recorded
    int64_t interval
    int64_t depth
    int64_t retention
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
    cdef MdSym* q
    cdef int32_t n, k
    if i >= st.n_syms:
        n = i + 1 if i + 1 > 2 * st.n_syms else 2 * st.n_syms
        q = <MdSym*>realloc(st.port.syms, n * sizeof(MdSym))
        if q == NULL:
            return NULL
        for k in range(st.n_syms, n):
            q[k].top[0] = q[k].top[1] = q[k].top[2] = q[k].top[3] = -1    # differs from any book's
            q[k].next = NULL
            q[k].room = 0
        st.port.syms = q
        p = <Sym*>realloc(st.syms, n * sizeof(Sym))
        if p == NULL:
            return NULL
        for k in range(st.n_syms, n):
            p[k].tape.data = NULL
            p[k].tape.width = TAPE_W
            p[k].tape.cap = st.tape_size
            p[k].trades.data = NULL
            p[k].trades.width = 3
            p[k].trades.cap = st.max_trades if st.max_trades > st.tape_size else st.tape_size
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
            p[k].tape.mapped = p[k].trades.mapped = p[k].bbo.mapped = p[k].snaps.mapped = 0
            p[k].bbo_mark = NULL
            p[k].trim_at = INT64_MAX
            p[k].fills = 0
        st.syms = p
        st.n_syms = n
        st.port.n_syms = n
    return &st.syms[i]


cdef int _record_fills(State* st, const Fill* fills, int64_t n) noexcept nogil:
    # the tape and the trades (ts, price, qty) of the batch's fills not recorded yet (``fills_done`` on), one
    # record each per fill, in one loop; -1: no memory. The trades of a symbol older than ``retention`` on the
    # trade clock are dropped before each fill (the newest ``tape_size`` stay: the tape's own columns).
    cdef int64_t k, horizon
    cdef int64_t* w
    cdef TapeRec* t
    cdef const Fill* f
    cdef Sym* S
    if n < st.port.fills_done:
        st.port.fills_done = 0                   # a batch the engine gave up (out of memory) left them undone
    for k in range(st.port.fills_done, n):
        f = &fills[k]
        S = &st.syms[f.symbol] if f.symbol < st.n_syms else _sym(st, f.symbol)
        if S == NULL:
            st.port.fills_done = k
            return -1
        st.trade_clock = f.ts_ns if f.ts_ns > st.trade_clock else st.trade_clock
        if st.trade_clock > S.trim_at:
            horizon = st.trade_clock - st.retention
            while S.trades.n > st.tape_size and _oldest(&S.trades)[0] < horizon:
                _pop(&S.trades)
            S.trim_at = _add_sat(_oldest(&S.trades)[0], st.retention) if S.trades.n else INT64_MAX
        t = <TapeRec*>_push(&S.tape, TAPE_W)
        if t == NULL:
            st.port.fills_done = k
            return -1
        t.seq = f.seq
        t.maker_order_id = f.maker_order_id
        t.taker_order_id = f.taker_order_id
        t.maker_owner = f.maker_owner
        t.taker_owner = f.taker_owner
        t.symbol = f.symbol
        t.aggressor = f.aggressor
        t.reserved0 = f.reserved0
        t.reserved1 = f.reserved1
        if S.trades.n == 0:
            S.trim_at = _add_sat(f.ts_ns, st.retention)
        w = _push(&S.trades, 3)
        if w == NULL:
            S.tape.n -= 1                   # the tape drops the fill it just took: the two stay paired
            st.port.fills_done = k
            return -1
        w[0] = f.ts_ns
        w[1] = f.price_ticks
        w[2] = f.qty_lots
        S.fills += 1
    st.port.fills_done = n
    return 0


cdef void _bbo_commit(State* st, int32_t i) noexcept nogil:
    # count the BBO rows the engine wrote since the last commit into the ring (a push each: see _bbo_room)
    cdef Sym* S = &st.syms[i]
    cdef Ring* r = &S.bbo
    cdef int64_t k = (st.port.syms[i].next - S.bbo_mark) // 6
    S.bbo_mark = st.port.syms[i].next
    if k == 0:
        return
    if r.n < r.alloc:                       # filling: the rows went after the newest
        r.n += k
    else:                                   # at its bound: each row took the oldest one's slot
        r.head += k
        if r.head == r.alloc:
            r.head = 0
        r.dropped += k


cdef int _bbo_room(State* st, int32_t i) noexcept nogil:
    # commit, then make room for the next BBO rows: the contiguous slots a push would take one by one (after
    # the newest while the ring fills, growing it when full below its bound; from the oldest on at its
    # bound); -1: no memory
    cdef Ring* r = &st.syms[i].bbo
    cdef MdSym* M = &st.port.syms[i]
    cdef int64_t pos
    _bbo_commit(st, i)
    if r.n == r.alloc and r.alloc < r.cap:
        if _grow(r) < 0:
            return -1
    if r.n < r.alloc:
        pos = r.head + r.n
        if pos >= r.alloc:
            pos -= r.alloc
        M.room = r.alloc - r.n if r.alloc - r.n < r.alloc - pos else r.alloc - pos
    else:
        pos = r.head
        M.room = r.alloc - r.head
    M.next = st.syms[i].bbo_mark = r.data + pos * 6
    return 0


cdef void _after(void* port, const Event* ev, const int64_t* top, uint64_t seq) noexcept nogil:
    # the engine's slow path for a BBO row (see MdPort): a symbol without an MdSym yet, or no room left
    cdef State* st = <State*>port
    cdef int32_t i = ev.symbol
    cdef MdSym* M
    if i >= st.n_syms and _sym(st, i) == NULL:
        st.port.error = 1
        return
    M = &st.port.syms[i]
    if top[0] == M.top[0] and top[1] == M.top[1] and top[2] == M.top[2] and top[3] == M.top[3]:
        return
    if M.room == 0 and _bbo_room(st, i) < 0:
        st.port.error = 1                   # the row is retried at the next event (top is not updated)
        return
    M.next[0] = ev.ts_ns
    M.next[1] = <int64_t>seq
    M.next[2] = M.top[0] = top[0]
    M.next[3] = M.top[1] = top[1]
    M.next[4] = M.top[2] = top[2]
    M.next[5] = M.top[3] = top[3]
    M.next += 6
    M.room -= 1


cdef void _fills(void* port, const Fill* fills, int64_t n_fills) noexcept nogil:
    # the fills of the engine's batch so far: those not recorded yet
    cdef State* st = <State*>port
    if _record_fills(st, fills, n_fills) < 0:
        st.port.error = 1


cdef int _snapshot(State* st, Sym* S, const BookC* b, int64_t T, uint64_t seq) noexcept nogil:
    cdef int64_t* w = _push(&S.snaps, S.snaps.width)
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
    return r.mapped if r.mapped else r.alloc * r.width * sizeof(int64_t)


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
        self.st.port.fills = _fills
        self.st.interval = interval_ns
        self.st.depth = depth
        self.st.retention = retention_ns
        self.st.port.clock = INT64_MIN
        self.st.trade_clock = INT64_MIN
        self.st.tape_size = tape_size
        self.st.max_trades = max_trades
        self.st.bbo_size = bbo_size
        self.st.snap_cap = min(retention_ns // interval_ns + 1, max_snapshots)

    def __dealloc__(self):
        cdef int32_t i
        if self.st != NULL:
            for i in range(self.st.n_syms):
                _block_free(self.st.syms[i].tape.data, self.st.syms[i].tape.mapped)
                _block_free(self.st.syms[i].trades.data, self.st.syms[i].trades.mapped)
                _block_free(self.st.syms[i].bbo.data, self.st.syms[i].bbo.mapped)
                _block_free(self.st.syms[i].snaps.data, self.st.syms[i].snaps.mapped)
            free(self.st.syms)
            free(self.st.port.syms)
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
        return None if self.st.port.clock == INT64_MIN else self.st.port.clock

    @property
    def snapshot_capacity(self):
        return self.st.snap_cap

    def tape(self, int32_t i):
        """The rolling tape of symbol ``i``: (n, FILL_WORDS) int64 rows of ``Fill`` records, oldest first."""
        cdef Sym* S = self._s(i)
        cdef int64_t n = S.tape.n
        extra = _rows(&S.tape)
        cols = np.empty((n, 3), dtype=np.int64)          # the newest n trades: the same fills (see _fills)
        _copy_out(&S.trades, S.trades.n - n, n, <int64_t*>cnp.PyArray_DATA(cols))
        out = np.empty((n, FILL_WORDS), dtype=np.int64)
        out[:, 0] = cols[:, 0]
        out[:, 1] = extra[:, 0]
        out[:, 2:4] = cols[:, 1:3]
        out[:, 4:8] = extra[:, 1:5]
        out[:, 8] = extra[:, 5]
        return out

    def trades(self, int32_t i):
        """(n, 3) int64 rows (ts_ns, price_ticks, qty_lots) of the fills within retention, at most
        ``max_trades``, oldest first."""
        cdef Sym* S = self._s(i)
        cdef int64_t skip = S.trades.n - self.st.max_trades if S.trades.n > self.st.max_trades else 0
        rows = np.empty((S.trades.n - skip, 3), dtype=np.int64)
        _copy_out(&S.trades, skip, S.trades.n - skip, <int64_t*>cnp.PyArray_DATA(rows))
        if len(rows) and rows[0, 0] < self.st.port.clock - self.st.retention:
            rows = rows[rows[:, 0] >= self.st.port.clock - self.st.retention]
        return rows

    def bbo(self, int32_t i):
        """(n, 6) int64 rows (ts_ns, seq, bid, bid_qty, ask, ask_qty) of the BBO changes, oldest first."""
        cdef Sym* S = self._s(i)
        _bbo_commit(self.st, i)
        return _rows(&S.bbo)

    def snapshots(self, int32_t i):
        """(n, 4 + 6 * depth) int64 rows: ts_ns, seq, n_bids, n_asks, then depth x (price, qty, orders) for
        the bids and the asks (rows past n_bids / n_asks are undefined)."""
        return _rows(&self._s(i).snaps)

    def counts(self, int32_t i):
        """Records held and dropped per cache of symbol ``i`` and the fills seen."""
        cdef Sym* S = self._s(i)
        _bbo_commit(self.st, i)
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
