"""Exact position and PnL accounting in integers (ticks, lots and micro tick-lots for fees).

Money has two units here. Trade cash is in *tick-lots* (``price_ticks * qty_lots``). Fees are rates in
hundredths of a basis point, so a fee is ``notional * rate`` in units of 1e-6 tick-lot, exactly. The ledger
keeps every amount in that finer unit (``MICRO``), so that the identity

    cash + position * mark == realised + unrealised - fees == PnL

holds exactly in integers at every fill (no rounding anywhere). Realised PnL uses FIFO matching of the lots
bought and sold, which is exact in ticks (average cost would need fractions).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from lob.errors import ConfigError

__all__ = ["MICRO", "FeeSchedule", "Ledger", "Account", "fee_rate"]

#: fee and PnL unit: 1e-6 of a tick-lot (one hundredth of a basis point of one tick-lot is 1 unit)
MICRO = 1_000_000


def fee_rate(bps, name: str = "fee") -> int:
    """A fee in basis points as an integer rate in hundredths of a basis point (1e-6 of notional).

    Examples
    --------
    >>> fee_rate(0.25), fee_rate(-0.2), fee_rate(3)
    (25, -20, 300)
    """
    try:
        x = float(bps) * 100
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number of basis points, got {bps!r}") from None
    if not math.isfinite(x) or abs(x - round(x)) > 1e-6:
        raise ConfigError(f"{name} must be a multiple of 0.01 bp, got {bps!r}")
    return int(round(x))


@dataclass(frozen=True)
class FeeSchedule:
    """Maker and taker fees in basis points of notional; a negative fee is a rebate.

    Examples
    --------
    >>> f = FeeSchedule(maker_bps=-0.2, taker_bps=0.3)
    >>> f.fee_micro(10_000, 5, maker=True)      # 50,000 tick-lots at -0.2 bp = -1 tick-lot
    -1000000
    """
    maker_bps: float = 0.0
    taker_bps: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "_maker", fee_rate(self.maker_bps, "maker_bps"))
        object.__setattr__(self, "_taker", fee_rate(self.taker_bps, "taker_bps"))

    def fee_micro(self, price_ticks: int, qty_lots: int, maker: bool) -> int:
        """The fee of one fill in micro tick-lots (exact)."""
        return price_ticks * qty_lots * (self._maker if maker else self._taker)

    @classmethod
    def coerce(cls, fees) -> "FeeSchedule":
        """A FeeSchedule from None, a dict, or any object with ``maker_bps``/``taker_bps``."""
        if fees is None:
            return cls()
        if isinstance(fees, cls):
            return fees
        if isinstance(fees, dict):
            return cls(**fees)
        if hasattr(fees, "maker_bps") and hasattr(fees, "taker_bps"):
            return cls(fees.maker_bps, fees.taker_bps)
        raise ConfigError(f"fees must be a FeeSchedule, a dict of maker_bps/taker_bps or None, got {fees!r}")


class Account:
    """One owner's book-keeping in one symbol (all integers).

    ``position`` in lots; ``cash`` and ``fees`` in micro tick-lots (``cash`` is net of fees);
    ``realised`` in micro tick-lots (FIFO, before fees); ``lots`` the open FIFO lots as ``[price, signed qty]``.
    """

    __slots__ = ("position", "cash", "fees", "realised", "lots", "mark", "traded", "n_fills")

    def __init__(self):
        self.position = 0
        self.cash = 0
        self.fees = 0
        self.realised = 0
        self.lots: deque = deque()
        self.mark = 0
        self.traded = 0
        self.n_fills = 0

    def fill(self, sign: int, price: int, qty: int, fee_micro: int) -> None:
        """Book a fill: ``sign`` +1 bought, -1 sold."""
        self.position += sign * qty
        self.cash -= sign * price * qty * MICRO + fee_micro
        self.fees += fee_micro
        self.traded += qty
        self.n_fills += 1
        self.mark = price
        left = qty
        lots = self.lots
        # FIFO: an opposite-signed fill closes the oldest open lots first
        while left and lots and (lots[0][1] > 0) != (sign > 0):
            lp, lq = lots[0]
            take = min(left, abs(lq))
            self.realised += (price - lp) * take * MICRO * (1 if lq > 0 else -1)
            left -= take
            if take == abs(lq):
                lots.popleft()
            else:
                lots[0][1] = lq - take if lq > 0 else lq + take
        if left:
            lots.append([price, sign * left])

    def unrealised(self, mark: int | None = None) -> int:
        """Open lots marked at ``mark`` ticks (default: the last fill price), micro tick-lots."""
        m = self.mark if mark is None else mark
        return sum((m - p) * q for p, q in self.lots) * MICRO

    def pnl(self, mark: int | None = None) -> int:
        """``cash + position * mark`` in micro tick-lots (fees included)."""
        m = self.mark if mark is None else mark
        return self.cash + self.position * m * MICRO


class Ledger:
    """Accounts per (owner, symbol), fed with fills.

    Parameters
    ----------
    fees : FeeSchedule, dict or None

    Examples
    --------
    >>> led = Ledger(fees={"maker_bps": 0, "taker_bps": 1})
    >>> fee = led.fill(owner=1, symbol=0, sign=+1, price=10_000, qty=3, maker=False)
    >>> fee = led.fill(owner=1, symbol=0, sign=-1, price=10_010, qty=3, maker=True)
    >>> a = led.account(1, 0); a.position, a.realised // MICRO, a.fees // MICRO, a.pnl() // MICRO
    (0, 30, 3, 27)
    """

    def __init__(self, fees=None):
        self.fees = FeeSchedule.coerce(fees)
        self.accounts: dict[tuple[int, int], Account] = {}

    def account(self, owner: int, symbol: int) -> Account:
        a = self.accounts.get((owner, symbol))
        if a is None:
            a = self.accounts[(owner, symbol)] = Account()
        return a

    def fill(self, owner: int, symbol: int, sign: int, price: int, qty: int, maker: bool) -> int:
        """Book one fill; return its fee in micro tick-lots."""
        fee = self.fees.fee_micro(price, qty, maker)
        self.account(owner, symbol).fill(sign, price, qty, fee)
        return fee

    def apply_fills(self, fills, owners=None) -> None:
        """Book every side of a ``lob.FILL_DTYPE`` array whose owner is in ``owners`` (all when None).

        Owner 0 (anonymous flow) is never booked.
        """
        for f in fills.tolist() if hasattr(fills, "tolist") else fills:
            _, _, price, qty, _, _, mo, to, sym, aggr, _, _ = f
            if mo and (owners is None or mo in owners):
                self.fill(mo, sym, -1 if aggr == 0 else 1, price, qty, True)
            if to and (owners is None or to in owners):
                self.fill(to, sym, 1 if aggr == 0 else -1, price, qty, False)

    def position(self, owner: int, symbol: int) -> int:
        a = self.accounts.get((owner, symbol))
        return a.position if a is not None else 0
