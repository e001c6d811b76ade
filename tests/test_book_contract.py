"""One contract, two implementations: every test runs on the compiled engine and on the ReferenceBook."""
import numpy as np
import pytest

import lob
from lob import Action, OrderType, Reason, Status, TIF
from lob.testing import ReferenceBook

BUY, SELL = 0, 1


class Engine:
    def __init__(self, **spec):
        self.ex = lob.Exchange()
        self.ex.add_symbol("S", tick_size=1)
        s = dict(min_qty=1, max_qty=0, band_bps=0, ref_price=0, market_band_ticks=0, stp=0, modify_policy=0)
        s.update(spec)
        self.ex._engine.set_spec(0, *s.values())

    def run(self, *events):
        return self.ex.apply(_events(events))

    def orders(self):
        return self.ex._engine.orders(0)


class Reference:
    def __init__(self, **spec):
        self.ref = ReferenceBook(1, [spec])

    def run(self, *events):
        return self.ref.apply(_events(events))

    def orders(self):
        return self.ref.orders(0)


def _events(rows):
    ev = lob.empty_events(len(rows))
    for i, row in enumerate(rows):
        for k, v in row.items():
            ev[k][i] = v
        ev["ts_ns"][i] = ev["ts_ns"][i] or i + 1
    return ev


def add(oid, side, price, qty, **kw):
    return dict(action=Action.ADD, order_id=oid, side=side, price_ticks=price, qty_lots=qty, **kw)


def cancel(oid, **kw):
    return dict(action=Action.CANCEL, order_id=oid, **kw)


def modify(oid, qty, price=0, **kw):
    return dict(action=Action.MODIFY, order_id=oid, qty_lots=qty, price_ticks=price, **kw)


def reduce(oid, by, **kw):
    return dict(action=Action.REDUCE, order_id=oid, qty_lots=by, **kw)


@pytest.fixture(params=[Engine, Reference], ids=["engine", "reference"])
def impl(request):
    return request.param


def ids(orders):
    return orders["order_id"].tolist()


def test_price_time_priority_and_maker_price(impl):
    b = impl()
    b.run(add(1, SELL, 101, 5), add(2, SELL, 100, 5), add(3, SELL, 100, 5))
    reports, fills = b.run(add(4, BUY, 102, 12))
    assert fills["maker_order_id"].tolist() == [2, 3, 1]          # best price first, then time
    assert fills["price_ticks"].tolist() == [100, 100, 101]       # the maker's price
    assert reports[0]["status"] == Status.FILLED and reports[0]["notional"] == 100 * 10 + 101 * 2
    assert ids(b.orders()) == [1] and b.orders()["qty_lots"].tolist() == [3]


def test_partial_fill_rests_remainder(impl):
    b = impl()
    b.run(add(1, SELL, 100, 3))
    reports, _ = b.run(add(2, BUY, 100, 10))
    r = reports[0]
    assert (r["status"], r["filled_lots"], r["remaining_lots"]) == (Status.PARTIALLY_FILLED, 3, 7)
    assert b.orders()[["order_id", "side", "qty_lots"]].tolist() == [(2, BUY, 7)]


def test_market_never_rests(impl):
    b = impl()
    b.run(add(1, SELL, 100, 3))
    reports, fills = b.run(add(2, BUY, 0, 10, type=OrderType.MARKET))
    assert fills["qty_lots"].tolist() == [3]
    assert (reports[0]["status"], reports[0]["reason"]) == (Status.CANCELLED, Reason.NO_LIQUIDITY)
    assert len(b.orders()) == 0
    reports, fills = b.run(add(3, SELL, 0, 1, type=OrderType.MARKET))
    assert len(fills) == 0 and reports[0]["reason"] == Reason.NO_LIQUIDITY


def test_market_protection_band(impl):
    b = impl(market_band_ticks=1)
    b.run(add(1, SELL, 100, 1), add(2, SELL, 101, 1), add(3, SELL, 102, 1))
    _, fills = b.run(add(4, BUY, 0, 5, type=OrderType.MARKET))
    assert fills["price_ticks"].tolist() == [100, 101]


