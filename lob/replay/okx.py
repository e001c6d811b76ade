"""OKX v5 ``books`` channel from cryptofeed recordings, every published CRC32 checksum verified.

Protocol (OKX API v5, "Order book channel" and "Checksum"): a subscription first receives
``{"arg": {"channel": "books", "instId": ...}, "action": "snapshot", "data": [{"asks": [[px, sz, "0",
numOrders], ...], "bids": [...], "ts": ms, "checksum": int}]}``, then ``"action": "update"`` messages whose
levels replace the size at a price (size ``"0"`` removes the level). ``books5`` pushes a full 5-level book
each time (no ``action``): each is applied as a snapshot. Newer streams also carry ``seqId``/``prevSeqId``:
an update's ``prevSeqId`` must equal the previous message's ``seqId``.

Checksum: after applying a message, take the best 25 bids and 25 asks and build the string
``bid1_px:bid1_sz:ask1_px:ask1_sz:bid2_px:...`` (when one side has fewer levels, the other's remaining levels
follow alone), then the CRC32 of it as a signed 32-bit integer. The string is built here from the *integer*
book (each price and size written back as plain decimal text without trailing zeros, which is how OKX
sends them), so a match proves the integer book equals the venue's top 25 levels. OKX routinely sends size
``"0"`` for prices the book does not hold (the shipped recording has 953 such removals, all with matching
checksums), so unlike Coinbase these are not evidence of a gap. A mismatch is an
:class:`~lob.replay.crypto.L2Gap` of kind ``"checksum"``; the book is marked stale until the next snapshot.

Tick and lot (``grid="exchange"``) come from ``GET /api/v5/public/instruments`` (``tickSz``, ``lotSz``);
the default ``grid="precision"`` uses 1e-8 for both (every value of the feed lies on it).
"""
from __future__ import annotations

from lob.errors import ConfigError, ReplayFormatError
from lob.replay._venue import (apply_changes, crc32_signed, finish, http_bodies, increments_table, num_text,
                               received_exact)
from lob.replay.crypto import (_NO_INC, ASK, BID, L2Gap, L2Replay, _check_grid, _check_until, _dec_text, _symbol_set,
                               _Tracker)

__all__ = ["okx_instruments", "okx_checksum", "replay_okx"]

BOOK_CHANNELS = ("books", "books5", "books50-l2-tbt", "books-l2-tbt")


def okx_instruments(source) -> dict:
    """``{instId: Increments}`` from ``GET /api/v5/public/instruments`` responses (a recording such as
    ``OKX.0``, or a JSON file ``{"data": [...]}``): ``tickSz`` and ``lotSz``."""
    rows = []
    for body in http_bodies(source, "instruments"):
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise ReplayFormatError(f"{source}: an instruments response must be {{'data': [...]}}")
        rows += body["data"]
    return increments_table(rows, "instId", "tickSz", "lotSz", "instruments")


def okx_checksum(book, depth: int = 25) -> int:
    """OKX's signed CRC32 of the best ``depth`` levels of an :class:`~lob.replay.crypto.L2Book`."""
    d = book.depth(depth)
    bids, asks = d["bids"], d["asks"]
    parts = []
    for i in range(max(len(bids), len(asks))):
        for side in (bids, asks):
            if i < len(side):
                p, q = side[i]
                parts.append(f"{_dec_text(book.price(p))}:{_dec_text(book.qty(q))}")
    return crc32_signed(":".join(parts))


def _levels(t, rows, what, line):
    try:
        return [(num_text(r[0], what), num_text(r[1], what)) for r in rows]
    except (TypeError, IndexError, KeyError):
        raise ReplayFormatError(f"line {line}: {t.book.symbol} {what} must be [[px, sz, ...], ...], "
                                f"got {str(rows)[:80]}") from None


