"""Server benchmark on loopback (bounded loops; prints JSON).

The server runs in a subprocess (``--serve PORT``) next to a bare Tornado JSON echo handler (``/echo``), and every
load generator runs in processes of its own (cheap epoll clients on raw sockets), so no client steals the server's
event loop. The machine may be shared: each closed-loop figure is the median of several alternating lob/echo
rounds, and the server's own CPU time per request (``psutil``) is reported next to the requests/s.

1. REST order submit (``POST /api/orders``) vs the echo at concurrency 1, 16, 64: p50/p99 latency, requests/s,
   server CPU us/request; ``rps_ratio`` = lob / echo of the best round of each (goal >= 0.6), with the median of
   the per-round ratios and ``cpu_ratio`` = echo / lob server CPU per request (the ratio at saturation).
   ``journal_cost``: the same submits to the journaled hub and to one without a journal (``/nojournal``) in
   alternating rounds of the one server process (the journal's cost as a ratio).
2. Open-loop paced submits at 500 requests/s (several connections, requests sent on schedule whatever the
   replies): p50/p99/p999 from the actual send and from the scheduled send, with the market idle and with the
   market stepping at 10 Hz (goal: p99 < 1 ms), next to the echo and to the same process's hub without a journal
   (``/nojournal``), in ``--rounds`` alternating rounds; ``server_handler`` is the time spent inside the handler.
3. 1,000 WebSocket clients (spread over ``--ws-procs`` processes) on level2 + trades of the 4 symbols while the
   market steps at 10 Hz: delivery lag of level2 updates from the server's publication stamp (``ts_ns``, the
   oldest change in the message) and of trades from their engine time; sequence gaps seen (goal: p99 < 100 ms).
4. REST submits at concurrency 16 while the 1,000 WebSocket clients stream (the market idle): requests/s against
   the same without clients, and the level2 lag meanwhile (flushes are paced: ``Hub.flush_interval_s``).
5. Matching throughput (market steps back to back, 0.1 s slices) with 50 reading clients; with one more client
   on every symbol that reads; and with that client stalled instead (never reads: the slices before it is
   dropped), over a few cycles. ``ratio_stalled_vs_reading`` isolates the stall from serving one more client.

6. ``fsync_probe`` (not in the default parts): the same paced submits in this process without a network, with no
   journal, a journal that never fsyncs, ``lob serve``'s batch journal, and another process fsyncing every 5 ms:
   the p99 of the wake-up delay shows what an fsync cadence costs the machine's tail (see :func:`fsync_probe`).

The server journals as ``lob serve`` does by default (``--fsync batch``: records handed to the OS and fsynced
every 5 ms; the journal in a temporary data folder);
``--fsync always`` measures the strictest policy, ``--fsync none`` the server without a journal.

Usage::

    python benchmarks/bench_server.py [--requests 3000] [--rounds 5] [--clients 1000] [--ws-procs 4] [--seconds 5]
                                      [--fsync batch|always|never|none]
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import select
import socket
import subprocess
import sys
import time

TOKEN = "bench-token-0001"
SYMS = ["AAPL", "GOOGL", "MSFT", "TSLA"]


# --------------------------------------------------------------------------------------------------
# server side
# --------------------------------------------------------------------------------------------------
def serve(port: int, fsync: str = "batch") -> None:
    import asyncio
    import tempfile

    import tornado.web

    from lob.server import Accounts, Hub, Runner, log_request, make_app, tune_gc
    from lob.server.market import BotMarket

    handler_s: dict[str, list[float]] = {}      # path -> seconds from the request's headers to its finish()

    def log_function(handler):
        log_request(handler)
        handler_s.setdefault(handler.request.path, []).append(handler.request.request_time())

    class Echo(tornado.web.RequestHandler):
        def post(self):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(json.loads(self.request.body)))

    async def main():
        market = BotMarket(seed=1)
        if fsync != "none":
            # journaled as lob serve is by default (its data folder's journal, the same policy)
            from lob.journal import Journal

            import shutil
            import signal

            folder = tempfile.mkdtemp(prefix="lob-bench-")

            def stop(*_):           # terminate(): the benchmark's journal is thrown away, the process ends now
                shutil.rmtree(folder, True)
                os._exit(0)

            signal.signal(signal.SIGTERM, stop)
            from lob.server.store import DEFAULT_FSYNC_MS

            market.exchange.journal = Journal(market.exchange, folder, fsync=fsync,
                                              fsync_ms=DEFAULT_FSYNC_MS if fsync == "batch" else None)
        hub = Hub(market, Accounts({TOKEN: "bench"}, path=False), write_rate=0, read_rate=0,
                  queue_size=2000, socket_sndbuf=64 * 1024)
        for _ in range(20):
            market.step()
        runner = Runner(hub, step_ms=100)

        class Control(tornado.web.RequestHandler):
            async def post(self, what):
                if what == "start":
                    runner.start()
                elif what == "stop":
                    runner.stop()
                elif what == "times":       # handler time per path since the last call (then cleared)
                    out = {k: _pct([x * 1e9 for x in v], (50, 99, 99.9)) for k, v in handler_s.items()}
                    handler_s.clear()
                    return self.finish(json.dumps(out))
                elif what == "flatten":     # cancel what the earlier phases left resting (a clean book)
                    for oid, sym in list(hub._open.get("bench", {}).items()):
                        hub.exchange.cancel(sym, oid)
                elif what == "spin":    # the market back to back, yielding between steps; 0.1 s slices
                    secs = float(self.get_argument("seconds", "3"))
                    slices, t0 = [], time.perf_counter()
                    while time.perf_counter() - t0 < secs:
                        ev0, s0, steps = hub.perf.events_total, time.perf_counter(), 0
                        while time.perf_counter() - s0 < 0.1:
                            hub.step_market()
                            steps += 1
                            await asyncio.sleep(0)
                        slices.append(dict(s=time.perf_counter() - s0, events=hub.perf.events_total - ev0,
                                           steps=steps, clients=len(hub.subscribers),
                                           dropped=int(hub.stats["clients_dropped"])))
                    return self.finish(json.dumps(slices))
                self.finish(json.dumps(dict(clients=len(hub.subscribers), dropped=int(hub.stats["clients_dropped"]),
                                            pid=os.getpid())))

        app = make_app(hub, log_function=log_function)
        app.add_handlers(".*$", [(r"/echo", Echo), (r"/bench/(\w+)", Control)])
        if fsync != "none":
            # the same server without a journal, under /nojournal: the journal's cost measured in this process
            from tornado.ioloop import IOLoop

            from lob.server.handlers import routes

            bare = Hub(BotMarket(seed=1), Accounts({TOKEN: "bench"}, path=False), write_rate=0, read_rate=0)
            for _ in range(20):
                bare.market.step()
            bare.use_loop(IOLoop.current())
            app.add_handlers(".*$", routes(bare, "/nojournal"))
        app.listen(port, address="127.0.0.1", backlog=4096)
        tune_gc()                       # as `lob serve` does
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# --------------------------------------------------------------------------------------------------
# load generators (each in its own process; plain sockets and epoll, no asyncio)
# --------------------------------------------------------------------------------------------------
def _requests(path: str, auth: bool) -> list[bytes]:
    # buys and sells at one price cross each other, so the book stays small
    out = []
    for side in ("buy", "sell"):
        body = json.dumps({"symbol": "AAPL", "side": side, "qty": 1, "price": 190.0}).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n" + (f"Authorization: Bearer {TOKEN}\r\n" if auth else "") + "\r\n")
        out.append(head.encode() + body)
    return out


def _take_response(buf: bytearray) -> int | None:
    """Status of the first whole HTTP response in buf (removed from it), or None if incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    i = buf.find(b"Content-Length: ", 0, end)
    n = int(buf[i + 16:buf.index(b"\r\n", i)]) if i >= 0 else 0
    if len(buf) < end + 4 + n:
        return None
    status = int(buf[9:12])
    del buf[:end + 4 + n]
    return status


