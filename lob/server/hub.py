"""The hub: the one object between an exchange and the server's clients (REST, WebSocket, polling, dashboard).

It owns the level-2 feed (``lob.marketdata.L2Feed``), the bounded queue of every subscriber, the per-symbol
message history behind HTTP polling, account order tracking and positions, the incident log and the
component health. Matching never waits on a client: feed callbacks only append to per-symbol lists, and
``flush()`` (scheduled on the event loop after each batch) serializes each message once and hands the text
to every subscriber's bounded queue; a subscriber whose queue is full is dropped with a reason.

Flushes are paced: one runs at once when the previous one is at least ``flush_interval_s`` old, else when it is
(so a burst of orders, say over REST, costs one fan-out per interval, not one per order; the level-2 deltas of the
interval are conflated). The hub never touches the event loop itself: the server injects it (:meth:`Hub.use_loop`).
"""
from __future__ import annotations

import collections
import json
import math
import re
import time
from typing import Callable

from tornado.web import HTTPError

import lob
from lob.errors import InvalidOrderError, LobError, UnknownSymbolError
from lob.marketdata import L2Feed
from lob.server.accounts import AccountLimits, Accounts, RateLimiter

__all__ = ["Hub", "ApiError", "Subscriber", "Batch", "IncidentLog"]

_STATUS_RANK = {"ok": 0, "disabled": 0, "degraded": 1, "down": 2}
# positions in the rows of reports.tolist() / fills.tolist()
_R = {name: i for i, name in enumerate(lob.REPORT_DTYPE.names)}
_R_TS, _R_SEQ, _R_OID, _R_OWNER, _R_PX = _R["ts_ns"], _R["seq"], _R["order_id"], _R["owner"], _R["price_ticks"]
_R_FILLED, _R_CUM, _R_REMAINING = _R["filled_lots"], _R["cum_filled_lots"], _R["remaining_lots"]
_R_SYM, _R_ACTION, _R_SIDE, _R_STATUS, _R_REASON = _R["symbol"], _R["action"], _R["side"], _R["status"], _R["reason"]
_F = {name: i for i, name in enumerate(lob.FILL_DTYPE.names)}
_F_TS, _F_SEQ, _F_PX, _F_QTY, _F_SYM, _F_AGG = _F["ts_ns"], _F["seq"], _F["price_ticks"], _F["qty_lots"], \
    _F["symbol"], _F["aggressor"]
_F_MAKER, _F_TAKER, _F_MAKER_OID = _F["maker_owner"], _F["taker_owner"], _F["maker_order_id"]
_STATUS_NAMES = {int(v): v.name.lower() for v in lob.Status}
_ACTION_NAMES = {int(v): v.name.lower() for v in lob.Action}
_REASON_NAMES = {int(v): v.name.lower() for v in lob.Reason}
_LIVE = (int(lob.Status.NEW), int(lob.Status.PARTIALLY_FILLED))
_REJECTED, _ADD = int(lob.Status.REJECTED), int(lob.Action.ADD)
_FREQ = re.compile(r"^[1-9][0-9]{0,3}(s|min|h|D)$")
_MAX_NUMBER = 1e11      # the schema's maximum
_SUBMIT_FIELDS = frozenset(("symbol", "side", "qty", "price", "type", "tif", "post_only", "display_qty", "stop_price",
                            "client_order_id"))
_SIDES, _TYPES, _TIFS = ("buy", "sell"), ("limit", "market", "stop", "stop_limit"), ("gtc", "ioc", "fok", "day")
# (price, stop_price) of each order type (the OpenAPI document states the same): True required, False forbidden
_PRICES = {"limit": (True, False), "market": (False, False), "stop": (False, True), "stop_limit": (True, True)}
CLIENT_ORDER_ID = re.compile(r"^[\x21-\x7e]{1,64}$")


class ApiError(HTTPError):
    """A client error: HTTP status, message, machine-readable reason and an optional report (JSON body)."""

    def __init__(self, status: int, message: str, reason: str | None = None, body: dict | None = None):
        super().__init__(status)
        self.status, self.message, self.error, self.body = status, message, reason, body

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message}"


class IncidentLog:
    """Every incident (agent failures and restarts, dropped clients, stale data, integrity errors)."""

    def __init__(self, maxlen: int = 2000):
        self._rows = collections.deque(maxlen=maxlen)
        self._next = 1

    def record(self, component: str, message: str, severity: str = "warning", **extra) -> dict:
        row = dict(id=self._next, ts=time.time(), component=component, severity=severity, message=message, **extra)
        self._next += 1
        self._rows.append(row)
        return row

    @property
    def total(self) -> int:
        return self._next - 1

    def rows(self, limit: int | None = None) -> list[dict]:
        rows = list(self._rows)
        return rows[-limit:] if limit else rows


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


_DONE_KEEP = 100_000        # ended orders whose symbol the server still knows


