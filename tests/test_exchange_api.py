"""The user-facing API: per-call orders with floats and strings, reports, books, and bad input."""
import math

import numpy as np
import pytest

import lob
from lob.errors import InvalidEventError, InvalidOrderError, LobError, UnknownSymbolError, ConfigError


@pytest.fixture
def ex():
    return lob.Exchange(symbols=["AAPL", "MSFT"])


def test_submit_trade_report_fields(ex):
    ex.submit("AAPL", "sell", 100, price=150.00, owner="bob", ts_ns=1)
    r = ex.submit("AAPL", "buy", 60, price=150.05, owner="alice", ts_ns=2)
    assert (r.status, r.reason, r.filled_qty, r.remaining_qty, r.avg_price) == ("filled", None, 60, 0, 150.0)
    t = r.trades[0]
    assert (t.symbol, t.price, t.qty, t.aggressor, t.maker_owner, t.taker_owner) == ("AAPL", 150.0, 60, "buy", "bob", "alice")
    assert t.maker_order_id == 1 and t.taker_order_id == r.order_id == 2 and t.seq > r.seq
    b = ex.book("AAPL")
    assert b.best_ask() == (150.0, 40) and b.best_bid() is None and b.last_price == 150.0
    assert b.depth(5) == {"bids": [], "asks": [(150.0, 40, 1)]}
    df = b.depth_frame()
    assert list(df.columns) == ["side", "level", "price", "qty", "orders", "total_qty"] and len(df) == 1
    orders = b.orders()
    assert orders.loc[0, "owner"] == "bob" and orders.loc[0, "filled_qty"] == 60
    assert "150.00" in b._repr_html_() and "AAPL" in ex._repr_html_()
    assert "filled" in r._repr_html_()


def test_off_grid_prices_and_quantities_are_rejected_reports():
    ex = lob.Exchange()
    ex.add_symbol("X", tick_size=0.05, lot_size=10)
    r = ex.submit("X", "buy", 10, price=1.02)
    assert (r.status, r.reason) == ("rejected", "invalid_price_tick")
    r = ex.submit("X", "buy", 15, price=1.05)
    assert (r.status, r.reason) == ("rejected", "invalid_qty")
    r = ex.submit("X", "buy", 20, price=1.05)
    assert r.status == "new" and ex.book("X").best_bid() == (1.05, 20)


@pytest.mark.parametrize("kwargs, field", [
    (dict(price=float("nan")), "price"),
    (dict(price=math.inf), "price"),
    (dict(price=-1.0), "price"),
    (dict(price="abc"), "price"),
    (dict(price=None), "price"),
    (dict(price=1.0, side="up"), "side"),
    (dict(price=1.0, qty=float("nan")), "qty"),
    (dict(price=1.0, qty=-5), "qty"),
    (dict(price=1.0, type="iceberg"), "type"),
    (dict(price=1.0, tif="forever"), "tif"),
    (dict(price=1.0, post_only="maybe"), "post_only"),
    (dict(price=1.0, order_id=-3), "order_id"),
    (dict(price=1.0, owner=3.5), "owner"),
    (dict(price=1.0, display_qty=0), "display_qty"),
    (dict(type="stop"), "stop_price"),
])
def test_bad_per_call_input_names_the_field(ex, kwargs, field):
    args = dict(side="buy", qty=10)
    args.update(kwargs)
    before = (ex.state_hash(), ex.seq)
    with pytest.raises(InvalidOrderError) as e:
        ex.submit("AAPL", args.pop("side"), args.pop("qty"), **args)
    assert field in str(e.value)
    assert (ex.state_hash(), ex.seq) == before


def test_unknown_symbol(ex):
    with pytest.raises(UnknownSymbolError, match="'NOPE'"):
        ex.submit("NOPE", "buy", 1, price=1.0)
    with pytest.raises(LobError):
        ex.book("NOPE")


def _batch(n=3):
    ev = lob.empty_events(n)
    ev["price_ticks"] = 100
    ev["qty_lots"] = 1
    return ev