def _reply(sock: socket.socket, buf: bytearray) -> int | None:
    """Read what the socket has; the status of the reply it completes (None: not yet)."""
    data = sock.recv(65536)
    if not data:
        raise ConnectionError("server closed a connection")
    buf += data
    return _take_response(buf)


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    return s


def load_closed(port: int, path: str, conc: int, total: int, auth: bool) -> dict:
    """Closed loop: ``conc`` connections, each sends its next request when the previous reply is in."""
    reqs = _requests(path, auth)
    socks = [_connect(port) for _ in range(conc)]
    ep = select.epoll()
    by_fd = {s.fileno(): k for k, s in enumerate(socks)}
    for s in socks:
        ep.register(s.fileno(), select.EPOLLIN)
    bufs = [bytearray() for _ in socks]
    sent_at = [0] * conc
    left = [total // conc] * conc
    lat, bad = [], 0
    t0 = time.perf_counter()
    for k, s in enumerate(socks):
        sent_at[k] = time.perf_counter_ns()
        s.send(reqs[k % 2])
        left[k] -= 1
    active = conc
    while active:
        for fd, _ in ep.poll():
            k = by_fd[fd]
            status = _reply(socks[k], bufs[k])
            if status is None:
                continue
            lat.append(time.perf_counter_ns() - sent_at[k])
            bad += status not in (200, 201)
            if left[k]:
                left[k] -= 1
                sent_at[k] = time.perf_counter_ns()
                socks[k].send(reqs[(k + left[k]) % 2])
            else:
                active -= 1
    dt = time.perf_counter() - t0
    for s in socks:
        s.close()
    return dict(lat_ns=lat, seconds=dt, bad=bad)


def load_paced(port: int, path: str, rate: float, seconds: float, auth: bool, conns: int = 16) -> dict:
    """Open loop: request i is due at t0 + i/rate whatever the replies (a free connection of ``conns`` sends it)."""
    reqs = _requests(path, auth)
    socks = [_connect(port) for _ in range(conns)]
    by_fd = {s.fileno(): k for k, s in enumerate(socks)}
    fds = list(by_fd)
    bufs = [bytearray() for _ in socks]
    free = list(range(conns))
    due_at, sent_at = [0] * conns, [0] * conns
    n_total = int(rate * seconds)
    period = 1e9 / rate
    lat_sent, lat_due, late, bad = [], [], [], 0
    t0 = time.perf_counter_ns() + 50_000_000
    i = done = 0
    while done < n_total:
        now = time.perf_counter_ns()
        while i < n_total and free and now >= t0 + i * period:
            k = free.pop()
            due_at[k] = int(t0 + i * period)
            sent_at[k] = time.perf_counter_ns()
            late.append(sent_at[k] - due_at[k])
            socks[k].send(reqs[i % 2])
            i += 1
            now = time.perf_counter_ns()
        wait = (t0 + i * period - now) / 1e9 if i < n_total and free else 0.05
        # select, not epoll: epoll's timeout is rounded up to whole milliseconds, select's is in microseconds
        for fd in select.select(fds, [], [], max(0.0, wait))[0]:
            k = by_fd[fd]
            status = _reply(socks[k], bufs[k])
            if status is None:
                continue
            t = time.perf_counter_ns()
            lat_sent.append(t - sent_at[k])
            lat_due.append(t - due_at[k])
            bad += status not in (200, 201)
            done += 1
            free.append(k)
    for s in socks:
        s.close()
    return dict(lat_sent_ns=lat_sent, lat_due_ns=lat_due, late_ns=late, bad=bad)


def _ws_handshake(port: int, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)           # byte by byte: nothing after the handshake may be consumed here
    assert head.startswith(b"HTTP/1.1 101"), head[:60]
    return s


def _ws_send(s: socket.socket, payload: bytes) -> None:
    mask = os.urandom(4)
    n = len(payload)
    hdr = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def _frames(buf: bytearray):
    """Yield the payloads of the whole frames at the front of buf (and remove them)."""
    pos, n_buf = 0, len(buf)
    while n_buf - pos >= 2:
        n, h = buf[pos + 1] & 0x7F, 2
        if n == 126:
            if n_buf - pos < 4:
                break
            n, h = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
        elif n == 127:
            if n_buf - pos < 10:
                break
            n, h = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
        if n_buf - pos < h + n:
            break
        yield buf[pos], bytes(buf[pos + h:pos + h + n])
        pos += h + n
    del buf[:pos]


def load_ws(port: int, n: int, first: int, subscribe_all: bool = False) -> None:
    """WebSocket readers: connect, subscribe, say ready; on "go T_A T_B" read until T_B, record lags in [T_A, T_B]."""
    socks = []
    for j in range(first, first + n):
        s = _ws_handshake(port)
        for sym in (SYMS if subscribe_all else [SYMS[j % 4]]):
            _ws_send(s, json.dumps({"op": "subscribe", "symbol": sym, "channels": ["level2", "trades"]}).encode())
        s.setblocking(False)
        socks.append(s)
    ep = select.epoll()
    by_fd = {s.fileno(): k for k, s in enumerate(socks)}
    for s in socks:
        ep.register(s.fileno(), select.EPOLLIN)
    bufs = [bytearray() for _ in socks]
    last_seq = [{} for _ in socks]
    lag_l2, lag_tr = [], []
    stats = dict(messages=0, bytes=0, gaps=0, closed=0)

    def pump(timeout, record):
        for fd, _ in ep.poll(timeout):
            k = by_fd[fd]
            try:
                data = socks[k].recv(1 << 20)
            except ConnectionError:
                data = b""
            if not data:
                ep.unregister(fd)
                stats["closed"] += 1
                continue
            now = time.time_ns()
            stats["bytes"] += len(data) if record else 0
            bufs[k] += data
            for op, payload in _frames(bufs[k]):
                if op & 0x0F != 1:
                    continue
                if record:
                    stats["messages"] += 1
                if payload.startswith(b'{"type":"level2_update"'):
                    m = json.loads(payload)
                    prev = last_seq[k].get(m["symbol"])
                    if not m.get("snapshot") and prev is not None and m["prev_seq"] != prev:
                        stats["gaps"] += 1
                    last_seq[k][m["symbol"]] = m["seq"]
                    if record and not m.get("snapshot"):
                        lag_l2.append(now - m["ts_ns"])
                elif record and payload.startswith(b'{"type":"trade"'):
                    i = payload.rindex(b'"ts_ns":') + 8
                    j = i
                    while payload[j] in b"0123456789":
                        j += 1
                    lag_tr.append(now - int(payload[i:j]))

    t_end = time.time() + 3.0
    while time.time() < t_end and any(len(d) < 1 for d in last_seq):      # every snapshot in
        pump(0.05, False)
    print("ready", flush=True)
    _, t_a, t_b = sys.stdin.readline().split()
    t_a, t_b = float(t_a), float(t_b)
    while time.time() < t_a:
        pump(0.05, False)
    while time.time() < t_b:
        pump(0.05, True)
    print(json.dumps(dict(lag_l2_ns=lag_l2, lag_trade_ns=lag_tr, **stats)), flush=True)
    for s in socks:
        s.close()


# --------------------------------------------------------------------------------------------------
# orchestration
# --------------------------------------------------------------------------------------------------
def _pct(a, ps=(50, 99, 99.9), scale=1e3, unit="us") -> dict:
    import numpy as np

    a = np.asarray(a, dtype=np.float64) / scale
    if not len(a):
        return dict(n=0)
    out = {f"p{str(p).replace('.', '')}_{unit}": round(float(np.percentile(a, p)), 1) for p in ps}
    out["max_" + unit] = round(float(a.max()), 1)
    out["n"] = int(len(a))
    return out


def _spawn(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, preexec_fn=_raise_nofile)


def _raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))


