"""A hypothesis state machine drives the compiled engine and the ReferenceBook with every operation and
asserts identical reports, fills and books after every step (docs/matching.md is the spec of both).

Every run draws each symbol's rules in ``@initialize`` (all STP modes, both modify policies, bands, size
limits), so one machine covers every rule combination. Orders go in as single events, as multi-row
batches (``event_index`` and cross-row effects) and through the per-call ``Exchange.submit/cancel/modify/
reduce`` path (captured by a listener and replayed into the reference).

Profiles (tests/conftest.py): ``ci`` (default, bounded) and ``long``:
``HYPOTHESIS_PROFILE=long pytest tests/test_book_state_machine.py``.
"""
import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import lob
from lob.testing import ReferenceBook

N_SYM = 2
PRICES = st.integers(95, 105)          # narrow, so orders cross, bands bite and stops trigger
QTY = st.integers(1, 12)
OWNERS = st.sampled_from([0, 1, 2, 1, 2, 3])  # few owners, so self-trade prevention fires; 0 is anonymous
SYMS = st.integers(0, N_SYM - 1)
OFF_GRID = st.sampled_from([0.0] * 7 + [0.5])   # per-call prices/quantities off the grid now and then
OIDS = st.one_of(st.just(0), st.integers(1, 40))
ADD, CANCEL, MODIFY, REDUCE, SESSION_END, HALT, RESUME, REPLAY_ADD, REPLAY_EXECUTE, REPLAY_DELETE = range(10)
REPLAY_LEVEL = 4
LIMIT, MARKET, STOP, STOP_LIMIT = range(4)

SPECS = st.fixed_dictionaries(dict(
    min_qty=st.sampled_from([1, 1, 2]),
    max_qty=st.sampled_from([0, 0, 20]),
    band_bps=st.sampled_from([0, 0, 300]),
    ref_price=st.sampled_from([0, 100]),
    market_band_ticks=st.sampled_from([0, 0, 2]),
    stp=st.integers(0, 4),
    modify_policy=st.integers(0, 1),
))


def _limit_event(sym, side, price, qty, owner, tif, flags, display, oid):
    return dict(symbol=sym, action=ADD, side=side, type=LIMIT, price_ticks=price, qty_lots=qty, owner=owner,
                tif=tif, flags=flags, display_lots=display, order_id=oid)


LIMIT_EVENTS = st.builds(_limit_event, SYMS, st.integers(0, 1), PRICES, QTY, OWNERS,
                         st.sampled_from([0, 0, 0, 1, 2, 3]), st.sampled_from([0, 0, 0, 1, 2]),
                         st.sampled_from([0, 0, 0, 2, 5, 20]), OIDS)
MARKET_EVENTS = st.builds(
    lambda sym, side, qty, owner, tif, flags: dict(symbol=sym, action=ADD, side=side, type=MARKET, qty_lots=qty,
                                                   owner=owner, tif=tif, flags=flags),
    SYMS, st.integers(0, 1), QTY, OWNERS, st.sampled_from([0, 1, 2, 3]), st.sampled_from([0, 0, 0, 1, 2]))
STOP_EVENTS = st.builds(
    lambda sym, side, qty, owner, stop, px, typ, tif, flags, display, oid: dict(
        symbol=sym, action=ADD, side=side, type=typ, qty_lots=qty, owner=owner, stop_ticks=stop,
        price_ticks=px if typ == STOP_LIMIT else 0, tif=tif, flags=flags, display_lots=display, order_id=oid),
    SYMS, st.integers(0, 1), QTY, OWNERS, PRICES, PRICES, st.sampled_from([STOP, STOP_LIMIT]),
    st.sampled_from([0, 0, 1, 2, 3]), st.sampled_from([0, 0, 0, 1, 2]), st.sampled_from([0, 0, 3]), OIDS)
CONTROL_EVENTS = st.builds(lambda sym, what: dict(symbol=sym, action=what), SYMS,
                           st.sampled_from([SESSION_END, SESSION_END, HALT, RESUME, RESUME, RESUME]))


def _cancel(sym, oid, owner):
    return dict(symbol=sym, action=CANCEL, order_id=oid, owner=owner)


def _modify(sym, oid, owner, qty, price, stop):
    return dict(symbol=sym, action=MODIFY, order_id=oid, owner=owner, qty_lots=qty, price_ticks=price, stop_ticks=stop)


def _reduce(sym, oid, owner, by):
    return dict(symbol=sym, action=REDUCE, order_id=oid, owner=owner, qty_lots=by)


