"""Thin REST handlers: parse, call the hub, serialize. State comes in through ``initialize(hub=...)``."""
from __future__ import annotations

import functools
import re

import tornado.web

from lob.server.auth import request_token
from lob.server.codec import dumps, parse_json
from lob.server.errors import ApiError
from lob.server.hub import Hub
from lob.server.openapi import openapi_document
from lob.server.websocket import StreamHandler

__all__ = ["ApiHandler", "default_handlers", "routes"]

# ASCII digits only: str.isdigit() and int() also take superscripts and Arabic-Indic digits
_ORDER_ID = re.compile(r"[1-9][0-9]{0,18}")
_INT = re.compile(r"-?[0-9]{1,19}")


@tornado.web.stream_request_body
class ApiHandler(tornado.web.RequestHandler):
    """Base of every API handler: injected hub, auth, size and rate limits, JSON errors.

    Bodies are streamed (``stream_request_body``) and never held beyond ``Hub.max_body``: a larger body (by
    ``Content-Length`` or counted as chunks arrive) is read and dropped, then answered 413 JSON, so that a
    client that sends it whole reads the answer; one declared larger than ``DRAIN_LIMIT`` is answered 413 at
    once, from its headers, and the connection closed.
    """

    write_limited = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in ("get", "post", "patch", "delete"):
            fn = cls.__dict__.get(name)
            if fn is not None and fn not in _SIZE_CHECKED:
                setattr(cls, name, _sized(fn))

    def initialize(self, hub: Hub, prefix: str = "", jupyter: bool = False) -> None:
        self.hub = hub
        self.prefix = prefix
        self.jupyter = jupyter
        self.account = None
        self._chunks: list[bytes] = []
        self._size = 0

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")

    def lob_token(self) -> str | None:
        return request_token(self.request)

    def check_xsrf_cookie(self) -> None:
        # a request authenticated by a lob API token is not a browser form: exempt from XSRF (as Jupyter's
        # own token-authenticated API is); cookie sessions (a browser under Jupyter) keep the check
        if self.hub.accounts.account_for(self.lob_token()) is None:
            super().check_xsrf_cookie()

    def prepare(self):
        hub = self.hub
        hub.stats["http_requests"] += 1
        length = self.request.headers.get("Content-Length")
        if length is not None:
            if not _INT.fullmatch(length.strip()) or int(length) < 0:
                raise ApiError(400, f"header 'Content-Length' must be a byte count, got {length[:40]!r}", "invalid_body")
            if int(length) > DRAIN_LIMIT:
                self.set_header("Connection", "close")
                raise ApiError(413, f"request body larger than {hub.max_body} bytes", "too_large")
            # the HTTP server's own limit (the Bokeh server's) must not cut the connection first: the app's
            # limit is answered, as JSON, once the body has been read and dropped
            self.request.connection.set_max_body_size(max(int(length), hub.max_body))
        elif self.request.headers.get("Transfer-Encoding"):
            self.request.connection.set_max_body_size(DRAIN_LIMIT)      # chunked: counted as it arrives
        # under Jupyter, everything needs a lob API token or Jupyter's own login (which may be a Jupyter token)
        self.account = hub.authenticate(self.lob_token(), strict=not self.jupyter)
        if self.write_limited and self.request.method in ("POST", "DELETE", "PATCH"):
            key = self.account or self.request.remote_ip
            if not hub.write_limiter.allow(key):
                raise ApiError(429, "order-entry rate limit exceeded", "rate_limited")
        elif not hub.read_limiter.allow(self.request.remote_ip or "local"):
            raise ApiError(429, "request rate limit exceeded", "rate_limited")
        if self.account is None and self.jupyter:
            return self.jupyter_login()         # a coroutine: tornado awaits it before the method
        return None

    async def jupyter_login(self) -> None:
        """Under the Jupyter extension (:mod:`lob.server.extension` mixes Jupyter's handler in): Jupyter's
        authentication, XSRF included; 403 for a caller it does not know."""
        raise ApiError(403, "this request needs Jupyter's login or a lob API token", "unauthorized")

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= self.hub.max_body:
            self._chunks.append(chunk)

    @property
    def body(self) -> bytes:
        self.check_size()
        return b"".join(self._chunks)

    def check_size(self) -> None:
        if self._size > self.hub.max_body:
            raise ApiError(413, f"request body larger than {self.hub.max_body} bytes", "too_large")

    def need_account(self) -> str:
        if self.account is None:
            raise ApiError(401, "this request needs an API token (Authorization: Bearer <token>)", "unauthorized")
        return self.account

    def json_body(self):
        body = self.body
        if not body:
            raise ApiError(400, "a JSON body is required", "invalid_body")
        return parse_json(body)

    def int_arg(self, name: str, default: int | None, lo: int, hi: int) -> int | None:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        if not _INT.fullmatch(raw):
            raise ApiError(400, f"query parameter {name!r} must be an integer, got {raw[:40]!r}", "invalid_field")
        v = int(raw)
        if not lo <= v <= hi:
            raise ApiError(400, f"query parameter {name!r} must be in [{lo}, {hi}], got {v}", "invalid_field")
        return v

    def order_id(self, raw: str) -> int:
        if not _ORDER_ID.fullmatch(raw) or int(raw) >= 2 ** 63:
            raise ApiError(400, f"field 'order_id' (path) must be a positive integer below 2**63 in ASCII digits, "
                           f"got {raw[:40]!r}{'...' if len(raw) > 40 else ''}", "invalid_field")
        return int(raw)

    def send(self, payload, status: int = 200) -> None:
        self.set_status(status)
        self.finish(dumps(payload))

    def write_error(self, status_code: int, **kwargs) -> None:
        """API errors are JSON, never HTML pages; a 405 names the allowed methods (``Allow``)."""
        if status_code == 405:
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        if isinstance(exc, ApiError):
            body = {"message": exc.message, "reason": exc.error}
            if exc.body is not None:
                body["report"] = exc.body
            if status_code == 429:
                self.set_header("Retry-After", "1")
            self.finish(dumps(body))
            return
        if isinstance(exc, tornado.web.HTTPError):
            message = exc.log_message or self._reason
            if status_code == 405:
                message = f"method {self.request.method} not allowed; allowed: {', '.join(self.allowed_methods())}"
        else:
            message = "internal error" if status_code >= 500 else self._reason
        self.finish(dumps({"message": message, "reason": self._reason}))

    @classmethod
    def allowed_methods(cls) -> list[str]:
        base = tornado.web.RequestHandler
        return [m for m in ("GET", "POST", "PATCH", "DELETE") if getattr(cls, m.lower()) is not getattr(base, m.lower())]


