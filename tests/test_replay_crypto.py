"""Crypto L2 replay (lob.replay.crypto) on the shipped cryptofeed recordings of Binance and Coinbase.

The expected figures come from the data's README (measured by whoever prepared the shared data) or are
re-derived here by an independent rebuild: plain ``json`` + ``Decimal`` dicts over the raw lines, without
lob's reader, units or book.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lob.data.crypto import CRYPTO_DIR, crypto_sample
from lob.errors import ConfigError, InvalidEventError, ReplayFormatError
from lob.replay.crypto import (L2Book, binance_symbol_filters, iter_recording, read_recording, replay_binance,
                               replay_coinbase, to_units)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cryptofeed_sample_data"
BIN = crypto_sample("binance")
CB = crypto_sample("coinbase")
BIN_SYMBOLS = ["BLZETH", "LRCBTC", "NKNUSDT", "RUNEEUR"]


def _lines(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return f.readlines()


def _recv(line):
    """(ts text, message) of a received line, or None (the independent parser: split at the first ': ')."""
    if not line[:1].isdigit():
        return None
    ts, body = line.rstrip("\n").split(": ", 1)
    return ts, json.loads(body)


def _depth_lines(lines, symbol):
    """Indices and data of the symbol's depthUpdate lines."""
    out = []
    for i, line in enumerate(lines):
        r = _recv(line)
        if r and r[1].get("data", {}).get("e") == "depthUpdate" and r[1]["data"]["s"] == symbol:
            out.append((i, r[1]["data"]))
    return out


def _binance_snapshot(symbol):
    for line in _lines(BIN["snapshots"]):
        if f"symbol={symbol}&" in line:
            return json.loads(line.split(": ", 1)[1])
    raise AssertionError(symbol)


def _rebuild_binance(symbol, lines=None):
    """Independent Binance rebuild: {"bid"/"ask": {Decimal price: Decimal qty}}, applied, bbo list."""
    snap = _binance_snapshot(symbol)
    book = {"bid": {Decimal(p): Decimal(q) for p, q in snap["bids"] if Decimal(q)},
            "ask": {Decimal(p): Decimal(q) for p, q in snap["asks"] if Decimal(q)}}
    last, applied, bbo = snap["lastUpdateId"], 0, []

    def top():
        return (max(book["bid"]) if book["bid"] else None, min(book["ask"]) if book["ask"] else None)

    bbo.append(top())
    for _, d in _depth_lines(_lines(BIN["stream"]) if lines is None else lines, symbol):
        if d["u"] <= last:
            continue
        for side, key in (("bid", "b"), ("ask", "a")):
            for p, q in d[key]:
                if Decimal(q):
                    book[side][Decimal(p)] = Decimal(q)
                else:
                    book[side].pop(Decimal(p), None)
        last, applied = d["u"], applied + 1
        bbo.append(top())
    return book, applied, bbo


def _as_decimal_levels(book: L2Book):
    return {name: {book.price(p): book.qty(q) for p, q in book.levels(name).items()} for name in ("bid", "ask")}


@pytest.fixture(scope="module")
def binance():
    return replay_binance(**BIN)


@pytest.fixture(scope="module")
def coinbase():
    return replay_coinbase(**CB)


# ----------------------------------------------------------------------------------------------- reader

def test_recording_reader_kinds_and_exact_timestamps():
    recs = read_recording(BIN["stream"])
    nonblank = [ln for ln in _lines(BIN["stream"]) if ln.strip()]
    assert len(recs) == len(nonblank)
    kinds = pd.Series([r.kind for r in recs]).value_counts().to_dict()
    assert kinds == {"recv": sum(ln[0].isdigit() for ln in nonblank), "open": 1}
    cfg = [r for r in iter_recording(BIN["exchange_info"]) if r.kind == "config"]
    assert len(cfg) == 1 and cfg[0].json()["l2_book"] == ["NKN-USDT", "BLZ-ETH", "LRC-BTC", "RUNE-EUR"]
    first = next(r for r in recs if r.kind == "recv")
    assert first.ts_ns == 1633998512063356900          # '1633998512.0633569' without float rounding
    assert first.json()["data"]["U"] == 499869750
    http = [r for r in iter_recording(BIN["snapshots"]) if r.kind == "http"]
    assert [re.search(r"symbol=(\w+)", r.url)[1] for r in http] == ["NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"]
    # gzip and plain give the same records
    if SHARED.is_dir():
        assert read_recording(SHARED / "coinbase" / "COINBASE.ws.28.0") == read_recording(CB["stream"])


