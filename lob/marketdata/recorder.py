"""Per-symbol trade tape, OHLCV bars, L2 snapshots and BBO, recorded by the engine itself.

The recording is done in C (``lob.marketdata._recorder``): the engine feeds the recorder from its output
records one event at a time, inside a batch as on the per-call path, so that what is recorded is the same
however the events were batched. This module turns the recorder's integer rings into DataFrames.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from lob._core import FILL_DTYPE
from lob.errors import ConfigError
from lob.marketdata._recorder import Recorder

__all__ = ["MarketData"]


def _px(info, ticks):
    return np.round(np.asarray(ticks) * info.tick_size, info.price_decimals)


def _qty(info, lots):
    return np.asarray(lots) * info.lot_size if info.lot_size != 1 else np.asarray(lots)


_BAR_COLUMNS = ["open", "high", "low", "close", "volume", "trades"]


class MarketData:
    """Trade tape, bars, BBO changes and L2 snapshots for every symbol of an exchange.

    Every cache is bounded (a ring that drops its oldest records); :meth:`memory` reports what they hold.
    When a recorder is freed, its rings of 256 KB or more are kept mapped (up to 256 MB in all) for the next
    recorders, which then write to memory that is already paged in; ``lob.marketdata.spare_ring_bytes()``
    reports them and ``lob.marketdata.release_spare_rings()`` returns them to the system.

    Parameters
    ----------
    exchange : lob.Exchange
        The venue to record. The engine feeds one recorder: this one replaces any earlier one and becomes
        ``exchange.marketdata``.
    tape_size : int
        Trades kept per symbol on the rolling tape, with maker and taker order ids and owners (default 1,000).
    snapshot_interval_ns : int
        An L2 snapshot of every symbol at every multiple of this interval (default 100 ms) crossed by the
        event clock (the largest ``ts_ns`` seen): the books as they stand after every event before that time.
    snapshot_depth : int
        Levels per side in a snapshot.
    retention_ns : int
        Trades (for bars) and snapshots older than this on the event clock are dropped (default 24 h).
    max_trades : int
        Trades kept per symbol for bars at most (default 1,000,000: 24 MB). The trade ring also holds the
        newest ``tape_size`` trades whatever their age (the tape's prices and quantities): it is bounded by
        ``max(max_trades, tape_size)`` records of 24 bytes, the tape by ``tape_size`` records of 48 bytes.
    bbo_size : int
        BBO changes kept per symbol (default 100,000: 4.8 MB).
    max_snapshots : int
        Snapshots kept per symbol at most (default 36,000, one hour at 100 ms: 18 MB at depth 10).

    Examples
    --------
    >>> import lob
    >>> ex = lob.Exchange(symbols=["X"]); md = MarketData(ex, tape_size=100)
    >>> _ = ex.submit("X", "sell", 5, price=10.0, ts_ns=1, owner="bob")
    >>> _ = ex.submit("X", "buy", 2, price=10.0, ts_ns=2, owner="alice")
    >>> md.trades("X")[["price", "qty", "aggressor", "maker_owner", "taker_owner"]].values.tolist()
    [[10.0, 2, 'buy', 'bob', 'alice']]
    """

    def __init__(self, exchange, tape_size: int = 1000, snapshot_interval_ns: int = 100_000_000,
                 snapshot_depth: int = 10, retention_ns: int = 24 * 3600 * 10 ** 9, max_trades: int = 1_000_000,
                 bbo_size: int = 100_000, max_snapshots: int = 36_000):
        for name, v in (("tape_size", tape_size), ("snapshot_interval_ns", snapshot_interval_ns),
                        ("snapshot_depth", snapshot_depth), ("retention_ns", retention_ns),
                        ("max_trades", max_trades), ("bbo_size", bbo_size), ("max_snapshots", max_snapshots)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"{name} must be a positive int, got {v!r}")
        if snapshot_depth > 10_000:
            raise ConfigError(f"snapshot_depth must be at most 10,000, got {snapshot_depth!r}")
        self.exchange = exchange
        self.tape_size = int(tape_size)
        self.snapshot_interval_ns = int(snapshot_interval_ns)
        self.snapshot_depth = int(snapshot_depth)
        self.retention_ns = int(retention_ns)
        self._rec = Recorder(self.tape_size, self.snapshot_interval_ns, self.snapshot_depth, self.retention_ns,
                             int(max_trades), int(bbo_size), int(max_snapshots))
        exchange.set_md_port(self._rec, self._rec.port())
        exchange.marketdata = self

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

    def tape_array(self, symbol) -> np.ndarray:
        """The rolling tape of a symbol as ``FILL_DTYPE`` records (integers), oldest first."""
        rows = self._rec.tape(self._info(symbol).index)
        return np.ascontiguousarray(rows).view(FILL_DTYPE).reshape(-1)

    def trades(self, symbol, limit: int | None = None) -> pd.DataFrame:
        """The rolling tape of a symbol (newest last): seq, ts_ns, time, price, qty, aggressor, and who traded:
        maker_order_id, taker_order_id, maker_owner, taker_owner (owner names; None for anonymous)."""
        info = self._info(symbol)
        f = self.tape_array(info.index)
        if limit is not None:
            f = f[len(f) - limit:] if 0 < limit < len(f) else (f if limit > 0 else f[:0])
        names = {o: self.exchange.owner_name(o) for o in set(f["maker_owner"].tolist()) | set(f["taker_owner"].tolist())}
        return pd.DataFrame({
            "seq": f["seq"].astype(np.int64), "ts_ns": f["ts_ns"], "time": pd.to_datetime(f["ts_ns"], unit="ns"),
            "price": _px(info, f["price_ticks"]), "qty": _qty(info, f["qty_lots"]),
            "aggressor": np.where(f["aggressor"] == 0, "buy", "sell"),
            "maker_order_id": f["maker_order_id"], "taker_order_id": f["taker_order_id"],
            "maker_owner": pd.Series([names[o] for o in f["maker_owner"].tolist()], dtype=object),
            "taker_owner": pd.Series([names[o] for o in f["taker_owner"].tolist()], dtype=object),
        })

    def all_trades(self, symbol) -> pd.DataFrame:
        """Every trade of a symbol within the retention (ts_ns, time, price, qty), oldest first."""
        info = self._info(symbol)
        a = self._rec.trades(info.index)
        return pd.DataFrame({"ts_ns": a[:, 0], "time": pd.to_datetime(a[:, 0], unit="ns"),
                             "price": _px(info, a[:, 1]), "qty": _qty(info, a[:, 2])})

    def bars(self, symbol, freq: str = "1min") -> pd.DataFrame:
        """OHLCV bars of the trades within the retention at any pandas offset ("1min", "5min", "1h", "250ms").

        Bars without trades are left out (no forward fill): open/high/low/close/volume/trades, indexed by
        the bar's start time on the event clock.
        """
        try:
            pd.tseries.frequencies.to_offset(freq)
        except ValueError:
            raise ConfigError(f"freq must be a pandas offset such as '1min' or '5min', got {freq!r}") from None
        t = self.all_trades(symbol).set_index("time")
        if t.empty:
            return pd.DataFrame(columns=_BAR_COLUMNS)
        g = t.resample(freq)
        bars = g["price"].ohlc()
        bars["volume"] = g["qty"].sum()
        bars["trades"] = g["price"].count()
        return bars[bars["trades"] > 0]

    def l2_snapshots(self, symbol) -> pd.DataFrame:
        """Snapshots kept, oldest first: one row per level (ts_ns, time, seq, side, level, price, qty, orders);
        ``seq`` is the exchange's sequence number when the snapshot was taken."""
        info = self._info(symbol)
        a = self._rec.snapshots(info.index)
        d = self.snapshot_depth
        levels = a[:, 4:].reshape(len(a), 2, d, 3)
        keep = np.arange(d)[None, None, :] < a[:, 2:4][:, :, None]          # (n, side, level)
        ts = np.broadcast_to(a[:, 0][:, None, None], keep.shape)[keep]
        df = pd.DataFrame({
            "ts_ns": ts, "time": pd.to_datetime(ts, unit="ns"),
            "seq": np.broadcast_to(a[:, 1][:, None, None], keep.shape)[keep],
            "side": np.broadcast_to(np.array(["bid", "ask"], dtype=object)[None, :, None], keep.shape)[keep],
            "level": np.broadcast_to(np.arange(d)[None, None, :], keep.shape)[keep],
            "price": _px(info, levels[..., 0][keep]), "qty": _qty(info, levels[..., 1][keep]),
            "orders": levels[..., 2][keep],
        })
        return df

    def snapshot_times(self, symbol) -> np.ndarray:
        """The ``ts_ns`` of every snapshot kept for a symbol (empty books included), oldest first."""
        return self._rec.snapshots(self._info(symbol).index)[:, 0]

    def bbo_history(self, symbol) -> pd.DataFrame:
        """Every change of the best bid/offer (prices or displayed quantities) kept, oldest first:
        ts_ns, time, seq, bid, bid_qty, ask, ask_qty (NaN price, qty 0 for an empty side)."""
        info = self._info(symbol)
        a = self._rec.bbo(info.index)
        return pd.DataFrame({
            "ts_ns": a[:, 0], "time": pd.to_datetime(a[:, 0], unit="ns"), "seq": a[:, 1],
            "bid": np.where(a[:, 2] > 0, _px(info, a[:, 2]), np.nan), "bid_qty": _qty(info, a[:, 3]),
            "ask": np.where(a[:, 4] > 0, _px(info, a[:, 4]), np.nan), "ask_qty": _qty(info, a[:, 5]),
        })

    def bbo(self, symbol) -> dict | None:
        """The last best bid/offer recorded for a symbol (``ts_ns``: the event that set it), or None."""
        info = self._info(symbol)
        a = self._rec.bbo(info.index)
        if not len(a):
            return None
        ts, seq, bid, bq, ask, aq = a[-1].tolist()
        return dict(ts_ns=ts, bid=info.price(bid) if bid else None, bid_qty=info.qty(bq),
                    ask=info.price(ask) if ask else None, ask_qty=info.qty(aq))

    # --- memory ---------------------------------------------------------------------------------
    def memory(self) -> dict:
        """Bytes allocated per cache (tape, trades, bbo, snapshots, state, total), summed over symbols,
        and the records held and dropped per symbol."""
        out = dict(self._rec.memory())
        out["symbols"] = {i.name: self._rec.counts(i.index) for i in self.exchange._infos}
        return out

    # --- export ---------------------------------------------------------------------------------
    def export(self, symbol, what: str, path, fmt: str | None = None) -> Path:
        """Write ``trades`` (the tape, with maker/taker ids and owners) / ``all_trades`` / ``bars`` (1min) /
        ``bbo`` / ``l2_snapshots`` of a symbol as CSV, JSON (records) or Parquet, chosen by ``fmt`` or the
        file suffix."""
        path = Path(path)
        fmt = (fmt or path.suffix.lstrip(".")).lower()
        frames = {"trades": lambda: self.trades(symbol), "all_trades": lambda: self.all_trades(symbol),
                  "bars": lambda: self.bars(symbol).reset_index(), "bbo": lambda: self.bbo_history(symbol),
                  "l2_snapshots": lambda: self.l2_snapshots(symbol)}
        if what not in frames:
            raise ConfigError(f"what must be one of {sorted(frames)}, got {what!r}")
        if fmt not in ("csv", "json", "parquet"):
            raise ConfigError(f"fmt must be csv, json or parquet, got {fmt!r}")
        df = frames[what]()
        if fmt == "csv":
            df.to_csv(path, index=False)
        elif fmt == "json":
            path.write_text(json.dumps(json.loads(df.to_json(orient="records", date_format="iso")), indent=0))
        else:
            df.to_parquet(path, index=False)
        return path
