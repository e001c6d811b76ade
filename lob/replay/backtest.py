"""Backtests whose orders move the market: history and the strategy's orders through one engine.

``Backtest(strategy, data, latency=..., impact=..., fees=...)`` replays historical order-level events
through a ``lob.Exchange`` and inserts the strategy's orders into the same event stream at the time they
would arrive (decision time + latency). What the strategy's orders do to the market depends on ``impact``:

``"full"``
    Strategy orders are real orders in the same book. Its passive orders queue behind the historical orders
    that arrived first, and historical aggressors fill them when they reach the front; its aggressive orders
    take historical liquidity, which is then gone for everyone after.
``"consume"``
    The strategy's aggressive orders take liquidity for real (as in ``full``), but its passive orders are
    virtual: they never stand in the historical queues and fill from a queue-position estimate (below).
``"off"``
    Nothing the strategy does touches the book. Aggressive orders fill against the displayed depth at
    arrival without removing it; passive orders are virtual and fill from the estimate.

The queue-position estimate of a virtual passive order comes from ``queue_model`` (the protocol of
:mod:`lob.queue.models`; default :class:`~lob.queue.models.RiskAverseQueueModel`): the displayed quantity at
its price when it arrives is ahead of it; trades at its price consume the quantity ahead first, then the
order; changes of the displayed size move the estimate as the model says (risk-averse: it never exceeds what
is displayed); a trade at a better price than its limit fills it and leaves nothing ahead of it (its level
has emptied). ``notebooks/12_queue_position.ipynb`` scores the models against the L3 truth. The built-in
models run compiled in the step loop, without the GIL (``QueueModel.compiled()``), as does a compiled model of
one's own (a :class:`lob.queue._compiled.CompiledQueueModel`); any other model is called from the loop
(``new_order``, ``trade``, ``depth``) in the same order.

Historical aggressors: LOBSTER records executions as events on the resting order (type 4). To let history
meet the strategy's orders, an execution becomes an immediate-or-cancel order of the opposite side at the
execution price, which the engine matches in price-time order (``lobster_events``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

import lob
from lob.enums import TIF, Side, Status, names
from lob.errors import ConfigError
from lob.mm.base import OrderIntent

__all__ = ["Backtest", "BacktestResult", "Fees", "Intent", "NoDecisionWarning", "lobster_events", "SEED_ID_BASE"]

from lob.replay.lobster import LEVEL_SEED_BASE as SEED_ID_BASE   # ids of the orders seeding the book from row 0
STRATEGY_OWNER = "strategy"


class NoDecisionWarning(UserWarning):
    """A backtest ran without its strategy deciding once (no step of event time ended inside the data)."""


# ------------------------------------------------------------------------------------------------
# LOBSTER -> events
# ------------------------------------------------------------------------------------------------
def lobster_events(message_file, orderbook_file, tick: int = 100, max_rows: int | None = None):
    """Convert a LOBSTER day into backtest events (``lob.EVENT_DTYPE``, historical owner 0).

    The registry's LOBSTER reader (:func:`lob.replay.read` of the pair with ``executions="aggressor"``) as
    one array: the book is seeded from orderbook row 0 (one order per displayed level, ids from
    :data:`SEED_ID_BASE`), message 0 is skipped (row 0 already contains it), submissions become ADDs,
    partial cancels REDUCEs, deletions CANCELs (or, for an order the file never showed, a REDUCE of the seed
    order at its level), visible executions immediate-or-cancel aggressors of the opposite side, halts
    HALT/RESUME. Hidden executions and cross trades (types 5, 6) do not change the book and are returned
    separately as ``trades``.

    Parameters
    ----------
    message_file, orderbook_file : path
        The LOBSTER pair (plain CSV or .gz).
    tick : int
        LOBSTER price units (dollars x 10000) per tick; 100 gives ticks of $0.01.
    max_rows : int, optional
        Read only the first message rows (for quick runs).

    Returns
    -------
    events : ndarray of EVENT_DTYPE
    trades : DataFrame of hidden/cross trades (ts_ns, price_ticks, qty_lots)

    Raises
    ------
    ReplayFormatError
        The registry's: a bad file names the file, the row, the column and the expectation.
    """
    from lob.replay.registry import read

    # one array is wanted: large chunks (the day is read in as few pandas chunks as memory allows)
    stream = read((Path(message_file), Path(orderbook_file)), "lobster", tick=tick, executions="aggressor",
                  max_rows=max_rows, chunk_rows=1 << 20)
    chunks = list(stream)
    return np.concatenate(chunks) if len(chunks) > 1 else chunks[0], stream.trades


# ------------------------------------------------------------------------------------------------
# Strategy interface
# ------------------------------------------------------------------------------------------------
Intent = OrderIntent
"""The backtest's name of :class:`lob.mm.OrderIntent` (the same class): what a strategy asks for, ``submit`` a
new order, ``cancel`` or ``modify`` one of its orders."""


def _as_intent(x) -> OrderIntent:
    # a dict of OrderIntent's fields, or an object with its attributes (validated by OrderIntent itself)
    if isinstance(x, dict):
        return OrderIntent(**x)
    fields = {k: getattr(x, k) for k in OrderIntent.__dataclass_fields__ if hasattr(x, k)}
    if "action" not in fields:
        raise ConfigError(f"an intent must be an OrderIntent, a dict of its fields or an object with its attributes "
                          f"(action, side, qty, price, ...), got {x!r}")
    return OrderIntent(**fields)


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


# ------------------------------------------------------------------------------------------------
# The backtest
# ------------------------------------------------------------------------------------------------
class Backtest:
    """Replay history and a strategy's orders through one matching engine.

    Parameters
    ----------
    strategy : object
        Has any of ``on_start(ctx)``, ``on_book(ctx)``, ``on_trade(ctx, trade)``, ``on_fill(ctx, fill)``;
        each may return an iterable of intents (:class:`lob.mm.OrderIntent`, also named :data:`Intent` here;
        dicts of its fields, or objects with its attributes). Or a compiled strategy
        (:class:`lob.replay.CompiledStrategy`, see docs/market_making.md). The built-in market makers of
        :mod:`lob.mm` run their compiled forms unless ``compiled=False``.
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
    compiled : {"auto", True, False}
        ``"auto"``: a strategy with a compiled form (``strategy.compiled()`` returning one) runs it;
        ``True``: it must; ``False``: the Python protocol, always.
    queue_model : lob.queue.models.QueueModel, optional
        The queue-position estimate of virtual passive orders (``impact="consume"``/``"off"``); any object
        with ``new_order``, ``trade`` and ``depth``, or a :class:`lob.queue._compiled.CompiledQueueModel`
        (default: risk-averse). Built-in models run compiled.

    Warns
    -----
    NoDecisionWarning
        When the strategy never got to decide (``step_ns`` longer than the data's span, or no data).
    """

    def __init__(self, strategy, data, latency=0, impact: str = "full", fees=None, step_ns: int = 100_000_000,
                 symbol: str = "GOOG", tick_size: float = 0.01, lot_size: float = 1, seed: int = 0,
                 progress: bool | None = None, chunk: int = 65_536, compiled="auto", queue_model=None):
        if impact not in ("full", "consume", "off"):
            raise ConfigError(f"impact must be 'full', 'consume' or 'off', got {impact!r}")
        from lob.queue._compiled import CompiledQueueModel
        from lob.queue.models import QueueModel, RiskAverseQueueModel

        if queue_model is None:
            queue_model = RiskAverseQueueModel()
        if not (isinstance(queue_model, CompiledQueueModel)
                or all(callable(getattr(queue_model, f, None)) for f in ("new_order", "trade", "depth"))):
            raise ConfigError(f"queue_model must have new_order, trade and depth (lob.queue.models.QueueModel) or "
                              f"be a lob.queue._compiled.CompiledQueueModel, got {queue_model!r}")
        self.queue_model = queue_model
        # what the step loop runs: a compiled model (the built-in ones' compiled forms) without the GIL, else
        # the Python object
        if type(queue_model) is QueueModel:
            self._loop_queue = CompiledQueueModel()        # the base class's rule: risk-averse
        elif isinstance(queue_model, CompiledQueueModel):
            self._loop_queue = queue_model
        else:
            form = queue_model.compiled() if callable(getattr(queue_model, "compiled", None)) else None
            self._loop_queue = form if isinstance(form, CompiledQueueModel) else queue_model
        if isinstance(fees, dict):
            fees = Fees(**fees)
        if fees is not None and not isinstance(fees, Fees):
            raise ConfigError(f"fees must be a Fees or a dict of maker_bps/taker_bps, got {fees!r}")
        if not (isinstance(step_ns, int) and step_ns > 0):
            raise ConfigError(f"step_ns must be a positive int, got {step_ns!r}")
        if compiled not in ("auto", True, False):
            raise ConfigError(f"compiled must be 'auto', True or False, got {compiled!r}")
        if not (isinstance(chunk, int) and chunk > 0):
            raise ConfigError(f"chunk must be a positive int, got {chunk!r}")
        self.strategy = strategy
        self.impact = impact
        self.fees = fees or Fees()
        self.step_ns = step_ns
        self.symbol = symbol
        self.progress = progress
        self.chunk = chunk
        self.compiled = compiled
        self.rng = np.random.default_rng(seed)
        self._latency = self._latency_spec(latency)
        self._data = data
        self.exchange = lob.Exchange(marketdata=False)
        self.exchange.add_symbol(symbol, tick_size=tick_size, lot_size=lot_size)
        self._sym = self.exchange.symbol_index(symbol)
        self._owner = self.exchange.owner_id(STRATEGY_OWNER)
        self._lot = lot_size
        self._tick = tick_size
        self.ran_compiled = None

    def _latency_spec(self, latency):
        # (submit, cancel, modify) ns, or a callable(action) -> ns drawing from the run's generator
        if callable(latency):
            return lambda action: int(latency(self.rng, action))
        if isinstance(latency, dict):
            bad = set(latency) - {"submit", "cancel", "modify"}
            if bad:
                raise ConfigError(f"latency keys must be submit/cancel/modify, got {sorted(bad)}")
            for k, v in latency.items():
                if not (isinstance(v, (int, np.integer)) and v >= 0):
                    raise ConfigError(f"latency[{k!r}] must be ns >= 0, got {v!r}")
            return tuple(int(latency.get(a, 0)) for a in ("submit", "cancel", "modify"))
        if isinstance(latency, (int, np.integer)) and not isinstance(latency, bool) and latency >= 0:
            return (int(latency),) * 3
        raise ConfigError(f"latency must be ns >= 0, a dict per action or a callable, got {latency!r}")

    # --- data -----------------------------------------------------------------------------------
    def _chunks(self):
        data = self._data
        if isinstance(data, tuple) and len(data) == 2:
            data, _ = lobster_events(*data)
        if isinstance(data, np.ndarray):
            if data.dtype != lob.EVENT_DTYPE:
                raise ConfigError(f"data must hold lob.EVENT_DTYPE events, got {data.dtype}")
            yield np.ascontiguousarray(data)          # one pass: the loop needs no chunking
        else:
            for c in data:
                c = np.ascontiguousarray(c)
                if c.dtype != lob.EVENT_DTYPE:
                    raise ConfigError(f"data chunks must hold lob.EVENT_DTYPE events, got {c.dtype}")
                yield c

    def _strategy(self):
        from lob.replay._steploop import CompiledStrategy, PyStrategy

        s = self.strategy
        if isinstance(s, CompiledStrategy):
            if self.compiled is False:
                raise ConfigError("compiled=False, but the strategy is a CompiledStrategy (it has no Python form)")
            return s, True
        form = None
        if self.compiled is not False and callable(getattr(s, "compiled", None)):
            form = s.compiled()
        if form is None:
            if self.compiled is True:
                raise ConfigError(f"compiled=True, but {type(s).__name__} has no compiled form")
            return PyStrategy(s, _as_intent, (OrderIntent,)), False
        return form, True

    # --- the run --------------------------------------------------------------------------------
    def run(self) -> BacktestResult:
        """Run to the end of the data; return the result DataFrames."""
        from lob.replay._steploop import PyStrategy, StepLoop

        strat, compiled = self._strategy()
        self.ran_compiled = compiled
        loop = StepLoop(self.exchange, self._sym, self._owner, {"full": 0, "consume": 1, "off": 2}[self.impact],
                        self.step_ns, float(self._tick), float(self._lot), float(self.fees.maker_bps),
                        float(self.fees.taker_bps), self._latency, strat, self._loop_queue)
        self._loop = loop
        if isinstance(strat, PyStrategy):
            strat.bind(loop, self.exchange.book(self.symbol), self.symbol)
        loop.start()
        total = len(self._data) if isinstance(self._data, np.ndarray) else None
        use_bar = self.progress if self.progress is not None else (total or 0) > 200_000
        bar = None
        if use_bar:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, unit="ev", desc="backtest")
        first = last = None
        for chunk in self._chunks():
            if len(chunk):
                first = int(chunk["ts_ns"][0]) if first is None else first
                last = int(chunk["ts_ns"][-1])
            loop.run_chunk(chunk)
            if bar is not None:
                bar.update(len(chunk))
        loop.finish()
        if bar is not None:
            bar.close()
        if compiled:
            strat.sync(self.strategy)
        if loop.decisions == 0:
            span = "no data" if first is None else f"the data spans {last - first:,} ns"
            warnings.warn(f"the strategy never decided: step_ns={self.step_ns:,} and {span} (on_book runs at the "
                          f"end of each step of event time); use a shorter step_ns", NoDecisionWarning, stacklevel=2)
        return self._result(loop)

    # --- results --------------------------------------------------------------------------------
    def _result(self, loop) -> BacktestResult:
        o, f, m = loop.records()
        tick, lot = self._tick, self._lot
        sides = np.array(names(Side), dtype=object)
        tifs = np.array(names(TIF), dtype=object)
        status = np.array(names(Status) + (None,), dtype=object)
        tags = np.array(loop.tags, dtype=object)
        price = np.round(o["price"] * tick, 10)
        orders = pd.DataFrame({
            "order_id": o["order_id"].astype(np.int64), "ts_ns": o["ts_ns"], "side": sides[o["side"]],
            "qty": o["qty"] * lot, "price": np.where(o["price"] > 0, price, np.nan), "tif": tifs[o["tif"]],
            "tag": tags[o["tag"]], "status": status[o["status"]],
            "queue_ahead_at_entry": np.where(o["queue_ahead"] >= 0, o["queue_ahead"], np.nan)})
        fills = pd.DataFrame({
            "ts_ns": f["ts_ns"], "order_id": f["order_id"].astype(np.int64), "side": sides[f["side"]],
            "price": np.round(f["price"] * tick, 10), "qty": f["qty"] * lot, "maker": f["maker"].astype(bool),
            "fee": f["fee"], "queue_ahead_at_fill": np.where(f["queue_ahead"] >= 0, f["queue_ahead"], np.nan),
            "position": f["position"] * lot})
        pnl = pd.DataFrame({k: m[k] for k in ("ts_ns", "mid", "position", "cash", "pnl", "fees")})
        positions = pnl[["ts_ns", "position"]].copy()
        final = pnl.iloc[-1] if len(pnl) else None
        summary = dict(impact=self.impact, orders=len(orders), fills=len(fills),
                       traded_qty=float(fills["qty"].sum()) if len(fills) else 0.0,
                       maker_fills=int(fills["maker"].sum()) if len(fills) else 0,
                       final_position=float(loop.position * self._lot),
                       pnl=float(final["pnl"]) if final is not None else 0.0, fees=loop.fees_paid,
                       decisions=int(loop.decisions), compiled=bool(self.ran_compiled))
        return BacktestResult(orders, fills, positions, pnl, summary)