def test_recording_reader_rejects_a_malformed_line():
    with pytest.raises(ReplayFormatError, match=r"line 2: .*'garbage here'"):
        read_recording(["1.5: {}\n", "garbage here\n"])
    with pytest.raises(ReplayFormatError, match="line 1: body is not JSON"):
        read_recording(["1.5: {not json\n"])[0].json()


def test_to_units_is_exact_and_names_field_and_value():
    assert to_units("0.35210000", Decimal("0.0001"), "p") == 3521
    assert to_units("3000000.12345678", Decimal("1E-8"), "q") == 300000012345678   # > int32
    with pytest.raises(ReplayFormatError, match=r"bid price '0\.35215' is not a multiple of 0\.0001"):
        to_units("0.35215", Decimal("0.0001"), "bid price")
    for bad in ("1e-5", "-1", "NaN", " 1", "", 1.5):
        with pytest.raises(ReplayFormatError, match=r"qty must be a decimal string, got"):
            to_units(bad, Decimal("0.1"), "qty")


# -------------------------------------------------------------------------------------------------- book

def test_l2book_apply_remove_and_queries():
    b = L2Book("X", "0.01", "0.001")
    assert b.best_bid() is None and b.best_ask() is None and not b.is_crossed() and b.spread_ticks() is None
    assert b.apply("buy", 100, 5) == 0
    b.apply("bid", 98, 7)
    b.apply("sell", 103, 2)
    b.apply(1, 104, np.int64(9))
    assert b.best_bid() == (100, 5) and b.best_ask() == (103, 2) and b.spread_ticks() == 3
    assert b.apply("bid", 100, 0) == 5                 # quantity 0 removes the level
    assert b.best_bid() == (98, 7) and 100 not in b.levels("bid")
    assert b.apply("ask", 50, 0) == 0                  # removing an absent level is a no-op
    assert b.depth(1) == {"bids": [(98, 7)], "asks": [(103, 2)]}
    b.apply("bid", 103, 1)
    assert b.is_crossed()                              # locked counts as crossed
    b.apply("bid", 103, 0)
    df = b.depth_frame(5)
    assert list(df["side"]) == ["bid", "ask", "ask"] and df["price_ticks"].dtype == np.int64
    assert df["price"].tolist() == [0.98, 1.03, 1.04] and df["qty"].tolist() == [0.007, 0.002, 0.009]
    assert b.price(103) == Decimal("1.03") and b.qty(9) == Decimal("0.009")
    html = b._repr_html_()
    assert "X" in html and "1.03" in html and "0.009" in html
    c = L2Book("X", "0.01", "0.001")
    c.load([(98, 7)], [(103, 2), (104, 9), (105, 0)])
    assert c == b and len(c) == 3


def test_l2book_rejects_bad_updates():
    b = L2Book("X", "0.01", "1")
    with pytest.raises(InvalidEventError, match="side must be"):
        b.apply("up", 1, 1)
    with pytest.raises(InvalidEventError, match=r"price_ticks must be a non-negative int, got 1\.5"):
        b.apply("bid", 1.5, 1)
    with pytest.raises(InvalidEventError, match="qty_lots must be a non-negative int, got -1"):
        b.apply("bid", 1, -1)
    with pytest.raises(ConfigError, match="tick_size must be a positive decimal, got '0'"):
        L2Book("X", "0", "1")


# ----------------------------------------------------------------------------------------------- Binance

def test_binance_books_never_cross_and_report_no_gap(binance):
    assert sorted(binance) == BIN_SYMBOLS
    assert binance.gaps == [] and not binance.ever_crossed
    for r in binance.values():
        assert r.synced_first and not r.stale and r.crossed_ts_ns == []
        assert not r.bbo.empty and (r.bbo["bid_ticks"] < r.bbo["ask_ticks"]).all()


