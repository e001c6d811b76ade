"""lob.sim: determinism for a seed, a live-looking default market, agent failure isolation with backoff,
the clock, the risk manager in the path, and every market maker run in the simulator with its scorecard."""
import numpy as np
import pytest

import lob
from lob.errors import ConfigError
from lob.mm import GLFT, AdaptiveMarketMaker, AvellanedaStoikov, GridMaker
from lob.risk import RiskLimits, RiskManager
from lob.sim import Agent, NoiseTrader, Simulator, StrategyAgent, ZeroIntelligenceTrader
from lob.sim.simulator import DEFAULT_START_NS


def _tape(sim):
    return [tuple(sim.exchange.trades(s)[["price", "qty"]].itertuples(index=False)) for s in sim.exchange.symbols]


def test_same_seed_same_market_and_another_seed_another():
    a, b, c = (Simulator.default(seed=s) for s in (42, 42, 43))
    for sim in (a, b, c):
        sim.run(steps=1500)
    assert a.exchange.state_hash() == b.exchange.state_hash()
    assert _tape(a) == _tape(b)
    assert a.exchange.seq == b.exchange.seq
    assert a.exchange.state_hash() != c.exchange.state_hash()


def test_default_market_looks_live():
    sim = Simulator.default(seed=3)
    # it starts warmed up (5 s of event time), with trades on every tape
    assert sim.now_ns == DEFAULT_START_NS + 500 * sim.step_ns
    assert all(len(sim.exchange.trades(s)) > 0 for s in sim.exchange.symbols)
    sim.run(steps=5500)                               # one minute of event time in all
    ex = sim.exchange
    assert ex.symbols == ["AAPL", "GOOGL", "MSFT", "TSLA"]
    for s in ex.symbols:
        d = ex.book(s).depth(10)
        assert len(d["bids"]) >= 5 and len(d["asks"]) >= 5, s
        tape = ex.trades(s)
        assert len(tape) > 100, s
        prices = tape["price"].to_numpy()
        assert prices.max() - prices.min() >= 0.05, s              # prices wander
        assert tape["ts_ns"].is_monotonic_increasing
        assert tape["ts_ns"].iloc[-1] <= sim.now_ns
    assert sim.incidents == []
    ex.check_integrity()
    assert {a.owner for a in sim.market_makers} == {f"mm_{s}" for s in ex.symbols}


class Flaky(Agent):
    """Fails at the steps listed, counts its successful steps and restarts."""

    def __init__(self, name, fail_at):
        super().__init__(name)
        self.fail_at, self.n, self.ok, self.restarts = set(fail_at), 0, 0, 0

    def step(self, sim):
        self.n += 1
        if sim.steps in self.fail_at:
            raise RuntimeError(f"boom at {sim.steps}")
        self.ok += 1

    def restart(self, sim):
        self.restarts += 1


def test_a_failing_agent_is_isolated_and_restarted_with_backoff():
    ex = lob.Exchange(symbols=["X"], ref_price=100.0)
    flaky = Flaky("flaky", fail_at={5, 16})
    zi = ZeroIntelligenceTrader("zi", "X", rate_per_s=50)
    sim = Simulator(ex, [flaky, zi], seed=1, backoff_steps=10)
    sim.run(steps=60)
    # fails at step 5 -> back at step 15 (10 steps); fails again at 16 -> back at 36 (20 steps)
    inc = sim.incidents
    assert [(i["step"], i["agent"], i["error"]) for i in inc] == [(5, "flaky", "RuntimeError"),
                                                                 (16, "flaky", "RuntimeError")]
    assert "boom at 16" in inc[1]["message"] and "20 steps" in inc[1]["message"]
    assert flaky.restarts == 2
    assert flaky.n == 60 - 9 - 19               # skipped steps 6..14 and 17..35
    health = {h["name"]: h for h in sim.agent_health()}
    assert health["flaky"]["failures"] == 2 and health["flaky"]["status"] == "running"
    assert health["zi"]["failures"] == 0
    assert len(ex.trades("X")) > 0 or ex.book("X").best_bid() is not None   # the others went on


