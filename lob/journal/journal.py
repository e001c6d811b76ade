"""Journal writer, snapshots, recovery, time travel, forks and the audit views."""
from __future__ import annotations

import atexit
import collections
import json
import os
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pandas as pd

from lob._core import EVENT_DTYPE, FILL_DTYPE, ORDER_DTYPE, REPORT_DTYPE
from lob.errors import ConfigError, JournalCorruptError, JournalError
from lob.journal.format import (BLOCK_HEAD, MAGIC, PACK_OF, PACKED, RecordType, header, header_parts, scan,
                                split_block, truncate_torn_tail, unpack_block, unpack_payload)

__all__ = ["Journal", "open_exchange", "exchange_at", "fork", "read", "export", "verify", "repair"]

VERSION = 1
FSYNC = ("always", "batch", "never")
_SMALL = 1 << 12          # records (and requests' events) smaller than this are coalesced in memory
_REPLAY_CHUNK = 1 << 16    # events per apply during recovery
_OPEN = weakref.WeakSet()   # journals not closed yet, committed at interpreter exit
_WRITER_LIMIT = 64 << 20   # bytes queued to the writer thread before the caller waits (memory stays bounded)
_STAGE_BYTES = 4 << 20     # a stage this large (inputs and outputs) is written as a block, like batch_records requests
_ASYNC_BLOCK = 1 << 20     # staged blocks of this size are packed and written by the writer thread
_ITEMSIZE = {RecordType.INPUT: EVENT_DTYPE.itemsize, RecordType.REPORTS: REPORT_DTYPE.itemsize,
             RecordType.FILLS: FILL_DTYPE.itemsize}


class _Writer:
    """The journal's writer thread (``fsync="batch"`` and ``"never"``).

    Everything the journal writes goes through it, in order: buffers as they are, and large input and
    output arrays, which it packs (:func:`lob.journal._codec.pack_words`, nogil), checksums and frames itself. The
    caller's thread thus goes on matching while the previous chunk of a batch is written; it waits only
    when more than ``_WRITER_LIMIT`` bytes are queued, and when it needs its records handed to the OS
    (:meth:`wait`). A failure is kept and raised to every later caller: the journal fails closed.
    """

    def __init__(self, fd: int, name: str):
        self.fd = fd
        self.cond = threading.Condition()
        self.items = collections.deque()
        self.queued = 0             # bytes queued, not yet written
        self.put_n = 0              # items queued so far
        self.done_n = 0             # items written so far
        self.dirty = False          # written since the last fsync (read and cleared by the group commit)
        self.exc = None             # the first failure, kept and raised to every later caller
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def put(self, item, nbytes: int) -> int:
        """Queue ``item`` (a list of buffers, or ``(rtype, seq, array)`` to pack); return its ticket."""
        with self.cond:
            while self.queued > _WRITER_LIMIT and self.exc is None:
                self.cond.wait()
            self._raise()
            self.items.append((item, nbytes))
            self.queued += nbytes
            self.put_n += 1
            self.cond.notify_all()
            return self.put_n

    def wait(self, ticket: int | None = None) -> None:
        """Block until every item queued before ``ticket`` (default: now) is handed to the OS."""
        with self.cond:
            t = self.put_n if ticket is None else ticket
            while self.done_n < t and self.exc is None:
                self.cond.wait()
            self._raise()

    @property
    def error(self) -> str | None:
        return None if self.exc is None else f"{type(self.exc).__name__}: {self.exc}"

    def _raise(self) -> None:
        # the failure as the caller's own write would have raised it (an OSError stays an OSError)
        e = self.exc
        if e is not None:
            raise (type(e)(*e.args) if isinstance(e, OSError) else JournalError(f"the journal's writer failed: {self.error}"))

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        if self.thread is not threading.current_thread():
            self.thread.join()

    def _run(self) -> None:
        from lob.journal._codec import pack_words

        while True:
            with self.cond:
                while not self.items and not self.stopping:
                    self.cond.wait()
                if not self.items:
                    return
                batch = list(self.items)
                self.items.clear()
            try:
                for item, _ in batch:
                    if isinstance(item, tuple) and item[0] == "block":
                        item = _packed_block(*item[1:])
                    elif isinstance(item, tuple):
                        rtype, seq, arr = item
                        packed = pack_words(arr.view(np.uint8), arr.dtype.itemsize)
                        payload = [_U32N(len(arr)), packed]
                        item = [header_parts(PACK_OF[rtype], seq, payload), *payload]
                    _writev(self.fd, item)
            except Exception as e:          # noqa: BLE001 - kept and raised to the next caller
                with self.cond:
                    self.exc = e
                    self.cond.notify_all()
                return
            with self.cond:
                self.done_n += len(batch)
                self.queued -= sum(nb for _, nb in batch)
                self.dirty = True
                self.cond.notify_all()


