"""Survival scoring of queue models against the shadow-order truth."""
import numpy as np
import pandas as pd
import pytest

from lob.errors import ConfigError
from lob.queue.hazard import FEATURES, CoxFillModel, entry_features
from lob.queue.l3 import goog_l3
from lob.queue.models import predict_fills, standard_models
from lob.queue.scoring import calibration_table, default_times, score, step_survival
from lob.queue.shadow import random_shadows, track_shadows
from lob.viz.queue import plot_calibration, plot_scores


@pytest.fixture(scope="module")
def data():
    s = goog_l3()
    mid = int((s["ts_ns"][0] + s["ts_ns"][-1]) // 2)
    kw = dict(max_ticks_from_best=3, qty_lots=[50, 100, 300], ttl_s=120)
    train = track_shadows(s, random_shadows(s, 500, seed=11, end_ns=mid, **kw))
    test = track_shadows(s, random_shadows(s, 500, seed=12, start_ns=mid, **kw))
    test.orders["half"] = np.where(test.orders.index % 2, "odd", "even")
    return s, train, test


def _oracle(result, times, shift=0.0):
    """Step curves at the true first-fill times (shifted by ``shift`` seconds); unfilled never fill."""
    sv = result.survival().set_index("shadow")
    tp = np.where(sv["observed"] == 1, sv["duration_s"] + shift, np.inf)
    return pd.DataFrame((tp[:, None] > np.asarray(times)[None, :]).astype(float), index=sv.index, columns=times)


def test_perfect_constant_and_reversed_models(data):
    _, _, test = data
    truth = test.survival()
    times = default_times(truth)
    rng = np.random.default_rng(0)
    perfect = _oracle(test, times)
    const = pd.DataFrame(0.5, index=perfect.index, columns=times)
    reversed_ = pd.DataFrame(perfect.to_numpy()[:, ::-1], index=perfect.index, columns=times)
    noisy = perfect.copy()
    noisy.iloc[:, :] = (rng.random(noisy.shape) < 0.5).astype(float)
    sc = score(test, {"perfect": perfect, "const": const, "noisy": noisy}, times).set_index("model")
    assert sc.loc["perfect", "c_index"] > 0.97 and sc.loc["perfect", "ibs"] < 0.01
    assert sc.loc["perfect", "calib_err_10s"] == 0 and sc.loc["perfect", "brier_10s"] < 1e-9
    assert sc.loc["const", "c_index"] == pytest.approx(0.5)
    assert sc.loc["const", "ibs"] == pytest.approx(0.25, abs=0.01)
    assert sc.loc["noisy", "ibs"] > sc.loc["const", "ibs"]
    late = score(test, {"late": _oracle(test, times, shift=5.0)}, times).set_index("model")
    assert late.loc["late", "ibs"] > sc.loc["perfect", "ibs"]
    assert late.loc["late", "pred_fill_1s"] < late.loc["late", "obs_fill_1s"]
    # the observed rates do not depend on the model
    assert sc["obs_fill_60s"].nunique() == 1
    with pytest.raises(ConfigError, match="columns of times"):
        score(test, {"x": reversed_.iloc[:, :3]}, times)


def test_scores_per_group_and_bad_groups(data):
    _, _, test = data
    times = default_times(test.survival())
    sc = score(test, {"perfect": _oracle(test, times)}, times, by="half")
    assert sorted(sc["half"]) == ["even", "odd"] and sc["n"].sum() == (test.survival()["duration_s"] > 0).sum()
    with pytest.raises(ConfigError, match="by"):
        score(test, {"perfect": _oracle(test, times)}, times, by="symbol")


def test_level2_models_and_cox_are_scored(data):
    s, train, test = data
    truth = test.survival()
    times = default_times(truth)
    curves = step_survival(predict_fills(s, test, standard_models((2,))), test, times)
    cox = CoxFillModel().fit(s, train)
    S = cox.survival(s, test, times)
    assert ((S.to_numpy() >= 0) & (S.to_numpy() <= 1)).all()
    assert (np.diff(S.to_numpy(), axis=1) <= 1e-12).all()         # survival never rises
    curves[cox.name] = S
    sc = score(test, curves, times).set_index("model")
    assert set(sc.index) == set(curves)
    assert (sc["c_index"] > 0.5).all() and (sc["ibs"] < 0.25).all()
    # risk-averse never fills before the truth: it can only under-predict fills by a horizon
    assert sc.loc["risk-averse", "pred_fill_10s"] <= sc.loc["risk-averse", "obs_fill_10s"] + 1e-12
    cal = calibration_table(test, curves)
    assert set(cal["horizon_s"]) == {1.0, 10.0, 60.0} and (cal["n"] > 0).all()
    assert plot_scores(sc.reset_index()) is not None and plot_calibration(cal) is not None
    f = entry_features(s, test)
    assert list(f.columns) == ["shadow"] + FEATURES and len(f) == (test.orders["status"] != "rejected").sum()
    with pytest.raises(ConfigError, match="fit the model first"):
        CoxFillModel().survival(s, test, times)
    with pytest.raises(ConfigError, match="unknown features"):
        CoxFillModel(features=["nope"])


def test_full_fill_scoring_and_the_l2_view(data):
    s, _, test = data
    from lob.queue.l3 import l2_view

    v = l2_view(s[:5000])
    assert (v["level_qty"] >= 0).all() and len(v["prev_qty"]) == 5000
    add = s["kind"][:5000] == 0
    assert (v["level_qty"][add] - v["prev_qty"][add] == s["qty_lots"][:5000][add]).all()
    truth = test.survival("full")
    times = default_times(truth)
    p = predict_fills(s, test, standard_models((1,)))
    full = step_survival(p, test, times, event="full")
    sc = score(test, full, times, event="full").set_index("model")
    assert sc.loc["risk-averse", "filled"] == (truth["observed"][truth["duration_s"] > 0]).sum()
    assert (sc["c_index"] > 0.5).all()
    with pytest.raises(ConfigError, match="event"):
        step_survival(p, test, times, event="last")
    with pytest.raises(ConfigError, match="L3_DTYPE"):
        predict_fills(np.zeros(3), test, standard_models((1,)))
