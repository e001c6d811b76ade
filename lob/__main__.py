"""The ``lob`` command line: ``lob serve``, ``lob demo``, ``lob journal ...``, ``lob token ...``."""
from __future__ import annotations

import argparse
import importlib
import sys


def demo(argv=None) -> int:
    """Run the simulated 4-symbol market (``lob.sim``) in real time for a few seconds and print it trading."""
    import time

    import lob
    from lob.sim import Simulator

    p = argparse.ArgumentParser(prog="lob demo", description="a simulated 4-symbol market trading in the terminal")
    p.add_argument("--seconds", type=float, default=5.0, help="how long the market trades (wall time)")
    p.add_argument("--every", type=float, default=1.0, help="seconds between two printed lines")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    if not (args.seconds > 0 and args.every > 0):
        p.error(f"--seconds and --every must be > 0, got {args.seconds} and {args.every}")
    sim = Simulator.default(args.seed, clock="realtime", warmup_s=1.0)
    ex = sim.exchange
    symbols = ex.symbols
    counts = {"events": 0, "trades": 0}

    def count(events, reports, fills):
        counts["events"] += len(events)
        counts["trades"] += len(fills)

    ex.add_listener(count)

    def last(s):
        return f"{ex.book(s).last_price or 0:>8.2f}"

    print(f"lob {lob.__version__}: {len(sim.agents)} agents trading {', '.join(symbols)} for {args.seconds:g} s "
          f"(market makers, zero-intelligence, momentum and noise traders)")
    print(f"{'time':>5} {'events':>8} {'trades':>7}  " + "  ".join(f"{s:>8}" for s in symbols))
    t0 = time.monotonic()
    end = t0 + args.seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        # realtime: the simulator steps at the wall clock's pace, its event clock is the wall time
        sim.run(until=time.time_ns() + int(min(args.every, end - now) * 1e9))
        print(f"{time.monotonic() - t0:>4.1f}s {counts['events']:>8,} {counts['trades']:>7,}  "
              + "  ".join(last(s) for s in symbols), flush=True)
    elapsed = time.monotonic() - t0
    print(f"\n{counts['events']:,} events ({counts['events'] / elapsed:,.0f}/s), {counts['trades']:,} trades, "
          f"seq {ex.seq:,}, {len(sim.incidents)} incidents")
    makers = {a.symbol: a.strategy for a in sim.market_makers}
    for s in symbols:
        b = ex.book(s)
        bid, ask = b.best_bid(), b.best_ask()
        quote = lambda q: f"{q[0]:>8.2f} x {q[1]:<6,}" if q else f"{'-':>8}   {'':<6}"
        line = f"{s:<6} bid {quote(bid)} ask {quote(ask)} {len(b):>5,} resting"
        mm = makers.get(s)
        pnl = mm.mark_to_market() if mm is not None else None
        if pnl is not None:
            line += f"   market maker: inventory {mm.position_lots * mm._lot:+,.0f}, PnL {pnl:+,.2f}"
        print(line)
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
