"""WebSocket /ws: snapshot + sequence-numbered deltas rebuild the book; execution reports; slow clients dropped."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import socket

from tornado.httpclient import HTTPRequest
from tornado.testing import AsyncHTTPTestCase, gen_test
from tornado.websocket import websocket_connect

from lob.marketdata import BookBuilder
from lob.server import Accounts, Hub, make_app
from lob.server.market import BotMarket

from server_support import TOKENS


class WsCase(AsyncHTTPTestCase):
    hub_kwargs: dict = {}

    def get_app(self):
        self.hub = Hub(BotMarket(seed=11), Accounts(TOKENS, path=False), **self.hub_kwargs)
        for _ in range(5):
            self.hub.step_market()
        return make_app(self.hub)

    async def connect(self, token=None):
        url = f"ws://127.0.0.1:{self.get_http_port()}/ws" + (f"?token={token}" if token else "")
        return await websocket_connect(url)

    async def recv(self, ws, timeout=5):
        return json.loads(await asyncio.wait_for(ws.read_message(), timeout))

    async def settle(self):
        for _ in range(20):
            await asyncio.sleep(0)

    async def read_until(self, ws, client, done, limit=20):
        """Read (feeding level2 messages to the BookBuilder) until done(messages so far) holds; return them.

        Deterministic: it waits for what the server has published, however long a loaded machine takes (the
        per-message bound only turns a hang into a failure)."""
        out = []
        while not done(out):
            m = await self.recv(ws, timeout=limit)
            out.append(m)
            client.apply(m)
        return out

    async def nothing_pending(self, ws):
        """Assert the stream holds nothing more: flush the hub now, then a request's reply must come next."""
        self.hub.flush()
        ws.write_message(json.dumps({"op": "dance"}))
        m = await self.recv(ws, timeout=20)
        assert m == {"type": "error", "reason": "invalid_op", **{k: v for k, v in m.items()
                                                                if k not in ("type", "reason")}}, m


class TestStream(WsCase):
    @gen_test(timeout=30)
    async def test_client_rebuilds_the_servers_book(self):
        ws = await self.connect()
        assert (await self.recv(ws))["type"] == "hello"
        ws.write_message(json.dumps({"op": "subscribe", "symbol": "AAPL", "channels": ["level2", "trades"]}))
        assert (await self.recv(ws))["type"] == "subscribed"
        snap = await self.recv(ws)
        assert snap["type"] == "level2_update" and snap["snapshot"] is True
        client = BookBuilder()
        client.apply(snap)
        msgs = []
        for _ in range(40):
            self.hub.step_market()
            await self.settle()
        target = self.hub.feed.snapshot("AAPL")["seq"]
        last_trade = int(self.hub.exchange.trades("AAPL", 1)["seq"].iloc[-1])
        msgs += await self.read_until(ws, client, lambda out: client.seq.get("AAPL") == target and any(
            m["type"] == "trade" and m["seq"] == last_trade for m in out))
        await self.nothing_pending(ws)
        kinds = {m["type"] for m in msgs}
        assert {"level2_update", "trade"} <= kinds
        l2 = [m for m in msgs if m["type"] == "level2_update"]
        # each delta continues where the previous one ended (deltas of one flush are conflated into one)
        assert [m["prev_seq"] for m in l2] == [snap["seq"]] + [m["seq"] for m in l2[:-1]]
        assert l2[-1]["seq"] == self.hub.feed.snapshot("AAPL")["seq"]
        assert client.gaps == []
        d = self.hub.exchange.book("AAPL").depth(self.hub.feed.depth)
        assert client.books["AAPL"] == {"bids": [[p, q] for p, q, _ in d["bids"]],
                                        "asks": [[p, q] for p, q, _ in d["asks"]]}
        tape = self.hub.exchange.trades("AAPL", 1000)
        got = [m["seq"] for m in msgs if m["type"] == "trade"]
        assert got == [s for s in tape["seq"].tolist() if s > min(got) - 1]
        ws.close()

    @gen_test(timeout=30)
    async def test_level2_only_and_bad_requests(self):
        ws = await self.connect()
        await self.recv(ws)
        ws.write_message(json.dumps({"op": "subscribe", "symbol": "NOPE"}))
        err = await self.recv(ws)
        assert err["type"] == "error" and err["reason"] == "unknown_symbol"
        ws.write_message("not json")
        assert (await self.recv(ws))["reason"] == "invalid_body"
        ws.write_message(json.dumps({"op": "dance"}))
        assert (await self.recv(ws))["reason"] == "invalid_op"
        ws.write_message(json.dumps({"op": "subscribe", "symbol": "MSFT", "channels": ["level2"]}))
        await self.recv(ws)
        await self.recv(ws)
        for _ in range(20):
            self.hub.step_market()
            await self.settle()
        client = BookBuilder()
        target = self.hub.feed.snapshot("MSFT")["seq"]
        msgs = await self.read_until(ws, client, lambda out: any(m.get("seq") == target for m in out))
        await self.nothing_pending(ws)
        assert msgs and all(m["type"] == "level2_update" and m["symbol"] == "MSFT" for m in msgs)
        ws.close()

    @gen_test(timeout=30)
    async def test_authenticated_client_gets_its_execution_reports(self):
        ws = await self.connect("tok-alice-0001")
        hello = await self.recv(ws)
        assert hello["account"] == "alice"
        book = self.hub.exchange.book("TSLA")
        ask, bid = book.best_ask(), book.best_bid()
        status, r = self.hub.submit("alice", {"symbol": "TSLA", "side": "sell", "qty": 1000, "price": ask[0]})
        assert status == 201
        m = await self.recv(ws)
        assert m["type"] == "execution_report" and m["kind"] == "report" and m["order_id"] == r["order_id"]
        assert m["status"] == "new"
        # someone lifts the whole queue ahead of alice and 7 of hers: she gets a maker fill of 7
        self.hub.exchange.submit("TSLA", "buy", ask[1] + 7, price=ask[0], owner="bob")
        fills = []
        while not fills:
            m = await self.recv(ws)
            fills = [m] if m.get("kind") == "fill" else []
        assert fills[0]["order_id"] == r["order_id"] and fills[0]["qty"] == 7 and fills[0]["liquidity"] == "maker"
        ws.close()
        # an anonymous stream gets no execution reports, a bad token is refused at the handshake
        anon = await self.connect()
        await self.recv(anon)
        self.hub.submit("alice", {"symbol": "TSLA", "side": "sell", "qty": 1, "price": bid[0] + 0.5})
        await self.settle()
        await self.nothing_pending(anon)            # no execution report came before the reply
        anon.close()
        try:
            await self.connect("bogus-token-123")
            raise AssertionError("a bad token was accepted")
        except Exception as e:
            assert "401" in str(e)


