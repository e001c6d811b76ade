"""Group-commit blocks (fsync="batch"/"never"): small requests share one record, large batches get their
own; the audit view, recovery and time travel see every request exactly as the exchange handled it."""
import numpy as np
import pandas as pd
import pytest

import lob
from lob.journal import read
from lob.journal.format import RecordType, scan, unpack_payload


def _events(rng, n, ts0):
    ev = lob.empty_events(n)
    ev["ts_ns"] = ts0 + np.arange(n)
    ev["symbol"] = rng.integers(0, 2, n)
    ev["side"] = rng.integers(0, 2, n)
    ev["price_ticks"] = 1000 + rng.integers(-4, 5, n)
    ev["qty_lots"] = rng.integers(1, 9, n)
    ev["owner"] = rng.integers(0, 3, n)
    return ev


def _mixed_flow(ex, seen, hashes):
    """Per-call requests, small batches (blocks) and a large batch (its own records), in turn."""
    rng = np.random.default_rng(21)
    ts = 0
    for round_ in range(6):
        for i in range(37):
            r = ex.submit("A" if i % 3 else "B", ("buy", "sell")[int(rng.integers(2))], int(rng.integers(1, 9)),
                          price=(1000 + int(rng.integers(-4, 5))) / 100, owner=f"p{i % 4}", ts_ns=ts)
            ts += 1
            if i % 4 == 0:
                ex.cancel("A" if i % 3 else "B", r.order_id, ts_ns=ts)
            hashes[ex.seq] = ex.state_hash()
        ex.apply(_events(rng, int(rng.integers(1, 50)), ts))          # a small batch
        ts += 100
        hashes[ex.seq] = ex.state_hash()
        if round_ % 2:
            ex.apply(_events(rng, 1500, ts))                              # 96 KB of events: direct records
            ts += 2000
            hashes[ex.seq] = ex.state_hash()
    ex.apply(lob.empty_events(0))                                         # an empty batch is a request too


@pytest.fixture
def journaled(tmp_path, monkeypatch):
    import lob.exchange as lx

    # batches of 1,500 events get records of their own, as batches of 65,536 events or more do by default
    monkeypatch.setattr(lx, "_PIPELINE_CHUNK", 1500)
    ex = lob.Exchange(symbols=["A", "B"], journal=tmp_path / "j", fsync="never")
    ex.journal.batch_records = 16
    seen, hashes = [], {0: ex.state_hash()}

    def listen(e, r, f):
        seen.append((ex.seq, e.copy(), r.copy(), f.copy()))
        hashes[ex.seq] = ex.state_hash()          # the state after every request

    ex.add_listener(listen)
    _mixed_flow(ex, seen, hashes)
    ex.close()
    return tmp_path / "j", ex, seen, hashes