DRAIN_LIMIT = 16 << 20      # bytes of a too-large body read (and dropped) so that the client gets its 413


_SIZE_CHECKED: set = set()     # handler methods already wrapped by _sized (a subclass inherits them wrapped)


def _sized(fn):
    """A handler method that first answers 413 for a body over the limit (read and dropped by data_received)."""

    @functools.wraps(fn)
    def method(self, *args, **kwargs):
        self.check_size()
        return fn(self, *args, **kwargs)

    _SIZE_CHECKED.add(method)
    return method


class SubmitHandler(ApiHandler):
    """``POST /api/submit``: the seed's name for ``POST /api/orders`` (POST only)."""

    write_limited = True

    def post(self) -> None:
        status, report = self.hub.submit(self.need_account(), self.json_body())
        self.send(report, status)


class OrdersHandler(SubmitHandler):
    def get(self) -> None:
        self.send({"account": self.need_account(), "orders": self.hub.open_orders(self.account)})


class OrderHandler(ApiHandler):
    write_limited = True

    def delete(self, order_id: str) -> None:
        account = self.need_account()
        status, report = self.hub.cancel(account, self.order_id(order_id), self.get_query_argument("symbol", None))
        self.send(report, status)

    def patch(self, order_id: str) -> None:
        account = self.need_account()
        status, report = self.hub.modify(account, self.order_id(order_id), self.json_body(),
                                         self.get_query_argument("symbol", None))
        self.send(report, status)


