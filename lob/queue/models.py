"""Level-2 queue models: estimate the quantity ahead of a passive order from level sizes and trades alone.

The protocol (:class:`QueueModel`) follows hftbacktest's queue-model trait (``new_order`` / ``trade`` /
``depth``): a model keeps its estimate in a :class:`QueueState`. ``Backtest(queue_model=...)`` uses it for the
virtual passive orders of ``impact="consume"`` and ``"off"``, and :func:`predict_fills` runs it over shadow
orders so that :mod:`lob.queue.scoring` can compare it with the truth of the L3 FIFO.

Built in (definitions from hftbacktest ``src/backtest/models/queue.rs``, v0.9; see ``docs/queue_models.md``):

* :class:`RiskAverseQueueModel`: the order advances only by trades at its price; a smaller level clips it.
* :class:`ProbQueueModel` with a probability ``prob(front, back)`` that a decrease of the level not explained
  by trades happened behind the order: ``PowerProbQueueFunc(n)`` ``f(back)/(f(back)+f(front))``,
  ``PowerProbQueueFunc2(n)`` ``f(back)/f(back+front)``, ``PowerProbQueueFunc3(n)`` ``1-f(front/(front+back))``
  with ``f(x)=x**n``; ``LogProbQueueFunc`` and ``LogProbQueueFunc2`` the first two with ``f(x)=log(1+x)``.
* :class:`FittedProbQueueModel`: the same update with a logistic probability fitted to the truth (which
  cancels were behind real shadow orders), :meth:`FittedProbQueueModel.fit`.

Writing your own: subclass :class:`QueueModel` and override ``depth`` (and ``new_order`` / ``trade`` if you
need to); yours run in Python with the same event order. The built-in models also run compiled: over shadow
orders (``_code``) and in backtests (``compiled()``: a :class:`lob.queue._compiled.CompiledQueueModel`, called
by the step loop without the GIL). A compiled model of your own derives from ``CompiledQueueModel`` in Cython
(``cimport`` from ``lob.queue._compiled``; docs/queue_models.md) and goes to ``Backtest(queue_model=...)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lob.errors import ConfigError

__all__ = ["QueueState", "QueueModel", "RiskAverseQueueModel", "ProbQueueModel", "PowerProbQueueFunc",
           "PowerProbQueueFunc2", "PowerProbQueueFunc3", "LogProbQueueFunc", "LogProbQueueFunc2",
           "FittedProbQueueModel", "standard_models", "predict_fills", "shadow_event_lists"]


@dataclass
class QueueState:
    """A virtual order's queue estimate: ``ahead`` (lots ahead of it), trades seen since the last depth change
    (``traded``), and ``data`` for a model's own values."""

    ahead: float = 0.0
    traded: float = 0.0
    data: dict = field(default_factory=dict)


class QueueModel:
    """Base class and protocol of a level-2 queue model.

    The caller (a backtest, or :func:`predict_fills`) calls, for one resting order at one price:

    ``new_order(state, level_qty)``
        when the order arrives; the displayed size at its price is ``level_qty``.
    ``trade(state, qty) -> int``
        for a trade of ``qty`` at its price; returns the part of the trade that reaches the order (a fill).
    ``depth(state, prev_qty, new_qty)``
        after each change of the displayed size at its price (trades included: the trades since the last
        call are in ``state.traded``; reset it).

    The base class implements ``new_order`` (everything displayed is ahead), ``trade`` (the trade eats the
    queue ahead first, the rest reaches the order) and ``depth`` (the estimate never exceeds what is shown).
    """

    name = "queue model"
    _code = None          # built-in models: (kernel code, a, b, c) for the compiled path
    _params = (0.0, 0.0, 0.0)

    def new_order(self, state: QueueState, level_qty: float) -> None:
        state.ahead = float(level_qty)
        state.traded = 0.0

    def trade(self, state: QueueState, qty: float) -> int:
        state.traded += qty
        if qty > state.ahead:
            reach = qty - state.ahead
            state.ahead = 0.0
            return int(reach)
        state.ahead -= qty
        return 0

    def depth(self, state: QueueState, prev_qty: float, new_qty: float) -> None:
        state.traded = 0.0
        state.ahead = min(state.ahead, float(new_qty))

    def __repr__(self) -> str:
        return self.name

    def compiled(self):
        """The compiled form (:mod:`lob.queue._compiled`) the backtest step loop runs without the GIL, or None
        when the model has none (a model of your own, or a built-in one whose methods were replaced)."""
        if not _is_builtin(self):
            return None
        from lob.queue._compiled import CompiledQueueModel, CPowerLogQueueModel

        if self._code == 0:
            return CompiledQueueModel()
        return CPowerLogQueueModel(int(self._code), *map(float, self._params), name=str(self.name))


