"""``lob serve`` and ``lob token create NAME`` (also ``python -m lob.server ...``)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

__all__ = ["main", "serve_main", "token_main"]


def serve_main(argv=None) -> int:
    """Start the simulated market (or a replay) and the server; run until interrupted."""
    p = argparse.ArgumentParser(prog="lob serve", description="the simulated exchange: REST, WebSocket, dashboard")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated market")
    p.add_argument("--replay", metavar="FILE",
                   help="replay a LOBSTER message file, an ITCH 5.0 file (with --symbols) or an .npy of events instead")
    p.add_argument("--symbols", metavar="A,B", help="the stocks of an ITCH replay, comma-separated")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed (event seconds per wall second)")
    p.add_argument("--step-ms", type=float, default=100.0, help="market step period in ms")
    p.add_argument("--tokens", metavar="FILE", help="token file (default $LOB_TOKENS or ~/.config/lob/tokens.json)")
    p.add_argument("--no-dashboard", action="store_true", help="do not mount the Bokeh dashboard")
    p.add_argument("--access-log", action="store_true",
                   help="log every request (default: only 4xx/5xx; a line per order costs throughput)")
    args = p.parse_args(argv)

    from lob.errors import LobError
    from lob.server import Accounts, Hub, LobServer, tune_gc
    from lob.server.market import default_market, replay_market

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not args.access_log:
        logging.getLogger("tornado.access").setLevel(logging.WARNING)
    try:
        market = replay_market(args.replay, args.speed, args.symbols) if args.replay else default_market(args.seed)
        hub = Hub(market, Accounts(path=args.tokens))
    except LobError as e:
        print(f"lob serve: {e}", file=sys.stderr)
        return 2

    async def run():
        srv = LobServer(hub, host=args.host, port=args.port, step_ms=args.step_ms,
                        dashboard=not args.no_dashboard).start()
        tune_gc()
        print(f"lob serve: {srv.url}/dashboard  (API {srv.url}/api/openapi.json, stream ws://{args.host}:"
              f"{srv.port}/ws; {len(hub.accounts)} API tokens loaded; Ctrl-C stops)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        srv.stop()

    asyncio.run(run())
    return 0


def token_main(argv=None) -> int:
    """``lob token create NAME [--file PATH]``: print a new API token for an account."""
    p = argparse.ArgumentParser(prog="lob token", description="manage API tokens")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create", help="create a token for an account and store it in the token file")
    c.add_argument("name")
    c.add_argument("--file", help="token file (default $LOB_TOKENS or ~/.config/lob/tokens.json)")
    args = p.parse_args(argv)

    from lob.errors import LobError
    from lob.server.accounts import create_token, default_tokens_path

    try:
        token = create_token(args.name, args.file)
    except LobError as e:
        print(f"lob token: {e}", file=sys.stderr)
        return 2
    print(token)
    print(f"stored for account {args.name!r} in {args.file or default_tokens_path()}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    """``serve ...`` or ``token create NAME``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("serve", "token"):
        print("usage: python -m lob.server {serve [--host H] [--port N] [--seed S] [--replay FILE --speed X [--symbols A,B]],"
              " token create NAME}", file=sys.stderr)
        return 2
    return (serve_main if argv[0] == "serve" else token_main)(argv[1:])