def _run(*args) -> dict:
    p = _spawn(*args)
    out, _ = p.communicate(timeout=600)
    if p.returncode:
        raise RuntimeError(f"load generator {args} failed")
    return json.loads(out.strip().splitlines()[-1])


def _post(port: int, path: str) -> dict:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n".encode())
    buf = bytearray()
    while True:
        buf += s.recv(65536)
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0 and _take_response(bytearray(buf)) is not None:
            break
    s.close()
    return json.loads(bytes(buf[head_end + 4:]))


def bench_rest(port: int, server, total: int, rounds: int) -> dict:
    import numpy as np

    out = {}
    for c in (1, 16, 64):
        runs = {"lob": [], "echo": []}
        for r in range(rounds):
            for name in (("lob", "echo") if r % 2 == 0 else ("echo", "lob")):
                path = "/api/orders" if name == "lob" else "/echo"
                cpu0 = sum(server.cpu_times()[:2])
                res = _run("--load", "closed", port, path, c, total, int(name == "lob"))
                cpu = sum(server.cpu_times()[:2]) - cpu0
                n = len(res["lat_ns"])
                runs[name].append(dict(rps=n / res["seconds"], cpu_us_per_req=cpu / n * 1e6, lat=res["lat_ns"],
                                       bad=res["bad"]))
        level = {}
        for name, rs in runs.items():
            lat = np.concatenate([r["lat"] for r in rs])
            level[name] = dict(rps=round(float(np.median([r["rps"] for r in rs])), 1),
                               cpu_us_per_req=round(float(np.median([r["cpu_us_per_req"] for r in rs])), 1),
                               **{k: v for k, v in _pct(lat, (50, 99)).items() if k != "max_us"},
                               errors=sum(r["bad"] for r in rs))
        for name, rs in runs.items():
            level[name]["rps_best"] = round(max(r["rps"] for r in rs), 1)
        ratios = [a["rps"] / b["rps"] for a, b in zip(runs["lob"], runs["echo"])]
        # best of the rounds on each side (as timeit's minimum: the run least disturbed by other work on the
        # machine), next to the median of the per-round ratios
        level["rps_ratio"] = round(level["lob"]["rps_best"] / level["echo"]["rps_best"], 3)
        level["rps_ratio_median_of_rounds"] = round(float(np.median(ratios)), 3)
        level["rps_ratio_rounds"] = [round(x, 3) for x in ratios]
        level["cpu_ratio"] = round(level["echo"]["cpu_us_per_req"] / level["lob"]["cpu_us_per_req"], 3)
        out[f"c{c}"] = level
    out["goal_rps_ratio_0_6_met"] = all(out[f"c{c}"]["rps_ratio"] >= 0.6 for c in (1, 16, 64))
    return out