def _is_builtin(mdl) -> bool:
    # a built-in model (not a subclass: it may change the rules) with no method replaced on the instance
    return (type(mdl) in _BUILTIN and getattr(mdl, "_code", None) is not None
            and not {"depth", "trade", "new_order", "prob"} & set(vars(mdl)))


class RiskAverseQueueModel(QueueModel):
    """hftbacktest's ``RiskAdverseQueueModel``: only trades move the order up; cancels are all behind it
    (the estimate is only clipped to the displayed size)."""

    name = "risk-averse"
    _code = 0


class ProbQueueModel(QueueModel):
    """hftbacktest's ``ProbQueueModel``: a decrease not explained by trades, ``chg = prev - new - traded``,
    moves the order up by ``(1 - p) * chg`` with ``p = prob(front, back)`` the probability that it was behind,
    ``front`` the estimate and ``back = prev - front`` (and by the overflow when ``p * chg`` exceeds
    ``back``); never beyond the new displayed size."""

    name = "prob"

    def prob(self, front: float, back: float, prev: float) -> float:
        raise NotImplementedError

    def depth(self, state: QueueState, prev_qty: float, new_qty: float) -> None:
        chg = float(prev_qty) - float(new_qty) - state.traded
        state.traded = 0.0
        if chg < 0:
            state.ahead = min(state.ahead, float(new_qty))
            return
        front = state.ahead
        back = float(prev_qty) - front
        with np.errstate(all="ignore"):
            try:
                p = float(self.prob(front, back, float(prev_qty)))
            except (ZeroDivisionError, ValueError, OverflowError):
                p = math.inf
        if not math.isfinite(p):
            p = 1.0
        est = front - (1.0 - p) * chg + min(back - p * chg, 0.0)
        state.ahead = max(min(est, float(new_qty)), 0.0)


def _check_n(n):
    if not (isinstance(n, (int, float)) and math.isfinite(n) and n > 0):
        raise ConfigError(f"n must be a positive number, got {n!r}")
    return float(n)


def _pw(x, n):
    return x ** n


class PowerProbQueueFunc(ProbQueueModel):
    """``p = f(back) / (f(back) + f(front))``, ``f(x) = x**n``."""

    def __init__(self, n: float = 2.0):
        self.n = _check_n(n)
        self.name = f"PowerProbQueueFunc(n={n:g})"
        self._code, self._params = 1, (self.n, 0.0, 0.0)

    def prob(self, front, back, prev):
        return _pw(back, self.n) / (_pw(back, self.n) + _pw(front, self.n))


class PowerProbQueueFunc2(ProbQueueModel):
    """``p = f(back) / f(back + front)``, ``f(x) = x**n``."""

    def __init__(self, n: float = 2.0):
        self.n = _check_n(n)
        self.name = f"PowerProbQueueFunc2(n={n:g})"
        self._code, self._params = 2, (self.n, 0.0, 0.0)

    def prob(self, front, back, prev):
        return _pw(back, self.n) / _pw(back + front, self.n)


class PowerProbQueueFunc3(ProbQueueModel):
    """``p = 1 - f(front / (front + back))``, ``f(x) = x**n``."""

    def __init__(self, n: float = 2.0):
        self.n = _check_n(n)
        self.name = f"PowerProbQueueFunc3(n={n:g})"
        self._code, self._params = 3, (self.n, 0.0, 0.0)

    def prob(self, front, back, prev):
        return 1.0 - _pw(front / (front + back), self.n)


class LogProbQueueFunc(ProbQueueModel):
    """``p = f(back) / (f(back) + f(front))``, ``f(x) = log(1 + x)``."""

    name = "LogProbQueueFunc"
    _code = 4

    def prob(self, front, back, prev):
        return math.log1p(back) / (math.log1p(back) + math.log1p(front))


class LogProbQueueFunc2(ProbQueueModel):
    """``p = f(back) / f(back + front)``, ``f(x) = log(1 + x)``."""

    name = "LogProbQueueFunc2"
    _code = 5

    def prob(self, front, back, prev):
        return math.log1p(back) / math.log1p(back + front)


