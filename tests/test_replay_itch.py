"""ITCH 5.0 parser, writer and book bridge."""
import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import lob
from lob.errors import ConfigError, ReplayFormatError
from lob.replay import itch
from lob.replay.itch import (DTYPES, LENGTHS, encode_itch, iter_itch, read_itch, records, random_messages,
                             replay_itch, timestamps)

# struct formats copied from the project's FORMATS.md (transcribed from the specification), independent of
# the numpy dtypes; the other eight types from the field tables of the same document
FORMATS = {"A": "cHH6sQcI8sI", "F": "cHH6sQcI8sI4s", "E": "cHH6sQIQ", "C": "cHH6sQIQcI", "X": "cHH6sQI",
           "D": "cHH6sQ", "U": "cHH6sQQII", "P": "cHH6sQcI8sIQ", "Q": "cHH6sQ8sIQc", "B": "cHH6sQ", "S": "cHH6sc",
           "R": "cHH6s8sccIcc2scccccIc", "H": "cHH6s8scc4s", "I": "cHH6sQQc8sIIIcc", "O": "cHH6s8scIIIQII",
           "Y": "cHH6s8sc", "L": "cHH6s4s8sccc", "V": "cHH6sQQQ", "W": "cHH6sc", "K": "cHH6s8sIcI",
           "J": "cHH6s8sIIII", "h": "cHH6s8scc", "N": "cHH6s8sc"}


def test_every_type_has_the_spec_length_and_layout():
    assert set(DTYPES) == set(FORMATS)
    for t, f in FORMATS.items():
        assert struct.calcsize("!" + f) == LENGTHS[t] == DTYPES[t].itemsize, t


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 3000), seed=st.integers(0, 2**31), chunk=st.sampled_from([1024, 1500, 4099, 1 << 16]))
def test_parse_write_parse_round_trip(n, seed, chunk):
    m = random_messages(n, seed=seed)
    data = encode_itch(m)
    back = read_itch(data, chunk_bytes=chunk)
    assert back.equals(m) or (n == 0 and len(back) == 0)
    assert encode_itch(back) == data


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 2000), seed=st.integers(0, 2**31), chunk=st.sampled_from([1024, 1500, 4099]))
def test_file_streamed_in_small_chunks_equals_the_messages(n, seed, chunk, tmp_path_factory):
    # the file path carries each chunk's incomplete last frame into the next buffer
    m = random_messages(n, seed=seed)
    path = tmp_path_factory.mktemp("itch") / "d.itch"
    itch.write_itch(m, path)
    parts = list(iter_itch(path, chunk_bytes=chunk))
    assert itch.ItchMessages.concat(parts).equals(m)
    assert sum(len(p) for p in parts) == n


def _python_frames(data: bytes):
    pos, out = 0, []
    while pos + 2 <= len(data):
        (L,) = struct.unpack_from(">H", data, pos)
        if pos + 2 + L > len(data):
            break
        out.append(pos)
        pos += 2 + L
    return out, pos


def test_frame_and_gather_kernels_against_python():
    from lob.replay._itchframe import frame_be16, gather_frames

    data = encode_itch(random_messages(500, seed=3))
    for cut in (len(data), len(data) - 7, 3, 1, 0):
        buf = np.frombuffer(data[:cut], np.uint8)
        pos, tail, bad = frame_be16(buf, -1, itch._LEN)
        exp_pos, exp_tail = _python_frames(data[:cut])
        assert pos.tolist() == exp_pos and tail == exp_tail and bad == -1
    buf = np.frombuffer(data, np.uint8)
    pos, _, _ = frame_be16(buf)
    keep = (np.arange(len(pos)) % 3 == 0).astype(np.uint8)
    parts = gather_frames(buf, pos, itch._LEN, keep)
    for code, (raw, idx) in parts.items():
        L = LENGTHS[chr(code)]
        assert (idx % 3 == 0).all()
        assert raw.tobytes() == b"".join(data[pos[i] + 2:pos[i] + 2 + L] for i in idx)
    assert sum(len(v[1]) for v in parts.values()) == len(range(0, len(pos), 3))
    # offsets outside the buffer, or at a byte that is no type, are refused before anything is read
    with pytest.raises(ValueError, match="offset"):
        gather_frames(buf, np.array([len(data) - 1], np.int64), itch._LEN)
    with pytest.raises(ValueError, match="offset 1"):
        gather_frames(buf, np.array([0, 1], np.int64), itch._LEN)
    with pytest.raises(ValueError, match="keep"):
        gather_frames(buf, pos, itch._LEN, keep[:-1])
    # a corrupt length stops the walk at that frame
    bad = bytearray(data)
    k = int(pos[200])
    bad[k + 1] ^= 0x40
    _, _, at = frame_be16(np.frombuffer(bytes(bad), np.uint8), -1, itch._LEN)
    assert at == k
    with pytest.raises(ReplayFormatError, match=f"offset {k}: field 'length'"):
        read_itch(bytes(bad))


