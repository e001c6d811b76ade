"""Pieces shared by the cryptofeed venue readers added after Binance and Coinbase (OKX, Bybit, Gemini, Kraken).

They reuse :mod:`lob.replay.crypto`'s recording reader, integer :class:`~lob.replay.crypto.L2Book`,
:class:`~lob.replay.crypto.L2Gap` and per-symbol bookkeeping; this module adds exact JSON decoding (numbers
kept as their text, so ``2.63`` never passes through a float) and the apply-with-evidence step.
"""
from __future__ import annotations

import json
import zlib
from decimal import Decimal

from lob.errors import ReplayFormatError
from lob.replay.crypto import BID, L2Gap, L2Replay, _as_unit, _http_json, _Tracker, iter_recording

__all__ = ["exact_json", "received_exact", "apply_changes", "num_text", "crc32_signed", "finish", "increments_table",
           "http_bodies"]


def exact_json(rec):
    """The record's JSON with every number as its text (``parse_float=str``; ints stay ints)."""
    try:
        return json.loads(rec.body, parse_float=str)
    except ValueError as e:
        raise ReplayFormatError(f"line {rec.line}: body is not JSON ({e}): {rec.body[:80]!r}") from None


def received_exact(stream, until_ts_ns):
    """(record, message) of the received lines of a recording, numbers exact, up to ``until_ts_ns``."""
    for rec in iter_recording(stream):
        if rec.kind != "recv":
            continue
        if until_ts_ns is not None and rec.ts_ns > until_ts_ns:
            return
        yield rec, exact_json(rec)


def num_text(v, field: str) -> str:
    """A JSON price or size (text, or an int) as plain decimal text; raises naming ``field`` otherwise."""
    if isinstance(v, bool):
        raise ReplayFormatError(f"{field} must be a decimal, got {v!r}")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        if "e" in v or "E" in v:        # 1E-8 as a JSON number (Gemini); exact through Decimal
            try:
                return format(Decimal(v), "f")
            except ArithmeticError:
                pass
        return v
    raise ReplayFormatError(f"{field} must be a decimal, got {v!r}")


def apply_changes(t: _Tracker, changes, rec, missing_evidence: bool = True) -> None:
    """Apply ``[(side, price_ticks, qty_lots)]`` to the tracker's book; a removal of a level the book does not
    hold is reported as an ``L2Gap`` of kind ``"missing_level"`` (the book missed the update that created it)."""
    r = t.res
    for s, p, q in changes:
        if t.book._set(s, p, q) == 0 and q == 0 and missing_evidence:
            r.gaps.append(L2Gap(t.book.symbol, rec.ts_ns, rec.line, "missing_level",
                                detail=f"size 0 for {'bid' if s == BID else 'ask'} {t.book.price(p)}, a level the "
                                       f"book does not hold"))
            r.stale = True
    r.applied += 1
    r.level_updates += len(changes)


def crc32_signed(text: str) -> int:
    """CRC32 (zlib's, ISO 3309) of ``text`` as a signed 32-bit integer (OKX's convention)."""
    c = zlib.crc32(text.encode("ascii"))
    return c - (1 << 32) if c >= 1 << 31 else c


def finish(venue: str, trackers: dict) -> L2Replay:
    return L2Replay(venue, {s: t.finish() for s, t in trackers.items()})


def increments_table(rows, name_key, tick_key, lot_key, what):
    """``{name: Increments}`` from instrument rows (exchange tick and lot; feed precision 1e-8)."""
    from lob.replay.crypto import _FINEST, Increments

    out = {}
    try:
        for r in rows:
            name = str(r[name_key])
            out[name] = Increments(_as_unit(num_text(_dig(r, tick_key), f"{what} {tick_key}"), f"{name} {tick_key}"),
                                   _as_unit(num_text(_dig(r, lot_key), f"{what} {lot_key}"), f"{name} {lot_key}"),
                                   _FINEST, _FINEST)
    except (KeyError, TypeError) as e:
        raise ReplayFormatError(f"{what}: missing field {e}") from None
    return out


def _dig(row, key):
    for k in key.split("."):
        row = row[k]
    return row


def http_bodies(source, what):
    """Every HTTP response body of a recording (numbers exact), or one JSON file's content as a list."""
    if str(source).endswith((".json", ".json.gz")):
        return [_http_json(source, what)]
    out = [exact_json(rec) for rec in iter_recording(source) if rec.kind == "http"]
    if not out:
        raise ReplayFormatError(f"{source}: no HTTP response ({what}) in the recording")
    return out

