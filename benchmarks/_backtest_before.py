"""The Backtest of lob before issue #13 (commit 690008a, lob/replay/backtest.py), unchanged below this docstring:
the yardstick of benchmarks/bench_backtest.py (the Python strategy protocol must run at least 3x faster than
this on the same backtest). Not part of the package."""
from __future__ import annotations

import gzip
import heapq
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

import lob
from lob.errors import ConfigError, ReplayFormatError

__all__ = ["Backtest", "BacktestResult", "Fees", "Intent", "lobster_events", "SEED_ID_BASE"]

SEED_ID_BASE = 1 << 60          # ids of the orders that seed the book from an orderbook snapshot
STRATEGY_OWNER = "strategy"


# ------------------------------------------------------------------------------------------------
# LOBSTER -> events
# ------------------------------------------------------------------------------------------------
def _open(path):
    return gzip.open(path, "rt") if str(path).endswith(".gz") else open(path)


def _seed_id(side: int, price_ticks: int) -> int:
    return SEED_ID_BASE + (side << 40) + int(price_ticks)


def lobster_events(message_file, orderbook_file, tick: int = 100, max_rows: int | None = None):
    """Convert a LOBSTER day into backtest events (``lob.EVENT_DTYPE``, historical owner 0).

    The book is seeded from orderbook row 0 (one order per displayed level), message 0 is skipped (row 0
    already contains it), submissions become ADDs, partial cancels REDUCEs, deletions CANCELs (or, for an
    order the file never showed, a REDUCE of the seed order at its level), visible executions
    immediate-or-cancel aggressors of the opposite side, halts HALT/RESUME. Hidden executions and cross
    trades (types 5, 6) do not change the book and are returned separately as ``trades``.

    Parameters
    ----------
    message_file, orderbook_file : path
        The LOBSTER pair (plain CSV or .gz).
    tick : int
        LOBSTER price units (dollars x 10000) per tick; 100 gives ticks of $0.01.
    max_rows : int, optional
        Read only the first rows (for quick runs).

    Returns
    -------
    events : ndarray of EVENT_DTYPE
    trades : DataFrame of hidden/cross trades (ts_ns, price_ticks, qty_lots)
    """
    cols = ["time", "type", "order_id", "size", "price", "direction"]
    try:
        msg = pd.read_csv(message_file, header=None, usecols=range(6), names=cols, nrows=max_rows,
                          dtype={"time": np.float64, "type": np.int64, "order_id": np.int64, "size": np.int64,
                                 "price": np.int64, "direction": np.int64})
        book0 = pd.read_csv(orderbook_file, header=None, nrows=1).to_numpy(np.int64)[0]
    except (ValueError, pd.errors.ParserError) as e:
        raise ReplayFormatError(f"{message_file}: not a LOBSTER message/orderbook pair ({e})") from None
    if len(msg) == 0:
        raise ReplayFormatError(f"{message_file}: no rows")
    bad = ~msg["type"].isin([1, 2, 3, 4, 5, 6, 7])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ReplayFormatError(f"{message_file} row {i}: field 'type' must be 1..7, got {msg['type'][i]}")
    t = msg["time"].to_numpy()
    ts = np.round(t * 1e9).astype(np.int64)
    typ = msg["type"].to_numpy()
    oid = msg["order_id"].to_numpy()
    size = msg["size"].to_numpy()
    price = msg["price"].to_numpy()
    side = np.where(msg["direction"].to_numpy() == 1, 0, 1).astype(np.uint8)
    off = price % tick != 0
    if (off & (typ <= 4)).any():
        i = int(np.flatnonzero(off & (typ <= 4))[0])
        raise ReplayFormatError(f"{message_file} row {i}: field 'price' {price[i]} is not a multiple of tick {tick}")
    pt = price // tick

    levels = len(book0) // 4
    seeds = []
    for lvl in range(levels):
        ap, asz, bp, bsz = book0[4 * lvl:4 * lvl + 4]
        if asz > 0 and ap < 9999999999:
            seeds.append((1, ap // tick, asz))
        if bsz > 0 and bp > -9999999999:
            seeds.append((0, bp // tick, bsz))
    ev = lob.empty_events(len(seeds) + len(msg) - 1)
    for i, (s, p, q) in enumerate(seeds):
        ev[i] = (ts[0], _seed_id(s, p), 0, p, q, 0, 0, 0, lob.Action.ADD, s, 0, 0, 0, 0)
    body = ev[len(seeds):]
    sl = slice(1, None)                              # message 0 is already in orderbook row 0
    typ, oid, size, pt, side, ts = typ[sl], oid[sl], size[sl], pt[sl], side[sl], ts[sl]
    # ids the file itself submitted before each row: the others rest from before the window or outside it
    first_seen = {}
    for i in np.flatnonzero(typ == 1):
        first_seen.setdefault(int(oid[i]), int(i))
    seen = np.array([first_seen.get(int(o), len(typ)) < i for i, o in enumerate(oid)], dtype=bool)
    seed_ids = SEED_ID_BASE + (side.astype(np.int64) << 40) + pt

    body["ts_ns"] = ts
    body["side"] = side
    body["price_ticks"] = pt
    body["qty_lots"] = size
    body["order_id"] = oid
    a = body["action"]
    a[typ == 1] = lob.Action.ADD
    a[typ == 2] = lob.Action.REDUCE
    a[(typ == 3) & seen] = lob.Action.CANCEL
    unseen_delete = (typ == 3) & ~seen
    a[unseen_delete | ((typ == 2) & ~seen)] = lob.Action.REDUCE
    body["order_id"] = np.where(((typ == 2) | (typ == 3)) & ~seen, seed_ids, oid)
    ex_rows = typ == 4
    a[ex_rows] = lob.Action.ADD
    body["side"][ex_rows] = 1 - side[ex_rows]        # the aggressor is the opposite side
    body["tif"][ex_rows] = lob.TIF.IOC
    body["order_id"][ex_rows] = 0                     # engine-assigned
    halt = typ == 7
    a[halt] = np.where(price[sl][halt] == -1, lob.Action.HALT, lob.Action.RESUME)
    prints = (typ == 5) | (typ == 6)
    trades = pd.DataFrame({"ts_ns": ts[prints], "price_ticks": pt[prints], "qty_lots": size[prints]})
    keep = np.concatenate([np.ones(len(seeds), bool), ~prints])
    return np.ascontiguousarray(ev[keep]), trades


# ------------------------------------------------------------------------------------------------
# Strategy interface
# ------------------------------------------------------------------------------------------------
@dataclass
class Intent:
    """What a strategy asks for: ``submit`` a new order, ``cancel`` or ``modify`` one of its orders."""
    action: str                     # "submit" | "cancel" | "modify"
    side: str | None = None         # "buy" | "sell"
    qty: float | None = None
    price: float | None = None      # None: market order
    order_id: int | None = None     # cancel/modify target; for submit, an id of the strategy's choosing
    tif: str = "gtc"
    post_only: bool = False
    tag: str = ""


def _as_intent(x) -> Intent:
    if isinstance(x, Intent):
        return x
    if isinstance(x, dict):
        return Intent(**x)
    fields = {k: getattr(x, k) for k in Intent.__dataclass_fields__ if hasattr(x, k)}
    if "action" not in fields:
        kind = getattr(x, "kind", None) or type(x).__name__.lower()
        fields["action"] = {"submitintent": "submit", "cancelintent": "cancel", "modifyintent": "modify",
                            "new": "submit", "place": "submit"}.get(kind, kind)
    return Intent(**fields)


@dataclass
class Fees:
    """Maker and taker fees in basis points of notional; a negative maker fee is a rebate."""
    maker_bps: float = 0.0
    taker_bps: float = 0.0

    def fee(self, notional: float, maker: bool) -> float:
        return notional * (self.maker_bps if maker else self.taker_bps) / 10_000


@dataclass
class BacktestResult:
    """DataFrames of a run: the strategy's orders, fills (with queue position), positions and PnL."""
    orders: pd.DataFrame
    fills: pd.DataFrame
    positions: pd.DataFrame
    pnl: pd.DataFrame
    summary: dict = field(default_factory=dict)

    def _repr_html_(self):
        rows = "".join(f"<tr><td>{k}</td><td>{v:,.4g}</td></tr>" if isinstance(v, float) else
                       f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in self.summary.items())
        return f"<div><b>Backtest</b><table>{rows}</table></div>"


class _Ctx:
    """What a strategy sees: the book, the clock, its position and open orders."""

    def __init__(self, bt: "Backtest"):
        self._bt = bt

    @property
    def book(self):
        return self._bt.exchange.book(self._bt.symbol)

    @property
    def ts_ns(self) -> int:
        return self._bt._now

    @property
    def position(self) -> float:
        return self._bt._position * self._bt._lot

    @property
    def open_orders(self) -> dict:
        return {oid: dict(o) for oid, o in self._bt._open.items()}


# ------------------------------------------------------------------------------------------------
# The backtest
# ------------------------------------------------------------------------------------------------
class Backtest:
    """Replay history and a strategy's orders through one matching engine.

    Parameters
    ----------
    strategy : object
        Has any of ``on_start(ctx)``, ``on_book(ctx)``, ``on_trade(ctx, trade)``, ``on_fill(ctx, fill)``;
        each may return an iterable of intents (:class:`Intent`, dicts with its fields, or objects with
        those attributes).
    data : ndarray of EVENT_DTYPE, iterable of such chunks, or a (message_file, orderbook_file) pair
        Historical events, owner 0, in time order.
    latency : int, dict, or callable
        Nanoseconds from decision to arrival at the venue: a constant; a dict per intent action
        (``{"submit": ..., "cancel": ..., "modify": ...}``); or ``callable(rng, action) -> ns`` to sample
        from a distribution with the run's seeded generator.
    impact : {"full", "consume", "off"}
        See the module docstring.
    fees : Fees or dict, optional
    step_ns : int
        The strategy's ``on_book`` is called at most once per ``step_ns`` of event time.
    symbol, tick_size, lot_size : the instrument.
    seed : int
        Seeds the latency generator.
    progress : bool, optional
        A tqdm progress bar (default: on for more than 200,000 events).
    """

    def __init__(self, strategy, data, latency=0, impact: str = "full", fees=None, step_ns: int = 100_000_000,
                 symbol: str = "GOOG", tick_size: float = 0.01, lot_size: float = 1, seed: int = 0,
                 progress: bool | None = None, chunk: int = 65_536):
        if impact not in ("full", "consume", "off"):
            raise ConfigError(f"impact must be 'full', 'consume' or 'off', got {impact!r}")
        if isinstance(fees, dict):
            fees = Fees(**fees)
        if fees is not None and not isinstance(fees, Fees):
            raise ConfigError(f"fees must be a Fees or a dict of maker_bps/taker_bps, got {fees!r}")
        if not (isinstance(step_ns, int) and step_ns > 0):
            raise ConfigError(f"step_ns must be a positive int, got {step_ns!r}")
        self.strategy = strategy
        self.impact = impact
        self.fees = fees or Fees()
        self.step_ns = step_ns
        self.symbol = symbol
        self.progress = progress
        self.chunk = chunk
        self.rng = np.random.default_rng(seed)
        self._latency = self._latency_fn(latency)
        self._data = data
        self.exchange = lob.Exchange(marketdata=False)
        self.exchange.add_symbol(symbol, tick_size=tick_size, lot_size=lot_size)
        self._sym = self.exchange.symbol_index(symbol)
        self._owner = self.exchange.owner_id(STRATEGY_OWNER)
        self._lot = lot_size
        self._tick = tick_size

    def _latency_fn(self, latency) -> Callable[[str], int]:
        if callable(latency):
            return lambda action: int(latency(self.rng, action))
        if isinstance(latency, dict):
            bad = set(latency) - {"submit", "cancel", "modify"}
            if bad:
                raise ConfigError(f"latency keys must be submit/cancel/modify, got {sorted(bad)}")
            return lambda action: int(latency.get(action, 0))
        if isinstance(latency, (int, np.integer)) and latency >= 0:
            return lambda action: int(latency)
        raise ConfigError(f"latency must be ns >= 0, a dict per action or a callable, got {latency!r}")

    # --- data -----------------------------------------------------------------------------------
    def _chunks(self):
        data = self._data
        if isinstance(data, tuple) and len(data) == 2:
            data, _ = lobster_events(*data)
        if isinstance(data, np.ndarray):
            if data.dtype != lob.EVENT_DTYPE:
                raise ConfigError(f"data must hold lob.EVENT_DTYPE events, got {data.dtype}")
            for i in range(0, len(data), self.chunk):
                yield np.ascontiguousarray(data[i:i + self.chunk])
        else:
            for c in data:
                yield np.ascontiguousarray(c)

    # --- the run --------------------------------------------------------------------------------
    def run(self) -> BacktestResult:
        """Run to the end of the data; return the result DataFrames."""
        self._now = 0
        self._position = 0              # lots
        self._cash = 0.0                # in price units x lots x lot_size
        self._fees_paid = 0.0
        self._open: dict[int, dict] = {}     # strategy order id -> info (virtual or real)
        self._orders, self._fills, self._marks = [], [], []
        self._pending: list = []             # heap of (arrival_ts, seq, intent)
        self._n_pending = 0
        self._next_id = 1 << 50
        self._last_step = None
        ctx = self._ctx = _Ctx(self)
        self._call("on_start", ctx)
        bar = None
        total = None
        if isinstance(self._data, np.ndarray):
            total = len(self._data)
        use_bar = self.progress if self.progress is not None else (total or 0) > 200_000
        if use_bar:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, unit="ev", desc="backtest")
        for chunk in self._chunks():
            self._run_chunk(chunk)
            if bar is not None:
                bar.update(len(chunk))
        while self._pending:                 # intents still in flight at the end arrive after the last event
            ts, _, intent = heapq.heappop(self._pending)
            self._now = max(self._now, ts)
            self._send(intent)
        if bar is not None:
            bar.close()
        return self._result()

    def _run_chunk(self, chunk):
        # history up to each boundary (a strategy arrival or the end of a decision step) goes first,
        # then what arrives at the boundary, then the strategy decides at step ends
        ts = chunk["ts_ns"]
        n = len(chunk)
        start = 0
        if self._last_step is None:
            self._last_step = int(ts[0])
        while start < n:
            next_step = self._last_step + self.step_ns
            bound = min(next_step, self._pending[0][0]) if self._pending else next_step
            end = int(np.searchsorted(ts, bound, side="right"))
            if end > start:
                self._apply_history(chunk[start:end])
                start = end
            if end >= n and bound > int(ts[-1]):
                break                       # the boundary lies in a later chunk
            self._now = bound
            while self._pending and self._pending[0][0] <= bound:
                _, _, intent = heapq.heappop(self._pending)
                self._send(intent)
            if bound == next_step:
                self._last_step = next_step
                self._mark()
                self._call("on_book", self._ctx)
                if start < n and not self._pending and int(ts[start]) > next_step + self.step_ns:
                    # a quiet stretch (a halt, the lunch lull): skip the empty steps
                    self._last_step += (int(ts[start]) - next_step) // self.step_ns * self.step_ns

    def _apply_history(self, events):
        reports, fills = self.exchange.apply(events)
        if len(fills):
            mine = (fills["maker_owner"] == self._owner) | (fills["taker_owner"] == self._owner)
            for f in fills[mine]:
                self._on_real_fill(f)
            hist = fills[~mine]
            if len(hist):
                self._virtual_fills(hist)
                on_trade = getattr(self.strategy, "on_trade", None)
                if on_trade is not None:
                    self._now = int(hist["ts_ns"][-1])
                    for f in hist:
                        self._handle(on_trade(self._ctx, dict(price=f["price_ticks"] * self._tick,
                                                              qty=f["qty_lots"] * self._lot,
                                                              aggressor="buy" if f["aggressor"] == 0 else "sell",
                                                              ts_ns=int(f["ts_ns"]))))
        elif self._open and self.impact != "full":
            self._clip_virtual_queues()

    # --- strategy I/O ---------------------------------------------------------------------------
    def _call(self, name, *args):
        fn = getattr(self.strategy, name, None)
        if fn is not None:
            self._handle(fn(*args))

    def _handle(self, intents):
        if not intents:
            return
        for x in intents:
            intent = _as_intent(x)
            if intent.action not in ("submit", "cancel", "modify"):
                raise ConfigError(f"intent action must be submit/cancel/modify, got {intent.action!r}")
            if intent.action == "submit" and intent.order_id is None:
                intent.order_id = self._next_id
                self._next_id += 1
            arrival = self._now + self._latency(intent.action)
            self._n_pending += 1
            heapq.heappush(self._pending, (arrival, self._n_pending, intent))

    def _send(self, it: Intent):
        ex, sym = self.exchange, self.symbol
        if it.action == "cancel":
            o = self._open.pop(it.order_id, None)
            if o is not None and not o["virtual"]:
                ex.cancel(sym, it.order_id, owner=STRATEGY_OWNER, ts_ns=self._now)
            return
        if it.action == "modify":
            o = self._open.get(it.order_id)
            if o is None:
                return
            if not o["virtual"]:
                r = ex.modify(sym, it.order_id, qty=it.qty, price=it.price, owner=STRATEGY_OWNER, ts_ns=self._now)
                if r.status in ("filled", "cancelled", "rejected") and r.remaining_lots == 0:
                    self._open.pop(it.order_id, None)
                return
            self._open.pop(it.order_id)
            it = Intent("submit", o["side"], it.qty if it.qty is not None else o["qty"] * self._lot,
                        it.price if it.price is not None else o["price"] * self._tick, it.order_id, o["tif"])
        side = 0 if it.side == "buy" else 1
        record = dict(order_id=it.order_id, ts_ns=self._now, side=it.side, qty=it.qty, price=it.price,
                      tif=it.tif, tag=it.tag, status=None, queue_ahead_at_entry=None)
        self._orders.append(record)
        if self.impact == "off":
            self._virtual_submit(it, side, record)
            return
        if self.impact == "consume":
            # take what crosses for real, rest virtually
            r = ex.submit(sym, it.side, it.qty, price=it.price, type="market" if it.price is None else "limit",
                          tif="ioc", owner=STRATEGY_OWNER, order_id=it.order_id, ts_ns=self._now)
            for t in r.trades:
                self._book_fill(it.order_id, side, t.price_ticks, t.qty_lots, maker=False, queue_ahead=None,
                                ts=t.ts_ns)
            left = int(round(it.qty / self._lot)) - r.filled_lots if r.status != "rejected" else 0
            record["status"] = r.status
            if left > 0 and it.price is not None and it.tif not in ("ioc", "fok"):
                self._virtual_rest(it.order_id, side, ex.to_ticks(sym, it.price), left, it.tif, record)
            return
        r = ex.submit(sym, it.side, it.qty, price=it.price, type="market" if it.price is None else "limit",
                      tif=it.tif, owner=STRATEGY_OWNER, post_only=it.post_only, order_id=it.order_id,
                      ts_ns=self._now)
        record["status"] = r.status
        for t in r.trades:
            self._book_fill(it.order_id, side, t.price_ticks, t.qty_lots, maker=False, queue_ahead=None, ts=t.ts_ns)
        if r.remaining_lots > 0:
            q = ex._engine.queue_position(self._sym, it.order_id)
            record["queue_ahead_at_entry"] = q[1] if q else None
            self._open[it.order_id] = dict(virtual=False, side=side, price=r.price_ticks, qty=r.remaining_lots,
                                           tif=it.tif, queue_ahead=q[1] if q else 0)

    # --- fills ----------------------------------------------------------------------------------
    def _on_real_fill(self, f):
        maker = f["maker_owner"] == self._owner
        oid = int(f["maker_order_id"] if maker else f["taker_order_id"])
        side = (1 - int(f["aggressor"])) if maker else int(f["aggressor"])
        info = self._open.get(oid)
        if maker and info is not None:
            info["qty"] -= int(f["qty_lots"])
            if info["qty"] <= 0:
                self._open.pop(oid, None)
        self._book_fill(oid, side, int(f["price_ticks"]), int(f["qty_lots"]), maker=maker,
                        queue_ahead=0 if maker else None, ts=int(f["ts_ns"]))

    def _book_fill(self, oid, side, price_ticks, qty_lots, maker, queue_ahead, ts):
        sign = 1 if side == 0 else -1
        notional = price_ticks * self._tick * qty_lots * self._lot
        fee = self.fees.fee(notional, maker)
        self._position += sign * qty_lots
        self._cash -= sign * notional + fee
        self._fees_paid += fee
        fill = dict(ts_ns=ts, order_id=oid, side="buy" if side == 0 else "sell", price=price_ticks * self._tick,
                    qty=qty_lots * self._lot, maker=maker, fee=fee, queue_ahead_at_fill=queue_ahead,
                    position=self._position * self._lot)
        self._fills.append(fill)
        on_fill = getattr(self.strategy, "on_fill", None)
        if on_fill is not None:
            self._handle(on_fill(self._ctx, fill))

    # --- virtual orders (impact "off" / "consume") ----------------------------------------------
    def _virtual_submit(self, it: Intent, side: int, record: dict):
        book = self.exchange.book(self.symbol)
        qty = int(round(it.qty / self._lot))
        limit = None if it.price is None else self.exchange.to_ticks(self.symbol, it.price)
        levels = book.depth_ticks(1000)["asks" if side == 0 else "bids"]
        for p, q, _ in levels:                      # take displayed liquidity without removing it
            if qty == 0 or (limit is not None and (p > limit if side == 0 else p < limit)):
                break
            take = min(q, qty)
            self._book_fill(it.order_id, side, p, take, maker=False, queue_ahead=None, ts=self._now)
            qty -= take
        record["status"] = "filled" if qty == 0 else "new"
        if qty > 0 and limit is not None and it.tif not in ("ioc", "fok"):
            self._virtual_rest(it.order_id, side, limit, qty, it.tif, record)

    def _shown(self, side, price):
        lv = self.exchange._engine.level(self._sym, side, price)
        return lv[0] if lv else 0

    def _virtual_rest(self, oid, side, price, qty, tif, record):
        ahead = self._shown(side, price)
        record["queue_ahead_at_entry"] = ahead
        self._open[oid] = dict(virtual=True, side=side, price=price, qty=qty, tif=tif, queue_ahead=ahead)

    def _virtual_fills(self, hist_fills):
        if not self._open or self.impact == "full":
            return
        for f in hist_fills:
            p, q, aggr = int(f["price_ticks"]), int(f["qty_lots"]), int(f["aggressor"])
            for oid, o in list(self._open.items()):
                if not o["virtual"] or o["side"] == aggr:
                    continue
                better = p < o["price"] if o["side"] == 0 else p > o["price"]
                if better:
                    # a trade through the limit means the level at the limit is empty: nothing is ahead
                    o["queue_ahead"] = 0
                    take = min(o["qty"], q)
                elif p == o["price"]:
                    eat = min(o["queue_ahead"], q)
                    o["queue_ahead"] -= eat
                    take = min(o["qty"], q - eat)
                else:
                    continue
                if take > 0:
                    o["qty"] -= take
                    self._book_fill(oid, o["side"], o["price"], take, maker=True, queue_ahead=o["queue_ahead"],
                                    ts=int(f["ts_ns"]))
                    if o["qty"] == 0:
                        self._open.pop(oid, None)
        self._clip_virtual_queues()

    def _clip_virtual_queues(self):
        # cancels ahead of a virtual order move it up: what is ahead never exceeds what is displayed
        for o in self._open.values():
            if o["virtual"] and o["queue_ahead"] > 0:
                o["queue_ahead"] = min(o["queue_ahead"], self._shown(o["side"], o["price"]))

    # --- results --------------------------------------------------------------------------------
    def _mark(self):
        mid = self.exchange.book(self.symbol).mid()
        if mid is None:
            return
        pos = self._position * self._lot
        self._marks.append(dict(ts_ns=self._now, mid=mid, position=pos, cash=self._cash,
                                pnl=self._cash + pos * mid, fees=self._fees_paid))

    def _result(self) -> BacktestResult:
        self._mark()
        orders = pd.DataFrame(self._orders, columns=["order_id", "ts_ns", "side", "qty", "price", "tif", "tag",
                                                     "status", "queue_ahead_at_entry"])
        fills = pd.DataFrame(self._fills, columns=["ts_ns", "order_id", "side", "price", "qty", "maker", "fee",
                                                   "queue_ahead_at_fill", "position"])
        pnl = pd.DataFrame(self._marks, columns=["ts_ns", "mid", "position", "cash", "pnl", "fees"])
        positions = pnl[["ts_ns", "position"]].copy()
        final = pnl.iloc[-1] if len(pnl) else None
        summary = dict(impact=self.impact, orders=len(orders), fills=len(fills),
                       traded_qty=float(fills["qty"].sum()) if len(fills) else 0.0,
                       maker_fills=int(fills["maker"].sum()) if len(fills) else 0,
                       final_position=float(self._position * self._lot),
                       pnl=float(final["pnl"]) if final is not None else 0.0, fees=self._fees_paid)
        return BacktestResult(orders, fills, positions, pnl, summary)