class _RiskHook:
    """The exchange's pre-trade hook: any installed ``lob.risk`` check, then the per-account limits."""

    def __init__(self, hub: "Hub", inner):
        self.hub, self.inner = hub, inner

    def check_modify(self, sym, order_id, qty_lots, price_ticks, owner, ts_ns=None):
        if self.inner is not None and hasattr(self.inner, "check_modify"):
            try:
                return self.inner.check_modify(sym, order_id, qty_lots, price_ticks, owner, ts_ns)
            except Exception as e:      # noqa: BLE001 - a failing check must not take the order path down
                self.hub.risk_check_failed(e)
        return 0

    def check_submit(self, sym, side, qty_lots, price_ticks, owner, type_, ts_ns=None):
        hub = self.hub
        failed = False
        if self.inner is not None:
            try:
                r = self.inner.check_submit(sym, side, qty_lots, price_ticks, owner, type_, ts_ns)
            except Exception as e:      # noqa: BLE001 - see risk_check_failed
                hub.risk_check_failed(e)
                r, failed = 0, True
            if r:
                return r
        account = hub._accounts_by_owner.get(owner)
        conservative = hub.conservative is not None
        if account is None and not (conservative and failed):
            return 0
        limits = hub.limits.scaled(hub.conservative_factor) if conservative else hub.limits
        info = hub.exchange._infos[sym]
        price = info.price(price_ticks) if price_ticks else None
        # without a working check, the orders of every owner (bots too) meet the tightened account limits
        reason = limits.check(info.qty(qty_lots), price, len(hub._open.get(account, ())) if account else 0)
        return int(lob.Reason[reason.upper()]) if reason else 0


