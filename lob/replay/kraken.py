"""Kraken spot ``book`` channel (websockets v1 and v2), with the CRC32 checksum of every update verified.

Implemented from Kraken's public documentation ("Spot Websockets (v1) Book Checksum", "WebSocket API v1 -
How to maintain a valid order book", "Book checksum (WebSocket v2)"); no recording is shipped.

v1 messages are arrays: a snapshot ``[channelID, {"as": [[price, volume, timestamp], ...], "bs": [...]},
"book-<depth>", "XBT/USD"]``; an update ``[channelID, {"a": [...]}, {"b": [...], "c": "<checksum>"},
"book-<depth>", pair]`` (or one object with ``a``, ``b`` and ``c``). Levels may carry a 4th element ``"r"``
(a republished level, applied like any other). v2 messages are objects ``{"channel": "book", "type":
"snapshot"|"update", "data": [{"symbol", "bids": [{"price", "qty"}], "asks": [...], "checksum"}]}``.

Maintaining the book: apply every level of a message in order (volume 0 removes the level), then truncate
each side to the subscribed depth (Kraken sends no removal for a level pushed out of scope).

Checksum: the top 10 asks (price low to high) then the top 10 bids (high to low); for each level the price
and the volume as sent, with the ``.`` removed and leading zeros stripped, concatenated; the CRC32 of the
string as an unsigned 32-bit integer. Kraken quotes every price of a pair with the same number of decimals
(``pair_decimals``) and every volume with ``lot_decimals``, so that text is exactly the decimal integer of
the value in units of ``10**-decimals``: the string is built here from the integer book
(``str(price_units) + str(volume_units)``), and a match proves the integer book. A mismatch is an
:class:`~lob.replay.crypto.L2Gap` of kind ``"checksum"`` and marks the book stale (Kraken's remedy is to
resubscribe, which the next snapshot reflects).

The decimals default to those of the pair's first snapshot; pass ``price_decimals``/``qty_decimals``
(``AssetPairs`` ``pair_decimals``/``lot_decimals``, or the v2 ``instrument`` channel's precisions) when the
snapshot may not show them (v2 sends numbers, which drop trailing zeros).
"""
from __future__ import annotations

import re
import zlib
from decimal import Decimal

from lob.errors import ConfigError, ReplayFormatError
from lob.replay._venue import exact_json, finish, num_text
from lob.replay.crypto import ASK, BID, Increments, L2Gap, L2Replay, _check_until, _symbol_set, _Tracker, iter_recording

__all__ = ["kraken_checksum", "replay_kraken", "CHECKSUM_LEVELS"]

CHECKSUM_LEVELS = 10
_DEPTH_RE = re.compile(r"^book-(\d+)$")


def kraken_checksum(book) -> int:
    """Kraken's unsigned CRC32 of the top 10 levels of an :class:`~lob.replay.crypto.L2Book` whose units are
    the pair's decimals (``tick_size = 10**-pair_decimals``, ``lot_size = 10**-lot_decimals``)."""
    d = book.depth(CHECKSUM_LEVELS)
    text = "".join(f"{p}{q}" for p, q in d["asks"]) + "".join(f"{p}{q}" for p, q in d["bids"])
    return zlib.crc32(text.encode("ascii"))


def _decimals(text: str) -> int:
    return len(text.partition(".")[2])


class _Pair:
    def __init__(self, symbol, depth):
        self.symbol = symbol
        self.depth = depth
        self.t = None


def _v1_levels(obj, keys, what, line, sym):
    """[(side, price text, volume text)] of the level lists under ``keys`` of the dicts in ``obj``."""
    out = []
    for d in obj:
        for key, side in keys:
            for lv in d.get(key, ()):
                if not isinstance(lv, list) or len(lv) < 2:
                    raise ReplayFormatError(f"line {line}: {sym} {what} {key} level must be [price, volume, "
                                            f"timestamp(, 'r')], got {str(lv)[:60]}")
                out.append((side, num_text(lv[0], f"{key} price"), num_text(lv[1], f"{key} volume")))
    return out


