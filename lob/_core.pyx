# cython: language_level=3
"""The venue layer over the engine (``lob._engine``): symbols, owners, unit conversion and the per-call order
path (``ExchangeCore``, the compiled base of ``lob.Exchange``), its result classes (``ExecReport``, ``Trade``,
``OrderInfo``, ``SymbolInfo``) and the journal staging of each request.

The engine, its structs, enums and record dtypes live in ``lob._engine``; this module re-exports their Python
names (``lob._core.Engine``, ``EVENT_DTYPE``, ``Side``...) so that callers of ``lob._core`` keep working.
"""
cimport cython
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_CheckExact
from libc.math cimport isfinite
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy, memset
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

import numpy as np
cimport numpy as cnp

cnp.import_array()

from lob.perf._latency cimport LatencyRing
from lob.errors import BookIntegrityError, InvalidEventError  # noqa: F401  (re-exported, as before the split)

from lob._engine cimport (ADD, BUY, CANCEL, FLAG_POST_ONLY, FLAG_POST_ONLY_SLIDE, FLAG_REPLAY_LEVEL,
                          INVALID_PRICE_TICK, INVALID_QTY, JOURNAL_UNAVAILABLE, LIMIT, MAX_ORDER_ID, MODIFY, REDUCE,
                          REJECTED, REPLAY_ADD, REPLAY_DELETE, SELL, STATE_STOP, STOP, STOP_LIMIT, BookC,
                          Event, Fill, Level, Order, OrderView, Report)
from lob._nparray cimport _empty
# the C type under its own name: the Python name Engine is the re-export below (a cimported name is not one)
from lob._engine cimport Engine as CEngine
from lob._engine import (EVENT_DTYPE, FILL_DTYPE, ORDER_DTYPE, REPORT_DTYPE, SIZEOF_ORDER, Action, Engine,
                         ModifyPolicy, OrderType, Reason, Side, Status, STPMode, TIF, release_spare_buffers)

cdef cnp.dtype _EVENT_DESCR = EVENT_DTYPE
cdef cnp.dtype _REPORT_DESCR = REPORT_DTYPE
cdef cnp.dtype _FILL_DESCR = FILL_DTYPE

# ----------------------------------------------------------------------------------------------------
# Python-facing results and the per-call boundary
# ----------------------------------------------------------------------------------------------------
from lob.errors import ConfigError, InvalidOrderError, LobStateError, UnknownSymbolError

_STATUS_NAMES = ("new", "partially_filled", "filled", "cancelled", "rejected")
_REASON_NAMES = {int(m): m.name.lower() for m in Reason}
_SIDE_NAMES = ("buy", "sell")
_TYPE_NAMES = ("limit", "market", "stop", "stop_limit")
_TIF_NAMES = ("gtc", "ioc", "fok", "day")
_ACTION_NAMES = {int(m): m.name.lower() for m in Action}
_SIDES = {"buy": 0, "sell": 1, "b": 0, "s": 1, "bid": 0, "ask": 1, "BUY": 0, "SELL": 1, "Buy": 0, "Sell": 1}
_TYPES = {"limit": 0, "market": 1, "stop": 2, "stop_limit": 3, "stop-limit": 3}
_TIFS = {"gtc": 0, "ioc": 1, "fok": 2, "day": 3}
_POST_ONLY = {False: 0, None: 0, True: FLAG_POST_ONLY, "reject": FLAG_POST_ONLY, "slide": FLAG_POST_ONLY_SLIDE}


@cython.final
cdef class SymbolInfo:
    """Name, index and unit conversions of one symbol (shared by its reports and trades)."""
    cdef readonly str name
    cdef readonly int index
    cdef readonly double tick_size
    cdef readonly double lot_size
    cdef readonly list owners        # the exchange's owner names, index = owner id (0 = None)
    cdef readonly int price_decimals
    cdef int64_t _units              # tick_size * 10**price_decimals, an integer (0: tick_size is not decimal)
    cdef double _scale               # 10**price_decimals
    cdef int64_t _exact_max          # |ticks| below this: ticks * _units is exact in a double

    def __init__(self, str name, int index, double tick_size, double lot_size, list owners):
        self.name = name
        self.index = index
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.owners = owners
        dec = 0
        while dec < 12 and abs(round(tick_size * 10 ** dec) - tick_size * 10 ** dec) > 1e-9:
            dec += 1
        self.price_decimals = dec
        units = round(tick_size * 10 ** dec)
        exact = abs(units - tick_size * 10 ** dec) <= 1e-9 and 0 < units < 2 ** 40
        self._units = units if exact else 0
        self._scale = 10.0 ** dec
        self._exact_max = (2 ** 53) // units if exact else 0

    cpdef double price(self, int64_t ticks):
        # ticks * units / 10**dec, both exact in a double, is the double nearest the decimal price: what
        # round(ticks * tick_size, dec) gives, without its decimal-string round trip (~20x slower)
        if -self._exact_max < ticks < self._exact_max:
            return <double>(ticks * self._units) / self._scale
        return round(ticks * self.tick_size, self.price_decimals)

    cpdef object qty(self, int64_t lots):
        if self.lot_size == 1.0:
            return lots
        return lots * self.lot_size

    cdef object owner_name(self, int64_t owner_id):
        if owner_id == 0:
            return None
        if owner_id < len(self.owners):
            return self.owners[owner_id]
        return owner_id

    def __repr__(self):
        return f"SymbolInfo({self.name!r}, index={self.index}, tick_size={self.tick_size}, lot_size={self.lot_size})"


@cython.final
@cython.no_gc               # references only its SymbolInfo: no cycle
@cython.freelist(64)
cdef class Trade:
    """One fill: the maker's price, the quantity, both sides' orders and owners (``lob.Trade``).

    The ``*_ticks``, ``*_lots`` and ``*_id`` fields are the engine's integers; the properties give names and
    user units.
    """
    cdef readonly SymbolInfo info
    """The symbol's :class:`SymbolInfo` (name, index, tick and lot sizes)."""
    cdef readonly int64_t ts_ns
    """Event time of the trade, ns."""
    cdef readonly uint64_t seq
    """Exchange-wide sequence number (shared with reports)."""
    cdef readonly int64_t price_ticks
    """Trade price in ticks (the maker's price)."""
    cdef readonly int64_t qty_lots
    """Traded quantity in lots."""
    cdef readonly uint64_t maker_order_id
    """Id of the resting (maker) order."""
    cdef readonly uint64_t taker_order_id
    """Id of the incoming (taker) order."""
    cdef readonly int64_t maker_owner_id
    """Integer owner id of the maker (0: anonymous)."""
    cdef readonly int64_t taker_owner_id
    """Integer owner id of the taker (0: anonymous)."""
    cdef readonly int aggressor_code
    """Side of the taker: 0 buy, 1 sell (``lob.Side``)."""

    @property
    def symbol(self):
        """Name of the symbol."""
        return self.info.name

    @property
    def price(self):
        """Trade price (the maker's price), in user units."""
        return self.info.price(self.price_ticks)

    @property
    def qty(self):
        """Traded quantity, in user units."""
        return self.info.qty(self.qty_lots)

    @property
    def aggressor(self):
        """Side of the incoming (taker) order: ``"buy"`` or ``"sell"``."""
        return _SIDE_NAMES[self.aggressor_code]

    @property
    def maker_owner(self):
        """Owner name of the resting (maker) order, or None."""
        return self.info.owner_name(self.maker_owner_id)

    @property
    def taker_owner(self):
        """Owner name of the incoming (taker) order, or None."""
        return self.info.owner_name(self.taker_owner_id)

    def as_dict(self):
        """The trade as a dict of plain values (prices and quantities in user units, owner names)."""
        return dict(seq=self.seq, ts_ns=self.ts_ns, symbol=self.symbol, price=self.price, qty=self.qty,
                    aggressor=self.aggressor, maker_order_id=self.maker_order_id,
                    taker_order_id=self.taker_order_id, maker_owner=self.maker_owner,
                    taker_owner=self.taker_owner)

    def __repr__(self):
        return (f"Trade({self.symbol} {self.qty} @ {self.price}, aggressor={self.aggressor}, "
                f"maker={self.maker_order_id}, taker={self.taker_order_id}, seq={self.seq})")

    def _repr_html_(self):
        colour = "#1b5e20" if self.aggressor_code == 0 else "#b00020"
        return (f"<span><b>{self.symbol}</b> <span style='color:{colour}'>{self.aggressor}</span> "
                f"{self.qty} @ <b>{self.price}</b> (maker {self.maker_order_id} {self.maker_owner or ''}, "
                f"taker {self.taker_order_id} {self.taker_owner or ''}, seq {self.seq})</span>")

    def __eq__(self, other):
        if not isinstance(other, Trade):
            return NotImplemented
        return self.as_dict() == (<Trade>other).as_dict()

    def __hash__(self):
        return hash((self.seq, self.maker_order_id, self.taker_order_id))


