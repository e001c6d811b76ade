"""One replay registry: :func:`read` recognises a market-data source and streams it in fixed-size chunks.

Order-level formats stream ``lob.EVENT_DTYPE`` chunks (apply them to an :class:`lob.Exchange` whose symbols
are ``stream.symbols``, in that order); level-2 formats stream :data:`L2_DTYPE` chunks of price-level
changes; trade files stream trade rows. Every chunk holds ``chunk_rows`` rows except the last, and memory
is bounded by the chunk size (the cryptofeed recordings are replayed and verified by their venue reader in
a worker thread that hands over one chunk at a time).

* ``lobster`` (events): a ``(message, orderbook)`` pair, or a ``*_message_N.csv[.gz]`` path whose
  ``*_orderbook_N.csv[.gz]`` sits beside it;
* ``itch`` (events): ITCH 5.0 framing (big-endian length + a known message type), plain or gzip;
* ``dbn-mbo`` (events) and ``dbn-mbp10`` (l2): the ``DBN`` magic (plain or zstd) and the schema;
* ``binance``, ``coinbase``, ``okx``, ``bybit``, ``gemini``, ``kraken`` (l2): a cryptofeed recording, told
  apart by the websocket URL in it (Binance also needs ``snapshots=`` and ``exchange_info=``, or a dict of
  files such as :func:`lob.data.crypto.crypto_sample` returns);
* ``tardis-incremental``, ``tardis-snapshot`` (l2) and ``tardis-trades`` (trades): the Tardis CSV header.

Anything else raises :class:`~lob.errors.ReplayFormatError` naming the file and what was found; a
malformed row or record raises it naming the file, the row or record, and the field.

LOBSTER events: orderbook row 0 (the book after message 0, which is therefore not replayed) seeds one order
per displayed level, the ask before the bid level by level, with id
``LEVEL_SEED_BASE + (side << 40) + price_ticks`` (:data:`lob.replay.lobster.LEVEL_SEED_BASE`); each
message chunk goes through :func:`lob.replay.lobster.message_events`; a cancel, deletion or execution of an
order the file never submitted becomes a ``REDUCE`` of the seed order at its level (the order rested there
before the window; the ids the file submitted are kept as one sorted integer array, 8 bytes per order of the
day). ``executions="aggressor"`` (the backtest's form, :func:`lob.replay.backtest.lobster_events`) turns each
visible execution instead into an immediate-or-cancel order of the other side at the execution price (id 0:
engine-assigned), so that history's aggressors meet a strategy's orders in price-time order. Hidden
executions and cross trades (types 5, 6) do not change the book: after iteration ``stream.trades`` holds
them (``ts_ns``, ``price_ticks`` rounded down to the tick, ``qty_lots``). ``max_rows=`` reads only the first
message rows. This is the fast event form of the day. ``read(pair, exact=True)`` streams instead the events of
:func:`lob.replay.lobster.verify`'s reconstruction, which reproduce the orderbook file row for row (levels
sliding into the window are taken from it; about 25 times slower); ``stream.result`` is then the
:class:`~lob.replay.lobster.VerifyReport`, and a row that cannot be reproduced raises.
"""
from __future__ import annotations

import gzip
import queue
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lob.errors import ConfigError, ReplayFormatError

__all__ = ["read", "detect", "ReplayStream", "L2_DTYPE", "L2_CLEAR", "L2_SNAPSHOT", "L2_LAST", "FORMATS",
           "apply_l2"]

L2_DTYPE = np.dtype([("ts_ns", "<i8"), ("price_ticks", "<i8"), ("qty_lots", "<i8"), ("symbol", "<u2"),
                     ("side", "u1"), ("flags", "u1")])
"""One price-level change: set ``qty_lots`` at ``price_ticks`` on ``side`` (0 bid, 1 ask) of ``symbol``
(index into ``stream.symbols``); 0 removes the level. ``flags``: :data:`L2_CLEAR` (discard the symbol's
book before this row: the first row of a snapshot), :data:`L2_SNAPSHOT` (part of a snapshot),
:data:`L2_LAST` (last row of a message: the book is consistent after it)."""
L2_CLEAR, L2_SNAPSHOT, L2_LAST = 1, 2, 4

