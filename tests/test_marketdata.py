"""Market data: tape, bars against a pandas resample, snapshots against book.depth(), the L2 stream."""
import numpy as np
import pandas as pd
import pytest

import lob
from lob.errors import ConfigError, LobStateError
from lob.marketdata import BookBuilder, L2Feed, MarketData


def _random_flow(ex, n=3000, seed=5, symbols=("A", "B")):
    rng = np.random.default_rng(seed)
    mid = {s: 10_000 for s in symbols}
    ts = 0
    for i in range(n):
        s = symbols[rng.integers(len(symbols))]
        ts += int(rng.integers(1, 50_000_000))          # up to 50 ms apart
        mid[s] += int(rng.integers(-2, 3))
        side = rng.integers(2)
        px = mid[s] + (-1 if side == 0 else 1) * int(rng.integers(-2, 6))
        yield s, ("buy", "sell")[side], int(rng.integers(1, 20)), px / 100, ts


def test_tape_is_rolling_and_bars_equal_a_pandas_resample():
    ex = lob.Exchange(symbols=["A", "B"], marketdata={"tape_size": 50})
    for s, side, q, px, ts in _random_flow(ex):
        ex.submit(s, side, q, price=px, ts_ns=ts)
    tape = ex.trades("A")
    assert len(tape) == 50 and tape["seq"].is_monotonic_increasing
    every = ex.marketdata.all_trades("A")
    assert len(every) > 50
    for freq in ("1min", "5s", "250ms"):
        bars = ex.bars("A", freq)
        expected = every.set_index("time")["price"].resample(freq).ohlc()
        expected["volume"] = every.set_index("time")["qty"].resample(freq).sum()
        expected = expected[every.set_index("time")["price"].resample(freq).count() > 0]
        pd.testing.assert_frame_equal(bars[["open", "high", "low", "close", "volume"]], expected,
                                      check_freq=False, check_dtype=False)
        assert bars["volume"].sum() == every["qty"].sum()


