"""The journal's framing layer, byte by byte: checksums, torn tails at every cut, corruption in every
header field, zero-filled tails, and the CLI on a damaged length field."""
import os
import struct
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import lob
from lob.errors import JournalCorruptError
from lob.journal import repair, verify
from lob.journal.cli import main as cli
from lob.journal.format import HEADER, MAGIC, RecordType, frame, scan, truncate_torn_tail


def _crc32c_reference(data: bytes, crc: int = 0) -> int:
    """Bitwise CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): an oracle independent of the crc32c
    package the journal uses."""
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _write(path, records):
    with open(path, "wb") as f:
        f.write(MAGIC)
        for rtype, seq, payload in records:
            f.write(frame(rtype, seq, payload))
    return path


def _sample(n=6):
    rng = np.random.default_rng(7)
    return [(RecordType.INPUT if k % 3 == 0 else RecordType.REPORTS if k % 3 == 1 else RecordType.FILLS, 10 + k,
             rng.integers(0, 256, int(rng.integers(0, 90)), dtype=np.uint8).tobytes()) for k in range(n)]


def test_checksums_match_an_independent_crc32c():
    assert _crc32c_reference(b"123456789") == 0xE3069283            # the published CRC-32C check value
    payload = bytes(range(200))
    rec = frame(RecordType.FILLS, 123456789012, payload)
    length, rtype, seq, crc, hcrc = HEADER.unpack(rec[:HEADER.size])
    assert (length, rtype, seq) == (200, RecordType.FILLS, 123456789012) and rec[HEADER.size:] == payload
    assert crc == _crc32c_reference(struct.pack("<BQ", rtype, seq) + payload)
    assert hcrc == _crc32c_reference(rec[:HEADER.size - 4])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(list(RecordType)), st.integers(0, 2**64 - 1), st.binary(max_size=300)),
                max_size=12))
def test_frames_round_trip(tmp_path_factory, records):
    path = _write(tmp_path_factory.mktemp("rt") / "j.lobj", records)
    res = scan(path)
    assert res.torn_at is None and res.end == os.path.getsize(path)
    assert [(r.type, r.seq, r.payload) for r in res.records] == records


def test_a_cut_at_every_byte_is_a_torn_tail_never_an_error(tmp_path):
    records = _sample()
    full = _write(tmp_path / "full.lobj", records).read_bytes()
    offsets = [r.offset for r in scan(tmp_path / "full.lobj").records] + [len(full)]
    for cut in range(len(MAGIC), len(full) + 1):
        p = tmp_path / "cut.lobj"
        p.write_bytes(full[:cut])
        res = scan(p)
        whole = sum(1 for k in range(len(records)) if offsets[k + 1] <= cut)
        assert [(r.type, r.seq, r.payload) for r in res.records] == records[:whole], cut
        assert res.torn_at == (None if cut in offsets else offsets[whole]), cut
        if res.torn_at is not None:
            with pytest.warns(RuntimeWarning, match="torn tail"):
                assert truncate_torn_tail(p, res)
            assert os.path.getsize(p) == offsets[whole] and scan(p).torn_at is None


@pytest.mark.parametrize("field,pos", [("length", 0), ("length", 3), ("type", 4), ("seq", 5), ("seq", 12),
                                       ("crc", 13), ("hcrc", 18), ("payload", HEADER.size),
                                       ("payload", HEADER.size + 20)])
@pytest.mark.parametrize("flip", [0x01, 0x40, 0xFF])
def test_damage_to_any_field_of_a_middle_record_is_corruption(tmp_path, field, pos, flip):
    records = [(RecordType.INPUT, 100 + k, bytes([k]) * 64) for k in range(5)]
    data = bytearray(_write(tmp_path / "j.lobj", records).read_bytes())
    target = scan(tmp_path / "j.lobj").records[2]
    data[target.offset + pos] ^= flip
    (tmp_path / "j.lobj").write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match=f"offset {target.offset} ") as e:
        scan(tmp_path / "j.lobj")
    assert e.value.offset == target.offset and e.value.previous_seq == 101
    if field not in ("length", "type", "seq", "hcrc"):
        assert e.value.seq == target.seq


def test_a_zero_filled_tail_is_torn_and_garbage_is_not(tmp_path):
    records = _sample()
    good = _write(tmp_path / "j.lobj", records).read_bytes()
    for tail in (bytes(5), bytes(HEADER.size), bytes(4096)):
        (tmp_path / "j.lobj").write_bytes(good + tail)
        res = scan(tmp_path / "j.lobj")
        assert res.torn_at == len(good) and len(res.records) == len(records)
    # the last record's payload zeroed out to the end of the file (its data never reached the disk)
    last = scan(tmp_path / "j.lobj").records[-1]
    damaged = bytearray(good)
    damaged[last.offset + HEADER.size:] = bytes(len(good) - last.offset - HEADER.size)
    (tmp_path / "j.lobj").write_bytes(bytes(damaged) + bytes(100))
    if len(last.payload) and any(last.payload):
        assert scan(tmp_path / "j.lobj").torn_at == last.offset
    (tmp_path / "j.lobj").write_bytes(good + b"\x01" * 64)
    with pytest.raises(JournalCorruptError, match=f"offset {len(good)} "):
        scan(tmp_path / "j.lobj")


