"""Score queue models against the truth with survival-analysis metrics (scikit-survival).

The truth is survival data from shadow orders (:meth:`ShadowResult.survival`): the time to the first fill, or
censoring. A model is a survival curve per order, S(t), the probability that the order is not yet filled t
seconds after placement. A level-2 queue model (:func:`lob.queue.models.predict_fills`) predicts one fill time
T, so its curve is a step (1 before T, 0 from T on); a hazard model (:class:`lob.queue.hazard.CoxFillModel`)
gives a smooth curve.

Metrics, per model (and per group, e.g. day and symbol):

``c_index``
    Harrell's concordance index (``sksurv.metrics.concordance_index_censored``) of the risk
    ``-RMST`` (the restricted mean of S over the time grid): the share of comparable pairs of orders that the
    model orders correctly by fill time; 0.5 is chance, ties count half.
``ibs``
    Integrated Brier score over the time grid (the part inside the orders' follow-up) (``sksurv.metrics.integrated_brier_score``; inverse
    probability of censoring weights from the truth's censoring): 0 is perfect, 0.25 is an uninformative 0.5.
``pred_fill_Hs`` / ``obs_fill_Hs`` / ``calib_err_Hs``
    At each horizon H (1 s, 10 s, 60 s): the mean predicted probability of a fill by H, the observed rate (among
    orders whose outcome at H is known: filled by H, or still resting at H), and the mean absolute gap between
    predicted and observed rates over ten bins of predicted probability (expected calibration error).
``brier_Hs``
    The IPCW Brier score at H.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from lob.errors import ConfigError

__all__ = ["step_survival", "score", "calibration_table", "default_times", "plot_scores", "plot_calibration"]

HORIZONS = (1.0, 10.0, 60.0)


def default_times(truth: pd.DataFrame, horizons=HORIZONS, n: int = 40) -> np.ndarray:
    """A log-spaced grid from 0.1 s to just below the longest observed duration, with the horizons in it."""
    hi = float(truth["duration_s"].max()) * 0.99
    grid = np.geomspace(0.1, max(hi, 0.2), n)
    grid = np.unique(np.concatenate([grid, [h for h in horizons if h < hi]]))
    return grid[grid < hi]


def step_survival(predictions: pd.DataFrame, result, times, event: str = "first") -> dict:
    """Survival curves of level-2 model predictions (:func:`predict_fills`): {model: DataFrame shadows x times}.

    ``event`` as in :meth:`ShadowResult.survival`: the predicted first fill, or the predicted complete fill.
    """
    if event not in ("first", "full"):
        raise ConfigError(f"event must be 'first' or 'full', got {event!r}")
    col = "pred_first_fill_ts" if event == "first" else "pred_full_fill_ts"
    o = result.orders.set_index("shadow")
    times = np.asarray(times, float)
    out = {}
    for name, g in predictions.groupby("model", observed=True, sort=False):
        g = g.set_index("shadow")
        g = g.loc[g.index.intersection(o.index[o["status"] != "rejected"])]
        t0 = o.loc[g.index, "ts_ns"].to_numpy()
        f = g[col].to_numpy()
        tp = np.where(f >= 0, (f - t0) / 1e9, np.inf)
        out[str(name)] = pd.DataFrame((tp[:, None] > times[None, :]).astype(float), index=g.index, columns=times)
    return out


def _surv(event, time):
    from sksurv.util import Surv

    return Surv.from_arrays(event=np.asarray(event, bool), time=np.asarray(time, float))


def _score_one(truth, S, times, horizons, y_all):
    from sksurv.metrics import brier_score, concordance_index_censored, integrated_brier_score

    S = S.loc[truth.index]
    ev = truth["observed"].to_numpy().astype(bool)
    tm = truth["duration_s"].to_numpy(float)
    y = _surv(ev, tm)
    sv = S.to_numpy()
    cols = np.asarray(S.columns, float)
    dt = np.diff(np.concatenate([[0.0], cols]))
    rmst = (sv * dt[None, :]).sum(axis=1)
    row = {"n": len(truth), "filled": int(ev.sum()),
           "c_index": float(concordance_index_censored(ev, tm, -rmst)[0])}
    keep = (times >= tm.min()) & (times < tm.max())       # sksurv: inside the follow-up of these orders
    row["ibs"] = float(integrated_brier_score(y_all, y, sv[:, keep], times[keep]))
    for h in horizons:
        lab = f"{h:g}s"
        j = int(np.argmin(np.abs(cols - h)))
        p = 1.0 - sv[:, j]
        known = (ev & (tm <= h)) | (tm > h)
        obs = (ev & (tm <= h))[known].astype(float)
        pk = p[known]
        row[f"pred_fill_{lab}"] = float(pk.mean()) if len(pk) else np.nan
        row[f"obs_fill_{lab}"] = float(obs.mean()) if len(obs) else np.nan
        row[f"calib_err_{lab}"] = _ece(pk, obs)
        inside = tm.min() <= cols[j] < tm.max()
        row[f"brier_{lab}"] = float(brier_score(y_all, y, sv[:, j], cols[j])[1][0]) if inside else np.nan
    return row


def _ece(p, obs, bins: int = 10) -> float:
    if len(p) == 0:
        return np.nan
    b = np.minimum((p * bins).astype(int), bins - 1)
    err = 0.0
    for k in np.unique(b):
        m = b == k
        err += m.sum() * abs(p[m].mean() - obs[m].mean())
    return float(err / len(p))


def score(result, curves: dict, times=None, horizons=HORIZONS, by=None, event: str = "first") -> pd.DataFrame:
    """Score survival curves against the truth of shadow orders.

    Parameters
    ----------
    result : ShadowResult
        The truth. Extra columns of its orders (e.g. ``symbol``, ``day``) can group the scores (``by``).
    curves : dict
        {model name: DataFrame indexed by shadow, columns = ``times``, values S(t)}; from
        :func:`step_survival` and :meth:`CoxFillModel.survival`. Orders missing from a curve are left out of
        that model's score.
    times : array, optional
        The grid of the curves (default :func:`default_times` of the truth).
    by : str or list, optional
        Columns of ``result.orders`` to score per group.
    """
    truth = result.survival(event).set_index("shadow")
    truth = truth[truth["duration_s"] > 0]
    if times is None:
        times = default_times(truth, horizons)
    times = np.asarray(times, float)
    by = [by] if isinstance(by, str) else list(by or [])
    missing = [b for b in by if b not in truth.columns]
    if missing:
        raise ConfigError(f"by: columns {missing} are not in the shadow orders")
    y_all = _surv(truth["observed"].astype(bool), truth["duration_s"])
    rows = []
    groups = truth.groupby(by, observed=True, sort=True) if by else [((), truth)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        for name, S in curves.items():
            cols = np.asarray(S.columns, float)
            if cols.shape != times.shape or not np.allclose(cols, times):
                raise ConfigError(f"curves[{name!r}] must have the columns of times")
            gg = g.loc[g.index.intersection(S.index)]
            if len(gg) < 2 or gg["observed"].sum() == 0:
                continue
            row = dict(zip(by, key))
            row["model"] = name
            row.update(_score_one(gg, S, times, horizons, y_all))
            rows.append(row)
    return pd.DataFrame(rows)


def calibration_table(result, curves: dict, horizons=HORIZONS, bins: int = 10, times=None,
                      event: str = "first") -> pd.DataFrame:
    """Predicted vs observed fill probability by H, in bins of the prediction: for calibration plots."""
    truth = result.survival(event).set_index("shadow")
    truth = truth[truth["duration_s"] > 0]
    rows = []
    for name, S in curves.items():
        g = truth.loc[truth.index.intersection(S.index)]
        S = S.loc[g.index]
        cols = np.asarray(S.columns, float)
        ev, tm = g["observed"].to_numpy().astype(bool), g["duration_s"].to_numpy(float)
        for h in horizons:
            j = int(np.argmin(np.abs(cols - h)))
            p = 1.0 - S.to_numpy()[:, j]
            known = (ev & (tm <= h)) | (tm > h)
            p, obs = p[known], (ev & (tm <= h))[known].astype(float)
            b = np.minimum((p * bins).astype(int), bins - 1)
            for k in np.unique(b):
                m = b == k
                rows.append({"model": name, "horizon_s": h, "bin": int(k), "n": int(m.sum()),
                             "mean_pred": float(p[m].mean()), "obs_rate": float(obs[m].mean())})
    return pd.DataFrame(rows)