def bench_journal(port: int, server, total: int, rounds: int, conc: int = 16) -> dict:
    """REST submits to the journaled hub and to the same hub without a journal (``/nojournal``), alternating
    rounds in one server process: the journal's cost as a ratio, the machine's noise shared by both."""
    import numpy as np

    runs = {"journal": [], "none": []}
    for r in range(rounds):
        for name in (("journal", "none") if r % 2 == 0 else ("none", "journal")):
            path = "/api/orders" if name == "journal" else "/nojournal/api/orders"
            cpu0 = sum(server.cpu_times()[:2])
            res = _run("--load", "closed", port, path, conc, total, 1)
            cpu = sum(server.cpu_times()[:2]) - cpu0
            n = len(res["lat_ns"])
            runs[name].append(dict(rps=n / res["seconds"], cpu_us=cpu / n * 1e6, bad=res["bad"]))
    med = {k: dict(rps=round(float(np.median([x["rps"] for x in v])), 1),
                   cpu_us_per_req=round(float(np.median([x["cpu_us"] for x in v])), 1),
                   errors=sum(x["bad"] for x in v)) for k, v in runs.items()}
    return dict(concurrency=conc, rounds=rounds, **med,
                rps_ratio_journal_vs_none=round(med["journal"]["rps"] / med["none"]["rps"], 3),
                rps_ratio_rounds=[round(a["rps"] / b["rps"], 3) for a, b in zip(runs["journal"], runs["none"])],
                cpu_ratio_none_vs_journal=round(med["none"]["cpu_us_per_req"] / med["journal"]["cpu_us_per_req"], 3))


