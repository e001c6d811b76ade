"""The BBO rows are every change of the books' best levels, event by event (issue #12: the engine compares
the best levels with the last row after every event and writes a row only when they differ).
Checked against a recomputation from the book after every event, on a stream dense in the cases a wrong
comparison would miss: cancels and reduces at, just behind and far behind the best (the last order of a best
level, one of several), icebergs refreshed by fills, modifies, post-only slides, STP (decrement and cancels),
markets, IOCs, stops, unknown ids, halts and session ends."""
import numpy as np
import pytest

import lob
from lob.marketdata import MarketData
from test_marketdata_invariance import _assert_same, _recorded

MD = {"snapshot_interval_ns": 5_000_000, "snapshot_depth": 3, "bbo_size": 1 << 20}


def _stream(n=5000, seed=12, n_sym=2):
    rng = np.random.default_rng(seed)
    ev = lob.empty_events(n)
    ev["ts_ns"] = 10 ** 12 + np.cumsum(rng.choice([0, 1, 1_000, 2_000_000], n, p=[.15, .15, .5, .2]))
    ev["symbol"] = rng.integers(0, n_sym, n)
    ev["side"] = rng.integers(0, 2, n)
    ev["qty_lots"] = rng.integers(1, 12, n)
    ev["owner"] = rng.integers(1, 4, n)                 # few owners: self-trades are frequent
    live = [[] for _ in range(n_sym)]
    A = lob.Action
    for i in range(n):
        ev["order_id"][i] = i + 1
        s = int(ev["symbol"][i])
        side = int(ev["side"][i])
        # limit prices a few ticks either side of 1000: bids mostly below, asks mostly above, some crossing
        off = int(rng.integers(0, 6))
        px = 1000 - 1 - off if side == 0 else 1000 + 1 + off
        if rng.random() < 0.1:
            px += 3 if side == 0 else -3
        ev["price_ticks"][i] = px
        k = rng.random()
        if k < 0.56 or not live[s]:
            live[s].append(i + 1)
            r = rng.random()
            if r < 0.08:
                ev["display_lots"][i] = int(rng.integers(1, 3))        # icebergs: refreshed by fills
                ev["qty_lots"][i] += 6
            elif r < 0.13:
                ev["flags"][i] = int(rng.integers(1, 3))              # post-only: reject or slide
            elif r < 0.17:
                ev["tif"][i] = lob.TIF.IOC
            elif r < 0.19:
                ev["type"][i] = lob.OrderType.STOP_LIMIT
                ev["stop_ticks"][i] = 1000 + (2 if side == 0 else -2)
        elif k < 0.60:
            ev["type"][i] = lob.OrderType.MARKET
            ev["price_ticks"][i] = 0
        elif k < 0.94:
            # cancel or reduce a live order (at or behind the best, wherever it is), sometimes an unknown id
            oid = live[s].pop(int(rng.integers(len(live[s])))) if rng.random() < 0.95 else 10 ** 9 + i
            ev["order_id"][i] = oid
            ev["owner"][i] = 0
            if rng.random() < 0.3:
                ev["action"][i] = A.REDUCE
                ev["qty_lots"][i] = int(rng.integers(1, 8))
                if oid <= n:
                    live[s].append(oid)
            else:
                ev["action"][i] = A.CANCEL
        elif k < 0.98:
            oid = live[s][int(rng.integers(len(live[s])))]
            ev["action"][i], ev["order_id"][i], ev["owner"][i] = A.MODIFY, oid, 0
            ev["price_ticks"][i] = 0 if rng.random() < 0.5 else px
        elif k < 0.99:
            ev["action"][i] = A.HALT if rng.random() < 0.5 else A.RESUME
            ev["order_id"][i] = 0
        else:
            ev["action"][i] = A.SESSION_END
            ev["order_id"][i] = 0
    return ev


def _top(ex, k):
    bid, ask = ex._engine.best(k, 0), ex._engine.best(k, 1)
    return ((bid[0], bid[1]) if bid else (0, 0)) + ((ask[0], ask[1]) if ask else (0, 0))


