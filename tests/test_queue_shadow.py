"""Shadow orders: the one-pass tracker against a brute-force re-simulation in lob's engine."""
import numpy as np
import pandas as pd
import pytest

import lob
from lob.errors import ConfigError
from lob.queue.l3 import ADD, EXEC, L3_DTYPE, RECON, REMOVE, engine_events, goog_l3
from lob.queue.shadow import random_shadows, track_shadows

SHADOW_ID = 1 << 40
SLICE = 40_000          # events of the GOOG day used for the brute force (about the first 20 minutes)


def brute_force(stream, ev, side, price, qty, ts_ns, end_ns):
    """Insert one shadow as a real order into a book of its side and replay; return (status, fills, ahead0).

    Executions on the shadow's side become immediate-or-cancel aggressors of the other side at the execution
    price (the engine decides by price-time priority whether they reach the shadow); the executed order then
    loses what history says it lost. Orders of the other side added at or through the shadow's price are
    aggressors too. Everything else on the other side cannot touch it and is left out.
    """
    ex = lob.Exchange(symbols=["X"], tick_size=0.01, marketdata=False)
    ts = stream["ts_ns"]
    mine = stream["side"] == side
    i0 = int(np.searchsorted(ts, ts_ns, side="right"))
    if i0 >= len(stream):
        return "rejected", [], None
    pre = ev[:i0][mine[:i0]]
    if len(pre):
        ex.apply(np.ascontiguousarray(pre))
    sev = lob.empty_events(1)
    sev[0]["ts_ns"], sev[0]["order_id"], sev[0]["owner"], sev[0]["price_ticks"] = ts_ns, SHADOW_ID, 2, price
    sev[0]["qty_lots"], sev[0]["side"], sev[0]["action"] = qty, side, lob.Action.ADD
    reps, fl = ex.apply(sev)
    assert len(fl) == 0, "the shadow crossed a real order of its own side's book"
    ahead0 = ex._engine.queue_position(0, SHADOW_ID)[1]
    rest = slice(i0, None)
    s_ts, s_side, s_kind, s_price = ts[rest], stream["side"][rest], stream["kind"][rest], stream["price_ticks"][rest]
    cross = (s_side != side) & (s_kind == ADD) & ((s_price <= price) if side == 0 else (s_price >= price))
    special = ((s_side == side) & (s_kind == EXEC)) | cross | \
        ((s_side == side) & ((stream["flags"][rest] & RECON) > 0) & (s_price == price)) | (s_ts > end_ns)
    idx = np.flatnonzero(special) + i0
    fills, left, pos = [], qty, i0
    for j in list(idx) + [len(stream)]:
        seg = ev[pos:j][mine[pos:j]]
        if len(seg):
            _, f = ex.apply(np.ascontiguousarray(seg))
            assert len(f) == 0
        if j == len(stream):
            return "open", fills, ahead0
        e = stream[j]
        t = int(e["ts_ns"])
        if t > end_ns:
            return "cancelled", fills, ahead0
        if e["side"] == side and e["flags"] & RECON:
            return "window", fills, ahead0
        agg = lob.empty_events(1)
        agg[0]["ts_ns"], agg[0]["owner"], agg[0]["price_ticks"], agg[0]["qty_lots"] = t, 3, e["price_ticks"], e["qty_lots"]
        agg[0]["side"], agg[0]["action"], agg[0]["tif"] = 1 - side, lob.Action.ADD, lob.TIF.IOC
        _, f = ex.apply(agg)
        took = {}
        for x in f:
            took[int(x["maker_order_id"])] = took.get(int(x["maker_order_id"]), 0) + int(x["qty_lots"])
        got = took.pop(SHADOW_ID, 0)
        if e["side"] == side:                       # an execution: the executed order loses what history says
            oid = int(e["order"]) + 1
            a = took.pop(oid, 0)
            assert not took, f"event {j}: the engine took from other orders {took} than the executed one"
            if a < e["qty_lots"]:
                red = lob.empty_events(1)
                red[0]["ts_ns"], red[0]["order_id"], red[0]["owner"] = t, oid, 1
                red[0]["qty_lots"], red[0]["side"], red[0]["action"] = int(e["qty_lots"]) - a, side, lob.Action.REDUCE
                red[0]["price_ticks"] = e["price_ticks"]
                ex.apply(red)
        else:
            assert not took, f"event {j}: a crossing add took real orders {took}"
        if got:
            fills.append((t, got))
            left -= got
            if left == 0:
                return "filled", fills, ahead0
        pos = j + 1
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def slice_stream():
    return np.ascontiguousarray(goog_l3()[:SLICE])


