"""Market making: the strategy protocol, the market makers, their estimators and the scorecard (DESIGN §7).

Strategies return :class:`OrderIntent` lists from ``on_start/on_book/on_trade/on_fill`` and never touch the
venue, so they run unchanged in :mod:`lob.sim`, in :class:`lob.replay.Backtest` and behind the server.
Formulas and sources: docs/market_making.md.
"""
from lob.mm.adaptive import AdaptiveMarketMaker
from lob.mm.avellaneda_stoikov import AvellanedaStoikov, as_reservation_price, as_spread
from lob.mm.base import Context, MarketMaker, OrderIntent, Strategy, cancel, modify, submit
from lob.mm.estimators import ArrivalFitter, EwmaVolatility, MarkoutTracker, fit_intensity
from lob.mm.glft import GLFT, glft_coefficients, glft_quotes
from lob.mm.grid import GridMaker

__all__ = ["OrderIntent", "Strategy", "Context", "MarketMaker", "submit", "cancel", "modify",
           "AdaptiveMarketMaker", "AvellanedaStoikov", "GLFT", "GridMaker",
           "as_reservation_price", "as_spread", "glft_coefficients", "glft_quotes",
           "EwmaVolatility", "MarkoutTracker", "ArrivalFitter", "fit_intensity", "Scorecard"]


def __getattr__(name):
    if name == "Scorecard":
        from lob.mm.scorecard import Scorecard

        return Scorecard
    raise AttributeError(name)
