# cython: language_level=3
"""The compiled simulation loop of ``lob.sim.Simulator`` (the default market at compiled speed).

:class:`SimLoop` runs blocks of simulator steps in C for the agents that have a compiled form: the array
populations (zero-intelligence, noise, momentum: :mod:`lob.sim.populations`) draw their orders with a C random
generator (xoshiro256**, seeded from each population's numpy generator at every run), the built-in market makers
decide through their compiled form (a host-driven :class:`lob.replay._steploop.StepLoop`), the exchange's risk
manager's checks run as integer C checks with the manager's state (limits, open orders, positions, throttle
buckets, last prices), and the engine takes the requests through its C entry point (``core_apply``, which also
feeds the market-data recorder). The agents' own views (open orders, positions, mid history), the risk state and
the scorecard recorder's rows are kept in C during a run and handed back to the Python objects at its end
(``lob/sim/_fast.py`` does the import and export); the other exchange listeners get the run's requests and
outputs as batches (at most ``flush_events`` requests each).

Batches and timing are those of ``Simulator._block``: per block, the populations' orders of every step in one
batch in time order (the risk check on each new order, with the risk state as of the block's start), then each
market maker in turn: the market's trades and its own fills since its last step (``on_trade``/``on_fill``), then
a decision every ``every_steps`` steps (``on_book``); each of its intents goes to the engine on its own, risk
checked with the state as of that request, as the per-call path does.
"""
cimport cython
from libc.math cimport ceil, exp, fabs, floor, lgamma, log, log1p, rint, sqrt
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint64_t
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memcpy, memmove, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

import numpy as np

from lob._engine cimport BookC, Engine, Event, Fill, Report, core_apply, core_best, core_book, core_order_total
from lob.replay._steploop cimport CompiledStrategy, FillRec, OpenOrder, Pending, StepLoop, grow_buffer

cdef enum:
    ADD = 0
    CANCEL = 1
    MODIFY = 2
    LIMIT = 0
    MARKET = 1
    STOP = 2
    FILLED = 2
    REJECTED = 4
    FLAG_POST_ONLY = 1
    INTENT_SUBMIT = 0
    INTENT_CANCEL = 1
    INTENT_MODIFY = 2
    RISK_MAX_QTY = 32
    RISK_MAX_NOTIONAL = 33
    RISK_PRICE_COLLAR = 34
    RISK_POSITION_LIMIT = 35
    RISK_OPEN_ORDERS = 37
    RISK_THROTTLE = 38

cdef int64_t NONE = -1          # a limit that is not set

cdef int64_t NS = 1000000000


# --- the random generator: xoshiro256** --------------------------------------------------------------
cdef struct Rng:
    uint64_t s0
    uint64_t s1
    uint64_t s2
    uint64_t s3


cdef inline uint64_t _rotl(uint64_t x, int k) noexcept nogil:
    return (x << k) | (x >> (64 - k))


cdef inline uint64_t rng_next(Rng* r) noexcept nogil:
    cdef uint64_t result = _rotl(r.s1 * 5, 7) * 9
    cdef uint64_t t = r.s1 << 17
    r.s2 ^= r.s0
    r.s3 ^= r.s1
    r.s1 ^= r.s2
    r.s0 ^= r.s3
    r.s2 ^= t
    r.s3 = _rotl(r.s3, 45)
    return result


cdef inline double rng_uniform(Rng* r) noexcept nogil:
    # in [0, 1)
    return (rng_next(r) >> 11) * (1.0 / 9007199254740992.0)


cdef inline int64_t rng_int(Rng* r, int64_t lo, int64_t hi) noexcept nogil:
    # uniform in [lo, hi] (the modulo bias of a 64-bit draw is below 2**-40 for these ranges)
    return lo + <int64_t>(rng_next(r) % <uint64_t>(hi - lo + 1))


cdef int64_t rng_poisson(Rng* r, double lam) noexcept nogil:
    cdef double L, p, slam, loglam, b, a, invalpha, vr, U, V, us, k
    cdef int64_t n
    if lam <= 0:
        return 0
    if lam < 10:                    # multiplication of uniforms (Knuth)
        L = exp(-lam)
        n = 0
        p = rng_uniform(r)
        while p > L:
            n += 1
            p *= rng_uniform(r)
        return n
    # PTRS (Hormann 1993), as numpy's random_poisson
    slam = sqrt(lam)
    loglam = log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)
    while True:
        U = rng_uniform(r) - 0.5
        V = rng_uniform(r)
        us = 0.5 - fabs(U)
        k = floor((2 * a / us + b) * U + lam + 0.43)
        if us >= 0.07 and V <= vr:
            return <int64_t>k
        if k < 0 or (us < 0.013 and V > us):
            continue
        if (log(V) + log(invalpha) - log(a / (us * us) + b)) <= (-lam + k * loglam - lgamma(k + 1)):
            return <int64_t>k


cdef inline int64_t rng_geometric(Rng* r, double p) noexcept nogil:
    # trials until the first success (>= 1), as numpy's geometric
    cdef double u
    if p >= 1.0:
        return 1
    u = rng_uniform(r)
    return <int64_t>ceil(log1p(-u) / log1p(-p)) if u > 0 else 1


cdef double rng_normal(Rng* r) noexcept nogil:
    # Marsaglia's polar method (one of the pair)
    cdef double x, y, s
    while True:
        x = 2.0 * rng_uniform(r) - 1.0
        y = 2.0 * rng_uniform(r) - 1.0
        s = x * x + y * y
        if 0 < s < 1:
            return x * sqrt(-2.0 * log(s) / s)


cdef void rng_seed(Rng* r, object words) except *:
    r.s0 = <uint64_t>int(words[0])
    r.s1 = <uint64_t>int(words[1])
    r.s2 = <uint64_t>int(words[2])
    r.s3 = <uint64_t>int(words[3])
    if r.s0 == 0 and r.s1 == 0 and r.s2 == 0 and r.s3 == 0:
        r.s0 = 1


# --- open orders of every owner (the risk manager's view): (symbol, order_id) -> owner, side, price, lots ---
cdef struct OpenRec:
    uint64_t order_id          # 0: empty cell
    int64_t owner
    int64_t price
    int64_t remaining
    int32_t sym                # -1: a deleted cell (tombstone)
    int32_t side


cdef struct Lim:
    int64_t max_qty
    int64_t max_notional
    int64_t collar
    int64_t max_position
    int64_t max_open
    int64_t cost                # throttle: ns of credit per order (NONE: no throttle)
    int64_t cap


cdef struct Bucket:
    int64_t level
    int64_t last
    bint has_last
    bint seen


cdef struct RecFill:
    int64_t ts
    uint64_t seq
    int64_t sym
    int64_t owner
    int64_t sign
    int64_t price
    int64_t qty
    bint maker


cdef struct RecOrder:
    int64_t ts
    uint64_t seq
    int64_t sym
    int64_t owner
    int64_t qty


cdef struct RecMid:
    int64_t ts
    uint64_t seq
    int64_t sym
    double mid


cdef struct Trade:
    int64_t ts
    int64_t price
    int64_t qty
    int32_t aggressor


cdef int _cmp_ts(const void* a, const void* b) noexcept nogil:
    # Event rows by time, stable (the row's original index is in order_id's place during the sort: see _sort)
    cdef const Event* x = <const Event*>a
    cdef const Event* y = <const Event*>b
    if x.ts_ns != y.ts_ns:
        return -1 if x.ts_ns < y.ts_ns else 1
    if x.stop_ticks != y.stop_ticks:
        return -1 if x.stop_ticks < y.stop_ticks else 1
    return 0


# ================================================================================================
# populations
# ================================================================================================
cdef class _Pop:
    cdef Rng rng
    cdef int32_t n
    cdef int64_t* owner
    cdef object agent

    def __dealloc__(self):
        free(self.owner)

    cdef int _owners(self, owners) except -1:
        self.n = len(owners)
        self.owner = <int64_t*>malloc(max(1, self.n) * sizeof(int64_t))
        if self.owner == NULL:
            raise MemoryError()
        for i in range(self.n):
            self.owner[i] = owners[i]
        return 0

    cdef int gen(self, SimLoop s, const int64_t* ts, int32_t steps, double dt) except -1:
        return 0


