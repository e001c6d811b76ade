"""The simulator of lob before issue #13's populations and blocks (commit 2827d19: lob/sim/agents.py and
lob/sim/simulator.py, the default market of the issue's "20-35k events/s"), frozen here as the same-process
yardstick of benchmarks/bench_sim.py (``speedup_vs_before``). Not part of the package.

Changed from the original only so that it uses the public lob API and nothing of lob.sim: the two modules are
joined into this file (agents first), and the three reads of ``exchange._engine`` (``best_prices``,
``last_price``) are the exchange's public ``best_ticks``/``last_ticks`` (the same engine calls). Every agent
acts through the per-call path (``submit``/``cancel``/``modify``), one request at a time, as it did then; the
market makers run ``lob.mm.AdaptiveMarketMaker``'s Python form (its Python code is unchanged since).
"""
from __future__ import annotations

import time
import traceback
from collections import deque

import numpy as np
import pandas as pd

from lob.enums import Status
from lob.errors import ConfigError

__all__ = ["Simulator", "DEFAULT_MARKET"]

_TERMINAL = (int(Status.FILLED), int(Status.CANCELLED), int(Status.REJECTED))


class Router:
    """One exchange listener that hands each report and fill to the trackers of its owners (and trades to
    the trackers that watch the symbol), instead of one listener per agent."""

    def __init__(self, exchange):
        self.trackers: dict[int, list] = {}
        self.watchers: dict[int, list] = {}
        exchange.add_listener(self.on_apply)

    def on_apply(self, events, reports, fills) -> None:
        trackers = self.trackers
        if len(reports):
            for r in reports.tolist():
                for t in trackers.get(r[3], ()):
                    t.on_report(r)
        if len(fills):
            watchers = self.watchers
            for f in fills.tolist():
                for t in watchers.get(f[8], ()):
                    t.trades.append((f[8], f[0], f[2], f[3], f[9]))
                for t in trackers.get(f[6], ()):
                    t.on_fill(f, True)
                for t in trackers.get(f[7], ()):
                    t.on_fill(f, False)


class OrderTracker:
    """An owner's open orders and position, kept from the exchange's output stream (reports and fills).

    Used by agents that must know their orders; ``orders[(symbol, order_id)] = [side, price_ticks, lots]``.
    With a :class:`Router` (the simulator's), the tracker is fed by it; otherwise it listens itself.
    """

    def __init__(self, exchange, owner: str, router: Router | None = None):
        self.exchange = exchange
        self.owner_id = exchange.owner_id(owner)
        self.orders: dict[tuple[int, int], list] = {}
        self.position: dict[int, int] = {}          # symbol -> lots
        self.cash: dict[int, int] = {}              # symbol -> tick-lots
        self.fills: deque = deque()                 # (symbol, ts, order_id, sign, price, qty, maker) to hand out
        self.trades: deque = deque()                # (symbol, ts, price, qty, aggressor) to hand out
        self.router = router if router is not None else Router(exchange)
        self.router.trackers.setdefault(self.owner_id, []).append(self)

    def watch(self, symbol: int) -> None:
        """Collect every trade of a symbol in :attr:`trades`."""
        self.router.watchers.setdefault(symbol, []).append(self)

    def on_report(self, r) -> None:
        key = (r[10], r[2])
        if r[7] > 0 and r[13] not in _TERMINAL:
            self.orders[key] = [r[12], r[4], r[7]]
        else:
            self.orders.pop(key, None)

    def on_fill(self, f, maker: bool) -> None:
        ts, _, price, qty, moid, toid, mo, to, sym, aggr, _, _ = f
        if maker:
            oid, sign = moid, (-1 if aggr == 0 else 1)
            o = self.orders.get((sym, oid))
            if o is not None:
                o[2] -= qty
                if o[2] <= 0:
                    del self.orders[(sym, oid)]
        else:
            oid, sign = toid, (1 if aggr == 0 else -1)
        self.position[sym] = self.position.get(sym, 0) + sign * qty
        self.cash[sym] = self.cash.get(sym, 0) - sign * price * qty
        self.fills.append((sym, ts, oid, sign, price, qty, maker))

    def open_orders(self, symbol: int) -> dict:
        return {oid: {"side": o[0], "price": o[1], "qty": o[2]} for (s, oid), o in self.orders.items()
                if s == symbol}

    def cancel_all(self, sim) -> None:
        for (s, oid) in list(self.orders):
            sim.exchange.cancel(s, oid, owner=self.owner_id, ts_ns=sim.now_ns)
        self.orders.clear()


