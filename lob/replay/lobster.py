"""LOBSTER message + orderbook files: streaming readers, ``EVENT_DTYPE`` conversion, order-level
reconstruction in the ``lob`` engine, and :func:`verify` against the orderbook file.

Units. LOBSTER prices are dollars x 10000; ``tick`` (default 100) converts them to integer ticks, so the
default tick is $0.01 (the tick of the GOOG sample). Sizes are shares (lots of 1). Times are seconds after
midnight with up to 9 decimals and become integer nanoseconds.

Reconstruction (DESIGN §6). A LEVEL-N message file holds only the events inside the top N levels, so:

1. the book is seeded from orderbook row 0 with message 0 undone (one synthetic order per level);
2. submissions (type 1) are ``ADD`` s; partial cancels (2) and visible executions (4) of orders the file
   submitted are ``REDUCE`` s of that order, deletions (3) ``CANCEL`` s (we reduce rather than simulate
   the aggressor of an execution: the file records the resting order's loss, not the incoming order);
3. cancels, deletions and executions of orders the file never submitted (resting since before the window,
   entered from outside the top N, or replaced by the venue under a new id) are applied at their price
   level: to the synthetic orders there first, then to a file-submitted order of exactly the event's size
   (a replaced order), then to executions' queue front or the newest orders;
4. a level that slides into the window from outside (the deepest row level, at a price that was not in the
   window one row before) is taken from the orderbook file: the engine's level is set to the file's size
   with a synthetic order. This is the only use of the orderbook file after row 0, and it is counted
   (``refills``); anything else that differs from the file is a mismatch.

Hidden executions (5), cross trades (6) and halts (7) do not touch the visible book (halts are not sent to
the engine, which would reject the submissions that LOBSTER records during a quoting period).
"""
from __future__ import annotations

import gzip
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lob.errors import ConfigError, ReplayFormatError

__all__ = ["read_messages", "iter_messages", "iter_orderbook", "message_events", "verify", "VerifyReport",
           "QualityReport", "quality", "orderbook_beside", "DUMMY_ASK", "DUMMY_BID", "SEED_ID_BASE",
           "LEVEL_SEED_BASE"]

DUMMY_ASK = 9999999999
DUMMY_BID = -9999999999
SEED_ID_BASE = 1 << 62          # ids of verify's synthetic orders (seed levels, refills); LOBSTER ids are far below
LEVEL_SEED_BASE = 1 << 60       # the fast event stream's one order per level: + (side << 40) + price_ticks
MESSAGE_COLUMNS = ["time", "type", "order_id", "size", "price", "direction"]
_PRICE = "an integer price in dollars x 10,000 (LOBSTER units: $585.33 is 5853300)"
# what each message column holds, as the errors state it
_MSG_EXPECT = {
    "time": "seconds after midnight as a decimal number (e.g. 34200.004241176)",
    "type": "an event type 1..7 (1 submission, 2 partial cancel, 3 deletion, 4 visible execution, "
            "5 hidden execution, 6 cross trade, 7 trading halt)",
    "order_id": "an integer order id",
    "size": "an integer number of shares",
    "price": _PRICE,
    "direction": "1 (buy) or -1 (sell)",
}
_BOOK_EXPECT = ("ask price", "ask size", "bid price", "bid size")
_MSG_LAYOUT = "LOBSTER message rows: time,type,order_id,size,price,direction"


def _check_chunk(chunk_rows):
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be a positive int, got {chunk_rows!r}")


def _format_error(path, row, col, name, expect, value):
    return ReplayFormatError(f"{path}: row {row} (line {row + 1}), column {col + 1} ({name!r}): expected {expect}, "
                             f"got {value!r}")


def _is_empty(path) -> bool:
    # no data at all (an empty file, or a gzip of nothing): pandas would fail with an unrelated message
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return not f.read(4096).strip()
    except (OSError, EOFError):
        return False            # unreadable as such: pandas names the problem


