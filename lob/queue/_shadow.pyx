# cython: language_level=3
# distutils: language = c++
"""One pass over an L3 stream that tracks many shadow orders' exact queue positions (see lob/queue/shadow.py).

Every shadow is evaluated alone, as if it were the only one: shadows never meet each other, and none changes
the history. Rules (the brute-force re-simulation in tests/test_queue_shadow.py inserts the shadow as a real
order into lob's engine and must agree):

* placed after every event at or before its time, at the back of its level: ``ahead`` is the level's size;
* a REMOVE or EXEC of an order that arrived at the level before the shadow lowers ``ahead`` by its size;
* an EXEC at the shadow's price of an order behind it, an EXEC on its side at a worse price, or an ADD on the
  other side at or through its price, is an aggressor that reached the shadow: it fills
  ``min(remaining, max(0, size - ahead - better))`` where ``better`` is the real size resting at prices
  better than the shadow's (0 unless the data breaks price-time priority);
* a RECON event at its level (the reconstruction took the level from the orderbook file) censors it
  (``window``), its own end time cancels it (``cancelled``), the end of the data censors it (``open``).
"""
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t
from libcpp.vector cimport vector

import numpy as np

cimport cython

cdef enum:
    K_ADD = 0
    K_REMOVE = 1
    K_EXEC = 2
    F_RECON = 2

# shadow status codes (mirrored in shadow.py)
cdef enum:
    ST_PENDING = -1
    ST_OPEN = 0          # resting at the end of the data
    ST_FILLED = 1
    ST_CANCELLED = 2
    ST_WINDOW = 3
    ST_REJECTED = 4

cdef struct FillRec:
    int64_t ts
    int64_t shadow
    int64_t qty
    int64_t event


cdef struct TraceRec:
    int64_t shadow
    int64_t event
    int64_t ahead          # the shadow's queue ahead before the event
    int64_t level          # the level's size before the event
    int64_t qty
    int64_t is_ahead       # 1: the removed order was ahead of the shadow


cdef struct State:
    int64_t* lv          # level sizes, [side * width + price - pmin]
    int64_t* head        # first live shadow of a level, same indexing, -1 for none
    int64_t* nxt
    int64_t* prv
    int8_t* status
    int64_t* ahead
    int64_t* rem
    int64_t* first
    int64_t* done
    int64_t width
    int64_t pmin
    vector[FillRec]* fills


cdef inline int64_t _better(State* st, int side, int64_t ps, int64_t best) noexcept nogil:
    """Real size at prices strictly better than ps on one side."""
    cdef int64_t s = 0, p
    cdef int64_t* lv = st.lv + side * st.width - st.pmin
    if side == 0:
        p = ps + 1
        while p <= best:
            s += lv[p]
            p += 1
    else:
        p = ps - 1
        while p >= best:
            s += lv[p]
            p -= 1
    return s


cdef inline void _link(State* st, int64_t li, int64_t k) noexcept nogil:
    cdef int64_t h = st.head[li]
    st.nxt[k] = h
    st.prv[k] = -1
    if h >= 0:
        st.prv[h] = k
    st.head[li] = k


cdef inline void _unlink(State* st, int64_t li, int64_t k) noexcept nogil:
    if st.prv[k] >= 0:
        st.nxt[st.prv[k]] = st.nxt[k]
    else:
        st.head[li] = st.nxt[k]
    if st.nxt[k] >= 0:
        st.prv[st.nxt[k]] = st.prv[k]
    st.nxt[k] = -1
    st.prv[k] = -1


cdef inline void _end(State* st, int64_t li, int64_t k, int8_t code, int64_t t) noexcept nogil:
    st.status[k] = code
    st.done[k] = t
    _unlink(st, li, k)


cdef inline void _fill(State* st, int64_t k, int64_t q, int64_t better, Py_ssize_t i, int64_t t,
                       int64_t li) noexcept nogil:
    cdef int64_t x = q - st.ahead[k] - better
    cdef FillRec fr
    if x <= 0:
        return
    if x > st.rem[k]:
        x = st.rem[k]
    st.rem[k] -= x
    fr.ts = t
    fr.shadow = k
    fr.qty = x
    fr.event = i
    st.fills.push_back(fr)
    if st.first[k] < 0:
        st.first[k] = t
    if st.rem[k] == 0:
        _end(st, li, k, ST_FILLED, t)


