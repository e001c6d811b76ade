"""``lob.Exchange``: a multi-symbol venue over the compiled engine."""
from __future__ import annotations

import math
import time
from typing import Callable, Iterable

import numpy as np

from lob._core import EVENT_DTYPE, ExchangeCore, Action
from lob._validation import check_events
from lob.enums import MODIFY_POLICY_NAMES, STP_NAMES
from lob.errors import ConfigError, JournalError, LobStateError
from lob.ports import journal_provider
from lob.units import to_units

__all__ = ["Exchange", "empty_events"]

# a batch of at least this many events (4 MB), journaled under fsync="batch" or "never", is matched in chunks
# of this size with records of their own, so that the journal's writer thread packs and writes one chunk while
# the engine matches the next; smaller requests are staged into the journal's blocks
_PIPELINE_CHUNK = 1 << 16


def empty_events(n: int) -> np.ndarray:
    """A zeroed batch of ``n`` events (``lob.EVENT_DTYPE``) to fill in and pass to ``apply``.

    Examples
    --------
    >>> ev = empty_events(1)
    >>> ev["qty_lots"] = 10; ev["price_ticks"] = 10000
    >>> ex = Exchange(symbols=["X"]); reports, fills = ex.apply(ev)
    >>> str(ex.book("X").best_bid())
    '(100.0, 10)'
    """
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"n must be a non-negative int, got {n!r}")
    return np.zeros(int(n), dtype=EVENT_DTYPE)


class _EventClock:
    """An exchange's default clock: the time of the last timed batch it applied, else the wall clock.

    A per-call request without ``ts_ns`` (``submit``, ``cancel``, an order ticket) is stamped with it, so
    orders placed by hand into a simulated or replayed flow sit on the flow's clock (09:30 of a simulated
    day, not today). An exchange that only ever takes per-call requests runs on the wall clock.
    """

    __slots__ = ("ts_ns",)

    def __init__(self, ts_ns: int | None = None):
        self.ts_ns = ts_ns

    def __call__(self) -> int:
        t = self.ts_ns
        return time.time_ns() if t is None else t