FORMATS = ("lobster", "itch", "dbn-mbo", "dbn-mbp10", "binance", "coinbase", "okx", "bybit", "gemini", "kraken",
           "tardis-incremental", "tardis-snapshot", "tardis-trades")
_CRYPTO = {"binance": "binance", "coinbase": "coinbase", "okx": "okx", "okex": "okx", "bybit": "bybit",
           "gemini": "gemini", "kraken": "kraken"}
_MSG_RE = re.compile(r"^(?P<stem>.*)_message_(?P<level>\d+)\.csv(?P<gz>\.gz)?$")


def _check_chunk(chunk_rows):
    if not isinstance(chunk_rows, (int, np.integer)) or isinstance(chunk_rows, bool) or chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be a positive int, got {chunk_rows!r}")


def _head(path, n=4096) -> bytes:
    try:
        with open(path, "rb") as f:
            b = f.read(n)
        if b[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as f:
                b = f.read(n)
        return b
    except (OSError, EOFError) as e:
        raise ReplayFormatError(f"{path}: cannot be read ({e})") from None


def _lobster_pair(path: Path):
    m = _MSG_RE.match(path.name)
    if not m:
        return None
    book = path.with_name(f"{m['stem']}_orderbook_{m['level']}.csv{m['gz'] or ''}")
    return path, book


def detect(source) -> str:
    """The format name (one of :data:`FORMATS`) of a path, a LOBSTER pair or a dict of recording files.

    Raises
    ------
    ReplayFormatError
        The source is none of the formats (names the file and what its start looks like).
    """
    if isinstance(source, dict):
        if "stream" not in source:
            raise ConfigError(f"a dict source needs a 'stream' file, got keys {sorted(source)}")
        return detect(source["stream"])
    if isinstance(source, (tuple, list)):
        if len(source) != 2:
            raise ConfigError(f"a pair source must be (message file, orderbook file), got {len(source)} items")
        return "lobster"
    if not isinstance(source, (str, Path)):
        raise ConfigError(f"source must be a path, a (message, orderbook) pair or a dict of files, "
                          f"got {type(source).__name__}")
    path = Path(source)
    if not path.exists():
        raise ReplayFormatError(f"{path}: no such file")
    if path.is_dir():
        raise ReplayFormatError(f"{path}: a directory, not a data file (pass a file, a LOBSTER pair or a dict)")
    if _lobster_pair(path) is not None:
        return "lobster"
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:3] == b"DBN" or magic == b"\x28\xb5\x2f\xfd":
        from lob.replay.dbn import dbn_info

        schema = dbn_info(path).schema
        if schema == "mbo":
            return "dbn-mbo"
        if schema == "mbp-10":
            return "dbn-mbp10"
        raise ReplayFormatError(f"{path}: DBN schema {schema!r} is not replayed (mbo or mbp-10)")
    head = _head(path)
    if not head.strip():
        raise ReplayFormatError(f"{path}: the file is empty (no rows)")
    if len(head) >= 3:
        from lob.replay.itch import _LEN

        n = int.from_bytes(head[:2], "big")
        if n and _LEN[head[2]] == n and len(head) >= 2 + n + 3:
            n2 = int.from_bytes(head[2 + n:4 + n], "big")
            if _LEN[head[4 + n]] == n2:
                return "itch"
    try:
        text = head.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        text = head.decode("utf-8", errors="replace")
        raise ReplayFormatError(f"{path}: not a recognised format (binary, starts with {head[:16]!r})")
    first = text.splitlines()[0] if text else ""
    if first.startswith("exchange,symbol,timestamp,local_timestamp"):
        from lob.replay.tardis import tardis_kind

        kind, _ = tardis_kind(path)
        return {"incremental_book_L2": "tardis-incremental", "book_snapshot": "tardis-snapshot",
                "trades": "tardis-trades"}[kind]
    if re.match(r"^\S+ (<->|<-|->) [0-9.]+", first) or re.match(r"^[0-9.]+: [\[{]", first):
        m = re.search(r"(?:wss?|https?)://[^/\s]*?(binance|coinbase|okx|okex|bybit|gemini|kraken)", text)
        if not m:
            raise ReplayFormatError(f"{path}: a cryptofeed recording, but its first lines name no known venue "
                                    f"URL (binance, coinbase, okx, bybit, gemini, kraken)")
        return _CRYPTO[m[1]]
    if re.match(r"^[0-9]+(\.[0-9]+)?,[1-7],", first):
        raise ReplayFormatError(f"{path}: looks like a LOBSTER message file but is not named "
                                f"*_message_N.csv[.gz]; pass (message file, orderbook file)")
    raise ReplayFormatError(f"{path}: not a recognised format (first line {first[:80]!r})")


