"""The hub: the one object between an exchange and the server's clients (REST, WebSocket, polling, dashboard).

It is a thin composition of the server's roles, each in its own module:

* order entry (:mod:`lob.server.orders`): request validation, submit / cancel / modify, client order ids,
  account orders and positions followed from the exchange's outputs;
* fan-out (:mod:`lob.server.fanout`): subscribers' bounded queues, the per-symbol history behind polling, the
  paced flush (matching never waits on a client);
* market-data reads (:mod:`lob.server.reads`): symbols, book, trades, bars;
* the risk guard (:mod:`lob.server.guard`): the integer pre-trade check in the exchange's risk slot;
* health (:mod:`lob.server.health`): market driver, periodic checks, incidents, ``/healthz``;
* metrics (:mod:`lob.server.metrics`): ``/metrics`` through prometheus-client.

The hub never touches the event loop itself: the server injects it (:meth:`Hub.use_loop`).
"""
from __future__ import annotations

import time

from lob.marketdata import L2Feed
from lob.server.accounts import AccountLimits, Accounts, RateLimiter
from lob.server.errors import ApiError
from lob.server.fanout import Batch, FanOut, Subscriber
from lob.server.guard import RiskGuard
from lob.server.health import Health, IncidentLog
from lob.server.metrics import exposition, server_registry
from lob.server.orders import OrderEntry
from lob.server.reads import MarketReads

__all__ = ["Hub", "ApiError", "Subscriber", "Batch", "IncidentLog"]


class Hub(OrderEntry, FanOut, MarketReads, Health):
    """Shared state of one server: market, feed, subscribers, accounts, health and incidents.

    Parameters
    ----------
    market : a market of :mod:`lob.server.market` (``exchange``, ``step()``, ``agents()``, ``incidents()``)
    accounts : Accounts, optional
        Token -> account; default reads the token file (``$LOB_TOKENS`` or ``~/.config/lob/tokens.json``).
    queue_size : int
        Bounded queue per WebSocket client (messages).
    history : int
        Messages per symbol kept for HTTP polling.
    write_rate, write_burst : float, int
        Order-entry requests per second per account (429 beyond); 0 disables.
    read_rate, read_burst : float, int
        Market-data requests per second per client address; 0 disables.
    max_body : int
        Largest request body in bytes (413 beyond).
    stale_after_s : float
        Market data older than this is flagged stale.
    limits : AccountLimits, optional
        Per-account pre-trade limits.
    depth : int
        Levels per side published in the level-2 feed.
    socket_sndbuf : int
        Kernel send buffer of each WebSocket (bytes; 0 leaves the system default).
    flush_interval_s : float
        Least time between two fan-outs to the subscribers (0: one per batch of orders).
    """

    def __init__(self, market, accounts: Accounts | None = None, *, queue_size: int = 1000, history: int = 5000,
                 write_rate: float = 200.0, write_burst: int = 400, read_rate: float = 500.0, read_burst: int = 1000,
                 max_body: int = 64 * 1024, stale_after_s: float = 5.0, limits: AccountLimits | None = None,
                 depth: int = 50, socket_sndbuf: int = 256 * 1024, flush_interval_s: float = 0.01,
                 clock=time.monotonic):
        self.market = market
        self.exchange = market.exchange
        self.accounts = accounts if accounts is not None else Accounts()
        self.queue_size = queue_size
        self.socket_sndbuf = socket_sndbuf
        self.max_body = max_body
        self.clock = clock
        self.write_limiter = RateLimiter(write_rate, write_burst, clock)
        self.read_limiter = RateLimiter(read_rate, read_burst, clock)
        self.perf = self.exchange.perf
        symbols = list(self.exchange.symbols)
        self._init_health(symbols, stale_after_s)
        self._init_fanout(symbols, history, flush_interval_s)
        self._init_orders()
        self.feed = L2Feed(self.exchange, depth=depth)
        self.feed.subscribe_all(self._on_feed)
        self.exchange.add_listener(self._on_outputs)
        self.guard = RiskGuard(self.exchange, limits or AccountLimits(), self._accounts_by_owner, self._open,
                               self.incidents, self.stats)
        self.metrics = server_registry(self)

    # --- the risk guard's settings, as the hub's --------------------------------------------------------
    @property
    def limits(self) -> AccountLimits:
        """Per-account pre-trade limits (:class:`~lob.server.guard.RiskGuard`)."""
        return self.guard.limits

    @limits.setter
    def limits(self, value: AccountLimits) -> None:
        self.guard.limits = value

    @property
    def conservative(self) -> dict | None:
        """Set while the venue runs in conservative mode (a pre-trade check raised)."""
        return self.guard.conservative

    @property
    def conservative_factor(self) -> float:
        return self.guard.conservative_factor

    @conservative_factor.setter
    def conservative_factor(self, value: float) -> None:
        self.guard.conservative_factor = value

    def risk_check_failed(self, exc: BaseException) -> None:
        """A pre-trade check raised: conservative mode (:meth:`lob.server.guard.RiskGuard.failed`)."""
        self.guard.failed(exc)

    def clear_conservative(self) -> None:
        """Leave conservative mode (once the risk component is repaired)."""
        self.guard.clear()

    def prometheus(self) -> str:
        """``/metrics``: the Prometheus text of :attr:`metrics` (the exchange's figures and the server's)."""
        return exposition(self.metrics)