def test_a_strategy_that_raises_does_not_stop_the_market():
    class Broken:
        def on_book(self, ctx):
            raise ValueError("bad model")

    ex = lob.Exchange(symbols=["X"], ref_price=100.0)
    sim = Simulator(ex, [StrategyAgent("bad", Broken(), "X"), ZeroIntelligenceTrader("zi", "X", rate_per_s=40),
                         NoiseTrader("n", "X", rate_per_s=10, lot_multiple=1)], seed=2, backoff_steps=5,
                    max_backoff_steps=20)
    sim.run(steps=200)
    assert len(sim.incidents) >= 5 and {i["agent"] for i in sim.incidents} == {"bad"}
    assert sim.agent("bad") is sim.agents[0]
    assert len(ex.trades("X")) > 10


def test_run_until_and_the_exchange_clock():
    ex = lob.Exchange(symbols=["X"], ref_price=50.0)
    sim = Simulator(ex, [ZeroIntelligenceTrader("zi", "X")], seed=0, start_ns=0, step_ns=1_000_000)
    sim.run(until=25_500_000)
    assert sim.steps == 25 and sim.now_ns == 25_000_000
    assert ex.clock() == sim.now_ns
    assert ex.submit("X", "buy", 1, price=1.0).ts_ns == 25_000_000
    with pytest.raises(ConfigError, match="steps"):
        sim.run(steps=1, until=5)
    with pytest.raises(ConfigError, match="clock"):
        Simulator(ex, [], clock="wall")


def test_realtime_clock_follows_the_wall():
    import time

    t = time.time_ns()
    live = Simulator.default(seed=1, clock="realtime", warmup_s=2.0)
    # warmed up in event time that ends now: a tape already, and the clock is the wall's
    assert live.clock == "realtime" and t - 2_100_000_000 < live.now_ns <= time.time_ns()
    assert sum(len(live.exchange.trades(s)) for s in live.exchange.symbols) > 0

    ex = lob.Exchange(symbols=["X"], ref_price=50.0)
    sim = Simulator(ex, [ZeroIntelligenceTrader("zi", "X")], clock="realtime", step_ns=2_000_000)
    t0 = time.time_ns()
    sim.run(steps=5)
    assert t0 <= sim.now_ns <= time.time_ns() and sim.steps == 5
    # a host stepping at its own period (a server every 100 ms): a step covers the time that passed
    time.sleep(0.05)
    before = sim.now_ns
    sim.step()
    assert sim.step_s == pytest.approx((sim.now_ns - before) / 1e9) and sim.step_s >= 0.05


def test_risk_manager_in_the_simulated_order_path():
    ex = lob.Exchange(symbols=["X"], ref_price=100.0)
    rm = RiskManager(RiskLimits())
    sim = Simulator(ex, [ZeroIntelligenceTrader("zi", "X", rate_per_s=40),
                         NoiseTrader("noise", "X", rate_per_s=50, size=(1, 1))], seed=4, risk=rm)
    rm.set_limits(RiskLimits(max_position=300, rate_per_s=20, burst=5), owner="noise")
    sim.run(steps=1000)
    assert rm.counts.get("risk_throttle", 0) > 0 and rm.counts.get("risk_position_limit", 0) > 0
    noise = ex.owner_id("noise")
    assert abs(rm.ledger.position(noise, 0)) <= 300
    assert rm.latency()["count"] > 500


def _strategy_sim(strategy, seed=5):
    ex = lob.Exchange(symbols=["X"], ref_price=100.0)
    agents = [StrategyAgent("mm", strategy, "X"),
              ZeroIntelligenceTrader("zi1", "X", rate_per_s=30, depth_ticks=4),
              ZeroIntelligenceTrader("zi2", "X", rate_per_s=30, depth_ticks=8),
              NoiseTrader("noise", "X", rate_per_s=20, size=(1, 6))]
    sim = Simulator(ex, agents, seed=seed, fundamental_vol_bps=2.0)
    sim.record(["mm"])
    return sim


