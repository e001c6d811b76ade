"""Backtests on the shipped GOOG LOBSTER day: history and the strategy's orders through one engine."""
import numpy as np
import pandas as pd
import pytest

import lob
from lob.data import lobster_sample
from lob.errors import ConfigError, ReplayFormatError
from lob.mm import OrderIntent
from lob.replay.backtest import SEED_ID_BASE, Backtest, Intent, lobster_events
from lob.replay.strategies import PeriodicTaker, TouchQuoter


@pytest.fixture(scope="module")
def goog():
    return lobster_events(*lobster_sample(10))


def test_lobster_events_seed_and_replay(goog):
    events, trades = goog
    seeds = events[(events["order_id"] >= SEED_ID_BASE) & (events["action"] == lob.Action.ADD)]
    assert len(seeds) == 20                          # ten levels a side in orderbook row 0
    ex = lob.Exchange()
    ex.add_symbol("GOOG")
    reports, fills = ex.apply(events)
    ex.check_integrity()
    bid, ask = ex.book("GOOG").best_ticks()
    assert 0 < bid < ask                             # a sane two-sided book at the close
    assert len(fills) > 10_000 and len(trades) > 0   # executions became aggressors that traded


def test_quoter_orders_queue_behind_history(goog):
    events, _ = goog
    res = Backtest(TouchQuoter(size=100, every=50), events, latency=1_000_000, impact="full").run()
    o = res.orders
    assert len(o) > 1000 and len(res.fills) > 100
    # joining the touch means standing behind what was already there
    # (the rest: the touch moved during the latency and the order opened a new level)
    assert (o["queue_ahead_at_entry"].dropna() > 0).mean() > 0.75
    assert res.fills["maker"].all()
    assert {"ts_ns", "position", "pnl"} <= set(res.pnl.columns)


def test_impact_full_vs_off_for_a_taker(goog):
    events, _ = goog
    kw = dict(latency=500_000, step_ns=100_000_000)
    full = Backtest(PeriodicTaker("buy", 300, every=20, n=200), events, impact="full", **kw).run()
    off = Backtest(PeriodicTaker("buy", 300, every=20, n=200), events, impact="off", **kw).run()
    assert full.fills["qty"].sum() == off.fills["qty"].sum() == 300 * 200
    vwap = lambda r: (r.fills["price"] * r.fills["qty"]).sum() / r.fills["qty"].sum()
    # with impact the liquidity a buy takes is gone for the next one: it pays more on average;
    # without impact it keeps taking the same displayed asks
    assert vwap(full) > vwap(off)
    # walking a consumed book takes more, smaller fills than walking the untouched displayed depth
    assert full.summary["fills"] > off.summary["fills"]


def test_impact_full_vs_off_for_a_quoter(goog):
    events, _ = goog
    full = Backtest(TouchQuoter(size=100, every=50), events, impact="full").run()
    off = Backtest(TouchQuoter(size=100, every=50), events, impact="off").run()
    # a real order in the FIFO moves up as orders ahead are cancelled or executed, and takes the historical
    # aggressor's quantity; the virtual one only advances on trades at its price: it fills less
    assert full.fills["qty"].sum() > off.fills["qty"].sum()


def test_fees_and_latency_distribution(goog):
    events, _ = goog
    ev = events[:20_000]
    lat = lambda rng, action: rng.exponential(2_000_000)
    a = Backtest(PeriodicTaker("buy", 100, every=5, n=20), ev, latency=lat, seed=3,
                 fees={"maker_bps": -0.2, "taker_bps": 0.5}).run()
    b = Backtest(PeriodicTaker("buy", 100, every=5, n=20), ev, latency=lat, seed=3,
                 fees={"maker_bps": -0.2, "taker_bps": 0.5}).run()
    pd.testing.assert_frame_equal(a.fills, b.fills)          # same seed, same run
    notional = (a.fills["price"] * a.fills["qty"]).sum()
    assert a.summary["fees"] == pytest.approx(notional * 0.5 / 10_000)


