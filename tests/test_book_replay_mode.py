"""Replay mode (docs/matching.md, "Replay mode") and who traded in every report of a call (issue 14).

The batch contract runs on the compiled engine and on the ReferenceBook (the adapter of test_book_contract);
the per-call methods, the consistency-error count and the journal are checked on ``lob.Exchange``.
"""
import numpy as np
import pytest

import lob
from lob import Action, OrderType, Reason, Status
from lob.errors import InvalidEventError, InvalidOrderError

from test_book_contract import BUY, SELL, Engine, Reference, add, ids


def radd(oid, side, price, qty, **kw):
    return dict(action=Action.REPLAY_ADD, order_id=oid, side=side, price_ticks=price, qty_lots=qty, **kw)


def rexec(oid, qty, price=0, level=False, **kw):
    return dict(action=Action.REPLAY_EXECUTE, order_id=oid, qty_lots=qty, price_ticks=price, flags=4 if level else 0,
                **kw)


def rdel(oid, qty=0, **kw):
    return dict(action=Action.REPLAY_DELETE, order_id=oid, qty_lots=qty, **kw)


@pytest.fixture(params=[Engine, Reference], ids=["engine", "reference"])
def impl(request):
    return request.param


def errors(b):
    return b.ex.consistency_errors() if isinstance(b, Engine) else b.ref.consistency_errors(0)


def test_action_codes_are_declared_once_and_named():
    assert [int(Action.REPLAY_ADD), int(Action.REPLAY_EXECUTE), int(Action.REPLAY_DELETE)] == [7, 8, 9]
    ex = lob.Exchange(symbols=["X"], marketdata=False)
    assert ex.replay_add("X", "buy", 1, 1.0, order_id=1).action == "replay_add"
    assert lob.Reason.REPLAY_CROSSED.name.lower() == "replay_crossed"


def test_replay_add_rests_as_given_and_never_matches(impl):
    b = impl(min_qty=5, band_bps=10, ref_price=100)     # the symbol's rules do not apply to a recorded feed
    reports, fills = b.run(radd(1, SELL, 101, 3, owner=2), radd(2, SELL, 101, 4), radd(3, BUY, 99, 2),
                           dict(action=Action.HALT), radd(4, BUY, 100, 1))
    assert len(fills) == 0
    assert reports[["order_id", "action", "status", "reason", "remaining_lots"]].tolist() == [
        (1, Action.REPLAY_ADD, Status.NEW, 0, 3), (2, Action.REPLAY_ADD, Status.NEW, 0, 4),
        (3, Action.REPLAY_ADD, Status.NEW, 0, 2), (4, Action.REPLAY_ADD, Status.NEW, 0, 1)]
    assert ids(b.orders()) == [4, 3, 1, 2] and b.best_prices() == (100, 101)
    assert errors(b) == 0


def test_crossing_add_and_duplicate_id_are_consistency_errors_book_unchanged(impl):
    b = impl()
    b.run(radd(1, SELL, 101, 3), radd(2, BUY, 99, 2))
    before = b.orders().copy()
    reports, fills = b.run(radd(3, BUY, 101, 5), radd(4, SELL, 99, 5), radd(5, BUY, 105, 1), radd(1, BUY, 98, 1))
    assert len(fills) == 0
    assert reports[["status", "reason"]].tolist() == [
        (Status.REJECTED, Reason.REPLAY_CROSSED), (Status.REJECTED, Reason.REPLAY_CROSSED),
        (Status.REJECTED, Reason.REPLAY_CROSSED), (Status.REJECTED, Reason.DUPLICATE_ORDER_ID)]
    assert np.array_equal(b.orders(), before) and errors(b) == 4
    # bad fields are plain rejections, not consistency errors
    reports, _ = b.run(radd(6, BUY, 0, 1), radd(7, BUY, 98, 0))
    assert reports["reason"].tolist() == [Reason.INVALID_PRICE, Reason.INVALID_QTY] and errors(b) == 4


