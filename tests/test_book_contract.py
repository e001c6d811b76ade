"""One contract, two implementations: every test runs on the compiled engine (through ``lob.Exchange.apply``
with integer events) and on the ReferenceBook. Expected values are worked out by hand from docs/matching.md.

The adapter is small on purpose: ``run(*rows) -> (reports, fills)``, ``orders()``, ``depth(side)``,
``best_prices()``; a third implementation only needs those four.
"""
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
        self.ex._engine.set_spec(0, s["min_qty"], s["max_qty"], s["band_bps"], s["ref_price"],
                                 s["market_band_ticks"], s["stp"], s["modify_policy"])

    def run(self, *events):
        return self.ex.apply(_events(events))

    def orders(self):
        return self.ex._engine.orders(0)

    def depth(self, side, n=5):
        return self.ex._engine.depth(0, side, n)

    def best_prices(self):
        return self.ex._engine.best_prices(0)


class Reference:
    def __init__(self, **spec):
        self.ref = ReferenceBook(1, [spec])

    def run(self, *events):
        return self.ref.apply(_events(events))

    def orders(self):
        return self.ref.orders(0)

    def depth(self, side, n=5):
        return self.ref.depth(0, side, n)

    def best_prices(self):
        return self.ref.best_prices(0)


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
    (4, [(2, 2)], [2], Status.FILLED),        # decrement: 3 decremented away, the 2 left trade: filled
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


# --- more of the contract ---------------------------------------------------------------------------

def test_fifo_within_one_level_and_maker_keeps_priority_after_partial_fill(impl):
    b = impl()
    b.run(add(1, BUY, 99, 5), add(2, BUY, 99, 5), add(3, BUY, 99, 5))
    _, fills = b.run(add(4, SELL, 99, 7))
    assert list(zip(fills["maker_order_id"].tolist(), fills["qty_lots"].tolist())) == [(1, 5), (2, 2)]
    o = b.orders()
    assert ids(o) == [2, 3] and o["qty_lots"].tolist() == [3, 5] and o["filled_lots"].tolist() == [2, 0]
    _, fills = b.run(add(5, SELL, 99, 1))                 # the partly filled maker is still first
    assert fills["maker_order_id"].tolist() == [2]


def test_limit_does_not_trade_through_its_price(impl):
    b = impl()
    b.run(add(1, SELL, 101, 5))
    reports, fills = b.run(add(2, BUY, 100, 5))
    assert len(fills) == 0 and reports[0]["status"] == Status.NEW and reports[0]["remaining_lots"] == 5
    assert b.best_prices() == (100, 101)


def test_report_fields_of_a_partial_fill(impl):
    b = impl()
    b.run(add(1, SELL, 100, 2, owner=4), add(2, SELL, 101, 3, owner=4))
    reports, fills = b.run(add(3, BUY, 101, 10, owner=9, ts_ns=77))
    r = reports[0]
    assert (r["order_id"], r["owner"], r["price_ticks"], r["filled_lots"], r["cum_filled_lots"],
            r["remaining_lots"], r["notional"], r["event_index"], r["ts_ns"], r["status"], r["reason"]) == (
        3, 9, 101, 5, 5, 5, 2 * 100 + 3 * 101, 0, 77, Status.PARTIALLY_FILLED, 0)
    assert fills[["maker_owner", "taker_owner", "aggressor", "ts_ns"]].tolist() == [(4, 9, BUY, 77)] * 2
    assert fills["reserved0"].tolist() == [0, 0] and r["reserved"] == 0