class Agent:
    """Base of the simulator's agents.

    Subclasses implement :meth:`step` (and optionally :meth:`start`); the simulator sets ``rng`` (this
    agent's own generator) in :meth:`bind` and calls :meth:`restart` after a failure's backoff.
    """

    kind = "agent"

    def __init__(self, name: str, owner: str | None = None):
        if not isinstance(name, str) or not name:
            raise ConfigError(f"agent name must be a non-empty string, got {name!r}")
        self.name = name
        self.owner = owner or name
        self.rng: np.random.Generator | None = None
        self.sim = None

    def bind(self, sim, rng: np.random.Generator) -> None:
        self.sim, self.rng = sim, rng

    def start(self, sim) -> None:
        """Called once, at the simulator's first step."""

    def step(self, sim) -> None:
        raise NotImplementedError

    def restart(self, sim) -> None:
        """Called when the agent comes back after a failure."""

    def _count(self, rate_per_s: float, dt_s: float) -> int:
        return int(self.rng.poisson(rate_per_s * dt_s)) if rate_per_s > 0 else 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _reference(sim, sym: int) -> int:
    """Mid, else last trade, else the symbol's initial price (ticks)."""
    b, a = sim.exchange.best_ticks(sym)
    if b and a:
        return (b + a) // 2
    last = sim.exchange.last_ticks(sym)
    if last:
        return int(last)
    return sim.initial_ticks[sym]


class ZeroIntelligenceTrader(Agent):
    """Zero-intelligence limit-order flow around a wandering fundamental value.

    Poisson limit orders (``rate_per_s``) on a random side at ``value -/+ (1 + G)`` ticks, ``G`` geometric
    with mean ``depth_ticks``; ``value`` is the symbol's fundamental (:attr:`Simulator.fundamental`) when
    the simulator keeps one, else the mid. An order placed through the opposite best trades at once (the
    flow that moves prices toward the value). Each resting order is cancelled with probability
    ``cancel_per_s`` per second, the oldest first beyond ``max_orders``.
    """

    kind = "zero_intelligence"

    def __init__(self, name: str, symbol: str, rate_per_s: float = 20.0, depth_ticks: float = 6.0,
                 size=(1, 5), lot_multiple: int = 100, cancel_per_s: float = 0.1, max_orders: int = 60,
                 initial_levels: int = 8, owner: str | None = None):
        super().__init__(name, owner)
        self.symbol = symbol
        self.rate_per_s, self.depth_ticks = rate_per_s, depth_ticks
        self.size, self.lot_multiple = size, lot_multiple
        self.cancel_per_s, self.max_orders = cancel_per_s, max_orders
        self.initial_levels = initial_levels
        self.live: deque = deque()

    def bind(self, sim, rng):
        super().bind(sim, rng)
        self.sym = sim.exchange.symbol_index(self.symbol)
        self.tracker = OrderTracker(sim.exchange, self.owner, sim.router)

    def _qty(self) -> int:
        return int(self.rng.integers(self.size[0], self.size[1] + 1)) * self.lot_multiple

    def _place(self, sim, side: int, price: int) -> None:
        if price <= 0:
            return
        r = sim.exchange.submit(self.sym, "buy" if side == 0 else "sell", self._qty(), price=price * sim.tick[self.sym],
                                owner=self.owner, ts_ns=sim.now_ns)
        if r.remaining_lots > 0 and r.status != "rejected":
            self.live.append(r.order_id)

    def start(self, sim):
        ref = _reference(sim, self.sym)
        for lvl in range(1, self.initial_levels + 1):
            self._place(sim, 0, ref - lvl)
            self._place(sim, 1, ref + lvl)

    def step(self, sim):
        dt = sim.step_s
        orders = self.tracker.orders
        # drop ids that filled or were cancelled
        while self.live and (self.sym, self.live[0]) not in orders:
            self.live.popleft()
        n_cancel = self._count(self.cancel_per_s * len(orders), dt)
        if orders and n_cancel:
            keys = [k for k in orders]
            for i in self.rng.choice(len(keys), size=min(n_cancel, len(keys)), replace=False):
                sim.exchange.cancel(self.sym, keys[int(i)][1], owner=self.owner, ts_ns=sim.now_ns)
        while len(orders) > self.max_orders and self.live:
            oid = self.live.popleft()
            if (self.sym, oid) in orders:
                sim.exchange.cancel(self.sym, oid, owner=self.owner, ts_ns=sim.now_ns)
        value = sim.fundamental_ticks(self.sym)
        if value is None:
            value = _reference(sim, self.sym)
        p = 1.0 / (1.0 + self.depth_ticks)
        for _ in range(self._count(self.rate_per_s, dt)):
            side = int(self.rng.integers(0, 2))
            d = int(self.rng.geometric(p))
            self._place(sim, side, value - d if side == 0 else value + d)

    def restart(self, sim):
        self.tracker.cancel_all(sim)
        self.live.clear()