cdef class _ZiPop(_Pop):
    cdef int64_t* sym
    cdef double* rate
    cdef double* p
    cdef double* cancel_rate
    cdef int64_t lo, hi, lotm, max_orders
    # live orders per member, oldest first (ids and open lots)
    cdef uint64_t** live_id
    cdef int64_t** live_qty
    cdef int64_t* n_live
    cdef int64_t* cap_live
    cdef int64_t* scratch
    cdef int64_t cap_scratch

    def __cinit__(self):
        self.sym = NULL
        self.rate = NULL
        self.p = NULL
        self.cancel_rate = NULL
        self.live_id = NULL
        self.live_qty = NULL
        self.n_live = NULL
        self.cap_live = NULL
        self.scratch = NULL

    def __init__(self, agent, owners, syms, rate, p, cancel_rate, lo, hi, lotm, max_orders):
        self.agent = agent
        self._owners(owners)
        n = self.n
        self.sym = <int64_t*>malloc(n * sizeof(int64_t))
        self.rate = <double*>malloc(n * sizeof(double))
        self.p = <double*>malloc(n * sizeof(double))
        self.cancel_rate = <double*>malloc(n * sizeof(double))
        self.live_id = <uint64_t**>malloc(n * sizeof(uint64_t*))
        self.live_qty = <int64_t**>malloc(n * sizeof(int64_t*))
        self.n_live = <int64_t*>malloc(n * sizeof(int64_t))
        self.cap_live = <int64_t*>malloc(n * sizeof(int64_t))
        if (self.sym == NULL or self.rate == NULL or self.p == NULL or self.cancel_rate == NULL or
                self.live_id == NULL or self.live_qty == NULL or self.n_live == NULL or self.cap_live == NULL):
            raise MemoryError()
        for i in range(n):
            self.sym[i] = syms[i]
            self.rate[i] = rate[i]
            self.p[i] = p[i]
            self.cancel_rate[i] = cancel_rate[i]
            self.live_id[i] = NULL
            self.live_qty[i] = NULL
            self.n_live[i] = 0
            self.cap_live[i] = 0
        self.lo, self.hi, self.lotm, self.max_orders = lo, hi, lotm, max_orders

    def __dealloc__(self):
        cdef int32_t i
        if self.live_id != NULL:
            for i in range(self.n):
                free(self.live_id[i])
                free(self.live_qty[i])
        free(self.live_id)
        free(self.live_qty)
        free(self.sym)
        free(self.rate)
        free(self.p)
        free(self.cancel_rate)
        free(self.n_live)
        free(self.cap_live)
        free(self.scratch)

    # the members' open orders: set from / returned to the Python population
    def set_live(self, live):
        cdef int32_t i
        for i in range(self.n):
            d = live[i]
            self.n_live[i] = 0
            for oid, q in d.items():
                self._live_add(i, oid, q)

    def get_live(self):
        cdef int32_t i
        cdef int64_t k
        return [{self.live_id[i][k]: self.live_qty[i][k] for k in range(self.n_live[i])} for i in range(self.n)]

    cdef int _live_add(self, int32_t i, uint64_t oid, int64_t q) except -1:
        cdef int64_t cap = self.cap_live[i]
        cdef int64_t cap2 = cap
        self.live_id[i] = <uint64_t*>grow_buffer(self.live_id[i], &cap, self.n_live[i] + 1, sizeof(uint64_t))
        self.live_qty[i] = <int64_t*>grow_buffer(self.live_qty[i], &cap2, self.n_live[i] + 1, sizeof(int64_t))
        self.cap_live[i] = cap
        self.live_id[i][self.n_live[i]] = oid
        self.live_qty[i][self.n_live[i]] = q
        self.n_live[i] += 1
        return 0

    cdef int64_t _live_find(self, int32_t i, uint64_t oid) noexcept nogil:
        cdef int64_t k
        cdef uint64_t* ids = self.live_id[i]
        for k in range(self.n_live[i] - 1, -1, -1):       # new orders are the likeliest to change
            if ids[k] == oid:
                return k
        return -1

    cdef void _live_remove(self, int32_t i, int64_t k) noexcept nogil:
        cdef int64_t n = self.n_live[i]
        if k < n - 1:
            memmove(&self.live_id[i][k], &self.live_id[i][k + 1], (n - 1 - k) * sizeof(uint64_t))
            memmove(&self.live_qty[i][k], &self.live_qty[i][k + 1], (n - 1 - k) * sizeof(int64_t))
        self.n_live[i] = n - 1

    cdef int on_report(self, int32_t i, const Report* r) except -1:
        # as ZeroIntelligencePopulation._on_apply: resting (new / partially filled) sets, anything else ends
        cdef int64_t k = self._live_find(i, r.order_id)
        if r.remaining_lots > 0 and r.status < 2:
            if k >= 0:
                self.live_qty[i][k] = r.remaining_lots
            else:
                self._live_add(i, r.order_id, r.remaining_lots)
        elif k >= 0:
            self._live_remove(i, k)
        return 0

    cdef void on_maker_fill(self, int32_t i, const Fill* f) noexcept nogil:
        cdef int64_t k = self._live_find(i, f.maker_order_id)
        if k >= 0:
            if self.live_qty[i][k] > f.qty_lots:
                self.live_qty[i][k] -= f.qty_lots
            else:
                self._live_remove(i, k)

    cdef int gen(self, SimLoop s, const int64_t* ts, int32_t steps, double dt) except -1:
        cdef int32_t i, j
        cdef int64_t n_cancel, nl, k, c, t, side, d, value, price, extra, q
        cdef Event* e
        cdef Rng* r = &self.rng
        cdef int64_t* idx
        # cancels first (at the block's first time): random open orders, then the oldest beyond max_orders
        for i in range(self.n):
            nl = self.n_live[i]
            n_cancel = rng_poisson(r, self.cancel_rate[i] * nl * (dt * steps))
            if n_cancel == 0 and nl <= self.max_orders:
                continue
            if n_cancel > nl:
                n_cancel = nl
            self.scratch = <int64_t*>grow_buffer(self.scratch, &self.cap_scratch, nl + 1, sizeof(int64_t))
            idx = self.scratch
            for k in range(nl):
                idx[k] = k
            for k in range(n_cancel):          # partial Fisher-Yates: n_cancel distinct positions
                c = rng_int(r, k, nl - 1)
                t = idx[k]
                idx[k] = idx[c]
                idx[c] = t
            extra = nl - n_cancel - self.max_orders
            for k in range(n_cancel):
                s._cancel_event(ts[0], self.owner[i], self.sym[i], self.live_id[i][idx[k]])
            if extra > 0:                      # then the oldest of those not drawn
                self._oldest(s, i, ts[0], n_cancel, extra)
        # new limit orders, step by step
        for j in range(steps):
            for i in range(self.n):
                c = rng_poisson(r, self.rate[i] * dt)
                for k in range(c):
                    side = <int64_t>(rng_next(r) >> 63)
                    d = rng_geometric(r, self.p[i])
                    q = rng_int(r, self.lo, self.hi) * self.lotm
                    value = s._value(j, self.sym[i])
                    price = value - d if side == 0 else value + d
                    if price <= 0:
                        continue
                    e = s._new_event()
                    e.ts_ns = ts[j]
                    e.owner = self.owner[i]
                    e.symbol = <uint16_t>self.sym[i]
                    e.side = <uint8_t>side
                    e.price_ticks = price
                    e.qty_lots = q
        return 0

    cdef int _oldest(self, SimLoop s, int32_t i, int64_t ts, int64_t n_cancel, int64_t extra) except -1:
        # the oldest open orders of member i that the random draw did not pick, `extra` of them: the chosen ids
        # are the cancel events just written (the last n_cancel rows of the batch)
        cdef int64_t k, m, got = 0, first = s.n_batch - n_cancel
        cdef bint chosen
        cdef uint64_t oid
        for k in range(self.n_live[i]):
            if got >= extra:
                break
            oid = self.live_id[i][k]
            chosen = False
            for m in range(first, first + n_cancel):
                if s.batch[m].order_id == oid and s.batch[m].action == CANCEL:
                    chosen = True
                    break
            if not chosen:
                s._cancel_event(ts, self.owner[i], self.sym[i], oid)
                got += 1
        return 0


cdef class _NoisePop(_Pop):
    cdef double* rate
    cdef int64_t* lo
    cdef int64_t* hi
    cdef int64_t* syms
    cdef int32_t n_syms
    cdef int64_t lotm

    def __cinit__(self):
        self.rate = NULL
        self.lo = NULL
        self.hi = NULL
        self.syms = NULL

    def __init__(self, agent, owners, syms, rate, lo, hi, lotm):
        self.agent = agent
        self._owners(owners)
        self.rate = <double*>malloc(self.n * sizeof(double))
        self.lo = <int64_t*>malloc(self.n * sizeof(int64_t))
        self.hi = <int64_t*>malloc(self.n * sizeof(int64_t))
        self.n_syms = len(syms)
        self.syms = <int64_t*>malloc(max(1, self.n_syms) * sizeof(int64_t))
        if self.rate == NULL or self.lo == NULL or self.hi == NULL or self.syms == NULL:
            raise MemoryError()
        for i in range(self.n):
            self.rate[i], self.lo[i], self.hi[i] = rate[i], lo[i], hi[i]
        for i in range(self.n_syms):
            self.syms[i] = syms[i]
        self.lotm = lotm

    def __dealloc__(self):
        free(self.rate)
        free(self.lo)
        free(self.hi)
        free(self.syms)

    cdef int gen(self, SimLoop s, const int64_t* ts, int32_t steps, double dt) except -1:
        cdef int32_t i, j
        cdef int64_t c, k
        cdef Event* e
        cdef Rng* r = &self.rng
        for j in range(steps):
            for i in range(self.n):
                c = rng_poisson(r, self.rate[i] * dt)
                for k in range(c):
                    e = s._new_event()
                    e.ts_ns = ts[j]
                    e.owner = self.owner[i]
                    e.symbol = <uint16_t>self.syms[rng_int(r, 0, self.n_syms - 1)]
                    e.side = <uint8_t>(rng_next(r) >> 63)
                    e.qty_lots = rng_int(r, self.lo[i], self.hi[i]) * self.lotm
                    e.type = MARKET
        return 0


