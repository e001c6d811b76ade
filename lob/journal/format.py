"""The journal file format: framed, checksummed, append-only records.

A journal file starts with the 8-byte magic ``b"LOBJNL03"`` (``b"LOBJNL02"`` files, from before the packed
records, are read too). Then records, each::

    u32 length      payload bytes
    u8  type        RecordType
    u64 seq         exchange sequence number (see RecordType)
    u32 crc32c      of (type, seq, payload)
    u32 hcrc        crc32c of the 17 header bytes before it (length, type, seq, crc)
    payload

all little-endian (21-byte header). A record is *torn* when the file ends inside it (a crash during the
write): its header is cut short, or its header verifies but the payload runs past the end of the file, or it
is the last record and its payload fails its checksum, or everything from it to the end of the file is zero
bytes (a file extended by a crash before its data reached the disk). Readers drop a torn tail with a
warning. Anything else that fails a check is *corrupt*: reading stops with ``JournalCorruptError`` naming
the offset and sequence number (``err.offset``, ``err.seq``). The header's own checksum is what tells the
two apart when a length field is damaged: without it a corrupted length pointing past the end of the file
would pass for a torn tail, and recovery would silently cut every later record.
"""
from __future__ import annotations

import enum
import mmap
import os
import struct
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import crc32c
import numpy as np

from lob.errors import JournalCorruptError, JournalError

MAGIC = b"LOBJNL03"
MAGICS = (MAGIC, b"LOBJNL02")
HEADER = struct.Struct("<IBQII")
_HEAD = struct.Struct("<IBQI")          # the part hcrc covers
_TS = struct.Struct("<BQ")
_U32 = struct.Struct("<I")
MAX_PAYLOAD = 1 << 31


class RecordType(enum.IntEnum):
    HEADER = 0      # JSON: format version, symbol specs, owners at creation
    INPUT = 1       # EVENT_DTYPE bytes; seq = the exchange's seq before the input was applied
    REPORTS = 2     # REPORT_DTYPE bytes; seq = the exchange's seq after
    FILLS = 3       # FILL_DTYPE bytes; seq = the exchange's seq after
    OWNERS = 4      # JSON: owner names registered since the last OWNERS record, with their ids
    SNAPSHOT = 5    # JSON: name of a snapshot file taken at seq
    SPEC = 6        # JSON: a symbol listed after the journal started
    BLOCK = 7       # a group commit of small requests (see below); seq = the exchange's seq after the last
    PACKED_INPUT = 8     # INPUT, REPORTS and FILLS records in the compact encoding (below); same seq meaning
    PACKED_REPORTS = 9
    PACKED_FILLS = 10
    PACKED_BLOCK = 11    # a BLOCK whose events, reports and fills are packed (below)


# A PACKED_* payload is u32 n (records) followed by lob.journal._codec.pack_words of the n records: each 8-byte word
# as a zigzag varint of its difference from the same word of the previous record, behind a u16 mask of
# the words that changed. A batch's events, reports and fills repeat most fields or step them by small
# amounts, so they take about a sixth of their plain size; the writer thread packs them.
PACKED = {RecordType.PACKED_INPUT: RecordType.INPUT, RecordType.PACKED_REPORTS: RecordType.REPORTS,
          RecordType.PACKED_FILLS: RecordType.FILLS}
PACK_OF = {v: k for k, v in PACKED.items()}
# A PACKED_BLOCK payload: the BLOCK head and index as in a BLOCK, then u32 length + packed events, u32 length
# + packed reports, and the packed fills (the rest).


# A BLOCK payload holds n requests column-wise, so that recovery joins their events in one go:
#   u32 n, u32 n_events, u32 n_reports, u32 n_fills
#   n x BLOCK_INDEX (seq_before, seq_after, events, reports, fills of each request)
#   the events (EVENT_DTYPE rows), then the reports (REPORT_DTYPE), then the fills (FILL_DTYPE)
BLOCK_HEAD = struct.Struct("<IIII")
BLOCK_ENTRY = struct.Struct("<QQIIII")
BLOCK_INDEX = np.dtype([("seq_before", "<u8"), ("seq_after", "<u8"), ("n_events", "<u4"), ("n_reports", "<u4"),
                        ("n_fills", "<u4"), ("reserved", "<u4")])
assert BLOCK_INDEX.itemsize == BLOCK_ENTRY.size


