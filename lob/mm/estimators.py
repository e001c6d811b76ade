"""Online estimators the market makers share: volatility of mid returns, markouts of own fills (adverse
selection), and the trade-arrival intensity ``lambda(delta) = A exp(-k delta)`` (see docs/market_making.md)."""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from lob.errors import ConfigError

__all__ = ["EwmaVolatility", "MarkoutTracker", "ArrivalFitter", "fit_intensity"]

_NS = 1e9


class EwmaVolatility:
    """Exponentially weighted variance rate of mid returns, in ticks per sqrt(second).

    Each update with a new mid adds the squared change ``(m_t - m_{t-1})^2 / dt`` (a variance per
    second) with weight ``1 - exp(-dt / halflife * ln 2)``; irregular sampling is handled by ``dt``.
    Returns are arithmetic in ticks: over the horizons of market making they equal log returns times the
    price, and the formulas are written in ticks.

    Parameters
    ----------
    halflife_s : float
    initial : float
        Estimate (ticks per sqrt(s)) before the first change.

    Examples
    --------
    >>> v = EwmaVolatility(halflife_s=1.0, initial=0.0)
    >>> for i, m in enumerate([100, 101, 100, 101, 100]):
    ...     v.update(i * 1_000_000_000, m)
    >>> round(v.sigma, 3)      # |change| of 1 tick each second
    0.968
    """

    def __init__(self, halflife_s: float = 30.0, initial: float = 1.0):
        if not halflife_s > 0:
            raise ConfigError(f"halflife_s must be > 0, got {halflife_s!r}")
        self.halflife_s = halflife_s
        self.var = initial ** 2
        self._last = None
        self.n = 0

    def update(self, ts_ns: int, mid: float) -> None:
        if self._last is None:
            self._last = (ts_ns, mid)
            return
        t0, m0 = self._last
        dt = (ts_ns - t0) / _NS
        if dt <= 0:
            # same instant: keep the first mid of the instant as the base
            return
        w = 1.0 - math.exp(-dt / self.halflife_s * math.log(2))
        self.var += w * ((mid - m0) ** 2 / dt - self.var)
        self._last = (ts_ns, mid)
        self.n += 1

    @property
    def sigma(self) -> float:
        """Ticks per sqrt(second)."""
        return math.sqrt(max(self.var, 0.0))


class MarkoutTracker:
    """Markouts of the strategy's own fills at a horizon, and a toxicity score from them.

    A fill at price ``p`` (ticks) with sign ``s`` (+1 bought) marks out at ``s * (mid(t + h) - p)`` ticks:
    negative when the market moved against the fill (adverse selection). The score is the EWMA of the
    per-lot markouts; ``toxicity`` is its negative part (ticks).

    Examples
    --------
    >>> m = MarkoutTracker(horizon_ns=10, alpha=0.5)
    >>> m.on_fill(0, +1, 100, 1); m.update(5, 100.0); m.update(10, 98.0)
    >>> m.score, m.toxicity
    (-1.0, 1.0)
    """

    def __init__(self, horizon_ns: int = 1_000_000_000, alpha: float = 0.2):
        if not (isinstance(horizon_ns, int) and horizon_ns > 0):
            raise ConfigError(f"horizon_ns must be a positive int, got {horizon_ns!r}")
        if not 0 < alpha <= 1:
            raise ConfigError(f"alpha must be in (0, 1], got {alpha!r}")
        self.horizon_ns = horizon_ns
        self.alpha = alpha
        self.score = 0.0
        self.pending: deque = deque()
        self.markouts: list[float] = []

    def on_fill(self, ts_ns: int, sign: int, price_ticks: float, qty_lots: int) -> None:
        self.pending.append((ts_ns, sign, price_ticks, qty_lots))

    def update(self, ts_ns: int, mid: float) -> None:
        while self.pending and self.pending[0][0] + self.horizon_ns <= ts_ns:
            _, sign, p, _ = self.pending.popleft()
            mo = sign * (mid - p)
            self.markouts.append(mo)
            self.score += self.alpha * (mo - self.score)

    @property
    def toxicity(self) -> float:
        return max(0.0, -self.score)


def fit_intensity(depths, duration_s: float, max_depth: int | None = None, min_count: int = 3):
    """Fit ``lambda(delta) = A exp(-k delta)`` to trades observed at depths (ticks) from the mid.

    ``lambda(delta)`` is estimated as the number of trades that reached at least ``delta`` per second,
    on the grid ``delta = 0, 1, ..., max_depth``; ``ln lambda`` is then fitted linearly in ``delta``
    (least squares) over the grid points with at least ``min_count`` trades: slope ``-k``, intercept ``ln A``.

    Parameters
    ----------
    depths : array-like
        How far each trade reached from the mid, in ticks (non-negative; a market buy that took the ask
        at mid + 1.5 ticks has depth 1.5).
    duration_s : float
        Observation time.

    Returns
    -------
    (A, k) : (float per second, float per tick), or None when fewer than two grid points qualify.

    Examples
    --------
    >>> d = [0.5] * 100 + [1.5] * 37 + [2.5] * 14 + [3.5] * 5     # counts ~ exp(-delta)
    >>> A, k = fit_intensity(d, duration_s=10.0)
    >>> round(k, 1), round(A, 1)
    (1.1, 16.7)
    """
    d = np.asarray(depths, dtype=float)
    if not duration_s > 0:
        raise ConfigError(f"duration_s must be > 0, got {duration_s!r}")
    if d.size == 0:
        return None
    d = np.maximum(d, 0.0)
    top = int(np.ceil(d.max())) if max_depth is None else int(max_depth)
    grid = np.arange(0, top + 1, dtype=float)
    counts = (d[None, :] >= grid[:, None]).sum(axis=1)
    ok = counts >= min_count
    if ok.sum() < 2:
        return None
    slope, intercept = np.polyfit(grid[ok], np.log(counts[ok] / duration_s), 1)
    k = -slope
    if not k > 0:
        return None
    return float(math.exp(intercept)), float(k)


class ArrivalFitter:
    """Collect trade depths from the mid over a rolling window and refit ``A``, ``k`` on demand.

    Parameters
    ----------
    window_s : float
        Trades older than this are dropped.
    """

    def __init__(self, window_s: float = 300.0):
        if not window_s > 0:
            raise ConfigError(f"window_s must be > 0, got {window_s!r}")
        self.window_ns = int(window_s * _NS)
        self.obs: deque = deque()
        self._t0 = None

    def on_trade(self, ts_ns: int, price_ticks: float, aggressor_buy: bool, mid_ticks: float | None) -> None:
        if mid_ticks is None:
            return
        if self._t0 is None:
            self._t0 = ts_ns
        depth = price_ticks - mid_ticks if aggressor_buy else mid_ticks - price_ticks
        self.obs.append((ts_ns, max(0.0, depth)))
        while self.obs and self.obs[0][0] < ts_ns - self.window_ns:
            self.obs.popleft()

    def fit(self, now_ns: int):
        """(A, k) over the window ending at ``now_ns``, or None without enough data."""
        if self._t0 is None:
            return None
        span = min(now_ns - self._t0, self.window_ns) / _NS
        if span <= 0:
            return None
        return fit_intensity([d for _, d in self.obs], span)
