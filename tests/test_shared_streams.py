"""The shared benchmark streams reproduce their documented facts through ``Exchange.apply``.

These are cross-checks against ../shared/bench (same bytes for everyone); they are skipped, saying so,
on a clone without ../shared beside it.
"""
import json
import os

import numpy as np
import pytest

import lob
from lob.testing.streams import bench_events

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench")


def _stream(name):
    path = os.path.join(SHARED, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} is absent: the shared benchmark workloads are not beside this clone")
    return np.load(path), json.load(open(path.replace(".npy", ".meta.json")))


_events = bench_events


def _check_book(book, facts):
    stats = book.stats()
    bid, ask = book.best_ticks()
    orders = book.orders_array()
    got = dict(resting_orders=stats["resting_orders"], bid_levels=stats["bid_levels"],
               ask_levels=stats["ask_levels"], best_bid=bid, best_ask=ask,
               resting_bid_orders=int((orders["side"] == 0).sum()),
               resting_ask_orders=int((orders["side"] == 1).sum()),
               bid_qty=int(orders["qty_lots"][orders["side"] == 0].sum()),
               ask_qty=int(orders["qty_lots"][orders["side"] == 1].sum()))
    assert got == {k: facts[k] for k in got}
    book.check_integrity()


def test_stream_1m_facts():
    a, meta = _stream("stream_1m.npy")
    ex = lob.Exchange(symbols=["X"])
    reports, fills = ex.apply(_events(a))
    assert len(fills) == meta["n_fills"] == 397_799
    assert int(fills["qty_lots"].sum()) == meta["fill_volume"] == 99_960_438
    # every cancel targets a live order, and nothing is rejected
    assert (reports["status"] != lob.Status.REJECTED).all()
    assert (fills["price_ticks"] > 0).all()
    _check_book(ex.book("X"), meta)


def test_stream_1m_is_deterministic_across_batch_splits():
    a, _ = _stream("stream_1m.npy")
    ev = _events(a[:200_000])
    one = lob.Exchange(symbols=["X"])
    r1, f1 = one.apply(ev)
    two = lob.Exchange(symbols=["X"])
    parts = [two.apply(np.ascontiguousarray(ev[i:i + 30_000])) for i in range(0, len(ev), 30_000)]
    r2 = np.concatenate([p[0] for p in parts])
    f2 = np.concatenate([p[1] for p in parts])
    r2["event_index"] = r1["event_index"]   # indices are per batch
    assert np.array_equal(f1, f2) and np.array_equal(r1, r2)
    assert one.state_hash() == two.state_hash()


def test_stream_deep_4sym_facts():
    a, meta = _stream("stream_deep_4sym.npy")
    ex = lob.Exchange(symbols=["S0", "S1", "S2", "S3"])
    reports, fills = ex.apply(_events(a))
    assert len(fills) == meta["total"]["n_fills"] == 642_282
    assert int(fills["qty_lots"].sum()) == meta["total"]["fill_volume"] == 263_685_360
    for facts in meta["symbols"]:
        i = facts["symbol"]
        mine = fills[fills["symbol"] == i]
        assert len(mine) == facts["n_fills"]
        assert int(mine["qty_lots"].sum()) == facts["fill_volume"]
        _check_book(ex.book(i), facts)
