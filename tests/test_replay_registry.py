"""lob.replay.read: one registry over every replay format, fixed-size chunks, clear errors."""
from __future__ import annotations

import gzip
import json
import shutil
import threading
import zlib

import numpy as np
import pandas as pd
import pytest

import lob
from lob.data import DATA_DIR, lobster_sample
from lob.data.crypto import crypto_sample
from lob.errors import ConfigError, ReplayFormatError
from lob.replay import FORMATS, L2_DTYPE, detect, read
from lob.replay.itch import encode_itch, records
from lob.replay.kraken import replay_kraken
from lob.replay.lobster import LEVEL_SEED_BASE, read_messages

D = DATA_DIR / "databento"
T = DATA_DIR / "tardis"


def _itch_file(path):
    msgs = [records("R", stock=b"AAA     ", locate=1), records("R", stock=b"BBB     ", locate=2)]
    ref = 1
    for k in range(300):
        msgs.append(records("A", ref=ref, side=b"B" if k % 2 else b"S", shares=100 + k,
                            price=(1_000_000 - 100 * (k % 7)) if k % 2 else (1_001_000 + 100 * (k % 7)),
                            locate=1 + k % 2, ts=10 + k))
        ref += 1
    for k in range(0, 300, 3):
        msgs.append(records("D", ref=k + 1, locate=1 + k % 2, ts=400 + k))
    path.write_bytes(encode_itch(msgs))
    return path


def test_detects_every_format(tmp_path):
    m, b = lobster_sample(1)
    assert detect((m, b)) == "lobster" and detect(m) == "lobster"
    assert detect(_itch_file(tmp_path / "day.itch")) == "itch"
    with open(tmp_path / "day.itch", "rb") as f, gzip.open(tmp_path / "day.itch.gz", "wb") as g:
        g.write(f.read())
    assert detect(tmp_path / "day.itch.gz") == "itch"
    assert detect(D / "test_data.mbo.v1.dbn.zst") == "dbn-mbo"
    assert detect(D / "test_data.mbo.v3.dbn") == "dbn-mbo"
    assert detect(D / "test_data.mbp-10.v3.dbn.zst") == "dbn-mbp10"
    assert detect(T / "incremental_book_L2_sample.csv.gz") == "tardis-incremental"
    assert detect(T / "book_snapshot_3_sample.csv.gz") == "tardis-snapshot"
    assert detect(T / "trades_sample.csv.gz") == "tardis-trades"
    for v in ("binance", "coinbase", "okx", "bybit", "bybit_usdt", "gemini"):
        assert detect(crypto_sample(v)) == v.split("_")[0]
    assert detect(crypto_sample("okx")["stream"]) == "okx"
    assert set(FORMATS) >= {"lobster", "itch", "dbn-mbo", "kraken"}


def test_unrecognised_and_malformed_inputs(tmp_path):
    (tmp_path / "x.txt").write_text("hello world\n")
    with pytest.raises(ReplayFormatError, match="x.txt: not a recognised format"):
        read(tmp_path / "x.txt")
    (tmp_path / "x.bin").write_bytes(bytes(range(200, 256)) * 4)
    with pytest.raises(ReplayFormatError, match="x.bin: not a recognised format"):
        read(tmp_path / "x.bin")
    with pytest.raises(ReplayFormatError, match="no such file"):
        read(tmp_path / "missing.csv")
    with pytest.raises(ReplayFormatError, match="a directory"):
        read(tmp_path)
    with pytest.raises(ReplayFormatError, match="schema 'trades' is not replayed"):
        read(D / "test_data.trades.v3.dbn.zst")
    m, _ = lobster_sample(1)
    shutil.copy(m, tmp_path / "AAPL_2012-06-21_0_1_message_1.csv.gz")
    with pytest.raises(ReplayFormatError, match="orderbook_1.csv.gz: no such file"):
        read(tmp_path / "AAPL_2012-06-21_0_1_message_1.csv.gz")
    shutil.copy(m, tmp_path / "msgs.csv.gz")
    with pytest.raises(ReplayFormatError, match="looks like a LOBSTER message file"):
        read(tmp_path / "msgs.csv.gz")
    (tmp_path / "rec.0").write_text('1.5: {"a": 1}\n')
    with pytest.raises(ReplayFormatError, match="name no known venue"):
        read(tmp_path / "rec.0")
    with pytest.raises(ConfigError, match="snapshots="):
        read(crypto_sample("binance")["stream"])
    with pytest.raises(ConfigError, match="chunk_rows"):
        read(lobster_sample(1), chunk_rows=0)
    with pytest.raises(ConfigError, match="format must be one of"):
        read(lobster_sample(1), format="csv")
    with pytest.raises(ConfigError, match="ITCH needs symbols"):
        read(_itch_file(tmp_path / "d.itch"))


