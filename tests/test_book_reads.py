"""Book reads used in loops: ``Book.order`` (an OrderInfo, no numpy record), ``Book.level``, best prices,
checked against the engine's ORDER_DTYPE records and depth arrays."""
import numpy as np
import pytest

import lob
from lob.errors import InvalidOrderError


def _book():
    ex = lob.Exchange(symbols=["X"], tick_size=0.05, lot_size=10, marketdata=False)
    rng = np.random.default_rng(2)
    ids = []
    for k in range(400):
        side = ("buy", "sell")[k % 2]
        px = (2000 + (-1 if side == "buy" else 1) * int(rng.integers(1, 30))) * 0.05
        qty = 10 * int(rng.integers(1, 9))
        r = ex.submit("X", side, qty, price=px, owner=f"o{k % 3}", ts_ns=k,
                      display_qty=min(20, qty) if k % 7 == 0 else None)     # a peak is at most the total
        ids.append(r.order_id)
    ex.submit("X", "buy", 30, type="stop_limit", price=101.0, stop_price=101.5, order_id=10_000, ts_ns=500)
    return ex, ex.book("X"), ids + [10_000]


def test_order_matches_the_engine_record_field_by_field():
    ex, book, ids = _book()
    for oid in ids:
        rec = ex._engine.order(0, oid)
        o = book.order(oid)
        assert (rec is None) == (o is None)
        if o is None:
            continue
        assert tuple(o) == tuple(rec.tolist())
        assert o.as_dict() == dict(zip(lob.ORDER_DTYPE.names, rec.tolist()))
        for name in lob.ORDER_DTYPE.names:
            assert o[name] == getattr(o, name) == rec[name]
        assert o.price == (round(rec["price_ticks"] * 0.05, 2) if rec["price_ticks"] else None)
        assert o.qty == rec["qty_lots"] * 10 and o.filled_qty == rec["filled_lots"] * 10
        assert o.side_name == ("buy", "sell")[rec["side"]]
        assert o.owner_name == ex.owner_name(int(rec["owner"]))
    stop = book.order(10_000)
    assert stop.pending_stop and stop.stop_price == 101.5 and stop.price == 101.0
    assert book.order(123_456) is None and book.order(2 ** 70) is None
    with pytest.raises(InvalidOrderError, match="order_id"):
        book.order("7")
    with pytest.raises(KeyError, match="nope"):
        book.order(ids[0])["nope"]


def test_level_and_best_match_the_depth():
    ex, book, _ = _book()
    depth = book.depth(10_000)
    for side in ("bids", "asks"):
        for price, qty, n in depth[side]:
            assert book.level(price) == (qty, n)
    assert book.level(1.0) is None
    assert book.level(100.01) is None                     # off the 0.05 grid: no level can be there
    with pytest.raises(InvalidOrderError, match="price"):
        book.level(-1)
    assert book.best_bid() == depth["bids"][0][:2] and book.best_ask() == depth["asks"][0][:2]
    empty = lob.Exchange(symbols=["E"]).book("E")
    assert empty.best_bid() is None and empty.best_ask() is None and empty.level(1.0) is None


def test_modify_without_qty_keeps_the_total():
    ex, book, ids = _book()
    oid = next(i for i in ids if book.order(i) is not None and book.order(i).side_name == "buy")
    before = book.order(oid)
    r = ex.modify("X", oid, price=90.0, ts_ns=10_000)
    assert r.status in ("new", "partially_filled") and book.order(oid).qty == before.qty
    assert book.order(oid).price == 90.0


def test_price_conversion_equals_python_round():
    # SymbolInfo.price computes ticks * units / 10**decimals; it must give exactly round(ticks * tick, decimals)
    from lob._core import SymbolInfo

    rng = np.random.default_rng(5)
    for tick in (0.01, 0.05, 0.25, 0.5, 1, 5, 0.0001, 0.125, 1e-8, 0.1, 2.5, 0.3, 1 / 3):
        si = SymbolInfo("X", 0, tick, 1, [None])
        ticks = np.concatenate([rng.integers(0, 10 ** 6, 3000), rng.integers(0, 2 ** 32, 3000),
                                rng.integers(-1000, 1000, 500), [0, 1, 2 ** 32 - 1]]).tolist()
        assert [si.price(t) for t in ticks] == [round(t * tick, si.price_decimals) for t in ticks], tick
