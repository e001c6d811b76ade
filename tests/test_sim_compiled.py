"""lob.sim's compiled loop (lob.sim._simloop, issue #13): which runs take it, determinism for a seed, the Python
views it hands back (populations' open orders and positions, the makers' trackers and strategies, the risk
manager's open orders, positions and counters, the scorecard recorder), the listeners' batches, and the same
market as the Python path (the same model: counts alike, not the same draws)."""
import numpy as np
import pytest

import lob
from lob.mm import AdaptiveMarketMaker
from lob.risk import RiskLimits, RiskManager
from lob.sim import Simulator, StrategyAgent, ZeroIntelligenceTrader
from lob.sim.populations import MomentumPopulation, NoisePopulation, ZeroIntelligencePopulation


def _recording(sim):
    out = dict(events=[], reports=[], fills=[])

    def listen(events, reports, fills):
        out["events"].append(events.copy())
        out["reports"].append(reports.copy())
        out["fills"].append(fills.copy())
    sim.exchange.add_listener(listen)
    return out


def _cat(parts, dtype):
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def test_the_default_market_runs_compiled_and_is_deterministic_for_a_seed():
    runs = []
    for seed in (5, 5, 6):
        sim = Simulator.default(seed=seed, warmup_s=1.0)
        sim.run(steps=2000)
        assert sim.compiled_path == "compiled" and sim.incidents == []
        runs.append((sim.exchange.state_hash(), sim.exchange.seq, sim.steps, sim.now_ns))
    assert runs[0] == runs[1] and runs[0][0] != runs[2][0]
    assert runs[0][2] == 100 + 2000                                  # 1 s of warm-up + the run, in steps


def test_python_agents_and_the_switch_send_a_run_down_the_python_path():
    sim = Simulator.default(seed=1, warmup_s=0)
    sim.add_agent(ZeroIntelligenceTrader("zi_py", "AAPL", rate_per_s=5.0))
    sim.run(steps=50)
    assert sim.compiled_path == "python: agent 'zi_py' is a Python agent (ZeroIntelligenceTrader)"
    off = Simulator.default(seed=1, warmup_s=0, compiled=False)
    off.run(steps=50)
    assert off.compiled_path == "python: compiled=False"
    with pytest.raises(lob.errors.ConfigError, match="compiled must be True or False"):
        Simulator(lob.Exchange(symbols=["X"]), compiled="yes")
    py = Simulator.default(seed=1, warmup_s=0)
    py.agents[0].compiled = False                   # a maker in its Python form: starts without a compiled loop
    py.run(steps=20)
    assert py.compiled_path == "python: agent 'mm_AAPL' runs a Python strategy"


def test_listeners_get_every_request_and_output_of_a_compiled_run():
    sim = Simulator.default(seed=9, record=False, warmup_s=0)
    rec = _recording(sim)
    sim.run(steps=3000)
    assert sim.compiled_path == "compiled"
    ev = _cat(rec["events"], lob.EVENT_DTYPE)
    rep = _cat(rec["reports"], lob.REPORT_DTYPE)
    fills = _cat(rec["fills"], lob.FILL_DTYPE)
    assert len(ev) > 3000 and len(fills) > 300
    # every batch's reports point at rows of that batch, and every request has its report
    for e, r in zip(rec["events"], rec["reports"]):
        assert len(r) >= len(e) and set(r["event_index"].tolist()) == set(range(len(e)))
    # the populations cancel only orders they hold (each once): no cancel is refused
    cancels = rep[rep["action"] == int(lob.Action.CANCEL)]
    assert len(cancels) > 100 and (cancels["status"] != int(lob.Status.REJECTED)).all()
    seqs = np.sort(np.concatenate([rep["seq"], fills["seq"]]))
    assert (np.diff(seqs) == 1).all() and seqs[-1] == sim.exchange.seq
    # the same requests through a fresh exchange give the same venue
    ex = lob.Exchange(marketdata=False)
    for spec in sim.exchange.specs():
        ex.add_symbol(**spec)
    ex.apply(ev)
    assert ex.state_hash() == sim.exchange.state_hash()
    # the market data recorder was fed in C: its tape has every trade of each symbol, and bars cover the run
    for i, s in enumerate(sim.exchange.symbols):
        tape = sim.exchange.trades(s)
        assert len(tape) == int((fills["symbol"] == i).sum()) > 0
        assert tape["qty"].sum() == fills[fills["symbol"] == i]["qty_lots"].sum()
    assert len(sim.exchange.bars("AAPL", "1s")) >= 25                    # 30 s of event time