cdef inline int64_t _reach(State* st, int side, int64_t lo, int64_t hi, int64_t q, int64_t best, Py_ssize_t i,
                           int64_t t) noexcept nogil:
    """An aggressor of size q reaches every live shadow of ``side`` at prices lo..hi; returns priority breaks."""
    cdef int64_t pp, k, j, bt, viol = 0, li
    pp = lo
    while pp <= hi:
        li = side * st.width + pp - st.pmin
        k = st.head[li]
        while k >= 0:
            j = st.nxt[k]
            bt = _better(st, side, pp, best)
            if st.ahead[k] > 0 or bt > 0:
                viol += 1
            _fill(st, k, q, bt, i, t, li)
            k = j
        pp += 1
    return viol


@cython.boundscheck(False)
@cython.wraparound(False)
def track(const int64_t[::1] ts, const int64_t[::1] price, const int64_t[::1] qty, const int32_t[::1] order,
          const uint8_t[::1] side, const uint8_t[::1] kind, const uint8_t[::1] flags, int64_t n_orders,
          const int64_t[::1] s_ts, const uint8_t[::1] s_side, const int64_t[::1] s_off, const uint8_t[::1] s_abs,
          const int64_t[::1] s_qty, const int64_t[::1] s_end, const int64_t[::1] end_order, bint trace=False):
    """Run the pass. Shadows must be sorted by ``s_ts``; ``end_order`` is argsort of ``s_end`` (stable).

    Returns a dict of per-shadow arrays and the fill records (ts, shadow, qty, event index). With ``trace``,
    also every cancel (not execution) at a live shadow's level: (shadow, event, ahead before, level size
    before, qty, 1 if the cancelled order was ahead of the shadow).
    """
    cdef Py_ssize_t n = ts.shape[0], m = s_ts.shape[0]
    cdef Py_ssize_t i, j
    if not (price.shape[0] == n and qty.shape[0] == n and order.shape[0] == n and side.shape[0] == n
            and kind.shape[0] == n and flags.shape[0] == n):
        raise ValueError("stream columns must have equal lengths")
    if not (s_side.shape[0] == m and s_off.shape[0] == m and s_abs.shape[0] == m and s_qty.shape[0] == m
            and s_end.shape[0] == m and end_order.shape[0] == m):
        raise ValueError("shadow columns must have equal lengths")
    if n and (np.min(order) < 0 or np.max(order) >= n_orders):
        raise ValueError(f"order indices must lie in 0..{n_orders - 1}")
    cdef int64_t pmin = 0, pmax = 0
    if n:
        pmin = int(np.min(price)) - 1024
        pmax = int(np.max(price)) + 1024
    cdef int64_t width = pmax - pmin + 1
    lv_np = np.zeros(2 * width, np.int64)
    head_np = np.full(2 * width, -1, np.int64)
    nxt_np = np.full(m, -1, np.int64)
    prv_np = np.full(m, -1, np.int64)
    cdef int64_t[::1] add_seq = np.full(max(n_orders, 1), -1, np.int64)
    status_np = np.full(m, ST_PENDING, np.int8)
    sprice_np = np.zeros(m, np.int64)
    seq_np = np.full(m, -1, np.int64)
    ahead0_np = np.zeros(m, np.int64)
    ahead_np = np.zeros(m, np.int64)
    rem_np = np.zeros(m, np.int64)
    first_np = np.full(m, -1, np.int64)
    done_np = np.full(m, -1, np.int64)
    bb_np = np.zeros(m, np.int64)
    ba_np = np.zeros(m, np.int64)
    cdef int64_t[::1] lv_v = lv_np, head_v = head_np, nxt_v = nxt_np, prv_v = prv_np, sprice = sprice_np
    cdef int64_t[::1] seq = seq_np, ahead0 = ahead0_np, ahead_v = ahead_np, rem_v = rem_np, first_v = first_np
    cdef int64_t[::1] done_v = done_np, bb = bb_np, ba = ba_np
    cdef int8_t[::1] status_v = status_np
    cdef vector[FillRec] fills
    cdef vector[TraceRec] tr
    cdef TraceRec trc
    cdef State st
    st.lv = &lv_v[0]
    st.head = &head_v[0]
    st.nxt = &nxt_v[0] if m else NULL
    st.prv = &prv_v[0] if m else NULL
    st.status = &status_v[0] if m else NULL
    st.ahead = &ahead_v[0] if m else NULL
    st.rem = &rem_v[0] if m else NULL
    st.first = &first_v[0] if m else NULL
    st.done = &done_v[0] if m else NULL
    st.width = width
    st.pmin = pmin
    st.fills = &fills
    cdef int64_t* lvb = st.lv - pmin                 # bid sizes by price
    cdef int64_t* lva = st.lv + width - pmin         # ask sizes by price
    cdef int64_t* hb = st.head - pmin
    cdef int64_t* ha = st.head + width - pmin
    cdef int64_t best_bid = pmin - 1, best_ask = pmax + 1     # sentinels: empty side
    cdef int64_t live_bid_hi = pmin - 1, live_ask_lo = pmax + 1   # bounds of live shadow prices
    cdef Py_ssize_t next_place = 0, next_end = 0
    cdef int64_t t = 0, p, q, k, li, kk, bt
    cdef int s, sd
    cdef int64_t viol = 0, anomalies = 0
    with nogil:
        for i in range(n + 1):
            if i < n:
                t = ts[i]
            # 1. placements strictly before this event's time (all of the rest at the end: after the data)
            while next_place < m and (i == n or s_ts[next_place] < t):
                k = next_place
                next_place += 1
                sd = s_side[k]
                bb[k] = best_bid if best_bid >= pmin else 0
                ba[k] = best_ask if best_ask <= pmax else 0
                if s_abs[k]:
                    p = s_off[k]
                elif (sd == 0 and best_bid < pmin) or (sd == 1 and best_ask > pmax):
                    st.status[k] = ST_REJECTED
                    continue
                else:
                    p = best_bid - s_off[k] if sd == 0 else best_ask + s_off[k]
                sprice[k] = p
                if i == n or p < pmin or p > pmax or s_end[k] < s_ts[k] or \
                        (sd == 0 and best_ask <= pmax and p >= best_ask) or \
                        (sd == 1 and best_bid >= pmin and p <= best_bid):
                    st.status[k] = ST_REJECTED
                    continue
                li = sd * width + p - pmin
                seq[k] = i
                st.status[k] = ST_OPEN
                st.ahead[k] = st.lv[li]
                ahead0[k] = st.lv[li]
                st.rem[k] = s_qty[k]
                _link(&st, li, k)
                if sd == 0 and p > live_bid_hi:
                    live_bid_hi = p
                if sd == 1 and p < live_ask_lo:
                    live_ask_lo = p
            # 2. end times strictly before this event (at the end of the data the rest stay open)
            while next_end < m and i < n and s_end[end_order[next_end]] < t:
                k = end_order[next_end]
                next_end += 1
                if st.status[k] == ST_OPEN:
                    _end(&st, s_side[k] * width + sprice[k] - pmin, k, ST_CANCELLED, s_end[k])
            if i == n:
                break
            # 3. the event
            p = price[i]
            q = qty[i]
            s = side[i]
            li = s * width + p - pmin
            if flags[i] & F_RECON:
                # the reconstruction set this level from the orderbook file: its queue is not known
                k = st.head[li]
                while k >= 0:
                    kk = st.nxt[k]
                    _end(&st, li, k, ST_WINDOW, t)
                    k = kk
            if kind[i] == K_ADD:
                add_seq[order[i]] = i
                st.lv[li] += q
                if s == 0:
                    if p > best_bid:
                        best_bid = p
                    if p >= live_ask_lo:           # a bid at or through resting ask shadows
                        viol += _reach(&st, 1, live_ask_lo, p, q, best_ask, i, t)
                else:
                    if p < best_ask:
                        best_ask = p
                    if p <= live_bid_hi:           # an ask at or through resting bid shadows
                        viol += _reach(&st, 0, p, live_bid_hi, q, best_bid, i, t)
            else:
                st.lv[li] -= q
                if st.lv[li] < 0:
                    anomalies += 1
                    st.lv[li] = 0
                k = st.head[li]
                while k >= 0:
                    kk = st.nxt[k]
                    if trace and kind[i] == K_REMOVE and not (flags[i] & F_RECON):
                        trc.shadow = k
                        trc.event = i
                        trc.ahead = st.ahead[k]
                        trc.level = st.lv[li] + q
                        trc.qty = q
                        trc.is_ahead = 1 if add_seq[order[i]] < seq[k] else 0
                        tr.push_back(trc)
                    if add_seq[order[i]] < seq[k]:
                        st.ahead[k] -= q
                        if st.ahead[k] < 0:
                            anomalies += 1
                            st.ahead[k] = 0
                    elif kind[i] == K_EXEC:
                        # an order behind the shadow traded: the aggressor reached the shadow first
                        bt = _better(&st, s, p, best_bid if s == 0 else best_ask)
                        if st.ahead[k] > 0 or bt > 0:
                            viol += 1
                        _fill(&st, k, q, bt, i, t, li)
                    k = kk
                if kind[i] == K_EXEC:
                    # an execution at a worse price reaches every shadow at a better price on its side
                    if s == 0 and live_bid_hi > p:
                        viol += _reach(&st, 0, p + 1, live_bid_hi, q, best_bid, i, t)
                    elif s == 1 and live_ask_lo < p:
                        viol += _reach(&st, 1, live_ask_lo, p - 1, q, best_ask, i, t)
                if st.lv[li] == 0:
                    if s == 0 and p == best_bid:
                        while best_bid >= pmin and lvb[best_bid] == 0:
                            best_bid -= 1
                    elif s == 1 and p == best_ask:
                        while best_ask <= pmax and lva[best_ask] == 0:
                            best_ask += 1
            while live_bid_hi >= pmin and hb[live_bid_hi] < 0:
                live_bid_hi -= 1
            while live_ask_lo <= pmax and ha[live_ask_lo] < 0:
                live_ask_lo += 1
    nf = fills.size()
    f_np = np.zeros((nf, 4), np.int64)
    cdef int64_t[:, ::1] fv = f_np
    for j in range(<Py_ssize_t>nf):
        fv[j, 0] = fills[j].ts
        fv[j, 1] = fills[j].shadow
        fv[j, 2] = fills[j].qty
        fv[j, 3] = fills[j].event
    ntr = tr.size()
    t_np = np.zeros((ntr, 6), np.int64)
    cdef int64_t[:, ::1] tv = t_np
    for j in range(<Py_ssize_t>ntr):
        tv[j, 0] = tr[j].shadow
        tv[j, 1] = tr[j].event
        tv[j, 2] = tr[j].ahead
        tv[j, 3] = tr[j].level
        tv[j, 4] = tr[j].qty
        tv[j, 5] = tr[j].is_ahead
    return dict(trace=t_np, status=status_np, price_ticks=sprice_np, seq=seq_np, ahead_at_entry=ahead0_np,
                ahead_at_end=ahead_np, remaining=rem_np, first_fill_ts=first_np, end_ts=done_np,
                best_bid=bb_np, best_ask=ba_np, fills=f_np, priority_breaks=viol, anomalies=anomalies)


