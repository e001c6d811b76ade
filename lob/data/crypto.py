"""The shipped crypto L2 recordings (cryptofeed sample data: Binance, Coinbase, OKX, Bybit, Gemini; see
crypto/README.md)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["CRYPTO_DIR", "crypto_sample"]

CRYPTO_DIR = Path(__file__).resolve().parent / "crypto"

_FILES = {
    "binance": {"stream": "binance/BINANCE.ws.1.0", "snapshots": "binance/BINANCE.http.0.0",
                "exchange_info": "binance/BINANCE.0.trimmed"},
    "coinbase": {"stream": "coinbase/COINBASE.ws.28.0.gz", "products": "coinbase/COINBASE.0"},
    "okx": {"stream": "okx/OKX.ws.1.0.gz", "instruments": "okx/OKX.0.trimmed.json"},
    "bybit": {"stream": "bybit/BYBIT.ws.26.0.gz", "symbols_info": "bybit/BYBIT.0"},
    "bybit_usdt": {"stream": "bybit/BYBIT.ws.25.0.first800.gz", "symbols_info": "bybit/BYBIT.0"},
    "gemini": {"stream": "gemini/GEMINI.ws.1.0.gz", "symbols_info": "gemini/GEMINI.0"},
}


def crypto_sample(venue: str) -> dict[str, Path]:
    """Paths of the shipped recording of ``venue``, keyed by the arguments of its replay function.

    Parameters
    ----------
    venue : {"binance", "coinbase", "okx", "bybit", "bybit_usdt", "gemini"}

    Returns
    -------
    dict of Path
        ``binance``: ``stream``, ``snapshots``, ``exchange_info`` (for :func:`lob.replay.crypto.replay_binance`);
        ``coinbase``: ``stream``, ``products`` (for :func:`lob.replay.crypto.replay_coinbase`);
        ``okx``: ``stream``, ``instruments`` (:func:`lob.replay.okx.replay_okx`); ``bybit`` (inverse
        contracts) and ``bybit_usdt`` (USDT contracts, the first 800 lines of the recording): ``stream``,
        ``symbols_info`` (:func:`lob.replay.bybit.replay_bybit`); ``gemini``: ``stream``, ``symbols_info``
        (:func:`lob.replay.gemini.replay_gemini`).

    Examples
    --------
    >>> from lob.replay.crypto import replay_binance
    >>> r = replay_binance(**crypto_sample("binance"))
    >>> r["NKNUSDT"].applied, len(r.gaps), r.ever_crossed
    (149, 0, False)
    """
    from lob.errors import ConfigError

    files = _FILES.get(venue)
    if files is None:
        raise ConfigError(f"venue must be one of {sorted(_FILES)}, got {venue!r}")
    return {k: CRYPTO_DIR / v for k, v in files.items()}
