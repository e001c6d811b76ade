"""The journal file format: framed, checksummed, append-only records.

A journal file starts with the 8-byte magic ``b"LOBJNL02"``. Then records, each::

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
import os
import struct
import warnings
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import crc32c

from lob.errors import JournalCorruptError, JournalError

MAGIC = b"LOBJNL02"
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


@dataclass
class Record:
    offset: int
    type: RecordType
    seq: int
    payload: bytes


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


def _zeros_to_end(f, off: int, size: int) -> bool:
    f.seek(off)
    while True:
        block = f.read(1 << 20)
        if not block:
            return True
        if block.count(0) != len(block):
            return False


def scan(path, keep_payload: bool = True) -> ScanResult:
    """Read every record of a journal file; detect a torn tail, raise on a corrupt record."""
    size = os.path.getsize(path)
    records = []
    with open(path, "rb") as f:
        magic = f.read(len(MAGIC))
        if magic != MAGIC:
            if len(magic) < len(MAGIC) and MAGIC.startswith(magic):
                return ScanResult([], 0, 0, size)
            raise JournalCorruptError(f"{path}: not a lob journal (magic {magic!r} at offset 0)")
        off = len(MAGIC)
        torn = None
        last_seq = None
        while off < size:
            head = f.read(HEADER.size)
            if len(head) < HEADER.size:
                torn = off                  # the file ends inside a header
                break
            length, rtype, seq, crc, hcrc = HEADER.unpack(head)
            if crc32c.crc32c(head[:_HEAD.size]) != hcrc:
                # a complete header that fails its own check: only a zero-filled tail is a torn write
                if _zeros_to_end(f, off, size):
                    torn = off
                    break
                raise _corrupt(path, off, seq, rtype, length, "header checksum failed (length, type and seq "
                               "unreliable)", last_seq)
            if off + HEADER.size + length > size:
                torn = off                  # the header made it to disk, the payload did not
                break
            payload = f.read(length)
            bad = rtype not in RecordType._value2member_map_ or _crc(rtype, seq, payload) != crc
            if bad:
                if off + HEADER.size + length == size or _zeros_to_end(f, off + HEADER.size + length, size):
                    torn = off              # the last write was cut short
                    break
                raise _corrupt(path, off, seq, rtype, length, "checksum or type check failed", last_seq)
            records.append(Record(off, RecordType(rtype), seq, payload if keep_payload else b""))
            last_seq = seq
            off += HEADER.size + length
        end = off if torn is None else torn
    return ScanResult(records, end, torn, size)


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
