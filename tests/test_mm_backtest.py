"""The market makers run unchanged in a backtest on the shipped GOOG LOBSTER sample, and the scorecard of
the backtest agrees with the backtest's own accounting."""
import glob
import os

import pytest

import lob
from lob.mm import GLFT, AdaptiveMarketMaker, AvellanedaStoikov, GridMaker
from lob.mm.scorecard import Scorecard
from lob.replay.backtest import Backtest, lobster_events

DATA = os.path.join(os.path.dirname(lob.__file__), "data", "lobster")


@pytest.fixture(scope="module")
def goog_events():
    msg = sorted(glob.glob(os.path.join(DATA, "GOOG_*_message_1.csv.gz")))[0]
    events, _ = lobster_events(msg, msg.replace("_message_", "_orderbook_"), max_rows=8000)
    return events


@pytest.mark.parametrize("make", [lambda: AdaptiveMarketMaker(size=100, max_position=500),
                                  lambda: AvellanedaStoikov(size=100, max_position=500, gamma=0.01, horizon_s=1.0),
                                  lambda: GLFT(size=100, max_position=500),
                                  lambda: GridMaker(size=100, max_position=500, levels=3, spacing_ticks=5)],
                         ids=["adaptive", "avellaneda_stoikov", "glft", "grid"])
def test_maker_in_a_backtest_and_its_scorecard(goog_events, make):
    res = Backtest(make(), goog_events, step_ns=100_000_000).run()
    assert res.summary["fills"] > 0
    sc = Scorecard.from_backtest(res)
    s = sc.summary().loc["ALL"]
    assert s["fills"] == res.summary["fills"]
    assert s["final_position"] == res.summary["final_position"]
    assert s["pnl"] == pytest.approx(res.summary["pnl"], abs=1e-6)     # same marks (the mid), no fees
    assert abs(res.positions["position"]).max() <= 500 + 100