@pytest.mark.parametrize("mutate, field", [
    (lambda ev: ev.__setitem__("symbol", np.array([0, 5, 0])), "symbol"),
    (lambda ev: ev.__setitem__("side", np.array([0, 0, 3])), "side"),
    (lambda ev: ev.__setitem__("action", np.array([0, max(lob.Action) + 1, 0])), "action"),
    (lambda ev: ev.__setitem__("type", np.array([7, 0, 0])), "type"),
    (lambda ev: ev.__setitem__("tif", np.array([0, 0, 4])), "tif"),
    (lambda ev: ev.__setitem__("flags", np.array([0, 8, 0])), "flags"),
    (lambda ev: ev.__setitem__("owner", np.array([0, -1, 0])), "owner"),
])
def test_malformed_batch_rows_change_nothing(ex, mutate, field):
    ex.apply(_batch(2))
    before = (ex.state_hash(), ex.seq)
    ev = _batch()
    mutate(ev)
    with pytest.raises(InvalidEventError) as e:
        ex.apply(ev)
    assert f"'{field}'" in str(e.value) and "row" in str(e.value)
    assert (ex.state_hash(), ex.seq) == before


@pytest.mark.parametrize("bad", [
    [1, 2, 3],
    np.zeros(3, dtype=[("x", "i8")]),
    np.zeros((2, 2), dtype=lob.EVENT_DTYPE),
    _batch(6)[::2],
])
def test_malformed_batches(ex, bad):
    before = ex.state_hash()
    with pytest.raises(InvalidEventError):
        ex.apply(bad)
    assert ex.state_hash() == before


def test_bad_symbol_specs():
    ex = lob.Exchange()
    for kwargs in (dict(tick_size=0), dict(tick_size=float("nan")), dict(lot_size=-1), dict(stp="sometimes"),
                   dict(modify_priority="whatever"), dict(price_band=0)):
        with pytest.raises(ConfigError):
            ex.add_symbol("X", **kwargs)
    ex.add_symbol("X")
    with pytest.raises(ConfigError, match="already"):
        ex.add_symbol("X")


def test_standalone_book_and_owners():
    b = lob.Book(tick_size=0.01, stp="cancel_newest")
    b.submit("sell", 5, price=10.00, owner="mm")
    r = b.submit("buy", 5, price=10.00, owner="mm")
    assert (r.status, r.reason) == ("cancelled", "self_trade")
    assert b.cancel(1, owner="other").reason == "not_owner"
    assert b.cancel(1, owner="mm").status == "cancelled"
    assert len(b) == 0


def test_modify_reduce_per_call(ex):
    r = ex.submit("MSFT", "buy", 100, price=300.00, owner="a")
    assert ex.modify("MSFT", r.order_id, qty=50).remaining_qty == 50
    assert ex.modify("MSFT", r.order_id, price=300.10).price == 300.10
    assert ex.reduce("MSFT", r.order_id, 20).remaining_qty == 30
    assert ex.cancel("MSFT", 999).reason == "unknown_order"


def test_listeners_see_every_output(ex):
    seen = []
    ex.add_listener(lambda e, r, f: seen.append((len(e), len(r), len(f))))
    ex.submit("AAPL", "sell", 5, price=1.0)
    ex.submit("AAPL", "buy", 5, price=1.0)
    ex.apply(_batch(2))
    assert seen == [(1, 1, 0), (1, 1, 1), (2, 2, 0)]


def test_session_end_and_halt_per_call(ex):
    ex.submit("AAPL", "buy", 5, price=1.0, tif="day")
    out = ex.session_end("AAPL")
    assert [r.reason for r in out] == ["expired"]
    ex.halt("AAPL")
    assert ex.submit("AAPL", "buy", 5, price=1.0).reason == "halted"
    ex.resume("AAPL")
    assert ex.submit("AAPL", "buy", 5, price=1.0).status == "new"


def test_doctests_of_the_facade():
    import doctest

    import lob.book
    import lob.exchange
    import lob.testing.reference

    for mod in (lob.exchange, lob.book, lob.testing.reference):
        result = doctest.testmod(mod)
        assert result.attempted > 0 and result.failed == 0, mod.__name__


# --- more of the facade -----------------------------------------------------------------------------

