"""Issue #16: hostile input is answered (400/413 JSON naming the field, WebSocket limits), tokens change without a
restart, client order ids make a POST idempotent, and the schema and the behaviour agree on the listed cases."""
from __future__ import annotations

import asyncio
import http.client
import json
import time

import pytest
from tornado.testing import gen_test
from tornado.websocket import websocket_connect

from lob.server import Accounts, Hub, make_app
from lob.server.accounts import create_token, list_tokens, revoke_tokens
from lob.server.cli import token_main
from lob.server.market import BotMarket
from lob.server.openapi import openapi_document
from lob.server.websocket import MAX_MESSAGE, MESSAGE_BURST, MESSAGE_RATE, SNAPSHOT_BURST, SNAPSHOT_RATE

from server_support import LiveServer
from test_server_rest import ALICE, BOB, ServerCase

ORDER = {"symbol": "AAPL", "side": "buy", "qty": 5, "price": 100.0}
BIG = "1" + "0" * 400               # 10**400 as a JSON number (a Python int: math.isfinite overflows on it)


class TestHostileNumbersAndIds(ServerCase):
    def post_raw(self, text, path="/api/orders", method="POST"):
        return self.req(method, path, headers=ALICE, raw=text)

    def test_huge_numbers_are_400_naming_the_field(self):
        for field in ("qty", "price", "display_qty", "stop_price"):
            body = dict(ORDER, type="stop_limit", stop_price=101.0) if field == "stop_price" else dict(ORDER)
            text = json.dumps(body).replace("}", f', "{field}": {BIG}}}') if field not in body else \
                json.dumps(dict(body, **{field: 0})).replace(f'"{field}": 0', f'"{field}": {BIG}')
            code, err = self.post_raw(text)
            assert code == 400 and f"'{field}'" in err["message"] and err["reason"] == "invalid_field", (field, err)
            assert "401 digits" in err["message"]            # not the number itself
        code, r = self.req("POST", "/api/orders", ORDER, ALICE)
        oid = r["order_id"]
        for field in ("qty", "price"):
            code, err = self.req("PATCH", f"/api/orders/{oid}", headers=ALICE, raw=f'{{"{field}": {BIG}}}')
            assert code == 400 and f"'{field}'" in err["message"]
            code, err = self.req("PATCH", f"/api/orders/{oid}", headers=ALICE, raw=f'{{"{field}": 1e400}}')
            assert code == 400 and f"'{field}'" in err["message"]
        assert self.hub.exchange.book("AAPL").order(oid) is not None      # untouched

    def test_order_ids_in_the_path_are_ascii_digits_only(self):
        code, r = self.req("POST", "/api/orders", ORDER, ALICE)
        oid = r["order_id"]
        arabic = "".join(chr(0x0660 + int(d)) for d in str(oid))      # Arabic-Indic digits of the same id
        for raw in ("%C2%B2", "1" * 5000, arabic, "0", "-1", "1.0", str(2 ** 63), "+5"):
            for method in ("DELETE", "PATCH"):
                code, err = self.req(method, f"/api/orders/{raw}", {"qty": 1} if method == "PATCH" else None, ALICE)
                assert code == 400 and "'order_id'" in err["message"] and err["reason"] == "invalid_field", (raw, err)
        # the order that the Arabic-Indic digits spell was not cancelled
        assert self.hub.exchange.book("AAPL").order(oid) is not None

    def test_query_integers_are_ascii_digits_only(self):
        for raw in ("%D9%A1%D9%A2", "1" * 5000, "%C2%B2"):
            code, err = self.req("GET", f"/api/book/AAPL?depth={raw}")
            assert code == 400 and "'depth'" in err["message"]

    def test_deeply_nested_bodies_are_400(self):
        code, err = self.post_raw("[" * 2000 + "]" * 2000)
        assert code == 400 and err["reason"] == "invalid_body"
        code, err = self.post_raw('{"a":' * 30_000 + "1" + "}" * 30_000)
        assert code in (400, 413) and err["reason"] in ("invalid_body", "too_large")

    def test_a_bad_content_length_is_400(self):
        code, err = self.req("POST", "/api/orders", headers=dict(ALICE, **{"Content-Length": "١٢"}), raw="{}")
        assert code == 400


