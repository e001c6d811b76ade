"""lob.units: one float -> ticks/lots rule (the per-call path's) and one off-grid error, used by the exchange's
helpers, the market-maker base and the scorecard."""
import pandas as pd
import pytest

import lob
from lob.errors import ConfigError
from lob.mm.scorecard import Scorecard
from lob.units import to_units, to_units_array

# (price, tick): on the grid within float noise, and off it
ON = [(99.98, 0.01), (0.3, 0.1), (1.05, 0.05), (585.33, 0.01), (123456.78, 0.01), (0.00012345, 1e-8),
      (2.0, 0.5), (7, 1.0), (1e7, 0.01)]
OFF = [(99.985, 0.01), (1.02, 0.05), (0.35, 0.1), (585.335, 0.01), (0.000123455, 1e-8), (2.25, 0.5)]


@pytest.mark.parametrize("price, tick", ON)
def test_on_the_grid_is_the_nearest_integer(price, tick):
    t = to_units(price, tick, "price")
    assert isinstance(t, int) and t == round(price / tick)
    assert to_units_array([price, price], tick, "price").tolist() == [t, t]


@pytest.mark.parametrize("price, tick", OFF)
def test_off_the_grid_names_the_field_the_value_and_the_unit(price, tick):
    with pytest.raises(ConfigError, match=rf"^price {price!r} is not a multiple of tick_size {tick}$"):
        to_units(price, tick, "price")
    with pytest.raises(ConfigError, match=rf"^fill qty {price!r} \(row 1\) is not a multiple of lot_size {tick}$"):
        to_units_array([tick, price], tick, "fill qty", "lot_size")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, "x", None, True])
def test_not_a_number(bad):
    with pytest.raises(ConfigError, match="^price must be a"):
        to_units(bad, 0.01, "price")


@pytest.mark.parametrize("price, tick", ON + OFF)
def test_same_rule_as_the_per_call_path(price, tick):
    # the venue rejects an order off the grid (invalid_price_tick) exactly when to_units raises
    ex = lob.Exchange()
    ex.add_symbol("X", tick_size=tick, lot_size=1)
    r = ex.submit("X", "buy", 1, price=price)
    try:
        t = to_units(price, tick, "price")
    except ConfigError:
        assert (r.status, r.reason) == ("rejected", "invalid_price_tick")
        with pytest.raises(ConfigError, match=f"price {price!r} is not a multiple of tick_size"):
            ex.to_ticks("X", price)
    else:
        assert r.status == "new" and ex.book("X").best_ticks()[0] == t == ex.to_ticks("X", price)


def test_add_symbol_names_the_field():
    ex = lob.Exchange()
    with pytest.raises(ConfigError, match=r"^ref_price 100.005 is not a multiple of tick_size 0.01$"):
        ex.add_symbol("X", tick_size=0.01, ref_price=100.005)
    with pytest.raises(ConfigError, match=r"^min_qty 15 is not a multiple of lot_size 10.0$"):
        ex.add_symbol("Y", tick_size=0.01, lot_size=10, min_qty=15)
    ex.add_symbol("Z", tick_size=0.01, lot_size=10, min_qty=20, ref_price=100.01)


def test_market_maker_fills_and_scorecard_convert_through_it():
    from lob.mm import GridMaker

    ex = lob.Exchange()
    ex.add_symbol("X", tick_size=0.01, lot_size=1)
    ctx = lob.mm.Context(ex.book("X"))
    mm = GridMaker()
    mm.on_fill(ctx, {"side": "buy", "price": 99.98, "qty": 3})
    assert (mm.position_lots, mm.cash_ticks) == (3, -3 * 9998)
    with pytest.raises(ConfigError, match="fill price 99.985 is not a multiple of tick_size 0.01"):
        mm.on_fill(ctx, {"side": "buy", "price": 99.985, "qty": 3})

    class Result:
        fills = pd.DataFrame({"ts_ns": [0, 10], "side": ["buy", "sell"], "price": [99.98, 100.03], "qty": [3.0, 3.0],
                              "maker": [True, True]})
        pnl = pd.DataFrame({"ts_ns": [0, 10], "mid": [100.0, 100.0]})
        orders = pd.DataFrame({"qty": [3.0, 3.0]})

    sc = Scorecard.from_backtest(Result)
    assert sc.fills["price_ticks"].tolist() == [9998, 10003]
    Result.fills = Result.fills.assign(price=[99.98, 100.035])
    with pytest.raises(ConfigError, match=r"fill price 100.035 \(row 1\) is not a multiple of tick_size 0.01"):
        Scorecard.from_backtest(Result)


def test_doctests():
    import doctest

    import lob.units

    result = doctest.testmod(lob.units)
    assert result.attempted > 0 and result.failed == 0
