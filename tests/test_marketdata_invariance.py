"""Market data does not depend on how the events are batched: the tape, the trades behind the bars, the BBO
changes and the L2 snapshots are identical whether the events come one by one (per-call API), in chunks or
in one ``apply``. On a small generated stream (always) and on the shared benchmark streams (when
``../shared`` is beside the clone)."""
import os

import numpy as np
import pytest

import lob
from lob.testing.streams import bench_events

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench")


def _recorded(ex):
    md = ex.marketdata
    out = {}
    for s in ex.symbols:
        i = ex.symbol_index(s)
        out[s] = {"tape": md._rec.tape(i), "trades": md._rec.trades(i), "bbo": md._rec.bbo(i),
                  "snapshots": _snapshots(md, i), "counts": md._rec.counts(i)}
    return out


def _snapshots(md, i):
    # rows past a side's level count are not part of a snapshot: zero them before comparing
    a = md._rec.snapshots(i)
    lv = a[:, 4:].reshape(len(a), 2, md.snapshot_depth, 3).copy()
    lv[np.arange(md.snapshot_depth)[None, None, :] >= a[:, 2:4][:, :, None]] = 0
    return np.concatenate([a[:, :4], lv.reshape(len(a), -1)], axis=1)


def _assert_same(a, b, what):
    assert a.keys() == b.keys()
    for s in a:
        for k in a[s]:
            if k == "counts":
                assert a[s][k] == b[s][k], (what, s, k)
            else:
                np.testing.assert_array_equal(a[s][k], b[s][k], err_msg=f"{what}: {s} {k}")


def _per_call(ex, ev, symbols):
    """Each event through the per-call API, as a user writes it (string sides, float prices)."""
    submit, cancel, modify = ex.submit, ex.cancel, ex.modify
    cols = {f: ev[f].tolist() for f in ("symbol", "action", "side", "type", "price_ticks", "qty_lots", "order_id",
                                        "owner", "ts_ns", "tif", "display_lots", "flags")}
    for k in range(len(ev)):
        sym = symbols[cols["symbol"][k]]
        act, ts, oid, owner = cols["action"][k], cols["ts_ns"][k], cols["order_id"][k], cols["owner"][k]
        px = cols["price_ticks"][k] / 100
        if act == lob.Action.ADD:
            market = cols["type"][k] == lob.OrderType.MARKET
            submit(sym, "buy" if cols["side"][k] == 0 else "sell", cols["qty_lots"][k],
                   price=None if market else px, type="market" if market else "limit",
                   tif=("gtc", "ioc", "fok", "day")[cols["tif"][k]], owner=owner,
                   display_qty=cols["display_lots"][k] or None, order_id=oid, ts_ns=ts,
                   post_only=(False, "reject", "slide")[cols["flags"][k]])
        elif act == lob.Action.CANCEL:
            cancel(sym, oid, ts_ns=ts)
        elif act == lob.Action.MODIFY:
            modify(sym, oid, qty=cols["qty_lots"][k], price=px if px else None, ts_ns=ts)
        else:
            ex._control(sym, act, ts_ns=ts)


def _generated(n=6000, seed=7, n_sym=3):
    """Limits, markets, IOC/DAY orders, icebergs, cancels, modifies and session ends on a few symbols, with
    owners, several events at the same ns and gaps of many snapshot intervals."""
    rng = np.random.default_rng(seed)
    ev = lob.empty_events(n)
    gaps = rng.choice([0, 1, 1_000, 3_000_000, 40_000_000, 750_000_000], n, p=[.1, .1, .3, .3, .18, .02])
    ev["ts_ns"] = 10 ** 12 + np.cumsum(gaps)
    ev["symbol"] = rng.integers(0, n_sym, n)
    ev["side"] = rng.integers(0, 2, n)
    ev["qty_lots"] = rng.integers(1, 40, n)
    ev["owner"] = rng.integers(0, 5, n)
    ev["price_ticks"] = 1000 + rng.integers(-10, 11, n)
    kind = rng.choice(6, n, p=[0.55, 0.05, 0.22, 0.1, 0.06, 0.02])
    live = []
    for i in range(n):
        ev["order_id"][i] = i + 1
        if kind[i] in (2, 3) and live:
            sym, oid = live[int(rng.integers(len(live)))]
            ev["symbol"][i], ev["order_id"][i], ev["owner"][i] = sym, oid, 0
            if kind[i] == 2:
                ev["action"][i] = lob.Action.CANCEL
            else:
                ev["action"][i] = lob.Action.MODIFY
                ev["price_ticks"][i] = 0 if rng.random() < 0.5 else 1000 + int(rng.integers(-10, 11))
        elif kind[i] == 5:
            ev["action"][i] = lob.Action.SESSION_END
            ev["order_id"][i] = 0
        else:
            live.append((int(ev["symbol"][i]), i + 1))
            if kind[i] == 1:
                ev["type"][i] = lob.OrderType.MARKET
                ev["price_ticks"][i] = 0
            elif kind[i] == 4:
                ev["tif"][i] = int(rng.choice([lob.TIF.IOC, lob.TIF.DAY]))
            elif rng.random() < 0.05:
                ev["display_lots"][i] = min(int(rng.integers(1, 5)), int(ev["qty_lots"][i]))   # peak <= total
            elif rng.random() < 0.08:
                ev["flags"][i] = int(rng.integers(1, 3))              # post-only: reject or slide
    return ev