cdef class _MomoPop(_Pop):
    cdef int64_t* sym
    cdef double* threshold
    cdef double* rate
    cdef int64_t* size
    cdef int64_t* max_pos
    cdef public object position        # int64 numpy array (the Python population's), updated in place
    cdef int64_t[::1] pos
    cdef int64_t lookback
    # mid samples per member: ts and mid, from head on
    cdef int64_t** h_ts
    cdef double** h_mid
    cdef int64_t* h_n
    cdef int64_t* h_cap
    cdef int64_t* h_head

    def __cinit__(self):
        self.sym = NULL
        self.threshold = NULL
        self.rate = NULL
        self.size = NULL
        self.max_pos = NULL
        self.h_ts = NULL
        self.h_mid = NULL
        self.h_n = NULL
        self.h_cap = NULL
        self.h_head = NULL

    def __init__(self, agent, owners, syms, threshold, rate, size, max_pos, position, int64_t lookback):
        self.agent = agent
        self._owners(owners)
        n = self.n
        self.sym = <int64_t*>malloc(n * sizeof(int64_t))
        self.threshold = <double*>malloc(n * sizeof(double))
        self.rate = <double*>malloc(n * sizeof(double))
        self.size = <int64_t*>malloc(n * sizeof(int64_t))
        self.max_pos = <int64_t*>malloc(n * sizeof(int64_t))
        self.h_ts = <int64_t**>malloc(n * sizeof(int64_t*))
        self.h_mid = <double**>malloc(n * sizeof(double*))
        self.h_n = <int64_t*>malloc(n * sizeof(int64_t))
        self.h_cap = <int64_t*>malloc(n * sizeof(int64_t))
        self.h_head = <int64_t*>malloc(n * sizeof(int64_t))
        if (self.sym == NULL or self.threshold == NULL or self.rate == NULL or self.size == NULL or
                self.max_pos == NULL or self.h_ts == NULL or self.h_mid == NULL or self.h_n == NULL or
                self.h_cap == NULL or self.h_head == NULL):
            raise MemoryError()
        for i in range(n):
            self.sym[i], self.threshold[i], self.rate[i] = syms[i], threshold[i], rate[i]
            self.size[i], self.max_pos[i] = size[i], max_pos[i]
            self.h_ts[i] = NULL
            self.h_mid[i] = NULL
            self.h_n[i] = self.h_cap[i] = self.h_head[i] = 0
        self.position = position
        self.pos = position
        self.lookback = lookback

    def __dealloc__(self):
        cdef int32_t i
        if self.h_ts != NULL:
            for i in range(self.n):
                free(self.h_ts[i])
                free(self.h_mid[i])
        free(self.h_ts)
        free(self.h_mid)
        free(self.sym)
        free(self.threshold)
        free(self.rate)
        free(self.size)
        free(self.max_pos)
        free(self.h_n)
        free(self.h_cap)
        free(self.h_head)

    def set_history(self, hist, head):
        cdef int32_t i
        for i in range(self.n):
            h = hist[i][head[i]:]
            self.h_n[i] = 0
            self.h_head[i] = 0
            for t, m in h:
                self._push(i, t, m)

    def get_history(self):
        cdef int32_t i
        cdef int64_t k
        return [[(self.h_ts[i][k], self.h_mid[i][k]) for k in range(self.h_head[i], self.h_n[i])]
                for i in range(self.n)]

    cdef int _push(self, int32_t i, int64_t t, double m) except -1:
        cdef int64_t cap = self.h_cap[i], cap2 = self.h_cap[i]
        self.h_ts[i] = <int64_t*>grow_buffer(self.h_ts[i], &cap, self.h_n[i] + 1, sizeof(int64_t))
        self.h_mid[i] = <double*>grow_buffer(self.h_mid[i], &cap2, self.h_n[i] + 1, sizeof(double))
        self.h_cap[i] = cap
        self.h_ts[i][self.h_n[i]] = t
        self.h_mid[i][self.h_n[i]] = m
        self.h_n[i] += 1
        return 0

    cdef int gen(self, SimLoop s, const int64_t* ts, int32_t steps, double dt) except -1:
        # decides once, at the block's start, on the book as it is (as MomentumPopulation.events)
        cdef int32_t i
        cdef int64_t now = ts[0], horizon = ts[0] - self.lookback, b, a, k, c, side, n
        cdef double mid, move
        cdef Event* e
        cdef int64_t* counts = <int64_t*>malloc(max(1, self.n) * sizeof(int64_t))
        if counts == NULL:
            raise MemoryError()
        try:
            for i in range(self.n):
                counts[i] = rng_poisson(&self.rng, self.rate[i] * (dt * steps))
            for i in range(self.n):
                b = core_best(s.books[self.sym[i]], 0)
                a = core_best(s.books[self.sym[i]], 1)
                if not (b and a):
                    continue
                mid = (b + a) / 2.0
                self._push(i, now, mid)
                k = self.h_head[i]
                n = self.h_n[i]
                while n - k > 1 and self.h_ts[i][k + 1] <= horizon:
                    k += 1
                if k > 4096:                    # drop the consumed samples now and then
                    memmove(self.h_ts[i], &self.h_ts[i][k], (n - k) * sizeof(int64_t))
                    memmove(self.h_mid[i], &self.h_mid[i][k], (n - k) * sizeof(double))
                    self.h_n[i] = n - k
                    k = 0
                self.h_head[i] = k
                if not counts[i] or self.h_ts[i][k] > horizon:
                    continue
                move = mid - self.h_mid[i][k]
                if fabs(move) < self.threshold[i]:
                    continue
                side = 0 if move > 0 else 1
                if (side == 0 and self.pos[i] >= self.max_pos[i]) or (side == 1 and self.pos[i] <= -self.max_pos[i]):
                    continue
                e = s._new_event()
                e.ts_ns = now
                e.owner = self.owner[i]
                e.symbol = <uint16_t>self.sym[i]
                e.side = <uint8_t>side
                e.qty_lots = self.size[i]
                e.type = MARKET
        finally:
            free(counts)
        return 0


