"""The batch prefetch (lob/_engine.pyx, "batch prefetch") is a hint only: once the books outgrow the cache the
engine prefetches the lines of the events ahead, and what it computes must not change a single output. A book
past the prefetch threshold, then a random flow of every request kind, applied as one batch and one event at a
time (a batch of one has no event ahead to prefetch): identical reports, fills and books."""
import numpy as np

import lob
from lob import Action


def _deep_exchange():
    ex = lob.Exchange(symbols=["A", "B", "EMPTY"], marketdata=False)
    n = 45_000                                    # 45k resting orders: pool + id map of A past 2 MB
    ev = lob.empty_events(n)
    ev["ts_ns"] = 1
    ev["action"] = Action.ADD
    ev["side"] = np.arange(n) % 2
    ev["price_ticks"] = np.where(ev["side"] == 0, 10_000 - 1 - np.arange(n) % 3000, 10_000 + 1 + np.arange(n) % 3000)
    ev["qty_lots"] = 1 + np.arange(n) % 7
    ev["order_id"] = np.arange(1, n + 1)
    ev["symbol"] = np.where(np.arange(n) % 9 == 0, 1, 0)
    ex.apply(ev)
    assert ex._engine.stats(0)["pool_capacity"] * 56 + ex._engine.stats(0)["idmap_capacity"] * 8 > 2 * 2 ** 20
    return ex


def _flow(rng, n, first_id):
    ev = lob.empty_events(n)
    ev["ts_ns"] = 2 + np.arange(n)
    ev["symbol"] = rng.choice([0] * 8 + [1, 2], n)
    ev["action"] = rng.choice([Action.ADD] * 6 + [Action.CANCEL] * 4 + [Action.MODIFY, Action.REDUCE], n)
    ev["side"] = rng.integers(0, 2, n)
    ev["type"] = rng.choice([0] * 10 + [1], n)                      # some market orders
    away = rng.integers(-40, 3000, n)                               # mostly passive, some crossing
    far = rng.random(n) < 0.05                                      # some far outside the ladder
    price = np.where(ev["side"] == 0, 10_000 - away, 10_000 + away)
    ev["price_ticks"] = np.where(far, rng.integers(1, 2 ** 31, n), price)
    ev["qty_lots"] = rng.integers(1, 12, n)
    new_ids = first_id + np.arange(n)
    known = rng.integers(1, first_id + n, n)                        # resting, filled, cancelled or never seen
    ev["order_id"] = np.where(ev["action"] == Action.ADD, new_ids, known)
    return ev


def test_prefetched_batch_equals_event_by_event():
    rng = np.random.default_rng(20261202)
    batched, stepped = _deep_exchange(), _deep_exchange()
    ev = _flow(rng, 12_000, 100_000)
    r1, f1 = batched.apply(ev)
    outs = [stepped.apply(ev[i:i + 1]) for i in range(len(ev))]
    for i, (r, _) in enumerate(outs):
        r["event_index"] += i                                       # the row of the batch, not of the one-row batch
    r2 = np.concatenate([o[0] for o in outs])
    f2 = np.concatenate([o[1] for o in outs])
    assert len(f1) > 1000 and (r1["status"] == lob.Status.CANCELLED).sum() > 1000     # it traded and cancelled
    assert np.array_equal(r1, r2) and np.array_equal(f1, f2)
    for sym in range(3):
        assert np.array_equal(batched._engine.orders(sym), stepped._engine.orders(sym))
    batched.check_integrity()
