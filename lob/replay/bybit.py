"""Bybit ``orderBookL2_25`` (v2 ``realtime`` and ``realtime_public`` websockets) from cryptofeed recordings.

Protocol (Bybit API v2, "orderBookL2_25"): the first message of a topic is ``"type": "snapshot"`` with the 25
best levels per side, each ``{"price": text, "symbol", "id", "side": "Buy"|"Sell", "size"}`` (a list on the
inverse ``realtime`` stream, ``{"order_book": [...]}`` on the USDT ``realtime_public`` stream); then
``"type": "delta"`` messages with ``delete`` / ``update`` / ``insert`` lists of levels keyed by ``id``
(deletes carry no size). Every message has ``cross_seq``, the matching engine's sequence number, which
never decreases but is not contiguous per topic (other symbols' events take numbers in between).

The channel has no per-topic sequence and no checksum, so what is checked is what the messages allow:

* ``cross_seq`` below the previous one of the topic: an :class:`~lob.replay.crypto.L2Gap` of kind
  ``"sequence"`` (an out-of-order or replayed message);
* a delete or update of an ``id`` the book does not hold, an insert of one it holds, or a delete naming
  another side or price than the book holds for the id: kind ``"missing_level"`` (the book missed the
  message that created, moved or removed it);
* a delta that leaves more than 25 levels on a side: kind ``"depth"`` (the venue removes the level that
  leaves the top 25 with an explicit delete);
* the book never crosses.

Tick and lot for ``grid="exchange"``: ``price_filter.tick_size`` and ``lot_size_filter.qty_step`` of
``GET /v2/public/symbols`` (``BYBIT.0``); the default grid is 1e-8 for both.
"""
from __future__ import annotations

from lob.errors import ReplayFormatError
from lob.replay._venue import finish, http_bodies, increments_table, num_text, received_exact
from lob.replay.crypto import (_NO_INC, ASK, BID, L2Gap, L2Replay, _check_grid, _check_until, _symbol_set, _Tracker,
                               to_units)

__all__ = ["bybit_symbols", "replay_bybit", "DEPTH"]

DEPTH = 25
_SIDE = {"Buy": BID, "Sell": ASK}


def bybit_symbols(source) -> dict:
    """``{symbol: Increments}`` from ``GET /v2/public/symbols`` (``price_filter.tick_size``,
    ``lot_size_filter.qty_step``)."""
    rows = []
    for body in http_bodies(source, "symbols"):
        if not isinstance(body, dict) or not isinstance(body.get("result"), list):
            raise ReplayFormatError(f"{source}: a symbols response must be {{'result': [...]}}")
        rows += body["result"]
    return increments_table(rows, "name", "price_filter.tick_size", "lot_size_filter.qty_step", "symbols")


def _level(t, row, what, line, with_size=True):
    """``(id, side, price_ticks, qty_lots)`` of one level object."""
    b = t.book
    try:
        side = _SIDE[row["side"]]
        p = to_units(num_text(row["price"], what), b.tick_size, f"line {line}: {b.symbol} {what} price")
        q = to_units(num_text(row["size"], what), b.lot_size, f"line {line}: {b.symbol} {what} size") \
            if with_size else 0
        return str(row["id"]), side, p, q
    except (KeyError, TypeError):
        raise ReplayFormatError(f"line {line}: {b.symbol} {what} level must have id, side (Buy/Sell), price"
                                f"{', size' if with_size else ''}: got {str(row)[:100]}") from None


