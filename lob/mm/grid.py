"""A grid (ladder) market maker: a fixed ladder of quotes around a center that follows the mid."""
from __future__ import annotations

from lob.errors import ConfigError
from lob.mm.base import MarketMaker

__all__ = ["GridMaker"]


class GridMaker(MarketMaker):
    """``levels`` bids at ``center - spacing * i`` and asks at ``center + spacing * i`` (i = 1..levels).

    The center is the mid (rounded to a tick) at the first book and moves to the current mid once the mid
    has drifted more than ``recenter_ticks`` from it. Levels that would cross the book are left out, and
    a side stops adding once the open orders on it could take the position past ``max_position``.

    Examples
    --------
    >>> import lob
    >>> from lob.mm import Context, GridMaker
    >>> ex = lob.Exchange(symbols=["X"]); _ = ex.submit("X", "buy", 5, price=9.99); _ = ex.submit("X", "sell", 5, price=10.01)
    >>> g = GridMaker(levels=2, spacing_ticks=3, size=1)
    >>> sorted((i.side, i.price) for i in g.on_book(Context.of(ex, "X", ts_ns=0)))
    [('buy', 9.94), ('buy', 9.97), ('sell', 10.03), ('sell', 10.06)]
    """

    def __init__(self, levels: int = 5, spacing_ticks: int = 2, recenter_ticks: int | None = None, **kw):
        if not (isinstance(levels, int) and levels >= 1):
            raise ConfigError(f"levels must be an int >= 1, got {levels!r}")
        if not (isinstance(spacing_ticks, int) and spacing_ticks >= 1):
            raise ConfigError(f"spacing_ticks must be an int >= 1, got {spacing_ticks!r}")
        self.levels, self.spacing_ticks = levels, spacing_ticks
        self.recenter_ticks = recenter_ticks if recenter_ticks is not None else spacing_ticks * levels // 2
        super().__init__(**kw)

    def _reset(self):
        super()._reset()
        self.center = None
        self.recenters = 0

    def compiled(self):
        """The compiled form (:class:`lob.mm._compiled.CGrid`), or None when a method was replaced."""
        if not self._plain(GridMaker):
            return None
        from lob.mm._compiled import CGrid

        return CGrid(self.levels, self.spacing_ticks, self.recenter_ticks, **self._base_kw())

    def quotes(self, ctx, bid, ask):
        mid = (bid + ask) / 2
        if self.center is None or abs(mid - self.center) > self.recenter_ticks:
            self.center = int(round(mid))
            self.recenters += self.center is not None
        n = self.size_lots(ctx)
        out = []
        long_room = self.max_position - ctx.position
        short_room = self.max_position + ctx.position
        lot = ctx.book.lot_size
        for i in range(1, self.levels + 1):
            b = self.center - self.spacing_ticks * i
            a = self.center + self.spacing_ticks * i
            if b < ask and b > 0 and long_room >= i * n * lot - 1e-9:
                out.append((0, b, n))
            if a > bid and short_room >= i * n * lot - 1e-9:
                out.append((1, a, n))
        return out