def test_book_views_and_conversions(ex):
    b = ex.book("AAPL")
    assert (b.best_bid(), b.best_ask(), b.mid(), b.spread(), b.last_price) == (None, None, None, None, None)
    ex.submit("AAPL", "buy", 10, price=99.98, owner="a")
    ex.submit("AAPL", "buy", 30, price=99.98, owner="b", display_qty=5)
    ex.submit("AAPL", "sell", 7, price=100.02, owner="c")
    assert b.best_bid() == (99.98, 15) and b.best_ask() == (100.02, 7)     # the iceberg shows its peak only
    assert b.mid() == pytest.approx(100.00) and b.spread() == pytest.approx(0.04)
    assert b.depth_ticks(5) == {"bids": [(9998, 15, 2)], "asks": [(10002, 7, 1)]}
    df = b.depth_frame(5)
    assert df[["side", "qty", "total_qty"]].values.tolist() == [["bid", 15, 40], ["ask", 7, 7]]
    o = b.orders()
    assert o["order_id"].tolist() == [1, 2, 3] and o["owner"].tolist() == ["a", "b", "c"]
    assert o["visible_qty"].tolist() == [10, 5, 7] and o["side"].tolist() == ["buy", "buy", "sell"]
    assert (b.tick_size, b.lot_size, len(b)) == (0.01, 1, 3)
    assert ex.to_ticks("AAPL", 99.98) == 9998 and ex.to_price("AAPL", 9998) == pytest.approx(99.98)
    assert ex.symbols == ["AAPL", "MSFT"] and ex.symbol_index("MSFT") == 1
    assert ex.owner_name(ex.owner_id("b")) == "b" and ex.owner_id(None) == 0
    html = b._repr_html_()
    assert "99.98" in html and "100.02" in html


def test_report_and_trade_objects_for_stops_and_side_effects():
    ex = lob.Exchange(symbols=["X"], stp="cancel_oldest")
    ex.submit("X", "sell", 5, price=10.00, owner="mm", ts_ns=1)
    ex.submit("X", "sell", 5, price=10.01, owner="other", ts_ns=2)
    stop = ex.submit("X", "buy", 2, type="stop", stop_price=10.00, owner="algo", ts_ns=3)
    assert (stop.status, stop.remaining_qty) == ("new", 2)
    r = ex.submit("X", "buy", 6, price=10.01, owner="mm", ts_ns=4)
    # mm's own ask is cancelled by STP, mm buys 5 from 'other' at 10.01; the trade triggers the stop
    assert (r.status, r.filled_qty, r.remaining_qty) == ("partially_filled", 5, 1)
    assert [(t.price, t.qty, t.maker_owner, t.taker_owner) for t in r.trades] == [(10.01, 5, "other", "mm")]
    assert all(t.ts_ns == 4 and t.aggressor == "buy" for t in r.trades)
    # side effects ride along: the STP cancel of mm's ask, then the released stop (no asks left)
    assert [(x.order_id, x.action, x.status, x.reason) for x in r.related] == [
        (1, "cancel", "cancelled", "self_trade"), (stop.order_id, "add", "cancelled", "no_liquidity")]


def test_per_call_modify_and_reduce_off_grid_are_rejected_reports():
    ex = lob.Exchange()
    ex.add_symbol("X", tick_size=0.05, lot_size=10)
    oid = ex.submit("X", "buy", 20, price=1.00).order_id
    before = ex.book("X").orders_array()
    assert ex.modify("X", oid, price=1.02).reason == "invalid_price_tick"
    assert ex.modify("X", oid, qty=25).reason == "invalid_qty"
    assert ex.reduce("X", oid, 5).reason == "invalid_qty"
    assert np.array_equal(ex.book("X").orders_array(), before)


