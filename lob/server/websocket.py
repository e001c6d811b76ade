"""WebSocket ``/ws``: subscribe to level-2 and trades; authenticated clients also get their execution reports.

Client -> server: ``{"op": "subscribe", "symbol": "AAPL", "channels": ["level2", "trades"]}``,
``{"op": "unsubscribe", "symbol": "AAPL"}``, ``{"op": "ping"}``. A token may be given as
``Authorization: Bearer <token>`` at the handshake or as ``?token=`` (browsers cannot set headers).

Server -> client: ``subscribed``, ``level2_update`` (a snapshot, then deltas with ``seq``/``prev_seq``),
``trade``, ``status`` (stale flags), ``execution_report``, ``error``, ``pong``. Each client has a bounded
queue (``Hub.queue_size``); a client that cannot keep up is closed with code 1008 and the reason.
"""
from __future__ import annotations

import asyncio
import json
import socket

import tornado.websocket

from lob.server.hub import ApiError, Hub, Subscriber

__all__ = ["StreamHandler"]

_MAX_INCOMING = 4096


class StreamHandler(tornado.websocket.WebSocketHandler):
    """One WebSocket client: a :class:`Subscriber` of the hub plus a sender task draining its queue."""

    def initialize(self, hub: Hub, prefix: str = "") -> None:
        self.hub = hub
        self.sub: Subscriber | None = None
        self._wake = None
        self._sender = None

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
        self._wake = asyncio.Event()
        self.sub = Subscriber(self.hub.queue_size, on_wake=self._wake.set, on_drop=self._drop,
                              account=self.account)
        self.hub.add_subscriber(self.sub)
        self._sender = asyncio.ensure_future(self._send_loop())
        self.sub.push([json.dumps({"type": "hello", "account": self.account, "symbols": self.hub.exchange.symbols})])

    def _drop(self, reason: str) -> None:
        # closing from inside the hub's flush: the close frame is queued, nothing blocks
        self.close(1008, reason[:120])

    async def _send_loop(self) -> None:
        sub = self.sub
        try:
            while sub.dropped is None:
                await self._wake.wait()
                self._wake.clear()
                fut = None
                while sub.queue:
                    fut = self.write_message(sub.queue.popleft())
                    sub.sent += 1
                if fut is not None:
                    # waits while the socket is backed up (the queue keeps filling meanwhile); shielded so that
                    # cancelling this task at shutdown does not cancel tornado's own write future
                    await asyncio.shield(fut)
        except tornado.websocket.WebSocketClosedError:
            pass

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
            self._wake.set()
