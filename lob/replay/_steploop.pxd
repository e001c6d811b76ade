# cython: language_level=3
"""C-level contract of the backtest step loop and of compiled strategies (``lob.replay._steploop``).

A compiled strategy is a ``cdef class`` deriving from :class:`CompiledStrategy`. The loop calls its
``on_start``/``on_book``/``on_fill``/``on_trade`` C methods; the strategy reads the book, its position and
its open orders from the loop (``best_bid()``, ``position``, ``open_orders[:n_open]``...) and writes intents
with ``loop.submit(...)``/``loop.cancel(...)``/``loop.modify(...)`` into the loop's preallocated queue.
Everything is integers: prices in ticks, quantities in lots, times in ns.

Without the GIL: a strategy that sets ``runs_nogil`` and overrides the ``nogil`` hooks (``on_book_nogil``,
``on_fill_nogil``, ``on_trade_nogil``) runs with the loop over steps released from the GIL; the default
``nogil`` hooks take the GIL and call ``on_book``/``on_fill``/``on_trade``.
"""
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from lob._engine cimport BookC, Engine, Event, Fill, Report
from lob.queue._compiled cimport CompiledQueueModel, QueueState

cdef void* grow_buffer(void* p, int64_t* cap, int64_t need, size_t item) except NULL nogil

cdef enum:
    INTENT_SUBMIT = 0
    INTENT_CANCEL = 1
    INTENT_MODIFY = 2

cdef enum:
    IMPACT_FULL = 0
    IMPACT_CONSUME = 1
    IMPACT_OFF = 2


cdef struct OpenOrder:        # one of the strategy's open orders (real or virtual), in insertion order
    uint64_t order_id
    int64_t  price            # ticks
    int64_t  qty              # open lots
    double   queue_ahead      # lots ahead (virtual orders: the queue model's estimate; real: at entry)
    int64_t  shown            # virtual orders: the displayed lots at its price when the model last saw them
    double   traded           # virtual orders: lots traded at its price since (the risk-averse rule's state)
    uint8_t  side
    uint8_t  virtual
    uint8_t  tif
    uint8_t  reserved
    double   qdata[2]         # virtual orders: a compiled queue model's own values (QueueState.data)


cdef struct Pending:          # an intent in flight (a binary heap on (arrival, seq))
    int64_t  arrival
    int64_t  seq
    uint64_t order_id
    int64_t  price            # ticks; 0: market (submit) or keep (modify)
    int64_t  qty              # lots; -1: keep (modify)
    int32_t  tag              # index into the loop's tag table
    uint8_t  action           # INTENT_*
    uint8_t  side
    uint8_t  tif
    uint8_t  post_only
    uint8_t  reject           # a Reason decided at the edge (off-tick price, off-lot qty): the engine rejects
    uint8_t  reserved0
    uint16_t reserved1


cdef struct OrderRec:         # a row of BacktestResult.orders
    uint64_t order_id
    int64_t  ts_ns
    int64_t  price            # ticks, 0: market
    int64_t  qty              # lots
    double   queue_ahead      # -1: none
    int32_t  tag
    uint8_t  side
    uint8_t  tif
    int8_t   status           # lob Status code, -1: none
    uint8_t  reserved


cdef struct FillRec:          # a row of BacktestResult.fills
    int64_t  ts_ns
    uint64_t order_id
    int64_t  price            # ticks
    int64_t  qty              # lots
    double   queue_ahead      # -1: none
    int64_t  position         # lots after the fill
    double   fee
    uint8_t  side
    uint8_t  maker
    uint16_t reserved0
    uint32_t reserved1


cdef struct MarkRec:          # a row of BacktestResult.pnl
    int64_t ts_ns
    double  mid
    double  position
    double  cash
    double  pnl
    double  fees


cdef class CompiledStrategy:
    cdef public bint wants_trades     # on_trade is called for every historical trade
    cdef public bint wants_fills      # on_fill is called for every fill of the strategy
    cdef public bint runs_nogil       # the loop over steps releases the GIL (the *_nogil hooks are overridden)
    cdef int on_start(self, StepLoop loop) except -1
    cdef int on_book(self, StepLoop loop) except -1
    cdef int on_fill(self, StepLoop loop, const FillRec* fill) except -1
    cdef int on_trade(self, StepLoop loop, int64_t price, int64_t qty, int aggressor, int64_t ts_ns) except -1
    # what the loop calls; the defaults take the GIL and call the hooks above
    cdef int on_book_nogil(self, StepLoop loop) except -1 nogil
    cdef int on_fill_nogil(self, StepLoop loop, const FillRec* fill) except -1 nogil
    cdef int on_trade_nogil(self, StepLoop loop, int64_t price, int64_t qty, int aggressor,
                            int64_t ts_ns) except -1 nogil


