"""The OpenAPI 3 document of the REST API (served at ``/api/openapi.json``; schemathesis tests against it)."""
from __future__ import annotations

import copy

__all__ = ["openapi_document"]

_NUM = {"type": "number"}
_NNUM = {"type": "number", "nullable": True}
_INT = {"type": "integer"}
_STR = {"type": "string"}
_NSTR = {"type": "string", "nullable": True}


_QTY = {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 1e11}
_CLID = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[\\x21-\\x7e]{1,64}$",
         "description": "the client's id of the order (FIX ClOrdID), unique per account among its live orders: "
                        "a POST repeating a live order's client_order_id places nothing and returns that order's "
                        "original report with status 200 (safe retries, also across a server restart); once the "
                        "order has ended (filled, cancelled, rejected) the id may be used again"}


_ORDER_FIELDS = {
    "symbol": {"type": "string", "example": "AAPL"},
    "side": {"type": "string", "enum": ["buy", "sell"]},
    "qty": _QTY,
    "tif": {"type": "string", "enum": ["gtc", "ioc", "fok", "day"], "default": "gtc"},
    "post_only": {"oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["reject", "slide"]}]},
    "display_qty": dict(_QTY, description="iceberg: the quantity shown"),
    "client_order_id": _CLID}
_PRICE_FIELDS = {"price": dict(_QTY, description="limit price"), "stop_price": dict(_QTY, description="trigger price")}


def _order(type_: str, prices: list, optional_type: bool = False) -> dict:
    props = dict(_ORDER_FIELDS, type={"type": "string", "enum": [type_]}, **{k: _PRICE_FIELDS[k] for k in prices})
    return {"type": "object", "additionalProperties": False, "properties": props,
            "required": ["symbol", "side", "qty"] + ([] if optional_type else ["type"]) + prices,
            "description": f"a {type_} order" + (" (the default type)" if optional_type else "")}


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema, description="OK"):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _err(description):
    return _json(_ref("Error"), description)


