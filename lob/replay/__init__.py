"""Historical market data into ``lob``: one registry (:func:`read`) over LOBSTER, NASDAQ ITCH 5.0, Databento
DBN, Tardis.dev CSV and cryptofeed recordings of Binance, Coinbase, OKX, Bybit, Gemini and Kraken.

* :mod:`lob.replay.registry`: :func:`read` recognises a source and streams fixed-size ``EVENT_DTYPE`` chunks
  (order-level formats) or ``L2_DTYPE`` chunks (level-2 formats).
* :mod:`lob.replay.itch`: vectorised ITCH 5.0 parser and writer, ITCH -> ``EVENT_DTYPE`` and books.
* :mod:`lob.replay.lobster`: LOBSTER readers, events, order-level reconstruction and :func:`verify`.
* :mod:`lob.replay.crypto`: cryptofeed recordings of Binance (snapshot + depth diffs) and Coinbase (level2)
  rebuilt into integer L2 books with each venue's synchronisation rules and gap reports;
  :mod:`lob.replay.okx`, :mod:`~lob.replay.bybit`, :mod:`~lob.replay.gemini`, :mod:`~lob.replay.kraken`
  do the same for those venues (OKX and Kraken checksums verified on every message that carries one).
* :mod:`lob.replay.dbn`: Databento DBN MBO -> events, MBP-10 -> level-2, and an MBO writer.
* :mod:`lob.replay.tardis`: Tardis.dev ``incremental_book_L2``, ``book_snapshot_N`` and ``trades`` CSV.
* :mod:`lob.replay.numba_strategy`: :class:`NumbaStrategy`, a backtest strategy's decision as a numba ``@cfunc``.

Nothing here imports tornado, bokeh or ipywidgets.
"""
from lob.replay.itch import (ItchMessages, ItchReplay, encode_itch, itch_events, itch_to_lobster, itch_to_parquet,
                             iter_itch, read_itch, replay_itch, write_itch)
from lob.replay.crypto import (Increments, L2Book, L2Gap, L2Replay, L2SymbolReplay, iter_recording, read_recording,
                               replay_binance, replay_coinbase)
from lob.replay.lobster import QualityReport, VerifyReport, iter_messages, iter_orderbook, message_events, quality, verify
from lob.replay.okx import replay_okx
from lob.replay.bybit import replay_bybit
from lob.replay.gemini import replay_gemini
from lob.replay.kraken import replay_kraken
from lob.replay.tardis import iter_tardis, replay_tardis
from lob.replay.registry import FORMATS, L2_DTYPE, ReplayStream, apply_l2, detect, read
from lob.replay.numba_strategy import DECIDE_SIGNATURE, NumbaStrategy

__all__ = [
    "QualityReport", "VerifyReport", "iter_messages", "iter_orderbook", "message_events", "quality", "verify",
    "ItchMessages", "ItchReplay", "encode_itch", "itch_events", "itch_to_lobster", "itch_to_parquet", "iter_itch",
    "read_itch", "replay_itch", "write_itch",
    "Increments", "L2Book", "L2Gap", "L2Replay", "L2SymbolReplay", "iter_recording", "read_recording",
    "replay_binance", "replay_coinbase", "replay_okx", "replay_bybit", "replay_gemini", "replay_kraken",
    "iter_tardis", "replay_tardis", "read", "detect", "ReplayStream", "L2_DTYPE", "FORMATS", "apply_l2",
    "NumbaStrategy", "DECIDE_SIGNATURE",
]