def test_market_on_empty_book_and_market_fok(impl):
    b = impl()
    reports, fills = b.run(add(1, BUY, 0, 5, type=OrderType.MARKET))
    assert len(fills) == 0 and (reports[0]["status"], reports[0]["reason"]) == (Status.CANCELLED, Reason.NO_LIQUIDITY)
    assert reports[0]["price_ticks"] == 0
    b.run(add(2, SELL, 100, 3), add(3, SELL, 150, 3))
    reports, fills = b.run(add(4, BUY, 0, 7, type=OrderType.MARKET, tif=TIF.FOK))
    assert len(fills) == 0 and reports[0]["reason"] == Reason.FOK_UNFILLABLE
    reports, fills = b.run(add(5, BUY, 0, 6, type=OrderType.MARKET, tif=TIF.FOK))
    assert fills["price_ticks"].tolist() == [100, 150] and reports[0]["status"] == Status.FILLED


def test_ioc_remainder_never_rests(impl):
    b = impl()
    reports, _ = b.run(add(1, BUY, 100, 5, tif=TIF.IOC))
    assert (reports[0]["status"], reports[0]["reason"], reports[0]["remaining_lots"]) == (
        Status.CANCELLED, Reason.NO_LIQUIDITY, 0)
    assert len(b.orders()) == 0


def test_fok_counts_hidden_iceberg_quantity(impl):
    b = impl()
    b.run(add(1, SELL, 100, 10, display_lots=2))
    reports, fills = b.run(add(2, BUY, 100, 9, tif=TIF.FOK))
    assert reports[0]["status"] == Status.FILLED and sum(fills["qty_lots"].tolist()) == 9
    assert b.orders()["qty_lots"].tolist() == [1]


def test_post_only_sell_slide_and_slide_to_zero(impl):
    b = impl()
    b.run(add(1, BUY, 100, 3))
    reports, _ = b.run(add(2, SELL, 90, 1, flags=2))
    assert reports[0]["price_ticks"] == 101 and b.best_prices() == (100, 101)
    reports, _ = b.run(add(3, SELL, 101, 1, flags=1))        # does not cross: rests
    assert reports[0]["status"] == Status.NEW
    c = impl()
    c.run(add(1, SELL, 1, 3))
    reports, _ = c.run(add(2, BUY, 5, 1, flags=2))           # best ask - 1 = 0: rejected
    assert (reports[0]["status"], reports[0]["reason"]) == (Status.REJECTED, Reason.POST_ONLY_WOULD_CROSS)
    assert ids(c.orders()) == [1]


def test_iceberg_shows_only_its_peak_and_refreshes_with_the_aggressor_time(impl):
    b = impl()
    b.run(add(1, SELL, 100, 10, display_lots=3, ts_ns=5))
    assert b.depth(SELL).tolist() == [[100, 3, 1, 10]]
    reports, fills = b.run(add(2, BUY, 100, 7, ts_ns=50))     # alone at its level: refreshes twice
    assert fills["qty_lots"].tolist() == [3, 3, 1] and reports[0]["status"] == Status.FILLED
    o = b.orders()
    assert (o["qty_lots"][0], o["visible_lots"][0], o["ts_ns"][0], o["filled_lots"][0]) == (3, 2, 50, 7)
    assert b.depth(SELL).tolist() == [[100, 2, 1, 3]]


def test_resting_iceberg_from_a_partly_filled_aggressor(impl):
    b = impl()
    b.run(add(1, SELL, 100, 2))
    reports, _ = b.run(add(2, BUY, 100, 12, display_lots=4))
    assert reports[0]["remaining_lots"] == 10
    o = b.orders()
    assert (o["qty_lots"][0], o["visible_lots"][0], o["display_lots"][0]) == (10, 4, 4)


def test_stop_is_held_until_the_first_trade_and_invisible(impl):
    b = impl()
    reports, _ = b.run(add(1, BUY, 0, 5, type=OrderType.STOP, stop_ticks=1))   # no trade yet: no trigger
    assert reports[0]["status"] == Status.NEW and reports[0]["remaining_lots"] == 5
    assert b.best_prices() == (0, 0) and b.orders()["state"].tolist() == [2]
    assert b.orders()["stop_ticks"].tolist() == [1]