def test_ioc_and_fok(impl):
    b = impl()
    b.run(add(1, SELL, 100, 3), add(2, SELL, 101, 3))
    reports, fills = b.run(add(3, BUY, 100, 5, tif=TIF.IOC))
    assert fills["qty_lots"].tolist() == [3] and reports[0]["reason"] == Reason.NO_LIQUIDITY
    reports, fills = b.run(add(4, BUY, 101, 5, tif=TIF.FOK))         # only 3 reachable: nothing fills
    assert len(fills) == 0 and reports[0]["reason"] == Reason.FOK_UNFILLABLE
    reports, fills = b.run(add(5, BUY, 101, 3, tif=TIF.FOK))
    assert fills["qty_lots"].tolist() == [3] and reports[0]["status"] == Status.FILLED


def test_post_only_reject_and_slide(impl):
    b = impl()
    b.run(add(1, SELL, 100, 3))
    reports, fills = b.run(add(2, BUY, 100, 1, flags=1))
    assert reports[0]["reason"] == Reason.POST_ONLY_WOULD_CROSS and len(fills) == 0
    reports, fills = b.run(add(3, BUY, 105, 1, flags=2))
    assert reports[0]["status"] == Status.NEW and reports[0]["price_ticks"] == 99 and len(fills) == 0


def test_iceberg_refresh_goes_to_the_back(impl):
    b = impl()
    b.run(add(1, SELL, 100, 10, display_lots=3), add(2, SELL, 100, 2))
    _, fills = b.run(add(3, BUY, 100, 4))
    # peak of 3 filled, refreshed peak goes behind order 2, which fills next
    assert list(zip(fills["maker_order_id"].tolist(), fills["qty_lots"].tolist())) == [(1, 3), (2, 1)]
    o = b.orders()
    assert ids(o) == [2, 1] and o["visible_lots"].tolist() == [1, 3] and o["qty_lots"].tolist() == [1, 7]


def test_stop_triggers_after_the_triggering_order_in_order(impl):
    b = impl()
    b.run(add(1, SELL, 100, 1), add(2, SELL, 103, 5),
          add(10, BUY, 0, 1, type=OrderType.STOP, stop_ticks=100),
          add(11, BUY, 102, 1, type=OrderType.STOP_LIMIT, stop_ticks=100))
    reports, fills = b.run(add(3, BUY, 100, 1))
    # the trade at 100 triggers both stops; they are released after order 3, in arrival order
    assert reports["order_id"].tolist() == [3, 10, 11]
    assert fills["taker_order_id"].tolist() == [3, 10] and fills["price_ticks"].tolist() == [100, 103]
    assert reports[2]["status"] == Status.NEW        # stop-limit at 102 rests below the 103 ask


def test_cancel_unknown_and_not_owner(impl):
    b = impl()
    b.run(add(1, BUY, 99, 5, owner=7))
    reports, _ = b.run(cancel(2), cancel(1, owner=8), cancel(1, owner=7))
    assert reports["reason"].tolist() == [Reason.UNKNOWN_ORDER, Reason.NOT_OWNER, 0]
    assert reports["status"].tolist() == [Status.REJECTED, Status.REJECTED, Status.CANCELLED]


def test_modify_fix_semantics(impl):
    b = impl()
    b.run(add(1, BUY, 99, 10), add(2, BUY, 99, 10), add(3, SELL, 99, 4))   # order 1 fills 4
    reports, _ = b.run(modify(1, 8))           # total 8, 4 filled -> 4 open, down: keeps priority
    assert reports[0]["remaining_lots"] == 4 and ids(b.orders()) == [1, 2]
    reports, _ = b.run(modify(1, 12))          # up: loses priority
    assert ids(b.orders()) == [2, 1] and b.orders()["qty_lots"].tolist() == [10, 8]
    reports, _ = b.run(modify(1, 0))
    assert (reports[0]["status"], reports[0]["reason"]) == (Status.REJECTED, Reason.INVALID_QTY)
    reports, _ = b.run(modify(1, 4))           # total at the filled quantity ends the order
    assert reports[0]["status"] == Status.FILLED and ids(b.orders()) == [2]


