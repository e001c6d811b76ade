"""The risk guard: the pre-trade check the server installs in the exchange's risk slot (``exchange.risk``).

The exchange calls it on every order with integers (symbol index, side, ``qty_lots``, ``price_ticks``, owner
id, order type) and it answers an integer :class:`lob.Reason` code (0 passes), as any ``exchange.risk`` does
(:class:`lob.risk.RiskManager` among them). It runs the check that was installed before it (``inner``), then
the per-account limits of :class:`~lob.server.accounts.AccountLimits`, which it turns once per symbol into
integer bounds (lots, and ticks x lots for the notional): the order path converts nothing.

A check that raises puts the venue in conservative mode (:meth:`RiskGuard.failed`): the order that met the
failure and every later one meet the account limits scaled by ``conservative_factor``, bots' orders too, and an
installed ``RiskManager`` is switched to conservative; :meth:`RiskGuard.clear` leaves it.
"""
from __future__ import annotations

import math
import time
from fractions import Fraction

import lob
from lob.server.accounts import AccountLimits

__all__ = ["RiskGuard"]

_MAX_QTY, _MAX_NOTIONAL = int(lob.Reason.RISK_MAX_QTY), int(lob.Reason.RISK_MAX_NOTIONAL)
_OPEN_ORDERS = int(lob.Reason.RISK_OPEN_ORDERS)


def _exact(x) -> Fraction:
    # the decimal a user means by a float setting (0.01, not the binary double nearest it)
    return Fraction(str(x)) if isinstance(x, float) else Fraction(x)


class RiskGuard:
    """Integer-in, reason-code-out pre-trade check of a server's exchange (see the module docstring).

    Parameters
    ----------
    exchange : lob.Exchange
        Its ``risk`` slot is taken; the check that was there becomes :attr:`inner`.
    limits : AccountLimits
    owners : dict
        Owner id -> account name of the server's accounts (kept up to date by the order-entry role).
    open_orders : dict
        Account -> its open orders (a mapping whose ``len`` is counted).
    incidents : IncidentLog
    stats : collections.Counter
    """

    def __init__(self, exchange, limits: AccountLimits, owners: dict, open_orders: dict, incidents, stats,
                 conservative_factor: float = 0.5):
        self.exchange = exchange
        self.inner = getattr(exchange, "risk", None)
        self.limits = limits
        self.owners, self.open_orders = owners, open_orders
        self.incidents, self.stats = incidents, stats
        self.conservative: dict | None = None       # set while the venue runs in conservative mode
        self.conservative_factor = conservative_factor
        self._key = None
        self._bounds: dict[int, tuple[int, int]] = {}
        self._max_open = 0
        exchange.risk = self

    # --- the exchange's risk slot ----------------------------------------------------------------------
    def check_modify(self, sym, order_id, qty_lots, price_ticks, owner, ts_ns=None) -> int:
        inner = self.inner
        if inner is not None and hasattr(inner, "check_modify"):
            try:
                return inner.check_modify(sym, order_id, qty_lots, price_ticks, owner, ts_ns)
            except Exception as e:      # noqa: BLE001 - a failing check must not take the order path down
                self.failed(e)
        return 0

    def check_submit(self, sym, side, qty_lots, price_ticks, owner, type_, ts_ns=None) -> int:
        failed = False
        if self.inner is not None:
            try:
                r = self.inner.check_submit(sym, side, qty_lots, price_ticks, owner, type_, ts_ns)
            except Exception as e:      # noqa: BLE001 - see failed()
                self.failed(e)
                r, failed = 0, True
            if r:
                return r
        account = self.owners.get(owner)
        if account is None and not (self.conservative is not None and failed):
            return 0
        # without a working check, the orders of every owner (bots too) meet the tightened account limits
        max_lots, max_notional = self._bounds_of(sym)
        if qty_lots > max_lots:
            return _MAX_QTY
        if price_ticks and price_ticks * qty_lots > max_notional:
            return _MAX_NOTIONAL
        if (len(self.open_orders.get(account, ())) if account else 0) >= self._max_open:
            return _OPEN_ORDERS
        return 0

    def _bounds_of(self, sym: int) -> tuple[int, int]:
        """``(max lots, max ticks x lots)`` of symbol index ``sym`` under the limits in force (cached until the
        limits, their scaling or conservative mode change)."""
        limits = self.effective_limits()
        key = (limits.max_qty, limits.max_notional, limits.max_open_orders)
        if key != self._key:
            self._key, self._bounds, self._max_open = key, {}, limits.max_open_orders
        b = self._bounds.get(sym)
        if b is None:
            info = self.exchange.info(sym)
            lot, tick = _exact(info.lot_size), _exact(info.tick_size)
            # qty > max_qty  <=>  qty_lots > max_qty / lot;  price * qty > max  <=>  ticks * lots > max / (tick * lot)
            b = self._bounds[sym] = (math.floor(_exact(limits.max_qty) / lot),
                                     math.floor(_exact(limits.max_notional) / (tick * lot)))
        return b

    def effective_limits(self) -> AccountLimits:
        """The account limits in force (scaled while in conservative mode)."""
        return self.limits.scaled(self.conservative_factor) if self.conservative is not None else self.limits

    # --- conservative mode -----------------------------------------------------------------------------
    def failed(self, exc: BaseException) -> None:
        """A pre-trade check raised: tighten the limits (conservative mode) and raise an alert."""
        msg = f"{type(exc).__name__}: {exc}"
        if self.conservative is None:
            self.conservative = dict(since=time.time(), error=msg, failures=1, factor=self.conservative_factor)
            if hasattr(self.inner, "set_conservative"):
                try:
                    self.inner.set_conservative(True, factor=self.conservative_factor)
                except Exception:       # noqa: BLE001 - the failing component may fail here too
                    pass
            self.incidents.record("risk", f"risk check failed ({msg}); conservative mode: limits x"
                                  f"{self.conservative_factor:g}", "error")
        else:
            self.conservative["failures"] += 1
            self.conservative["error"] = msg
        self.stats["risk_check_failures"] += 1

    def clear(self) -> None:
        """Leave conservative mode (once the risk component is repaired)."""
        if self.conservative is None:
            return
        self.conservative = None
        if hasattr(self.inner, "set_conservative"):
            self.inner.set_conservative(False)
        self.incidents.record("risk", "conservative mode cleared", "info")

    def health(self) -> dict:
        """The ``risk`` component of ``/healthz``."""
        risk = dict(status="ok" if self.conservative is None else "degraded",
                    engine_hook=type(self.inner).__name__ if self.inner is not None else None,
                    account_limits=self.limits.as_dict(), conservative=self.conservative)
        if self.conservative is not None:
            risk["effective_limits"] = self.effective_limits().as_dict()
        return risk
