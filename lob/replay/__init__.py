"""Historical market data into ``lob``: NASDAQ ITCH 5.0, LOBSTER, and crypto L2 feeds (Binance, Coinbase).

* :mod:`lob.replay.itch`: vectorised ITCH 5.0 parser and writer, ITCH -> ``EVENT_DTYPE`` and books.
* :mod:`lob.replay.lobster`: LOBSTER readers, events, order-level reconstruction and :func:`verify`.
* :mod:`lob.replay.crypto`: cryptofeed recordings of Binance (snapshot + depth diffs) and Coinbase (level2)
  rebuilt into integer L2 books with each venue's synchronisation rules and gap reports.

Nothing here imports tornado, bokeh or ipywidgets.
"""
from lob.replay.itch import (ItchMessages, ItchReplay, encode_itch, itch_events, itch_to_lobster, itch_to_parquet,
                             iter_itch, read_itch, replay_itch, write_itch)
from lob.replay.crypto import (Increments, L2Book, L2Gap, L2Replay, L2SymbolReplay, iter_recording, read_recording,
                               replay_binance, replay_coinbase)
from lob.replay.lobster import QualityReport, VerifyReport, iter_messages, iter_orderbook, message_events, quality, verify

__all__ = [
    "QualityReport", "VerifyReport", "iter_messages", "iter_orderbook", "message_events", "quality", "verify",
    "ItchMessages", "ItchReplay", "encode_itch", "itch_events", "itch_to_lobster", "itch_to_parquet", "iter_itch",
    "read_itch", "replay_itch", "write_itch",
    "Increments", "L2Book", "L2Gap", "L2Replay", "L2SymbolReplay", "iter_recording", "read_recording",
    "replay_binance", "replay_coinbase",
]