@pytest.mark.parametrize("policy", ["always", "batch"])
def test_a_damaged_length_in_a_journal_stops_recovery_and_repair_cuts_there(tmp_path, capsys, policy):
    ex = lob.Exchange(symbols=["A"], journal=tmp_path / "j", marketdata=False, fsync=policy)
    ex.journal.batch_records = 8            # batch: group-commit blocks of at most 8 requests
    hashes = {0: ex.state_hash()}
    for i in range(120):
        ex.submit("A", "buy" if i % 2 else "sell", 3, price=10 + (i % 5) / 100, ts_ns=i)
        hashes[ex.seq] = ex.state_hash()
    ex.close()
    f = tmp_path / "j" / "journal.lobj"
    recs = scan(f).records
    k = next(k for k in range(len(recs) // 2, len(recs)) if recs[k].type in (RecordType.INPUT, RecordType.BLOCK, RecordType.PACKED_BLOCK))
    target, before = recs[k], recs[k - 1]
    data = bytearray(f.read_bytes())
    data[target.offset + 3] ^= 0x40            # the length now points far past the end of the file
    f.write_bytes(bytes(data))
    size = len(data)
    with pytest.raises(JournalCorruptError, match=f"offset {target.offset} "):
        lob.Exchange.open(tmp_path / "j")
    assert os.path.getsize(f) == size           # nothing was cut on the way
    with pytest.raises(JournalCorruptError):
        verify(tmp_path / "j")
    with pytest.raises(JournalCorruptError):
        repair(tmp_path / "j")
    assert cli(["verify", str(tmp_path / "j")]) == 1
    assert "corrupt record at offset" in capsys.readouterr().err
    assert cli(["repair", str(tmp_path / "j"), "--truncate-corrupt"]) == 0
    assert os.path.getsize(f) == target.offset
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # a clean cut: no torn tail left to warn about
        rec = lob.Exchange.open(tmp_path / "j")
    # everything before the damaged record survives: the state after the last request it completed
    assert rec.seq == before.seq and rec.state_hash() == hashes[before.seq]
    rec.close()


# --- the packed encoding of large records ----------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(words=st.integers(1, 16), n=st.integers(0, 60), seed=st.integers(0, 2**32 - 1),
       mode=st.sampled_from(["random", "steps", "constant"]))
def test_pack_words_round_trips_any_bytes(words, n, seed, mode):
    from lob.journal._codec import pack_words, unpack_words

    rng = np.random.default_rng(seed)
    if mode == "random":
        a = rng.integers(0, 2**64, (n, words), dtype=np.uint64)
    elif mode == "steps":           # what journals hold: fields that repeat or move by small +- steps
        a = np.cumsum(rng.integers(-3, 4, (n, words)), axis=0).astype(np.int64).view(np.uint64)
    else:
        a = np.tile(rng.integers(0, 2**64, words, dtype=np.uint64), (n, 1))
    raw = a.view(np.uint8).ravel()
    packed = pack_words(raw, words * 8)
    assert unpack_words(packed, n, words * 8).tobytes() == raw.tobytes()
    if mode != "random" and n > 4:
        assert len(packed) < len(raw) / 2


def test_unpack_words_refuses_inconsistent_bytes():
    from lob.journal._codec import pack_words, unpack_words

    raw = np.arange(40, dtype=np.int64).view(np.uint8)
    packed = pack_words(raw, 40)
    with pytest.raises(ValueError, match="inconsistent"):
        unpack_words(packed, 9, 40)                 # one record too many
    with pytest.raises(ValueError, match="inconsistent"):
        unpack_words(packed[:-1], 8, 40)            # cut short
    with pytest.raises(ValueError, match="inconsistent"):
        unpack_words(np.concatenate([packed, [0, 0]]).astype(np.uint8), 8, 40)   # bytes left over
    bad = packed.copy()
    bad[0] = 0xFF                                   # a mask naming words past the record's 5
    bad[1] = 0xFF
    with pytest.raises(ValueError, match="inconsistent"):
        unpack_words(bad, 8, 40)
    with pytest.raises(ValueError, match="itemsize"):
        pack_words(raw, 12)
    with pytest.raises(ValueError, match="whole number"):
        pack_words(raw[:-8], 40)
