"""``lob serve`` and ``lob token create|revoke|list`` (also ``python -m lob.server ...``)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from lob.server.store import DEFAULT_FSYNC_MS, FSYNC_HELP

__all__ = ["main", "serve_main", "token_main"]


def serve_main(argv=None) -> int:
    """Start the simulated market (or a replay) and the server; run until interrupted."""
    p = argparse.ArgumentParser(prog="lob serve", description="the simulated exchange: REST, WebSocket, dashboard")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated market")
    p.add_argument("--replay", metavar="FILE",
                   help="replay a file of order-level events instead, streamed chunk by chunk: any the replay registry "
                   "(lob.replay.read) recognises - a LOBSTER message file, ITCH 5.0 (with --symbols), DBN MBO - "
                   "or an .npy of lob.EVENT_DTYPE")
    p.add_argument("--symbols", metavar="A,B", help="the stocks of an ITCH replay, comma-separated")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed (event seconds per wall second)")
    p.add_argument("--step-ms", type=float, default=100.0, help="market step period in ms")
    p.add_argument("--tokens", metavar="FILE", help="token file (default $LOB_TOKENS or ~/.config/lob/tokens.json); "
                   "tokens created or revoked while the server runs count from the next request")
    p.add_argument("--data", metavar="DIR", help="data folder: the journal that makes the server durable (default "
                   "$LOB_DATA or the user's data dir, ~/.local/share/lob/server on Linux); a restart with the same "
                   "folder recovers books, accounts, open orders and sequence numbers before serving")
    p.add_argument("--no-journal", action="store_true", help="keep nothing: a restart starts a new market")
    p.add_argument("--fsync", choices=("always", "batch", "never"), default="batch",
                   help="journal durability (loss window for acknowledged orders): " + FSYNC_HELP)
    p.add_argument("--fsync-ms", type=float, default=DEFAULT_FSYNC_MS,
                   help="under --fsync batch, fsync the journal every this many ms (default %(default)g): fewer "
                        "fsyncs, less disk traffic, a wider power-loss window; records still reach the OS every "
                        "5 ms, so a process crash loses no more")
    p.add_argument("--write-rate", type=float, default=200.0,
                   help="order-entry requests per second per account (0: no limit; 429 beyond)")
    p.add_argument("--no-dashboard", action="store_true", help="do not mount the Bokeh dashboard")
    p.add_argument("--access-log", action="store_true",
                   help="log every request (default: only 4xx/5xx; a line per order costs throughput)")
    args = p.parse_args(argv)

    from lob.errors import LobError
    from lob.server import Accounts, Hub, LobServer, tune_gc
    from lob.server.market import default_market, replay_market
    from lob.server.store import DataDir, default_data_dir, durable_hub

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not args.access_log:
        logging.getLogger("tornado.access").setLevel(logging.WARNING)
    data = None
    hub_kwargs = dict(write_rate=args.write_rate, write_burst=max(1, int(2 * args.write_rate)))
    try:
        accounts = Accounts(path=args.tokens)
        if args.replay or args.no_journal:
            # a replay is rebuilt from its file: it journals nothing
            market = replay_market(args.replay, args.speed, args.symbols) if args.replay else default_market(args.seed)
            hub = Hub(market, accounts, **hub_kwargs)
            state = "not journaled (--no-journal)" if not args.replay else "a replay: not journaled"
        else:
            data = DataDir(args.data if args.data else default_data_dir())
            data.lock()
            hub, recovered = durable_hub(data, args.seed, args.fsync, accounts, fsync_ms=args.fsync_ms, **hub_kwargs)
            state = (f"{'recovered' if recovered else 'new'} journal in {data.root} (fsync={args.fsync}"
                     f"{f' every {args.fsync_ms:g} ms' if args.fsync == 'batch' else ''}; "
                     f"exchange seq {hub.exchange.seq}, {hub.open_order_count} open account orders)")
    except LobError as e:
        print(f"lob serve: {e}", file=sys.stderr)
        if data is not None:
            from lob.errors import JournalCorruptError

            if isinstance(e, JournalCorruptError):
                print(f"lob serve: check it with 'lob journal verify {data.journal}' (and 'lob journal repair' to "
                      f"cut it at the damage), or start another market with --data elsewhere", file=sys.stderr)
            data.unlock()
        return 2

    async def run():
        srv = LobServer(hub, host=args.host, port=args.port, step_ms=args.step_ms,
                        dashboard=not args.no_dashboard).start()
        tune_gc()
        print(f"lob serve: {srv.url}/dashboard  (API {srv.url}/api/openapi.json, stream ws://{args.host}:"
              f"{srv.port}/ws; {len(hub.accounts)} API tokens loaded; {state}; Ctrl-C stops)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        srv.stop()

    try:
        asyncio.run(run())
    finally:
        if data is not None:
            hub.exchange.close()            # commits and closes the journal
            hub.client_log.close()
            data.unlock()
    return 0


def token_main(argv=None) -> int:
    """``lob token create NAME | revoke TOKEN | revoke --account NAME | list`` (``--file PATH`` for each).

    A running server sees a created or revoked token from its next request on (no restart).
    """
    p = argparse.ArgumentParser(prog="lob token", description="manage API tokens (a running server sees changes "
                                "from its next request on)")
    sub = p.add_subparsers(dest="cmd", required=True)
    file_help = "token file (default $LOB_TOKENS or ~/.config/lob/tokens.json)"
    c = sub.add_parser("create", help="create a token for an account and store it in the token file")
    c.add_argument("name")
    c.add_argument("--file", help=file_help)
    r = sub.add_parser("revoke", help="remove a token (or all tokens of --account NAME) from the token file")
    r.add_argument("token", nargs="?")
    r.add_argument("--account", help="revoke every token of this account")
    r.add_argument("--file", help=file_help)
    li = sub.add_parser("list", help="list the tokens (account, creation time, first characters)")
    li.add_argument("--file", help=file_help)
    args = p.parse_args(argv)

    import time

    from lob.errors import LobError
    from lob.server.accounts import create_token, default_tokens_path, list_tokens, revoke_tokens

    where = args.file or default_tokens_path()
    try:
        if args.cmd == "create":
            print(create_token(args.name, args.file))
            print(f"stored for account {args.name!r} in {where}", file=sys.stderr)
        elif args.cmd == "revoke":
            gone = revoke_tokens(args.token, args.account, args.file)
            print(f"revoked {len(gone)} token(s) of {sorted(set(gone))} in {where}", file=sys.stderr)
        else:
            rows = list_tokens(args.file)
            for row in rows:
                created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["created"])) if row["created"] else "?"
                print(f"{row['account']:<24} {created}  {row['token']}")
            print(f"{len(rows)} token(s) in {where}", file=sys.stderr)
    except LobError as e:
        print(f"lob token: {e}", file=sys.stderr)
        return 2
    return 0


def main(argv=None) -> int:
    """``serve ...`` or ``token create NAME``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("serve", "token"):
        print("usage: python -m lob.server {serve [--host H] [--port N] [--seed S] [--data DIR | --no-journal] "
              "[--fsync always|batch|never] [--fsync-ms MS] [--replay FILE --speed X [--symbols A,B]], token create|revoke|list}",
              file=sys.stderr)
        return 2
    return (serve_main if argv[0] == "serve" else token_main)(argv[1:])