@pytest.mark.parametrize("make", [
    lambda: AdaptiveMarketMaker(size=100, max_position=1000, base_spread_ticks=2),
    lambda: AvellanedaStoikov(size=100, max_position=1000, gamma=0.05, horizon_s=1.0),
    lambda: GLFT(size=100, max_position=1000, gamma=0.05, refit_every=20),
    lambda: GridMaker(size=100, max_position=1000, levels=3, spacing_ticks=1),
], ids=["adaptive", "avellaneda_stoikov", "glft", "grid"])
def test_each_strategy_runs_in_the_simulator_with_a_scorecard(make):
    strategy = make()
    sim = _strategy_sim(strategy)
    sim.run(steps=4000)
    assert sim.incidents == []
    ex = sim.exchange
    sc = sim.scorecard("mm")
    s = sc.summary().loc["ALL"]
    assert s["fills"] > 5
    # independent PnL: the fills seen by a second path (the exchange tape of mm's trades is not kept, so the
    # strategy agent's own tracker), marked at the final mid
    tr = sim.agent("mm").tracker
    b, a = ex._engine.best_prices(0)
    pos, cash = tr.position.get(0, 0), tr.cash.get(0, 0)
    assert s["final_position"] == pos
    assert s["pnl"] == pytest.approx((cash + pos * (b + a) / 2) * 0.01)
    assert abs(pos) <= 1000 + 100                       # its limit (+ at most one quote in flight)
    assert 0 < s["fill_ratio"] <= 1
    for h in ("markout_1s", "markout_10s"):
        assert np.isfinite(s[h])
    if isinstance(strategy, GLFT):
        assert strategy.fits > 0                        # A, k were fitted from the simulated trades


def test_the_simulated_requests_replayed_in_one_batch_give_the_same_venue():
    sim = Simulator.default(seed=9, record=False, warmup_s=0)
    chunks = []
    sim.exchange.add_listener(lambda events, reports, fills: chunks.append(events.tobytes()))
    sim.run(steps=800)
    events = np.frombuffer(b"".join(chunks), dtype=lob.EVENT_DTYPE)
    assert len(events) > 1000
    ex = lob.Exchange(marketdata=False)
    for spec in sim.exchange.specs():
        ex.add_symbol(**spec)
    ex.apply(np.ascontiguousarray(events))
    assert ex.state_hash() == sim.exchange.state_hash()


def test_simulator_and_risk_manager_render_in_a_notebook():
    sim = Simulator.default(seed=0, warmup_s=1.0)
    html = sim._repr_html_()
    assert "<b>Simulator</b>" in html and "mm_AAPL" in html and "AAPL" in html
    assert "<b>RiskManager</b>" in sim.risk._repr_html_()


# --- array populations (issue #13) ---------------------------------------------------------------
from lob.sim.populations import MomentumPopulation, NoisePopulation, ZeroIntelligencePopulation


def _population_sim(seed=3, block_steps=1):
    ex = lob.Exchange(symbols=["X", "Y"], ref_price=100.0)
    zi = ZeroIntelligencePopulation("zi", ["X", "X", "Y"], rate_per_s=[30.0, 20.0, 30.0], depth_ticks=[3.0, 6.0, 3.0],
                                    cancel_per_s=0.5, max_orders=25)
    noise = NoisePopulation("noise", ["X", "Y"], owners=["n1", "n2"], rate_per_s=[6.0, 3.0], size=[(1, 3), (1, 1)])
    momo = MomentumPopulation("momo", ["X", "Y"], lookback_s=0.5, threshold_ticks=1, rate_per_s=5.0, size=100,
                              max_position=300)
    sim = Simulator(ex, [zi, noise, momo], seed=seed, fundamental_vol_bps=5.0, block_steps=block_steps)
    return sim, zi, noise, momo


@pytest.mark.parametrize("block_steps", [1, 5])
def test_populations_keep_their_open_orders_and_positions_from_the_venue(block_steps):
    sim, zi, noise, momo = _population_sim(block_steps=block_steps)
    fills = []
    sim.exchange.add_listener(lambda e, r, f: fills.append(f.copy()))
    sim.run(steps=3000)
    ex = sim.exchange
    ex.check_integrity()
    assert sim.incidents == [] and all(len(ex.trades(s)) > 50 for s in ex.symbols)
    # each member's open orders, as the population keeps them, are exactly its resting orders in the books
    for i, owner in enumerate(zi.owners):
        oid = ex.owner_id(owner)
        sym = int(zi.sym[i])
        book = ex._engine.orders(sym)
        mine = book[book["owner"] == oid]
        assert dict(zip(mine["order_id"].tolist(), mine["qty_lots"].tolist())) == zi.live[i], owner
        assert len(zi.live[i]) <= 25 + 10                  # max_orders, give or take one block's arrivals
    # momentum positions, kept from the members' own fills, are the positions of the venue's output
    f = np.concatenate(fills)
    for i, owner in enumerate(momo.owners):
        mine = f[f["taker_owner"] == ex.owner_id(owner)]
        assert momo.position[i] == int(np.where(mine["aggressor"] == 0, mine["qty_lots"], -mine["qty_lots"]).sum())
    assert np.abs(momo.position).sum() > 0 and (np.abs(momo.position) <= 300 + 100).all()


