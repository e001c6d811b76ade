"""Agent populations that act as arrays: many zero-intelligence, noise or momentum traders as one agent.

Each population draws a step's activity for all its members at once in numpy (Poisson counts, sides, depths,
sizes), writes the step's orders into one ``EVENT_DTYPE`` batch and applies it with ``exchange.apply`` (the
listeners, market data and the risk manager's ledger see it as any batch). Members keep their own owner
names, so positions, fills and the risk ledger stay per trader. The members' open orders are kept from the
exchange's output (a listener), not by asking the book.

The simulator runs the exchange's pre-trade risk check on each new order of the merged batch, in time order,
before applying it (a refused order reaches the engine as a rejection with the risk reason, as on the
per-call path); the risk manager's view of open orders and positions is updated after the batch, so within
one block a check does not yet see the block's earlier orders.
"""
from __future__ import annotations

import numpy as np

import lob
from lob.errors import ConfigError
from lob.sim.agents import Agent, _reference

__all__ = ["ZeroIntelligencePopulation", "NoisePopulation", "MomentumPopulation"]

_ADD, _CANCEL = int(lob.Action.ADD), int(lob.Action.CANCEL)
_MARKET = int(lob.OrderType.MARKET)


def join(batches):
    """Event batches end to end (as raw bytes: numpy joins structured arrays field by field, much slower)."""
    return np.concatenate([b.view(np.uint8) for b in batches]).view(lob.EVENT_DTYPE)


def _column(name, values, n, cast=float):
    a = np.asarray(values, dtype=cast)
    if a.ndim == 0:
        a = np.full(n, a)
    if a.shape != (n,):
        raise ConfigError(f"{name} must be a scalar or one value per member ({n}), got {values!r}")
    return a


class _Population(Agent):
    """Members as arrays; subclasses fill :meth:`step` with one batch per step."""

    kind = "population"

    def __init__(self, name: str, owners, symbols):
        super().__init__(name)
        self.owners = list(owners)
        if not self.owners or len(set(self.owners)) != len(self.owners):
            raise ConfigError(f"owners must be distinct names, one per member, got {owners!r}")
        self.symbols = symbols
        self.n = len(self.owners)

    def bind(self, sim, rng):
        super().bind(sim, rng)
        ex = sim.exchange
        self.owner_ids = np.array([ex.owner_id(o) for o in self.owners], dtype=np.int64)
        # member index by owner id (-1: not a member; ids past the table clip to its last cell, -1)
        self._lut = np.full(int(self.owner_ids.max()) + 2, -1, dtype=np.int64)
        self._lut[self.owner_ids] = np.arange(self.n)

    def _members(self, owners) -> np.ndarray:
        return self._lut.take(owners, mode="clip")

    def _apply(self, events):
        if events is not None and len(events):
            return self.sim.exchange.apply(events)
        return None, None

    def step(self, sim):
        """One step on its own (a host that steps agents itself): the step's orders as one batch."""
        fund = getattr(sim, "_fund", None)
        values = None
        if fund:
            values = np.zeros((1, max(fund) + 1), dtype=np.int64)
            for k, v in fund.items():
                values[0, k] = round(v)
        self._apply(self.events(sim, np.array([sim.now_ns], dtype=np.int64), sim.step_s, values))

    def events(self, sim, ts, dt_s, values):
        """The orders of the steps ending at ``ts`` (int64 ns, one per step, ``dt_s`` seconds each) as an
        ``EVENT_DTYPE`` batch in time order, or None; ``values`` (steps x symbols, ticks) is the fundamental
        path or None. The simulator merges the populations' batches of a block and applies them at once."""
        raise NotImplementedError