@pytest.mark.parametrize("call, field, value", [
    (lambda ex: ex.cancel("AAPL", "x"), "order_id", "'x'"),
    (lambda ex: ex.cancel("AAPL", 1.0), "order_id", "1.0"),
    (lambda ex: ex.cancel("AAPL", -4), "order_id", "-4"),
    (lambda ex: ex.modify("AAPL", 1, qty=float("nan")), "qty", "nan"),
    (lambda ex: ex.modify("AAPL", 1, qty=-1), "qty", "-1"),
    (lambda ex: ex.modify("AAPL", 1, price=math.inf), "price", "inf"),
    (lambda ex: ex.modify("AAPL", 1, price=-1.0), "price", "-1.0"),
    (lambda ex: ex.modify("AAPL", 1, stop_price=float("nan")), "stop_price", "nan"),
    (lambda ex: ex.reduce("AAPL", 1, None), "by_qty", "None"),
    (lambda ex: ex.reduce("AAPL", 1, -math.inf), "by_qty", "inf"),
    (lambda ex: ex.submit("AAPL", "buy", 1, price=1.0, ts_ns=1.5), "ts_ns", "1.5"),
    (lambda ex: ex.submit("AAPL", "buy", 1, price=1.0, owner=-1), "owner", "-1"),
    (lambda ex: ex.submit("AAPL", "buy", 1, price=1.0, owner=2 ** 40), "owner", str(2 ** 40)),
    (lambda ex: ex.submit("AAPL", "buy", 1, price=1.0, owner=""), "owner", "''"),
    (lambda ex: ex.submit("AAPL", "buy", "10", price=1.0), "qty", "'10'"),
    (lambda ex: ex.submit("AAPL", "buy", 1e30, price=1.0), "qty", "1e+30"),
    (lambda ex: ex.submit("AAPL", 1.5, 1, price=1.0), "side", "1.5"),
    (lambda ex: ex.submit("AAPL", "buy", 1, price=1.0, display_qty=-1), "display_qty", "-1"),
    (lambda ex: ex.submit("AAPL", "buy", 1, price=1.0, order_id=2 ** 64), "order_id", str(2 ** 64)),
    (lambda ex: ex.submit("AAPL", "buy", 1, type="market", price=1.0), "price", "1.0"),
    (lambda ex: ex.submit("AAPL", "buy", 1, price=1.0, stop_price=2.0), "stop_price", "2.0"),
])
def test_bad_input_everywhere_names_field_and_value_and_changes_nothing(ex, call, field, value):
    ex.submit("AAPL", "buy", 5, price=1.00)
    before = (ex.state_hash(), ex.seq)
    with pytest.raises(LobError) as e:
        call(ex)
    assert field in str(e.value) and value in str(e.value)
    assert (ex.state_hash(), ex.seq) == before


@pytest.mark.parametrize("call", [
    lambda ex: ex.cancel("NOPE", 1), lambda ex: ex.modify("NOPE", 1, qty=1), lambda ex: ex.reduce("NOPE", 1, 1),
    lambda ex: ex.session_end("NOPE"), lambda ex: ex.halt("NOPE"), lambda ex: ex.resume("NOPE"),
    lambda ex: ex.submit(None, "buy", 1, price=1.0), lambda ex: ex.submit(7, "buy", 1, price=1.0),
    lambda ex: ex.to_ticks("NOPE", 1.0),
])
def test_unknown_symbol_everywhere(ex, call):
    before = (ex.state_hash(), ex.seq)
    with pytest.raises(UnknownSymbolError):
        call(ex)
    assert (ex.state_hash(), ex.seq) == before


@pytest.mark.parametrize("kwargs, field", [
    (dict(qty=10 ** 30), "qty"),              # a Python int too large for int64
    (dict(qty=1, price=10 ** 30), "price"),
    (dict(qty=True), "qty"),                  # a bool is not a quantity
    (dict(qty=1, price=True), "price"),
])
def test_int_overflow_and_bools_are_lob_errors(kwargs, field):
    ex = lob.Exchange()
    ex.add_symbol("T", tick_size=1)           # the integer fast path of the edge conversion
    before = (ex.state_hash(), ex.seq)
    with pytest.raises(InvalidOrderError) as e:
        ex.submit("T", "buy", kwargs.pop("qty"), price=kwargs.pop("price", 5), **kwargs)
    assert field in str(e.value)
    assert (ex.state_hash(), ex.seq) == before


