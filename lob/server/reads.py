"""Market-data reads of the REST API: symbols, book, trades, bars (the stream and polling are in
:mod:`lob.server.fanout`)."""
from __future__ import annotations

import re

from lob.server.codec import finite
from lob.server.errors import ApiError

__all__ = ["MarketReads"]

_FREQ = re.compile(r"^[1-9][0-9]{0,3}(s|min|h|D)$")


class MarketReads:
    """The hub's market-data reads (a part of :class:`lob.server.hub.Hub`)."""

    def book(self, symbol: str, depth: int = 10) -> dict:
        self._symbol(symbol)
        b = self.exchange.book(symbol)
        d = b.depth(depth)
        bid, ask = b.best_bid(), b.best_ask()
        return dict(symbol=symbol, seq=self.feed.snapshot(symbol)["seq"], exchange_seq=self.exchange.seq,
                    bids=[list(x) for x in d["bids"]], asks=[list(x) for x in d["asks"]],
                    best_bid=list(bid) if bid else None, best_ask=list(ask) if ask else None,
                    mid=b.mid(), spread=finite(b.spread()), last_price=b.last_price, stale=self._stale[symbol])

    def trades(self, symbol: str, limit: int = 50) -> dict:
        self._symbol(symbol)
        df = self.exchange.trades(symbol, limit)
        rows = [dict(seq=int(r.seq), ts_ns=int(r.ts_ns), price=float(r.price), qty=_num(r.qty),
                     aggressor=str(r.aggressor), maker_order_id=int(r.maker_order_id),
                     taker_order_id=int(r.taker_order_id), maker_owner=r.maker_owner, taker_owner=r.taker_owner)
                for r in df.itertuples()]
        return dict(symbol=symbol, trades=rows)

    def bars(self, symbol: str, freq: str = "1min") -> dict:
        self._symbol(symbol)
        if not _FREQ.match(freq):
            raise ApiError(400, f"freq must look like 10s, 1min, 5min, 1h or 1D, got {freq!r}", "invalid_field")
        df = self.exchange.bars(symbol, freq)
        rows = [dict(time=t.isoformat(), open=float(r.open), high=float(r.high), low=float(r.low),
                     close=float(r.close), volume=_num(r.volume), trades=int(r.trades))
                for t, r in zip(df.index, df.itertuples())]
        return dict(symbol=symbol, freq=freq, bars=rows)

    def symbols(self) -> list[dict]:
        return [dict(s) for s in self.exchange.specs()]



def _num(x):
    x = float(x)
    return int(x) if x.is_integer() else x