MODIFY_ARGS = dict(owner=st.sampled_from([0, 0, 0, 1, 2, 3]), qty=st.integers(-1, 25),
                   price=st.one_of(st.just(0), st.just(0), PRICES), stop=st.sampled_from([0, 0, -1, 97, 100, 103]))
REDUCE_ARGS = dict(owner=st.sampled_from([0, 0, 0, 1, 2, 3]), by=st.integers(-1, 8))


class EngineMatchesReference(RuleBasedStateMachine):
    @initialize(specs=st.lists(SPECS, min_size=N_SYM, max_size=N_SYM))
    def setup(self, specs):
        self.ex = lob.Exchange()
        for i, spec in enumerate(specs):
            self.ex.add_symbol(f"S{i}", tick_size=1)
            self.ex._engine.set_spec(i, spec["min_qty"], spec["max_qty"], spec["band_bps"], spec["ref_price"],
                                     spec["market_band_ticks"], spec["stp"], spec["modify_policy"])
        self.ref = ReferenceBook(N_SYM, specs)
        self.ids = []
        self.ts = 0
        self.captured = []
        self.ex.add_listener(lambda e, r, f: self.captured.append((e.copy(), r.copy(), f.copy())))

    def _events(self, rows):
        ev = lob.empty_events(len(rows))
        for i, row in enumerate(rows):
            self.ts += 1
            ev["ts_ns"][i] = self.ts
            for k, v in row.items():
                ev[k][i] = v
        return ev

    def _compare(self, r1, f1, r2, f2, ev):
        assert r1.dtype == r2.dtype == lob.REPORT_DTYPE and f1.dtype == f2.dtype == lob.FILL_DTYPE
        assert np.array_equal(r1, r2), (ev, r1, r2)
        assert np.array_equal(f1, f2), (ev, f1, f2)
        for oid in r1["order_id"].tolist():
            if oid and oid not in self.ids:
                self.ids.append(oid)

    def _apply(self, rows):
        ev = self._events(rows)
        self.captured.clear()
        r1, f1 = self.ex.apply(ev)
        assert len(self.captured) == 1 and np.array_equal(self.captured[0][1], r1)
        r2, f2 = self.ref.apply(ev)
        self._compare(r1, f1, r2, f2, ev)

    # --- one event per apply --------------------------------------------------------------------
    @rule(row=LIMIT_EVENTS)
    def limit(self, row):
        self._apply([row])

    @rule(sym=SYMS, side=st.integers(0, 1), through=st.integers(0, 2), qty=QTY, owner=OWNERS,
          tif=st.sampled_from([0, 1, 2]), display=st.sampled_from([0, 0, 3]))
    def take(self, sym, side, through, qty, owner, tif, display):
        # a limit priced at or through the opposite best: makes sure books trade, not only fill up
        opp = self.ref.best_prices(sym)[1 - side] or 100
        price = max(1, opp + through if side == 0 else opp - through)
        self._apply([_limit_event(sym, side, price, qty, owner, tif, 0, display, 0)])

    @rule(row=MARKET_EVENTS)
    def market(self, row):
        self._apply([row])

    @rule(row=STOP_EVENTS)
    def stop(self, row):
        self._apply([row])

    @rule(row=CONTROL_EVENTS)
    def control(self, row):
        self._apply([row])

    def _target(self, data):
        # mostly a live order of its own symbol (so modify/reduce/cancel do something), sometimes a dead,
        # foreign or never-seen id
        live = [(i, int(o)) for i in range(N_SYM) for o in self.ref.orders(i)["order_id"]]
        if live and data.draw(st.integers(0, 4)):
            return data.draw(st.sampled_from(live))
        return data.draw(SYMS), data.draw(st.sampled_from(self.ids + [999]))

    @rule(data=st.data(), owner=OWNERS)
    def cancel(self, data, owner):
        self._apply([_cancel(*self._target(data), owner)])

    @rule(data=st.data(), args=st.fixed_dictionaries(MODIFY_ARGS))
    def modify(self, data, args):
        self._apply([_modify(*self._target(data), **args)])

    @rule(data=st.data(), args=st.fixed_dictionaries(MODIFY_ARGS))
    def modify_again(self, data, args):         # modify is the richest request: give it two rules' weight
        self._apply([_modify(*self._target(data), **args)])

    @rule(data=st.data(), args=st.fixed_dictionaries(REDUCE_ARGS))
    def reduce(self, data, args):
        self._apply([_reduce(*self._target(data), **args)])

    # --- replay mode: applied as given, never matched; inconsistent events counted, book unchanged -----
    @rule(sym=SYMS, side=st.integers(0, 1), price=PRICES, qty=st.integers(0, 12), owner=OWNERS, oid=OIDS)
    def replay_add(self, sym, side, price, qty, owner, oid):
        self._apply([dict(symbol=sym, action=REPLAY_ADD, side=side, price_ticks=price, qty_lots=qty, owner=owner,
                          order_id=oid)])

    @rule(data=st.data(), qty=st.integers(0, 14), level=st.booleans())
    def replay_execute(self, data, qty, level):
        sym, oid = self._target(data)
        live = self.ref.orders(sym)
        mine = live[live["order_id"] == oid]
        price = data.draw(st.sampled_from([0, int(mine["price_ticks"][0]) if len(mine) else 0])
                          | PRICES)    # none, the order's (or a level's), or any price
        self._apply([dict(symbol=sym, action=REPLAY_EXECUTE, order_id=oid, qty_lots=qty, price_ticks=price,
                          flags=REPLAY_LEVEL if level else 0)])

    @rule(data=st.data(), qty=st.integers(-1, 14))
    def replay_delete(self, data, qty):
        sym, oid = self._target(data)
        self._apply([dict(symbol=sym, action=REPLAY_DELETE, order_id=oid, qty_lots=qty,
                          price_ticks=data.draw(st.sampled_from([0, 0, 0, 100])))])

    # --- several events in one apply: event_index and effects across rows -----------------------
    @rule(data=st.data())
    def batch(self, data):
        live = [(i, int(o)) for i in range(N_SYM) for o in self.ref.orders(i)["order_id"]]
        target = st.one_of(st.sampled_from(live), st.sampled_from(live), st.tuples(SYMS, st.integers(1, 40))) \
            if live else st.tuples(SYMS, st.integers(1, 40))
        targeted = st.one_of(st.builds(lambda t, owner: _cancel(*t, owner), target, OWNERS),
                             st.builds(lambda t, a: _modify(*t, **a), target, st.fixed_dictionaries(MODIFY_ARGS)),
                             st.builds(lambda t, a: _reduce(*t, **a), target, st.fixed_dictionaries(REDUCE_ARGS)))
        rows = data.draw(st.lists(st.one_of(LIMIT_EVENTS, LIMIT_EVENTS, MARKET_EVENTS, STOP_EVENTS, CONTROL_EVENTS,
                                            targeted, targeted), min_size=2, max_size=6))
        self._apply(rows)

    # --- the per-call path, replayed into the reference -----------------------------------------
    @rule(data=st.data(), sym=SYMS, owner=OWNERS)
    def per_call(self, data, sym, owner):
        self.ts += 1
        kind = data.draw(st.sampled_from(["limit", "market", "stop", "cancel", "modify", "reduce", "replay_add",
                                          "replay_execute", "replay_delete"]))
        side = data.draw(st.sampled_from(["buy", "sell"]))
        qty = data.draw(QTY) + data.draw(OFF_GRID)           # off the lot grid: rejected at the edge
        self.captured.clear()
        if kind == "limit":
            display = data.draw(st.sampled_from([None, 2]))
            kw = dict(price=data.draw(PRICES) + data.draw(OFF_GRID), owner=owner or None, ts_ns=self.ts,
                      tif=data.draw(st.sampled_from(["gtc", "ioc", "fok", "day"])),
                      post_only=data.draw(st.sampled_from([False, "reject", "slide"])), display_qty=display)
            if display is not None and int(qty + 0.5) < display:
                # an iceberg showing more than its total is refused at the edge, before the engine
                with pytest.raises(lob.errors.InvalidOrderError, match="display_qty must be <= qty"):
                    self.ex.submit(sym, side, qty, **kw)
                assert not self.captured
                return
            r = self.ex.submit(sym, side, qty, **kw)
        elif kind == "replay_add":
            r = self.ex.replay_add(sym, side, qty, data.draw(PRICES) + data.draw(OFF_GRID),
                                   order_id=data.draw(st.integers(1, 40)), owner=owner or None, ts_ns=self.ts)
        elif kind == "market":
            r = self.ex.submit(sym, side, qty, type="market", owner=owner or None, ts_ns=self.ts)
        elif kind == "stop":
            r = self.ex.submit(sym, side, qty, type="stop_limit", price=float(data.draw(PRICES)),
                               stop_price=float(data.draw(PRICES)), owner=owner or None, ts_ns=self.ts)
        else:
            sym, oid = self._target(data)
            if kind == "cancel":
                r = self.ex.cancel(sym, oid, owner=owner or None, ts_ns=self.ts)
            elif kind == "replay_execute":
                price = data.draw(st.sampled_from([None, 99.0, 100.0, 101.0]))
                level = price is not None and data.draw(st.booleans())
                r = self.ex.replay_execute(sym, oid, data.draw(st.integers(1, 6)), price=price, level=level,
                                           ts_ns=self.ts)
            elif kind == "replay_delete":
                r = self.ex.replay_delete(sym, oid, data.draw(st.sampled_from([None, 1, 3])), ts_ns=self.ts)
            elif kind == "modify":
                r = self.ex.modify(sym, oid, qty=qty, price=data.draw(st.sampled_from([None, 99.0, 101.0, 100.5])),
                                   owner=owner or None, ts_ns=self.ts)
            else:
                r = self.ex.reduce(sym, oid, data.draw(st.integers(1, 4)), owner=owner or None, ts_ns=self.ts)
        assert len(self.captured) == 1
        ev, r1, f1 = self.captured[0]
        r2, f2 = self.ref.apply(ev)
        self._compare(r1, f1, r2, f2, ev)
        # the Report object tells the same story as the first report row
        assert (r.order_id, r.seq, r.filled_qty, r.last_filled_qty, r.remaining_qty) == (
            r1[0]["order_id"], r1[0]["seq"], r1[0]["cum_filled_lots"], r1[0]["filled_lots"], r1[0]["remaining_lots"])
        assert r.status == lob.Status(r1[0]["status"]).name.lower()
        assert [t.seq for t in r.trades] == [int(f["seq"]) for f in f1 if f["taker_order_id"] == r.order_id]
        # every report of the call carries its own trades (released stops included), and together they are
        # every fill of the call, each once, with both sides' ids and owners
        reports = [r] + r.related
        assert [x.seq for x in reports] == r1["seq"].tolist()
        for x in reports:
            assert sum(t.qty_lots for t in x.trades) == x.filled_lots or x.action == "replay_execute"
            assert all(t.taker_order_id == x.order_id and t.seq > x.seq for t in x.trades)
        trades = sorted((t for x in reports for t in x.trades), key=lambda t: t.seq)
        assert [(t.seq, t.maker_order_id, t.taker_order_id, t.maker_owner_id, t.taker_owner_id) for t in trades] == [
            tuple(int(f[k]) for k in ("seq", "maker_order_id", "taker_order_id", "maker_owner", "taker_owner"))
            for f in f1]

    @invariant()
    def same_books(self):
        if not hasattr(self, "ex"):
            return
        for i in range(N_SYM):
            o1, o2 = self.ex._engine.orders(i), self.ref.orders(i)
            assert o1.dtype == o2.dtype and np.array_equal(o1, o2), (o1, o2)
            assert self.ex._engine.best_prices(i) == self.ref.best_prices(i)
            assert np.array_equal(self.ex._engine.depth(i, 0, 5), self.ref.depth(i, 0, 5))
            assert np.array_equal(self.ex._engine.depth(i, 1, 5), self.ref.depth(i, 1, 5))
            assert self.ex._engine.last_price(i) == self.ref.last_price(i)
            assert self.ex._engine.consistency_errors(i) == self.ref.consistency_errors(i)
        self.ex.check_integrity()
        assert self.ex.seq == self.ref.seq