def test_populations_are_deterministic_and_blocks_change_only_the_grouping():
    runs = []
    for seed, block in ((7, 5), (7, 5), (8, 5)):
        sim = _population_sim(seed, block)[0]
        sim.run(until=sim.now_ns + 12_000 * sim.step_ns + sim.step_ns // 2)
        assert sim.steps == 12_000                          # blocks stop at `until`
        runs.append(sim.exchange.state_hash())
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_population_parameters_are_checked():
    with pytest.raises(ConfigError, match="rate_per_s"):
        ZeroIntelligencePopulation("zi", ["X", "Y"], rate_per_s=[1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="owners"):
        NoisePopulation("n", ["X"], owners=["a", "a"])
    with pytest.raises(ConfigError, match="size"):
        NoisePopulation("n", ["X"], owners=["a"], size=(3, 1))
    with pytest.raises(ConfigError, match="block_steps"):
        Simulator(lob.Exchange(symbols=["X"]), [], block_steps=0)


def test_a_population_stepped_on_its_own():
    sim, zi, noise, momo = _population_sim()
    sim.run(steps=10)
    before = sim.exchange.seq
    for _ in range(200):
        zi.step(sim)                                       # a host calling step() itself: one batch each
        sim.now_ns += sim.step_ns
    assert sim.exchange.seq > before


@pytest.mark.parametrize("make", [
    lambda: AdaptiveMarketMaker(size=100, max_position=1000, base_spread_ticks=2),
    lambda: AvellanedaStoikov(size=100, max_position=1000, gamma=0.05, horizon_s=1.0),
    lambda: GLFT(size=100, max_position=1000, gamma=0.05, refit_every=20),
    lambda: GridMaker(size=100, max_position=1000, levels=3, spacing_ticks=1),
], ids=["adaptive", "avellaneda_stoikov", "glft", "grid"])
def test_a_maker_decides_the_same_in_its_compiled_form_in_the_simulator(make):
    tapes, states = [], []
    for compiled in (False, True):
        strategy = make()
        ex = lob.Exchange(symbols=["X"], ref_price=100.0)
        agents = [StrategyAgent("mm", strategy, "X", compiled=compiled),
                  ZeroIntelligenceTrader("zi1", "X", rate_per_s=30, depth_ticks=4),
                  NoiseTrader("noise", "X", rate_per_s=20, size=(1, 6))]
        sim = Simulator(ex, agents, seed=5, fundamental_vol_bps=2.0)
        tape = []
        ex.add_listener(lambda e, r, f: tape.extend(f[["ts_ns", "price_ticks", "qty_lots", "aggressor"]].tolist()))
        sim.run(steps=2500)
        assert (sim.agent("mm")._loop is not None) == compiled and sim.incidents == []
        tapes.append(tape)
        states.append((strategy.position_lots, strategy.cash_ticks, strategy.n_fills, sim.agent("mm").intents))
    assert len(tapes[0]) > 50 and tapes[0] == tapes[1]
    assert states[0] == states[1] and states[0][2] > 0


def test_population_orders_pass_the_risk_check():
    sim, zi, noise, momo = _population_sim(block_steps=5)
    rm = RiskManager(RiskLimits())
    rm.attach(sim.exchange, clock=sim._clock)
    sim.exchange.clock = sim._clock
    rm.set_limits(RiskLimits(max_qty=300), owner="zi_0")            # zi_0 draws 100..500 a time
    sim.run(steps=1000)
    assert rm.counts.get("risk_max_qty", 0) > 0
    assert all(q <= 300 for q in zi.live[0].values())                 # only the accepted ones rest
    ex = sim.exchange
    mine = ex._engine.orders(0)
    assert (mine[mine["owner"] == ex.owner_id("zi_0")]["qty_lots"] <= 300).all()