class ReplayStream:
    """An iterable of fixed-size chunks from :func:`read`.

    Attributes
    ----------
    format : str
        One of :data:`FORMATS`.
    kind : {"events", "l2", "trades"}
    dtype : numpy.dtype
        ``lob.EVENT_DTYPE``, :data:`L2_DTYPE`, or None for trade DataFrames.
    symbols : list of str
        The names of the chunks' ``symbol`` indexes (for cryptofeed and Tardis sources the list grows as
        symbols appear; complete after iteration).
    units : dict
        Level-2 sources: ``{symbol: (tick_size, lot_size)}`` as exact ``Decimal`` s of one price and size unit.
    info : dict
        Format details (DBN version and dataset, LOBSTER files, MBO counts...).
    result : L2Replay, VerifyReport or None
        After a full iteration: for cryptofeed and Tardis book sources the venue reader's verification
        report (gaps, checksums, crossing); for ``read(lobster_pair, exact=True)`` the
        :class:`~lob.replay.lobster.VerifyReport`.
    trades : DataFrame or None
        LOBSTER (fast form), after a full iteration: the hidden executions and cross trades (``ts_ns``,
        ``price_ticks``, ``qty_lots``), which are not events.
    tick_size : float or None
        Event streams: the price of one tick (LOBSTER/ITCH ``tick / 10000``, DBN ``tick_size``), the
        default ``tick_size`` of :meth:`exchange`.
    """

    def __init__(self, fmt, kind, dtype, chunk_rows, make, symbols=None, info=None):
        self.format = fmt
        self.kind = kind
        self.dtype = dtype
        self.chunk_rows = int(chunk_rows)
        self._make = make
        self.symbols = list(symbols or [])
        self.units: dict = {}
        self.info = dict(info or {})
        self.result = None
        self.trades = None
        self.tick_size = None

    def __iter__(self) -> Iterator:
        return self._make(self)

    def __repr__(self) -> str:
        return (f"ReplayStream({self.format!r}, kind={self.kind!r}, symbols={self.symbols[:5]}"
                f"{'...' if len(self.symbols) > 5 else ''}, chunk_rows={self.chunk_rows})")

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))[:200]}</td></tr>"
                       for k, v in [("format", self.format), ("kind", self.kind), ("chunk rows", self.chunk_rows),
                                    ("symbols", ", ".join(self.symbols[:20]) + (" ..." if len(self.symbols) > 20
                                                                               else "")),
                                    *[(k, v) for k, v in self.info.items() if k != "state"]])
        return f"<b>lob replay stream</b><table>{rows}</table>"

    def exchange(self, **kwargs):
        """Apply every event chunk to a new :class:`lob.Exchange` over ``symbols`` and return it (events only;
        ``kwargs`` go to ``Exchange``, e.g. ``tick_size``)."""
        import lob

        if self.kind != "events":
            raise ConfigError(f"exchange() replays order-level events; a {self.kind} stream builds L2 books "
                              f"(use books())")
        chunks = iter(self)
        first = next(chunks, None)
        kwargs.setdefault("marketdata", False)
        if self.tick_size is not None:
            kwargs.setdefault("tick_size", self.tick_size)
        ex = lob.Exchange(symbols=list(self.symbols), **kwargs)
        for ev in ([first] if first is not None else []):
            ex.apply(ev)
        for ev in chunks:
            ex.apply(ev)
        return ex

    def books(self) -> dict:
        """Apply every level-2 chunk to ``{symbol: L2Book}`` and return the books (l2 streams only)."""
        if self.kind != "l2":
            raise ConfigError(f"books() rebuilds level-2 books; a {self.kind} stream is replayed with exchange()")
        books: dict = {}
        for chunk in self:
            apply_l2(chunk, books, self)
        return books