def test_binance_matches_the_facts_of_the_data_readme(binance):
    # README: depth diffs 150/15/10/2 and bookTickers 74/9/1 (runeeur: none); NKNUSDT has 149 diffs applied;
    # the first diff kept brackets the snapshot
    diffs = {"NKNUSDT": 150, "LRCBTC": 15, "BLZETH": 10, "RUNEEUR": 2}
    tickers = {"NKNUSDT": 74, "LRCBTC": 9, "BLZETH": 1, "RUNEEUR": 0}
    for sym, r in binance.items():
        assert r.messages == diffs[sym] + 1              # + the snapshot
        assert r.applied + r.dropped == diffs[sym]
        assert r.other.get("bookTicker", 0) == tickers[sym]
        first, final = r.first_applied
        assert first <= r.snapshot_id + 1 <= final
    assert binance["NKNUSDT"].applied == 149


def test_binance_tick_and_lot_from_exchange_info():
    f = binance_symbol_filters(BIN["exchange_info"])
    # README: tickSize / stepSize
    expected = {"NKNUSDT": ("0.0001", "1"), "BLZETH": ("0.00000001", "1"), "LRCBTC": ("0.00000001", "1"),
                "RUNEEUR": ("0.001", "0.1")}
    assert sorted(f) == BIN_SYMBOLS
    for sym, (tick, step) in expected.items():
        assert (f[sym].tick_size, f[sym].lot_size) == (Decimal(tick), Decimal(step))
        assert f[sym].price_unit == f[sym].qty_unit == Decimal("1E-8")


def test_binance_book_equals_an_independent_rebuild(binance):
    for sym in BIN_SYMBOLS:
        book, applied, bbo = _rebuild_binance(sym)
        r = binance[sym]
        assert _as_decimal_levels(r.book) == book
        assert r.applied == applied
        tick = r.book.tick_size
        got = [(Decimal(int(b)) * tick if b >= 0 else None, Decimal(int(a)) * tick if a >= 0 else None)
               for b, a in zip(r.bbo["bid_ticks"], r.bbo["ask_ticks"])]
        assert got == bbo


def test_binance_missing_diff_is_reported_as_a_gap_naming_the_ids(binance):
    lines = _lines(BIN["stream"])
    nkn = _depth_lines(lines, "NKNUSDT")
    snap_id = binance["NKNUSDT"].snapshot_id
    kept = [(i, d) for i, d in nkn if d["u"] > snap_id]
    k = len(kept) // 2
    (_, prev), (gone_line, gone), (_, nxt) = kept[k - 1], kept[k], kept[k + 1]
    r = replay_binance(lines[:gone_line] + lines[gone_line + 1:], BIN["snapshots"], BIN["exchange_info"],
                       symbols=["NKNUSDT"])["NKNUSDT"]
    assert len(r.gaps) == 1
    g = r.gaps[0]
    assert (g.kind, g.expected_id, g.first_id, g.final_id) == ("sequence", prev["u"] + 1, nxt["U"], nxt["u"])
    assert g.missing == (gone["U"], gone["u"])
    assert str(nxt["U"]) in g.detail and str(prev["u"]) in g.detail
    assert r.stale and r.applied == binance["NKNUSDT"].applied - 1


def test_binance_first_diff_not_bracketing_the_snapshot_is_a_sync_gap(binance):
    lines = _lines(BIN["stream"])
    snap_id = binance["NKNUSDT"].snapshot_id
    kept = [(i, d) for i, d in _depth_lines(lines, "NKNUSDT") if d["u"] > snap_id]
    first_line = kept[0][0]
    r = replay_binance(lines[:first_line] + lines[first_line + 1:], BIN["snapshots"], BIN["exchange_info"],
                       symbols="NKNUSDT")["NKNUSDT"]
    assert [(g.kind, g.expected_id, g.first_id) for g in r.gaps] == [("sync", snap_id + 1, kept[1][1]["U"])]
    assert r.synced_first is False


def test_binance_duplicated_message_is_dropped_not_applied(binance):
    lines = _lines(BIN["stream"])
    i, _ = _depth_lines(lines, "NKNUSDT")[40]
    r = replay_binance(lines[:i + 1] + [lines[i]] + lines[i + 1:], BIN["snapshots"], BIN["exchange_info"],
                       symbols=["NKNUSDT"])["NKNUSDT"]
    base = binance["NKNUSDT"]
    assert r.gaps == [] and r.applied == base.applied and r.dropped == base.dropped + 1
    assert r.book == base.book
    # an old message replayed at the end is dropped as well
    r2 = replay_binance(lines + [lines[i]], BIN["snapshots"], BIN["exchange_info"], symbols=["NKNUSDT"])
    assert r2["NKNUSDT"].dropped == base.dropped + 1 and r2["NKNUSDT"].book == base.book


