"""Level-2 queue models: hftbacktest's definitions, compiled = Python, fitting, the Backtest plug-in."""
import math

import numpy as np
import pandas as pd
import pytest

from lob.data import lobster_sample
from lob.errors import ConfigError
from lob.queue.l3 import goog_l3
from lob.queue.models import (FittedProbQueueModel, LogProbQueueFunc, LogProbQueueFunc2, PowerProbQueueFunc,
                              PowerProbQueueFunc2, PowerProbQueueFunc3, QueueModel, QueueState,
                              RiskAverseQueueModel, predict_fills, standard_models)
from lob.queue.shadow import random_shadows, track_shadows
from lob.replay.backtest import Backtest, lobster_events
from lob.replay.strategies import TouchQuoter


def test_probabilities_follow_hftbacktest_definitions():
    front, back = 30.0, 10.0
    assert PowerProbQueueFunc(2).prob(front, back, 40) == pytest.approx(100 / (100 + 900))
    assert PowerProbQueueFunc2(2).prob(front, back, 40) == pytest.approx(100 / 1600)
    assert PowerProbQueueFunc3(2).prob(front, back, 40) == pytest.approx(1 - (30 / 40) ** 2)
    assert LogProbQueueFunc().prob(front, back, 40) == pytest.approx(math.log(11) / (math.log(11) + math.log(31)))
    assert LogProbQueueFunc2().prob(front, back, 40) == pytest.approx(math.log(11) / math.log(41))
    # n = 1: the first and third functions are both back / (front + back)
    assert PowerProbQueueFunc(1).prob(front, back, 40) == pytest.approx(PowerProbQueueFunc3(1).prob(front, back, 40))
    with pytest.raises(ConfigError, match="n must be"):
        PowerProbQueueFunc(0)


def test_prob_update_moves_the_order_by_the_share_ahead():
    m = PowerProbQueueFunc(1)
    st = QueueState()
    m.new_order(st, 100)                  # 100 ahead, nothing behind yet
    m.depth(st, 100, 160)                 # 60 join behind: an increase never moves the order
    assert st.ahead == 100
    m.depth(st, 160, 130)                 # 30 cancelled: p(behind) = 60/160, so 30 * 100/160 were ahead
    assert st.ahead == pytest.approx(100 - (1 - 60 / 160) * 30)
    assert m.trade(st, 10) == 0 and st.ahead == pytest.approx(100 - 18.75 - 10)
    m.depth(st, 130, 120)                 # the trade explains the whole decrease: nothing more moves
    assert st.ahead == pytest.approx(71.25)
    assert m.trade(st, 80) == 8 and st.ahead == 0
    r = RiskAverseQueueModel()
    st = QueueState()
    r.new_order(st, 100)
    r.depth(st, 100, 160)
    r.depth(st, 160, 130)                 # cancels are all behind
    assert st.ahead == 100
    r.depth(st, 130, 40)                  # but never more than displayed
    assert st.ahead == 40


@pytest.fixture(scope="module")
def truth():
    s = goog_l3()
    res = track_shadows(s, random_shadows(s, 400, seed=5, max_ticks_from_best=3, qty_lots=[50, 100, 300],
                                          ttl_s=120), trace=True)
    return s, res


def test_compiled_and_python_paths_agree(truth):
    s, res = truth
    fm = FittedProbQueueModel.fit(res.trace)
    models = standard_models((0.5, 2)) + [fm]
    a = predict_fills(s, res, models)
    b = predict_fills(s, res, models, compiled=False)
    pd.testing.assert_frame_equal(a, b)
    assert (a["pred_first_fill_ts"] >= 0).mean() > 0.3