def test_malformed_batch_messages_name_the_problem(ex):
    ex.apply(_batch(2))
    before = (ex.state_hash(), ex.seq)
    cases = [([1, 2, 3], "list"), (np.zeros(3, dtype=[("x", "i8")]), "dtype"),
             (np.zeros((2, 2), dtype=lob.EVENT_DTYPE), "(2, 2)"), (_batch(6)[::2], "contiguous")]
    for bad, words in cases:
        with pytest.raises(InvalidEventError, match=words.replace("(", r"\(").replace(")", r"\)")):
            ex.apply(bad)
    ev = _batch(4)
    ev["qty_lots"][2] = 5
    ev["side"][3] = 2
    with pytest.raises(InvalidEventError, match=r"row 3.*'side'.*2"):
        ex.apply(ev)
    assert (ex.state_hash(), ex.seq) == before
    assert ex.book("AAPL").depth_ticks(5)["bids"] == [(100, 2, 2)]     # the valid rows before it did not apply


def test_an_empty_batch_is_fine(ex):
    reports, fills = ex.apply(lob.empty_events(0))
    assert reports.dtype == lob.REPORT_DTYPE and len(reports) == 0 and len(fills) == 0 and ex.seq == 0


def test_auto_ids_never_wrap_to_zero():
    # docs/matching.md: auto ids are "always above every id seen"; an id of 2**64-1 must not make the next
    # assigned id 0 (an order nobody can address). Proposed rule: an ADD id >= 2**63 is malformed.
    ex = lob.Exchange()
    ex.add_symbol("S", tick_size=1)
    ev = lob.empty_events(2)
    ev["price_ticks"], ev["qty_lots"], ev["order_id"] = 5, 1, [2 ** 64 - 1, 0]
    try:
        reports, _ = ex.apply(ev)
    except InvalidEventError as e:
        assert "order_id" in str(e) and ex.seq == 0
        return
    assert 0 not in reports["order_id"].tolist()


def test_notional_never_wraps():
    # price_ticks * qty_lots beyond int64: the engine must reject it (or report it exactly), never wrap
    ex = lob.Exchange()
    ex.add_symbol("S", tick_size=1)
    ev = lob.empty_events(2)
    ev["side"], ev["price_ticks"], ev["qty_lots"] = [1, 0], 10 ** 12, 10 ** 7
    reports, fills = ex.apply(ev)
    for r in reports:
        assert r["status"] == lob.Status.REJECTED or r["notional"] == sum(
            int(f["price_ticks"]) * int(f["qty_lots"]) for f in fills if f["taker_order_id"] == r["order_id"])


def test_avg_price_is_the_exact_volume_weighted_price():
    ex = lob.Exchange(symbols=["X"], marketdata=False)
    ex.submit("X", "sell", 5, price=10.00)
    ex.submit("X", "sell", 5, price=10.00)
    ex.submit("X", "sell", 10, price=10.01)
    r = ex.submit("X", "buy", 15, price=10.05)
    assert r.avg_price == pytest.approx((10 * 10.00 + 5 * 10.01) / 15, abs=1e-12)


def test_listener_arrays_are_per_call_and_nested_requests_are_isolated():
    # per-call listeners get views of reusable buffers (valid during the call); a listener that places an
    # order itself must not overwrite what the listeners after it see
    ex = lob.Exchange(symbols=["X"], marketdata=False)
    seen = []

    def nested(events, reports, fills):
        if int(events["order_id"][0]) == 2:
            ex.submit("X", "sell", 1, price=20.0, order_id=99, ts_ns=9)

    def recorder(events, reports, fills):
        seen.append((events.copy(), reports.copy(), fills.copy()))

    ex.add_listener(nested)
    ex.add_listener(recorder)
    ex.submit("X", "sell", 5, price=10.0, order_id=1, ts_ns=1)
    ex.submit("X", "buy", 2, price=10.0, order_id=2, ts_ns=2)
    ids = [int(e["order_id"][0]) for e, _, _ in seen]
    assert ids == [1, 99, 2]                       # the nested order's call finished first
    e2, r2, f2 = seen[2]
    assert int(r2["order_id"][0]) == 2 and f2["qty_lots"].tolist() == [2]


