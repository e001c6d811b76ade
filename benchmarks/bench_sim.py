"""Simulator benchmark: events per second of the default 4-symbol market against the matching-only rate.

The default market (``lob.sim.Simulator.default``: market makers, zero-intelligence, noise and momentum
traders, the risk manager and market data on) runs for ``--steps`` steps while a listener records every
request the agents send. The same requests are then replayed through a fresh exchange with the batch
``apply`` (matching only: no agents, no risk, no market data), and the replayed state hash is checked
against the simulated one. ``ratio`` = simulated events/s / matching-only events/s: the share of the
engine's speed the simulated market keeps. ``sim_events_per_cpu_s`` divides by the process's CPU time
instead of the wall time: on a shared, loaded machine it moves much less than the wall-time rate.

``speedup_vs_before``: the same steps of the default market of the simulator as it was when issue #13 was filed
(``benchmarks/_sim_before.py``: every agent sends one per-call request at a time), run in the same process with
the same seed, alternating with the current one (``--repeat`` rounds; medians of each); the ratio of events per
second, by wall time and by CPU time. Run: ``python benchmarks/bench_sim.py [--quick] [--repeat N]``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

import lob
import lob.sim._simloop  # noqa: F401  (loaded before the timed runs, as the yardstick's modules are)
from lob.sim import Simulator


def _run_now(steps: int, seed: int):
    sim = Simulator.default(seed=seed, record=False, warmup_s=0)
    chunks = []
    n_fills = [0]

    def record(events, reports, fills):
        chunks.append(events.tobytes())
        n_fills[0] += len(fills)
    sim.exchange.add_listener(record)
    t0, c0 = time.perf_counter(), time.process_time()
    sim.run(steps=steps)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    events = np.frombuffer(b"".join(chunks), dtype=lob.EVENT_DTYPE).copy()
    return dict(sim=sim, events=events, n=len(events), fills=n_fills[0], wall=wall, cpu=cpu)


def _run_before(steps: int, seed: int):
    # the issue-time simulator (benchmarks/_sim_before.py): the same default market, steps and seed
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        from _sim_before import Simulator as Before
    finally:
        sys.path.pop(0)
    sim = Before.default(seed=seed, record=False, warmup_s=0)
    counts = [0, 0]

    def count(events, reports, fills):
        counts[0] += len(events)
        counts[1] += len(fills)
    sim.exchange.add_listener(count)
    t0, c0 = time.perf_counter(), time.process_time()
    sim.run(steps=steps)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return dict(n=counts[0], fills=counts[1], wall=wall, cpu=cpu)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30_000, help="simulator steps (10 ms of event time each)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="3,000 steps")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of (before, now), alternating")
    ap.add_argument("--no-before", action="store_true", help="skip the issue-time yardstick")
    args = ap.parse_args(argv)
    steps = 3_000 if args.quick else args.steps

    now_runs, before_runs = [], []
    for _ in range(max(1, args.repeat)):
        if not args.no_before:
            before_runs.append(_run_before(steps, args.seed))
        now_runs.append(_run_now(steps, args.seed))
    last = now_runs[-1]
    sim, events, n = last["sim"], last["events"], last["n"]
    sim_s = statistics.median(r["wall"] for r in now_runs)
    sim_cpu = statistics.median(r["cpu"] for r in now_runs)
    deterministic = len({(r["n"], r["sim"].exchange.state_hash()) for r in now_runs}) == 1

    # matching only: the same requests through the batch path of a fresh exchange (best of 3)
    match_s = float("inf")
    for _ in range(3):
        ex = lob.Exchange(marketdata=False)
        for spec in sim.exchange.specs():
            ex.add_symbol(**spec)
        t0 = time.perf_counter()
        ex.apply(events)
        match_s = min(match_s, time.perf_counter() - t0)
    same = ex.state_hash() == sim.exchange.state_hash()

    sim_rate, match_rate = n / sim_s, n / match_s
    lat = sim.risk.latency() if sim.risk is not None else {}
    out = dict(
        benchmark="sim_default_market", steps=steps, event_time_s=steps * sim.step_s, symbols=len(sim.exchange.symbols),
        agents=len(sim.agents), events=n, trades=last["fills"], rounds=len(now_runs),
        sim_wall_s=round(sim_s, 3), sim_events_per_s=round(sim_rate), sim_cpu_s=round(sim_cpu, 3),
        sim_events_per_cpu_s=round(n / sim_cpu) if sim_cpu > 0 else None, matching_only_events_per_s=round(match_rate),
        ratio=round(sim_rate / match_rate, 5), speedup_over_event_time=round(steps * sim.step_s / sim_s, 1),
        replay_state_hash_equal=same, deterministic=deterministic, incidents=len(sim.incidents),
        risk_check_ns=dict(p50=lat.get("p50"), p99=lat.get("p99"), count=lat.get("count")),
    )
    if before_runs:
        b_n = before_runs[-1]["n"]
        b_s = statistics.median(r["wall"] for r in before_runs)
        b_cpu = statistics.median(r["cpu"] for r in before_runs)
        out["before"] = dict(source="benchmarks/_sim_before.py (commit 2827d19)", events=b_n,
                             trades=before_runs[-1]["fills"], wall_s=round(b_s, 3), events_per_s=round(b_n / b_s),
                             events_per_cpu_s=round(b_n / b_cpu) if b_cpu > 0 else None)
        out["speedup_vs_before"] = dict(events_per_s=round(sim_rate / (b_n / b_s), 2),
                                        events_per_cpu_s=round((n / sim_cpu) / (b_n / b_cpu), 2)
                                        if sim_cpu > 0 and b_cpu > 0 else None)
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
