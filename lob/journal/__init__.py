"""Event sourcing: an append-only journal of every input and output, snapshots, recovery, time travel.

A journal is a directory::

    PATH/journal.lobj                 framed records (lob.journal.format)
    PATH/snapshots/snap-<seq>.npz     whole-exchange snapshots

``lob.Exchange(journal=PATH, fsync=...)`` writes every input before it reaches the engine (write-ahead:
a failed write rejects the request and stops order intake, failing closed) and its reports and fills after.
``lob.Exchange.open(PATH)`` recovers: the latest snapshot plus the journal tail, ending with the state hash
the exchange had. ``ex.at(seq)`` rebuilds the exchange as it was after ``seq``; ``ex.fork()`` continues
from the current state in memory without touching the journal.

fsync policies (``fsync=``):

``"always"``
    flush and fsync after every request: every acknowledged request survives a crash or power loss.
``"batch"`` (default)
    group commit: flush and fsync once ``batch_records`` inputs (default 256) have accumulated or
    ``batch_ms`` (default 5 ms) have passed since the last commit, checked at each write, and on
    ``commit()`` / ``close()``. A crash loses at most the requests written since the last commit: fewer
    than ``batch_records`` inputs, and none older than ``batch_ms`` before the last write.
``"never"``
    no fsync; data reaches the OS when the write buffer fills or on ``commit()``/``close()``.
"""
from lob.journal.journal import Journal, open_exchange, exchange_at, fork, read, export, verify, repair

__all__ = ["Journal", "open_exchange", "exchange_at", "fork", "read", "export", "verify", "repair"]
