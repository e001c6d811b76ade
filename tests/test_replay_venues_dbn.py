"""Databento DBN: the decoder's own samples (MBO v1-v3, plain and zstd; MBP-10), cross-checked field by field
against the ``databento-dbn`` package's decoder, and a LOBSTER day written as DBN MBO and replayed to the same
books."""
from __future__ import annotations

import numpy as np
import pytest

dbn = pytest.importorskip("databento_dbn", reason="the dbn extra (databento-dbn, zstandard) is not installed")

import lob  # noqa: E402
from lob.data import DATA_DIR, lobster_sample  # noqa: E402
from lob.errors import ReplayFormatError  # noqa: E402
from lob.replay import read  # noqa: E402
from lob.replay.dbn import (MBO_DTYPE, MBP10_DTYPE, MboState, dbn_info, iter_dbn, mbo_events,  # noqa: E402
                            write_dbn_mbo)
D = DATA_DIR / "databento"
MBO_FILES = ["test_data.mbo.v1.dbn.zst", "test_data.mbo.v2.dbn.zst", "test_data.mbo.v3.dbn", "test_data.mbo.v3.dbn.zst"]


def _decoded(path):
    """Records decoded by databento_dbn itself (as the file's version, no upgrade)."""
    dec = dbn.DBNDecoder(compression=dbn.Compression.ZSTD if str(path).endswith(".zst") else dbn.Compression.NONE,
                         upgrade_policy=dbn.VersionUpgradePolicy.AS_IS)
    dec.write(path.read_bytes())
    return dec.decode()[1:]


def test_record_sizes_follow_the_spec():
    assert MBO_DTYPE.itemsize == 56 and MBP10_DTYPE.itemsize == 368


@pytest.mark.parametrize("name", MBO_FILES)
def test_mbo_versions_decode_like_databento(name):
    info = dbn_info(D / name)
    assert info.version == int(name.split(".v")[1][0])
    assert info.compressed == name.endswith(".zst")
    assert (info.schema, info.dataset, info.instruments) == ("mbo", "GLBX.MDP3", {5482: "ESH1"})
    _, chunks = iter_dbn(D / name, chunk_rows=1)
    recs = np.concatenate(list(chunks))
    ref = _decoded(D / name)
    assert len(recs) == len(ref) == 2
    for r, m in zip(recs, ref):
        assert (int(r["order_id"]), int(r["price"]), int(r["size"]), int(r["ts_recv"]), int(r["ts_event"]),
                int(r["instrument_id"]), int(r["sequence"])) == (m.order_id, m.price, m.size, m.ts_recv, m.ts_event,
                                                                  m.instrument_id, m.sequence)
        assert r["action"].decode() == str(m.action.value if hasattr(m.action, "value") else m.action)[-1]
        assert r["side"].decode() == str(m.side.value if hasattr(m.side, "value") else m.side)[-1]


def test_mbo_events_of_a_file_starting_mid_session():
    st = MboState()
    info, names, chunks = mbo_events(D / "test_data.mbo.v3.dbn", tick_size="0.25", state=st)
    ev = np.concatenate(list(chunks))
    # both records cancel orders that were never added in the file: counted, not applied
    assert names == ["ESH1"] and len(ev) == 0 and st.unknown == 2 and st.records == 2