def test_execute_known_order_in_place_without_a_trade(impl):
    b = impl()
    b.run(radd(1, SELL, 101, 5, owner=3), radd(2, SELL, 101, 4))
    reports, fills = b.run(rexec(1, 2), rexec(1, 3, price=101))
    assert len(fills) == 0
    assert reports[["order_id", "status", "filled_lots", "cum_filled_lots", "remaining_lots", "notional",
                    "price_ticks", "owner", "side"]].tolist() == [
        (1, Status.PARTIALLY_FILLED, 2, 2, 3, 202, 101, 3, SELL), (1, Status.FILLED, 3, 5, 0, 303, 101, 3, SELL)]
    assert ids(b.orders()) == [2] and errors(b) == 0
    if isinstance(b, Engine):
        assert b.ex._engine.last_price(0) == 0          # no trade printed: the last price does not move


def test_inconsistent_executions_change_nothing(impl):
    b = impl()
    b.run(radd(1, SELL, 101, 5), radd(2, BUY, 99, 5))
    before = b.orders().copy()
    reports, fills = b.run(rexec(9, 1), rexec(1, 6), rexec(1, 1, price=102), rexec(9, 1, price=101),
                           rexec(9, 6, price=101, level=True), rexec(9, 1, price=100, level=True))
    assert len(fills) == 0
    assert reports["reason"].tolist() == [Reason.UNKNOWN_ORDER, Reason.REPLAY_OVERSIZED,
                                          Reason.REPLAY_PRICE_MISMATCH, Reason.UNKNOWN_ORDER,
                                          Reason.REPLAY_OVERSIZED, Reason.UNKNOWN_ORDER]
    assert (reports["status"] == Status.REJECTED).all()
    assert np.array_equal(b.orders(), before) and errors(b) == 6


def test_level_mode_executes_an_unknown_id_at_its_level_queue_front_first(impl):
    b = impl()
    b.run(radd(1, SELL, 101, 2), radd(2, SELL, 101, 3), radd(3, SELL, 102, 4), radd(4, BUY, 99, 5))
    reports, fills = b.run(rexec(77, 4, price=101, level=True), rexec(78, 2, price=99, level=True))
    assert len(fills) == 0
    assert reports[["order_id", "status", "side", "price_ticks", "filled_lots", "remaining_lots"]].tolist() == [
        (77, Status.FILLED, SELL, 101, 4, 0), (78, Status.FILLED, BUY, 99, 2, 0)]
    o = b.orders()
    assert ids(o) == [4, 2, 3] and o["qty_lots"].tolist() == [3, 1, 4] and o["filled_lots"].tolist() == [2, 2, 0]
    assert errors(b) == 0


def test_delete_partial_keeps_priority_whole_removes(impl):
    b = impl()
    b.run(radd(1, BUY, 99, 5), radd(2, BUY, 99, 5))
    reports, _ = b.run(rdel(1, 2), rdel(2), rdel(1, 9), rdel(5), rdel(1, 1, price_ticks=98))
    assert reports[["status", "reason", "remaining_lots"]].tolist() == [
        (Status.NEW, 0, 3), (Status.CANCELLED, 0, 0), (Status.REJECTED, Reason.REPLAY_OVERSIZED, 0),
        (Status.REJECTED, Reason.UNKNOWN_ORDER, 0), (Status.REJECTED, Reason.REPLAY_PRICE_MISMATCH, 0)]
    assert ids(b.orders()) == [1] and b.orders()["qty_lots"].tolist() == [3] and errors(b) == 3
    reports, _ = b.run(rdel(1, 3))
    assert reports["status"].tolist() == [Status.CANCELLED] and len(b.orders()) == 0


def test_replay_events_act_on_matched_orders_and_icebergs(impl):
    # replay actions and matching share one book: an execution of an iceberg takes the peak, then refreshes
    b = impl()
    b.run(add(1, SELL, 101, 10, display_lots=3), add(2, SELL, 101, 2))
    reports, fills = b.run(rexec(1, 3))
    o = b.orders()
    assert len(fills) == 0 and ids(o) == [2, 1] and o["visible_lots"].tolist() == [2, 3]
    assert o["qty_lots"].tolist() == [2, 7] and reports[0]["remaining_lots"] == 7