def test_modify_to_marketable_price_matches_at_once(impl):
    b = impl()
    b.run(add(1, SELL, 101, 5), add(2, BUY, 99, 5))
    reports, fills = b.run(modify(2, 5, price=101))
    assert fills["qty_lots"].tolist() == [5] and reports[0]["status"] == Status.FILLED


def test_always_lose_policy(impl):
    b = impl(modify_policy=1)
    b.run(add(1, BUY, 99, 10), add(2, BUY, 99, 10))
    b.run(modify(1, 5))
    assert ids(b.orders()) == [2, 1]


def test_reduce_keeps_priority(impl):
    b = impl()
    b.run(add(1, BUY, 99, 10), add(2, BUY, 99, 10))
    reports, _ = b.run(reduce(1, 4))
    assert ids(b.orders()) == [1, 2] and reports[0]["remaining_lots"] == 6
    reports, _ = b.run(reduce(1, 6))
    assert reports[0]["status"] == Status.CANCELLED and ids(b.orders()) == [2]


@pytest.mark.parametrize("stp, fills_expected, resting, status", [
    (1, [], [1, 2], Status.CANCELLED),        # cancel_newest: incoming cancelled
    (2, [(2, 5)], [2], Status.FILLED),        # cancel_oldest: own order cancelled, next trades
    (3, [], [2], Status.CANCELLED),           # cancel_both
    (4, [(2, 2)], [2], Status.CANCELLED),     # decrement: 3 decremented away, 2 trade
])
def test_self_trade_prevention(impl, stp, fills_expected, resting, status):
    b = impl(stp=stp)
    b.run(add(1, SELL, 100, 3, owner=5), add(2, SELL, 100, 10, owner=6))
    reports, fills = b.run(add(3, BUY, 100, 5, owner=5))
    assert list(zip(fills["maker_order_id"].tolist(), fills["qty_lots"].tolist())) == fills_expected
    assert ids(b.orders()) == resting
    assert reports[0]["status"] == status


def test_validation_reasons(impl):
    b = impl(min_qty=2, max_qty=100, band_bps=1000, ref_price=100)
    reports, _ = b.run(add(1, BUY, 99, 1), add(2, BUY, 99, 101), add(3, BUY, 89, 5), add(4, BUY, 0, 5),
                       add(5, BUY, 99, 5), add(5, BUY, 99, 5))
    assert reports["reason"].tolist() == [Reason.INVALID_QTY, Reason.INVALID_QTY, Reason.PRICE_BAND,
                                          Reason.INVALID_PRICE, 0, Reason.DUPLICATE_ORDER_ID]


def test_day_orders_expire_at_session_end_and_halt(impl):
    b = impl()
    b.run(add(1, BUY, 99, 5, tif=TIF.DAY), add(2, BUY, 98, 5))
    reports, _ = b.run(dict(action=Action.SESSION_END))
    assert reports["order_id"].tolist() == [1] and reports[0]["reason"] == Reason.EXPIRED
    reports, _ = b.run(dict(action=Action.HALT), add(3, BUY, 99, 1), cancel(2), dict(action=Action.RESUME),
                       add(4, BUY, 99, 1))
    assert reports["reason"].tolist() == [Reason.HALTED, 0, 0]


def test_sequence_numbers_are_shared_and_increasing(impl):
    b = impl()
    reports, fills = b.run(add(1, SELL, 100, 5), add(2, BUY, 100, 2), add(3, BUY, 100, 2))
    seqs = sorted(reports["seq"].tolist() + fills["seq"].tolist())
    assert seqs == list(range(1, len(seqs) + 1))
    assert reports["seq"][1] < fills["seq"][0] < reports["seq"][2]


def test_auto_ids_stay_above_caller_ids(impl):
    b = impl()
    reports, _ = b.run(add(0, BUY, 90, 1), add(10, BUY, 90, 1), add(0, BUY, 90, 1))
    assert reports["order_id"].tolist() == [1, 10, 11]
