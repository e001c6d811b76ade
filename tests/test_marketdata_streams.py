"""Market data under mixed batch and per-call flow on several symbols, checked against the engine's own
outputs (the fills ``apply`` and ``submit`` return) and its books, never against the recorder itself."""
import numpy as np
import pytest
import pandas as pd

import lob
from lob.marketdata import BookBuilder, L2Feed

SYMBOLS = ["A", "B", "C"]


def _batch(rng, n, next_id, live, ts0):
    """Random multi-symbol events: limits around a mid, market orders, cancels and modifies of earlier ids."""
    ev = lob.empty_events(n)
    ev["ts_ns"] = ts0 + np.cumsum(rng.integers(1, 40_000_000, n))          # up to 40 ms apart
    ev["symbol"] = rng.integers(0, len(SYMBOLS), n)
    ev["side"] = rng.integers(0, 2, n)
    ev["qty_lots"] = rng.integers(1, 30, n)
    ev["owner"] = rng.integers(0, 4, n)
    ev["price_ticks"] = 1000 + rng.integers(-8, 9, n)
    kind = rng.choice(4, n, p=[0.62, 0.05, 0.25, 0.08])                   # limit, market, cancel, modify
    for i in range(n):
        if kind[i] in (2, 3) and live:
            sym, oid = live[int(rng.integers(len(live)))]
            ev["symbol"][i] = sym
            ev["order_id"][i] = oid
            ev["owner"][i] = 0
            if kind[i] == 2:
                ev["action"][i] = lob.Action.CANCEL
            else:
                ev["action"][i] = lob.Action.MODIFY
                ev["qty_lots"][i] = int(rng.integers(1, 40))
                ev["price_ticks"][i] = 1000 + int(rng.integers(-8, 9))
        else:
            ev["order_id"][i] = next_id
            live.append((int(ev["symbol"][i]), next_id))
            next_id += 1
            if kind[i] == 1:
                ev["type"][i] = lob.OrderType.MARKET
                ev["price_ticks"][i] = 0
    return ev, next_id


def _run(ex, seed=11, rounds=40, checkpoint=None):
    """Alternate batches of random size with per-call requests; return every fill the engine reported."""
    rng = np.random.default_rng(seed)
    fills, live, next_id, ts = [], [], 1, 0
    for k in range(rounds):
        ev, next_id = _batch(rng, int(rng.integers(1, 400)), next_id, live, ts)
        ts = int(ev["ts_ns"][-1])
        _, f = ex.apply(ev)
        fills.append(f)
        for _ in range(int(rng.integers(0, 30))):
            ts += int(rng.integers(1, 40_000_000))
            s = SYMBOLS[int(rng.integers(len(SYMBOLS)))]
            r = ex.submit(s, ("buy", "sell")[int(rng.integers(2))], int(rng.integers(1, 30)),
                          price=(1000 + int(rng.integers(-8, 9))) / 100, order_id=next_id, ts_ns=ts)
            live.append((ex.symbol_index(s), next_id))
            next_id += 1
            if r.trades:
                f = np.zeros(len(r.trades), dtype=lob.FILL_DTYPE)
                f["symbol"] = ex.symbol_index(s)
                f["seq"] = [t.seq for t in r.trades]
                f["ts_ns"] = [t.ts_ns for t in r.trades]
                f["price_ticks"] = [ex.to_ticks(s, t.price) for t in r.trades]
                f["qty_lots"] = [t.qty for t in r.trades]
                f["aggressor"] = [0 if t.aggressor == "buy" else 1 for t in r.trades]
                fills.append(f)
        if checkpoint is not None:
            checkpoint(k)
    return np.concatenate(fills)


def test_tape_bars_and_bbo_follow_the_engine_outputs():
    ex = lob.Exchange(symbols=SYMBOLS, marketdata={"tape_size": 25})
    fills = _run(ex)
    assert len(fills) > 500
    for i, s in enumerate(SYMBOLS):
        mine = fills[fills["symbol"] == i]
        mine = mine[np.argsort(mine["seq"], kind="stable")]
        tape = ex.trades(s)
        assert tape["seq"].tolist() == mine["seq"][-25:].tolist()
        assert tape["qty"].tolist() == mine["qty_lots"][-25:].tolist()
        assert tape["price"].tolist() == [round(p * 0.01, 2) for p in mine["price_ticks"][-25:].tolist()]
        assert tape["aggressor"].tolist() == [("buy", "sell")[a] for a in mine["aggressor"][-25:].tolist()]
        # bars: a pandas resample of the engine's fills, computed here from the raw integers
        t = pd.DataFrame({"price": mine["price_ticks"] / 100, "qty": mine["qty_lots"]},
                         index=pd.to_datetime(mine["ts_ns"], unit="ns").rename("time"))
        for freq in ("1s", "5s", "1min"):
            r = t.resample(freq)
            want = r["price"].ohlc()
            want["volume"] = r["qty"].sum()
            want = want[r["price"].count() > 0]
            got = ex.bars(s, freq)
            pd.testing.assert_frame_equal(got[["open", "high", "low", "close", "volume"]], want,
                                          check_freq=False, check_dtype=False)
            assert got["trades"].sum() == len(mine)
        bbo = ex.marketdata.bbo(s)
        book = ex.book(s)
        bid, ask = book.best_bid(), book.best_ask()
        assert (bbo["bid"], bbo["bid_qty"]) == (bid if bid else (None, 0))
        assert (bbo["ask"], bbo["ask_qty"]) == (ask if ask else (None, 0))


