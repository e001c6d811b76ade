"""The server's risk guard (integers in, a reason code out, in the exchange's risk slot) and its /metrics."""
from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

import lob
from lob.server import AccountLimits, Accounts, ExchangeMarket, Hub
from lob.server.guard import RiskGuard

RISK_MAX_QTY, RISK_MAX_NOTIONAL = int(lob.Reason.RISK_MAX_QTY), int(lob.Reason.RISK_MAX_NOTIONAL)
RISK_OPEN_ORDERS = int(lob.Reason.RISK_OPEN_ORDERS)


def _hub(limits, **spec):
    ex = lob.Exchange(symbols=["X"], **spec)
    return Hub(ExchangeMarket(ex), Accounts({"token-alice": "alice"}), limits=limits)


def test_the_guard_sits_in_the_exchange_risk_slot_and_answers_reason_codes():
    hub = _hub(AccountLimits(max_qty=10, max_notional=1_000, max_open_orders=2))
    ex = hub.exchange
    assert ex.risk is hub.guard and isinstance(ex.risk, RiskGuard)
    hub.authenticate("token-alice")
    alice = ex.owner_id("alice")
    # integers in (symbol index, side, lots, ticks, owner id, type), an int out
    assert ex.risk.check_submit(0, 0, 10, 100 * 100, alice, 0) == 0            # 10 x 100.00 = 1000: at the limit
    assert ex.risk.check_submit(0, 0, 11, 1, alice, 0) == RISK_MAX_QTY
    assert ex.risk.check_submit(0, 0, 10, 100 * 100 + 1, alice, 0) == RISK_MAX_NOTIONAL
    assert ex.risk.check_submit(0, 0, 10, 0, alice, 1) == 0                    # a market order has no notional
    assert type(ex.risk.check_submit(0, 0, 11, 1, alice, 0)) is int
    # owners that are not the server's accounts (bots) are not its to limit
    assert ex.risk.check_submit(0, 0, 10**6, 10**6, ex.owner_id("bot"), 0) == 0
    # the open-order count of the account
    for _ in range(2):
        assert ex.submit("X", "buy", 1, price=1.0, owner="alice").status == "new"
    assert ex.risk.check_submit(0, 0, 1, 100, alice, 0) == RISK_OPEN_ORDERS
    assert ex.submit("X", "buy", 1, price=1.0, owner="alice").reason == "risk_open_orders"


@pytest.mark.parametrize("lot_size, tick_size", [(0.01, 0.01), (0.001, 0.05), (1.0, 0.0001)])
def test_the_bounds_are_exact_in_integer_units(lot_size, tick_size):
    # 2.29 / 0.01 is 228.99999999999997 in floats: the integer bound is exactly 229 lots
    hub = _hub(AccountLimits(max_qty=2.29, max_notional=7.0, max_open_orders=10), lot_size=lot_size,
               tick_size=tick_size)
    g, alice = hub.guard, hub.exchange.owner_id("alice")
    hub.authenticate("token-alice")
    lots = int(Decimal("2.29") / Decimal(str(lot_size)))
    assert g.check_submit(0, 0, lots, 0, alice, 1) == 0
    assert g.check_submit(0, 0, lots + 1, 0, alice, 1) == RISK_MAX_QTY
    # notional: price x qty = ticks x tick x 1 lot x lot <= 7.0, at the bound exactly (decimal arithmetic)
    ticks = int(Decimal("7.0") / (Decimal(str(tick_size)) * Decimal(str(lot_size))))
    assert g.check_submit(0, 0, 1, ticks, alice, 0) == 0
    assert g.check_submit(0, 0, 1, ticks + 1, alice, 0) == RISK_MAX_NOTIONAL


def test_conservative_mode_scales_the_integer_bounds():
    class Broken:
        def check_submit(self, *args):
            raise RuntimeError("risk database unreachable")

    hub = _hub(AccountLimits(max_qty=100, max_notional=10**9, max_open_orders=10))
    hub.guard.inner = Broken()
    bot = hub.exchange.owner_id("bot")
    # the failing check is answered by the limits halved, for every owner
    assert hub.guard.check_submit(0, 0, 51, 100, bot, 0) == RISK_MAX_QTY
    assert hub.conservative["failures"] == 1
    assert hub.guard.check_submit(0, 0, 50, 100, bot, 0) == 0
    hub.guard.inner = None
    hub.clear_conservative()
    assert hub.conservative is None and hub.health()["components"]["risk"]["status"] == "ok"
    assert hub.guard.check_submit(0, 0, 100, 100, bot, 0) == 0


def test_metrics_are_prometheus_client_families_with_the_server_names():
    hub = _hub(AccountLimits())
    hub.exchange.submit("X", "buy", 1, price=1.0, owner="bot")
    hub.stats["http_requests"] += 3
    hub.incidents.record("test", "one incident")
    fams = {f.name: f for f in text_string_to_metric_families(hub.prometheus())}
    for name in ("lob_latency_ns", "lob_latency_samples", "lob_throughput_events_per_second", "lob_memory_bytes",
                 "lob_server_clients", "lob_server_clients_dropped", "lob_server_messages_queued",
                 "lob_server_http_requests", "lob_incidents", "lob_exchange_seq"):
        assert name in fams, name
    value = {s.name: s.value for f in fams.values() for s in f.samples if not s.labels}
    assert value["lob_server_http_requests_total"] == 3
    assert value["lob_incidents_total"] == 1
    assert value["lob_exchange_seq"] == hub.exchange.seq > 0
    assert fams["lob_server_clients_dropped"].type == "counter" and fams["lob_server_clients"].type == "gauge"
