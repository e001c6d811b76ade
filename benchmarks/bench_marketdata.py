"""What the default market data costs on top of the engine: ``Exchange.apply`` with and without it, paired.

On the shared streams of ``bench_core.py`` (stream_1m: 1M events, one book; stream_deep_4sym: 2M events, four
deep books; events 1 us apart), each round applies the stream to a fresh ``lob.Exchange`` with the default
market data and then to one with ``marketdata=False``, back to back, so that both runs of a pair meet the
same load on a shared machine. The cost of market data is the median over the rounds of the pair's difference
(ns per event), also given in units of the C yardstick's time per event (its best of three runs in the same
process): the share of the batch goal (1.5x the yardstick) that market data takes. The first round of each
stream is left out: it pays for the fresh pages of a new process (engine and recorder alike).

As in ``bench_core.py``, the exchange of the previous run of each kind is alive while the next one is built
and freed before it runs (so a recorder finds the ring memory of the one before it, as a sweep in a notebook
does). Prints one JSON document.

    python benchmarks/bench_marketdata.py [--rounds N]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_core as bc  # noqa: E402  (the shared streams and the yardstick)

import lob  # noqa: E402


def paired(name, symbols, facts, rounds):
    a = bc.load_stream(name)
    ev = bc.events_of(a)
    n = len(a)
    alive = {}

    def run(md):
        alive.pop(md, None)
        ex = lob.Exchange(symbols=symbols, marketdata=md)
        gc.collect()
        t = time.perf_counter()
        _, fills = ex.apply(ev)
        dt = time.perf_counter() - t
        assert (len(fills), int(fills["qty_lots"].sum())) == facts, (name, md)
        alive[md] = ex
        return dt / n * 1e9

    ys = min(bc.run_yardstick_batch(a)[0] for _ in range(3)) / n * 1e9
    on, off = [], []
    for _ in range(rounds + 1):
        on.append(run(True))
        off.append(run(False))
    on, off = np.array(on[1:]), np.array(off[1:])
    cost = float(np.median(on - off))
    md = alive[True].marketdata.memory()
    return {"events": n, "rounds": rounds, "yardstick_ns_per_event": ys,
            "md_ns_per_event_median": float(np.median(on)), "no_md_ns_per_event_median": float(np.median(off)),
            "md_cost_ns_per_event": cost, "md_cost_x_yardstick": cost / ys,
            "md_cost_ns_per_event_quartiles": [float(np.percentile(on - off, 25)), float(np.percentile(on - off, 75))],
            "marketdata_bytes": {k: v for k, v in md.items() if k != "symbols"}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=8)
    args = p.parse_args(argv)
    out = {"machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}}
    out["stream_1m"] = paired("stream_1m.npy", ["X"], (397_799, 99_960_438), args.rounds)
    out["stream_deep_4sym"] = paired("stream_deep_4sym.npy", ["S0", "S1", "S2", "S3"], (642_282, 263_685_360),
                                     max(2, args.rounds // 2))
    out["machine"]["loadavg_end"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
