"""Core engine benchmark: lob against a plain-Python engine run in the same process.

Workloads are the shared streams in ``../shared/bench`` (same bytes for everyone):

* ``batch_1m``: ``Exchange.apply`` on stream_1m.npy (1M events, one shallow book);
* ``percall_1m``: a Python loop calling ``ex.submit`` / ``ex.cancel`` once per event of stream_1m
  (the first ``--percall-n`` events), with per-call latency percentiles;
* ``batch_deep``: ``Exchange.apply`` on stream_deep_4sym.npy (2M events, 4 deep and wide books);
* memory per resting order on the deep stream.

The baseline is a plain-Python engine (sortedcontainers SortedDict of price -> deque, dict of id -> order),
called per event, exactly as ../shared/bench/README.md describes. Results are ratios (baseline time / lob
time), printed as one JSON document. Run: ``python benchmarks/bench_core.py [--quick]``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
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


def bench_batch(a, symbols, repeat):
    ev = to_events(a)

    def once():
        ex = lob.Exchange(symbols=symbols, marketdata=False)
        t = time.perf_counter()
        reports, fills = ex.apply(ev)
        return time.perf_counter() - t, len(fills), int(fills["qty_lots"].sum()), ex

    return best_of(once, repeat)


def bench_percall(a, n):
    kind, side, price, qty, oid = (a[f][:n].tolist() for f in ("kind", "side", "price_ticks", "qty", "order_id"))
    prices = [p / 100 for p in price]
    sides = ["buy" if s == 0 else "sell" for s in side]
    ex = lob.Exchange(symbols=["X"], marketdata=False)
    submit, cancel = ex.submit, ex.cancel
    t = time.perf_counter()
    for i in range(n):
        k = kind[i]
        if k == 0:
            submit("X", sides[i], qty[i], price=prices[i], order_id=oid[i], ts_ns=i)
        elif k == 1:
            cancel("X", oid[i], ts_ns=i)
        else:
            submit("X", sides[i], qty[i], type="market", order_id=oid[i], ts_ns=i)
    dt = time.perf_counter() - t
    # a second pass timing each call (the timer's own cost is included, so these are upper bounds)
    ex = lob.Exchange(symbols=["X"], marketdata=False)
    submit, cancel = ex.submit, ex.cancel
    clock = time.perf_counter_ns
    lat = np.empty(n, dtype=np.int64)
    for i in range(n):
        k = kind[i]
        t0 = clock()
        if k == 0:
            submit("X", sides[i], qty[i], price=prices[i], order_id=oid[i], ts_ns=i)
        elif k == 1:
            cancel("X", oid[i], ts_ns=i)
        else:
            submit("X", sides[i], qty[i], type="market", order_id=oid[i], ts_ns=i)
        lat[i] = clock() - t0
    return dt, lat


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats and a shorter per-call run")
    p.add_argument("--percall-n", type=int, default=None)
    args = p.parse_args(argv)
    repeat = 1 if args.quick else 3
    percall_n = args.percall_n or (200_000 if args.quick else 1_000_000)
    out = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}

    a = load_stream("stream_1m.npy")
    n = len(a)
    base_dt, base_fills, base_vol = best_of(lambda: run_plain(a), 1 if args.quick else 2)
    dt, fills, vol, ex = bench_batch(a, ["X"], repeat)
    assert (fills, vol) == (base_fills, base_vol) == (397_799, 99_960_438), (fills, vol, base_fills, base_vol)
    lean_dt, lean_fills, _ = run_lean(a)
    assert lean_fills == fills
    out["batch_1m"] = {"events": n, "lob_ns_per_event": dt / n * 1e9, "plain_ns_per_event": base_dt / n * 1e9,
                       "ratio": base_dt / dt, "goal_ratio": 30, "lean_plain_ns_per_event": lean_dt / n * 1e9,
                       "ratio_vs_lean": lean_dt / dt, "fills": fills, "lots": vol}

    pc_dt, lat = bench_percall(a, percall_n)
    base_pc = base_dt * percall_n / n
    out["percall_1m"] = {"calls": percall_n, "lob_ns_per_call": pc_dt / percall_n * 1e9,
                         "plain_ns_per_call": base_pc / percall_n * 1e9, "ratio": base_pc / pc_dt, "goal_ratio": 7,
                         "latency_ns": {"p50": int(np.percentile(lat, 50)), "p99": int(np.percentile(lat, 99)),
                                        "p999": int(np.percentile(lat, 99.9)), "max": int(lat.max())}}

    d = load_stream("stream_deep_4sym.npy")
    nd = len(d)
    dbase_dt, dfills, dvol = run_plain(d)
    ddt, fills, vol, dex = bench_batch(d, ["S0", "S1", "S2", "S3"], repeat)
    assert (fills, vol) == (dfills, dvol) == (642_282, 263_685_360), (fills, vol, dfills, dvol)
    out["batch_deep"] = {"events": nd, "lob_ns_per_event": ddt / nd * 1e9, "plain_ns_per_event": dbase_dt / nd * 1e9,
                         "ratio": dbase_dt / ddt, "goal_ratio": 20, "fills": fills, "lots": vol}

    stats = [dex.book(i).stats() for i in range(4)]
    resting = sum(s["resting_orders"] for s in stats)
    allocated = sum(s["bytes_allocated"] for s in stats)
    pool_cap = sum(s["pool_capacity"] for s in stats)
    out["memory"] = {
        "sizeof_order": lob._core.SIZEOF_ORDER,
        "bytes_per_order_structural": lob._core.SIZEOF_ORDER + 8 / 0.75,
        "resting_orders_end": resting,
        "pool_capacity": pool_cap,
        "bytes_allocated": allocated,
        "bytes_per_pool_slot": allocated / pool_cap,
        "bytes_per_resting_order_end": allocated / resting,
        "goal_bytes": 100,
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