def test_tracker_matches_brute_force_on_many_random_shadows(slice_stream):
    s = slice_stream
    rng = np.random.default_rng(17)
    n = 120
    t0, t1 = int(s["ts_ns"][0]), int(s["ts_ns"][-1])
    spec = pd.DataFrame({"ts_ns": np.sort(rng.integers(t0, t1, n)),
                         "side": rng.choice(["buy", "sell"], n),
                         "ticks_from_best": rng.integers(-1, 4, n),
                         "qty_lots": rng.choice([1, 37, 100, 300, 1000], n),
                         "ttl_ns": rng.integers(1, 180, n) * 1_000_000_000})
    res = track_shadows(s, spec)
    o = res.orders
    ev = engine_events(s)
    seen = {"filled": 0, "cancelled": 0, "open": 0, "partial": 0, "multi": 0}
    compared = 0
    for r in o.itertuples():
        if r.status == "rejected":
            # rejected only when inside the spread it would cross the other side
            assert r.ticks_from_best < 0
            continue
        side = 0 if r.side == "buy" else 1
        st, fills, ahead0 = brute_force(s, ev, side, int(r.price_ticks), int(r.qty_lots), int(r.ts_ns),
                                        int(spec.loc[r.shadow, "ts_ns"] + spec.loc[r.shadow, "ttl_ns"]))
        mine = res.fills[res.fills["shadow"] == r.shadow]
        assert ahead0 == r.ahead_at_entry, f"shadow {r.shadow}: ahead at entry"
        assert st == r.status, f"shadow {r.shadow}: status {r.status} vs brute force {st}"
        assert list(zip(mine["ts_ns"].tolist(), mine["qty_lots"].tolist())) == fills, f"shadow {r.shadow}: fills"
        assert r.filled_lots == sum(q for _, q in fills)
        seen[st] = seen.get(st, 0) + 1
        seen["partial"] += st != "filled" and len(fills) > 0
        seen["multi"] += len(fills) > 1
        compared += 1
    assert compared >= 100
    # the sample exercises every outcome the comparison is about
    assert seen["filled"] >= 10 and seen["cancelled"] >= 10 and seen["partial"] >= 3 and seen["multi"] >= 3, seen
    assert res.priority_breaks == 0 and res.anomalies == 0


def test_best_and_offsets_are_resolved_from_the_book(slice_stream):
    s = slice_stream
    t = int(s["ts_ns"][20_000])
    spec = pd.DataFrame({"ts_ns": [t] * 4, "side": ["buy", "buy", "sell", "sell"], "ticks_from_best": [0, 3, 0, 2]})
    o = track_shadows(s, spec).orders
    # the book after every event at or before t, rebuilt with the engine
    ex = lob.Exchange(symbols=["X"], tick_size=0.01, marketdata=False)
    ev = engine_events(s)
    ex.apply(np.ascontiguousarray(ev[:np.searchsorted(s["ts_ns"], t, side="right")]))
    bid, ask = ex.book("X").best_ticks()
    assert o["price_ticks"].tolist() == [bid, bid - 3, ask, ask + 2]
    assert (o["best_bid"] == bid).all() and (o["best_ask"] == ask).all()
    assert o["ticks_from_best"].tolist() == [0, 3, 0, 2]
    lv = {(sd, p): q for sd, name in ((0, "bids"), (1, "asks")) for p, q, _ in ex.book("X").depth_ticks(50)[name]}
    assert o["ahead_at_entry"].tolist() == [lv.get((0, bid), 0), lv.get((0, bid - 3), 0), lv.get((1, ask), 0),
                                            lv.get((1, ask + 2), 0)]