class TestSchemaAndBehaviourAgree(ServerCase):
    def test_patch_needs_qty_or_price(self):
        code, r = self.req("POST", "/api/orders", ORDER, ALICE)
        code, err = self.req("PATCH", f"/api/orders/{r['order_id']}", {}, ALICE)
        assert code == 400 and "qty" in err["message"]
        modify = openapi_document()["components"]["schemas"]["ModifyRequest"]
        assert {"required": ["qty"]} in modify["anyOf"] and {"required": ["price"]} in modify["anyOf"]

    def test_each_order_type_takes_its_prices_only(self):
        code, err = self.req("POST", "/api/orders", dict(ORDER, type="stop", stop_price=101.0), ALICE)
        assert code == 400 and "'price'" in err["message"] and "stop" in err["message"]
        code, err = self.req("POST", "/api/orders", {"symbol": "AAPL", "side": "buy", "qty": 5, "type": "stop"}, ALICE)
        assert code == 400 and "'stop_price'" in err["message"]
        code, err = self.req("POST", "/api/orders", dict(ORDER, type="market"), ALICE)
        assert code == 400 and "'price'" in err["message"]
        code, err = self.req("POST", "/api/orders", dict(ORDER, stop_price=1.0), ALICE)
        assert code == 400 and "'stop_price'" in err["message"]
        code, r = self.req("POST", "/api/orders", {"symbol": "AAPL", "side": "sell", "qty": 5, "type": "stop",
                                                   "stop_price": 1.0}, ALICE)
        assert code == 201 and r["status"] == "new"
        schemas = openapi_document()["components"]["schemas"]
        assert "price" not in schemas["StopOrder"]["properties"] and schemas["StopOrder"]["additionalProperties"] is False
        assert "stop_price" not in schemas["LimitOrder"]["properties"] and "price" in schemas["LimitOrder"]["required"]

    def test_sides_types_and_tifs_are_the_schemas(self):
        for side in ("BUY", "b", "bid", "Sell", "ask"):
            code, err = self.req("POST", "/api/orders", dict(ORDER, side=side), ALICE)
            assert code == 400 and "'side'" in err["message"], side
        for field, v in (("type", "LIMIT"), ("type", "stop-limit"), ("tif", "GTC")):
            code, err = self.req("POST", "/api/orders", dict(ORDER, **{field: v}), ALICE)
            assert code == 400 and f"'{field}'" in err["message"]
        code, err = self.req("POST", "/api/orders", dict(ORDER, price=None), ALICE)
        assert code == 400 and "'price'" in err["message"]

    def test_submit_is_post_only_and_405s_name_the_allowed_methods(self):
        code, err = self.req("GET", "/api/submit", headers=ALICE)
        assert code == 405 and "POST" in err["message"]
        r = self.fetch("/api/submit", method="GET", headers=ALICE, raise_error=False)
        assert r.headers["Allow"] == "POST"
        for method, path, allow in (("PUT", "/api/orders", "GET, POST"), ("POST", "/api/book/AAPL", "GET"),
                                    ("GET", "/api/orders/5", "PATCH, DELETE"), ("DELETE", "/healthz", "GET")):
            r = self.fetch(path, method=method, headers=ALICE, raise_error=False,
                           body="{}" if method in ("PUT", "POST") else None, allow_nonstandard_methods=True)
            assert r.code == 405 and r.headers["Allow"] == allow, (method, path, r.headers.get("Allow"))
            assert json.loads(r.body)["message"]
        assert "get" not in openapi_document()["paths"]["/api/submit"]


class TestIdempotency(ServerCase):
    def test_a_repeated_client_order_id_returns_the_original_report(self):
        body = dict(ORDER, client_order_id="my-order-1")
        code1, r1 = self.req("POST", "/api/orders", body, ALICE)
        code2, r2 = self.req("POST", "/api/orders", body, ALICE)
        assert code1 == 201 and code2 == 200
        assert r2 == r1 and r1["client_order_id"] == "my-order-1"
        orders = self.req("GET", "/api/orders", headers=ALICE)[1]["orders"]
        assert [o["order_id"] for o in orders].count(r1["order_id"]) == 1 and len(orders) == 1
        # a repeat with other fields still returns the original (the id names the order)
        assert self.req("POST", "/api/orders", dict(body, qty=9), ALICE)[1]["order_id"] == r1["order_id"]
        # another account's id space is its own
        code, rb = self.req("POST", "/api/orders", body, BOB)
        assert code == 201 and rb["order_id"] != r1["order_id"]
        # once the order has ended, the id may be used again
        assert self.req("DELETE", f"/api/orders/{r1['order_id']}", headers=ALICE)[0] == 200
        code, r3 = self.req("POST", "/api/orders", body, ALICE)
        assert code == 201 and r3["order_id"] != r1["order_id"]

    def test_filled_orders_free_their_id_and_bad_ids_are_400(self):
        ask = self.hub.exchange.book("AAPL").best_ask()[0]
        body = {"symbol": "AAPL", "side": "buy", "qty": 1, "price": ask, "tif": "ioc", "client_order_id": "x1"}
        code, r = self.req("POST", "/api/orders", body, ALICE)
        assert r["status"] == "filled" and not self.hub.client_ids
        for bad in ("", "a b", "é", "x" * 65, 5):
            code, err = self.req("POST", "/api/orders", dict(ORDER, client_order_id=bad), ALICE)
            assert code == 400 and "'client_order_id'" in err["message"], bad

    def test_documented_in_openapi(self):
        doc = openapi_document()
        limit = doc["components"]["schemas"]["LimitOrder"]["properties"]
        assert "client_order_id" in limit and "original report" in limit["client_order_id"]["description"]
        assert "client_order_id" in doc["paths"]["/api/orders"]["post"]["responses"]["200"]["description"]