class ZeroIntelligencePopulation(_Population):
    """Zero-intelligence limit-order traders (:class:`lob.sim.ZeroIntelligenceTrader`'s rules) as arrays.

    Per member: Poisson limit orders (``rate_per_s``) on a random side at ``value -/+ G`` ticks, ``G``
    geometric with mean ``1 + depth_ticks`` (``value``: the symbol's fundamental, else the mid), size uniform in
    ``size`` times ``lot_multiple``; each open order cancelled with probability ``cancel_per_s`` per second,
    the oldest first beyond ``max_orders``; ``initial_levels`` levels a side placed at the first step.

    Parameters
    ----------
    name : str
    symbols : list of str
        The symbol of each member.
    owners : list of str, optional
        Owner name of each member (default ``f"{name}_{i}"``).
    rate_per_s, depth_ticks, cancel_per_s : float or one per member
    size : (low, high)
    lot_multiple, max_orders, initial_levels : int
    """

    kind = "zero_intelligence"

    def __init__(self, name: str, symbols, owners=None, rate_per_s=20.0, depth_ticks=6.0, size=(1, 5),
                 lot_multiple: int = 100, cancel_per_s=0.1, max_orders: int = 60, initial_levels: int = 8):
        symbols = list(symbols)
        owners = owners or [f"{name}_{i}" for i in range(len(symbols))]
        if len(owners) != len(symbols):
            raise ConfigError(f"one owner per member: {len(symbols)} symbols, got {len(owners)} owners")
        super().__init__(name, owners, symbols)
        self.rate = _column("rate_per_s", rate_per_s, self.n)
        self.depth = _column("depth_ticks", depth_ticks, self.n)
        self.cancel_rate = _column("cancel_per_s", cancel_per_s, self.n)
        if (self.rate < 0).any() or (self.depth < 0).any() or (self.cancel_rate < 0).any():
            raise ConfigError("rate_per_s, depth_ticks and cancel_per_s must be >= 0")
        if not (len(size) == 2 and 1 <= size[0] <= size[1]):
            raise ConfigError(f"size must be (low, high) with 1 <= low <= high, got {size!r}")
        self.size, self.lot_multiple = size, int(lot_multiple)
        self.max_orders, self.initial_levels = int(max_orders), int(initial_levels)
        self.p = 1.0 / (1.0 + self.depth)

    def bind(self, sim, rng):
        super().bind(sim, rng)
        ex = sim.exchange
        self.sym = np.array([ex.symbol_index(s) for s in self.symbols], dtype=np.int64)
        self.live = [dict() for _ in range(self.n)]            # member -> {order_id: open lots}, oldest first
        self._member = {int(o): i for i, o in enumerate(self.owner_ids)}
        ex.add_listener(self._on_apply)

    def _on_apply(self, events, reports, fills) -> None:
        # keep the members' open orders from the exchange's output: what rests, what fills, what ends
        member = self._member
        if len(reports):
            own = self._members(reports["owner"]) >= 0
            if own.any():
                for r in reports[own].tolist():
                    live = self.live[member[r[3]]]
                    if r[7] > 0 and r[13] < 2:                        # resting: new / partially filled
                        live[r[2]] = r[7]
                    else:
                        live.pop(r[2], None)
        if len(fills):
            own = self._members(fills["maker_owner"]) >= 0
            if own.any():
                for f in fills[own].tolist():
                    live = self.live[member[f[6]]]
                    left = live.get(f[4])
                    if left is not None:
                        if left > f[3]:
                            live[f[4]] = left - f[3]
                        else:
                            del live[f[4]]

    def _orders(self, members, sides, depths, qtys, values, ts):
        price = np.where(sides == 0, values - depths, values + depths)
        keep = price > 0
        ev = np.zeros(int(keep.sum()), dtype=lob.EVENT_DTYPE)
        members = members[keep]
        ev["ts_ns"] = ts[keep] if np.ndim(ts) else ts
        ev["owner"] = self.owner_ids[members]
        ev["symbol"] = self.sym[members]
        ev["side"] = sides[keep]
        ev["price_ticks"] = price[keep]
        ev["qty_lots"] = qtys[keep]
        ev["action"] = _ADD
        return ev

    def start(self, sim):
        k = self.initial_levels
        if k <= 0:
            return
        values = np.array([_reference(sim, int(s)) for s in self.sym], dtype=np.int64)
        lv = np.arange(1, k + 1)
        members = np.repeat(np.arange(self.n), 2 * k)
        sides = np.tile(np.stack([np.zeros(k, np.int64), np.ones(k, np.int64)], axis=1).ravel(), self.n)
        depths = np.tile(np.repeat(lv, 2), self.n)
        qtys = self.rng.integers(self.size[0], self.size[1] + 1, len(members)) * self.lot_multiple
        self._apply(self._orders(members, sides, depths, qtys, values[members], sim.now_ns))

    def events(self, sim, ts, dt_s, values):
        rng = self.rng
        steps = len(ts)
        n_live = [len(x) for x in self.live]
        n_cancel = rng.poisson(self.cancel_rate * np.array(n_live) * (dt_s * steps)).tolist()
        counts = rng.poisson(self.rate * dt_s, size=(steps, self.n))           # steps x members
        parts = []
        cancels = []
        for i in [i for i in range(self.n) if n_cancel[i] or n_live[i] > self.max_orders]:
            live = self.live[i]
            keys = list(live)
            chosen = []
            if n_cancel[i] and keys:
                chosen = [keys[int(j)] for j in rng.choice(len(keys), size=min(int(n_cancel[i]), len(keys)),
                                                           replace=False)]
            extra = len(keys) - len(chosen) - self.max_orders
            if extra > 0:                                   # the oldest beyond max_orders
                gone = set(chosen)
                chosen += [k for k in keys if k not in gone][:extra]
            cancels.extend((i, oid) for oid in chosen)
        if cancels:
            parts.append(self._cancels(cancels, int(ts[0])))
        total = int(counts.sum())
        if total:
            step_of, members = np.nonzero(counts)
            rep = counts[step_of, members]
            step_of, members = np.repeat(step_of, rep), np.repeat(members, rep)
            sides = rng.integers(0, 2, total)
            depths = rng.geometric(self.p[members])
            qtys = rng.integers(self.size[0], self.size[1] + 1, total) * self.lot_multiple
            if values is None:
                ref = np.array([_reference(sim, int(s)) for s in self.sym], dtype=np.int64)
                v = ref[members]
            else:
                v = values[step_of, self.sym[members]]
            parts.append(self._orders(members, sides, depths, qtys, v, ts[step_of]))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else join(parts)

    def _cancels(self, pairs, ts):
        c = np.zeros(len(pairs), dtype=lob.EVENT_DTYPE)
        idx = np.array([i for i, _ in pairs])
        c["ts_ns"] = ts
        c["owner"] = self.owner_ids[idx]
        c["symbol"] = self.sym[idx]
        c["order_id"] = [oid for _, oid in pairs]
        c["action"] = _CANCEL
        return c

    def restart(self, sim):
        pairs = [(i, oid) for i, live in enumerate(self.live) for oid in live]
        if pairs:
            self._apply(self._cancels(pairs, sim.now_ns))
        for live in self.live:
            live.clear()