def test_sell_stop_and_stop_already_triggered_on_arrival(impl):
    b = impl()
    b.run(add(1, BUY, 100, 1), add(2, BUY, 98, 10), add(3, SELL, 100, 1))      # last = 100
    reports, fills = b.run(add(4, SELL, 0, 2, type=OrderType.STOP, stop_ticks=101))   # 100 <= 101: at once
    assert fills["price_ticks"].tolist() == [98] and reports[0]["status"] == Status.FILLED
    b.run(add(5, SELL, 0, 3, type=OrderType.STOP, stop_ticks=97))                # held
    reports, fills = b.run(add(6, SELL, 97, 9))                                # trades 8 at 98, rests 1 at 97
    assert reports["order_id"].tolist() == [6]                                  # last 98 > 97: not triggered
    reports, fills = b.run(add(7, BUY, 97, 1))                                  # trade at 97 triggers stop 5
    assert reports["order_id"].tolist() == [7, 5]
    assert (reports[1]["action"], reports[1]["status"], reports[1]["reason"]) == (
        Action.ADD, Status.CANCELLED, Reason.NO_LIQUIDITY)                    # no bids left: market cancelled


def test_stop_cascade_rechecks_after_each_release(impl):
    b = impl()
    b.run(add(1, SELL, 100, 1), add(2, SELL, 101, 1), add(3, SELL, 102, 1), add(4, SELL, 103, 1),
          add(10, BUY, 0, 1, type=OrderType.STOP, stop_ticks=102),      # triggered only by the cascade
          add(11, BUY, 0, 1, type=OrderType.STOP, stop_ticks=100),
          add(12, BUY, 0, 1, type=OrderType.STOP, stop_ticks=101))
    reports, fills = b.run(add(5, BUY, 100, 1, ts_ns=900))
    # 5 trades at 100 -> 11 released (-> 101) -> 12 triggers (-> 102) -> 10 triggers (-> 103)
    assert reports["order_id"].tolist() == [5, 11, 12, 10]
    assert fills["taker_order_id"].tolist() == [5, 11, 12, 10]
    assert fills["price_ticks"].tolist() == [100, 101, 102, 103]
    assert reports["seq"].tolist() == sorted(reports["seq"].tolist())
    assert set(reports["event_index"].tolist()) == {0} and set(fills["ts_ns"].tolist()) == {900}
    assert len(b.orders()) == 0


def test_triggered_stops_are_released_in_arrival_order_not_stop_price_order(impl):
    b = impl()
    b.run(add(1, SELL, 100, 1), add(2, SELL, 105, 10),
          add(10, BUY, 0, 1, type=OrderType.STOP, stop_ticks=100),
          add(11, BUY, 0, 1, type=OrderType.STOP, stop_ticks=90))
    reports, _ = b.run(add(3, BUY, 100, 1))
    assert reports["order_id"].tolist() == [3, 10, 11]


def test_stop_limit_released_gets_new_time_and_rests(impl):
    b = impl()
    b.run(add(1, SELL, 100, 1), add(2, BUY, 99, 1, ts_ns=3),
          add(10, BUY, 99, 4, type=OrderType.STOP_LIMIT, stop_ticks=100, ts_ns=4))
    reports, _ = b.run(add(3, BUY, 100, 1, ts_ns=60))
    assert reports[1][["order_id", "action", "status", "price_ticks", "remaining_lots", "type"]].tolist() == (
        10, Action.ADD, Status.NEW, 99, 4, OrderType.STOP_LIMIT)
    o = b.orders()
    assert ids(o) == [2, 10] and o["ts_ns"].tolist() == [3, 60] and o["state"].tolist() == [1, 1]


def test_cancel_pending_stop_and_cancel_reports_cum_filled(impl):
    b = impl()
    b.run(add(1, BUY, 100, 10), add(2, SELL, 100, 4), add(3, SELL, 0, 1, type=OrderType.STOP, stop_ticks=90))
    reports, _ = b.run(cancel(1), cancel(3), cancel(3))
    assert reports[["status", "cum_filled_lots", "remaining_lots", "reason"]].tolist() == [
        (Status.CANCELLED, 4, 0, 0), (Status.CANCELLED, 0, 0, 0), (Status.REJECTED, 0, 0, Reason.UNKNOWN_ORDER)]
    assert len(b.orders()) == 0