def test_binance_zero_quantity_removes_the_level_and_state_at_an_update_id(binance):
    # a diff in the recording that sets quantity 0 on a price the book holds just before it
    lines = _lines(BIN["stream"])
    base = binance["NKNUSDT"]
    for _, d in _depth_lines(lines, "NKNUSDT"):
        if d["u"] <= base.snapshot_id:
            continue
        zero = [p for p, q in d["a"] if Decimal(q) == 0]
        if not zero:
            continue
        before = replay_binance(**BIN, symbols=["NKNUSDT"], until_update_id=d["U"] - 1)["NKNUSDT"]
        ticks = to_units(zero[0], before.book.tick_size, "p")
        if ticks in before.book.levels("ask"):
            break
    else:
        pytest.fail("no diff deletes an ask level the book holds")
    assert before.last_update_id == d["U"] - 1
    after = replay_binance(**BIN, symbols=["NKNUSDT"], until_update_id=d["u"])["NKNUSDT"]
    assert ticks not in after.book.levels("ask") and after.last_update_id == d["u"]
    # the state at an update id is the independent rebuild truncated there
    cut = [ln for ln in lines if not (_recv(ln) and _recv(ln)[1].get("data", {}).get("u", 0) > d["u"])]
    assert _as_decimal_levels(after.book) == _rebuild_binance("NKNUSDT", cut)[0]


def test_binance_state_at_a_time():
    lines = _lines(BIN["stream"])
    nkn = _depth_lines(lines, "NKNUSDT")
    ts_text = _recv(lines[nkn[60][0]])[0]
    ts_ns = int(Decimal(ts_text) * 10**9)
    r = replay_binance(**BIN, symbols=["NKNUSDT"], until_ts_ns=ts_ns)["NKNUSDT"]
    assert r.last_update_id == nkn[60][1]["u"]
    assert r.bbo["ts_ns"].iloc[-1] == ts_ns


def test_binance_price_off_the_grid_raises_naming_field_and_value():
    lines = _lines(BIN["stream"])
    i, d = _depth_lines(lines, "BLZETH")[-1]
    price = d["b"][0][0] if d["b"] else d["a"][0][0]
    bad = lines[i].replace(f'"{price}"', f'"{price}5"', 1)          # one more decimal: off the 1e-8 grid
    msg = rf"BLZETH depthUpdate [ab] price '{re.escape(price)}5' is not a multiple"
    with pytest.raises(ReplayFormatError, match=msg):
        replay_binance(lines[:i] + [bad] + lines[i + 1:], BIN["snapshots"], BIN["exchange_info"])
    # on the exchange grid, the real NKNUSDT snapshot holds levels off the 0.0001 tick / step 1
    with pytest.raises(ReplayFormatError, match=r"NKNUSDT snapshot bids (price|qty) '[0-9.]+' is not a multiple"):
        replay_binance(**BIN, grid="exchange")


def test_binance_exchange_grid_gives_the_same_books_where_the_data_is_on_it(binance):
    r = replay_binance(**BIN, symbols=["BLZETH", "LRCBTC", "RUNEEUR"], grid="exchange")
    for sym, res in r.items():
        assert res.book.tick_size == res.increments.tick_size
        assert _as_decimal_levels(res.book) == _as_decimal_levels(binance[sym].book)
        assert res.off_tick_levels == 0 and res.gaps == []
    # README of the data: the deep NKNUSDT bids off the 0.0001 tick are still in the final book
    assert binance["NKNUSDT"].off_tick_levels == sum(
        1 for p in _as_decimal_levels(binance["NKNUSDT"].book)["bid"] if p % Decimal("0.0001"))
    assert binance["NKNUSDT"].off_tick_levels > 0


def test_binance_config_errors():
    with pytest.raises(ConfigError, match="grid must be one of"):
        replay_binance(**BIN, grid="fine")
    with pytest.raises(ConfigError, match=r"symbols \['ETHBTC'\] have no depth snapshot"):
        replay_binance(**BIN, symbols=["ETHBTC"])
    with pytest.raises(ConfigError, match="until_update_id must be an int or None, got '5'"):
        replay_binance(**BIN, until_update_id="5")