def test_fields_agree_with_a_struct_decoder():
    m = random_messages(5000, seed=3)
    data = encode_itch(m)
    got = read_itch(data)
    ref = {}
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack_from("!H", data, pos)
        v = struct.unpack_from("!" + FORMATS[chr(data[pos + 2])], data, pos + 2)
        ref.setdefault(chr(data[pos + 2]), []).append(v)
        pos += 2 + length
    for t, rows in ref.items():
        r = got[t]
        names = [n for n in r.dtype.names if n not in ("ts_hi", "ts_lo")]
        assert len(rows) == len(r)
        for k in (0, len(rows) // 2, len(rows) - 1):
            v = rows[k]
            assert timestamps(r[k:k + 1])[0] == int.from_bytes(v[3], "big")
            vals = [r[k][n] for n in names]
            assert [x for i, x in enumerate(v) if i != 3] == vals, t


def test_gzip_and_plain_files_stream_the_same(tmp_path):
    m = random_messages(20000, seed=5)
    itch.write_itch(m, tmp_path / "d.itch")
    itch.write_itch(m, tmp_path / "d.itch.gz")
    assert gzip.open(tmp_path / "d.itch.gz").read() == (tmp_path / "d.itch").read_bytes()
    chunks = list(iter_itch(tmp_path / "d.itch.gz", chunk_bytes=50_000))
    assert len(chunks) > 5
    assert all(sum(len(c) for c in chunks[:1]) < 50_000 // 12 for _ in [0])
    assert itch.ItchMessages.concat(chunks).equals(m)
    with open(tmp_path / "d.itch", "rb") as f:
        assert read_itch(f, chunk_bytes=4096).equals(m)


def test_filter_by_locate_and_symbol_before_decoding():
    m = random_messages(8000, seed=9, locates=5)
    full = read_itch(encode_itch(m))
    part = read_itch(encode_itch(m), locates=[2], chunk_bytes=3000)
    for t in full.by_type:
        keep = (full[t]["locate"] == 2) | (full[t]["locate"] == 0)
        assert part[t].tobytes() == full[t][keep].tobytes(), t
        assert np.array_equal(part.seq.get(t, np.zeros(0, np.int64)), full.seq[t][keep])
    only = read_itch(encode_itch(m), types=["A", "D"])
    assert set(only.by_type) == {"A", "D"} and only["A"].tobytes() == full["A"].tobytes()
    # symbols resolve through the stock directory
    msgs = [records("R", stock=b"AAA     ", locate=1), records("R", stock=b"BBB     ", locate=2),
            records("D", ref=[1, 2, 3], locate=[1, 2, 1]), records("S", event_code=b"C")]
    got = read_itch(encode_itch(msgs), symbols=["AAA"])
    assert got["D"]["ref"].tolist() == [1, 3] and got["R"]["stock"].tolist() == [b"AAA     "]
    assert got.seq["D"].tolist() == [2, 4] and got.seq["S"].tolist() == [5]


def test_bad_length_and_truncation_raise():
    data = bytearray(encode_itch(random_messages(300, seed=1)))
    good = read_itch(bytes(data))
    assert len(good) == 300
    with pytest.raises(ReplayFormatError, match="truncated"):
        read_itch(bytes(data[:-5]))
    bad = bytearray(data)
    bad[1] += 1                     # first frame's length no longer matches its type
    with pytest.raises(ReplayFormatError, match="field 'length'"):
        read_itch(bytes(bad), chunk_bytes=2048)
    with pytest.raises(ConfigError, match="chunk_bytes"):
        read_itch(bytes(data), chunk_bytes=10)
    with pytest.raises(ConfigError, match="not a field"):
        records("A", nope=1)


# ------------------------------------------------------------------------------------------------
# books
# ------------------------------------------------------------------------------------------------
SYMS = ["AAA", "BBB"]


def generate_day(seed, n_ops=1500):
    """A book-consistent ITCH day (two stocks plus one unlisted) and the same operations as calls."""
    rng = np.random.default_rng(seed)
    msgs = [records("S", event_code=b"O", ts=1)]
    for loc, s in enumerate(SYMS + ["ZZZ"], start=1):
        msgs.append(records("R", stock=s.ljust(8).encode(), locate=loc, ts=2, round_lot_size=100))
    ops = []
    live = {}
    ref = 100
    ts = 1000
    for _ in range(n_ops):
        ts += int(rng.integers(0, 50))
        loc = int(rng.integers(1, 4))
        stock = (SYMS + ["ZZZ"])[loc - 1].ljust(8).encode()
        mine = [r for r, o in live.items() if o[0] == loc]
        k = rng.random()
        if k < 0.4 or not mine:
            side = int(rng.integers(0, 2))
            price = int(rng.integers(9900, 10000)) if side == 0 else int(rng.integers(10000, 10100))
            qty = int(rng.integers(1, 500))
            ref += 1
            t = "F" if rng.random() < 0.2 else "A"
            kw = {"attribution": b"MPID"} if t == "F" else {}
            msgs.append(records(t, ref=ref, side=b"BS"[side:side + 1], shares=qty, stock=stock,
                                price=price * 100, locate=loc, ts=ts, **kw))
            live[ref] = [loc, side, price, qty]
            ops.append(("add", loc, ref, side, price, qty, ts))
            continue
        r = int(rng.choice(mine))
        o = live[r]
        if k < 0.55:
            q = int(rng.integers(1, o[3] + 1))
            if rng.random() < 0.5:
                msgs.append(records("E", ref=r, shares=q, match=ref, locate=loc, ts=ts))
            else:
                msgs.append(records("C", ref=r, shares=q, match=ref, printable=b"Y", price=o[2] * 100, locate=loc,
                                    ts=ts))
            ops.append(("reduce", loc, r, q, ts))
            o[3] -= q
            if o[3] == 0:
                del live[r]
        elif k < 0.65 and o[3] > 1:
            q = int(rng.integers(1, o[3]))
            msgs.append(records("X", ref=r, shares=q, locate=loc, ts=ts))
            ops.append(("reduce", loc, r, q, ts))
            o[3] -= q
        elif k < 0.85:
            msgs.append(records("D", ref=r, locate=loc, ts=ts))
            ops.append(("cancel", loc, r, ts))
            del live[r]
        else:
            ref += 1
            side = o[1]
            price = int(rng.integers(9900, 10000)) if side == 0 else int(rng.integers(10000, 10100))
            qty = int(rng.integers(1, 500))
            msgs.append(records("U", ref=r, new_ref=ref, shares=qty, price=price * 100, locate=loc, ts=ts))
            ops.append(("cancel", loc, r, ts))
            ops.append(("add", loc, ref, side, price, qty, ts))
            del live[r]
            live[ref] = [loc, side, price, qty]
        if rng.random() < 0.05:
            msgs.append(records("P", ref=0, side=b"B", shares=7, stock=stock, price=999900, match=1, locate=loc,
                                ts=ts))
        if rng.random() < 0.02:
            msgs.append(records("H", stock=stock, trading_state=b"T", locate=loc, ts=ts))
        if rng.random() < 0.03:
            msgs.append(records("I", stock=stock, locate=loc, ts=ts))
    msgs.append(records("Q", shares=100, stock=b"AAA     ", price=1000000, match=9, cross_type=b"C", locate=1,
                        ts=ts + 1))
    msgs.append(records("S", event_code=b"C", ts=ts + 2))
    return msgs, ops


def direct_exchange(ops):
    ex = lob.Exchange(symbols=SYMS, marketdata=False)
    for op in ops:
        loc = op[1]
        if loc > len(SYMS):
            continue
        s = SYMS[loc - 1]
        if op[0] == "add":
            _, _, ref, side, price, qty, ts = op
            r = ex.submit(s, "buy" if side == 0 else "sell", qty, price=price / 100, order_id=ref, ts_ns=ts)
            assert r.status == "new"
        elif op[0] == "reduce":
            ex.reduce(s, op[2], op[3], ts_ns=op[4])
        else:
            ex.cancel(s, op[2], ts_ns=op[3])
    return ex


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_books_from_itch_equal_books_from_direct_calls(seed, tmp_path):
    msgs, ops = generate_day(seed)
    path = tmp_path / "day.itch.gz"
    itch.write_itch(msgs, path)
    res = replay_itch(path, SYMS, chunk_bytes=4096)
    direct = direct_exchange(ops)
    assert res.rejected == 0 and res.crossed_adds == 0
    for s in SYMS:
        a, b = res.exchange.book(s), direct.book(s)
        assert len(a) > 0
        assert a.depth_ticks(1000) == b.depth_ticks(1000)
        oa, ob = a.orders_array(), b.orders_array()
        for f in ("order_id", "side", "price_ticks", "qty_lots", "ts_ns"):
            assert np.array_equal(oa[f], ob[f]), f
        a.check_integrity()
    # prints: every E/C/P/Q of the listed stocks, in file order
    kinds = {t: sum(int((x["locate"] <= 2).sum()) for x in msgs if x.dtype == DTYPES[t]) for t in "ECPQ"}
    assert res.trades["kind"].value_counts().to_dict() == {k: v for k, v in kinds.items() if v}
    assert res.trades["seq"].is_monotonic_increasing
    assert list(res.system_events["event_code"]) == ["O", "C"]
    assert sorted(res.directory["stock"]) == ["AAA", "BBB"]


def test_itch_events_chunks_are_event_dtype_and_u_is_cancel_then_add():
    msgs = [records("R", stock=b"AAA     ", locate=1),
            records("A", ref=5, side=b"S", shares=10, price=1000100, locate=1, ts=10),
            records("U", ref=5, new_ref=6, shares=4, price=1000200, locate=1, ts=11)]
    (ev, tr), = list(itch.itch_events(encode_itch(msgs), ["AAA"]))
    assert ev.dtype == lob.EVENT_DTYPE and len(tr) == 0
    assert ev["action"].tolist() == [lob.Action.ADD, lob.Action.CANCEL, lob.Action.ADD]
    assert ev["order_id"].tolist() == [5, 5, 6] and ev["side"].tolist() == [1, 0, 1]
    assert ev["price_ticks"].tolist() == [10001, 0, 10002] and ev["ts_ns"].tolist() == [10, 11, 11]
    with pytest.raises(ReplayFormatError, match="not a multiple of tick"):
        list(itch.itch_events(encode_itch([msgs[0], records("A", ref=1, side=b"B", shares=1, price=1000101,
                                                                locate=1)]), ["AAA"]))


def test_parquet_export_reads_back(tmp_path):
    import pyarrow.parquet as pq

    m = random_messages(3000, seed=4)
    paths = itch.itch_to_parquet(encode_itch(m), tmp_path / "pq", chunk_bytes=8192)
    assert set(paths) == set(m.by_type)
    for t, p in paths.items():
        df = pq.read_table(p).to_pandas()
        exp = m.frame(t)
        assert df["seq"].tolist() == exp["seq"].tolist()
        assert df["ts_ns"].tolist() == exp["ts_ns"].tolist()
        if "ref" in exp:
            assert df["ref"].tolist() == exp["ref"].tolist()


def test_reading_a_gzip_file_leaves_no_file_open(tmp_path):
    import gc
    import warnings

    itch.write_itch(random_messages(2000, seed=2), tmp_path / "d.itch.gz")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ResourceWarning)
        assert len(read_itch(tmp_path / "d.itch.gz")) == 2000
        for _ in iter_itch(tmp_path / "d.itch.gz", chunk_bytes=4096):
            pass
        gc.collect()
    assert not [w for w in seen if issubclass(w.category, ResourceWarning)]