def test_every_user_facing_object_renders_in_jupyter():
    ex = lob.Exchange(symbols=["X"])
    perf = ex.perf
    ex.submit("X", "sell", 5, price=1.0)
    r = ex.submit("X", "buy", 5, price=1.0)
    for obj in (ex, ex.book("X"), r, r.trades[0], ex.marketdata, perf):
        html = obj._repr_html_()
        assert isinstance(html, str) and html.startswith("<") and len(html) > 40, type(obj)


def test_risk_hook_sees_submits_with_their_time_and_modifies():
    seen = []

    class Hook:
        def check_submit(self, sym, side, qty_lots, price_ticks, owner, type_, ts_ns=None):
            seen.append(("submit", qty_lots, ts_ns))
            return int(lob.Reason.RISK_MAX_QTY) if qty_lots > 100 else 0

        def check_modify(self, sym, order_id, qty_lots, price_ticks, owner, ts_ns=None):
            seen.append(("modify", qty_lots, ts_ns))
            return int(lob.Reason.RISK_POSITION_LIMIT) if qty_lots > 50 else 0

    ex = lob.Exchange(symbols=["X"], marketdata=False)
    ex.risk = Hook()
    assert ex.submit("X", "buy", 101, price=1.0, ts_ns=7).reason == "risk_max_qty"
    r = ex.submit("X", "buy", 10, price=1.0, ts_ns=8)
    m = ex.modify("X", r.order_id, qty=60, ts_ns=9)
    assert (m.status, m.reason) == ("rejected", "risk_position_limit")
    assert ex.book("X").best_bid() == (1.0, 10)                       # unchanged
    assert ex.modify("X", r.order_id, qty=20, ts_ns=10).remaining_qty == 20
    assert seen == [("submit", 101, 7), ("submit", 10, 8), ("modify", 60, 9), ("modify", 20, 10)]


def _first_malformed_py(ev, n_books):
    # the validation rule, row by row, as DESIGN.md states it: (row, field) of the first malformed row
    for i, e in enumerate(ev):
        adds = e["action"] in (lob.Action.ADD, lob.Action.REPLAY_ADD)
        checks = [("symbol", e["symbol"] >= n_books), ("action", e["action"] > lob.Action.REPLAY_DELETE),
                  ("owner", not 0 <= e["owner"] <= 2 ** 32 - 1),
                  ("order_id", adds and int(e["order_id"]) > 2 ** 63 - 1), ("side", adds and e["side"] > 1)]
        if e["action"] == lob.Action.ADD:
            checks += [("type", e["type"] > 3), ("tif", e["tif"] > 3), ("flags", e["flags"] > 3)]
        for field, broken in checks:
            if broken:
                return i, field
    return None


def test_first_malformed_row_and_field_match_the_rule_across_blocks():
    # the engine tests rows in blocks without a branch per row: whichever row of a block is bad, the first
    # one and its first field are named, as the row-by-row rule names them
    rng = np.random.default_rng(20261202)
    ex = lob.Exchange(symbols=["A", "B", "C"])
    fields = {"symbol": 3, "action": 10, "owner": -1, "side": 2, "type": 4, "tif": 4, "flags": 4,
              "order_id": 2 ** 63}
    for trial in range(300):
        n = int(rng.integers(1, 300))
        ev = lob.empty_events(n)
        ev["action"] = rng.choice([lob.Action.ADD, lob.Action.CANCEL, lob.Action.REPLAY_ADD], n)
        ev["symbol"] = rng.integers(0, 3, n)
        ev["price_ticks"], ev["qty_lots"], ev["order_id"] = 100, 1, np.arange(1, n + 1)
        for _ in range(int(rng.integers(0, 4))):
            row = int(rng.choice([0, n - 1, min(63, n - 1), min(64, n - 1), int(rng.integers(0, n))]))
            field = str(rng.choice(list(fields)))
            ev[field][row] = fields[field]
            if trial % 2:
                ev["owner"][row] = 2 ** 32     # two bad fields in one row: the first in rule order is named
        want = _first_malformed_py(ev, 3)
        assert ex._engine.first_invalid(ev) == want, (trial, want)
        if want is not None:
            with pytest.raises(InvalidEventError, match=rf"row {want[0]}: field '{want[1]}'"):
                ex.apply(ev)
    assert ex.seq == 0