def test_anonymous_owner_may_cancel_anything(impl):
    b = impl()
    b.run(add(1, BUY, 99, 5, owner=7))
    reports, _ = b.run(reduce(1, 1, owner=8), modify(1, 3, owner=8), cancel(1, owner=0))
    assert reports["reason"].tolist() == [Reason.NOT_OWNER, Reason.NOT_OWNER, 0]
    assert reports[2]["status"] == Status.CANCELLED


def test_modify_new_price_loses_priority(impl):
    b = impl()
    b.run(add(1, BUY, 99, 5), add(2, BUY, 98, 5), add(3, BUY, 98, 5))
    reports, fills = b.run(modify(1, 5, price=98, ts_ns=40))
    assert len(fills) == 0 and reports[0]["price_ticks"] == 98 and reports[0]["status"] == Status.NEW
    o = b.orders()
    assert ids(o) == [2, 3, 1] and o["ts_ns"].tolist()[-1] == 40


def test_modify_unchanged_acknowledges_and_keeps_priority(impl):
    b = impl(modify_policy=1)
    b.run(add(1, BUY, 99, 5, ts_ns=1), add(2, BUY, 99, 5))
    reports, _ = b.run(modify(1, 5, price=99))
    assert (reports[0]["status"], reports[0]["reason"], reports[0]["remaining_lots"]) == (Status.NEW, 0, 5)
    assert ids(b.orders()) == [1, 2] and b.orders()["ts_ns"][0] == 1


def test_modify_rejections_leave_the_order_unchanged(impl):
    b = impl(max_qty=50, band_bps=1000, ref_price=100)
    b.run(add(1, BUY, 99, 5, flags=1), add(2, SELL, 101, 5), add(3, BUY, 99, 5))
    before = b.orders()
    reports, fills = b.run(modify(1, -1), modify(1, 51), modify(1, 5, price=120), modify(1, 5, price=101),
                           modify(1, 5, price=-4), modify(42, 5))
    assert reports["reason"].tolist() == [Reason.INVALID_QTY, Reason.INVALID_QTY, Reason.PRICE_BAND,
                                          Reason.POST_ONLY_WOULD_CROSS, Reason.INVALID_PRICE, Reason.UNKNOWN_ORDER]
    assert set(reports["status"].tolist()) == {Status.REJECTED} and len(fills) == 0
    assert np.array_equal(b.orders(), before)


def test_modify_qty_semantics_are_the_total_including_filled(impl):
    b = impl()
    b.run(add(1, SELL, 100, 10), add(2, BUY, 100, 6))              # order 1: 6 filled, 4 open
    reports, _ = b.run(modify(1, 8))                               # 8 total -> 2 open
    assert reports[0][["status", "cum_filled_lots", "remaining_lots"]].tolist() == (Status.PARTIALLY_FILLED, 6, 2)
    reports, _ = b.run(modify(1, 6))
    assert reports[0][["status", "remaining_lots"]].tolist() == (Status.FILLED, 0) and len(b.orders()) == 0


def test_modify_pending_stop_keeps_its_place_and_can_trigger_at_once(impl):
    b = impl()
    b.run(add(1, SELL, 100, 1), add(2, BUY, 100, 1),               # last = 100
          add(3, SELL, 110, 20),
          add(10, BUY, 105, 2, type=OrderType.STOP_LIMIT, stop_ticks=115),
          add(11, BUY, 0, 2, type=OrderType.STOP, stop_ticks=106))
    reports, _ = b.run(modify(10, 3, price=111))                   # qty and limit change, still pending
    assert reports[0][["status", "remaining_lots", "price_ticks"]].tolist() == (Status.NEW, 3, 111)
    assert ids(b.orders()) == [3, 10, 11]
    reports, fills = b.run(dict(action=Action.MODIFY, order_id=11, qty_lots=2, stop_ticks=100))
    assert reports["order_id"].tolist() == [11, 11] and reports[1]["action"] == Action.ADD
    assert fills["price_ticks"].tolist() == [110] and reports[1]["status"] == Status.FILLED
    assert b.orders()[["order_id", "state"]].tolist() == [(3, 1), (10, 2)]


