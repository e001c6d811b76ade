"""Event sourcing: an append-only journal of every input and output, snapshots, recovery, time travel.

A journal is a directory::

    PATH/journal.lobj                 framed records (lob.journal.format)
    PATH/snapshots/snap-<seq>.npz     whole-exchange snapshots

``lob.Exchange(journal=PATH, fsync=...)`` journals every input before it reaches the engine and its reports
and fills after (write-ahead, failing closed: see the policies below for when a write failure is seen).
The journal plugs into the exchange through its declared journal port (:mod:`lob.ports`): a
:class:`Journal` attaches itself with ``exchange.attach_journal`` and touches nothing of the exchange but its
public methods and the link that attachment returns. ``lob.Exchange.open(PATH)`` recovers: the latest
snapshot plus the journal tail, ending with the state hash the exchange had. ``ex.at(seq)`` rebuilds the
exchange as it was after ``seq``; ``ex.fork()`` continues from the current state in memory without touching
the journal.

fsync policies (``fsync=``):

``"always"``
    the input reaches the OS before the engine sees it and every request is fsynced before its
    acknowledgement returns: every acknowledged request survives a crash or a power loss.
``"batch"`` (default)
    group commit: requests are staged in memory by the core (a C buffer, no Python call per request) and
    written as one packed block once ``batch_records`` requests (default 256) or 4 MB have accumulated; a
    background thread writes the rest every ``batch_ms`` (default 5 ms) and fsyncs every ``fsync_ms``
    (default ``batch_ms``; a larger value means fewer fsyncs and a wider power-loss window, never a wider
    process-crash window), so the caller never waits for the disk. A *process* crash (SIGKILL, a segfault) loses at most the requests still in memory:
    fewer than ``batch_records``, none acknowledged more than about ``batch_ms`` before the crash (plus the
    time the thread waits for the GIL under load, at most ``sys.getswitchinterval()``, 5 ms by default);
    blocks of large requests (1 MB or more of inputs and outputs: batches of thousands of events) are written
    by the writer thread, at most one at a time, so for those at most the last two blocks' requests. A
    *machine* crash or power loss also loses what the OS had not written: at most the requests acknowledged
    since the last completed fsync, i.e. within about ``fsync_ms`` plus one fsync's duration. Always the newest requests: the journal stays a prefix.
``"never"``
    no fsync (the writer thread, below, still writes): records reach the OS every ``batch_records`` requests and on
    ``commit()`` / ``close()`` / ``snapshot()``; the OS writes them back when it chooses.

A write failure (a full disk, an I/O error) stops order intake: under ``"always"`` the request that met it is
rejected with reason ``journal_unavailable`` before it reaches the book; under ``"batch"`` the group commit
finds it within ``batch_ms`` and the requests after it are rejected (those acknowledged in between are the
loss window above).

Under ``"batch"`` and ``"never"`` a writer thread does the heavy writing: a batch of 65,536 events (4 MB) or
more is matched in chunks of that size, and each chunk's records are packed (a lossless delta + varint
encoding, about a sixth of their size, see ``lob.journal.format``), checksummed and written there while the
engine matches the next; the call returns once its records are handed to the OS. If the writer meets a write failure in the middle of such a batch, the chunks matched by
then stand (the loss window above), the call raises ``LobStateError`` naming how many events were applied,
and intake stops. See ``benchmarks/bench_journal.py`` for the measured costs of journaling and recovery.
"""
from lob.journal.journal import Journal, open_exchange, exchange_at, fork, read, export, verify, repair
from lob.ports import register_journal

# the exchange reaches the journal through lob.ports, never by importing this package
register_journal(create=Journal, open=open_exchange, at=exchange_at, fork=fork)

__all__ = ["Journal", "open_exchange", "exchange_at", "fork", "read", "export", "verify", "repair"]