cdef Trade _make_trade(SymbolInfo info, Fill* f):
    cdef Trade t = Trade.__new__(Trade)
    t.info = info
    t.ts_ns = f.ts_ns
    t.seq = f.seq
    t.price_ticks = f.price_ticks
    t.qty_lots = f.qty_lots
    t.maker_order_id = f.maker_order_id
    t.taker_order_id = f.taker_order_id
    t.maker_owner_id = f.maker_owner
    t.taker_owner_id = f.taker_owner
    t.aggressor_code = f.aggressor
    return t


@cython.final
@cython.no_gc               # references only a SymbolInfo and lists of reports and trades: no cycle
@cython.freelist(16)
cdef class ExecReport:
    """The outcome of one request: status, reason, what filled, what rests, and the trades (``lob.Report``).

    The ``*_ticks``, ``*_lots``, ``*_id`` and ``*_code`` fields are the engine's integers; the properties give
    names and user units.
    """
    cdef readonly SymbolInfo info
    """The symbol's :class:`SymbolInfo` (name, index, tick and lot sizes)."""
    cdef readonly uint64_t order_id
    """Id of the order the request concerns (assigned by the exchange unless given)."""
    cdef readonly uint64_t seq
    """Exchange-wide sequence number of this report (it precedes the request's fills)."""
    cdef readonly int64_t ts_ns
    """Event time of the request, ns."""
    cdef readonly int64_t price_ticks
    """The order's limit price in ticks after any post-only slide (0: market order)."""
    cdef readonly int64_t filled_lots
    """Lots filled by this request."""
    cdef readonly int64_t cum_filled_lots
    """Lots filled over the order's life (FIX CumQty)."""
    cdef readonly int64_t remaining_lots
    """Lots still open on the book afterwards (0 once the order is done)."""
    cdef readonly int64_t notional
    """Sum of price_ticks x qty_lots over this request's fills."""
    cdef readonly int64_t owner_id
    """Integer owner id of the order (0: anonymous)."""
    cdef readonly int status_code
    """``lob.Status`` code of ``status``."""
    cdef readonly int reason_code
    """``lob.Reason`` code of ``reason`` (0: none)."""
    cdef readonly int side_code
    """``lob.Side`` code of ``side``."""
    cdef readonly int action_code
    """``lob.Action`` code of the request."""
    cdef readonly int type_code
    """``lob.OrderType`` code of ``type``."""
    cdef list _trades                # created on first use: most requests trade nothing (a list costs ~40 ns)
    cdef list _related               # other reports caused by the same request (STP cancels, triggered stops)

    @property
    def trades(self):
        """The trades of this request, in sequence order (a list of :class:`Trade`)."""
        if self._trades is None:
            self._trades = []
        return self._trades

    @property
    def related(self):
        """Other reports caused by the same request (STP cancels, triggered stops)."""
        if self._related is None:
            self._related = []
        return self._related

    @property
    def symbol(self):
        """Name of the symbol."""
        return self.info.name

    @property
    def status(self):
        """``new``, ``partially_filled``, ``filled``, ``cancelled`` or ``rejected``."""
        return _STATUS_NAMES[self.status_code]

    @property
    def reason(self):
        """Why the order was rejected or cancelled (a ``lob.Reason`` name in lower case), or None."""
        return None if self.reason_code == 0 else _REASON_NAMES.get(self.reason_code, str(self.reason_code))

    @property
    def side(self):
        """``"buy"``, ``"sell"``, or None when the request named no side."""
        return _SIDE_NAMES[self.side_code] if self.side_code < 2 else None

    @property
    def action(self):
        """The request: ``add``, ``cancel``, ``modify``, ``reduce``, ..."""
        return _ACTION_NAMES.get(self.action_code)

    @property
    def type(self):
        """Order type: ``limit``, ``market``, ``stop``, ``stop_limit``, or None."""
        return _TYPE_NAMES[self.type_code] if self.type_code < 4 else None

    @property
    def price(self):
        """The order's limit price after any post-only slide, or None (market orders)."""
        return self.info.price(self.price_ticks) if self.price_ticks else None

    @property
    def filled_qty(self):
        """Quantity filled over the order's life (FIX CumQty)."""
        return self.info.qty(self.cum_filled_lots)

    @property
    def last_filled_qty(self):
        """Quantity filled by this request."""
        return self.info.qty(self.filled_lots)

    @property
    def remaining_qty(self):
        """Quantity still open on the book (0 once the order is done)."""
        return self.info.qty(self.remaining_lots)

    @property
    def avg_price(self):
        """Average price of this request's fills, or None without fills."""
        if self.filled_lots == 0:
            return None
        return <double>self.notional / self.filled_lots * self.info.tick_size

    @property
    def owner(self):
        """Owner name of the order, or None."""
        return self.info.owner_name(self.owner_id)

    @property
    def accepted(self):
        """True unless the request was rejected."""
        return self.status_code != REJECTED

    def as_dict(self):
        """The report as a dict of plain values (names, user units, ``n_trades``), e.g. for a DataFrame row."""
        return dict(seq=self.seq, ts_ns=self.ts_ns, symbol=self.symbol, order_id=self.order_id,
                    action=self.action, side=self.side, type=self.type, price=self.price, status=self.status,
                    reason=self.reason, filled_qty=self.filled_qty, last_filled_qty=self.last_filled_qty,
                    remaining_qty=self.remaining_qty, avg_price=self.avg_price, owner=self.owner,
                    n_trades=len(self.trades))

    def __repr__(self):
        reason = f", reason={self.reason!r}" if self.reason_code else ""
        return (f"Report({self.action} {self.symbol} order {self.order_id}: {self.status}{reason}, "
                f"filled {self.filled_qty}, remaining {self.remaining_qty}, {len(self.trades)} trades)")

    def _repr_html_(self):
        colour = {"rejected": "#b00020", "cancelled": "#8a6d00", "filled": "#1b5e20"}.get(self.status, "#0d47a1")
        rows = "".join(
            f"<tr><td>{t.seq}</td><td>{t.price}</td><td>{t.qty}</td><td>{t.aggressor}</td>"
            f"<td>{t.maker_order_id}</td></tr>" for t in self.trades)
        trades = (f"<table><tr><th>seq</th><th>price</th><th>qty</th><th>aggressor</th><th>maker</th></tr>"
                  f"{rows}</table>") if rows else ""
        reason = f" ({self.reason})" if self.reason_code else ""
        return (f"<div><b>{self.symbol}</b> order {self.order_id} {self.action} {self.side or ''}: "
                f"<b style='color:{colour}'>{self.status}</b>{reason}; filled {self.filled_qty}"
                f"{' @ %.6g' % self.avg_price if self.filled_lots else ''}, remaining {self.remaining_qty}"
                f"{trades}</div>")