# ================================================================================================
# market makers (compiled form, host-driven step loop)
# ================================================================================================
cdef class _Maker:
    cdef StepLoop loop
    cdef object agent
    cdef int64_t owner
    cdef int32_t sym
    cdef int64_t every
    cdef public int64_t n              # steps counted (StrategyAgent._n)
    cdef public int64_t intents
    cdef public int64_t position       # lots (the tracker's)
    cdef public int64_t cash           # tick-lots (the tracker's)
    cdef Trade* trades
    cdef int64_t n_trades
    cdef int64_t cap_trades
    cdef FillRec* fills
    cdef int64_t n_fills
    cdef int64_t cap_fills

    def __cinit__(self):
        self.trades = NULL
        self.fills = NULL

    def __init__(self, agent, StepLoop loop, int64_t owner, int32_t sym, int64_t every, int64_t n, int64_t intents,
                 int64_t position, int64_t cash):
        self.agent, self.loop, self.owner, self.sym, self.every = agent, loop, owner, sym, every
        self.n, self.intents, self.position, self.cash = n, intents, position, cash

    def __dealloc__(self):
        free(self.trades)
        free(self.fills)

    def set_orders(self, orders):
        """The open orders ``[(order_id, side, price_ticks, lots)]`` (the tracker's, in its order)."""
        cdef OpenOrder o
        self.loop.n_open = 0
        memset(&o, 0, sizeof(OpenOrder))
        for oid, side, price, qty in orders:
            o.order_id, o.side, o.price, o.qty = oid, side, price, qty
            self.loop._open_add(&o)
        self.loop.open_version += 1

    def add_pending(self, trades, fills):
        """Trades ``[(ts, price, qty, aggressor)]`` and own fills ``[(ts, order_id, side, price, qty, maker)]``
        that wait for the maker's next step (the tracker's queues)."""
        cdef Fill f
        for ts, price, qty, aggr in trades:
            memset(&f, 0, sizeof(Fill))
            f.ts_ns, f.price_ticks, f.qty_lots, f.aggressor = ts, price, qty, aggr
            self.on_trade(&f)
        cdef FillRec* x
        for ts, oid, side, price, qty, maker in fills:
            self.fills = <FillRec*>grow_buffer(self.fills, &self.cap_fills, self.n_fills + 1, sizeof(FillRec))
            x = &self.fills[self.n_fills]
            memset(x, 0, sizeof(FillRec))
            x.ts_ns, x.order_id, x.side, x.price, x.qty, x.maker = ts, oid, side, price, qty, maker
            x.queue_ahead = -1
            self.n_fills += 1

    def take_pending(self):
        """What still waits for the maker's next step, as :meth:`add_pending` takes it; the queues empty."""
        cdef int64_t k
        trades = [(self.trades[k].ts, self.trades[k].price, self.trades[k].qty, self.trades[k].aggressor)
                  for k in range(self.n_trades)]
        fills = [(self.fills[k].ts_ns, self.fills[k].order_id, self.fills[k].side, self.fills[k].price,
                  self.fills[k].qty, bool(self.fills[k].maker)) for k in range(self.n_fills)]
        self.n_trades = self.n_fills = 0
        return trades, fills

    def get_orders(self):
        cdef int32_t i
        return [(self.loop.open_orders[i].order_id, self.loop.open_orders[i].side, self.loop.open_orders[i].price,
                 self.loop.open_orders[i].qty) for i in range(self.loop.n_open)]

    cdef int on_report(self, const Report* r) except -1:
        # as OrderTracker.on_report: resting sets [side, price, lots], anything else ends
        cdef int32_t i = self.loop.find_open(r.order_id)
        cdef OpenOrder o
        if r.remaining_lots > 0 and r.status < 2:
            if i >= 0:
                self.loop.open_orders[i].side = r.side
                self.loop.open_orders[i].price = r.price_ticks
                self.loop.open_orders[i].qty = r.remaining_lots
            else:
                memset(&o, 0, sizeof(OpenOrder))
                o.order_id, o.side, o.price, o.qty = r.order_id, r.side, r.price_ticks, r.remaining_lots
                self.loop._open_add(&o)
        elif i >= 0:
            self.loop._open_remove(i)
        self.loop.open_version += 1
        return 0

    cdef int on_fill(self, const Fill* f, bint maker) except -1:
        # as OrderTracker.on_fill, then the fill waits for the maker's next step
        cdef int32_t i
        cdef int64_t sign
        cdef uint64_t oid
        cdef FillRec* x
        if maker:
            oid = f.maker_order_id
            sign = -1 if f.aggressor == 0 else 1
            i = self.loop.find_open(oid)
            if i >= 0:
                self.loop.open_orders[i].qty -= f.qty_lots
                if self.loop.open_orders[i].qty <= 0:
                    self.loop._open_remove(i)
                self.loop.open_version += 1
        else:
            oid = f.taker_order_id
            sign = 1 if f.aggressor == 0 else -1
        self.position += sign * f.qty_lots
        self.cash -= sign * f.price_ticks * f.qty_lots
        if f.symbol != self.sym:
            return 0
        self.fills = <FillRec*>grow_buffer(self.fills, &self.cap_fills, self.n_fills + 1, sizeof(FillRec))
        x = &self.fills[self.n_fills]
        memset(x, 0, sizeof(FillRec))
        x.ts_ns = f.ts_ns
        x.order_id = oid
        x.price = f.price_ticks
        x.qty = f.qty_lots
        x.queue_ahead = -1
        x.side = 0 if sign > 0 else 1
        x.maker = maker
        self.n_fills += 1
        return 0

    cdef int on_trade(self, const Fill* f) except -1:
        cdef Trade* t
        self.trades = <Trade*>grow_buffer(self.trades, &self.cap_trades, self.n_trades + 1, sizeof(Trade))
        t = &self.trades[self.n_trades]
        t.ts, t.price, t.qty, t.aggressor = f.ts_ns, f.price_ticks, f.qty_lots, f.aggressor
        self.n_trades += 1
        return 0

    cdef int step(self, SimLoop s, int64_t now, int64_t block_len) except -1:
        # StrategyAgent.step with the compiled form: trades, then fills (each may send intents), then a decision
        cdef int64_t k = 0, before
        cdef Trade t
        cdef FillRec f
        cdef CompiledStrategy st = self.loop.strategy
        self.loop.now = now
        while k < self.n_trades:
            t = self.trades[k]
            k += 1
            if st.wants_trades:
                st.on_trade_nogil(self.loop, t.price, t.qty, t.aggressor, t.ts)
                s._send(self)
        self.n_trades = 0
        k = 0
        while k < self.n_fills:
            f = self.fills[k]
            k += 1
            f.position = self.position
            self.loop.position = self.position
            if st.wants_fills:
                st.on_fill_nogil(self.loop, &f)
            s._send(self)
        self.n_fills = 0
        before = self.n // self.every
        self.n += block_len
        if self.n // self.every > before:
            self.loop.now = now
            self.loop.position = self.position
            self.loop.decisions += 1
            st.on_book_nogil(self.loop)
            s._send(self)
        return 0