def test_reduce_rules(impl):
    b = impl()
    b.run(add(1, SELL, 100, 10, display_lots=4), add(2, SELL, 100, 1))
    reports, _ = b.run(reduce(1, 0), reduce(1, -2), reduce(1, 7))
    assert reports["reason"].tolist() == [Reason.INVALID_QTY, Reason.INVALID_QTY, 0]
    o = b.orders()
    assert ids(o) == [1, 2] and (o["qty_lots"][0], o["visible_lots"][0]) == (3, 3)
    reports, _ = b.run(reduce(1, 99))
    assert reports[0]["status"] == Status.CANCELLED and ids(b.orders()) == [2]


def test_stp_side_effect_reports(impl):
    b = impl(stp=2)
    b.run(add(1, SELL, 100, 3, owner=5), add(2, SELL, 100, 4, owner=6))
    reports, fills = b.run(add(3, BUY, 100, 4, owner=5, ts_ns=99))
    assert reports[["order_id", "action", "status", "reason"]].tolist() == [
        (3, Action.ADD, Status.FILLED, 0), (1, Action.CANCEL, Status.CANCELLED, Reason.SELF_TRADE)]
    assert reports["event_index"].tolist() == [0, 0] and reports["ts_ns"].tolist() == [99, 99]
    assert reports["seq"][0] < reports["seq"][1] < fills["seq"][0]   # cancelled before the trade behind it


def test_stp_decrement_reports_and_iceberg_refresh(impl):
    b = impl(stp=4)
    b.run(add(1, SELL, 100, 10, owner=5, display_lots=3), add(2, SELL, 100, 5, owner=6))
    reports, fills = b.run(add(3, BUY, 100, 4, owner=5))
    # 3 decremented against the peak of order 1 (refreshes to the back), then 1 trades with order 2
    assert reports[["order_id", "action", "status", "reason", "remaining_lots"]].tolist() == [
        (3, Action.ADD, Status.FILLED, 0, 0),
        (1, Action.REDUCE, Status.NEW, Reason.SELF_TRADE, 7)]
    assert fills[["maker_order_id", "qty_lots"]].tolist() == [(2, 1)]
    o = b.orders()
    assert ids(o) == [2, 1] and o["qty_lots"].tolist() == [4, 7] and o["visible_lots"].tolist() == [4, 3]


@pytest.mark.parametrize("rows, fills_expected, status, reason, filled", [
    # decremented by 3, then the 2 left fill: it ends filled, having bought 2 (Coinbase dc, Binance DECREMENT)
    ([add(1, SELL, 100, 3, owner=5), add(2, SELL, 100, 9, owner=6)], [(2, 2)], Status.FILLED, 0, 2),
    # fills 2, then STP takes the 3 left: STP left it with nothing, so cancelled / self_trade
    ([add(2, SELL, 100, 2, owner=6), add(1, SELL, 100, 9, owner=5)], [(2, 2)], Status.CANCELLED,
     Reason.SELF_TRADE, 2),
    # STP takes all 5: nothing filled
    ([add(1, SELL, 100, 9, owner=5)], [], Status.CANCELLED, Reason.SELF_TRADE, 0),
    # decremented by 3, fills 1, then 1 more is decremented by a second own order: STP had the last word
    ([add(1, SELL, 100, 3, owner=5), add(2, SELL, 100, 1, owner=6), add(3, SELL, 100, 4, owner=5)], [(2, 1)],
     Status.CANCELLED, Reason.SELF_TRADE, 1),
])
def test_stp_decrement_final_status_follows_the_last_reduction(impl, rows, fills_expected, status, reason, filled):
    b = impl(stp=4)
    b.run(*rows)
    reports, fills = b.run(add(9, BUY, 100, 5, owner=5))
    assert list(zip(fills["maker_order_id"].tolist(), fills["qty_lots"].tolist())) == fills_expected
    r = reports[0]
    assert (r["status"], r["reason"], r["cum_filled_lots"], r["remaining_lots"]) == (status, reason, filled, 0)
    assert 9 not in ids(b.orders())


