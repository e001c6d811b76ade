"""Gemini v2 market data ``l2`` channel from cryptofeed recordings.

Protocol (Gemini "Market Data Version 2"): after ``{"type": "subscribe", "subscriptions": [{"name": "l2",
"symbols": [...]}]}`` the first ``l2_updates`` message of each symbol holds the whole book (and the recent
``trades``); later ``l2_updates`` carry ``changes`` ``[side ("buy"|"sell"), price, quantity]`` where the
quantity is the level's new total and 0 removes it. ``trade`` messages report executions and
``heartbeat`` s keep the connection alive. Version 2 has no sequence numbers and no checksum, so, as on
Coinbase, the evidence of a missed update is a removal of a level the book does not hold (kind
``"missing_level"``), and the book must never cross. The shipped 30 s recording has 34 such removals
(in ALCXUSD, ANKRUSD, FILUSD and BTCGBP, spread over the recording): they are reported, not hidden.
Each ``trade`` is also checked against the book at
that moment: a trade's price must not be inside the spread (``trade_inside_spread`` counts those that are; the
channels are not synchronised, so it is a count, not a gap).

Tick and lot for ``grid="exchange"``: ``quote_increment`` and ``tick_size`` (Gemini's name for the size
increment) of ``GET /v1/symbols/details/<symbol>`` (``GEMINI.0``); the default grid is 1e-8 for both.
"""
from __future__ import annotations

from lob.errors import ReplayFormatError
from lob.replay._venue import apply_changes, finish, http_bodies, increments_table, num_text, received_exact
from lob.replay.crypto import _NO_INC, ASK, BID, L2Replay, _check_grid, _check_until, _symbol_set, _Tracker, to_units

__all__ = ["gemini_symbols", "replay_gemini"]

_SIDE = {"buy": BID, "sell": ASK}


def gemini_symbols(source) -> dict:
    """``{SYMBOL: Increments}`` from ``GET /v1/symbols/details/...`` responses (``quote_increment`` is the
    price tick, ``tick_size`` the size increment)."""
    rows = [b for b in http_bodies(source, "symbols/details") if isinstance(b, dict) and "symbol" in b]
    if not rows:
        raise ReplayFormatError(f"{source}: no symbols/details response")
    return increments_table(rows, "symbol", "quote_increment", "tick_size", "symbols/details")


def _changes(t, rows, line):
    out = []
    for ch in rows:
        if not isinstance(ch, list) or len(ch) != 3 or ch[0] not in _SIDE:
            raise ReplayFormatError(f"line {line}: {t.book.symbol} l2_updates change must be [buy|sell, price, "
                                    f"quantity], got {ch!r}")
        out += t.levels(_SIDE[ch[0]], [(num_text(ch[1], "price"), num_text(ch[2], "quantity"))],
                        f"l2_updates {ch[0]}", line)
    return out


def replay_gemini(stream, symbols_info=None, symbols=None, grid: str = "precision", until_ts_ns: int | None = None,
                  sink=None) -> L2Replay:
    """Build Gemini L2 books from a v2 ``l2`` recording.

    Parameters
    ----------
    stream : path or iterable of str
        Recording of ``wss://api.gemini.com/v2/marketdata`` (``GEMINI.ws.*``).
    symbols_info : path, iterable of str, or None
        ``/v1/symbols/details`` responses (see :func:`gemini_symbols`), for ``grid="exchange"``.
    symbols : list of str, optional
    grid : {"precision", "exchange"}
    until_ts_ns : int, optional
    sink : callable, optional
        Called after each applied message (the level-2 stream of :func:`lob.replay.read`).

    Returns
    -------
    L2Replay
        ``other`` counts ``trade`` messages and ``trade_inside_spread``; BBO ``update_id`` is -1 (no ids).

    Examples
    --------
    >>> from lob.data.crypto import crypto_sample
    >>> r = replay_gemini(**crypto_sample("gemini"))
    >>> len(r), len(r.gaps), r.ever_crossed
    (10, 34, False)
    """
    _check_grid(grid)
    _check_until("until_ts_ns", until_ts_ns)
    incs = {k.upper(): v for k, v in gemini_symbols(symbols_info).items()} if symbols_info is not None else {}
    wanted = _symbol_set(symbols)
    trackers: dict[str, _Tracker] = {}
    for rec, msg in received_exact(stream, until_ts_ns):
        if not isinstance(msg, dict) or "symbol" not in msg:
            continue
        sym, typ = str(msg["symbol"]), msg.get("type")
        if wanted is not None and sym.upper() not in wanted:
            continue
        t = trackers.get(sym)
        if typ == "l2_updates":
            if t is None:
                t = trackers[sym] = _Tracker(sym, "gemini", incs.get(sym.upper(), _NO_INC), grid, sink)
            changes = _changes(t, msg.get("changes", ()), rec.line)
            if not t.has_book:
                # the first message of a symbol is its whole book
                t.replace(changes, rec.ts_ns, -1)
                continue
            t.res.messages += 1
            apply_changes(t, changes, rec)
            t.emit(rec.ts_ns, changes)
            t.after(rec.ts_ns, -1)
        elif t is not None:
            r = t.res
            r.other[typ] = r.other.get(typ, 0) + 1
            if typ == "trade" and t.has_book and "price" in msg:
                px = to_units(num_text(msg["price"], "trade price"), t.book.tick_size,
                              f"line {rec.line}: {sym} trade price")
                b, a = t.book._best
                if b is not None and a is not None and b < px < a:
                    r.other["trade_inside_spread"] = r.other.get("trade_inside_spread", 0) + 1
    return finish("gemini", trackers)