cdef ExecReport _make_report(SymbolInfo info, Report* r):
    cdef ExecReport x = ExecReport.__new__(ExecReport)
    x.info = info
    x.order_id = r.order_id
    x.seq = r.seq
    x.ts_ns = r.ts_ns
    x.price_ticks = r.price_ticks
    x.filled_lots = r.filled_lots
    x.cum_filled_lots = r.cum_filled_lots
    x.remaining_lots = r.remaining_lots
    x.notional = r.notional
    x.owner_id = r.owner
    x.status_code = r.status
    x.reason_code = r.reason
    x.side_code = r.side
    x.action_code = r.action
    x.type_code = r.type
    return x


_ORDER_FIELDS = ORDER_DTYPE.names


@cython.final
@cython.no_gc               # references only its SymbolInfo: no cycle
@cython.freelist(16)
cdef class OrderInfo:
    """A live order as the book sees it, read without numpy (``Book.order``): the fields of ``ORDER_DTYPE``
    as attributes or items (integers: ticks, lots, codes), and ``price``/``qty``/... in user units."""
    cdef readonly SymbolInfo info
    """The symbol's :class:`SymbolInfo` (name, index, tick and lot sizes)."""
    cdef OrderView v

    @property
    def order_id(self):
        """The order's id."""
        return self.v.order_id

    @property
    def owner(self):
        """Integer owner id (0: anonymous)."""
        return self.v.owner

    @property
    def price_ticks(self):
        """Limit price in ticks (0 for a pending stop-market order)."""
        return self.v.price_ticks

    @property
    def qty_lots(self):
        """Open quantity in lots, displayed + hidden."""
        return self.v.qty_lots

    @property
    def visible_lots(self):
        """Displayed quantity in lots (an iceberg's current peak)."""
        return self.v.visible_lots

    @property
    def display_lots(self):
        """Iceberg peak size in lots (0: not an iceberg)."""
        return self.v.display_lots

    @property
    def filled_lots(self):
        """Lots filled so far."""
        return self.v.filled_lots

    @property
    def ts_ns(self):
        """Time of the order's place in its queue, ns (its arrival, or its last iceberg refresh or priority loss)."""
        return self.v.ts_ns

    @property
    def stop_ticks(self):
        """Trigger price in ticks of a pending stop, else 0."""
        return self.v.stop_ticks

    @property
    def symbol(self):
        """Symbol index (the ``symbol`` field of event, report and fill arrays)."""
        return self.v.symbol

    @property
    def side(self):
        """``lob.Side`` code: 0 buy, 1 sell."""
        return self.v.side

    @property
    def type(self):
        """``lob.OrderType`` code."""
        return self.v.type

    @property
    def tif(self):
        """``lob.TIF`` code."""
        return self.v.tif

    @property
    def flags(self):
        """Order flags: 1 post-only, 2 post-only slide."""
        return self.v.flags

    @property
    def state(self):
        """1 resting on the book, 2 a pending stop."""
        return self.v.state

    @property
    def reserved(self):
        """Padding of ``ORDER_DTYPE`` (always 0)."""
        return self.v.reserved

    @property
    def price(self):
        """Limit price in user units (None for a stop-market order)."""
        return self.info.price(self.v.price_ticks) if self.v.price_ticks else None

    @property
    def qty(self):
        """Open quantity (displayed + hidden) in user units."""
        return self.info.qty(self.v.qty_lots)

    @property
    def visible_qty(self):
        """Displayed quantity in user units."""
        return self.info.qty(self.v.visible_lots)

    @property
    def filled_qty(self):
        """Quantity filled so far, in user units."""
        return self.info.qty(self.v.filled_lots)

    @property
    def stop_price(self):
        """Trigger price of a pending stop in user units, else None."""
        return self.info.price(self.v.stop_ticks) if self.v.stop_ticks else None

    @property
    def side_name(self):
        """``"buy"`` or ``"sell"``."""
        return _SIDE_NAMES[self.v.side]

    @property
    def owner_name(self):
        """Owner name, or None for the anonymous owner."""
        return self.info.owner_name(self.v.owner)

    @property
    def pending_stop(self):
        """True for a stop order waiting for its trigger (not on the book)."""
        return self.v.state == STATE_STOP

    def __getitem__(self, key):
        if isinstance(key, int):
            return tuple(self)[key]
        if key in _ORDER_FIELDS:
            return getattr(self, key)
        raise KeyError(f"no field {key!r}; the fields are {_ORDER_FIELDS}")

    def __iter__(self):
        return iter((self.v.order_id, self.v.owner, self.v.price_ticks, self.v.qty_lots, self.v.visible_lots,
                     self.v.display_lots, self.v.filled_lots, self.v.ts_ns, self.v.stop_ticks, self.v.symbol,
                     self.v.side, self.v.type, self.v.tif, self.v.flags, self.v.state, self.v.reserved))

    def __len__(self):
        return len(_ORDER_FIELDS)

    def as_dict(self):
        """The ``ORDER_DTYPE`` fields as a dict of ints."""
        return dict(zip(_ORDER_FIELDS, self))

    def __eq__(self, other):
        if not isinstance(other, OrderInfo):
            return NotImplemented
        return tuple(self) == tuple(other)

    def __hash__(self):
        return hash(tuple(self))

    def __repr__(self):
        stop = f", stop {self.stop_price}" if self.v.stop_ticks else ""
        return (f"Order({self.info.name} {self.v.order_id} {self.side_name} {self.qty} @ {self.price}{stop}, "
                f"filled {self.filled_qty}, owner {self.owner_name!r})")


cdef ExecReport _local_reject(SymbolInfo si, Event* ev, int reason):
    # a rejection that never reached the engine (no sequence number): intake is stopped
    cdef Report r
    memset(&r, 0, sizeof(Report))
    r.ts_ns = ev.ts_ns
    r.order_id = ev.order_id
    r.owner = ev.owner
    r.price_ticks = ev.price_ticks
    r.symbol = ev.symbol
    r.action = ev.action
    r.side = ev.side
    r.type = ev.type
    r.status = REJECTED
    r.reason = <uint8_t>reason
    r.event_index = -1
    return _make_report(si, &r)


cdef inline int64_t _to_units(object value, double unit, str field, bint* off) except? -1:
    # price -> ticks or quantity -> lots; raises for NaN/inf/negative/non-numbers/bools and values out of
    # int64 range; sets off when the value is not on the unit's grid (the engine then rejects it)
    cdef double v
    cdef int64_t t
    if PyFloat_CheckExact(value):       # the usual price: read the double in place
        v = PyFloat_AS_DOUBLE(value)
        if not isfinite(v):
            raise InvalidOrderError(f"{field} must be finite, got {value!r}")
        return _grid(v, unit, value, field, off)
    if isinstance(value, bool):
        raise InvalidOrderError(f"{field} must be a number, got {value!r} (bool)")
    if isinstance(value, int) and unit == 1.0:
        try:
            t = value
        except OverflowError:
            t = -1 if value < 0 else 1 << 62
        if t < 0:
            raise InvalidOrderError(f"{field} must be >= 0, got {value!r}")
        if t >= (<int64_t>1) << 62:
            raise InvalidOrderError(f"{field} {value!r} is out of range")
        return t
    try:
        v = value
    except TypeError:
        raise InvalidOrderError(f"{field} must be a number, got {value!r} ({type(value).__name__})") from None
    if not isfinite(v):
        raise InvalidOrderError(f"{field} must be finite, got {value!r}")
    return _grid(v, unit, value, field, off)


