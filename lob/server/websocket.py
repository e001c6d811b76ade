"""WebSocket ``/ws``: subscribe to level-2 and trades; authenticated clients also get their execution reports.

Client -> server: ``{"op": "subscribe", "symbol": "AAPL", "channels": ["level2", "trades"]}``,
``{"op": "unsubscribe", "symbol": "AAPL"}``, ``{"op": "ping"}``. A token may be given as
``Authorization: Bearer <token>`` at the handshake or as ``?token=`` (browsers cannot set headers).

Server -> client: ``subscribed``, ``level2_update`` (a snapshot, then deltas with ``seq``/``prev_seq``),
``trade``, ``status`` (stale flags), ``execution_report``, ``error``, ``pong``. Each client has a bounded
queue (``Hub.queue_size``); a client that cannot keep up is closed with code 1008 and the reason.

Limits: a frame larger than 4 KB closes the socket with 1009 (the WebSocket protocol's "message too big"; no
frame beyond it is buffered); a message nested too deeply is answered with an ``error``; each client gets
at most ``SNAPSHOT_BURST`` level-2 snapshots at once and ``SNAPSHOT_RATE`` a second after that (a subscribe
beyond them is answered with an ``error`` ``rate_limited``, no snapshot), and a client sending more than
``MESSAGE_BURST`` messages at once or ``MESSAGE_RATE`` a second is closed with 1008.
"""
from __future__ import annotations

import socket
import struct

import tornado.web
import tornado.websocket
from tornado.iostream import StreamClosedError

from lob.server.accounts import RateLimiter
from lob.server.auth import request_token
from lob.server.codec import dumps, parse_json
from lob.server.errors import ApiError
from lob.server.fanout import Batch, Subscriber

__all__ = ["StreamHandler", "MAX_MESSAGE", "SNAPSHOT_RATE", "SNAPSHOT_BURST", "MESSAGE_RATE", "MESSAGE_BURST"]

MAX_MESSAGE = 4096                  # bytes of one client message (the protocol limit: larger frames close 1009)
SNAPSHOT_RATE, SNAPSHOT_BURST = 5.0, 20          # level-2 snapshots per client
MESSAGE_RATE, MESSAGE_BURST = 100.0, 500         # client messages per client
_HEAD16 = struct.Struct("!BBH")
_HEAD64 = struct.Struct("!BBQ")


