"""lob.mm: formulas against their limits and identities, estimators against data with known parameters, and
the behaviour of each market maker (skew, widening after toxic flow, limits, cancel/replace)."""
import math

import numpy as np
import pytest

import lob
from lob.errors import ConfigError
from lob.mm import (GLFT, AdaptiveMarketMaker, AvellanedaStoikov, Context, EwmaVolatility, GridMaker,
                    MarkoutTracker, OrderIntent, Strategy, as_reservation_price, as_spread, fit_intensity,
                    glft_coefficients, glft_quotes)


# --- formulas ---------------------------------------------------------------------------------------
def test_as_reservation_and_spread_identities():
    assert as_reservation_price(100.0, 0, 0.3, 2.0, 10.0) == 100.0
    # long inventory lowers the reservation price, linearly in q, sigma^2 and the horizon
    d1 = 100.0 - as_reservation_price(100.0, 1, 0.3, 2.0, 10.0)
    assert d1 > 0
    assert math.isclose(100.0 - as_reservation_price(100.0, 2, 0.3, 2.0, 10.0), 2 * d1)
    assert math.isclose(100.0 - as_reservation_price(100.0, 1, 0.3, 4.0, 10.0), 4 * d1)
    assert math.isclose(100.0 - as_reservation_price(100.0, 1, 0.3, 2.0, 5.0), d1 / 2)
    # as gamma -> 0 the spread tends to 2/k (the risk-neutral monopolist's markup), from above in gamma*sigma^2*tau
    for k in (0.5, 1.0, 3.0):
        assert math.isclose(as_spread(1e-9, 1.0, 1.0, k), 2 / k, rel_tol=1e-6)
    # more arrivals far from the mid (smaller k) widen the spread
    assert as_spread(0.1, 1.0, 1.0, 0.5) > as_spread(0.1, 1.0, 1.0, 2.0)
    with pytest.raises(ConfigError, match="gamma"):
        as_spread(0.0, 1.0, 1.0, 1.0)


def test_glft_identities():
    gamma, sigma, A, k = 0.05, 1.3, 2.0, 0.8
    c1, c2 = glft_coefficients(gamma, sigma, A, k)
    assert math.isclose(glft_coefficients(1e-9, sigma, A, k)[0], 1 / k, rel_tol=1e-6)
    for q in (-3, -1, 0, 2, 5):
        db, da = glft_quotes(q, gamma, sigma, A, k)
        assert math.isclose(db + da, 2 * c1 + c2)           # the spread does not depend on inventory
        assert math.isclose(db - da, 2 * q * c2)            # the quotes shift by c2 per unit of inventory
    assert glft_quotes(0, gamma, sigma, A, k) == pytest.approx((c1 + c2 / 2, c1 + c2 / 2))
    # c2 scales with sigma and with 1/sqrt(A)
    assert math.isclose(glft_coefficients(gamma, 2 * sigma, A, k)[1], 2 * c2)
    assert math.isclose(glft_coefficients(gamma, sigma, 4 * A, k)[1], c2 / 2)


# --- estimators -------------------------------------------------------------------------------------
@pytest.mark.parametrize("A,k", [(5.0, 0.7), (20.0, 1.5)])
def test_fit_intensity_recovers_known_parameters(A, k):
    # arrivals: Poisson(A T) orders, each reaching an Exp(k) depth, so lambda(delta) = A exp(-k delta)
    rng = np.random.default_rng(7)
    T = 2000.0
    depths = rng.exponential(1 / k, size=rng.poisson(A * T))
    A_hat, k_hat = fit_intensity(depths, T, min_count=30)
    assert k_hat == pytest.approx(k, rel=0.1)
    assert A_hat == pytest.approx(A, rel=0.15)
    assert fit_intensity([], 1.0) is None and fit_intensity([0.1, 0.2], 1.0) is None


def test_ewma_volatility_of_a_random_walk_with_known_sigma():
    rng = np.random.default_rng(3)
    v = EwmaVolatility(halflife_s=60.0, initial=0.1)
    mid, dt_ns = 1000.0, 100_000_000          # +/-1 tick every 0.1 s: variance rate 10 ticks^2/s
    for i in range(20_000):
        mid += rng.choice([-1.0, 1.0])
        v.update((i + 1) * dt_ns, mid)
    assert v.sigma == pytest.approx(math.sqrt(10), rel=0.1)


