"""REST API of lob.server on a free loopback port (tornado.testing)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tornado.testing import AsyncHTTPTestCase

import lob
import lob.replay
from lob.marketdata import BookBuilder
from lob.server import AccountLimits, Accounts, Hub, make_app
from lob.errors import ConfigError
from lob.server.market import BotMarket, ExchangeMarket, ReplayMarket

from server_support import TOKENS

ALICE = {"Authorization": "Bearer tok-alice-0001"}
BOB = {"Authorization": "Bearer tok-bob-000002"}


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class ServerCase(AsyncHTTPTestCase):
    hub_kwargs: dict = {}

    def get_app(self):
        self.clock = FakeClock()
        market = BotMarket(seed=5, clock=self.clock)
        self.hub = Hub(market, Accounts(TOKENS, path=False), clock=self.clock, **self.hub_kwargs)
        for _ in range(10):
            self.hub.step_market()
        return make_app(self.hub)

    def req(self, method, path, body=None, headers=None, raw=None):
        kw = {}
        if body is not None or raw is not None:
            kw["body"] = raw if raw is not None else json.dumps(body)
        elif method in ("POST", "PATCH"):
            kw["body"] = ""
        r = self.fetch(path, method=method, headers=headers or {}, raise_error=False, **kw)
        ctype = r.headers.get("Content-Type", "")
        data = json.loads(r.body) if ctype.startswith("application/json") and r.body else r.body
        return r.code, data


class TestMarketData(ServerCase):
    def test_book_matches_the_engine(self):
        code, b = self.req("GET", "/api/book/AAPL?depth=5")
        assert code == 200
        d = self.hub.exchange.book("AAPL").depth(5)
        assert b["bids"] == [list(x) for x in d["bids"]] and b["asks"] == [list(x) for x in d["asks"]]
        assert b["best_bid"][0] == d["bids"][0][0] and b["stale"] is False
        assert len(b["bids"]) <= 5

    def test_bad_parameters_are_json_400_and_404(self):
        assert self.req("GET", "/api/book/NOPE")[0] == 404
        code, err = self.req("GET", "/api/book/AAPL?depth=0")
        assert code == 400 and "depth" in err["message"]
        assert self.req("GET", "/api/book/AAPL?depth=x")[0] == 400
        code, err = self.req("GET", "/api/nowhere")
        assert code == 404 and err["reason"] == "not_found"
        assert self.req("GET", "/api/bars/AAPL?freq=bogus")[0] == 400

    def test_trades_and_bars_come_from_the_tape(self):
        code, t = self.req("GET", "/api/trades/AAPL?limit=7")
        assert code == 200
        tape = self.hub.exchange.trades("AAPL", 7)
        assert [x["seq"] for x in t["trades"]] == tape["seq"].tolist()
        code, bars = self.req("GET", "/api/bars/AAPL?freq=1min")
        assert code == 200 and bars["freq"] == "1min"
        assert sum(b["volume"] for b in bars["bars"]) == self.hub.exchange.marketdata.all_trades("AAPL")["qty"].sum()

    def test_symbols_openapi_metrics_performance(self):
        code, s = self.req("GET", "/api/symbols")
        assert [x["name"] for x in s["symbols"]] == ["AAPL", "GOOGL", "MSFT", "TSLA"]
        code, doc = self.req("GET", "/api/openapi.json")
        assert code == 200 and doc["openapi"].startswith("3.") and "/api/orders/{order_id}" in doc["paths"]
        code, text = self.req("GET", "/metrics")
        assert code == 200 and b"lob_exchange_seq " + str(self.hub.exchange.seq).encode() in text
        assert b"lob_latency_ns" in text
        code, perf = self.req("GET", "/api/performance/system")
        assert code == 200 and perf["throughput"]["events"] > 0 and perf["server"]["http_requests"] >= 1

    def test_polling_rebuilds_the_book(self):
        code, first = self.req("GET", "/api/updates/MSFT")
        assert code == 200 and first["snapshot"]["snapshot"] is True
        client = BookBuilder()
        client.apply(first["snapshot"])
        cursor = first["cursor"]
        for _ in range(5):
            for _ in range(3):
                self.hub.step_market()
            code, up = self.req("GET", f"/api/updates/MSFT?since={cursor}")
            assert code == 200 and up["snapshot"] is None
            for m in up["messages"]:
                client.apply(m)
            cursor = up["cursor"]
        assert client.gaps == []
        d = self.hub.exchange.book("MSFT").depth(50)
        assert client.books["MSFT"]["bids"] == [[p, q] for p, q, _ in d["bids"]]
        assert client.books["MSFT"]["asks"] == [[p, q] for p, q, _ in d["asks"]]
        # a cursor from the future gets a fresh snapshot
        assert self.req("GET", f"/api/updates/MSFT?since={cursor + 10**6}")[1]["snapshot"] is not None


class TestOrders(ServerCase):
    def test_submit_list_modify_cancel(self):
        code, r = self.req("POST", "/api/orders", {"symbol": "AAPL", "side": "buy", "qty": 5, "price": 100.0},
                           ALICE)
        assert code == 201 and r["status"] == "new" and r["remaining_qty"] == 5
        oid = r["order_id"]
        code, orders = self.req("GET", "/api/orders", headers=ALICE)
        assert [o["order_id"] for o in orders["orders"]] == [oid]
        assert self.req("GET", "/api/orders", headers=BOB)[1]["orders"] == []
        code, m = self.req("PATCH", f"/api/orders/{oid}", {"qty": 3}, ALICE)
        assert code == 200 and m["remaining_qty"] == 3
        assert self.hub.exchange.book("AAPL").order(oid) is not None
        code, c = self.req("DELETE", f"/api/orders/{oid}", headers=ALICE)
        assert code == 200 and c["status"] == "cancelled"
        assert self.req("GET", "/api/orders", headers=ALICE)[1]["orders"] == []
        assert self.req("DELETE", f"/api/orders/{oid}", headers=ALICE)[0] == 404

    def test_cross_account_cancel_and_modify_are_refused(self):
        code, r = self.req("POST", "/api/submit", {"symbol": "TSLA", "side": "sell", "qty": 2, "price": 400.0},
                           ALICE)
        assert code == 201
        oid = r["order_id"]
        code, err = self.req("DELETE", f"/api/orders/{oid}", headers=BOB)
        assert code == 403 and err["reason"] == "not_owner" and err["report"]["reason"] == "not_owner"
        code, err = self.req("PATCH", f"/api/orders/{oid}", {"price": 401.0}, BOB)
        assert code == 403
        # a bot's order, named by symbol, is refused the same way
        bot_oid = int(self.hub.exchange.book("TSLA").orders()["order_id"].iloc[0])
        assert self.req("DELETE", f"/api/orders/{bot_oid}?symbol=TSLA", headers=BOB)[0] == 403
        o = self.hub.exchange.book("TSLA").order(oid)
        assert o is not None and dict(zip(lob.ORDER_DTYPE.names, o))["qty_lots"] == 2

    def test_fills_reach_positions(self):
        ask = self.hub.exchange.book("GOOGL").best_ask()
        code, r = self.req("POST", "/api/orders", {"symbol": "GOOGL", "side": "buy", "qty": 10, "price": ask[0]},
                           ALICE)
        assert code == 201 and r["filled_qty"] == min(10, ask[1])
        code, pos = self.req("GET", "/api/positions", headers=ALICE)
        assert pos["positions"][0]["position"] == r["filled_qty"]

    def test_auth_is_required_for_order_entry(self):
        body = {"symbol": "AAPL", "side": "buy", "qty": 1, "price": 1.0}
        code, err = self.req("POST", "/api/orders", body)
        assert code == 401 and err["reason"] == "unauthorized"
        assert self.req("POST", "/api/orders", body, {"Authorization": "Bearer nope-nope-nope"})[0] == 401
        assert self.req("GET", "/api/book/AAPL", headers={"Authorization": "Bearer nope-nope-nope"})[0] == 401

    def test_bad_orders_are_400_business_rejects_are_reports(self):
        cases = [None, [], {"symbol": "AAPL"}, {"symbol": "AAPL", "side": "buy", "qty": True, "price": 1.0},
                 {"symbol": "AAPL", "side": "buy", "qty": 1e300, "price": 1.0},
                 {"symbol": "AAPL", "side": "up", "qty": 1, "price": 1.0},
                 {"symbol": "AAPL", "side": "buy", "qty": 1, "price": 1.0, "extra": 1},
                 {"symbol": "AAPL", "side": "buy", "qty": 1, "type": "market", "price": 1.0}]
        for body in cases:
            code, err = self.req("POST", "/api/orders", body, ALICE) if body is not None else \
                self.req("POST", "/api/orders", headers=ALICE, raw="{not json")
            assert code == 400, (body, err)
            assert err["message"]
        code, r = self.req("POST", "/api/orders", {"symbol": "AAPL", "side": "buy", "qty": 1, "price": 1.001}, ALICE)
        assert code == 200 and r["status"] == "rejected" and r["reason"] == "invalid_price_tick"
        assert self.req("POST", "/api/orders", {"symbol": "ZZZ", "side": "buy", "qty": 1, "price": 1.0},
                        ALICE)[0] == 404


class TestLimits(ServerCase):
    hub_kwargs = dict(write_rate=1.0, write_burst=3, max_body=200, limits=AccountLimits(max_qty=50))

    def test_rate_size_and_risk_limits(self):
        body = {"symbol": "AAPL", "side": "buy", "qty": 60, "price": 100.0}
        code, r = self.req("POST", "/api/orders", body, ALICE)
        assert code == 200 and r["status"] == "rejected" and r["reason"] == "risk_max_qty"
        assert self.req("POST", "/api/orders", dict(body, qty=5), ALICE)[0] == 201
        assert self.req("POST", "/api/orders", dict(body, qty=5), ALICE)[0] == 201
        code, err = self.req("POST", "/api/orders", dict(body, qty=5), ALICE)
        assert code == 429 and err["reason"] == "rate_limited"
        assert self.req("POST", "/api/orders", dict(body, qty=5), BOB)[0] == 201      # per account
        self.clock.t += 1.5                                                              # refills
        assert self.req("POST", "/api/orders", dict(body, qty=5), ALICE)[0] == 201
        code, err = self.req("POST", "/api/orders", headers=BOB, raw=json.dumps(dict(body, pad="x" * 300)))
        assert code == 413 and err["reason"] == "too_large"


class TestHealth(ServerCase):
    def test_failing_agent_is_isolated_and_restarted_with_backoff(self):
        mm = self.hub.market.agent("mm-MSFT")
        mm.fail_next = 2
        seq = self.hub.exchange.seq
        self.hub.step_market()
        assert self.hub.exchange.seq > seq               # the other agents kept trading
        code, h = self.req("GET", "/healthz")
        assert code == 200 and h["components"]["agents"]["status"] == "degraded"
        row = next(a for a in h["components"]["agents"]["agents"] if a["name"] == "mm-MSFT")
        assert row["status"] == "backoff" and row["restart_in_s"] == pytest.approx(0.5)
        self.clock.t += 0.6
        self.hub.step_market()                           # restarted, fails again: backoff doubles
        row = next(a for a in self.hub.health()["components"]["agents"]["agents"] if a["name"] == "mm-MSFT")
        assert row["restarts"] == 1 and row["restart_in_s"] == pytest.approx(1.0)
        self.clock.t += 1.1
        self.hub.step_market()
        row = next(a for a in self.hub.health()["components"]["agents"]["agents"] if a["name"] == "mm-MSFT")
        assert row["status"] == "running" and row["restarts"] == 2
        code, inc = self.req("GET", "/api/incidents")
        msgs = [i["message"] for i in inc["incidents"] if i.get("agent") == "mm-MSFT"]
        assert sum("failed" in m for m in msgs) == 2 and sum("restarted" in m for m in msgs) == 2

    def test_stale_market_data_is_flagged(self):
        self.hub.check()
        assert self.req("GET", "/api/book/AAPL")[1]["stale"] is False
        self.clock.t += self.hub.stale_after_s + 1       # no market steps meanwhile
        self.hub.check()
        code, h = self.req("GET", "/healthz")
        assert h["components"]["market_data"]["status"] == "degraded"
        assert set(h["components"]["market_data"]["stale_symbols"]) == {"AAPL", "GOOGL", "MSFT", "TSLA"}
        assert self.req("GET", "/api/book/AAPL")[1]["stale"] is True
        assert self.hub.is_stale("AAPL") is True and self.hub.is_stale("NOT_LISTED") is False
        self.hub.step_market()
        self.hub.check()
        assert self.req("GET", "/api/book/AAPL")[1]["stale"] is False
        assert self.hub.is_stale("AAPL") is False
        assert any("stale" in i["message"] for i in self.hub.incidents.rows())

    def test_a_failing_market_driver_is_down_and_retried(self):
        def boom():
            raise RuntimeError("simulator crashed")
        real = self.hub.market.step
        self.hub.market.step = boom
        self.hub.step_market()
        self.hub.check()
        code, h = self.req("GET", "/healthz")
        assert code == 503 and h["status"] == "down" and "simulator crashed" in h["components"]["agents"]["driver"]["last_error"]
        self.hub.market.step = real
        self.clock.t += 1
        self.hub.step_market()
        assert self.hub.health()["components"]["agents"]["status"] == "ok"


def test_integrity_failure_is_reported():
    ex = lob.Exchange(symbols=["X"])
    hub = Hub(ExchangeMarket(ex), Accounts(path=False))

    def bad():
        raise lob.errors.BookIntegrityError("level total 3 != 4")
    ex.check_integrity = bad
    hub.check()
    h = hub.health()
    assert h["status"] == "down" and "level total" in h["components"]["engine"]["integrity"]["error"]
    assert hub.incidents.rows()[-1]["component"] == "engine"


def test_replay_market_plays_the_file_at_speed():
    data = Path(lob.__file__).parent / "data" / "lobster"
    msg = data / "GOOG_2012-06-21_34200000_57600000_message_1.csv.gz"
    clock = FakeClock()
    m = ReplayMarket(msg, speed=60.0, clock=clock)
    assert m.exchange.symbols == ["GOOG"]
    m.step()
    clock.t += 2.0                                        # 2 s wall = 120 s of the day
    m.step()
    # the same events as the replay registry streams them, whole (a small file)
    events = np.concatenate(list(lob.replay.read(msg, symbol="GOOG")))
    ts = events["ts_ns"]
    n = int(np.searchsorted(ts, ts[0] + 120 * 10**9, side="right"))
    ref = lob.Exchange(symbols=["GOOG"])
    ref.apply(events[:n])
    assert 0 < n < len(ts)
    assert m.exchange.state_hash() == ref.state_hash()
    assert m.agents()[0]["position"] == n and not m.done


def test_replay_market_streams_chunks_and_names_bad_files(tmp_path):
    """lob serve --replay holds one chunk of the day at a time, and plays the same book as a whole replay."""
    msg = Path(lob.__file__).parent / "data" / "lobster" / "GOOG_2012-06-21_34200000_57600000_message_1.csv.gz"
    clock = FakeClock()
    m = ReplayMarket(msg, speed=60.0, clock=clock, chunk_rows=500)
    ref = lob.replay.read(msg, symbol="GOOG").exchange()
    steps = 0
    while not m.done and steps < 10_000:          # bounded: the day is 6.5 h of event time, 390 s of replay
        assert len(m._chunk) <= 500
        clock.t += 5.0
        m.step()
        steps += 1
    assert m.done and m.agents()[0]["status"] == "done"
    assert m.agents()[0]["position"] == m.agents()[0]["total"] > 500
    assert m.exchange.state_hash() == ref.state_hash()
    # an .npy of events streams from a memory map, as the replay's one symbol
    events = np.concatenate(list(lob.replay.read(msg, symbol="GOOG")))[:3000]
    np.save(tmp_path / "day.npy", events)
    m = ReplayMarket(tmp_path / "day.npy", speed=1e9, clock=clock, chunk_rows=1000)
    m.step()
    clock.t += 1e6
    m.step()
    assert m.done and m.exchange.symbols == ["DAY"] and m.agents()[0]["total"] == 3000
    # clear errors that name the file
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n")
    with pytest.raises(lob.LobError, match="notes.txt"):
        ReplayMarket(bad)
    np.save(tmp_path / "ints.npy", np.arange(5))
    with pytest.raises(ConfigError, match="ints.npy"):
        ReplayMarket(tmp_path / "ints.npy")
    with pytest.raises(ConfigError, match="missing.csv"):
        ReplayMarket(tmp_path / "missing.csv")


def test_replay_market_plays_an_itch_day(tmp_path):
    from test_replay_itch import SYMS, generate_day
    from lob.replay import itch

    msgs, _ = generate_day(3, n_ops=800)
    path = tmp_path / "day.itch.gz"
    itch.write_itch(msgs, path)
    with pytest.raises(ConfigError, match="symbols"):
        ReplayMarket(path)
    clock = FakeClock()
    m = ReplayMarket(path, speed=1.0, clock=clock, symbols=",".join(SYMS))
    assert m.exchange.symbols == SYMS
    m.step()
    clock.t += 1e9                                         # far past the end of the (microsecond-long) day
    m.step()
    assert m.done
    ref = itch.replay_itch(path, SYMS)
    for s in SYMS:
        assert m.exchange.book(s).depth_ticks(100) == ref.exchange.book(s).depth_ticks(100)
    # a LOBSTER file is not taken for ITCH, whatever its first bytes
    lob_msg = Path(lob.__file__).parent / "data" / "lobster" / "GOOG_2012-06-21_34200000_57600000_message_1.csv.gz"
    assert ReplayMarket(lob_msg).exchange.symbols == ["GOOG"]


class _BrokenRisk:
    """A risk check that works, then fails (a bug, a lost dependency)."""

    def __init__(self):
        self.broken = False
        self.conservative = False

    def check_submit(self, *args):
        if self.broken:
            raise RuntimeError("risk database unreachable")
        return 0

    def set_conservative(self, on=True, factor=None):
        self.conservative = on


class TestRiskFailure(ServerCase):
    hub_kwargs = dict(limits=AccountLimits(max_qty=1_000, max_notional=10_000_000, max_open_orders=100))

    def get_app(self):
        app = super().get_app()
        self.risk = _BrokenRisk()
        self.hub.exchange.risk.inner = self.risk
        return app

    def test_a_failing_check_puts_the_venue_in_conservative_mode_with_an_alert(self):
        order = dict(symbol="AAPL", side="buy", qty=800, price=100.0)
        code, r = self.req("POST", "/api/orders", order, ALICE)
        assert code in (200, 201) and r["status"] == "new"
        assert self.req("GET", "/healthz")[1]["components"]["risk"]["status"] == "ok"
        self.risk.broken = True
        # the order that meets the failure is still answered, by the limits halved: 800 > 500
        code, r = self.req("POST", "/api/orders", order, ALICE)
        assert code in (200, 201) and (r["status"], r["reason"]) == ("rejected", "risk_max_qty")
        code, r = self.req("POST", "/api/orders", dict(order, qty=400), ALICE)
        assert r["status"] == "new"
        # bots' orders (no account) meet the tightened limits too while the check is down
        ex = self.hub.exchange
        assert ex.submit("AAPL", "buy", 900, price=100.0, owner="bot").reason == "risk_max_qty"
        h = self.req("GET", "/healthz")[1]["components"]["risk"]
        assert h["status"] == "degraded" and h["conservative"]["failures"] == 3
        assert "risk database unreachable" in h["conservative"]["error"]
        assert h["effective_limits"]["max_qty"] == 500
        assert self.risk.conservative is True
        alerts = [i for i in self.hub.incidents.rows() if i["component"] == "risk"]
        assert len(alerts) == 1 and alerts[0]["severity"] == "error" and "conservative" in alerts[0]["message"]
        # repaired and cleared: the normal limits again
        self.risk.broken = False
        self.hub.clear_conservative()
        assert self.risk.conservative is False
        assert self.req("POST", "/api/orders", order, ALICE)[1]["status"] == "new"
        assert self.req("GET", "/healthz")[1]["components"]["risk"]["status"] == "ok"


def test_a_sliced_market_tick_equals_a_whole_one_and_lets_requests_in_between():
    whole, sliced = BotMarket(seed=9), BotMarket(seed=9)
    hw = Hub(whole, Accounts(TOKENS, path=False))
    hs = Hub(sliced, Accounts(TOKENS, path=False))
    queue = []
    for _ in range(30):
        hw.step_market()
        hs.step_market(schedule=queue.append)
        hs.step_market(schedule=queue.append)          # due again mid-tick: not doubled
        n = 0
        while queue:                                    # the IOLoop: one callback per agent's turn
            queue.pop(0)()
            n += 1
        # the first agent acted at once, then one callback per later agent, the step count and the tick's end
        assert n == len(sliced.supervisors) + 1
    assert sliced.steps == whole.steps == 30
    # the same orders in the same queues (their times are the wall clock's, so the state hashes differ)
    assert hs.exchange.seq == hw.exchange.seq
    for s in hw.exchange.symbols:
        a, b = hs.exchange.book(s).orders_array(), hw.exchange.book(s).orders_array()
        for f in ("order_id", "side", "price_ticks", "qty_lots", "owner"):
            assert np.array_equal(a[f], b[f]), (s, f)
    # a part that raises ends the tick; the driver backs off as when step() raises
    sliced.supervisors[0].run = lambda *a: (_ for _ in ()).throw(RuntimeError("boom"))
    hs.step_market(schedule=queue.append)
    assert queue == [] and hs.driver["status"] == "backoff" and "boom" in hs.driver["last_error"]
    assert hs._stepping is False


class TestOrderBookkeeping(ServerCase):
    def test_the_server_forgets_ended_orders_but_answers_for_recent_ones(self):
        ids = []
        for i in range(40):                 # pairs that trade with each other: every order ends at once or soon
            side = "buy" if i % 2 == 0 else "sell"
            code, r = self.req("POST", "/api/orders", dict(symbol="MSFT", side=side, qty=1, price=1000.0), ALICE)
            ids.append(r["order_id"])
        code, r = self.req("POST", "/api/orders", dict(symbol="MSFT", side="buy", qty=1, price=1.0), ALICE)
        live = r["order_id"]
        # only live orders are kept (the account's open orders); the ended ones sit in a bounded recent list
        open_ = self.hub._open[self.hub.accounts.account_for(ALICE["Authorization"].split()[1])]
        assert set(open_) <= {live} | set(ids) and live in open_
        ended = [o for o in ids if o not in open_]
        assert ended and all(o in self.hub._done_symbol for o in ended)
        # a late cancel of an ended order is "not live" (404), another account's live order is 403
        code, err = self.req("DELETE", f"/api/orders/{ended[0]}", headers=ALICE)
        assert code == 404 and err["reason"] == "unknown_order" and "not live" in err["message"]
        code, err = self.req("DELETE", f"/api/orders/{live}", headers=BOB)
        assert code == 403
        assert self.req("DELETE", f"/api/orders/{live}", headers=ALICE)[0] == 200
        assert live not in open_ and live in self.hub._done_symbol
