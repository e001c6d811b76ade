"""Fan-out: the bounded queue of every subscriber, the per-symbol message history behind HTTP polling, and the
paced flush that hands each level-2, trade, status and execution-report message to the subscribers.

Matching never waits on a client: feed callbacks only append to per-symbol lists, and ``flush()`` (scheduled on
the event loop after each batch) serializes each message once and hands the text to every subscriber's bounded
queue; a subscriber whose queue is full is dropped with a reason. Flushes are paced: one runs at once when the
previous one is at least ``flush_interval_s`` old, else when it is (so a burst of orders costs one fan-out per
interval; the level-2 deltas of the interval are conflated). The event loop is injected (:meth:`FanOut.use_loop`).
"""
from __future__ import annotations

import collections
import time
from typing import Callable

from lob.server.codec import dumps, loads
from lob.server.errors import ApiError

__all__ = ["Batch", "Subscriber", "FanOut", "conflate"]


class Batch:
    """Messages handed to many subscribers at once: each text is encoded once per flush, and a transport caches its
    wire form here (``wire``) so that every subscriber of the same batch is sent the same bytes."""

    __slots__ = ("texts", "wire")

    def __init__(self, texts: list[str]):
        self.texts = texts
        self.wire = None

    def __len__(self) -> int:
        return len(self.texts)


class Subscriber:
    """One client's bounded outgoing queue and subscriptions (transport-agnostic).

    Parameters
    ----------
    maxlen : int
        Messages that may wait; one more drops the client (``on_drop(reason)``).
    on_wake : callable
        Called when the queue goes from empty to non-empty (the transport starts sending).
    on_drop : callable
        ``on_drop(reason)``: close the transport.
    account : str, optional
        Set for an authenticated client (it receives its own execution reports).
    """

    def __init__(self, maxlen: int = 1000, on_wake: Callable[[], None] | None = None,
                 on_drop: Callable[[str], None] | None = None, account: str | None = None):
        self.maxlen = maxlen
        self.queue: collections.deque[Batch] = collections.deque()
        self.queued = 0                               # messages in the queue
        self.on_wake, self.on_drop = on_wake, on_drop
        self.account = account
        self.token: str | None = None                 # the API token it authenticated with (revocation drops it)
        self.channels: dict[str, set[str]] = {}       # symbol -> {"level2", "trades"}
        self.snap_seq: dict[str, int] = {}            # level-2 deltas at or below this seq are in the snapshot
        self.dropped: str | None = None
        self.sent = 0

    def push(self, batch: Batch | list[str], woken: list | None = None) -> bool:
        """Queue messages (a shared :class:`Batch` or a list of texts); drop the client (and return False) when
        they do not fit. With ``woken``, a wake-up is appended there instead of calling ``on_wake`` now (the
        hub wakes each subscriber once after handing out a whole flush)."""
        if self.dropped is not None:
            return False
        if not isinstance(batch, Batch):
            batch = Batch(batch)
        if self.queued + len(batch) > self.maxlen:
            self.drop(f"slow consumer: outgoing queue full ({self.maxlen} messages)")
            return False
        was_empty = not self.queue
        self.queue.append(batch)
        self.queued += len(batch)
        if was_empty and self.on_wake is not None:
            if woken is not None:
                woken.append(self)
            else:
                self.on_wake()
        return True

    def take(self) -> list[Batch]:
        """Everything queued (the transport sends it), oldest first."""
        out = list(self.queue)
        self.queue.clear()
        self.sent += self.queued
        self.queued = 0
        return out

    def texts(self) -> list[str]:
        """Everything queued as message texts (transports without a wire cache; tests)."""
        return [t for b in self.take() for t in b.texts]

    def drop(self, reason: str) -> None:
        if self.dropped is None:
            self.dropped = reason
            self.queue.clear()
            self.queued = 0
            if self.on_drop is not None:
                self.on_drop(reason)