class NoisePopulation(_Population):
    """Noise traders (:class:`lob.sim.NoiseTrader`'s rules) as arrays: Poisson market orders of a random side,
    symbol (among the member's) and size.

    Parameters
    ----------
    name : str
    symbols : list of str
        The symbols every member trades.
    owners : list of str
        One owner name per member.
    rate_per_s : float or one per member
    size : (low, high) or one pair per member
    lot_multiple : int
    """

    kind = "noise"

    def __init__(self, name: str, symbols, owners, rate_per_s=2.0, size=(1, 3), lot_multiple: int = 100):
        super().__init__(name, owners, list(symbols))
        self.rate = _column("rate_per_s", rate_per_s, self.n)
        sizes = np.asarray(size, dtype=np.int64)
        if sizes.shape == (2,):
            sizes = np.tile(sizes, (self.n, 1))
        if sizes.shape != (self.n, 2) or (sizes[:, 0] < 1).any() or (sizes[:, 1] < sizes[:, 0]).any():
            raise ConfigError(f"size must be (low, high) or one pair per member, got {size!r}")
        self.lo, self.hi = sizes[:, 0], sizes[:, 1]
        self.lot_multiple = int(lot_multiple)

    def bind(self, sim, rng):
        super().bind(sim, rng)
        self.sym = np.array([sim.exchange.symbol_index(s) for s in self.symbols], dtype=np.int64)

    def events(self, sim, ts, dt_s, values):
        counts = self.rng.poisson(self.rate * dt_s, size=(len(ts), self.n))
        total = int(counts.sum())
        if not total:
            return None
        rng = self.rng
        step_of, members = np.nonzero(counts)
        rep = counts[step_of, members]
        step_of, members = np.repeat(step_of, rep), np.repeat(members, rep)
        ev = np.zeros(total, dtype=lob.EVENT_DTYPE)
        ev["ts_ns"] = ts[step_of]
        ev["owner"] = self.owner_ids[members]
        ev["symbol"] = self.sym[rng.integers(0, len(self.sym), total)]
        ev["side"] = rng.integers(0, 2, total)
        ev["qty_lots"] = rng.integers(self.lo[members], self.hi[members] + 1) * self.lot_multiple
        ev["type"] = _MARKET
        ev["action"] = _ADD
        return ev


