"""What drives the server's exchange: a simulated market, a replay, or nothing (an exchange given as is).

A *market* is a small object with ``exchange``, ``step()``, ``agents()`` (health rows), ``incidents()``
(new incident dicts since the last call) and ``market_makers`` (owner names whose inventory and PnL the
dashboard shows). The server calls ``step()`` on its IOLoop at a fixed period; nothing here imports tornado.

``default_market(seed)`` uses ``lob.sim.Simulator.default(seed)`` when that package is installed, and
otherwise :class:`BotMarket`, a small built-in market (one market maker per symbol and a few noise traders,
each agent supervised: a failing agent is isolated and restarted with exponential backoff).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

import lob
from lob.errors import ConfigError

__all__ = ["Supervisor", "BotMarket", "ReplayMarket", "SimMarket", "ExchangeMarket", "default_market",
           "replay_market", "DEFAULT_SYMBOLS"]

DEFAULT_SYMBOLS = {"AAPL": 190.00, "GOOGL": 175.00, "MSFT": 420.00, "TSLA": 250.00}


class Supervisor:
    """Run one agent, isolate its failures and restart it with exponential backoff.

    Parameters
    ----------
    name : str
    agent : object with ``act(exchange, rng)`` and optionally ``restart(exchange)``
    base_s, max_s : float
        First and largest backoff; the backoff doubles with each consecutive failure.
    healthy_after_s : float
        Running this long without a failure resets the backoff.
    clock : callable
        Seconds (monotonic), injectable for tests.
    """

    def __init__(self, name, agent, base_s=0.5, max_s=30.0, healthy_after_s=30.0, clock=time.monotonic):
        self.name = name
        self.agent = agent
        self.base_s, self.max_s, self.healthy_after_s = base_s, max_s, healthy_after_s
        self.clock = clock
        self.failures = 0            # consecutive
        self.restarts = 0
        self.last_error = None
        self.resume_at = None        # set while waiting out a backoff
        self.last_failure_at = None
        self.status = "running"

    def run(self, exchange, rng, incidents: list) -> None:
        now = self.clock()
        if self.resume_at is not None:
            if now < self.resume_at:
                return
            self.resume_at = None
            self.restarts += 1
            try:
                restart = getattr(self.agent, "restart", None)
                if restart is not None:
                    restart(exchange)
            except Exception as e:      # a restart that fails counts as another failure
                self._fail(e, now, incidents)
                return
            self.status = "running"
            incidents.append(dict(component="agents", severity="info", agent=self.name,
                                  message=f"agent {self.name} restarted (restart #{self.restarts})"))
        if self.failures and self.last_failure_at is not None and now - self.last_failure_at > self.healthy_after_s:
            self.failures = 0
        try:
            self.agent.act(exchange, rng)
        except Exception as e:          # isolate: one agent's bug never stops the market
            self._fail(e, now, incidents)

    def _fail(self, e, now, incidents):
        self.failures += 1
        backoff = min(self.max_s, self.base_s * 2 ** (self.failures - 1))
        self.resume_at = now + backoff
        self.last_failure_at = now
        self.last_error = f"{type(e).__name__}: {e}"
        self.status = "backoff"
        incidents.append(dict(component="agents", severity="error", agent=self.name,
                              message=f"agent {self.name} failed ({self.last_error}); restart in {backoff:.1f}s"))

    def health(self) -> dict:
        wait = None if self.resume_at is None else max(0.0, self.resume_at - self.clock())
        return dict(name=self.name, status=self.status, failures=self.failures, restarts=self.restarts,
                    last_error=self.last_error, restart_in_s=wait)


# --- the built-in agents ------------------------------------------------------------------------------
class MarketMaker:
    """Quotes a few levels around a fair value that follows a random walk, skewed against its inventory."""

    def __init__(self, symbol, owner, fair, levels=3, size=100, half_spread_ticks=2, skew_ticks_per_lot=0.004):
        self.symbol, self.owner, self.fair0 = symbol, owner, fair
        self.levels, self.size, self.half = levels, size, half_spread_ticks
        self.skew = skew_ticks_per_lot
        self.fail_next = 0           # fault injection (tests, demos): raise on the next acts
        self.restart(None)

    def restart(self, exchange):
        if exchange is not None:
            for oid in self.live:
                exchange.cancel(self.symbol, oid, owner=self.owner)
        self.live: list[int] = []
        self.inventory = 0
        self.fair_ticks = None

    def on_fill(self, side_sign: int, qty: int) -> None:
        self.inventory += side_sign * qty

    def act(self, exchange, rng):
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError(f"injected fault in {self.owner}")
        info = exchange.info(self.symbol)
        if self.fair_ticks is None:
            self.fair_ticks = int(round(self.fair0 / info.tick_size))
        self.fair_ticks += int(rng.choice((-1, 0, 0, 0, 1)))
        for oid in self.live:
            exchange.cancel(self.symbol, oid, owner=self.owner)
        self.live = []
        centre = self.fair_ticks - int(round(self.inventory * self.skew))
        for k in range(self.levels):
            q = self.size * (k + 1)
            for side, px in (("buy", centre - self.half - k), ("sell", centre + self.half + k)):
                r = exchange.submit(self.symbol, side, q, price=px * info.tick_size, owner=self.owner)
                if r.remaining_qty:
                    self.live.append(r.order_id)


class NoiseTrader:
    """Random limit orders near the touch and occasional market orders, over all symbols."""

    def __init__(self, owner, symbols, rate=0.6, market_share=0.25, max_resting=40):
        self.owner, self.symbols, self.rate, self.market_share = owner, list(symbols), rate, market_share
        self.max_resting = max_resting
        self.fail_next = 0
        self.resting: list[tuple[str, int]] = []

    def restart(self, exchange):
        self.resting = []

    def act(self, exchange, rng):
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError(f"injected fault in {self.owner}")
        if rng.random() > self.rate:
            return
        sym = self.symbols[int(rng.integers(len(self.symbols)))]
        book = exchange.book(sym)
        side = "buy" if rng.random() < 0.5 else "sell"
        qty = int(rng.integers(1, 6)) * 10
        if rng.random() < self.market_share:
            exchange.submit(sym, side, qty, type="market", owner=self.owner)
            return
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return
        tick = book.tick_size
        off = int(rng.geometric(0.4)) - 1
        px = bid[0] - off * tick if side == "buy" else ask[0] + off * tick
        r = exchange.submit(sym, side, qty, price=round(px, 2), owner=self.owner)
        if r.remaining_qty:
            self.resting.append((sym, r.order_id))
        if len(self.resting) > self.max_resting:
            s, oid = self.resting.pop(0)
            exchange.cancel(s, oid, owner=self.owner)


class BotMarket:
    """The built-in simulated market: an exchange, one market maker per symbol and noise traders.

    Parameters
    ----------
    seed : int
    symbols : dict
        Symbol -> starting fair price.
    n_noise : int
        Noise traders.
    clock : callable
        Seconds for the supervisors' backoff (injectable for tests).

    Examples
    --------
    >>> m = BotMarket(seed=1)
    >>> for _ in range(20): m.step()
    >>> sorted(m.exchange.symbols), m.exchange.book("AAPL").best_bid() is not None
    (['AAPL', 'GOOGL', 'MSFT', 'TSLA'], True)
    """

    kind = "bots"

    def __init__(self, seed: int = 0, symbols: dict | None = None, n_noise: int = 3, clock=time.monotonic):
        symbols = dict(symbols or DEFAULT_SYMBOLS)
        self.exchange = lob.Exchange(symbols=list(symbols))
        self.rng = np.random.default_rng(seed)
        self.makers = {s: MarketMaker(s, f"mm-{s}", px) for s, px in symbols.items()}
        agents = list(self.makers.values()) + [NoiseTrader(f"noise-{i + 1}", symbols) for i in range(n_noise)]
        self.supervisors = [Supervisor(a.owner, a, clock=clock) for a in agents]
        self.market_makers = [m.owner for m in self.makers.values()]
        self._incidents: list[dict] = []
        self._mm_ids = {}
        self.exchange.add_listener(self._on_outputs)
        self.steps = 0

    def _on_outputs(self, events, reports, fills):
        if not len(fills):
            return
        if not self._mm_ids:
            self._mm_ids = {self.exchange.owner_id(m.owner): m for m in self.makers.values()}
        for f in fills:
            mm = self._mm_ids.get(int(f["maker_owner"]))
            if mm is not None:         # the maker side of a fill: +qty if it bought (aggressor sold)
                mm.on_fill(1 if f["aggressor"] == 1 else -1, int(f["qty_lots"]))
            mm = self._mm_ids.get(int(f["taker_owner"]))
            if mm is not None:
                mm.on_fill(1 if f["aggressor"] == 0 else -1, int(f["qty_lots"]))

    def step(self) -> None:
        """Let every agent act once (each under its supervisor)."""
        for part in self.step_parts():
            part()

    def step_parts(self) -> list:
        """The step as one callable per agent, in order: a server runs them as separate IOLoop callbacks,
        so that requests arriving during a step wait for one agent, not for all of them."""
        ex, rng, inc = self.exchange, self.rng, self._incidents
        parts = [lambda sup=sup: sup.run(ex, rng, inc) for sup in self.supervisors]
        parts.append(self._count_step)
        return parts

    def _count_step(self) -> None:
        self.steps += 1

    def agent(self, name):
        for s in self.supervisors:
            if s.name == name:
                return s.agent
        raise ConfigError(f"no agent named {name!r}; agents: {[s.name for s in self.supervisors]}")

    def agents(self) -> list[dict]:
        return [s.health() for s in self.supervisors]

    def incidents(self) -> list[dict]:
        out, self._incidents = self._incidents, []
        return out


class ExchangeMarket:
    """An exchange driven from outside (a notebook, the Jupyter extension): ``step()`` does nothing."""

    kind = "external"

    def __init__(self, exchange):
        self.exchange = exchange
        self.market_makers: list[str] = []

    def step(self) -> None:
        pass

    def agents(self) -> list[dict]:
        return []

    def incidents(self) -> list[dict]:
        return []


class SimMarket:
    """Adapter over ``lob.sim.Simulator``: ``step()`` runs ``steps_per_tick`` simulator steps."""

    kind = "sim"

    def __init__(self, sim, steps_per_tick: int = 1):
        self.sim = sim
        self.exchange = sim.exchange
        self.steps_per_tick = steps_per_tick
        self._seen = 0
        mm = getattr(sim, "market_makers", None)
        if callable(mm):
            mm = mm()
        self.market_makers = [getattr(m, "owner", m) for m in (mm or [])
                              if isinstance(getattr(m, "owner", m), str)]
        if not self.market_makers:
            self.market_makers = [o for o in self.exchange.owners() if str(o).lower().startswith("mm")]

    def step(self) -> None:
        self.sim.run(steps=self.steps_per_tick)

    def mm_stats(self) -> list[dict] | None:
        """Inventory and mark-to-market PnL of the simulator's market makers, from their strategies' own
        accounts: every fill since the simulator started, its warm-up included (a listener attached after it,
        like the hub's, would show an inventory off by the warm-up's fills). None if a strategy keeps none."""
        rows = []
        for agent in self.sim.market_makers:
            st = getattr(agent, "strategy", None)
            if not hasattr(st, "mark_to_market"):
                return None
            pnl = st.mark_to_market()
            if pnl is not None:          # None: it has not seen a two-sided book yet
                rows.append(dict(owner=agent.owner, symbol=agent.symbol, position=st.position_lots * st._lot,
                                 pnl=round(pnl, 6)))
        return rows

    def agents(self) -> list[dict]:
        fn = getattr(self.sim, "agent_health", None) or getattr(self.sim, "health", None)
        if callable(fn):
            rows = fn()
            if isinstance(rows, dict):
                rows = [dict(name=k, **(v if isinstance(v, dict) else {"status": v})) for k, v in rows.items()]
            return list(rows)
        return [dict(name="simulator", status="running")]

    def incidents(self) -> list[dict]:
        inc = getattr(self.sim, "incidents", None) or []
        if hasattr(inc, "to_dict"):
            inc = inc.to_dict("records")
        inc = list(inc)
        new, self._seen = inc[self._seen:], len(inc)
        return [dict(component="agents", severity=str(d.get("severity", "warning")) if isinstance(d, dict)
                     else "warning", message=str(d.get("message", d)) if isinstance(d, dict) else str(d))
                for d in new]


class ReplayMarket:
    """Replay a recorded day of order-level events into an exchange in real time, streamed chunk by chunk.

    The file is opened by the replay registry (:func:`lob.replay.read`: LOBSTER, ITCH 5.0, DBN MBO, ...), or is
    an ``.npy`` of ``lob.EVENT_DTYPE`` (memory-mapped); either way one chunk of events is held at a time, never
    the whole day (DESIGN §6). Events are applied in file order, each once the replay clock passes its time.

    Parameters
    ----------
    path : path
        ``*_message_N.csv[.gz]`` (its ``*_orderbook_N`` file is found beside it), an ITCH 5.0 file (plain or
        gzip), another order-level format of :func:`lob.replay.read`, or ``*.npy``.
    speed : float
        Event-time seconds replayed per wall-clock second.
    symbol : str, optional
        LOBSTER and ``.npy``: defaults to the file name's prefix before the first ``_``.
    symbols : list of str, optional
        ITCH: the stocks to replay (required: a day holds thousands); each becomes a symbol of the exchange.
    chunk_rows : int
        Events per chunk read from the file.
    """

    kind = "replay"

    def __init__(self, path, speed: float = 1.0, symbol: str | None = None, clock=time.monotonic,
                 symbols=None, chunk_rows: int = 65_536):
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"replay file {str(path)!r} does not exist")
        if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
            raise ConfigError(f"speed must be a positive number, got {speed!r}")
        symbol = symbol or path.name.split("_")[0].split(".")[0].upper()
        self.total: int | None = None       # events in the file, when known before the end
        if path.suffix == ".npy":
            events = np.load(path, mmap_mode="r")
            if events.dtype != lob.EVENT_DTYPE or events.ndim != 1:
                raise ConfigError(f"replay file {str(path)!r} does not hold a 1-d array of lob.EVENT_DTYPE events "
                                  f"(dtype {events.dtype})")
            self.total = len(events)
            names, tick_size = [symbol], None
            chunks = (_one_symbol(events[i:i + chunk_rows]) for i in range(0, len(events), chunk_rows))
        else:
            from lob.replay import detect, read

            if isinstance(symbols, str):
                symbols = [x for x in symbols.split(",") if x]
            fmt = detect(path)
            if fmt == "itch":
                if not symbols:
                    raise ConfigError(f"symbols: an ITCH replay ({path.name}) needs the stocks to replay, e.g. "
                                      f"symbols=['AAPL', 'MSFT'] (lob serve --replay FILE --symbols AAPL,MSFT), "
                                      f"got {symbols!r}")
                symbols = [str(x).upper() for x in symbols]
            options = dict(symbol=symbol) if fmt == "lobster" else {}
            stream = read(path, fmt, chunk_rows=chunk_rows, symbols=symbols, **options)
            if stream.kind != "events":
                raise ConfigError(f"replay file {str(path)!r} is {fmt} ({stream.kind}): lob serve replays "
                                  f"order-level events (LOBSTER, ITCH 5.0, DBN MBO, .npy)")
            chunks = iter(stream)
            names, tick_size = stream.symbols, stream.tick_size
        self._chunks = chunks
        self._chunk = next(chunks, None)
        if self._chunk is None or not len(self._chunk):
            what = f"none of {symbols} has an order in {path.name}" if symbols else f"{path.name} holds no event"
            raise ConfigError(f"symbols: {what}" if symbols else f"replay file {str(path)!r}: {what}")
        self.path = path
        self.exchange = lob.Exchange(symbols=list(names), **({} if tick_size is None else dict(tick_size=tick_size)))
        self.speed = float(speed)
        self.clock = clock
        self.market_makers: list[str] = []
        self._k = 0                 # next row of the current chunk
        self._i = 0                 # events applied
        self._t0 = None
        self._ts0 = int(self._chunk["ts_ns"][0])

    @property
    def done(self) -> bool:
        return self._chunk is None

    def step(self) -> None:
        now = self.clock()
        if self._t0 is None:
            self._t0 = now
        horizon = self._ts0 + int((now - self._t0) * self.speed * 1e9)
        while self._chunk is not None:
            rest = self._chunk["ts_ns"][self._k:]
            later = np.flatnonzero(rest > horizon)
            n = int(later[0]) if len(later) else len(rest)
            if n:
                self.exchange.apply(self._chunk[self._k:self._k + n])
                self._k += n
                self._i += n
            if self._k < len(self._chunk):
                return
            self._chunk, self._k = next(self._chunks, None), 0

    def agents(self) -> list[dict]:
        return [dict(name="replay", status="done" if self.done else "running", position=self._i,
                     total=self.total if self.total is not None else (self._i if self.done else None))]

    def incidents(self) -> list[dict]:
        return []


def _one_symbol(events) -> np.ndarray:
    # a copy of one chunk of the mapped file, as events of the replay's one symbol
    out = np.array(events)
    out["symbol"] = 0
    return out


def default_market(seed: int = 0):
    """The default simulated 4-symbol market (``lob.sim`` when installed, else :class:`BotMarket`)."""
    try:
        from lob.sim import Simulator
    except ImportError:
        return BotMarket(seed=seed)
    # realtime: each server step covers the wall time since the last one, so the market trades at its rate
    return SimMarket(Simulator.default(seed, clock="realtime"))


def replay_market(path, speed: float = 1.0, symbols=None):
    """A :class:`ReplayMarket` over a file (``symbols``: the stocks of an ITCH replay)."""
    return ReplayMarket(path, speed=speed, symbols=symbols)