def _integers(df, names, path, base, expect):
    # every column of names as int64, or a ReplayFormatError naming the first bad cell (row, column, expected)
    for name in names:
        col = df[name]
        if col.dtype.kind in "iu":
            continue
        num = pd.to_numeric(col, errors="coerce")
        bad = num.isna().to_numpy() | (num.to_numpy(np.float64, na_value=0.5) % 1 != 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            v = col.iloc[i]
            v = v.item() if hasattr(v, "item") else v
            hint = ""
            if "price" in expect(name) and isinstance(v, (float, np.floating)) and np.isfinite(v):
                hint = f"; the file seems to give prices in dollars: multiply them by 10,000 ({v} -> {round(v * 10000)})"
            raise ReplayFormatError(str(_format_error(path, base + i, df.columns.get_loc(name), name, expect(name),
                                                      None if pd.isna(v) else v)) + hint)
        df[name] = num.astype(np.int64)
    return df


def _read_chunks(path, kind, chunk_rows, nrows=None, **kw):
    # pandas' chunked reader with the failures a new user meets turned into errors naming file and expectation
    if _is_empty(path):
        expect = _MSG_LAYOUT if kind == "message" else "LOBSTER orderbook rows of 4 x LEVEL integer columns"
        raise ReplayFormatError(f"{path}: the {kind} file is empty (no rows); expected {expect}")
    try:
        yield from pd.read_csv(path, header=None, chunksize=chunk_rows, nrows=nrows, **kw)
    except pd.errors.EmptyDataError:
        raise ReplayFormatError(f"{path}: the {kind} file has no rows") from None
    except (ValueError, pd.errors.ParserError) as e:
        what = _MSG_LAYOUT + " (6 columns, a 7th is ignored)" if kind == "message" else \
            "LOBSTER orderbook rows of 4 x LEVEL integer columns"
        raise ReplayFormatError(f"{path}: not a LOBSTER {kind} file: expected {what} ({e})") from None


def iter_messages(path, chunk_rows: int = 100_000, max_rows: int | None = None):
    """Stream a LOBSTER message file (plain or .gz) as DataFrames with an exact ``ts_ns`` column.

    Only the first six columns are read (some distributed files carry a trailing extra column). The time
    is parsed from its decimal text so that nanoseconds are exact. ``max_rows`` reads only the first rows.

    Every cell is checked: a value that is not what its column holds (a price in dollars instead of dollars x
    10,000, an event type outside 1..7, a direction other than 1/-1, text in a number column) raises
    ``ReplayFormatError`` naming the file, the row, the column and what was expected; so does an empty file.
    """
    _check_chunk(chunk_rows)
    start = 0
    for df in _read_chunks(path, "message", chunk_rows, max_rows, usecols=range(6), names=MESSAGE_COLUMNS,
                           dtype={"time": str}):
        _integers(df, MESSAGE_COLUMNS[1:], path, start, _MSG_EXPECT.get)
        for name, ok in (("time", df["time"].str.fullmatch(r"\d+(\.\d*)?") == True),   # noqa: E712 (NaN: False)
                         ("type", df["type"].between(1, 7)), ("direction", df["direction"].abs() == 1)):
            bad = ~ok.to_numpy(bool)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                v = df[name].iloc[i]
                raise _format_error(path, start + i, MESSAGE_COLUMNS.index(name), name, _MSG_EXPECT[name],
                                    None if pd.isna(v) else v.item() if hasattr(v, "item") else v)
        parts = df["time"].str.partition(".")
        frac = parts[2].str.pad(9, side="right", fillchar="0").str[:9]
        df.insert(0, "ts_ns", parts[0].astype(np.int64) * 1_000_000_000 + frac.astype(np.int64))
        df["time"] = df["time"].astype(float)
        df.index = pd.RangeIndex(start, start + len(df))
        start += len(df)
        yield df


def read_messages(path, max_rows: int | None = None) -> pd.DataFrame:
    """A whole message file as one DataFrame (see :func:`iter_messages`)."""
    parts = list(iter_messages(path, max_rows=max_rows))
    if not parts:
        raise ReplayFormatError(f"{path}: the message file has no rows; expected {_MSG_LAYOUT}")
    return pd.concat(parts)


def iter_orderbook(path, chunk_rows: int = 100_000, max_rows: int | None = None):
    """Stream a LOBSTER orderbook file as int64 arrays of shape (rows, 4 x LEVEL).

    A cell that is not an integer (prices in dollars instead of dollars x 10,000, text) raises
    ``ReplayFormatError`` naming the file, the row, the column and what was expected.
    """
    _check_chunk(chunk_rows)
    start = 0
    for df in _read_chunks(path, "orderbook", chunk_rows, max_rows):
        if df.shape[1] % 4:
            raise ReplayFormatError(f"{path}: {df.shape[1]} columns, expected a multiple of 4 (ask price, ask size, "
                                    f"bid price, bid size per level)")
        df.columns = [f"{_BOOK_EXPECT[c % 4]} {c // 4 + 1}" for c in range(df.shape[1])]
        _integers(df, list(df.columns), path, start,
                  lambda n: _PRICE + " (or the dummy +-9999999999 of an empty level)" if "price" in n
                  else "an integer number of shares")
        start += len(df)
        yield df.to_numpy(np.int64)


def orderbook_beside(message_file) -> Path:
    """The orderbook file of a LOBSTER message file (``..._message_N`` -> ``..._orderbook_N``, same folder).

    Raises ``ReplayFormatError`` naming the file that is wrong: an empty message file, a name that is not a
    LOBSTER message file's, or a missing orderbook file.
    """
    path = Path(message_file)
    if _is_empty(path):
        raise ReplayFormatError(f"{path}: the message file is empty (no rows); expected {_MSG_LAYOUT}")
    if "_message_" not in path.name:
        raise ReplayFormatError(f"{path}: not named as a LOBSTER message file: expected "
                                f"TICKER_DATE_START_END_message_LEVEL.csv[.gz], with its "
                                f"..._orderbook_LEVEL file beside it")
    book = path.with_name(path.name.replace("_message_", "_orderbook_"))
    if not book.exists():
        raise ReplayFormatError(f"{book}: no such orderbook file (the LOBSTER message file {path.name!r} needs it "
                                f"beside it)")
    return book


def message_events(msgs: pd.DataFrame, tick: int = 100, symbol: int = 0):
    """Convert message rows to ``lob.EVENT_DTYPE`` book events and a trades table.

    Type 1 -> ``ADD`` (limit GTC), 2 and 4 -> ``REDUCE`` by ``size``, 3 -> ``CANCEL`` (``qty_lots``: the
    size the file deleted; the engine removes the whole order), 7 -> ``HALT`` (price -1) or ``RESUME`` (0, 1;
    order id, price and size 0). Types 5 and 6 are trades only. The events name LOBSTER's order ids;
    for orders the file never submitted use :func:`verify`'s reconstruction, which applies them at the level.

    Returns
    -------
    events : ndarray of EVENT_DTYPE
    rows : ndarray of int64, the message row of each event
    trades : DataFrame (ts_ns, type, order_id, price_ticks, size, aggressor) of types 4, 5 and 6
    """
    import lob

    typ = msgs["type"].to_numpy()
    bad = (typ < 1) | (typ > 7)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ReplayFormatError(f"message row {msgs.index[i]}: field 'type' must be 1..7, got {typ[i]}")
    price = msgs["price"].to_numpy()
    off = (typ <= 4) & (price % tick != 0)
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise ReplayFormatError(f"message row {msgs.index[i]}: field 'price' {price[i]} is not a multiple of tick {tick}")
    book = np.isin(typ, (1, 2, 3, 4, 7))
    sel = np.flatnonzero(book)
    ev = lob.empty_events(len(sel))
    t = typ[sel]
    ev["ts_ns"] = msgs["ts_ns"].to_numpy()[sel]
    ev["symbol"] = symbol
    ev["order_id"] = np.where(t == 7, 0, msgs["order_id"].to_numpy()[sel])
    ev["side"] = np.where(msgs["direction"].to_numpy()[sel] == 1, 0, 1)
    ev["price_ticks"] = np.where(t == 7, 0, price[sel] // tick)
    ev["qty_lots"] = np.where(t == 7, 0, msgs["size"].to_numpy()[sel])
    act = np.select([t == 1, t == 2, t == 3, t == 4], [lob.Action.ADD, lob.Action.REDUCE, lob.Action.CANCEL,
                                                       lob.Action.REDUCE], lob.Action.RESUME)
    act[(t == 7) & (price[sel] == -1)] = lob.Action.HALT
    ev["action"] = act
    tr = msgs[np.isin(typ, (4, 5, 6))]
    trades = pd.DataFrame({"ts_ns": tr["ts_ns"].to_numpy(), "type": tr["type"].to_numpy(),
                           "order_id": tr["order_id"].to_numpy(), "price_ticks": tr["price"].to_numpy() / tick,
                           "size": tr["size"].to_numpy(),
                           "aggressor": np.where(tr["direction"].to_numpy() == 1, "sell", "buy")})
    return ev, sel.astype(np.int64) + (int(msgs.index[0]) if len(msgs) else 0), trades


# ------------------------------------------------------------------------------------------------
# Reports
# ------------------------------------------------------------------------------------------------
@dataclass
class QualityReport:
    """Facts about a LOBSTER pair that a replay must account for (all counts over the whole file)."""

    rows: int = 0
    type_counts: dict = field(default_factory=dict)
    unseen_order_events: dict = field(default_factory=dict)   # type -> events on orders never submitted
    hidden_executions: int = 0
    hidden_volume: int = 0
    cross_trades: int = 0
    halts: list = field(default_factory=list)                  # (row, ts_ns, price code)
    crossed_rows: int = 0
    first_crossed_row: int | None = None
    time_decreases: int = 0
    first_time_decrease: int | None = None
    same_time_rows: int = 0
    off_tick_prices: int = 0
    half_tick_hidden: int = 0

    def to_frame(self) -> pd.DataFrame:
        """The report as a two-column DataFrame (check, value)."""
        rows = [("rows", self.rows)]
        rows += [(f"type {k} messages", v) for k, v in sorted(self.type_counts.items())]
        rows += [(f"type {k} on orders never submitted", v) for k, v in sorted(self.unseen_order_events.items())]
        rows += [("hidden executions (type 5)", self.hidden_executions), ("hidden volume", self.hidden_volume),
                 ("hidden executions off the tick grid", self.half_tick_hidden),
                 ("cross trades (type 6)", self.cross_trades), ("halt rows (type 7)", len(self.halts)),
                 ("crossed orderbook rows", self.crossed_rows), ("time decreases", self.time_decreases),
                 ("rows sharing the previous time", self.same_time_rows),
                 ("off-tick prices (types 1-4)", self.off_tick_prices)]
        return pd.DataFrame(rows, columns=["check", "value"])

    def _repr_html_(self) -> str:
        return "<b>LOBSTER data quality</b>" + self.to_frame().to_html(index=False)


@dataclass
class VerifyReport:
    """Outcome of :func:`verify`: how many orderbook rows the engine reproduced, and where it did not."""

    message_file: str
    orderbook_file: str
    levels: int
    rows: int = 0
    mismatching_rows: int = 0
    mismatch_rows: list = field(default_factory=list)          # row numbers (first ``max_details``)
    first_mismatch: dict | None = None
    refills: int = 0
    seed_levels: int = 0
    unknown_overdraw: int = 0    # unseen-order events larger than the synthetic size at their level
    stale_dropped: int = 0       # out-of-window orders removed because a submission proved them gone
    stale_levels: int = 0        # out-of-window levels the orderbook file shows gone when back in range
    seconds: float = 0.0
    quality: QualityReport = field(default_factory=QualityReport)
    exchange: object = None
    details: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every row matched."""
        return self.mismatching_rows == 0

    def to_frame(self) -> pd.DataFrame:
        """One row per recorded mismatch: row, side, expected and reconstructed levels."""
        return pd.DataFrame(self.details, columns=["row", "side", "message", "expected", "reconstructed"])

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([("rows", self.rows), ("mismatching rows", self.mismatching_rows),
                             ("levels refilled from the orderbook file", self.refills),
                             ("seed levels (row 0)", self.seed_levels),
                             ("unseen-order events beyond the level", self.unknown_overdraw),
                             ("stale out-of-window orders dropped", self.stale_dropped),
                             ("stale out-of-window levels dropped", self.stale_levels),
                             ("seconds", round(self.seconds, 2))], columns=["", "value"])

    def __repr__(self) -> str:
        return (f"VerifyReport(levels={self.levels}, rows={self.rows}, mismatching_rows={self.mismatching_rows}, "
                f"refills={self.refills})")

    def _repr_html_(self) -> str:
        head = ("<b>LOBSTER verify</b>: " + ("all rows reproduced" if self.ok else
                f"{self.mismatching_rows} of {self.rows} rows differ"))
        first = ""
        if self.first_mismatch:
            fm = self.first_mismatch
            first = (f"<p>first mismatch: row {fm['row']} ({fm['side']}), message {fm['message']}<br>"
                     f"expected {fm['expected']}<br>reconstructed {fm['reconstructed']}</p>")
        return head + self.summary().to_html(index=False) + first + self.quality._repr_html_()


# ------------------------------------------------------------------------------------------------
# Reconstruction
# ------------------------------------------------------------------------------------------------
def _side_levels(row: np.ndarray, side: int, tick: int) -> list:
    """[(price_ticks, qty)] of one side of an orderbook row, best first, dummies dropped."""
    if side == 1:
        p, q = row[0::4], row[1::4]
        keep = (p != DUMMY_ASK) & (q > 0)
    else:
        p, q = row[2::4], row[3::4]
        keep = (p != DUMMY_BID) & (q > 0)
    return list(zip((p[keep] // tick).tolist(), q[keep].tolist()))


class _Rebuilder:
    """The engine book plus the bookkeeping for orders the file never submitted."""

    def __init__(self, levels: int, tick: int):
        import lob

        self.lob = lob
        self.L = levels
        self.tick = tick
        self.ex = lob.Exchange(symbols=["LOBSTER"], tick_size=tick / 10000, marketdata=False)
        self.book = self.ex.book("LOBSTER")
        self.ev = lob.empty_events(1)
        self.known: dict[int, int] = {}          # id -> open qty of orders the file submitted
        self.synth: dict[tuple, list] = {}       # (side, price) -> [[id, qty], ...]
        self.next_synth = SEED_ID_BASE
        self.refills = 0
        self.overdraw = 0
        self.stale_dropped = 0
        self.absorbed: set = set()

    def _apply(self, action, oid, side, price, qty, ts):
        e = self.ev[0]
        e["action"], e["order_id"], e["side"], e["price_ticks"], e["qty_lots"], e["ts_ns"] = (
            action, oid, side, price, qty, ts)
        reps, fills = self.ex.apply(self.ev)
        if len(fills):
            raise ReplayFormatError(f"LOBSTER replay: order {oid} at {price} crossed the book and traded")
        return reps

    def add_synthetic(self, side, price, qty, ts):
        oid = self.next_synth
        self.next_synth += 1
        self._apply(self.lob.Action.ADD, oid, side, price, qty, ts)
        self.synth.setdefault((side, price), []).append([oid, qty])

    def take_at_level(self, side, price, qty, ts, oid=None) -> int:
        """Remove ``qty`` from the synthetic orders at a level (newest last); return what was missing."""
        lst = self.synth.get((side, price), [])
        if oid is not None:
            # an absorbed order named by the event goes first
            for j, o in enumerate(lst):
                if o[0] == oid:
                    lst.append(lst.pop(j))
                    break
        while qty > 0 and lst:
            o = lst[-1]
            q = min(qty, o[1])
            if q == o[1]:
                self._apply(self.lob.Action.CANCEL, o[0], side, price, 0, ts)
                lst.pop()
            else:
                self._apply(self.lob.Action.REDUCE, o[0], side, price, q, ts)
                o[1] -= q
            qty -= q
        if not lst:
            self.synth.pop((side, price), None)
        return qty

    def take_known_at_level(self, side, price, qty, ts, typ=None):
        """Remove ``qty`` from file-submitted orders at a level, for an event naming an order the file never
        submitted.

        Such an id is most often an order the venue replaced (a new id for the same resting shares), so an
        order whose open size equals the event's is taken first: a deletion removes exactly one order's
        remaining size. An execution then takes from the front of the queue (oldest first), anything else
        from the newest orders (stale after leaving the window).
        """
        if qty <= 0:
            return
        o = self.book.orders_array(include_stops=False)
        o = o[(o["side"] == side) & (o["price_ticks"] == price)]
        take = list(zip(o["order_id"].tolist(), o["qty_lots"].tolist()))     # priority order
        if typ != 4:
            take.reverse()
        if typ in (3, 4):
            exact = [j for j, (_, q0) in enumerate(take) if q0 == qty]
            if exact:
                take.insert(0, take.pop(exact[0]))
        for oid, q0 in take:
            if qty <= 0:
                break
            q = min(qty, q0)
            if q == q0:
                self._apply(self.lob.Action.CANCEL, oid, side, price, 0, ts)
                self.known.pop(oid, None)
            else:
                self._apply(self.lob.Action.REDUCE, oid, side, price, q, ts)
                self.known[oid] = self.known.get(oid, q0) - q
            qty -= q

    def message(self, typ, oid, size, price, side, ts):
        A = self.lob.Action
        if typ == 1:
            bid, ask = self.book.best_ticks()
            if (side == 0 and ask and ask <= price) or (side == 1 and bid and bid >= price):
                self.drop_crossing(side, price, ts)
            self._apply(A.ADD, oid, side, price, size, ts)
            self.known[oid] = size
        elif typ in (2, 3, 4):
            if oid in self.known:
                left = self.known[oid] - size
                if typ == 3 or left <= 0:
                    self._apply(A.CANCEL, oid, side, price, 0, ts)
                    del self.known[oid]
                else:
                    self._apply(A.REDUCE, oid, side, price, size, ts)
                    self.known[oid] = left
            else:
                missing = self.take_at_level(side, price, size, ts, oid)
                if missing:
                    self.overdraw += 1
                    self.take_known_at_level(side, price, missing, ts, typ)

    def drop_crossing(self, side, price, ts):
        """Remove opposite levels that a resting submission at ``price`` proves gone.

        They left the window earlier and were emptied by events the file did not carry (a LOBSTER
        submission never trades: marketable orders appear as executions).
        """
        o = self.book.orders_array(include_stops=False)
        opp = 1 - side
        o = o[(o["side"] == opp) & ((o["price_ticks"] <= price) if opp == 1 else (o["price_ticks"] >= price))]
        for oid, p in zip(o["order_id"].tolist(), o["price_ticks"].tolist()):
            self._apply(self.lob.Action.CANCEL, oid, opp, p, 0, ts)
            self.known.pop(oid, None)
            self.synth.pop((opp, p), None)
        self.stale_dropped += len(o)

    def reconcile(self, side, exp, prev, msg_price, ts, rep) -> bool:
        """Apply the file's values at prices outside the previous window; True when the side then matches.

        Prices in the previous row's window (and the message's own price) are known to the engine exactly;
        a difference there is a mismatch and nothing is changed.
        """
        # prices of the previous window and of the message are known to the engine exactly (an add at a
        # price the window did not show had its stale engine size removed before it was applied)
        certain = {p for p, _ in prev}
        if msg_price is not None:
            certain.add(msg_price)
        L = self.L
        full = len(exp) == L
        worst = exp[-1][0] if exp else None
        n = 2 * L + 16
        eng = self.depth_n(side, n)
        # every engine level at or better than the row's worst price counts (stale levels can be many)
        while full and len(eng) == n and (eng[-1][0] >= worst if side == 0 else eng[-1][0] <= worst):
            n *= 4
            eng = self.depth_n(side, n)
        if full:
            inside = [(p, q) for p, q in eng if (p >= worst if side == 0 else p <= worst)]
        else:
            inside = eng
        exp_d = dict(exp)
        eng_d = dict(inside)
        for p, q in exp:
            if p in certain and eng_d.get(p) != q:
                return False
        for p, q in inside:
            if p in certain and p not in exp_d:
                return False
        # levels taken from the file must be the deepest ones of the row
        new = [j for j, (p, _) in enumerate(exp) if p not in certain]
        if new and new != list(range(len(exp) - len(new), len(exp))):
            return False
        for p, q in inside:
            if p not in certain and p not in exp_d:
                self.set_level(side, p, 0, ts)
                rep.stale_levels += 1
        for j in new:
            p, q = exp[j]
            # set even when the size agrees: the level's file-submitted orders become unknown (absorbed)
            self.set_level(side, p, q, ts)
            rep.refills += 1
        return self.depth(side) == exp

    def depth_n(self, side, n) -> list:
        d = self.book.depth_ticks(n)["bids" if side == 0 else "asks"]
        return [(p, q) for p, q, _ in d]

    def depth(self, side) -> list:
        d = self.book.depth_ticks(self.L)["bids" if side == 0 else "asks"]
        return [(p, q) for p, q, _ in d]

    def level_qty(self, side, price) -> int:
        d = self.book.depth_ticks(1 << 20)["bids" if side == 0 else "asks"]
        for p, q, _ in d:
            if p == price:
                return q
        return 0

    def set_level(self, side, price, qty, ts):
        """Make the engine's displayed size at a level equal ``qty`` (a refill from the orderbook file).

        The level was outside the window, so which of its file-submitted orders still rest is unknown:
        they join the level's synthetic pool, and later events naming them apply at the level.
        """
        o = self.book.orders_array(include_stops=False)
        o = o[(o["side"] == side) & (o["price_ticks"] == price)]
        pool = self.synth.setdefault((side, price), [])
        for oid, q in zip(o["order_id"].tolist(), o["qty_lots"].tolist()):
            if self.known.pop(oid, None) is not None:
                pool.insert(0, [oid, q])
                self.absorbed.add(oid)
        if not pool:
            del self.synth[(side, price)]
        have = self.level_qty(side, price)
        if qty > have:
            self.add_synthetic(side, price, qty - have, ts)
        elif qty < have:
            missing = self.take_at_level(side, price, have - qty, ts)
            self.take_known_at_level(side, price, missing, ts)


def _undo(levels: list, typ, size, price, is_side) -> list:
    """Side levels (best first) with one message undone (row 0 already contains message 0)."""
    if not is_side or typ not in (1, 2, 3, 4):
        return levels
    d = dict(levels)
    d[price] = d.get(price, 0) + (-size if typ == 1 else size)
    if d[price] <= 0:
        del d[price]
    return list(d.items())


def verify(message_file, orderbook_file, tick: int = 100, chunk_rows: int = 100_000,
           max_details: int = 100, rebuilder=None) -> VerifyReport:
    """Rebuild a LOBSTER day in the engine and compare it with the orderbook file row by row.

    Parameters
    ----------
    message_file, orderbook_file : path
        The LOBSTER pair (plain CSV or .gz); read in chunks of ``chunk_rows`` rows.
    tick : int
        LOBSTER price units per tick (100 = $0.01).
    max_details : int
        Mismatches recorded in detail (all are counted).
    rebuilder : class, optional
        A subclass of the internal rebuilder, ``cls(levels, tick)``, to observe every engine event of the
        reconstruction (``lob.queue.l3`` records the resolved order-level stream this way).

    Returns
    -------
    VerifyReport
        With the data-quality report (:class:`QualityReport`) and the final ``exchange``.

    Examples
    --------
    >>> from lob.data import lobster_sample
    >>> verify(*lobster_sample(1)).mismatching_rows
    0
    """
    t0 = time.perf_counter()
    rep = VerifyReport(str(message_file), str(orderbook_file), levels=0)
    q = rep.quality
    rb = None
    prev_row = None
    prev_ok = True
    prev_ts = None
    submitted: set = set()
    row_base = 0
    for msgs, book in zip(iter_messages(message_file, chunk_rows), iter_orderbook(orderbook_file, chunk_rows)):
        if len(msgs) != len(book):
            raise ReplayFormatError(f"{message_file} and {orderbook_file} have different numbers of rows")
        if rb is None:
            L = book.shape[1] // 4
            rep.levels = L
            rb = (rebuilder or _Rebuilder)(L, tick)
        _quality_chunk(q, msgs, book, tick, prev_ts, submitted)
        prev_ts = int(msgs["ts_ns"].iloc[-1])
        typ = msgs["type"].to_numpy().tolist()
        oid = msgs["order_id"].to_numpy().tolist()
        size = msgs["size"].to_numpy().tolist()
        price = (msgs["price"].to_numpy() // tick).tolist()
        side = np.where(msgs["direction"].to_numpy() == 1, 0, 1).tolist()
        ts = msgs["ts_ns"].to_numpy().tolist()
        # rows where a side is unchanged from the previous row: no need to ask the engine
        same_bid = np.zeros(len(book), bool)
        same_ask = np.zeros(len(book), bool)
        both = np.vstack([prev_row[None, :], book]) if prev_row is not None else book
        off = 1 if prev_row is not None else 0
        if len(both) > 1:
            d = both[1:] != both[:-1]
            same_ask[1 - off:] = ~(d[:, 0::4] | d[:, 1::4]).any(axis=1)
            same_bid[1 - off:] = ~(d[:, 2::4] | d[:, 3::4]).any(axis=1)
        for i in range(len(book)):
            k = row_base + i
            row = book[i]
            if k == 0:
                # seed: row 0 with message 0 undone, one synthetic order per level
                for s in (0, 1):
                    lv = _undo(_side_levels(row, s, tick), typ[0], size[0], price[0], side[0] == s)
                    for p, qty in lv:
                        rb.add_synthetic(s, p, qty, ts[0])
                        rep.seed_levels += 1
            if typ[i] == 1 and k > 0:
                # an add inside the window range at a price the window did not show: nothing truly rested
                # there, so any engine size at that price is stale (left the window, emptied unseen)
                pv = _side_levels(prev_row, side[i], tick)
                p = price[i]
                if all(p != x for x, _ in pv) and (len(pv) < rb.L or
                                                   (p > pv[-1][0] if side[i] == 0 else p < pv[-1][0])):
                    if rb.level_qty(side[i], p):
                        rb.set_level(side[i], p, 0, ts[i])
                        rep.stale_levels += 1
            rb.message(typ[i], oid[i], size[i], price[i], side[i], ts[i])
            row_ok = True
            for s in (0, 1):
                unchanged = same_bid[i] if s == 0 else same_ask[i]
                if unchanged and prev_ok and k > 0 and not (typ[i] in (1, 2, 3, 4) and side[i] == s):
                    continue
                exp = _side_levels(row, s, tick)
                got = rb.depth(s)
                if got == exp:
                    continue
                # the legitimate differences concern prices outside the previous window only: a level
                # sliding in from outside (taken from the file) and out-of-window levels the file shows gone
                if k > 0 and rb.reconcile(s, exp, _side_levels(prev_row, s, tick),
                                          price[i] if (typ[i] in (1, 2, 3, 4) and side[i] == s) else None, ts[i],
                                          rep):
                    continue
                got = rb.depth(s)
                row_ok = False
                if len(rep.details) < max_details:
                    rep.details.append((k, "bid" if s == 0 else "ask", (typ[i], oid[i], size[i], price[i], side[i]),
                                        exp, got))
            if not row_ok:
                rep.mismatching_rows += 1
                if len(rep.mismatch_rows) < max_details:
                    rep.mismatch_rows.append(k)
            prev_ok = row_ok
            prev_row = row
        row_base += len(book)
    if rb is None:
        raise ReplayFormatError(f"{message_file}: no rows")
    rep.rows = row_base
    rep.refills = rep.refills
    rep.unknown_overdraw = rb.overdraw
    rep.stale_dropped = rb.stale_dropped
    rep.exchange = rb.ex
    if rep.details:
        r, s, m, e, g = rep.details[0]
        rep.first_mismatch = {"row": r, "side": s, "message": m, "expected": e, "reconstructed": g}
    q.rows = row_base
    rep.seconds = time.perf_counter() - t0
    return rep


def _quality_chunk(q: QualityReport, msgs, book, tick, prev_ts, submitted: set):
    typ = msgs["type"].to_numpy()
    for t, c in zip(*np.unique(typ, return_counts=True)):
        q.type_counts[int(t)] = q.type_counts.get(int(t), 0) + int(c)
    oid = msgs["order_id"].to_numpy()
    # orders never submitted: ids of types 2/3/4 not added earlier in the file
    for t, o in zip(typ.tolist(), oid.tolist()):
        if t == 1:
            submitted.add(o)
        elif t in (2, 3, 4) and o not in submitted:
            q.unseen_order_events[t] = q.unseen_order_events.get(t, 0) + 1
    h = typ == 5
    q.hidden_executions += int(h.sum())
    q.hidden_volume += int(msgs["size"].to_numpy()[h].sum())
    q.half_tick_hidden += int((msgs["price"].to_numpy()[h] % tick != 0).sum())
    q.cross_trades += int((typ == 6).sum())
    for r in np.flatnonzero(typ == 7):
        q.halts.append((int(msgs.index[r]), int(msgs["ts_ns"].iloc[r]), int(msgs["price"].iloc[r])))
    q.off_tick_prices += int(((typ <= 4) & (msgs["price"].to_numpy() % tick != 0)).sum())
    ts = msgs["ts_ns"].to_numpy()
    full = np.concatenate(([prev_ts], ts)) if prev_ts is not None else ts
    d = np.diff(full)
    dec = np.flatnonzero(d < 0)
    q.time_decreases += len(dec)
    if len(dec) and q.first_time_decrease is None:
        q.first_time_decrease = int(msgs.index[dec[0] + (0 if prev_ts is not None else 1)])
    q.same_time_rows += int((d == 0).sum())
    ask, bid = book[:, 0], book[:, 2]
    crossed = (ask != DUMMY_ASK) & (bid != DUMMY_BID) & (book[:, 1] > 0) & (book[:, 3] > 0) & (ask <= bid)
    q.crossed_rows += int(crossed.sum())
    if crossed.any() and q.first_crossed_row is None:
        q.first_crossed_row = int(msgs.index[np.argmax(crossed)])


def quality(message_file, orderbook_file, tick: int = 100, chunk_rows: int = 100_000) -> QualityReport:
    """The data-quality report of a LOBSTER pair alone (no reconstruction)."""
    q = QualityReport()
    prev_ts = None
    submitted: set = set()
    n = 0
    for msgs, book in zip(iter_messages(message_file, chunk_rows), iter_orderbook(orderbook_file, chunk_rows)):
        _quality_chunk(q, msgs, book, tick, prev_ts, submitted)
        prev_ts = int(msgs["ts_ns"].iloc[-1])
        n += len(msgs)
    q.rows = n
    return q