def test_queue_only_moves_on_orders_ahead():
    """A hand-made queue: cancels behind do nothing, cancels ahead move up, an execution behind fills."""
    rows = [  # ts, price, qty, order, side, kind, flags
        (1, 100, 10, 0, 0, ADD, 0), (2, 100, 20, 1, 0, ADD, 0),           # 30 ahead of a shadow placed at t=2
        (4, 100, 5, 2, 0, ADD, 0),                                          # behind
        (5, 100, 5, 2, 0, REMOVE, 0),                                       # cancel behind: nothing
        (6, 100, 10, 0, 0, REMOVE, 0),                                      # cancel ahead: 20 ahead
        (7, 100, 15, 1, 0, EXEC, 0),                                        # execution ahead: 5 ahead
        (8, 100, 3, 3, 0, ADD, 0), (9, 100, 5, 1, 0, EXEC, 0),              # front order done: 0 ahead
        (10, 100, 2, 3, 0, EXEC, 0),                                        # order 3 is behind: fills 2
        (11, 99, 4, 4, 0, ADD, 0), (12, 99, 4, 4, 0, EXEC, 0),              # trade through at 99: fills 4
        (13, 101, 9, 5, 1, ADD, 0),                                         # ask at 101 does not cross 100
        (14, 100, 50, 6, 1, ADD, 0),                                        # ask at 100: fills the rest
    ]
    s = np.array([r + (0,) for r in rows], dtype=L3_DTYPE)
    res = track_shadows(s, {"ts_ns": [2], "side": ["buy"], "price_ticks": [100], "qty_lots": [10]})
    o = res.orders.iloc[0]
    assert o["ahead_at_entry"] == 30 and o["status"] == "filled" and o["first_fill_ts"] == 10
    assert res.fills[["ts_ns", "qty_lots"]].values.tolist() == [[10, 2], [12, 4], [14, 4]]
    # the same shadow ending at t=11 is cancelled after its first fill
    res2 = track_shadows(s, {"ts_ns": [2], "side": [0], "price_ticks": [100], "qty_lots": [10], "end_ns": [11]})
    assert res2.orders["status"].iloc[0] == "cancelled" and res2.orders["filled_lots"].iloc[0] == 2
    sv = res2.survival()
    assert sv["observed"].iloc[0] == 1 and sv["duration_s"].iloc[0] == pytest.approx(8e-9)
    assert res2.survival("full")["observed"].iloc[0] == 0
    # a reconstruction adjustment at its level censors it
    s3 = s.copy()
    s3["flags"][4] = RECON
    assert track_shadows(s3, {"ts_ns": [2], "side": [0], "price_ticks": [100]}).orders["status"].iloc[0] == "window"


def test_bad_shadow_specs_are_named():
    s = goog_l3()[:1000]
    with pytest.raises(ConfigError, match="'side'"):
        track_shadows(s, {"ts_ns": [s["ts_ns"][10]], "side": ["up"]})
    with pytest.raises(ConfigError, match="'qty_lots'"):
        track_shadows(s, {"ts_ns": [s["ts_ns"][10]], "side": ["buy"], "qty_lots": [0]})
    with pytest.raises(ConfigError, match="'end_ns'"):
        track_shadows(s, {"ts_ns": [5], "side": ["buy"], "end_ns": [4]})
    with pytest.raises(ConfigError, match="'ts_ns'"):
        track_shadows(s, {"side": ["buy"]})
    with pytest.raises(ConfigError, match="L3_DTYPE"):
        track_shadows(np.zeros(3), {"ts_ns": [1], "side": ["buy"]})


def test_thousands_in_one_pass_equal_one_at_a_time(slice_stream):
    s = slice_stream
    spec = random_shadows(s, 2000, seed=3, ttl_s=60)
    together = track_shadows(s, spec).orders
    for i in range(0, 2000, 97):
        alone = track_shadows(s, spec.iloc[[i]]).orders.iloc[0]
        row = together.iloc[i]
        for k in ("status", "price_ticks", "ahead_at_entry", "first_fill_ts", "end_ts", "filled_lots"):
            assert alone[k] == row[k], (i, k)


def test_missing_end_times_rest_to_the_end(slice_stream):
    s = slice_stream
    t = int(s["ts_ns"][1000])
    o = track_shadows(s, {"ts_ns": [t, t], "side": ["buy", "sell"], "ticks_from_best": [500, 500],
                          "end_ns": [None, t + 10**9]}).orders
    assert o["status"].tolist() == ["open", "cancelled"]
    assert o["end_ts"].tolist() == [int(s["ts_ns"][-1]), t + 10**9]
