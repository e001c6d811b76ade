"""Shadow orders: hypothetical orders placed into the real L3 FIFO of a day, tracked to fill or censoring.

A shadow order is what a researcher's passive order would have been: placed at a time, on a side, at the best
price or ``k`` ticks from it (or at a given price), for a size, and cancelled at an end time or left to the end
of the data. It joins the back of its level, and the L3 stream (:mod:`lob.queue.l3`) then says exactly which
orders are ahead of it: cancels and executions of those orders move it up; an aggressor that reaches past them
(an execution of an order behind it, an execution at a worse price, an opposite order added at or through its
price) fills it. It never changes the history, and shadows never meet each other: each is evaluated as if it
were the only one, so thousands are tracked in one pass (:func:`track_shadows`, compiled, ``nogil``).

The outcome is survival data: the time from placement to the first fill (the event), or to the censoring (its
own cancel, the end of the data, or the reconstruction taking its level from the orderbook file, ``window``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lob.errors import ConfigError
from lob.queue.l3 import L3_DTYPE

__all__ = ["ShadowResult", "track_shadows", "random_shadows", "STATUS"]

STATUS = {0: "open", 1: "filled", 2: "cancelled", 3: "window", 4: "rejected", -1: "pending"}
_NO_END = np.iinfo(np.int64).max


def _col(shadows, name, default=None):
    if name in shadows:
        return np.asarray(shadows[name])
    if default is None:
        raise ConfigError(f"shadows: missing field {name!r}")
    return default


def _spec(shadows) -> pd.DataFrame:
    """Normalise a shadow specification (DataFrame or dict of columns) and check every field."""
    df = pd.DataFrame(shadows).reset_index(drop=True)
    n = len(df)
    if "ts_ns" not in df:
        raise ConfigError("shadows: missing field 'ts_ns'")
    if "side" not in df:
        raise ConfigError("shadows: missing field 'side'")
    side = df["side"]
    if not pd.api.types.is_numeric_dtype(side):
        bad = ~side.isin(["buy", "sell", "bid", "ask"])
        if bad.any():
            raise ConfigError(f"shadows: field 'side' must be 'buy'/'sell' or 0/1, got {side[bad].iloc[0]!r}")
        side = side.isin(["sell", "ask"]).astype(np.uint8)
    else:
        if not side.isin([0, 1]).all():
            raise ConfigError(f"shadows: field 'side' must be 0 (buy) or 1 (sell), got {side[~side.isin([0, 1])].iloc[0]!r}")
        side = side.astype(np.uint8)
    has_price = "price_ticks" in df
    has_off = "ticks_from_best" in df
    if has_price and has_off:
        both = df["price_ticks"].notna() & df["ticks_from_best"].notna()
        if both.any():
            raise ConfigError("shadows: give 'price_ticks' or 'ticks_from_best' per row, not both")
    if not has_price and not has_off:
        df["ticks_from_best"] = 0
        has_off = True
    absolute = df["price_ticks"].notna().to_numpy() if has_price else np.zeros(n, bool)
    off = np.where(absolute, df["price_ticks"].fillna(0).to_numpy() if has_price else 0,
                   df["ticks_from_best"].fillna(0).to_numpy() if has_off else 0).astype(np.int64)
    qty = df["qty_lots"].to_numpy(np.int64) if "qty_lots" in df else np.full(n, 100, np.int64)
    if (qty <= 0).any():
        raise ConfigError(f"shadows: field 'qty_lots' must be > 0, got {qty[qty <= 0][0]}")
    ts = df["ts_ns"].to_numpy(np.int64)
    if "end_ns" in df:
        col = df["end_ns"]
        end = np.full(n, _NO_END, np.int64)          # a missing end: rests to the end of the data
        have = col.notna().to_numpy()
        end[have] = col[have].astype(np.int64).to_numpy()
    elif "ttl_ns" in df:
        ttl = df["ttl_ns"].to_numpy(np.int64)
        if (ttl < 0).any():
            raise ConfigError(f"shadows: field 'ttl_ns' must be >= 0, got {ttl[ttl < 0][0]}")
        end = ts + ttl
    else:
        end = np.full(n, _NO_END, np.int64)
    if (end < ts).any():
        i = int(np.flatnonzero(end < ts)[0])
        raise ConfigError(f"shadows: field 'end_ns' {end[i]} is before 'ts_ns' {ts[i]} (row {i})")
    return pd.DataFrame({"ts_ns": ts, "side": side.to_numpy(np.uint8), "offset": off,
                         "absolute": absolute.astype(np.uint8), "qty_lots": qty, "end_ns": end})


@dataclass
class ShadowResult:
    """Per-shadow outcomes (``orders``), every fill (``fills``), and counters of the pass."""

    orders: pd.DataFrame
    fills: pd.DataFrame
    events: int = 0
    priority_breaks: int = 0
    anomalies: int = 0
    trace: pd.DataFrame | None = None

    def survival(self, event: str = "first") -> pd.DataFrame:
        """Survival data of the placed shadows: ``duration_s`` and ``observed`` (1 = filled).

        ``event="first"``: the event is the first fill (the queue ahead is gone and an aggressor reaches the
        order); ``"full"``: the order is completely filled (a partial fill then counts as censored at its
        censoring time).
        """
        if event not in ("first", "full"):
            raise ConfigError(f"event must be 'first' or 'full', got {event!r}")
        o = self.orders[self.orders["status"] != "rejected"].copy()
        if event == "first":
            observed = o["first_fill_ts"] >= 0
            stop = np.where(observed, o["first_fill_ts"], o["end_ts"])
        else:
            observed = o["status"] == "filled"
            stop = o["end_ts"]
        o["duration_s"] = (stop - o["ts_ns"]) / 1e9
        o["observed"] = observed.astype(int).to_numpy()
        return o

    def summary(self) -> pd.DataFrame:
        st = self.orders["status"].value_counts()
        rows = [("shadows", len(self.orders))] + [(f"status {k}", int(v)) for k, v in st.items()]
        rows += [("fill records", len(self.fills)), ("events", self.events),
                 ("price-time priority breaks met", self.priority_breaks), ("anomalies", self.anomalies)]
        return pd.DataFrame(rows, columns=["", "value"])

    def __repr__(self) -> str:
        st = self.orders["status"].value_counts()
        return (f"ShadowResult({len(self.orders)} shadows: " + ", ".join(f"{k} {v}" for k, v in st.items() if v)
                + f"; {len(self.fills)} fills over {self.events} events)")

    def _repr_html_(self) -> str:
        return "<b>Shadow orders</b>" + self.summary().to_html(index=False)


def track_shadows(stream: np.ndarray, shadows, n_orders: int | None = None, trace: bool = False) -> ShadowResult:
    """Place shadow orders into an L3 stream and track each one's exact queue position in one pass.

    Parameters
    ----------
    stream : ndarray of ``L3_DTYPE``
        From :func:`lob.queue.l3.l3_stream` or :func:`lob.queue.l3.goog_l3`.
    shadows : DataFrame or dict of columns
        ``ts_ns`` (placement time: after every event at or before it), ``side`` ("buy"/"sell" or 0/1),
        ``ticks_from_best`` (0 = join the best price, k > 0 = k ticks behind it, k < 0 = inside the spread) or
        ``price_ticks``, ``qty_lots`` (default 100), and ``end_ns`` or ``ttl_ns`` (cancel time; default none).
        Extra columns are kept in the result.
    n_orders : int, optional
        Number of distinct orders in the stream (default: ``stream["order"].max() + 1``).
    trace : bool
        Also record every cancel at a live shadow's level: ``result.trace`` (shadow, event, ahead and level
        before it, qty, is_ahead), which :meth:`lob.queue.models.FittedProbQueueModel.fit` learns from.

    Returns
    -------
    ShadowResult
        ``orders``: per shadow its status (filled / cancelled / open / window / rejected), price, queue ahead at
        entry and at its end, level size at entry, best prices at entry, first fill time, end time, filled qty;
        ``fills``: (shadow, ts_ns, qty_lots, event) per fill.
    """
    from lob.queue._shadow import track

    if not isinstance(stream, np.ndarray) or stream.dtype != L3_DTYPE:
        raise ConfigError(f"stream must be an ndarray of L3_DTYPE, got {getattr(stream, 'dtype', type(stream))}")
    extra = pd.DataFrame(shadows).reset_index(drop=True)
    spec = _spec(extra)
    order = np.argsort(spec["ts_ns"].to_numpy(), kind="stable")
    sp = spec.iloc[order]
    end_order = np.argsort(sp["end_ns"].to_numpy(), kind="stable").astype(np.int64)
    if n_orders is None:
        n_orders = int(stream["order"].max()) + 1 if len(stream) else 1
    c = {k: np.ascontiguousarray(stream[k]) for k in ("ts_ns", "price_ticks", "qty_lots", "order", "side", "kind",
                                                       "flags")}
    r = track(c["ts_ns"], c["price_ticks"], c["qty_lots"], c["order"], c["side"], c["kind"], c["flags"], n_orders,
              np.ascontiguousarray(sp["ts_ns"].to_numpy(np.int64)), np.ascontiguousarray(sp["side"].to_numpy(np.uint8)),
              np.ascontiguousarray(sp["offset"].to_numpy(np.int64)),
              np.ascontiguousarray(sp["absolute"].to_numpy(np.uint8)),
              np.ascontiguousarray(sp["qty_lots"].to_numpy(np.int64)),
              np.ascontiguousarray(sp["end_ns"].to_numpy(np.int64)), end_order, trace)
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    out = pd.DataFrame({"shadow": np.arange(len(spec)), "ts_ns": spec["ts_ns"],
                        "side": np.where(spec["side"] == 0, "buy", "sell"), "qty_lots": spec["qty_lots"]})
    for k in ("price_ticks", "ahead_at_entry", "ahead_at_end", "first_fill_ts", "end_ts", "best_bid", "best_ask",
              "remaining"):
        out[k] = r[k][inv]
    out["status"] = pd.Categorical([STATUS[int(s)] for s in r["status"][inv]],
                                   categories=["filled", "cancelled", "open", "window", "rejected"])
    out["filled_lots"] = np.where(out["status"] == "rejected", 0, out["qty_lots"] - out["remaining"])
    out["end_ts"] = np.where(out["status"] == "open", int(stream["ts_ns"][-1]) if len(stream) else 0,
                             out["end_ts"])
    out["ticks_from_best"] = np.where(spec["side"] == 0, out["best_bid"] - out["price_ticks"],
                                      out["price_ticks"] - out["best_ask"])
    last = int(stream["ts_ns"][-1]) if len(stream) else 0
    out["plan_end_ts"] = np.minimum(spec["end_ns"].to_numpy(), last)
    out = out.drop(columns="remaining")
    for k in extra.columns:
        if k not in out and k not in ("ttl_ns", "end_ns", "ticks_from_best", "price_ticks"):
            out[k] = extra[k].to_numpy()
    f = r["fills"]
    fills = pd.DataFrame({"shadow": order[f[:, 1]] if len(f) else np.zeros(0, np.int64), "ts_ns": f[:, 0],
                          "qty_lots": f[:, 2], "event": f[:, 3]})
    tr = None
    if trace:
        t = r["trace"]
        tr = pd.DataFrame(t, columns=["shadow", "event", "ahead", "level", "qty", "is_ahead"])
        tr["shadow"] = order[t[:, 0]] if len(t) else tr["shadow"]
    return ShadowResult(out, fills, events=len(stream), priority_breaks=int(r["priority_breaks"]),
                        anomalies=int(r["anomalies"]), trace=tr)


def random_shadows(stream: np.ndarray, n: int, seed: int = 0, max_ticks_from_best: int = 2, qty_lots=100,
                   ttl_s: float = 300.0, start_ns: int | None = None, end_ns: int | None = None) -> pd.DataFrame:
    """``n`` random shadow specifications over a stream's time span (uniform times, both sides).

    ``ticks_from_best`` is uniform in 0..max_ticks_from_best; ``qty_lots`` a constant or a list to draw from;
    each is cancelled ``ttl_s`` seconds after placement.
    """
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    t0 = int(stream["ts_ns"][0]) if start_ns is None else start_ns
    t1 = int(stream["ts_ns"][-1]) if end_ns is None else end_ns
    if t1 <= t0:
        raise ConfigError(f"end_ns {t1} must be after start_ns {t0}")
    ts = np.sort(rng.integers(t0, t1, n))
    q = np.asarray(qty_lots)
    qty = rng.choice(q, n) if q.ndim else np.full(n, int(q))
    return pd.DataFrame({"ts_ns": ts, "side": np.where(rng.random(n) < 0.5, "buy", "sell"),
                         "ticks_from_best": rng.integers(0, max_ticks_from_best + 1, n),
                         "qty_lots": qty.astype(np.int64), "ttl_ns": np.full(n, int(ttl_s * 1e9), np.int64)})