def _v2_levels(d, what, line, sym):
    out = []
    for key, side in (("bids", BID), ("asks", ASK)):
        for lv in d.get(key, ()):
            if not isinstance(lv, dict) or "price" not in lv or "qty" not in lv:
                raise ReplayFormatError(f"line {line}: {sym} {what} {key} level must be {{price, qty}}, "
                                        f"got {str(lv)[:60]}")
            out.append((side, num_text(lv["price"], f"{key} price"), num_text(lv["qty"], f"{key} qty")))
    return out


def _messages(stream):
    """(line, ts_ns, message) from a cryptofeed recording, or from an iterable of JSON objects/strings."""
    if isinstance(stream, (list, tuple)) and stream and not isinstance(stream[0], str):
        for i, m in enumerate(stream, 1):
            yield i, 0, m
        return
    for rec in iter_recording(stream):
        if rec.kind == "recv":
            yield rec.line, rec.ts_ns, exact_json(rec)


def replay_kraken(stream, symbols=None, depth: int | None = None, price_decimals: int | None = None,
                  qty_decimals: int | None = None, until_ts_ns: int | None = None, sink=None) -> L2Replay:
    """Build Kraken L2 books from ``book`` messages and verify the checksum of every update.

    Parameters
    ----------
    stream : path, iterable of str, or list of messages
        A cryptofeed recording of ``wss://ws.kraken.com`` (v1) or ``wss://ws.kraken.com/v2``, its lines, or
        the decoded messages themselves (lists for v1, dicts for v2; timestamps are then 0).
    symbols : list of str, optional
        Replay only these pairs (``"XBT/USD"``).
    depth : int, optional
        Subscribed depth the book is truncated to (default: from the v1 channel name ``book-<depth>``,
        else the size of the first snapshot's larger side).
    price_decimals, qty_decimals : int, optional
        The pair's decimals (default: read from its first snapshot).
    until_ts_ns : int, optional
    sink : callable, optional
        Called after each applied message (the level-2 stream of :func:`lob.replay.read`).

    Returns
    -------
    L2Replay
        Books in units of the pair's decimals; ``checksum_checks``/``checksum_matches``; gaps of kind
        ``"checksum"`` (and ``"missing_level"`` for a removal of a level the book does not hold).

    Raises
    ------
    ReplayFormatError
        A malformed message or level, a value with more decimals than the pair's (names line and field).

    Examples
    --------
    >>> snap = [0, {"as": [["5541.30000", "2.50700000", "1"]], "bs": [["5541.20000", "1.52900000", "1"]]},
    ...         "book-10", "XBT/USD"]
    >>> upd = [0, {"a": [["5541.30000", "0.00000000", "2"], ["5541.80000", "0.33000000", "2"]],
    ...            "c": "2803497547"}, "book-10", "XBT/USD"]
    >>> r = replay_kraken([snap, upd])["XBT/USD"]
    >>> r.checksum_checks, r.checksum_matches, r.book.best_ask()
    (1, 1, (554180000, 33000000))
    """
    _check_until("until_ts_ns", until_ts_ns)
    for name, v in (("depth", depth), ("price_decimals", price_decimals), ("qty_decimals", qty_decimals)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < (1 if name == "depth" else 0)):
            raise ConfigError(f"{name} must be a {'positive' if name == 'depth' else 'non-negative'} int, got {v!r}")
    wanted = _symbol_set(symbols)
    pairs: dict[str, _Pair] = {}
    for line, ts, msg in _messages(stream):
        if until_ts_ns is not None and ts > until_ts_ns:
            break
        if isinstance(msg, list):
            if len(msg) < 4 or not isinstance(msg[-2], str) or not msg[-2].startswith("book"):
                continue
            sym = str(msg[-1])
            body = [d for d in msg[1:-2] if isinstance(d, dict)]
            if not body:
                raise ReplayFormatError(f"line {line}: {sym} book message without a level object")
            m = _DEPTH_RE.match(msg[-2])
            chan_depth = int(m[1]) if m else None
            if any("as" in d or "bs" in d for d in body):
                items = [("snapshot", sym, _v1_levels(body, (("bs", BID), ("as", ASK)), "snapshot", line, sym), None)]
            else:
                c = [d["c"] for d in body if "c" in d]
                items = [("update", sym, _v1_levels(body, (("b", BID), ("a", ASK)), "update", line, sym),
                          c[-1] if c else None)]
        elif isinstance(msg, dict) and msg.get("channel") == "book" and msg.get("type") in ("snapshot", "update"):
            chan_depth = None
            items = []
            for d in msg.get("data", ()):
                sym = str(d.get("symbol"))
                items.append((msg["type"], sym, _v2_levels(d, msg["type"], line, sym), d.get("checksum")))
        else:
            continue
        for kind, sym, levels, checksum in items:
            if wanted is not None and sym.upper() not in wanted:
                continue
            pr = pairs.get(sym)
            if pr is None:
                pr = pairs[sym] = _Pair(sym, depth or chan_depth)
            if kind == "snapshot":
                _snapshot(pr, levels, line, ts, price_decimals, qty_decimals, sink)
                continue
            t = pr.t
            if t is None:
                continue        # an update before any snapshot: nothing to apply it to
            r = t.res
            r.messages += 1
            b = t.book
            changes = [(s, *_units(b, p, q, line, sym)) for s, p, q in levels]
            for s, p, q in changes:
                if b._set(s, p, q) == 0 and q == 0:
                    r.gaps.append(L2Gap(sym, ts, line, "missing_level",
                                        detail=f"volume 0 for {'bid' if s == BID else 'ask'} {b.price(p)}, a level "
                                               f"the book does not hold"))
                    r.stale = True
            changes += _truncate(b, pr.depth)
            r.applied += 1
            r.level_updates += len(levels)
            t.emit(ts, changes)
            t.after(ts, -1)
            if checksum is not None:
                try:
                    want = int(checksum)
                except (TypeError, ValueError):
                    raise ReplayFormatError(f"line {line}: {sym} checksum must be an integer, "
                                            f"got {checksum!r}") from None
                got = kraken_checksum(b)
                r.checksum_checks += 1
                if got == want:
                    r.checksum_matches += 1
                else:
                    r.gaps.append(L2Gap(sym, ts, line, "checksum",
                                        detail=f"checksum {want} from Kraken, {got} from the rebuilt book"))
                    r.stale = True
    return finish("kraken", {s: p.t for s, p in pairs.items() if p.t is not None})