def _packed_block(n, seq, idx, ev, rep, fill) -> list:
    """The buffers of a PACKED_BLOCK record (see lob.journal.format) of ``n`` staged requests."""
    from lob.journal._codec import pack_words

    cols = [pack_words(np.frombuffer(b, np.uint8), dt.itemsize)
            for b, dt in ((ev, EVENT_DTYPE), (rep, REPORT_DTYPE), (fill, FILL_DTYPE))]
    parts = [BLOCK_HEAD.pack(n, len(ev) // EVENT_DTYPE.itemsize, len(rep) // REPORT_DTYPE.itemsize,
                             len(fill) // FILL_DTYPE.itemsize), idx,
             _U32N(len(cols[0])), cols[0], _U32N(len(cols[1])), cols[1], cols[2]]
    return [header_parts(RecordType.PACKED_BLOCK, seq, parts), *parts]


def _U32N(n: int) -> bytes:
    return n.to_bytes(4, "little")


def _writev(fd: int, parts) -> None:
    total = sum(len(memoryview(p).cast("B")) for p in parts)
    done = os.writev(fd, parts)
    while done < total:             # a short write (rare on files): finish it byte-exactly
        flat = b"".join(bytes(p) for p in parts)[done:]
        parts, total, done = [flat], len(flat), os.write(fd, flat)


def _paths(path) -> tuple[Path, Path, Path]:
    root = Path(path)
    return root, root / "journal.lobj", root / "snapshots"


class Journal:
    """The writer side, attached to one exchange (created by ``Exchange(journal=...)``): the exchange's
    journal port (:class:`lob.ports.JournalPort`), attached with ``exchange.attach_journal``; it reaches the
    exchange only through its public methods and the :class:`lob.ports.JournalLink` the attachment returns.

    Under ``fsync="always"`` every request is its own plain records, written and fsynced before it returns.
    Otherwise requests are staged by the core and written as packed blocks when ``batch_records`` requests
    (or 4 MB) have accumulated, on ``commit()`` / ``close()`` / ``snapshot()``, and (``fsync="batch"``) every
    ``batch_ms`` from a background thread that also fsyncs (every ``fsync_ms``, default ``batch_ms``); batches of 65,536 events or more are matched in
    chunks whose records a writer thread packs and writes while the engine matches. See the package
    docstring for the loss windows.
    """

    def __init__(self, exchange, path, fsync: str = "batch", batch_records: int = 256, batch_ms: float = 5.0,
                 snapshot_every: int | None = 1_000_000, fsync_ms: float | None = None, _resume: bool = False):
        if fsync not in FSYNC:
            raise ConfigError(f"fsync must be one of {FSYNC}, got {fsync!r}")
        if not isinstance(batch_records, (int, np.integer)) or batch_records < 1:
            raise ConfigError(f"batch_records must be an int >= 1, got {batch_records!r}")
        if not batch_ms > 0:
            raise ConfigError(f"batch_ms must be > 0, got {batch_ms!r}")
        if fsync_ms is not None and not fsync_ms >= batch_ms:
            raise ConfigError(f"fsync_ms must be >= batch_ms ({batch_ms!r}), got {fsync_ms!r}")
        self.exchange = exchange
        self.root, self.file, self.snap_dir = _paths(path)
        self.fsync = fsync
        self._batch_records = int(batch_records)
        self.batch_ms = float(batch_ms)
        self.fsync_ms = float(batch_ms if fsync_ms is None else fsync_ms)
        self._last_fsync = time.monotonic()
        self.snapshot_every = snapshot_every
        self._pending = 0               # direct (own-record) requests since the last write
        self._since_snapshot = 0
        self._link = None               # the exchange's side of the port, once attached
        self._closed = False
        self._buf = bytearray()         # coalesced small records not yet written to the OS
        self._direct = True
        self._seq_before = exchange.seq
        self._error = None              # a failure of the background thread, raised at the next write
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        self._writer = None
        self._pipelining = False        # inside Exchange.apply's chunked loop: it waits for the writer at the end
        self._block_ticket = 0          # the writer's ticket of the last block handed to it
        self._fd = None
        if not _resume:
            if self.file.exists() and self.file.stat().st_size > len(MAGIC):
                raise JournalError(f"{self.file} already holds a journal; recover it with lob.Exchange.open({str(path)!r})")
            self.root.mkdir(parents=True, exist_ok=True)
            self.snap_dir.mkdir(exist_ok=True)
            self._fd = os.open(self.file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
            owners = sorted(exchange.owners().items(), key=lambda kv: kv[1])
            hdr = dict(version=VERSION, specs=exchange.specs(), owners=[name for name, _ in owners])
            self._buf += MAGIC
            self._append(RecordType.HEADER, exchange.seq, json.dumps(hdr).encode())
            self.commit(fsync=True)
            _fsync_dir(self.root)
            if exchange.seq or any(st["resting_orders"] or st["pending_stops"]
                                   for st in map(exchange.book_stats, exchange.symbols)):
                self.snapshot()         # an exchange with a past (a fork, a recovery): its state is the base
        else:
            self._fd = os.open(self.file, os.O_WRONLY | os.O_APPEND)
        if fsync != "always":
            # under "always" each request is written and fsynced before its acknowledgement: no thread
            self._writer = _Writer(self._fd, f"lob-journal-writer-{self.root.name}")
        if fsync == "batch":
            # the thread holds the journal weakly: an exchange dropped without close() can still be collected
            self._thread = threading.Thread(target=_group_commit, args=(weakref.ref(self),),
                                            name=f"lob-journal-{self.root.name}", daemon=True)
            self._thread.start()
        # with a writer thread, per-call requests are staged by the core itself (no Python call each), taken
        # here as blocks; the owners registered so far are in the header (or were replayed from the journal)
        self._link = exchange.attach_journal(self, stage=self._writer is not None, stage_limit=self._batch_records,
                                             stage_bytes=_STAGE_BYTES)
        _OPEN.add(self)

    @property
    def batch_records(self) -> int:
        """Requests per group commit (see the package docstring); settable."""
        return self._batch_records

    @batch_records.setter
    def batch_records(self, n: int) -> None:
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigError(f"batch_records must be an int >= 1, got {n!r}")
        self._batch_records = int(n)
        if self._link is not None:
            self._link.set_stage_limit(self._batch_records)

    @property
    def path(self) -> Path:
        """The journal's directory."""
        return self.root

    # --- writing --------------------------------------------------------------------------------
    def _append(self, rtype, seq, payload) -> None:
        # caller holds the lock (or is the only thread); arrays are framed in place
        self._close_block()
        if isinstance(payload, np.ndarray):
            payload = memoryview(np.ascontiguousarray(payload).view(np.uint8))
        if len(payload) >= _SMALL and self._writer is not None and rtype in PACK_OF:
            if self._buf:
                self._write([self._buf])
                self._buf = bytearray()
            # only a pipelined batch has records of its own here (everything else is staged): its arrays stay
            # untouched until Exchange.apply has waited for the writer (drain) before returning
            arr = np.frombuffer(payload, np.uint8)
            self._writer.put((rtype, seq, arr.view(f"V{_ITEMSIZE[rtype]}")), len(arr))
            return
        head = header(rtype, seq, payload)
        if len(payload) < _SMALL:
            self._buf += head
            self._buf += payload
        else:
            self._write([self._buf, head, payload] if self._buf else [head, payload])
            self._buf = bytearray()

    def _close_block(self) -> None:
        # the requests the core has staged so far become one block record, packed and framed by the writer
        # thread; the caller holds the lock (the stage itself is only touched with the GIL held)
        w = self._writer
        if self._block_ticket:
            # the stage's arrays are views of the core's buffers, reused by the block after next: the block
            # the writer still holds must be written first (at most one in its hands: the loss window)
            w.wait(self._block_ticket)
            self._block_ticket = 0
        staged = self._link.take_stage() if self._link is not None else None
        if staged is None:
            return
        n, seq, idx, ev, rep, fill = staged
        if self._buf:
            self._write([self._buf])
            self._buf = bytearray()
        nbytes = len(ev) + len(rep) + len(fill)
        if nbytes >= _ASYNC_BLOCK:
            # a block of a few large requests (batches of thousands of events): the writer packs and writes
            # it while the engine goes on
            self._block_ticket = w.put(("block", n, seq, idx, ev, rep, fill), nbytes)
            return
        # a block of small requests is packed and written here: handing it over would cost two thread
        # switches, more than the writing. The writer's earlier records come first.
        if w.done_n != w.put_n:
            w.wait()
        w._raise()
        _writev(self._fd, _packed_block(n, seq, idx, ev, rep, fill))
        w.dirty = True
        self._since_snapshot += len(ev) // EVENT_DTYPE.itemsize

    def _write(self, parts) -> None:
        # caller holds the lock (every put to the writer does): the buffers are not touched after this
        w = self._writer
        if w is not None:
            if w.done_n != w.put_n:
                # the writer is busy with earlier records: queue behind them, keeping the file's order
                w.put(parts, sum(len(memoryview(p).cast("B")) for p in parts))
                return
            w._raise()
            # the writer is idle: hand the bytes to the OS now, as the loss window of "batch" promises
            _writev(self._fd, parts)
            w.dirty = True
            return
        _writev(self._fd, parts)

    def _flush_locked(self) -> None:
        self._close_block()
        if self._buf:
            buf, self._buf = self._buf, bytearray()
            self._write([buf])
        self._pending = 0

    # --- the port (lob.ports.JournalPort): called by the exchange ---------------------------------------
    def write_input(self, events: np.ndarray) -> None:
        """Journal a request's input before the engine sees it (port call); a raise rejects the request."""
        if self._writer is not None and self._writer.error is not None and self._error is None:
            self._error = self._writer.error
        if self._closed or self._error is not None:
            raise JournalError("the journal is closed" if self._closed else
                               f"the journal's background commit failed: {self._error}")
        ex, link = self.exchange, self._link
        if self._writer is not None and not self._pipelining and not link.owners_pending:
            # a request that Exchange.apply does not pipeline: it joins the stage (the next block) when its
            # outputs arrive
            self._seq_before = ex.seq
            self._direct = False
            return
        with self._lock:
            if link.owners_pending:
                self._append(RecordType.OWNERS, ex.seq, json.dumps(link.take_owners()).encode())
            self._seq_before = ex.seq
            self._direct = self._writer is None or self._pipelining
            if self._direct:
                # its own records: a large batch goes to the file without a copy; under "always" the input
                # reaches the OS before the engine sees it, so a failed write rejects the request
                self._append(RecordType.INPUT, ex.seq, events)
                if self.fsync == "always":
                    self._flush_locked()

    def write_outputs(self, events, reports, fills) -> None:
        """Journal a request's reports and fills after the engine (port call)."""
        seq = self.exchange.seq
        if not self._direct:
            # a small request through Python (a small batch, a halt): staged like the per-call ones
            if self._link.stage(events, reports, fills, self._seq_before, seq):
                self.stage_full()
            return
        with self._lock:
            if len(reports):
                self._append(RecordType.REPORTS, seq, reports)
            if len(fills):
                self._append(RecordType.FILLS, seq, fills)
            self._pending += 1
            if self._pending >= self.batch_records or self.fsync == "always":
                self._flush_locked()
        if self.fsync == "always":
            os.fsync(self._fd)      # durable before the caller sees its acknowledgement
        self._since_snapshot += len(events)
        self._snapshot_if_due()

    def stage_full(self) -> None:
        """The core's stage holds ``batch_records`` requests (or 4 MB): one block to the writer (port call)."""
        with self._lock:
            self._flush_locked()
        self._snapshot_if_due()

    def begin_pipeline(self) -> bool:
        """A large batch is matched in chunks, each with records of its own that the writer thread packs and
        writes while the engine matches the next (port call); False under ``fsync="always"`` (no writer)."""
        if self._writer is None:
            return False
        self._pipelining = True
        return True

    def end_pipeline(self, drain: bool) -> None:
        """The chunked batch is done (port call); with ``drain``, wait until its records (whose inputs are the
        caller's array) are handed to the OS."""
        self._pipelining = False
        if drain:
            self.drain()

    def _snapshot_if_due(self) -> None:
        if self.snapshot_every and self._since_snapshot >= self.snapshot_every:
            self.snapshot()

    def _commit_tick(self) -> bool:
        # one group commit of the background thread; False once the thread should end
        if self._closed:
            return False
        try:
            with self._lock:
                self._flush_locked()
                ticket = self._writer.put_n
            self._writer.wait(ticket)       # at most _WRITER_LIMIT bytes are ahead of it
            # the records are with the OS now (a process crash loses none of them); fsync them (against a power
            # loss) every fsync_ms: each fsync stalls this machine's I/O for milliseconds, felt by every thread
            now = time.monotonic()
            if self._writer.dirty and (now - self._last_fsync) * 1000 >= self.fsync_ms:
                self._writer.dirty = False
                os.fsync(self._fd)
                self._last_fsync = now
        except Exception as e:          # fail closed: the next request is rejected
            self._error = f"{type(e).__name__}: {e}"
            if self._link is not None:
                self._link.stop_intake(f"journal write failed: {self._error}")
            return False
        return True

    def __del__(self):
        # a journal dropped without close(): still hand its last records to the disk
        try:
            if not self._closed and self._fd is not None:
                self.close()
        except Exception:
            pass

    def write_spec(self, spec: dict) -> None:
        with self._lock:
            self._append(RecordType.SPEC, self.exchange.seq, json.dumps(spec).encode())
        self.commit(fsync=True)

    def commit(self, fsync: bool | None = None) -> None:
        """Hand every record to the OS and (unless fsync="never") fsync it."""
        if self._fd is None:
            return
        with self._lock:
            self._flush_locked()
        if self._writer is not None:
            self._writer.wait()
        if fsync or (fsync is None and self.fsync != "never"):
            os.fsync(self._fd)

    def drain(self) -> None:
        """Block until every record queued so far is handed to the OS (not fsynced)."""
        if self._writer is not None:
            self._writer.wait()

    def snapshot(self) -> Path:
        """Write a whole-exchange snapshot now; recovery starts from the latest one."""
        ex = self.exchange
        self.commit()
        path = self.snap_dir / f"snap-{ex.seq:020d}.npz"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **_state_arrays(ex))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.snap_dir)
        with self._lock:
            self._append(RecordType.SNAPSHOT, ex.seq, json.dumps({"file": path.name}).encode())
        self.commit()
        self._since_snapshot = 0
        return path

    def close(self) -> None:
        """Commit everything, stop the group-commit thread and detach from the exchange."""
        if self._closed:
            return
        self._closed = True
        _OPEN.discard(self)
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        try:
            self.commit(fsync=self.fsync != "never")
        finally:
            if self._writer is not None:
                self._writer.stop()
            os.close(self._fd)
            self._fd = None
            self.exchange.detach_journal(self)


