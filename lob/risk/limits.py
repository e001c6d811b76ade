"""``RiskLimits``: the pre-trade limits of one owner (optionally in one symbol), in integer units."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from lob.errors import ConfigError

__all__ = ["RiskLimits"]


@dataclass(frozen=True)
class RiskLimits:
    """Pre-trade and post-trade limits. ``None`` disables a limit.

    All amounts are integers in the symbol's units: quantities in lots, prices in ticks, notionals and
    losses in tick-lots (``price_ticks * qty_lots``). Across symbols (``max_exposure``, ``max_loss``,
    ``max_drawdown``, ``max_open_orders``) amounts add up in tick-lots, which is a currency only when the
    symbols share one tick value (as the default 4-symbol market does); give per-symbol limits otherwise.

    Parameters
    ----------
    max_qty : int
        Largest order quantity (``RISK_MAX_QTY``).
    max_notional : int
        Largest ``price * qty`` of one order; a market order is valued at the reference price
        (``RISK_MAX_NOTIONAL``).
    collar_ticks : int
        A limit price further than this from the reference price (last trade, else the configured
        reference) is rejected (``RISK_PRICE_COLLAR``).
    max_position : int
        Largest absolute worst-case position in a symbol: the position plus every open order on the side
        of the new order, the new order included, as if they all filled (``RISK_POSITION_LIMIT``).
    max_exposure : int
        Largest sum over symbols of the absolute worst-case position x reference price (``RISK_EXPOSURE_LIMIT``).
    max_open_orders : int
        Open orders of the owner across symbols (``RISK_OPEN_ORDERS``).
    rate_per_s, burst : float, int
        Order-rate throttle: a token bucket on the event clock refilled at ``rate_per_s`` tokens per
        second of event time, holding at most ``burst`` (``RISK_THROTTLE``).
    max_loss : int
        Loss (negative PnL, fees included, marked at last trade) that trips the kill switch
        (``RISK_MAX_LOSS``).
    max_drawdown : int
        Fall from the PnL's running peak that trips the kill switch (``RISK_MAX_LOSS``).
    """

    max_qty: int | None = None
    max_notional: int | None = None
    collar_ticks: int | None = None
    max_position: int | None = None
    max_exposure: int | None = None
    max_open_orders: int | None = None
    rate_per_s: float | None = None
    burst: int | None = None
    max_loss: int | None = None
    max_drawdown: int | None = None

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if f.name == "rate_per_s":
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0:
                    raise ConfigError(f"rate_per_s must be a positive number, got {v!r}")
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"{f.name} must be a non-negative int (ticks/lots), got {v!r}")
        if (self.rate_per_s is None) != (self.burst is None):
            raise ConfigError(f"rate_per_s and burst go together, got {self.rate_per_s!r} and {self.burst!r}")

    def scaled(self, factor: float) -> "RiskLimits":
        """These limits tightened by ``factor`` (0 < factor <= 1): sizes, counts, rates and losses scale,
        rounded down (never below 1 for a size or count, so trading is throttled, not stopped)."""
        if not 0 < factor <= 1:
            raise ConfigError(f"factor must be in (0, 1], got {factor!r}")
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None or f.name == "burst":
                out[f.name] = v
            elif f.name == "rate_per_s":
                out[f.name] = v * factor
            else:
                out[f.name] = max(1 if v > 0 else 0, int(v * factor))
        if self.burst is not None:
            out["burst"] = max(1, int(self.burst * factor))
        return replace(self, **out)