def test_iceberg_display_above_total_is_rejected(impl):
    b = impl()
    reports, _ = b.run(add(1, BUY, 99, 5, display_lots=6), add(2, BUY, 99, 5, display_lots=5),
                       add(3, SELL, 0, 5, type=OrderType.STOP, stop_ticks=90, display_lots=7))
    assert reports[["status", "reason"]].tolist() == [(Status.REJECTED, Reason.INVALID_QTY), (Status.NEW, 0),
                                                      (Status.REJECTED, Reason.INVALID_QTY)]
    o = b.orders()                                # display == total: accepted, fully displayed
    assert ids(o) == [2] and o["display_lots"].tolist() == [0] and o["visible_lots"].tolist() == [5]


def test_stp_ignores_anonymous_owner(impl):
    b = impl(stp=1)
    b.run(add(1, SELL, 100, 3, owner=0))
    _, fills = b.run(add(2, BUY, 100, 3, owner=0))
    assert fills["qty_lots"].tolist() == [3]


def test_fok_excludes_orders_stp_would_not_trade_with(impl):
    b = impl(stp=1)                                                # cancel_newest: only orders ahead count
    b.run(add(1, SELL, 100, 2, owner=6), add(2, SELL, 100, 3, owner=5), add(3, SELL, 100, 9, owner=6))
    reports, fills = b.run(add(4, BUY, 100, 3, owner=5, tif=TIF.FOK))
    assert len(fills) == 0 and reports[0]["reason"] == Reason.FOK_UNFILLABLE
    c = impl(stp=2)                                                # cancel_oldest: own orders just do not count
    c.run(add(1, SELL, 100, 2, owner=6), add(2, SELL, 100, 3, owner=5), add(3, SELL, 100, 9, owner=6))
    reports, fills = c.run(add(4, BUY, 100, 11, owner=5, tif=TIF.FOK))
    assert reports[0]["status"] == Status.FILLED and fills["maker_order_id"].tolist() == [1, 3]
    assert reports[1][["order_id", "reason"]].tolist() == (2, Reason.SELF_TRADE)


def test_validation_order_and_stop_and_display_reasons(impl):
    b = impl()
    reports, _ = b.run(dict(action=Action.HALT), add(1, BUY, 0, 0), dict(action=Action.RESUME),
                       add(2, BUY, 0, 0), add(3, BUY, 99, 5, display_lots=-1),
                       add(4, BUY, 0, 5, type=OrderType.STOP, stop_ticks=0),
                       add(5, BUY, 99, 5, type=OrderType.STOP_LIMIT, stop_ticks=-3),
                       add(6, BUY, -1, 5, type=OrderType.STOP_LIMIT, stop_ticks=5))
    assert reports["reason"].tolist() == [Reason.HALTED, Reason.INVALID_QTY, Reason.INVALID_QTY,
                                          Reason.INVALID_PRICE, Reason.INVALID_PRICE, Reason.INVALID_PRICE]
    assert reports["event_index"].tolist() == [1, 3, 4, 5, 6, 7]
    assert len(b.orders()) == 0