def test_models_never_fill_before_the_level_allows(truth):
    """Risk-averse is the most pessimistic estimate: no probabilistic model fills later than it."""
    s, res = truth
    p = predict_fills(s, res, standard_models())
    wide = p.pivot(index="shadow", columns="model", values="pred_first_fill_ts")
    ra = wide["risk-averse"].replace(-1, np.iinfo(np.int64).max)
    for col in wide.columns:
        other = wide[col].replace(-1, np.iinfo(np.int64).max)
        assert (other <= ra).all(), col
    # and the truth is never later than risk-averse either (the estimate never drops below the true queue)
    o = res.orders.set_index("shadow")
    tf = o["first_fill_ts"].replace(-1, np.iinfo(np.int64).max)
    placed = o["status"] != "rejected"
    assert (tf[placed] <= ra[placed]).all()


def test_fitted_probability_recovers_a_known_rule():
    rng = np.random.default_rng(0)
    n = 20_000
    level = rng.integers(1, 2000, n)
    ahead = (rng.random(n) * level).astype(int)
    x = ahead / level
    p_behind = 1 / (1 + np.exp(-(2.0 - 4.0 * x + 0.1 * np.log1p(level))))
    tr = pd.DataFrame({"ahead": ahead, "level": level, "qty": 1, "is_ahead": (rng.random(n) > p_behind).astype(int)})
    m = FittedProbQueueModel.fit(tr)
    assert m.a == pytest.approx(2.0, abs=0.4) and m.b == pytest.approx(-4.0, abs=0.4)
    assert m.c == pytest.approx(0.1, abs=0.07)
    with pytest.raises(ConfigError, match="columns"):
        FittedProbQueueModel.fit(tr.drop(columns="qty"))
    with pytest.raises(ConfigError, match="both"):
        FittedProbQueueModel.fit(tr.assign(is_ahead=1))


def test_fitted_on_goog_truth_says_most_cancels_are_behind(truth):
    _, res = truth
    t = res.trace
    assert len(t) > 100
    m = FittedProbQueueModel.fit(t)
    # at the middle of the queue a cancel is more likely behind the order than ahead of it on this day
    assert m.prob(50, 50, 100) > 0.5
    assert 1 - np.average(t["is_ahead"], weights=t["qty"]) > 0.5


# ------------------------------------------------------------------------------------------------
# Backtest plug-in
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def events():
    ev, _ = lobster_events(*lobster_sample(10))
    return ev[:30_000]


class Recording(RiskAverseQueueModel):
    name = "recording"

    def __init__(self):
        self.calls = {"new_order": 0, "trade": 0, "depth": 0}

    def new_order(self, st, level_qty):
        self.calls["new_order"] += 1
        super().new_order(st, level_qty)

    def trade(self, st, qty):
        self.calls["trade"] += 1
        return super().trade(st, qty)

    def depth(self, st, prev, new):
        self.calls["depth"] += 1
        super().depth(st, prev, new)


class FrontOfQueue(QueueModel):
    """A user model: assume to be first in the queue."""
    name = "front"

    def new_order(self, st, level_qty):
        st.ahead = 0.0


@pytest.mark.parametrize("impact", ["off", "consume"])
def test_backtest_default_is_risk_averse_and_models_plug_in(events, impact):
    kw = dict(impact=impact, step_ns=50_000_000)
    base = Backtest(TouchQuoter(size=100, every=20), events, **kw).run()
    rec = Recording()
    same = Backtest(TouchQuoter(size=100, every=20), events, queue_model=rec, **kw).run()
    pd.testing.assert_frame_equal(base.fills, same.fills)
    assert rec.calls["new_order"] > 10 and rec.calls["trade"] > 0 and rec.calls["depth"] > 0
    front = Backtest(TouchQuoter(size=100, every=20), events, queue_model=FrontOfQueue(), **kw).run()
    # standing first in every queue fills at least as much as the risk-averse estimate
    assert front.fills["qty"].sum() > base.fills["qty"].sum()
    prob = Backtest(TouchQuoter(size=100, every=20), events, queue_model=PowerProbQueueFunc(2), **kw).run()
    assert base.fills["qty"].sum() <= prob.fills["qty"].sum() <= front.fills["qty"].sum()


def test_backtest_rejects_a_non_model(events):
    with pytest.raises(ConfigError, match="queue_model"):
        Backtest(TouchQuoter(), events, impact="off", queue_model=object())