def apply_l2(chunk: np.ndarray, books: dict, stream: ReplayStream) -> dict:
    """Apply an :data:`L2_DTYPE` chunk to ``books`` (``{symbol name: L2Book}``, created as needed)."""
    from lob.replay.crypto import L2Book

    names = stream.symbols
    for ts, p, q, sym, side, flags in chunk.tolist():
        name = names[sym]
        b = books.get(name)
        if b is None:
            tick, lot = stream.units.get(name, ("1", "1"))
            b = books[name] = L2Book(name, tick, lot)
        if flags & L2_CLEAR:
            b.clear()
        if q or p:
            b._set(side, p, q)
    return books


# ------------------------------------------------------------------------------------------------ chunking

def _rechunk(arrays, n, dtype):
    """Fixed-size chunks of ``n`` rows from an iterator of arrays (the last may be shorter)."""
    buf, have = [], 0
    for a in arrays:
        if not len(a):
            continue
        buf.append(a)
        have += len(a)
        while have >= n:
            cat = np.concatenate(buf) if len(buf) > 1 else buf[0]
            yield np.ascontiguousarray(cat[:n])
            rest = cat[n:]
            buf, have = ([rest] if len(rest) else []), len(rest)
    if have:
        yield np.ascontiguousarray(np.concatenate(buf) if len(buf) > 1 else buf[0])


class _Stopped(Exception):
    pass


def _l2_rows(stream: ReplayStream, rows_out: list):
    """A venue-reader sink appending L2 rows (as tuples) for ``stream``."""
    index = {s: i for i, s in enumerate(stream.symbols)}

    def sink(symbol, ts_ns, changes, snapshot, units):
        k = index.get(symbol)
        if k is None:
            k = index[symbol] = len(stream.symbols)
            stream.symbols.append(symbol)
            stream.units[symbol] = units
        n = len(changes)
        if snapshot:
            base = L2_SNAPSHOT
            if n == 0:
                rows_out.append((ts_ns, 0, 0, k, 0, L2_CLEAR | L2_SNAPSHOT | L2_LAST))
                return
            for j, (s, p, q) in enumerate(changes):
                flags = base | (L2_CLEAR if j == 0 else 0) | (L2_LAST if j == n - 1 else 0)
                rows_out.append((ts_ns, p, q, k, s, flags))
        else:
            for j, (s, p, q) in enumerate(changes):
                rows_out.append((ts_ns, p, q, k, s, L2_LAST if j == n - 1 else 0))
    return sink


def _threaded(run, stream: ReplayStream, make_sink, pack, on_done):
    """Run a reader ``run(sink)`` in a worker thread; yield its rows in chunks of ``stream.chunk_rows``.

    ``make_sink(rows)`` builds the reader's sink, which appends rows to the list ``rows``; full chunks go
    through a queue of two (bounded memory), ``pack(rows)`` makes the array, ``on_done(result)`` receives
    the reader's return value. Stopping the iteration early stops the worker at its next row.
    """
    n = stream.chunk_rows
    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    rows: list = []
    inner = make_sink(rows)

    def put(item):
        while True:
            if stop.is_set():
                raise _Stopped
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def sink(*args):
        if stop.is_set():
            raise _Stopped
        inner(*args)
        while len(rows) >= n:
            put(("rows", rows[:n]))
            del rows[:n]

    def worker():
        try:
            res = run(sink)
            if rows:
                put(("rows", list(rows)))
            put(("done", res))
        except _Stopped:
            pass
        except BaseException as e:      # handed to the consumer, which re-raises it
            try:
                put(("error", e))
            except _Stopped:
                pass

    th = threading.Thread(target=worker, name=f"lob-replay-{stream.format}", daemon=True)
    th.start()
    try:
        while True:
            kind, val = q.get()
            if kind == "rows":
                yield pack(val)
            elif kind == "done":
                on_done(val)
                return
            else:
                raise val
    finally:
        stop.set()
        th.join()