def _rejected_adds(rec, owner):
    rep = _cat(rec["reports"], lob.REPORT_DTYPE)
    return int(((rep["owner"] == owner) & (rep["action"] == 0) & (rep["status"] == int(lob.Status.REJECTED))).sum())


def _check_views(sim, fills):
    """The Python views after a run equal what the venue and its output say."""
    ex, rm = sim.exchange, sim.risk
    books = {s: ex.order_records(s, include_stops=False) for s in range(len(ex.symbols))}
    for a in sim.agents:
        if isinstance(a, ZeroIntelligencePopulation):
            for i, owner in enumerate(a.owners):
                b = books[int(a.sym[i])]
                mine = b[b["owner"] == ex.owner_id(owner)]
                assert dict(zip(mine["order_id"].tolist(), mine["qty_lots"].tolist())) == a.live[i], owner
        elif isinstance(a, MomentumPopulation):
            for i, owner in enumerate(a.owners):
                mine = fills[fills["taker_owner"] == ex.owner_id(owner)]
                assert a.position[i] == int(np.where(mine["aggressor"] == 0, mine["qty_lots"], -mine["qty_lots"]).sum())
        elif isinstance(a, StrategyAgent):
            t, b = a.tracker, books[a.sym]
            mine = b[b["owner"] == t.owner_id]
            assert {oid: o[2] for (s, oid), o in t.orders.items()} == dict(zip(mine["order_id"].tolist(),
                                                                                 mine["qty_lots"].tolist()))
            pos = int(np.where(fills["maker_owner"] == t.owner_id, np.where(fills["aggressor"] == 0, -1, 1), 0).dot(
                fills["qty_lots"]) + np.where(fills["taker_owner"] == t.owner_id,
                                              np.where(fills["aggressor"] == 0, 1, -1), 0).dot(fills["qty_lots"]))
            assert t.position.get(a.sym, 0) == pos == rm.ledger.position(t.owner_id, a.sym)
            assert a.strategy.position_lots == pos                          # the compiled form synced back
    # the risk manager's open orders are the books' resting orders
    opens = {(s, int(o)): [int(w), int(sd), int(p), int(q)] for s, b in books.items()
             for o, w, sd, p, q in zip(b["order_id"], b["owner"], b["side"], b["price_ticks"], b["qty_lots"])}
    assert rm._open == opens
    for (o, s), (qb, qs) in rm._open_qty.items():
        assert (qb, qs) == (sum(v[3] for (ss, _), v in opens.items() if ss == s and v[0] == o and v[1] == 0),
                            sum(v[3] for (ss, _), v in opens.items() if ss == s and v[0] == o and v[1] == 1))


@pytest.mark.parametrize("compiled", [False, True])
def test_the_python_views_after_a_run_agree_with_the_venue(compiled):
    sim = Simulator.default(seed=4, warmup_s=0, compiled=compiled)
    rec = _recording(sim)
    sim.run(steps=2500)
    assert sim.compiled_path == ("compiled" if compiled else "python: compiled=False")
    fills = _cat(rec["fills"], lob.FILL_DTYPE)
    _check_views(sim, fills)
    # and the market goes on through the Python path from there (one step at a time), and back
    for _ in range(7):
        sim.step()
    sim.run(steps=500)
    _check_views(sim, _cat(rec["fills"], lob.FILL_DTYPE))
    assert sim.incidents == []
    # the scorecard recorder has every fill and every order of the makers, and the mid path ends at the book's mid
    fills = _cat(rec["fills"], lob.FILL_DTYPE)
    ev = _cat(rec["events"], lob.EVENT_DTYPE)
    for a in sim.market_makers:
        oid = sim.exchange.owner_id(a.owner)
        f, mids, orders = sim.recorder.frames(a.owner)
        assert len(f) == int((fills["maker_owner"] == oid).sum() + (fills["taker_owner"] == oid).sum()) > 0
        assert len(orders) == int(((ev["owner"] == oid) & (ev["action"] == 0)).sum()) - _rejected_adds(rec, oid)
        b, ask = sim.exchange.best_ticks(a.sym)
        assert mids[mids["symbol"] == a.sym]["mid_ticks"].iloc[-1] == (b + ask) / 2
        card = sim.scorecard(a.owner)
        assert card.summary().loc["ALL", "fills"] == len(f)