@cython.boundscheck(False)
@cython.wraparound(False)
def level_sizes(stream):
    """(prev, new) size of the event's level around each event of an L3 stream (the level-2 view)."""
    cdef const int64_t[::1] price = np.ascontiguousarray(stream["price_ticks"])
    cdef const int64_t[::1] qty = np.ascontiguousarray(stream["qty_lots"])
    cdef const uint8_t[::1] side = np.ascontiguousarray(stream["side"])
    cdef const uint8_t[::1] kind = np.ascontiguousarray(stream["kind"])
    cdef Py_ssize_t n = price.shape[0], i
    prev_np = np.zeros(n, np.int64)
    new_np = np.zeros(n, np.int64)
    cdef int64_t[::1] prev = prev_np
    cdef int64_t[::1] new = new_np
    if n == 0:
        return prev_np, new_np
    cdef int64_t pmin = int(np.min(price)), pmax = int(np.max(price))
    lv_np = np.zeros((2, pmax - pmin + 1), np.int64)
    cdef int64_t[:, ::1] lv = lv_np
    cdef int64_t li
    with nogil:
        for i in range(n):
            li = price[i] - pmin
            prev[i] = lv[side[i], li]
            if kind[i] == K_ADD:
                lv[side[i], li] += qty[i]
            else:
                lv[side[i], li] -= qty[i]
                if lv[side[i], li] < 0:
                    lv[side[i], li] = 0
            new[i] = lv[side[i], li]
    return prev_np, new_np