class NoiseTrader(Agent):
    """Poisson market orders of random side and size (uninformed liquidity taking)."""

    kind = "noise"

    def __init__(self, name: str, symbols, rate_per_s: float = 2.0, size=(1, 3), lot_multiple: int = 100,
                 owner: str | None = None):
        super().__init__(name, owner)
        self.symbols = [symbols] if isinstance(symbols, str) else list(symbols)
        self.rate_per_s, self.size, self.lot_multiple = rate_per_s, size, lot_multiple

    def step(self, sim):
        for _ in range(self._count(self.rate_per_s, sim.step_s)):
            sym = self.symbols[int(self.rng.integers(0, len(self.symbols)))]
            side = "buy" if self.rng.integers(0, 2) == 0 else "sell"
            qty = int(self.rng.integers(self.size[0], self.size[1] + 1)) * self.lot_multiple
            sim.exchange.submit(sym, side, qty, type="market", owner=self.owner, ts_ns=sim.now_ns)


class MomentumTrader(Agent):
    """Trend follower: when the mid has moved more than ``threshold_ticks`` over ``lookback_s``, buys (or
    sells) with a market order, at most ``rate_per_s`` times per second, within ``max_position``."""

    kind = "momentum"

    def __init__(self, name: str, symbol: str, lookback_s: float = 5.0, threshold_ticks: int = 3,
                 rate_per_s: float = 0.5, size: int = 200, max_position: int = 2000, owner: str | None = None):
        super().__init__(name, owner)
        self.symbol = symbol
        self.lookback_s, self.threshold_ticks = lookback_s, threshold_ticks
        self.rate_per_s, self.size, self.max_position = rate_per_s, size, max_position
        self.history: deque = deque()
        self.position = 0

    def bind(self, sim, rng):
        super().bind(sim, rng)
        self.sym = sim.exchange.symbol_index(self.symbol)

    def step(self, sim):
        b, a = sim.exchange.best_ticks(self.sym)
        if not (b and a):
            return
        mid = (b + a) / 2
        h = self.history
        h.append((sim.now_ns, mid))
        horizon = sim.now_ns - int(self.lookback_s * 1e9)
        while len(h) > 1 and h[1][0] <= horizon:
            h.popleft()
        if h[0][0] > horizon:
            return                                   # not a full lookback yet
        move = mid - h[0][1]
        if abs(move) < self.threshold_ticks or not self._count(self.rate_per_s, sim.step_s):
            return
        side = 0 if move > 0 else 1
        if (self.position >= self.max_position and side == 0) or (self.position <= -self.max_position and side == 1):
            return
        r = sim.exchange.submit(self.sym, "buy" if side == 0 else "sell", self.size, type="market",
                                owner=self.owner, ts_ns=sim.now_ns)
        self.position += (1 if side == 0 else -1) * r.filled_lots


class _Ctx:
    """The strategy context of a :class:`StrategyAgent` (see :mod:`lob.mm.base`)."""

    __slots__ = ("agent", "book", "symbol")

    def __init__(self, agent, book, symbol):
        self.agent, self.book, self.symbol = agent, book, symbol

    @property
    def ts_ns(self) -> int:
        return self.agent.sim.now_ns

    @property
    def position(self) -> float:
        return self.agent.tracker.position.get(self.agent.sym, 0) * self.book.lot_size

    @property
    def open_orders(self) -> dict:
        return self.agent.tracker.open_orders(self.agent.sym)


