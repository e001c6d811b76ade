"""Gueant, Lehalle & Fernandez-Tapia (2013), "Dealing with the inventory risk: a solution to the market
making problem", Mathematics and Financial Economics 7(4).

Closed-form approximation of the optimal quotes (their asymptotic solution, section 4, with unit order
size and inventory ``q`` in order sizes), for arrivals ``lambda(delta) = A exp(-k delta)``:

    c1 = (1 / gamma) ln(1 + gamma / k)
    c2 = sqrt( sigma^2 gamma / (2 k A) * (1 + gamma / k)^(1 + k / gamma) )
    delta_b(q) = c1 + (2q + 1) / 2 * c2        (distance of the bid below the mid)
    delta_a(q) = c1 - (2q - 1) / 2 * c2        (distance of the ask above the mid)

and no bid at ``q = Q``, no ask at ``q = -Q`` (the inventory bound). ``A`` and ``k`` are fitted from trade
arrivals against their distance from the mid (:func:`lob.mm.estimators.fit_intensity`).
"""
from __future__ import annotations

import math

from lob.errors import ConfigError
from lob.mm.base import MarketMaker
from lob.mm.estimators import ArrivalFitter, EwmaVolatility

__all__ = ["GLFT", "glft_coefficients", "glft_quotes"]


def glft_coefficients(gamma: float, sigma: float, A: float, k: float) -> tuple[float, float]:
    """``(c1, c2)`` of the GLFT approximation (ticks).

    Examples
    --------
    >>> c1, c2 = glft_coefficients(gamma=0.05, sigma=1.0, A=2.0, k=1.0)
    >>> round(c1, 4), round(c2, 4)
    (0.9758, 0.1866)
    """
    if not (gamma > 0 and k > 0 and A > 0 and sigma >= 0):
        raise ConfigError(f"gamma, k, A must be > 0 and sigma >= 0, got {gamma!r}, {k!r}, {A!r}, {sigma!r}")
    c1 = math.log1p(gamma / k) / gamma
    c2 = math.sqrt(sigma ** 2 * gamma / (2 * k * A) * (1 + gamma / k) ** (1 + k / gamma))
    return c1, c2


def glft_quotes(q: float, gamma: float, sigma: float, A: float, k: float) -> tuple[float, float]:
    """``(delta_b, delta_a)``: distances (ticks) of the bid below and the ask above the mid at inventory q."""
    c1, c2 = glft_coefficients(gamma, sigma, A, k)
    return c1 + (2 * q + 1) / 2 * c2, c1 - (2 * q - 1) / 2 * c2


class GLFT(MarketMaker):
    """Quote at the GLFT distances from the mid with A, k fitted from trade arrivals.

    Parameters
    ----------
    gamma : float
        Risk aversion.
    A, k : float, optional
        Fixed intensity parameters; None fits them from the trades seen (``A0``, ``k0`` until then).
    sigma : float, optional
        Ticks per sqrt(s); None estimates it online.
    refit_every : int
        Refit A, k every this many ``on_book`` calls.
    **kw : see :class:`MarketMaker` (``max_position`` is the inventory bound Q x size).
    """

    def __init__(self, gamma: float = 0.05, A: float | None = None, k: float | None = None,
                 sigma: float | None = None, A0: float = 1.0, k0: float = 1.0, fit_window_s: float = 300.0,
                 refit_every: int = 50, vol_halflife_s: float = 30.0, **kw):
        if not gamma > 0:
            raise ConfigError(f"gamma must be > 0, got {gamma!r}")
        self.gamma, self.A_fixed, self.k_fixed, self.sigma_fixed = gamma, A, k, sigma
        self.A0, self.k0, self.fit_window_s, self.refit_every = A0, k0, fit_window_s, refit_every
        self.vol_halflife_s = vol_halflife_s
        super().__init__(**kw)

    def _reset(self):
        super()._reset()
        self.vol = EwmaVolatility(self.vol_halflife_s, initial=1.0)
        self.fitter = ArrivalFitter(self.fit_window_s)
        self.A = self.A_fixed or self.A0
        self.k = self.k_fixed or self.k0
        self.fits = 0
        self._n = 0

    def compiled(self):
        """The compiled form (:class:`lob.mm._compiled.CGLFT`), or None when a method was replaced."""
        if not self._plain(GLFT):
            return None
        from lob.mm._compiled import CGLFT

        return CGLFT(self.gamma, self.A_fixed, self.k_fixed, self.sigma_fixed, self.A0, self.k0, self.fit_window_s,
                     self.refit_every, self.vol_halflife_s, **self._base_kw())

    @property
    def sigma(self) -> float:
        return self.sigma_fixed if self.sigma_fixed is not None else self.vol.sigma

    def observe(self, ctx, bid, ask):
        if bid and ask:
            self.vol.update(ctx.ts_ns, (bid + ask) / 2)
        self._n += 1
        if (self.A_fixed is None or self.k_fixed is None) and self._n % self.refit_every == 0:
            fit = self.fitter.fit(ctx.ts_ns)
            if fit is not None:
                self.A = self.A_fixed or fit[0]
                self.k = self.k_fixed or fit[1]
                self.fits += 1

    def on_trade(self, ctx, trade):
        self.fitter.on_trade(trade["ts_ns"], trade["price"] / ctx.book.tick_size, trade["aggressor"] == "buy",
                             self.mid_ticks)
        return None

    def quotes(self, ctx, bid, ask):
        mid = (bid + ask) / 2
        db, da = glft_quotes(self.inventory(ctx), self.gamma, self.sigma, self.A, self.k)
        b, a = self.bid_ask_ticks(mid - db, mid + da, bid, ask)
        return self.quote_pair(ctx, b, a)
