"""WebSocket ``/ws``: subscribe to level-2 and trades; authenticated clients also get their execution reports.

Client -> server: ``{"op": "subscribe", "symbol": "AAPL", "channels": ["level2", "trades"]}``,
``{"op": "unsubscribe", "symbol": "AAPL"}``, ``{"op": "ping"}``. A token may be given as
``Authorization: Bearer <token>`` at the handshake or as ``?token=`` (browsers cannot set headers).

Server -> client: ``subscribed``, ``level2_update`` (a snapshot, then deltas with ``seq``/``prev_seq``),
``trade``, ``status`` (stale flags), ``execution_report``, ``error``, ``pong``. Each client has a bounded
queue (``Hub.queue_size``); a client that cannot keep up is closed with code 1008 and the reason.
"""
from __future__ import annotations

import json
import socket
import struct

import tornado.websocket
from tornado.iostream import StreamClosedError

from lob.server.hub import ApiError, Batch, Hub, Subscriber

__all__ = ["StreamHandler"]

_MAX_INCOMING = 4096
_HEAD16 = struct.Struct("!BBH")
_HEAD64 = struct.Struct("!BBQ")


class StreamHandler(tornado.websocket.WebSocketHandler):
    """One WebSocket client: a :class:`Subscriber` of the hub whose queue is written to the socket as it fills."""

    def initialize(self, hub: Hub, prefix: str = "") -> None:
        self.hub = hub
        self.sub: Subscriber | None = None
        self._writing = False

    async def get(self, *args, **kwargs):
        token = self.get_query_argument("token", None)
        auth = self.request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        try:
            self.account = self.hub.authenticate(token)
        except ApiError as e:
            self.set_status(401)
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(json.dumps({"message": e.message, "reason": e.error}))
            return
        await super().get(*args, **kwargs)

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
        self.hub.add_subscriber(self.sub)
        self.sub.push([json.dumps({"type": "hello", "account": self.account, "symbols": self.hub.exchange.symbols})])

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
        if len(message) > _MAX_INCOMING:
            self._error("message too large", "too_large")
            return
        try:
            msg = json.loads(message)
        except ValueError:
            self._error("message is not valid JSON", "invalid_body")
            return
        if not isinstance(msg, dict):
            self._error("message must be a JSON object", "invalid_body")
            return
        op = msg.get("op")
        try:
            if op == "subscribe":
                out = self.hub.subscribe(self.sub, msg.get("symbol"), msg.get("channels"))
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
        if self.sub.push([json.dumps(m, separators=(",", ":")) for m in out]) is False:
            self.hub._dropped(self.sub)

    def _error(self, message: str, reason: str) -> None:
        self.sub.push([json.dumps({"type": "error", "message": message, "reason": reason})])

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
