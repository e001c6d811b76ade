"""LOBSTER -> backtest events: ``lob.replay.backtest.lobster_events`` (the replay registry's reader,
``executions="aggressor"``) against the per-row Python parser it replaced (the oracle kept in
tests/test_lobster_events.py: both read the files with ``lob.replay.lobster.iter_messages``, exact times).

Same process, same files, rounds alternating, medians; ``speedup`` = before / now. The outputs are checked
equal (events field by field, trades) before anything is timed.

Run: ``python benchmarks/bench_lobster_events.py [--rounds N] [--levels 1,10]``; prints JSON.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from lob.data import lobster_sample
from lob.replay.backtest import lobster_events

HERE = Path(__file__).resolve().parent


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod                 # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--levels", default="1,10")
    args = ap.parse_args(argv)
    before = _load("test_lobster_events", HERE.parent / "tests" / "test_lobster_events.py")
    out = dict(benchmark="lobster_events", rounds=args.rounds, levels={})
    for level in (int(x) for x in args.levels.split(",")):
        pair = lobster_sample(level)
        ev, tr = lobster_events(*pair)
        ev0, tr0 = before.old_lobster_events(*pair)
        assert all(np.array_equal(ev[f], ev0[f]) for f in ev.dtype.names) and tr.equals(tr0), "outputs differ"
        now, old = [], []
        for _ in range(args.rounds):
            now.append(_timed(lobster_events, *pair)[0])
            old.append(_timed(before.old_lobster_events, *pair)[0])
        out["levels"][level] = dict(events=len(ev), now_s=round(statistics.median(now), 4),
                                    before_s=round(statistics.median(old), 4),
                                    speedup=round(statistics.median(old) / statistics.median(now), 2))
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