# ------------------------------------------------------------------------------------------------
# Level-2 queue models over the shadows' event lists (the compiled path of lob.queue.models)
# ------------------------------------------------------------------------------------------------
from lob.queue._compiled cimport (M_RISK_AVERSE, M_POWER, M_POWER2, M_POWER3, M_LOG, M_LOG2,
                                  M_LOGISTIC)
from libc.math cimport pow, log, exp, isfinite, isnan


cdef inline double _prob(int code, double a, double b, double c, double front, double back,
                         double prev) noexcept nogil:
    cdef double r, tot
    if code == M_POWER:
        r = pow(back, a) / (pow(back, a) + pow(front, a))
    elif code == M_POWER2:
        r = pow(back, a) / pow(back + front, a)
    elif code == M_POWER3:
        r = 1.0 - pow(front / (front + back), a)
    elif code == M_LOG:
        r = log(1.0 + back) / (log(1.0 + back) + log(1.0 + front))
    elif code == M_LOG2:
        r = log(1.0 + back) / log(1.0 + back + front)
    elif code == M_LOGISTIC:
        tot = front + back
        r = 1.0 / (1.0 + exp(-(a + b * (front / tot if tot > 0 else 0.0) + c * log(1.0 + prev))))
    else:
        r = 0.0
    if not isfinite(r) or isnan(r):
        r = 1.0
    return r


