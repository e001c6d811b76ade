"""Shared helpers of the server tests: a live LobServer on a background IOLoop thread."""
from __future__ import annotations

import asyncio
import threading

from lob.server import Accounts, Hub, LobServer
from lob.server.market import BotMarket

TOKENS = {"tok-alice-0001": "alice", "tok-bob-000002": "bob"}


class LiveServer:
    """A full server (API + dashboard + market runner) on a free loopback port, in its own thread."""

    def __init__(self, seed: int = 3, step_ms: float = 50, **hub_kwargs):
        self.hub = Hub(BotMarket(seed=seed), Accounts(TOKENS, path=False), **hub_kwargs)
        self.step_ms = step_ms
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def boot():
            self.server = LobServer(self.hub, port=0, step_ms=self.step_ms).start()
            self._ready.set()

        self.loop.run_until_complete(boot())
        self.loop.run_forever()

    def __enter__(self):
        self.thread.start()
        assert self._ready.wait(30), "server did not start"
        self.url = self.server.url
        return self

    def call(self, fn):
        """Run fn() on the server's loop and return its result (the hub is not thread-safe)."""
        fut = asyncio.run_coroutine_threadsafe(_acall(fn), self.loop)
        return fut.result(120)      # a bound only (a loaded 2-core machine may take seconds): it returns when done

    def __exit__(self, *exc):
        self.call(self.server.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(120)


async def _acall(fn):
    return fn()