def bench_paced(port: int, rate: float, seconds: float, rounds: int = 1, journaled: bool = True) -> dict:
    """Paced submits in ``rounds`` alternating rounds of: the journaled hub (market idle), the same process's hub
    without a journal (``/nojournal``, market idle: the journal's share of the tail in one process), the echo,
    and the journaled hub with the market at 10 Hz. Latencies are pooled over the rounds; ``p99_us_rounds`` has
    each round's p99 from the send; ``server_handler`` is the time inside the server (headers parsed to
    ``finish()``), so that what the client sees beyond it is the time outside any handler (the loop, the
    kernel, the machine)."""
    import numpy as np

    runs = ["lob_idle_market"] + (["lob_nojournal_idle_market"] if journaled else []) + ["echo", "lob_market_10hz"]
    path = {"lob_idle_market": "/api/orders", "lob_nojournal_idle_market": "/nojournal/api/orders", "echo": "/echo",
            "lob_market_10hz": "/api/orders"}
    raw = {name: dict(sent=[], due=[], late=[], bad=0, p99=[], handler=[]) for name in runs}
    for r in range(rounds):
        for name in (runs if r % 2 == 0 else runs[::-1]):
            # each run starts from the book without the one-lot orders earlier phases left resting at 190.00
            _post(port, "/bench/flatten")
            if name == "lob_market_10hz":
                _post(port, "/bench/start")
            _post(port, "/bench/times")
            try:
                res = _run("--load", "paced", port, path[name], rate, seconds, int(name != "echo"))
            finally:
                if name == "lob_market_10hz":
                    _post(port, "/bench/stop")
            times = _post(port, "/bench/times").get(path[name], {})
            x = raw[name]
            x["sent"] += res["lat_sent_ns"]
            x["due"] += res["lat_due_ns"]
            x["late"] += res["late_ns"]
            x["bad"] += res["bad"]
            x["p99"].append(_pct(res["lat_sent_ns"])["p99_us"])
            x["handler"].append(times)
    out = dict(rate=rate, seconds=seconds, rounds=rounds)
    for name, x in raw.items():
        out[name] = dict(from_send=_pct(x["sent"]), from_schedule=_pct(x["due"]), send_late=_pct(x["late"], (50, 99)),
                         p99_us_rounds=x["p99"], p99_us_median_of_rounds=round(float(np.median(x["p99"])), 1),
                         server_handler=dict(p50_us=round(float(np.median([h["p50_us"] for h in x["handler"]])), 1),
                                             p99_us=round(float(np.median([h["p99_us"] for h in x["handler"]])), 1))
                         if all(x["handler"]) else None, errors=x["bad"])
    out["goal_p99_under_1ms_met"] = dict(
        idle_market=out["lob_idle_market"]["from_send"]["p99_us"] < 1000,
        market_10hz=out["lob_market_10hz"]["from_send"]["p99_us"] < 1000)
    return out