def replay_okx(stream, instruments=None, symbols=None, grid: str = "precision", until_ts_ns: int | None = None,
               sink=None) -> L2Replay:
    """Build OKX L2 books from a ``books`` recording and verify every checksum it carries.

    Parameters
    ----------
    stream : path or iterable of str
        Recording of the v5 public websocket (``OKX.ws.*``); ``tickers``/``trades`` are counted per symbol.
    instruments : path, iterable of str, or None
        ``GET /api/v5/public/instruments`` responses (see :func:`okx_instruments`), needed for
        ``grid="exchange"`` and for ``off_tick_levels``.
    symbols : list of str, optional
        Replay only these ``instId`` s.
    grid : {"precision", "exchange"}
        Integer units: 1e-8 (default) or the instrument's ``tickSz``/``lotSz``.
    until_ts_ns : int, optional
        Stop before the first message received after this time.
    sink : callable, optional
        Called after each applied message (the level-2 stream of :func:`lob.replay.read`).

    Returns
    -------
    L2Replay
        Per instrument: the book, BBO rows (``update_id`` = the message's ``seqId``, or -1), gaps
        (``"checksum"``, ``"sequence"``), ``checksum_checks``/``checksum_matches``.

    Raises
    ------
    ReplayFormatError
        A malformed line or level, a value off the grid (names the line, field and value).

    Examples
    --------
    >>> from lob.data.crypto import crypto_sample
    >>> r = replay_okx(**crypto_sample("okx"))
    >>> int(r.summary()["checksum_matches"].sum()), len(r.gaps), r.ever_crossed
    (290, 0, False)
    """
    _check_grid(grid)
    _check_until("until_ts_ns", until_ts_ns)
    incs = okx_instruments(instruments) if instruments is not None else {}
    wanted = _symbol_set(symbols)
    trackers: dict[str, _Tracker] = {}
    seq: dict[str, int] = {}
    for rec, msg in received_exact(stream, until_ts_ns):
        if not isinstance(msg, dict) or not isinstance(msg.get("arg"), dict) or "data" not in msg:
            continue
        sym, chan = str(msg["arg"].get("instId")), msg["arg"].get("channel")
        if wanted is not None and sym.upper() not in wanted:
            continue
        t = trackers.get(sym)
        if chan not in BOOK_CHANNELS:
            if t is not None:
                t.res.other[chan] = t.res.other.get(chan, 0) + 1
            continue
        if t is None:
            t = trackers[sym] = _Tracker(sym, "okx", incs.get(sym, _NO_INC), grid, sink)
        action = msg.get("action", "snapshot")      # books5 pushes whole books without an action
        if action not in ("snapshot", "update"):
            raise ReplayFormatError(f"line {rec.line}: {sym} action must be snapshot or update, got {action!r}")
        for d in msg["data"]:
            if not isinstance(d, dict):
                raise ReplayFormatError(f"line {rec.line}: {sym} data items must be objects, got {str(d)[:60]}")
            r = t.res
            bids = _levels(t, d.get("bids", ()), "bids", rec.line)
            asks = _levels(t, d.get("asks", ()), "asks", rec.line)
            sid = d.get("seqId")
            if action == "snapshot":
                r.stale = False
                t.snapshot(bids, asks, rec.line, rec.ts_ns, -1 if sid is None else int(sid))
            else:
                r.messages += 1
                if not t.has_book:
                    r.dropped += 1
                    continue
                prev = d.get("prevSeqId")
                if prev is not None and sym in seq and int(prev) != seq[sym]:
                    r.gaps.append(L2Gap(sym, rec.ts_ns, rec.line, "sequence", seq[sym], int(prev),
                                        None if sid is None else int(sid),
                                        f"prevSeqId {prev} != previous seqId {seq[sym]}"))
                    r.stale = True
                changes = t.levels(BID, bids, "update bids", rec.line) + t.levels(ASK, asks, "update asks", rec.line)
                apply_changes(t, changes, rec, missing_evidence=False)
                t.emit(rec.ts_ns, changes)
                t.after(rec.ts_ns, -1 if sid is None else int(sid))
            if sid is not None:
                seq[sym] = int(sid)
            if "checksum" in d:
                try:
                    want = int(d["checksum"])
                except (TypeError, ValueError):
                    raise ReplayFormatError(f"line {rec.line}: {sym} checksum must be an int, "
                                            f"got {d['checksum']!r}") from None
                got = okx_checksum(t.book)
                r.checksum_checks += 1
                if got == want:
                    r.checksum_matches += 1
                else:
                    r.gaps.append(L2Gap(sym, rec.ts_ns, rec.line, "checksum",
                                        detail=f"checksum {want} from OKX, {got} from the rebuilt book"))
                    r.stale = True
    if wanted is not None and (missing := sorted(wanted - {s.upper() for s in trackers})):
        raise ConfigError(f"symbols {missing} have no book messages in {stream!r}")
    return finish("okx", trackers)