def test_results_render_in_notebooks(binance, coinbase):
    assert "NKNUSDT" in binance._repr_html_() and "SKL-USD" in coinbase._repr_html_()
    assert "<table" in binance["NKNUSDT"]._repr_html_()
    s = binance.summary()
    assert list(s["symbol"]) == BIN_SYMBOLS and (s["gaps"] == 0).all()


def test_shared_originals_cross_check(binance):
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: the cross-check against the shared originals needs ../shared")
    readme = (CRYPTO_DIR / "README.md").read_text()
    for rel in ("binance/BINANCE.http.0.0", "binance/BINANCE.ws.1.0", "coinbase/COINBASE.0"):
        assert (CRYPTO_DIR / rel).read_bytes() == (SHARED / rel).read_bytes()
    raw = (SHARED / "coinbase" / "COINBASE.ws.28.0").read_bytes()
    assert gzip.decompress(CB["stream"].read_bytes()) == raw
    assert hashlib.sha256(raw).hexdigest() in readme
    # the trimmed exchangeInfo gives the same increments as the original, and the same replay
    full = binance_symbol_filters(SHARED / "binance" / "BINANCE.0")
    trimmed = binance_symbol_filters(BIN["exchange_info"])
    assert {s: full[s] for s in trimmed} == trimmed
    again = replay_binance(SHARED / "binance" / "BINANCE.ws.1.0", SHARED / "binance" / "BINANCE.http.0.0",
                           SHARED / "binance" / "BINANCE.0")
    assert again.summary().equals(binance.summary())
    # the facts measured here are the ones the shared README states
    shared_readme = (SHARED / "README.md").read_text()
    assert f"NKNUSDT has {binance['NKNUSDT'].applied} diffs applied" in shared_readme


# ---------------------------------------------------------------------------------------------- Coinbase

def _rebuild_coinbase():
    """Independent Coinbase rebuild: {product: {"buy"/"sell": {Decimal: Decimal}}}, ticker agreement."""
    books, agree, checks, updates = {}, 0, 0, 0
    for line in _lines(CB["stream"]):
        r = _recv(line)
        if not r:
            continue
        m = r[1]
        if m.get("type") == "snapshot":
            books[m["product_id"]] = {"buy": {Decimal(p): Decimal(q) for p, q in m["bids"] if Decimal(q)},
                                      "sell": {Decimal(p): Decimal(q) for p, q in m["asks"] if Decimal(q)}}
        elif m.get("type") == "l2update" and m["product_id"] in books:
            updates += 1
            for side, p, q in m["changes"]:
                if Decimal(q):
                    books[m["product_id"]][side][Decimal(p)] = Decimal(q)
                else:
                    books[m["product_id"]][side].pop(Decimal(p), None)
        elif m.get("type") == "ticker" and m["product_id"] in books:
            b = books[m["product_id"]]
            checks += 1
            agree += (Decimal(m["best_bid"]), Decimal(m["best_ask"])) == (max(b["buy"]), min(b["sell"]))
    return books, checks, agree, updates


def test_coinbase_books_never_cross_and_report_no_gap(coinbase):
    assert len(coinbase) == 10 and coinbase.gaps == [] and not coinbase.ever_crossed
    for r in coinbase.values():
        assert not r.stale and (r.bbo["bid_ticks"] < r.bbo["ask_ticks"]).all()
        assert len(r.bbo) == r.applied + 1               # the snapshot, then one row per l2update


def test_coinbase_matches_the_readme_and_an_independent_rebuild(coinbase):
    books, checks, agree, updates = _rebuild_coinbase()
    # README: 10 snapshots, 9,719 l2updates, 107 tickers of which 100 agree with the rebuilt top of book
    assert sorted(coinbase) == sorted(books) and len(books) == 10
    assert sum(r.applied for r in coinbase.values()) == updates == 9719
    assert sum(r.dropped for r in coinbase.values()) == 0
    assert sum(r.ticker_checks for r in coinbase.values()) == checks == 107
    assert sum(r.ticker_matches for r in coinbase.values()) == agree == 100
    for sym, r in coinbase.items():
        lv = _as_decimal_levels(r.book)
        assert {"buy": lv["bid"], "sell": lv["ask"]} == books[sym]
    # sizes in lots of 1e-8 exceed int32: the book holds them exactly as Python ints
    biggest = max(max(r.book.levels(s).values()) for r in coinbase.values() for s in ("bid", "ask"))
    assert biggest > np.iinfo(np.int32).max