cdef class StepLoop:
    cdef Engine engine
    cdef BookC* book
    cdef readonly int sym
    cdef readonly int64_t owner
    cdef readonly int impact
    cdef readonly int64_t step_ns
    cdef readonly double tick
    cdef readonly double lot
    cdef double maker_bps
    cdef double taker_bps
    cdef int64_t latency[3]
    cdef object latency_fn            # callable(action name) -> ns, or None
    cdef bint has_latency_fn
    cdef CompiledStrategy strategy
    cdef public list tags
    cdef dict tag_index
    # state
    cdef readonly int64_t now
    cdef int64_t last_step
    cdef bint started
    cdef bint skip_check              # a quiet-stretch check left for the next chunk
    cdef readonly int64_t position    # lots
    cdef readonly double cash
    cdef readonly double fees_paid
    cdef readonly uint64_t next_id
    cdef readonly int64_t decisions
    cdef OpenOrder* open_orders
    cdef readonly int32_t n_open
    cdef int32_t cap_open
    cdef readonly int64_t open_version    # changes whenever open_orders changes
    cdef Pending* heap
    cdef readonly int64_t n_pending
    cdef int64_t cap_heap
    cdef int64_t seq
    cdef OrderRec* orders
    cdef int64_t n_orders
    cdef int64_t cap_orders
    cdef FillRec* fills
    cdef int64_t n_fills
    cdef int64_t cap_fills
    cdef MarkRec* marks
    cdef int64_t n_marks
    cdef int64_t cap_marks
    cdef Fill* scratch                # the fills of one history slice
    cdef int64_t cap_scratch
    cdef int64_t* depth_p
    cdef int64_t* depth_q
    cdef object queue_model           # None: the compiled model cqueue; else a Python lob.queue.models.QueueModel
    cdef bint py_queue                # queue_model is not None (it runs with the GIL)
    cdef CompiledQueueModel cqueue    # the queue estimate of virtual orders, without the GIL
    cdef dict qstates                 # order_id -> QueueState of the virtual orders (queue_model only)

    # for strategies
    cdef inline int64_t best_bid(self) noexcept nogil
    cdef inline int64_t best_ask(self) noexcept nogil
    cdef int64_t level_qty(self, int side, int64_t price) noexcept nogil
    cdef int32_t find_open(self, uint64_t order_id) noexcept nogil
    cdef uint64_t submit(self, int side, int64_t price, int64_t qty, int tif=*, bint post_only=*, int32_t tag=*,
                         uint64_t order_id=*, int reject=*) except 0 nogil
    cdef int cancel(self, uint64_t order_id) except -1 nogil
    cdef int modify(self, uint64_t order_id, int64_t qty, int64_t price) except -1 nogil
    cdef int32_t tag_id(self, str tag) except -1
    # internals
    cdef int64_t _latency(self, int action) except -1 nogil
    cdef int _push(self, Pending* p) except -1 nogil
    cdef int _pop(self, Pending* out) except -1 nogil
    cdef int run_events(self, const Event* ev, int64_t n) except -1 nogil
    cdef int _apply_history(self, const Event* ev, int64_t n) except -1 nogil
    cdef int _send(self, Pending* it) except -1 nogil
    cdef int _submit_real(self, Pending* it, int64_t ri, int tif) except -1 nogil
    cdef int _virtual_submit(self, Pending* it, int64_t ri) except -1 nogil
    cdef int _virtual_rest(self, Pending* it, int64_t qty, int64_t ri) except -1 nogil
    cdef int _on_real_fill(self, const Fill* f) except -1 nogil
    cdef int _book_fill(self, uint64_t oid, int side, int64_t price, int64_t qty, bint maker, double queue_ahead,
                        int64_t ts) except -1 nogil
    cdef int _virtual_fills(self, const Fill* f) except -1 nogil
    cdef int _clip(self) except -1 nogil
    cdef int _mark(self) except -1 nogil
    cdef int _open_add(self, OpenOrder* o) except -1 nogil
    cdef void _open_remove(self, int32_t i) noexcept nogil
    cdef int64_t _record_order(self, Pending* it) except -1 nogil
    cdef int _py_new_order(self, uint64_t order_id, int64_t shown, double* ahead) except -1
    cdef int64_t _py_trade(self, int32_t i, int64_t q) except -1
    cdef int _py_through(self, uint64_t order_id) except -1
    cdef int _py_depth(self, int32_t i, int64_t shown) except -1
    cdef int _apply(self, const Event* ev, int64_t n, Report** reps, int64_t* nr, Fill** fs,
                    int64_t* nf) except -1 nogil
    cdef list _drain(self)