MD = {"snapshot_interval_ns": 10_000_000, "snapshot_depth": 5, "tape_size": 300, "bbo_size": 1 << 20}


def _three_ways(ev, symbols, md, chunk, **spec):
    one = lob.Exchange(symbols=symbols, marketdata=md, **spec)
    one.apply(ev)
    chunks = lob.Exchange(symbols=symbols, marketdata=md, **spec)
    for i in range(0, len(ev), chunk):
        chunks.apply(ev[i:i + chunk])
    want = _recorded(one)
    _assert_same(want, _recorded(chunks), f"chunks of {chunk}")
    assert one.state_hash() == chunks.state_hash()
    return one, want


@pytest.mark.parametrize("stp", ["none", "cancel_oldest", "decrement"])
def test_generated_stream_is_recorded_the_same_however_it_is_batched(stp):
    ev = _generated()
    symbols = ["A", "B", "C"]
    one, want = _three_ways(ev, symbols, MD, chunk=97, stp=stp)
    # one event per apply, and one event per per-call request
    single = lob.Exchange(symbols=symbols, marketdata=MD, stp=stp)
    for i in range(len(ev)):
        single.apply(ev[i:i + 1])
        # the BBO recorded is the book's after every event (the recorder skips reading the best levels only
        # after events that cannot have moved them)
        k = int(ev["symbol"][i])
        bbo = single.marketdata._rec.bbo(k)
        bid, ask = single._engine.best(k, 0), single._engine.best(k, 1)
        assert tuple(bbo[-1][2:].tolist()) == ((bid[0], bid[1]) if bid else (0, 0)) + ((ask[0], ask[1]) if ask else (0, 0)), i
    _assert_same(want, _recorded(single), "one event per apply")
    calls = lob.Exchange(symbols=symbols, marketdata=MD, stp=stp)
    _per_call(calls, ev, symbols)
    _assert_same(want, _recorded(calls), "per-call API")
    # the stream exercised what it should: trades on every symbol, snapshots at every multiple of the
    # interval from the first event on (gaps of many intervals included), BBO changes
    t0, t1 = int(ev["ts_ns"][0]), int(ev["ts_ns"][-1])
    grid = np.arange((t0 // 10_000_000 + 1) * 10_000_000, t1 + 1, 10_000_000)
    for s in symbols:
        c = want[s]["counts"]
        assert c["fills"] > 100 and c["bbo"] > 100
        np.testing.assert_array_equal(want[s]["snapshots"][:, 0], grid)


def test_snapshot_at_t_is_the_book_after_every_event_before_t():
    ev = _generated(n=3000, seed=3, n_sym=2)
    symbols = ["A", "B"]
    ex = lob.Exchange(symbols=symbols, marketdata={"snapshot_interval_ns": 10_000_000, "snapshot_depth": 4})
    interval = 10_000_000
    seen = {}
    nxt = None
    for i in range(len(ev)):
        ts = int(ev["ts_ns"][i])
        if nxt is None:
            nxt = (ts // interval + 1) * interval
        while nxt <= ts:                      # the book as it stands before the first event at or past nxt
            for s in symbols:
                d = ex.book(s).depth(4)
                seen[(s, nxt)] = (d["bids"], d["asks"])
            nxt += interval
        ex.apply(ev[i:i + 1])
    assert len(seen) > 400
    for s in symbols:
        snaps = ex.l2_snapshots(s)
        times = ex.marketdata.snapshot_times(s)
        assert sorted(k[1] for k in seen if k[0] == s) == times.tolist()
        for ts, g in snaps.groupby("ts_ns"):
            bids = g[g.side == "bid"].sort_values("level")
            asks = g[g.side == "ask"].sort_values("level")
            assert (list(zip(bids.price, bids.qty, bids.orders)), list(zip(asks.price, asks.qty, asks.orders))) \
                == seen[(s, ts)], (s, ts)


def _shared(name):
    path = os.path.join(SHARED, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} is absent: the shared benchmark streams live in ../shared beside the clone")
    ev = bench_events(np.load(path))
    ev["ts_ns"] *= 1_000                         # 1 us apart: stream_1m spans 1 s of event time
    return ev


def test_shared_stream_1m_is_recorded_the_same_however_it_is_batched():
    ev = _shared("stream_1m.npy")
    md = {"snapshot_interval_ns": 10_000_000, "tape_size": 1000, "bbo_size": 1 << 21}
    one, want = _three_ways(ev, ["X"], md, chunk=10_000)
    calls = lob.Exchange(symbols=["X"], marketdata=md)
    _per_call(calls, ev, ["X"])
    _assert_same(want, _recorded(calls), "per-call API")
    c = want["X"]["counts"]
    assert c["fills"] == 397_799 and int(want["X"]["trades"][:, 2].sum()) == 99_960_438
    assert len(want["X"]["snapshots"]) == 99                # every 10 ms of the 1 s, after the first event


def test_shared_stream_deep_is_recorded_the_same_however_it_is_batched():
    ev = _shared("stream_deep_4sym.npy")
    _, want = _three_ways(ev, ["S0", "S1", "S2", "S3"], {"snapshot_interval_ns": 10_000_000, "bbo_size": 1 << 21},
                          chunk=10_000)
    assert sum(w["counts"]["fills"] for w in want.values()) == 642_282
