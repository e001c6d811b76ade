"""Tardis.dev CSV (incremental_book_L2 with is_snapshot resets, book_snapshot_N, trades; gzip), on small files
written here in the format of docs.tardis.dev "Downloadable CSV files: data types"."""
from __future__ import annotations

import gzip
from decimal import Decimal

import numpy as np
import pytest

from lob.data import DATA_DIR
from lob.errors import ConfigError, ReplayFormatError
from lob.replay import read
from lob.replay.tardis import iter_tardis, replay_tardis, tardis_kind

T = DATA_DIR / "tardis"
HEAD = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"


def _write(path, text):
    with gzip.open(path, "wt") as f:
        f.write(text)
    return path


def test_kinds_from_headers():
    assert tardis_kind(T / "incremental_book_L2_sample.csv.gz") == ("incremental_book_L2", 0)
    assert tardis_kind(T / "book_snapshot_3_sample.csv.gz") == ("book_snapshot", 3)
    assert tardis_kind(T / "trades_sample.csv.gz") == ("trades", 0)


def test_incremental_snapshot_reset_and_gap():
    r = replay_tardis(T / "incremental_book_L2_sample.csv.gz")
    x = r["BTCUSDT"]
    b = x.book
    # the second snapshot (rows 9-10, after updates) discarded the first book
    assert {b.price(p): b.qty(q) for p, q in b.levels("bid").items()} == {Decimal("6434.4"): Decimal("1.1"),
                                                                         Decimal("6434.3"): Decimal("0.25")}
    assert {b.price(p): b.qty(q) for p, q in b.levels("ask").items()} == {Decimal("6434.5"): Decimal("0.7")}
    assert [(g.kind, g.line) for g in r.gaps] == [("missing_level", 8)]
    assert not r.ever_crossed
    # messages are grouped by local_timestamp: 2 snapshots + 4 updates
    assert (x.messages, x.applied) == (6, 4)


def test_reset_only_after_a_non_snapshot_row_per_symbol(tmp_path):
    rows = ["x,A,1,1,true,bid,10,1", "x,B,1,1,true,bid,20,1", "x,A,1,1,true,ask,11,1",     # A's snapshot spans B's
            "x,A,2,2,false,bid,10,0", "x,A,3,3,true,bid,9,5"]
    r = replay_tardis(_write(tmp_path / "i.csv.gz", HEAD + "\n".join(rows) + "\n"), tick_size="1", lot_size="1")
    a = r["A"].book
    assert a.levels("bid") == {9: 5} and a.levels("ask") == {}     # row 5 restarted A's book
    assert r["B"].book.levels("bid") == {20: 1}


def test_updates_before_a_snapshot_are_dropped(tmp_path):
    p = _write(tmp_path / "i.csv.gz", HEAD + "x,A,1,1,false,bid,10,1\nx,A,2,2,true,bid,10,2\n")
    r = replay_tardis(p, tick_size="1", lot_size="1")
    assert r["A"].dropped == 1 and r["A"].book.levels("bid") == {10: 2}


def test_book_snapshot_rows_replace_the_book():
    s = read(T / "book_snapshot_3_sample.csv.gz", chunk_rows=3)
    assert (s.format, s.kind) == ("tardis-snapshot", "l2")
    chunks = list(s)
    assert all(len(c) == 3 for c in chunks[:-1])
    rows = np.concatenate(chunks)
    assert int((rows["flags"] & 1).sum()) == 2            # one CLEAR per snapshot row
    b = s.books()["BTC-PERPETUAL"]
    assert b == s.result["BTC-PERPETUAL"].book
    assert b.price(b.best_bid()[0]) == Decimal("6434") and b.price(b.best_ask()[0]) == Decimal("6434.5")
    assert len(b) == 6


def test_trades_stream():
    s = read(T / "trades_sample.csv.gz")
    assert (s.format, s.kind) == ("tardis-trades", "trades")
    df = next(iter(s))
    assert df["side"].tolist() == [0, 1] and df["ts_ns"].iloc[0] == 1585699202957000000
    assert df["price_ticks"].iloc[0] == 642550000000 and df["qty_lots"].iloc[1] == 3000 * 10 ** 8


def test_bad_rows_name_row_and_column(tmp_path):
    p = _write(tmp_path / "a.csv.gz", HEAD + "x,A,1,1,true,bid,10.5,1\nx,A,2,2,false,bid,1e3,1\n")
    with pytest.raises(ReplayFormatError, match="row 2: column 'price' must be a plain decimal"):
        replay_tardis(p)
    p = _write(tmp_path / "b.csv.gz", HEAD + "x,A,1,1,maybe,bid,10,1\n")
    with pytest.raises(ReplayFormatError, match="row 1: column 'is_snapshot'"):
        replay_tardis(p)
    p = _write(tmp_path / "c.csv.gz", HEAD + "x,A,1,1,true,buy,10,1\n")
    with pytest.raises(ReplayFormatError, match="row 1: column 'side'"):
        replay_tardis(p)
    p = _write(tmp_path / "d.csv.gz", HEAD + "x,A,1,1,true,bid,10.001,1\n")
    with pytest.raises(ReplayFormatError, match="row 1: column 'price' '10.001' is not a multiple of 0.01"):
        replay_tardis(p, tick_size="0.01")
    p = _write(tmp_path / "e.csv.gz", "exchange,symbol,timestamp,price\n")
    with pytest.raises(ReplayFormatError, match="not a Tardis"):
        tardis_kind(p)
    with pytest.raises(ReplayFormatError, match="trades file has no book"):
        replay_tardis(T / "trades_sample.csv.gz")
    with pytest.raises(ConfigError, match="chunk_rows"):
        next(iter_tardis(T / "trades_sample.csv.gz", chunk_rows=0))


def test_chunked_reading_equals_whole(tmp_path):
    rng = np.random.default_rng(7)
    lines = [f"x,S,{t},{t},true,{'bid' if i % 2 == 0 else 'ask'},{(90 if i % 2 == 0 else 110) + i // 2}.{i % 10}0,1"
             for i, t in enumerate(range(10))]
    t = 100
    for _ in range(200):
        t += 1
        side = rng.integers(2)
        px = int(rng.integers(50, 99)) if side == 0 else int(rng.integers(103, 150))
        lines.append(f"x,S,{t},{t},false,{'bid' if side == 0 else 'ask'},{px}.{rng.integers(10)},"
                     f"{rng.integers(0, 3)}.{rng.integers(100):02d}")
    p = _write(tmp_path / "r.csv.gz", HEAD + "\n".join(lines) + "\n")
    whole = replay_tardis(p, chunk_rows=1_000_000)
    for n in (5, 64):
        part = replay_tardis(p, chunk_rows=n)
        assert part["S"].book == whole["S"].book and len(part.gaps) == len(whole.gaps)
    assert not whole.ever_crossed
