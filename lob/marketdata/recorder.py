"""Per-symbol trade tape, OHLCV bars, L2 snapshots and BBO, recorded from an exchange's outputs."""
from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pandas as pd

from lob._core import FILL_DTYPE
from lob.errors import ConfigError

__all__ = ["MarketData"]


class _SymbolData:
    def __init__(self, tape_size: int):
        self.tape = collections.deque(maxlen=tape_size)       # (seq, ts_ns, price_ticks, qty_lots, aggressor)
        self.trades_ts: list[np.ndarray] = []                 # every trade, for bars (columns appended per batch)
        self.trades_px: list[np.ndarray] = []
        self.trades_qty: list[np.ndarray] = []
        self.pending: list[tuple] = []                         # per-call trades (ts, px, qty) not yet in arrays
        self.snapshots = collections.deque()                  # (ts_ns, seq, bids (k,3), asks (k,3))
        self.next_snapshot_ts = None
        self.bbo = None                                        # (ts_ns, bid, bid_qty, ask, ask_qty)


_FIELDS = FILL_DTYPE.names
_SEQ, _TS, _PX, _QTY, _AGG = (_FIELDS.index(n) for n in ("seq", "ts_ns", "price_ticks", "qty_lots", "aggressor"))


def _flush_pending(d: _SymbolData) -> None:
    # per-call trades (Python tuples) join the column arrays in one conversion
    if d.pending:
        a = np.array(d.pending, dtype=np.int64).reshape(-1, 5)
        d.trades_ts.append(a[:, 1].copy())
        d.trades_px.append(a[:, 2].copy())
        d.trades_qty.append(a[:, 3].copy())
        d.pending.clear()


def _px(info, ticks):
    return np.round(np.asarray(ticks) * info.tick_size, info.price_decimals)


def _qty(info, lots):
    return np.asarray(lots) * info.lot_size if info.lot_size != 1 else np.asarray(lots)


