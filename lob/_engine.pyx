# cython: language_level=3
"""The matching engine (``lob._engine``): C books, a nogil matching loop, and the multi-symbol ``Engine``.

Layout of one book (``BookC``):

* an order pool of ``Order`` structs with a free list (slots are stable ``int32`` indices);
* an open-addressing hash map ``order_id -> slot`` (linear probing, backward-shift deletion): O(1) cancel;
* a pool of ``Level`` structs, each an intrusive FIFO of order slots with displayed and total quantity;
* per side a sorted array of ``LevelRef`` (key = price for bids, -price for asks, ascending, so the best
  level is always the last entry): O(1) best price, O(log n) level lookup with a fast path near the touch,
  and prices may jump anywhere in int64 range without a tick-indexed array blowing up; the array keeps
  free room at both ends (``side_off``), so adding or dropping a level shifts only the shorter part of it
  (the far levels at the front as cheaply as the busy ones at the end);
* pending stops in arrival order.

Nothing here holds a Python object; every routine that touches a book runs without the GIL. Outputs
(reports and fills) go to growable C buffers owned by the ``Engine``.
"""
cimport cython
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport INT64_MAX, INT64_MIN, int32_t, int64_t, uint8_t, uint16_t, uint64_t, uintptr_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memmove, memset
from cython.view cimport array as cvarray

import numpy as np
cimport numpy as cnp

cnp.import_array()

from lob._nparray cimport _empty

from lob.errors import BookIntegrityError, InvalidEventError

# ----------------------------------------------------------------------------------------------------
# Record dtypes, derived from the structs (never restated)
# ----------------------------------------------------------------------------------------------------
cdef Event _event_dummy
cdef Report _report_dummy
cdef Fill _fill_dummy
cdef OrderView _order_dummy

EVENT_DTYPE = np.asarray(<Event[:1]>(&_event_dummy)).dtype
REPORT_DTYPE = np.asarray(<Report[:1]>(&_report_dummy)).dtype
FILL_DTYPE = np.asarray(<Fill[:1]>(&_fill_dummy)).dtype
ORDER_DTYPE = np.asarray(<OrderView[:1]>(&_order_dummy)).dtype

cdef cnp.dtype _EVENT_DESCR = EVENT_DTYPE
cdef cnp.dtype _REPORT_DESCR = REPORT_DTYPE
cdef cnp.dtype _FILL_DESCR = FILL_DTYPE


SIZEOF_ORDER = sizeof(Order)

# ----------------------------------------------------------------------------------------------------
# Small helpers (hot leaves: cannot fail)
# ----------------------------------------------------------------------------------------------------
cdef extern from *:
    """
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    /* volatile asm: gcc 12 drops __builtin_prefetch from these inlined side-effect-free helpers */
    #define LOB_PREFETCH(p) __asm__ __volatile__("prefetcht0 %0" : : "m"(*(const char*)(p)))
    #elif defined(__GNUC__) || defined(__clang__)
    #define LOB_PREFETCH(p) __builtin_prefetch((const void*)(p))
    #else
    #define LOB_PREFETCH(p) ((void)(p))
    #endif
    """
    void LOB_PREFETCH(const void* p) nogil


cdef inline uint64_t _mix(uint64_t x) noexcept nogil:
    # splitmix64 finaliser: order ids are often sequential, so spread them before masking
    x ^= x >> 30
    x *= <uint64_t>0xbf58476d1ce4e5b9
    x ^= x >> 27
    x *= <uint64_t>0x94d049bb133111eb
    x ^= x >> 31
    return x


cdef inline uint32_t _id_tag(uint64_t oid) noexcept nogil:
    # the id map's hash of an order id (home cell = tag & mask): half of murmur3's finaliser, 3 steps instead
    # of _mix's 5 on every add, cancel and fill; the xor-shift first folds high bits down, so ids that differ
    # only there (a time stamp in the high bits, a counter in the low ones) still spread
    oid ^= oid >> 33
    oid *= <uint64_t>0xff51afd7ed558ccd
    oid ^= oid >> 33
    return <uint32_t>oid


cdef inline int64_t _key(int side, int64_t price) noexcept nogil:
    return price if side == BUY else -price


cdef inline int64_t _min64(int64_t a, int64_t b) noexcept nogil:
    return a if a < b else b


cdef inline uint64_t _fnv(uint64_t h, uint64_t v) noexcept nogil:
    cdef int i
    for i in range(8):
        h ^= (v >> (8 * i)) & 0xff
        h *= <uint64_t>1099511628211
    return h


# ----------------------------------------------------------------------------------------------------
# Book allocation
# ----------------------------------------------------------------------------------------------------
cdef BookC* _book_new(int symbol) noexcept nogil:
    cdef BookC* b = <BookC*>calloc(1, sizeof(BookC))
    if b == NULL:
        return NULL
    b.symbol = symbol
    b.spec.min_qty = 1
    b.pool_free = -1
    b.level_free = -1
    b.idmap_cap = 0
    _book_plain(b)
    return b


cdef void _book_plain(BookC* b) noexcept nogil:
    # the quantity range of the lean path (plain_qty_lo/span): what _check_qty accepts, none while the book is
    # halted or has a price band (those checks stay on the general path); call after a change to spec or halted
    cdef int64_t lo = b.spec.min_qty if b.spec.min_qty > 1 else 1
    cdef int64_t hi = MAX_QTY_LOTS
    if b.spec.max_qty > 0 and b.spec.max_qty < hi:
        hi = b.spec.max_qty
    b.plain_qty_lo = lo
    b.plain_qty_span = <uint64_t>(hi - lo + 1) if hi >= lo and not b.halted and b.spec.band_bps == 0 else 0


cdef inline void _side_free(BookC* b) noexcept nogil:
    # the level indexes start side_off entries past their allocation
    cdef int side
    for side in range(2):
        if b.side_levels[side] != NULL:
            free(b.side_levels[side] - b.side_off[side])
        b.side_levels[side] = NULL
        b.side_off[side] = 0


cdef void _book_free(BookC* b) noexcept nogil:
    if b == NULL:
        return
    free(b.pool)
    free(b.idmap)
    free(b.levels)
    _side_free(b)
    free(b.stops)
    free(b.trig_queue)
    free(b.lvmap[0])
    free(b.lvmap[1])
    free(b.ladder[0])
    free(b.ladder[1])
    free(b)


cdef void _book_clear(BookC* b) noexcept nogil:
    # drop every order, level and stop, keep the spec
    cdef Spec spec = b.spec
    cdef int symbol = b.symbol
    free(b.pool)
    free(b.idmap)
    free(b.levels)
    _side_free(b)
    free(b.stops)
    free(b.trig_queue)
    free(b.lvmap[0])
    free(b.lvmap[1])
    free(b.ladder[0])
    free(b.ladder[1])
    memset(b, 0, sizeof(BookC))
    b.spec = spec
    b.symbol = symbol
    b.pool_free = -1
    b.level_free = -1
    _book_plain(b)


# --- order pool -----------------------------------------------------------------------------------
cdef int _pool_grow(BookC* b) except -1 nogil:
    cdef int32_t old = b.pool_cap
    cdef int32_t new = old + (old >> 2) if old else 256
    cdef Order* p = <Order*>realloc(b.pool, new * sizeof(Order))
    cdef int32_t i
    if p == NULL:
        with gil:
            raise MemoryError("order pool")
    b.pool = p
    for i in range(old, new):
        p[i].state = STATE_FREE
        p[i].next = i + 1 if i + 1 < new else b.pool_free
    b.pool_free = old
    b.pool_cap = new
    return 0


cdef inline int32_t _pool_alloc(BookC* b) except -1 nogil:
    cdef int32_t s
    if b.pool_free == -1:
        _pool_grow(b)
    s = b.pool_free
    b.pool_free = b.pool[s].next
    b.n_orders += 1
    return s


cdef inline void _pool_release(BookC* b, int32_t s) noexcept nogil:
    b.pool[s].state = STATE_FREE
    b.pool[s].next = b.pool_free
    b.pool_free = s
    b.n_orders -= 1


# --- id map ---------------------------------------------------------------------------------------
cdef inline int32_t _id_probe(BookC* b, uint64_t oid, IdHint* h) noexcept nogil:
    # cell of oid in idmap, or -1 with h the empty cell that ends its probe (an add inserts there, see
    # _id_insert_hinted)
    cdef uint32_t mask, i, tag
    cdef int32_t s
    h.cell = -1
    if b.idmap_cap == 0:
        return -1
    tag = _id_tag(oid)
    mask = <uint32_t>(b.idmap_cap - 1)
    i = tag & mask
    while True:
        s = b.idmap[i].slot
        if s == -1:
            h.cell = <int32_t>i
            h.tag = tag
            h.count = b.idmap_count
            h.cap = b.idmap_cap
            return -1
        if b.idmap[i].tag == tag and b.pool[s].order_id == oid:
            return <int32_t>i
        i = (i + 1) & mask


cdef inline int32_t _id_find_pos(BookC* b, uint64_t oid) noexcept nogil:
    # cell of oid in idmap, or -1
    cdef IdHint h
    return _id_probe(b, oid, &h)


cdef inline int32_t _id_find(BookC* b, uint64_t oid) noexcept nogil:
    cdef int32_t pos = _id_find_pos(b, oid)
    return -1 if pos == -1 else b.idmap[pos].slot


cdef int _id_rehash(BookC* b, int32_t new_cap) except -1 nogil:
    cdef IdEntry* old = b.idmap
    cdef int32_t old_cap = b.idmap_cap
    cdef IdEntry* m = <IdEntry*>malloc(new_cap * sizeof(IdEntry))
    cdef int32_t i
    cdef uint32_t mask = <uint32_t>(new_cap - 1)
    cdef uint32_t j
    if m == NULL:
        with gil:
            raise MemoryError("order id map")
    memset(m, 0xff, new_cap * sizeof(IdEntry))
    for i in range(old_cap):
        if old[i].slot != -1:
            j = old[i].tag & mask
            while m[j].slot != -1:
                j = (j + 1) & mask
            m[j] = old[i]
    free(old)
    b.idmap = m
    b.idmap_cap = new_cap
    return 0


cdef inline bint _id_full(BookC* b) noexcept nogil:
    # whether one more id needs a larger map. Load factor at most 1/4 below 16384 cells (128 kB, up to 4096
    # ids), 1/2 below 65536 cells (512 kB): an add's duplicate check then mostly ends on its home cell, empty
    # (whether it is, is a branch the CPU cannot predict: stream_1m, 1/4 instead of 1/2: 0.3 fewer mispredicted
    # branches per event, ~8% of the engine's time); 3/4 from there on, where the memory per resting order
    # (< 100 bytes) is what counts
    if b.idmap_cap < 16384:
        return (b.idmap_count + 1) * 4 > b.idmap_cap
    if b.idmap_cap < 65536:
        return (b.idmap_count + 1) * 2 > b.idmap_cap
    return (b.idmap_count + 1) * 4 > b.idmap_cap * 3


cdef inline int _id_insert(BookC* b, int32_t slot) except -1 nogil:
    cdef uint32_t mask, i, tag
    if _id_full(b):
        _id_rehash(b, b.idmap_cap * 2 if b.idmap_cap else 512)
    tag = _id_tag(b.pool[slot].order_id)
    mask = <uint32_t>(b.idmap_cap - 1)
    i = tag & mask
    while b.idmap[i].slot != -1:
        i = (i + 1) & mask
    b.idmap[i].slot = slot
    b.idmap[i].tag = tag
    b.idmap_count += 1
    return 0


cdef inline int _id_insert_hinted(BookC* b, int32_t slot, const IdHint* h) except -1 nogil:
    # insert at the cell a probe of the same id found empty, when nothing was deleted or grown since (deletions
    # lower the count; only matching runs between the probe and the insert, and it only deletes)
    if (h != NULL and h.cell >= 0 and h.count == b.idmap_count and h.cap == b.idmap_cap
            and not _id_full(b)):
        b.idmap[h.cell].slot = slot
        b.idmap[h.cell].tag = h.tag
        b.idmap_count += 1
        return 0
    return _id_insert(b, slot)


cdef inline void _id_delete(BookC* b, uint64_t oid) noexcept nogil:
    _id_delete_at(b, _id_find_pos(b, oid))


cdef inline void _id_delete_at(BookC* b, int32_t pos) noexcept nogil:
    # backward-shift deletion keeps probe chains intact without tombstones
    cdef uint32_t mask, i, j, k
    if pos == -1:
        return
    mask = <uint32_t>(b.idmap_cap - 1)
    i = <uint32_t>pos
    j = i
    while True:
        j = (j + 1) & mask
        if b.idmap[j].slot == -1:
            break
        k = b.idmap[j].tag & mask
        if (j > i and (k <= i or k > j)) or (j < i and k <= i and k > j):
            b.idmap[i] = b.idmap[j]
            i = j
    b.idmap[i].slot = -1
    b.idmap_count -= 1


# --- level map (price -> level slot, per side) ------------------------------------------------------
cdef inline int32_t _lv_find_pos(BookC* b, int side, int64_t price) noexcept nogil:
    cdef uint32_t mask, i
    cdef int32_t s
    cdef int32_t* m = b.lvmap[side]
    if b.lvmap_cap[side] == 0:
        return -1
    mask = <uint32_t>(b.lvmap_cap[side] - 1)
    i = <uint32_t>_mix(<uint64_t>price) & mask
    while True:
        s = m[i]
        if s == -1:
            return -1
        if b.levels[s].price == price:
            return <int32_t>i
        i = (i + 1) & mask