def test_mbp10_levels_match_databento():
    ref = _decoded(D / "test_data.mbp-10.v3.dbn.zst")
    s = read(D / "test_data.mbp-10.v3.dbn.zst", tick_size="0.25")
    assert (s.format, s.kind, s.info["version"]) == ("dbn-mbp10", "l2", 3)
    rows = np.concatenate(list(s))
    assert s.symbols == ["ESH1"]
    first = rows[: np.flatnonzero(rows["flags"] & 4)[0] + 1]
    want = set()
    for j in range(10):
        lv = ref[0].levels[j]
        want.add((0, lv.bid_px // 250_000_000, lv.bid_sz))
        want.add((1, lv.ask_px // 250_000_000, lv.ask_sz))
    assert {(int(r["side"]), int(r["price_ticks"]), int(r["qty_lots"])) for r in first} == want
    books = s.books()
    b = books["ESH1"]
    assert b.best_bid() == (ref[1].levels[0].bid_px // 250_000_000, ref[1].levels[0].bid_sz)
    assert not b.is_crossed()


def test_bad_dbn_input(tmp_path):
    with pytest.raises(ReplayFormatError, match="schema"):
        iter_dbn(D / "test_data.trades.v3.dbn.zst")
    raw = (D / "test_data.mbo.v3.dbn").read_bytes()
    (tmp_path / "cut.dbn").write_bytes(raw[:-10])
    _, chunks = iter_dbn(tmp_path / "cut.dbn")
    with pytest.raises(ReplayFormatError, match="record 1 truncated"):
        list(chunks)
    bad = bytearray(raw)
    bad[len(raw) - 56 + 1] = 0x0A                  # the second record's rtype says MBP-10
    (tmp_path / "bad.dbn").write_bytes(bytes(bad))
    _, chunks = iter_dbn(tmp_path / "bad.dbn")
    with pytest.raises(ReplayFormatError, match="record 1: field 'rtype'"):
        list(chunks)
    (tmp_path / "no.dbn").write_bytes(b"DBX\x03" + raw[4:])
    with pytest.raises(ReplayFormatError, match="not a DBN file|not a recognised format"):
        read(tmp_path / "no.dbn")


def _books_at(events, times):
    """The top 10 levels after every event with ``ts_ns <= t``, for each ``t`` of ``times``."""
    ex = lob.Exchange(symbols=["GOOG"], tick_size=0.01, marketdata=False)
    out, done = [], 0
    for t in times:
        upto = int(np.searchsorted(events["ts_ns"], t, side="right"))
        if upto > done:
            ex.apply(np.ascontiguousarray(events[done:upto]))
            done = upto
        out.append(ex.book("GOOG").depth_ticks(10))
    ex.apply(np.ascontiguousarray(events[done:]))
    return out, ex


@pytest.mark.parametrize("suffix", [".dbn.zst", ".dbn"])
def test_lobster_day_round_trips_through_dbn_mbo(tmp_path, suffix):
    src = read(lobster_sample(1), chunk_rows=20_000, symbol="GOOG")
    events = np.concatenate(list(src))
    path = tmp_path / f"goog{suffix}"
    n = write_dbn_mbo(path, [events], ["GOOG"], tick_size="0.01", dataset="XNAS.LOBSTER",
                      start_ns=1_340_236_800_000_000_000)
    assert n > 0.9 * len(events)
    back = read(path, chunk_rows=20_000)
    assert (back.format, back.info["version"], back.info["compressed"]) == ("dbn-mbo", 3, suffix == ".dbn.zst")
    assert back.symbols == ["GOOG"]
    got = np.concatenate(list(back))
    assert back.info["state"].unknown == 0
    # the databento decoder reads the same file
    dec = dbn.DBNDecoder(compression=dbn.Compression.ZSTD if suffix.endswith("zst") else dbn.Compression.NONE)
    dec.write(path.read_bytes())
    assert len(dec.decode()) == n + 1
    # same books at every 2,000th event's time, and the same resting orders at the end
    assert np.all(np.diff(events["ts_ns"]) >= 0) and np.all(np.diff(got["ts_ns"]) >= 0)
    times = events["ts_ns"][::2_000]
    a, ex_a = _books_at(events, times)
    b, ex_b = _books_at(got, times)
    assert len(a) >= 20 and a == b
    assert any(x["bids"] and x["asks"] for x in a)
    oa, ob = ex_a.book("GOOG").orders(), ex_b.book("GOOG").orders()
    assert len(oa) > 0
    assert oa[["order_id", "side", "price", "qty"]].equals(ob[["order_id", "side", "price", "qty"]])


def test_write_then_read_an_add_off_the_grid_is_rejected(tmp_path):
    ev = lob.empty_events(1)
    ev[0]["action"], ev[0]["order_id"], ev[0]["price_ticks"], ev[0]["qty_lots"] = lob.Action.ADD, 9, 12345, 5
    write_dbn_mbo(tmp_path / "x.dbn", [ev], ["X"], tick_size="0.01")
    with pytest.raises(ReplayFormatError, match="record 0: field 'price'"):
        list(read(tmp_path / "x.dbn", tick_size="0.25"))
    s = read(tmp_path / "x.dbn", tick_size="0.01")
    out = np.concatenate(list(s))
    assert (int(out[0]["price_ticks"]), int(out[0]["qty_lots"]), int(out[0]["order_id"])) == (12345, 5, 9)


@pytest.mark.slow
def test_verified_lobster_day_through_dbn_reproduces_the_orderbook_file(tmp_path):
    """The verified reconstruction's events (read(pair, exact=True)), written as DBN MBO (zstd) and read back,
    give the orderbook file's book after every sampled message (rows whose time no later message shares)."""
    from lob.replay.lobster import _side_levels, iter_messages, iter_orderbook

    msg, book = lobster_sample(1)
    src = read((msg, book), exact=True, chunk_rows=20_000, symbol="GOOG")
    path = tmp_path / "goog.dbn.zst"
    write_dbn_mbo(path, src, ["GOOG"], tick_size="0.01")
    assert src.result.mismatching_rows == 0 and src.result.rows == 49_482
    got = np.concatenate(list(read(path)))
    ts = np.concatenate([m["ts_ns"].to_numpy() for m in iter_messages(msg)])
    rows = np.concatenate(list(iter_orderbook(book)))
    last = np.flatnonzero(np.diff(ts) > 0)[::500]
    books, ex = _books_at(got, ts[last])
    assert len(last) > 50
    for k, d in zip(last, books):
        for s, key in ((0, "bids"), (1, "asks")):
            assert [(p, q) for p, q, _ in d[key][:1]] == _side_levels(rows[k], s, 100)[:1], (k, key)