def test_malformed_rows_name_file_row_and_field(tmp_path):
    m, b = lobster_sample(1)
    df = read_messages(m).iloc[:50, 1:7].copy()
    df.iloc[20, 1] = 9                                     # type 9
    msg = tmp_path / "X_2012-06-21_0_1_message_1.csv"
    df.to_csv(msg, header=False, index=False)
    pd.read_csv(b, header=None, nrows=50).to_csv(tmp_path / "X_2012-06-21_0_1_orderbook_1.csv", header=False,
                                                 index=False)
    with pytest.raises(ReplayFormatError, match=r"message_1.csv: row 20 \(line 21\), column 2 \('type'\): expected an "
                                                r"event type 1\.\.7 .*got 9"):
        list(read(msg))
    lines = gzip.open(crypto_sample("okx")["stream"], "rt").read().splitlines()
    lines[40] = lines[40][:60]
    (tmp_path / "okx.0").write_text("\n".join(lines) + "\n")
    with pytest.raises(ReplayFormatError, match="okx.0: line 41: body is not JSON"):
        list(read(tmp_path / "okx.0"))


@pytest.mark.parametrize("level", [1, 5])
def test_lobster_chunks_are_fixed_size_event_dtype(level):
    s = read(lobster_sample(level), chunk_rows=10_000)
    assert (s.format, s.kind, s.dtype) == ("lobster", "events", lob.EVENT_DTYPE)
    assert "<td>lobster</td>" in s._repr_html_() and "ReplayStream('lobster'" in repr(s)
    chunks = list(s)
    assert all(len(c) == 10_000 for c in chunks[:-1]) and 0 < len(chunks[-1]) <= 10_000
    assert all(c.dtype == lob.EVENT_DTYPE and c.flags["C_CONTIGUOUS"] for c in chunks)
    ev = np.concatenate(chunks)
    st = s.info["stats"]
    seeds = ev[ev["order_id"] >= LEVEL_SEED_BASE]
    assert st["seeds"] == 2 * level == int((seeds["action"] == lob.Action.ADD).sum())
    assert np.all(np.diff(ev["ts_ns"]) >= 0)
    # a different chunk size gives the same events
    assert np.array_equal(np.concatenate(list(read(lobster_sample(level), chunk_rows=4_096))), ev)


def test_lobster_stream_replays_in_the_engine():
    s = read(lobster_sample(1), chunk_rows=50_000)
    assert s.tick_size == 0.01
    ex = s.exchange()
    bid, ask = ex.book("LOBSTER").best_bid(), ex.book("LOBSTER").best_ask()
    assert bid is not None and ask is not None and bid[0] < ask[0]
    last = pd.read_csv(lobster_sample(1)[1], header=None).to_numpy()[-1]
    assert ask == (last[0] / 10000, last[1])           # the day's last best ask, as the orderbook file shows it


def test_itch_stream(tmp_path):
    p = _itch_file(tmp_path / "d.itch")
    s = read(p, symbols=["AAA", "BBB"], chunk_rows=64)
    assert (s.format, s.kind, s.symbols) == ("itch", "events", ["AAA", "BBB"])
    chunks = list(s)
    assert [len(c) for c in chunks] == [64] * 6 + [400 - 6 * 64]
    ex = s.exchange(tick_size=0.01)
    assert len(ex.book("AAA").orders()) + len(ex.book("BBB").orders()) == 200


def test_dbn_mbo_stream_and_versions():
    for name in ("test_data.mbo.v1.dbn.zst", "test_data.mbo.v2.dbn.zst", "test_data.mbo.v3.dbn"):
        s = read(D / name, tick_size="0.25")
        assert (s.format, s.kind, s.symbols, s.info["version"]) == ("dbn-mbo", "events", ["ESH1"], int(name[15]))
        assert sum(len(c) for c in s) == 0 and s.info["state"].unknown == 2