cdef int _lv_rehash(BookC* b, int side, int32_t new_cap) except -1 nogil:
    cdef int32_t* old = b.lvmap[side]
    cdef int32_t old_cap = b.lvmap_cap[side]
    cdef int32_t* m = <int32_t*>malloc(new_cap * sizeof(int32_t))
    cdef int32_t i
    cdef uint32_t mask = <uint32_t>(new_cap - 1)
    cdef uint32_t j
    if m == NULL:
        with gil:
            raise MemoryError("level map")
    memset(m, 0xff, new_cap * sizeof(int32_t))
    for i in range(old_cap):
        if old[i] != -1:
            j = <uint32_t>_mix(<uint64_t>b.levels[old[i]].price) & mask
            while m[j] != -1:
                j = (j + 1) & mask
            m[j] = old[i]
    free(old)
    b.lvmap[side] = m
    b.lvmap_cap[side] = new_cap
    return 0


cdef inline int _lv_insert(BookC* b, int side, int32_t lv) except -1 nogil:
    cdef uint32_t mask, i
    if (b.lvmap_count[side] + 1) * 2 > b.lvmap_cap[side]:
        _lv_rehash(b, side, b.lvmap_cap[side] * 2 if b.lvmap_cap[side] else 64)
    mask = <uint32_t>(b.lvmap_cap[side] - 1)
    i = <uint32_t>_mix(<uint64_t>b.levels[lv].price) & mask
    while b.lvmap[side][i] != -1:
        i = (i + 1) & mask
    b.lvmap[side][i] = lv
    b.lvmap_count[side] += 1
    return 0


cdef inline void _lv_delete(BookC* b, int side, int64_t price) noexcept nogil:
    cdef int32_t pos = _lv_find_pos(b, side, price)
    cdef uint32_t mask, i, j, k
    cdef int32_t* m = b.lvmap[side]
    if pos == -1:
        return
    mask = <uint32_t>(b.lvmap_cap[side] - 1)
    i = <uint32_t>pos
    j = i
    while True:
        j = (j + 1) & mask
        if m[j] == -1:
            break
        k = <uint32_t>_mix(<uint64_t>b.levels[m[j]].price) & mask
        if (j > i and (k <= i or k > j)) or (j < i and k <= i and k > j):
            m[i] = m[j]
            i = j
    m[i] = -1
    b.lvmap_count[side] -= 1


# --- the dense level index (ladder) ---------------------------------------------------------------
# Where the levels are, a price finds its level with one read: ladder[side][price - lad_base]. The ladder of a
# side starts LAD_MIN ticks wide around its first level and doubles to take in a new level outside it while
# the span stays within LAD_PER_LEVEL ticks per level of the side (at most 2**20): a few far-away prices
# cannot make it large, they go to the hash map lvmap. A level is in exactly one of the two.
cdef enum:
    LAD_MIN = 4096
    LAD_PER_LEVEL = 16
    LAD_MAX = 1048576


cdef inline int32_t _lv_find(BookC* b, int side, int64_t price) noexcept nogil:
    # level slot of price on side, or -1
    cdef uint64_t off = <uint64_t>price - <uint64_t>b.lad_base[side]
    cdef int32_t pos
    if off < <uint64_t>b.lad_span[side]:
        return b.ladder[side][off]
    pos = _lv_find_pos(b, side, price)
    return -1 if pos == -1 else b.lvmap[side][pos]


cdef int _lad_rebuild(BookC* b, int side, int64_t base, int64_t span) except -1 nogil:
    # a new ladder [base, base + span): every level of the side goes to it or, outside it, to a cleared lvmap
    cdef int32_t* lad = <int32_t*>malloc(span * sizeof(int32_t))
    cdef int32_t i, lv
    cdef uint64_t off
    if lad == NULL:
        with gil:
            raise MemoryError("level ladder")
    memset(lad, 0xff, span * sizeof(int32_t))
    free(b.ladder[side])
    b.ladder[side] = lad
    b.lad_base[side] = base
    b.lad_span[side] = span
    if b.lvmap_cap[side]:
        memset(b.lvmap[side], 0xff, b.lvmap_cap[side] * sizeof(int32_t))
    b.lvmap_count[side] = 0
    for i in range(b.n_levels[side]):
        lv = b.side_levels[side][i].level
        off = <uint64_t>b.levels[lv].price - <uint64_t>base
        if off < <uint64_t>span:
            lad[off] = lv
        else:
            _lv_insert(b, side, lv)
    return 0