class Hub:
    """Shared state of one server: market, feed, subscribers, accounts, health and incidents.

    Parameters
    ----------
    market : a market of :mod:`lob.server.market` (``exchange``, ``step()``, ``agents()``, ``incidents()``)
    accounts : Accounts, optional
        Token -> account; default reads the token file (``$LOB_TOKENS`` or ``~/.config/lob/tokens.json``).
    queue_size : int
        Bounded queue per WebSocket client (messages).
    history : int
        Messages per symbol kept for HTTP polling.
    write_rate, write_burst : float, int
        Order-entry requests per second per account (429 beyond); 0 disables.
    read_rate, read_burst : float, int
        Market-data requests per second per client address; 0 disables.
    max_body : int
        Largest request body in bytes (413 beyond).
    stale_after_s : float
        Market data older than this is flagged stale.
    limits : AccountLimits, optional
        Per-account pre-trade limits.
    depth : int
        Levels per side published in the level-2 feed.
    socket_sndbuf : int
        Kernel send buffer of each WebSocket (bytes; 0 leaves the system default).
    flush_interval_s : float
        Least time between two fan-outs to the subscribers (0: one per batch of orders).
    """

    def __init__(self, market, accounts: Accounts | None = None, *, queue_size: int = 1000, history: int = 5000,
                 write_rate: float = 200.0, write_burst: int = 400, read_rate: float = 500.0, read_burst: int = 1000,
                 max_body: int = 64 * 1024, stale_after_s: float = 5.0, limits: AccountLimits | None = None,
                 depth: int = 50, socket_sndbuf: int = 256 * 1024, flush_interval_s: float = 0.01,
                 clock=time.monotonic):
        self.market = market
        self.exchange = market.exchange
        self.accounts = accounts if accounts is not None else Accounts()
        self.queue_size = queue_size
        self.socket_sndbuf = socket_sndbuf
        self.max_body = max_body
        self.stale_after_s = stale_after_s
        self.limits = limits or AccountLimits()
        self.clock = clock
        self.write_limiter = RateLimiter(write_rate, write_burst, clock)
        self.read_limiter = RateLimiter(read_rate, read_burst, clock)
        self.incidents = IncidentLog()
        self.scheduler: Callable[[Callable], None] | None = None          # run soon (IOLoop.add_callback)
        self.timer: Callable[[float, Callable], object] | None = None     # run in s seconds (IOLoop.call_later)
        self.flush_interval_s = flush_interval_s
        self._last_flush = 0.0
        self.perf = self.exchange.perf
        self.subscribers: set[Subscriber] = set()
        self._by_symbol: dict[str, set[Subscriber]] = {s: set() for s in self.exchange.symbols}
        self._by_account: dict[str, set[Subscriber]] = {}
        self._pending: dict[str, list[tuple[dict, str]]] = {}     # symbol -> [(message, its text)]
        self._pending_exec: dict[str, list[dict]] = {}
        self._flush_scheduled = False
        self._history = {s: collections.deque(maxlen=history) for s in self.exchange.symbols}
        self._cursor = {s: 0 for s in self.exchange.symbols}
        self._last_pub = {s: clock() for s in self.exchange.symbols}
        self._stale: dict[str, bool] = {s: False for s in self.exchange.symbols}
        self._accounts_by_owner: dict[int, str] = {}
        self._open: dict[str, dict[int, str]] = {}         # account -> {order_id: symbol}
        self._done_symbol = collections.OrderedDict()      # the latest ended orders of accounts (bounded): symbol
        self.client_ids: dict[tuple[str, str], tuple] = {}  # (account, client order id) -> (symbol, id, report)
        self._clid_of: dict[int, tuple[str, str]] = {}      # order id -> (account, client order id), live only
        self.client_log = None                              # ClientIdLog of a durable server (lob.server.store)
        self.positions: dict[int, dict[int, list[int]]] = {}   # owner -> symbol index -> [position lots, cash ticks*lots]
        self.stats = collections.Counter()
        self.driver = dict(status="running", failures=0, last_error=None, resume_at=None)
        self._integrity = dict(status="ok", checked_at=None, error=None)
        self.feed = L2Feed(self.exchange, depth=depth)
        self.feed.subscribe_all(self._on_feed)
        self.exchange.add_listener(self._on_outputs)
        self.exchange.risk = _RiskHook(self, getattr(self.exchange, "risk", None))
        self.conservative: dict | None = None       # set while the venue runs in conservative mode
        self._stepping = False                      # a sliced market tick is in progress
        self.conservative_factor = 0.5

    # --- conservative mode --------------------------------------------------------------------------
    def risk_check_failed(self, exc: BaseException) -> None:
        """A pre-trade check raised: tighten the limits (conservative mode) and raise an alert.

        The order that met the failure, and every later one, is checked against the account limits scaled
        by ``conservative_factor`` (bots' orders included), and an installed ``lob.risk.RiskManager`` is
        switched to conservative mode too. The venue stays conservative (``/healthz``: risk degraded) until
        :meth:`clear_conservative`.
        """
        msg = f"{type(exc).__name__}: {exc}"
        if self.conservative is None:
            self.conservative = dict(since=time.time(), error=msg, failures=1, factor=self.conservative_factor)
            inner = getattr(self.exchange.risk, "inner", None)
            if hasattr(inner, "set_conservative"):
                try:
                    inner.set_conservative(True, factor=self.conservative_factor)
                except Exception:       # noqa: BLE001 - the failing component may fail here too
                    pass
            self.incidents.record("risk", f"risk check failed ({msg}); conservative mode: limits x"
                                  f"{self.conservative_factor:g}", "error")
        else:
            self.conservative["failures"] += 1
            self.conservative["error"] = msg
        self.stats["risk_check_failures"] += 1

    def clear_conservative(self) -> None:
        """Leave conservative mode (once the risk component is repaired)."""
        if self.conservative is None:
            return
        self.conservative = None
        inner = getattr(self.exchange.risk, "inner", None)
        if hasattr(inner, "set_conservative"):
            inner.set_conservative(False)
        self.incidents.record("risk", "conservative mode cleared", "info")

    # --- accounts ---------------------------------------------------------------------------------
    def authenticate(self, token: str | None, strict: bool = True) -> str | None:
        """The account of a token; ``ApiError(401)`` for a token that is given but unknown (revoked), or
        None with ``strict=False``. Tokens are re-read from the token file when it changes."""
        if not token:
            return None
        account = self.accounts.account_for(token)
        if account is None:
            if strict:
                raise ApiError(401, "unknown API token", "unauthorized")
            return None
        if account not in self._open:
            self.adopt(account)
        return account

    def drop_revoked(self) -> int:
        """Close the authenticated streams whose token no longer names their account (revoked); return how many."""
        n = 0
        for sub in [x for x in self.subscribers if x.account is not None and x.token is not None]:
            if self.accounts.account_for(sub.token) != sub.account:
                sub.drop("API token revoked")
                self._dropped(sub)
                n += 1
        return n

    def adopt(self, account: str) -> None:
        """Track an account: its resting orders and stops (placed before this server knew the account, e.g.
        recovered from the journal) become its open orders, and its new outputs are followed."""
        owner = self.exchange.owner_id(account)
        self._accounts_by_owner.setdefault(owner, account)
        open_ = self._open.setdefault(account, {})
        for name in self.exchange.symbols:
            a = self.exchange.book(name).orders_array()
            for oid in a["order_id"][a["owner"] == owner].tolist():
                open_[oid] = name

    def restore_client_ids(self, rows) -> int:
        """Keep the client order ids ``(account, client id, symbol, order id)`` whose order is live and the
        account's (after a recovery); return how many were kept."""
        for account, clid, symbol, oid in rows:
            if symbol not in self._history:
                continue
            if account not in self._open:
                self.adopt(account)
            if self._open[account].get(oid) != symbol:
                continue
            o = self.exchange._engine.order(self.exchange.symbol_index(symbol), oid)
            rec = dict(zip(lob.ORDER_DTYPE.names, o))
            info = self.exchange.info(symbol)
            report = dict(symbol=symbol, order_id=oid, seq=self.exchange.seq, ts_ns=int(rec["ts_ns"]), action="add",
                          side="buy" if rec["side"] == 0 else "sell",
                          status="partially_filled" if rec["filled_lots"] else "new", reason=None,
                          price=info.price(rec["price_ticks"]) if rec["price_ticks"] else None,
                          filled_qty=info.qty(rec["filled_lots"]),
                          remaining_qty=info.qty(rec["qty_lots"] - rec["filled_lots"]), trades=[])
            self.client_ids[(account, clid)] = (symbol, oid, report)
            self._clid_of[oid] = (account, clid)
        return len(self._clid_of)

    def client_id_rows(self) -> list[tuple]:
        """The client order ids of live orders as ``(account, client id, symbol, order id)``."""
        return [(a, c, s, oid) for (a, c), (s, oid, _) in self.client_ids.items()]

    def _ended(self, oid: int) -> None:
        key = self._clid_of.pop(oid, None)
        if key is not None:
            self.client_ids.pop(key, None)

    def _symbol(self, symbol: str) -> str:
        if symbol not in self._history:
            raise ApiError(404, f"unknown symbol {symbol!r}; listed: {self.exchange.symbols}", "unknown_symbol")
        return symbol

    # --- order entry ------------------------------------------------------------------------------
    def submit(self, account: str, body) -> tuple[int, dict]:
        """Submit an order for an account; return (HTTP status, report).

        With ``client_order_id`` (unique per account among its live orders), a repeat of a live order's id
        returns that order's original report (status 200) and places nothing: a client may resend a POST
        whose answer it lost, even across a server restart (the ids are kept in the data folder).
        """
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object", "invalid_body")
        unknown = body.keys() - _SUBMIT_FIELDS
        if unknown:
            raise ApiError(400, f"unknown field(s) {sorted(unknown)}", "invalid_body")
        _no_nulls(body)
        symbol = body.get("symbol")
        if not isinstance(symbol, str):
            raise ApiError(400, f"field 'symbol' must be a string, got {symbol!r}", "invalid_field")
        self._symbol(symbol)
        clid = body.get("client_order_id")
        if clid is not None:
            if not isinstance(clid, str) or not CLIENT_ORDER_ID.match(clid):
                raise ApiError(400, "field 'client_order_id' must be 1 to 64 printable ASCII characters without "
                               f"spaces, got {clid!r}", "invalid_field")
            seen = self.client_ids.get((account, clid))
            if seen is not None:
                self.stats["client_order_id_repeats"] += 1
                return 200, dict(seen[2], client_order_id=clid)
        if body.get("side") is None:
            raise ApiError(400, "field 'side' is required ('buy' or 'sell')", "invalid_field")
        side = _choice(body, "side", _SIDES)
        type_ = _choice(body, "type", _TYPES, "limit")
        kw = dict(type=type_, tif=_choice(body, "tif", _TIFS, "gtc"))
        qty = _number(body, "qty", required=True)
        for field, need in zip(("price", "stop_price"), _PRICES[type_]):
            v = _number(body, field, required=need)
            if v is not None and not need:
                raise ApiError(400, f"field {field!r} is not allowed on a {type_} order", "invalid_field")
            if v is not None:
                kw[field] = v
        v = _number(body, "display_qty")
        if v is not None:
            kw["display_qty"] = v
        post_only = body.get("post_only", False)
        if not (isinstance(post_only, bool) or post_only in ("reject", "slide")):
            raise ApiError(400, f"field 'post_only' must be true, false, 'reject' or 'slide', got {post_only!r}",
                           "invalid_field")
        t0 = time.perf_counter_ns()
        if clid is not None:
            # the id the engine would give next, fixed here so that the client id is on disk before the order
            # is: after a crash, a kept id whose order did not survive is dropped at recovery
            kw["order_id"] = self.exchange._engine.next_auto_id
            if self.client_log is not None:
                self.client_log.append(account, clid, symbol, kw["order_id"])
        try:
            r = self.exchange.submit(symbol, side, qty, owner=account, post_only=post_only, **kw)
        except UnknownSymbolError as e:
            raise ApiError(404, str(e), "unknown_symbol") from None
        except (InvalidOrderError, OverflowError) as e:
            # well-formed (the server's checks above match the OpenAPI document) but outside this symbol's
            # rules (lot and tick sizes, ranges): a business rejection, as the engine's own are
            return 200, self._rejection(symbol, 0, side, type_, e)
        except LobError as e:
            raise ApiError(400, str(e), "invalid_order") from None
        self.perf.record("server", time.perf_counter_ns() - t0, "rest_submit")
        report = _report(r)
        if clid is not None:
            report["client_order_id"] = clid
            if r.order_id in self._open.get(account, ()):
                self.client_ids[(account, clid)] = (symbol, r.order_id, report)
                self._clid_of[r.order_id] = (account, clid)
        return (201 if r.accepted else 200), report

    def _target(self, account: str, order_id: int, symbol: str | None) -> str:
        if symbol is None:
            # live orders are in the accounts' open orders (any account's: another's is a 403, not a 404)
            symbol = next((o[order_id] for o in self._open.values() if order_id in o), None) \
                or self._done_symbol.get(order_id)
            if symbol is None:
                raise ApiError(404, f"order {order_id} is unknown to this server; pass ?symbol= for other orders",
                               "unknown_order")
        return self._symbol(symbol)

    def _outcome(self, r) -> tuple[int, dict]:
        if r.reason == "not_owner":
            raise ApiError(403, f"order {r.order_id} belongs to another account", "not_owner", _report(r))
        if r.reason == "unknown_order":
            raise ApiError(404, f"order {r.order_id} is not live", "unknown_order", _report(r))
        return 200, _report(r)

    def cancel(self, account: str, order_id: int, symbol: str | None = None) -> tuple[int, dict]:
        symbol = self._target(account, order_id, symbol)
        return self._outcome(self.exchange.cancel(symbol, order_id, owner=account))

    def modify(self, account: str, order_id: int, body, symbol: str | None = None) -> tuple[int, dict]:
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object", "invalid_body")
        unknown = set(body) - {"qty", "price", "symbol"}
        if unknown:
            raise ApiError(400, f"unknown field(s) {sorted(unknown)}", "invalid_body")
        _no_nulls(body)
        qty, price = _number(body, "qty"), _number(body, "price")
        if qty is None and price is None:
            raise ApiError(400, "give 'qty' (new total quantity) and/or 'price'", "invalid_body")
        if body.get("symbol") is not None:
            if not isinstance(body["symbol"], str):
                raise ApiError(400, f"field 'symbol' must be a string, got {body['symbol']!r}", "invalid_field")
            symbol = body["symbol"]
        symbol = self._target(account, order_id, symbol)
        try:
            r = self.exchange.modify(symbol, order_id, qty=qty, price=price, owner=account)
        except (InvalidOrderError, OverflowError) as e:
            return 200, self._rejection(symbol, order_id, None, None, e)
        except LobError as e:
            raise ApiError(400, str(e), "invalid_order") from None
        return self._outcome(r)

    def _rejection(self, symbol: str, order_id: int, side, type_, exc: BaseException) -> dict:
        """The report of a request rejected by the symbol's rules before it reached the book (reason
        ``invalid_qty`` or ``invalid_price``, the rule in ``text``)."""
        text = str(exc)
        field = text.split(" ", 1)[0]
        reason = "invalid_price" if "price" in field else "invalid_qty"
        self.stats["rejected_by_symbol_rules"] += 1
        return dict(seq=self.exchange.seq, symbol=symbol, order_id=order_id, action="add" if type_ else "modify",
                    side=side, type=type_, price=None, status="rejected", reason=reason, filled_qty=0,
                    last_filled_qty=0, remaining_qty=0, avg_price=None, n_trades=0, trades=[], text=text)

    def open_orders(self, account: str) -> list[dict]:
        out = []
        for oid, symbol in sorted(self._open.get(account, {}).items()):
            info = self.exchange.info(symbol)
            o = self.exchange._engine.order(info.index, oid)
            if o is None:
                continue
            rec = dict(zip(lob.ORDER_DTYPE.names, o))
            out.append(dict(order_id=oid, symbol=symbol, side="buy" if rec["side"] == 0 else "sell",
                            price=info.price(rec["price_ticks"]) if rec["price_ticks"] else None,
                            qty=info.qty(rec["qty_lots"]), filled_qty=info.qty(rec["filled_lots"]),
                            ts_ns=int(rec["ts_ns"])))
        return out

    def account_positions(self, account: str) -> list[dict]:
        return self._positions_of(self.exchange.owner_id(account), account)

    def _positions_of(self, owner: int, name) -> list[dict]:
        out = []
        for i, (pos, cash) in sorted(self.positions.get(owner, {}).items()):
            info = self.exchange._infos[i]
            mid = self.exchange.book(info.name).mid()
            mark = mid if mid is not None else (self.exchange.book(info.name).last_price or 0.0)
            pnl = cash * info.tick_size * info.lot_size + pos * info.lot_size * mark
            out.append(dict(owner=name, symbol=info.name, position=info.qty(pos), pnl=round(pnl, 6)))
        return out

    def mm_stats(self) -> list[dict]:
        """Inventory and mark-to-market PnL of the market's market makers (the market's own accounts when it
        keeps them: fills before the hub attached, such as a simulator's warm-up, are counted there)."""
        own = getattr(self.market, "mm_stats", None)
        rows = own() if own is not None else None
        if rows is not None:
            return rows
        rows = []
        for name in self.market.market_makers:
            rows.extend(self._positions_of(self.exchange.owner_id(name), name))
        return rows

    # --- market data ------------------------------------------------------------------------------
    def book(self, symbol: str, depth: int = 10) -> dict:
        self._symbol(symbol)
        b = self.exchange.book(symbol)
        d = b.depth(depth)
        bid, ask = b.best_bid(), b.best_ask()
        return dict(symbol=symbol, seq=self.feed.snapshot(symbol)["seq"], exchange_seq=self.exchange.seq,
                    bids=[list(x) for x in d["bids"]], asks=[list(x) for x in d["asks"]],
                    best_bid=list(bid) if bid else None, best_ask=list(ask) if ask else None,
                    mid=b.mid(), spread=_finite(b.spread()), last_price=b.last_price, stale=self._stale[symbol])

    def trades(self, symbol: str, limit: int = 50) -> dict:
        self._symbol(symbol)
        df = self.exchange.trades(symbol, limit)
        rows = [dict(seq=int(r.seq), ts_ns=int(r.ts_ns), price=float(r.price), qty=_num(r.qty),
                     aggressor=str(r.aggressor), maker_order_id=int(r.maker_order_id),
                     taker_order_id=int(r.taker_order_id), maker_owner=r.maker_owner, taker_owner=r.taker_owner)
                for r in df.itertuples()]
        return dict(symbol=symbol, trades=rows)

    def bars(self, symbol: str, freq: str = "1min") -> dict:
        self._symbol(symbol)
        if not _FREQ.match(freq):
            raise ApiError(400, f"freq must look like 10s, 1min, 5min, 1h or 1D, got {freq!r}", "invalid_field")
        df = self.exchange.bars(symbol, freq)
        rows = [dict(time=t.isoformat(), open=float(r.open), high=float(r.high), low=float(r.low),
                     close=float(r.close), volume=_num(r.volume), trades=int(r.trades))
                for t, r in zip(df.index, df.itertuples())]
        return dict(symbol=symbol, freq=freq, bars=rows)

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
        out["messages"] = [json.loads(t) for t in texts]
        return out

    def symbols(self) -> list[dict]:
        return [dict(s) for s in self.exchange.specs()]

    # --- subscriptions ----------------------------------------------------------------------------
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

    # --- the engine side (called synchronously by the exchange: keep cheap) ---------------------------
    def _on_feed(self, msg: dict) -> None:
        s = msg["symbol"]
        self._cursor[s] += 1
        self._last_pub[s] = self.clock()
        if msg["type"] == "level2_update":
            msg["ts_ns"] = time.time_ns()   # publication time: clients measure their delivery lag from it
        # kept as text: thousands of message dicts (and their lists) living long enough to be promoted would
        # make each full garbage collection scan them, a pause of tens of ms in the middle of requests
        text = _dumps(msg)
        self._history[s].append((self._cursor[s], text))
        if self._by_symbol.get(s):
            # only for a symbol someone streams: a later subscriber starts from a snapshot that has this change
            self._pending.setdefault(s, []).append((msg, text))
            self._schedule()

    def _on_outputs(self, events, reports, fills) -> None:
        # rows as tuples (one C call per array) and names from tables: this runs inside every order's call
        accounts = self._accounts_by_owner
        infos = self.exchange._infos
        if len(fills):
            for f in fills.tolist():
                sym, q, px = f[_F_SYM], f[_F_QTY], f[_F_PX]
                buyer, seller = (f[_F_TAKER], f[_F_MAKER]) if f[_F_AGG] == 0 else (f[_F_MAKER], f[_F_TAKER])
                for owner, sign in ((buyer, 1), (seller, -1)):
                    p = self.positions.setdefault(owner, {}).setdefault(sym, [0, 0])
                    p[0] += sign * q
                    p[1] -= sign * q * px
                maker = accounts.get(f[_F_MAKER])
                if maker is not None:
                    oid = f[_F_MAKER_OID]
                    if self.exchange._engine.order(sym, oid) is None:
                        self._open.get(maker, {}).pop(oid, None)
                        if self._clid_of:
                            self._ended(oid)
                    if self._by_account.get(maker):
                        info = infos[sym]
                        self._pending_exec.setdefault(maker, []).append(dict(
                            type="execution_report", kind="fill", account=maker, symbol=info.name, order_id=oid,
                            side="sell" if f[_F_AGG] == 0 else "buy", price=info.price(px), qty=info.qty(q),
                            liquidity="maker", seq=f[_F_SEQ], ts_ns=f[_F_TS]))
        if not accounts:
            return
        owners = reports["owner"].tolist()
        rows = None
        for k, owner in enumerate(owners):
            account = accounts.get(owner)
            if account is None:
                continue
            if rows is None:
                rows = reports.tolist()
            r = rows[k]
            info = infos[r[_R_SYM]]
            oid = r[_R_OID]
            open_ = self._open.setdefault(account, {})
            if r[_R_REMAINING] > 0 and r[_R_STATUS] in _LIVE:
                open_[oid] = info.name
            elif r[_R_STATUS] != _REJECTED or r[_R_ACTION] == _ADD:
                open_.pop(oid, None)
                if self._clid_of:
                    self._ended(oid)
                # ended: remembered a while (a late cancel gets "not live", not "unknown"), then forgotten
                done = self._done_symbol
                done[oid] = info.name
                if len(done) > _DONE_KEEP:
                    done.popitem(last=False)
            if self._by_account.get(account):       # nobody streams this account's reports: build none
                self._pending_exec.setdefault(account, []).append(dict(
                    type="execution_report", kind="report", account=account, **_report_row(info, r)))
        if self._pending_exec:
            self._schedule()

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
                whole = _dumps(_conflate(deltas))
            else:
                whole = next((t for m, t in msgs if m["type"] == "level2_update"), None)
            first = deltas[0]["seq"] if deltas else 0
            shared: dict[tuple, Batch] = {}         # (trades?, level2?) -> the batch of that channel set
            for sub in list(subs):
                ch = sub.channels.get(s, ())
                key = ("trades" in ch and bool(trades), whole is not None and "level2" in ch)
                if key[1] and sub.snap_seq.get(s, -1) >= first:
                    # subscribed in the middle of this batch: only the deltas that follow its snapshot
                    part = _conflate([m for m in deltas if m["seq"] > sub.snap_seq[s]])
                    batch = Batch(status + (trades if key[0] else []) + ([_dumps(part)] if part else []))
                else:
                    batch = shared.get(key)
                    if batch is None:
                        batch = shared[key] = Batch(status + (trades if key[0] else []) + ([whole] if key[1] else []))
                if not batch.texts:
                    continue
                if not sub.push(batch, woken):
                    self._dropped(sub)
                n += len(batch)
        for account, msgs in pending_exec.items():
            subs = self._by_account.get(account)
            if not subs:
                continue
            batch = Batch([_dumps(m) for m in msgs])
            for sub in list(subs):
                if not sub.push(batch, woken):
                    self._dropped(sub)
                n += len(batch)
        for sub in woken:
            if sub.dropped is None:
                sub.on_wake()
        self.stats["messages_queued"] += n
        return n

    def _dropped(self, sub: Subscriber) -> None:
        self.stats["clients_dropped"] += 1
        self.incidents.record("market_data", f"client dropped: {sub.dropped}", "warning", account=sub.account)
        self.remove_subscriber(sub)

    # --- driving the market and watching health --------------------------------------------------
    def step_market(self, schedule: Callable[[Callable], object] | None = None) -> None:
        """One tick of the market (agents act); driver failures are isolated and retried with backoff.

        With ``schedule`` (``IOLoop.add_callback``) and a market that offers ``step_parts()``, the parts run
        as a chain of separate callbacks, so that requests are served between them (a tick never holds the
        loop for more than one agent's turn); a tick still in progress when the next is due is not doubled.
        """
        d = self.driver
        now = self.clock()
        if d["resume_at"] is not None:
            if now < d["resume_at"]:
                return
            d["resume_at"] = None
            d["status"] = "running"
            self.incidents.record("agents", "market driver resumed", "info")
        parts_fn = getattr(self.market, "step_parts", None)
        if schedule is not None and parts_fn is not None:
            if self._stepping:
                return
            self._stepping = True
            self._run_parts(iter(parts_fn()), schedule, now)
            return
        try:
            self.market.step()
        except Exception as e:      # a failing driver must not take the server down
            self._driver_failed(e, now)
        self._collect_market_incidents()

    def _run_parts(self, parts, schedule, now) -> None:
        part = next(parts, None)
        if part is None:
            self._stepping = False
            self._collect_market_incidents()
            return
        try:
            part()
        except Exception as e:      # the rest of this tick is dropped, as a failing step() would be
            self._stepping = False
            self._driver_failed(e, now)
            self._collect_market_incidents()
            return
        schedule(lambda: self._run_parts(parts, schedule, now))

    def _driver_failed(self, e: BaseException, now: float) -> None:
        d = self.driver
        d["failures"] += 1
        d["last_error"] = f"{type(e).__name__}: {e}"
        backoff = min(30.0, 0.5 * 2 ** (d["failures"] - 1))
        d["resume_at"] = now + backoff
        d["status"] = "backoff"
        self.incidents.record("agents", f"market driver failed ({d['last_error']}); retry in {backoff:.1f}s",
                              "error")

    def _collect_market_incidents(self) -> None:
        for inc in self.market.incidents():
            inc = dict(inc)
            self.incidents.record(inc.pop("component", "agents"), inc.pop("message", ""),
                                  inc.pop("severity", "warning"), **inc)

    def check(self, integrity: bool = True) -> None:
        """Periodic check: flag stale symbols (and tell their subscribers), verify the engine's integrity, close
        the streams whose API token was revoked."""
        self.drop_revoked()
        now = self.clock()
        driver_down = self.driver["status"] != "running"
        for s in self.exchange.symbols:
            age = now - self._last_pub[s]
            stale = driver_down or age > self.stale_after_s
            if stale != self._stale[s]:
                self._stale[s] = stale
                why = "market driver down" if driver_down else f"no update for {age:.1f}s"
                if stale:
                    self.incidents.record("market_data", f"{s} market data stale ({why})", "warning", symbol=s)
                else:
                    self.incidents.record("market_data", f"{s} market data fresh again", "info", symbol=s)
                status = dict(type="status", symbol=s, stale=stale, reason=why if stale else None)
                self._pending.setdefault(s, []).append((status, _dumps(status)))
                self._schedule()
        if integrity:
            try:
                self.exchange.check_integrity()
                self._integrity = dict(status="ok", checked_at=time.time(), error=None)
            except LobError as e:
                if self._integrity["status"] == "ok":
                    self.incidents.record("engine", f"integrity check failed: {e}", "critical")
                self._integrity = dict(status="down", checked_at=time.time(), error=str(e))

    def health(self) -> dict:
        """Per-component health: engine, market data publisher, agents, risk, journal."""
        now = self.clock()
        ex = self.exchange
        intake = getattr(ex, "_intake_error", None)
        engine = dict(status="down" if intake or self._integrity["status"] != "ok" else "ok", seq=ex.seq,
                      integrity=self._integrity, intake_error=intake)
        stale = [s for s, v in self._stale.items() if v]
        md = dict(status="degraded" if stale else "ok", stale_symbols=stale,
                  last_update_age_s={s: round(now - t, 3) for s, t in self._last_pub.items()},
                  clients=len(self.subscribers), clients_dropped=self.stats["clients_dropped"])
        rows = self.market.agents()
        bad = [r for r in rows if r.get("status") not in ("running", "done")]
        if self.driver["status"] != "running":
            a_status = "down"
        elif rows and len(bad) == len(rows):
            a_status = "down"
        else:
            a_status = "degraded" if bad else "ok"
        agents = dict(status=a_status, kind=getattr(self.market, "kind", "?"), driver=dict(self.driver),
                      agents=rows)
        hook = ex.risk.inner if isinstance(ex.risk, _RiskHook) else ex.risk
        risk = dict(status="ok" if self.conservative is None else "degraded",
                    engine_hook=type(hook).__name__ if hook is not None else None,
                    account_limits=self.limits.as_dict(), conservative=self.conservative)
        if self.conservative is not None:
            risk["effective_limits"] = self.limits.scaled(self.conservative_factor).as_dict()
        j = getattr(ex, "journal", None)
        if j is None:
            journal = dict(status="disabled")
        else:
            journal = dict(status="down" if intake else "ok", path=str(getattr(j, "path", "")))
        comps = dict(engine=engine, market_data=md, agents=agents, risk=risk, journal=journal)
        worst = max((_STATUS_RANK.get(c["status"], 2) for c in comps.values()), default=0)
        return dict(status=["ok", "degraded", "down"][worst], components=comps, incidents=self.incidents.total)

    def performance(self) -> dict:
        snap = self.perf.snapshot()
        snap["latency"] = [{k: (_finite(v) if isinstance(v, float) else v) for k, v in r.items()}
                           for r in snap["latency"]]
        snap["server"] = dict(clients=len(self.subscribers), **{k: int(v) for k, v in self.stats.items()})
        return snap

    def prometheus(self) -> str:
        lines = [self.perf.prometheus().rstrip("\n"),
                 "# HELP lob_server_clients WebSocket clients connected now",
                 "# TYPE lob_server_clients gauge", f"lob_server_clients {len(self.subscribers)}"]
        for key, help_ in (("clients_dropped", "Slow WebSocket clients dropped"),
                           ("messages_queued", "Messages handed to client queues"),
                           ("http_requests", "API requests served")):
            lines += [f"# HELP lob_server_{key}_total {help_}", f"# TYPE lob_server_{key}_total counter",
                      f"lob_server_{key}_total {int(self.stats[key])}"]
        lines += ["# HELP lob_incidents_total Incidents recorded", "# TYPE lob_incidents_total counter",
                  f"lob_incidents_total {self.incidents.total}",
                  "# HELP lob_exchange_seq Last exchange sequence number", "# TYPE lob_exchange_seq gauge",
                  f"lob_exchange_seq {self.exchange.seq}"]
        return "\n".join(lines) + "\n"


