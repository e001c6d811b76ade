# cython: language_level=3
"""C-level contract of the matching engine (``lob._engine``): its structs, enums and ``cdef class Engine``.

Everything here is integers: prices in ticks, sizes in lots, times in ns. The record dtypes
(``EVENT_DTYPE``, ``REPORT_DTYPE``, ``FILL_DTYPE``, ``ORDER_DTYPE``) are derived from these structs in
``_engine.pyx`` and never restated. Structs are naturally aligned and padded explicitly to a multiple of
8 bytes, so the derived dtypes have no hidden padding and arrays can go to and from files as they are.
The venue layer (``lob._core.ExchangeCore``) and the compiled loops that drive the engine or consume its
output records (``lob.replay._steploop``, ``lob.marketdata._recorder``) cimport from here.
"""
cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t



cpdef enum Side:
    """Order side (the ``side`` field): BUY 0, SELL 1."""
    BUY = 0
    SELL = 1

cpdef enum Action:
    """What an event asks of the engine (the ``action`` field of events and reports)."""
    ADD = 0           # new order (limit, market, stop, stop-limit)
    CANCEL = 1        # remove the order order_id
    MODIFY = 2        # qty_lots = new total quantity (filled part included), price_ticks = new price (0 keeps)
    REDUCE = 3        # qty_lots = quantity to take off the open quantity; keeps priority
    SESSION_END = 4   # expire every DAY order of the symbol
    HALT = 5          # stop accepting ADD/MODIFY for the symbol; cancels still work
    RESUME = 6        # end a halt
    # replay mode: a recorded feed applied as given, never matched (docs/matching.md, "Replay mode")
    REPLAY_ADD = 7      # rest order_id (side, price_ticks, qty_lots, owner) as given; crossing -> replay_crossed
    REPLAY_EXECUTE = 8  # qty_lots of order_id executed (price_ticks: 0, or the order's price); no fill is printed
    REPLAY_DELETE = 9   # take qty_lots off order_id (0 = all of it)

cpdef enum OrderType:
    """Order type (the ``type`` field)."""
    LIMIT = 0
    MARKET = 1
    STOP = 2          # stop-market: becomes a market order when triggered
    STOP_LIMIT = 3    # becomes a limit order at price_ticks when triggered

cpdef enum TIF:
    """Time in force (the ``tif`` field)."""
    GTC = 0
    IOC = 1
    FOK = 2
    DAY = 3           # expires at SESSION_END

cpdef enum Status:
    """Outcome of a request (the ``status`` field of reports)."""
    NEW = 0
    PARTIALLY_FILLED = 1
    FILLED = 2
    CANCELLED = 3
    REJECTED = 4

cpdef enum Reason:
    """Why a request was rejected or an order cancelled (the ``reason`` field; 32 and up: the risk check)."""
    NONE = 0
    INVALID_PRICE = 1
    INVALID_PRICE_TICK = 2
    INVALID_QTY = 3
    UNKNOWN_ORDER = 4
    DUPLICATE_ORDER_ID = 5
    FOK_UNFILLABLE = 6
    POST_ONLY_WOULD_CROSS = 7
    NO_LIQUIDITY = 8
    SELF_TRADE = 9
    PRICE_BAND = 10
    UNKNOWN_SYMBOL = 11
    HALTED = 12
    EXPIRED = 13
    NOT_OWNER = 14
    INVALID_ORDER = 15            # unknown side / type / tif / action code
    JOURNAL_UNAVAILABLE = 16      # intake stopped because the journal cannot be written (fail closed)
    REPLAY_CROSSED = 17           # replay mode: an add that would cross the book (consistency error)
    REPLAY_OVERSIZED = 18         # replay mode: more than the order's (or the level's) open quantity
    REPLAY_PRICE_MISMATCH = 19    # replay mode: an execution at a price that is not the order's
    RISK_MAX_QTY = 32
    RISK_MAX_NOTIONAL = 33
    RISK_PRICE_COLLAR = 34
    RISK_POSITION_LIMIT = 35
    RISK_EXPOSURE_LIMIT = 36
    RISK_OPEN_ORDERS = 37
    RISK_THROTTLE = 38
    RISK_KILL_SWITCH = 39
    RISK_MAX_LOSS = 40