@pytest.mark.parametrize("stp", ["none", "decrement", "cancel_oldest", "cancel_newest", "cancel_both"])
def test_bbo_rows_are_every_change_of_the_books_best_levels(stp):
    ev = _stream()
    symbols = ["A", "B"]
    ex = lob.Exchange(symbols=symbols, marketdata=MD, stp=stp)
    want = [[] for _ in symbols]
    last = [None for _ in symbols]
    n_fills = 0
    for i in range(len(ev)):
        _, fills = ex.apply(ev[i:i + 1])
        n_fills += len(fills)
        k = int(ev["symbol"][i])
        top = _top(ex, k)
        if top != last[k]:
            want[k].append((int(ev["ts_ns"][i]), ex._engine.seq) + top)
            last[k] = top
    assert n_fills > 150                                 # the stream trades (icebergs refresh, STP meets)
    for k in range(len(symbols)):
        got = [tuple(r) for r in ex.marketdata._rec.bbo(k).tolist()]
        assert len(want[k]) > 150
        assert got == want[k], (stp, k, next(j for j, (a, b) in enumerate(zip(got, want[k])) if a != b))
    assert ex.marketdata._rec.clock == int(ev["ts_ns"][-1])
    # the same events in one batch and in odd chunks record the same (bbo, tape, trades, snapshots, counts)
    one = lob.Exchange(symbols=symbols, marketdata=MD, stp=stp)
    one.apply(ev)
    chunks = lob.Exchange(symbols=symbols, marketdata=MD, stp=stp)
    for j in range(0, len(ev), 61):
        chunks.apply(ev[j:j + 61])
    for other, what in ((one, "one apply"), (chunks, "chunks of 61")):
        _assert_same(_recorded(ex), _recorded(other), what)
        assert other.marketdata._rec.clock == ex.marketdata._rec.clock
        assert other.state_hash() == ex.state_hash()


def test_a_recorder_attached_to_populated_books_records_their_best_levels_at_their_next_event():
    # the books have orders before the recorder exists: the first event the recorder sees on each, even a
    # cancel far behind the best, records the best levels (the engine leaves nothing out before the recorder
    # holds them), also on a symbol the recorder already made room for at a snapshot
    ex = lob.Exchange(symbols=["X", "Y"], marketdata=False)
    for sym in ("X", "Y"):
        for j, (side, px) in enumerate([("buy", 9.99), ("buy", 9.95), ("sell", 10.01), ("sell", 10.05)]):
            ex.submit(sym, side, 5, price=px, order_id=j + 1, ts_ns=1_000 + j)
    MarketData(ex, **MD)
    ex.cancel("X", 2, ts_ns=2_000)                        # behind the best bid
    ex.cancel("X", 4, ts_ns=3_000)                        # behind the best ask: records nothing new
    ex.cancel("X", 1, ts_ns=4_000)                        # the best bid: the bid side is now empty
    ex.cancel("Y", 2, ts_ns=20_000_000)                   # after snapshots of both books: behind the best bid
    ex.cancel("Y", 4, ts_ns=20_000_001)
    rows = ex.marketdata._rec.bbo(0).tolist()
    assert [r[:1] + r[2:] for r in rows] == [[2_000, 999, 5, 1001, 5], [4_000, 0, 0, 1001, 5]]
    assert len(ex.marketdata._rec.snapshots(1)) > 0
    rows = ex.marketdata._rec.bbo(1).tolist()
    assert [r[:1] + r[2:] for r in rows] == [[20_000_000, 999, 5, 1001, 5]]
    assert ex.marketdata._rec.clock == 20_000_001


def test_the_clock_moves_on_events_left_out():
    ex = lob.Exchange(symbols=["X"], marketdata=MD)
    ex.submit("X", "buy", 5, price=9.99, order_id=1, ts_ns=1_000)
    ex.submit("X", "buy", 5, price=9.98, order_id=2, ts_ns=2_000)      # behind the best: left out
    assert ex.marketdata._rec.clock == 2_000
    ex.cancel("X", 2, ts_ns=3_000)                                        # behind the best: left out
    assert ex.marketdata._rec.clock == 3_000
    assert [r[0] for r in ex.marketdata._rec.bbo(0).tolist()] == [1_000]


@pytest.mark.parametrize("bbo_size", [1, 16, 50, 100])
def test_a_bounded_bbo_ring_keeps_the_newest_rows_read_at_any_point(bbo_size):
    # the engine writes BBO rows into the ring's free slots itself and the recorder counts them in when it is
    # read or out of room: reading between batches (mid-region), rolling at the bound and growing by doubling
    # keep exactly the newest bbo_size rows, in order, and count the ones dropped
    ev = _stream()
    full = lob.Exchange(symbols=["A", "B"], marketdata=MD)
    small = lob.Exchange(symbols=["A", "B"], marketdata=dict(MD, bbo_size=bbo_size))
    for j in range(0, len(ev), 37):
        full.apply(ev[j:j + 37])
        small.apply(ev[j:j + 37])
        if j % 111 == 0 or j + 37 >= len(ev):
            for k in range(2):
                want = full.marketdata._rec.bbo(k)
                got = small.marketdata._rec.bbo(k)
                np.testing.assert_array_equal(got, want[-bbo_size:])
                c = small.marketdata._rec.counts(k)
                assert c["bbo"] == len(got) and c["bbo_dropped"] == len(want) - len(got)
    assert min(len(full.marketdata._rec.bbo(k)) for k in range(2)) > 150