def test_markout_tracker_scores_fills_at_the_horizon():
    m = MarkoutTracker(horizon_ns=1000, alpha=1.0)
    m.on_fill(0, +1, 100, 5)
    m.on_fill(0, -1, 101, 5)
    m.update(999, 90.0)
    assert m.markouts == []                   # not matured
    m.update(1000, 98.0)
    assert m.markouts == [-2.0, 3.0] and m.score == 3.0 and m.toxicity == 0.0


# --- strategies -------------------------------------------------------------------------------------
def _book(bid=99.0, ask=101.0):
    ex = lob.Exchange(symbols=["X"], marketdata=False)
    ex.submit("X", "buy", 10, price=bid, owner="o")
    ex.submit("X", "sell", 10, price=ask, owner="o")
    return ex


def _quotes(intents):
    return {i.side: round(i.price, 2) for i in intents if i.action == "submit"}


def test_every_maker_follows_the_protocol_and_quotes_inside_limits():
    ex = _book()
    for s in (AdaptiveMarketMaker(size=1), AvellanedaStoikov(size=1, k=1.0, sigma=1.0),
              GLFT(size=1, A=1.0, k=1.0, sigma=1.0), GridMaker(size=1)):
        assert isinstance(s, Strategy)
        out = s.on_book(Context.of(ex, "X", ts_ns=1))
        assert out and all(isinstance(i, OrderIntent) for i in out)
        q = _quotes(out)
        assert q["buy"] < 101.0 and q["sell"] > 99.0
        assert q["buy"] < q["sell"]


def test_adaptive_skews_against_inventory_and_stops_at_its_limit():
    ex = _book()
    mm = AdaptiveMarketMaker(base_spread_ticks=20, skew_ticks=10, size=1, max_position=10, vol_mult=0)
    flat = _quotes(mm.on_book(Context.of(ex, "X")))
    long_ = _quotes(mm.on_book(Context.of(ex, "X", position=5)))
    short = _quotes(mm.on_book(Context.of(ex, "X", position=-5)))
    assert long_["buy"] < flat["buy"] and long_["sell"] < flat["sell"]
    assert short["buy"] > flat["buy"] and short["sell"] > flat["sell"]
    at_limit = mm.on_book(Context.of(ex, "X", position=10))
    assert [i.side for i in at_limit if i.action == "submit"] == ["sell"]


def test_adaptive_widens_after_toxic_fills():
    ex = lob.Exchange(symbols=["X"], marketdata=False)
    ex.submit("X", "buy", 10, price=99.0, owner="o")
    ex.submit("X", "sell", 10, price=101.0, owner="o")
    mm = AdaptiveMarketMaker(base_spread_ticks=10, vol_mult=0, as_mult=1.0, markout_ns=1_000_000_000, size=1)
    ctx = Context.of(ex, "X", ts_ns=0)
    mm.on_book(ctx)
    base = mm.half_spread()
    # the maker buys at 100.00 and the market drops 50 ticks within the horizon: toxic
    for i in range(5):
        t0 = i * 2_000_000_000
        mm.on_fill(Context.of(ex, "X", ts_ns=t0), dict(side="buy", price=100.0, qty=1, ts_ns=t0, maker=True))
        mm.on_book(Context.of(ex, "X", ts_ns=t0 + 1_000_000_000))       # mid 100.00: markout 0
    assert mm.half_spread() == pytest.approx(base)
    ex2 = lob.Exchange(symbols=["X"], marketdata=False)
    ex2.submit("X", "buy", 10, price=98.0, owner="o")
    ex2.submit("X", "sell", 10, price=99.0, owner="o")                      # mid 98.50
    for i in range(5, 10):
        t0 = i * 2_000_000_000
        mm.on_fill(Context.of(ex2, "X", ts_ns=t0), dict(side="buy", price=100.0, qty=1, ts_ns=t0, maker=True))
        mm.on_book(Context.of(ex2, "X", ts_ns=t0 + 1_000_000_000))
    # five markouts of -150 ticks through an EWMA of alpha 0.2: 150 * (1 - 0.8**5) ticks of toxicity
    assert mm.markouts.toxicity == pytest.approx(150 * (1 - 0.8 ** 5))
    assert mm.half_spread() == pytest.approx(base + mm.markouts.toxicity)