cpdef enum STPMode:
    """Self-trade prevention of a symbol (``stp=`` of ``Exchange.add_symbol``)."""
    STP_NONE = 0
    STP_CANCEL_NEWEST = 1
    STP_CANCEL_OLDEST = 2
    STP_CANCEL_BOTH = 3
    STP_DECREMENT = 4

cpdef enum ModifyPolicy:
    """Whether a modify keeps time priority (``modify_priority=`` of ``Exchange.add_symbol``)."""
    PRIORITY_STANDARD = 0     # qty down at same price keeps priority; qty up or new price loses it
    PRIORITY_ALWAYS_LOSE = 1  # every modify that changes the order goes to the back

cdef enum:
    FLAG_POST_ONLY = 1        # reject if it would take liquidity
    FLAG_POST_ONLY_SLIDE = 2  # reprice to the best non-crossing price instead of rejecting
    FLAG_REPLAY_LEVEL = 4     # REPLAY_EXECUTE: an unknown order_id is executed at the level at price_ticks

# Bounds that keep every product price x qty and every sum of them inside int64 (2**32 x 2**30 = 2**62),
# and every engine-assigned id addressable.
cdef enum:
    MAX_PRICE_TICKS = 4294967295      # 2**32 - 1
    MAX_QTY_LOTS = 1073741823         # 2**30 - 1

cdef extern from *:
    """
    #define LOB_MAX_ORDER_ID 9223372036854775807ULL
    """
    const unsigned long long MAX_ORDER_ID "LOB_MAX_ORDER_ID"

cdef enum:
    STATE_FREE = 0
    STATE_RESTING = 1
    STATE_STOP = 2


cdef struct Event:            # one row of EVENT_DTYPE (64 bytes)
    int64_t  ts_ns            # event time, integer nanoseconds
    uint64_t order_id         # caller's id; 0 on ADD asks the engine to assign one
    int64_t  owner            # account id; 0 = anonymous (never self-trade-checked, may cancel anything)
    int64_t  price_ticks      # limit price in ticks (MODIFY: new price, 0 keeps)
    int64_t  qty_lots         # ADD: quantity; MODIFY: new total; REDUCE, REPLAY_DELETE: amount to take off;
                              # REPLAY_EXECUTE: amount executed
    int64_t  stop_ticks       # trigger price for STOP / STOP_LIMIT
    int64_t  display_lots     # iceberg peak; 0 = fully displayed
    uint16_t symbol           # index into the exchange's symbols
    uint8_t  action           # Action
    uint8_t  side             # Side
    uint8_t  type             # OrderType
    uint8_t  tif              # TIF
    uint8_t  flags            # ADD: FLAG_POST_ONLY | FLAG_POST_ONLY_SLIDE; REPLAY_EXECUTE: FLAG_REPLAY_LEVEL
    uint8_t  reserved         # 0; else a Reason decided at the edge (off-tick, risk): the engine rejects with it


cdef struct Report:           # one row of REPORT_DTYPE (88 bytes): the outcome of one request or side effect
    int64_t  ts_ns
    uint64_t seq              # exchange-wide sequence number (shared with fills)
    uint64_t order_id
    int64_t  owner
    int64_t  price_ticks      # the order's limit price after any post-only slide
    int64_t  filled_lots      # filled by this request
    int64_t  cum_filled_lots  # filled over the order's life
    int64_t  remaining_lots   # still open on the book (0 once the order is done)
    int64_t  notional         # sum(price_ticks * qty_lots) of this request's fills
    int64_t  event_index      # row of the input batch that caused this report
    uint16_t symbol
    uint8_t  action           # Action of the request; side effects: ADD for a triggered stop, CANCEL for a resting
                              # order cancelled by STP or expired, REDUCE for an STP decrement
    uint8_t  side
    uint8_t  status           # Status
    uint8_t  reason           # Reason
    uint8_t  type             # OrderType
    uint8_t  reserved


cdef struct Fill:             # one row of FILL_DTYPE (72 bytes)
    int64_t  ts_ns
    uint64_t seq
    int64_t  price_ticks      # the maker's price
    int64_t  qty_lots
    uint64_t maker_order_id
    uint64_t taker_order_id
    int64_t  maker_owner
    int64_t  taker_owner
    uint16_t symbol
    uint8_t  aggressor        # Side of the taker
    uint8_t  reserved0
    uint32_t reserved1


