"""OKX, Bybit, Gemini (shipped cryptofeed recordings) and Kraken (constructed messages) L2 readers.

Each venue is checked as the Binance/Coinbase readers are: the book never crosses, gaps are reported, and
checksums are verified where the venue publishes them. Expected figures are re-derived here by an
independent rebuild (plain json + Decimal dicts over the raw lines, without lob's reader, units or book).
"""
from __future__ import annotations

import gzip
import json
import zlib
from decimal import Decimal
from pathlib import Path

import pytest

from lob.data.crypto import crypto_sample
from lob.errors import ConfigError, ReplayFormatError
from lob.replay.bybit import replay_bybit
from lob.replay.gemini import replay_gemini
from lob.replay.kraken import kraken_checksum, replay_kraken
from lob.replay.okx import okx_checksum, replay_okx

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cryptofeed_sample_data"


def _messages(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line[:1].isdigit():
                ts, _, body = line.partition(": ")
                yield json.loads(body)


def _fmt(d: Decimal) -> str:
    return format(d.normalize(), "f")


# ---------------------------------------------------------------------------------------------------- OKX

def _okx_independent(path):
    """(checksums matched, checksums seen, crossed) from a Decimal dict rebuild following OKX's docs."""
    books, ok, seen, crossed = {}, 0, 0, False
    for m in _messages(path):
        if not isinstance(m, dict) or m.get("arg", {}).get("channel") != "books" or "data" not in m:
            continue
        sym = m["arg"]["instId"]
        for d in m["data"]:
            if m["action"] == "snapshot":
                books[sym] = ({}, {})
            b = books[sym]
            for side, key in ((0, "bids"), (1, "asks")):
                for p, q, *_ in d[key]:
                    if Decimal(q) == 0:
                        b[side].pop(Decimal(p), None)
                    else:
                        b[side][Decimal(p)] = Decimal(q)
            bids = sorted(b[0].items(), reverse=True)[:25]
            asks = sorted(b[1].items())[:25]
            if b[0] and b[1] and max(b[0]) >= min(b[1]):
                crossed = True
            parts = []
            for i in range(max(len(bids), len(asks))):
                for side in (bids, asks):
                    if i < len(side):
                        parts.append(f"{_fmt(side[i][0])}:{_fmt(side[i][1])}")
            c = zlib.crc32(":".join(parts).encode())
            c = c - (1 << 32) if c >= 1 << 31 else c
            if "checksum" in d:
                seen += 1
                ok += c == d["checksum"]
    return ok, seen, crossed


def test_okx_every_checksum_matches():
    r = replay_okx(**crypto_sample("okx"))
    s = r.summary()
    assert int(s["checksum_checks"].sum()) == 290
    assert int(s["checksum_matches"].sum()) == 290
    assert r.gaps == [] and not r.ever_crossed
    assert sorted(r) == ["BTC-USD-220527", "BTC-USDT", "UNI-USD-SWAP"]
    assert _okx_independent(crypto_sample("okx")["stream"]) == (290, 290, False)


def test_okx_exchange_grid_and_books():
    r = replay_okx(**crypto_sample("okx"), grid="exchange")
    assert int(r.summary()["checksum_matches"].sum()) == 290
    assert r["BTC-USDT"].book.tick_size == Decimal("0.1")
    assert all(x.off_tick_levels == 0 for x in r.values())
    assert okx_checksum(r["BTC-USDT"].book) == okx_checksum(replay_okx(**crypto_sample("okx"))["BTC-USDT"].book)


def test_okx_corrupted_level_is_a_checksum_gap():
    lines = gzip.open(crypto_sample("okx")["stream"], "rt").read().splitlines()
    i = next(k for k, ln in enumerate(lines) if '"action":"update"' in ln and "BTC-USDT" in ln)
    m = json.loads(lines[i].partition(": ")[2])
    m["data"][0]["bids"][0][1] = str(Decimal(m["data"][0]["bids"][0][1]) + 1)    # a size the venue did not send
    lines[i] = lines[i].partition(": ")[0] + ": " + json.dumps(m, separators=(",", ":"))
    r = replay_okx(lines)
    g = [x for x in r.gaps if x.kind == "checksum"]
    assert g and g[0].symbol == "BTC-USDT" and g[0].line == i + 1
    assert r["BTC-USDT"].stale
    assert r["BTC-USDT"].checksum_matches < r["BTC-USDT"].checksum_checks


def test_okx_bad_input_names_the_line():
    bad = ['1.5: {"arg":{"channel":"books","instId":"X"},"action":"snapshot","data":[{"bids":[["1.x","1","0","1"]],'
           '"asks":[],"checksum":0}]}']
    with pytest.raises(ReplayFormatError, match="line 1"):
        replay_okx(bad)
    bad = ['1.5: {"arg":{"channel":"books","instId":"X"},"action":"replace","data":[{"bids":[],"asks":[]}]}']
    with pytest.raises(ReplayFormatError, match="action"):
        replay_okx(bad)
    with pytest.raises(ConfigError, match="grid"):
        replay_okx(crypto_sample("okx")["stream"], grid="ticks")


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/cryptofeed_sample_data is absent (a fresh clone)")
def test_okx_shipped_copy_equals_shared_original():
    assert gzip.open(crypto_sample("okx")["stream"]).read() == (SHARED / "okx" / "OKX.ws.1.0").read_bytes()
    r = replay_okx(SHARED / "okx" / "OKX.ws.1.0", SHARED / "okx" / "OKX.0.gz", grid="exchange")
    assert int(r.summary()["checksum_matches"].sum()) == 290


# --------------------------------------------------------------------------------------------------- Bybit

def _bybit_independent(path):
    books, crossed, evidence = {}, False, 0
    for m in _messages(path):
        if not isinstance(m, dict) or not str(m.get("topic", "")).startswith("orderBookL2"):
            continue
        sym = m["topic"].split(".")[1]
        if m["type"] == "snapshot":
            rows = m["data"]["order_book"] if isinstance(m["data"], dict) else m["data"]
            books[sym] = {str(r["id"]): (r["side"], Decimal(str(r["price"])), Decimal(str(r["size"]))) for r in rows}
            continue
        b = books[sym]
        for r in m["data"]["delete"]:
            evidence += b.pop(str(r["id"]), None) is None
        for r in m["data"]["update"] + m["data"]["insert"]:
            b[str(r["id"])] = (r["side"], Decimal(str(r["price"])), Decimal(str(r["size"])))
        bids = [p for s, p, _ in b.values() if s == "Buy"]
        asks = [p for s, p, _ in b.values() if s == "Sell"]
        crossed |= bool(bids and asks and max(bids) >= min(asks))
    return books, crossed, evidence


@pytest.mark.parametrize("sample", ["bybit", "bybit_usdt"])
def test_bybit_books_match_independent_rebuild(sample):
    files = crypto_sample(sample)
    r = replay_bybit(**files)
    books, crossed, evidence = _bybit_independent(files["stream"])
    assert not r.ever_crossed and not crossed and evidence == 0 and r.gaps == []
    assert sorted(r) == sorted(books)
    for sym, res in r.items():
        b = res.book
        got = {(s, b.price(p), b.qty(q)) for s, side in ((0, "Buy"), (1, "Sell"))
               for p, q in b.levels(s).items()}
        want = {(0 if s == "Buy" else 1, p, q) for s, p, q in books[sym].values()}
        assert got == want
        assert len(b.levels("bid")) <= 25 and len(b.levels("ask")) <= 25
        assert res.off_tick_levels == 0


def test_bybit_gaps_are_reported():
    lines = gzip.open(crypto_sample("bybit")["stream"], "rt").read().splitlines()
    i = next(k for k, ln in enumerate(lines) if '"type":"delta"' in ln and '"update":[{' in ln)
    r = replay_bybit(lines[:i] + lines[i + 1:] + [lines[i]])      # a delta arrives last: cross_seq goes back
    kinds = {g.kind for g in r.gaps}
    assert "sequence" in kinds
    # a delete of an id that was never inserted
    j = next(k for k, ln in enumerate(lines) if '"type":"delta"' in ln and '"delete":[{' in ln)
    m = json.loads(lines[j].partition(": ")[2])
    m["data"]["delete"][0]["id"] = 1
    lines[j] = lines[j].partition(": ")[0] + ": " + json.dumps(m)
    r = replay_bybit(lines)
    assert any(g.kind == "missing_level" and g.line == j + 1 for g in r.gaps)
    # a delete naming a held id at another price
    lines = gzip.open(crypto_sample("bybit")["stream"], "rt").read().splitlines()
    m = json.loads(lines[j].partition(": ")[2])
    m["data"]["delete"][0]["price"] = str(Decimal(m["data"]["delete"][0]["price"]) + 1000)
    lines[j] = lines[j].partition(": ")[0] + ": " + json.dumps(m)
    g = [g for g in replay_bybit(lines).gaps if g.line == j + 1]
    assert g and "which the book holds at" in g[0].detail


# -------------------------------------------------------------------------------------------------- Gemini

def test_gemini_books_and_gap_evidence_match_independent_rebuild():
    files = crypto_sample("gemini")
    r = replay_gemini(**files)
    books, evidence, crossed = {}, 0, False
    for m in _messages(files["stream"]):
        if m.get("type") != "l2_updates":
            continue
        first = m["symbol"] not in books
        b = books.setdefault(m["symbol"], ({}, {}))
        for side, p, q in m["changes"]:
            d = b[0 if side == "buy" else 1]
            if Decimal(q) == 0:
                evidence += (d.pop(Decimal(p), None) is None) and not first
            else:
                d[Decimal(p)] = Decimal(q)
        crossed |= bool(b[0] and b[1] and max(b[0]) >= min(b[1]))
    assert not crossed and not r.ever_crossed
    assert len(r.gaps) == evidence == 34
    assert all(g.kind == "missing_level" for g in r.gaps)
    for sym, res in r.items():
        bk = res.book
        assert {bk.price(p): bk.qty(q) for p, q in bk.levels("bid").items()} == books[sym][0]
        assert {bk.price(p): bk.qty(q) for p, q in bk.levels("ask").items()} == books[sym][1]
    assert all(x.off_tick_levels == 0 for x in replay_gemini(**files, grid="exchange").values())


# -------------------------------------------------------------------------------------------------- Kraken

def _kraken_text_checksum(asks, bids):
    """Kraken's documented algorithm on the text as sent: remove '.', strip leading zeros, asks then bids."""
    f = lambda s: s.replace(".", "").lstrip("0")     # noqa: E731
    return zlib.crc32("".join(f(p) + f(q) for p, q in asks[:10] + bids[:10]).encode())


def _kraken_session():
    asks = [[f"{5541.3 + i * 0.1:.5f}", f"{1 + i * 0.125:.8f}", "1.0"] for i in range(12)]
    bids = [[f"{5541.2 - i * 0.1:.5f}", f"{0.5 + i * 0.25:.8f}", "1.0"] for i in range(12)]
    msgs = [{"event": "subscriptionStatus", "status": "subscribed"},
            [336, {"as": [a[:] for a in asks], "bs": [b[:] for b in bids]}, "book-12", "XBT/USD"]]
    book_a = {a[0]: a[1] for a in asks}
    book_b = {b[0]: b[1] for b in bids}
    updates = [({"a": [["5541.30000", "0.00000000", "2.0"], ["5541.25000", "0.04000000", "2.0"]]}, None),
               (None, {"b": [["5541.21000", "3.00000000", "3.0", "r"]]}),
               ({"a": [["5542.40000", "7.50000000", "4.0"]]}, {"b": [["5540.20000", "0.00000000", "4.0"]]})]
    for a, b in updates:
        for p, q, *_ in (a or {}).get("a", []):
            book_a.pop(p, None) if float(q) == 0 else book_a.__setitem__(p, q)
        for p, q, *_ in (b or {}).get("b", []):
            book_b.pop(p, None) if float(q) == 0 else book_b.__setitem__(p, q)
        # truncate to the subscribed depth (12), as the docs prescribe
        sa = sorted(book_a.items(), key=lambda kv: Decimal(kv[0]))[:12]
        sb = sorted(book_b.items(), key=lambda kv: -Decimal(kv[0]))[:12]
        book_a, book_b = dict(sa), dict(sb)
        c = str(_kraken_text_checksum(sa, sb))
        parts = [x for x in (a, b) if x is not None]
        parts[-1] = dict(parts[-1], c=c)
        msgs.append([336, *parts, "book-12", "XBT/USD"])
    return msgs, book_a, book_b


def test_kraken_checksums_verified_on_constructed_messages():
    msgs, book_a, book_b = _kraken_session()
    r = replay_kraken(msgs)["XBT/USD"]
    assert (r.checksum_checks, r.checksum_matches) == (3, 3)
    assert r.gaps == [] and not r.ever_crossed
    b = r.book
    assert {format(b.price(p), "f"): format(b.qty(q), "f") for p, q in b.levels("ask").items()} == book_a
    assert {format(b.price(p), "f"): format(b.qty(q), "f") for p, q in b.levels("bid").items()} == book_b
    assert len(b.levels("ask")) == 12      # truncated to the subscribed depth after the insert


def test_kraken_wrong_checksum_is_detected():
    msgs, _, _ = _kraken_session()
    msgs[3][-3]["c"] = str((int(msgs[3][-3]["c"]) + 1) % (1 << 32))
    r = replay_kraken(msgs)["XBT/USD"]
    assert (r.checksum_checks, r.checksum_matches) == (3, 2)
    assert [g.kind for g in r.gaps] == ["checksum"] and r.gaps[0].line == 4 and r.stale
    # a lost update is caught by the next checksum
    msgs, _, _ = _kraken_session()
    r = replay_kraken(msgs[:2] + msgs[3:])["XBT/USD"]
    assert r.checksum_matches < r.checksum_checks and any(g.kind == "checksum" for g in r.gaps)


def test_kraken_v2_and_recording_lines():
    snap = {"channel": "book", "type": "snapshot", "data": [{"symbol": "BTC/USD", "bids": [
        {"price": 45283.5, "qty": 0.1}, {"price": 45283.4, "qty": 1.2}], "asks": [{"price": 45285.2, "qty": 0.001}]}]}
    want = _kraken_text_checksum([("45285.2", "0.00100000"), ("45286.0", "2.00000000")],
                                 [("45283.5", "0.10000000"), ("45283.4", "1.20000000")])
    upd = {"channel": "book", "type": "update", "data": [{"symbol": "BTC/USD", "bids": [],
                                                          "asks": [{"price": 45286.0, "qty": 2}], "checksum": want}]}
    lines = [f"1700000000.5: {json.dumps(snap)}", f"1700000000.6: {json.dumps(upd)}"]
    r = replay_kraken(lines, price_decimals=1, qty_decimals=8)["BTC/USD"]
    assert (r.checksum_checks, r.checksum_matches) == (1, 1)
    assert kraken_checksum(r.book) == want


def test_kraken_bad_input():
    with pytest.raises(ReplayFormatError, match="level"):
        replay_kraken([[1, {"as": [["1.0"]], "bs": []}, "book-10", "X/Y"]])
    with pytest.raises(ReplayFormatError, match="checksum"):
        replay_kraken([[1, {"as": [["1.0", "1.0", "1"]], "bs": []}, "book-10", "X/Y"],
                       [1, {"a": [["1.0", "2.0", "1"]], "c": "abc"}, "book-10", "X/Y"]])
    with pytest.raises(ConfigError, match="depth"):
        replay_kraken([], depth=0)


def test_kraken_documented_level_formatting():
    """The docs' example: price "0.05000" with volume "0.00000304" contributes "5000304"."""
    from lob.replay.crypto import L2Book

    b = L2Book("X/Y", "0.00001", "0.00000001")
    b.apply("ask", 5000, 304)
    assert kraken_checksum(b) == zlib.crc32(b"5000304")


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/cryptofeed_sample_data is absent (a fresh clone)")
def test_bybit_and_gemini_copies_and_the_whole_usdt_recording():
    assert gzip.open(crypto_sample("bybit")["stream"]).read() == (SHARED / "bybit" / "BYBIT.ws.26.0").read_bytes()
    assert gzip.open(crypto_sample("gemini")["stream"]).read() == (SHARED / "gemini" / "GEMINI.ws.1.0").read_bytes()
    whole = gzip.open(SHARED / "bybit" / "BYBIT.ws.25.0.gz").read().splitlines(keepends=True)
    assert gzip.open(crypto_sample("bybit_usdt")["stream"]).read() == b"".join(whole[:800])
    r = replay_bybit(SHARED / "bybit" / "BYBIT.ws.25.0.gz", SHARED / "bybit" / "BYBIT.0")
    assert len(r) == 8 and r.gaps == [] and not r.ever_crossed
    assert int(r.summary()["applied"].sum()) == 3_252           # every delta of the 8 topics applied
