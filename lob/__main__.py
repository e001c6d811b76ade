"""The ``lob`` command line: ``lob serve``, ``lob demo``, ``lob journal ...``, ``lob token ...``."""
from __future__ import annotations

import argparse
import importlib
import sys


def demo(argv=None) -> int:
    """Run a small simulated market on the engine and print what happened (no server needed)."""
    import numpy as np

    import lob

    p = argparse.ArgumentParser(prog="lob demo", description="a simulated 4-symbol market in the terminal")
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    symbols = ["AAPL", "GOOGL", "MSFT", "TSLA"]
    mids = np.array([19000, 17500, 42000, 25000])
    ex = lob.Exchange(symbols=symbols)
    n = args.events
    ev = lob.empty_events(n)
    sym = rng.integers(0, 4, n)
    side = rng.integers(0, 2, n)
    walk = np.cumsum(rng.choice([-1, 0, 1], size=(n, 4), p=[0.05, 0.9, 0.05]), axis=0)
    mid = mids[sym] + walk[np.arange(n), sym]
    offset = rng.geometric(0.25, n) - 2            # mostly passive, sometimes through the touch
    ev["symbol"] = sym
    ev["side"] = side
    ev["price_ticks"] = np.where(side == 0, mid - offset, mid + offset)
    ev["qty_lots"] = rng.integers(1, 10, n) * 10
    ev["ts_ns"] = np.arange(n) * 1_000_000
    ev["owner"] = rng.integers(1, 50, n)
    import time

    t = time.perf_counter()
    reports, fills = ex.apply(ev)
    dt = time.perf_counter() - t
    print(f"lob {lob.__version__}: {n:,} orders on {len(symbols)} symbols in {dt * 1e3:.1f} ms "
          f"({dt / n * 1e9:.0f} ns/order), {len(fills):,} trades, seq {ex.seq:,}")
    for s in symbols:
        b = ex.book(s)
        d = b.depth(3)
        print(f"\n{s}: last {b.last_price}, {len(b):,} resting orders, spread {b.spread()}")
        for price, qty, count in reversed(d["asks"]):
            print(f"    {'':>8} {price:>10.2f} {qty:>8} ({count})")
        for price, qty, count in d["bids"]:
            print(f"    {qty:>8} {price:>10.2f} {'':>8} ({count})")
    ex.check_integrity()
    return 0


COMMANDS = {
    "demo": ("lob.__main__", "demo"),
    "serve": ("lob.server.cli", "serve_main"),
    "token": ("lob.server.cli", "token_main"),
    "journal": ("lob.journal.cli", "main"),
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: lob {serve,demo,journal,token} ...\n\n"
              "  serve    the simulated 4-symbol market with REST/WebSocket and the dashboard\n"
              "  demo     a simulated market in the terminal (no server)\n"
              "  journal  verify or repair a journal (lob journal verify PATH)\n"
              "  token    manage API tokens (lob token create NAME | revoke TOKEN | list)")
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"lob: unknown command {cmd!r}; try 'lob --help'", file=sys.stderr)
        return 2
    module, func = COMMANDS[cmd]
    try:
        fn = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as e:
        print(f"lob: '{cmd}' is not available in this installation ({e})", file=sys.stderr)
        return 2
    return fn(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
