"""Tardis.dev downloadable CSV files: ``incremental_book_L2``, ``book_snapshot_N`` and ``trades`` (plain or .gz).

Format (docs.tardis.dev, "Downloadable CSV files: data types"): comma-separated, one header line, times in
microseconds since the epoch (UTC), decimals with a dot.

* ``incremental_book_L2``: ``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount``;
  ``amount`` is the level's new total (0 removes it); rows with ``is_snapshot`` true belong to an order book
  snapshot, and a snapshot row that follows a non-snapshot row starts a new snapshot: the symbol's book is
  discarded first (a reconnection). Rows of one exchange message share ``local_timestamp``.
* ``book_snapshot_N`` (``book_snapshot_5``, ``_25``...): ``exchange,symbol,timestamp,local_timestamp`` then
  ``asks[0].price,asks[0].amount,bids[0].price,bids[0].amount,asks[1].price,...``; each row is the whole
  top N (empty cells where a side has fewer levels).
* ``trades``: ``exchange,symbol,timestamp,local_timestamp,id,side,price,amount``.

Prices and amounts are converted exactly (decimal text, never a float) to integer units of ``tick_size``
and ``lot_size`` (default 1e-8, on which every value of the crypto feeds lies); a value off the grid raises
:class:`~lob.errors.ReplayFormatError` naming the file, the row and the column. Files are read in chunks of
``chunk_rows`` rows (bounded memory).

:func:`replay_tardis` rebuilds the books of a book file with :mod:`lob.replay.crypto`'s integer
:class:`~lob.replay.crypto.L2Book` and reports what the data allows: the book never crosses, and (the
format has no sequence numbers) a removal of a level the book does not hold is an
:class:`~lob.replay.crypto.L2Gap` of kind ``"missing_level"``.
"""
from __future__ import annotations

import gzip
import re
from decimal import Decimal

import numpy as np
import pandas as pd

from lob.errors import ConfigError, ReplayFormatError
from lob.replay._venue import finish
from lob.replay.crypto import ASK, BID, Increments, L2Gap, L2Replay, _Tracker

__all__ = ["tardis_kind", "iter_tardis", "replay_tardis", "TRADE_COLUMNS", "INCREMENTAL_COLUMNS"]

_BASE = ["exchange", "symbol", "timestamp", "local_timestamp"]
INCREMENTAL_COLUMNS = _BASE + ["is_snapshot", "side", "price", "amount"]
TRADE_COLUMNS = _BASE + ["id", "side", "price", "amount"]
_SNAP_RE = re.compile(r"^(asks|bids)\[(\d+)\]\.(price|amount)$")
_NUM_RE = r"^[0-9]+(\.[0-9]*)?$"
_FINEST = Decimal("0.00000001")


def _header(path) -> list[str]:
    p = str(path)
    opener = gzip.open if p.endswith(".gz") else open
    try:
        with opener(p, "rt", encoding="utf-8") as f:
            return f.readline().strip().split(",")
    except (OSError, UnicodeDecodeError) as e:
        raise ReplayFormatError(f"{path}: cannot read a CSV header ({e})") from None


def tardis_kind(path) -> tuple[str, int]:
    """``("incremental_book_L2" | "book_snapshot" | "trades", depth)`` from a file's header (depth is N of a
    snapshot file, else 0); raises ``ReplayFormatError`` for any other header."""
    cols = _header(path)
    if cols == INCREMENTAL_COLUMNS:
        return "incremental_book_L2", 0
    if cols == TRADE_COLUMNS:
        return "trades", 0
    if cols[:4] == _BASE and len(cols) > 4 and (len(cols) - 4) % 4 == 0:
        n = (len(cols) - 4) // 4
        want = [f"{s}[{i}].{f}" for i in range(n) for s in ("asks", "bids") for f in ("price", "amount")]
        if cols[4:] == want:
            return "book_snapshot", n
    raise ReplayFormatError(f"{path}: header {','.join(cols)[:120]!r} is not a Tardis incremental_book_L2, "
                            f"book_snapshot_N or trades header")


