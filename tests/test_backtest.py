"""Backtests on the shipped GOOG LOBSTER day: history and the strategy's orders through one engine."""
import numpy as np
import pandas as pd
import pytest

import lob
from lob.data import lobster_sample
from lob.errors import ConfigError, ReplayFormatError
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