class StreamHandler(tornado.websocket.WebSocketHandler):
    """One WebSocket client: a :class:`Subscriber` of the hub whose queue is written to the socket as it fills."""

    def initialize(self, hub, prefix: str = "", jupyter: bool = False) -> None:
        self.hub = hub
        self.jupyter = jupyter
        self.sub: Subscriber | None = None
        self._writing = False
        self._limits = RateLimiter(MESSAGE_RATE, MESSAGE_BURST), RateLimiter(SNAPSHOT_RATE, SNAPSHOT_BURST)

    @property
    def max_message_size(self) -> int:
        # tornado's limit, checked from the frame header before the payload is read (1009 beyond it); the
        # application's setting (the Bokeh server's 20 MB) is not ours
        return MAX_MESSAGE

    def lob_token(self) -> str | None:
        return request_token(self.request, None if self.jupyter else self.get_query_argument("token", None))

    async def get(self, *args, **kwargs):
        try:
            self.account = self.hub.authenticate(self.lob_token(), strict=not self.jupyter)
            if self.account is None and self.jupyter:
                await self.jupyter_login()
        except tornado.web.HTTPError as e:
            self.set_status(e.status_code)
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(dumps({"message": getattr(e, "message", None) or e.log_message or "forbidden",
                                    "reason": getattr(e, "error", None) or "unauthorized"}))
            return
        await super().get(*args, **kwargs)

    async def jupyter_login(self) -> None:
        """Jupyter's authentication (mixed in by :mod:`lob.server.extension`)."""
        raise ApiError(403, "this stream needs Jupyter's login or a lob API token", "unauthorized")

    def open(self, *args, **kwargs) -> None:
        if self.hub.socket_sndbuf:
            # a small kernel send buffer bounds what a stalled peer can hold, so its queue fills and it is
            # dropped in seconds instead of after megabytes
            try:
                self.ws_connection.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                                            self.hub.socket_sndbuf)
            except (AttributeError, OSError):
                pass
        self._writing = False
        self.sub = Subscriber(self.hub.queue_size, on_wake=self._pump, on_drop=self._drop, account=self.account)
        if self.account is not None:
            self.sub.token = self.lob_token()
        self.hub.add_subscriber(self.sub)
        self.sub.push([dumps({"type": "hello", "account": self.account, "symbols": self.hub.exchange.symbols})])

    def get_compression_options(self):
        # the frames of _wire are shared by every client: never negotiate permessage-deflate
        return None

    def _drop(self, reason: str) -> None:
        # closing from inside the hub's flush: the close frame is queued, nothing blocks
        self.close(1008, reason[:120])

    def _pump(self) -> None:
        """Send everything queued in one socket write, unless the previous write is still in the kernel's way.

        Called synchronously when the queue fills (no task switch per client and flush) and again when a
        backed-up write completes; meanwhile the queue keeps filling and a client that never drains is dropped.
        """
        sub = self.sub
        if self._writing or sub.dropped is not None or not sub.queue:
            return
        conn = self.ws_connection
        if conn is None or conn.is_closing():
            return
        data = b"".join(_wire(b) for b in sub.take())
        stream = conn.stream
        if not stream.writing():
            # nothing of tornado's is waiting in the stream (a pong, a close frame): send straight to the
            # socket, which usually takes it all, and leave only a remainder to the stream's buffer
            try:
                k = stream.socket.send(data)
            except (BlockingIOError, InterruptedError):
                k = 0
            except OSError:
                return                  # the connection is gone: tornado closes it on its next read
            if k == len(data):
                return
            data = memoryview(data)[k:]
        try:
            fut = stream.write(data)
        except StreamClosedError:
            return
        if not fut.done():
            self._writing = True
            fut.add_done_callback(self._written)

    def _written(self, fut) -> None:
        self._writing = False
        if fut.exception() is None:
            self._pump()

    def on_message(self, message) -> None:
        if self.sub is None or self.sub.dropped is not None:
            return
        if not self._limits[0].allow("m"):
            self.hub.stats["ws_flood_closed"] += 1
            self.sub.drop(f"more than {MESSAGE_BURST:g} messages at once or {MESSAGE_RATE:g} a second")
            self.hub.forget_dropped(self.sub)
            return
        if len(message) > MAX_MESSAGE:
            self._error(f"message larger than {MAX_MESSAGE} bytes", "too_large")
            return
        try:
            msg = parse_json(message, "message")
            if not isinstance(msg, dict):
                raise ApiError(400, "message must be a JSON object", "invalid_body")
            op = msg.get("op")
            if op == "subscribe":
                symbol, channels = msg.get("symbol"), msg.get("channels")
                if (channels is None or isinstance(channels, list) and "level2" in channels) \
                        and not self._limits[1].allow("s"):
                    raise ApiError(429, f"level-2 snapshots are limited to {SNAPSHOT_BURST} at once and "
                                   f"{SNAPSHOT_RATE:g} a second; already subscribed streams go on",
                                   "rate_limited")
                out = self.hub.subscribe(self.sub, symbol, channels)
            elif op == "unsubscribe":
                self.hub.unsubscribe(self.sub, msg.get("symbol"))
                out = [{"type": "unsubscribed", "symbol": msg.get("symbol")}]
            elif op == "ping":
                out = [{"type": "pong", "exchange_seq": self.hub.exchange.seq}]
            else:
                raise ApiError(400, f"unknown op {op!r}; use subscribe, unsubscribe or ping", "invalid_op")
        except ApiError as e:
            self._error(e.message, e.error)
            return
        if self.sub.push([dumps(m) for m in out]) is False:
            self.hub.forget_dropped(self.sub)

    def _error(self, message: str, reason: str) -> None:
        self.sub.push([dumps({"type": "error", "message": message, "reason": reason})])

    def on_close(self) -> None:
        if self.sub is not None:
            self.hub.remove_subscriber(self.sub)
            if self.sub.dropped is None:
                self.sub.dropped = "closed"
            self.sub.queue.clear()


def _wire(batch: Batch) -> bytes:
    """The WebSocket text frames of a batch, built once and shared by every client it is handed to.

    Server frames are unmasked and this handler negotiates no compression (``get_compression_options`` is
    None), so the frames of a message are the same bytes on every connection.
    """
    if batch.wire is None:
        parts = []
        for text in batch.texts:
            data = text.encode()
            n = len(data)
            if n < 126:
                parts.append(bytes((0x81, n)))
            elif n <= 0xFFFF:
                parts.append(_HEAD16.pack(0x81, 126, n))
            else:
                parts.append(_HEAD64.pack(0x81, 127, n))
            parts.append(data)
        batch.wire = b"".join(parts)
    return batch.wire
