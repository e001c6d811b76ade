"""Core engine benchmark: lob against the C yardstick and plain-Python engines, in the same process.

Workloads are the shared streams in ``../shared/bench`` (same bytes for everyone), events 1 us apart in event
time (stream_1m spans 1 s, so market data records ten 100 ms snapshots):

* ``batch_1m``: ``Exchange.apply`` on stream_1m.npy (1M events, one shallow book), with the default market
  data on and with ``marketdata=False``, against the yardstick's one ``nogil`` call over the same columns;
* ``percall_1m``: a Python loop calling ``ex.submit`` / ``ex.cancel`` once per event of stream_1m as a user
  writes it (caller-supplied ids, string sides, float prices), against the same loop over the yardstick's
  per-call methods; latency percentiles per call (timer included) for both;
* ``batch_deep``: ``Exchange.apply`` on stream_deep_4sym.npy (2M events, 4 deep and wide books) against the
  yardstick's MultiEngine;
* memory per resting order on the deep stream, market data included;
* book reads used in loops (best, one level, one order's fields) against a plain method call.

lob's time is reported as a multiple of the yardstick's (``x_yardstick``; the goals: 1.5 batch, 3 per call);
the plain-Python engines (a conventional one and ``../shared/bench/baseline_py.py``) are reported as speedups.
The yardstick (``../shared/bench/yardstick``) is built on first use into ``$LOB_BENCH_BUILD`` (default: a
folder in the system temp dir). Configurations are interleaved, best of ``--repeat``, so that the machine's
load hits them alike. Run: ``python benchmarks/bench_core.py [--quick]``; prints one JSON document.
"""
from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from sortedcontainers import SortedDict

import lob
from lob.testing.streams import bench_events

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "bench")


@dataclass(slots=True)
class Order:
    order_id: int
    side: int
    price: int
    qty: int


@dataclass(slots=True)
class Fill:
    price: int
    qty: int
    maker_order_id: int
    taker_order_id: int


class PlainBook:
    """The plain-Python baseline engine, written the conventional way (the shape ../shared/bench/README.md
    measured): order objects, a SortedDict of price -> deque of orders per side, a dict of id -> order,
    and a Fill record per trade. Price-time priority, trades at the maker's price, market orders never rest.
    """

    def __init__(self):
        self.bids = SortedDict()    # price -> deque[Order]; best = highest
        self.asks = SortedDict()    # price -> deque[Order]; best = lowest
        self.orders = {}
        self.fills = []

    def _match(self, side, price, qty, taker_id):
        book = self.asks if side == 0 else self.bids
        while qty > 0 and book:
            level_price = book.keys()[0] if side == 0 else book.keys()[-1]
            if price is not None and (level_price > price if side == 0 else level_price < price):
                break
            queue = book[level_price]
            while qty > 0 and queue:
                maker = queue[0]
                take = min(qty, maker.qty)
                self.fills.append(Fill(level_price, take, maker.order_id, taker_id))
                maker.qty -= take
                qty -= take
                if maker.qty == 0:
                    queue.popleft()
                    del self.orders[maker.order_id]
            if not queue:
                del book[level_price]
        return qty

    def limit(self, order_id, side, price, qty):
        qty = self._match(side, price, qty, order_id)
        if qty > 0:
            order = Order(order_id, side, price, qty)
            book = self.bids if side == 0 else self.asks
            if price not in book:
                book[price] = deque()
            book[price].append(order)
            self.orders[order_id] = order

    def market(self, order_id, side, qty):
        self._match(side, None, qty, order_id)

    def cancel(self, order_id):
        order = self.orders.pop(order_id, None)
        if order is None:
            return
        book = self.bids if order.side == 0 else self.asks
        queue = book[order.price]
        queue.remove(order)
        if not queue:
            del book[order.price]


class LeanBook:
    """A leaner plain-Python engine (lists, no objects, no fill records): reported for transparency."""

    def __init__(self):
        self.sides = (SortedDict(), SortedDict())   # bids keyed by -price, asks by price
        self.orders = {}                              # id -> [qty, side, key]
        self.n_fills = 0
        self.volume = 0

    def add(self, oid, side, price, qty, market=False):
        opp = self.sides[1 - side]
        while qty and opp:
            key, q = opp.peekitem(0)
            level_price = key if side == 0 else -key
            if not market and ((side == 0 and level_price > price) or (side == 1 and level_price < price)):
                break
            while qty and q:
                maker = q[0]
                o = self.orders[maker]
                take = min(qty, o[0])
                o[0] -= take
                qty -= take
                self.n_fills += 1
                self.volume += take
                if o[0] == 0:
                    q.popleft()
                    del self.orders[maker]
            if not q:
                del opp[key]
        if qty and not market:
            key = -price if side == 0 else price
            level = self.sides[side].get(key)
            if level is None:
                level = self.sides[side][key] = deque()
            level.append(oid)
            self.orders[oid] = [qty, side, key]

    def cancel(self, oid):
        o = self.orders.pop(oid, None)
        if o is None:
            return
        level = self.sides[o[1]][o[2]]
        level.remove(oid)
        if not level:
            del self.sides[o[1]][o[2]]


