"""Shadow-order tracker: one pass over the GOOG level-10 day with 1,000 shadow orders (goal >= 1M events/s).

Three timings on the same resolved L3 stream (153,236 events, ``lob.queue.goog_l3()``), in one process:

``tracker``      ``track_shadows`` with 1,000 random shadows (best or up to 3 ticks behind, 300 s each), the whole
                 call: spec checks, the compiled pass and the result DataFrames;
``tracker_empty`` the same pass with no shadow (the cost of keeping the L3 book alone);
``replay``       the baseline: a plain replay of the same stream through lob's engine (``Exchange.apply`` of
                 the stream as engine events in one call: adds, reduces).

Prints one JSON object: events/s of each and the ratios tracker/replay and tracker/tracker_empty. Each timing is
the best of ``repeats`` runs.

``backtest_models`` (issue #17, compiled queue models): the GOOG day backtest of
``GridMaker(levels=3, spacing_ticks=5, size=100, max_position=500)`` with ``impact="off"``, 200 us latency and
100 ms steps, per queue model, with its compiled form (what ``Backtest(queue_model=model)`` runs, without the
GIL) and with the model called through the Python protocol (a plain delegate object, as a model of one's own
written in Python runs); alternating, medians of ``repeats``; ``ratio_python_vs_compiled`` = python / compiled.

    python benchmarks/bench_queue.py [--shadows N] [--repeats R] [--part all|shadows|models]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

import lob
from lob.data import lobster_sample
from lob.mm import GridMaker
from lob.queue import models as qm
from lob.queue.l3 import engine_events, goog_l3
from lob.queue.shadow import random_shadows, track_shadows
from lob.replay.backtest import Backtest, Fees, lobster_events


def best_of(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(shadows: int = 1000, repeats: int = 5) -> dict:
    s = goog_l3()
    n = len(s)
    spec = random_shadows(s, shadows, seed=1, max_ticks_from_best=3)
    ev = engine_events(s)

    def replay():
        ex = lob.Exchange(symbols=["GOOG"], tick_size=0.01, marketdata=False)
        reps, fills = ex.apply(ev)
        assert len(fills) == 0
        return ex

    t_replay, _ = best_of(replay, repeats)
    t_track, res = best_of(lambda: track_shadows(s, spec), repeats)
    t_empty, _ = best_of(lambda: track_shadows(s, spec.iloc[:0]), repeats)
    st = res.orders["status"].value_counts().to_dict()
    out = {
        "events": n, "shadows": shadows, "repeats": repeats,
        "tracker_events_per_s": round(n / t_track), "tracker_s": round(t_track, 4),
        "tracker_empty_events_per_s": round(n / t_empty),
        "replay_events_per_s": round(n / t_replay), "replay_s": round(t_replay, 4),
        "ratio_tracker_vs_replay": round(t_replay / t_track, 2),
        "ratio_tracker_vs_empty": round(t_empty / t_track, 2),
        "goal_events_per_s": 1_000_000, "goal_met": n / t_track >= 1_000_000,
        "fills": len(res.fills), "status": {str(k): int(v) for k, v in st.items()},
    }
    return out


class PythonModel:
    """A queue model through the Python protocol only (how the loop runs a model written in Python)."""

    def __init__(self, model):
        self.model = model

    def new_order(self, st, level_qty):
        return self.model.new_order(st, level_qty)

    def trade(self, st, qty):
        return self.model.trade(st, qty)

    def depth(self, st, prev_qty, new_qty):
        return self.model.depth(st, prev_qty, new_qty)


def backtest_models(repeats: int = 5) -> dict:
    events = lobster_events(*lobster_sample(10))[0]
    kw = dict(latency=200_000, impact="off", fees=Fees(maker_bps=-0.2, taker_bps=0.3), step_ns=100_000_000,
              progress=False)

    def run(model):
        t0 = time.perf_counter()
        res = Backtest(GridMaker(levels=3, spacing_ticks=5, size=100, max_position=500), events,
                       queue_model=model, **kw).run()
        return time.perf_counter() - t0, res

    out = {}
    for model in (qm.RiskAverseQueueModel(), qm.PowerProbQueueFunc(2), qm.LogProbQueueFunc()):
        tc, tp = [], []
        for _ in range(repeats):                     # alternating
            t, rc = run(model)
            tc.append(t)
            t, rp = run(PythonModel(model))
            tp.append(t)
        assert rc.fills.equals(rp.fills), "the compiled and the Python model disagree"
        c, p = float(np.median(tc)), float(np.median(tp))
        out[model.name] = {"compiled_s": round(c, 4), "python_s": round(p, 4),
                           "ratio_python_vs_compiled": round(p / c, 2), "fills": len(rc.fills)}
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shadows", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--part", choices=("all", "shadows", "models"), default="all")
    a = ap.parse_args()
    result = main(a.shadows, a.repeats) if a.part in ("all", "shadows") else {}
    if a.part in ("all", "models"):
        result["backtest_models"] = backtest_models(a.repeats)
    print(json.dumps(result, indent=1))