cdef struct Order:            # a slot of the order pool (56 bytes); quantities fit int32 (< MAX_QTY_LOTS = 2**30)
    uint64_t order_id
    int64_t  ts_ns            # time it took its current queue position
    int32_t  qty              # open quantity, displayed + hidden
    int32_t  visible          # displayed part of qty
    int32_t  display          # iceberg peak; 0 = fully displayed
    int32_t  filled           # filled over the order's life
    uint32_t owner            # account id (< 2**32)
    int32_t  prev             # FIFO links inside the level (pool slots), -1 at the ends
    int32_t  next             # also the free-list link of a free slot
    int32_t  level            # level slot while resting; -1 while a pending stop
    uint8_t  side
    uint8_t  type
    uint8_t  tif
    uint8_t  flags
    uint8_t  state            # STATE_FREE / STATE_RESTING / STATE_STOP
    uint8_t  reserved0
    uint16_t reserved1


cdef struct Level:            # one price level: an intrusive FIFO of pool slots
    int64_t price
    int64_t qty               # displayed quantity
    int64_t total             # displayed + hidden quantity
    int32_t head
    int32_t tail
    int32_t count
    int32_t next_free


cdef struct IdEntry:          # one id-map cell: the pool slot and the low 32 bits of the id's hash
    int32_t  slot             # -1 = empty
    uint32_t tag              # home cell = tag & mask; a tag mismatch skips the pool read


cdef struct IdHint:           # where an insert of an id just probed and not found goes (the empty cell ending its probe):
    int32_t  cell             # valid while idmap_count and idmap_cap are unchanged (nothing deleted meanwhile); -1 none
    uint32_t tag
    int32_t  count
    int32_t  cap


cdef struct LevelRef:         # one entry of a side's sorted level array (best at the end)
    int64_t key               # price for bids, -price for asks: ascending either way
    int32_t level
    int32_t reserved


cdef struct StopEntry:        # a pending stop, kept in arrival order
    int32_t slot
    int32_t reserved
    int64_t stop_ticks
    int64_t limit_ticks       # STOP_LIMIT limit price (0 for STOP)


cdef struct Spec:             # per-symbol rules, integers only
    int64_t min_qty
    int64_t max_qty           # 0 = no maximum
    int64_t band_bps          # price band around the reference price in basis points; 0 = none
    int64_t ref_price         # reference price for the band until the first trade; 0 = none
    int64_t market_band_ticks # market-order protection: sweep at most this far from the touch; 0 = none
    int32_t stp               # STPMode
    int32_t modify_policy     # ModifyPolicy


cdef struct BookC:            # one symbol's book; owned by Engine
    Spec spec
    Order* pool
    int32_t pool_cap
    int32_t pool_free
    int32_t n_orders          # resting + pending stops
    int32_t n_resting
    IdEntry* idmap            # order_id -> slot: open addressing, linear probing; capacity a power of 2
    int32_t idmap_cap
    int32_t idmap_count
    Level* levels
    int32_t levels_cap
    int32_t level_free
    LevelRef* side_levels[2]  # entries [0, n_levels): best last; may start past the allocation's base, see side_off
    int32_t n_levels[2]
    int32_t side_cap[2]       # entries allocated (from the base, side_levels - side_off)
    int32_t side_off[2]       # free entries before side_levels[side][0]: inserts and drops move the shorter end
    int32_t* lvmap[2]         # price -> level slot per side (open addressing, -1 empty): O(1) level lookup
    int32_t lvmap_cap[2]
    int32_t lvmap_count[2]
    StopEntry* stops
    int32_t n_stops
    int32_t stops_cap
    StopEntry* trig_queue     # scratch: stops triggered and waiting for release
    int32_t trig_cap
    int64_t last_price        # last trade price; 0 before the first trade
    int32_t halted
    int32_t symbol
    int64_t consistency_errors  # replay events rejected as inconsistent with the book
    int32_t* ladder[2]        # price -> level slot per side for prices in [lad_base, lad_base + lad_span) (-1 empty):
    int64_t lad_base[2]       # a dense index where the levels are (around the touch); levels outside it are in
    int64_t lad_span[2]       # lvmap. Its span grows with the side's level count (see _lv_add), never past 2**20
    int64_t plain_qty_lo      # the quantities an add may have to take the engine's lean path (_plain_add): q with
    uint64_t plain_qty_span   # (uint64)(q - plain_qty_lo) < plain_qty_span; span 0 (none) while halted or banded