class MarketData:
    """Trade tape, bars, snapshots and BBO for every symbol of an exchange.

    Parameters
    ----------
    exchange : lob.Exchange
        The venue to record; the recorder adds itself as a listener.
    tape_size : int
        Trades kept per symbol in the rolling tape (default 1,000). Bars use every trade.
    snapshot_interval_ns : int
        L2 snapshots are taken when the event clock crosses each multiple of this interval (default 100 ms).
    snapshot_depth : int
        Levels per side in a snapshot.
    retention_ns : int
        Snapshots older than this (event clock) are dropped (default 24 h).

    Examples
    --------
    >>> import lob
    >>> ex = lob.Exchange(symbols=["X"]); md = MarketData(ex)
    >>> _ = ex.submit("X", "sell", 5, price=10.0, ts_ns=1); _ = ex.submit("X", "buy", 2, price=10.0, ts_ns=2)
    >>> md.trades("X")[["price", "qty", "aggressor"]].values.tolist()
    [[10.0, 2, 'buy']]
    """

    def __init__(self, exchange, tape_size: int = 1000, snapshot_interval_ns: int = 100_000_000,
                 snapshot_depth: int = 10, retention_ns: int = 24 * 3600 * 10 ** 9):
        for name, v in (("tape_size", tape_size), ("snapshot_interval_ns", snapshot_interval_ns),
                        ("snapshot_depth", snapshot_depth), ("retention_ns", retention_ns)):
            if not isinstance(v, (int, np.integer)) or v <= 0:
                raise ConfigError(f"{name} must be a positive int, got {v!r}")
        self.exchange = exchange
        self.tape_size = tape_size
        self.snapshot_interval_ns = int(snapshot_interval_ns)
        self.snapshot_depth = snapshot_depth
        self.retention_ns = int(retention_ns)
        self._data: dict[int, _SymbolData] = {}
        exchange.add_listener(self)

    def _sym(self, i: int) -> _SymbolData:
        d = self._data.get(i)
        if d is None:
            d = self._data[i] = _SymbolData(self.tape_size)
        return d

    # --- listener -------------------------------------------------------------------------------
    def __call__(self, events, reports, fills):
        n = len(events)
        if n == 1:
            # the per-call path: one symbol, a handful of fills; stay away from numpy set operations
            i = int(events["symbol"][0])
            if len(fills):
                d = self._sym(i)
                # plain tuples: a multi-field view or small array copies per request cost microseconds
                rows = [(r[_SEQ], r[_TS], r[_PX], r[_QTY], r[_AGG]) for r in fills.tolist()]
                d.tape.extend(rows)
                d.pending.extend(rows)
                if len(d.pending) >= 4096:
                    _flush_pending(d)
            self._after(i, int(events["ts_ns"][0]))
            return
        if len(fills):
            for i in np.unique(fills["symbol"]):
                f = fills[fills["symbol"] == i]
                d = self._sym(int(i))
                _flush_pending(d)                               # keep the trades in order
                # only the newest tape_size trades can stay on the rolling tape: convert no more than that
                d.tape.extend(f[-self.tape_size:][["seq", "ts_ns", "price_ticks", "qty_lots", "aggressor"]].tolist())
                d.trades_ts.append(f["ts_ns"].copy())
                d.trades_px.append(f["price_ticks"].copy())
                d.trades_qty.append(f["qty_lots"].copy())
        if n:
            ts_end = int(events["ts_ns"][-1])
            for i in np.unique(events["symbol"]).tolist():
                self._after(i, ts_end)

    def _after(self, i: int, ts: int):
        d = self._sym(i)
        eng = self.exchange._engine
        bid = eng.best(i, 0)
        ask = eng.best(i, 1)
        d.bbo = (ts, bid[0] if bid else 0, bid[1] if bid else 0, ask[0] if ask else 0, ask[1] if ask else 0)
        if d.next_snapshot_ts is None:
            d.next_snapshot_ts = (ts // self.snapshot_interval_ns) * self.snapshot_interval_ns
        if ts >= d.next_snapshot_ts:
            # the book as it stands after the batch that crossed the snapshot time
            d.snapshots.append((d.next_snapshot_ts, self.exchange.seq, eng.depth(i, 0, self.snapshot_depth)[:, :3],
                                eng.depth(i, 1, self.snapshot_depth)[:, :3]))
            d.next_snapshot_ts = (ts // self.snapshot_interval_ns + 1) * self.snapshot_interval_ns
            while d.snapshots and d.snapshots[0][0] < ts - self.retention_ns:
                d.snapshots.popleft()

    def __repr__(self) -> str:
        return (f"MarketData({len(self.exchange.symbols)} symbols, tape {self.tape_size}, snapshots every "
                f"{self.snapshot_interval_ns / 1e6:g} ms)")

    def _repr_html_(self) -> str:
        rows = []
        for name in self.exchange.symbols:
            b = self.bbo(name) or {}
            n = len(self.trades(name))
            rows.append(f"<tr><td><b>{name}</b></td><td>{b.get('bid', '-')}</td><td>{b.get('ask', '-')}</td>"
                        f"<td>{n}</td></tr>")
        return ("<div><b>MarketData</b><table><tr><th>symbol</th><th>bid</th><th>ask</th><th>trades on tape</th></tr>"
                + "".join(rows) + "</table></div>")

    # --- views ----------------------------------------------------------------------------------
    def _info(self, symbol):
        return self.exchange.info(symbol)

    def trades(self, symbol, limit: int | None = None) -> pd.DataFrame:
        """The rolling tape of a symbol (newest last): seq, ts_ns, time, price, qty, aggressor."""
        info = self._info(symbol)
        tape = list(self._sym(info.index).tape)
        if limit is not None:
            tape = tape[-limit:] if limit > 0 else []
        a = np.array(tape, dtype=np.int64).reshape(-1, 5)
        return pd.DataFrame({
            "seq": a[:, 0], "ts_ns": a[:, 1], "time": pd.to_datetime(a[:, 1], unit="ns"),
            "price": _px(info, a[:, 2]), "qty": _qty(info, a[:, 3]),
            "aggressor": np.where(a[:, 4] == 0, "buy", "sell"),
        })

    def all_trades(self, symbol) -> pd.DataFrame:
        """Every trade of a symbol since recording started (ts_ns, time, price, qty)."""
        info = self._info(symbol)
        d = self._sym(info.index)
        _flush_pending(d)
        ts = np.concatenate(d.trades_ts) if d.trades_ts else np.empty(0, np.int64)
        px = np.concatenate(d.trades_px) if d.trades_px else np.empty(0, np.int64)
        q = np.concatenate(d.trades_qty) if d.trades_qty else np.empty(0, np.int64)
        return pd.DataFrame({"ts_ns": ts, "time": pd.to_datetime(ts, unit="ns"), "price": _px(info, px),
                             "qty": _qty(info, q)})

    def bars(self, symbol, freq: str = "1min") -> pd.DataFrame:
        """OHLCV bars of every trade at any pandas offset ("1min", "5min", "1h", "250ms", ...).

        Bars without trades are left out (no forward fill): open/high/low/close/volume/trades, indexed by
        the bar's start time on the event clock.
        """
        try:
            pd.tseries.frequencies.to_offset(freq)
        except ValueError:
            raise ConfigError(f"freq must be a pandas offset such as '1min' or '5min', got {freq!r}") from None
        t = self.all_trades(symbol).set_index("time")
        if t.empty:
            return pd.DataFrame(columns=["open", "high", "low", "close", "volume", "trades"])
        g = t.resample(freq)
        bars = g["price"].ohlc()
        bars["volume"] = g["qty"].sum()
        bars["trades"] = g["price"].count()
        return bars[bars["trades"] > 0]

    def l2_snapshots(self, symbol) -> pd.DataFrame:
        """Snapshots kept (event-clock time, seq, side, level, price, qty, orders), oldest first."""
        info = self._info(symbol)
        rows = []
        for ts, seq, bids, asks in self._sym(info.index).snapshots:
            for side, arr in (("bid", bids), ("ask", asks)):
                for lvl, (p, q, n) in enumerate(arr.tolist()):
                    rows.append((ts, seq, side, lvl, info.price(p), info.qty(q), n))
        df = pd.DataFrame(rows, columns=["ts_ns", "seq", "side", "level", "price", "qty", "orders"])
        df.insert(1, "time", pd.to_datetime(df["ts_ns"], unit="ns"))
        return df

    def bbo(self, symbol) -> dict | None:
        """The last best bid/offer seen for a symbol."""
        info = self._info(symbol)
        b = self._sym(info.index).bbo
        if b is None:
            return None
        ts, bid, bq, ask, aq = b
        return dict(ts_ns=ts, bid=info.price(bid) if bid else None, bid_qty=info.qty(bq),
                    ask=info.price(ask) if ask else None, ask_qty=info.qty(aq))

    # --- export ---------------------------------------------------------------------------------
    def export(self, symbol, what: str, path, fmt: str | None = None) -> Path:
        """Write ``trades`` / ``all_trades`` / ``bars`` (1min) / ``l2_snapshots`` of a symbol as CSV,
        JSON (records) or Parquet, chosen by ``fmt`` or the file suffix."""
        path = Path(path)
        fmt = (fmt or path.suffix.lstrip(".")).lower()
        frames = {"trades": lambda: self.trades(symbol), "all_trades": lambda: self.all_trades(symbol),
                  "bars": lambda: self.bars(symbol).reset_index(), "l2_snapshots": lambda: self.l2_snapshots(symbol)}
        if what not in frames:
            raise ConfigError(f"what must be one of {sorted(frames)}, got {what!r}")
        df = frames[what]()
        if fmt == "csv":
            df.to_csv(path, index=False)
        elif fmt == "json":
            path.write_text(json.dumps(json.loads(df.to_json(orient="records", date_format="iso")), indent=0))
        elif fmt == "parquet":
            df.to_parquet(path, index=False)
        else:
            raise ConfigError(f"fmt must be csv, json or parquet, got {fmt!r}")
        return path
