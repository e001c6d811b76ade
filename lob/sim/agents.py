"""Simulation agents: zero-intelligence limit-order traders, Poisson noise (market-order) traders, momentum
traders, and :class:`StrategyAgent`, which runs any :mod:`lob.mm` strategy against the exchange.

Every agent calls the exchange's per-call API (``submit``/``cancel``/``modify``) with ``ts_ns`` from the
simulator's clock and draws every random number from its own ``numpy.random.Generator`` (seeded by the
simulator per agent), so a run is a function of the seed.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from lob.enums import Status
from lob.errors import ConfigError

__all__ = ["Agent", "ZeroIntelligenceTrader", "NoiseTrader", "MomentumTrader", "StrategyAgent", "OrderTracker"]

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
    exchange at once (``submit``/``cancel``/``modify`` with the simulator's time, through the per-call path
    and its risk checks).

    A built-in market maker runs its compiled form (``compiled="auto"``, see :meth:`lob.mm.MarketMaker.compiled`):
    its decisions are taken in C from the tracker's view of its orders and position, and its state is copied
    back onto the Python object after each decision. ``compiled=False`` runs the Python form.
    """

    kind = "strategy"

    def __init__(self, name: str, strategy, symbol: str, every_steps: int = 1, owner: str | None = None,
                 compiled="auto"):
        super().__init__(name, owner)
        if not (isinstance(every_steps, int) and every_steps >= 1):
            raise ConfigError(f"every_steps must be an int >= 1, got {every_steps!r}")
        if compiled not in ("auto", True, False):
            raise ConfigError(f"compiled must be 'auto', True or False, got {compiled!r}")
        self.strategy, self.symbol, self.every_steps = strategy, symbol, every_steps
        self.compiled = compiled
        self.intents = 0
        self._n = 0
        self._loop = None

    def set_progress(self, steps: int, intents: int) -> None:
        """The steps counted towards ``every_steps`` and the intents sent, as a compiled loop leaves them."""
        self._n, self.intents = steps, intents

    def bind(self, sim, rng):
        super().bind(sim, rng)
        self.sym = sim.exchange.symbol_index(self.symbol)
        self.tracker = OrderTracker(sim.exchange, self.owner, sim.router)
        self.tracker.watch(self.sym)
        self.ctx = _Ctx(self, sim.exchange.book(self.symbol), self.symbol)

    def _compiled_loop(self, sim):
        # the strategy's compiled form in a host-driven step loop (None: the Python form runs)
        if self.compiled is False or not callable(getattr(self.strategy, "compiled", None)):
            if self.compiled is True:
                raise ConfigError(f"compiled=True, but {type(self.strategy).__name__} has no compiled form")
            return None
        form = self.strategy.compiled()
        if form is None:
            if self.compiled is True:
                raise ConfigError(f"compiled=True, but {type(self.strategy).__name__} has no compiled form")
            return None
        from lob.replay._steploop import StepLoop

        info = sim.exchange.info(self.sym)
        loop = StepLoop(sim.exchange, self.sym, self.tracker.owner_id, 0, 1, float(info.tick_size),
                        float(info.lot_size), 0.0, 0.0, (0, 0, 0), form)
        loop.start()
        self._form = form
        return loop

    def _call(self, name, *args):
        fn = getattr(self.strategy, name, None)
        if fn is not None:
            self._execute(fn(self.ctx, *args))

    def start(self, sim):
        self._loop = self._compiled_loop(sim)
        if self._loop is None:
            self._call("on_start")
        else:
            self.strategy.on_start(self.ctx)            # the Python object starts clean; the compiled form is new
            watchers = self.tracker.router.watchers.get(self.sym, [])
            if not self._form.wants_trades and self.tracker in watchers:
                watchers.remove(self.tracker)           # it reads no trades: the router need not hand them over
                self.tracker.trades.clear()

    def step(self, sim):
        t = self.tracker
        loop = self._loop
        tick, lot = self.ctx.book.tick_size, self.ctx.book.lot_size
        while t.trades:
            _, ts, price, qty, aggr = t.trades.popleft()
            if loop is not None:
                self._send(loop.host_trade(price, qty, aggr, ts))
            else:
                self._call("on_trade", dict(price=price * tick, qty=qty * lot,
                                            aggressor="buy" if aggr == 0 else "sell", ts_ns=ts))
        while t.fills:
            sym, ts, oid, sign, price, qty, maker = t.fills.popleft()
            if sym == self.sym:
                if loop is not None:
                    self._send(loop.host_fill(ts, oid, 0 if sign > 0 else 1, price, qty, maker))
                else:
                    self._call("on_fill", dict(order_id=oid, side="buy" if sign > 0 else "sell", price=price * tick,
                                               qty=qty * lot, maker=maker, ts_ns=ts))
        before = self._n // self.every_steps
        self._n += getattr(sim, "block_len", 1)      # a block of steps counts as its steps
        if self._n // self.every_steps > before:
            if loop is None:
                self._call("on_book")
            else:
                sym = self.sym
                loop.host_state(sim.now_ns, t.position.get(sym, 0),
                                [(oid, o[0], o[1], o[2]) for (s, oid), o in t.orders.items() if s == sym])
                self._send(loop.host_decide())
                self._form.sync(self.strategy)

    def _send(self, intents) -> None:
        # the compiled form's intents (ticks and lots) through the per-call path
        if not intents:
            return
        ex, now, sym, owner = self.sim.exchange, self.sim.now_ns, self.sym, self.owner
        tick, lot = self.ctx.book.tick_size, self.ctx.book.lot_size
        for action, oid, side, price, qty, tif, post_only, tag in intents:
            self.intents += 1
            if action == "cancel":
                ex.cancel(sym, oid, owner=owner, ts_ns=now)
            elif action == "modify":
                ex.modify(sym, oid, qty=None if qty < 0 else qty * lot, price=price * tick if price else None,
                          owner=owner, ts_ns=now)
            else:
                # the engine assigns the id (an id of the loop's own would move the engine's counter past it)
                ex.submit(sym, "buy" if side == 0 else "sell", qty * lot, price=price * tick if price else None,
                          type="limit" if price else "market", tif=tif, owner=owner, post_only=post_only,
                          ts_ns=now)

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
        if self.tracker not in self.tracker.router.watchers.get(self.sym, []):
            self.tracker.watch(self.sym)
        self.start(sim)