class StrategyAgent(Agent):
    """Run a :mod:`lob.mm` strategy (anything with ``on_start/on_book/on_trade/on_fill``) on one symbol.

    Each step, the trades and the strategy's fills since the last step are handed to ``on_trade`` /
    ``on_fill``, then ``on_book`` is called every ``every_steps`` steps; the returned intents go to the
    exchange at once (``submit``/``cancel``/``modify`` with the simulator's time).
    """

    kind = "strategy"

    def __init__(self, name: str, strategy, symbol: str, every_steps: int = 1, owner: str | None = None):
        super().__init__(name, owner)
        if not (isinstance(every_steps, int) and every_steps >= 1):
            raise ConfigError(f"every_steps must be an int >= 1, got {every_steps!r}")
        self.strategy, self.symbol, self.every_steps = strategy, symbol, every_steps
        self.intents = 0
        self._n = 0

    def bind(self, sim, rng):
        super().bind(sim, rng)
        self.sym = sim.exchange.symbol_index(self.symbol)
        self.tracker = OrderTracker(sim.exchange, self.owner, sim.router)
        self.tracker.watch(self.sym)
        self.ctx = _Ctx(self, sim.exchange.book(self.symbol), self.symbol)

    def _call(self, name, *args):
        fn = getattr(self.strategy, name, None)
        if fn is not None:
            self._execute(fn(self.ctx, *args))

    def start(self, sim):
        self._call("on_start")

    def step(self, sim):
        t = self.tracker
        tick, lot = self.ctx.book.tick_size, self.ctx.book.lot_size
        while t.trades:
            _, ts, price, qty, aggr = t.trades.popleft()
            self._call("on_trade", dict(price=price * tick, qty=qty * lot, aggressor="buy" if aggr == 0 else "sell",
                                        ts_ns=ts))
        while t.fills:
            sym, ts, oid, sign, price, qty, maker = t.fills.popleft()
            if sym == self.sym:
                self._call("on_fill", dict(order_id=oid, side="buy" if sign > 0 else "sell", price=price * tick,
                                           qty=qty * lot, maker=maker, ts_ns=ts))
        self._n += 1
        if self._n % self.every_steps == 0:
            self._call("on_book")

    def _execute(self, intents) -> None:
        if not intents:
            return
        ex, sim = self.sim.exchange, self.sim
        for it in intents:
            self.intents += 1
            sym = it.symbol or self.symbol
            if it.action == "cancel":
                ex.cancel(sym, it.order_id, owner=self.owner, ts_ns=sim.now_ns)
            elif it.action == "modify":
                ex.modify(sym, it.order_id, qty=it.qty, price=it.price, owner=self.owner, ts_ns=sim.now_ns)
            else:
                ex.submit(sym, it.side, it.qty, price=it.price, type="market" if it.price is None else "limit",
                          tif=it.tif, owner=self.owner, post_only=it.post_only, order_id=it.order_id,
                          ts_ns=sim.now_ns)

    def restart(self, sim):
        self.tracker.cancel_all(sim)
        self.tracker.fills.clear()
        self.tracker.trades.clear()
        self._call("on_start")


# --------------------------------------------------------------------------------------------------
# the simulator
# --------------------------------------------------------------------------------------------------
#: the default market: symbol -> initial price
DEFAULT_MARKET = {"AAPL": 190.00, "GOOGL": 175.00, "MSFT": 420.00, "TSLA": 250.00}
#: 2024-01-02 09:30:00 America/New_York, in ns since the epoch: the default sim clock's start
DEFAULT_START_NS = 1_704_205_800_000_000_000


class _Slot:
    __slots__ = ("agent", "status", "failures", "restarts", "resume_step", "last_error", "started", "steps")

    def __init__(self, agent):
        self.agent = agent
        self.status = "running"
        self.failures = 0
        self.restarts = 0
        self.resume_step = None
        self.last_error = None
        self.started = False
        self.steps = 0