def test_bad_configuration(goog, tmp_path):
    events, _ = goog
    with pytest.raises(ConfigError, match="impact"):
        Backtest(TouchQuoter(), events, impact="partial")
    with pytest.raises(ConfigError, match="latency"):
        Backtest(TouchQuoter(), events, latency=-1)
    bad = tmp_path / "m.csv"
    bad.write_text("34200.1,9,1,100,5000000,1\n")
    book = tmp_path / "b.csv"
    book.write_text("5000100,10,4999900,10\n")
    with pytest.raises(ReplayFormatError, match="'type'"):
        lobster_events(bad, book)


def test_sweep_on_a_local_cluster_with_two_workers():
    from lob.replay.sweep import sweep

    msg, book = lobster_sample(1)
    df = sweep(TouchQuoter, {"size": [100, 200], "every": [20]}, [(msg, book)], n_workers=2, progress=False,
               max_rows=8_000, impact="full")
    assert len(df) == 2 and list(df["size"]) == [100, 200]
    assert (df["orders"] > 0).all() and set(df["data"]) == {msg.name}


def test_virtual_order_traded_through_has_nothing_ahead():
    # impact="off": a virtual sell at 101.00 joins behind 200 displayed. Within one batch of history that
    # level is cancelled, a buyer trades at 101.01 (through our price) and then a later seller at 101.00 is
    # hit for 10. A trade through a limit means its level is empty: the through-fill has nothing ahead of
    # it, and the later trade at our price is ours (we were there first), not eaten by a stale estimate.
    rows = [  # ts_ns, order_id, price_ticks, qty_lots, action, side, tif
        (1_000, 1, 10_100, 200, lob.Action.ADD, 1, lob.TIF.GTC),
        (1_000, 2, 9_900, 100, lob.Action.ADD, 0, lob.TIF.GTC),
        (2_000_000, 1, 10_100, 200, lob.Action.CANCEL, 1, lob.TIF.GTC),
        (2_000_001, 3, 10_101, 50, lob.Action.ADD, 1, lob.TIF.GTC),
        (2_000_001, 4, 10_101, 50, lob.Action.ADD, 0, lob.TIF.IOC),
        (2_000_002, 5, 10_100, 10, lob.Action.ADD, 1, lob.TIF.GTC),
        (2_000_002, 6, 10_100, 10, lob.Action.ADD, 0, lob.TIF.IOC),
    ]
    ev = np.zeros(len(rows), dtype=lob.EVENT_DTYPE)
    for i, (ts, oid, p, q, a, s, tif) in enumerate(rows):
        ev[i]["ts_ns"], ev[i]["order_id"], ev[i]["price_ticks"], ev[i]["qty_lots"] = ts, oid, p, q
        ev[i]["action"], ev[i]["side"], ev[i]["tif"] = a, s, tif

    class OneSell:
        sent = False

        def on_book(self, ctx):
            if not self.sent:
                self.sent = True
                return [Intent("submit", "sell", 300, 101.00)]

    res = Backtest(OneSell(), ev, impact="off", step_ns=1_000_000).run()
    assert res.orders["queue_ahead_at_entry"].tolist() == [200]
    f = res.fills
    assert f["price"].tolist() == [101.00, 101.00] and f["qty"].tolist() == [50, 10]
    assert f["queue_ahead_at_fill"].tolist() == [0, 0]


# ------------------------------------------------------------------------------------------------
# The compiled step loop (issue #13)
# ------------------------------------------------------------------------------------------------
import importlib.util
import sys
import warnings
from pathlib import Path

from lob.mm import GLFT, AdaptiveMarketMaker, AvellanedaStoikov, GridMaker
from lob.replay.backtest import Fees, NoDecisionWarning

MAKERS = {
    "grid": lambda: GridMaker(levels=3, spacing_ticks=5, size=100, max_position=500),
    "grid_max_loss": lambda: GridMaker(levels=2, spacing_ticks=2, size=100, max_position=300, max_loss=500,
                                       requote_ticks=1),
    "avellaneda_stoikov": lambda: AvellanedaStoikov(size=100, max_position=500, gamma=0.01, horizon_s=1.0),
    "avellaneda_stoikov_session": lambda: AvellanedaStoikov(size=100, max_position=500, gamma=0.01,
                                                            horizon_s=3600.0, rolling=False),
    "glft": lambda: GLFT(size=100, max_position=500),
    "adaptive": lambda: AdaptiveMarketMaker(size=100, max_position=500),
}