def _group_commit(ref) -> None:
    # fsync="batch": every batch_ms, hand the coalesced records to the OS and fsync them; the caller's thread
    # never waits for the disk (os.write and os.fsync release the GIL)
    journal = ref()
    if journal is None:
        return
    wake, interval = journal._wake, journal.batch_ms / 1000
    del journal
    while True:
        wake.wait(interval)
        journal = ref()
        if journal is None or not journal._commit_tick():
            return
        del journal


@atexit.register
def _close_all_at_exit() -> None:
    # an interpreter that ends without close(): commit what the journals still hold in memory
    for journal in list(_OPEN):
        try:
            journal.close()
        except Exception:
            pass


def _fsync_dir(path) -> None:
    # a new file's directory entry is durable only once its directory is fsynced
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- state <-> arrays -----------------------------------------------------------------------------
def _state_arrays(ex) -> dict:
    # a snapshot file's arrays: the exchange's snapshot_state, its orders one array per symbol
    state = ex.snapshot_state()
    orders = state.pop("orders")
    meta = dict(version=VERSION, **state)
    out = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    for i, a in enumerate(orders):
        out[f"orders_{i}"] = a
    return out


def _new_exchange(specs, owners, **kwargs):
    from lob.exchange import Exchange

    ex = Exchange(**kwargs)
    for spec in specs:
        ex.add_symbol(**spec)
    for name in owners:
        ex.owner_id(name)
    return ex