def test_coinbase_exchange_grid_uses_product_increments(coinbase):
    r = replay_coinbase(**CB, symbols=["SKL-USD", "DASH-BTC"], grid="exchange")
    # README: SKL-USD 0.0001 / 0.1, DASH-BTC 0.00000001 / 0.001
    assert (r["SKL-USD"].book.tick_size, r["SKL-USD"].book.lot_size) == (Decimal("0.0001"), Decimal("0.1"))
    assert (r["DASH-BTC"].book.tick_size, r["DASH-BTC"].book.lot_size) == (Decimal("0.00000001"),
                                                                           Decimal("0.001"))
    for sym in r:
        assert _as_decimal_levels(r[sym].book) == _as_decimal_levels(coinbase[sym].book)
        assert r[sym].bbo[["bid", "ask"]].equals(coinbase[sym].bbo[["bid", "ask"]])
    with pytest.raises(ConfigError, match="grid='exchange' needs the tick and lot of 'SKL-USD'"):
        replay_coinbase(CB["stream"], symbols=["SKL-USD"], grid="exchange")


def test_coinbase_update_before_snapshot_is_dropped_and_lost_update_seen_on_delete():
    lines = _lines(CB["stream"])
    # the first l2update of SKL-USD moved before its snapshot cannot be applied
    snap = next(i for i, ln in enumerate(lines) if '"snapshot","product_id":"SKL-USD"' in ln)
    upd = next(i for i, ln in enumerate(lines) if i > snap and '"l2update","product_id":"SKL-USD"' in ln)
    moved = lines[:snap] + [lines[upd]] + lines[snap:upd] + lines[upd + 1:]
    r = replay_coinbase(moved, CB["products"], symbols=["SKL-USD"])["SKL-USD"]
    assert r.dropped == 1 and r.messages == 2593
    # an update that creates a level, later deleted: without it, the deletion reveals the lost update
    seen, created = set(), {}
    for i, ln in enumerate(lines):
        m = _recv(ln)
        if not m or m[1].get("product_id") != "SKL-USD":
            continue
        m = m[1]
        if m["type"] == "snapshot":
            seen |= {("buy", Decimal(p)) for p, _ in m["bids"]} | {("sell", Decimal(p)) for p, _ in m["asks"]}
        elif m["type"] == "l2update":
            (side, p, q), = m["changes"]
            key = (side, Decimal(p))
            if Decimal(q) and key not in seen:
                created.setdefault(key, i)
            elif not Decimal(q) and key in created:
                break
            seen.add(key)
    else:
        pytest.fail("no level of SKL-USD is created and then deleted")
    drop = created[key]
    r = replay_coinbase(lines[:drop] + lines[drop + 1:], CB["products"], symbols=["SKL-USD"])["SKL-USD"]
    assert [g.kind for g in r.gaps] == ["missing_level"] and r.gaps[0].line == i   # 1-based: one line removed
    assert f"{key[0]} {key[1].normalize():f}" in r.gaps[0].detail


def test_coinbase_price_off_the_grid_raises_naming_field_and_value():
    lines = _lines(CB["stream"])
    i = next(i for i, ln in enumerate(lines) if '"l2update","product_id":"SKL-USD"' in ln)
    side, p, q = _recv(lines[i])[1]["changes"][0]
    bad = lines[i].replace(f'"{p}"', f'"{p}05"', 1)
    msg = rf"SKL-USD l2update {side} price '{re.escape(p)}05' is not a multiple of 0\.0001"
    with pytest.raises(ReplayFormatError, match=msg):
        replay_coinbase(lines[:i] + [bad] + lines[i + 1:], CB["products"], grid="exchange")


def test_malformed_levels_raise_a_format_error():
    lines = ['1.0: {"type":"snapshot","product_id":"X","bids":[["1.0"]],"asks":[]}\n']
    with pytest.raises(ReplayFormatError, match=r"line 1: X snapshot bids must be \[\[price, qty\], \.\.\.\]"):
        replay_coinbase(lines)
    lines = ['1.0: {"type":"snapshot","product_id":"X","bids":[["1.0","2"]],"asks":[]}\n',
             '2.0: {"type":"l2update","product_id":"X","changes":[["hold","1.0","2"]]}\n']
    with pytest.raises(ReplayFormatError, match=r"line 2: X l2update change must be \[buy\|sell, price, size\]"):
        replay_coinbase(lines)
