"""A fill-time hazard model fitted to the truth: Cox proportional hazards on level-2 features at entry.

Features (all visible in a level-2 feed with trades, at the moment the order is placed):

``log_ahead``      log(1 + displayed size at the order's price) - what is ahead of it on arrival
``ticks_from_best`` 0 at the best price, k behind it
``spread``         best ask - best bid, ticks
``log_qty``        log(1 + order size)
``trade_rate``     lots traded against the order's side in the last ``window_s`` seconds, per second
``cancel_rate``    lots cancelled on the order's side in the last ``window_s`` seconds, per second
``imbalance``      (best bid size - best ask size) / (sum), signed so that positive favours a fill of the order

The model is fitted with lifelines' ``CoxPHFitter`` on shadow orders of one period and predicts a survival
curve S(t | x) per order, the probability that it is not yet filled t seconds after placement.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from lob.errors import ConfigError

__all__ = ["entry_features", "CoxFillModel", "FEATURES"]

FEATURES = ["log_ahead", "ticks_from_best", "spread", "log_qty", "trade_rate", "cancel_rate", "imbalance"]


def entry_features(stream: np.ndarray, result, window_s: float = 10.0) -> pd.DataFrame:
    """The level-2 features of each placed shadow at its placement (see the module docstring)."""
    from lob.queue._shadow import level_sizes
    from lob.queue.l3 import EXEC, REMOVE

    if window_s <= 0:
        raise ConfigError(f"window_s must be > 0, got {window_s}")
    o = result.orders[result.orders["status"] != "rejected"]
    ts = stream["ts_ns"]
    w = int(window_s * 1e9)
    i1 = np.searchsorted(ts, o["ts_ns"].to_numpy(), side="right")
    i0 = np.searchsorted(ts, o["ts_ns"].to_numpy() - w, side="right")
    sd = (o["side"] == "sell").to_numpy().astype(np.int64)
    feats = {}
    for name, kind in (("trade_rate", EXEC), ("cancel_rate", REMOVE)):
        cum = []
        for s in (0, 1):
            v = np.where((stream["kind"] == kind) & (stream["side"] == s) & ((stream["flags"] & 2) == 0),
                         stream["qty_lots"], 0)
            cum.append(np.concatenate([[0], np.cumsum(v)]))
        c = np.where(sd == 0, cum[0][i1] - cum[0][i0], cum[1][i1] - cum[1][i0])
        feats[name] = c / window_s
    # best sizes at entry: level sizes after the last event before placement
    prev, new = level_sizes(stream)
    bid_sz, ask_sz = _best_sizes(stream, o, new)
    mine = np.where(sd == 0, bid_sz, ask_sz).astype(float)
    other = np.where(sd == 0, ask_sz, bid_sz).astype(float)
    tot = mine + other
    imb = np.divide(other - mine, tot, out=np.zeros_like(tot), where=tot > 0)
    return pd.DataFrame({"shadow": o["shadow"].to_numpy(),
                         "log_ahead": np.log1p(o["ahead_at_entry"].to_numpy(float)),
                         "ticks_from_best": o["ticks_from_best"].to_numpy(float),
                         "spread": (o["best_ask"] - o["best_bid"]).to_numpy(float),
                         "log_qty": np.log1p(o["qty_lots"].to_numpy(float)),
                         "trade_rate": feats["trade_rate"], "cancel_rate": feats["cancel_rate"],
                         "imbalance": imb})


def _best_sizes(stream, o, new):
    """Displayed sizes at the best bid and ask recorded for each order at entry (last change of that level)."""
    ts = stream["ts_ns"]
    key = stream["side"].astype(np.int64) * (1 << 40) + stream["price_ticks"]
    order = np.lexsort((np.arange(len(stream)), key))
    skey = key[order]
    out = []
    for s, col in ((0, "best_bid"), (1, "best_ask")):
        sizes = np.zeros(len(o), np.int64)
        for j, (t, p) in enumerate(zip(o["ts_ns"].to_numpy(), o[col].to_numpy())):
            k = s * (1 << 40) + int(p)
            a, b = np.searchsorted(skey, k, "left"), np.searchsorted(skey, k, "right")
            ev = order[a:b]
            last = np.searchsorted(ts[ev], t, side="right") - 1
            sizes[j] = new[ev[last]] if last >= 0 else 0
        out.append(sizes)
    return out


class CoxFillModel:
    """Cox proportional-hazards model of the time to the first fill, on :func:`entry_features`.

    Examples
    --------
    >>> m = CoxFillModel().fit(stream, train_result)            # doctest: +SKIP
    >>> s = m.survival(stream, test_result, times=[1, 10, 60])  # doctest: +SKIP
    """

    name = "cox-hazard"

    def __init__(self, penalizer: float = 0.01, window_s: float = 10.0, features=None):
        self.penalizer = penalizer
        self.window_s = window_s
        self.features = list(features or FEATURES)
        bad = set(self.features) - set(FEATURES)
        if bad:
            raise ConfigError(f"unknown features {sorted(bad)}; choose from {FEATURES}")
        self.cph = None
        self.used: list = []

    def fit(self, stream, result, event: str = "first") -> "CoxFillModel":
        from lifelines import CoxPHFitter

        x = entry_features(stream, result, self.window_s)
        sv = result.survival(event)
        df = x.merge(sv[["shadow", "duration_s", "observed"]], on="shadow")
        df = df[df["duration_s"] > 0]
        # a feature that does not vary in the training orders (e.g. one order size) carries nothing
        self.used = [f for f in self.features if df[f].std() > 0]
        if not self.used:
            raise ConfigError("no feature varies across the training orders")
        self.cph = CoxPHFitter(penalizer=self.penalizer).fit(df[self.used + ["duration_s", "observed"]],
                                                             duration_col="duration_s", event_col="observed")
        return self

    def survival(self, stream, result, times) -> pd.DataFrame:
        """S(t | x) per placed shadow (rows) at ``times`` seconds (columns)."""
        if self.cph is None:
            raise ConfigError("fit the model first")
        x = entry_features(stream, result, self.window_s)
        sf = self.cph.predict_survival_function(x[self.used], times=np.asarray(times, float))
        out = sf.T
        out.index = x["shadow"].to_numpy()
        out.columns = np.asarray(times, float)
        return out

    def summary(self) -> pd.DataFrame:
        if self.cph is None:
            raise ConfigError("fit the model first")
        return self.cph.summary[["coef", "exp(coef)", "se(coef)", "p"]]