class TestStatus(WsCase):
    hub_kwargs = dict(stale_after_s=0.05)

    @gen_test(timeout=30)
    async def test_stale_flags_reach_level2_only_and_trades_only_clients(self):
        clients = []
        for channels in (["level2"], ["trades"]):
            ws = await self.connect()
            await self.recv(ws)
            ws.write_message(json.dumps({"op": "subscribe", "symbol": "GOOGL", "channels": channels}))
            assert (await self.recv(ws))["type"] == "subscribed"
            if channels == ["level2"]:
                assert (await self.recv(ws))["snapshot"] is True
            clients.append(ws)
        await asyncio.sleep(0.1)                # no market step: GOOGL goes stale
        self.hub.check(integrity=False)
        for ws in clients:
            m = await self.recv(ws)
            assert m == {"type": "status", "symbol": "GOOGL", "stale": True, "reason": m["reason"]}
            assert "no update" in m["reason"]
        for _ in range(10):                     # fresh again once the market moves
            self.hub.step_market()
        await self.settle()
        self.hub.check(integrity=False)
        fresh = {"type": "status", "symbol": "GOOGL", "stale": False, "reason": None}
        for ws in clients:
            await self.read_until(ws, BookBuilder(), lambda out: fresh in out)
            ws.close()


class TestSlowClient(WsCase):
    hub_kwargs = dict(queue_size=50, socket_sndbuf=4096)

    @gen_test(timeout=60)
    async def test_a_stalled_client_is_dropped_and_matching_goes_on(self):
        port = self.get_http_port()
        # a raw socket client that completes the handshake, subscribes, then never reads
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(s, ("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        await loop.sock_sendall(s, (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                                    f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await loop.sock_recv(s, 1024)
        assert head.startswith(b"HTTP/1.1 101")
        payload = json.dumps({"op": "subscribe", "symbol": "AAPL"}).encode()
        mask = os.urandom(4)
        frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        await loop.sock_sendall(s, frame)
        good = await self.connect()        # a healthy client on the same symbol keeps up
        await self.recv(good)
        good.write_message(json.dumps({"op": "subscribe", "symbol": "AAPL"}))
        await self.settle()
        client = BookBuilder()
        seq0 = self.hub.exchange.seq
        for i in range(400):
            self.hub.step_market()
            await self.settle()
            if i % 20 == 0:                     # the healthy client reads all that was published so far
                target = self.hub.feed.snapshot("AAPL")["seq"]
                await self.read_until(good, client, lambda out: client.seq.get("AAPL") == target)
            if self.hub.stats["clients_dropped"]:
                break
        assert self.hub.stats["clients_dropped"] == 1
        assert self.hub.exchange.seq > seq0
        inc = [r for r in self.hub.incidents.rows() if "slow consumer" in r["message"]]
        assert len(inc) == 1
        assert len(self.hub.subscribers) == 1                 # the healthy client is still there
        for _ in range(5):
            self.hub.step_market()
            await self.settle()
        target = self.hub.feed.snapshot("AAPL")["seq"]
        await self.read_until(good, client, lambda out: client.seq.get("AAPL") == target)
        assert client.gaps == []
        d = self.hub.exchange.book("AAPL").depth(self.hub.feed.depth)
        assert client.books["AAPL"]["bids"] == [[p, q] for p, q, _ in d["bids"]]
        good.close()
        s.close()
