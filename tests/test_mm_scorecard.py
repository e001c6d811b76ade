"""lob.mm.scorecard on synthetic fills whose results are worked out by hand (or by plain numpy here)."""
import math

import numpy as np
import pandas as pd
import pytest

import lob
from lob.errors import ConfigError
from lob.mm.scorecard import RunRecorder, Scorecard

S = 1_000_000_000


def test_round_trip_with_fees_markouts_and_spread_capture():
    # buy 10 @ 99 (mid 100), sell 4 @ 103 (mid 102), mids 100 -> 101 -> 102 -> 104 at 0, 1, 2, 12 s
    fills = pd.DataFrame(dict(ts_ns=[0, 2 * S], side=["buy", "sell"], price_ticks=[99, 103], qty_lots=[10, 4],
                              maker=[True, False]))
    mids = pd.DataFrame(dict(ts_ns=[0, S, 2 * S, 12 * S], mid_ticks=[100.0, 101.0, 102.0, 104.0]))
    orders = pd.DataFrame(dict(qty_lots=[10, 10, 20]))
    sc = Scorecard(fills, mids, orders, fees=dict(maker_bps=-10, taker_bps=20), tick_size=0.5, lot_size=2)
    v = 0.5 * 2                                       # value of one tick-lot
    s = sc.summary().loc[0]
    fee = (99 * 10 * -10 / 1e4 + 103 * 4 * 20 / 1e4) * v
    assert s["fees"] == pytest.approx(fee)
    assert s["realised"] == pytest.approx(4 * (103 - 99) * v)             # FIFO: 4 of the 10 closed
    assert s["unrealised"] == pytest.approx(6 * (104 - 99) * v)           # 6 left, marked at the last mid
    assert s["pnl"] == pytest.approx(s["realised"] + s["unrealised"] - fee)
    assert s["final_position"] == 6 and s["max_abs_position"] == 10
    assert s["traded_qty"] == 14 * 2
    assert s["spread_capture"] == pytest.approx((10 * (100 - 99) + 4 * (103 - 102)) * v)
    m = sc.markouts()
    assert m["markout_1s"].tolist() == pytest.approx([10 * (101 - 99) * v, -4 * (102 - 103) * v])
    # at 10 s the mid is still 102 (set at 2 s); at 12 s it is 104
    assert m["markout_10s"].tolist() == pytest.approx([10 * (102 - 99) * v, -4 * (104 - 103) * v])
    assert math.isnan(m["markout_60s"].tolist()[0])                    # past the end of the run
    assert s["fill_ratio"] == pytest.approx(14 / 40) and s["orders"] == 3


def test_pnl_path_drawdown_and_sharpe_match_a_direct_computation():
    rng = np.random.default_rng(5)
    n = 300
    ts = np.sort(rng.choice(np.arange(1, 600) * S // 2, size=n, replace=False))
    side = rng.choice([1, -1], size=n)
    price = 1000 + np.cumsum(rng.integers(-2, 3, size=n))
    qty = rng.integers(1, 5, size=n)
    mids = pd.DataFrame(dict(ts_ns=ts, mid_ticks=price + 0.5))
    fills = pd.DataFrame(dict(ts_ns=ts, side=side, price_ticks=price, qty_lots=qty))
    sc = Scorecard(fills, mids, tick_size=0.01, interval_s=5.0)
    # the path directly: after fill i, cash + position x mid_i (every fill shares its time with a mid)
    cash = -np.cumsum(side * price * qty)
    pos = np.cumsum(side * qty)
    path = (cash + pos * (price + 0.5)) * 0.01
    assert sc.pnl["pnl"].to_numpy() == pytest.approx(path)
    assert sc.inventory["position_0"].tolist() == pos.tolist()
    s = sc.summary().loc["ALL"]
    assert s["max_drawdown"] == pytest.approx(np.max(np.maximum.accumulate(path) - path))
    grid = np.arange(ts[0], ts[-1] + 1, 5 * S)
    sampled = path[np.searchsorted(ts, grid, side="right") - 1]
    d = np.diff(sampled)
    assert s["sharpe"] == pytest.approx(d.mean() / d.std(ddof=1) * math.sqrt(252 * 6.5 * 3600 / 5.0))
    assert s["pnl"] == pytest.approx(path[-1])


def test_two_symbols_add_up():
    fills = pd.DataFrame(dict(ts_ns=[0, S, 2 * S, 3 * S], symbol=[0, 1, 0, 1], side=[1, 1, -1, -1],
                              price_ticks=[100, 200, 104, 197], qty_lots=[1, 2, 1, 2]))
    mids = pd.DataFrame(dict(ts_ns=[0, 0], symbol=[0, 1], mid_ticks=[100.0, 200.0]))
    s = Scorecard(fills, mids, tick_size={0: 0.01, 1: 0.05}).summary()
    assert s.loc[0, "pnl"] == pytest.approx(4 * 0.01)
    assert s.loc[1, "pnl"] == pytest.approx(-3 * 2 * 0.05)
    assert s.loc["ALL", "pnl"] == pytest.approx(s.loc[0, "pnl"] + s.loc[1, "pnl"])
    assert s.loc["ALL", "fills"] == 4


def test_bad_inputs_name_the_problem():
    mids = pd.DataFrame(dict(ts_ns=[0], mid_ticks=[1.0]))
    with pytest.raises(ConfigError, match="price_ticks"):
        Scorecard(pd.DataFrame(dict(ts_ns=[0], side=[1], qty_lots=[1])), mids)
    with pytest.raises(ConfigError, match="side"):
        Scorecard(pd.DataFrame(dict(ts_ns=[0], side=["long"], price_ticks=[1], qty_lots=[1])), mids)
    with pytest.raises(ConfigError, match="DataFrame"):
        Scorecard({"ts_ns": [0]}, mids)


def test_recorder_on_an_exchange_matches_its_fills():
    ex = lob.Exchange(symbols=["X"], marketdata=False)
    rec = RunRecorder(ex, owners=["mm"])
    t = 10 * S
    ex.submit("X", "buy", 5, price=9.99, owner="z", ts_ns=t)
    ex.submit("X", "sell", 5, price=10.01, owner="z", ts_ns=t)
    ex.submit("X", "buy", 3, price=10.00, owner="mm", ts_ns=t)        # mid 10.00 before the fill
    ex.submit("X", "sell", 2, price=10.00, owner="t", ts_ns=t + S)    # mm buys 2 at 10.00 (maker)
    ex.submit("X", "sell", 5, price=10.03, owner="z", ts_ns=t + 2 * S)     # no effect on the mid
    sc = rec.scorecard("mm")
    f = sc.markouts()
    assert f["qty_lots"].tolist() == [2] and f["side"].tolist() == [1] and bool(f["maker"].iloc[0])
    # mid just before the fill: bid 10.00 (mm) / ask 10.01 -> 1000.5 ticks
    assert f["mid_ticks"].iloc[0] == pytest.approx(1000.5)
    assert f["spread_capture"].iloc[0] == pytest.approx(2 * 0.5 * 0.01)
    assert sc.summary().loc["X", "orders"] == 1 and sc.summary().loc["X", "fill_ratio"] == pytest.approx(2 / 3)