# ================================================================================================
# the loop
# ================================================================================================
@cython.final
cdef class SimLoop:
    """Blocks of simulator steps in C (see the module docstring); built and driven by ``lob/sim/_fast.py``."""
    cdef Engine engine
    cdef int32_t n_sym
    cdef BookC** books
    cdef list pops
    cdef list makers
    cdef int32_t n_makers
    cdef Rng rng                        # the makers' order in each block
    # fundamentals
    cdef bint has_fund
    cdef double* fund
    cdef double fund_sd
    cdef int64_t* values                # steps x symbols of the current block
    cdef int64_t cap_values
    cdef int64_t* ref_mid               # symbol -> reference at the block's start (no fundamental)
    cdef int64_t* initial
    # the block's batch
    cdef Event* batch
    cdef public int64_t n_batch
    cdef int64_t cap_batch
    # owners: role tables
    cdef int64_t n_lut
    cdef int32_t* zi_pop                # owner -> index into pops (ZI), -1
    cdef int32_t* zi_member
    cdef int32_t* momo_pop
    cdef int32_t* momo_member
    cdef int32_t* maker_of              # owner -> index into makers, -1
    cdef list zi_pops
    cdef list momo_pops
    # risk
    cdef public bint has_risk
    cdef bint measure
    cdef Lim* lim                       # [owner * n_sym + sym]; owners outside the table: global limits
    cdef Lim glim
    cdef int64_t* rpos                  # positions [owner * n_sym + sym]
    cdef int64_t* open_b
    cdef int64_t* open_s
    cdef int64_t* n_open                # per owner
    cdef Bucket* bucket                 # per owner
    cdef int32_t* killed                # per owner: reason or 0
    cdef int64_t* last                  # per symbol: last trade
    cdef int64_t* ref                   # per symbol: configured reference
    cdef OpenRec* omap
    cdef int64_t omap_cap               # power of two
    cdef int64_t omap_used              # cells not empty (live + tombstones)
    cdef int64_t* lat
    cdef public int64_t n_lat
    cdef int64_t cap_lat
    cdef int64_t* rej                   # rejections by reason (64)
    cdef public int64_t now_seen
    cdef public object counters          # (n_open by owner, open lots by (owner, symbol)) as of get_risk
    # the scorecard recorder
    cdef bint has_rec
    cdef uint8_t* rec_own               # per owner: recorded
    cdef bint rec_all
    cdef double* rec_last_mid           # per symbol, NaN: none
    cdef RecFill* rfills
    cdef int64_t n_rfills, cap_rfills
    cdef RecOrder* rorders
    cdef int64_t n_rorders, cap_rorders
    cdef RecMid* rmids
    cdef int64_t n_rmids, cap_rmids
    cdef uint8_t* touched
    # the outputs for the other listeners
    cdef Event* out_ev
    cdef public int64_t n_out_ev
    cdef int64_t cap_out_ev
    cdef Report* out_rep
    cdef public int64_t n_out_rep
    cdef int64_t cap_out_rep
    cdef Fill* out_fill
    cdef public int64_t n_out_fill
    cdef int64_t cap_out_fill
    cdef public bint keep_outputs
    cdef public int64_t last_ts
    cdef public int64_t now             # the clock after the last block run
    cdef public int64_t steps_done      # steps and blocks run by the last ``run`` (also when it raised)
    cdef public int64_t blocks_done
    cdef public int64_t last_block      # steps of the last block

    def __cinit__(self):
        self.books = NULL
        self.fund = NULL
        self.values = NULL
        self.ref_mid = NULL
        self.initial = NULL
        self.batch = NULL
        self.zi_pop = self.zi_member = self.momo_pop = self.momo_member = self.maker_of = NULL
        self.lim = NULL
        self.rpos = self.open_b = self.open_s = self.n_open = NULL
        self.bucket = NULL
        self.killed = NULL
        self.last = self.ref = NULL
        self.omap = NULL
        self.lat = NULL
        self.rej = NULL
        self.rec_own = NULL
        self.rec_last_mid = NULL
        self.rfills = NULL
        self.rorders = NULL
        self.rmids = NULL
        self.touched = NULL
        self.out_ev = NULL
        self.out_rep = NULL
        self.out_fill = NULL

    def __init__(self, exchange, int32_t n_sym, int64_t n_lut, initial, seed_words):
        cdef int32_t i
        self.engine = exchange._engine
        self.n_sym = n_sym
        self.n_lut = n_lut
        self.books = <BookC**>malloc(n_sym * sizeof(BookC*))
        self.fund = <double*>malloc(n_sym * sizeof(double))
        self.ref_mid = <int64_t*>malloc(n_sym * sizeof(int64_t))
        self.initial = <int64_t*>malloc(n_sym * sizeof(int64_t))
        self.last = <int64_t*>malloc(n_sym * sizeof(int64_t))
        self.ref = <int64_t*>malloc(n_sym * sizeof(int64_t))
        self.rec_last_mid = <double*>malloc(n_sym * sizeof(double))
        self.touched = <uint8_t*>malloc(n_sym * sizeof(uint8_t))
        self.zi_pop = <int32_t*>malloc(n_lut * sizeof(int32_t))
        self.zi_member = <int32_t*>malloc(n_lut * sizeof(int32_t))
        self.momo_pop = <int32_t*>malloc(n_lut * sizeof(int32_t))
        self.momo_member = <int32_t*>malloc(n_lut * sizeof(int32_t))
        self.maker_of = <int32_t*>malloc(n_lut * sizeof(int32_t))
        self.rec_own = <uint8_t*>malloc(n_lut * sizeof(uint8_t))
        self.lim = <Lim*>malloc(n_lut * n_sym * sizeof(Lim))
        self.rpos = <int64_t*>malloc(n_lut * n_sym * sizeof(int64_t))
        self.open_b = <int64_t*>malloc(n_lut * n_sym * sizeof(int64_t))
        self.open_s = <int64_t*>malloc(n_lut * n_sym * sizeof(int64_t))
        self.n_open = <int64_t*>malloc(n_lut * sizeof(int64_t))
        self.bucket = <Bucket*>malloc(n_lut * sizeof(Bucket))
        self.killed = <int32_t*>malloc(n_lut * sizeof(int32_t))
        self.rej = <int64_t*>malloc(64 * sizeof(int64_t))
        if (self.books == NULL or self.fund == NULL or self.ref_mid == NULL or self.initial == NULL or
                self.last == NULL or self.ref == NULL or self.rec_last_mid == NULL or self.touched == NULL or
                self.zi_pop == NULL or self.zi_member == NULL or self.momo_pop == NULL or self.momo_member == NULL
                or self.maker_of == NULL or self.rec_own == NULL or self.lim == NULL or self.rpos == NULL or
                self.open_b == NULL or self.open_s == NULL or self.n_open == NULL or self.bucket == NULL or
                self.killed == NULL or self.rej == NULL):
            raise MemoryError()
        for i in range(n_sym):
            self.books[i] = core_book(self.engine, i)
            self.initial[i] = initial[i]
            self.last[i] = 0
            self.ref[i] = 0
            self.touched[i] = 0
            self.rec_last_mid[i] = -1.0
        for i in range(n_lut):
            self.zi_pop[i] = self.zi_member[i] = self.momo_pop[i] = self.momo_member[i] = self.maker_of[i] = -1
            self.rec_own[i] = 0
            self.n_open[i] = 0
            self.killed[i] = 0
            memset(&self.bucket[i], 0, sizeof(Bucket))
        memset(self.rpos, 0, n_lut * n_sym * sizeof(int64_t))
        memset(self.open_b, 0, n_lut * n_sym * sizeof(int64_t))
        memset(self.open_s, 0, n_lut * n_sym * sizeof(int64_t))
        memset(self.rej, 0, 64 * sizeof(int64_t))
        rng_seed(&self.rng, seed_words)
        self.pops = []
        self.zi_pops = []
        self.momo_pops = []
        self.makers = []
        self.has_fund = False
        self.has_risk = False
        self.has_rec = False
        self.keep_outputs = True
        self.omap_cap = 0
        self.now_seen = -1

    def __dealloc__(self):
        free(self.books)
        free(self.fund)
        free(self.values)
        free(self.ref_mid)
        free(self.initial)
        free(self.batch)
        free(self.zi_pop)
        free(self.zi_member)
        free(self.momo_pop)
        free(self.momo_member)
        free(self.maker_of)
        free(self.lim)
        free(self.rpos)
        free(self.open_b)
        free(self.open_s)
        free(self.n_open)
        free(self.bucket)
        free(self.killed)
        free(self.last)
        free(self.ref)
        free(self.omap)
        free(self.lat)
        free(self.rej)
        free(self.rec_own)
        free(self.rec_last_mid)
        free(self.rfills)
        free(self.rorders)
        free(self.rmids)
        free(self.touched)
        free(self.out_ev)
        free(self.out_rep)
        free(self.out_fill)

    # --- set-up (lob/sim/_fast.py) -----------------------------------------------------------------
    def add_zi(self, agent, seed_words, owners, syms, rate, p, cancel_rate, lo, hi, lotm, max_orders):
        cdef _ZiPop z = _ZiPop(agent, owners, syms, rate, p, cancel_rate, lo, hi, lotm, max_orders)
        rng_seed(&z.rng, seed_words)
        for i, o in enumerate(owners):
            self.zi_pop[o] = len(self.zi_pops)
            self.zi_member[o] = i
        self.zi_pops.append(z)
        self.pops.append(z)
        return z

    def add_noise(self, agent, seed_words, owners, syms, rate, lo, hi, lotm):
        cdef _NoisePop z = _NoisePop(agent, owners, syms, rate, lo, hi, lotm)
        rng_seed(&z.rng, seed_words)
        self.pops.append(z)
        return z

    def add_momentum(self, agent, seed_words, owners, syms, threshold, rate, size, max_pos, position, lookback):
        cdef _MomoPop z = _MomoPop(agent, owners, syms, threshold, rate, size, max_pos, position, lookback)
        rng_seed(&z.rng, seed_words)
        for i, o in enumerate(owners):
            self.momo_pop[o] = len(self.momo_pops)
            self.momo_member[o] = i
        self.momo_pops.append(z)
        self.pops.append(z)
        return z

    def add_maker(self, agent, StepLoop loop, int64_t owner, int32_t sym, int64_t every, int64_t n, int64_t intents,
                  int64_t position, int64_t cash):
        cdef _Maker m = _Maker(agent, loop, owner, sym, every, n, intents, position, cash)
        self.maker_of[owner] = len(self.makers)
        self.makers.append(m)
        self.n_makers = len(self.makers)
        return m

    def set_fundamental(self, values, double sd):
        cdef int32_t i
        if values is None:
            self.has_fund = False
            return
        self.has_fund = True
        self.fund_sd = sd
        for i in range(self.n_sym):
            self.fund[i] = values[i]

    def get_fundamental(self):
        cdef int32_t i
        return [self.fund[i] for i in range(self.n_sym)]

    def set_recorder(self, owners, last_mid):
        """Record for a RunRecorder: ``owners`` (None: every non-anonymous one), its last mids by symbol."""
        cdef int64_t i
        self.has_rec = True
        self.rec_all = owners is None
        if owners is not None:
            for o in owners:
                if 0 <= o < self.n_lut:
                    self.rec_own[o] = 1
        for s, m in last_mid.items():
            self.rec_last_mid[s] = m

    def set_risk(self, bint measure, glim, lims, last, ref, positions, opens, n_open, buckets, killed, now):
        """The risk manager's state: ``glim`` / ``lims[(owner, sym)]`` as 7-tuples (max_qty, max_notional, collar,
        max_position, max_open, cost, cap; -1 none), last/ref prices by symbol, positions[(owner, sym)],
        open orders [(sym, oid, owner, side, price, remaining)], n_open[owner], buckets[owner] = [level, last],
        killed[owner] = reason, the latest event time (or None)."""
        cdef int64_t o, s
        self.has_risk = True
        self.measure = measure
        self._lim_set(&self.glim, glim)
        for o in range(self.n_lut):
            for s in range(self.n_sym):
                self.lim[o * self.n_sym + s] = self.glim
        for (o, s), t in lims.items():
            self._lim_set(&self.lim[o * self.n_sym + s], t)
        for s, v in last.items():
            self.last[s] = v
        for s, v in ref.items():
            self.ref[s] = v
        for (o, s), v in positions.items():
            if 0 <= o < self.n_lut:
                self.rpos[o * self.n_sym + s] = v
        self.omap_cap = 1024
        while self.omap_cap < 4 * (len(opens) + 64):
            self.omap_cap *= 2
        free(self.omap)
        self.omap = <OpenRec*>malloc(self.omap_cap * sizeof(OpenRec))
        if self.omap == NULL:
            raise MemoryError()
        memset(self.omap, 0, self.omap_cap * sizeof(OpenRec))
        self.omap_used = 0
        for sym, oid, owner, side, price, rem in opens:
            self._open_new(sym, oid, owner, side, price, rem)
            self._open_qty(owner, sym, side, rem)          # the manager's _open_qty, from its open orders
        for o, v in n_open.items():
            if 0 <= o < self.n_lut:
                self.n_open[o] = v
        for o, b in buckets.items():
            if 0 <= o < self.n_lut:
                self.bucket[o].seen = True
                self.bucket[o].level = b[0]
                self.bucket[o].has_last = b[1] is not None
                self.bucket[o].last = b[1] if b[1] is not None else 0
        for o, r in killed.items():
            if 0 <= o < self.n_lut:
                self.killed[o] = r
        self.now_seen = -1 if now is None else now

    cdef int _lim_set(self, Lim* L, t) except -1:
        L.max_qty, L.max_notional, L.collar, L.max_position, L.max_open, L.cost, L.cap = t
        return 0

    def get_risk(self):
        """``(opens, positions, n_open, buckets, last, rejections by reason, latencies)`` for the manager."""
        cdef int64_t i, o, s
        cdef OpenRec* c
        opens = []
        for i in range(self.omap_cap):
            c = &self.omap[i]
            if c.order_id != 0 and c.sym >= 0:
                opens.append((c.sym, c.order_id, c.owner, c.side, c.price, c.remaining))
        pos = {}
        for o in range(self.n_lut):
            for s in range(self.n_sym):
                if self.rpos[o * self.n_sym + s]:
                    pos[(o, s)] = self.rpos[o * self.n_sym + s]
        buckets = {o: [self.bucket[o].level, self.bucket[o].last if self.bucket[o].has_last else None]
                   for o in range(self.n_lut) if self.bucket[o].seen}
        last = {s: self.last[s] for s in range(self.n_sym) if self.last[s]}
        rej = {r: self.rej[r] for r in range(64) if self.rej[r]}
        lat = [self.lat[i] for i in range(self.n_lat)]
        self.counters = ({o: self.n_open[o] for o in range(self.n_lut) if self.n_open[o]},
                         {(o, s): (self.open_b[o * self.n_sym + s], self.open_s[o * self.n_sym + s])
                          for o in range(self.n_lut) for s in range(self.n_sym)
                          if self.open_b[o * self.n_sym + s] or self.open_s[o * self.n_sym + s]})
        self.n_lat = 0
        memset(self.rej, 0, 64 * sizeof(int64_t))
        return opens, pos, last, buckets, rej, lat

    def take_recorded(self):
        """The recorder's new rows: (fills, orders, mids) as lists of tuples; the buffers restart."""
        cdef int64_t i
        fills = [(self.rfills[i].ts, self.rfills[i].seq, self.rfills[i].sym, self.rfills[i].owner,
                  self.rfills[i].sign, self.rfills[i].price, self.rfills[i].qty, bool(self.rfills[i].maker))
                 for i in range(self.n_rfills)]
        orders = [(self.rorders[i].ts, self.rorders[i].seq, self.rorders[i].sym, self.rorders[i].owner,
                   self.rorders[i].qty) for i in range(self.n_rorders)]
        mids = [(self.rmids[i].ts, self.rmids[i].seq, self.rmids[i].sym, self.rmids[i].mid)
                for i in range(self.n_rmids)]
        self.n_rfills = self.n_rorders = self.n_rmids = 0
        last = {s: self.rec_last_mid[s] for s in range(self.n_sym) if self.rec_last_mid[s] >= 0}
        return fills, orders, mids, last

    def take_outputs(self, event_dtype, report_dtype, fill_dtype):
        """The requests and outputs since the last call, as (events, reports, fills) arrays (one batch: the
        reports' ``event_index`` counts rows of these events)."""
        ev = np.empty(self.n_out_ev, dtype=event_dtype)
        rep = np.empty(self.n_out_rep, dtype=report_dtype)
        fl = np.empty(self.n_out_fill, dtype=fill_dtype)
        cdef Event[::1] ve
        cdef Report[::1] vr
        cdef Fill[::1] vf
        if self.n_out_ev:
            ve = ev
            memcpy(&ve[0], self.out_ev, self.n_out_ev * sizeof(Event))
        if self.n_out_rep:
            vr = rep
            memcpy(&vr[0], self.out_rep, self.n_out_rep * sizeof(Report))
        if self.n_out_fill:
            vf = fl
            memcpy(&vf[0], self.out_fill, self.n_out_fill * sizeof(Fill))
        self.n_out_ev = self.n_out_rep = self.n_out_fill = 0
        return ev, rep, fl

    # --- the block ----------------------------------------------------------------------------------
    cdef inline Event* _new_event(self) except NULL:
        cdef Event* e
        self.batch = <Event*>grow_buffer(self.batch, &self.cap_batch, self.n_batch + 1, sizeof(Event))
        e = &self.batch[self.n_batch]
        memset(e, 0, sizeof(Event))
        self.n_batch += 1
        return e

    cdef int _cancel_event(self, int64_t ts, int64_t owner, int64_t sym, uint64_t oid) except -1:
        cdef Event* e = self._new_event()
        e.ts_ns = ts
        e.owner = owner
        e.symbol = <uint16_t>sym
        e.order_id = oid
        e.action = CANCEL
        return 0

    cdef inline int64_t _value(self, int32_t step, int64_t sym) noexcept nogil:
        if self.has_fund:
            return self.values[step * self.n_sym + sym]
        return self.ref_mid[sym]

    cdef int64_t _reference(self, int64_t sym) noexcept nogil:
        # mid, else last trade, else the initial price (lob.sim.agents._reference)
        cdef int64_t b = core_best(self.books[sym], 0), a = core_best(self.books[sym], 1)
        if b and a:
            return (b + a) // 2
        if self.books[sym].last_price:
            return self.books[sym].last_price
        return self.initial[sym]

    def run(self, int64_t now, int64_t step_ns, double step_s, int64_t steps, int64_t block_steps,
            int64_t flush_events, flush):
        """Run ``steps`` steps from ``now`` in blocks of ``block_steps``; ``flush()`` is called whenever more than
        ``flush_events`` requests wait for the listeners. Returns the clock at the end."""
        cdef int64_t left = steps, k, j
        cdef int64_t* ts = <int64_t*>malloc(max(1, block_steps) * sizeof(int64_t))
        if ts == NULL:
            raise MemoryError()
        self.now = now
        self.steps_done = self.blocks_done = self.last_block = 0
        try:
            while left > 0:
                k = block_steps if block_steps < left else left
                for j in range(k):
                    ts[j] = now + step_ns * (j + 1)
                now = ts[k - 1]
                self._block(ts, <int32_t>k, step_s, now)
                left -= k
                self.now = now
                self.steps_done += k
                self.blocks_done += 1
                self.last_block = k
                if self.keep_outputs and self.n_out_ev >= flush_events:
                    flush()
        finally:
            free(ts)
        return now

    cdef int _block(self, const int64_t* ts, int32_t steps, double dt, int64_t now) except -1:
        cdef int32_t j, i, t
        cdef int64_t s
        cdef int32_t* order
        cdef _Pop p
        cdef _Maker m
        # the fundamental path (a Gaussian random walk in log), else the references at the block's start
        if self.has_fund:
            self.values = <int64_t*>grow_buffer(self.values, &self.cap_values, steps * self.n_sym, sizeof(int64_t))
            for j in range(steps):
                for s in range(self.n_sym):
                    self.fund[s] *= exp(self.fund_sd * rng_normal(&self.rng))
                    self.values[j * self.n_sym + s] = <int64_t>rint(self.fund[s])
        else:
            for s in range(self.n_sym):
                self.ref_mid[s] = self._reference(s)
        # the populations' batch, in time order
        self.n_batch = 0
        for p in self.pops:
            p.gen(self, ts, steps, dt)
        if self.n_batch:
            self._sort()
            if self.has_risk:
                for i in range(self.n_batch):
                    if self.batch[i].action == ADD:
                        self.batch[i].reserved = <uint8_t>self._check(&self.batch[i])
            self._apply(self.batch, self.n_batch)
        # the market makers, in an order drawn for the block
        if self.n_makers:
            order = <int32_t*>malloc(self.n_makers * sizeof(int32_t))
            if order == NULL:
                raise MemoryError()
            try:
                for i in range(self.n_makers):
                    order[i] = i
                for i in range(self.n_makers - 1, 0, -1):
                    j = <int32_t>rng_int(&self.rng, 0, i)
                    t = order[i]
                    order[i] = order[j]
                    order[j] = t
                for i in range(self.n_makers):
                    m = <_Maker>self.makers[order[i]]
                    m.step(self, now, steps)
            finally:
                free(order)
        return 0

    cdef void _sort(self) noexcept nogil:
        # stable by time: the row index rides in stop_ticks (0 for the populations' rows) during the sort
        cdef int64_t i
        for i in range(self.n_batch):
            self.batch[i].stop_ticks = i
        qsort(self.batch, self.n_batch, sizeof(Event), _cmp_ts)
        for i in range(self.n_batch):
            self.batch[i].stop_ticks = 0

    # --- a maker's intents, one request each ----------------------------------------------------------
    cdef int _send(self, _Maker m) except -1:
        cdef Pending it
        cdef Event e
        cdef StepLoop loop = m.loop
        cdef int64_t total
        while loop.n_pending:
            loop._pop(&it)
            m.intents += 1
            memset(&e, 0, sizeof(Event))
            e.ts_ns = loop.now
            e.owner = m.owner
            e.symbol = <uint16_t>m.sym
            if it.action == INTENT_CANCEL:
                e.action = CANCEL
                e.order_id = it.order_id
            elif it.action == INTENT_MODIFY:
                e.action = MODIFY
                e.order_id = it.order_id
                if it.qty < 0:            # keep: the order's total (open + filled), as Exchange.modify
                    total = core_order_total(self.books[m.sym], it.order_id)
                    e.qty_lots = total if total > 0 else 1
                else:
                    e.qty_lots = it.qty
                e.price_ticks = it.price
                if self.has_risk:
                    e.reserved = <uint8_t>self._check_modify(&e)
            else:
                e.action = ADD            # the engine assigns the id (as StrategyAgent._send)
                e.side = it.side
                e.price_ticks = it.price
                e.qty_lots = it.qty
                e.type = LIMIT if it.price else MARKET
                e.tif = it.tif
                e.flags = FLAG_POST_ONLY if it.post_only else 0
                if self.has_risk:
                    e.reserved = <uint8_t>self._check(&e)
            self._apply(&e, 1)
        return 0

    # --- the engine and its outputs ------------------------------------------------------------------
    cdef int _apply(self, const Event* ev, int64_t n) except -1:
        cdef Report* reps
        cdef Fill* fs
        cdef int64_t nr, nf, i, base = self.n_out_ev
        cdef Report* r
        cdef Fill* f
        cdef int32_t w
        cdef int64_t o
        cdef uint64_t last_seq = 0
        cdef int64_t last_ts = 0
        cdef double mid
        cdef int64_t b, a
        core_apply(self.engine, ev, n, &reps, &nr, &fs, &nf)
        if n and ev[n - 1].ts_ns > 0:
            self.last_ts = ev[n - 1].ts_ns
        if self.keep_outputs:
            self.out_ev = <Event*>grow_buffer(self.out_ev, &self.cap_out_ev, self.n_out_ev + n, sizeof(Event))
            memcpy(&self.out_ev[self.n_out_ev], ev, n * sizeof(Event))
            self.n_out_ev += n
            self.out_rep = <Report*>grow_buffer(self.out_rep, &self.cap_out_rep, self.n_out_rep + nr, sizeof(Report))
            memcpy(&self.out_rep[self.n_out_rep], reps, nr * sizeof(Report))
            for i in range(self.n_out_rep, self.n_out_rep + nr):
                self.out_rep[i].event_index += base
            self.n_out_rep += nr
            if nf:
                self.out_fill = <Fill*>grow_buffer(self.out_fill, &self.cap_out_fill, self.n_out_fill + nf, sizeof(Fill))
                memcpy(&self.out_fill[self.n_out_fill], fs, nf * sizeof(Fill))
                self.n_out_fill += nf
        for i in range(n):
            if ev[i].ts_ns > self.now_seen:
                self.now_seen = ev[i].ts_ns
        # reports and fills in their shared sequence (as RiskManager.on_apply), each to whom it concerns
        cdef int64_t ir = 0, jf = 0
        while ir < nr or jf < nf:
            if jf >= nf or (ir < nr and reps[ir].seq < fs[jf].seq):
                r = &reps[ir]
                ir += 1
                o = r.owner
                if self.has_risk:
                    self._risk_report(r)
                if 0 <= o < self.n_lut:
                    w = self.zi_pop[o]
                    if w >= 0:
                        (<_ZiPop>self.zi_pops[w]).on_report(self.zi_member[o], r)
                    w = self.maker_of[o]
                    if w >= 0 and r.symbol == (<_Maker>self.makers[w]).sym:
                        (<_Maker>self.makers[w]).on_report(r)
                if self.has_rec:
                    self.touched[r.symbol] = 1
                    if (r.action == ADD and r.status != REJECTED and o and
                            (self.rec_all or (0 <= o < self.n_lut and self.rec_own[o])) and
                            r.filled_lots == r.cum_filled_lots):
                        self.rorders = <RecOrder*>grow_buffer(self.rorders, &self.cap_rorders, self.n_rorders + 1,
                                                        sizeof(RecOrder))
                        self.rorders[self.n_rorders].ts = r.ts_ns
                        self.rorders[self.n_rorders].seq = r.seq
                        self.rorders[self.n_rorders].sym = r.symbol
                        self.rorders[self.n_rorders].owner = o
                        self.rorders[self.n_rorders].qty = r.cum_filled_lots + r.remaining_lots
                        self.n_rorders += 1
                if r.seq > last_seq:
                    last_seq = r.seq
                last_ts = r.ts_ns
            else:
                f = &fs[jf]
                jf += 1
                if self.has_risk:
                    self._risk_fill(f)
                self._route_fill(f)
                if f.seq > last_seq:
                    last_seq = f.seq
        # the recorder's mid path: the symbols this batch touched, when their mid changed
        if self.has_rec and nr:
            for i in range(self.n_sym):
                if not self.touched[i]:
                    continue
                self.touched[i] = 0
                b = core_best(self.books[i], 0)
                a = core_best(self.books[i], 1)
                if b and a:
                    mid = (b + a) / 2.0
                    if mid != self.rec_last_mid[i]:
                        self.rec_last_mid[i] = mid
                        self.rmids = <RecMid*>grow_buffer(self.rmids, &self.cap_rmids, self.n_rmids + 1, sizeof(RecMid))
                        self.rmids[self.n_rmids].ts = last_ts
                        self.rmids[self.n_rmids].seq = last_seq
                        self.rmids[self.n_rmids].sym = i
                        self.rmids[self.n_rmids].mid = mid
                        self.n_rmids += 1
        return 0

    cdef int _route_fill(self, const Fill* f) except -1:
        cdef int64_t mo = f.maker_owner, to = f.taker_owner
        cdef int32_t w, i
        cdef _Maker m
        cdef _MomoPop mp
        cdef bint rec_m, rec_t
        # the makers that watch the symbol see every trade
        for i in range(self.n_makers):
            m = <_Maker>self.makers[i]
            if m.sym == f.symbol and m.loop.strategy.wants_trades:
                m.on_trade(f)
        if 0 <= mo < self.n_lut:
            w = self.zi_pop[mo]
            if w >= 0:
                (<_ZiPop>self.zi_pops[w]).on_maker_fill(self.zi_member[mo], f)
            w = self.maker_of[mo]
            if w >= 0:
                (<_Maker>self.makers[w]).on_fill(f, True)
        if 0 <= to < self.n_lut:
            w = self.maker_of[to]
            if w >= 0:
                (<_Maker>self.makers[w]).on_fill(f, False)
            w = self.momo_pop[to]
            if w >= 0:
                mp = <_MomoPop>self.momo_pops[w]
                mp.pos[self.momo_member[to]] += f.qty_lots if f.aggressor == 0 else -f.qty_lots
        if self.has_rec:
            rec_m = mo != 0 and (self.rec_all or (0 <= mo < self.n_lut and self.rec_own[mo]))
            rec_t = to != 0 and (self.rec_all or (0 <= to < self.n_lut and self.rec_own[to]))
            if rec_m:
                self._rec_fill(f, mo, -1 if f.aggressor == 0 else 1, True)
            if rec_t:
                self._rec_fill(f, to, 1 if f.aggressor == 0 else -1, False)
        return 0

    cdef int _rec_fill(self, const Fill* f, int64_t owner, int64_t sign, bint maker) except -1:
        cdef RecFill* x
        self.rfills = <RecFill*>grow_buffer(self.rfills, &self.cap_rfills, self.n_rfills + 1, sizeof(RecFill))
        x = &self.rfills[self.n_rfills]
        x.ts, x.seq, x.sym, x.owner, x.sign = f.ts_ns, f.seq, f.symbol, owner, sign
        x.price, x.qty, x.maker = f.price_ticks, f.qty_lots, maker
        self.n_rfills += 1
        return 0

    # --- risk: RiskManager._decide in integers, with the manager's state ----------------------------------
    cdef inline Lim* _lim(self, int64_t owner, int64_t sym) noexcept nogil:
        if 0 <= owner < self.n_lut:
            return &self.lim[owner * self.n_sym + sym]
        return &self.glim

    cdef int _check(self, const Event* e) except -1:
        cdef timespec t0, t1
        cdef int r
        if self.measure:
            clock_gettime(CLOCK_MONOTONIC, &t0)
        r = self._decide(e.symbol, e.side, e.qty_lots, e.price_ticks, e.owner, e.type, e.ts_ns)
        if self.measure:
            clock_gettime(CLOCK_MONOTONIC, &t1)
            self.lat = <int64_t*>grow_buffer(self.lat, &self.cap_lat, self.n_lat + 1, sizeof(int64_t))
            self.lat[self.n_lat] = (t1.tv_sec - t0.tv_sec) * NS + (t1.tv_nsec - t0.tv_nsec)
            self.n_lat += 1
        if r:
            self.rej[r] += 1
        return r

    cdef int _check_modify(self, const Event* e) except -1:
        # a modify seen as cancel + new order (RiskManager.check_modify)
        cdef OpenRec* c = self._open_find(e.symbol, e.order_id)
        cdef Event x
        cdef int64_t k = 0
        cdef int r
        if c == NULL:
            return 0
        x = e[0]
        x.side = <uint8_t>c.side
        x.type = LIMIT
        if not x.price_ticks:
            x.price_ticks = c.price
        if 0 <= e.owner < self.n_lut:
            k = e.owner * self.n_sym + e.symbol
            if c.side == 0:
                self.open_b[k] -= c.remaining
            else:
                self.open_s[k] -= c.remaining
            self.n_open[e.owner] -= 1
        r = self._check(&x)
        if 0 <= e.owner < self.n_lut:
            if c.side == 0:
                self.open_b[k] += c.remaining
            else:
                self.open_s[k] += c.remaining
            self.n_open[e.owner] += 1
        return r

    cdef int _decide(self, int64_t sym, int side, int64_t qty, int64_t price, int64_t owner, int type_,
                     int64_t ts) noexcept nogil:
        cdef Lim* L = self._lim(owner, sym)
        cdef Bucket* B
        cdef int64_t level, ref, value, pos, ob, os_, long_, short, k
        cdef bint market, inside = 0 <= owner < self.n_lut
        if inside and self.killed[owner]:
            return self.killed[owner]
        if L.cost != NONE and inside:
            B = &self.bucket[owner]
            if not B.seen:
                B.seen = True
                B.level = L.cap
                B.has_last = True
                B.last = ts
            level = B.level
            if B.has_last:
                level = min(L.cap, level + max(0, ts - B.last))
            if not B.has_last or ts > B.last:
                B.last = ts
                B.has_last = True
            if level < L.cost:
                B.level = level
                return RISK_THROTTLE
            B.level = level - L.cost
        if L.max_qty != NONE and qty > L.max_qty:
            return RISK_MAX_QTY
        ref = self.last[sym] if self.last[sym] else self.ref[sym]
        market = type_ == MARKET or type_ == STOP or price <= 0
        if L.collar != NONE and not market and ref and (price - ref if price > ref else ref - price) > L.collar:
            return RISK_PRICE_COLLAR
        if L.max_notional != NONE:
            value = ref if market else price
            if not value or value * qty > L.max_notional:
                return RISK_MAX_NOTIONAL
        if L.max_open != NONE and inside and self.n_open[owner] >= L.max_open:
            return RISK_OPEN_ORDERS
        if L.max_position != NONE and inside:
            k = owner * self.n_sym + sym
            pos = self.rpos[k]
            ob = self.open_b[k]
            os_ = self.open_s[k]
            long_ = pos + ob + (qty if side == 0 else 0)
            short = pos - os_ - (qty if side == 1 else 0)
            if max(long_, -short) > L.max_position:
                return RISK_POSITION_LIMIT
        return 0

    # the open-order map (open addressing, linear probing)
    cdef inline uint64_t _hash(self, int64_t sym, uint64_t oid) noexcept nogil:
        cdef uint64_t h = (oid ^ (<uint64_t>sym << 48)) * <uint64_t>0x9E3779B97F4A7C15
        return h ^ (h >> 29)

    cdef OpenRec* _open_find(self, int64_t sym, uint64_t oid) noexcept nogil:
        cdef uint64_t mask = self.omap_cap - 1
        cdef uint64_t i = self._hash(sym, oid) & mask
        cdef OpenRec* c
        if self.omap_cap == 0 or oid == 0:
            return NULL
        while True:
            c = &self.omap[i]
            if c.order_id == 0:
                return NULL
            if c.order_id == oid and c.sym == sym:
                return c
            i = (i + 1) & mask

    cdef int _open_new(self, int64_t sym, uint64_t oid, int64_t owner, int side, int64_t price,
                       int64_t rem) except -1:
        cdef uint64_t mask, i
        cdef OpenRec* c
        if oid == 0:
            return 0
        if 2 * (self.omap_used + 1) > self.omap_cap:
            self._rehash()
        mask = self.omap_cap - 1
        i = self._hash(sym, oid) & mask
        while self.omap[i].order_id != 0:
            i = (i + 1) & mask
        c = &self.omap[i]
        c.order_id, c.sym, c.owner, c.side, c.price, c.remaining = oid, sym, owner, side, price, rem
        self.omap_used += 1
        return 0

    cdef int _rehash(self) except -1:
        cdef OpenRec* old = self.omap
        cdef int64_t old_cap = self.omap_cap, i, live = 0
        for i in range(old_cap):
            if old[i].order_id != 0 and old[i].sym >= 0:
                live += 1
        self.omap_cap = 1024
        while self.omap_cap < 4 * (live + 64):
            self.omap_cap *= 2
        self.omap = <OpenRec*>malloc(self.omap_cap * sizeof(OpenRec))
        if self.omap == NULL:
            self.omap = old
            self.omap_cap = old_cap
            raise MemoryError()
        memset(self.omap, 0, self.omap_cap * sizeof(OpenRec))
        self.omap_used = 0
        for i in range(old_cap):
            if old[i].order_id != 0 and old[i].sym >= 0:
                self._open_new(old[i].sym, old[i].order_id, old[i].owner, old[i].side, old[i].price,
                               old[i].remaining)
        free(old)
        return 0

    cdef inline void _open_qty(self, int64_t owner, int64_t sym, int side, int64_t d) noexcept nogil:
        if 0 <= owner < self.n_lut:
            if side == 0:
                self.open_b[owner * self.n_sym + sym] += d
            else:
                self.open_s[owner * self.n_sym + sym] += d

    cdef int _risk_report(self, const Report* r) except -1:
        # RiskManager.on_report
        cdef OpenRec* c = self._open_find(r.symbol, r.order_id)
        if r.remaining_lots > 0 and r.status < 2:
            if c == NULL:
                self._open_new(r.symbol, r.order_id, r.owner, r.side, r.price_ticks, r.remaining_lots)
                self._open_qty(r.owner, r.symbol, r.side, r.remaining_lots)
                if 0 <= r.owner < self.n_lut:
                    self.n_open[r.owner] += 1
            else:
                self._open_qty(c.owner, r.symbol, c.side, r.remaining_lots - c.remaining)
                c.price = r.price_ticks
                c.remaining = r.remaining_lots
        elif c != NULL:
            self._open_remove(c)
        return 0

    cdef void _open_remove(self, OpenRec* c) noexcept nogil:
        self._open_qty(c.owner, c.sym, c.side, -c.remaining)
        if 0 <= c.owner < self.n_lut:
            self.n_open[c.owner] -= 1
        c.sym = -1                  # a tombstone: probing goes on past it

    cdef int _risk_fill(self, const Fill* f) except -1:
        # RiskManager.on_fill (positions; the ledger's cash and PnL are booked at the run's end)
        cdef OpenRec* c
        self.last[f.symbol] = f.price_ticks
        if f.maker_owner and 0 <= f.maker_owner < self.n_lut:
            self.rpos[f.maker_owner * self.n_sym + f.symbol] += -f.qty_lots if f.aggressor == 0 else f.qty_lots
        if f.taker_owner and 0 <= f.taker_owner < self.n_lut:
            self.rpos[f.taker_owner * self.n_sym + f.symbol] += f.qty_lots if f.aggressor == 0 else -f.qty_lots
        c = self._open_find(f.symbol, f.maker_order_id)
        if c != NULL:
            c.remaining -= f.qty_lots
            self._open_qty(c.owner, c.sym, c.side, -f.qty_lots)
            if c.remaining <= 0:
                self._open_qty(c.owner, c.sym, c.side, -c.remaining)
                c.remaining = 0
                if 0 <= c.owner < self.n_lut:
                    self.n_open[c.owner] -= 1
                c.sym = -1
        return 0