_SCHEMAS = {
    "Error": {"type": "object", "required": ["message", "reason"], "properties": {
        "message": _STR, "reason": _NSTR, "report": _ref("Report")}},
    # one object per order type, each with only the fields it takes (the server answers 400 naming a field
    # that its type does not take, or a missing one)
    "OrderRequest": {"oneOf": [_ref("LimitOrder"), _ref("MarketOrder"), _ref("StopOrder"), _ref("StopLimitOrder")],
                     "description": "an order: its type decides which prices it takes"},
    "LimitOrder": _order("limit", ["price"], optional_type=True),
    "MarketOrder": _order("market", []),
    "StopOrder": _order("stop", ["stop_price"]),
    "StopLimitOrder": _order("stop_limit", ["price", "stop_price"]),
    "ModifyRequest": {"type": "object", "additionalProperties": False, "properties": {
        "qty": dict(_QTY, description="new total quantity, filled part included"),
        "price": _QTY,
        "symbol": _STR},
        "anyOf": [{"required": ["qty"]}, {"required": ["price"]}],
        "description": "give qty and/or price"},
    "Trade": {"type": "object", "required": ["seq", "price", "qty"], "properties": {
        "seq": _INT, "price": _NUM, "qty": _NUM, "maker_order_id": _INT}},
    "Report": {"type": "object", "required": ["seq", "symbol", "order_id", "status", "filled_qty", "remaining_qty"],
               "properties": {
                   "seq": _INT, "ts_ns": _INT, "symbol": _STR, "order_id": _INT, "action": _NSTR, "side": _NSTR,
                   "type": _NSTR, "price": _NNUM,
                   "status": {"type": "string",
                              "enum": ["new", "partially_filled", "filled", "cancelled", "rejected"]},
                   "reason": _NSTR, "filled_qty": _NUM, "last_filled_qty": _NUM, "remaining_qty": _NUM,
                   "avg_price": _NNUM, "n_trades": _INT, "trades": {"type": "array", "items": _ref("Trade")},
                   "client_order_id": _STR,
                   "text": {"type": "string", "description": "why a request was rejected by the symbol's rules "
                                                             "(lot and tick sizes, ranges) before reaching the book"}}},
    "Level": {"type": "array", "items": _NUM, "minItems": 2, "maxItems": 3,
              "description": "[price, qty] or [price, qty, orders]"},
    "Book": {"type": "object", "required": ["symbol", "seq", "bids", "asks", "stale"], "properties": {
        "symbol": _STR, "seq": _INT, "exchange_seq": _INT,
        "bids": {"type": "array", "items": _ref("Level")}, "asks": {"type": "array", "items": _ref("Level")},
        "best_bid": {"type": "array", "items": _NUM, "nullable": True},
        "best_ask": {"type": "array", "items": _NUM, "nullable": True},
        "mid": _NNUM, "spread": _NNUM, "last_price": _NNUM, "stale": {"type": "boolean"}}},
    "TapeTrade": {"type": "object", "required": ["seq", "price", "qty", "aggressor"], "properties": {
        "seq": _INT, "ts_ns": _INT, "price": _NUM, "qty": _NUM, "aggressor": {"type": "string", "enum": ["buy", "sell"]},
        "maker_order_id": _INT, "taker_order_id": _INT, "maker_owner": _NSTR, "taker_owner": _NSTR}},
    "Trades": {"type": "object", "required": ["symbol", "trades"], "properties": {
        "symbol": _STR, "trades": {"type": "array", "items": _ref("TapeTrade")}}},
    "Bar": {"type": "object", "required": ["time", "open", "high", "low", "close", "volume"], "properties": {
        "time": _STR, "open": _NUM, "high": _NUM, "low": _NUM, "close": _NUM, "volume": _NUM, "trades": _INT}},
    "Bars": {"type": "object", "required": ["symbol", "freq", "bars"], "properties": {
        "symbol": _STR, "freq": _STR, "bars": {"type": "array", "items": _ref("Bar")}}},
    "Level2Update": {"type": "object", "required": ["type", "symbol"], "properties": {
        "type": {"type": "string", "enum": ["level2_update", "trade", "status"]}, "symbol": _STR, "seq": _INT,
        "prev_seq": _INT, "snapshot": {"type": "boolean"}}, "additionalProperties": True},
    "Updates": {"type": "object", "required": ["symbol", "cursor", "messages", "stale"], "properties": {
        "symbol": _STR, "cursor": {"type": "integer", "description": "pass as ?since= on the next poll"},
        "stale": {"type": "boolean"},
        "snapshot": {"allOf": [_ref("Level2Update")], "nullable": True,
                     "description": "present when since is missing or too old: rebuild from it"},
        "messages": {"type": "array", "items": _ref("Level2Update")}}},
    "OpenOrders": {"type": "object", "required": ["account", "orders"], "properties": {
        "account": _STR, "orders": {"type": "array", "items": {"type": "object", "properties": {
            "order_id": _INT, "symbol": _STR, "side": _STR, "price": _NNUM, "qty": _NUM, "filled_qty": _NUM}}}}},
    "Positions": {"type": "object", "required": ["account", "positions"], "properties": {
        "account": _STR, "positions": {"type": "array", "items": {"type": "object", "properties": {
            "symbol": _STR, "position": _NUM, "pnl": _NUM}}}}},
    "Symbols": {"type": "object", "required": ["symbols"], "properties": {
        "symbols": {"type": "array", "items": {"type": "object", "properties": {
            "name": _STR, "tick_size": _NUM, "lot_size": _NUM}}}}},
    "Performance": {"type": "object", "required": ["latency", "throughput", "memory", "server"], "properties": {
        "latency": {"type": "array", "items": {"type": "object"}},
        "throughput": {"type": "object", "properties": {"current": _NUM, "peak": _NUM, "average": _NUM}},
        "memory": {"type": "object"}, "server": {"type": "object"}}},
    "Incidents": {"type": "object", "required": ["total", "incidents"], "properties": {
        "total": _INT, "incidents": {"type": "array", "items": {"type": "object", "required": ["id", "component", "message"],
                                                                "properties": {"id": _INT, "ts": _NUM,
                                                                               "component": _STR, "severity": _STR,
                                                                               "message": _STR}}}}},
    "Health": {"type": "object", "required": ["status", "components"], "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
        "components": {"type": "object", "required": ["engine", "market_data", "agents", "risk", "journal"],
                       "additionalProperties": {"type": "object", "required": ["status"], "properties": {
                           "status": {"type": "string", "enum": ["ok", "degraded", "down", "disabled"]}}}},
        "incidents": _INT}},
}

_SYMBOL = {"name": "symbol", "in": "path", "required": True, "schema": {"type": "string"}, "example": "AAPL"}
_ORDER_ID = {"name": "order_id", "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1, "maximum": 2 ** 63 - 1}}
_SYMBOL_Q = {"name": "symbol", "in": "query", "required": False, "schema": {"type": "string"},
             "description": "the order's symbol (needed only for orders not placed through this server)"}


def _q(name, lo, hi, description=""):
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "integer", "minimum": lo, "maximum": hi}}


_COMMON = {"429": _err("rate limited"), "401": _err("unknown API token")}
_SECURED = [{"bearerAuth": []}]