cdef struct OrderView:        # one row of ORDER_DTYPE: a live order as the book sees it (80 bytes)
    uint64_t order_id
    int64_t  owner
    int64_t  price_ticks      # limit price (0 for a pending stop-market)
    int64_t  qty_lots         # open quantity, displayed + hidden
    int64_t  visible_lots
    int64_t  display_lots
    int64_t  filled_lots
    int64_t  ts_ns
    int64_t  stop_ticks       # trigger price of a pending stop, else 0
    uint16_t symbol
    uint8_t  side
    uint8_t  type
    uint8_t  tif
    uint8_t  flags
    uint8_t  state            # STATE_RESTING or STATE_STOP
    uint8_t  reserved


# The market-data port: a consumer written in C (lob.marketdata._recorder) that the engine feeds from its own
# output records, on the batch path and the per-call path alike, so that what it records does not depend on
# how the events were batched. The engine calls ``boundary`` before the first event whose ts_ns reaches
# ``next_ts`` (the consumer then moves next_ts on). After every event it moves ``clock`` (the largest ts_ns
# seen) on and reads the best level of both sides of the book the event touched (bid, bid_qty, ask, ask_qty;
# price and displayed qty, 0 for an empty side): a BBO row (ts_ns, seq, bid, bid_qty, ask, ask_qty) is due
# when they differ from the symbol's last row, ``syms[symbol].top`` (-1 before the first: never a book's).
# The engine writes it at ``syms[symbol].next`` and moves next on by a row and ``room`` down by one (the
# consumer counts the rows written into its ring by the pointer's move). It calls ``after`` instead (the
# consumer makes room and writes the row if due) when a row is due and room is 0, or when the symbol has no
# MdSym yet (``n_syms`` have one). It calls ``fills`` with the fills of the batch so far once
# MD_FILLS_AT_ONCE of them are past ``fills_done`` (the consumer records them and moves fills_done on), and
# at the end of every batch and call, before its output buffers are handed over (then sets fills_done to
# 0). Hooks cannot fail: a consumer that runs out of memory sets ``error``.
cdef enum:
    MD_FILLS_AT_ONCE = 128

cdef struct MdSym:             # what the engine needs of a symbol's BBO ring
    int64_t top[4]            # the last row's bid, bid_qty, ask, ask_qty (-1 before the first row)
    int64_t* next             # where the next row goes
    int64_t room              # rows that fit from next on before the consumer must make room

ctypedef void (*md_boundary_fn)(void* port, int64_t ts, BookC** books, int32_t n_books, uint64_t seq) noexcept nogil
ctypedef void (*md_after_fn)(void* port, const Event* ev, const int64_t* top, uint64_t seq) noexcept nogil
ctypedef void (*md_fills_fn)(void* port, const Fill* fills, int64_t n_fills) noexcept nogil

cdef struct MdPort:
    int64_t next_ts
    int64_t clock
    MdSym* syms
    int32_t n_syms
    int32_t error
    int64_t fills_done
    md_boundary_fn boundary
    md_after_fn after
    md_fills_fn fills