class FittedProbQueueModel(ProbQueueModel):
    """The probabilistic update with ``p = sigmoid(a + b * front / (front + back) + c * log(1 + prev))``,
    the probability that a cancel at the level was behind the order, fitted to the truth by :meth:`fit`."""

    name = "fitted-logistic"

    def __init__(self, a: float = 0.0, b: float = 0.0, c: float = 0.0):
        for k, v in (("a", a), ("b", b), ("c", c)):
            if not (isinstance(v, (int, float)) and math.isfinite(v)):
                raise ConfigError(f"{k} must be a finite number, got {v!r}")
        self.a, self.b, self.c = float(a), float(b), float(c)
        self._code, self._params = 6, (self.a, self.b, self.c)

    def prob(self, front, back, prev):
        tot = front + back
        z = self.a + self.b * (front / tot if tot > 0 else 0.0) + self.c * math.log1p(prev)
        return 1.0 / (1.0 + math.exp(-z))

    @classmethod
    def fit(cls, trace: pd.DataFrame) -> "FittedProbQueueModel":
        """Fit on a cancel trace of shadow orders (:attr:`ShadowResult.trace`): one row per cancel at a live
        shadow's level with ``ahead`` and ``level`` before it, ``qty`` and ``is_ahead``; weighted by ``qty``
        (the model moves the estimate by quantities)."""
        from sklearn.linear_model import LogisticRegression

        need = {"ahead", "level", "qty", "is_ahead"}
        if not need <= set(trace.columns):
            raise ConfigError(f"trace must have columns {sorted(need)}, got {sorted(trace.columns)}")
        t = trace[trace["level"] > 0]
        if t["is_ahead"].nunique() < 2:
            raise ConfigError("trace must hold cancels both ahead of and behind the orders to fit")
        x = np.column_stack([t["ahead"] / t["level"], np.log1p(t["level"])])
        y = 1 - t["is_ahead"].to_numpy()            # 1: behind
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(x, y, sample_weight=t["qty"].to_numpy(float))
        return cls(float(lr.intercept_[0]), float(lr.coef_[0, 0]), float(lr.coef_[0, 1]))


_BUILTIN = (RiskAverseQueueModel, PowerProbQueueFunc, PowerProbQueueFunc2, PowerProbQueueFunc3, LogProbQueueFunc,
            LogProbQueueFunc2, FittedProbQueueModel)


def standard_models(ns=(1, 2, 3)) -> list:
    """Risk-averse, the five probabilistic functions (the power ones for each ``n``)."""
    out = [RiskAverseQueueModel()]
    for n in ns:
        out += [PowerProbQueueFunc(n), PowerProbQueueFunc2(n), PowerProbQueueFunc3(n)]
    return out + [LogProbQueueFunc(), LogProbQueueFunc2()]


# ------------------------------------------------------------------------------------------------
# Running models over shadow orders
# ------------------------------------------------------------------------------------------------
def shadow_event_lists(stream: np.ndarray, result, horizon_end=None):
    """What a level-2 feed shows each placed shadow, from its placement to its planned end.

    Returns (offsets, event index, code, prev, new): code 0 = a level change at its price, 1 = a trade at its
    price (an execution) with its level change, 2 = an aggressor through its price (an execution on its side
    at a worse price, or an order of the other side added at or through it). The planned end is the shadow's
    own end time (``horizon_end``, default its ``end_ts`` unless it filled), cut at a ``window`` censoring.
    """
    from lob.queue._shadow import level_sizes
    from lob.queue.l3 import ADD, EXEC

    prev, new = level_sizes(stream)
    o = result.orders
    ts = stream["ts_ns"]
    side, price, kind = stream["side"].astype(np.int64), stream["price_ticks"], stream["kind"]
    key = side * (1 << 40) + price
    order = np.lexsort((np.arange(len(stream)), key))
    skey = key[order]
    ex_idx = {s: np.flatnonzero((kind == EXEC) & (stream["side"] == s)) for s in (0, 1)}
    add_idx = {s: np.flatnonzero((kind == ADD) & (stream["side"] == s)) for s in (0, 1)}
    plan_end = o["plan_end_ts"].to_numpy() if horizon_end is None else np.asarray(horizon_end)
    offsets = [0]
    idx_parts, code_parts = [], []
    for r, pe in zip(o.itertuples(), plan_end):
        if r.status == "rejected":
            offsets.append(offsets[-1])
            continue
        sd = 0 if r.side == "buy" else 1
        p = int(r.price_ticks)
        i0 = int(np.searchsorted(ts, r.ts_ns, side="right"))
        stop = r.end_ts if r.status == "window" else pe
        i1 = int(np.searchsorted(ts, stop, side="right"))
        k = sd * (1 << 40) + p
        a, b = np.searchsorted(skey, k, "left"), np.searchsorted(skey, k, "right")
        lvl = order[a:b]
        lvl = lvl[(lvl >= i0) & (lvl < i1)]
        ex = ex_idx[sd]
        ex = ex[(ex >= i0) & (ex < i1)]
        thr = ex[(price[ex] < p) if sd == 0 else (price[ex] > p)]
        ad = add_idx[1 - sd]
        ad = ad[(ad >= i0) & (ad < i1)]
        cr = ad[(price[ad] <= p) if sd == 0 else (price[ad] >= p)]
        idx = np.concatenate([lvl, thr, cr])
        code = np.concatenate([np.where(kind[lvl] == EXEC, 1, 0), np.full(len(thr) + len(cr), 2)]).astype(np.uint8)
        srt = np.argsort(idx, kind="stable")
        idx_parts.append(idx[srt])
        code_parts.append(code[srt])
        offsets.append(offsets[-1] + len(idx))
    idx = np.concatenate(idx_parts) if idx_parts else np.zeros(0, np.int64)
    code = np.concatenate(code_parts) if code_parts else np.zeros(0, np.uint8)
    return np.asarray(offsets, np.int64), idx.astype(np.int64), code, prev, new