class PositionsHandler(ApiHandler):
    def get(self) -> None:
        self.send({"account": self.need_account(), "positions": self.hub.account_positions(self.account)})


class SymbolsHandler(ApiHandler):
    def get(self) -> None:
        self.send({"symbols": self.hub.symbols()})


class BookHandler(ApiHandler):
    def get(self, symbol: str) -> None:
        self.send(self.hub.book(symbol, self.int_arg("depth", 10, 1, 100)))


class TradesHandler(ApiHandler):
    def get(self, symbol: str) -> None:
        self.send(self.hub.trades(symbol, self.int_arg("limit", 50, 1, 1000)))


class BarsHandler(ApiHandler):
    def get(self, symbol: str) -> None:
        self.send(self.hub.bars(symbol, self.get_query_argument("freq", "1min")))


class UpdatesHandler(ApiHandler):
    def get(self, symbol: str) -> None:
        since = self.int_arg("since", None, 0, 2 ** 62)
        self.send(self.hub.updates(symbol, since, self.int_arg("limit", 1000, 1, 10000)))


class PerformanceHandler(ApiHandler):
    def get(self) -> None:
        self.send(self.hub.performance())


class IncidentsHandler(ApiHandler):
    def get(self) -> None:
        self.send({"total": self.hub.incidents.total, "incidents": self.hub.incidents.rows(
            self.int_arg("limit", 100, 1, 2000))})


class HealthHandler(ApiHandler):
    def get(self) -> None:
        h = self.hub.health()
        self.send(h, 503 if h["status"] == "down" else 200)


class MetricsHandler(ApiHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(self.hub.prometheus())


class OpenAPIHandler(ApiHandler):
    def get(self) -> None:
        self.send(openapi_document(self.prefix))


class NotFoundHandler(ApiHandler):
    async def prepare(self) -> None:
        login = super().prepare()       # authentication first (under Jupyter a stranger gets 403, not a map)
        if login is not None:
            await login
        raise ApiError(404, f"no route {self.request.path}", "not_found")


_SYM = r"(?P<symbol>[^/]+)"

default_handlers = [
    (r"/api/orders", OrdersHandler),
    (r"/api/submit", SubmitHandler),                 # the seed's name for POST /api/orders
    (r"/api/orders/(?P<order_id>[^/]+)", OrderHandler),
    (r"/api/positions", PositionsHandler),
    (r"/api/symbols", SymbolsHandler),
    (rf"/api/book/{_SYM}", BookHandler),
    (rf"/api/trades/{_SYM}", TradesHandler),
    (rf"/api/bars/{_SYM}", BarsHandler),
    (rf"/api/updates/{_SYM}", UpdatesHandler),
    (r"/api/performance/system", PerformanceHandler),
    (r"/api/incidents", IncidentsHandler),
    (r"/api/openapi.json", OpenAPIHandler),
    (r"/healthz", HealthHandler),
    (r"/metrics", MetricsHandler),
]


def routes(hub: Hub, prefix: str = "", wrap=None, jupyter: bool = False) -> list[tuple]:
    """The route table with the hub injected (and every path under ``prefix``), WebSocket included.

    ``wrap(handler_class)`` replaces each class (the Jupyter extension mixes Jupyter's authentication in);
    ``jupyter`` makes every request need a lob token or Jupyter's login.
    """
    table = default_handlers + [(r"/ws", StreamHandler), (r"/api/.*", NotFoundHandler)]
    wrap = wrap or (lambda cls: cls)
    kw = dict(hub=hub, prefix=prefix, jupyter=jupyter)
    return [(prefix + path, wrap(handler), kw) for path, handler in table]