# --- The engine ------------------------------------------------------------------------------------
# The multi-symbol engine (defined in _engine.pyx). Every C attribute and cdef method is declared here (Cython
# requires it of a class declared in a .pxd); final, so callers in other modules call its methods directly.
# Used from outside: by the venue layer (lob._core.ExchangeCore: process_single, reject_single, the output
# buffers rep_buf/rep_n and fill_buf/fill_n, seq, _book, _order_view, _level_at, _best_level) and, through the
# core_* entry points below, by the backtest step loop.
@cython.final
cdef class Engine:
    cdef BookC** books
    cdef readonly int32_t n_books
    cdef int32_t books_cap
    cdef readonly uint64_t seq
    cdef readonly uint64_t next_auto_id
    cdef Report* rep_buf
    cdef readonly int64_t rep_n
    cdef int64_t rep_cap
    cdef Fill* fill_buf
    cdef readonly int64_t fill_n
    cdef int64_t fill_cap
    cdef MdPort* md              # the market-data consumer fed from the output records, or NULL
    cdef object md_owner         # the object that owns md (kept alive while attached)

    cdef BookC* _book(self, int sym) except NULL
    cdef inline Report* _new_report(self) except NULL nogil
    cdef inline int _emit_fill(self, BookC* b, int64_t ts, int64_t price, int64_t qty, Order* maker,
                               uint64_t taker_id, int64_t taker_owner, int aggressor) except -1 nogil
    cdef inline int64_t _report_for(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil
    cdef int _report_order(self, BookC* b, int32_t s, int64_t ts, int64_t idx, int action, int status,
                           int reason) except -1 nogil
    cdef int64_t _available(self, BookC* b, int side, int64_t limit, int64_t owner, int64_t need) noexcept nogil
    cdef int _match(self, BookC* b, int64_t ri, uint64_t oid, int64_t owner, int side, int64_t limit,
                    int64_t* rem, int64_t ts, int64_t idx, int* stp_out) except -1 nogil
    cdef inline void _refresh(self, BookC* b, int32_t s, int64_t ts) noexcept nogil
    cdef int _enter(self, BookC* b, int64_t ri, uint64_t oid, int64_t owner, int side, int type, int tif,
                    int flags, int64_t price, int64_t qty, int64_t display, int64_t filled_before,
                    int64_t ts, int64_t idx, const IdHint* hint) except -1 nogil
    cdef int _release_stops(self, BookC* b, int64_t ts, int64_t idx) except -1 nogil
    cdef int _process_one(self, const Event* ev, int64_t idx) except -1 nogil
    cdef int _check_price(self, BookC* b, int64_t price) noexcept nogil
    cdef int _check_qty(self, BookC* b, int64_t qty) noexcept nogil
    cdef int _add(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil
    cdef inline int32_t _target(self, BookC* b, const Event* ev, int64_t ri, int32_t* cell) noexcept nogil
    cdef void _drop_order(self, BookC* b, int32_t s, int32_t cell) noexcept nogil
    cdef int64_t _order_price(self, BookC* b, int32_t s) noexcept nogil
    cdef int _cancel(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil
    cdef int _reduce(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil
    cdef int _modify(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil
    cdef int _session_end(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil
    cdef inline int _inconsistent(self, BookC* b, int64_t ri, int reason) noexcept nogil
    cdef int _replay_add(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil
    cdef void _replay_take(self, BookC* b, int32_t s, int64_t q, int64_t ts) noexcept nogil
    cdef int _replay_execute(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil
    cdef int _replay_delete(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil
    cdef inline int _process_md(self, MdPort* md, const Event* ev, int64_t idx) except -1 nogil
    cdef int _md_end(self) except -1
    cdef int _reset_outputs(self, int64_t rep_hint, int64_t fill_hint) except -1
    cdef object _take_outputs(self)
    cdef int process_single(self, Event* ev) except -1
    cdef int reject_single(self, Event* ev, int reason) except -1
    cdef bint _order_view(self, BookC* b, uint64_t order_id, OrderView* out) noexcept
    cdef Level* _level_at(self, BookC* b, int side, int64_t price) noexcept
    cdef Level* _best_level(self, BookC* b, int side) noexcept
    # the request path's lean cases (declared last: the entries above keep their places)
    cdef inline int _add_plain(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil
    cdef inline int _add_done(self, BookC* b, const Event* ev, int64_t idx) except -1 nogil
    cdef int _process_other(self, const Event* ev, int64_t idx) except -1 nogil


# --- C entry points for compiled loops in other modules (lob.replay._steploop) ------------------------
# core_apply runs events through the engine into its output buffers (valid until the engine's next request)
# without building arrays; the book readers are the engine's own helpers, read-only.
cdef BookC* core_book(Engine engine, int sym) except NULL
cdef int core_apply(Engine engine, const Event* events, int64_t n, Report** reports, int64_t* n_reports,
                    Fill** fills, int64_t* n_fills) except -1
cdef int64_t core_best(BookC* b, int side) noexcept nogil
cdef int64_t core_level_qty(BookC* b, int side, int64_t price) noexcept nogil
cdef int64_t core_queue_ahead(BookC* b, uint64_t order_id) noexcept nogil
cdef int64_t core_order_total(BookC* b, uint64_t order_id) noexcept nogil
cdef int32_t core_depth(BookC* b, int side, int64_t* prices, int64_t* qtys, int32_t n) noexcept nogil