def _units(col: pd.Series, unit: Decimal, path, rows: np.ndarray, name: str) -> np.ndarray:
    """Exact integer units of a column of decimal text (empty cells -> -1)."""
    s = col.fillna("").astype(str).str.strip()
    empty = s == ""
    ok = s.str.match(_NUM_RE) | empty
    if not ok.all():
        i = int(np.flatnonzero(~ok.to_numpy())[0])
        raise ReplayFormatError(f"{path}: row {rows[i]}: column '{name}' must be a plain decimal, got {s.iloc[i]!r}")
    exp = -unit.as_tuple().exponent if unit.as_tuple().exponent < 0 else 0
    parts = s.str.partition(".")
    frac = parts[2]
    too_fine = frac.str.rstrip("0").str.len() > exp
    whole = parts[0].where(~empty, "0")
    frac = frac.str.ljust(exp, "0").str[:exp].where(~empty, "0")
    if exp:
        v = whole.astype(np.int64) * 10 ** exp + frac.replace("", "0").astype(np.int64)
    else:
        v = whole.astype(np.int64)
    v = v.to_numpy(np.int64)
    step = int(unit.scaleb(exp))            # unit in units of 10**-exp (1 for 0.01, 5 for 0.05)
    bad = too_fine.to_numpy() | (v % step != 0)
    bad &= ~empty.to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ReplayFormatError(f"{path}: row {rows[i]}: column '{name}' {s.iloc[i]!r} is not a multiple of {unit} "
                                f"(off the grid)")
    out = v // step
    out[empty.to_numpy()] = -1
    return out


def iter_tardis(path, tick_size="0.00000001", lot_size="0.00000001", chunk_rows: int = 100_000):
    """Stream a Tardis CSV as ``(kind, DataFrame)`` chunks with integer columns.

    Book files give ``ts_ns`` (``timestamp``), ``local_ts_ns``, ``symbol``, ``side`` (0 bid, 1 ask),
    ``price_ticks``, ``qty_lots``, ``reset`` (this row starts a new snapshot: discard the symbol's book) and
    ``snapshot``; a ``book_snapshot_N`` row becomes one row per non-empty level, the first with ``reset``.
    ``trades`` gives ``ts_ns``, ``local_ts_ns``, ``symbol``, ``id``, ``side`` (0 buy, 1 sell, -1 unknown),
    ``price_ticks``, ``qty_lots``. ``row`` is the 1-based data row of the file (for messages).
    """
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be a positive int, got {chunk_rows!r}")
    tick, lot = Decimal(str(tick_size)), Decimal(str(lot_size))
    if tick <= 0 or lot <= 0:
        raise ConfigError(f"tick_size and lot_size must be positive, got {tick_size!r}, {lot_size!r}")
    kind, depth = tardis_kind(path)
    last_snap: dict[str, bool] = {}
    start = 1
    reader = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=int(chunk_rows))
    for df in reader:
        rows = np.arange(start, start + len(df))
        start += len(df)
        try:
            ts = df["timestamp"].astype(np.int64).to_numpy() * 1000
            lts = df["local_timestamp"].astype(np.int64).to_numpy() * 1000
        except ValueError:
            raise ReplayFormatError(f"{path}: rows {rows[0]}-{rows[-1]}: column 'timestamp'/'local_timestamp' must "
                                    f"be integer microseconds") from None
        if kind == "trades":
            side = df["side"].map({"buy": 0, "sell": 1, "unknown": -1})
            if side.isna().any():
                i = int(np.flatnonzero(side.isna().to_numpy())[0])
                raise ReplayFormatError(f"{path}: row {rows[i]}: column 'side' must be buy/sell/unknown, "
                                        f"got {df['side'].iloc[i]!r}")
            yield kind, pd.DataFrame({"row": rows, "ts_ns": ts, "local_ts_ns": lts, "symbol": df["symbol"].to_numpy(),
                                      "id": df["id"].to_numpy(), "side": side.to_numpy(np.int8),
                                      "price_ticks": _units(df["price"], tick, path, rows, "price"),
                                      "qty_lots": _units(df["amount"], lot, path, rows, "amount")})
        elif kind == "incremental_book_L2":
            snap = df["is_snapshot"].map({"true": True, "false": False, "True": True, "False": False})
            if snap.isna().any():
                i = int(np.flatnonzero(snap.isna().to_numpy())[0])
                raise ReplayFormatError(f"{path}: row {rows[i]}: column 'is_snapshot' must be true/false, "
                                        f"got {df['is_snapshot'].iloc[i]!r}")
            side = df["side"].map({"bid": 0, "ask": 1})
            if side.isna().any():
                i = int(np.flatnonzero(side.isna().to_numpy())[0])
                raise ReplayFormatError(f"{path}: row {rows[i]}: column 'side' must be bid/ask, "
                                        f"got {df['side'].iloc[i]!r}")
            snap = snap.to_numpy(bool)
            syms = df["symbol"].to_numpy()
            reset = np.zeros(len(df), bool)
            for i, (sym, sn) in enumerate(zip(syms.tolist(), snap.tolist())):
                # a snapshot row after a non-snapshot row of the symbol (or its first row) starts a new book
                if sn and not last_snap.get(sym, False):
                    reset[i] = True
                last_snap[sym] = sn
            yield kind, pd.DataFrame({"row": rows, "ts_ns": ts, "local_ts_ns": lts, "symbol": syms,
                                      "side": side.to_numpy(np.int8),
                                      "price_ticks": _units(df["price"], tick, path, rows, "price"),
                                      "qty_lots": _units(df["amount"], lot, path, rows, "amount"),
                                      "reset": reset, "snapshot": snap})
        else:
            parts = []
            for i in range(depth):
                for name, s in (("asks", 1), ("bids", 0)):
                    p = _units(df[f"{name}[{i}].price"], tick, path, rows, f"{name}[{i}].price")
                    q = _units(df[f"{name}[{i}].amount"], lot, path, rows, f"{name}[{i}].amount")
                    parts.append(pd.DataFrame({"row": rows, "ts_ns": ts, "local_ts_ns": lts,
                                               "symbol": df["symbol"].to_numpy(), "side": np.int8(s),
                                               "price_ticks": p, "qty_lots": q, "level": 2 * i + (s == 0)}))
            long = pd.concat(parts, ignore_index=True).sort_values(["row", "level"], kind="stable")
            long = long[long["price_ticks"] >= 0]
            first = ~long["row"].duplicated()
            long = long.assign(reset=first.to_numpy(), snapshot=True).drop(columns="level")
            yield kind, long.reset_index(drop=True)