def test_the_compiled_and_python_paths_make_the_same_kind_of_market():
    out = {}
    for compiled in (False, True):
        sim = Simulator.default(seed=11, warmup_s=0, compiled=compiled)
        rec = _recording(sim)
        sim.run(steps=3000)
        ev = _cat(rec["events"], lob.EVENT_DTYPE)
        fills = _cat(rec["fills"], lob.FILL_DTYPE)
        mm = {sim.exchange.owner_id(a.owner) for a in sim.market_makers}
        out[compiled] = dict(
            adds=int((ev["action"] == 0).sum()), cancels=int((ev["action"] == 1).sum()), fills=len(fills),
            mm_orders=int(np.isin(ev["owner"], list(mm)).sum()),
            mm_fills=int((np.isin(fills["maker_owner"], list(mm)) | np.isin(fills["taker_owner"], list(mm))).sum()),
            risk_checks=sim.risk.latency()["count"], scorecard_fills=sum(
                len(sim.recorder.frames(a.owner)[0]) for a in sim.market_makers))
    py, c = out[False], out[True]
    for k in py:
        assert py[k] > 0 and 0.7 < c[k] / py[k] < 1.4, (k, py[k], c[k])


def test_risk_checks_of_a_compiled_run_reject_as_the_risk_manager_does():
    ex = lob.Exchange(symbols=["X", "Y"], ref_price=100.0)
    zi = ZeroIntelligencePopulation("zi", ["X", "X", "Y"], rate_per_s=30.0, depth_ticks=3.0, cancel_per_s=0.5,
                                    max_orders=25)
    noise = NoisePopulation("noise", ["X", "Y"], owners=["n1", "n2"], rate_per_s=6.0)
    momo = MomentumPopulation("momo", ["X", "Y"], lookback_s=0.5, threshold_ticks=1, rate_per_s=5.0, size=100)
    mm = StrategyAgent("mm", AdaptiveMarketMaker(base_spread_ticks=1, size=100, max_position=2000), "X",
                       every_steps=5)
    rm = RiskManager(RiskLimits(max_qty=10_000))
    sim = Simulator(ex, [zi, noise, momo, mm], seed=2, fundamental_vol_bps=5.0, block_steps=5, risk=rm)
    rm.set_reference(0, 10_000)
    rm.set_reference(1, 10_000)
    rm.set_limits(RiskLimits(max_qty=300), owner="zi_0")                 # zi_0 draws 100..500 a time
    rm.set_limits(RiskLimits(collar_ticks=2), owner="zi_1")               # zi_1 quotes up to ~10 ticks away
    rm.set_limits(RiskLimits(max_position=150, rate_per_s=20, burst=2), owner="mm")
    rec = _recording(sim)
    sim.run(steps=4000)
    assert sim.compiled_path == "compiled" and sim.incidents == []
    ev = _cat(rec["events"], lob.EVENT_DTYPE)
    rep = _cat(rec["reports"], lob.REPORT_DTYPE)
    rejected = rep[rep["status"] == int(lob.Status.REJECTED)]
    reasons = {lob.Reason(r).name.lower() for r in rejected["reason"].tolist()}
    assert {"risk_max_qty", "risk_price_collar"} <= reasons
    assert any(r in reasons for r in ("risk_position_limit", "risk_throttle"))
    counts = {k: v for k, v in rm.counts.items()}
    for name in reasons:
        assert counts[name] == int((rejected["reason"] == int(lob.Reason[name.upper()])).sum())
    # the edge decisions hold: nothing over the limits reached the book
    zi0 = ex.owner_id("zi_0")
    adds = ev[(ev["action"] == 0) & (ev["owner"] == zi0)]
    assert (adds["qty_lots"] > 300).any()                                 # it did try
    later = _cat(rec["reports"][1:], lob.REPORT_DTYPE)       # the first batch: the initial levels (no check)
    ok = later[(later["owner"] == zi0) & (later["action"] == 0) & (later["status"] != int(lob.Status.REJECTED))]
    assert len(ok) > 20
    assert (ok["cum_filled_lots"] + ok["remaining_lots"] <= 300).all()
    assert abs(sim.agent("mm").tracker.position.get(0, 0)) <= 150 + 100       # one order past at most
    assert rm.latency()["count"] >= len(adds)
    _check_views(sim, _cat(rec["fills"], lob.FILL_DTYPE))