def load_stream(name):
    path = os.path.join(SHARED, name)
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: the shared benchmark workloads live in ../shared/bench beside the clone")
    return np.load(path)


to_events = bench_events


def run_plain(a, n=None):
    """The conventional baseline, fed one event at a time from the structured array."""
    n = len(a) if n is None else n
    nsym = int(a["symbol"].max()) + 1 if "symbol" in a.dtype.names else 1
    books = [PlainBook() for _ in range(nsym)]
    has_sym = nsym > 1
    t = time.perf_counter()
    for ev in a[:n]:
        book = books[ev["symbol"]] if has_sym else books[0]
        kind = ev["kind"]
        if kind == 0:
            book.limit(int(ev["order_id"]), int(ev["side"]), int(ev["price_ticks"]), int(ev["qty"]))
        elif kind == 1:
            book.cancel(int(ev["order_id"]))
        else:
            book.market(int(ev["order_id"]), int(ev["side"]), int(ev["qty"]))
    dt = time.perf_counter() - t
    return dt, sum(len(b.fills) for b in books), sum(f.qty for b in books for f in b.fills)


def run_lean(a, n=None):
    n = len(a) if n is None else n
    nsym = int(a["symbol"].max()) + 1 if "symbol" in a.dtype.names else 1
    books = [LeanBook() for _ in range(nsym)]
    sym = a["symbol"].tolist()[:n] if nsym > 1 else [0] * n
    kind, side, price, qty, oid = (a[f][:n].tolist() for f in ("kind", "side", "price_ticks", "qty", "order_id"))
    t = time.perf_counter()
    for i in range(n):
        b = books[sym[i]]
        k = kind[i]
        if k == 0:
            b.add(oid[i], side[i], price[i], qty[i])
        elif k == 1:
            b.cancel(oid[i])
        else:
            b.add(oid[i], side[i], 0, qty[i], market=True)
    dt = time.perf_counter() - t
    return dt, sum(b.n_fills for b in books), sum(b.volume for b in books)


def best_of(fn, repeat):
    best = None
    for _ in range(repeat):
        r = fn()
        if best is None or r[0] < best[0]:
            best = r
    return best


def events_of(a):
    """The shared stream as EVENT_DTYPE, 1 us apart in event time."""
    ev = to_events(a)
    ev["ts_ns"] *= 1_000
    return ev


def yardstick():
    """The C yardstick's ``lobc_py`` module (built on first use)."""
    build = os.environ.get("LOB_BENCH_BUILD", os.path.join(tempfile.gettempdir(), "lob-bench-build"))
    if build not in sys.path:
        sys.path.insert(0, build)
    try:
        return importlib.import_module("lobc_py")
    except ImportError:
        script = os.path.join(SHARED, "yardstick", "build.py")
        if not os.path.exists(script):
            sys.exit(f"{script} is missing: the C yardstick lives in ../shared/bench/yardstick beside the clone")
        subprocess.check_call([sys.executable, script], env=dict(os.environ, LOB_BENCH_BUILD=build),
                              stdout=subprocess.DEVNULL)
        importlib.invalidate_caches()
        return importlib.import_module("lobc_py")


def _columns(a):
    return [np.ascontiguousarray(a[f]) for f in ("kind", "side", "price_ticks", "qty", "order_id")]


def run_yardstick_batch(a):
    """The yardstick's one nogil call over the stream's columns: (seconds, fills, lots)."""
    lobc = yardstick()
    cols = _columns(a)
    if "symbol" in a.dtype.names:
        nsym = int(a["symbol"].max()) + 1
        e = lobc.MultiEngine(nsym)
        e.set_fill_sink(len(a))
        sym = np.ascontiguousarray(a["symbol"])
        t = time.perf_counter()
        e.run_batch(sym, *cols)
        dt = time.perf_counter() - t
    else:
        e = lobc.Engine()
        e.set_fill_sink(len(a))
        t = time.perf_counter()
        e.run_batch(*cols)
        dt = time.perf_counter() - t
    m, tk, p, q = e.fills()
    return dt, len(q), int(q.sum())