class TestTokensWithoutRestart(ServerCase):
    def get_app(self):
        import tempfile
        from pathlib import Path

        self.token_file = Path(tempfile.mkdtemp()) / "tokens.json"
        self.hub = Hub(BotMarket(seed=5), Accounts({"tok-alice-0001": "alice"}, path=self.token_file))
        for _ in range(5):
            self.hub.step_market()
        return make_app(self.hub)

    def test_created_and_revoked_tokens_count_from_the_next_request(self):
        tok = create_token("carol", self.token_file)
        auth = {"Authorization": f"Bearer {tok}"}
        code, r = self.req("POST", "/api/orders", ORDER, auth)
        assert code == 201
        assert self.req("GET", "/api/orders", headers=auth)[1]["account"] == "carol"
        tok2 = create_token("carol", self.token_file)
        assert token_main(["revoke", tok, "--file", str(self.token_file)]) == 0
        assert self.req("GET", "/api/orders", headers=auth)[0] == 401
        code, orders = self.req("GET", "/api/orders", headers={"Authorization": f"Bearer {tok2}"})
        assert code == 200 and [o["order_id"] for o in orders["orders"]] == [r["order_id"]]
        assert [t["account"] for t in list_tokens(self.token_file)] == ["carol"]
        assert revoke_tokens(account="carol", path=self.token_file) == ["carol"]
        assert self.req("GET", "/api/orders", headers={"Authorization": f"Bearer {tok2}"})[0] == 401
        # in-process tokens stay; a broken file keeps the tokens read before
        assert self.req("GET", "/api/orders", headers=ALICE)[0] == 200
        tok3 = create_token("dave", self.token_file)
        assert self.req("GET", "/api/orders", headers={"Authorization": f"Bearer {tok3}"})[0] == 200
        self.token_file.write_text("{not json", encoding="utf-8")
        assert self.req("GET", "/api/orders", headers={"Authorization": f"Bearer {tok3}"})[0] == 200

    @gen_test(timeout=30)
    async def test_a_revoked_token_closes_its_stream(self):
        tok = create_token("frank", self.token_file)
        ws = await websocket_connect(f"ws://127.0.0.1:{self.get_http_port()}/ws?token={tok}")
        assert json.loads(await ws.read_message())["account"] == "frank"
        self.hub.check(integrity=False)             # the periodic check: the token is still good
        assert len(self.hub.subscribers) == 1
        revoke_tokens(tok, path=self.token_file)
        self.hub.check(integrity=False)
        while await asyncio.wait_for(ws.read_message(), 10) is not None:
            pass
        assert ws.close_code == 1008 and "revoked" in ws.close_reason and not self.hub.subscribers

    def test_cli_list_and_revoke(self):
        create_token("erin", self.token_file)
        assert token_main(["list", "--file", str(self.token_file)]) == 0
        assert token_main(["revoke", "--account", "erin", "--file", str(self.token_file)]) == 0
        assert token_main(["revoke", "--account", "erin", "--file", str(self.token_file)]) == 2


# --- the whole server (the Bokeh server's HTTP and WebSocket settings) ---------------------------------------
@pytest.fixture(scope="module")
def live():
    with LiveServer(seed=6, read_rate=0, write_rate=0) as srv:
        yield srv


def _port(live) -> int:
    return int(live.url.rsplit(":", 1)[1])


