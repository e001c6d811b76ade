"""lob.risk: every reason code, the kill switch, the throttle on the event clock, conservative mode, and
property tests (no order sequence takes a worst-case position past its limit; exact integer accounting)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import lob
from lob.errors import ConfigError
from lob.risk import MICRO, FeeSchedule, Ledger, RiskLimits, RiskManager


def _ex(limits, symbols=("X",), **kw):
    ex = lob.Exchange(symbols=list(symbols), marketdata=False)
    rm = RiskManager(limits, **kw).attach(ex)
    return ex, rm


# --- reason codes through the exchange --------------------------------------------------------------
def test_max_qty_and_notional():
    ex, rm = _ex(RiskLimits(max_qty=100, max_notional=100 * 1000))     # tick-lots: 100 lots at 10.00
    assert ex.submit("X", "buy", 101, price=1.0, owner="a").reason == "risk_max_qty"
    assert ex.submit("X", "buy", 100, price=10.01, owner="a").reason == "risk_max_notional"
    assert ex.submit("X", "buy", 100, price=10.00, owner="a").status == "new"
    # a market order is valued at the reference price; with none it cannot be valued and is rejected
    assert ex.submit("X", "sell", 1, type="market", owner="b").reason == "risk_max_notional"
    rm.set_reference("X", 1000)
    assert ex.submit("X", "sell", 1, type="market", owner="b").status == "filled"
    assert rm.counts == {"risk_max_qty": 1, "risk_max_notional": 2}


def test_price_collar_around_last_trade_then_reference():
    ex, rm = _ex(RiskLimits(collar_ticks=50))
    assert ex.submit("X", "buy", 1, price=100.0, owner="a").status == "new"    # no reference yet: passes
    rm.set_reference("X", 10_000)
    assert ex.submit("X", "buy", 1, price=100.51, owner="a").reason == "risk_price_collar"
    assert ex.submit("X", "sell", 1, price=99.50, owner="a").status == "filled"   # exactly 50 ticks away: ok
    # the last trade (100.00, the resting bid's price) is the reference now
    assert ex.submit("X", "sell", 1, price=99.49, owner="b").reason == "risk_price_collar"


def test_open_order_count_is_per_owner_and_released_by_cancel():
    ex, rm = _ex(RiskLimits(max_open_orders=2), symbols=("X", "Y"))
    a = ex.submit("X", "buy", 1, price=1.0, owner="a")
    ex.submit("Y", "buy", 1, price=1.0, owner="a")
    assert ex.submit("X", "buy", 1, price=1.0, owner="a").reason == "risk_open_orders"
    assert ex.submit("X", "buy", 1, price=1.0, owner="b").status == "new"
    ex.cancel("X", a.order_id, owner="a")
    assert ex.submit("X", "buy", 1, price=1.0, owner="a").status == "new"


def test_position_limit_counts_open_orders_and_fills():
    ex, rm = _ex(RiskLimits(max_position=10))
    assert ex.submit("X", "buy", 6, price=1.0, owner="a").status == "new"
    assert ex.submit("X", "buy", 5, price=0.99, owner="a").reason == "risk_position_limit"   # 6 + 5 open
    assert ex.submit("X", "buy", 4, price=0.99, owner="a").status == "new"
    # the sell side is independent: worst-case short is -10
    assert ex.submit("X", "sell", 10, price=2.0, owner="a").status == "new"
    assert ex.submit("X", "sell", 1, price=2.0, owner="a").reason == "risk_position_limit"
    # a fill moves quantity from open to position: the worst case is unchanged
    ex.submit("X", "sell", 6, price=1.0, owner="b")
    assert rm.ledger.position(ex.owner_id("a"), 0) == 6
    assert rm.open_qty("a", "X") == (4, 10)
    assert ex.submit("X", "buy", 1, price=0.5, owner="a").reason == "risk_position_limit"
    # long 6 with 10 open to sell: worst-case short is 6 - 10 = -4, so 6 more may be offered
    assert ex.submit("X", "sell", 6, price=2.0, owner="a").status == "new"
    assert ex.submit("X", "sell", 1, price=2.0, owner="a").reason == "risk_position_limit"


def test_exposure_limit_adds_up_symbols():
    ex, rm = _ex(RiskLimits(max_exposure=3000), symbols=("X", "Y"))   # tick-lots
    assert ex.submit("X", "buy", 10, price=1.00, owner="a").status == "new"      # 10 x 100 = 1000
    assert ex.submit("Y", "sell", 10, price=2.00, owner="a").status == "new"     # + 10 x 200 = 3000
    assert ex.submit("Y", "sell", 1, price=2.00, owner="a").reason == "risk_exposure_limit"
    assert ex.submit("X", "buy", 1, price=1.00, owner="b").status == "new"


def test_throttle_is_a_token_bucket_on_event_time():
    ex, rm = _ex(RiskLimits(rate_per_s=10, burst=3))
    t = 1_000_000_000
    got = [ex.submit("X", "buy", 1, price=1.0, owner="a", ts_ns=t).status for _ in range(4)]
    assert got == ["new", "new", "new", "rejected"]
    # the next event (at t) taught the manager the time; 100 ms of event time buys one order
    assert ex.submit("X", "buy", 1, price=1.0, owner="a", ts_ns=t + 50_000_000).reason == "risk_throttle"
    ex.submit("X", "buy", 1, price=1.0, owner="b", ts_ns=t + 100_000_000)   # another owner moves the clock
    assert ex.submit("X", "buy", 1, price=1.0, owner="a", ts_ns=t + 100_000_000).status == "new"
    # with the event time given explicitly (pure use), no stream is needed
    rm2 = RiskManager(RiskLimits(rate_per_s=1, burst=1), measure=False)
    order = dict(symbol=0, side=0, qty_lots=1, price_ticks=100, owner=1)
    assert [rm2.check({**order, "ts_ns": ts}) for ts in (0, 10, 999_999_999, 1_000_000_010)] == [
        lob.Reason.NONE, lob.Reason.RISK_THROTTLE, lob.Reason.RISK_THROTTLE, lob.Reason.NONE]


def test_conservative_mode_scales_limits():
    ex, rm = _ex(RiskLimits(max_qty=100, max_position=200), conservative_factor=0.5)
    assert ex.submit("X", "buy", 80, price=1.0, owner="a").status == "new"
    rm.set_conservative(True)
    assert ex.submit("X", "buy", 60, price=1.0, owner="a").reason == "risk_max_qty"
    assert ex.submit("X", "buy", 30, price=1.0, owner="a").reason == "risk_position_limit"   # 80 + 30 > 100
    rm.set_conservative(False)
    assert ex.submit("X", "buy", 60, price=1.0, owner="a").status == "new"


def test_specific_limits_win_over_defaults():
    ex, rm = _ex(RiskLimits(max_qty=10), symbols=("X", "Y"))
    rm.set_limits(RiskLimits(max_qty=100), owner="mm")
    rm.set_limits(RiskLimits(max_qty=1), owner="mm", symbol="Y")
    assert ex.submit("X", "buy", 50, price=1.0, owner="mm").status == "new"
    assert ex.submit("Y", "buy", 2, price=1.0, owner="mm").reason == "risk_max_qty"
    assert ex.submit("X", "buy", 50, price=1.0, owner="z").reason == "risk_max_qty"


def test_bad_limits_raise_naming_the_field():
    with pytest.raises(ConfigError, match="max_qty"):
        RiskLimits(max_qty=1.5)
    with pytest.raises(ConfigError, match="burst"):
        RiskLimits(rate_per_s=5)
    with pytest.raises(ConfigError, match="maker_bps"):
        FeeSchedule(maker_bps=0.001)


# --- the kill switch --------------------------------------------------------------------------------
def test_max_loss_kill_switch_cancels_and_blocks_until_reset():
    ex, rm = _ex(RiskLimits(max_loss=50))              # 50 tick-lots = 0.50
    for other in ("m", "n"):
        rm.set_limits(RiskLimits(), owner=other)       # unlimited counterparties
    ex.submit("X", "sell", 10, price=10.00, owner="m")
    assert ex.submit("X", "buy", 10, price=10.00, owner="a").status == "filled"     # a: long 10 at 10.00
    ex.submit("X", "buy", 5, price=9.00, owner="a")
    ex.submit("X", "sell", 5, price=12.00, owner="a")
    ex.submit("X", "buy", 1, price=9.95, owner="m")
    ex.submit("X", "sell", 1, price=9.95, owner="n")   # prints 9.95: a is down 50, not more
    assert not rm.killed("a")
    ex.submit("X", "buy", 1, price=9.94, owner="m")
    ex.submit("X", "sell", 1, price=9.94, owner="n")   # prints 9.94: a is down 60 > 50 -> kill switch
    assert rm.killed("a") == lob.Reason.RISK_MAX_LOSS
    assert rm.pnl("a") == -60 * MICRO
    left = ex.book("X").orders_array()
    assert not (left["owner"] == ex.owner_id("a")).any(), "the kill switch cancels every open order of a"
    assert ex.submit("X", "buy", 1, price=9.00, owner="a").reason == "risk_max_loss"
    assert rm.kills[0]["owner"] == ex.owner_id("a")
    rm.reset("a")
    assert ex.submit("X", "buy", 1, price=9.00, owner="a").status == "new"


def test_manual_kill_and_drawdown():
    ex, rm = _ex(RiskLimits(max_drawdown=20))
    for other in ("m", "n"):
        rm.set_limits(RiskLimits(), owner=other)
    ex.submit("X", "buy", 3, price=1.00, owner="a")
    rm.kill("a")
    assert ex.book("X").best_bid() is None
    assert ex.submit("X", "buy", 1, price=1.00, owner="a").reason == "risk_kill_switch"
    rm.reset("a")
    # a goes long 10 at 1.00, the market prints 1.05 (peak +50), then 1.02 (down 30 from the peak)
    ex.submit("X", "sell", 10, price=1.00, owner="m")
    ex.submit("X", "buy", 10, price=1.00, owner="a")
    for p in (1.05, 1.02):
        ex.submit("X", "sell", 1, price=p, owner="m")
        ex.submit("X", "buy", 1, price=p, owner="n")
    assert rm.killed("a") == lob.Reason.RISK_MAX_LOSS
    assert rm.kills[-1]["peak"] == 50 and rm.kills[-1]["pnl"] == 20


def test_latency_is_recorded_per_check():
    ex, rm = _ex(RiskLimits(max_qty=10))
    for i in range(50):
        ex.submit("X", "buy", 1 + i % 12, price=1.0, owner="a")
    lat = rm.latency()
    assert lat["count"] == 50 and 0 < lat["p50"] <= lat["max"]


def test_check_modify_treats_a_modify_as_a_replacement():
    ex, rm = _ex(RiskLimits(max_position=10))
    r = ex.submit("X", "buy", 8, price=1.0, owner="a")
    a, x = ex.owner_id("a"), 0
    assert rm.check_modify(x, r.order_id, 10, 0, a) == 0
    assert rm.check_modify(x, r.order_id, 11, 0, a) == lob.Reason.RISK_POSITION_LIMIT
    assert rm.open_qty("a", "X") == (8, 0)


# --- property: the worst-case position never passes the limit ---------------------------------------
OWNERS = ["a", "b", "c"]
submit = st.tuples(st.just("submit"), st.sampled_from(OWNERS + ["free"]), st.sampled_from([0, 1]), st.integers(1, 6),
                   st.integers(97, 103), st.sampled_from(["limit", "limit", "market", "ioc"]), st.sampled_from([0, 1]))
op = st.one_of(submit, submit, submit, st.tuples(st.just("cancel"), st.integers(0, 30)))


@settings(max_examples=80)
@given(st.lists(op, min_size=10, max_size=60), st.integers(3, 12))
def test_no_sequence_takes_a_position_past_its_limit(ops, limit):
    ex = lob.Exchange(symbols=["X", "Y"], marketdata=False)
    rm = RiskManager(RiskLimits(max_position=limit), measure=False).attach(ex)
    rm.set_limits(RiskLimits(), owner="free")          # an unlimited counterparty
    rm.set_reference("X", 100)
    rm.set_reference("Y", 100)
    pos = {}                                           # truth, from the fills alone

    def on_fill(events, reports, fills):
        for f in fills:
            s = int(f["symbol"])
            pos[(int(f["taker_owner"]), s)] = pos.get((int(f["taker_owner"]), s), 0) + (
                1 if f["aggressor"] == 0 else -1) * int(f["qty_lots"])
            pos[(int(f["maker_owner"]), s)] = pos.get((int(f["maker_owner"]), s), 0) - (
                1 if f["aggressor"] == 0 else -1) * int(f["qty_lots"])
    ex.add_listener(on_fill)
    ids = []
    for o in ops:
        if o[0] == "submit":
            _, owner, side, qty, px, kind, sym = o
            typ, tif = ("market", "gtc") if kind == "market" else ("limit", "ioc" if kind == "ioc" else "gtc")
            r = ex.submit(["X", "Y"][sym], "buy" if side == 0 else "sell", qty, price=None if typ == "market"
                          else px / 100, type=typ, tif=tif, owner=owner)
            if r.order_id:
                ids.append((sym, r.order_id))
        elif ids:
            sym, oid = ids[o[1] % len(ids)]
            ex.cancel(["X", "Y"][sym], oid)
        for sym, name in enumerate(["X", "Y"]):
            resting = ex.book(name).orders_array()
            for owner in OWNERS:
                oid = ex.owner_id(owner)
                mine = resting[resting["owner"] == oid]
                buys = int(mine["qty_lots"][mine["side"] == 0].sum())
                sells = int(mine["qty_lots"][mine["side"] == 1].sum())
                p = pos.get((oid, sym), 0)
                assert p + buys <= limit and p - sells >= -limit, (owner, name, p, buys, sells)
                assert rm.open_qty(owner, name) == (buys, sells)
                assert rm.ledger.position(oid, sym) == p


# --- property: exact integer accounting -------------------------------------------------------------
fill = st.tuples(st.sampled_from([1, -1]), st.integers(1, 10_000), st.integers(1, 500), st.booleans())


@given(st.lists(fill, min_size=1, max_size=80), st.integers(-30, 30), st.integers(-30, 30))
def test_cash_plus_position_times_mark_is_pnl_exactly_at_every_fill(fills, maker_cbps, taker_cbps):
    fees = FeeSchedule(maker_bps=maker_cbps / 100, taker_bps=taker_cbps / 100)
    led = Ledger(fees)
    pos = 0
    paid = 0            # sum of sign * price * qty (tick-lots)
    fee_sum = 0         # micro tick-lots, as a Fraction-free integer: notional * rate
    for sign, price, qty, maker in fills:
        led.fill(7, 0, sign, price, qty, maker)
        pos += sign * qty
        paid += sign * price * qty
        fee_sum += price * qty * (maker_cbps if maker else taker_cbps)
        a = led.account(7, 0)
        for mark in (price, price + 13, max(1, price - 7)):
            # PnL derived independently: the position valued at the mark minus what was paid, minus fees
            truth = (pos * mark - paid) * MICRO - fee_sum
            assert a.cash + a.position * mark * MICRO == truth
            assert a.pnl(mark) == truth
            assert a.realised + a.unrealised(mark) - a.fees == truth
        assert a.position == pos and sum(q for _, q in a.lots) == pos


def test_ledger_books_fill_arrays_for_both_sides():
    ex = lob.Exchange(symbols=["X"], marketdata=False)
    got = []
    ex.add_listener(lambda e, r, f: got.append(f.copy()))
    ex.submit("X", "sell", 5, price=1.0, owner="m")
    ex.submit("X", "buy", 3, price=1.0, owner="t")
    led = Ledger({"maker_bps": -1, "taker_bps": 2})
    for f in got:
        led.apply_fills(f)
    m, t = led.account(ex.owner_id("m"), 0), led.account(ex.owner_id("t"), 0)
    assert (m.position, t.position) == (-3, 3)
    assert m.fees == -300 * 100 and t.fees == 300 * 200       # notional 300 tick-lots x rate (1e-6 units)
    assert m.cash + t.cash == -(m.fees + t.fees)              # cash only moves between them, less fees


def test_check_latency_goes_to_lob_perf():
    from lob.perf import PerfAnalyzer

    perf = PerfAnalyzer()
    ex, rm = _ex(RiskLimits(max_qty=10), perf=perf)
    for _ in range(20):
        ex.submit("X", "buy", 1, price=1.0, owner="a")
    assert rm.latency()["count"] == 20
    lf = perf.latency_frame()
    row = lf[lf["stage"] == "risk_check"]
    assert int(row["count"].sum()) == 20


trade_op = st.tuples(st.sampled_from(["a", "m"]), st.sampled_from([0, 1]), st.integers(1, 5), st.integers(90, 110),
                     st.booleans())


@settings(max_examples=60)
@given(st.lists(trade_op, min_size=5, max_size=50), st.integers(5, 60))
def test_kill_switch_fires_exactly_when_the_loss_passes_its_limit_and_then_blocks(ops, max_loss):
    ex = lob.Exchange(symbols=["X"], marketdata=False)
    rm = RiskManager(RiskLimits(), measure=False).attach(ex)
    rm.set_limits(RiskLimits(max_loss=max_loss), owner="a")
    a = ex.owner_id("a")
    acct = {"pos": 0, "cash": 0, "mark": None}

    def watch(events, reports, fills):
        for f in fills:
            acct["mark"] = int(f["price_ticks"])
            for who, sign in ((int(f["taker_owner"]), 1 if f["aggressor"] == 0 else -1),
                              (int(f["maker_owner"]), -1 if f["aggressor"] == 0 else 1)):
                if who == a:
                    acct["pos"] += sign * int(f["qty_lots"])
                    acct["cash"] -= sign * int(f["qty_lots"]) * int(f["price_ticks"])
    ex.add_listener(watch)
    tripped = False
    for owner, side, qty, px, ioc in ops:
        r = ex.submit("X", "buy" if side == 0 else "sell", qty, price=px / 100, owner=owner,
                      tif="ioc" if ioc else "gtc")
        if owner == "a" and tripped:
            assert r.status == "rejected" and r.reason == "risk_max_loss"
        if acct["mark"] is not None and acct["cash"] + acct["pos"] * acct["mark"] < -max_loss:
            tripped = True
        assert (rm.killed("a") is not None) == tripped
        if tripped:
            resting = ex.book("X").orders_array()
            assert not (resting["owner"] == a).any()