def _percall_columns(a, n):
    kind, side, price, qty, oid = (a[f][:n].tolist() for f in ("kind", "side", "price_ticks", "qty", "order_id"))
    return dict(kind=kind, side=side, price=price, qty=qty, oid=oid, prices=[p / 100 for p in price],
                sides=["buy" if s == 0 else "sell" for s in side], ts=[i * 1_000 for i in range(n)])


def yardstick_stepper(c):
    """``run(i, j)``: calls i..j-1 through the yardstick's per-call methods, from a Python loop shaped like
    lob's (returns seconds)."""
    e = yardstick().Engine()
    e.set_fill_sink(len(c["kind"]))
    limit, cancel, market = e.limit, e.cancel, e.market
    kind, side, price, qty, oid = c["kind"], c["side"], c["price"], c["qty"], c["oid"]

    def run(i0, i1):
        t = time.perf_counter()
        for i in range(i0, i1):
            k = kind[i]
            if k == 0:
                limit(oid[i], side[i], price[i], qty[i])
            elif k == 1:
                cancel(oid[i])
            else:
                market(oid[i], side[i], qty[i])
        return time.perf_counter() - t
    return run


def lob_stepper(c, marketdata=True):
    """``run(i, j)``: calls i..j-1 through ``ex.submit`` / ``ex.cancel`` as a user writes them (caller-supplied
    ids, string sides, float prices; returns seconds)."""
    ex = lob.Exchange(symbols=["X"], marketdata=marketdata)
    submit, cancel = ex.submit, ex.cancel
    kind, sides, prices, qty, oid, ts = c["kind"], c["sides"], c["prices"], c["qty"], c["oid"], c["ts"]

    def run(i0, i1):
        t = time.perf_counter()
        for i in range(i0, i1):
            k = kind[i]
            if k == 0:
                submit("X", sides[i], qty[i], price=prices[i], order_id=oid[i], ts_ns=ts[i])
            elif k == 1:
                cancel("X", oid[i], ts_ns=ts[i])
            else:
                submit("X", sides[i], qty[i], type="market", order_id=oid[i], ts_ns=ts[i])
        return time.perf_counter() - t
    run.exchange = ex
    return run


def run_yardstick_percall(a, n, latency=False):
    """The yardstick's per-call loop over the first ``n`` events: seconds (or per-call ns with ``latency``)."""
    c = _percall_columns(a, n)
    if not latency:
        return yardstick_stepper(c)(0, n)
    e = yardstick().Engine()
    e.set_fill_sink(n)
    limit, cancel, market = e.limit, e.cancel, e.market
    kind, side, price, qty, oid = c["kind"], c["side"], c["price"], c["qty"], c["oid"]
    clock = time.perf_counter_ns
    lat = np.empty(n, dtype=np.int64)
    for i in range(n):
        k = kind[i]
        t0 = clock()
        if k == 0:
            limit(oid[i], side[i], price[i], qty[i])
        elif k == 1:
            cancel(oid[i])
        else:
            market(oid[i], side[i], qty[i])
        lat[i] = clock() - t0
    return lat


def percall_interleaved(a, n, chunk=20_000):
    """The three per-call loops (yardstick, lob, lob without market data) over the same ``n`` calls, chunk by
    chunk in turn so that the machine's load falls on all of them alike: total seconds per loop and the
    median over chunks of lob's time / the yardstick's."""
    c = _percall_columns(a, n)
    runs = {"yardstick": yardstick_stepper(c), "lob": lob_stepper(c, True), "lob_no_md": lob_stepper(c, False)}
    tot = dict.fromkeys(runs, 0.0)
    ratios = {"lob": [], "lob_no_md": []}
    gc.collect()
    for i in range(0, n, chunk):
        dt = {name: run(i, min(n, i + chunk)) for name, run in runs.items()}
        for name in runs:
            tot[name] += dt[name]
        for name in ratios:
            ratios[name].append(dt[name] / dt["yardstick"])
    return tot, {k: float(np.median(v)) for k, v in ratios.items()}


