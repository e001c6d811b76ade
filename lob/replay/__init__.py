"""Historical market data into ``lob``: NASDAQ ITCH 5.0, LOBSTER, and crypto L2 feeds (Binance, Coinbase).

* :mod:`lob.replay.itch`: vectorised ITCH 5.0 parser and writer, ITCH -> ``EVENT_DTYPE`` and books.
* :mod:`lob.replay.lobster`: LOBSTER readers, events, order-level reconstruction and :func:`verify`.
* :mod:`lob.replay.crypto`: Binance depth and Coinbase level2 books with gap detection.

Nothing here imports tornado, bokeh or ipywidgets.
"""
from lob.replay.itch import (ItchMessages, ItchReplay, encode_itch, itch_events, itch_to_lobster, itch_to_parquet,
                             iter_itch, read_itch, replay_itch, write_itch)

__all__ = [
    "ItchMessages", "ItchReplay", "encode_itch", "itch_events", "itch_to_lobster", "itch_to_parquet", "iter_itch",
    "read_itch", "replay_itch", "write_itch",
]
