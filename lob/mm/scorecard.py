"""A scorecard for any run: PnL (realised, unrealised, fees), inventory path, spread capture, markouts at
1 s / 10 s / 60 s, fill ratio, max drawdown and Sharpe, as DataFrames.

Inputs are plain DataFrames, so a run from anywhere can be scored: the simulator (:class:`RunRecorder`
records them from an exchange's output stream), a backtest (:meth:`Scorecard.from_backtest`) or fills
made up by hand. Positions and PnL are booked in exact integers (:class:`lob.risk.Ledger`) and converted to
price units only in the frames.

``fills``: ``ts_ns``, ``side`` (+1/-1 or "buy"/"sell"), ``price_ticks``, ``qty_lots``, optional ``symbol``
(default 0), ``maker`` (default True) and ``seq`` (ordering within one timestamp).
``mids``: ``ts_ns``, ``mid_ticks``, optional ``symbol`` and ``seq``: the mid path (each row holds until the next).
``orders`` (optional): ``qty_lots`` per submitted order (and ``symbol``), for the fill ratio.

Definitions (per fill of signed quantity ``s * q`` at price ``p``, mid ``m`` just before the fill):
spread capture ``s * (m - p) * q``; markout at ``h`` ``s * (mid(t + h) - p) * q`` (NaN when the run ends
before ``t + h``); fill ratio = filled / submitted quantity; max drawdown = largest fall of the PnL path
from its running peak; Sharpe = mean / std of the PnL changes over ``interval_s``, scaled by
sqrt(252 days x 6.5 h / ``interval_s``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from lob.errors import ConfigError
from lob.units import to_units_array
from lob.risk.ledger import MICRO, FeeSchedule, Ledger

__all__ = ["Scorecard", "RunRecorder", "HORIZONS_S"]

HORIZONS_S = (1, 10, 60)
_NS = 1_000_000_000
_YEAR_S = 252 * 6.5 * 3600


def _side(col) -> np.ndarray:
    a = np.asarray(col)
    if a.dtype.kind in "OUS":
        bad = ~np.isin(a, ["buy", "sell"])
        if bad.any():
            raise ConfigError(f"fills side must be 'buy'/'sell' or +1/-1, got {a[bad][0]!r}")
        return np.where(a == "buy", 1, -1)
    a = a.astype(np.int64)
    if not np.isin(a, [1, -1]).all():
        raise ConfigError(f"fills side must be +1/-1 or 'buy'/'sell', got {a[~np.isin(a, [1, -1])][0]!r}")
    return a


class Scorecard:
    """Score one owner's run (see the module docstring for the inputs and definitions).

    Parameters
    ----------
    fills, mids, orders : DataFrame
    fees : FeeSchedule or dict, optional
    tick_size, lot_size : float or dict symbol -> float
        Value of a tick and a lot, to express tick-lots in price units.
    horizons_s : tuple of float
    interval_s : float
        Sampling interval of the PnL path for the Sharpe ratio.

    Examples
    --------
    >>> fills = pd.DataFrame(dict(ts_ns=[0, 2_000_000_000], side=["buy", "sell"], price_ticks=[99, 102],
    ...                           qty_lots=[10, 10]))
    >>> mids = pd.DataFrame(dict(ts_ns=[0, 1_000_000_000, 2_000_000_000], mid_ticks=[100, 101, 101.5]))
    >>> sc = Scorecard(fills, mids, tick_size=0.01)
    >>> s = sc.summary().loc["ALL"]
    >>> [round(float(s[c]), 10) for c in ("pnl", "spread_capture", "markout_1s")]
    [0.3, 0.15, 0.2]
    """

    def __init__(self, fills: pd.DataFrame, mids: pd.DataFrame, orders: pd.DataFrame | None = None, fees=None,
                 tick_size=0.01, lot_size=1.0, horizons_s=HORIZONS_S, interval_s: float = 1.0):
        for name, df, need in (("fills", fills, ("ts_ns", "side", "price_ticks", "qty_lots")),
                               ("mids", mids, ("ts_ns", "mid_ticks"))):
            if not isinstance(df, pd.DataFrame):
                raise ConfigError(f"{name} must be a DataFrame, got {type(df).__name__}")
            missing = [c for c in need if c not in df.columns]
            if missing:
                raise ConfigError(f"{name} is missing columns {missing}")
        if not interval_s > 0:
            raise ConfigError(f"interval_s must be > 0, got {interval_s!r}")
        self.fees = FeeSchedule.coerce(fees)
        self.horizons_s = tuple(horizons_s)
        self.interval_s = interval_s
        self._tick, self._lot = tick_size, lot_size
        f = fills.copy()
        f["side"] = _side(f["side"]) if len(f) else pd.Series(dtype=np.int64)
        if "symbol" not in f:
            f["symbol"] = 0
        if "maker" not in f:
            f["maker"] = True
        # with sequence numbers on both, "the mid before a fill" is ordered by (ts, seq); without, by ts
        self._by_seq = "seq" in f and "seq" in mids
        if "seq" not in f:
            f["seq"] = 0
        self._f = f.sort_values(["ts_ns", "seq"], kind="stable").reset_index(drop=True)
        m = mids.copy()
        if "symbol" not in m:
            m["symbol"] = 0
        if "seq" not in m:
            m["seq"] = -1
        self._m = m.sort_values(["ts_ns", "seq"], kind="stable").reset_index(drop=True)
        self._orders = orders
        self._build()

    # --- construction ---------------------------------------------------------------------------
    def _value(self, sym) -> float:
        t = self._tick[sym] if isinstance(self._tick, dict) else self._tick
        l = self._lot[sym] if isinstance(self._lot, dict) else self._lot
        return float(t) * float(l)

    def _mid_at(self, sym, ts):
        """The mid in force at each time (the last one set at or before it), NaN before the first."""
        m = self._m[self._m["symbol"] == sym]
        t = m["ts_ns"].to_numpy(np.int64)
        v = m["mid_ticks"].to_numpy(float)
        idx = np.searchsorted(t, np.asarray(ts, np.int64), side="right") - 1
        if not len(v):
            return np.full(len(idx), np.nan)
        return np.where(idx >= 0, v[np.clip(idx, 0, len(v) - 1)], np.nan)

    def _build(self):
        f = self._f
        led = Ledger(self.fees)
        rows = []
        for r in f.itertuples(index=False):
            fee = led.fill(0, int(r.symbol), int(r.side), int(r.price_ticks), int(r.qty_lots), bool(r.maker))
            a = led.account(0, int(r.symbol))
            rows.append((a.position, a.cash, a.fees, a.realised, fee))
        arr = np.array(rows, dtype=np.int64).reshape(-1, 5)
        f["position_lots"] = arr[:, 0]
        f["cash_micro"] = arr[:, 1]
        f["fee"] = arr[:, 4] / MICRO * np.array([self._value(s) for s in f["symbol"]]) if len(f) else 0.0
        self.ledger = led
        last_ts = int(max(self._m["ts_ns"].max() if len(self._m) else 0, f["ts_ns"].max() if len(f) else 0))
        self.end_ts = last_ts
        # mid just before each fill, and the mids at the horizons
        mid_before = np.full(len(f), np.nan)
        marks = {h: np.full(len(f), np.nan) for h in self.horizons_s}
        for sym in f["symbol"].unique():
            sel = (f["symbol"] == sym).to_numpy()
            ts = f.loc[sel, "ts_ns"].to_numpy(np.int64)
            mid_before[sel] = self._before(sym, ts, f.loc[sel, "seq"].to_numpy(np.int64))
            for h in self.horizons_s:
                th = ts + int(h * _NS)
                mk = self._mid_at(sym, th)
                mk[th > last_ts] = np.nan
                marks[h][sel] = mk
        val = np.array([self._value(s) for s in f["symbol"]]) if len(f) else np.zeros(0)
        sq = f["side"].to_numpy() * f["qty_lots"].to_numpy() if len(f) else np.zeros(0)
        p = f["price_ticks"].to_numpy(float) if len(f) else np.zeros(0)
        f["mid_ticks"] = mid_before
        f["spread_capture"] = sq * (mid_before - p) * val
        for h in self.horizons_s:
            f[f"markout_{h:g}s"] = sq * (marks[h] - p) * val
        self.fills = f
        self._pnl_path()

    def _before(self, sym, ts, seq):
        m = self._m[self._m["symbol"] == sym]
        t = m["ts_ns"].to_numpy(np.int64)
        s = m["seq"].to_numpy(np.int64)
        v = m["mid_ticks"].to_numpy(float)
        out = np.full(len(ts), np.nan)
        if not len(v):
            return out
        if not self._by_seq:
            return self._mid_at(sym, ts)
        # lexicographic (ts, seq) search: the last mid strictly before the fill
        i = np.searchsorted(t, ts, side="left") - 1         # last mid with a smaller ts
        j = np.searchsorted(t, ts, side="right") - 1        # last mid with ts <= the fill's
        for k in range(len(ts)):
            best = i[k]
            for c in range(j[k], i[k], -1):
                if s[c] < seq[k]:
                    best = c
                    break
            out[k] = v[best] if best >= 0 else np.nan
        return out

    def _pnl_path(self):
        f, m = self.fills, self._m
        syms = sorted(set(f["symbol"].unique()) | set(m["symbol"].unique())) if len(f) else []
        grid = np.unique(np.concatenate([f["ts_ns"].to_numpy(np.int64), m["ts_ns"].to_numpy(np.int64)])) \
            if len(f) else np.zeros(0, np.int64)
        total = np.zeros(len(grid))
        pos_cols = {}
        for sym in syms:
            fs = f[f["symbol"] == sym]
            if not len(fs):
                continue
            i = np.searchsorted(fs["ts_ns"].to_numpy(np.int64), grid, side="right") - 1
            pos = np.where(i >= 0, fs["position_lots"].to_numpy()[np.maximum(i, 0)], 0)
            cash = np.where(i >= 0, fs["cash_micro"].to_numpy()[np.maximum(i, 0)], 0) / MICRO
            mid = self._mid_at(sym, grid)
            last_fill = fs["price_ticks"].to_numpy(float)[np.maximum(i, 0)]
            mark = np.where(np.isnan(mid), last_fill, mid)
            total += (cash + pos * mark) * self._value(sym)
            pos_cols[sym] = pos
        self.pnl = pd.DataFrame({"ts_ns": grid, "pnl": total})
        inv = pd.DataFrame({"ts_ns": grid})
        for sym, pos in pos_cols.items():
            inv[f"position_{sym}"] = pos
        self.inventory = inv

    # --- results --------------------------------------------------------------------------------
    def markouts(self) -> pd.DataFrame:
        """Per fill: side, price, qty, mid before the fill, spread capture and markouts (price units)."""
        cols = ["ts_ns", "symbol", "side", "price_ticks", "qty_lots", "maker", "mid_ticks", "spread_capture"]
        return self.fills[cols + [f"markout_{h:g}s" for h in self.horizons_s]]

    def _stats(self, f, pnl_path, sym) -> dict:
        d = {}
        d["fills"] = len(f)
        lots = np.array([self._lot[x] if isinstance(self._lot, dict) else self._lot for x in f["symbol"]], float)
        d["traded_qty"] = float((f["qty_lots"].to_numpy(float) * lots).sum())
        d["maker_share"] = float(f["maker"].mean()) if len(f) else np.nan
        real = unreal = fees = 0.0
        final_pos = 0
        max_abs = 0
        for (_, s), a in self.ledger.accounts.items():
            if sym is not None and s != sym:
                continue
            mid = self._mid_at(s, [self.end_ts])[0]
            mark = mid if not np.isnan(mid) else a.mark
            v = self._value(s)
            real += a.realised / MICRO * v
            unreal += sum((mark - p) * q for p, q in a.lots) * v
            fees += a.fees / MICRO * v
            final_pos += a.position
            fs = self.fills[self.fills["symbol"] == s]
            max_abs = max(max_abs, int(np.abs(fs["position_lots"]).max()) if len(fs) else 0)
        d["realised"], d["unrealised"], d["fees"] = real, unreal, fees
        d["pnl"] = real + unreal - fees
        d["final_position"] = final_pos
        d["max_abs_position"] = max_abs
        d["spread_capture"] = float(f["spread_capture"].sum())
        for h in self.horizons_s:
            c = f"markout_{h:g}s"
            d[c] = float(f[c].sum()) if f[c].notna().any() else np.nan
        if self._orders is not None and len(self._orders):
            o = self._orders if sym is None or "symbol" not in self._orders else \
                self._orders[self._orders["symbol"] == sym]
            sub = float(o["qty_lots"].sum())
            d["fill_ratio"] = float(f["qty_lots"].sum()) / sub if sub else np.nan
            d["orders"] = len(o)
        else:
            d["fill_ratio"] = np.nan
            d["orders"] = np.nan
        v = pnl_path
        d["max_drawdown"] = float(np.max(np.maximum.accumulate(v) - v)) if len(v) else 0.0
        d["sharpe"] = self._sharpe(v)
        return d

    def _sharpe(self, values) -> float:
        if len(values) < 3:
            return np.nan
        t = self.pnl["ts_ns"].to_numpy(np.int64)
        step = int(self.interval_s * _NS)
        grid = np.arange(t[0], t[-1] + 1, step)
        if len(grid) < 3:
            return np.nan
        idx = np.searchsorted(t, grid, side="right") - 1
        dv = np.diff(np.asarray(values)[idx])
        sd = dv.std(ddof=1)
        if not sd > 1e-12 * max(1.0, abs(dv.mean())):        # a constant path has no Sharpe ratio
            return np.nan
        return float(dv.mean() / sd * np.sqrt(_YEAR_S / self.interval_s))

    def summary(self) -> pd.DataFrame:
        """One row per symbol and an ``ALL`` row (PnL columns in price units x quantity units)."""
        rows = {}
        syms = sorted(self.fills["symbol"].unique())
        for s in syms:
            path = self._sym_path(s)
            rows[s] = self._stats(self.fills[self.fills["symbol"] == s], path, s)
        rows["ALL"] = self._stats(self.fills, self.pnl["pnl"].to_numpy(), None)
        names = getattr(self, "symbols", None) or {}
        df = pd.DataFrame.from_dict({names.get(k, k): v for k, v in rows.items()}, orient="index")
        df.index.name = "symbol"
        return df

    def _sym_path(self, sym) -> np.ndarray:
        f = self.fills[self.fills["symbol"] == sym]
        grid = self.pnl["ts_ns"].to_numpy(np.int64)
        i = np.searchsorted(f["ts_ns"].to_numpy(np.int64), grid, side="right") - 1
        pos = np.where(i >= 0, f["position_lots"].to_numpy()[np.maximum(i, 0)], 0)
        cash = np.where(i >= 0, f["cash_micro"].to_numpy()[np.maximum(i, 0)], 0) / MICRO
        mid = self._mid_at(sym, grid)
        mark = np.where(np.isnan(mid), f["price_ticks"].to_numpy(float)[np.maximum(i, 0)], mid)
        return (cash + pos * mark) * self._value(sym)

    def _repr_html_(self) -> str:
        return "<div><b>Scorecard</b>" + self.summary().to_html(float_format=lambda x: f"{x:,.4g}") + "</div>"

    # --- adapters -------------------------------------------------------------------------------
    @classmethod
    def from_backtest(cls, result, tick_size: float = 0.01, lot_size: float = 1.0, fees=None, **kw) -> "Scorecard":
        """Score a :class:`lob.replay.BacktestResult` (its fills, orders and mid marks)."""
        f = result.fills
        fills = pd.DataFrame(dict(ts_ns=f["ts_ns"].astype(np.int64), side=f["side"],
                                  price_ticks=to_units_array(f["price"], tick_size, "fill price"),
                                  qty_lots=to_units_array(f["qty"], lot_size, "fill qty", "lot_size"),
                                  maker=f["maker"]))
        p = result.pnl
        mids = pd.DataFrame(dict(ts_ns=p["ts_ns"].astype(np.int64), mid_ticks=p["mid"] / tick_size))
        o = result.orders
        orders = pd.DataFrame(dict(qty_lots=to_units_array(o["qty"].astype(float), lot_size, "order qty", "lot_size")))
        return cls(fills, mids, orders, fees=fees, tick_size=tick_size, lot_size=lot_size, **kw)


class RunRecorder:
    """Record what a scorecard needs from an exchange's output stream: the fills of some owners, the mid
    path of every symbol they trade (when it changes), and their submitted orders.

    Parameters
    ----------
    exchange : lob.Exchange
    owners : iterable of str or int, optional
        Owners to record (None: every non-anonymous owner).
    """

    def __init__(self, exchange, owners=None):
        self.exchange = exchange
        self.owners = None if owners is None else {exchange.owner_id(o) for o in owners}
        self._fills: list = []
        self._mids: list = []
        self._orders: list = []
        self._last_mid: dict[int, float] = {}
        exchange.add_listener(self.on_apply)

    def on_apply(self, events, reports, fills) -> None:
        own = self.owners
        if len(fills):
            for f in fills.tolist():
                ts, seq, price, qty, _, _, mo, to, sym, aggr, _, _ = f
                if mo and (own is None or mo in own):
                    self._fills.append((ts, seq, sym, mo, -1 if aggr == 0 else 1, price, qty, True))
                if to and (own is None or to in own):
                    self._fills.append((ts, seq, sym, to, 1 if aggr == 0 else -1, price, qty, False))
        syms = set()
        for r in reports.tolist():
            ts, seq, _, owner, _, _, cum, rem, _, _, sym, action, _, status, _, _, _ = r
            syms.add(sym)
            # an order's first report: an accepted ADD whose fills so far are all from this request
            if action == 0 and status != 4 and owner and (own is None or owner in own) and r[5] == cum:
                self._orders.append((ts, seq, sym, owner, cum + rem))
        ex = self.exchange
        last_seq = int(max(reports["seq"].max() if len(reports) else 0, fills["seq"].max() if len(fills) else 0))
        for sym in syms:
            b, a = ex.best_ticks(sym)
            mid = (b + a) / 2 if b and a else None
            if mid is not None and mid != self._last_mid.get(sym):
                self._last_mid[sym] = mid
                self._mids.append((int(reports["ts_ns"][-1]), last_seq, sym, mid))

    def frames(self, owner=None):
        """``(fills, mids, orders)`` DataFrames, fills and orders of one owner (or all)."""
        fills = pd.DataFrame(self._fills, columns=["ts_ns", "seq", "symbol", "owner", "side", "price_ticks",
                                                   "qty_lots", "maker"])
        orders = pd.DataFrame(self._orders, columns=["ts_ns", "seq", "symbol", "owner", "qty_lots"])
        if owner is not None:
            oid = self.exchange.owner_id(owner)
            fills = fills[fills["owner"] == oid].reset_index(drop=True)
            orders = orders[orders["owner"] == oid].reset_index(drop=True)
        mids = pd.DataFrame(self._mids, columns=["ts_ns", "seq", "symbol", "mid_ticks"])
        return fills, mids, orders

    def scorecard(self, owner, fees=None, **kw) -> Scorecard:
        """The :class:`Scorecard` of one owner (tick and lot sizes from the exchange)."""
        fills, mids, orders = self.frames(owner)
        ex = self.exchange
        ticks = {i: ex.info(i).tick_size for i in range(len(ex.symbols))}
        lots = {i: ex.info(i).lot_size for i in range(len(ex.symbols))}
        sc = Scorecard(fills, mids, orders, fees=fees, tick_size=ticks, lot_size=lots, **kw)
        sc.symbols = {i: n for i, n in enumerate(ex.symbols)}
        return sc