def test_snapshots_equal_the_book_when_taken():
    # per call: the snapshot at each multiple T of the interval is the book before the first request at or past T
    ex = lob.Exchange(symbols=["A", "B"], marketdata={"snapshot_interval_ns": 100_000_000, "snapshot_depth": 5})
    seen, nxt = {}, None
    for s, side, q, px, ts in _random_flow(ex, n=1500):
        nxt = (ts // 100_000_000 + 1) * 100_000_000 if nxt is None else nxt
        while nxt <= ts:
            for name in ("A", "B"):
                seen[(name, nxt)] = ex.book(name).depth(5)
            nxt += 100_000_000
        ex.submit(s, side, q, price=px, ts_ns=ts)
    assert len(seen) > 100
    for s in ("A", "B"):
        snaps = ex.l2_snapshots(s)
        assert ex.marketdata.snapshot_times(s).tolist() == sorted(t for n, t in seen if n == s)
        for ts, g in snaps.groupby("ts_ns"):
            depth = seen[(s, ts)]
            bids = g[g.side == "bid"].sort_values("level")
            asks = g[g.side == "ask"].sort_values("level")
            assert list(zip(bids.price, bids.qty, bids.orders)) == depth["bids"]
            assert list(zip(asks.price, asks.qty, asks.orders)) == depth["asks"]


def test_snapshot_retention_is_bounded():
    ex = lob.Exchange(symbols=["A"], marketdata={"snapshot_interval_ns": 1_000, "retention_ns": 10_000})
    for i in range(200):
        ex.submit("A", "buy", 1, price=1.0 + (i % 5) / 100, ts_ns=i * 1_000)
    snaps = ex.l2_snapshots("A")
    # retention 10 us at 1 us: the newest 11 multiples, the last one crossed by the last request
    assert ex.marketdata.snapshot_times("A").tolist() == list(range(189_000, 199_001, 1_000))
    assert snaps["ts_ns"].nunique() == 11
    mem = ex.marketdata.memory()
    assert mem["symbols"]["A"]["snapshots"] == 11 and mem["symbols"]["A"]["snapshots_dropped"] == 199 - 11
    assert mem["snapshots"] <= 16 * (4 + 6 * 10) * 8 and mem["total"] == sum(
        mem[k] for k in ("tape", "trades", "bbo", "snapshots", "state"))


def test_bbo_export_and_errors(tmp_path):
    ex = lob.Exchange(symbols=["A"])
    ex.submit("A", "buy", 5, price=9.99, ts_ns=1)
    ex.submit("A", "sell", 7, price=10.01, ts_ns=2)
    ex.submit("A", "buy", 2, price=10.01, ts_ns=3)
    assert ex.marketdata.bbo("A") == dict(ts_ns=3, bid=9.99, bid_qty=5, ask=10.01, ask_qty=5)
    ex.submit("A", "buy", 1, price=9.00, ts_ns=4)           # below the best bid: the BBO stays, with its time
    assert ex.marketdata.bbo("A")["ts_ns"] == 3
    assert ex.marketdata.bbo_history("A")[["ts_ns", "ask_qty"]].values.tolist() == [[1, 0], [2, 7], [3, 5]]
    for fmt in ("csv", "json", "parquet"):
        p = ex.marketdata.export("A", "trades", tmp_path / f"t.{fmt}")
        assert p.stat().st_size > 0
    tape = pd.read_parquet(tmp_path / "t.parquet")
    assert tape["price"].tolist() == [10.01]
    assert tape[["maker_order_id", "taker_order_id", "aggressor"]].values.tolist() == [[2, 3, "buy"]]
    back = pd.read_csv(ex.marketdata.export("A", "trades", tmp_path / "t2.csv"))
    assert back[["seq", "maker_order_id", "taker_order_id"]].values.tolist() == [[4, 2, 3]]
    with pytest.raises(ConfigError, match="fmt"):
        ex.marketdata.export("A", "trades", tmp_path / "t.xls")
    with pytest.raises(ConfigError, match="freq"):
        ex.bars("A", "often")
    with pytest.raises(LobStateError):
        lob.Exchange(symbols=["A"], marketdata=False).trades("A")
    with pytest.raises(ConfigError, match="tape_size"):
        MarketData(lob.Exchange(marketdata=False), tape_size=0)


def test_a_client_rebuilds_books_from_the_l2_stream():
    ex = lob.Exchange(symbols=["A", "B"], marketdata=False)
    feed = L2Feed(ex, depth=1000)
    client = BookBuilder()
    for s in ("A", "B"):
        client.apply(feed.subscribe(s, client.apply))
    trades, n_fills = [], []
    feed.subscribe_all(lambda m: trades.append(m) if m["type"] == "trade" else None)
    ex.add_listener(lambda e, r, f: n_fills.append(len(f)))
    for s, side, q, px, ts in _random_flow(ex, n=2000):
        ex.submit(s, side, q, price=px, ts_ns=ts)
    # a batch too
    ev = lob.empty_events(100)
    ev["side"] = np.arange(100) % 2
    ev["price_ticks"] = 10_000 + (np.arange(100) % 7) - 3
    ev["qty_lots"] = 3
    ex.apply(ev)
    for s in ("A", "B"):
        want = ex.book(s).depth(1000)
        got = client.books[s]
        assert got["bids"] == [[p, q] for p, q, _ in want["bids"]]
        assert got["asks"] == [[p, q] for p, q, _ in want["asks"]]
    assert client.gaps == []
    assert len(trades) == sum(n_fills) > 100


def test_a_missed_message_is_reported_as_a_gap():
    ex = lob.Exchange(symbols=["A"], marketdata=False)
    feed = L2Feed(ex)
    client = BookBuilder()
    msgs = []
    client.apply(feed.subscribe("A", msgs.append))
    for i in range(5):
        ex.submit("A", "buy", 1, price=1.0 + i / 100, ts_ns=i)
    for m in msgs[:2] + msgs[3:]:
        client.apply(m)
    assert client.gaps == [("A", 2, 3)]


def test_trade_messages_and_tape_say_who_traded():
    ex = lob.Exchange(symbols=["A"])
    feed = L2Feed(ex)
    msgs = []
    feed.subscribe_all(lambda m: msgs.append(m) if m["type"] == "trade" else None)
    ex.submit("A", "sell", 5, price=10.0, owner="bob", order_id=7, ts_ns=1)
    ex.submit("A", "sell", 5, price=10.01, order_id=8, ts_ns=2)
    r = ex.submit("A", "buy", 8, price=10.01, owner="alice", order_id=9, ts_ns=3)
    assert [(m["maker_order_id"], m["taker_order_id"], m["maker_owner"], m["taker_owner"], m["aggressor"], m["seq"])
            for m in msgs] == [(t.maker_order_id, t.taker_order_id, t.maker_owner, t.taker_owner, t.aggressor, t.seq)
                               for t in r.trades] == [(7, 9, "bob", "alice", "buy", 4), (8, 9, None, "alice", "buy", 5)]
    tape = ex.trades("A")
    assert tape[["seq", "maker_order_id", "taker_order_id", "maker_owner", "taker_owner", "aggressor"]].values.tolist() \
        == [[4, 7, 9, "bob", "alice", "buy"], [5, 8, 9, None, "alice", "buy"]]
    assert ex.trades("A", limit=1)["seq"].tolist() == [5] and ex.trades("A", limit=0).empty


def test_a_new_recorder_replaces_the_old_one_and_options_are_checked():
    ex = lob.Exchange(symbols=["A"])
    old = ex.marketdata
    ex.submit("A", "sell", 5, price=10.0, ts_ns=1)
    ex.submit("A", "buy", 1, price=10.0, ts_ns=2)
    md = MarketData(ex, tape_size=3)
    assert ex.marketdata is md and len(old.trades("A")) == 1 and md.trades("A").empty
    ex.submit("A", "buy", 1, price=10.0, ts_ns=3)
    assert len(md.trades("A")) == 1 and len(old.trades("A")) == 1         # the old one no longer records
    for bad in ({"max_trades": 0}, {"bbo_size": -1}, {"snapshot_depth": 10 ** 6}, {"tape_size": True},
                {"snapshot_interval_ns": 1.5}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            MarketData(ex, **bad)
    assert ex.marketdata is md
    off = lob.Exchange(symbols=["A"], marketdata=False)
    off.submit("A", "sell", 5, price=10.0, ts_ns=1)
    assert off.marketdata is None


def test_trades_within_retention_survive_the_ring_rolling_and_growing():
    # retention drops the oldest trades (the ring's head moves), then the ring grows past its first sizes
    # with its records wrapped: every trade within the retention is kept, in order
    ex = lob.Exchange(symbols=["A"], marketdata={"retention_ns": 50_000, "max_trades": 5_000})
    seen = []
    for k in range(3_000):
        ts = k * 1_000 if k < 1_000 else 10 ** 6 + (k - 1_000) * 10          # then 100x denser: the ring grows
        ex.submit("A", "sell", 1, price=10.0, ts_ns=ts)
        r = ex.submit("A", "buy", 1, price=10.0, ts_ns=ts)
        seen += [(t.ts_ns, t.qty) for t in r.trades]
    clock = seen[-1][0]
    want = [s for s in seen if s[0] >= clock - 50_000]
    got = ex.marketdata.all_trades("A")
    assert list(zip(got["ts_ns"].tolist(), got["qty"].tolist())) == want and len(want) > 2_000
    assert ex.marketdata.memory()["symbols"]["A"]["trades_dropped"] > 0


def _crossing_pairs(ts):
    """A resting sell then a buy crossing it at every ``ts``: one fill of qty 1 per pair."""
    ev = np.zeros(2 * len(ts), dtype=lob.EVENT_DTYPE)
    ev["ts_ns"] = np.repeat(ts, 2)
    ev["side"][0::2] = lob.Side.SELL
    ev["side"][1::2] = lob.Side.BUY
    ev["price_ticks"] = 1_000
    ev["qty_lots"] = 1
    ev["order_id"] = np.arange(1, len(ev) + 1)
    return ev


def test_trades_survive_growing_into_their_own_mapping_wrapped_or_in_order():
    import gc
    # past 256 KB a ring lives in a mapping of its own: it grows by copying its records (wrapped by the
    # retention or taken from a spare mapping) or by remapping them (in order); every trade within the
    # retention survives each way
    gaps = np.concatenate([np.full(12_000, 1_000), np.full(18_000, 10), np.zeros(60_000, dtype=np.int64)])
    ts = np.cumsum(gaps)
    for round in range(2):                 # the second exchange takes the first one's spare mappings
        ex = lob.Exchange(symbols=["A"], marketdata={"retention_ns": 6_000_000, "max_trades": 200_000})
        for chunk in np.array_split(_crossing_pairs(ts), 7):
            ex.apply(chunk)
        got = ex.marketdata.all_trades("A")["ts_ns"].to_numpy()
        np.testing.assert_array_equal(got, ts[ts >= ts[-1] - 6_000_000])
        counts = ex.marketdata.memory()["symbols"]["A"]
        assert counts["trades_dropped"] == len(ts) - len(got) > 5_000 and counts["fills"] == len(ts)
        mem = ex.marketdata.memory()
        assert len(got) * 24 <= mem["trades"] <= 200_000 * 24 + 4096        # within its bound, page-rounded
        del ex
        gc.collect()


def test_spare_ring_memory_is_reused_bounded_and_released():
    import gc
    from lob.marketdata import _recorder
    gc.collect()                    # recorders of earlier tests left in cycles: freed now, not mid-test
    _recorder.release_spare_rings()
    assert _recorder.spare_ring_bytes() == 0
    ts = np.arange(30_000) * 1_000
    ex = lob.Exchange(symbols=["A", "B"], marketdata={"bbo_size": 1_000})
    ex.apply(_crossing_pairs(ts))
    first = ex.marketdata.all_trades("A")
    kept = ex.marketdata.memory()["trades"]
    assert kept >= 30_000 * 24
    del ex
    gc.collect()
    assert _recorder.spare_ring_bytes() == kept           # the big trades ring is kept; bbo (48 KB) is freed
    again = lob.Exchange(symbols=["A"])
    again.apply(_crossing_pairs(ts))
    assert _recorder.spare_ring_bytes() == 0               # taken by the new trades ring
    pd.testing.assert_frame_equal(again.marketdata.all_trades("A"), first)
    assert again.marketdata.memory()["trades"] == kept      # the whole spare mapping, reported
    del again
    gc.collect()
    assert 0 < _recorder.spare_ring_bytes() <= 256 * 2 ** 20
    _recorder.release_spare_rings()
    assert _recorder.spare_ring_bytes() == 0


@pytest.mark.parametrize("opts", [{"tape_size": 50, "retention_ns": 5_000},
                                  {"tape_size": 300, "max_trades": 20},
                                  {"tape_size": 7, "max_trades": 1_000, "retention_ns": 10 ** 12}])
def test_the_tape_is_the_engines_fill_records_whatever_the_retention_and_max_trades(opts):
    # a tape row is written as two records (its trade's ts/price/qty and the rest): the tape is the newest
    # tape_size fill records exactly, even when the retention or max_trades keep fewer trades for bars
    rng = np.random.default_rng(3)
    ts = np.cumsum(rng.integers(0, 3_000, 2_000))
    ev = _crossing_pairs(ts)
    ev["owner"] = rng.integers(0, 4, len(ev))
    ev["qty_lots"][0::2] = rng.integers(1, 9, len(ts))
    ev["qty_lots"][1::2] = ev["qty_lots"][0::2]
    ev["price_ticks"] = np.repeat(1_000 + rng.integers(-5, 6, len(ts)), 2)
    ex = lob.Exchange(symbols=["A"], marketdata=opts)
    fills = np.concatenate([ex.apply(c)[1] for c in np.array_split(ev, 9)])
    md = ex.marketdata
    np.testing.assert_array_equal(md.tape_array("A"), fills[-opts["tape_size"]:])
    t = md.all_trades("A")
    keep = fills[fills["ts_ns"] >= ts[-1] - opts.get("retention_ns", 24 * 3600 * 10 ** 9)]
    keep = keep[-opts.get("max_trades", 10 ** 6):]
    assert t["ts_ns"].tolist() == keep["ts_ns"].tolist() and t["qty"].tolist() == keep["qty_lots"].tolist()
    assert len(md.trades("A")) == opts["tape_size"] and len(t) < len(fills)