def fsync_probe(rounds: int = 3, n: int = 1500, period: float = 0.002) -> dict:
    """What an fsync cadence does to a server's tail, without a network: a thread that sleeps 2 ms (the event loop
    waiting in epoll) then submits one order, as a server paced at 500 requests/s; p99 of the wake-up delay (time
    beyond the 2 ms asleep: the GIL and the CPU given back) and of the submit. Modes, alternated: no journal;
    the journal under ``fsync="never"`` (records written, never fsynced); under ``"batch"`` (the library's default:
    a thread writes and fsyncs every 5 ms); the same with ``batch_ms=50`` (a tenth of the fsyncs, a ten times wider
    loss window: a control); ``batch_1s`` (written every 5 ms, fsynced every 1,000 ms:
    ``--fsync-ms 1000``, which tells the fsync's share from the group-commit thread's); and no journal while another *process* fsyncs a file of its
    own every 5 ms (``external_fsync``: the fsync's cost to the machine, no thread or GIL of this process involved).
    """
    import shutil
    import tempfile

    import numpy as np

    from lob.journal import Journal
    from lob.server.market import BotMarket

    market = BotMarket(seed=1)
    ex = market.exchange
    for _ in range(20):
        market.step()

    modes = ["none", "never", "batch", "batch_50ms", "batch_1s", "external_fsync"]
    res = {m: dict(wake_p99_us=[], submit_p99_us=[]) for m in modes}
    for r in range(rounds):
        for mode in (modes if r % 2 == 0 else modes[::-1]):
            folder, journal, other = tempfile.mkdtemp(prefix="lob-probe-"), None, None
            if mode in ("never", "batch", "batch_50ms", "batch_1s"):
                journal = ex.journal = Journal(ex, folder, fsync=mode[:5], batch_ms=50 if mode == "batch_50ms" else 5,
                                               fsync_ms=1000 if mode == "batch_1s" else None)
            elif mode == "external_fsync":
                other = _spawn("--load", "fsync", os.path.join(folder, "other"), 0.005)
                assert other.stdout.readline().strip() == "ready"
            wake, work = np.empty(n), np.empty(n)
            for i in range(n):
                t0 = time.perf_counter()
                time.sleep(period)
                t1 = time.perf_counter()
                ex.submit("AAPL", "buy" if i % 2 else "sell", 1, price=190.0, owner="probe")
                wake[i], work[i] = t1 - t0 - period, time.perf_counter() - t1
            if journal is not None:
                journal.close()
                ex.journal = None
            if other is not None:
                other.kill()
                other.wait()
            shutil.rmtree(folder, True)
            res[mode]["wake_p99_us"].append(round(float(np.percentile(wake, 99)) * 1e6, 1))
            res[mode]["submit_p99_us"].append(round(float(np.percentile(work, 99)) * 1e6, 1))
    for v in res.values():
        v["wake_p99_us_median"] = float(np.median(v["wake_p99_us"]))
    base = res["none"]["wake_p99_us_median"]
    return dict(rounds=rounds, requests=n, period_ms=period * 1e3, load_avg_1m=round(os.getloadavg()[0], 2), **res,
                wake_p99_ratio_vs_none={m: round(v["wake_p99_us_median"] / base, 2) for m, v in res.items()})