def _run_python(model, lists, stream, o):
    offsets, idx, code, prev, new = lists
    ts, qty = stream["ts_ns"], stream["qty_lots"]
    m = len(o)
    first = np.full(m, -1, np.int64)
    full = np.full(m, -1, np.int64)
    got = np.zeros(m, np.int64)
    for k in range(m):
        st = QueueState()
        model.new_order(st, float(o["ahead_at_entry"].iat[k]))
        left = int(o["qty_lots"].iat[k])
        for j in range(offsets[k], offsets[k + 1]):
            e = idx[j]
            c = code[j]
            if c == 2:
                take = int(qty[e])
                st.ahead = 0.0
            else:
                take = model.trade(st, float(qty[e])) if c == 1 else 0
                model.depth(st, float(prev[e]), float(new[e]))
            if take > 0:
                take = min(take, left)
                left -= take
                got[k] += take
                if first[k] < 0:
                    first[k] = ts[e]
                if left == 0:
                    full[k] = ts[e]
                    break
    return first, full, got


def predict_fills(stream: np.ndarray, result, models, compiled: bool = True) -> pd.DataFrame:
    """Each model's prediction for each placed shadow order, from the level-2 view only.

    Returns one row per (shadow, model): ``pred_first_fill_ts`` (-1: none before the planned end),
    ``pred_full_fill_ts``, ``pred_filled_lots``. Built-in models run compiled unless ``compiled=False``.
    """
    from lob.queue._shadow import run_models
    from lob.queue.l3 import L3_DTYPE

    if not isinstance(stream, np.ndarray) or stream.dtype != L3_DTYPE:
        raise ConfigError(f"stream must be an ndarray of L3_DTYPE, got {getattr(stream, 'dtype', type(stream))}")
    models = list(models)
    for mdl in models:
        if not all(callable(getattr(mdl, f, None)) for f in ("new_order", "trade", "depth")):
            raise ConfigError(f"{mdl!r} is not a queue model (needs new_order, trade and depth)")
    names = [getattr(mdl, "name", type(mdl).__name__) for mdl in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"model names must be unique, got {names}")
    lists = shadow_event_lists(stream, result)
    o = result.orders
    offsets, idx, code, prev, new = lists
    builtin = [i for i, mdl in enumerate(models) if compiled and _is_builtin(mdl)]
    res = {}
    if builtin:
        codes = np.array([models[i]._code for i in builtin], np.int64)
        params = np.array([models[i]._params for i in builtin], np.float64).reshape(len(builtin), 3)
        f1, f2, g = run_models(offsets, idx, code, np.ascontiguousarray(stream["ts_ns"]),
                               np.ascontiguousarray(stream["qty_lots"]), prev, new,
                               o["ahead_at_entry"].to_numpy(np.int64), o["qty_lots"].to_numpy(np.int64), codes,
                               np.ascontiguousarray(params))
        for j, i in enumerate(builtin):
            res[i] = (f1[:, j], f2[:, j], g[:, j])
    for i, mdl in enumerate(models):
        if i not in res:
            res[i] = _run_python(mdl, lists, stream, o)
    frames = []
    for i, name in enumerate(names):
        f1, f2, g = res[i]
        frames.append(pd.DataFrame({"shadow": o["shadow"].to_numpy(), "model": name, "pred_first_fill_ts": f1,
                                    "pred_full_fill_ts": f2, "pred_filled_lots": g}))
    out = pd.concat(frames, ignore_index=True)
    out["model"] = pd.Categorical(out["model"], categories=names)
    return out