def split_block(payload, event_dtype, report_dtype, fill_dtype):
    """(index, events, reports, fills) arrays of a BLOCK payload; ``JournalCorruptError`` if its sizes
    disagree (a checksum that passed over an inconsistent block means a writer bug, not disk damage)."""
    n, ne, nr, nf = BLOCK_HEAD.unpack_from(payload, 0)
    off = BLOCK_HEAD.size
    idx = np.frombuffer(payload, BLOCK_INDEX, count=n, offset=off)
    off += n * BLOCK_INDEX.itemsize
    parts = []
    for count, dt in ((ne, event_dtype), (nr, report_dtype), (nf, fill_dtype)):
        parts.append(np.frombuffer(payload, dt, count=count, offset=off))
        off += count * dt.itemsize
    if off != len(payload) or (n and (int(idx["n_events"].sum()), int(idx["n_reports"].sum()),
                                      int(idx["n_fills"].sum())) != (ne, nr, nf)):
        raise JournalCorruptError(f"block of {n} requests is inconsistent ({len(payload)} bytes, "
                                  f"{ne}/{nr}/{nf} rows)")
    return (idx, *parts)


def unpack_payload(rtype, payload, itemsize: int):
    """The plain payload (records of ``itemsize`` bytes) of a PACKED_* record's payload."""
    from lob.journal._codec import unpack_words

    if len(payload) < 4:
        raise JournalCorruptError(f"packed record of {len(payload)} bytes has no count")
    (n,) = _U32.unpack_from(payload, 0)
    try:
        return unpack_words(np.frombuffer(payload, np.uint8, offset=4), n, itemsize)
    except ValueError as e:
        raise JournalCorruptError(f"packed {RecordType(rtype).name} record: {e}") from None


def unpack_block(payload, event_size: int, report_size: int, fill_size: int, events_only: bool = False):
    """The plain BLOCK payload of a PACKED_BLOCK record's payload; with ``events_only``, just
    ``(index array, event bytes)`` (what recovery needs: the outputs are not decoded)."""
    from lob.journal._codec import unpack_words

    try:
        if events_only:
            n, ne, nr, nf = BLOCK_HEAD.unpack_from(payload, 0)
            off = BLOCK_HEAD.size + n * BLOCK_ENTRY.size
            idx = np.frombuffer(payload, BLOCK_INDEX, count=n, offset=BLOCK_HEAD.size)
            (length,) = _U32.unpack_from(payload, off)
            if off + 4 + length > len(payload) or int(idx["n_events"].sum()) != ne:
                raise ValueError(f"the events column of {length} bytes does not fit the record")
            return idx, unpack_words(np.frombuffer(payload, np.uint8, count=length, offset=off + 4), ne, event_size)
        n, ne, nr, nf = BLOCK_HEAD.unpack_from(payload, 0)
        off = BLOCK_HEAD.size + n * BLOCK_ENTRY.size
        head = bytes(payload[:off])
        cols = []
        for count, size, last in ((ne, event_size, False), (nr, report_size, False), (nf, fill_size, True)):
            if last:
                length = len(payload) - off
            else:
                (length,) = _U32.unpack_from(payload, off)
                off += 4
            if length < 0 or off + length > len(payload):
                raise ValueError(f"a column of {length} bytes runs past the record's end")
            cols.append(unpack_words(np.frombuffer(payload, np.uint8, count=length, offset=off), count, size))
            off += length
    except (ValueError, struct.error) as e:
        raise JournalCorruptError(f"packed block record: {e}") from None
    return b"".join([head, *cols])


class Record(NamedTuple):
    """One record as :func:`scan` found it (a tuple: scanning millions of records must stay cheap)."""
    offset: int
    type: RecordType
    seq: int
    payload: bytes          # a memoryview into the file's bytes when kept, else b""


def _crc(rtype: int, seq: int, payload: bytes) -> int:
    return crc32c.crc32c(payload, crc32c.crc32c(_TS.pack(rtype, seq)))


def header(rtype: int, seq: int, payload) -> bytes:
    """The 21-byte header of a record whose payload is ``payload`` (any C-contiguous buffer: the checksum
    is computed over it in place, so an array goes to the file without a copy)."""
    n = payload.nbytes if isinstance(payload, memoryview) else len(payload)
    if n >= MAX_PAYLOAD:
        raise JournalError(f"record payload of {n} bytes is too large")
    head = _HEAD.pack(n, rtype, seq, crc32c.crc32c(payload, crc32c.crc32c(_TS.pack(rtype, seq))))
    return head + _U32.pack(crc32c.crc32c(head))


