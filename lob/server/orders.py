"""Order entry: validation of REST order requests, submit / cancel / modify through the exchange, client order
ids, and the tracking of account orders and positions from the exchange's outputs."""
from __future__ import annotations

import collections
import math
import re
import time

import lob
from lob.errors import InvalidOrderError, LobError, UnknownSymbolError
from lob.server.errors import ApiError

__all__ = ["OrderEntry", "CLIENT_ORDER_ID"]

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
_MAX_NUMBER = 1e11      # the schema's maximum
_SUBMIT_FIELDS = frozenset(("symbol", "side", "qty", "price", "type", "tif", "post_only", "display_qty", "stop_price",
                            "client_order_id"))
_SIDES, _TYPES, _TIFS = ("buy", "sell"), ("limit", "market", "stop", "stop_limit"), ("gtc", "ioc", "fok", "day")
# (price, stop_price) of each order type (the OpenAPI document states the same): True required, False forbidden
_PRICES = {"limit": (True, False), "market": (False, False), "stop": (False, True), "stop_limit": (True, True)}
CLIENT_ORDER_ID = re.compile(r"^[\x21-\x7e]{1,64}$")
_DONE_KEEP = 100_000        # ended orders whose symbol the server still knows


class OrderEntry:
    """The hub's order-entry role (a part of :class:`lob.server.hub.Hub`): accounts' orders and positions."""

    def _init_orders(self) -> None:
        self._accounts_by_owner: dict[int, str] = {}
        self._open: dict[str, dict[int, str]] = {}         # account -> {order_id: symbol}
        self._done_symbol = collections.OrderedDict()      # the latest ended orders of accounts (bounded): symbol
        self.client_ids: dict[tuple[str, str], tuple] = {}  # (account, client order id) -> (symbol, id, report)
        self._clid_of: dict[int, tuple[str, str]] = {}      # order id -> (account, client order id), live only
        self.client_log = None                              # ClientIdLog of a durable server (lob.server.store)
        self.positions: dict[int, dict[int, list[int]]] = {}   # owner -> symbol index -> [position lots, cash ticks*lots]

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
            o = self.exchange.order_record(symbol, oid)
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

    @property
    def open_order_count(self) -> int:
        """Open orders of the server's accounts."""
        return sum(len(o) for o in self._open.values())

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
            kw["order_id"] = self.exchange.next_order_id
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
            o = self.exchange.order_record(info.index, oid)
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
            info = self.exchange.info(i)
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


    # --- the engine side (called synchronously by the exchange: keep cheap) ---------------------------
    def _on_outputs(self, events, reports, fills) -> None:
        # rows as tuples (one C call per array) and names from tables: this runs inside every order's call
        accounts = self._accounts_by_owner
        info_of = self.exchange.info
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
                    if self.exchange.order_record(sym, oid) is None:
                        self._open.get(maker, {}).pop(oid, None)
                        if self._clid_of:
                            self._ended(oid)
                    if self._by_account.get(maker):
                        info = info_of(sym)
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
            info = info_of(r[_R_SYM])
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
            self._schedule()


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