class MomentumPopulation(_Population):
    """Momentum traders (:class:`lob.sim.MomentumTrader`'s rules) as arrays: a member whose symbol's mid has
    moved at least ``threshold_ticks`` over ``lookback_s`` sends a market order with the move (at most
    ``rate_per_s`` per second, Poisson), within ``max_position`` (from its own fills)."""

    kind = "momentum"

    def __init__(self, name: str, symbols, owners=None, lookback_s: float = 5.0, threshold_ticks=3,
                 rate_per_s=0.5, size=200, max_position=2000):
        symbols = list(symbols)
        owners = owners or [f"{name}_{i}" for i in range(len(symbols))]
        super().__init__(name, owners, symbols)
        if not lookback_s > 0:
            raise ConfigError(f"lookback_s must be > 0, got {lookback_s!r}")
        self.lookback_ns = int(lookback_s * 1e9)
        self.threshold = _column("threshold_ticks", threshold_ticks, self.n)
        self.rate = _column("rate_per_s", rate_per_s, self.n)
        self.size = _column("size", size, self.n, np.int64)
        self.max_position = _column("max_position", max_position, self.n, np.int64)
        self.position = np.zeros(self.n, dtype=np.int64)

    def bind(self, sim, rng):
        super().bind(sim, rng)
        self.sym = [sim.exchange.symbol_index(s) for s in self.symbols]
        self.set_history([[] for _ in range(self.n)])
        self._member = {int(o): i for i, o in enumerate(self.owner_ids)}
        sim.exchange.add_listener(self._on_apply)

    def set_history(self, hist) -> None:
        """Replace every member's (ts, mid) samples, oldest first (the compiled loop hands its own back)."""
        self._hist = hist
        self._head = [0] * self.n

    def _on_apply(self, events, reports, fills) -> None:
        # positions from the members' own fills (as taker: their market orders)
        if len(fills):
            own = self._members(fills["taker_owner"]) >= 0
            if own.any():
                for f in fills[own].tolist():
                    self.position[self._member[f[7]]] += f[3] if f[9] == 0 else -f[3]

    def events(self, sim, ts, dt_s, values):
        # decides once, at the start of the block, on the book as it is (the mid against the lookback)
        ex = sim.exchange
        now = int(ts[0])
        horizon = now - self.lookback_ns
        counts = self.rng.poisson(self.rate * (dt_s * len(ts)))
        act = []
        for i in range(self.n):
            b, a = ex.best_ticks(self.sym[i])
            if not (b and a):
                continue
            mid = (b + a) / 2
            h, k = self._hist[i], self._head[i]
            h.append((now, mid))
            while len(h) - k > 1 and h[k + 1][0] <= horizon:
                k += 1
            if k > 4096:                                  # drop the consumed samples now and then
                del h[:k]
                k = 0
            self._head[i] = k
            if not counts[i] or h[k][0] > horizon:
                continue
            move = mid - h[k][1]
            if abs(move) < self.threshold[i]:
                continue
            side = 0 if move > 0 else 1
            if (side == 0 and self.position[i] >= self.max_position[i]) or \
                    (side == 1 and self.position[i] <= -self.max_position[i]):
                continue
            act.append((i, side))
        if not act:
            return None
        idx = np.array([i for i, _ in act])
        ev = np.zeros(len(act), dtype=lob.EVENT_DTYPE)
        ev["ts_ns"] = now
        ev["owner"] = self.owner_ids[idx]
        ev["symbol"] = [self.sym[i] for i in idx]
        ev["side"] = [sd for _, sd in act]
        ev["qty_lots"] = self.size[idx]
        ev["type"] = _MARKET
        ev["action"] = _ADD
        return ev