@pytest.mark.parametrize("impact", ["full", "consume", "off"])
@pytest.mark.parametrize("maker", list(MAKERS))
def test_python_and_compiled_forms_agree_on_the_goog_day(goog, maker, impact):
    events = goog[0]
    kw = dict(latency=200_000, impact=impact, fees=Fees(maker_bps=-0.2, taker_bps=0.3), step_ns=100_000_000,
              progress=False)
    py_mm, c_mm = MAKERS[maker](), MAKERS[maker]()
    py = Backtest(py_mm, events, compiled=False, **kw).run()
    c = Backtest(c_mm, events, **kw).run()
    assert (py.summary["compiled"], c.summary["compiled"]) == (False, True)
    assert c.summary["orders"] > 10 and c.summary["fills"] > 0
    pd.testing.assert_frame_equal(py.orders, c.orders)
    pd.testing.assert_frame_equal(py.fills, c.fills)
    pd.testing.assert_frame_equal(py.positions, c.positions)
    pd.testing.assert_frame_equal(py.pnl, c.pnl)
    assert py.summary == {**c.summary, "compiled": False}
    # the compiled run leaves its state on the Python object, as the Python run does
    for attr in ("position_lots", "cash_ticks", "n_fills", "halted", "halt_reason", "mid_ticks"):
        assert getattr(py_mm, attr) == getattr(c_mm, attr), attr
    if maker == "grid_max_loss":
        assert c_mm.halted and c_mm.halt_reason.startswith("max_loss")


def test_grid_at_1ms_agrees_and_the_benchmark_call_runs_compiled(goog):
    # the call of the hftbacktest comparison, as written (default impact; the compiled form by default)
    run = lambda **kw: Backtest(GridMaker(levels=3, spacing_ticks=5, size=100, max_position=500), goog[0],
                                latency=200_000, fees=Fees(maker_bps=-0.2, taker_bps=0.3), step_ns=1_000_000,
                                **kw).run()
    c, py = run(), run(compiled=False)
    assert c.summary["compiled"] and c.summary["decisions"] > 50_000
    pd.testing.assert_frame_equal(py.fills, c.fills)
    pd.testing.assert_frame_equal(py.pnl, c.pnl)


