"""``lob.server``: the exchange over HTTP (the only package of lob that imports tornado).

One Tornado IOLoop serves the REST API, the WebSocket stream, ``/metrics``, ``/healthz``, the OpenAPI
document and the Bokeh dashboard (``/dashboard``), and drives the simulated market::

    lob serve --port 8000            # or: python -m lob.server serve --port 8000
    # then open http://127.0.0.1:8000/dashboard

``lob serve`` is durable by default: it journals to a data folder (``--data DIR``, default the user's data
directory; ``--no-journal`` to opt out; ``--fsync always|batch|never``) and a restart with the same command
recovers the market before it serves (:mod:`lob.server.store`, docs/server.md).

In a notebook (the kernel's loop is already running: never call ``IOLoop.start()`` there)::

    from lob.server import LobServer
    srv = LobServer(port=0); srv.start(); srv.url

Pieces: :class:`~lob.server.hub.Hub` (state: a composition of order entry :mod:`~lob.server.orders`, fan-out
:mod:`~lob.server.fanout`, reads :mod:`~lob.server.reads`, the risk guard :mod:`~lob.server.guard`, health
:mod:`~lob.server.health` and metrics :mod:`~lob.server.metrics`), :mod:`~lob.server.handlers` (thin REST
handlers and the route table), :mod:`~lob.server.websocket`, :mod:`~lob.server.market` (what drives the
exchange), :mod:`~lob.server.extension` (the same API inside Jupyter under ``/lob/``); one JSON policy
(:mod:`~lob.server.codec`) and one token parser (:mod:`~lob.server.auth`) for all of them.

Faults: ``/healthz`` reports each component (engine, market-data publisher, agents, risk, journal); a
failing agent is isolated and restarted with backoff; a pre-trade check that raises puts the venue in
conservative mode (account limits scaled by ``Hub.conservative_factor``, 0.5, for every owner while the check
is down; an installed ``lob.risk.RiskManager`` switched to conservative too) with an ``error`` incident, until
``Hub.clear_conservative()``; a journal write failure stops order intake; stale market data is flagged to
clients; every incident is logged and shown on the dashboard.
"""
from __future__ import annotations

import gc
import logging

import tornado.web
from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.log import access_log

from lob.server.accounts import AccountLimits, Accounts, create_token
from lob.server.handlers import routes
from lob.server.errors import ApiError
from lob.server.hub import Hub
from lob.server.market import BotMarket, ExchangeMarket, ReplayMarket, default_market

__all__ = ["Hub", "Accounts", "AccountLimits", "create_token", "ApiError", "make_app", "Runner", "LobServer",
           "BotMarket", "ExchangeMarket", "ReplayMarket", "default_market", "tune_gc", "log_request"]


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access-log line (``tornado.access``: INFO below 400, WARNING below 500, else ERROR), formatted
    only when that level is enabled: most requests are INFO lines that nobody sees."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    if access_log.isEnabledFor(level):
        r = handler.request
        access_log.log(level, "%d %s %s (%s) %.2fms", status, r.method, r.uri, r.remote_ip,
                       1000.0 * r.request_time())


def make_app(hub: Hub, prefix: str = "", **settings) -> tornado.web.Application:
    """A Tornado application with the API routes only (no dashboard): tests, embedding, benchmarks."""
    hub.use_loop(IOLoop.current())
    settings.setdefault("log_function", log_request)
    return tornado.web.Application(routes(hub, prefix), **settings)


def tune_gc() -> None:
    """Keep garbage-collection pauses out of request latency, in a process that is a server (``lob serve``).

    Everything alive once the server is built (modules, the market, the exchange) leaves the collector's
    generations (``gc.freeze``), so a full collection, of tens of milliseconds over all of them, scans only
    what came later (the hub keeps its message history as text for the same reason). Not for a notebook
    kernel, whose objects are not the server's to freeze.
    """
    gc.collect()
    gc.freeze()


class Runner:
    """The periodic work of a server on the current IOLoop: market steps, health checks, throughput samples.

    Parameters
    ----------
    hub : Hub
    step_ms : float
        Market step period (100 ms: each agent acts ten times a second).
    check_ms : float
        Health / staleness check period; the engine integrity check runs every ``integrity_every`` checks.
    """

    def __init__(self, hub: Hub, step_ms: float = 100, check_ms: float = 1000, integrity_every: int = 10):
        self.hub = hub
        self._n = 0
        self.integrity_every = integrity_every
        self._callbacks = [PeriodicCallback(self._step, step_ms),
                           PeriodicCallback(self._check, check_ms),
                           PeriodicCallback(hub.perf.tick, 250),
                           PeriodicCallback(self._sync, 50)]

    def _sync(self) -> None:
        # client order ids of a durable server under fsync="batch": on disk within 50 ms (the journal's own
        # thread fsyncs its records every 5 ms)
        log = self.hub.client_log
        if log is not None:
            log.sync()
            if log.lines > max(10_000, 4 * len(self.hub.client_ids)):
                # ended orders' ids are dead lines: keep the file proportional to the live ones
                log.rewrite(self.hub.client_id_rows())

    def _step(self) -> None:
        # the market's tick in slices (one agent per callback) when it offers them: requests are served between
        self.hub.step_market(schedule=IOLoop.current().add_callback)

    def _check(self) -> None:
        self._n += 1
        self.hub.check(integrity=self._n % self.integrity_every == 1)

    def start(self) -> None:
        self.hub.use_loop(IOLoop.current())
        for cb in self._callbacks:
            cb.start()

    def stop(self) -> None:
        for cb in self._callbacks:
            cb.stop()


class LobServer:
    """The whole server: API + WebSocket + Bokeh dashboard on one IOLoop, and the market runner.

    Parameters
    ----------
    hub : Hub, optional
        Default: a hub over :func:`~lob.server.market.default_market` (``seed``).
    host : str
        Listen address (default loopback only).
    port : int
        0 picks a free port (see :attr:`port`).
    seed : int
    step_ms : float
        Market step period.
    dashboard : bool
        Mount the Bokeh dashboard at ``/dashboard``.
    **hub_kwargs
        Passed to :class:`Hub` when it is created here (tokens via ``accounts=Accounts({...})``).
    """

    def __init__(self, hub: Hub | None = None, host: str = "127.0.0.1", port: int = 8000, seed: int = 0,
                 step_ms: float = 100, dashboard: bool = True, **hub_kwargs):
        self.hub = hub if hub is not None else Hub(default_market(seed), **hub_kwargs)
        self.host = host
        self._port = port
        self.dashboard = dashboard
        self.runner = Runner(self.hub, step_ms=step_ms)
        self.server = None

    def start(self) -> "LobServer":
        """Bind and start serving on the current IOLoop (do not call ``IOLoop.start()`` in a notebook)."""
        from bokeh.server.server import Server

        apps = {}
        if self.dashboard:
            from lob.viz.dashboard import dashboard_app

            apps["/dashboard"] = dashboard_app(self.hub)
        extra = routes(self.hub) + [(r"/", tornado.web.RedirectHandler, {"url": "/dashboard"})]
        self.server = Server(apps, io_loop=IOLoop.current(), address=self.host, port=self._port, num_procs=1,
                             extra_patterns=extra, allow_websocket_origin=[self.host, "localhost", "127.0.0.1"],
                             http_server_kwargs={"max_body_size": 1 << 20}, log_function=log_request)
        self.server.start()
        self.runner.start()
        return self

    @property
    def port(self) -> int:
        return self.server.port if self.server is not None else self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.runner.stop()
        if self.server is not None:
            self.server.stop()
            self.server = None
