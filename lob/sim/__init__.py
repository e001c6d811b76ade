"""Market simulation: a clock and agents on a ``lob.Exchange`` (DESIGN §7).

``Simulator.default(seed=...)`` is a live-looking 4-symbol market (AAPL, GOOGL, MSFT, TSLA) with market makers,
zero-intelligence, noise and momentum traders; ``sim.run(steps=N)`` or ``sim.run(until=ts_ns)`` advances it and
``sim.exchange`` is its venue. Runs with ``clock="sim"`` are deterministic for a seed.
"""
from lob.sim.agents import (Agent, MomentumTrader, NoiseTrader, OrderTracker, Router, StrategyAgent,
                            ZeroIntelligenceTrader)
from lob.sim.populations import MomentumPopulation, NoisePopulation, ZeroIntelligencePopulation
from lob.sim.simulator import DEFAULT_MARKET, Simulator

__all__ = ["Simulator", "DEFAULT_MARKET", "Agent", "ZeroIntelligenceTrader", "NoiseTrader", "MomentumTrader",
           "StrategyAgent", "OrderTracker", "Router", "ZeroIntelligencePopulation", "NoisePopulation",
           "MomentumPopulation"]
