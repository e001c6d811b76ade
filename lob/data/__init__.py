"""Small real datasets shipped with lob, for the docs, the notebooks and the tests (see each README)."""
from __future__ import annotations

from pathlib import Path

from lob.data.crypto import CRYPTO_DIR, crypto_sample

__all__ = ["DATA_DIR", "lobster_sample", "CRYPTO_DIR", "crypto_sample"]

DATA_DIR = Path(__file__).resolve().parent


def lobster_sample(level: int = 10) -> tuple[Path, Path]:
    """(message file, orderbook file) of the LOBSTER GOOG 2012-06-21 sample at 1, 5 or 10 levels.

    Examples
    --------
    >>> msg, book = lobster_sample(5)
    >>> msg.name
    'GOOG_2012-06-21_34200000_57600000_message_5.csv.gz'
    """
    if level not in (1, 5, 10):
        raise ValueError(f"level must be 1, 5 or 10, got {level!r}")
    stem = "GOOG_2012-06-21_34200000_57600000"
    d = DATA_DIR / "lobster"
    return d / f"{stem}_message_{level}.csv.gz", d / f"{stem}_orderbook_{level}.csv.gz"