cdef inline int64_t _grid(double v, double unit, object value, str field, bint* off) except? -1:
    cdef double x
    cdef int64_t t
    if v < 0:
        raise InvalidOrderError(f"{field} must be >= 0, got {value!r}")
    x = v / unit
    if x >= 4.6e18:
        raise InvalidOrderError(f"{field} {value!r} is out of range")
    t = <int64_t>(x + 0.5)
    if abs(x - t) > 1e-6 * (1.0 if x < 1e6 else x / 1e6):
        off[0] = True
    return t


cdef inline int64_t _ticks(SymbolInfo si, object value, str field, bint* off) except? -1:
    return _to_units(value, si.tick_size, field, off)


cdef inline int64_t _lots(SymbolInfo si, object value, str field, bint* off) except? -1:
    return _to_units(value, si.lot_size, field, off)


cdef str _S_BUY = "buy", _S_SELL = "sell", _S_LIMIT = "limit", _S_MARKET = "market", _S_GTC = "gtc"


cdef inline int _code(object value, dict names, str field, int n) except -1:
    cdef object c
    # the usual spellings, compared by identity first (string literals are interned): a dict lookup saved
    if value is _S_BUY or value is _S_LIMIT or value is _S_GTC:
        return 0
    if value is _S_SELL or value is _S_MARKET:
        return 1
    c = names.get(value) if isinstance(value, str) else None
    if c is not None:
        return c
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n:
        return value
    if isinstance(value, str):
        c = names.get(value.lower())
        if c is not None:
            return c
    raise InvalidOrderError(f"{field} must be one of {sorted(k for k in names if k.islower())}, got {value!r}")


cdef inline uint64_t _order_id(object value, uint64_t top, str rule) except? 0:
    # an order id from Python, converted and range-checked in C
    cdef uint64_t v = 0
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            v = value
        except OverflowError:
            v = 0
    if v == 0 or v > top:
        raise InvalidOrderError(f"order_id must be {rule}, got {value!r}")
    return v


cdef inline int64_t _now_ns() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return <int64_t>t.tv_sec * 1000000000 + t.tv_nsec


cdef enum:
    _REP_CAP = 32
    _FILL_CAP = 256


cdef struct StageEntry:        # one request of a journal block (lob.journal.format.BLOCK_INDEX, 32 bytes)
    uint64_t seq_before
    uint64_t seq_after
    uint32_t n_events
    uint32_t n_reports
    uint32_t n_fills
    uint32_t reserved


cdef struct StageBuf:
    uint8_t* data
    int64_t n
    int64_t cap


cdef int _stage_put(StageBuf* b, const void* src, int64_t nbytes) except -1:
    cdef int64_t cap
    cdef uint8_t* p
    if b.n + nbytes > b.cap:
        cap = max(2 * b.cap, b.n + nbytes, 4096)
        p = <uint8_t*>realloc(b.data, cap)
        if p == NULL:
            raise MemoryError()
        b.data = p
        b.cap = cap
    if nbytes:
        memcpy(b.data + b.n, src, nbytes)
        b.n += nbytes
    return 0