def _before():
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "_backtest_before.py"
    spec = importlib.util.spec_from_file_location("_backtest_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["_backtest_before"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("impact", ["full", "consume", "off"])
def test_the_loop_keeps_the_rules_of_the_python_backtest_before_it(goog, impact):
    # the Backtest before issue #13 (kept as the benchmark's yardstick): same orders, fills and marks for a
    # quoter and takers, with a latency per action
    old = _before()
    events = goog[0][:40_000]
    kw = dict(latency={"submit": 300_000, "cancel": 100_000}, impact=impact,
              fees=dict(maker_bps=-0.2, taker_bps=0.3), step_ns=10_000_000, progress=False)
    for make in (lambda: TouchQuoter(size=100, every=5, max_position=300), lambda: PeriodicTaker(every=20, n=30),
                 lambda: PeriodicTaker(side="sell", size=5000, every=20, n=10)):
        new, ref = Backtest(make(), events, **kw).run(), old.Backtest(make(), events, **kw).run()
        assert len(new.fills) > 0
        cols = ["ts_ns", "order_id", "side", "price", "qty", "maker", "fee", "position"]
        pd.testing.assert_frame_equal(new.fills[cols], ref.fills[cols], check_dtype=False)
        pd.testing.assert_frame_equal(new.pnl, ref.pnl, check_dtype=False)
        assert new.orders["order_id"].tolist() == ref.orders["order_id"].tolist()
        assert new.orders["status"].tolist() == ref.orders["status"].tolist()
        qa = lambda o: o["queue_ahead_at_entry"].astype(float).fillna(-1).tolist()
        assert qa(new.orders) == qa(ref.orders)


def test_chunked_data_gives_the_same_run_as_one_array(goog):
    # chunk edges inside quiet stretches and right after a step: the loop carries its state across
    events = goog[0][:30_000]
    one = Backtest(TouchQuoter(size=100, every=3), events, latency=50_000, step_ns=50_000_000).run()
    for size in (997, 4096):
        chunks = (events[i:i + size] for i in range(0, len(events), size))
        many = Backtest(TouchQuoter(size=100, every=3), chunks, latency=50_000, step_ns=50_000_000).run()
        pd.testing.assert_frame_equal(one.fills, many.fills)
        pd.testing.assert_frame_equal(one.pnl, many.pnl)
        assert one.summary["decisions"] == many.summary["decisions"]


def test_a_strategy_that_never_decides_is_reported(goog):
    events = goog[0][:2_000]
    span = int(events["ts_ns"][-1] - events["ts_ns"][0])
    with pytest.warns(NoDecisionWarning, match="never decided: step_ns"):
        res = Backtest(GridMaker(size=100), events, step_ns=span + 1).run()
    assert res.summary["decisions"] == 0 and res.summary["orders"] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoDecisionWarning)
        assert Backtest(GridMaker(size=100), events, step_ns=span // 10).run().summary["decisions"] > 0


def test_compiled_choice(goog):
    events = goog[0][:5_000]

    class Wider(GridMaker):
        def quotes(self, ctx, bid, ask):
            return [(s, p - 1 if s == 0 else p + 1, q) for s, p, q in super().quotes(ctx, bid, ask)]

    assert Backtest(Wider(size=100), events, step_ns=10_000_000).run().summary["compiled"] is False
    g = GridMaker(size=100)
    g.on_book = lambda ctx, _f=g.on_book: _f(ctx)       # an instance override: the Python form runs it
    assert Backtest(g, events, step_ns=10_000_000).run().summary["compiled"] is False
    with pytest.raises(ConfigError, match="no compiled form"):
        Backtest(TouchQuoter(), events, compiled=True).run()
    with pytest.raises(ConfigError, match="compiled must be"):
        Backtest(TouchQuoter(), events, compiled="yes")


def test_bad_intents_name_the_field(goog):
    events = goog[0][:5_000]

    class Bad:
        def __init__(self, intent):
            self.intent = intent

        def on_book(self, ctx):
            return [self.intent]

    class Kind:                          # the name-guessing converter is gone: an intent says its action
        kind = "new"
        side, qty, price = "buy", 100, 580.0

    # Intent is lob.mm.OrderIntent: a bad side, action or missing order id fails when the intent is made;
    # the rest (and dicts, objects with its attributes) when the backtest reads it
    assert Intent is OrderIntent
    for intent, field in ((lambda: Intent("submit", "hold", 100, 580.0), "side"),
                          (lambda: Intent("submit", "buy", 100, 580.0, tif="forever"), "tif"),
                          (lambda: Intent("submit", "buy", "many", 580.0), "qty"),
                          (lambda: Intent("cancel"), "order_id"), (lambda: dict(action="replace"), "action"),
                          (lambda: dict(action="submit", side="hold", qty=1), "side"), (Kind, "an intent must be")):
        with pytest.raises(ConfigError, match=field):
            Backtest(Bad(intent()), events, step_ns=10_000_000).run()
    # an off-tick price is rejected by the venue, as the per-call path does
    res = Backtest(Bad(Intent("submit", "buy", 100, 580.005)), events, step_ns=100_000_000).run()
    assert set(res.orders["status"]) == {"rejected"} and len(res.fills) == 0


def test_sweep_converts_each_day_once_and_reports_its_speedup(monkeypatch):
    import lob.replay.backtest as bt
    from lob.replay.sweep import sweep

    calls = []
    real = bt.lobster_events

    def counting(*a, **kw):
        calls.append(a[0])
        return real(*a, **kw)

    monkeypatch.setattr(bt, "lobster_events", counting)
    msg, book = lobster_sample(1)
    df = sweep(TouchQuoter, {"size": [100, 200], "every": [10, 20]}, [(msg, book)], n_workers=2, progress=False,
               max_rows=6_000)
    assert len(df) == 4 and calls == [msg]           # one conversion for four runs, on the client
    timing = df.attrs["timing"]
    assert timing["runs"] == 4 and timing["workers"] == 2
    assert timing["serial_s"] == pytest.approx(df["run_s"].sum())
    assert timing["speedup_over_serial"] == pytest.approx(timing["serial_s"] / timing["wall_s"])
