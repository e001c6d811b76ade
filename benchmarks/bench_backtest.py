"""Backtest benchmark: lob's GridMaker backtest of the LOBSTER GOOG day against hftbacktest, and the Python protocol.

What runs (same process, same data in memory, rounds alternating, medians):

* ``lob``: ``Backtest(GridMaker(levels=3, spacing_ticks=5, size=100, max_position=500), events,
  latency=200_000, fees=Fees(maker_bps=-0.2, taker_bps=0.3), step_ns=STEP).run()`` exactly as written (the
  default impact mode; the built-in maker runs its compiled form), timed from construction to result.
* ``hftbacktest`` (when installed, and ../shared/bench/backtest_vs_hftbacktest is there): the same grid in
  hftbacktest's numba style, event-gated (one decision per step that saw data, as lob steps), L3 FIFO queue,
  on that folder's conversion of the same day (``convert_hbt.py``, cached under the system temp folder). Its
  JIT is compiled first on 2,000 events and not timed; only the strategy call is timed (as ``run_hbt.py``).
  ``ratio`` = lob's median / hftbacktest's median: the goal is <= 1.0.
* ``python_protocol``: the same backtest with ``compiled=False`` (the strategy's Python form behind the
  protocol) against the Backtest of before issue #13 (``benchmarks/_backtest_before.py``, the same Python
  GridMaker): ``speedup`` = before / now, goal >= 3.

* ``numba`` (when numba is installed): the same grid as a numba ``@cfunc`` (``lob.replay.numba_strategy.numba_grid``,
  compiled before timing), in the same rounds: ``ratio_numba_over_cython`` = its median / lob's median, and
  whether it gave the same orders, fills and marks.
* ``threads`` (``--threads``): two compiled GridMaker backtests of the day in two threads against the same two
  one after the other; ``speedup`` = serial / threaded wall time (the step loop runs without the GIL, so on an
  idle 2-core machine this approaches 2; a loaded machine gives less).

* ``sweep`` (``--sweep``): a grid of GridMaker parameter sets on the day, run one after another in this process
  (serial) and by ``lob.replay.sweep.sweep`` on an embedded LocalCluster of 2 workers (the day converted once
  and scattered once per worker); ``speedup`` = serial / sweep wall time (cluster start excluded, as the runs'
  own ``speedup_over_serial`` estimate is).

Run: ``python benchmarks/bench_backtest.py [--rounds N] [--steps 1000000,100000000] [--quick] [--sweep] [--threads]``;
prints JSON.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lob.data import lobster_sample
from lob.mm import GridMaker
from lob.replay.backtest import Backtest, Fees, lobster_events

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HBT_DIR = ROOT.parent / "shared" / "bench" / "backtest_vs_hftbacktest"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _grid():
    return GridMaker(levels=3, spacing_ticks=5, size=100, max_position=500)


def lob_run(events, step, **kw):
    t = time.perf_counter()
    res = Backtest(_grid(), events, latency=200_000, fees=Fees(maker_bps=-0.2, taker_bps=0.3), step_ns=step,
                   progress=False, **kw).run()
    return time.perf_counter() - t, res


def before_run(before, events, step):
    t = time.perf_counter()
    res = before.Backtest(_grid(), events, latency=200_000, fees=before.Fees(maker_bps=-0.2, taker_bps=0.3),
                          step_ns=step, progress=False).run()
    return time.perf_counter() - t, res


class Hbt:
    """hftbacktest's event-gated grid of ../shared/bench/backtest_vs_hftbacktest (run_hbt.py), data cached."""

    def __init__(self):
        os.environ.setdefault("LOBSTER_DIR", str(ROOT / "lob" / "data" / "lobster"))
        self.run_mod = _load("run_hbt", HBT_DIR / "run_hbt.py")
        cache = Path(tempfile.gettempdir()) / "lob_bench_hbt_goog_l3.npy"
        if not cache.exists():
            conv = _load("convert_hbt", HBT_DIR / "convert_hbt.py")
            a3, _, _ = conv.convert()
            np.save(cache, a3)
        self.data = np.load(cache)
        out = np.zeros(9)
        t = time.perf_counter()
        hbt = self.run_mod.build(self.data[:2000].copy(), "l3")
        self.run_mod.grid(hbt, 1_000_000, True, out)
        hbt.close()
        self.jit_s = time.perf_counter() - t

    def run(self, step):
        out = np.zeros(9)
        hbt = self.run_mod.build(self.data, "l3")
        t = time.perf_counter()
        self.run_mod.grid(hbt, step, True, out)
        dt = time.perf_counter() - t
        hbt.close()
        return dt, dict(orders=int(out[0]), cancels=int(out[1]), decisions=int(out[2]), fills=int(out[3]),
                        final_position=float(out[4]), traded_qty=float(out[7]))


def bench_sweep(events, step=1_000_000, compiled="auto"):
    from lob.replay.sweep import grid, sweep

    params = grid(levels=[2, 3, 4], spacing_ticks=[2, 5], size=[100], max_position=[500, 1000])
    kw = dict(latency=200_000, fees=Fees(maker_bps=-0.2, taker_bps=0.3), step_ns=step, compiled=compiled)
    t = time.perf_counter()
    serial = [Backtest(GridMaker(**p), events, progress=False, **kw).run().summary for p in params]
    serial_s = time.perf_counter() - t
    df = sweep(GridMaker, params, [events], n_workers=2, progress=False, **kw)
    timing = df.attrs["timing"]
    same = [r["pnl"] for r in serial] == list(df.sort_values(list(params[0]))["pnl"]) or \
        sorted(r["pnl"] for r in serial) == sorted(df["pnl"])
    return dict(runs=len(params), step_ns=step, compiled=compiled, serial_s=round(serial_s, 3), sweep_wall_s=round(timing["wall_s"], 3),
                speedup=round(serial_s / timing["wall_s"], 2),
                speedup_over_serial_estimate=round(timing["speedup_over_serial"], 2),
                load_and_scatter_s=round(timing["load_s"], 3), same_results=same)


