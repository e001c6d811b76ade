"""Market data from an exchange's output stream: trade tape, OHLCV bars, L2 snapshots, BBO, and a
sequence-numbered level-2 delta + trade stream that a client can rebuild books from.

A :class:`MarketData` is an ``Exchange`` listener: ``MarketData(ex)`` attaches itself and updates on every
batch and per-call request. Everything is keyed by the event clock (``ts_ns`` of the events), so a replay
produces the same bars and snapshots as the live run did.
"""
from lob.marketdata._recorder import release_spare_rings, spare_ring_bytes
from lob.marketdata.feed import L2Feed, BookBuilder
from lob.marketdata.recorder import MarketData

__all__ = ["MarketData", "L2Feed", "BookBuilder", "release_spare_rings", "spare_ring_bytes"]