def test_a_10mb_body_is_413_json(live):
    conn = http.client.HTTPConnection("127.0.0.1", _port(live), timeout=60)
    conn.request("POST", "/api/orders", body=b"[" * (10 << 20),
                 headers={"Authorization": "Bearer tok-alice-0001", "Content-Type": "application/json"})
    r = conn.getresponse()
    err = json.loads(r.read())
    assert r.status == 413 and err["reason"] == "too_large" and str(live.hub.max_body) in err["message"]
    # a chunked body over the limit (and over the Bokeh server's own 1 MB) too
    conn = http.client.HTTPConnection("127.0.0.1", _port(live), timeout=60)
    conn.putrequest("POST", "/api/orders")
    conn.putheader("Authorization", "Bearer tok-alice-0001")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    chunk = b"x" * (1 << 20)
    for _ in range(3):
        conn.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
    conn.send(b"0\r\n\r\n")
    r = conn.getresponse()
    assert r.status == 413 and json.loads(r.read())["reason"] == "too_large"
    # a body declared beyond the drain limit is answered from its headers
    conn = http.client.HTTPConnection("127.0.0.1", _port(live), timeout=60)
    conn.putrequest("POST", "/api/orders")
    conn.putheader("Content-Length", str(1 << 30))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413 and json.loads(r.read())["reason"] == "too_large"


def _ws(live, coro_fn):
    async def main():
        ws = await websocket_connect(live.url.replace("http", "ws") + "/ws", max_message_size=64 << 20)
        assert json.loads(await asyncio.wait_for(ws.read_message(), 10))["type"] == "hello"
        try:
            return await coro_fn(ws)
        finally:
            ws.close()
    return asyncio.run(main())


async def _read_until_close(ws, limit=10_000):
    out = []
    for _ in range(limit):
        m = await asyncio.wait_for(ws.read_message(), 30)
        if m is None:
            return out
        out.append(json.loads(m))
    raise AssertionError("the socket was not closed")


def test_a_frame_over_the_limit_closes_with_1009(live):
    async def run(ws):
        ws.write_message("x" * (20 << 20))
        await _read_until_close(ws)
        return ws.close_code
    # closed from the frame's header, its payload never read (tornado sends 1009 and drops the connection at
    # once: a peer still sending may see the reset before the close frame)
    assert _ws(live, run) in (1009, None)

    async def small(ws):
        ws.write_message(json.dumps({"op": "ping", "pad": "x" * MAX_MESSAGE}))
        await _read_until_close(ws)
        return ws.close_code
    assert _ws(live, small) == 1009


def test_deep_nesting_is_answered_and_the_socket_stays(live):
    async def run(ws):
        ws.write_message("[" * 2000 + "]" * 2000)
        err = json.loads(await asyncio.wait_for(ws.read_message(), 10))
        ws.write_message(json.dumps({"op": "ping"}))
        pong = json.loads(await asyncio.wait_for(ws.read_message(), 10))
        return err, pong
    err, pong = _ws(live, run)
    assert err["type"] == "error" and "nested too deeply" in err["message"] and pong["type"] == "pong"


def test_resubscribe_storms_are_bounded(live):
    async def run(ws):
        t0 = time.monotonic()
        for _ in range(2000):
            ws.write_message(json.dumps({"op": "subscribe", "symbol": "AAPL", "channels": ["level2"]}))
        msgs = await _read_until_close(ws, limit=100_000)
        return msgs, time.monotonic() - t0, ws.close_code
    msgs, elapsed, code = _ws(live, run)
    snapshots = [m for m in msgs if m.get("type") == "level2_update" and m.get("snapshot")]
    limited = [m for m in msgs if m.get("type") == "error" and m.get("reason") == "rate_limited"]
    assert len(snapshots) <= SNAPSHOT_BURST + SNAPSHOT_RATE * elapsed + 1
    assert limited and code == 1008                 # beyond MESSAGE_BURST messages at once: closed
    answered = [m for m in msgs if m.get("type") in ("subscribed", "error")]
    assert len(answered) <= MESSAGE_BURST + MESSAGE_RATE * elapsed + 1


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="needs /proc to read a process's RSS")
def test_large_frames_do_not_grow_the_servers_memory(tmp_path):
    # the issue: 20 frames of 20 MB each (the Bokeh server's default limit) added ~260 MB to lob serve
    from test_server_durability import Served

    tokens = tmp_path / "tokens.json"
    create_token("alice", tokens)
    srv = Served(None, tokens)
    try:
        async def flood():
            for _ in range(20):
                ws = await websocket_connect(f"ws://127.0.0.1:{srv.port}/ws", max_message_size=64 << 20)
                await asyncio.wait_for(ws.read_message(), 30)          # hello
                try:
                    ws.write_message("x" * (20 << 20))
                except Exception:       # noqa: BLE001 - the server may reset the connection under the write
                    pass
                while await asyncio.wait_for(ws.read_message(), 30) is not None:
                    pass
        before = _rss_kb(srv.proc.pid)
        asyncio.run(flood())
        grown_mb = (_rss_kb(srv.proc.pid) - before) / 1024
        assert grown_mb < 60, f"the server grew by {grown_mb:.0f} MB"
    finally:
        srv.stop()