@cython.boundscheck(False)
@cython.wraparound(False)
def run_models(const int64_t[::1] offsets, const int64_t[::1] ev_idx, const uint8_t[::1] ev_code,
               const int64_t[::1] ts, const int64_t[::1] qty, const int64_t[::1] prev, const int64_t[::1] new,
               const int64_t[::1] ahead0, const int64_t[::1] s_qty, const int64_t[::1] codes,
               const double[:, ::1] params):
    """Run every built-in model over every shadow's event list.

    Shadow k's events are ``ev_idx[offsets[k]:offsets[k+1]]`` with codes 0 (a level change at its price,
    prev -> new), 1 (a trade at its price of ``qty``, followed by its level change), 2 (an aggressor through
    its price: fills ``qty``). Returns (first fill ts, full fill ts, filled qty), each (shadows, models);
    -1 for no fill.
    """
    cdef Py_ssize_t m = offsets.shape[0] - 1, nm = codes.shape[0], k, j, e, mi
    first_np = np.full((m, nm), -1, np.int64)
    full_np = np.full((m, nm), -1, np.int64)
    got_np = np.zeros((m, nm), np.int64)
    cdef int64_t[:, ::1] first = first_np, full = full_np, got = got_np
    cdef double ahead, traded, chg, front, back, pr, est, x
    cdef int64_t left, take
    cdef int code
    with nogil:
        for mi in range(nm):
            code = codes[mi]
            for k in range(m):
                ahead = ahead0[k]
                traded = 0.0
                left = s_qty[k]
                for j in range(offsets[k], offsets[k + 1]):
                    e = ev_idx[j]
                    take = 0
                    if ev_code[j] == 2:
                        take = qty[e]
                        ahead = 0.0
                    else:
                        if ev_code[j] == 1:
                            x = qty[e]
                            traded += x
                            if x > ahead:
                                take = <int64_t>(x - ahead)
                                ahead = 0.0
                            else:
                                ahead -= x
                        # the level change
                        chg = <double>(prev[e] - new[e]) - traded
                        traded = 0.0
                        if chg < 0 or code == M_RISK_AVERSE:
                            if new[e] < ahead:
                                ahead = new[e]
                        else:
                            front = ahead
                            back = prev[e] - front
                            pr = _prob(code, params[mi, 0], params[mi, 1], params[mi, 2], front, back, prev[e])
                            est = front - (1.0 - pr) * chg + (back - pr * chg if back - pr * chg < 0 else 0.0)
                            if est > new[e]:
                                est = new[e]
                            ahead = est if est > 0 else 0.0
                    if take > 0:
                        if take > left:
                            take = left
                        left -= take
                        got[k, mi] += take
                        if first[k, mi] < 0:
                            first[k, mi] = ts[e]
                        if left == 0:
                            full[k, mi] = ts[e]
                            break
    return first_np, full_np, got_np
