"""Two minimal strategies for backtests, sweeps and tutorials (the market makers live in ``lob.mm``)."""
from __future__ import annotations

from lob.replay.backtest import Intent

__all__ = ["TouchQuoter", "PeriodicTaker"]


class TouchQuoter:
    """Join the best bid and the best ask with ``size`` every ``every`` decision steps (cancel/replace),
    stopping on the side where the position reaches ``max_position``."""

    def __init__(self, size: float = 100, every: int = 50, max_position: float = float("inf")):
        self.size, self.every, self.max_position = size, every, max_position
        self._n = 0

    def on_book(self, ctx):
        self._n += 1
        if self._n % self.every:
            return []
        bid, ask = ctx.book.best_bid(), ctx.book.best_ask()
        out = [Intent("cancel", order_id=oid) for oid in ctx.open_orders]
        if bid and ask:
            if ctx.position < self.max_position:
                out.append(Intent("submit", "buy", self.size, bid[0], tag="bid"))
            if ctx.position > -self.max_position:
                out.append(Intent("submit", "sell", self.size, ask[0], tag="ask"))
        return out


class PeriodicTaker:
    """Send a market order of ``size`` on ``side`` every ``every`` decision steps, ``n`` times."""

    def __init__(self, side: str = "buy", size: float = 200, every: int = 50, n: int = 50):
        self.side, self.size, self.every, self.n = side, size, every, n
        self._steps = 0
        self._sent = 0

    def on_book(self, ctx):
        self._steps += 1
        if self._steps % self.every or self._sent >= self.n:
            return []
        self._sent += 1
        return [Intent("submit", self.side, self.size, None, tag="take")]