def test_band_follows_the_last_trade(impl):
    b = impl(band_bps=500)                                     # 5%; no reference price: no check at first
    reports, _ = b.run(add(1, SELL, 200, 1), add(2, BUY, 200, 1))
    assert reports["reason"].tolist() == [0, 0]
    reports, _ = b.run(add(3, BUY, 190, 1), add(4, BUY, 189, 1), add(5, SELL, 210, 1), add(6, SELL, 211, 1))
    assert reports["reason"].tolist() == [0, Reason.PRICE_BAND, 0, Reason.PRICE_BAND]


def test_session_end_expiry_order(impl):
    b = impl()
    b.run(add(1, SELL, 103, 1, tif=TIF.DAY), add(2, SELL, 102, 1, tif=TIF.DAY), add(3, BUY, 98, 1, tif=TIF.DAY),
          add(4, BUY, 99, 1, tif=TIF.DAY), add(5, BUY, 99, 1, tif=TIF.DAY), add(6, BUY, 99, 1),
          add(7, BUY, 0, 1, type=OrderType.STOP, stop_ticks=150, tif=TIF.DAY),
          add(8, SELL, 0, 1, type=OrderType.STOP, stop_ticks=50, tif=TIF.DAY))
    reports, _ = b.run(dict(action=Action.SESSION_END, ts_ns=500))
    assert reports["order_id"].tolist() == [7, 8, 4, 5, 3, 2, 1]
    assert set(reports[["action", "status", "reason", "ts_ns"]].tolist()) == {
        (Action.CANCEL, Status.CANCELLED, Reason.EXPIRED, 500)}
    assert ids(b.orders()) == [6]


def test_halt_blocks_add_and_modify_not_cancel_or_reduce(impl):
    b = impl()
    b.run(add(1, BUY, 99, 5), add(2, BUY, 98, 5), dict(action=Action.HALT))
    reports, _ = b.run(modify(1, 3), reduce(1, 1), cancel(2))
    assert reports["reason"].tolist() == [Reason.HALTED, 0, 0]
    assert ids(b.orders()) == [1] and b.orders()["qty_lots"].tolist() == [4]


def test_event_index_and_seq_across_a_batch(impl):
    b = impl()
    reports, fills = b.run(add(1, SELL, 100, 2), dict(action=Action.HALT), dict(action=Action.RESUME),
                           add(2, BUY, 100, 1), cancel(9))
    assert reports["event_index"].tolist() == [0, 3, 4]
    assert reports["seq"].tolist() == [1, 2, 4] and fills["seq"].tolist() == [3]


def test_determinism_same_batch_same_bytes(impl):
    batch = [add(1, SELL, 100, 5, owner=1, display_lots=2), add(2, SELL, 101, 5, owner=2),
             add(3, BUY, 0, 3, type=OrderType.STOP, stop_ticks=100), add(4, BUY, 101, 6, owner=1),
             modify(2, 9, price=100), reduce(2, 1), dict(action=Action.SESSION_END)]
    a, c = impl(stp=4), impl(stp=4)
    ra, fa = a.run(*batch)
    rc, fc = c.run(*batch)
    assert ra.tobytes() == rc.tobytes() and fa.tobytes() == fc.tobytes()
    assert a.orders().tobytes() == c.orders().tobytes()


def test_both_implementations_agree_byte_for_byte():
    batch = [add(1, SELL, 100, 5, owner=1, display_lots=2), add(2, SELL, 101, 5, owner=2),
             add(3, BUY, 0, 3, type=OrderType.STOP, stop_ticks=100), add(4, BUY, 101, 6, owner=1),
             modify(2, 9, price=100), reduce(2, 1), add(0, SELL, 99, 2, tif=TIF.DAY), dict(action=Action.SESSION_END)]
    for stp in range(5):
        e, r = Engine(stp=stp), Reference(stp=stp)
        re_, fe = e.run(*batch)
        rr, fr = r.run(*batch)
        assert re_.tobytes() == rr.tobytes() and fe.tobytes() == fr.tobytes(), stp
        assert e.orders().tobytes() == r.orders().tobytes()