def test_run_until_on_the_compiled_path_stops_at_the_step():
    sim = Simulator.default(seed=3, warmup_s=0)
    start = sim.now_ns
    sim.run(until=start + 1234 * sim.step_ns + sim.step_ns // 3)
    assert sim.compiled_path == "compiled" and sim.steps == 1234 and sim.now_ns == start + 1234 * sim.step_ns
    assert sim.exchange.clock() == sim.now_ns


def test_risk_rejections_of_both_paths_are_alike_under_tight_limits():
    # notebook 06's limits: every trader in every symbol limited in position, open orders and rate (the compiled
    # loop checks its counters against its open orders at the end of each run: a divergence raises)
    counts = {}
    for compiled in (False, True):
        sim = Simulator.default(seed=1, compiled=compiled)
        risk, sx = sim.risk, sim.exchange
        for s in sx.symbols:
            base = risk.limits_for(0, sx.symbol_index(s))
            risk.set_limits(RiskLimits(max_qty=base.max_qty, collar_ticks=base.collar_ticks, max_position=300,
                                       max_open_orders=15, rate_per_s=10, burst=5), symbol=s)
        sim.run(steps=3000)
        assert sim.compiled_path == ("compiled" if compiled else "python: compiled=False")
        counts[compiled] = dict(risk.counts)
    assert set(counts[True]) == set(counts[False]) == {"risk_open_orders", "risk_position_limit", "risk_throttle"}
    for k, v in counts[False].items():
        assert 0.7 < counts[True][k] / v < 1.45, (k, counts)


@pytest.mark.parametrize("compiled", [False, True])
def test_random_and_oldest_cancels_together_cancel_each_order_once(compiled):
    # a small max_orders and a high cancel rate: most blocks draw random cancels and cancel the oldest beyond
    ex = lob.Exchange(symbols=["X"], ref_price=100.0)
    zi = ZeroIntelligencePopulation("zi", ["X", "X"], rate_per_s=60.0, depth_ticks=4.0, cancel_per_s=3.0, max_orders=4,
                                    initial_levels=3)
    sim = Simulator(ex, [zi], seed=5, fundamental_vol_bps=5.0, block_steps=5, compiled=compiled)
    rec = _recording(sim)
    sim.run(steps=2000)
    assert sim.compiled_path == ("compiled" if compiled else "python: compiled=False")
    rep = _cat(rec["reports"], lob.REPORT_DTYPE)
    cancels = rep[rep["action"] == int(lob.Action.CANCEL)]
    assert len(cancels) > 500 and (cancels["status"] != int(lob.Status.REJECTED)).all()
    for i, owner in enumerate(zi.owners):
        b = ex.order_records(0, include_stops=False)
        mine = b[b["owner"] == ex.owner_id(owner)]
        assert dict(zip(mine["order_id"].tolist(), mine["qty_lots"].tolist())) == zi.live[i]
        assert len(zi.live[i]) <= 4 + 10                    # max_orders, plus one block's arrivals