def test_maker_halts_past_max_loss_and_cancels_everything():
    ex = _book()
    mm = AdaptiveMarketMaker(size=1, max_loss=5.0)
    ctx = Context.of(ex, "X", open_orders={7: {"side": 0, "price": 9900, "qty": 1}})
    mm.on_fill(ctx, dict(side="buy", price=110.0, qty=1, ts_ns=0, maker=True))   # paid 110, mid is 100
    out = mm.on_book(ctx)
    assert mm.halted and [(i.action, i.order_id) for i in out] == [("cancel", 7)]


def test_reconcile_keeps_matching_orders_and_replaces_the_rest():
    ex = _book()
    g = GridMaker(levels=2, spacing_ticks=3, size=1)
    first = g.on_book(Context.of(ex, "X"))
    opened = {i + 1: {"side": 0 if it.side == "buy" else 1, "price": int(round(it.price * 100)), "qty": 1}
              for i, it in enumerate(first)}
    assert g.on_book(Context.of(ex, "X", open_orders=opened)) == []          # nothing to change
    stale = dict(opened)
    stale[99] = {"side": 0, "price": 5000, "qty": 1}
    again = g.on_book(Context.of(ex, "X", open_orders=stale))
    assert [(i.action, i.order_id) for i in again] == [("cancel", 99)]


def test_glft_fits_A_and_k_from_trades():
    ex = _book()
    g = GLFT(size=1, refit_every=1, sigma=1.0)
    ctx = Context.of(ex, "X", ts_ns=0)
    g.on_book(ctx)                                              # mid 100.00 = 10000 ticks
    rng = np.random.default_rng(11)
    t = 0
    for _ in range(3000):
        t += int(rng.exponential(0.1) * 1e9)
        depth = rng.exponential(1 / 0.8)                         # k = 0.8 per tick, A = 10 per second
        buy = rng.random() < 0.5
        price = (10000 + depth if buy else 10000 - depth) / 100
        g.on_trade(ctx, dict(price=price, qty=1, aggressor="buy" if buy else "sell", ts_ns=t))
    g.on_book(Context.of(ex, "X", ts_ns=t))
    assert g.fits >= 1
    assert g.k == pytest.approx(0.8, rel=0.15) and g.A == pytest.approx(10.0, rel=0.2)


def test_avellaneda_stoikov_session_horizon_runs_down():
    ex = _book()
    a = AvellanedaStoikov(size=1, k=1.0, sigma=2.0, gamma=0.1, horizon_s=10, rolling=False)
    a.on_book(Context.of(ex, "X", ts_ns=0))
    assert a.tau(0) == 10 and a.tau(4_000_000_000) == pytest.approx(6) and a.tau(20_000_000_000) == 0
    early = _quotes(a.on_book(Context.of(ex, "X", ts_ns=0, position=3)))
    late = _quotes(a.on_book(Context.of(ex, "X", ts_ns=9_000_000_000, position=3)))
    # with less time left, the inventory penalty (q gamma sigma^2 tau) shrinks: quotes move back up
    assert late["buy"] > early["buy"]


def test_bad_parameters_raise_naming_the_field():
    for make, field in ((lambda: AdaptiveMarketMaker(base_spread_ticks=0), "base_spread_ticks"),
                        (lambda: GridMaker(levels=0), "levels"), (lambda: GLFT(gamma=-1), "gamma"),
                        (lambda: AvellanedaStoikov(k=0), "k"), (lambda: AdaptiveMarketMaker(size=0), "size"),
                        (lambda: OrderIntent("replace"), "action"), (lambda: OrderIntent("cancel"), "order_id")):
        with pytest.raises(ConfigError, match=field):
            make()