@pytest.mark.parametrize("venue", ["binance", "coinbase", "okx", "bybit", "gemini"])
def test_crypto_l2_stream_rebuilds_the_verified_books(venue):
    s = read(crypto_sample(venue), chunk_rows=500)
    assert s.kind == "l2" and s.dtype == L2_DTYPE
    chunks = list(s)
    assert all(len(c) == 500 for c in chunks[:-1]) and all(c.dtype == L2_DTYPE for c in chunks)
    rows = np.concatenate(chunks)
    assert s.result is not None and sorted(s.symbols) == sorted(s.result)
    assert int((rows["flags"] & 1).sum()) >= len(s.result)            # at least one snapshot per symbol
    books = s.books()
    for sym, r in s.result.items():
        assert books[sym] == r.book
        assert s.units[sym] == (r.book.tick_size, r.book.lot_size)
    if venue == "okx":
        assert int(s.result.summary()["checksum_matches"].sum()) == 290


def test_kraken_recording_through_the_registry(tmp_path):
    snap = [336, {"as": [["5541.30000", "2.50000000", "1"]], "bs": [["5541.20000", "1.50000000", "1"]]},
            "book-10", "XBT/USD"]
    upd = [336, {"a": [["5541.30000", "0.00000000", "2"], ["5541.80000", "0.33000000", "2"]],
                 "c": str(zlib.crc32(b"55418000033000000554120000150000000"))}, "book-10", "XBT/USD"]
    lines = ["wss://ws.kraken.com <-> 1700000000.1",
             "wss://ws.kraken.com <- 1700000000.2: "
             '{"event":"subscribe","pair":["XBT/USD"],"subscription":{"name":"book"}}',
             f"1700000000.3: {json.dumps(snap)}", f"1700000000.4: {json.dumps(upd)}"]
    (tmp_path / "KRAKEN.ws.1.0").write_text("\n".join(lines) + "\n")
    s = read(tmp_path / "KRAKEN.ws.1.0")
    assert s.format == "kraken"
    b = s.books()["XBT/USD"]
    r = s.result["XBT/USD"]
    assert b == r.book and (r.checksum_checks, r.checksum_matches) == (1, 1)
    assert r.book == replay_kraken(tmp_path / "KRAKEN.ws.1.0")["XBT/USD"].book


def test_stopping_early_ends_the_worker_thread():
    before = {t.name for t in threading.enumerate()}
    s = read(crypto_sample("coinbase"), chunk_rows=100)
    it = iter(s)
    first = next(it)
    assert len(first) == 100
    assert s.result is None                     # the reader waits on the bounded queue, it has not run ahead
    it.close()                                  # the consumer stops: the reader thread must not hang
    assert not [t for t in threading.enumerate() if t.name.startswith("lob-replay") and t.name not in before]


def test_reader_errors_reach_the_consumer(tmp_path):
    lines = gzip.open(crypto_sample("gemini")["stream"], "rt").read().splitlines()
    lines.append('1624493700.0: {"type":"l2_updates","symbol":"BTCGBP","changes":[["hold","1","1"]]}')
    (tmp_path / "g.0").write_text("\n".join(lines) + "\n")
    with pytest.raises(ReplayFormatError, match=f"g.0: line {len(lines)}: BTCGBP l2_updates change"):
        list(read(tmp_path / "g.0", chunk_rows=50))


@pytest.mark.parametrize("name", ["registry", "okx", "bybit", "gemini", "kraken", "dbn", "tardis"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"lob.replay.{name}"))
    assert result.attempted > 0 and result.failed == 0


def test_unknown_options_are_refused():
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['until'\] for format 'lobster'"):
        read(lobster_sample(1), until=5)
    with pytest.raises(ConfigError, match="unknown option"):
        read(T / "trades_sample.csv.gz", grid="exchange")
    with pytest.raises(ConfigError, match=r"\['depth'\] for format 'okx'"):
        read(crypto_sample("okx"), depth=3)                 # not a parameter of replay_okx