def header_parts(rtype: int, seq: int, parts) -> bytes:
    """The header of a record whose payload is the concatenation of ``parts`` (buffers), without joining them."""
    n = sum(p.nbytes if isinstance(p, memoryview) else len(p) for p in parts)
    if n >= MAX_PAYLOAD:
        raise JournalError(f"record payload of {n} bytes is too large")
    crc = crc32c.crc32c(_TS.pack(rtype, seq))
    for p in parts:
        crc = crc32c.crc32c(p, crc)
    head = _HEAD.pack(n, rtype, seq, crc)
    return head + _U32.pack(crc32c.crc32c(head))


def frame(rtype: int, seq: int, payload: bytes) -> bytes:
    """One record's bytes."""
    if len(payload) >= MAX_PAYLOAD:
        raise JournalError(f"record payload of {len(payload)} bytes is too large")
    head = _HEAD.pack(len(payload), rtype, seq, _crc(rtype, seq, payload))
    return head + struct.pack("<I", crc32c.crc32c(head)) + payload


@dataclass
class ScanResult:
    records: list
    end: int                 # offset just past the last good record
    torn_at: int | None      # offset of a torn tail, if any
    file_size: int


def _corrupt(path, off, seq, rtype, length, what, last_seq):
    err = JournalCorruptError(
        f"{path}: corrupt record at offset {off} (seq {seq}, type {rtype}, {length} bytes): {what}; "
        f"previous good seq {last_seq}")
    err.offset, err.seq, err.previous_seq = off, seq, last_seq
    return err


_TYPES = {int(t): t for t in RecordType}


def _zeros_from(data, off: int, size: int) -> bool:
    """Whether every byte from ``off`` to the end is zero (a file extended by a crash, its data lost)."""
    step = 1 << 20
    while off < size:
        block = data[off:min(off + step, size)]
        if block.count(0) != len(block):
            return False
        off += step
    return True


def scan(path, keep_payload: bool = True) -> ScanResult:
    """Read every record of a journal file; detect a torn tail, raise on a corrupt record.

    The file is mapped into memory and records are checked in place: payloads are memoryviews of the
    mapping (it stays open while any of them is alive), so nothing is copied.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    if data[:len(MAGIC)] not in MAGICS:
        if size < len(MAGIC) and MAGIC.startswith(data[:size]):
            return ScanResult([], 0, 0, size)
        raise JournalCorruptError(f"{path}: not a lob journal (magic {data[:len(MAGIC)]!r} at offset 0)")
    mv = memoryview(data)
    records = []
    append = records.append
    unpack = HEADER.unpack_from
    hs, hcs = HEADER.size, _HEAD.size
    crc, ts = crc32c.crc32c, _TS.pack
    types = _TYPES
    off = len(MAGIC)
    torn = None
    last_seq = None
    while off < size:
        if size - off < hs:
            torn = off                      # the file ends inside a header
            break
        length, rtype, seq, pcrc, hcrc = unpack(data, off)
        if crc(mv[off:off + hcs]) != hcrc:
            # a complete header that fails its own check: only a zero-filled tail is a torn write
            if _zeros_from(data, off, size):
                torn = off
                break
            raise _corrupt(path, off, seq, rtype, length, "header checksum failed (length, type and seq "
                           "unreliable)", last_seq)
        end = off + hs + length
        if end > size:
            torn = off                      # the header made it to disk, the payload did not
            break
        payload = mv[off + hs:end]
        t = types.get(rtype)
        if t is None or crc(payload, crc(ts(rtype, seq))) != pcrc:
            if end == size or _zeros_from(data, end, size):
                torn = off                  # the last write was cut short
                break
            raise _corrupt(path, off, seq, rtype, length, "checksum or type check failed", last_seq)
        append(Record(off, t, seq, payload if keep_payload else b""))
        last_seq = seq
        off = end
    return ScanResult(records, off if torn is None else torn, torn, size)


def truncate_torn_tail(path, result: ScanResult) -> bool:
    """Cut a torn tail off the file (with a warning); return whether anything was cut."""
    if result.torn_at is None:
        return False
    warnings.warn(f"{path}: torn tail at offset {result.torn_at} ({result.file_size - result.torn_at} bytes) "
                  f"truncated", RuntimeWarning, stacklevel=3)
    with open(path, "r+b") as f:
        f.truncate(result.torn_at)
        f.flush()
        os.fsync(f.fileno())
    return True
