"""The strategy protocol shared by the simulator, the backtest and the server, and a market-maker base.

A strategy is any object with some of ``on_start(ctx)``, ``on_book(ctx)``, ``on_trade(ctx, trade)`` and
``on_fill(ctx, fill)``; each returns an iterable of :class:`OrderIntent` (or nothing). It never calls the
venue itself, so it runs unchanged wherever the host gets its events from.

What the host passes (the context ``ctx``):

``ctx.book``
    a :class:`lob.Book` view of the strategy's symbol (``best_ticks()``, ``tick_size``, ``lot_size``, ...)
``ctx.ts_ns``
    the event time, int ns
``ctx.position``
    the strategy's position in units (lots x lot size)
``ctx.open_orders``
    ``{order_id: {"side": 0|1, "price": ticks, "qty": open lots, ...}}``
``ctx.symbol`` (optional)
    the symbol name, for hosts with several

``trade`` is a dict with ``price``, ``qty``, ``aggressor`` ("buy"/"sell") and ``ts_ns``; ``fill`` a dict
with ``order_id``, ``side`` ("buy"/"sell"), ``price``, ``qty``, ``maker`` and ``ts_ns`` (prices and
quantities in units at this edge; strategies work in ticks and lots inside).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Protocol, runtime_checkable

from lob.errors import ConfigError
from lob.units import to_units

__all__ = ["OrderIntent", "Strategy", "Context", "MarketMaker", "submit", "cancel", "modify"]


@dataclass
class OrderIntent:
    """What a strategy asks the host to do.

    Attributes
    ----------
    action : {"submit", "cancel", "modify"}
    side : {"buy", "sell"}, optional
    qty : float, optional
        Units (lots x lot size); for ``modify`` the new total quantity.
    price : float, optional
        Price; ``None`` on a submit is a market order, on a modify keeps the price.
    order_id : int, optional
        The target of a cancel/modify; on a submit, an id of the strategy's choosing (or None).
    tif : str
    post_only : bool
    tag : str
        Free text carried to the host's order records (e.g. "bid", "ask", "grid-3").
    symbol : str, optional
        For hosts with several symbols; None means the strategy's own symbol.

    Examples
    --------
    >>> submit("buy", 100, 150.25, tag="bid")
    OrderIntent(action='submit', side='buy', qty=100, price=150.25, order_id=None, tif='gtc', post_only=False, tag='bid', symbol=None)
    """
    action: str
    side: str | None = None
    qty: float | None = None
    price: float | None = None
    order_id: int | None = None
    tif: str = "gtc"
    post_only: bool = False
    tag: str = ""
    symbol: str | None = None

    def __post_init__(self):
        if self.action not in ("submit", "cancel", "modify"):
            raise ConfigError(f"action must be 'submit', 'cancel' or 'modify', got {self.action!r}")
        if self.action == "submit" and self.side not in ("buy", "sell"):
            raise ConfigError(f"side must be 'buy' or 'sell' on a submit, got {self.side!r}")
        if self.action != "submit" and self.order_id is None:
            raise ConfigError(f"order_id is required on a {self.action}, got None")


def submit(side: str, qty: float, price: float | None = None, **kw) -> OrderIntent:
    """A submit intent (``price=None``: market order)."""
    return OrderIntent("submit", side, qty, price, **kw)


def cancel(order_id: int, **kw) -> OrderIntent:
    """A cancel intent."""
    return OrderIntent("cancel", order_id=order_id, **kw)


def modify(order_id: int, qty: float | None = None, price: float | None = None, **kw) -> OrderIntent:
    """A modify intent (new total quantity and/or new price)."""
    return OrderIntent("modify", qty=qty, price=price, order_id=order_id, **kw)


@dataclass
class Context:
    """A plain strategy context (see the module docstring); hosts may pass any object with these fields."""
    book: object
    ts_ns: int = 0
    position: float = 0.0
    open_orders: dict = field(default_factory=dict)
    symbol: str | None = None

    @classmethod
    def of(cls, exchange, symbol: str, ts_ns: int = 0, position: float = 0.0, open_orders: dict | None = None):
        """A context over a symbol of an exchange."""
        return cls(exchange.book(symbol), ts_ns, position, dict(open_orders or {}), symbol)


@runtime_checkable
class Strategy(Protocol):
    """The protocol: every callback is optional for hosts (they look each up with ``getattr``)."""

    def on_start(self, ctx) -> Iterable[OrderIntent] | None: ...

    def on_book(self, ctx) -> Iterable[OrderIntent] | None: ...

    def on_trade(self, ctx, trade: dict) -> Iterable[OrderIntent] | None: ...

    def on_fill(self, ctx, fill: dict) -> Iterable[OrderIntent] | None: ...


class MarketMaker:
    """Base of the market makers: turns the desired quotes of :meth:`quotes` into cancel/replace intents.

    Subclasses implement ``quotes(ctx, bid, ask) -> list[(side, price_ticks, qty_lots)]`` (``bid``/``ask``
    the best prices in ticks, both present). The base keeps the strategy's own position (lots), cash
    (tick-lots) and a kill state: when the loss, marked at the mid, passes ``max_loss`` (price units x
    quantity units), it cancels everything and stops quoting (``halted``).

    Parameters
    ----------
    size : float
        Quote size in units.
    max_position : float
        Largest absolute inventory in units: no new quote on the side that would pass it.
    max_loss : float, optional
        Loss (price x quantity units, fees excluded) at which the strategy stops quoting.
    requote_ticks : int
        An open quote within this many ticks of the desired price is left alone (saves queue priority
        and messages); 0 replaces on any change.
    """

    def __init__(self, size: float = 100, max_position: float = 1000, max_loss: float | None = None,
                 requote_ticks: int = 0):
        if not size > 0:
            raise ConfigError(f"size must be > 0, got {size!r}")
        if not max_position > 0:
            raise ConfigError(f"max_position must be > 0, got {max_position!r}")
        if max_loss is not None and not max_loss > 0:
            raise ConfigError(f"max_loss must be > 0 or None, got {max_loss!r}")
        if not (isinstance(requote_ticks, int) and requote_ticks >= 0):
            raise ConfigError(f"requote_ticks must be an int >= 0, got {requote_ticks!r}")
        self.size = size
        self.max_position = max_position
        self.max_loss = max_loss
        self.requote_ticks = requote_ticks
        self._reset()

    def _reset(self):
        self.halted = False
        self.halt_reason = None
        self.cash_ticks = 0          # tick-lots
        self.position_lots = 0
        self.mid_ticks = None
        self.n_fills = 0
        self._tick = self._lot = None

    # --- the compiled form (lob.mm._compiled, run by lob.replay.Backtest) -------------------------
    _PROTOCOL = ("on_start", "on_book", "on_trade", "on_fill", "observe", "quotes", "reconcile", "size_lots",
                 "inventory", "can_buy", "can_sell", "bid_ask_ticks", "half_spread", "tau", "_reset")

    def compiled(self):
        """The compiled form of this maker for the backtest step loop, or None.

        None when there is none, or when a subclass or the instance replaced one of the protocol's methods
        (the compiled form would not run the replacement): the backtest then runs the Python form.
        """
        return None

    def _plain(self, cls) -> bool:
        # True when this object behaves exactly as cls (no method of the protocol replaced)
        if any(n in self.__dict__ for n in self._PROTOCOL):
            return False
        t = type(self)
        return all(getattr(t, n, None) is getattr(cls, n, None) for n in self._PROTOCOL)

    def _base_kw(self) -> dict:
        return dict(size=float(self.size), max_position=float(self.max_position), max_loss=self.max_loss,
                    requote_ticks=int(self.requote_ticks))

    # --- protocol -------------------------------------------------------------------------------
    def on_start(self, ctx):
        self._reset()
        return []

    def on_book(self, ctx):
        book = ctx.book
        self._tick, self._lot = book.tick_size, book.lot_size
        bid, ask = book.best_ticks()
        if bid and ask:
            self.mid_ticks = (bid + ask) / 2
        self.observe(ctx, bid, ask)
        if self.halted:
            return [cancel(oid) for oid in ctx.open_orders]
        if self.max_loss is not None and self.mid_ticks is not None:
            pnl = self.mark_to_market()
            if pnl < -self.max_loss:
                self.halted, self.halt_reason = True, f"max_loss: pnl {pnl:.2f} < -{self.max_loss}"
                return [cancel(oid) for oid in ctx.open_orders]
        if not (bid and ask):
            return []
        desired = [q for q in self.quotes(ctx, bid, ask) if q[2] > 0]
        return self.reconcile(ctx, desired)

    def on_trade(self, ctx, trade):
        return None

    def on_fill(self, ctx, fill):
        tick, lot = ctx.book.tick_size, ctx.book.lot_size
        sign = 1 if fill["side"] == "buy" else -1
        p = to_units(fill["price"], tick, "fill price")
        q = to_units(fill["qty"], lot, "fill qty", "lot_size")
        self.position_lots += sign * q
        self.cash_ticks -= sign * p * q
        self.n_fills += 1
        return None

    def mark_to_market(self) -> float | None:
        """PnL of every fill so far, the position marked at the last mid (price units); None before a
        two-sided book was seen."""
        if self.mid_ticks is None or self._tick is None:
            return None
        return (self.cash_ticks + self.position_lots * self.mid_ticks) * self._tick * self._lot

    # --- for subclasses -------------------------------------------------------------------------
    def observe(self, ctx, bid: int, ask: int) -> None:
        """Update estimators with the book (called on every ``on_book``, before quoting)."""

    def quotes(self, ctx, bid: int, ask: int) -> list[tuple[int, int, int]]:
        raise NotImplementedError

    def size_lots(self, ctx) -> int:
        return max(1, int(round(self.size / ctx.book.lot_size)))

    def inventory(self, ctx) -> float:
        """Position in quote sizes (the ``q`` of the formulas)."""
        return ctx.position / self.size

    def can_buy(self, ctx, qty_lots: int) -> bool:
        return ctx.position + qty_lots * ctx.book.lot_size <= self.max_position + 1e-9

    def can_sell(self, ctx, qty_lots: int) -> bool:
        return ctx.position - qty_lots * ctx.book.lot_size >= -self.max_position - 1e-9

    def quote_pair(self, ctx, bid_ticks: int, ask_ticks: int) -> list[tuple[int, int, int]]:
        """``[(side, price_ticks, lots)]``: a bid and an ask of :meth:`size_lots`, each only while the
        position limit allows it."""
        n = self.size_lots(ctx)
        out = []
        if self.can_buy(ctx, n):
            out.append((0, bid_ticks, n))
        if self.can_sell(ctx, n):
            out.append((1, ask_ticks, n))
        return out

    @staticmethod
    def bid_ask_ticks(bid_px: float, ask_px: float, best_bid: int, best_ask: int) -> tuple[int, int]:
        """Round a bid down and an ask up to ticks, never crossing the opposite best (a quote rests)."""
        b = min(math.floor(bid_px + 1e-9), best_ask - 1)
        a = max(math.ceil(ask_px - 1e-9), best_bid + 1)
        if b >= a:
            b, a = a - 1, b + 1
        return max(1, b), a

    def reconcile(self, ctx, desired) -> list[OrderIntent]:
        """Cancel/replace: intents that turn the open orders into ``desired`` [(side, price_ticks, lots)]."""
        tick, lot = ctx.book.tick_size, ctx.book.lot_size
        open_ = sorted(ctx.open_orders.items())
        used = set()
        out = []
        for side, price, qty in desired:
            best = None
            for oid, o in open_:
                if oid in used or o["side"] != side:
                    continue
                d = abs(o["price"] - price)
                if d <= self.requote_ticks and (best is None or d < best[0]):
                    best = (d, oid)
            if best is not None:
                used.add(best[1])
                continue
            out.append(submit("buy" if side == 0 else "sell", qty * lot, round(price * tick, 10),
                              tag="bid" if side == 0 else "ask"))
        cancels = [cancel(oid) for oid, _ in open_ if oid not in used]
        return cancels + out
