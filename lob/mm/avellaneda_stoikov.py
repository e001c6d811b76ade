"""Avellaneda & Stoikov (2008), "High-frequency trading in a limit order book", Quantitative Finance 8(3).

Reservation price and optimal total spread of a CARA market maker facing Poisson order arrivals of
intensity ``lambda(delta) = A exp(-k delta)``:

    r(s, q, t) = s - q * gamma * sigma^2 * (T - t)                         (AS eq. 29)
    delta_a + delta_b = gamma * sigma^2 * (T - t) + (2 / gamma) ln(1 + gamma / k)   (AS eq. 30)

Units here: prices in ticks, ``sigma`` in ticks per sqrt(second), time in seconds, ``q`` in quote sizes.
"""
from __future__ import annotations

import math

from lob.errors import ConfigError
from lob.mm.base import MarketMaker
from lob.mm.estimators import ArrivalFitter, EwmaVolatility

__all__ = ["AvellanedaStoikov", "as_reservation_price", "as_spread"]


def as_reservation_price(mid: float, q: float, gamma: float, sigma: float, tau: float) -> float:
    """``r = s - q gamma sigma^2 tau`` (Avellaneda & Stoikov 2008, eq. 29).

    Examples
    --------
    >>> as_reservation_price(100.0, 2, 0.1, 1.0, 5.0)
    99.0
    """
    return mid - q * gamma * sigma ** 2 * tau


def as_spread(gamma: float, sigma: float, tau: float, k: float) -> float:
    """``gamma sigma^2 tau + (2/gamma) ln(1 + gamma/k)`` (Avellaneda & Stoikov 2008, eq. 30).

    Examples
    --------
    >>> round(as_spread(0.1, 1.0, 5.0, 1.5), 5)
    1.79077
    """
    if not gamma > 0 or not k > 0:
        raise ConfigError(f"gamma and k must be > 0, got {gamma!r}, {k!r}")
    return gamma * sigma ** 2 * tau + 2.0 / gamma * math.log1p(gamma / k)


class AvellanedaStoikov(MarketMaker):
    """Quote ``r -/+ spread/2`` around the reservation price (see the module docstring).

    Parameters
    ----------
    gamma : float
        Risk aversion (per tick per quote size).
    k : float, optional
        Arrival decay per tick; None fits it (with ``A``) from trade arrivals (:class:`ArrivalFitter`),
        using ``k0`` until there is enough data.
    sigma : float, optional
        Ticks per sqrt(second); None estimates it online (:class:`EwmaVolatility`).
    horizon_s : float
        ``T - t``: a session of this length from the first book (``rolling=False``: the horizon shrinks
        to ``min_tau_s``), or a constant horizon (``rolling=True``, the usual stationary use).
    **kw : see :class:`MarketMaker`.
    """

    def __init__(self, gamma: float = 0.1, k: float | None = None, sigma: float | None = None,
                 horizon_s: float = 60.0, rolling: bool = True, k0: float = 1.5, min_tau_s: float = 0.0,
                 fit_window_s: float = 300.0, vol_halflife_s: float = 30.0, **kw):
        if not gamma > 0:
            raise ConfigError(f"gamma must be > 0, got {gamma!r}")
        if k is not None and not k > 0:
            raise ConfigError(f"k must be > 0, got {k!r}")
        if not horizon_s > 0:
            raise ConfigError(f"horizon_s must be > 0, got {horizon_s!r}")
        self.gamma, self.k_fixed, self.sigma_fixed = gamma, k, sigma
        self.horizon_s, self.rolling, self.k0, self.min_tau_s = horizon_s, rolling, k0, min_tau_s
        self.fit_window_s, self.vol_halflife_s = fit_window_s, vol_halflife_s
        super().__init__(**kw)

    def _reset(self):
        super()._reset()
        self.vol = EwmaVolatility(self.vol_halflife_s, initial=1.0)
        self.fitter = ArrivalFitter(self.fit_window_s)
        self.k = self.k_fixed or self.k0
        self.t0 = None
        self._n = 0

    def compiled(self):
        """The compiled form (:class:`lob.mm._compiled.CAvellanedaStoikov`), or None when a method was replaced."""
        if not self._plain(AvellanedaStoikov):
            return None
        from lob.mm._compiled import CAvellanedaStoikov

        return CAvellanedaStoikov(self.gamma, self.k_fixed, self.sigma_fixed, self.horizon_s, self.rolling, self.k0,
                                  self.min_tau_s, self.fit_window_s, self.vol_halflife_s, **self._base_kw())

    def observe(self, ctx, bid, ask):
        if self.t0 is None:
            self.t0 = ctx.ts_ns
        if bid and ask:
            self.vol.update(ctx.ts_ns, (bid + ask) / 2)
        self._n += 1
        if self.k_fixed is None and self._n % 50 == 0:
            fit = self.fitter.fit(ctx.ts_ns)
            if fit is not None:
                self.k = fit[1]

    def on_trade(self, ctx, trade):
        self.fitter.on_trade(trade["ts_ns"], trade["price"] / ctx.book.tick_size, trade["aggressor"] == "buy",
                             self.mid_ticks)
        return None

    @property
    def sigma(self) -> float:
        return self.sigma_fixed if self.sigma_fixed is not None else self.vol.sigma

    def tau(self, ts_ns: int) -> float:
        if self.rolling:
            return self.horizon_s
        t0 = self.t0 if self.t0 is not None else ts_ns
        return max(self.min_tau_s, self.horizon_s - (ts_ns - t0) / 1e9)

    def quotes(self, ctx, bid, ask):
        mid = (bid + ask) / 2
        tau = self.tau(ctx.ts_ns)
        r = as_reservation_price(mid, self.inventory(ctx), self.gamma, self.sigma, tau)
        half = as_spread(self.gamma, self.sigma, tau, self.k) / 2
        b, a = self.bid_ask_ticks(r - half, r + half, bid, ask)
        return self.quote_pair(ctx, b, a)