def run_baseline_py(a, n=None):
    """``../shared/bench/baseline_py.py`` (the lean plain-Python engine) per event: (seconds, fills, lots)."""
    if SHARED not in sys.path:
        sys.path.insert(0, SHARED)
    import baseline_py

    n = len(a) if n is None else n
    nsym = int(a["symbol"].max()) + 1 if "symbol" in a.dtype.names else 1
    engines = [baseline_py.NaiveEngine() for _ in range(nsym)]
    cols = [a[f][:n].tolist() for f in ("kind", "side", "price_ticks", "qty", "order_id")]
    sym = a["symbol"][:n].tolist() if nsym > 1 else [0] * n
    t = time.perf_counter()
    for s, kind, side, px, qty, oid in zip(sym, *cols):
        e = engines[s]
        if kind == 0:
            e.limit(oid, side, px, qty)
        elif kind == 1:
            e.cancel(oid)
        else:
            e.market(oid, side, qty)
    dt = time.perf_counter() - t
    return dt, sum(e.n_fills for e in engines), sum(e.fill_volume for e in engines)


def bench_batch(a, symbols, repeat, marketdata=False):
    """Best of ``repeat`` applies of the whole stream on a fresh exchange: (seconds, fills, lots, exchange)."""
    ev = events_of(a)

    def once():
        ex = lob.Exchange(symbols=symbols, marketdata=marketdata)
        gc.collect()
        t = time.perf_counter()
        reports, fills = ex.apply(ev)
        return time.perf_counter() - t, len(fills), int(fills["qty_lots"].sum()), ex

    return best_of(once, repeat)


def percall_loop(a, n, marketdata=True, latency=False):
    """The per-call loop as a user writes it: seconds for ``n`` calls (or per-call ns with ``latency``)."""
    c = _percall_columns(a, n)
    if not latency:
        gc.collect()
        return lob_stepper(c, marketdata)(0, n)
    kind, sides, prices, qty, oid, ts = c["kind"], c["sides"], c["prices"], c["qty"], c["oid"], c["ts"]
    ex = lob.Exchange(symbols=["X"], marketdata=marketdata)
    submit, cancel = ex.submit, ex.cancel
    gc.collect()
    clock = time.perf_counter_ns
    lat = np.empty(n, dtype=np.int64)
    for i in range(n):
        k = kind[i]
        t0 = clock()
        if k == 0:
            submit("X", sides[i], qty[i], price=prices[i], order_id=oid[i], ts_ns=ts[i])
        elif k == 1:
            cancel("X", oid[i], ts_ns=ts[i])
        else:
            submit("X", sides[i], qty[i], type="market", order_id=oid[i], ts_ns=ts[i])
        lat[i] = clock() - t0
    return lat


def bench_percall(a, n, marketdata=True):
    """(seconds for ``n`` calls, per-call latencies in ns of a second pass)."""
    return percall_loop(a, n, marketdata), percall_loop(a, n, marketdata, latency=True)


def _pct(lat):
    return {"p50": int(np.percentile(lat, 50)), "p99": int(np.percentile(lat, 99)),
            "p999": int(np.percentile(lat, 99.9)), "max": int(lat.max())}


def _interleaved(runs, repeat):
    """Best time of each named run, the runs interleaved ``repeat`` times."""
    best = {}
    for _ in range(repeat):
        for name, fn in runs.items():
            r = fn()
            if name not in best or r[0] < best[name][0]:
                best[name] = r
    return best


def bench_batch_vs_yardstick(a, symbols, repeat, facts):
    ev = events_of(a)
    n = len(a)

    def lob_run(md):
        def once():
            ex = lob.Exchange(symbols=symbols, marketdata=md)
            gc.collect()
            t = time.perf_counter()
            _, fills = ex.apply(ev)
            return time.perf_counter() - t, len(fills), int(fills["qty_lots"].sum()), ex
        return once

    best = _interleaved({"yardstick": lambda: run_yardstick_batch(a), "lob": lob_run(True),
                         "lob_no_md": lob_run(False)}, repeat)
    for name, r in best.items():
        assert tuple(r[1:3]) == facts, (name, r[1:3], facts)
    ys = best["yardstick"][0]
    out = {"events": n, "fills": facts[0], "lots": facts[1],
           "lob_ns_per_event": best["lob"][0] / n * 1e9,
           "lob_no_md_ns_per_event": best["lob_no_md"][0] / n * 1e9,
           "yardstick_ns_per_event": ys / n * 1e9,
           "x_yardstick": best["lob"][0] / ys, "x_yardstick_no_md": best["lob_no_md"][0] / ys, "goal_x": 1.5}
    return out, best["lob"][3]