def _paths():
    md = {"404": _err("unknown symbol"), "400": _err("bad parameter"), **_COMMON}
    submit = {"summary": "Submit an order", "security": _SECURED,
              "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("OrderRequest")}}},
              "responses": {"201": _json(_ref("Report"), "accepted"),
                            "200": _json(_ref("Report"), "rejected by a business rule (see reason), or the original "
                                                         "report of a live order with the same client_order_id"),
                            "400": _err("malformed order"), "404": _err("unknown symbol"),
                            "413": _err("body too large"), **_COMMON}}
    return {
        "/api/orders": {
            "post": dict(submit, operationId="submitOrder"),
            "get": {"summary": "Open orders of the calling account", "operationId": "listOrders",
                    "security": _SECURED, "responses": {"200": _json(_ref("OpenOrders")), **_COMMON}}},
        "/api/submit": {"post": dict(submit, operationId="submitOrderAlias",
                                     summary="Submit an order (alias of POST /api/orders)")},
        "/api/orders/{order_id}": {
            "parameters": [_ORDER_ID, _SYMBOL_Q],
            "delete": {"summary": "Cancel an order of the calling account", "operationId": "cancelOrder",
                       "security": _SECURED, "responses": {
                           "200": _json(_ref("Report"), "the cancel's report"), "400": _err("bad id"),
                           "403": _err("another account's order (not_owner)"),
                           "404": _err("unknown order or symbol"), **_COMMON}},
            "patch": {"summary": "Modify an order's total quantity and/or price", "operationId": "modifyOrder",
                      "security": _SECURED,
                      "requestBody": {"required": True,
                                      "content": {"application/json": {"schema": _ref("ModifyRequest")}}},
                      "responses": {"200": _json(_ref("Report"), "the modify's report"),
                                    "400": _err("bad request"), "403": _err("another account's order (not_owner)"),
                                    "404": _err("unknown order or symbol"), "413": _err("body too large"),
                                    **_COMMON}}},
        "/api/positions": {"get": {"summary": "Positions and PnL of the calling account", "security": _SECURED,
                                   "operationId": "positions",
                                   "responses": {"200": _json(_ref("Positions")), **_COMMON}}},
        "/api/symbols": {"get": {"summary": "Listed symbols and their rules", "operationId": "symbols",
                                 "responses": {"200": _json(_ref("Symbols")), **_COMMON}}},
        "/api/book/{symbol}": {"get": {"summary": "Level-2 book", "operationId": "book",
                                       "parameters": [_SYMBOL, _q("depth", 1, 100, "levels per side (10)")],
                                       "responses": {"200": _json(_ref("Book")), **md}}},
        "/api/trades/{symbol}": {"get": {"summary": "Recent trades", "operationId": "trades",
                                         "parameters": [_SYMBOL, _q("limit", 1, 1000, "trades (50)")],
                                         "responses": {"200": _json(_ref("Trades")), **md}}},
        "/api/bars/{symbol}": {"get": {"summary": "OHLCV bars", "operationId": "bars", "parameters": [
            _SYMBOL, {"name": "freq", "in": "query", "required": False,
                      "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,3}(s|min|h|D)$"}}],
            "responses": {"200": _json(_ref("Bars")), **md}}},
        "/api/updates/{symbol}": {"get": {
            "summary": "Polling fallback for clients without WebSocket: messages after a cursor",
            "operationId": "updates",
            "parameters": [_SYMBOL, _q("since", 0, 2 ** 62, "cursor of the previous response"),
                           _q("limit", 1, 10000, "messages (1000)")],
            "responses": {"200": _json(_ref("Updates")), **md}}},
        "/api/performance/system": {"get": {"summary": "Latency, throughput, memory, server counters",
                                            "operationId": "performance",
                                            "responses": {"200": _json(_ref("Performance")), **_COMMON}}},
        "/api/incidents": {"get": {"summary": "Recorded incidents", "operationId": "incidents",
                                   "parameters": [_q("limit", 1, 2000)],
                                   "responses": {"200": _json(_ref("Incidents")), "400": _err("bad parameter"),
                                                 **_COMMON}}},
        "/healthz": {"get": {"summary": "Per-component health", "operationId": "health",
                             "responses": {"200": _json(_ref("Health"), "ok or degraded"),
                                           "503": _json(_ref("Health"), "a component is down"), **_COMMON}}},
        "/metrics": {"get": {"summary": "Prometheus text exposition", "operationId": "metrics",
                             "responses": {"200": {"description": "metrics",
                                                   "content": {"text/plain": {"schema": {"type": "string"}}}},
                                           **_COMMON}}},
    }


def openapi_document(prefix: str = "") -> dict:
    """The OpenAPI 3.0 document; ``prefix`` is the mount point (``/lob`` inside Jupyter)."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "lob exchange API", "version": "1.0",
                 "description": "REST API of the lob simulated exchange. Market data is public; order entry "
                                "needs an API token (`lob token create NAME`). WebSocket: `/ws`, send "
                                '{"op": "subscribe", "symbol": "AAPL", "channels": ["level2", "trades"]}.'},
        "servers": [{"url": prefix or "/"}],
        "paths": _paths(),
        "components": {"schemas": copy.deepcopy(_SCHEMAS),
                       "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    }