def test_raw_engine_rejects_unknown_codes_like_the_reference():
    # Exchange.apply refuses such batches; the engine itself still reports them (validation step 1)
    rows = [add(1, 2, 100, 1), add(2, BUY, 100, 1, type=9), add(3, BUY, 100, 1, tif=8), add(4, BUY, 100, 1, flags=4),
            dict(action=11, order_id=5), add(6, BUY, 100, 1)]
    e, r = Engine(), Reference()
    re_, fe = e.ex._engine.apply(_events(rows))
    rr, fr = r.run(*rows)
    assert re_.tobytes() == rr.tobytes() and len(fe) == len(fr) == 0
    assert rr["reason"].tolist() == [Reason.INVALID_ORDER] * 5 + [0]


def test_reference_book_refuses_bad_specs():
    with pytest.raises(lob.errors.ConfigError, match="one dict per symbol"):
        ReferenceBook(2, [{}])
    with pytest.raises(lob.errors.ConfigError, match="stpp"):
        ReferenceBook(1, [{"stpp": 1}])
    assert len(ReferenceBook(3).books) == 3


def test_integer_bounds_keep_notional_exact(impl):
    # docs/matching.md "Bounds": prices and stops in [1, 2**32), quantities in [1, 2**30), so every
    # price x quantity sum fits in int64
    b = impl()
    reports, _ = b.run(add(1, BUY, 2 ** 32, 1), add(2, BUY, 5, 2 ** 30), add(3, BUY, 5, 2, display_lots=2 ** 30),
                       add(4, BUY, 0, 1, type=OrderType.STOP, stop_ticks=2 ** 32),
                       add(5, SELL, 2 ** 32 - 1, 2 ** 30 - 1), add(6, BUY, 2 ** 32 - 1, 2 ** 30 - 1))
    assert reports["reason"].tolist() == [Reason.INVALID_PRICE, Reason.INVALID_QTY, Reason.INVALID_QTY,
                                          Reason.INVALID_PRICE, 0, 0]
    assert reports[5]["notional"] == (2 ** 32 - 1) * (2 ** 30 - 1) and reports[5]["status"] == Status.FILLED
    b.run(add(7, BUY, 10, 5))
    reports, _ = b.run(modify(7, 2 ** 30), modify(7, 5, price=2 ** 32), reduce(7, 2 ** 30))
    assert reports["reason"].tolist() == [Reason.INVALID_QTY, Reason.INVALID_PRICE, Reason.INVALID_QTY]
    assert b.orders()[["order_id", "qty_lots", "price_ticks"]].tolist() == [(7, 5, 10)]


def test_raw_engine_rejects_ids_from_2_63_like_the_reference():
    rows = [add(2 ** 63, BUY, 5, 1), add(2 ** 64 - 1, BUY, 5, 1), add(0, BUY, 5, 1)]
    e, r = Engine(), Reference()
    re_, _ = e.ex._engine.apply(_events(rows))
    rr, _ = r.run(*rows)
    assert re_.tobytes() == rr.tobytes()
    assert rr["reason"].tolist() == [Reason.INVALID_ORDER, Reason.INVALID_ORDER, 0] and rr[2]["order_id"] == 1


def test_modify_validates_a_given_stop_price_like_an_add(impl):
    # "a new price is validated like an ADD": an ADD with stop_ticks <= 0 or >= 2**32 is invalid_price;
    # a modify that gives such a stop price must not be acknowledged while silently keeping the old stop
    b = impl()
    b.run(add(1, BUY, 0, 5, type=OrderType.STOP, stop_ticks=50))
    reports, _ = b.run(dict(action=Action.MODIFY, order_id=1, qty_lots=5, stop_ticks=2 ** 32),
                       dict(action=Action.MODIFY, order_id=1, qty_lots=5, stop_ticks=-7))
    assert reports[["status", "reason"]].tolist() == [(Status.REJECTED, Reason.INVALID_PRICE)] * 2
    assert b.orders()["stop_ticks"].tolist() == [50]
