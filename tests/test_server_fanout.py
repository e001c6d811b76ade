"""The hub's fan-out: one shared Batch per channel set and flush, one wake-up per subscriber and flush, a bounded
queue counted in messages, and the WebSocket frames built once per batch (RFC 6455 framing, decoded here)."""
from __future__ import annotations

import json

from lob.marketdata import BookBuilder
from lob.server import Accounts, Hub
from lob.server.hub import Batch, Subscriber
from lob.server.market import BotMarket
from lob.server.websocket import _wire


def _decode(data: bytes) -> list[str]:
    """Server-to-client frames (unmasked, FIN set, text) -> their payloads."""
    out, pos = [], 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        assert b0 == 0x81 and b1 & 0x80 == 0            # FIN + text opcode, no mask bit
        n, pos = b1 & 0x7F, pos + 2
        if n == 126:
            n, pos = int.from_bytes(data[pos:pos + 2], "big"), pos + 2
        elif n == 127:
            n, pos = int.from_bytes(data[pos:pos + 8], "big"), pos + 8
        out.append(data[pos:pos + n].decode())
        pos += n
    return out


def test_frames_of_every_length_class_decode_to_the_texts():
    texts = ["", "x" * 125, "é" * 63, "y" * 126, "z" * 65535, "w" * 65536, json.dumps({"a": "ü" * 40000})]
    batch = Batch(texts)
    wire = _wire(batch)
    assert _decode(wire) == texts
    assert _wire(batch) is wire                          # built once, then shared


def _hub():
    hub = Hub(BotMarket(seed=7), Accounts({"tok-alice-0001": "alice"}, path=False))
    queued = []
    hub.scheduler = queued.append                        # flushes run when the test says so
    for _ in range(5):
        hub.step_market()
    queued.clear()
    return hub, queued


def test_subscribers_of_one_channel_set_share_one_batch_and_are_woken_once_per_flush():
    hub, queued = _hub()
    wakes = {}
    subs = []
    for name, symbols, channels in (("a", ["AAPL", "MSFT"], None), ("b", ["AAPL", "MSFT"], None),
                                    ("c", ["AAPL"], ["level2"])):
        sub = Subscriber(10_000, on_wake=lambda name=name: wakes.__setitem__(name, wakes.get(name, 0) + 1))
        hub.add_subscriber(sub)
        for s in symbols:
            hub.subscribe(sub, s, channels)
        subs.append(sub)
    books = [BookBuilder() for _ in subs]
    for sub, book in zip(subs, books):
        for s in sub.channels:
            book.apply(hub.feed.snapshot(s))
    for _ in range(30):
        hub.step_market()
        for fn in queued:
            fn()
        queued.clear()
    # a, b woke once per flush that had something for them, not once per symbol
    assert 0 < wakes["a"] == wakes["b"] <= 30 and wakes["c"] <= 30
    a, b, c = subs
    assert [id(x) for x in a.queue] == [id(x) for x in b.queue]     # the same Batch objects
    # level2 only: no trades, so it shares a's batch only for flushes that had no trade
    assert all(json.loads(t)["type"] != "trade" for x in c.queue for t in x.texts)
    shared = {id(x) for x in c.queue} & {id(x) for x in a.queue}
    assert len(shared) < len(c.queue)
    assert a.queued == sum(len(x) for x in a.queue)
    for sub, book in zip(subs, books):
        for text in sub.texts():
            book.apply(json.loads(text))
        assert book.gaps == []
        for s in sub.channels:
            d = hub.exchange.book(s).depth(hub.feed.depth)
            assert book.books[s]["bids"] == [[p, q] for p, q, _ in d["bids"]]
    assert a.queued == 0 and a.sent > 0


def test_queue_bound_counts_messages_across_batches():
    dropped = []
    sub = Subscriber(5, on_drop=dropped.append)
    assert sub.push(Batch(["1", "2", "3"])) and sub.push(["4", "5"])
    assert sub.queued == 5 and not dropped
    assert sub.push(["6"]) is False
    assert dropped and "slow consumer" in dropped[0] and sub.queued == 0 and not sub.queue


def test_access_log_lines_only_at_enabled_levels(caplog):
    import logging
    from types import SimpleNamespace

    from lob.server import log_request

    def handler(status):
        req = SimpleNamespace(method="POST", uri="/api/orders", remote_ip="127.0.0.1", request_time=lambda: 0.00025)
        return SimpleNamespace(get_status=lambda: status, request=req)

    with caplog.at_level(logging.WARNING, logger="tornado.access"):
        log_request(handler(201))
        log_request(handler(429))
        log_request(handler(500))
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "429 POST /api/orders (127.0.0.1) 0.25ms"),
        (logging.ERROR, "500 POST /api/orders (127.0.0.1) 0.25ms")]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tornado.access"):
        log_request(handler(201))
    assert [r.getMessage() for r in caplog.records] == ["201 POST /api/orders (127.0.0.1) 0.25ms"]


def test_flushes_are_paced_and_a_burst_is_conflated():
    hub = Hub(BotMarket(seed=7), Accounts({"tok-alice-0001": "alice"}, path=False), flush_interval_s=0.05)
    for _ in range(5):
        hub.step_market()
    soon, later = [], []
    hub.scheduler = soon.append
    hub.timer = lambda seconds, fn: later.append((seconds, fn))
    sub = Subscriber(10_000)
    hub.add_subscriber(sub)
    snap = hub.subscribe(sub, "AAPL", ["level2"])[1]
    book = BookBuilder()
    book.apply(snap)
    bid = hub.exchange.book("AAPL").best_bid()[0]

    def order(k):
        return {"symbol": "AAPL", "side": "buy", "qty": 1 + k, "price": round(bid - 0.05 - 0.01 * k, 2)}

    hub.submit("alice", order(0))
    assert len(soon) == 1 and not later            # the first flush after a quiet spell: at once
    soon.pop()()
    for k in range(1, 4):                           # a burst within the interval: one flush, later
        hub.submit("alice", order(k))
    assert not soon and len(later) == 1 and 0 < later[0][0] <= 0.05
    later.pop()[1]()
    msgs = [json.loads(t) for t in sub.texts()]
    assert len(msgs) == 2 and all(m["type"] == "level2_update" for m in msgs)
    assert msgs[1]["prev_seq"] == msgs[0]["seq"] == snap["seq"] + 1 and msgs[1]["seq"] == snap["seq"] + 4
    for m in msgs:
        book.apply(m)
    d = hub.exchange.book("AAPL").depth(hub.feed.depth)
    assert book.gaps == [] and book.books["AAPL"]["bids"] == [[p, q] for p, q, _ in d["bids"]]