def _threaded_l2(run, stream: ReplayStream):
    """A level-2 venue reader (``run(sink) -> L2Replay``) as :data:`L2_DTYPE` chunks."""
    def done(res):
        stream.result = res
        for name, r in res.items():
            stream.units[name] = (r.book.tick_size, r.book.lot_size)

    return _threaded(run, stream, lambda rows: _l2_rows(stream, rows), lambda v: np.array(v, dtype=L2_DTYPE), done)


# ------------------------------------------------------------------------------------------------ formats

def _lobster_verified(msg, book, tick, chunk_rows):
    from lob.replay import lobster

    import lob

    def make(stream):
        def run(sink):
            class _Streaming(lobster._Rebuilder):
                """verify's rebuilder, passing on every event it applies (through verify's ``rebuilder=``)."""

                def _apply(self, *args):
                    reps = super()._apply(*args)
                    sink(self.ev)
                    return reps

            return lobster.verify(msg, book, tick, chunk_rows=chunk_rows, rebuilder=_Streaming)

        def sink_of(rows):
            return lambda ev: rows.append(ev[0].copy())

        def pack(v):
            return np.array(v, dtype=lob.EVENT_DTYPE)

        def done(rep):
            stream.result = rep
            if rep.mismatching_rows:
                raise ReplayFormatError(f"{msg}: the reconstruction differs from {book} on {rep.mismatching_rows} "
                                        f"rows (first {rep.first_mismatch})")

        return _threaded(run, stream, sink_of, pack, done)

    return make