class Simulator:
    """Agents trading on an exchange under one clock.

    Parameters
    ----------
    exchange : lob.Exchange
        The venue; its ``clock`` is set to the simulator's.
    agents : iterable of Agent
    clock : {"sim", "realtime"}
        ``"sim"``: time advances by ``step_ns`` per step from ``start_ns`` (runs as fast as the machine
        allows, deterministic for a seed). ``"realtime"``: time is the wall clock (for ``lob serve``), and
        each step covers the wall time since the previous one (``step_s``), whatever the host's period.
    seed : int
        Seeds one ``numpy.random.Generator`` per agent (by its position) and one for the agent order.
    step_ns : int
    start_ns : int, optional
    fundamental_vol_bps : float
        Volatility (bp per sqrt(second)) of each symbol's fundamental value, a Gaussian random walk that
        the zero-intelligence traders quote around; 0 keeps no fundamental (ZI quotes around the mid).
    risk : lob.risk.RiskManager, optional
        Installed on the exchange with the simulator's event clock.
    backoff_steps, max_backoff_steps : int

    Examples
    --------
    >>> sim = Simulator.default(seed=1)
    >>> sim.run(steps=200)
    >>> sorted(sim.exchange.symbols), sim.exchange.seq > 0
    (['AAPL', 'GOOGL', 'MSFT', 'TSLA'], True)
    """

    def __init__(self, exchange, agents=(), clock: str = "sim", seed: int = 0, step_ns: int = 10_000_000,
                 start_ns: int | None = None, fundamental_vol_bps: float = 0.0, risk=None,
                 backoff_steps: int = 10, max_backoff_steps: int = 1000):
        if clock not in ("sim", "realtime"):
            raise ConfigError(f"clock must be 'sim' or 'realtime', got {clock!r}")
        if not (isinstance(step_ns, int) and step_ns > 0):
            raise ConfigError(f"step_ns must be a positive int, got {step_ns!r}")
        if not (isinstance(seed, (int, np.integer)) and seed >= 0):
            raise ConfigError(f"seed must be a non-negative int, got {seed!r}")
        if not (isinstance(backoff_steps, int) and backoff_steps >= 1 and max_backoff_steps >= backoff_steps):
            raise ConfigError(f"backoff_steps must be an int >= 1 and <= max_backoff_steps, got {backoff_steps!r}")
        self.exchange = exchange
        self.clock = clock
        self.seed = int(seed)
        self.step_ns = step_ns
        self.step_s = step_ns / 1e9
        self.now_ns = (time.time_ns() if clock == "realtime" else DEFAULT_START_NS) if start_ns is None else start_ns
        self.steps = 0
        self.backoff_steps, self.max_backoff_steps = backoff_steps, max_backoff_steps
        self.incidents: list[dict] = []
        self._slots: list[_Slot] = []
        self._rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(2 ** 31,)))
        self.tick = [exchange.info(i).tick_size for i in range(len(exchange.symbols))]
        self.initial_ticks = {}
        for i in range(len(exchange.symbols)):
            spec = exchange.specs()[i]
            ref = spec.get("ref_price")
            self.initial_ticks[i] = exchange.to_ticks(i, ref) if ref else 10_000
        self.fundamental_vol_bps = fundamental_vol_bps
        self._fund = {i: float(t) for i, t in self.initial_ticks.items()} if fundamental_vol_bps > 0 else None
        self._fund_rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(2 ** 31 + 1,)))
        exchange.clock = self._clock
        self.router = Router(exchange)
        self.risk = risk
        if risk is not None:
            risk.attach(exchange, clock=self._clock)
        self.recorder = None
        for a in agents:
            self.add_agent(a)

    # --- agents ---------------------------------------------------------------------------------
    def add_agent(self, agent) -> None:
        """Add an agent; its generator is seeded from (seed, its position), so adding agents at the end
        does not change the others' draws."""
        if any(s.agent.name == agent.name for s in self._slots):
            raise ConfigError(f"agent name {agent.name!r} is already taken")
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(len(self._slots),)))
        agent.bind(self, rng)
        self._slots.append(_Slot(agent))

    @property
    def agents(self) -> list:
        return [s.agent for s in self._slots]

    @property
    def market_makers(self) -> list:
        """The agents that run a market-making strategy."""
        return [s.agent for s in self._slots if s.agent.kind == "strategy"]

    def agent(self, name: str):
        for s in self._slots:
            if s.agent.name == name:
                return s.agent
        raise ConfigError(f"no agent named {name!r}; agents: {[s.agent.name for s in self._slots]}")

    def agent_health(self) -> list[dict]:
        """One row per agent: status, failures, restarts, the last error and when it comes back."""
        return [dict(name=s.agent.name, owner=s.agent.owner, kind=s.agent.kind, status=s.status,
                     failures=s.failures, restarts=s.restarts, resume_step=s.resume_step,
                     last_error=s.last_error) for s in self._slots]

    def health_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.agent_health())

    # --- clock ----------------------------------------------------------------------------------
    def _clock(self) -> int:
        return self.now_ns

    def fundamental_ticks(self, sym: int) -> int | None:
        """The fundamental value of a symbol in ticks (None when the simulator keeps none)."""
        if self._fund is None:
            return None
        return int(round(self._fund[sym]))

    # --- running --------------------------------------------------------------------------------
    def step(self) -> None:
        """Advance the clock one step and let every enabled agent act once."""
        if self.clock == "realtime":
            prev = self.now_ns
            self.now_ns = max(prev + 1, time.time_ns())
            # agents draw their activity for the time that really passed (a host may step at any period),
            # at most a second's worth after a pause
            self.step_s = min(1.0, (self.now_ns - prev) / 1e9)
        else:
            self.now_ns += self.step_ns
        if self._fund is not None:
            sd = self.fundamental_vol_bps / 1e4 * np.sqrt(self.step_s)
            for sym in self._fund:
                self._fund[sym] *= float(np.exp(sd * self._fund_rng.standard_normal()))
        for i in self._rng.permutation(len(self._slots)):
            slot = self._slots[int(i)]
            if slot.status == "disabled":
                if self.steps < slot.resume_step:
                    continue
                if not self._guard(slot, "restart"):
                    continue
                slot.status = "running"
                slot.restarts += 1
                slot.resume_step = None
            if not slot.started:
                slot.started = True
                if not self._guard(slot, "start"):
                    continue
            if self._guard(slot, "step"):
                slot.steps += 1
        self.steps += 1

    def _guard(self, slot: _Slot, method: str) -> bool:
        try:
            getattr(slot.agent, method)(self)
            return True
        except Exception as e:        # isolate any agent failure; the market goes on
            slot.failures += 1
            backoff = min(self.max_backoff_steps, self.backoff_steps * 2 ** (slot.failures - 1))
            slot.status = "disabled"
            slot.resume_step = self.steps + backoff
            slot.last_error = f"{type(e).__name__}: {e}"
            self.incidents.append(dict(step=self.steps, ts_ns=self.now_ns, agent=slot.agent.name, phase=method,
                                       severity="warning", error=type(e).__name__,
                                       message=f"agent {slot.agent.name!r} failed in {method}: {e}; disabled for "
                                               f"{backoff} steps", traceback=traceback.format_exc(limit=4)))
            return False

    def run(self, steps: int | None = None, until: int | None = None) -> None:
        """Run ``steps`` steps, or until the clock reaches ``until`` (ns); in realtime, steps are paced by
        the wall clock."""
        if (steps is None) == (until is None):
            raise ConfigError(f"give exactly one of steps and until, got steps={steps!r}, until={until!r}")
        if steps is not None:
            if not (isinstance(steps, (int, np.integer)) and steps >= 0):
                raise ConfigError(f"steps must be a non-negative int, got {steps!r}")
            for _ in range(int(steps)):
                if self.clock == "realtime":
                    self._pace()
                self.step()
            return
        if not isinstance(until, (int, np.integer)):
            raise ConfigError(f"until must be an int (ns), got {until!r}")
        while self.now_ns + (self.step_ns if self.clock == "sim" else 0) <= until:
            if self.clock == "realtime":
                self._pace()
                if time.time_ns() > until:
                    break
            self.step()

    def _pace(self) -> None:
        wait = (self.now_ns + self.step_ns - time.time_ns()) / 1e9
        if wait > 0:
            time.sleep(wait)

    # --- results --------------------------------------------------------------------------------
    def record(self, owners=None):
        """Start recording fills, mids and orders for scorecards (:class:`lob.mm.scorecard.RunRecorder`);
        default: the market makers' owners."""
        from lob.mm.scorecard import RunRecorder

        if owners is None:
            owners = [a.owner for a in self.market_makers]
        self.recorder = RunRecorder(self.exchange, owners)
        return self.recorder

    def scorecard(self, owner, fees=None, **kw):
        """The :class:`lob.mm.Scorecard` of an owner recorded since :meth:`record`."""
        if self.recorder is None:
            raise ConfigError("nothing is recorded: call sim.record() before running")
        return self.recorder.scorecard(owner, fees=fees, **kw)

    # --- the default market ---------------------------------------------------------------------
    @classmethod
    def default(cls, seed: int = 0, clock: str = "sim", market: dict | None = None, record: bool = True,
                risk: bool = True, warmup_s: float = 5.0, exchange=None, **kw) -> "Simulator":
        """A live-looking 4-symbol market (AAPL, GOOGL, MSFT, TSLA): per symbol an adaptive market maker,
        zero-intelligence limit-order traders around a wandering fundamental value and a momentum trader;
        noise traders across symbols. Books are several levels deep from the first step.

        Parameters
        ----------
        seed : int
        clock : {"sim", "realtime"}
        market : dict, optional
            symbol -> initial price (default :data:`DEFAULT_MARKET`).
        record : bool
            Record the market makers for :meth:`scorecard`.
        risk : bool
            Install a :class:`lob.risk.RiskManager` (price collar 10%, max order 10,000, market makers
            limited to 5,000 shares per symbol and 500 orders per second).
        warmup_s : float
            Event time simulated before the simulator is returned, so that it starts with a trade tape and
            bars (in realtime mode the warm-up ends at the current wall time).
        exchange : lob.Exchange, optional
            Run on this exchange (a journaled one, or one recovered from its journal: ``lob serve``); the
            market's symbols it lacks are added, and one that already has orders gets no warm-up.
        """
        import lob
        from lob.mm import AdaptiveMarketMaker

        market = dict(market or DEFAULT_MARKET)
        ex = lob.Exchange() if exchange is None else exchange
        if ex.seq:
            warmup_s = 0.0          # a recovered exchange: its books are the market, the agents resume on them
        for name, price in market.items():
            if name not in ex.symbols:
                ex.add_symbol(name, tick_size=0.01, lot_size=1, ref_price=price)
        rm = None
        if risk:
            from lob.risk import RiskLimits, RiskManager

            rm = RiskManager(RiskLimits(max_qty=10_000))
            for name, price in market.items():
                ticks = int(round(price / 0.01))
                rm.set_reference(ex.symbol_index(name), ticks)
                rm.set_limits(RiskLimits(max_qty=10_000, collar_ticks=ticks // 10), symbol=ex.symbol_index(name))
        agents = []
        for name in market:
            agents.append(StrategyAgent(f"mm_{name}", AdaptiveMarketMaker(
                base_spread_ticks=2, vol_mult=0.5, size=100, max_position=2000, skew_ticks=4, requote_ticks=1), name,
                every_steps=5))
            agents.append(ZeroIntelligenceTrader(f"zi_{name}_1", name, rate_per_s=15.0))
            agents.append(ZeroIntelligenceTrader(f"zi_{name}_2", name, rate_per_s=15.0, depth_ticks=10.0))
            agents.append(MomentumTrader(f"momo_{name}", name))
        agents.append(NoiseTrader("noise_1", list(market), rate_per_s=4.0))
        agents.append(NoiseTrader("noise_2", list(market), rate_per_s=4.0, size=(1, 2)))
        kw.setdefault("fundamental_vol_bps", 2.0)
        if clock not in ("sim", "realtime"):
            raise ConfigError(f"clock must be 'sim' or 'realtime', got {clock!r}")
        if not warmup_s >= 0:
            raise ConfigError(f"warmup_s must be >= 0, got {warmup_s!r}")
        step_ns = kw.get("step_ns", 10_000_000)
        warmup_steps = int(warmup_s * 1e9) // step_ns
        if clock == "realtime" and kw.get("start_ns") is None:
            kw["start_ns"] = time.time_ns() - warmup_steps * step_ns
        sim = cls(ex, agents, clock="sim", seed=seed, risk=rm, **kw)
        if rm is not None:
            for a in sim.market_makers:
                rm.set_limits(RiskLimits(max_qty=10_000, max_position=5000, rate_per_s=500, burst=100), owner=a.owner)
        if record:
            sim.record()
        sim.run(steps=warmup_steps)
        sim.clock = clock
        return sim

    def _repr_html_(self) -> str:
        return (f"<div><b>Simulator</b> {self.clock} clock, step {self.steps}, {len(self.incidents)} incidents"
                f"{self.health_frame()[['name', 'kind', 'status', 'failures', 'restarts']].to_html(index=False)}"
                f"{self.exchange._repr_html_()}</div>")

    def __repr__(self) -> str:
        return (f"Simulator(symbols={self.exchange.symbols}, agents={len(self._slots)}, clock={self.clock!r}, "
                f"steps={self.steps}, incidents={len(self.incidents)})")