def bench_threads(events, step, rounds):
    import threading

    serial, threaded = [], []
    for _ in range(rounds):                              # alternating
        t = time.perf_counter()
        lob_run(events, step)
        lob_run(events, step)
        serial.append(time.perf_counter() - t)
        ths = [threading.Thread(target=lob_run, args=(events, step)) for _ in range(2)]
        t = time.perf_counter()
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        threaded.append(time.perf_counter() - t)
    return dict(step_ns=step, backtests=2, serial_median_s=_med(serial), threaded_median_s=_med(threaded),
                speedup=round(statistics.median(serial) / statistics.median(threaded), 2),
                load_average=[round(x, 2) for x in os.getloadavg()])


def _med(xs):
    return round(statistics.median(xs), 4)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds of lob and hftbacktest")
    ap.add_argument("--py-rounds", type=int, default=3, help="alternating rounds of the Python protocol, now/before")
    ap.add_argument("--steps", default="1000000,100000000", help="decision steps in ns, comma-separated")
    ap.add_argument("--quick", action="store_true", help="3 and 1 rounds")
    ap.add_argument("--no-hbt", action="store_true", help="skip hftbacktest")
    ap.add_argument("--sweep", action="store_true", help="also time a parameter sweep, serial vs LocalCluster")
    ap.add_argument("--threads", action="store_true", help="also time two backtests in two threads vs serial")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.py_rounds = 3, 1
    steps = [int(s) for s in args.steps.split(",")]
    t = time.perf_counter()
    events = lobster_events(*lobster_sample(10))[0]
    conv_s = time.perf_counter() - t

    hbt, hbt_note = None, None
    if args.no_hbt:
        hbt_note = "skipped (--no-hbt)"
    elif not HBT_DIR.exists():
        hbt_note = f"skipped: {HBT_DIR} is absent"
    elif importlib.util.find_spec("hftbacktest") is None:
        hbt_note = "skipped: hftbacktest is not installed (pip install hftbacktest)"
    else:
        hbt = Hbt()
    before = _load("_backtest_before", HERE / "_backtest_before.py")

    out = dict(benchmark="backtest_goog_grid", events=len(events), lobster_events_s=round(conv_s, 3),
               rounds=args.rounds, hftbacktest=hbt_note or dict(jit_s=round(hbt.jit_s, 2), events=len(hbt.data)),
               steps={})
    lob_run(events[:5000], steps[0])                   # warm imports
    nb_grid = None
    if importlib.util.find_spec("numba") is not None:
        from lob.replay.numba_strategy import numba_grid

        nb_grid = numba_grid(levels=3, spacing_ticks=5, size=100, max_position=500)   # compiles here, untimed
    for step in steps:
        row = {}
        lob_t, hbt_t, nb_t = [], [], []
        res = hres = nres = None
        for _ in range(args.rounds):
            dt, res = lob_run(events, step)
            lob_t.append(dt)
            if hbt is not None:
                dt, hres = hbt.run(step)
                hbt_t.append(dt)
            if nb_grid is not None:
                nb_grid.state[:] = 0
                t = time.perf_counter()
                nres = Backtest(nb_grid, events, latency=200_000, fees=Fees(maker_bps=-0.2, taker_bps=0.3),
                                step_ns=step, progress=False).run()
                nb_t.append(time.perf_counter() - t)
        s = res.summary
        row["lob"] = dict(median_s=_med(lob_t), min_s=round(min(lob_t), 4), max_s=round(max(lob_t), 4),
                          events_per_s=round(len(events) / statistics.median(lob_t)), compiled=s["compiled"],
                          decisions=s["decisions"], orders=s["orders"], fills=s["fills"],
                          traded_qty=s["traded_qty"], final_position=s["final_position"], pnl=round(s["pnl"], 2))
        if hbt is not None:
            row["hftbacktest"] = dict(median_s=_med(hbt_t), min_s=round(min(hbt_t), 4), max_s=round(max(hbt_t), 4),
                                      **hres)
            row["ratio_lob_over_hbt"] = round(statistics.median(lob_t) / statistics.median(hbt_t), 3)
        row["numba"] = "skipped: numba is not installed" if nb_grid is None else dict(
            median_s=_med(nb_t), ratio_numba_over_cython=round(statistics.median(nb_t) / statistics.median(lob_t), 3),
            same_as_cython=bool(nres.fills.equals(res.fills) and nres.orders.equals(res.orders)
                                and nres.pnl.equals(res.pnl)))
        now_t, before_t = [], []
        for _ in range(args.py_rounds):
            dt, pres = lob_run(events, step, compiled=False)
            now_t.append(dt)
            dt, bres = before_run(before, events, step)
            before_t.append(dt)
        row["python_protocol"] = dict(
            now_median_s=_med(now_t), before_median_s=_med(before_t),
            speedup=round(statistics.median(before_t) / statistics.median(now_t), 2),
            same_summary_as_before=all(pres.summary[k] == bres.summary[k] for k in bres.summary),
            same_as_compiled=bool(pres.fills.equals(res.fills) and pres.orders.equals(res.orders)
                                  and pres.pnl.equals(res.pnl)))
        out["steps"][f"{step / 1e6:g}ms"] = row
    if args.sweep:
        out["sweep"] = [bench_sweep(events), bench_sweep(events, compiled=False)]
    if args.threads:
        out["threads"] = bench_threads(events, steps[0], args.rounds)
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