def _number(body: dict, field: str, required: bool = False):
    v = body.get(field)
    if v is None:
        if required:
            raise ApiError(400, f"field {field!r} is required", "invalid_field")
        return None
    # an int is compared as it is: math.isfinite(10**400) raises OverflowError
    ok = not isinstance(v, bool) and (isinstance(v, int) or (isinstance(v, float) and math.isfinite(v))) \
        and 0 < v <= _MAX_NUMBER
    if not ok:
        shown = repr(v) if not isinstance(v, int) or abs(v) < 10 ** 30 else f"an integer of {len(str(abs(v)))} digits"
        raise ApiError(400, f"field {field!r} must be a number in (0, 1e11], got {shown}", "invalid_field")
    return v


def _no_nulls(body: dict) -> None:
    for k, v in body.items():
        if v is None:
            raise ApiError(400, f"field {k!r} is null: leave an optional field out instead", "invalid_field")


def _choice(body: dict, field: str, allowed: tuple, default=None):
    v = body.get(field, default)
    if v is None:
        return default
    if not isinstance(v, str) or v not in allowed:
        raise ApiError(400, f"field {field!r} must be one of {list(allowed)}, got {v!r}", "invalid_field")
    return v


def _conflate(deltas: list[dict]) -> dict | None:
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


_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _finite(x):
    return x if x is None or (isinstance(x, (int, float)) and math.isfinite(x)) else None


def _num(x):
    x = float(x)
    return int(x) if x.is_integer() else x


def _report(r) -> dict:
    d = r.as_dict()
    d["trades"] = [dict(seq=t.seq, price=t.price, qty=t.qty, maker_order_id=t.maker_order_id) for t in r.trades]
    d.pop("owner", None)
    return d


def _report_row(info, r: tuple) -> dict:
    """An execution report from a ``REPORT_DTYPE`` row as a tuple (``reports.tolist()``)."""
    reason = r[_R_REASON]
    return dict(symbol=info.name, order_id=r[_R_OID], seq=r[_R_SEQ], ts_ns=r[_R_TS],
                action=_ACTION_NAMES[r[_R_ACTION]], side="buy" if r[_R_SIDE] == 0 else "sell",
                status=_STATUS_NAMES[r[_R_STATUS]], reason=_REASON_NAMES[reason] if reason else None,
                price=info.price(r[_R_PX]) if r[_R_PX] else None,
                last_filled_qty=info.qty(r[_R_FILLED]), filled_qty=info.qty(r[_R_CUM]),
                remaining_qty=info.qty(r[_R_REMAINING]))
