"""A hypothesis state machine drives the compiled engine and the ReferenceBook with every operation and
asserts identical reports, fills and books after every step (docs/matching.md is the spec of both).

Profiles (tests/conftest.py): ``ci`` (default, bounded) and ``long``:
``HYPOTHESIS_PROFILE=long pytest tests/test_engine_vs_reference.py``.
"""
import numpy as np
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import lob
from lob.testing import ReferenceBook

N_SYM = 2
PRICES = st.integers(95, 105)
QTY = st.integers(1, 12)
OWNERS = st.sampled_from([0, 1, 2, 3])
ADD, CANCEL, MODIFY, REDUCE, SESSION_END, HALT, RESUME = range(7)


class EngineMatchesReference(RuleBasedStateMachine):
    @initialize(stp=st.integers(0, 4), policy=st.integers(0, 1), band=st.sampled_from([0, 0, 500]),
                market_band=st.sampled_from([0, 0, 3]), max_qty=st.sampled_from([0, 0, 20]))
    def setup(self, stp, policy, band, market_band, max_qty):
        spec = dict(min_qty=1, max_qty=max_qty, band_bps=band, ref_price=100 if band else 0,
                    market_band_ticks=market_band, stp=stp, modify_policy=policy)
        self.ex = lob.Exchange()
        for i in range(N_SYM):
            self.ex.add_symbol(f"S{i}", tick_size=1)
            self.ex._engine.set_spec(i, spec["min_qty"], spec["max_qty"], spec["band_bps"], spec["ref_price"],
                                     spec["market_band_ticks"], spec["stp"], spec["modify_policy"])
        self.ref = ReferenceBook(N_SYM, [spec] * N_SYM)
        self.ids = []
        self.ts = 0

    def _apply(self, **fields):
        ev = lob.empty_events(1)
        self.ts += 1
        ev["ts_ns"] = self.ts
        for k, v in fields.items():
            ev[k] = v
        r1, f1 = self.ex.apply(ev)
        r2, f2 = self.ref.apply(ev)
        assert r1.tolist() == r2.tolist(), (ev, r1, r2)
        assert f1.tolist() == f2.tolist(), (ev, f1, f2)
        for oid in r1["order_id"]:
            if oid and oid not in self.ids:
                self.ids.append(int(oid))

    @rule(sym=st.integers(0, N_SYM - 1), side=st.integers(0, 1), price=PRICES, qty=QTY, owner=OWNERS,
          tif=st.sampled_from([0, 0, 0, 1, 2, 3]), flags=st.sampled_from([0, 0, 0, 1, 2]),
          display=st.sampled_from([0, 0, 0, 2, 5]), oid=st.integers(0, 40))
    def limit(self, sym, side, price, qty, owner, tif, flags, display, oid):
        self._apply(symbol=sym, action=ADD, side=side, type=0, price_ticks=price, qty_lots=qty, owner=owner,
                    tif=tif, flags=flags, display_lots=display, order_id=oid)

    @rule(sym=st.integers(0, N_SYM - 1), side=st.integers(0, 1), qty=QTY, owner=OWNERS,
          tif=st.sampled_from([0, 1, 2]))
    def market(self, sym, side, qty, owner, tif):
        self._apply(symbol=sym, action=ADD, side=side, type=1, qty_lots=qty, owner=owner, tif=tif)

    @rule(sym=st.integers(0, N_SYM - 1), side=st.integers(0, 1), qty=QTY, owner=OWNERS, stop=PRICES,
          limit_px=PRICES, typ=st.sampled_from([2, 3]), tif=st.sampled_from([0, 1, 3]))
    def stop(self, sym, side, qty, owner, stop, limit_px, typ, tif):
        self._apply(symbol=sym, action=ADD, side=side, type=typ, qty_lots=qty, owner=owner, stop_ticks=stop,
                    price_ticks=limit_px if typ == 3 else 0, tif=tif)

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), sym=st.integers(0, N_SYM - 1), owner=OWNERS)
    def cancel(self, data, sym, owner):
        self._apply(symbol=sym, action=CANCEL, order_id=data.draw(st.sampled_from(self.ids)), owner=owner)

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), sym=st.integers(0, N_SYM - 1), qty=st.integers(-1, 25),
          price=st.one_of(st.just(0), PRICES), stop=st.sampled_from([0, 0, 99, 101]))
    def modify(self, data, sym, qty, price, stop):
        self._apply(symbol=sym, action=MODIFY, order_id=data.draw(st.sampled_from(self.ids)), qty_lots=qty,
                    price_ticks=price, stop_ticks=stop)

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), sym=st.integers(0, N_SYM - 1), by=st.integers(0, 8))
    def reduce(self, data, sym, by):
        self._apply(symbol=sym, action=REDUCE, order_id=data.draw(st.sampled_from(self.ids)), qty_lots=by)

    @rule(sym=st.integers(0, N_SYM - 1), what=st.sampled_from([SESSION_END, HALT, RESUME, RESUME]))
    def control(self, sym, what):
        self._apply(symbol=sym, action=what)

    @invariant()
    def same_books(self):
        if not hasattr(self, "ex"):
            return
        for i in range(N_SYM):
            assert self.ex._engine.orders(i).tolist() == self.ref.orders(i).tolist()
            assert self.ex._engine.best_prices(i) == self.ref.best_prices(i)
            assert np.array_equal(self.ex._engine.depth(i, 0, 5), self.ref.depth(i, 0, 5))
            assert np.array_equal(self.ex._engine.depth(i, 1, 5), self.ref.depth(i, 1, 5))
            assert self.ex._engine.last_price(i) == self.ref.last_price(i)
        self.ex.check_integrity()
        assert self.ex.seq == self.ref.seq


TestEngineMatchesReference = EngineMatchesReference.TestCase