def _units(book, p, q, line, sym):
    from lob.replay.crypto import to_units

    return (to_units(p, book.tick_size, f"line {line}: {sym} price"),
            to_units(q, book.lot_size, f"line {line}: {sym} volume"))


def _truncate(book, depth):
    """Remove the levels beyond ``depth`` on each side; return them as removals."""
    out = []
    if depth is None:
        return out
    for s in (BID, ASK):
        lv = book._levels[s]
        if len(lv) > depth:
            keep = sorted(lv, reverse=(s == BID))[:depth]
            for p in set(lv) - set(keep):
                book._set(s, p, 0)
                out.append((s, p, 0))
    return out


def _snapshot(pr, levels, line, ts, price_decimals, qty_decimals, sink):
    sym = pr.symbol
    if pr.t is None:
        pd_ = price_decimals if price_decimals is not None else max((_decimals(p) for _, p, _ in levels), default=0)
        qd = qty_decimals if qty_decimals is not None else max((_decimals(q) for _, _, q in levels), default=0)
        unit_p, unit_q = Decimal(1).scaleb(-pd_), Decimal(1).scaleb(-qd)
        pr.t = _Tracker(sym, "kraken", Increments(None, None, unit_p, unit_q), "precision", sink)
    t = pr.t
    b = t.book
    lv = [(s, *_units(b, p, q, line, sym)) for s, p, q in levels]
    t.res.stale = False
    t.replace(lv, ts, -1)
    if pr.depth is None:
        pr.depth = max(len(b._levels[BID]), len(b._levels[ASK])) or None
