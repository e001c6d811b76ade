"""The adaptive market maker: volatility-scaled spread, inventory skew, and an adverse-selection detector
that widens the quotes after toxic fills (DESIGN §7, docs/market_making.md)."""
from __future__ import annotations

from lob.errors import ConfigError
from lob.mm.base import MarketMaker
from lob.mm.estimators import EwmaVolatility, MarkoutTracker

__all__ = ["AdaptiveMarketMaker"]


class AdaptiveMarketMaker(MarketMaker):
    """Quote one level each side around a skewed reservation price.

    ``half = base_spread_ticks / 2 + vol_mult * sigma * sqrt(vol_horizon_s) + as_mult * toxicity``
    ``reservation = mid - skew_ticks * position / max_position``
    ``bid = floor(reservation - half)``, ``ask = ceil(reservation + half)`` (never crossing the book).

    ``sigma`` is the EWMA volatility of mid returns (ticks per sqrt(s)); ``toxicity`` is the negative part
    of the EWMA markout (ticks) of the strategy's own fills at ``markout_ns``. No quote is placed on the
    side that would take the position past ``max_position``; a loss past ``max_loss`` stops quoting.

    Parameters
    ----------
    base_spread_ticks : float
    vol_mult, vol_horizon_s : float
    skew_ticks : float
        Reservation-price shift at full inventory.
    as_mult : float
        Extra half-spread per tick of toxicity.
    markout_ns : int
    vol_halflife_s : float
    **kw
        ``size``, ``max_position``, ``max_loss``, ``requote_ticks`` (see :class:`MarketMaker`).

    Examples
    --------
    >>> import lob
    >>> from lob.mm import AdaptiveMarketMaker, Context
    >>> ex = lob.Exchange(symbols=["X"]); _ = ex.submit("X", "buy", 5, price=99.0); _ = ex.submit("X", "sell", 5, price=101.0)
    >>> mm = AdaptiveMarketMaker(base_spread_ticks=10, size=2, vol_mult=0)
    >>> [(i.side, i.qty, i.price) for i in mm.on_book(Context.of(ex, "X", ts_ns=0))]
    [('buy', 2.0, 99.95), ('sell', 2.0, 100.05)]
    """

    def __init__(self, base_spread_ticks: float = 4, vol_mult: float = 1.0, vol_horizon_s: float = 1.0,
                 skew_ticks: float = 4, as_mult: float = 2.0, markout_ns: int = 1_000_000_000,
                 vol_halflife_s: float = 30.0, **kw):
        if not base_spread_ticks > 0:
            raise ConfigError(f"base_spread_ticks must be > 0, got {base_spread_ticks!r}")
        for name, v in (("vol_mult", vol_mult), ("skew_ticks", skew_ticks), ("as_mult", as_mult)):
            if not v >= 0:
                raise ConfigError(f"{name} must be >= 0, got {v!r}")
        self.base_spread_ticks = base_spread_ticks
        self.vol_mult, self.vol_horizon_s = vol_mult, vol_horizon_s
        self.skew_ticks, self.as_mult = skew_ticks, as_mult
        self.markout_ns, self.vol_halflife_s = markout_ns, vol_halflife_s
        super().__init__(**kw)

    def _reset(self):
        super()._reset()
        self.vol = EwmaVolatility(self.vol_halflife_s, initial=0.5)
        self.markouts = MarkoutTracker(self.markout_ns)
        self.last_quote = None

    def compiled(self):
        """The compiled form (:class:`lob.mm._compiled.CAdaptive`), or None when a method was replaced."""
        if not self._plain(AdaptiveMarketMaker) or self.markouts.alpha != 0.2:
            return None
        from lob.mm._compiled import CAdaptive

        return CAdaptive(self.base_spread_ticks, self.vol_mult, self.vol_horizon_s, self.skew_ticks, self.as_mult,
                         self.markout_ns, self.vol_halflife_s, **self._base_kw())

    def observe(self, ctx, bid, ask):
        if bid and ask:
            mid = (bid + ask) / 2
            self.vol.update(ctx.ts_ns, mid)
            self.markouts.update(ctx.ts_ns, mid)

    def half_spread(self) -> float:
        """Half the quoted spread in ticks (before the skew and the rounding to ticks)."""
        return (self.base_spread_ticks / 2 + self.vol_mult * self.vol.sigma * self.vol_horizon_s ** 0.5
                + self.as_mult * self.markouts.toxicity)

    def quotes(self, ctx, bid, ask):
        mid = (bid + ask) / 2
        res = mid - self.skew_ticks * ctx.position / self.max_position
        half = self.half_spread()
        b, a = self.bid_ask_ticks(res - half, res + half, bid, ask)
        self.last_quote = (b, a, half)
        return self.quote_pair(ctx, b, a)

    def on_fill(self, ctx, fill):
        super().on_fill(ctx, fill)
        self.markouts.on_fill(fill["ts_ns"], 1 if fill["side"] == "buy" else -1,
                              fill["price"] / ctx.book.tick_size, fill["qty"])
        return None