TestEngineMatchesReference = EngineMatchesReference.TestCase


def _random_batch(rng, n, n_sym, max_id):
    # a large random flow: wide prices and many ids so pools, id maps and level indexes must grow
    ev = lob.empty_events(n)
    ev["ts_ns"] = np.arange(1, n + 1)
    ev["symbol"] = rng.integers(0, n_sym, n)
    ev["action"] = rng.choice([ADD] * 12 + [CANCEL] * 3 + [MODIFY] * 3 + [REDUCE, SESSION_END], n)
    ev["side"] = rng.integers(0, 2, n)
    ev["type"] = rng.choice([LIMIT] * 12 + [MARKET, STOP, STOP_LIMIT], n)
    ev["tif"] = rng.choice([0] * 6 + [1, 2, 3], n)
    ev["flags"] = rng.choice([0] * 8 + [1, 2], n)
    ev["owner"] = rng.integers(0, 6, n)
    ev["order_id"] = np.where(ev["action"] == ADD, rng.choice([0, 0, 1], n) * rng.integers(1, max_id, n),
                              rng.integers(1, max_id, n))
    mid = 1000 + (np.arange(n) // 500) * 7          # the market drifts, so levels come and go
    away = rng.integers(-8, 90, n)                  # mostly passive, so books get deep; sometimes crossing
    price = np.where(ev["side"] == 0, mid - away, mid + away)
    ev["price_ticks"] = np.where(ev["action"] == MODIFY, rng.choice([0, 1], n), 1) * price
    ev["stop_ticks"] = mid + rng.integers(-30, 31, n)
    ev["qty_lots"] = np.where(ev["action"] == REDUCE, rng.integers(1, 5, n), rng.integers(1, 40, n))
    ev["display_lots"] = rng.choice([0] * 6 + [5], n)
    return ev


def test_large_random_batches_agree_and_grow_cleanly():
    for seed, stp, policy in ((1, 0, 0), (2, 4, 1), (3, 2, 0)):
        rng = np.random.default_rng(seed)
        specs = [dict(stp=stp, modify_policy=policy), dict(stp=1, band_bps=2000, ref_price=1000)]
        ex = lob.Exchange(marketdata=False)
        for i, s in enumerate(specs):
            ex.add_symbol(f"S{i}", tick_size=1)
            full = {**{"min_qty": 1, "max_qty": 0, "band_bps": 0, "ref_price": 0, "market_band_ticks": 0,
                       "stp": 0, "modify_policy": 0}, **s}
            ex._engine.set_spec(i, full["min_qty"], full["max_qty"], full["band_bps"], full["ref_price"],
                                full["market_band_ticks"], full["stp"], full["modify_policy"])
        ref = ReferenceBook(2, specs)
        for _ in range(2):
            ev = _random_batch(rng, 2500, 2, 4000)
            r1, f1 = ex.apply(ev)
            r2, f2 = ref.apply(ev)
            assert np.array_equal(r1, r2) and np.array_equal(f1, f2), seed
            for i in range(2):
                assert np.array_equal(ex._engine.orders(i), ref.orders(i)), seed
            ex.check_integrity()
        # it really traded, and grew past the engine's first pool (256), level (64) and stop (16) allocations
        assert len(f1) > 100 and max(len(ref.orders(i)) for i in range(2)) > 300
        assert max(len(ref.books[i].bids) + len(ref.books[i].asks) for i in range(2)) > 64
        assert max(len(ref.books[i].stops) for i in range(2)) > 16


def test_far_prices_and_a_growing_ladder_agree():
    # prices near the touch, some thousands of ticks away and some near the top of the price range: the level
    # index keeps the levels around the touch in its dense ladder, grows it as levels accumulate, and keeps the
    # rest in its hash map; every path must agree with the reference and keep the book intact
    for seed in (4, 5):
        rng = np.random.default_rng(seed)
        ex = lob.Exchange(marketdata=False)
        ex.add_symbol("S0", tick_size=1)
        ref = ReferenceBook(1, [dict()])
        for k in range(3):
            n = 2500
            ev = lob.empty_events(n)
            ev["ts_ns"] = np.arange(1, n + 1) + k * n
            ev["action"] = rng.choice([ADD] * 12 + [CANCEL] * 4 + [MODIFY] * 2 + [REDUCE], n)
            ev["side"] = rng.integers(0, 2, n)
            ev["type"] = rng.choice([LIMIT] * 14 + [MARKET], n)
            ev["owner"] = rng.integers(0, 4, n)
            ev["order_id"] = np.where(ev["action"] == ADD, rng.integers(1, 6000, n), rng.integers(1, 6000, n))
            mid = 3_000_000 + (np.arange(n) // 300) * 40 * (1 if k != 1 else -1)
            away = np.select([rng.random(n) < 0.75, rng.random(n) < 0.8],
                             [rng.integers(-5, 60, n), rng.integers(100, 40_000, n)], rng.integers(200_000, 2_900_000, n))
            price = np.where(ev["side"] == 0, mid - away, mid + away)
            price[rng.random(n) < 0.01] = 4_294_967_000       # near the largest valid price
            ev["price_ticks"] = np.where(ev["action"] == MODIFY, rng.choice([0, 1], n), 1) * price
            ev["qty_lots"] = np.where(ev["action"] == REDUCE, rng.integers(1, 5, n), rng.integers(1, 40, n))
            r1, f1 = ex.apply(ev)
            r2, f2 = ref.apply(ev)
            assert np.array_equal(r1, r2) and np.array_equal(f1, f2), (seed, k)
            assert np.array_equal(ex._engine.orders(0), ref.orders(0)), (seed, k)
            ex.check_integrity()
            for side, levels in ((0, ref.books[0].bids), (1, ref.books[0].asks)):
                for p in levels:
                    assert ex._engine.level(0, side, p) is not None
        assert len(f1) > 50 and len(ref.books[0].bids) + len(ref.books[0].asks) > 300
