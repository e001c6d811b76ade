"""``Simulator``: a clock and agents trading on a ``lob.Exchange`` (DESIGN §7).

Each step advances the clock by ``step_ns`` (``clock="sim"``: event time only, deterministic; ``"realtime"``:
the wall clock) and lets every enabled agent act once, in an order drawn from the simulator's own
generator. An agent that raises is isolated: the exception becomes an incident in :attr:`incidents`, the
agent is disabled and comes back (``restart``) after a backoff of ``backoff_steps * 2**(failures - 1)``
steps (at most ``max_backoff_steps``), while the others go on.
"""
from __future__ import annotations

import time
import traceback

import numpy as np
import pandas as pd

from lob.errors import ConfigError
from lob.sim import _fast

__all__ = ["Simulator", "DEFAULT_MARKET"]

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
    agents : iterable of lob.sim.Agent
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
    block_steps : int
        With the sim clock, ``run`` advances this many steps at a time: the populations
        (:mod:`lob.sim.populations`) write the orders of every step of the block, each at its step's time, into
        one batch applied at once, then the other agents act once, at the end of the block (a
        :class:`StrategyAgent` counts the block's steps towards its ``every_steps``). 1: every agent acts
        every step.
    compiled : bool
        Let ``run`` take the compiled loop (:mod:`lob.sim._simloop`) when every agent has a compiled form (the
        array populations, the built-in makers' compiled forms) and the clock is ``"sim"``; the listeners of the
        exchange then get a run's requests and outputs in batches of up to 65,536 requests, after the fact (see
        docs/simulation.md). ``compiled_path`` tells which path the last ``run`` took. False: always the Python
        path (every batch and request reaches the listeners as it happens).

    Examples
    --------
    >>> sim = Simulator.default(seed=1)
    >>> sim.run(steps=200)
    >>> sorted(sim.exchange.symbols), sim.exchange.seq > 0
    (['AAPL', 'GOOGL', 'MSFT', 'TSLA'], True)
    """

    def __init__(self, exchange, agents=(), clock: str = "sim", seed: int = 0, step_ns: int = 10_000_000,
                 start_ns: int | None = None, fundamental_vol_bps: float = 0.0, risk=None,
                 backoff_steps: int = 10, max_backoff_steps: int = 1000, block_steps: int = 1,
                 compiled: bool = True):
        if clock not in ("sim", "realtime"):
            raise ConfigError(f"clock must be 'sim' or 'realtime', got {clock!r}")
        if not (isinstance(step_ns, int) and step_ns > 0):
            raise ConfigError(f"step_ns must be a positive int, got {step_ns!r}")
        if not (isinstance(seed, (int, np.integer)) and seed >= 0):
            raise ConfigError(f"seed must be a non-negative int, got {seed!r}")
        if not (isinstance(backoff_steps, int) and backoff_steps >= 1 and max_backoff_steps >= backoff_steps):
            raise ConfigError(f"backoff_steps must be an int >= 1 and <= max_backoff_steps, got {backoff_steps!r}")
        if not (isinstance(block_steps, int) and block_steps >= 1):
            raise ConfigError(f"block_steps must be an int >= 1, got {block_steps!r}")
        if not isinstance(compiled, bool):
            raise ConfigError(f"compiled must be True or False, got {compiled!r}")
        self.exchange = exchange
        self.compiled = compiled
        #: "compiled" or "python: <reason>": the path the last ``run`` took (None before a run)
        self.compiled_path: str | None = None
        self.block_steps = block_steps
        self.block_len = 1
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
        from lob.sim.agents import Router

        self.router = Router(exchange)
        self.risk = risk
        if risk is not None:
            risk.attach(exchange, clock=self._clock)
        self.recorder = None
        for a in agents:
            self.add_agent(a)

    # --- agents ---------------------------------------------------------------------------------
    def set_fundamental(self, values) -> None:
        """The fundamental value (ticks) of every symbol, in symbol-index order (the compiled loop hands back
        where its random walk ended)."""
        self._fund = dict(enumerate(values))

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
        self._block(1)

    def _fundamental_path(self, steps: int):
        # advance each fundamental value `steps` steps (a Gaussian random walk in log); (steps x symbols) ticks
        if self._fund is None:
            return None
        sd = self.fundamental_vol_bps / 1e4 * np.sqrt(self.step_s)
        moves = np.exp(sd * self._fund_rng.standard_normal((steps, len(self._fund))))
        f = np.fromiter(self._fund.values(), dtype=float, count=len(self._fund))
        path = np.empty((steps, len(f)))
        for k in range(steps):
            f = f * moves[k]
            path[k] = f
        for sym, v in zip(self._fund, f.tolist()):
            self._fund[sym] = v
        return np.rint(path).astype(np.int64)

    def _block(self, steps: int) -> None:
        # `steps` steps at once: the populations' orders of every step in one batch (time order), then the
        # other agents act once at the end of the block
        if self.clock == "realtime":
            prev = self.now_ns
            self.now_ns = max(prev + 1, time.time_ns())
            # agents draw their activity for the time that really passed (a host may step at any period),
            # at most a second's worth after a pause
            self.step_s = min(1.0, (self.now_ns - prev) / 1e9)
            ts = np.array([self.now_ns], dtype=np.int64)
        else:
            ts = self.now_ns + self.step_ns * np.arange(1, steps + 1, dtype=np.int64)
            self.now_ns = int(ts[-1])
        self.block_len = steps
        values = self._fundamental_path(steps)
        order = self._rng.permutation(len(self._slots))
        batches, later = [], []
        for i in order:
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
            if hasattr(slot.agent, "events"):            # a population: its orders join the block's batch
                out = []
                if self._guard(slot, "events", ts, self.step_s, values, out=out):
                    slot.steps += steps
                    if out[0] is not None and len(out[0]):
                        batches.append(out[0])
            else:
                later.append(slot)
        if batches:
            ev = batches[0]
            if len(batches) > 1:
                from lob.sim.populations import join

                ev = join(batches)
                ev = ev[np.argsort(ev["ts_ns"], kind="stable")]
            if self.exchange.risk is not None:
                self._pre_trade(ev)
            self.exchange.apply(ev)
        for slot in later:
            if self._guard(slot, "step"):
                slot.steps += 1
        self.steps += steps

    def _pre_trade(self, ev) -> None:
        # the exchange's pre-trade check on each new order of a population batch, in time order (as the
        # per-call path does): a refused order goes through the engine as a rejection with the risk reason
        check = self.exchange.risk.check_submit
        adds = np.flatnonzero(ev["action"] == 0)
        if not len(adds):
            return
        rows = ev[["symbol", "side", "qty_lots", "price_ticks", "owner", "type", "ts_ns"]][adds].tolist()
        reserved = ev["reserved"]
        for i, (sym, side, qty, price, owner, typ, ts) in zip(adds.tolist(), rows):
            r = check(sym, side, qty, price, owner, typ, ts)
            if r:
                reserved[i] = r

    def _guard(self, slot: _Slot, method: str, *args, out=None) -> bool:
        try:
            r = getattr(slot.agent, method)(self, *args)
            if out is not None:
                out.append(r)
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
        the wall clock. With ``block_steps`` > 1 (sim clock), steps go in blocks (see the class docstring)."""
        if (steps is None) == (until is None):
            raise ConfigError(f"give exactly one of steps and until, got steps={steps!r}, until={until!r}")
        if steps is not None:
            if not (isinstance(steps, (int, np.integer)) and steps >= 0):
                raise ConfigError(f"steps must be a non-negative int, got {steps!r}")
            left = int(steps)
            if self.clock == "sim":
                self._run_sim(left)
                return
            while left > 0:
                self._pace()
                self._block(1)
                left -= 1
            return
        if not isinstance(until, (int, np.integer)):
            raise ConfigError(f"until must be an int (ns), got {until!r}")
        if self.clock == "sim":
            self._run_sim(max(0, (until - self.now_ns) // self.step_ns))
            return
        while self.now_ns <= until:
            self._pace()
            if time.time_ns() > until:
                break
            self._block(1)

    def _run_sim(self, left: int) -> None:
        # sim clock: blocks of block_steps, through the compiled loop when every agent has a compiled form
        if left and not all(s.started for s in self._slots):
            k = min(self.block_steps, left)          # the first block starts the agents (Python path)
            self._block(k)
            left -= k
        if not left:
            return
        why = _fast.why_not(self)
        self.compiled_path = "compiled" if why is None else f"python: {why}"
        if why is None:
            _fast.run(self, left)
            return
        while left > 0:
            k = min(self.block_steps, left)
            self._block(k)
            left -= k

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
        noise traders across symbols (the last three as array populations, :mod:`lob.sim.populations`, run in
        blocks of 5 steps, the makers' period). Books are several levels deep from the first step. With the sim
        clock its runs go through the compiled loop (``compiled``; ``compiled_path`` tells).

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
        from lob.sim.agents import StrategyAgent
        from lob.sim.populations import MomentumPopulation, NoisePopulation, ZeroIntelligencePopulation

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
        agents = [StrategyAgent(f"mm_{name}", AdaptiveMarketMaker(
            base_spread_ticks=2, vol_mult=0.5, size=100, max_position=2000, skew_ticks=4, requote_ticks=1), name,
            every_steps=5) for name in market]
        # the background flow as three array populations (one batch per step each), owners as single traders
        syms = list(market)
        agents.append(ZeroIntelligencePopulation(
            "zi", [s for s in syms for _ in (1, 2)], owners=[f"zi_{s}_{k}" for s in syms for k in (1, 2)],
            rate_per_s=15.0, depth_ticks=[d for _ in syms for d in (6.0, 10.0)]))
        agents.append(MomentumPopulation("momo", syms, owners=[f"momo_{s}" for s in syms]))
        agents.append(NoisePopulation("noise", syms, owners=["noise_1", "noise_2"], rate_per_s=4.0,
                                      size=[(1, 3), (1, 2)]))
        kw.setdefault("fundamental_vol_bps", 2.0)
        if clock not in ("sim", "realtime"):
            raise ConfigError(f"clock must be 'sim' or 'realtime', got {clock!r}")
        if not warmup_s >= 0:
            raise ConfigError(f"warmup_s must be >= 0, got {warmup_s!r}")
        step_ns = kw.get("step_ns", 10_000_000)
        warmup_steps = int(warmup_s * 1e9) // step_ns
        if clock == "realtime" and kw.get("start_ns") is None:
            kw["start_ns"] = time.time_ns() - warmup_steps * step_ns
        kw.setdefault("block_steps", 5)        # the makers' decision period: populations batch in between
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