def replay_bybit(stream, symbols_info=None, symbols=None, grid: str = "precision", until_ts_ns: int | None = None,
                 sink=None) -> L2Replay:
    """Build Bybit L2 books from an ``orderBookL2_25`` recording (snapshot + delete/update/insert deltas).

    Parameters
    ----------
    stream : path or iterable of str
        Recording of the ``realtime`` or ``realtime_public`` websocket (``BYBIT.ws.*``); ``trade.*`` topics
        are counted per symbol.
    symbols_info : path, iterable of str, or None
        ``GET /v2/public/symbols`` (see :func:`bybit_symbols`), for ``grid="exchange"`` and ``off_tick_levels``.
    symbols : list of str, optional
        Replay only these.
    grid : {"precision", "exchange"}
    until_ts_ns : int, optional
        Stop before the first message received after this time.
    sink : callable, optional
        Called after each applied message (the level-2 stream of :func:`lob.replay.read`).

    Returns
    -------
    L2Replay
        BBO ``update_id`` is the message's ``cross_seq``. Gaps of kinds ``"sequence"``, ``"missing_level"``,
        ``"depth"`` (see the module docstring).

    Examples
    --------
    >>> from lob.data.crypto import crypto_sample
    >>> r = replay_bybit(**crypto_sample("bybit"))
    >>> sorted(r), len(r.gaps), r.ever_crossed
    (['BTCUSD', 'EOSUSD'], 0, False)
    """
    _check_grid(grid)
    _check_until("until_ts_ns", until_ts_ns)
    incs = bybit_symbols(symbols_info) if symbols_info is not None else {}
    wanted = _symbol_set(symbols)
    trackers: dict[str, _Tracker] = {}
    ids: dict[str, dict] = {}            # symbol -> {id: (side, price_ticks)}
    for rec, msg in received_exact(stream, until_ts_ns):
        if not isinstance(msg, dict) or not isinstance(msg.get("topic"), str):
            continue
        chan, _, sym = msg["topic"].partition(".")
        if wanted is not None and sym.upper() not in wanted:
            continue
        t = trackers.get(sym)
        if not chan.startswith("orderBookL2"):
            if t is not None:
                t.res.other[chan] = t.res.other.get(chan, 0) + 1
            continue
        if t is None:
            t = trackers[sym] = _Tracker(sym, "bybit", incs.get(sym, _NO_INC), grid, sink)
            t.last_seq = None
        r = t.res
        try:
            cseq = int(msg["cross_seq"])
        except (KeyError, TypeError, ValueError):
            raise ReplayFormatError(f"line {rec.line}: {sym} {msg.get('type')} needs an integer cross_seq, "
                                    f"got {msg.get('cross_seq')!r}") from None
        data = msg.get("data")
        typ = msg.get("type")
        if typ == "snapshot":
            rows = data.get("order_book") if isinstance(data, dict) else data
            if not isinstance(rows, list):
                raise ReplayFormatError(f"line {rec.line}: {sym} snapshot data must be a list of levels or "
                                        f"{{'order_book': [...]}}, got {str(data)[:80]}")
            lv = [_level(t, row, "snapshot", rec.line) for row in rows]
            ids[sym] = {i: (s, p) for i, s, p, _ in lv}
            r.stale = False
            t.replace([(s, p, q) for _, s, p, q in lv], rec.ts_ns, cseq)
            t.last_seq = cseq
            continue
        if typ != "delta":
            raise ReplayFormatError(f"line {rec.line}: {sym} type must be snapshot or delta, got {typ!r}")
        r.messages += 1
        if not t.has_book:
            r.dropped += 1
            continue
        if not isinstance(data, dict):
            raise ReplayFormatError(f"line {rec.line}: {sym} delta data must be an object, got {str(data)[:80]}")
        if t.last_seq is not None and cseq < t.last_seq:
            r.gaps.append(L2Gap(sym, rec.ts_ns, rec.line, "sequence", t.last_seq, cseq, cseq,
                                f"cross_seq {cseq} below the previous {t.last_seq}"))
            r.stale = True
        book_ids = ids[sym]
        changes = []

        def evidence(detail):
            r.gaps.append(L2Gap(sym, rec.ts_ns, rec.line, "missing_level", detail=detail))
            r.stale = True

        for row in data.get("delete", ()):
            i, s, p, _ = _level(t, row, "delete", rec.line, with_size=False)
            held = book_ids.pop(i, None)
            if held is None:
                evidence(f"delete of id {i} ({row.get('side')} {row.get('price')}), which the book does not hold")
            elif held != (s, p):
                evidence(f"delete of id {i} at {row.get('side')} {row.get('price')}, which the book holds at "
                         f"{'Buy' if held[0] == BID else 'Sell'} {t.book.price(held[1])}")
                changes.append((held[0], held[1], 0))
            changes.append((s, p, 0))
        for kind in ("update", "insert"):
            for row in data.get(kind, ()):
                i, s, p, q = _level(t, row, kind, rec.line)
                held = i in book_ids
                if held != (kind == "update"):
                    evidence(f"{kind} of id {i} ({row.get('side')} {row.get('price')}), which the book "
                             f"{'does not hold' if kind == 'update' else 'already holds'}")
                book_ids[i] = (s, p)
                changes.append((s, p, q))
        for s, p, q in changes:
            t.book._set(s, p, q)
        r.applied += 1
        r.level_updates += len(changes)
        over = [n for n in (len(t.book._levels[BID]), len(t.book._levels[ASK])) if n > DEPTH]
        if over:
            r.gaps.append(L2Gap(sym, rec.ts_ns, rec.line, "depth",
                                detail=f"{max(over)} levels on a side after the delta, more than {DEPTH}"))
            r.stale = True
        t.last_seq = cseq
        t.emit(rec.ts_ns, changes)
        t.after(rec.ts_ns, cseq)
    return finish("bybit", trackers)