def _restore(ex, state) -> None:
    meta = json.loads(bytes(state["meta"]).decode())
    n = len(meta["specs"])
    meta.setdefault("consistency_errors", [0] * n)
    ex.restore_state(dict(meta, orders=[state[f"orders_{i}"] for i in range(n)]))


def _load_records(path, repair_tail: bool, outputs: bool = True):
    root, file, snap_dir = _paths(path)
    if not file.exists():
        raise JournalError(f"no journal at {root} (expected {file})")
    result = scan(file)
    if repair_tail:
        truncate_torn_tail(file, result)
    elif result.torn_at is not None:
        import warnings

        warnings.warn(f"{file}: torn tail at offset {result.torn_at} ignored", RuntimeWarning, stacklevel=3)
    if not result.records or result.records[0].type != RecordType.HEADER:
        raise JournalCorruptError(f"{file}: the first record is not a header")
    # packed records read as their plain kind (recovery never looks at outputs: they stay packed, unread)
    records = [r if r.type not in PACKED and (r.type != RecordType.PACKED_BLOCK or not outputs) else
               r._replace(type=RecordType.BLOCK, payload=unpack_block(r.payload, *_ITEMSIZE.values()))
               if r.type == RecordType.PACKED_BLOCK else
               r._replace(type=PACKED[r.type],
                          payload=unpack_payload(r.type, r.payload, _ITEMSIZE[PACKED[r.type]])
                          if outputs or r.type == RecordType.PACKED_INPUT else b"")
               for r in result.records]
    return records, snap_dir