def bench_reads(n=200_000):
    """ns per call of book reads used in loops, against a plain bound-method call doing nothing."""
    ex = lob.Exchange(symbols=["X"])
    for i in range(200):
        ex.submit("X", "buy" if i % 2 else "sell", 10, price=(9900 + i) / 100 if i % 2 else (10100 + i) / 100,
                  order_id=i + 1, ts_ns=i)
    book = ex.book("X")

    class Noop:
        def f(self, x):
            return None

    noop = Noop().f
    calls = {"noop_method": lambda: noop(1), "best_bid": book.best_bid, "level": lambda: book.level(99.99),
             "order": lambda: book.order(101), "order_price": lambda: book.order(101).price,
             "queue_position": lambda: book.queue_position(101)}
    out = {}
    for name, fn in calls.items():
        fn()
        best = None
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        out[name + "_ns"] = best / n * 1e9
    out["x_noop"] = {k[:-3]: v / out["noop_method_ns"] for k, v in out.items() if k != "noop_method_ns"}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats and a shorter per-call run")
    p.add_argument("--percall-n", type=int, default=None)
    p.add_argument("--repeat", type=int, default=None)
    args = p.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    percall_n = args.percall_n or (200_000 if args.quick else 1_000_000)
    load = os.getloadavg()
    out = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "loadavg_start": load}}

    a = load_stream("stream_1m.npy")
    n = len(a)
    facts_1m = (397_799, 99_960_438)
    out["batch_1m"], _ = bench_batch_vs_yardstick(a, ["X"], repeat, facts_1m)
    base_dt, base_fills, base_vol = run_baseline_py(a)
    assert (base_fills, base_vol) == facts_1m
    out["batch_1m"]["lean_python_ns_per_event"] = base_dt / n * 1e9
    out["batch_1m"]["speedup_vs_lean_python"] = base_dt / (out["batch_1m"]["lob_ns_per_event"] * n / 1e9)

    best, med = None, None
    for _ in range(max(1, repeat - 1)):
        tot, m = percall_interleaved(a, percall_n)
        if best is None or tot["lob"] / tot["yardstick"] < best["lob"] / best["yardstick"]:
            best, med = tot, m
    ys = best["yardstick"]
    lat_lob = percall_loop(a, percall_n, True, latency=True)
    lat_ys = run_yardstick_percall(a, percall_n, latency=True)
    out["percall_1m"] = {
        "calls": percall_n, "lob_ns_per_call": best["lob"] / percall_n * 1e9,
        "lob_no_md_ns_per_call": best["lob_no_md"] / percall_n * 1e9,
        "yardstick_ns_per_call": ys / percall_n * 1e9,
        "x_yardstick": best["lob"] / ys, "x_yardstick_no_md": best["lob_no_md"] / ys, "goal_x": 3,
        "x_yardstick_median_of_chunks": med["lob"], "x_yardstick_no_md_median_of_chunks": med["lob_no_md"],
        "lean_python_ns_per_call": base_dt / n * 1e9,
        "latency_ns": {"lob": _pct(lat_lob), "yardstick": _pct(lat_ys)},
        "p99_x_yardstick": float(np.percentile(lat_lob, 99) / np.percentile(lat_ys, 99)),
    }

    d = load_stream("stream_deep_4sym.npy")
    facts_deep = (642_282, 263_685_360)
    out["batch_deep"], dex = bench_batch_vs_yardstick(d, ["S0", "S1", "S2", "S3"], repeat, facts_deep)

    stats = [dex.book(i).stats() for i in range(4)]
    resting = sum(s["resting_orders"] for s in stats)
    allocated = sum(s["bytes_allocated"] for s in stats)
    pool_cap = sum(s["pool_capacity"] for s in stats)
    md = dex.marketdata.memory()
    out["memory"] = {
        "sizeof_order": lob._core.SIZEOF_ORDER,
        "bytes_per_order_structural": lob._core.SIZEOF_ORDER + 8 / 0.75,
        "resting_orders_end": resting,
        "pool_capacity": pool_cap,
        "bytes_allocated_books": allocated,
        "bytes_per_pool_slot": allocated / pool_cap,
        "bytes_per_resting_order_end": allocated / resting,
        "goal_bytes": 100,
        # the market-data caches are bounded rings (their bounds do not grow with the resting orders)
        "marketdata_bytes": {k: v for k, v in md.items() if k != "symbols"},
    }
    out["book_reads"] = bench_reads()
    out["machine"]["loadavg_end"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