def test_pending_stop_is_not_on_the_book_for_replay(impl):
    b = impl()
    b.run(add(1, SELL, 0, 5, type=OrderType.STOP, stop_ticks=90))
    reports, _ = b.run(rexec(1, 1), rdel(1))
    assert reports["reason"].tolist() == [Reason.UNKNOWN_ORDER, Reason.UNKNOWN_ORDER] and ids(b.orders()) == [1]


# --- per call -------------------------------------------------------------------------------------
def test_per_call_replay_methods_and_errors():
    ex = lob.Exchange(symbols=["X", "Y"])
    b = ex.book("X")
    assert ex.replay_add("X", "sell", 100, 150.00, order_id=7).status == "new"
    r = ex.replay_add("X", "buy", 10, 150.00, order_id=8)
    assert (r.status, r.reason) == ("rejected", "replay_crossed")
    r = ex.replay_execute("X", 7, 40)
    assert (r.status, r.last_filled_qty, r.filled_qty, r.remaining_qty, r.avg_price, r.trades) == (
        "partially_filled", 40, 40, 60, 150.0, [])
    assert ex.replay_execute("X", 99, 10).reason == "unknown_order"
    assert ex.replay_execute("X", 99, 10, price=150.00, level=True).status == "filled"
    assert ex.replay_execute("X", 7, 1, price=150.01).reason == "replay_price_mismatch"
    assert b.best_ask() == (150.0, 50) and len(ex.trades("X")) == 0     # no trade on the tape
    assert b.replay_delete(7, 10).remaining_qty == 40
    assert b.replay_add("buy", 5, 149.99, order_id=9).status == "new"
    assert ex.replay_delete("X", 7).status == "cancelled" and b.best_ask() is None
    assert ex.consistency_errors("X") == 3 and ex.consistency_errors("Y") == 0 and b.consistency_errors() == 3
    assert ex.consistency_errors() == 3 and ex._engine.stats(0)["consistency_errors"] == 3
    assert ex.replay_add("X", "buy", 1, 149.995, order_id=10).reason == "invalid_price_tick"
    assert ex.replay_add("X", "buy", 1, 149.00).order_id == 10     # no id: the engine assigns the next
    with pytest.raises(InvalidOrderError, match="level=True needs the execution's price"):
        ex.replay_execute("X", 9, 1, level=True)
    with pytest.raises(InvalidOrderError, match="qty must be > 0"):
        ex.replay_execute("X", 9, 0)
    with pytest.raises(InvalidOrderError, match="side must be one of"):
        ex.replay_add("X", "up", 1, 149.00, order_id=11)
    ex.check_integrity()


def test_malformed_replay_rows_raise_before_anything_is_applied():
    ex = lob.Exchange(symbols=["X"], marketdata=False)
    ev = lob.empty_events(2)
    ev["action"] = Action.REPLAY_ADD
    ev["qty_lots"], ev["price_ticks"], ev["order_id"] = 1, 100, [1, 2]
    ev["side"][1] = 3
    with pytest.raises(InvalidEventError, match="row 1: field 'side'"):
        ex.apply(ev)
    assert ex.book("X").best_bid() is None and ex.seq == 0


def test_every_report_of_a_call_carries_its_own_trades_with_ids_and_owners():
    ex = lob.Exchange(symbols=["X"])
    ex.submit("X", "sell", 5, price=10.00, owner="mm", order_id=1)
    ex.submit("X", "sell", 5, price=10.05, owner="mm", order_id=2)
    stop = ex.submit("X", "buy", 4, type="stop", stop_price=10.00, owner="trend", order_id=3)
    assert stop.status == "new"
    r = ex.submit("X", "buy", 3, type="market", owner="alice", order_id=4)
    assert [(t.qty, t.price, t.maker_order_id, t.taker_order_id, t.maker_owner, t.taker_owner)
            for t in r.trades] == [(3, 10.0, 1, 4, "mm", "alice")]
    (released,) = r.related
    assert (released.order_id, released.action, released.status, released.filled_qty) == (3, "add", "filled", 4)
    assert [(t.qty, t.price, t.maker_order_id, t.taker_order_id, t.maker_owner, t.taker_owner)
            for t in released.trades] == [(2, 10.0, 1, 3, "mm", "trend"), (2, 10.05, 2, 3, "mm", "trend")]
    assert all(t.seq > released.seq for t in released.trades)
    assert sorted(t.seq for x in [r, *r.related] for t in x.trades) == ex.trades("X")["seq"].tolist()[-3:]
    assert r.trades[0].as_dict()["maker_owner"] == "mm" and "maker=1, taker=4" in repr(r.trades[0])