def _replay(path, upto_seq: int | None, repair_tail: bool, use_snapshots: bool = True, **ex_kwargs):
    """Build an exchange from a journal: the latest usable snapshot, then the inputs after it."""
    records, snap_dir = _load_records(path, repair_tail, outputs=False)
    head = json.loads(bytes(records[0].payload))
    specs, owners = list(head["specs"]), list(head["owners"])
    start = 1
    snapshot = None
    if use_snapshots:
        for k, r in enumerate(records):
            if r.type == RecordType.SNAPSHOT and (upto_seq is None or r.seq <= upto_seq):
                f = snap_dir / json.loads(bytes(r.payload))["file"]
                if f.exists():
                    snapshot, start = f, k + 1
    if snapshot is not None:
        state = np.load(snapshot)
        meta = json.loads(bytes(state["meta"]).decode())
        ex = _new_exchange(meta["specs"], meta["owners"], **ex_kwargs)
        _restore(ex, state)
    else:
        ex = _new_exchange(specs, owners, **ex_kwargs)
    INPUT, BLOCK, OUTPUTS = RecordType.INPUT, RecordType.BLOCK, (RecordType.REPORTS, RecordType.FILLS)
    batch = []          # raw event bytes of consecutive requests, replayed as one batch: same outputs, one call
    pending = None      # [payload, seq after] of an INPUT record whose outputs may follow

    def flush():
        if batch:
            # runs of small payloads are joined (np.concatenate of many structured arrays is far slower), large
            # ones applied as they are; all in slices that keep the output arrays cache- and memory-friendly
            runs, small = [], []
            for b in batch:
                if len(b) >= (_REPLAY_CHUNK // 8) * EVENT_DTYPE.itemsize:
                    if small:
                        runs.append(b"".join(small))
                        small = []
                    runs.append(b)
                else:
                    small.append(b)
            if small:
                runs.append(b"".join(small))
            batch.clear()
            for run in runs:
                events = np.frombuffer(run, dtype=EVENT_DTYPE)
                for i in range(0, len(events), _REPLAY_CHUNK):
                    ex.apply(events[i:i + _REPLAY_CHUNK])

    def take_pending() -> bool:
        # time travel stops at the last request completed by upto_seq; return whether to go on
        nonlocal pending
        if pending is None:
            return True
        payload, after = pending
        pending = None
        if upto_seq is not None and after > upto_seq:
            return False
        batch.append(payload)
        return True

    go_on = True
    for k in range(start, len(records)):
        r = records[k]
        t = r.type
        if t in OUTPUTS:
            if pending is not None:
                pending[1] = r.seq
            continue
        go_on = take_pending()
        if not go_on:
            break
        if t == INPUT:
            pending = [r.payload, r.seq]
        elif t == BLOCK or t == RecordType.PACKED_BLOCK:
            if t == BLOCK:
                idx, events, _, _ = split_block(r.payload, EVENT_DTYPE, REPORT_DTYPE, FILL_DTYPE)
            else:
                idx, raw = unpack_block(r.payload, *_ITEMSIZE.values(), events_only=True)
                events = raw.view(EVENT_DTYPE)
            if upto_seq is not None and len(idx) and int(idx["seq_after"][-1]) > upto_seq:
                j = int(np.argmax(idx["seq_after"] > upto_seq))
                batch.append(events[:int(idx["n_events"][:j].sum())].view(np.uint8))
                go_on = False
                break
            batch.append(events.view(np.uint8))
        elif t == RecordType.OWNERS:
            flush()
            for i, name in sorted(json.loads(bytes(r.payload)).items(), key=lambda kv: int(kv[0])):
                if ex.owner_id(name) != int(i):
                    raise JournalCorruptError(f"owner {name!r} recovers as id {ex.owner_id(name)}, journal says {i}")
        elif t == RecordType.SPEC:
            flush()
            ex.add_symbol(**json.loads(bytes(r.payload)))
    if go_on:
        take_pending()
    flush()
    return ex


def open_exchange(path, fsync: str = "batch", marketdata=True, **journal_kwargs):
    """Recover an exchange from its journal and keep journaling to it (what ``lob.Exchange.open`` does).

    Parameters
    ----------
    path : str or Path
        The journal directory.
    fsync : {"batch", "always", "never"}
        Durability policy for the requests that follow.
    marketdata : bool or dict
        Market-data recording of the recovered exchange (as in ``lob.Exchange``); the replay fills its tape
        and bars with every journaled trade.
    **journal_kwargs
        ``batch_records``, ``batch_ms``, ``fsync_ms``, ``snapshot_every`` of the new :class:`Journal`.

    Returns
    -------
    lob.Exchange
        The latest snapshot plus the journal tail replayed: the state hash the exchange had.

    Raises
    ------
    lob.errors.JournalCorruptError
        A record fails its checks with more data after it (its offset and sequence number are named). A
        torn tail is cut with a ``RuntimeWarning`` instead.

    Examples
    --------
    >>> import lob, tempfile
    >>> d = tempfile.mkdtemp()
    >>> ex = lob.Exchange(symbols=["X"], journal=d)
    >>> _ = ex.submit("X", "buy", 5, price=9.5, ts_ns=1)
    >>> ex.close()
    >>> lob.Exchange.open(d).state_hash() == ex.state_hash()
    True
    """
    ex = _replay(path, None, repair_tail=True, marketdata=marketdata)
    Journal(ex, path, fsync=fsync, _resume=True, **journal_kwargs)      # attaches itself: ex.journal
    return ex


def exchange_at(source, seq: int, marketdata=True):
    """The exchange as it was after ``seq``, rebuilt from a journal (what ``ex.at(seq)`` does).

    Parameters
    ----------
    source : lob.Exchange or path
        A journaling exchange (its journal is committed first) or a journal directory.
    seq : int
        An exchange sequence number. Time travel lands on request boundaries: the result is the exchange
        after the last request whose outputs all have sequence numbers ``<= seq``.
    marketdata : bool or dict
        Market-data recording of the rebuilt exchange (False is faster when only the books matter).

    Returns
    -------
    lob.Exchange
        An independent exchange without a journal; the original and its journal are untouched.
    """
    path = source.journal.root if hasattr(source, "journal") and source.journal is not None else source
    if hasattr(source, "journal") and source.journal is not None:
        source.journal.commit()
    if isinstance(seq, bool) or not isinstance(seq, (int, np.integer)) or seq < 0:
        raise ConfigError(f"seq must be a non-negative int, got {seq!r}")
    return _replay(path, int(seq), repair_tail=False, marketdata=marketdata)


def fork(ex, journal=None, fsync: str = "batch"):
    """An independent copy of an exchange's current state (what ``ex.fork()`` does).

    Parameters
    ----------
    ex : lob.Exchange
        The exchange to copy (its books, pending stops, owners, symbols and counters); it and its journal
        are left untouched.
    journal : path, optional
        Journal the fork to this new directory (its first record is a snapshot of the copied state).
    fsync : {"batch", "always", "never"}
        The fork's journal policy.

    Returns
    -------
    lob.Exchange
        The copy, with the same ``state_hash()`` and ``seq``; continue it with any requests.
    """
    state = _state_arrays(ex)
    meta = json.loads(bytes(state["meta"]).decode())
    new = _new_exchange(meta["specs"], meta["owners"])
    _restore(new, state)
    new.clock = ex.clock
    if journal is not None:
        Journal(new, journal, fsync=fsync)          # attaches itself: new.journal
    return new


# --- audit ----------------------------------------------------------------------------------------
_AUDIT = ((RecordType.INPUT, "input", EVENT_DTYPE), (RecordType.REPORTS, "report", REPORT_DTYPE),
          (RecordType.FILLS, "fill", FILL_DTYPE))


def read(path) -> pd.DataFrame:
    """Every journaled input, report and fill as one DataFrame (column ``record``: input/report/fill),
    in file order, with the record's sequence number and offset.

    ``record_seq`` is the exchange's sequence number before an input and after a request's outputs;
    ``offset`` is the byte offset of the record holding the row (a group-commit block holds many requests).
    """
    records, _ = _load_records(path, repair_tail=False)
    kinds = {t: (name, dtype, rank) for rank, (t, name, dtype) in enumerate(_AUDIT)}
    # per kind: direct records (one unit each, scalars) and block requests (arrays), kept in two groups
    direct = {name: ([], [], [], [], []) for _, name, _ in _AUDIT}         # payload, count, seq, offset, record
    blocks = {name: ([], [], [], [], [], []) for _, name, _ in _AUDIT}     # + request index within the block
    for k, r in enumerate(records):
        if r.type in kinds:
            name, dtype, _ = kinds[r.type]
            for lst, v in zip(direct[name], (r.payload, len(r.payload) // dtype.itemsize, r.seq, r.offset, k)):
                lst.append(v)
        elif r.type == RecordType.BLOCK:
            idx, ev, rep, fill = split_block(r.payload, EVENT_DTYPE, REPORT_DTYPE, FILL_DTYPE)
            n = len(idx)
            for name, arr, count, seq in (("input", ev, idx["n_events"], idx["seq_before"]),
                                          ("report", rep, idx["n_reports"], idx["seq_after"]),
                                          ("fill", fill, idx["n_fills"], idx["seq_after"])):
                for lst, v in zip(blocks[name], (arr.view(np.uint8), count.astype(np.int64), seq.astype(np.int64),
                                                 np.full(n, r.offset, np.int64), np.full(n, k, np.int64),
                                                 np.arange(n, dtype=np.int64))):
                    lst.append(v)
    frames = []
    for rtype, name, dtype in _AUDIT:
        d, b = direct[name], blocks[name]
        if not d[0] and not b[0]:
            continue
        a = np.frombuffer(b"".join(d[0] + b[0]), dtype=dtype)

        def col(j, d=d, b=b):
            return np.concatenate([np.asarray(d[j], dtype=np.int64)] + b[j])

        counts = col(1)
        # an input's "reserved" byte is the edge rejection reason: keep it
        cols = {("out_seq" if n == "seq" else n): a[n] for n in dtype.names
                if name == "input" or not n.startswith("reserved")}
        df = pd.DataFrame({"record": name, "record_seq": np.repeat(col(2), counts),
                           "offset": np.repeat(col(3), counts), **cols})
        df["_record"] = np.repeat(col(4), counts)
        df["_request"] = np.repeat(np.concatenate([np.zeros(len(d[0]), np.int64)] + b[5]), counts)
        df["_rank"] = kinds[rtype][2]
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["record", "record_seq", "offset"])
    out = pd.concat(frames, ignore_index=True)
    order = np.lexsort((out["_rank"].to_numpy(), out["_request"].to_numpy(), out["_record"].to_numpy()))
    out = out.iloc[order].drop(columns=["_record", "_request", "_rank"])
    return out.reset_index(drop=True)


def export(path, out, fmt: str | None = None) -> Path:
    """Write :func:`read` of a journal to a file.

    Parameters
    ----------
    path : path
        The journal directory.
    out : path
        The file to write.
    fmt : {"csv", "parquet"}, optional
        Defaults to the suffix of ``out``.

    Returns
    -------
    Path
        ``out``.
    """
    out = Path(out)
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    df = read(path)
    if fmt == "csv":
        df.to_csv(out, index=False)
    elif fmt == "parquet":
        df.to_parquet(out, index=False)
    else:
        raise ConfigError(f"fmt must be csv or parquet, got {fmt!r}")
    return out


def verify(path) -> dict:
    """Check every record of a journal (framing and checksums) without changing it.

    Returns
    -------
    dict
        ``records``, ``requests``, ``events``, ``bytes`` (good bytes), ``file_size``, ``last_seq``,
        ``torn_tail_at`` (offset or None) and ``counts`` per record type.

    Raises
    ------
    lob.errors.JournalCorruptError
        A corrupt record, naming its offset and sequence number.
    """
    root, file, _ = _paths(path)
    if not file.exists():
        raise JournalError(f"no journal at {root}")
    result = scan(file)
    counts = {}
    requests = events = 0
    for r in result.records:
        counts[r.type.name.lower()] = counts.get(r.type.name.lower(), 0) + 1
        if r.type == RecordType.INPUT:
            requests += 1
            events += len(r.payload) // EVENT_DTYPE.itemsize
        elif r.type == RecordType.PACKED_INPUT:
            requests += 1
            events += len(unpack_payload(r.type, r.payload, EVENT_DTYPE.itemsize)) // EVENT_DTYPE.itemsize
        elif r.type == RecordType.BLOCK:
            idx, ev, _, _ = split_block(r.payload, EVENT_DTYPE, REPORT_DTYPE, FILL_DTYPE)
            requests += len(idx)
            events += len(ev)
        elif r.type == RecordType.PACKED_BLOCK:
            idx, ev, _, _ = split_block(unpack_block(r.payload, *_ITEMSIZE.values()), EVENT_DTYPE, REPORT_DTYPE,
                                        FILL_DTYPE)
            requests += len(idx)
            events += len(ev)
    return dict(path=str(file), records=len(result.records), requests=requests, events=events, bytes=result.end,
                file_size=result.file_size, last_seq=result.records[-1].seq if result.records else None,
                torn_tail_at=result.torn_at, counts=counts)


def repair(path, truncate_corrupt: bool = False) -> dict:
    """Truncate a torn tail; with ``truncate_corrupt``, also cut the file at a corrupt record.

    Parameters
    ----------
    path : path
        The journal directory.
    truncate_corrupt : bool
        Cut at a corrupt record too, losing every record from it on (recovery then ends at the request
        before it). Without it a corrupt record raises ``JournalCorruptError``.

    Returns
    -------
    dict
        ``action`` (``"nothing_to_do"``, ``"truncated_torn_tail"`` or ``"truncated_corrupt"``), ``offset`` and
        the :func:`verify` summary after the repair.
    """
    root, file, _ = _paths(path)
    try:
        result = scan(file, keep_payload=False)
    except JournalCorruptError as e:
        if not truncate_corrupt:
            raise
        off = getattr(e, "offset", None)
        if off is None:                     # not a record (e.g. a bad magic): nothing safe to cut at
            raise
        with open(file, "r+b") as f:
            f.truncate(off)
            os.fsync(f.fileno())
        return dict(action="truncated_corrupt", offset=off, **verify(path))
    cut = truncate_torn_tail(file, result)
    return dict(action="truncated_torn_tail" if cut else "nothing_to_do", offset=result.torn_at, **verify(path))
