"""Server benchmark on loopback (bounded loops; prints JSON).

1. REST order submit (``POST /api/orders``) latency p50/p99 and requests/s at concurrency 1, 16, 64, against a
   bare Tornado JSON echo handler served by the same process, measured in the same run (ratio = lob / echo).
2. 1,000 WebSocket clients subscribed to level2 (+ trades) of the 4 symbols while the market steps at 10 Hz:
   p50/p99 delivery lag from publication (``ts_ns`` of level2 messages) and from the engine event time of trades.
3. Matching throughput (market steps run back to back) with 50 reading clients, then the same with one more
   client that subscribes to everything and never reads: the ratio, and whether that client was dropped.

The server runs in a subprocess (``python benchmarks/bench_server.py --serve PORT``); the clients run here on
raw asyncio sockets so that client overhead stays small. Usage::

    python benchmarks/bench_server.py [--requests 2000] [--clients 1000] [--seconds 5]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np

TOKEN = "bench-token-0001"


# --------------------------------------------------------------------------------------------------
# server side
# --------------------------------------------------------------------------------------------------
def serve(port: int) -> None:
    import tornado.web
    from tornado.ioloop import IOLoop

    from lob.server import Accounts, Hub, Runner, make_app
    from lob.server.handlers import routes
    from lob.server.market import BotMarket

    class Echo(tornado.web.RequestHandler):
        def post(self):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(json.loads(self.request.body)))

    async def main():
        market = BotMarket(seed=1)
        hub = Hub(market, Accounts({TOKEN: "bench"}, path=False), write_rate=0, read_rate=0,
                  queue_size=2000, socket_sndbuf=64 * 1024)
        for _ in range(20):
            market.step()
        runner = Runner(hub, step_ms=100)

        class Control(tornado.web.RequestHandler):
            async def post(self, what):
                if what == "start":
                    runner.start()
                    return self.finish("{}")
                if what == "stop":
                    runner.stop()
                    return self.finish("{}")
                if what == "spin":      # run the market back to back for some seconds, yielding between steps
                    secs = float(self.get_argument("seconds", "3"))
                    ev0, steps, t0 = hub.perf.events_total, 0, time.perf_counter()
                    while time.perf_counter() - t0 < secs:
                        hub.step_market()
                        steps += 1
                        await asyncio.sleep(0)
                    dt = time.perf_counter() - t0
                    return self.finish(json.dumps(dict(steps_per_s=steps / dt,
                                                       events_per_s=(hub.perf.events_total - ev0) / dt,
                                                       clients=len(hub.subscribers),
                                                       dropped=int(hub.stats["clients_dropped"]))))
                if what == "stats":
                    return self.finish(json.dumps(dict(clients=len(hub.subscribers),
                                                       dropped=int(hub.stats["clients_dropped"]))))

        app = make_app(hub)
        app.add_handlers(".*$", [(r"/echo", Echo), (r"/bench/(\w+)", Control)])
        app.listen(port, address="127.0.0.1", backlog=2048)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# --------------------------------------------------------------------------------------------------
# client side
# --------------------------------------------------------------------------------------------------
async def http(reader, writer, method, path, body=b"", headers=""):
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
                 f"Content-Type: application/json\r\n{headers}\r\n".encode() + body)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    data = await reader.readexactly(n) if n else b""
    return status, data


async def one_shot(port, method, path, body=b""):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await http(r, w, method, path, body)
    finally:
        w.close()


async def rest_level(port, path, make_body, concurrency, total, headers):
    lat = []
    per = max(1, total // concurrency)

    async def worker(k):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        for i in range(per):
            body = make_body(k, i)
            t = time.perf_counter_ns()
            status, _ = await http(r, w, "POST", path, body, headers)
            lat.append(time.perf_counter_ns() - t)
            assert status in (200, 201), status
        w.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    dt = time.perf_counter() - t0
    a = np.array(lat) / 1e3
    return dict(p50_us=float(np.percentile(a, 50)), p99_us=float(np.percentile(a, 99)), rps=len(lat) / dt,
                n=len(lat))


def order_body(k, i):
    # buys and sells at one price cross each other, so the book stays small
    side = "buy" if (k + i) % 2 else "sell"
    return json.dumps({"symbol": "AAPL", "side": side, "qty": 1, "price": 190.0}).encode()


async def bench_rest(port, total):
    auth = f"Authorization: Bearer {TOKEN}\r\n"
    out = {}
    for c in (1, 16, 64):
        lob_r = await rest_level(port, "/api/orders", order_body, c, total, auth)
        echo = await rest_level(port, "/echo", order_body, c, total, "")
        out[f"c{c}"] = dict(lob=lob_r, echo=echo, rps_ratio=lob_r["rps"] / echo["rps"],
                            p50_ratio=lob_r["p50_us"] / echo["p50_us"])
    return out


class WsClient:
    """A minimal WebSocket client on a raw socket (server frames are unmasked)."""

    def __init__(self):
        self.lag_l2, self.lag_trade, self.n = [], [], 0
        self.stop = False

    async def connect(self, port, subscribe, read=True, rcvbuf=None):
        if rcvbuf:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.setblocking(False)
            await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", port))
            self.r, self.w = await asyncio.open_connection(sock=s)
        else:
            self.r, self.w = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        self.w.write(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        head = await self.r.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head[:40]
        for sym in subscribe:
            self.send(json.dumps({"op": "subscribe", "symbol": sym, "channels": ["level2", "trades"]}).encode())
        if read:
            self.task = asyncio.ensure_future(self.read_loop())

    def send(self, payload: bytes):
        mask = os.urandom(4)
        n = len(payload)
        hdr = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
        self.w.write(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    async def read_loop(self):
        r = self.r
        try:
            while True:
                h = await r.readexactly(2)
                n = h[1] & 0x7F
                if n == 126:
                    n = int.from_bytes(await r.readexactly(2), "big")
                elif n == 127:
                    n = int.from_bytes(await r.readexactly(8), "big")
                data = await r.readexactly(n)
                if h[0] & 0x0F == 8:
                    return
                now = time.time_ns()
                self.n += 1
                if self.stop:
                    continue
                # cheap parse: only the lag fields matter here
                if data.startswith(b'{"type":"level2_update"') and b'"ts_ns":' in data:
                    ts = int(data[data.rindex(b'"ts_ns":') + 8:].split(b",")[0].split(b"}")[0])
                    self.lag_l2.append(now - ts)
                elif data.startswith(b'{"type":"trade"'):
                    ts = int(data[data.rindex(b'"ts_ns":') + 8:].split(b",")[0].split(b"}")[0])
                    self.lag_trade.append(now - ts)
        except (asyncio.IncompleteReadError, ConnectionError):
            return


async def bench_ws(port, n_clients, seconds):
    syms = ["AAPL", "GOOGL", "MSFT", "TSLA"]
    clients = [WsClient() for _ in range(n_clients)]
    for i in range(0, n_clients, 100):
        await asyncio.gather(*(c.connect(port, [syms[j % 4]]) for j, c in enumerate(clients[i:i + 100], i)))
    await asyncio.sleep(1.0)
    await one_shot(port, "POST", "/bench/start")
    await asyncio.sleep(1.0)                     # warm up
    for c in clients:
        c.lag_l2.clear(), c.lag_trade.clear()
    n0 = sum(c.n for c in clients)
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    dt = time.perf_counter() - t0
    n1 = sum(c.n for c in clients)
    await one_shot(port, "POST", "/bench/stop")
    l2 = np.concatenate([np.array(c.lag_l2, dtype=np.int64) for c in clients]) / 1e6
    tr = np.concatenate([np.array(c.lag_trade, dtype=np.int64) for c in clients]) / 1e6
    _, stats = await one_shot(port, "POST", "/bench/stats")
    out = dict(clients=n_clients, connected=json.loads(stats)["clients"], seconds=seconds,
               messages_per_s=(n1 - n0) / dt,
               level2_lag_ms=dict(p50=float(np.percentile(l2, 50)), p99=float(np.percentile(l2, 99)),
                                  n=int(len(l2))) if len(l2) else None,
               trade_lag_from_match_ms=dict(p50=float(np.percentile(tr, 50)), p99=float(np.percentile(tr, 99)),
                                            n=int(len(tr))) if len(tr) else None,
               dropped=json.loads(stats)["dropped"])
    for c in clients:
        c.w.close()
    await asyncio.sleep(0.5)
    return out


async def bench_stall(port, seconds):
    syms = ["AAPL", "GOOGL", "MSFT", "TSLA"]
    readers = [WsClient() for _ in range(50)]
    await asyncio.gather(*(c.connect(port, [syms[i % 4]]) for i, c in enumerate(readers)))
    await asyncio.sleep(0.5)
    _, a = await one_shot(port, "POST", f"/bench/spin?seconds={seconds}")
    a = json.loads(a)
    stalled = WsClient()
    await stalled.connect(port, syms, read=False, rcvbuf=4096)
    await asyncio.sleep(0.5)
    _, b = await one_shot(port, "POST", f"/bench/spin?seconds={seconds}")
    b = json.loads(b)
    dropped_at = None
    t0 = time.perf_counter()
    if b["dropped"] == a["dropped"]:        # not yet: keep the market running until the stalled client is dropped
        for _ in range(10):
            _, c = await one_shot(port, "POST", "/bench/spin?seconds=1")
            if json.loads(c)["dropped"] > a["dropped"]:
                dropped_at = seconds + time.perf_counter() - t0
                break
    else:
        dropped_at = seconds
    for c in readers:
        c.w.close()
    stalled.w.close()
    return dict(without_stall=a, with_stall=b, throughput_ratio=b["events_per_s"] / a["events_per_s"],
                stalled_client_dropped_within_s=dropped_at)


async def client_main(port, args):
    out = dict(benchmark="bench_server")
    out["rest"] = await bench_rest(port, args.requests)
    out["websocket"] = await bench_ws(port, args.clients, args.seconds)
    out["stall"] = await bench_stall(port, min(args.seconds, 4))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    p.add_argument("--requests", type=int, default=2000, help="requests per concurrency level")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=5.0)
    args = p.parse_args()
    if args.serve:
        serve(args.serve)
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                                  (min(hard, max(soft, 8192)), hard)))
    try:
        assert proc.stdout.readline().strip() == "ready"
        out = asyncio.run(client_main(port, args))
    finally:
        proc.terminate()
        proc.wait(10)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