def _positive(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a positive number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
    return v


class Exchange(ExchangeCore):
    """A venue of several symbols, each with its own book and rules, sharing one sequence of outputs.

    Parameters
    ----------
    symbols : iterable of str, optional
        Symbols to list with the default spec (or the ``tick_size``/``lot_size``/rules given here).
    tick_size, lot_size : float
        Default price increment and quantity increment.
    marketdata : bool or dict
        Record a trade tape (with maker/taker ids and owners), bars, BBO changes and L2 snapshots
        (:class:`lob.marketdata.MarketData`; a dict gives its options). Default True: the engine feeds the
        recorder in C as it matches, identically for batches and single requests, without a Python call;
        ``False`` records nothing.
    journal : path, optional
        Journal every input and output to this directory (see :mod:`lob.journal`); recover with
        :meth:`Exchange.open`.
    fsync : {"batch", "always", "never"}
        The journal's durability policy.
    fsync_ms : float, optional
        Under ``fsync="batch"``: fsync the journal every this many ms (default: every ``batch_ms``, 5 ms). The
        records still reach the OS every 5 ms (a process crash loses no more); a power loss may lose the
        requests of about the last ``fsync_ms``. See :mod:`lob.journal`.
    **spec
        Default rules for the symbols listed here (see :meth:`add_symbol`).

    Attributes
    ----------
    clock : callable
        ``clock() -> int`` nanoseconds: the time stamped on a per-call request without ``ts_ns``. By default
        the exchange's event clock: the time of the last timed batch applied (so orders placed by hand into a
        simulated or replayed flow sit on its clock), the wall clock while no batch had a time; replaceable
        (``lob.sim.Simulator`` sets its own).

    Examples
    --------
    >>> ex = Exchange(symbols=["AAPL"])
    >>> _ = ex.submit("AAPL", "sell", 100, price=150.00, owner="bob")
    >>> r = ex.submit("AAPL", "buy", 60, price=150.05, owner="alice")
    >>> r.status, r.filled_qty, r.avg_price, r.trades[0].maker_owner
    ('filled', 60, 150.0, 'bob')
    """

    #: The class of :meth:`book`'s views, :class:`lob.Book`: ``lob.book`` (above this module in the layers, and
    #: imported by ``import lob``) registers it here, so that this module imports nothing from ``lob.book``.
    book_view: type = None

    def __init__(self, symbols: Iterable[str] | None = None, tick_size: float = 0.01, lot_size: float = 1,
                 marketdata=True, journal=None, fsync: str = "batch", fsync_ms: float | None = None, **spec):
        self._specs: list[dict] = []
        self._perf = None
        self._event_clock = _EventClock()
        self.clock = self._event_clock      # replaceable: any callable returning int nanoseconds
        self.marketdata = None
        if marketdata:
            from lob.marketdata import MarketData

            self.marketdata = MarketData(self, **(marketdata if isinstance(marketdata, dict) else {}))
        if isinstance(symbols, str):
            raise ConfigError(f"symbols must be a list of names, got the string {symbols!r}")
        self.journal = None
        for name in symbols or ():
            self.add_symbol(name, tick_size=tick_size, lot_size=lot_size, **spec)
        if journal is not None:
            journal_provider().create(self, journal, fsync=fsync, fsync_ms=fsync_ms)

    # --- configuration --------------------------------------------------------------------------
    def add_symbol(self, name: str, tick_size: float = 0.01, lot_size: float = 1, *, min_qty=None, max_qty=None,
                   price_band=None, ref_price=None, market_band=None, stp: str = "none",
                   modify_priority: str = "standard") -> None:
        """List a symbol with its rules.

        Parameters
        ----------
        name : str
            Symbol name, unique on this exchange.
        tick_size, lot_size : float
            Price and quantity increments; prices and quantities off these grids are rejected.
        min_qty, max_qty : float, optional
            Bounds of an order's quantity (``invalid_qty`` outside).
        price_band : float, optional
            Fraction (0.10 = 10%) around the reference price (the last trade, else ``ref_price``) outside
            which limit prices are rejected with ``price_band``.
        ref_price : float, optional
            Reference price for the band before the first trade.
        market_band : float, optional
            Market-order protection: a market order sweeps at most this far (in price) from the touch.
        stp : {"none", "cancel_newest", "cancel_oldest", "cancel_both", "decrement"}
            Self-trade prevention between orders of the same owner.
        modify_priority : {"standard", "always_lose"}
            "standard": quantity down at the same price keeps priority, anything else loses it.
        """
        if not isinstance(name, str) or not name:
            raise ConfigError(f"symbol name must be a non-empty string, got {name!r}")
        if name in self.symbols:
            raise ConfigError(f"symbol {name!r} is already listed")
        tick = _positive("tick_size", tick_size)
        lot = _positive("lot_size", lot_size)
        if stp not in STP_NAMES:
            raise ConfigError(f"stp must be one of {sorted(STP_NAMES)}, got {stp!r}")
        if modify_priority not in MODIFY_POLICY_NAMES:
            raise ConfigError(f"modify_priority must be one of {sorted(MODIFY_POLICY_NAMES)}, got {modify_priority!r}")

        def lots(field, v, default):
            if v is None:
                return default
            _positive(field, v)
            return to_units(v, lot, field, "lot_size")

        def ticks(field, v):
            if v is None:
                return 0
            _positive(field, v)
            return to_units(v, tick, field)

        band_bps = 0
        if price_band is not None:
            band = _positive("price_band", price_band)
            band_bps = int(round(band * 10000))
            if band_bps < 1:
                raise ConfigError(f"price_band must be at least 0.0001 (1 bp), got {price_band!r}")
        lo = lots("min_qty", min_qty, 1)
        hi = lots("max_qty", max_qty, 0)
        if hi and hi < lo:
            raise ConfigError(f"max_qty {max_qty!r} is below min_qty {min_qty!r}")
        info = self._add_info(name, tick, lot)
        self._engine.set_spec(info.index, lo, hi, band_bps, ticks("ref_price", ref_price),
                              ticks("market_band", market_band), STP_NAMES[stp], MODIFY_POLICY_NAMES[modify_priority])
        spec = dict(name=name, tick_size=tick_size, lot_size=lot_size, min_qty=min_qty, max_qty=max_qty,
                    price_band=price_band, ref_price=ref_price, market_band=market_band, stp=stp,
                    modify_priority=modify_priority)
        self._specs.append(spec)
        if getattr(self, "journal", None) is not None:
            self.journal.write_spec(spec)

    @property
    def symbols(self) -> list[str]:
        """Listed symbol names, in index order."""
        return [i.name for i in self._infos]

    def symbol_index(self, symbol: str) -> int:
        """Index of a symbol (the ``symbol`` field of event, report and fill arrays)."""
        return self.info(symbol).index

    def specs(self) -> list[dict]:
        """The symbol specs, as keyword dicts accepted by :meth:`add_symbol` (``name`` included)."""
        return [dict(s) for s in self._specs]

    def owners(self) -> dict[str, int]:
        """Registered owner names and their integer ids."""
        return {n: i for i, n in enumerate(self._owner_names) if n is not None}

    def to_ticks(self, symbol, price: float) -> int:
        """Price -> integer ticks of a symbol (multiples of ``tick_size`` only: :func:`lob.units.to_units`)."""
        info = self.info(symbol)
        _positive("price", price)
        return to_units(price, info.tick_size, "price")

    def to_price(self, symbol, ticks: int) -> float:
        """Integer ticks -> price of a symbol."""
        return self.info(symbol).price(int(ticks))

    # --- books ----------------------------------------------------------------------------------
    def book(self, symbol) -> "Book":
        """The :class:`lob.Book` view of one symbol (live: it reads the engine on every call)."""
        return self.book_view._view(self, self.info(symbol))

    # --- journal: the journal port (lob.ports) ----------------------------------------------------
    def attach_journal(self, port, *, stage: bool = False, stage_limit: int = 256, stage_bytes: int = 4 << 20):
        """Attach a write-ahead journal (a :class:`lob.ports.JournalPort`, such as :class:`lob.journal.Journal`,
        which attaches itself); return its :class:`lob.ports.JournalLink`. It becomes :attr:`journal`.

        The exchange calls ``port.write_input(events)`` before the engine sees a request and
        ``port.write_outputs(events, reports, fills)`` after it; with ``stage=True`` per-call requests are
        staged in C instead and ``port.stage_full()`` is called every ``stage_limit`` requests (or
        ``stage_bytes`` bytes). See :mod:`lob.ports`.
        """
        link = ExchangeCore.attach_journal(self, port, stage=stage, stage_limit=stage_limit,
                                           stage_bytes=stage_bytes)
        self.journal = port
        return link

    @classmethod
    def open(cls, path, fsync: str = "batch", **journal_kwargs) -> "Exchange":
        """Recover an exchange from its journal directory (latest snapshot + journal tail; a torn tail
        is truncated with a warning) and keep journaling to it."""
        return journal_provider().open(path, fsync=fsync, **journal_kwargs)

    def at(self, seq: int) -> "Exchange":
        """The exchange as it was after sequence number ``seq`` (time travel over the journal)."""
        if self.journal is None:
            raise LobStateError("time travel needs a journal: create the exchange with journal=PATH")
        return journal_provider().at(self, seq)

    def fork(self, journal=None, fsync: str = "batch") -> "Exchange":
        """An independent copy of the current state; the original and its journal are untouched."""
        new = journal_provider().fork(self, journal=journal, fsync=fsync)
        if self.clock is self._event_clock:     # the copy keeps its own event clock, at the same time
            new._event_clock.ts_ns = self._event_clock.ts_ns
            new.clock = new._event_clock
        return new

    def snapshot(self):
        """Write a whole-exchange snapshot to the journal now; return its path."""
        if self.journal is None:
            raise LobStateError("snapshots are written to a journal: create the exchange with journal=PATH")
        return self.journal.snapshot()

    def close(self) -> None:
        """Commit and close the journal, if any."""
        if self.journal is not None:
            self.journal.close()

    @property
    def next_order_id(self) -> int:
        """The id the exchange assigns to the next order submitted without one."""
        return self._engine.next_auto_id

    def order_record(self, symbol, order_id: int):
        """The ``ORDER_DTYPE`` record of a live order (resting or a pending stop) of a symbol, or None."""
        if isinstance(order_id, bool) or not isinstance(order_id, (int, np.integer)):
            raise ConfigError(f"order_id must be an int, got {order_id!r}")
        if not 0 < order_id < 2 ** 64:
            return None
        return self._engine.order(self._index(symbol), int(order_id))

    def snapshot_state(self) -> dict:
        """The whole venue's state as plain data, for :meth:`restore_state` (the journal's snapshots).

        Returns ``seq``, ``next_auto_id``, ``specs`` (:meth:`specs`), ``owners`` (owner names in id order from
        1), and per symbol in index order ``last_price`` (ticks), ``halted``, ``consistency_errors`` and
        ``orders`` (the live orders and pending stops, ``ORDER_DTYPE`` arrays in priority order).
        """
        eng, n = self._engine, len(self._infos)
        return dict(seq=int(eng.seq), next_auto_id=int(eng.next_auto_id), specs=self.specs(),
                    owners=list(self._owner_names[1:]), last_price=[int(eng.last_price(i)) for i in range(n)],
                    halted=[bool(eng.halted(i)) for i in range(n)],
                    consistency_errors=[int(eng.consistency_errors(i)) for i in range(n)],
                    orders=[eng.orders(i, True) for i in range(n)])

    def restore_state(self, state: dict) -> None:
        """Replace every book and the counters with a :meth:`snapshot_state` (this exchange must list the same
        symbols; owners missing here are registered, in id order). Nothing is journaled or sent to listeners."""
        n = len(self._infos)
        names = [s["name"] for s in state["specs"]]
        if names != self.symbols:
            raise ConfigError(f"state lists symbols {names}, this exchange {self.symbols}")
        for k, name in enumerate(state["owners"], start=1):
            if self.owner_id(name) != k:
                raise ConfigError(f"owner {name!r} of the state is id {k} there, {self.owner_id(name)} here")
        eng = self._engine
        errors = state.get("consistency_errors") or [0] * n
        for i in range(n):
            eng.clear(i)
            eng.restore_orders(i, np.ascontiguousarray(state["orders"][i]), state["last_price"][i])
            if state["halted"][i]:
                self.halt(i)
            eng.set_consistency_errors(i, errors[i])
        eng.set_counters(state["seq"], state["next_auto_id"])

    # --- performance ----------------------------------------------------------------------------
    @property
    def perf(self):
        """The :class:`lob.perf.PerfAnalyzer` of this exchange (created, and timing, on first use)."""
        if self._perf is None:
            from lob.perf import PerfAnalyzer

            PerfAnalyzer(self)
        return self._perf

    def attach_perf(self, analyzer, ring) -> None:
        """Attach a performance analyzer (:class:`lob.perf.PerfAnalyzer` calls this): the per-call path samples
        its stage latencies into ``ring`` (a ``lob.perf._latency.LatencyRing``) and ``apply`` reports its
        batches to ``analyzer.record_batch``; it becomes :attr:`perf`."""
        self._latency = ring
        self._perf = analyzer

    # --- market data ----------------------------------------------------------------------------
    def _md(self):
        if self.marketdata is None:
            raise LobStateError("this exchange records no market data: create it with marketdata=True")
        return self.marketdata

    def trades(self, symbol, limit: int | None = None):
        """The rolling trade tape of a symbol as a DataFrame (see :class:`lob.marketdata.MarketData`)."""
        return self._md().trades(symbol, limit)

    def bars(self, symbol, freq: str = "1min"):
        """OHLCV bars of a symbol at any pandas offset."""
        return self._md().bars(symbol, freq)

    def l2_snapshots(self, symbol):
        """Level-2 snapshots of a symbol taken on the event clock."""
        return self._md().l2_snapshots(symbol)

    # --- batch ----------------------------------------------------------------------------------
    def apply(self, events: np.ndarray):
        """Apply a batch of events in order; return ``(reports, fills)`` structured arrays.

        A malformed batch raises ``InvalidEventError`` and changes nothing. Every request yields one
        report (and side effects such as triggered stops or STP cancels yield more), in sequence order.
        """
        perf = self._perf
        t0 = time.perf_counter_ns() if perf is not None else 0
        check_events(events, self._engine)
        if self.intake_error is not None:
            raise LobStateError(f"order intake is stopped: {self.intake_error}")
        if len(events) and events["ts_ns"][-1] > 0:     # untimed batches (all 0) leave the clock alone
            self._event_clock.ts_ns = int(events["ts_ns"][-1])
        port = self.journal_port
        if port is not None:
            if len(events) >= _PIPELINE_CHUNK and port.begin_pipeline():
                return self._apply_pipelined(events, port, t0)
            try:
                port.write_input(events)
            except Exception as e:      # fail closed: nothing unjournaled reaches the book
                self._stop_intake(f"journal write failed: {type(e).__name__}: {e}")
                raise LobStateError(f"order intake is stopped: {self.intake_error}") from e
        t1 = time.perf_counter_ns() if perf is not None else 0
        reports, fills = self._engine.apply(events)
        t2 = time.perf_counter_ns() if perf is not None else 0
        if port is not None:
            port.write_outputs(events, reports, fills)
        for fn in self._listeners:
            fn(events, reports, fills)
        if perf is not None:
            perf.record_batch(t1 - t0, t2 - t1, time.perf_counter_ns() - t2, len(events))
        return reports, fills

    def _apply_pipelined(self, events, port, t0):
        # the validated batch as consecutive chunks, each journaled (input before, outputs after) and handed
        # to the listeners as if applied on its own; the caller gets the outputs of the whole batch. The port
        # has begun its pipeline (begin_pipeline); end_pipeline ends it, draining the writer on success.
        perf = self._perf
        reps, fills, match_ns, applied = [], [], 0, 0
        ended = False
        try:
            for i in range(0, len(events), _PIPELINE_CHUNK):
                chunk = events[i:i + _PIPELINE_CHUNK]
                port.write_input(chunk)
                t1 = time.perf_counter_ns()
                r, f = self._engine.apply(chunk)
                match_ns += time.perf_counter_ns() - t1
                applied = i + len(chunk)
                port.write_outputs(chunk, r, f)
                for fn in self._listeners:
                    fn(chunk, r, f)
                reps.append(r)
                fills.append(f)
            ended = True
            port.end_pipeline(True)     # the chunks' inputs are the caller's array: written before returning
        except (OSError, JournalError) as e:
            # fail closed: a journal write failed (the writer thread meets it while the engine matches); the
            # chunks matched by then stand (the "batch" loss window), nothing after them is taken
            self._stop_intake(f"journal write failed: {type(e).__name__}: {e}")
            raise LobStateError(f"order intake is stopped: {self.intake_error} (events 0 to {applied - 1} "
                                f"of this batch were applied, the rest were not)") from e
        finally:
            if not ended:
                port.end_pipeline(False)
        # joined as raw bytes: numpy copies structured arrays field by field, several times slower
        reports = np.concatenate([r.view(np.uint8) for r in reps]).view(reps[0].dtype)
        fills_all = np.concatenate([f.view(np.uint8) for f in fills]).view(fills[0].dtype)
        # event_index counts rows of the caller's batch, not of the chunk
        a = 0
        for k, r in enumerate(reps):
            if k:
                reports["event_index"][a:a + len(r)] += k * _PIPELINE_CHUNK
            a += len(r)
        if perf is not None:
            total = time.perf_counter_ns() - t0
            perf.record_batch(0, match_ns, total - match_ns, len(events))
        return reports, fills_all

    # --- session control ------------------------------------------------------------------------
    def session_end(self, symbol=None, ts_ns=None) -> list:
        """Expire DAY orders of one symbol (or all); return their reports."""
        targets = [symbol] if symbol is not None else self.symbols
        out = []
        for s in targets:
            out.extend(self._control(s, Action.SESSION_END, ts_ns))
        return out

    def halt(self, symbol, ts_ns=None) -> None:
        """Stop accepting new orders and modifies for a symbol (cancels still work)."""
        self._control(symbol, Action.HALT, ts_ns)

    def resume(self, symbol, ts_ns=None) -> None:
        """End a halt."""
        self._control(symbol, Action.RESUME, ts_ns)

    # --- replay mode ----------------------------------------------------------------------------
    def replay_add(self, symbol, side, qty, price, order_id=None, owner=None, ts_ns=None):
        """Replay mode: rest an order from a recorded feed as given, without matching.

        It goes to the back of its price level with the given ``order_id`` (None: the engine assigns one).
        An add that would cross the book (or an id already live) is a consistency error: the report is
        ``rejected`` with ``replay_crossed`` (``duplicate_order_id``), it is counted in
        :meth:`consistency_errors`, and the book stays as it was. See docs/matching.md, "Replay mode".

        Examples
        --------
        >>> ex = Exchange(symbols=["X"], marketdata=False)
        >>> ex.replay_add("X", "sell", 100, 150.00, order_id=7).status
        'new'
        >>> ex.replay_add("X", "buy", 10, 150.00, order_id=8).reason
        'replay_crossed'
        >>> ex.consistency_errors("X")
        1
        """
        return self._replay_request(symbol, Action.REPLAY_ADD, order_id, qty, price, side=side, owner=owner,
                                    ts_ns=ts_ns)

    def replay_execute(self, symbol, order_id, qty, price=None, level: bool = False, ts_ns=None):
        """Replay mode: ``qty`` of a resting order was executed; it leaves the book as given (no trade is
        printed, the last price does not move, no stop triggers).

        ``price`` (optional) must be the order's price. An unknown id, more than the order's open quantity or
        another price is a consistency error (``unknown_order``, ``replay_oversized``,
        ``replay_price_mismatch``): counted, the book unchanged. With ``level=True`` an id the book does not
        hold is executed at the level at ``price`` instead (queue front first), for feeds that show
        executions of orders they never added (a window of the book, a late start).

        Examples
        --------
        >>> ex = Exchange(symbols=["X"], marketdata=False)
        >>> _ = ex.replay_add("X", "sell", 100, 150.00, order_id=7)
        >>> r = ex.replay_execute("X", 7, 40); (r.status, r.remaining_qty)
        ('partially_filled', 60)
        >>> ex.replay_execute("X", 99, 10, price=150.00, level=True).status
        'filled'
        >>> ex.book("X").best_ask()
        (150.0, 50)
        """
        return self._replay_request(symbol, Action.REPLAY_EXECUTE, order_id, qty, price, level=level, ts_ns=ts_ns)

    def replay_delete(self, symbol, order_id, qty=None, ts_ns=None):
        """Replay mode: take ``qty`` off a resting order (None: all of it), keeping its priority.

        An unknown id or more than the open quantity is a consistency error (counted, book unchanged).
        """
        return self._replay_request(symbol, Action.REPLAY_DELETE, order_id, qty, None, ts_ns=ts_ns)

    def consistency_errors(self, symbol=None) -> int:
        """Replay events rejected as inconsistent with the book, for one symbol or all of them."""
        infos = [self.info(symbol)] if symbol is not None else self._infos
        return sum(self._engine.consistency_errors(i.index) for i in infos)

    # --- integer book reads: the venue's read port (lob.Book, feeds, agents and scorecards read through it) --
    # ``symbol`` is a name or an index (see :meth:`info`); prices are ticks, quantities lots, 0 means none
    def _index(self, symbol) -> int:
        if isinstance(symbol, (int, np.integer)) and not isinstance(symbol, bool) and 0 <= symbol < len(self._infos):
            return int(symbol)
        return self.info(symbol).index

    def best_ticks(self, symbol) -> tuple[int, int]:
        """``(bid, ask)`` best prices of a symbol in ticks, 0 for an empty side."""
        return self._engine.best_prices(self._index(symbol))

    def last_ticks(self, symbol) -> int:
        """Price of a symbol's last trade in ticks, 0 before the first trade."""
        return self._engine.last_price(self._index(symbol))

    def depth_array(self, symbol, side: int, n: int) -> np.ndarray:
        """The best ``n`` levels of one side (0 buy, 1 sell) as an int64 array of rows
        ``(price_ticks, displayed_lots, n_orders, total_lots)``, best first."""
        return self._engine.depth(self._index(symbol), side, n)

    def order_records(self, symbol, include_stops: bool = True) -> np.ndarray:
        """The resting (and, with ``include_stops``, pending stop) orders of a symbol as ``ORDER_DTYPE`` records."""
        return self._engine.orders(self._index(symbol), include_stops)

    def queue_lots(self, symbol, order_id: int):
        """``(orders ahead, displayed lots ahead)`` of a resting order at its level, or None."""
        return self._engine.queue_position(self._index(symbol), order_id)

    def book_stats(self, symbol) -> dict:
        """Counts and allocated bytes of one symbol's book (``resting_orders``, ...)."""
        return self._engine.stats(self._index(symbol))

    def book_hash(self, symbol) -> int:
        """64-bit hash of one symbol's book state (orders, levels, last price)."""
        return self._engine.state_hash(self._index(symbol))

    def check_book(self, symbol) -> None:
        """Raise ``BookIntegrityError`` if an invariant of one symbol's book is broken."""
        self._engine.check_integrity(self._index(symbol))

    def set_md_port(self, recorder, port) -> None:
        """Attach a market-data recorder's C port: the engine feeds it as it matches (``lob.marketdata``)."""
        self._engine.set_md_port(recorder, port)

    # --- listeners ------------------------------------------------------------------------------
    def add_listener(self, fn: Callable[[np.ndarray, np.ndarray, np.ndarray], None]) -> None:
        """Call ``fn(events, reports, fills)`` after every batch and every per-call request."""
        if not callable(fn):
            raise ConfigError(f"listener must be callable, got {fn!r}")
        self._listeners.append(fn)

    def remove_listener(self, fn) -> None:
        """Stop calling a listener added with :meth:`add_listener`."""
        self._listeners.remove(fn)

    # --- state ----------------------------------------------------------------------------------
    def state_hash(self) -> str:
        """Hex digest of the whole venue: every book, the sequence counter and the next assigned id."""
        h = 14695981039346656037
        for i in range(len(self._infos)):
            h = (h ^ self._engine.state_hash(i)) * 1099511628211 % 2 ** 64
        h = (h ^ self._engine.seq) * 1099511628211 % 2 ** 64
        h = (h ^ self._engine.next_auto_id) * 1099511628211 % 2 ** 64
        return f"{h:016x}"

    def check_integrity(self) -> None:
        """Raise ``BookIntegrityError`` if an invariant of any book is broken."""
        for i in range(len(self._infos)):
            self._engine.check_integrity(i)

    def __repr__(self) -> str:
        return f"Exchange(symbols={self.symbols}, seq={self.seq})"

    def _repr_html_(self) -> str:
        rows = []
        for info in self._infos:
            bid, ask = self._engine.best_prices(info.index)
            last = self._engine.last_price(info.index)
            fmt = lambda t: f"{info.price(t):.{info.price_decimals}f}" if t else "-"
            rows.append(f"<tr><td><b>{info.name}</b></td><td>{fmt(bid)}</td><td>{fmt(ask)}</td><td>{fmt(last)}</td>"
                        f"<td>{self._engine.stats(info.index)['resting_orders']}</td></tr>")
        table = ("<table><tr><th>symbol</th><th>bid</th><th>ask</th><th>last</th><th>orders</th></tr>"
                 + "".join(rows) + "</table>")
        ladders = "".join(f"<div style='display:inline-block;vertical-align:top;margin-right:12px'>"
                          f"{self.book(i.name)._repr_html_(5)}</div>" for i in self._infos[:4])
        return f"<div><b>Exchange</b> seq {self.seq}{table}{ladders}</div>"