def test_stp_side_effect_reports_carry_no_trades():
    ex = lob.Exchange(symbols=["X"], stp="cancel_oldest")
    ex.submit("X", "sell", 2, price=10.00, owner="a", order_id=1)
    ex.submit("X", "sell", 2, price=10.00, owner="b", order_id=2)
    r = ex.submit("X", "buy", 2, price=10.00, owner="a", order_id=3)
    assert [(x.order_id, x.reason, x.trades) for x in r.related] == [(1, "self_trade", [])]
    assert [t.maker_order_id for t in r.trades] == [2]


def test_iceberg_display_above_total_is_refused_per_call():
    ex = lob.Exchange(symbols=["X"])
    with pytest.raises(InvalidOrderError, match=r"display_qty must be <= qty 5 .*got 6"):
        ex.submit("X", "buy", 5, price=10.0, display_qty=6)
    with pytest.raises(InvalidOrderError, match="display_qty must be > 0"):
        ex.submit("X", "buy", 5, price=10.0, display_qty=0)
    assert ex.submit("X", "buy", 5, price=10.0, display_qty=5).status == "new"
    assert ex.book("X").best_bid() == (10.0, 5)


def test_stp_decrement_per_call_ends_filled():
    ex = lob.Exchange(symbols=["X"], stp="decrement")
    ex.submit("X", "sell", 3, price=10.0, owner="a", order_id=1)
    ex.submit("X", "sell", 9, price=10.0, owner="b", order_id=2)
    r = ex.submit("X", "buy", 5, price=10.0, owner="a", order_id=3)
    assert (r.status, r.reason, r.filled_qty, r.remaining_qty) == ("filled", None, 2, 0)
    assert [(x.order_id, x.action, x.status, x.reason) for x in r.related] == [(1, "cancel", "cancelled", "self_trade")]


# --- journal ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("snapshot", [False, True])
def test_journal_recovers_replay_actions_to_the_same_book(tmp_path, snapshot):
    path = tmp_path / "j"
    ex = lob.Exchange(symbols=["X", "Y"], journal=path, fsync="always")
    ex.replay_add("X", "sell", 10, 10.00, order_id=1, ts_ns=1)
    ex.replay_add("X", "sell", 5, 10.01, order_id=2, ts_ns=2)
    ex.replay_add("X", "buy", 5, 10.01, order_id=3, ts_ns=3)               # crossing: counted
    ev = lob.empty_events(4)
    ev["ts_ns"] = [4, 5, 6, 7]
    ev["action"] = [Action.REPLAY_ADD, Action.REPLAY_EXECUTE, Action.REPLAY_EXECUTE, Action.REPLAY_DELETE]
    ev["order_id"] = [4, 1, 99, 2]
    ev["side"] = [0, 0, 0, 0]
    ev["price_ticks"] = [990, 0, 1000, 0]
    ev["qty_lots"] = [7, 4, 3, 2]
    ev["flags"] = [0, 0, 4, 0]
    ex.apply(ev)
    if snapshot:
        ex.snapshot()
    ex.replay_execute("X", 4, 2, ts_ns=8)
    ex.replay_delete("X", 77, ts_ns=9)                                      # unknown: counted
    want = (ex.state_hash(), ex.book("X").orders_array().tolist(), ex.consistency_errors("X"))
    assert want[2] == 2
    ex.close()
    back = lob.Exchange.open(path)
    try:
        assert (back.state_hash(), back.book("X").orders_array().tolist(), back.consistency_errors("X")) == want
        back.check_integrity()
    finally:
        back.close()