def test_small_requests_share_blocks_and_large_batches_do_not(journaled):
    path, ex, seen, _ = journaled
    recs = scan(path / "journal.lobj").records
    types = [r.type for r in recs]
    assert types.count(RecordType.PACKED_BLOCK) >= 10      # the writer packs every block
    # large batches are records of their own, packed by the writer thread (fsync="never" has one too)
    assert not [r for r in recs if r.type == RecordType.INPUT]
    inputs = [r for r in recs if r.type == RecordType.PACKED_INPUT]
    plain = [unpack_payload(r.type, r.payload, lob.EVENT_DTYPE.itemsize) for r in inputs]
    assert [len(p) // lob.EVENT_DTYPE.itemsize for p in plain] == [1500, 1500, 1500]
    assert all(len(r.payload) * 2 < len(p) for r, p in zip(inputs, plain))
    assert all(RecordType.PACKED_REPORTS in types[i:i + 3] for i, t in enumerate(types)
               if t == RecordType.PACKED_INPUT)


def test_the_audit_view_holds_every_request_in_order(journaled):
    path, ex, seen, _ = journaled
    df = read(path)
    # what the exchange handed its listeners, request by request: inputs, then reports, then fills
    want_kinds, want_seq = [], []
    prev = 0
    for seq, e, r, f in seen:
        want_kinds += ["input"] * len(e) + ["report"] * len(r) + ["fill"] * len(f)
        want_seq += [prev] * len(e) + [seq] * (len(r) + len(f))
        prev = seq
    assert df["record"].tolist() == want_kinds
    assert df["record_seq"].tolist() == want_seq
    for kind, k, dtype in (("input", 1, lob.EVENT_DTYPE), ("report", 2, lob.REPORT_DTYPE), ("fill", 3, lob.FILL_DTYPE)):
        got = df[df["record"] == kind]
        want = np.concatenate([s[k] for s in seen])
        for name in dtype.names:
            col = "out_seq" if name == "seq" else name
            if kind == "input" or not name.startswith("reserved"):     # outputs' padding is not shown
                assert np.array_equal(got[col].to_numpy().astype(want[name].dtype), want[name]), (kind, name)
    assert (df["record"] == "fill").sum() > 50 and len(df) > 5000


def test_recovery_and_time_travel_cut_inside_blocks(journaled):
    path, ex, seen, hashes = journaled
    rec = lob.Exchange.open(path)
    assert (rec.state_hash(), rec.seq) == (ex.state_hash(), ex.seq)
    rec.close()
    seqs = sorted(hashes)
    for q in seqs[::7] + [seqs[-1]]:
        assert lob.journal.exchange_at(path, q).state_hash() == hashes[q], q
    # a seq inside a request's outputs lands on the request before it
    q = seqs[40]
    nxt = seqs[41]
    if nxt > q + 1:
        assert lob.journal.exchange_at(path, nxt - 1).state_hash() == hashes[q]


def test_export_round_trips(journaled, tmp_path):
    path, *_ = journaled
    df = read(path)
    lob.journal.export(path, tmp_path / "a.parquet")
    back = pd.read_parquet(tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(back, df, check_dtype=False)


def test_verify_counts_requests_and_events(journaled):
    path, ex, seen, _ = journaled
    v = lob.journal.verify(path)
    assert v["requests"] == len(seen) and v["events"] == sum(len(s[1]) for s in seen)
    assert v["torn_tail_at"] is None and v["bytes"] == v["file_size"] and v["last_seq"] == ex.seq


def test_a_journal_left_open_is_committed_at_exit_and_can_be_collected(tmp_path):
    import gc
    import subprocess
    import time
    import sys
    import weakref

    code = (f"import lob\nex = lob.Exchange(symbols=['A'], journal={str(tmp_path / 'j')!r})\n"
            "for i in range(50): ex.submit('A', 'buy', 1, price=10.0 - i / 100, ts_ns=i)\n"
            "print(ex.state_hash())\n")                      # no close(): the interpreter just ends
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    rec = lob.Exchange.open(tmp_path / "j")
    assert rec.state_hash() == out.strip()
    rec.close()
    # dropped without close(): the group-commit thread does not keep it alive
    ex = lob.Exchange(symbols=["A"], journal=tmp_path / "k")
    ex.submit("A", "buy", 1, price=10.0, ts_ns=1)
    ref = weakref.ref(ex.journal)
    del ex
    # the thread may hold it for the microseconds of a group commit (longer when a loaded machine preempts it):
    # bounded generously, the loop ends as soon as it is gone
    for _ in range(3000):
        gc.collect()
        if ref() is None:
            break
        time.sleep(0.01)
    assert ref() is None
    assert lob.journal.verify(tmp_path / "k")["requests"] == 1      # and its last records reached the file


def test_a_recovered_exchange_has_the_same_tape_and_bars(journaled):
    path, ex, seen, _ = journaled
    rec = lob.Exchange.open(path)
    for s in ("A", "B"):
        pd.testing.assert_frame_equal(rec.trades(s), ex.trades(s))
        pd.testing.assert_frame_equal(rec.bars(s, "100ns"), ex.bars(s, "100ns"))
        assert rec.marketdata.bbo(s)["bid"] == ex.marketdata.bbo(s)["bid"]
    rec.close()


def test_a_cut_anywhere_recovers_a_prefix_of_the_requests(journaled, tmp_path):
    import shutil
    import warnings

    path, ex, seen, hashes = journaled
    data = (path / "journal.lobj").read_bytes()
    recs = scan(path / "journal.lobj").records
    rng = np.random.default_rng(5)
    cuts = sorted(set(rng.integers(recs[1].offset, len(data), 25).tolist()) | {r.offset for r in recs[-3:]})
    for cut in cuts:
        d = tmp_path / f"cut{cut}"
        shutil.copytree(path, d)
        (d / "journal.lobj").write_bytes(data[:cut])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rec = lob.Exchange.open(d, marketdata=False)
        # the records wholly before the cut, and nothing else, are replayed
        whole = [r for r in recs if r.offset + 21 + len(r.payload) <= cut]
        if whole[-1].type in (RecordType.INPUT, RecordType.PACKED_INPUT):    # its outputs were cut: replayed
            assert rec.seq > whole[-1].seq, cut
        else:
            assert rec.seq == whole[-1].seq, cut
        assert rec.state_hash() == hashes[rec.seq], cut
        rec.close()
        shutil.rmtree(d)


def test_batches_under_the_copy_limit_are_staged_into_blocks(tmp_path):
    ex = lob.Exchange(symbols=["A", "B"], journal=tmp_path / "j", fsync="batch")
    seen = []
    ex.add_listener(lambda e, r, f: seen.append((e.copy(), r.copy(), f.copy())))
    rng = np.random.default_rng(3)
    for k in range(40):                         # 40 batches of 1,500 events, about 8 MB with their outputs
        ev = lob.empty_events(1500)
        ev["action"] = lob.Action.ADD
        ev["symbol"] = k % 2
        ev["side"] = rng.integers(0, 2, 1500)
        ev["price_ticks"] = 1000 + rng.integers(-9, 10, 1500)
        ev["qty_lots"] = rng.integers(1, 20, 1500)
        ex.apply(ev)
    want = ex.state_hash()
    ex.close()
    types = [r.type for r in scan(tmp_path / "j" / "journal.lobj").records]
    assert RecordType.PACKED_INPUT not in types and RecordType.INPUT not in types
    assert types.count(RecordType.PACKED_BLOCK) >= 2
    back = lob.Exchange.open(tmp_path / "j")
    assert back.state_hash() == want
    df = read(tmp_path / "j")
    assert (df["record"] == "input").sum() == 60_000
    assert (df["record"] == "report").sum() == sum(len(r) for _, r, _ in seen)
    assert (df["record"] == "fill").sum() == sum(len(f) for _, _, f in seen)
    back.close()


def test_fsync_ms_writes_every_batch_but_fsyncs_on_its_own_cadence(tmp_path, monkeypatch):
    # fsync="batch" with fsync_ms: the group commit hands records to the OS at every tick (a process crash loses
    # none of them) but fsyncs only once fsync_ms have passed since the last fsync (lob serve: 1 s). A fake clock
    # that only the test advances keeps the background thread from fsyncing on its own.
    import lob.journal.journal as jmod

    now = [1000.0]
    fsyncs = []
    real_fsync = jmod.os.fsync
    monkeypatch.setattr(jmod.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(jmod.os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd)))
    ex = lob.Exchange(["A"], tick_size=0.01, journal=tmp_path / "j", fsync="batch", fsync_ms=1000)
    j = ex.journal
    assert (j.batch_ms, j.fsync_ms) == (5.0, 1000.0)
    size0 = j.file.stat().st_size
    ex.submit("A", "buy", 5, price=10.0, owner="u", ts_ns=1)
    fsyncs.clear()
    now[0] += 0.5
    assert j._commit_tick()
    assert j.file.stat().st_size > size0 and fsyncs == []     # written to the OS, not yet fsynced
    assert lob.journal.verify(tmp_path / "j")["requests"] == 1
    now[0] += 0.6                                               # 1.1 s since the journal's start
    assert j._commit_tick()
    assert fsyncs == [j._fd]
    assert j._commit_tick() and fsyncs == [j._fd]               # nothing new written: no fsync either
    ex.journal.close()


def test_fsync_ms_below_batch_ms_is_refused(tmp_path):
    with pytest.raises(lob.errors.ConfigError, match=r"fsync_ms must be >= batch_ms \(5.0\), got 1"):
        lob.Exchange(["A"], journal=tmp_path / "j", fsync="batch", fsync_ms=1)
    assert not (tmp_path / "j").exists()                        # refused before anything was created