cdef class ExchangeCore:
    """Compiled base of ``lob.Exchange``: symbols, owners and the per-call order path.

    Listeners of the per-call path receive arrays that are valid only during the call (they are views of
    reusable buffers): a listener copies what it keeps.
    """
    cdef readonly CEngine _engine
    cdef dict _sym_by_name
    cdef readonly list _infos
    cdef dict _owner_ids
    cdef readonly list _owner_names
    cdef public object clock
    cdef public object risk
    cdef public list _listeners
    cdef object _intake_error            # set (to a message) when order intake must stop (journal failure)
    cdef public LatencyRing _latency     # per-stage latencies of sampled per-call requests (lob.perf)
    # the journal port (lob.ports.JournalPort), set only by attach_journal / detach_journal
    cdef object _jport                   # the attached journal, or None
    cdef object _wal                     # its write_input: called with the input before the engine sees it
    cdef object _wal_out                 # its write_outputs: called with (events, reports, fills) after the engine
    cdef object _ev_arr                  # reusable 1-row input array handed to the journal and listeners
    cdef list _rep_views                 # views [:n] of one reusable report array, n = 0 .. _REP_CAP
    cdef list _fill_views
    cdef int _depth                      # > 0 while listeners run (a listener may place orders itself)
    # the journal's stage: per-call requests appended in C (index, events, reports, fills) until the journal
    # takes them as one block; no Python call per request
    cdef StageBuf _sets[2][4]            # two sets: one fills while the journal writes the other
    cdef StageBuf* _st                   # the set being filled
    cdef int _st_cur
    cdef bint _stage_on
    cdef Py_ssize_t _stage_owners        # owner names the journal has taken; a new one takes the slow path
    cdef int64_t _stage_limit            # requests, or _stage_bytes of them, before _stage_full() is called
    cdef int64_t _stage_bytes
    cdef object _stage_full              # the port's stage_full
    cdef readonly int64_t _stage_n

    def __cinit__(self, *args, **kwargs):
        import time
        self._engine = CEngine()
        self._sym_by_name = {}
        self._infos = []
        self._owner_ids = {}
        self._owner_names = [None]
        self.clock = time.time_ns
        self.risk = None
        self._listeners = []
        self._intake_error = None
        self._latency = None
        self._jport = None
        self._wal = None
        self._wal_out = None
        self._depth = 0
        memset(self._sets, 0, sizeof(self._sets))
        self._st_cur = 0
        self._st = &self._sets[0][0]
        self._stage_on = False
        self._stage_owners = 0
        self._stage_limit = 256
        self._stage_bytes = 4 << 20
        self._stage_full = None
        self._stage_n = 0
        self._ev_arr = _empty(_EVENT_DESCR, 1)
        rep = _empty(_REPORT_DESCR, _REP_CAP)
        fill = _empty(_FILL_DESCR, _FILL_CAP)
        self._rep_views = [rep[:n] for n in range(_REP_CAP + 1)]
        self._fill_views = [fill[:n] for n in range(_FILL_CAP + 1)]

    # --- symbols and owners ---------------------------------------------------------------------
    def _add_info(self, str name, double tick_size, double lot_size):
        cdef int i = self._engine.add_book()
        info = SymbolInfo(name, i, tick_size, lot_size, self._owner_names)
        self._infos.append(info)
        self._sym_by_name[name] = info
        return info

    cpdef SymbolInfo info(self, object symbol):
        """The SymbolInfo of a symbol name or index; raises UnknownSymbolError."""
        return self._info(symbol)

    cpdef int64_t owner_id(self, object owner) except -1:
        """Integer id of an owner name (registered on first use); None is 0 (anonymous)."""
        return self._owner(owner)

    # the per-call path calls these cdef forms: a cpdef method of a class subclassed in Python looks its
    # override up on every call
    cdef inline SymbolInfo _info(self, object symbol):
        cdef SymbolInfo si = self._sym_by_name.get(symbol) if isinstance(symbol, str) else None
        if si is not None:
            return si
        if isinstance(symbol, int) and not isinstance(symbol, bool) and 0 <= symbol < len(self._infos):
            return self._infos[symbol]
        if isinstance(symbol, SymbolInfo):
            return symbol
        raise UnknownSymbolError(f"unknown symbol {symbol!r}; this exchange lists {list(self._sym_by_name)}")

    cdef inline int64_t _owner(self, object owner) except -1:
        if owner is None:
            return 0
        cdef object i = self._owner_ids.get(owner)
        if i is not None:
            return i
        if isinstance(owner, str):
            if not owner:
                raise InvalidOrderError("owner must be a non-empty string, got ''")
            i = len(self._owner_names)
            self._owner_names.append(owner)
            self._owner_ids[owner] = i
            return i
        if isinstance(owner, int) and not isinstance(owner, bool):
            if 0 <= owner < 2 ** 32:
                return owner
            raise InvalidOrderError(f"owner id must be in [0, 2**32), got {owner!r}")
        raise InvalidOrderError(f"owner must be a string, an int id or None, got {owner!r}")

    def owner_name(self, int64_t owner_id):
        """Owner name of an integer owner id: None for 0 (anonymous), the id itself if it names no owner."""
        if owner_id == 0:
            return None
        if 0 < owner_id < len(self._owner_names):
            return self._owner_names[owner_id]
        return owner_id

    @property
    def seq(self):
        """The last exchange-wide sequence number (reports and fills share it)."""
        return self._engine.seq

    def __dealloc__(self):
        cdef int k, j
        for j in range(2):
            for k in range(4):
                free(self._sets[j][k].data)

    # --- the journal's stage --------------------------------------------------------------------
    cdef int _stage_request(self, uint64_t seq_before, uint64_t seq_after, const Event* ev, int64_t n_ev,
                            const Report* reps, int64_t n_rep, const Fill* fills, int64_t n_fill) except -1:
        cdef StageEntry e
        e.seq_before = seq_before
        e.seq_after = seq_after
        e.n_events = <uint32_t>n_ev
        e.n_reports = <uint32_t>n_rep
        e.n_fills = <uint32_t>n_fill
        e.reserved = 0
        _stage_put(&self._st[0], &e, sizeof(StageEntry))
        _stage_put(&self._st[1], ev, n_ev * sizeof(Event))
        _stage_put(&self._st[2], reps, n_rep * sizeof(Report))
        _stage_put(&self._st[3], fills, n_fill * sizeof(Fill))
        self._stage_n += 1
        return 0

    cdef bint _stage_is_full(self):
        return (self._stage_n >= self._stage_limit or
                self._st[1].n + self._st[2].n + self._st[3].n >= self._stage_bytes)

    cdef bint _stage_add(self, events, reports, fills, uint64_t seq_before, uint64_t seq_after) except -1:
        # stage one request given as arrays (the journal's Python path); returns whether the stage is full
        cdef const uint8_t[::1] e = np.ascontiguousarray(events).view(np.uint8).reshape(-1)
        cdef const uint8_t[::1] r = np.ascontiguousarray(reports).view(np.uint8).reshape(-1)
        cdef const uint8_t[::1] f = np.ascontiguousarray(fills).view(np.uint8).reshape(-1)
        self._stage_request(seq_before, seq_after, <const Event*>(&e[0] if len(events) else NULL), len(events),
                            <const Report*>(&r[0] if len(reports) else NULL), len(reports),
                            <const Fill*>(&f[0] if len(fills) else NULL), len(fills))
        return self._stage_is_full()

    cdef object _stage_take(self):
        # (n, seq_after of the last, index, events, reports, fills) of the staged requests (uint8 arrays, in
        # order), or None when the stage is empty; staging goes on in the other buffer set. The arrays are views
        # of the core's buffers, without a copy: they stay valid until the next-but-one call.
        cdef int k
        cdef StageEntry* last
        if self._stage_n == 0:
            return None
        last = <StageEntry*>(self._st[0].data + self._st[0].n - sizeof(StageEntry))
        out = (self._stage_n, last.seq_after) + tuple(
            np.asarray(<uint8_t[:self._st[k].n]>self._st[k].data) if self._st[k].n else np.zeros(0, np.uint8)
            for k in range(4))
        self._st_cur ^= 1
        self._st = &self._sets[self._st_cur][0]
        for k in range(4):
            self._st[k].n = 0
        self._stage_n = 0
        return out

    # --- the journal port (lob.ports) -------------------------------------------------------------
    def attach_journal(self, port, *, bint stage=False, int64_t stage_limit=256, int64_t stage_bytes=4 << 20):
        """Attach a write-ahead journal (a :class:`lob.ports.JournalPort`); return its
        :class:`lob.ports.JournalLink`.

        From now on the exchange calls ``port.write_input(events)`` before the engine sees a request and
        ``port.write_outputs(events, reports, fills)`` after it. With ``stage=True`` the per-call requests
        are staged in C instead (no Python call each) and ``port.stage_full()`` is called once ``stage_limit``
        requests or ``stage_bytes`` bytes are staged. The owner names registered so far count as written
        (the journal writes them in its header or snapshot). One journal at a time: detach the previous one
        first.
        """
        for name in ("write_input", "write_outputs", "stage_full", "begin_pipeline", "end_pipeline"):
            if not callable(getattr(port, name, None)):
                raise ConfigError(f"a journal port needs a {name}() method, {port!r} has none")
        if self._jport is not None and self._jport is not port:
            raise LobStateError(f"a journal is already attached ({self._jport!r}): detach it first")
        if stage_limit < 1 or stage_bytes < 1:
            raise ConfigError(f"stage_limit and stage_bytes must be >= 1, got {stage_limit!r} and {stage_bytes!r}")
        self._jport = port
        self._wal = port.write_input
        self._wal_out = port.write_outputs
        self._stage_limit = stage_limit
        self._stage_bytes = stage_bytes
        self._stage_owners = len(self._owner_names)
        self._stage_full = port.stage_full if stage else None
        self._stage_on = stage
        cdef _JournalLink link = _JournalLink.__new__(_JournalLink)
        link.core = self
        return link

    def detach_journal(self, port) -> None:
        """Stop calling ``port`` (no-op when it is not the attached journal); staged requests not taken by
        then are dropped."""
        cdef int k
        if self._jport is None or self._jport is not port:
            return
        self._jport = None
        self._wal = None
        self._wal_out = None
        self._stage_on = False
        self._stage_full = None
        for k in range(4):
            self._st[k].n = 0
        self._stage_n = 0

    @property
    def journal_port(self):
        """The attached journal (a :class:`lob.ports.JournalPort`), or None; see :meth:`attach_journal`."""
        return self._jport

    @property
    def intake_error(self):
        """Why order intake is stopped (a message), or None while it runs. Set by the attached journal through
        its link (:meth:`lob.ports.JournalLink.stop_intake`) when a write fails; requests other than cancels
        are then rejected with ``journal_unavailable``."""
        return self._intake_error

    def _stop_intake(self, str reason):
        # the venue layer's own way to stop intake (Exchange.apply); a journal uses its link
        self._intake_error = reason

    # --- book reads (``lob.Book``): a method call each, no numpy record ------------------------------
    def _order(self, SymbolInfo si, order_id):
        """The :class:`OrderInfo` of a live order, or None."""
        cdef OrderInfo o
        cdef uint64_t oid
        if not isinstance(order_id, int) or isinstance(order_id, bool):
            raise InvalidOrderError(f"order_id must be an int, got {order_id!r}")
        if order_id <= 0 or order_id >= 2 ** 64:
            return None
        oid = order_id
        o = OrderInfo.__new__(OrderInfo)
        if not self._engine._order_view(self._engine._book(si.index), oid, &o.v):
            return None
        o.info = si
        return o

    def _level(self, SymbolInfo si, price):
        """(displayed qty, n_orders) resting at a price (either side), or None."""
        cdef bint off = False
        cdef int64_t t = _ticks(si, price, "price", &off)
        cdef BookC* b = self._engine._book(si.index)
        cdef Level* L
        if off:
            return None
        L = self._engine._level_at(b, BUY, t)
        if L == NULL:
            L = self._engine._level_at(b, SELL, t)
        if L == NULL:
            return None
        return (si.qty(L.qty), L.count)

    def _best(self, SymbolInfo si, int side):
        """(price, displayed qty) of the best level of a side, or None."""
        cdef Level* L = self._engine._best_level(self._engine._book(si.index), side & 1)
        if L == NULL:
            return None
        return (si.price(L.price), si.qty(L.qty))

    # --- the per-call path ----------------------------------------------------------------------
    cdef int64_t _now(self, object ts_ns) except? -1:
        if ts_ns is None:
            return self.clock()
        if isinstance(ts_ns, int) and not isinstance(ts_ns, bool):
            return ts_ns
        raise InvalidOrderError(f"ts_ns must be an int (nanoseconds), got {ts_ns!r}")

    cdef object _run(self, SymbolInfo si, Event* ev, int reject_reason, int64_t t0=0):
        # send one event through the engine (or reject it at the edge) and build the caller's report;
        # t0 != 0: this request is sampled for stage latencies (t0 taken when the call began)
        cdef CEngine eng = self._engine
        cdef ExecReport first, x
        cdef int64_t i, t1 = 0, t2 = 0, t3 = 0, t4 = 0
        cdef Report* r
        if t0:
            t1 = _now_ns()
        if self._intake_error is not None and ev.action != CANCEL:
            return _local_reject(si, ev, JOURNAL_UNAVAILABLE)
        if reject_reason == 0 and self.risk is not None:
            if ev.action == ADD:
                reject_reason = self.risk.check_submit(si.index, ev.side, ev.qty_lots, ev.price_ticks, ev.owner,
                                                       ev.type, ev.ts_ns)
            elif ev.action == MODIFY and hasattr(self.risk, "check_modify"):
                # a modify that raises an order's quantity is a new commitment: the limits see it too
                reject_reason = self.risk.check_modify(si.index, ev.order_id, ev.qty_lots, ev.price_ticks,
                                                       ev.owner, ev.ts_ns)
        if t0:
            t2 = _now_ns()
        ev.reserved = <uint8_t>reject_reason      # an edge rejection still goes through the engine's output path
        events = None
        cdef bint shared = self._depth == 0      # nested requests (placed by a listener) get fresh arrays
        # staged requests skip the Python journal hooks; a new owner name takes them (an owners record first)
        cdef bint staged = self._stage_on
        cdef bint slow_wal = self._wal is not None and not (staged and
                                                             len(self._owner_names) == self._stage_owners)
        cdef uint64_t seq_before = eng.seq
        if slow_wal or self._listeners or (self._wal_out is not None and not staged):
            events = self._ev_arr if shared else _empty(_EVENT_DESCR, 1)
            memcpy(cnp.PyArray_DATA(events), ev, sizeof(Event))
        if slow_wal:
            try:
                self._depth += 1
                self._wal(events)
            except Exception as e:       # fail closed: nothing unjournaled reaches the book
                self._intake_error = f"journal write failed: {type(e).__name__}: {e}"
                return _local_reject(si, ev, JOURNAL_UNAVAILABLE)
            finally:
                self._depth -= 1
        eng.process_single(ev)
        if staged:
            self._stage_request(seq_before, eng.seq, ev, 1, eng.rep_buf, eng.rep_n, eng.fill_buf, eng.fill_n)
            if self._stage_is_full():
                try:
                    self._stage_full()
                except Exception as e:   # the request stands (the "batch" loss window); intake stops
                    self._intake_error = f"journal write failed: {type(e).__name__}: {e}"
        elif self._wal_out is not None:
            reports, fills = eng.outputs_copy()
            self._wal_out(events, reports, fills)
        if t0:
            t3 = _now_ns()
        r = &eng.rep_buf[0]
        first = _make_report(si, r)
        if eng.fill_n and r.filled_lots:
            self._own_trades(first, r)
        if eng.rep_n > 1:
            first._related = [_make_report(self._infos[eng.rep_buf[i].symbol], &eng.rep_buf[i])
                              for i in range(1, eng.rep_n)]
            if eng.fill_n:
                for i in range(1, eng.rep_n):
                    if eng.rep_buf[i].filled_lots:
                        self._own_trades(first._related[i - 1], &eng.rep_buf[i])
        if self._listeners:
            if shared and eng.rep_n <= _REP_CAP and eng.fill_n <= _FILL_CAP:
                reports = self._rep_views[eng.rep_n]
                fills = self._fill_views[eng.fill_n]
                if eng.rep_n:
                    memcpy(cnp.PyArray_DATA(reports), eng.rep_buf, eng.rep_n * sizeof(Report))
                if eng.fill_n:
                    memcpy(cnp.PyArray_DATA(fills), eng.fill_buf, eng.fill_n * sizeof(Fill))
            else:
                reports, fills = eng.outputs_copy()
            self._depth += 1
            try:
                for fn in self._listeners:
                    fn(events, reports, fills)
            finally:
                self._depth -= 1
        if t0:
            t4 = _now_ns()
            self._latency.add(ev.action if ev.action <= REDUCE else 4, t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)
        return first

    cdef int _own_trades(self, ExecReport x, const Report* r) except -1:
        # the fills of this report's own matching: its order as taker, after its report, up to filled_lots
        # (a call's other reports, such as released stops, carry theirs)
        cdef CEngine eng = self._engine
        cdef int64_t j, need = r.filled_lots
        cdef Fill* f
        for j in range(eng.fill_n):
            f = &eng.fill_buf[j]
            if f.seq > r.seq and f.taker_order_id == r.order_id and f.symbol == r.symbol:
                if x._trades is None:
                    x._trades = []
                x._trades.append(_make_trade(x.info, f))
                need -= f.qty_lots
                if need <= 0:
                    break
        return 0

    def submit(self, symbol, side, qty, price=None, type="limit", tif="gtc", owner=None, post_only=False,
               display_qty=None, stop_price=None, order_id=None, ts_ns=None):
        """Submit a new order; return its execution report.

        Parameters
        ----------
        symbol : str or SymbolInfo
            A listed symbol (``UnknownSymbolError`` otherwise).
        side : {"buy", "sell"}
            Also accepted: ``"b"``/``"s"``, ``"bid"``/``"ask"``, ``"BUY"``/``"SELL"``, ``"Buy"``/``"Sell"``.
        qty : float
            Quantity, a multiple of the symbol's ``lot_size`` (off the grid: ``rejected``, ``invalid_qty``).
        price : float, optional
            Limit price, a multiple of ``tick_size`` (off the grid: ``rejected``, ``invalid_price_tick``);
            required for ``limit`` and ``stop_limit`` orders, None for ``market`` and ``stop`` orders.
        type : {"limit", "market", "stop", "stop_limit"}
            A market order never rests; a stop waits for the last trade price to reach ``stop_price``.
        tif : {"gtc", "ioc", "fok", "day"}
            Time in force: rest until cancelled, cancel the unfilled rest at once, fill entirely or not at
            all, rest until :meth:`session_end`.
        owner : str or int, optional
            Account of the order (registered on first use); drives self-trade prevention and cancel rights.
        post_only : {False, True, "reject", "slide"}
            A post-only order that would cross is rejected (``True``/``"reject"``, ``post_only_would_cross``)
            or repriced one tick inside the opposite best (``"slide"``).
        display_qty : float, optional
            Iceberg peak: only this much is displayed; each new peak goes to the back of its level.
        stop_price : float, optional
            Trigger price of a ``stop`` or ``stop_limit`` order (only for those).
        order_id : int, optional
            The order's id in [1, 2**63); None lets the exchange assign the next one.
        ts_ns : int, optional
            Event time in ns (default: the exchange clock).

        Returns
        -------
        Report
            ``status`` (``new``, ``partially_filled``, ``filled``, ``cancelled``, ``rejected``), ``reason``,
            ``order_id``, quantities, ``avg_price`` and the ``trades`` this order made; reports caused by it
            (self-trade cancels, released stops) are in ``related``. Rules: docs/matching.md.

        Raises
        ------
        InvalidOrderError
            An argument of the wrong kind (an unknown ``side``/``type``/``tif``, a price on a market order,
            a missing price), naming the field and the value. Orders the venue refuses are not raised: they
            come back ``rejected`` with a ``reason``.

        Examples
        --------
        >>> from lob import Exchange
        >>> ex = Exchange(symbols=["X"])
        >>> ex.submit("X", "sell", 5, price=10.0).status
        'new'
        >>> r = ex.submit("X", "buy", 8, price=10.0, tif="ioc"); (r.status, r.filled_qty, r.reason)
        ('cancelled', 5, 'no_liquidity')
        """
        cdef int64_t t0 = _now_ns() if self._latency is not None and self._latency.want() else 0
        cdef SymbolInfo si = self._info(symbol)
        cdef Event ev
        cdef bint off_tick = False, off_lot = False
        cdef int reject = 0
        memset(&ev, 0, sizeof(Event))
        ev.symbol = <uint16_t>si.index
        ev.action = ADD
        ev.side = <uint8_t>_code(side, _SIDES, "side", 2)
        ev.type = <uint8_t>_code(type, _TYPES, "type", 4)
        ev.tif = <uint8_t>_code(tif, _TIFS, "tif", 4)
        if post_only is not False:
            flags = _POST_ONLY.get(post_only) if isinstance(post_only, (bool, str)) or post_only is None else None
            if flags is None:
                raise InvalidOrderError(f"post_only must be False, True, 'reject' or 'slide', got {post_only!r}")
            ev.flags = <uint8_t>flags
        ev.qty_lots = _lots(si, qty, "qty", &off_lot)
        if ev.type == LIMIT or ev.type == STOP_LIMIT:
            if price is None:
                raise InvalidOrderError(f"price is required for a {_TYPE_NAMES[ev.type]} order, got None")
            ev.price_ticks = _ticks(si, price, "price", &off_tick)
        elif price is not None:
            raise InvalidOrderError(f"price must be None for a {_TYPE_NAMES[ev.type]} order, got {price!r}")
        if ev.type == STOP or ev.type == STOP_LIMIT:
            if stop_price is None:
                raise InvalidOrderError(f"stop_price is required for a {_TYPE_NAMES[ev.type]} order, got None")
            ev.stop_ticks = _ticks(si, stop_price, "stop_price", &off_tick)
        elif stop_price is not None:
            raise InvalidOrderError(f"stop_price is only for stop orders, got {stop_price!r} on a "
                                    f"{_TYPE_NAMES[ev.type]} order")
        if display_qty is not None:
            ev.display_lots = _lots(si, display_qty, "display_qty", &off_lot)
            if ev.display_lots == 0:
                raise InvalidOrderError(f"display_qty must be > 0, got {display_qty!r}")
            if ev.display_lots > ev.qty_lots:
                raise InvalidOrderError(f"display_qty must be <= qty {qty!r} (the order's total), got {display_qty!r}")
        if order_id is not None:
            ev.order_id = _order_id(order_id, MAX_ORDER_ID, "an int in [1, 2**63)")
        ev.owner = self._owner(owner)
        ev.ts_ns = self._now(ts_ns)
        if off_tick:
            reject = INVALID_PRICE_TICK
        elif off_lot:
            reject = INVALID_QTY
        return self._run(si, &ev, reject, t0)

    cdef int _target_event(self, Event* ev, SymbolInfo si, int action, object order_id, object owner,
                           object ts_ns) except -1:
        memset(ev, 0, sizeof(Event))
        ev.symbol = <uint16_t>si.index
        ev.action = <uint8_t>action
        ev.order_id = _order_id(order_id, 0xFFFFFFFFFFFFFFFF, "a positive int")
        ev.owner = self._owner(owner)
        ev.ts_ns = self._now(ts_ns)
        return 0

    def cancel(self, symbol, order_id, owner=None, ts_ns=None):
        """Cancel a resting order or a pending stop; return its report.

        Parameters
        ----------
        symbol : str or SymbolInfo
            The order's symbol.
        order_id : int
            The id of a live order (else ``rejected``, ``unknown_order``).
        owner : str or int, optional
            When given, it must be the order's owner (else ``rejected``, ``not_owner``); None may cancel
            any order.
        ts_ns : int, optional
            Event time in ns (default: the exchange clock).

        Returns
        -------
        Report
            ``cancelled``, with the order's ``filled_qty`` so far; or ``rejected`` with the reason.

        Examples
        --------
        >>> from lob import Exchange
        >>> ex = Exchange(symbols=["X"]); oid = ex.submit("X", "buy", 5, price=9.0).order_id
        >>> ex.cancel("X", oid).status, ex.cancel("X", oid).reason
        ('cancelled', 'unknown_order')
        """
        cdef int64_t t0 = _now_ns() if self._latency is not None and self._latency.want() else 0
        cdef SymbolInfo si = self._info(symbol)
        cdef Event ev
        self._target_event(&ev, si, CANCEL, order_id, owner, ts_ns)
        return self._run(si, &ev, 0, t0)

    def reduce(self, symbol, order_id, by_qty, owner=None, ts_ns=None):
        """Take ``by_qty`` off an order's open quantity, keeping its time priority (a partial cancel).

        Parameters
        ----------
        symbol : str or SymbolInfo
            The order's symbol.
        order_id : int
            The id of a live order (else ``rejected``, ``unknown_order``).
        by_qty : float
            Quantity to take off (> 0, on the lot grid, else ``invalid_qty``); the whole open quantity or
            more cancels the order. An iceberg's displayed part shrinks to at most the new open quantity.
        owner : str or int, optional
            When given, it must be the order's owner (else ``rejected``, ``not_owner``).
        ts_ns : int, optional
            Event time in ns (default: the exchange clock).

        Returns
        -------
        Report
            The order's status after the reduction (``cancelled`` when nothing is left open).

        Examples
        --------
        >>> from lob import Exchange
        >>> ex = Exchange(symbols=["X"]); oid = ex.submit("X", "buy", 5, price=9.0).order_id
        >>> r = ex.reduce("X", oid, 2); (r.status, r.remaining_qty)
        ('new', 3)
        """
        cdef int64_t t0 = _now_ns() if self._latency is not None and self._latency.want() else 0
        cdef SymbolInfo si = self._info(symbol)
        cdef Event ev
        cdef bint off_lot = False
        self._target_event(&ev, si, REDUCE, order_id, owner, ts_ns)
        ev.qty_lots = _lots(si, by_qty, "by_qty", &off_lot)
        return self._run(si, &ev, INVALID_QTY if off_lot else 0, t0)

    def modify(self, symbol, order_id, qty=None, price=None, owner=None, stop_price=None, ts_ns=None):
        """Change an order's total quantity (FIX OrderQty: filled part included) and/or its price.

        Under the symbol's ``modify_priority="standard"`` a smaller quantity at the same price keeps the
        order's time priority; a larger quantity or a new price loses it (the order enters again as of now,
        matching at once if it has become marketable). With ``"always_lose"`` every change loses it.

        Parameters
        ----------
        symbol : str or SymbolInfo
            The order's symbol.
        order_id : int
            The id of a live order (else ``rejected``, ``unknown_order``).
        qty : float, optional
            New total quantity, filled part included; at or below the filled quantity the order ends
            (``filled``). None keeps the quantity.
        price : float, optional
            New limit price (validated like a new order's). None keeps the price.
        owner : str or int, optional
            When given, it must be the order's owner (else ``rejected``, ``not_owner``).
        stop_price : float, optional
            New trigger price of a pending stop.
        ts_ns : int, optional
            Event time in ns (default: the exchange clock).

        Returns
        -------
        Report
            The order's status after the change, with any ``trades`` it made; ``rejected`` (order unchanged)
            with the reason when the change is refused.

        Examples
        --------
        >>> from lob import Exchange
        >>> ex = Exchange(symbols=["X"]); oid = ex.submit("X", "buy", 5, price=9.0).order_id
        >>> r = ex.modify("X", oid, qty=8, price=9.5); (r.status, r.price, r.remaining_qty)
        ('new', 9.5, 8)
        """
        cdef int64_t t0 = _now_ns() if self._latency is not None and self._latency.want() else 0
        cdef SymbolInfo si = self._info(symbol)
        cdef Event ev
        cdef bint off_tick = False, off_lot = False
        cdef OrderView view
        self._target_event(&ev, si, MODIFY, order_id, owner, ts_ns)
        if qty is None:
            if self._engine._order_view(self._engine._book(si.index), ev.order_id, &view):
                ev.qty_lots = view.qty_lots + view.filled_lots
            else:
                ev.qty_lots = 1
        else:
            ev.qty_lots = _lots(si, qty, "qty", &off_lot)
        if price is not None:
            ev.price_ticks = _ticks(si, price, "price", &off_tick)
            if ev.price_ticks == 0:
                raise InvalidOrderError(f"price must be > 0, got {price!r}")
        if stop_price is not None:
            ev.stop_ticks = _ticks(si, stop_price, "stop_price", &off_tick)
        return self._run(si, &ev, INVALID_PRICE_TICK if off_tick else (INVALID_QTY if off_lot else 0), t0)

    def _replay_request(self, symbol, int action, order_id, qty, price, side=None, owner=None, bint level=False,
                        ts_ns=None):
        """One replay-mode request (REPLAY_ADD / _EXECUTE / _DELETE) through the per-call path; the
        arguments are checked and documented by ``lob.Exchange.replay_add`` and its siblings."""
        cdef SymbolInfo si = self.info(symbol)
        cdef Event ev
        cdef bint off_tick = False, off_lot = False
        if action < REPLAY_ADD or action > REPLAY_DELETE:
            raise InvalidOrderError(f"action must be a replay action, got {action!r}")
        if action == REPLAY_ADD and order_id is None:        # the engine assigns one
            self._target_event(&ev, si, action, 1, owner, ts_ns)
            ev.order_id = 0
        else:
            self._target_event(&ev, si, action, order_id, owner, ts_ns)
        if action == REPLAY_ADD:
            if ev.order_id >= 2 ** 63:
                raise InvalidOrderError(f"order_id must be an int in [1, 2**63), got {order_id!r}")
            ev.side = <uint8_t>_code(side, _SIDES, "side", 2)
            if price is None:
                raise InvalidOrderError("price is required for replay_add, got None")
        if qty is not None:
            ev.qty_lots = _lots(si, qty, "qty", &off_lot)
            if ev.qty_lots == 0:
                raise InvalidOrderError(f"qty must be > 0, got {qty!r}")
        elif action != REPLAY_DELETE:
            raise InvalidOrderError("qty is required, got None")
        if price is not None:
            ev.price_ticks = _ticks(si, price, "price", &off_tick)
            if ev.price_ticks == 0:
                raise InvalidOrderError(f"price must be > 0, got {price!r}")
        elif level:
            raise InvalidOrderError("level=True needs the execution's price, got price=None")
        if level:
            ev.flags = FLAG_REPLAY_LEVEL
        return self._run(si, &ev, INVALID_PRICE_TICK if off_tick else (INVALID_QTY if off_lot else 0))

    def _control(self, symbol, int action, ts_ns=None):
        cdef SymbolInfo si = self._info(symbol)
        cdef Event ev
        cdef ExecReport first
        memset(&ev, 0, sizeof(Event))
        ev.symbol = <uint16_t>si.index
        ev.action = <uint8_t>action
        ev.ts_ns = self._now(ts_ns)
        events = _empty(_EVENT_DESCR, 1)
        memcpy(cnp.PyArray_DATA(events), &ev, sizeof(Event))
        if self._wal is not None:
            if self._intake_error is not None:
                raise LobStateError(f"order intake is stopped: {self._intake_error}")
            try:
                self._wal(events)
            except Exception as e:
                self._intake_error = f"journal write failed: {type(e).__name__}: {e}"
                raise LobStateError(f"order intake is stopped: {self._intake_error}") from e
        self._engine.process_single(&ev)
        out = [_make_report(self._infos[self._engine.rep_buf[i].symbol], &self._engine.rep_buf[i])
               for i in range(self._engine.rep_n)]
        if self._listeners or self._wal_out is not None:
            reports, fills = self._engine.outputs_copy()
            if self._wal_out is not None:
                self._wal_out(events, reports, fills)
            for fn in self._listeners:
                fn(events, reports, fills)
        return out