def _lobster_stream(msg, book, tick, chunk_rows, executions="reduce", max_rows=None):
    from lob.replay.lobster import DUMMY_ASK, DUMMY_BID, LEVEL_SEED_BASE, iter_messages, iter_orderbook, message_events

    import lob

    A = lob.Action
    aggressor = executions == "aggressor"

    def make(stream):
        import pandas as pd

        row0 = next(iter_orderbook(book, 1), None)
        if row0 is None:
            raise ReplayFormatError(f"{book}: no rows")
        first = next(iter_messages(msg, 1), None)
        if first is None:
            raise ReplayFormatError(f"{msg}: no rows")
        # orderbook row 0 is the book after message 0, which is not replayed: one order per displayed level
        # (level by level, the ask before the bid)
        lv = row0[0].reshape(-1, 4)                     # per level: ask price, ask size, bid price, bid size
        px, qty = lv[:, [0, 2]], lv[:, [1, 3]]          # columns: ask, bid
        shown = (qty > 0) & (px != [DUMMY_ASK, DUMMY_BID])
        side = np.broadcast_to(np.array([1, 0], np.uint8), px.shape)[shown]     # row-major: level by level
        price = px[shown] // tick
        ev0 = lob.empty_events(len(side))
        ev0["ts_ns"] = int(first["ts_ns"].iloc[0])
        ev0["order_id"] = LEVEL_SEED_BASE + (side.astype(np.int64) << 40) + price
        ev0["price_ticks"], ev0["qty_lots"] = price, qty[shown]
        ev0["action"], ev0["side"] = A.ADD, side
        stats = stream.info.setdefault("stats", {"seeds": len(ev0), "to_seed": 0, "messages": 0})
        ADD, REDUCE, CANCEL = int(A.ADD), int(A.REDUCE), int(A.CANCEL)
        prints = []

        def gen():
            submitted = np.zeros(0, np.uint64)          # ids the file submitted in earlier chunks (sorted)
            yield ev0
            for chunk in iter_messages(msg, chunk_rows, max_rows):
                stats["messages"] += len(chunk)
                try:
                    ev, rows, _ = message_events(chunk, tick)
                except ReplayFormatError as e:
                    if str(msg) in str(e):
                        raise
                    raise ReplayFormatError(f"{msg}: {e}") from None
                typ = chunk["type"].to_numpy()
                p = (typ == 5) | (typ == 6)
                p[: max(0, 1 - int(chunk.index[0]))] = False     # message 0 is already in orderbook row 0
                prints.append(pd.DataFrame({"ts_ns": chunk["ts_ns"].to_numpy()[p],
                                            "price_ticks": chunk["price"].to_numpy()[p] // tick,
                                            "qty_lots": chunk["size"].to_numpy()[p]}))
                keep = rows > 0
                ev, rows = ev[keep], rows[keep]
                act, oid = ev["action"], ev["order_id"]
                execution = typ[rows - int(chunk.index[0])] == 4
                is_add = act == ADD
                # submitted before this event: in an earlier chunk, or by an earlier ADD of this chunk
                first_add = pd.Series(np.flatnonzero(is_add), index=oid[is_add])
                first_add = first_add[~first_add.index.duplicated()]
                pos = pd.Series(oid).map(first_add).to_numpy(np.float64)
                seen = pos < np.arange(len(ev))
                if len(submitted):
                    seen |= np.isin(oid, submitted)
                # an order resting since before the window: take the size from the level's seed order
                unseen = ((act == REDUCE) | (act == CANCEL)) & ~seen
                if aggressor:
                    unseen &= ~execution
                sd = ev["side"][unseen].astype(np.uint64)
                ev["order_id"][unseen] = np.uint64(LEVEL_SEED_BASE) + (sd << np.uint64(40)) + \
                    ev["price_ticks"][unseen].astype(np.uint64)
                ev["action"][unseen] = REDUCE
                stats["to_seed"] += int(unseen.sum())
                submitted = np.union1d(submitted, oid[is_add])
                if aggressor:
                    # the file records the resting order's loss; let an immediate-or-cancel order of the
                    # other side take it in price-time order (engine-assigned id)
                    ev["action"][execution] = ADD
                    ev["side"][execution] = 1 - ev["side"][execution]
                    ev["tif"][execution] = lob.TIF.IOC
                    ev["order_id"][execution] = 0
                yield ev
            stream.trades = (pd.concat(prints, ignore_index=True) if prints else
                             pd.DataFrame({"ts_ns": [], "price_ticks": [], "qty_lots": []}, dtype=np.int64))

        return _rechunk(gen(), stream.chunk_rows, lob.EVENT_DTYPE)

    return make


def _no_options(fmt, options):
    if options:
        raise ConfigError(f"unknown option(s) {sorted(options)} for format {fmt!r}")