def test_l2_stream_rebuilds_every_book_at_every_checkpoint():
    ex = lob.Exchange(symbols=SYMBOLS, marketdata=False)
    feed = L2Feed(ex, depth=10_000)
    client = BookBuilder()
    trades = []
    for s in SYMBOLS:
        client.apply(feed.subscribe(s, client.apply))
    feed.subscribe_all(lambda m: trades.append(m) if m["type"] == "trade" else None)
    checked = []

    def compare(k):
        for s in SYMBOLS:
            want = ex.book(s).depth(10_000)
            assert client.books[s] == {"bids": [[p, q] for p, q, _ in want["bids"]],
                                       "asks": [[p, q] for p, q, _ in want["asks"]]}, (k, s)
        checked.append(k)

    fills = _run(ex, seed=3, rounds=30, checkpoint=compare)
    assert len(checked) == 30 and client.gaps == []
    # one trade message per fill, with the fill's sequence number
    assert sorted(m["seq"] for m in trades) == sorted(fills["seq"].tolist())
    # a late subscriber starts from a snapshot and stays in step
    late = BookBuilder()
    late.apply(feed.subscribe("B", late.apply))
    _run(ex, seed=4, rounds=5)
    want = ex.book("B").depth(10_000)
    assert late.books["B"]["bids"] == [[p, q] for p, q, _ in want["bids"]] and late.gaps == []


@pytest.mark.parametrize("depth", [3, 10_000])
def test_l2_stream_follows_every_kind_of_per_call_request(depth):
    # per call, the feed recomputes only the sides a request touched (its reports' sides and its makers'):
    # every kind of request, a shallow window and a deep one, compared after each call
    ex = lob.Exchange(symbols=["A"], marketdata=False, stp="cancel_oldest")
    feed = L2Feed(ex, depth=depth)
    client = BookBuilder()
    client.apply(feed.subscribe("A", client.apply))
    rng = np.random.default_rng(21)
    live = []
    for k in range(1500):
        ts = k + 1
        side = ("buy", "sell")[int(rng.integers(2))]
        px = (1000 + int(rng.integers(-6, 7))) / 100
        owner = f"o{int(rng.integers(3))}"
        op = rng.random()
        if op < 0.45 or not live:
            qty = int(rng.integers(1, 20))
            display = int(rng.integers(1, 5)) if rng.random() < 0.1 else None      # (the same draws as before)
            r = ex.submit("A", side, qty, price=px, owner=owner, ts_ns=ts,
                          display_qty=min(display, qty) if display else None)    # a peak is at most the total
            live.append(r.order_id)
        elif op < 0.6:
            ex.cancel("A", live.pop(int(rng.integers(len(live)))), ts_ns=ts)
        elif op < 0.72:
            oid = live[int(rng.integers(len(live)))]
            ex.modify("A", oid, qty=int(rng.integers(1, 25)), price=px if rng.random() < 0.5 else None, ts_ns=ts)
        elif op < 0.8:
            ex.submit("A", side, int(rng.integers(1, 40)), type="market", owner=owner, ts_ns=ts)
        elif op < 0.87:
            ex.submit("A", side, int(rng.integers(1, 30)), price=px, tif="ioc", owner=owner, ts_ns=ts)
        elif op < 0.94:
            r = ex.submit("A", side, int(rng.integers(1, 10)), type="stop_limit", price=px, stop_price=px,
                          owner=owner, ts_ns=ts)
            live.append(r.order_id)
        elif op < 0.97:
            ex.reduce("A", live[int(rng.integers(len(live)))], 1, ts_ns=ts)
        else:
            ex.session_end("A", ts_ns=ts)
        want = ex.book("A").depth(depth)
        assert client.books["A"] == {"bids": [[p, q] for p, q, _ in want["bids"]],
                                     "asks": [[p, q] for p, q, _ in want["asks"]]}, k
    assert client.gaps == []
