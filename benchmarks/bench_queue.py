"""Shadow-order tracker: one pass over the GOOG level-10 day with 1,000 shadow orders (goal >= 1M events/s).

Three timings on the same resolved L3 stream (153,236 events, ``lob.queue.goog_l3()``), in one process:

``tracker``      ``track_shadows`` with 1,000 random shadows (best or up to 3 ticks behind, 300 s each), the whole
                 call: spec checks, the compiled pass and the result DataFrames;
``tracker_empty`` the same pass with no shadow (the cost of keeping the L3 book alone);
``replay``       the baseline: a plain replay of the same stream through lob's engine (``Exchange.apply`` of
                 the stream as engine events in one call: adds, reduces).

Prints one JSON object: events/s of each and the ratios tracker/replay and tracker/tracker_empty. Each timing is
the best of ``repeats`` runs.

    python benchmarks/bench_queue.py [--shadows N] [--repeats R]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

import lob
from lob.queue.l3 import engine_events, goog_l3
from lob.queue.shadow import random_shadows, track_shadows


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


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shadows", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    print(json.dumps(main(a.shadows, a.repeats), indent=1))
