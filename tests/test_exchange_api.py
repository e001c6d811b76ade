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
    (lambda ev: ev.__setitem__("action", np.array([0, 9, 0])), "action"),
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