cdef int _lv_add(BookC* b, int side, int32_t lv) except -1 nogil:
    # index a new level (already in the side's sorted index): in the ladder, grown to take it if it may, or lvmap
    cdef int64_t price = b.levels[lv].price
    cdef int64_t lo = b.lad_base[side], span = b.lad_span[side], hi, limit
    cdef uint64_t off = <uint64_t>price - <uint64_t>lo
    if off < <uint64_t>span:
        b.ladder[side][off] = lv
        return 0
    if span == 0:
        return _lad_rebuild(b, side, price - LAD_MIN // 2, LAD_MIN)
    limit = <int64_t>b.n_levels[side] * LAD_PER_LEVEL
    if limit > LAD_MAX:
        limit = LAD_MAX
    hi = lo + span
    while price < lo or price >= hi:
        lo -= span // 2
        hi += span // 2
        span = hi - lo
        if span > limit:
            return _lv_insert(b, side, lv)
    return _lad_rebuild(b, side, lo, span)


cdef inline void _lv_remove(BookC* b, int side, int64_t price) noexcept nogil:
    cdef uint64_t off = <uint64_t>price - <uint64_t>b.lad_base[side]
    if off < <uint64_t>b.lad_span[side]:
        b.ladder[side][off] = -1
    else:
        _lv_delete(b, side, price)


# --- levels ---------------------------------------------------------------------------------------
cdef int32_t _level_alloc(BookC* b, int64_t price) except -1 nogil:
    cdef int32_t old, new, i, s
    cdef Level* p
    if b.level_free == -1:
        old = b.levels_cap
        new = old * 2 if old else 64
        p = <Level*>realloc(b.levels, new * sizeof(Level))
        if p == NULL:
            with gil:
                raise MemoryError("price levels")
        b.levels = p
        for i in range(old, new):
            p[i].next_free = i + 1 if i + 1 < new else -1
        b.level_free = old
        b.levels_cap = new
    s = b.level_free
    b.level_free = b.levels[s].next_free
    b.levels[s].price = price
    b.levels[s].qty = 0
    b.levels[s].total = 0
    b.levels[s].head = -1
    b.levels[s].tail = -1
    b.levels[s].count = 0
    b.levels[s].next_free = -2
    return s


cdef inline int32_t _lower_bound(LevelRef* arr, int32_t n, int64_t key) noexcept nogil:
    # first index with arr[i].key >= key; most lookups land near the touch (the end), so look there first
    cdef int32_t lo, hi, mid, i
    i = n - 1
    while i >= 0 and i >= n - 4:
        if arr[i].key < key:
            return i + 1
        i -= 1
    if i < 0:
        return 0
    lo = 0
    hi = i + 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if arr[mid].key < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int _side_regrow(BookC* b, int side) except -1 nogil:
    # a side's level index has no free entry at the end a new entry needs: the entries centred again in a new
    # buffer, twice as large once they fill half of it (amortised: each recentring follows cap/4 one-sided inserts)
    cdef int32_t n = b.n_levels[side]
    cdef int32_t cap = b.side_cap[side]
    cdef int32_t off
    cdef LevelRef* p
    if cap == 0:
        cap = 64
    elif n * 2 >= cap:
        cap *= 2
    off = (cap - n) >> 1
    p = <LevelRef*>malloc(cap * sizeof(LevelRef))
    if p == NULL:
        with gil:
            raise MemoryError("level index")
    if n:
        memcpy(p + off, b.side_levels[side], n * sizeof(LevelRef))
    if b.side_levels[side] != NULL:
        free(b.side_levels[side] - b.side_off[side])
    b.side_levels[side] = p + off
    b.side_off[side] = off
    b.side_cap[side] = cap
    return 0


cdef int32_t _level_get(BookC* b, int side, int64_t price, bint create) except -2 nogil:
    # level slot holding price on side, creating it when asked; -1 when absent and not created.
    # The sorted index has free room at both ends: a new entry shifts the shorter part (levels far from the
    # touch sit at the front of the index, the busy ones at its end), so neither end costs a long memmove.
    cdef int64_t key = _key(side, price)
    cdef int32_t n = b.n_levels[side]
    cdef LevelRef* arr = b.side_levels[side]
    cdef int32_t pos
    cdef int32_t lv = _lv_find(b, side, price)
    cdef bint front
    if lv != -1 or not create:
        return lv
    pos = _lower_bound(arr, n, key)
    lv = _level_alloc(b, price)
    front = pos < n - pos
    if (b.side_off[side] == 0) if front else (b.side_off[side] + n == b.side_cap[side]):
        _side_regrow(b, side)
        arr = b.side_levels[side]
    if front:
        # entries [0, pos) move one down, the index starts one entry earlier
        if pos:
            memmove(&arr[-1], &arr[0], pos * sizeof(LevelRef))
        arr -= 1
        b.side_levels[side] = arr
        b.side_off[side] -= 1
    elif pos < n:
        memmove(&arr[pos + 1], &arr[pos], (n - pos) * sizeof(LevelRef))
    arr[pos].key = key
    arr[pos].level = lv
    arr[pos].reserved = 0
    b.n_levels[side] = n + 1
    _lv_add(b, side, lv)
    return lv


cdef void _level_drop(BookC* b, int side, int32_t lv) noexcept nogil:
    # remove an empty level from its side's index (shifting its shorter part) and free its slot
    cdef int32_t n = b.n_levels[side]
    cdef LevelRef* arr = b.side_levels[side]
    cdef int32_t pos
    if n > 0 and arr[n - 1].level == lv:
        pos = n - 1
    else:
        pos = _lower_bound(arr, n, _key(side, b.levels[lv].price))
    if pos < n - 1 - pos:
        # entries [0, pos) move one up, the index starts one entry later
        if pos:
            memmove(&arr[1], &arr[0], pos * sizeof(LevelRef))
        b.side_levels[side] = arr + 1
        b.side_off[side] += 1
    elif pos < n - 1:
        memmove(&arr[pos], &arr[pos + 1], (n - 1 - pos) * sizeof(LevelRef))
    b.n_levels[side] = n - 1
    _lv_remove(b, side, b.levels[lv].price)
    b.levels[lv].next_free = b.level_free
    b.level_free = lv


# --- FIFO links -----------------------------------------------------------------------------------
cdef inline void _enqueue(BookC* b, int32_t lv, int32_t s) noexcept nogil:
    cdef Level* L = &b.levels[lv]
    cdef Order* o = &b.pool[s]
    o.level = lv
    o.next = -1
    o.prev = L.tail
    if L.tail != -1:
        b.pool[L.tail].next = s
    else:
        L.head = s
    L.tail = s
    L.count += 1
    L.qty += o.visible
    L.total += o.qty


cdef inline void _unlink(BookC* b, int32_t s) noexcept nogil:
    cdef Order* o = &b.pool[s]
    cdef Level* L = &b.levels[o.level]
    if o.prev != -1:
        b.pool[o.prev].next = o.next
    else:
        L.head = o.next
    if o.next != -1:
        b.pool[o.next].prev = o.prev
    else:
        L.tail = o.prev
    L.count -= 1
    L.qty -= o.visible
    L.total -= o.qty


cdef inline void _remove_resting(BookC* b, int32_t s) noexcept nogil:
    _remove_resting_at(b, s, -1)


cdef inline void _remove_resting_at(BookC* b, int32_t s, int32_t cell) noexcept nogil:
    # unlink, drop the level if it empties, forget the id (at its id-map cell when known, else -1), free the slot
    cdef int32_t lv = b.pool[s].level
    cdef int side = b.pool[s].side
    _unlink(b, s)
    if b.levels[lv].count == 0:
        _level_drop(b, side, lv)
    _id_delete_at(b, cell if cell >= 0 else _id_find_pos(b, b.pool[s].order_id))
    _pool_release(b, s)
    b.n_resting -= 1


cdef inline int64_t _market_limit(const BookC* b, int side, int64_t opp_best) noexcept nogil:
    # how far a market order may sweep from the opposite side's best price: the market band, if any, else as far
    # as there is liquidity
    if b.spec.market_band_ticks > 0:
        return opp_best + b.spec.market_band_ticks if side == BUY else opp_best - b.spec.market_band_ticks
    return INT64_MAX if side == BUY else INT64_MIN


cdef inline int _rest(BookC* b, uint64_t oid, int64_t owner, int side, int tif, int flags, int64_t price,
                      int64_t rem, int64_t display, int64_t filled, int64_t ts, const IdHint* hint) except -1 nogil:
    # rest the open quantity rem of an accepted order at price, behind the orders there (hint: see _enter)
    cdef int32_t s = _pool_alloc(b)
    cdef int32_t lv = _ladder_cell(b, side, price)[0]
    cdef Order* o
    if lv < 0:
        lv = _level_get(b, side, price, True)       # a level to create, or a far price outside the ladder
    o = &b.pool[s]
    o.order_id = oid
    o.qty = <int32_t>rem
    o.display = <int32_t>display if 0 < display < rem else 0
    o.visible = o.display if o.display else <int32_t>rem
    o.filled = <int32_t>filled
    o.ts_ns = ts
    o.owner = <uint32_t>owner
    o.side = <uint8_t>side
    o.type = LIMIT
    o.tif = <uint8_t>tif
    o.flags = <uint8_t>flags
    o.state = STATE_RESTING
    _enqueue(b, lv, s)
    _id_insert_hinted(b, s, hint)
    b.n_resting += 1
    return 0


cdef inline Level* _top(BookC* b, int side) noexcept nogil:
    # the best level of a side, or NULL when it is empty
    cdef int32_t n = b.n_levels[side]
    return &b.levels[b.side_levels[side][n - 1].level] if n else NULL


cdef inline int64_t _best_price(BookC* b, int side) noexcept nogil:
    # best price of a side, or 0 when empty
    cdef Level* L = _top(b, side)
    return L.price if L != NULL else 0


cdef inline bint _crosses(int side, int64_t price, int64_t opp_best) noexcept nogil:
    if opp_best == 0:
        return False
    return price >= opp_best if side == BUY else price <= opp_best


cdef extern from *:
    """
    #define LOB_MATCH_LIMIT_CLAMP 1099511627776LL
    """
    # 2**40: beyond every price a level can have (<= 2**32), and its key plus any level's key fits int64
    const int64_t MATCH_LIMIT_CLAMP "LOB_MATCH_LIMIT_CLAMP"


cdef inline int64_t _skey(int side, int64_t price) noexcept nogil:
    # _key without a branch on the side (the side of a stream's orders is a coin toss): side must be BUY or SELL.
    # With the opposite side's best key k (LevelRef.key), an order at price crosses it iff _skey(side, price) + k
    # >= 0, and a level of key k is beyond its limit iff _skey(side, limit) + k < 0
    cdef int64_t m = -<int64_t>side
    return (price ^ m) - m


cdef inline bint _plain_add(const BookC* b, const Event* ev) noexcept nogil:
    # whether an ADD is the common plain order that Engine._add_plain takes without the general path: LIMIT or
    # MARKET, GTC or DAY, no flags, no display, a valid side, owner and id, a quantity the book accepts
    # (plain_qty_lo/span: none while it is halted or price-banded, see _book_plain) and, for a limit, a price in
    # [1, MAX_PRICE_TICKS]. One combined test (no branch per field); anything else goes to Engine._add, which
    # names the reason
    cdef uint64_t bad = (<uint64_t>(ev.type >> 1) | <uint64_t>ev.flags | <uint64_t>(ev.side >> 1)
                         | <uint64_t>ev.display_lots | (<uint64_t>ev.owner >> 32) | (ev.order_id >> 63))
    bad |= <uint64_t>(((<uint64_t>ev.price_ticks - 1 >= <uint64_t>MAX_PRICE_TICKS) & (ev.type == LIMIT))
                      | (<uint64_t>ev.qty_lots - <uint64_t>b.plain_qty_lo >= b.plain_qty_span)
                      | ((ev.tif != GTC) & (ev.tif != DAY)))
    return bad == 0


cdef inline int _malformed(const Event* e, uint32_t n_books) noexcept nogil:
    # nonzero when a row is malformed (what _malformed_field names), computed without branches
    cdef int adds = (e.action == ADD) | (e.action == REPLAY_ADD)
    return ((e.symbol >= n_books) | (e.action > REPLAY_DELETE) | ((<uint64_t>e.owner >> 32) != 0)
            | (adds & ((e.order_id > MAX_ORDER_ID) | (e.side > 1)))
            | ((e.action == ADD) & ((e.type | e.tif | e.flags) > 3)))


cdef int _malformed_field(const Event* e, uint32_t n_books) noexcept nogil:
    # the first malformed field of a row (1 symbol, 2 action, 3 owner, 4 side, 5 type, 6 tif, 7 flags,
    # 8 order_id), 0 when the row is well formed
    if e.symbol >= n_books:
        return 1
    if e.action > REPLAY_DELETE:
        return 2
    if e.owner < 0 or e.owner > <int64_t>4294967295:
        return 3
    if e.action == ADD or e.action == REPLAY_ADD:
        if e.order_id > MAX_ORDER_ID:
            return 8
        if e.side > 1:
            return 4
        if e.action == ADD:
            if e.type > 3:
                return 5
            if e.tif > 3:
                return 6
            if e.flags > 3:
                return 7
    return 0


# --- stops ----------------------------------------------------------------------------------------
cdef int _stop_push(BookC* b, int32_t slot, int64_t stop_ticks, int64_t limit_ticks) except -1 nogil:
    cdef int32_t cap
    cdef StopEntry* p
    if b.n_stops == b.stops_cap:
        cap = b.stops_cap * 2 if b.stops_cap else 16
        p = <StopEntry*>realloc(b.stops, cap * sizeof(StopEntry))
        if p == NULL:
            with gil:
                raise MemoryError("stop list")
        b.stops = p
        b.stops_cap = cap
    b.stops[b.n_stops].slot = slot
    b.stops[b.n_stops].reserved = 0
    b.stops[b.n_stops].stop_ticks = stop_ticks
    b.stops[b.n_stops].limit_ticks = limit_ticks
    b.n_stops += 1
    return 0


cdef int32_t _stop_index(BookC* b, int32_t slot) noexcept nogil:
    cdef int32_t i
    for i in range(b.n_stops):
        if b.stops[i].slot == slot:
            return i
    return -1


cdef void _stop_remove_at(BookC* b, int32_t i) noexcept nogil:
    if i < b.n_stops - 1:
        memmove(&b.stops[i], &b.stops[i + 1], (b.n_stops - 1 - i) * sizeof(StopEntry))
    b.n_stops -= 1


cdef inline bint _stop_triggered(int side, int64_t stop_ticks, int64_t last) noexcept nogil:
    if last == 0:
        return False
    return last >= stop_ticks if side == BUY else last <= stop_ticks


# --- batch prefetch -------------------------------------------------------------------------------
# A batch knows its next events. While event i is processed, the lines event i + PF_FAR will read first are
# requested (its id-map cell; an add's ladder cell), for event i + PF_NEAR the lines those point to (the
# order's pool slot, both of its lines; the add's level) and for event i + PF_CLOSE the lines after them (the
# order's level and FIFO neighbours; the order an add queues behind). Hints only: nothing is written, and every
# read is of the current allocations, at indexes inside them.
cdef enum:
    PF_FAR = 24
    PF_NEAR = 10
    PF_CLOSE = 2
    PF_MIN_BYTES = 2097152   # books smaller than this (pools + id maps) stay in the cache: no prefetching


cdef bint _worth_prefetching(BookC** books, int32_t n_books) noexcept nogil:
    # whether the books outgrew the cache (checked every 1024 events of a batch): on cache-resident books the
    # prefetches cost more than they save (stream_1m: 1.3-1.5x the time), on deep ones they save ~15%
    cdef int64_t total = 0
    cdef int32_t k
    for k in range(n_books):
        total += <int64_t>books[k].pool_cap * sizeof(Order) + <int64_t>books[k].idmap_cap * sizeof(IdEntry)
    return total >= PF_MIN_BYTES


# The three stages of an event pass what they found on through a ring (PF_RING > PF_FAR entries, one per event
# ahead): the book and the id's hash, then the level slot (an add) or the pool slot (any other request). They
# run without data-dependent branches (which the CPU mispredicts on a random order stream): an index read or
# carried over is clamped to its array (an out-of-range one becomes 0: a harmless useless prefetch), and the
# add's and the target's prefetch addresses are both computed and one of them chosen by a select.
cdef enum:
    PF_RING = 32


cdef struct PfEntry:
    BookC* b          # NULL: nothing to prefetch for this event
    uint32_t tag      # the order id's hash (_id_tag)
    int32_t ref       # found at PF_NEAR: the level slot at an add's price, or the pool slot of the order targeted
    int32_t add       # 1: an ADD (its level and the order it queues behind), 0: a request naming an order
    int32_t side      # an add's side (0 or 1)


cdef struct PfRing:
    bint on           # prefetching (decided every 1024 events; a ring turned on starts empty)
    PfEntry e[PF_RING]


cdef int32_t _NO_LEVEL = -1      # the ladder cell read when a price is outside its side's ladder (or not an add)
cdef Level _PF_LEVEL             # all zero: what _pf_close reads instead of a level for a request naming an order
cdef Order _PF_ORDER             # all zero: what it reads instead of an order for an add


cdef inline int32_t _clamp(int32_t x, int32_t cap) noexcept nogil:
    # x if 0 <= x < cap else 0 (a compare and a conditional move)
    return x if <uint32_t>x < <uint32_t>cap else 0


cdef inline const int32_t* _ladder_cell(const BookC* b, int side, int64_t price) noexcept nogil:
    # the ladder cell of a price, or a cell holding -1 when the price is outside the side's ladder
    cdef uint64_t off = <uint64_t>price - <uint64_t>b.lad_base[side]
    return &b.ladder[side][off] if off < <uint64_t>b.lad_span[side] else &_NO_LEVEL


cdef inline void _pf_far(BookC** books, int32_t n_books, const Event* ev, PfEntry* e) noexcept nogil:
    # the first lines an event reads: its id-map cell, and an add's ladder cell
    cdef BookC* b
    cdef const int32_t* cell
    cdef uint32_t tag
    e.b = NULL
    if ev.symbol >= n_books:
        return
    b = books[ev.symbol]
    if b.idmap_cap == 0 or b.pool_cap == 0 or b.levels_cap == 0:
        return
    tag = _id_tag(ev.order_id)
    e.add = ev.action == ADD
    e.side = ev.side & 1
    e.tag = tag
    LOB_PREFETCH(&b.idmap[tag & <uint32_t>(b.idmap_cap - 1)])
    cell = _ladder_cell(b, e.side, ev.price_ticks)
    LOB_PREFETCH(cell if e.add else <const int32_t*>&b.idmap[tag & <uint32_t>(b.idmap_cap - 1)])
    e.b = b


cdef inline void _pf_near(const Event* ev, PfEntry* e) noexcept nogil:
    # the lines those point to: an add's level, or the pool slot of the order a request names (both lines each)
    cdef BookC* b = e.b
    cdef const IdEntry* c
    cdef int32_t lv, s
    cdef const char* p
    if b == NULL:
        return
    lv = _clamp((_ladder_cell(b, e.side, ev.price_ticks) if e.add else &_NO_LEVEL)[0], b.levels_cap)
    c = &b.idmap[e.tag & <uint32_t>(b.idmap_cap - 1)]
    s = _clamp(c.slot if c.tag == e.tag else 0, b.pool_cap)
    p = <const char*>&b.levels[lv] if e.add else <const char*>&b.pool[s]
    LOB_PREFETCH(p)
    LOB_PREFETCH(p + (sizeof(Level) - 1 if e.add else sizeof(Order) - 1))
    e.ref = lv if e.add else s


cdef inline void _pf_close(PfEntry* e) noexcept nogil:
    # the lines after them: the order an add queues behind (its level's tail); the level and FIFO neighbours of
    # the order a request names
    cdef BookC* b = e.b
    cdef const Order* o
    cdef int32_t t, lv, prev, nxt
    if b == NULL:
        return
    # one of the two reads is of a zeroed stand-in (in the cache): no load the other kind of request would miss on
    t = _clamp((&b.levels[_clamp(e.ref, b.levels_cap)] if e.add else &_PF_LEVEL).tail, b.pool_cap)
    o = &_PF_ORDER if e.add else &b.pool[_clamp(e.ref, b.pool_cap)]
    lv = _clamp(o.level, b.levels_cap)
    prev = _clamp(o.prev, b.pool_cap)
    nxt = _clamp(o.next, b.pool_cap)
    # the fields the request writes: the tail's next link (an add), the level's quantities and count and the
    # neighbours' links (a removal)
    LOB_PREFETCH(&b.pool[t].next if e.add else <const int32_t*>&b.levels[lv].qty)
    LOB_PREFETCH(&b.pool[t].next if e.add else &b.levels[lv].count)
    LOB_PREFETCH(&b.pool[t if e.add else prev].next)
    LOB_PREFETCH(&b.pool[t if e.add else nxt].prev)


cdef inline void _prefetch_step(BookC** books, int32_t n_books, const Event* ev, int64_t i, int64_t n,
                                PfRing* pf) noexcept nogil:
    # in a batch's loop before event i: every 1024 events, whether to prefetch; then, if so, the three stages
    # for the events PF_FAR, PF_NEAR and PF_CLOSE ahead
    cdef int32_t k
    if i & 1023 == 0:
        if _worth_prefetching(books, n_books):
            if not pf.on:
                for k in range(PF_RING):
                    pf.e[k].b = NULL
                pf.on = True
        else:
            pf.on = False
    if pf.on:
        if i + PF_FAR < n:
            _pf_far(books, n_books, &ev[i + PF_FAR], &pf.e[(i + PF_FAR) & (PF_RING - 1)])
        if i + PF_NEAR < n:
            _pf_near(&ev[i + PF_NEAR], &pf.e[(i + PF_NEAR) & (PF_RING - 1)])
        if i + PF_CLOSE < n:
            _pf_close(&pf.e[(i + PF_CLOSE) & (PF_RING - 1)])


# ----------------------------------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------------------------------
cdef extern from "malloc.h":
    size_t malloc_usable_size(void* p) nogil

# Output buffers of a large batch are handed to numpy without a copy; when numpy frees them, the newest of
# each kind is kept here (its pages stay mapped) for the next large batch. ``release_spare_buffers()`` frees them.
cdef void* _spare_reports = NULL
cdef void* _spare_fills = NULL


cdef void _spare_reports_keep(void* p) noexcept:
    global _spare_reports
    free(_spare_reports)
    _spare_reports = p


cdef void _spare_fills_keep(void* p) noexcept:
    global _spare_fills
    free(_spare_fills)
    _spare_fills = p


cdef void _take_spare(void** buf, int64_t* cap, void** spare, size_t item, int64_t need) noexcept:
    cdef int64_t n = <int64_t>(malloc_usable_size(spare[0]) // item)
    if n >= need:
        free(buf[0])
        buf[0] = spare[0]
        cap[0] = n
        spare[0] = NULL


def release_spare_buffers():
    """Free the output buffers kept for the next large batch (see ``Engine.apply``)."""
    global _spare_reports, _spare_fills
    free(_spare_reports)
    free(_spare_fills)
    _spare_reports = NULL
    _spare_fills = NULL


@cython.final
cdef class Engine:      # its C attributes and methods are declared in lob/_engine.pxd
    """Multi-symbol matching engine over C structs (integers only). Used through ``lob.Exchange``."""

    def __cinit__(self):
        self.md = NULL
        self.md_owner = None
        self.books = NULL
        self.n_books = 0
        self.books_cap = 0
        self.seq = 0
        self.next_auto_id = 1
        self.rep_buf = NULL
        self.rep_n = 0
        self.rep_cap = 0
        self.fill_buf = NULL
        self.fill_n = 0
        self.fill_cap = 0

    def __dealloc__(self):
        cdef int i
        for i in range(self.n_books):
            _book_free(self.books[i])
        free(self.books)
        free(self.rep_buf)
        free(self.fill_buf)

    # --- configuration --------------------------------------------------------------------------
    def add_book(self):
        """Add an empty book and return its symbol index."""
        cdef BookC** p
        cdef int cap
        if self.n_books >= 65535:
            raise OverflowError("at most 65535 symbols")
        if self.n_books == self.books_cap:
            cap = self.books_cap * 2 if self.books_cap else 8
            p = <BookC**>realloc(self.books, cap * sizeof(BookC*))
            if p == NULL:
                raise MemoryError()
            self.books = p
            self.books_cap = cap
        self.books[self.n_books] = _book_new(self.n_books)
        if self.books[self.n_books] == NULL:
            raise MemoryError()
        self.n_books += 1
        return self.n_books - 1

    def set_spec(self, int sym, int64_t min_qty, int64_t max_qty, int64_t band_bps, int64_t ref_price,
                 int64_t market_band_ticks, int stp, int modify_policy):
        """Set the integer rules of one book (validated by the caller)."""
        cdef BookC* b = self._book(sym)
        b.spec.min_qty = min_qty
        b.spec.max_qty = max_qty
        b.spec.band_bps = band_bps
        b.spec.ref_price = ref_price
        b.spec.market_band_ticks = market_band_ticks
        b.spec.stp = stp
        b.spec.modify_policy = modify_policy
        _book_plain(b)

    def set_counters(self, uint64_t seq, uint64_t next_auto_id):
        """Restore the sequence counter and the next engine-assigned order id (snapshots)."""
        self.seq = seq
        self.next_auto_id = next_auto_id

    cdef BookC* _book(self, int sym) except NULL:
        if sym < 0 or sym >= self.n_books:
            raise IndexError(f"symbol index {sym} out of range [0, {self.n_books})")
        return self.books[sym]

    # --- output buffers -------------------------------------------------------------------------
    cdef inline Report* _new_report(self) except NULL nogil:
        cdef int64_t cap
        cdef Report* p
        if self.rep_n == self.rep_cap:
            cap = self.rep_cap * 2 if self.rep_cap else 64
            p = <Report*>realloc(self.rep_buf, cap * sizeof(Report))
            if p == NULL:
                with gil:
                    raise MemoryError("report buffer")
            self.rep_buf = p
            self.rep_cap = cap
        p = &self.rep_buf[self.rep_n]
        self.rep_n += 1
        self.seq += 1
        p.seq = self.seq
        return p

    cdef inline int _emit_fill(self, BookC* b, int64_t ts, int64_t price, int64_t qty, Order* maker,
                               uint64_t taker_id, int64_t taker_owner, int aggressor) except -1 nogil:
        cdef int64_t cap
        cdef Fill* p
        if self.fill_n == self.fill_cap:
            cap = self.fill_cap * 2 if self.fill_cap else 64
            p = <Fill*>realloc(self.fill_buf, cap * sizeof(Fill))
            if p == NULL:
                with gil:
                    raise MemoryError("fill buffer")
            self.fill_buf = p
            self.fill_cap = cap
        p = &self.fill_buf[self.fill_n]
        self.fill_n += 1
        self.seq += 1
        p.ts_ns = ts
        p.seq = self.seq
        p.price_ticks = price
        p.qty_lots = qty
        p.maker_order_id = maker.order_id
        p.taker_order_id = taker_id
        p.maker_owner = maker.owner
        p.taker_owner = taker_owner
        p.symbol = <uint16_t>b.symbol
        p.aggressor = <uint8_t>aggressor
        p.reserved0 = 0
        p.reserved1 = 0
        return 0

    cdef inline int64_t _report_for(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil:
        # open a report that echoes the request; the caller fills in the outcome
        cdef Report* r = self._new_report()
        r.ts_ns = ev.ts_ns
        r.order_id = ev.order_id
        r.owner = ev.owner
        r.price_ticks = ev.price_ticks
        r.filled_lots = 0
        r.cum_filled_lots = 0
        r.remaining_lots = 0
        r.notional = 0
        r.event_index = idx
        r.symbol = ev.symbol
        r.action = ev.action
        r.side = ev.side
        r.status = REJECTED
        r.reason = NONE
        r.type = ev.type
        r.reserved = 0
        return self.rep_n - 1

    cdef int _report_order(self, BookC* b, int32_t s, int64_t ts, int64_t idx, int action, int status,
                           int reason) except -1 nogil:
        # a spontaneous report about a resting order (STP cancel, expiry, decrement)
        cdef Order* o = &b.pool[s]
        cdef Report* r = self._new_report()
        r.ts_ns = ts
        r.order_id = o.order_id
        r.owner = o.owner
        r.price_ticks = b.levels[o.level].price if o.state == STATE_RESTING else 0
        r.filled_lots = 0
        r.cum_filled_lots = o.filled
        r.remaining_lots = o.qty if status < FILLED else 0
        r.notional = 0
        r.event_index = idx
        r.symbol = <uint16_t>b.symbol
        r.action = <uint8_t>action
        r.side = o.side
        r.status = <uint8_t>status
        r.reason = <uint8_t>reason
        r.type = o.type
        r.reserved = 0
        return 0

    # --- matching -------------------------------------------------------------------------------
    cdef int64_t _available(self, BookC* b, int side, int64_t limit, int64_t owner, int64_t need) noexcept nogil:
        # quantity an order could take without resting, stopping once need is reached (FOK check)
        cdef int opp = 1 - side
        cdef int32_t i = b.n_levels[opp] - 1
        cdef int64_t avail = 0
        cdef int64_t lp
        cdef Level* L
        cdef int32_t s
        cdef int stp = b.spec.stp
        cdef bint check_owner = stp != STP_NONE and owner != 0
        while i >= 0 and avail < need:
            L = &b.levels[b.side_levels[opp][i].level]
            lp = L.price
            if (side == BUY and lp > limit) or (side == SELL and lp < limit):
                break
            if not check_owner:
                avail += L.total
            else:
                s = L.head
                while s != -1 and avail < need:
                    if b.pool[s].owner == <uint64_t>owner:
                        if stp == STP_CANCEL_NEWEST or stp == STP_CANCEL_BOTH:
                            return avail
                    else:
                        avail += b.pool[s].qty
                    s = b.pool[s].next
            i -= 1
        return avail

    cdef int _match(self, BookC* b, int64_t ri, uint64_t oid, int64_t owner, int side, int64_t limit,
                    int64_t* rem, int64_t ts, int64_t idx, int* stp_out) except -1 nogil:
        # take liquidity from the opposite side up to limit; rem is decremented by fills and STP
        # decrements; stp_out: 0 none, 1 incoming killed by STP, 2 incoming decremented by STP (the last
        # quantity it lost), 3 decremented by STP and filled after that
        cdef int opp = 1 - side
        cdef int stp = b.spec.stp
        cdef bint check_owner = stp != STP_NONE and owner != 0
        cdef int32_t n, lv, s, nxt
        cdef Level* L
        cdef Order* o
        cdef int64_t q, lp, klim, filled = 0, notional = 0, last = 0
        cdef int64_t left = rem[0]          # kept in registers while matching, written back at the end
        cdef int hit = stp_out[0]
        cdef Report* r
        # the limit as a key (see _skey): market orders pass INT64_MAX / INT64_MIN, clamped to a price no level has
        if limit > MATCH_LIMIT_CLAMP:
            limit = MATCH_LIMIT_CLAMP
        elif limit < -MATCH_LIMIT_CLAMP:
            limit = -MATCH_LIMIT_CLAMP
        klim = _skey(side, limit)
        while left > 0:
            n = b.n_levels[opp]
            if n == 0 or klim + b.side_levels[opp][n - 1].key < 0:
                break
            lv = b.side_levels[opp][n - 1].level
            L = &b.levels[lv]
            lp = L.price
            while left > 0:
                # the level is not empty here: a level leaves the index when its last order goes
                s = L.head
                o = &b.pool[s]
                if check_owner and o.owner == <uint64_t>owner:
                    if stp == STP_CANCEL_NEWEST:
                        hit = 1
                        break
                    if stp == STP_CANCEL_OLDEST or stp == STP_CANCEL_BOTH:
                        self._report_order(b, s, ts, idx, CANCEL, CANCELLED, SELF_TRADE)
                        _remove_resting(b, s)
                        if stp == STP_CANCEL_BOTH:
                            hit = 1
                            break
                        if L.count == 0:
                            break
                        continue
                    # decrement: both lose the overlap, nothing prints
                    q = _min64(left, o.visible)
                    left -= q
                    hit = 2
                    o.visible -= q
                    o.qty -= q
                    L.qty -= q
                    L.total -= q
                    if o.qty == 0:
                        self._report_order(b, s, ts, idx, CANCEL, CANCELLED, SELF_TRADE)
                        _remove_resting(b, s)
                        if L.count == 0:
                            break
                    else:
                        self._report_order(b, s, ts, idx, REDUCE,
                                           PARTIALLY_FILLED if o.filled > 0 else NEW, SELF_TRADE)
                        if o.visible == 0:
                            self._refresh(b, s, ts)
                    continue
                q = _min64(left, o.visible)
                self._emit_fill(b, ts, lp, q, o, oid, owner, side)
                if hit == 2:
                    hit = 3
                left -= q
                filled += q
                notional += q * lp
                last = lp
                o.visible -= q
                o.qty -= q
                o.filled += q
                L.qty -= q
                L.total -= q
                if o.qty == 0:
                    # the head leaves: _remove_resting for the first order of its level (its quantities are 0)
                    nxt = o.next
                    L.head = nxt
                    if nxt != -1:
                        b.pool[nxt].prev = -1
                    else:
                        L.tail = -1
                    L.count -= 1
                    if L.count == 0:
                        _level_drop(b, opp, lv)
                    _id_delete_at(b, _id_find_pos(b, o.order_id))
                    _pool_release(b, s)
                    b.n_resting -= 1
                    if nxt == -1:
                        break
                elif o.visible == 0:
                    self._refresh(b, s, ts)
            if hit == 1:
                break
        rem[0] = left
        stp_out[0] = hit
        if filled:
            r = &self.rep_buf[ri]
            r.filled_lots += filled
            r.notional += notional
            b.last_price = last
        return 0

    cdef inline void _refresh(self, BookC* b, int32_t s, int64_t ts) noexcept nogil:
        # iceberg: show a new peak and go to the back of the queue with new time priority
        cdef Order* o = &b.pool[s]
        cdef int32_t lv = o.level
        _unlink(b, s)
        o.visible = _min64(o.display, o.qty)
        o.ts_ns = ts
        _enqueue(b, lv, s)

    cdef int _enter(self, BookC* b, int64_t ri, uint64_t oid, int64_t owner, int side, int type, int tif,
                    int flags, int64_t price, int64_t qty, int64_t display, int64_t filled_before,
                    int64_t ts, int64_t idx, const IdHint* hint) except -1 nogil:
        # run an accepted order against the book and rest what is left; fills the report ri. hint: where the
        # id goes in the id map (from the add's duplicate check), or NULL
        cdef int opp = 1 - side
        cdef int64_t opp_best = _best_price(b, opp)
        cdef int64_t limit, rem = qty
        cdef int stp_hit = 0
        cdef Report* r
        cdef bint is_market = type == MARKET or type == STOP
        if is_market:
            limit = _market_limit(b, side, opp_best) if opp_best != 0 else 0
        else:
            limit = price
            if flags & (FLAG_POST_ONLY | FLAG_POST_ONLY_SLIDE) and _crosses(side, price, opp_best):
                if flags & FLAG_POST_ONLY_SLIDE:
                    price = opp_best - 1 if side == BUY else opp_best + 1
                    limit = price
                if not (flags & FLAG_POST_ONLY_SLIDE) or price <= 0:
                    r = &self.rep_buf[ri]
                    r.status = REJECTED
                    r.reason = POST_ONLY_WOULD_CROSS
                    r.cum_filled_lots = filled_before
                    return 0
                self.rep_buf[ri].price_ticks = price
        if tif == FOK and (opp_best == 0 or self._available(b, side, limit, owner, qty) < qty):
            r = &self.rep_buf[ri]
            r.status = CANCELLED
            r.reason = FOK_UNFILLABLE
            r.cum_filled_lots = filled_before
            return 0
        if opp_best != 0 and _crosses(side, limit, opp_best):
            self._match(b, ri, oid, owner, side, limit, &rem, ts, idx, &stp_hit)
        r = &self.rep_buf[ri]
        r.cum_filled_lots = filled_before + r.filled_lots
        if stp_hit == 1:
            r.status = CANCELLED
            r.reason = SELF_TRADE
            return 0
        if rem == 0:
            if stp_hit == 2:
                # STP decrement took the last of it: nothing filled it to the end (Coinbase dc, Binance DECREMENT)
                r.status = CANCELLED
                r.reason = SELF_TRADE
            else:
                # filled, possibly after a decrement shrank it
                r.status = FILLED
            return 0
        if is_market or tif == IOC or tif == FOK:
            r.status = CANCELLED
            r.reason = NO_LIQUIDITY
            return 0
        # rest the remainder
        _rest(b, oid, owner, side, tif, flags, price, rem, display, filled_before + r.filled_lots, ts, hint)
        r = &self.rep_buf[ri]
        r.remaining_lots = rem
        r.status = PARTIALLY_FILLED if r.cum_filled_lots > 0 else NEW
        return 0

    cdef int _release_stops(self, BookC* b, int64_t ts, int64_t idx) except -1 nogil:
        # release triggered stops in trigger order, after the triggering order finished matching
        cdef int32_t head = 0, tail = 0, i, j, cap
        cdef StopEntry e
        cdef StopEntry* q
        cdef Order o
        cdef int64_t ri, last
        cdef Report* r
        if b.n_stops == 0 or b.last_price == 0:
            return 0
        last = -1
        while True:
            if b.last_price != last:
                last = b.last_price
                # move every stop that triggers at the last price to the queue, keeping arrival order
                j = 0
                for i in range(b.n_stops):
                    e = b.stops[i]
                    if _stop_triggered(b.pool[e.slot].side, e.stop_ticks, last):
                        if tail == b.trig_cap:
                            cap = b.trig_cap * 2 if b.trig_cap else 16
                            q = <StopEntry*>realloc(b.trig_queue, cap * sizeof(StopEntry))
                            if q == NULL:
                                with gil:
                                    raise MemoryError("stop queue")
                            b.trig_queue = q
                            b.trig_cap = cap
                        b.trig_queue[tail] = e
                        tail += 1
                    else:
                        b.stops[j] = e
                        j += 1
                b.n_stops = j
            if head == tail:
                break
            e = b.trig_queue[head]
            head += 1
            o = b.pool[e.slot]
            _id_delete(b, o.order_id)
            _pool_release(b, e.slot)
            r = self._new_report()
            ri = self.rep_n - 1
            r.ts_ns = ts
            r.order_id = o.order_id
            r.owner = o.owner
            r.price_ticks = e.limit_ticks
            r.filled_lots = 0
            r.cum_filled_lots = o.filled
            r.remaining_lots = 0
            r.notional = 0
            r.event_index = idx
            r.symbol = <uint16_t>b.symbol
            r.action = ADD
            r.side = o.side
            r.status = REJECTED
            r.reason = NONE
            r.type = o.type
            r.reserved = 0
            self._enter(b, ri, o.order_id, o.owner, o.side, MARKET if o.type == STOP else LIMIT, o.tif,
                        0, e.limit_ticks, o.qty, o.display, o.filled, ts, idx, NULL)
        return 0

    # --- requests -------------------------------------------------------------------------------
    cdef int _process_one(self, const Event* ev, int64_t idx) except -1 nogil:
        # the common requests, by frequency (a plain limit add, another add, a cancel), go straight to their
        # handlers; everything else to _process_other
        cdef BookC* b
        cdef int a = ev.action
        if ev.symbol < self.n_books and ev.reserved == 0:
            b = self.books[ev.symbol]
            if a == ADD:
                if _plain_add(b, ev):
                    return self._add_plain(b, ev, idx)
                return self._add(b, ev, idx)
            if a == CANCEL:
                return self._cancel(b, ev, idx)
        return self._process_other(ev, idx)

    cdef int _process_other(self, const Event* ev, int64_t idx) except -1 nogil:
        # an unknown symbol, a request rejected at the edge, and the actions other than ADD and CANCEL
        cdef BookC* b
        cdef int64_t ri
        cdef int a = ev.action
        if ev.symbol >= self.n_books:
            ri = self._report_for(NULL, ev, idx)
            self.rep_buf[ri].reason = UNKNOWN_SYMBOL
            return 0
        b = self.books[ev.symbol]
        if ev.reserved != 0:
            # rejected at the edge before it got here (the journal keeps the reason so replays agree)
            ri = self._report_for(b, ev, idx)
            self.rep_buf[ri].reason = ev.reserved
            if a == ADD and ev.order_id == 0:
                self.rep_buf[ri].order_id = 0
            return 0
        if a == MODIFY:
            self._modify(b, ev, idx)
        elif a == REDUCE:
            self._reduce(b, ev, idx)
        elif a == SESSION_END:
            self._session_end(b, ev, idx)
        elif a == HALT:
            b.halted = 1
            _book_plain(b)
        elif a == RESUME:
            b.halted = 0
            _book_plain(b)
        elif a == REPLAY_ADD:
            self._replay_add(b, ev, idx)
        elif a == REPLAY_EXECUTE:
            self._replay_execute(b, ev, idx)
        elif a == REPLAY_DELETE:
            self._replay_delete(b, ev, idx)
        else:
            ri = self._report_for(b, ev, idx)
            self.rep_buf[ri].reason = INVALID_ORDER
        return 0

    cdef int _check_price(self, BookC* b, int64_t price) noexcept nogil:
        # reason code for a limit price, 0 when acceptable
        cdef int64_t ref, diff
        if price <= 0 or price > MAX_PRICE_TICKS:
            return INVALID_PRICE
        if b.spec.band_bps > 0:
            ref = b.last_price if b.last_price else b.spec.ref_price
            if ref > 0:
                diff = price - ref if price > ref else ref - price
                if diff * 10000 > b.spec.band_bps * ref:
                    return PRICE_BAND
        return 0

    cdef int _check_qty(self, BookC* b, int64_t qty) noexcept nogil:
        if qty <= 0 or qty > MAX_QTY_LOTS or qty < b.spec.min_qty or (b.spec.max_qty > 0 and qty > b.spec.max_qty):
            return INVALID_QTY
        return 0

    cdef inline int _add_plain(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil:
        # a plain limit or market order (_plain_add(b, ev) holds): the outcome of _add and _enter for it in one
        # line of code, without the checks and cases that cannot apply (the common requests of a stream)
        cdef int64_t ri = self._report_for(b, ev, idx)
        cdef Report* r = &self.rep_buf[ri]
        cdef uint64_t oid = ev.order_id
        cdef bint market = ev.type == MARKET
        cdef int side = ev.side
        cdef int opp = side ^ 1
        cdef int64_t price = ev.price_ticks
        cdef int64_t rem = ev.qty_lots
        cdef int64_t filled = 0, limit
        cdef int32_t n = b.n_levels[opp]
        cdef int stp_hit = 0
        cdef IdHint hint
        if oid == 0:
            oid = self.next_auto_id
            r.order_id = oid
            hint.cell = -1
        elif _id_probe(b, oid, &hint) != -1:
            r.reason = DUPLICATE_ORDER_ID
            return 0
        if oid >= self.next_auto_id:
            self.next_auto_id = oid + 1
        if market:
            r.price_ticks = 0
        if n != 0 and (market or _skey(side, price) + b.side_levels[opp][n - 1].key >= 0):
            # it crosses (a market order, whenever there is liquidity): take what it can as _enter does
            limit = price
            if market:
                # up to the market band from the touch, if any, else without a limit (see _match)
                limit = _market_limit(b, side, _skey(opp, b.side_levels[opp][n - 1].key))
            self._match(b, ri, oid, ev.owner, side, limit, &rem, ev.ts_ns, idx, &stp_hit)
            r = &self.rep_buf[ri]
            filled = r.filled_lots
            r.cum_filled_lots = filled
            if stp_hit == 1 or rem == 0:
                if stp_hit == 1 or stp_hit == 2:
                    # killed by STP, or an STP decrement took the last of it
                    r.status = CANCELLED
                    r.reason = SELF_TRADE
                else:
                    r.status = FILLED
                return self._add_done(b, ev, idx)
        if market:
            # what is left of a market order never rests
            r.status = CANCELLED
            r.reason = NO_LIQUIDITY
            return self._add_done(b, ev, idx)
        _rest(b, oid, ev.owner, side, ev.tif, 0, price, rem, 0, filled, ev.ts_ns, &hint)
        r.remaining_lots = rem
        r.status = PARTIALLY_FILLED if filled > 0 else NEW
        return self._add_done(b, ev, idx)

    cdef inline int _add_done(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil:
        # after an accepted add ran: the stops its trades triggered
        if b.n_stops:
            self._release_stops(b, ev.ts_ns, idx)
        return 0

    cdef int _add(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil:
        cdef int64_t ri = self._report_for(b, ev, idx)
        cdef Report* r = &self.rep_buf[ri]
        cdef int reason = 0
        cdef int type = ev.type
        cdef uint64_t oid = ev.order_id
        cdef int32_t s
        cdef Order* o
        cdef IdHint hint
        hint.cell = -1
        if (ev.side > 1 or ev.type > 3 or ev.tif > 3 or ev.flags > 3 or ev.owner < 0
                or ev.owner > <int64_t>4294967295 or ev.order_id > MAX_ORDER_ID):
            reason = INVALID_ORDER
        elif b.halted:
            reason = HALTED
        elif (self._check_qty(b, ev.qty_lots) or ev.display_lots < 0 or ev.display_lots > MAX_QTY_LOTS
              or ev.display_lots > ev.qty_lots):
            reason = INVALID_QTY
        elif type == LIMIT or type == STOP_LIMIT:
            reason = self._check_price(b, ev.price_ticks)
        if reason == 0 and (type == STOP or type == STOP_LIMIT) and (ev.stop_ticks <= 0 or ev.stop_ticks > MAX_PRICE_TICKS):
            reason = INVALID_PRICE
        if reason == 0:
            if oid == 0:
                oid = self.next_auto_id
                r.order_id = oid
            elif _id_probe(b, oid, &hint) != -1:
                reason = DUPLICATE_ORDER_ID
        if reason:
            r.reason = <uint8_t>reason
            return 0
        if oid >= self.next_auto_id:
            self.next_auto_id = oid + 1
        if type == MARKET or type == STOP:
            r.price_ticks = 0
        if (type == STOP or type == STOP_LIMIT) and not _stop_triggered(ev.side, ev.stop_ticks, b.last_price):
            s = _pool_alloc(b)
            o = &b.pool[s]
            o.order_id = oid
            o.qty = ev.qty_lots
            o.display = ev.display_lots if ev.display_lots < ev.qty_lots else 0
            o.visible = o.qty
            o.filled = 0
            o.ts_ns = ev.ts_ns
            o.owner = <uint32_t>ev.owner
            o.prev = -1
            o.next = -1
            o.side = ev.side
            o.type = <uint8_t>type
            o.tif = ev.tif
            o.flags = 0
            o.state = STATE_STOP
            o.level = -1
            _id_insert_hinted(b, s, &hint)
            _stop_push(b, s, ev.stop_ticks, ev.price_ticks if type == STOP_LIMIT else 0)
            r = &self.rep_buf[ri]
            r.status = NEW
            r.remaining_lots = ev.qty_lots
            return 0
        self._enter(b, ri, oid, ev.owner, ev.side, MARKET if type == STOP else (LIMIT if type == STOP_LIMIT else type),
                    ev.tif, ev.flags, ev.price_ticks, ev.qty_lots, ev.display_lots, 0, ev.ts_ns, idx, &hint)
        if b.n_stops:
            self._release_stops(b, ev.ts_ns, idx)
        return 0

    cdef inline int32_t _target(self, BookC* b, const Event* ev, int64_t ri, int32_t* cell) noexcept nogil:
        # slot of the order a cancel/modify/reduce names (cell: its id-map cell), or -1 with the report's reason set
        cdef int32_t pos = _id_find_pos(b, ev.order_id)
        cdef int32_t s = b.idmap[pos].slot if pos != -1 else -1
        cdef Report* r = &self.rep_buf[ri]
        cell[0] = pos
        if s == -1:
            r.reason = UNKNOWN_ORDER
            return -1
        if ev.owner != 0 and <uint64_t>ev.owner != b.pool[s].owner:
            r.reason = NOT_OWNER
            return -1
        r.side = b.pool[s].side
        r.type = b.pool[s].type
        r.owner = b.pool[s].owner
        return s

    cdef void _drop_order(self, BookC* b, int32_t s, int32_t cell) noexcept nogil:
        # remove a resting order or a pending stop (cell: its id-map cell, unchanged since it was found)
        cdef int32_t i
        if b.pool[s].state == STATE_RESTING:
            _remove_resting_at(b, s, cell)
        else:
            i = _stop_index(b, s)
            if i != -1:
                _stop_remove_at(b, i)
            _id_delete_at(b, cell)
            _pool_release(b, s)

    cdef int64_t _order_price(self, BookC* b, int32_t s) noexcept nogil:
        cdef int32_t i
        if b.pool[s].state == STATE_RESTING:
            return b.levels[b.pool[s].level].price
        i = _stop_index(b, s)
        return b.stops[i].limit_ticks if i != -1 else 0

    cdef int _cancel(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil:
        # _target, _order_price and _drop_order in one straight line for the common case, a resting order
        cdef int64_t ri = self._report_for(b, ev, idx)
        cdef Report* r = &self.rep_buf[ri]
        cdef int32_t cell
        cdef int32_t s = self._target(b, ev, ri, &cell)
        if s == -1:
            return 0
        r.cum_filled_lots = b.pool[s].filled
        r.status = CANCELLED
        if b.pool[s].state != STATE_RESTING:
            r.price_ticks = self._order_price(b, s)
            self._drop_order(b, s, cell)
            return 0
        r.price_ticks = b.levels[b.pool[s].level].price
        _remove_resting_at(b, s, cell)
        return 0

    cdef int _reduce(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil:
        cdef int64_t ri = self._report_for(b, ev, idx)
        cdef int32_t cell
        cdef int32_t s = self._target(b, ev, ri, &cell)
        cdef Report* r = &self.rep_buf[ri]
        cdef Order* o
        cdef int64_t newv
        if s == -1:
            return 0
        if ev.qty_lots <= 0 or ev.qty_lots > MAX_QTY_LOTS:
            r.reason = INVALID_QTY
            return 0
        o = &b.pool[s]
        r.price_ticks = self._order_price(b, s)
        r.cum_filled_lots = o.filled
        if ev.qty_lots >= o.qty:
            r.status = CANCELLED
            self._drop_order(b, s, cell)
            return 0
        if o.state == STATE_RESTING:
            newv = _min64(o.visible, o.qty - ev.qty_lots)
            b.levels[o.level].qty -= o.visible - newv
            b.levels[o.level].total -= ev.qty_lots
            o.visible = newv
        o.qty -= ev.qty_lots
        if o.state == STATE_STOP:
            o.visible = o.qty
        r.remaining_lots = o.qty
        r.status = PARTIALLY_FILLED if o.filled > 0 else NEW
        return 0

    cdef int _modify(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil:
        cdef int64_t ri = self._report_for(b, ev, idx)
        cdef int32_t s, i, lv, cell
        cdef Report* r = &self.rep_buf[ri]
        cdef Order* o
        cdef Order keep
        cdef int64_t cur, newp, new_open, newv
        cdef int reason
        if b.halted:
            r.reason = HALTED
            return 0
        s = self._target(b, ev, ri, &cell)
        if s == -1:
            return 0
        o = &b.pool[s]
        r.cum_filled_lots = o.filled
        cur = self._order_price(b, s)
        r.price_ticks = cur
        if ev.qty_lots <= 0 or ev.qty_lots > MAX_QTY_LOTS or (b.spec.max_qty > 0 and ev.qty_lots > b.spec.max_qty):
            r.reason = INVALID_QTY
            r.remaining_lots = o.qty
            return 0
        newp = ev.price_ticks if ev.price_ticks != 0 else cur
        if ev.stop_ticks != 0 and (ev.stop_ticks < 0 or ev.stop_ticks > MAX_PRICE_TICKS):
            r.reason = INVALID_PRICE
            r.remaining_lots = o.qty
            return 0
        if ev.price_ticks != 0 and (o.type == LIMIT or o.type == STOP_LIMIT):
            reason = self._check_price(b, ev.price_ticks)
            if reason:
                r.reason = <uint8_t>reason
                r.remaining_lots = o.qty
                return 0
        if ev.qty_lots <= o.filled:
            # FIX OrderQty semantics: a total at or below what has filled ends the order
            r.status = FILLED
            self._drop_order(b, s, cell)
            return 0
        new_open = ev.qty_lots - o.filled
        if o.state == STATE_STOP:
            i = _stop_index(b, s)
            o.qty = new_open
            o.visible = new_open
            if o.type == STOP_LIMIT and ev.price_ticks != 0:
                b.stops[i].limit_ticks = ev.price_ticks
            if ev.stop_ticks > 0:
                b.stops[i].stop_ticks = ev.stop_ticks
            r.price_ticks = b.stops[i].limit_ticks
            r.remaining_lots = o.qty
            r.status = NEW
            if b.n_stops:
                self._release_stops(b, ev.ts_ns, idx)
            return 0
        r.price_ticks = newp
        if newp == cur and new_open == o.qty:
            r.remaining_lots = o.qty
            r.status = PARTIALLY_FILLED if o.filled > 0 else NEW
            return 0
        if o.flags & (FLAG_POST_ONLY | FLAG_POST_ONLY_SLIDE) and _crosses(o.side, newp, _best_price(b, 1 - o.side)):
            r.reason = POST_ONLY_WOULD_CROSS
            r.remaining_lots = o.qty
            return 0
        if newp == cur and new_open < o.qty and b.spec.modify_policy == PRIORITY_STANDARD:
            lv = o.level
            newv = _min64(o.visible, new_open)
            b.levels[lv].qty -= o.visible - newv
            b.levels[lv].total -= o.qty - new_open
            o.visible = newv
            o.qty = new_open
            r.remaining_lots = new_open
            r.status = PARTIALLY_FILLED if o.filled > 0 else NEW
            return 0
        # loses priority: take it out and enter it again as of now (may match at once)
        keep = o[0]
        _remove_resting_at(b, s, cell)
        self._enter(b, ri, keep.order_id, keep.owner, keep.side, LIMIT, keep.tif, keep.flags, newp, new_open,
                    keep.display, keep.filled, ev.ts_ns, idx, NULL)
        if b.n_stops:
            self._release_stops(b, ev.ts_ns, idx)
        return 0

    cdef int _session_end(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil:
        # expire DAY orders: pending stops first (arrival order), then resting orders best level first
        cdef int32_t i, j, s, nxt, lv
        cdef int side
        i = 0
        while i < b.n_stops:
            s = b.stops[i].slot
            if b.pool[s].tif == DAY:
                self._report_order(b, s, ev.ts_ns, idx, CANCEL, CANCELLED, EXPIRED)
                self.rep_buf[self.rep_n - 1].price_ticks = b.stops[i].limit_ticks
                _stop_remove_at(b, i)
                _id_delete(b, b.pool[s].order_id)
                _pool_release(b, s)
            else:
                i += 1
        for side in range(2):
            j = b.n_levels[side] - 1
            while j >= 0:
                lv = b.side_levels[side][j].level
                s = b.levels[lv].head
                while s != -1:
                    nxt = b.pool[s].next
                    if b.pool[s].tif == DAY:
                        self._report_order(b, s, ev.ts_ns, idx, CANCEL, CANCELLED, EXPIRED)
                        _remove_resting(b, s)
                    s = nxt
                j -= 1
                if j >= b.n_levels[side]:
                    j = b.n_levels[side] - 1
        return 0

    # --- replay mode ----------------------------------------------------------------------------
    # Events of a recorded feed applied as given: nothing is matched, no fill is printed, the last price and
    # pending stops are untouched, halts and the symbol's quantity/price rules do not apply. An event that
    # does not fit the book is rejected as a consistency error and changes nothing.
    cdef inline int _inconsistent(self, BookC* b, int64_t ri, int reason) noexcept nogil:
        self.rep_buf[ri].reason = <uint8_t>reason
        b.consistency_errors += 1
        return 0

    cdef int _replay_add(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil:
        cdef int64_t ri = self._report_for(b, ev, idx)
        cdef Report* r = &self.rep_buf[ri]
        cdef uint64_t oid = ev.order_id
        cdef int32_t s, lv
        cdef Order* o
        r.type = LIMIT
        if ev.side > 1 or ev.owner < 0 or ev.owner > <int64_t>4294967295 or oid > MAX_ORDER_ID:
            r.reason = INVALID_ORDER
            return 0
        if ev.qty_lots <= 0 or ev.qty_lots > MAX_QTY_LOTS:
            r.reason = INVALID_QTY
            return 0
        if ev.price_ticks <= 0 or ev.price_ticks > MAX_PRICE_TICKS:
            r.reason = INVALID_PRICE
            return 0
        if oid != 0 and _id_find(b, oid) != -1:
            return self._inconsistent(b, ri, DUPLICATE_ORDER_ID)
        if _crosses(ev.side, ev.price_ticks, _best_price(b, 1 - ev.side)):
            return self._inconsistent(b, ri, REPLAY_CROSSED)
        if oid == 0:
            oid = self.next_auto_id
            r.order_id = oid
        if oid >= self.next_auto_id:
            self.next_auto_id = oid + 1
        s = _pool_alloc(b)
        lv = _level_get(b, ev.side, ev.price_ticks, True)
        o = &b.pool[s]
        o.order_id = oid
        o.qty = <int32_t>ev.qty_lots
        o.visible = o.qty
        o.display = 0
        o.filled = 0
        o.ts_ns = ev.ts_ns
        o.owner = <uint32_t>ev.owner
        o.side = ev.side
        o.type = LIMIT
        o.tif = GTC
        o.flags = 0
        o.state = STATE_RESTING
        _enqueue(b, lv, s)
        _id_insert(b, s)
        b.n_resting += 1
        r = &self.rep_buf[ri]
        r.status = NEW
        r.remaining_lots = ev.qty_lots
        return 0

    cdef void _replay_take(self, BookC* b, int32_t s, int64_t q, int64_t ts) noexcept nogil:
        # execute q (<= open qty) of a resting order in place, displayed part first; an iceberg whose peak
        # empties refreshes to the back, as it does when matched
        cdef Order* o = &b.pool[s]
        cdef Level* L = &b.levels[o.level]
        cdef int64_t newv
        o.filled += <int32_t>q
        if q >= o.qty:
            _remove_resting(b, s)
            return
        newv = o.visible - q if o.visible > q else 0
        L.qty -= o.visible - newv
        L.total -= q
        o.qty -= <int32_t>q
        o.visible = <int32_t>newv
        if newv == 0:
            self._refresh(b, s, ts)

    cdef int _replay_execute(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil:
        cdef int64_t ri = self._report_for(b, ev, idx)
        cdef Report* r = &self.rep_buf[ri]
        cdef int32_t s, lv
        cdef int side
        cdef int64_t price, rem, q
        cdef Order* o
        r.type = LIMIT
        if ev.qty_lots <= 0 or ev.qty_lots > MAX_QTY_LOTS:
            r.reason = INVALID_QTY
            return 0
        if ev.price_ticks < 0 or ev.price_ticks > MAX_PRICE_TICKS:
            r.reason = INVALID_PRICE
            return 0
        s = _id_find(b, ev.order_id)
        if s != -1 and b.pool[s].state == STATE_RESTING:
            o = &b.pool[s]
            price = b.levels[o.level].price
            r.side = o.side
            r.owner = o.owner
            r.price_ticks = price
            if ev.price_ticks != 0 and ev.price_ticks != price:
                return self._inconsistent(b, ri, REPLAY_PRICE_MISMATCH)
            if ev.qty_lots > o.qty:
                return self._inconsistent(b, ri, REPLAY_OVERSIZED)
            r.remaining_lots = o.qty - ev.qty_lots
            r.cum_filled_lots = o.filled + ev.qty_lots
            r.status = PARTIALLY_FILLED if r.remaining_lots else FILLED
            self._replay_take(b, s, ev.qty_lots, ev.ts_ns)
        elif s == -1 and ev.flags & FLAG_REPLAY_LEVEL and ev.price_ticks > 0:
            # level mode: an order the feed never showed is executed at its price level, queue front first
            price = ev.price_ticks
            side = BUY
            lv = _level_get(b, BUY, price, False)
            if lv < 0:
                side = SELL
                lv = _level_get(b, SELL, price, False)
            if lv < 0:
                return self._inconsistent(b, ri, UNKNOWN_ORDER)
            if b.levels[lv].total < ev.qty_lots:
                return self._inconsistent(b, ri, REPLAY_OVERSIZED)
            r.side = <uint8_t>side
            r.owner = 0
            r.price_ticks = price
            r.cum_filled_lots = ev.qty_lots
            r.status = FILLED
            rem = ev.qty_lots
            while rem > 0:
                s = b.levels[lv].head
                q = _min64(rem, b.pool[s].visible)
                rem -= q
                self._replay_take(b, s, q, ev.ts_ns)
        else:
            return self._inconsistent(b, ri, UNKNOWN_ORDER)
        r = &self.rep_buf[ri]
        r.filled_lots = ev.qty_lots
        r.notional = ev.qty_lots * r.price_ticks
        return 0

    cdef int _replay_delete(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil:
        cdef int64_t ri = self._report_for(b, ev, idx)
        cdef Report* r = &self.rep_buf[ri]
        cdef int32_t s
        cdef Order* o
        cdef int64_t price, newv
        r.type = LIMIT
        if ev.qty_lots < 0 or ev.qty_lots > MAX_QTY_LOTS:
            r.reason = INVALID_QTY
            return 0
        s = _id_find(b, ev.order_id)
        if s == -1 or b.pool[s].state != STATE_RESTING:
            return self._inconsistent(b, ri, UNKNOWN_ORDER)
        o = &b.pool[s]
        price = b.levels[o.level].price
        r.side = o.side
        r.owner = o.owner
        r.type = o.type
        r.price_ticks = price
        r.cum_filled_lots = o.filled
        if ev.price_ticks != 0 and ev.price_ticks != price:
            return self._inconsistent(b, ri, REPLAY_PRICE_MISMATCH)
        if ev.qty_lots > o.qty:
            return self._inconsistent(b, ri, REPLAY_OVERSIZED)
        if ev.qty_lots == 0 or ev.qty_lots == o.qty:
            r.status = CANCELLED
            _remove_resting(b, s)
            return 0
        newv = _min64(o.visible, o.qty - ev.qty_lots)
        b.levels[o.level].qty -= o.visible - newv
        b.levels[o.level].total -= ev.qty_lots
        o.visible = <int32_t>newv
        o.qty -= <int32_t>ev.qty_lots
        r.remaining_lots = o.qty
        r.status = PARTIALLY_FILLED if o.filled > 0 else NEW
        return 0

    def consistency_errors(self, int sym):
        """Replay events of one book rejected as inconsistent with it (see docs/matching.md)."""
        return self._book(sym).consistency_errors

    def set_consistency_errors(self, int sym, int64_t n):
        """Restore the consistency-error count of one book (snapshots)."""
        self._book(sym).consistency_errors = n

    # --- batch ----------------------------------------------------------------------------------
    def apply(self, const Event[::1] events not None):
        """Apply a batch of events; return (reports, fills) as REPORT_DTYPE and FILL_DTYPE arrays.

        The caller (``lob.Exchange.apply``) has validated the batch. Outputs are handed over without a
        copy: the arrays own the buffers the engine wrote.
        """
        cdef Py_ssize_t n = events.shape[0]
        cdef Py_ssize_t i
        cdef const Event* ev = &events[0] if n else NULL
        cdef MdPort* md = self.md
        cdef PfRing pf
        pf.on = False
        self._reset_outputs(n + 16, n // 2 + 16)
        if md != NULL:
            md.fills_done = 0               # (a batch given up on an error may have left it set)
        with nogil:
            if md == NULL:
                for i in range(n):
                    _prefetch_step(self.books, self.n_books, ev, i, n, &pf)
                    self._process_one(&ev[i], i)
            else:
                for i in range(n):
                    _prefetch_step(self.books, self.n_books, ev, i, n, &pf)
                    self._process_md(md, &ev[i], i)
        self._md_end()
        return self._take_outputs()

    # --- the market-data port -------------------------------------------------------------------
    cdef inline int _process_md(self, MdPort* md, const Event* ev, int64_t idx) except -1 nogil:
        # one event with the consumer around it (see MdPort): snapshots due before it, then the clock, the
        # fills once enough wait, and the BBO row if the best levels moved (one branch, on that alone)
        cdef uint32_t sym = ev.symbol
        cdef BookC* b
        cdef const Level* L
        cdef MdSym* S
        cdef int64_t bid = 0, bq = 0, ask = 0, aq = 0
        cdef int64_t top[4]
        cdef uint64_t moved
        cdef int64_t* w
        if ev.ts_ns >= md.next_ts:
            md.boundary(md, ev.ts_ns, self.books, self.n_books, self.seq)
        self._process_one(ev, idx)
        md.clock = ev.ts_ns if ev.ts_ns > md.clock else md.clock
        if <uint64_t>(self.fill_n - md.fills_done) >= MD_FILLS_AT_ONCE:   # (negative after a batch given up)
            md.fills(md, self.fill_buf, self.fill_n)
        if sym >= <uint32_t>self.n_books:
            return 0                        # rejected: no book
        b = self.books[sym]
        L = _top(b, BUY)
        if L != NULL:
            bid = L.price
            bq = L.qty
        L = _top(b, SELL)
        if L != NULL:
            ask = L.price
            aq = L.qty
        if sym < <uint32_t>md.n_syms:
            S = &md.syms[sym]
            moved = (<uint64_t>(bid ^ S.top[0]) | <uint64_t>(bq ^ S.top[1]) | <uint64_t>(ask ^ S.top[2])
                     | <uint64_t>(aq ^ S.top[3]))
            if moved == 0:
                return 0
            if S.room != 0:
                w = S.next
                w[0] = ev.ts_ns
                w[1] = <int64_t>self.seq
                w[2] = S.top[0] = bid
                w[3] = S.top[1] = bq
                w[4] = S.top[2] = ask
                w[5] = S.top[3] = aq
                S.next = w + 6
                S.room -= 1
                return 0
        top[0] = bid
        top[1] = bq
        top[2] = ask
        top[3] = aq
        md.after(md, ev, top, self.seq)
        return 0

    cdef int _md_end(self) except -1:
        # the end of a batch or call: the consumer records the fills it has not yet, before they are handed over
        if self.md != NULL:
            if self.fill_n != self.md.fills_done:
                self.md.fills(self.md, self.fill_buf, self.fill_n)
            self.md.fills_done = 0
            if self.md.error:
                self.md.error = 0
                raise MemoryError("market data: out of memory (the recorder missed part of the last request)")
        return 0

    def set_md_port(self, owner, port):
        """Feed a market-data consumer (``port``: a PyCapsule of an ``MdPort*`` owned by ``owner``; None
        detaches). One consumer per engine: a new one replaces the old."""
        if port is None:
            self.md = NULL
            self.md_owner = None
            return
        self.md = <MdPort*>PyCapsule_GetPointer(port, b"lob.MdPort")
        self.md_owner = owner

    def first_invalid(self, const Event[::1] events not None):
        """(row, field) of the first malformed row of a batch, or None: one nogil pass."""
        cdef Py_ssize_t n = events.shape[0]
        cdef Py_ssize_t i = 0, j, stop
        cdef const Event* ev = &events[0] if n else NULL
        cdef int field = 0
        cdef uint32_t nb = <uint32_t>self.n_books
        cdef int bad
        with nogil:
            # blocks of 64 rows tested without a branch per row (the row's action is unpredictable); a block
            # with a malformed row is searched row by row for the first one and its field
            while i < n:
                stop = i + 64 if i + 64 < n else n
                bad = 0
                for j in range(i, stop):
                    bad |= _malformed(&ev[j], nb)
                if bad:
                    for j in range(i, stop):
                        field = _malformed_field(&ev[j], nb)
                        if field:
                            i = j
                            break
                    break
                i = stop
        if not field:
            return None
        return i, ("", "symbol", "action", "owner", "side", "type", "tif", "flags", "order_id")[field]

    cdef int _reset_outputs(self, int64_t rep_hint, int64_t fill_hint) except -1:
        cdef Report* rp
        cdef Fill* fp
        self.rep_n = 0
        self.fill_n = 0
        # a big batch takes the buffers its predecessor's outputs released, if they are big enough: their
        # pages are already mapped (fresh pages cost a fault each, ~20 ns per event on a large batch)
        if self.rep_cap < rep_hint and _spare_reports != NULL:
            _take_spare(<void**>&self.rep_buf, &self.rep_cap, <void**>&_spare_reports, sizeof(Report), rep_hint)
        if self.fill_cap < fill_hint and _spare_fills != NULL:
            _take_spare(<void**>&self.fill_buf, &self.fill_cap, <void**>&_spare_fills, sizeof(Fill), fill_hint)
        if self.rep_cap < rep_hint:
            rp = <Report*>realloc(self.rep_buf, rep_hint * sizeof(Report))
            if rp == NULL:
                raise MemoryError()
            self.rep_buf = rp
            self.rep_cap = rep_hint
        if self.fill_cap < fill_hint:
            fp = <Fill*>realloc(self.fill_buf, fill_hint * sizeof(Fill))
            if fp == NULL:
                raise MemoryError()
            self.fill_buf = fp
            self.fill_cap = fill_hint
        return 0

    cdef object _take_outputs(self):
        # large outputs: hand the buffers to numpy (zero copy); small ones: copy, keep the buffers
        cdef object reports, fills
        cdef cvarray a
        if self.rep_n >= 4096:
            a = <Report[:self.rep_n]>self.rep_buf
            a.callback_free_data = _spare_reports_keep
            reports = np.asarray(a)
            self.rep_buf = NULL
            self.rep_cap = 0
        else:
            reports = np.empty(self.rep_n, dtype=REPORT_DTYPE)
            if self.rep_n:
                memcpy(cnp.PyArray_DATA(reports), self.rep_buf, self.rep_n * sizeof(Report))
        if self.fill_n >= 4096:
            a = <Fill[:self.fill_n]>self.fill_buf
            a.callback_free_data = _spare_fills_keep
            fills = np.asarray(a)
            self.fill_buf = NULL
            self.fill_cap = 0
        else:
            fills = np.empty(self.fill_n, dtype=FILL_DTYPE)
            if self.fill_n:
                memcpy(cnp.PyArray_DATA(fills), self.fill_buf, self.fill_n * sizeof(Fill))
        self.rep_n = 0
        self.fill_n = 0
        return reports, fills

    # --- per call -------------------------------------------------------------------------------
    cdef int process_single(self, Event* ev) except -1:
        """Process one event into the (reset) output buffers; read them with rep_buf/fill_buf."""
        self.rep_n = 0
        self.fill_n = 0
        if self.rep_cap < 16:
            self._reset_outputs(64, 64)
        if self.md == NULL:
            self._process_one(ev, 0)
        else:
            self.md.fills_done = 0
            self._process_md(self.md, ev, 0)
            self._md_end()
        return 0

    cdef int reject_single(self, Event* ev, int reason) except -1:
        """Write a rejection of ev (decided at the edge: off-tick price, risk, ...) as the only output."""
        cdef int64_t ri
        self.rep_n = 0
        self.fill_n = 0
        if self.rep_cap < 16:
            self._reset_outputs(64, 64)
        ri = self._report_for(NULL, ev, 0)
        self.rep_buf[ri].reason = <uint8_t>reason
        if ev.action == ADD and ev.order_id == 0:
            self.rep_buf[ri].order_id = 0
        return 0

    def outputs_copy(self):
        """Copies of the outputs of the last per-call request (for listeners)."""
        reports = _empty(_REPORT_DESCR, self.rep_n)
        fills = _empty(_FILL_DESCR, self.fill_n)
        if self.rep_n:
            memcpy(cnp.PyArray_DATA(reports), self.rep_buf, self.rep_n * sizeof(Report))
        if self.fill_n:
            memcpy(cnp.PyArray_DATA(fills), self.fill_buf, self.fill_n * sizeof(Fill))
        return reports, fills

    # --- queries --------------------------------------------------------------------------------
    def best(self, int sym, int side):
        """(price_ticks, displayed qty_lots, n_orders) of the best level of side, or None."""
        cdef BookC* b = self._book(sym)
        cdef Level* L
        if side not in (0, 1):
            raise ValueError(f"side must be 0 or 1, got {side!r}")
        L = _top(b, side)
        if L == NULL:
            return None
        return (L.price, L.qty, L.count)

    def best_prices(self, int sym):
        """(best bid, best ask) in ticks, 0 for an empty side."""
        cdef BookC* b = self._book(sym)
        return _best_price(b, BUY), _best_price(b, SELL)

    def depth(self, int sym, int side, Py_ssize_t n_levels):
        """Array (k, 4) int64 of the best k <= n levels: price, displayed qty, n_orders, total qty."""
        cdef BookC* b = self._book(sym)
        cdef Py_ssize_t k, i
        cdef Level* L
        if side not in (0, 1):
            raise ValueError(f"side must be 0 or 1, got {side!r}")
        k = b.n_levels[side]
        if 0 <= n_levels < k:
            k = n_levels
        out = np.empty((k, 4), dtype=np.int64)
        cdef int64_t[:, ::1] v = out
        for i in range(k):
            L = &b.levels[b.side_levels[side][b.n_levels[side] - 1 - i].level]
            v[i, 0] = L.price
            v[i, 1] = L.qty
            v[i, 2] = L.count
            v[i, 3] = L.total
        return out

    def level(self, int sym, int side, int64_t price):
        """(displayed qty, n_orders, total qty) at one price of one side, or None: O(1)."""
        cdef BookC* b = self._book(sym)
        cdef int32_t lv
        if side not in (0, 1):
            raise ValueError(f"side must be 0 or 1, got {side!r}")
        lv = _level_get(b, side, price, False)
        if lv < 0:
            return None
        return (b.levels[lv].qty, b.levels[lv].count, b.levels[lv].total)

    def orders(self, int sym, bint include_stops=True):
        """ORDER_DTYPE array of live orders: bids best first, then asks best first (each level in FIFO
        order), then pending stops in arrival order."""
        cdef BookC* b = self._book(sym)
        cdef Py_ssize_t n = b.n_resting + (b.n_stops if include_stops else 0)
        out = np.zeros(n, dtype=ORDER_DTYPE)
        cdef OrderView[::1] v = out
        cdef Py_ssize_t k = 0
        cdef int side
        cdef int32_t j, s, i
        cdef Level* L
        for side in range(2):
            for j in range(b.n_levels[side] - 1, -1, -1):
                L = &b.levels[b.side_levels[side][j].level]
                s = L.head
                while s != -1:
                    _view(&v[k], b, s, L.price, 0)
                    k += 1
                    s = b.pool[s].next
        if include_stops:
            for i in range(b.n_stops):
                _view(&v[k], b, b.stops[i].slot, b.stops[i].limit_ticks, b.stops[i].stop_ticks)
                k += 1
        return out

    def order(self, int sym, uint64_t order_id):
        """ORDER_DTYPE record of one live order, or None."""
        cdef OrderView view
        if not self._order_view(self._book(sym), order_id, &view):
            return None
        out = np.zeros(1, dtype=ORDER_DTYPE)
        cdef OrderView[::1] v = out
        v[0] = view
        return out[0]

    cdef bint _order_view(self, BookC* b, uint64_t order_id, OrderView* out) noexcept:
        # one live order into out (no allocation); False when the id is not live
        cdef int32_t s = _id_find(b, order_id)
        cdef int32_t i
        if s == -1:
            return False
        memset(out, 0, sizeof(OrderView))
        if b.pool[s].state == STATE_RESTING:
            _view(out, b, s, b.levels[b.pool[s].level].price, 0)
        else:
            i = _stop_index(b, s)
            _view(out, b, s, b.stops[i].limit_ticks, b.stops[i].stop_ticks)
        return True

    cdef Level* _level_at(self, BookC* b, int side, int64_t price) noexcept:
        cdef int32_t lv = _level_get(b, side, price, False)
        return &b.levels[lv] if lv >= 0 else NULL

    cdef Level* _best_level(self, BookC* b, int side) noexcept:
        return _top(b, side)

    def queue_position(self, int sym, uint64_t order_id):
        """(orders ahead, displayed lots ahead) of a resting order at its level, or None."""
        cdef BookC* b = self._book(sym)
        cdef int32_t s = _id_find(b, order_id)
        cdef int32_t t
        cdef int64_t n = 0, q = 0
        if s == -1 or b.pool[s].state != STATE_RESTING:
            return None
        t = b.levels[b.pool[s].level].head
        while t != s:
            n += 1
            q += b.pool[t].visible
            t = b.pool[t].next
        return (n, q)

    def restore_orders(self, int sym, OrderView[::1] views, int64_t last_price):
        """Load live orders into an empty book in the given order, without matching (snapshots)."""
        cdef BookC* b = self._book(sym)
        cdef Py_ssize_t i
        cdef int32_t s, lv
        cdef Order* o
        if b.n_orders:
            raise ValueError(f"restore_orders needs an empty book; symbol {sym} has {b.n_orders} orders")
        for i in range(views.shape[0]):
            if _id_find(b, views[i].order_id) != -1:
                raise ValueError(f"duplicate order_id {views[i].order_id} in snapshot")
            if not (0 < views[i].qty_lots <= MAX_QTY_LOTS and 0 <= views[i].visible_lots <= views[i].qty_lots
                    and 0 <= views[i].display_lots <= MAX_QTY_LOTS and 0 <= views[i].filled_lots <= MAX_QTY_LOTS):
                raise ValueError(f"order {views[i].order_id} in snapshot has quantities out of bounds")
            s = _pool_alloc(b)
            o = &b.pool[s]
            o.order_id = views[i].order_id
            o.owner = <uint32_t>views[i].owner
            o.qty = views[i].qty_lots
            o.visible = views[i].visible_lots
            o.display = views[i].display_lots
            o.filled = views[i].filled_lots
            o.ts_ns = views[i].ts_ns
            o.side = views[i].side
            o.type = views[i].type
            o.tif = views[i].tif
            o.flags = views[i].flags
            o.state = views[i].state
            o.prev = -1
            o.next = -1
            o.level = -1
            if o.state == STATE_RESTING:
                lv = _level_get(b, o.side, views[i].price_ticks, True)
                _enqueue(b, lv, s)
                b.n_resting += 1
            else:
                _stop_push(b, s, views[i].stop_ticks, views[i].price_ticks)
            _id_insert(b, s)
            if o.order_id >= self.next_auto_id:
                self.next_auto_id = o.order_id + 1
        b.last_price = last_price

    def clear(self, int sym):
        """Drop every order of one book (keeps its rules)."""
        _book_clear(self._book(sym))

    def stats(self, int sym):
        """Counts and allocated bytes of one book."""
        cdef BookC* b = self._book(sym)
        cdef int64_t mem = (b.pool_cap * sizeof(Order) + b.idmap_cap * sizeof(IdEntry)
                            + (b.lvmap_cap[0] + b.lvmap_cap[1] + b.lad_span[0] + b.lad_span[1]) * sizeof(int32_t)
                            + b.levels_cap * sizeof(Level)
                            + (b.side_cap[0] + b.side_cap[1]) * sizeof(LevelRef)
                            + b.stops_cap * sizeof(StopEntry) + b.trig_cap * sizeof(StopEntry) + sizeof(BookC))
        return dict(resting_orders=b.n_resting, pending_stops=b.n_stops, bid_levels=b.n_levels[0],
                    ask_levels=b.n_levels[1], pool_capacity=b.pool_cap, idmap_capacity=b.idmap_cap,
                    level_capacity=b.levels_cap, bytes_allocated=mem, last_price=b.last_price,
                    halted=bool(b.halted), consistency_errors=b.consistency_errors)

    def last_price(self, int sym):
        return self._book(sym).last_price

    def halted(self, int sym):
        return bool(self._book(sym).halted)

    def state_hash(self, int sym):
        """64-bit FNV-1a digest of one book: every live order in priority order with all its fields."""
        cdef BookC* b = self._book(sym)
        cdef uint64_t h = <uint64_t>14695981039346656037
        cdef int side
        cdef int32_t j, s, i
        cdef Level* L
        cdef Order* o
        h = _fnv(h, <uint64_t>b.last_price)
        h = _fnv(h, <uint64_t>b.halted)
        for side in range(2):
            h = _fnv(h, <uint64_t>b.n_levels[side])
            for j in range(b.n_levels[side] - 1, -1, -1):
                L = &b.levels[b.side_levels[side][j].level]
                h = _fnv(h, <uint64_t>L.price)
                s = L.head
                while s != -1:
                    o = &b.pool[s]
                    h = _fnv(h, o.order_id)
                    h = _fnv(h, o.owner)
                    h = _fnv(h, <uint64_t>o.qty)
                    h = _fnv(h, <uint64_t>o.visible)
                    h = _fnv(h, <uint64_t>o.display)
                    h = _fnv(h, <uint64_t>o.filled)
                    h = _fnv(h, <uint64_t>o.ts_ns)
                    h = _fnv(h, (<uint64_t>o.tif << 8) | o.flags)
                    s = o.next
        for i in range(b.n_stops):
            o = &b.pool[b.stops[i].slot]
            h = _fnv(h, o.order_id)
            h = _fnv(h, <uint64_t>b.stops[i].stop_ticks)
            h = _fnv(h, <uint64_t>b.stops[i].limit_ticks)
            h = _fnv(h, <uint64_t>o.qty)
            h = _fnv(h, (<uint64_t>o.side << 16) | (<uint64_t>o.type << 8) | o.tif)
        return h

    def check_integrity(self, int sym):
        """Raise BookIntegrityError naming the first broken invariant of one book."""
        cdef BookC* b = self._book(sym)
        cdef int side
        cdef int32_t j, s, prev, count, n_seen = 0, n_stops_seen = 0, i
        cdef int64_t k
        cdef int64_t qty, total
        cdef Level* L
        cdef Order* o
        cdef int64_t bb = _best_price(b, BUY), ba = _best_price(b, SELL)
        if bb and ba and bb >= ba:
            raise BookIntegrityError(f"symbol {b.symbol}: crossed book, best bid {bb} >= best ask {ba}")
        for side in range(2):
            for j in range(b.n_levels[side]):
                if j and b.side_levels[side][j - 1].key >= b.side_levels[side][j].key:
                    raise BookIntegrityError(f"symbol {b.symbol}: side {side} levels out of order at {j}")
                L = &b.levels[b.side_levels[side][j].level]
                if _key(side, L.price) != b.side_levels[side][j].key:
                    raise BookIntegrityError(f"symbol {b.symbol}: level key mismatch at price {L.price}")
                if L.count <= 0:
                    raise BookIntegrityError(f"symbol {b.symbol}: empty level at price {L.price} still listed")
                if _lv_find(b, side, L.price) != b.side_levels[side][j].level:
                    raise BookIntegrityError(f"symbol {b.symbol}: level at price {L.price} not found by its price")
                s = L.head
                prev = -1
                count = 0
                qty = 0
                total = 0
                while s != -1:
                    o = &b.pool[s]
                    if o.state != STATE_RESTING or o.level != b.side_levels[side][j].level or o.side != side:
                        raise BookIntegrityError(f"symbol {b.symbol}: order {o.order_id} misfiled at {L.price}")
                    if o.prev != prev:
                        raise BookIntegrityError(f"symbol {b.symbol}: broken FIFO link at order {o.order_id}")
                    if o.qty <= 0 or o.visible <= 0 or o.visible > o.qty:
                        raise BookIntegrityError(
                            f"symbol {b.symbol}: order {o.order_id} qty {o.qty} visible {o.visible}")
                    if o.display and o.visible > o.display:
                        raise BookIntegrityError(f"symbol {b.symbol}: iceberg {o.order_id} shows more than its peak")
                    if _id_find(b, o.order_id) != s:
                        raise BookIntegrityError(f"symbol {b.symbol}: order {o.order_id} missing from id map")
                    count += 1
                    qty += o.visible
                    total += o.qty
                    prev = s
                    s = o.next
                if prev != L.tail or count != L.count or qty != L.qty or total != L.total:
                    raise BookIntegrityError(
                        f"symbol {b.symbol}: level {L.price} totals (count {L.count}, qty {L.qty}, total "
                        f"{L.total}) differ from its orders (count {count}, qty {qty}, total {total})")
                n_seen += count
        for side in range(2):
            count = b.lvmap_count[side]
            for k in range(b.lad_span[side]):
                count += b.ladder[side][k] != -1
            if count != b.n_levels[side]:
                raise BookIntegrityError(f"symbol {b.symbol}: side {side} has {b.n_levels[side]} levels, its ladder "
                                         f"and level map index {count}")
        for i in range(b.n_stops):
            s = b.stops[i].slot
            if b.pool[s].state != STATE_STOP or _id_find(b, b.pool[s].order_id) != s:
                raise BookIntegrityError(f"symbol {b.symbol}: pending stop slot {s} inconsistent")
            n_stops_seen += 1
        if n_seen != b.n_resting:
            raise BookIntegrityError(f"symbol {b.symbol}: {n_seen} orders on levels, counter says {b.n_resting}")
        if n_seen + n_stops_seen != b.n_orders or b.idmap_count != b.n_orders:
            raise BookIntegrityError(
                f"symbol {b.symbol}: {b.n_orders} pool orders, {b.idmap_count} ids, {n_seen} resting + "
                f"{n_stops_seen} stops")


cdef inline void _view(OrderView* v, BookC* b, int32_t s, int64_t price, int64_t stop) noexcept nogil:
    cdef Order* o = &b.pool[s]
    v.order_id = o.order_id
    v.owner = o.owner
    v.price_ticks = price
    v.qty_lots = o.qty
    v.visible_lots = o.visible
    v.display_lots = o.display
    v.filled_lots = o.filled
    v.ts_ns = o.ts_ns
    v.stop_ticks = stop
    v.symbol = <uint16_t>b.symbol
    v.side = o.side
    v.type = o.type
    v.tif = o.tif
    v.flags = o.flags
    v.state = o.state
    v.reserved = 0


# ----------------------------------------------------------------------------------------------------
# C entry points for compiled loops in other modules (declared in _engine.pxd; lob.replay._steploop)
# ----------------------------------------------------------------------------------------------------
cdef BookC* core_book(Engine engine, int sym) except NULL:
    return engine._book(sym)


cdef int core_apply(Engine engine, const Event* events, int64_t n, Report** reports, int64_t* n_reports,
                    Fill** fills, int64_t* n_fills) except -1:
    cdef Engine e = engine
    cdef int64_t i
    cdef MdPort* md = e.md
    e.rep_n = 0
    e.fill_n = 0
    if e.rep_cap < 64 or e.fill_cap < 64:
        e._reset_outputs(64, 64)
    if md != NULL:
        md.fills_done = 0
    with nogil:
        if md == NULL:
            for i in range(n):
                e._process_one(&events[i], i)
        else:                               # a market-data consumer sees these events as any batch
            for i in range(n):
                e._process_md(md, &events[i], i)
    e._md_end()
    reports[0] = e.rep_buf
    n_reports[0] = e.rep_n
    fills[0] = e.fill_buf
    n_fills[0] = e.fill_n
    return 0


cdef int64_t core_best(BookC* b, int side) noexcept nogil:
    return _best_price(b, side)


cdef int64_t core_level_qty(BookC* b, int side, int64_t price) noexcept nogil:
    # displayed quantity at a price of a side, 0 when there is no level
    cdef int32_t lv = _level_get(b, side, price, False)
    if lv < 0:
        return 0
    return b.levels[lv].qty


cdef int64_t core_queue_ahead(BookC* b, uint64_t order_id) noexcept nogil:
    # displayed lots ahead of a resting order at its level, -1 when it is not resting
    cdef int32_t s = _id_find(b, order_id)
    cdef int32_t t
    cdef int64_t q = 0
    if s == -1 or b.pool[s].state != STATE_RESTING:
        return -1
    t = b.levels[b.pool[s].level].head
    while t != s:
        q += b.pool[t].visible
        t = b.pool[t].next
    return q


cdef int64_t core_order_total(BookC* b, uint64_t order_id) noexcept nogil:
    # open + filled lots of a live order (a modify's "keep the quantity"), -1 when it is not live
    cdef int32_t s = _id_find(b, order_id)
    if s == -1:
        return -1
    return <int64_t>b.pool[s].qty + b.pool[s].filled


cdef int32_t core_depth(BookC* b, int side, int64_t* prices, int64_t* qtys, int32_t n) noexcept nogil:
    # the best n levels of a side (best first): prices and displayed quantities; returns how many
    cdef int32_t k = b.n_levels[side]
    cdef int32_t i = 0
    cdef Level* L
    while i < n and i < k:
        L = &b.levels[b.side_levels[side][k - 1 - i].level]
        prices[i] = L.price
        qtys[i] = L.qty
        i += 1
    return i