class FanOut:
    """The hub's fan-out role (a part of :class:`lob.server.hub.Hub`): subscribers, history, flushes."""

    def _init_fanout(self, symbols: list[str], history: int, flush_interval_s: float) -> None:
        self.scheduler: Callable[[Callable], None] | None = None          # run soon (IOLoop.add_callback)
        self.timer: Callable[[float, Callable], object] | None = None     # run in s seconds (IOLoop.call_later)
        self.flush_interval_s = flush_interval_s
        self._last_flush = 0.0
        self.subscribers: set[Subscriber] = set()
        self._by_symbol: dict[str, set[Subscriber]] = {s: set() for s in symbols}
        self._by_account: dict[str, set[Subscriber]] = {}
        self._pending: dict[str, list[tuple[dict, str]]] = {}     # symbol -> [(message, its text)]
        self._pending_exec: dict[str, list[dict]] = {}
        self._flush_scheduled = False
        self._history = {s: collections.deque(maxlen=history) for s in symbols}
        self._cursor = {s: 0 for s in symbols}

    def add_subscriber(self, sub: Subscriber) -> None:
        self.subscribers.add(sub)
        if sub.account is not None:
            self._by_account.setdefault(sub.account, set()).add(sub)
        self.stats["clients_connected"] += 1

    def remove_subscriber(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        for subs in self._by_symbol.values():
            subs.discard(sub)
        if sub.account is not None:
            self._by_account.get(sub.account, set()).discard(sub)

    def subscribe(self, sub: Subscriber, symbol, channels) -> list[dict]:
        """Subscribe to a symbol's channels; return the first messages (the level-2 snapshot)."""
        if not isinstance(symbol, str) or symbol not in self._history:
            raise ApiError(404, f"unknown symbol {symbol!r}; listed: {self.exchange.symbols}", "unknown_symbol")
        if channels is None:
            channels = ["level2", "trades"]
        if not isinstance(channels, list) or not channels or any(c not in ("level2", "trades") for c in channels):
            raise ApiError(400, f"channels must be a non-empty list of 'level2', 'trades', got {channels!r}",
                           "invalid_field")
        sub.channels.setdefault(symbol, set()).update(channels)
        self._by_symbol[symbol].add(sub)
        out = [dict(type="subscribed", symbol=symbol, channels=sorted(sub.channels[symbol]))]
        if "level2" in channels:
            snap = self.feed.snapshot(symbol)
            snap["stale"] = self._stale[symbol]
            sub.snap_seq[symbol] = snap["seq"]
            out.append(snap)
        return out

    def unsubscribe(self, sub: Subscriber, symbol) -> None:
        sub.channels.pop(symbol, None)
        if symbol in self._by_symbol:
            self._by_symbol[symbol].discard(sub)


    def _on_feed(self, msg: dict) -> None:
        s = msg["symbol"]
        self._cursor[s] += 1
        self._last_pub[s] = self.clock()
        if msg["type"] == "level2_update":
            msg["ts_ns"] = time.time_ns()   # publication time: clients measure their delivery lag from it
        # kept as text: thousands of message dicts (and their lists) living long enough to be promoted would
        # make each full garbage collection scan them, a pause of tens of ms in the middle of requests
        text = dumps(msg)
        self._history[s].append((self._cursor[s], text))
        if self._by_symbol.get(s):
            # only for a symbol someone streams: a later subscriber starts from a snapshot that has this change
            self._pending.setdefault(s, []).append((msg, text))
            self._schedule()


    def updates(self, symbol: str, since: int | None, limit: int = 1000) -> dict:
        """Messages after cursor ``since`` (HTTP polling); a snapshot when ``since`` is absent or too old."""
        self._symbol(symbol)
        hist, cur = self._history[symbol], self._cursor[symbol]
        oldest = hist[0][0] if hist else cur + 1
        out = dict(symbol=symbol, cursor=cur, stale=self._stale[symbol], snapshot=None, messages=[])
        if since is None or since < oldest - 1 or since > cur:
            snap = self.feed.snapshot(symbol)
            # deltas already in the snapshot are skipped by seq, so resume from the current cursor
            out["snapshot"] = snap
            return out
        texts = [t for c, t in hist if c > since]
        if len(texts) > limit:
            texts = texts[:limit]
            out["cursor"] = since + limit
        out["messages"] = [loads(t) for t in texts]
        return out


    def drop_revoked(self) -> int:
        """Close the authenticated streams whose token no longer names their account (revoked); return how many."""
        n = 0
        for sub in [x for x in self.subscribers if x.account is not None and x.token is not None]:
            if self.accounts.account_for(sub.token) != sub.account:
                sub.drop("API token revoked")
                self.forget_dropped(sub)
                n += 1
        return n


    def use_loop(self, loop) -> None:
        """Schedule flushes on an event loop (a Tornado ``IOLoop``: ``add_callback`` and ``call_later``)."""
        self.scheduler, self.timer = loop.add_callback, loop.call_later

    def _schedule(self) -> None:
        if not self._flush_scheduled and self.scheduler is not None:
            self._flush_scheduled = True
            # wall time, not self.clock (tests inject a clock for rate limits and staleness)
            wait = self._last_flush + self.flush_interval_s - time.monotonic()
            if wait > 0 and self.timer is not None:
                self.timer(wait, self.flush)
            else:
                self.scheduler(self.flush)

    def flush(self) -> int:
        """Hand pending messages to the subscribers' queues; return how many messages were queued.

        Each message is encoded once, and subscribers with the same channels of a symbol share one
        :class:`Batch` (their transport encodes it once too); each subscriber is woken once per flush.
        """
        self._flush_scheduled = False
        self._last_flush = time.monotonic()
        pending, self._pending = self._pending, {}
        pending_exec, self._pending_exec = self._pending_exec, {}
        n = 0
        woken: list[Subscriber] = []
        for s, msgs in pending.items():
            subs = self._by_symbol.get(s)
            if not subs:
                continue
            status = [t for m, t in msgs if m["type"] == "status"]      # stale flags: to every subscriber
            trades = [t for m, t in msgs if m["type"] == "trade"]
            deltas = [m for m, _ in msgs if m["type"] == "level2_update"]
            if len(deltas) > 1:
                whole = dumps(conflate(deltas))
            else:
                whole = next((t for m, t in msgs if m["type"] == "level2_update"), None)
            first = deltas[0]["seq"] if deltas else 0
            shared: dict[tuple, Batch] = {}         # (trades?, level2?) -> the batch of that channel set
            for sub in list(subs):
                ch = sub.channels.get(s, ())
                key = ("trades" in ch and bool(trades), whole is not None and "level2" in ch)
                if key[1] and sub.snap_seq.get(s, -1) >= first:
                    # subscribed in the middle of this batch: only the deltas that follow its snapshot
                    part = conflate([m for m in deltas if m["seq"] > sub.snap_seq[s]])
                    batch = Batch(status + (trades if key[0] else []) + ([dumps(part)] if part else []))
                else:
                    batch = shared.get(key)
                    if batch is None:
                        batch = shared[key] = Batch(status + (trades if key[0] else []) + ([whole] if key[1] else []))
                if not batch.texts:
                    continue
                if not sub.push(batch, woken):
                    self.forget_dropped(sub)
                n += len(batch)
        for account, msgs in pending_exec.items():
            subs = self._by_account.get(account)
            if not subs:
                continue
            batch = Batch([dumps(m) for m in msgs])
            for sub in list(subs):
                if not sub.push(batch, woken):
                    self.forget_dropped(sub)
                n += len(batch)
        for sub in woken:
            if sub.dropped is None:
                sub.on_wake()
        self.stats["messages_queued"] += n
        return n

    def forget_dropped(self, sub: Subscriber) -> None:
        """A subscriber was dropped (slow, flooding, revoked): count it, log an incident, unsubscribe it."""
        self.stats["clients_dropped"] += 1
        self.incidents.record("market_data", f"client dropped: {sub.dropped}", "warning", account=sub.account)
        self.remove_subscriber(sub)



def conflate(deltas: list[dict]) -> dict | None:
    """Merge consecutive level-2 deltas of one symbol into one (``prev_seq`` of the first, ``seq`` of the last);
    the last quantity of each level wins, so a client applying it reaches the same book. ``ts_ns`` is the
    publication time of the first (oldest) delta, so a client's lag measured from it is the worst of the batch."""
    if not deltas:
        return None
    if len(deltas) == 1:
        return deltas[0]
    levels: dict[tuple, float] = {}
    for m in deltas:
        for side, price, qty in m["changes"]:
            levels[(side, price)] = qty
    last = deltas[-1]
    return dict(type="level2_update", symbol=last["symbol"], seq=last["seq"], prev_seq=deltas[0]["prev_seq"],
                snapshot=False, ts_ns=deltas[0].get("ts_ns"),
                changes=[[side, p, q] for (side, p), q in levels.items()])