def read(source, format: str | None = None, *, chunk_rows: int = 65_536, symbols=None, tick: int = 100,
         tick_size=None, lot_size=None, **options) -> ReplayStream:
    """Open a market-data source as a :class:`ReplayStream` of fixed-size chunks.

    Parameters
    ----------
    source : path, (message, orderbook) pair, or dict of files
        See the table in the module docstring. A dict holds a cryptofeed venue's files by the names of its
        reader's arguments (``stream``, ``snapshots``, ``exchange_info``, ``products``, ``instruments``,
        ``symbols_info``), as :func:`lob.data.crypto.crypto_sample` returns them.
    format : str, optional
        Skip detection (one of :data:`FORMATS`).
    chunk_rows : int
        Rows per chunk.
    symbols : list, optional
        ITCH: the stocks to keep (required); DBN: raw symbols or instrument ids; cryptofeed and Tardis: the
        symbols to replay. The chunks' ``symbol`` is the index in ``stream.symbols``.
    tick : int
        LOBSTER and ITCH price units (1/10000 dollar) per tick (100 = $0.01).
    tick_size, lot_size : str, optional
        DBN (``tick_size``, default "0.01") and Tardis (both, default 1e-8) price and size units.
    **options
        LOBSTER: ``exact=True`` (the verified reconstruction's events), ``executions="aggressor"`` (visible
        executions as immediate-or-cancel aggressors, the backtest's form; default ``"reduce"``),
        ``max_rows=`` (the first message rows only) and ``symbol=`` (the name of the stream's one symbol,
        default "LOBSTER"). Otherwise passed to the venue reader (``grid=``,
        ``until_ts_ns=``, Binance ``snapshots=``/``exchange_info=``, Kraken ``depth=``...).

    Examples
    --------
    >>> import lob.replay
    >>> from lob.data import lobster_sample
    >>> s = lob.replay.read(lobster_sample(1), chunk_rows=50_000)
    >>> s.format, s.kind, s.symbols
    ('lobster', 'events', ['LOBSTER'])
    >>> ex = s.exchange()            # tick_size 0.01 (LOBSTER tick=100)
    >>> ex.book("LOBSTER").best_bid() is not None
    True
    """
    _check_chunk(chunk_rows)
    fmt = format or detect(source)
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {FORMATS}, got {fmt!r}")
    import lob

    if fmt == "lobster":
        if isinstance(source, (tuple, list)):
            msg, book = Path(source[0]), Path(source[1])
        else:
            pair = _lobster_pair(Path(source))
            if pair is None:
                raise ReplayFormatError(f"{source}: a LOBSTER message file must be named *_message_N.csv[.gz]")
            msg, book = pair
        for p in (msg, book):
            if not p.exists():
                raise ReplayFormatError(f"{p}: no such file (LOBSTER needs the message and the orderbook file)")
        if not isinstance(tick, (int, np.integer)) or tick < 1:
            raise ConfigError(f"tick must be a positive int (LOBSTER price units per tick), got {tick!r}")
        exact = options.pop("exact", False)
        symbol = options.pop("symbol", "LOBSTER")
        executions = options.pop("executions", "reduce")
        max_rows = options.pop("max_rows", None)
        _no_options(fmt, options)
        if executions not in ("reduce", "aggressor"):
            raise ConfigError(f"executions must be 'reduce' or 'aggressor', got {executions!r}")
        if max_rows is not None and (not isinstance(max_rows, (int, np.integer)) or isinstance(max_rows, bool)
                                     or max_rows < 1):
            raise ConfigError(f"max_rows must be a positive int or None, got {max_rows!r}")
        if exact and (executions != "reduce" or max_rows is not None):
            raise ConfigError("exact=True replays the verified reconstruction of the whole day: executions= and "
                              "max_rows= belong to the fast form")
        make = (_lobster_verified(msg, book, int(tick), chunk_rows) if exact else
                _lobster_stream(msg, book, int(tick), chunk_rows, executions, max_rows))
        s = ReplayStream(fmt, "events", lob.EVENT_DTYPE, chunk_rows, make,
                         symbols=[symbol], info={"message_file": str(msg),
                                                                          "orderbook_file": str(book)})
        s.tick_size = int(tick) / 10000
        return s
    if fmt == "itch":
        from lob.replay.itch import itch_events

        if symbols is None:
            raise ConfigError("ITCH needs symbols=[...]: the stocks to replay (an ITCH day holds thousands)")
        syms = [symbols] if isinstance(symbols, str) else list(symbols)

        def make(stream):
            return _rechunk((ev for ev, _ in itch_events(source, syms, tick=tick, **options)), stream.chunk_rows,
                            lob.EVENT_DTYPE)

        s = ReplayStream(fmt, "events", lob.EVENT_DTYPE, chunk_rows, make, symbols=syms, info={"file": str(source)})
        s.tick_size = int(tick) / 10000
        return s
    if fmt.startswith(("dbn", "tardis")):
        _no_options(fmt, options)
    if fmt == "dbn-mbo":
        from lob.replay.dbn import MboState, dbn_info, mbo_events

        info = dbn_info(source)
        st = MboState()

        def make(stream):
            _, names, gen = mbo_events(source, tick_size or "0.01", symbols, chunk_rows, st)
            stream.symbols[:] = names
            return _rechunk(gen, stream.chunk_rows, lob.EVENT_DTYPE)

        s = ReplayStream(fmt, "events", lob.EVENT_DTYPE, chunk_rows, make,
                         info={"file": str(source), "version": info.version, "dataset": info.dataset,
                               "compressed": info.compressed, "state": st})
        _, names, _g = mbo_events(source, tick_size or "0.01", symbols, chunk_rows)
        s.symbols = list(names)
        s.tick_size = float(tick_size or "0.01")
        return s
    if fmt == "dbn-mbp10":
        from decimal import Decimal

        from lob.replay.dbn import dbn_info, mbp10_updates

        info = dbn_info(source)
        tk = Decimal(str(tick_size or "0.01"))

        def make(stream):
            _, names, gen = mbp10_updates(source, tick_size or "0.01", 1, symbols, chunk_rows)

            def rows():
                for recs in gen:
                    stream.symbols[:] = names
                    n = len(recs)
                    if not n:
                        continue
                    out = np.zeros(n, L2_DTYPE)
                    out["ts_ns"], out["symbol"], out["side"], out["price_ticks"], out["qty_lots"] = zip(*recs)
                    out["flags"] = L2_SNAPSHOT
                    out["flags"][0] |= L2_CLEAR
                    out["flags"][-1] |= L2_LAST
                    for nm in names:
                        stream.units[nm] = (tk, Decimal(lot_size or 1))
                    yield out
            return _rechunk(rows(), stream.chunk_rows, L2_DTYPE)

        return ReplayStream(fmt, "l2", L2_DTYPE, chunk_rows, make,
                            info={"file": str(source), "version": info.version, "dataset": info.dataset,
                                  "compressed": info.compressed})
    if fmt.startswith("tardis"):
        from lob.replay.tardis import iter_tardis, replay_tardis

        tk, lt = tick_size or "0.00000001", lot_size or "0.00000001"
        if fmt == "tardis-trades":
            def make(stream):
                for _, df in iter_tardis(source, tk, lt, stream.chunk_rows):
                    yield df
            return ReplayStream(fmt, "trades", None, chunk_rows, make, info={"file": str(source)})

        def make(stream):
            def run(sink):
                return replay_tardis(source, tk, lt, symbols=symbols, chunk_rows=chunk_rows, sink=sink)
            return _threaded_l2(run, stream)

        return ReplayStream(fmt, "l2", L2_DTYPE, chunk_rows, make, info={"file": str(source)})
    # cryptofeed recordings
    files = dict(source) if isinstance(source, dict) else {"stream": source}
    files.update(options)
    if symbols is not None:
        files["symbols"] = symbols
    from lob.replay import bybit, crypto, gemini, kraken, okx

    fn = {"binance": crypto.replay_binance, "coinbase": crypto.replay_coinbase, "okx": okx.replay_okx,
          "bybit": bybit.replay_bybit, "gemini": gemini.replay_gemini, "kraken": kraken.replay_kraken}[fmt]
    import inspect

    _no_options(fmt, {k: v for k, v in files.items() if k not in inspect.signature(fn).parameters})
    if fmt == "binance" and not {"snapshots", "exchange_info"} <= set(files):
        raise ConfigError("a Binance recording needs snapshots= (the REST depth recording) and exchange_info= "
                          "(exchangeInfo); pass them, or a dict of the three files")

    def make(stream):
        def run(sink):
            try:
                return fn(**files, sink=sink)
            except ReplayFormatError as e:
                # the venue readers name the line; name the file too when only the stream has lines
                text = str(e)
                if text.startswith("line ") and set(files) & {"snapshots"} == set():
                    raise ReplayFormatError(f"{files['stream']}: {text}") from None
                raise

        return _threaded_l2(run, stream)

    return ReplayStream(fmt, "l2", L2_DTYPE, chunk_rows, make, info={"files": {k: str(v) for k, v in files.items()}})