def _fsync_loop(path: str, period: float) -> None:
    """Another process's journal: append 300 bytes and fsync, every ``period`` seconds, until killed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    print("ready", flush=True)
    while True:
        time.sleep(period)
        os.write(fd, b"x" * 300)
        os.fsync(fd)


def _ws_clients(port: int, n_clients: int, procs: int) -> list[subprocess.Popen]:
    """WebSocket readers spread over processes, each subscribed to one symbol, all connected and ready."""
    per = [n_clients // procs + (k < n_clients % procs) for k in range(procs)]
    ps, first = [], 0
    for n in per:
        ps.append(_spawn("--load", "ws", port, n, first))
        first += n
    for p in ps:
        assert p.stdout.readline().strip() == "ready"
    return ps


def _go(ps: list[subprocess.Popen], t_a: float, t_b: float) -> None:
    """Tell readers to record what arrives between the times t_a and t_b (then report and exit)."""
    for p in ps:
        p.stdin.write(f"go {t_a} {t_b}\n")
        p.stdin.flush()


def bench_ws(port: int, n_clients: int, procs: int, seconds: float) -> dict:
    import numpy as np

    ps = _ws_clients(port, n_clients, procs)
    connected = _post(port, "/bench/stats")["clients"]
    t_a = time.time() + 1.0                 # warm-up
    _go(ps, t_a, t_a + seconds)
    _post(port, "/bench/start")
    res = [json.loads(p.communicate(timeout=seconds + 60)[0].strip().splitlines()[-1]) for p in ps]
    _post(port, "/bench/stop")
    stats = _post(port, "/bench/stats")
    l2 = np.concatenate([np.asarray(r["lag_l2_ns"], dtype=np.int64) for r in res])
    tr = np.concatenate([np.asarray(r["lag_trade_ns"], dtype=np.int64) for r in res])
    out = dict(clients=n_clients, client_processes=procs, connected=connected, seconds=seconds,
               messages_per_s=round(sum(r["messages"] for r in res) / seconds),
               mbytes_per_s=round(sum(r["bytes"] for r in res) / seconds / 1e6, 2),
               level2_lag_ms=_pct(l2, (50, 99, 99.9), 1e6, "ms"),
               trade_lag_from_match_ms=_pct(tr, (50, 99), 1e6, "ms"),
               seq_gaps=sum(r["gaps"] for r in res), closed_by_server=sum(r["closed"] for r in res),
               dropped=stats["dropped"])
    out["goal_p99_under_100ms_met"] = bool(len(l2)) and out["level2_lag_ms"]["p99_ms"] < 100
    time.sleep(0.5)
    return out


def bench_rest_with_ws(port: int, n_clients: int, procs: int, total: int) -> dict:
    """REST submits (closed loop, concurrency 16) while the WebSocket clients stream the symbol (market idle)."""
    import numpy as np

    alone = _run("--load", "closed", port, "/api/orders", 16, total, 1)
    ps = _ws_clients(port, n_clients, procs)
    t_a = time.time() + 0.3
    _go(ps, t_a, t_a + 3.0)
    time.sleep(0.3)
    both = _run("--load", "closed", port, "/api/orders", 16, total, 1)
    res = [json.loads(p.communicate(timeout=60)[0].strip().splitlines()[-1]) for p in ps]
    l2 = np.concatenate([np.asarray(r["lag_l2_ns"], dtype=np.int64) for r in res])
    rps = [len(r["lat_ns"]) / r["seconds"] for r in (alone, both)]
    time.sleep(0.5)
    return dict(clients=n_clients, symbol="AAPL", rps_without_ws=round(rps[0]), rps_with_ws=round(rps[1]),
                ratio=round(rps[1] / rps[0], 3), level2_lag_ms=_pct(l2, (50, 99), 1e6, "ms"),
                seq_gaps=sum(r["gaps"] for r in res))


def bench_stall(port: int, cycles: int = 3, seconds: float = 1.0) -> dict:
    """Cycles of: market back to back without a stalled client, then with one until it is dropped and after."""
    readers = _spawn("--load", "ws", port, 50, 0)
    assert readers.stdout.readline().strip() == "ready"
    _go([readers], time.time(), time.time() + cycles * 4 * seconds + 60)
    without, reading, stalled_in, dropped_after = [], [], [], []
    for _ in range(cycles):
        without += _post(port, f"/bench/spin?seconds={seconds}")
        # the same extra client, reading: what serving it costs, stalled or not
        extra = _spawn("--load", "ws", port, 1, 0, 1)
        assert extra.stdout.readline().strip() == "ready"
        _go([extra], time.time(), time.time() + 60)
        reading += _post(port, f"/bench/spin?seconds={seconds}")
        extra.kill()
        extra.wait()
        time.sleep(0.2)
        stalled = _ws_handshake(port, rcvbuf=4096)
        for sym in SYMS:
            _ws_send(stalled, json.dumps({"op": "subscribe", "symbol": sym}).encode())
        time.sleep(0.2)
        d0 = _post(port, "/bench/stats")["dropped"]
        slices = _post(port, f"/bench/spin?seconds={2 * seconds}")
        there = [x for x in slices if x["dropped"] == d0]        # slices that ended with the client still there
        stalled_in += there
        without += slices[len(there) + 1:]                       # after the slice in which it was dropped
        dropped_after.append(round(0.1 * (len(there) + 1), 1) if len(there) < len(slices) else None)
        stalled.close()
    readers.kill()
    readers.wait()

    def rate(sl):
        t = sum(x["s"] for x in sl)
        return round(sum(x["events"] for x in sl) / t) if t else None

    out = dict(readers=50, cycles=cycles, events_per_s_without=rate(without),
               events_per_s_with_extra_reading_client=rate(reading),
               events_per_s_with_stalled_client=rate(stalled_in),
               seconds_with_stalled_client=round(sum(x["s"] for x in stalled_in), 2),
               stalled_client_dropped_after_s=dropped_after)
    if out["events_per_s_with_stalled_client"]:
        out["ratio_stalled_vs_without"] = round(out["events_per_s_with_stalled_client"] /
                                                out["events_per_s_without"], 3)
        out["ratio_stalled_vs_reading"] = round(out["events_per_s_with_stalled_client"] /
                                                out["events_per_s_with_extra_reading_client"], 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    p.add_argument("--load", nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--requests", type=int, default=3000, help="requests per run (closed loop)")
    p.add_argument("--rounds", type=int, default=5, help="alternating lob/echo rounds per concurrency level (and of "
                   "the paced runs)")
    p.add_argument("--paced-rate", type=float, default=500.0)
    p.add_argument("--paced-seconds", type=float, default=6.0)
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--ws-procs", type=int, default=4, help="processes the WebSocket clients are spread over")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--only", default="rest,journal,paced,ws,rest_ws,stall",
                   help="comma-separated parts to run (also: fsync_probe, see fsync_probe())")
    p.add_argument("--fsync", default="batch", choices=("batch", "always", "never", "none"),
                   help="the server's journal policy (lob serve's default: batch; none: no journal)")
    args = p.parse_args()
    if args.serve:
        serve(args.serve, args.fsync)
        return
    if args.load:
        kind, a = args.load[0], args.load[1:]
        if kind == "closed":
            print(json.dumps(load_closed(int(a[0]), a[1], int(a[2]), int(a[3]), bool(int(a[4])))))
        elif kind == "paced":
            print(json.dumps(load_paced(int(a[0]), a[1], float(a[2]), float(a[3]), bool(int(a[4])))))
        elif kind == "fsync":
            _fsync_loop(a[0], float(a[1]))
        elif kind == "ws":
            load_ws(int(a[0]), int(a[1]), int(a[2]), len(a) > 3 and bool(int(a[3])))
        return
    import psutil

    _raise_nofile()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _spawn("--serve", port, "--fsync", args.fsync)
    parts = set(args.only.split(","))
    out = dict(benchmark="bench_server", cpus=os.cpu_count(), load_avg_1m=round(os.getloadavg()[0], 2),
               journal=args.fsync)
    try:
        assert proc.stdout.readline().strip() == "ready"
        server = psutil.Process(proc.pid)
        if "rest" in parts:
            out["rest"] = bench_rest(port, server, args.requests, args.rounds)
        if "journal" in parts and args.fsync != "none":
            out["journal_cost"] = bench_journal(port, server, args.requests, args.rounds)
        if "paced" in parts:
            out["paced"] = bench_paced(port, args.paced_rate, args.paced_seconds, args.rounds, args.fsync != "none")
        if "ws" in parts:
            out["websocket"] = bench_ws(port, args.clients, args.ws_procs, args.seconds)
        if "rest_ws" in parts:
            out["rest_with_ws"] = bench_rest_with_ws(port, args.clients, args.ws_procs, args.requests)
        if "stall" in parts:
            out["stall"] = bench_stall(port)
        if "fsync_probe" in parts:
            out["fsync_probe"] = fsync_probe(args.rounds)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
