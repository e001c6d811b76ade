"""Thin REST handlers: parse, call the hub, serialize. State comes in through ``initialize(hub=...)``."""
from __future__ import annotations

import json
import tornado.web

from lob.server.hub import ApiError, Hub
from lob.server.openapi import openapi_document

__all__ = ["ApiHandler", "default_handlers", "routes"]

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=str).encode


class ApiHandler(tornado.web.RequestHandler):
    """Base of every API handler: injected hub, auth, size and rate limits, JSON errors."""

    write_limited = False

    def initialize(self, hub: Hub, prefix: str = "") -> None:
        self.hub = hub
        self.prefix = prefix
        self.account = None

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")

    def token(self) -> str | None:
        auth = self.request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return self.request.headers.get("X-Lob-Token") or None

    def prepare(self) -> None:
        hub = self.hub
        hub.stats["http_requests"] += 1
        length = self.request.headers.get("Content-Length")
        if (length and length.isdigit() and int(length) > hub.max_body) or len(self.request.body) > hub.max_body:
            raise ApiError(413, f"request body larger than {hub.max_body} bytes", "too_large")
        self.account = hub.authenticate(self.token())
        if self.write_limited and self.request.method in ("POST", "DELETE", "PATCH"):
            key = self.account or self.request.remote_ip
            if not hub.write_limiter.allow(key):
                raise ApiError(429, "order-entry rate limit exceeded", "rate_limited")
        elif not hub.read_limiter.allow(self.request.remote_ip or "local"):
            raise ApiError(429, "request rate limit exceeded", "rate_limited")

    def need_account(self) -> str:
        if self.account is None:
            raise ApiError(401, "this request needs an API token (Authorization: Bearer <token>)", "unauthorized")
        return self.account

    def json_body(self):
        if not self.request.body:
            raise ApiError(400, "a JSON body is required", "invalid_body")
        try:
            return json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"body is not valid JSON ({e})", "invalid_body") from None

    def int_arg(self, name: str, default: int | None, lo: int, hi: int) -> int | None:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        try:
            v = int(raw)
        except ValueError:
            raise ApiError(400, f"query parameter {name!r} must be an integer, got {raw!r}", "invalid_field") from None
        if not lo <= v <= hi:
            raise ApiError(400, f"query parameter {name!r} must be in [{lo}, {hi}], got {v}", "invalid_field")
        return v

    def order_id(self, raw: str) -> int:
        if not raw.isdigit() or not 0 < int(raw) < 2 ** 63:
            raise ApiError(400, f"order id must be a positive integer, got {raw!r}", "invalid_field")
        return int(raw)

    def send(self, payload, status: int = 200) -> None:
        self.set_status(status)
        self.finish(_encode(payload))

    def write_error(self, status_code: int, **kwargs) -> None:
        """API errors are JSON, never HTML pages."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            body = {"message": exc.message, "reason": exc.error}
            if exc.body is not None:
                body["report"] = exc.body
            if status_code == 429:
                self.set_header("Retry-After", "1")
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(json.dumps(body, default=str))
            return
        if isinstance(exc, tornado.web.HTTPError):
            message = exc.log_message or self._reason
        else:
            message = "internal error" if status_code >= 500 else self._reason
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"message": message, "reason": self._reason}))


class OrdersHandler(ApiHandler):
    write_limited = True

    def post(self) -> None:
        status, report = self.hub.submit(self.need_account(), self.json_body())
        self.send(report, status)

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
    def prepare(self) -> None:
        raise ApiError(404, f"no route {self.request.path}", "not_found")


_SYM = r"(?P<symbol>[^/]+)"

default_handlers = [
    (r"/api/orders", OrdersHandler),
    (r"/api/submit", OrdersHandler),                 # the seed's name for POST /api/orders
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


def routes(hub: Hub, prefix: str = "") -> list[tuple]:
    """The route table with the hub injected (and every path under ``prefix``), WebSocket included."""
    from lob.server.websocket import StreamHandler

    table = default_handlers + [(r"/ws", StreamHandler)]
    return [(prefix + path, handler, dict(hub=hub, prefix=prefix)) for path, handler in table] + [
        (prefix + r"/api/.*", NotFoundHandler, dict(hub=hub, prefix=prefix))]