cdef class _JournalLink:
    """The venue side of an attached journal (:class:`lob.ports.JournalLink`), returned by
    ``ExchangeCore.attach_journal``: what the journal, and only it, may do to the exchange."""
    cdef ExchangeCore core

    def stop_intake(self, str reason):
        """Stop order intake with ``reason`` (read back as ``exchange.intake_error``)."""
        self.core._stop_intake(reason)

    def take_stage(self):
        """``(n, seq_after of the last, index, events, reports, fills)`` of the staged requests (uint8 arrays,
        in order), or ``None`` when the stage is empty; staging goes on in the other buffer set.

        The arrays are views of the core's buffers, without a copy: they stay valid until the next-but-one
        call (the journal writes a block before it takes the one after next).
        """
        return self.core._stage_take()

    def stage(self, events, reports, fills, uint64_t seq_before, uint64_t seq_after):
        """Stage one request given as arrays (the journal's Python path); return whether the stage is full."""
        return self.core._stage_add(events, reports, fills, seq_before, seq_after)

    def set_stage_limit(self, int64_t n):
        """Requests staged before the port's ``stage_full()`` is called."""
        if n < 1:
            raise ConfigError(f"stage limit must be >= 1, got {n!r}")
        self.core._stage_limit = n

    @property
    def owners_pending(self):
        """Whether owner names were registered since the journal last took them."""
        return len(self.core._owner_names) > self.core._stage_owners

    def take_owners(self):
        """``{id: name}`` of the owner names registered since the last call (or the attachment)."""
        names = self.core._owner_names
        out = {i: names[i] for i in range(self.core._stage_owners, len(names))}
        self.core._stage_owners = len(names)
        return out