def replay_tardis(path, tick_size="0.00000001", lot_size="0.00000001", symbols=None, chunk_rows: int = 100_000,
                  sink=None) -> L2Replay:
    """Rebuild the books of a Tardis ``incremental_book_L2`` or ``book_snapshot_N`` file.

    Messages are the rows sharing a symbol and a ``local_timestamp`` (one exchange message); the book is
    checked after each. Returns an :class:`~lob.replay.crypto.L2Replay` (venue ``"tardis:<exchange>"`` is not
    known per row, so ``"tardis"``); BBO ``update_id`` is -1.

    Examples
    --------
    >>> from lob.data import DATA_DIR
    >>> r = replay_tardis(DATA_DIR / "tardis" / "incremental_book_L2_sample.csv.gz")
    >>> sorted(r), len(r.gaps), r.ever_crossed
    (['BTCUSDT'], 1, False)
    """
    kind, _ = tardis_kind(path)
    if kind == "trades":
        raise ReplayFormatError(f"{path}: a trades file has no book to replay (read it with iter_tardis)")
    wanted = None if symbols is None else {str(s) for s in ([symbols] if isinstance(symbols, str) else symbols)}
    inc = Increments(None, None, Decimal(str(tick_size)), Decimal(str(lot_size)))
    trackers: dict[str, _Tracker] = {}
    pending = None          # (symbol, local_ts, snapshot, changes, row) of the message being gathered

    def flush():
        if pending is None:
            return
        sym, lts, snap, reset, changes, row = pending
        t = trackers[sym]
        r = t.res
        r.messages += 1
        if reset:
            t.book.clear()
            t.has_book = True
            r.stale = False
        if not t.has_book:
            r.dropped += 1          # updates before the first snapshot: nothing to apply them to
            return
        for s, p, q in changes:
            if t.book._set(s, p, q) == 0 and q == 0 and not snap:
                r.gaps.append(L2Gap(sym, lts, row, "missing_level",
                                    detail=f"amount 0 for {'bid' if s == BID else 'ask'} {t.book.price(p)}, a level "
                                           f"the book does not hold"))
                r.stale = True
        if not snap:
            r.applied += 1
        r.level_updates += len(changes)
        t.emit(lts, changes, snapshot=snap)
        t.after(lts, -1)

    for _, df in iter_tardis(path, tick_size, lot_size, chunk_rows):
        for row, lts, sym, side, p, q, reset, snap in zip(df["row"].tolist(), df["local_ts_ns"].tolist(),
                                                           df["symbol"].tolist(), df["side"].tolist(),
                                                           df["price_ticks"].tolist(), df["qty_lots"].tolist(),
                                                           df["reset"].tolist(), df["snapshot"].tolist()):
            if wanted is not None and sym not in wanted:
                continue
            if sym not in trackers:
                trackers[sym] = _Tracker(sym, "tardis", inc, "precision", sink)
            if pending is not None and (pending[0] != sym or pending[1] != lts or pending[2] != snap or reset):
                flush()
                pending = None
            if pending is None:
                pending = [sym, lts, snap, reset, [], row]
            pending[4].append((BID if side == 0 else ASK, p, q))
    flush()
    return finish("tardis", trackers)
