"""NASDAQ TotalView-ITCH 5.0: a vectorised numpy parser, a writer, and the bridge to ``lob`` books.

File framing: a stream of ``[uint16 big-endian length][message]`` records (the historical ``.NASDAQ_ITCH50``
files, plain or gzip). Every message type of the 5.0 specification has a big-endian numpy record dtype
(:data:`DTYPES`) that is the message's wire layout byte for byte; the 6-byte timestamp is split into
``ts_hi`` (2 bytes) and ``ts_lo`` (4 bytes), see :func:`timestamps`.

How the parser works:

* **Framing.** Message boundaries form one chain (each length gives the next start), which is sequential by
  nature: one nogil C loop (:func:`lob.replay._itchframe.frame_be16`) walks it and checks every length against its
  type byte as it goes, stopping at the first frame that disagrees.
* **Filtering before decoding.** The stock locate sits at the same offset in every message, so messages
  of other symbols are dropped on the raw positions; only the stock-directory (``R``) messages are decoded
  for every symbol (they map symbols to locates).
* **Decoding.** One more C pass (:func:`lob.replay._itchframe.gather_frames`) copies each message into a contiguous
  byte array per type, which is then viewed as the type's record dtype: no per-message Python object.

Files are read in bounded chunks (``chunk_bytes``); a multi-GB day never sits in memory.

Book semantics used by :func:`itch_events` / :func:`replay_itch` (the choices are ours, stated here):

* ``A``/``F`` -> ``ADD`` (limit, GTC) with the ITCH order reference as ``order_id``.
* ``E``/``C`` -> ``REDUCE`` of the resting order by the executed shares. The aggressor is not simulated:
  ITCH already reports the match, and resubmitting an aggressor would re-match against whatever the engine
  holds at that price, which is the same order only when nothing else sits ahead. A reduce by the
  executed size gives the displayed book of the feed exactly. The executions go to the trades table.
* ``X`` -> ``REDUCE``; ``D`` -> ``CANCEL``.
* ``U`` -> ``CANCEL`` of the original then ``ADD`` of the new reference (side inherited; new time priority).
* ``P``/``Q`` -> trades only (non-displayed and cross prints do not touch the displayed book).
* ``S`` system events, ``R`` stock directory and ``H`` trading actions are kept as tables. Halts are not
  turned into engine ``HALT`` events by default: Nasdaq accepts orders during a halt (for the reopening
  cross), and an engine halt would reject them and diverge from the feed (``halts=True`` emits them).
* Prices are ITCH ``Price(4)`` units (1/10000 dollar) divided by ``tick`` (default 100, i.e. $0.01 ticks);
  a price off that grid raises ``ReplayFormatError`` (use ``tick=1`` for sub-dollar securities).
* The engine matches crossing orders, so a crossed feed book (possible around crosses and halts) cannot be
  represented; :class:`ItchReplay` counts the adds that traded on entry (``crossed_adds``).
"""
from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from lob.errors import ConfigError, ReplayFormatError

__all__ = [
    "DTYPES", "LENGTHS", "ItchMessages", "iter_itch", "read_itch", "encode_itch", "write_itch", "records",
    "timestamps", "set_timestamps", "itch_events", "replay_itch", "ItchReplay", "itch_to_parquet",
    "itch_to_lobster", "TRADE_DTYPE", "random_messages",
]

_HEADER = [("type", "S1"), ("locate", ">u2"), ("tracking", ">u2"), ("ts_hi", ">u2"), ("ts_lo", ">u4")]

_FIELDS = {
    "S": [("event_code", "S1")],
    "R": [("stock", "S8"), ("market_category", "S1"), ("financial_status", "S1"), ("round_lot_size", ">u4"),
          ("round_lots_only", "S1"), ("issue_classification", "S1"), ("issue_subtype", "S2"),
          ("authenticity", "S1"), ("short_sale_threshold", "S1"), ("ipo_flag", "S1"), ("luld_tier", "S1"),
          ("etp_flag", "S1"), ("etp_leverage", ">u4"), ("inverse", "S1")],
    "H": [("stock", "S8"), ("trading_state", "S1"), ("reserved", "S1"), ("reason", "S4")],
    "Y": [("stock", "S8"), ("reg_sho_action", "S1")],
    "L": [("mpid", "S4"), ("stock", "S8"), ("primary_mm", "S1"), ("mm_mode", "S1"), ("participant_state", "S1")],
    "V": [("level1", ">u8"), ("level2", ">u8"), ("level3", ">u8")],
    "W": [("breached_level", "S1")],
    "K": [("stock", "S8"), ("release_time", ">u4"), ("release_qualifier", "S1"), ("ipo_price", ">u4")],
    "J": [("stock", "S8"), ("ref_price", ">u4"), ("upper_price", ">u4"), ("lower_price", ">u4"),
          ("extension", ">u4")],
    "h": [("stock", "S8"), ("market_code", "S1"), ("halt_action", "S1")],
    "A": [("ref", ">u8"), ("side", "S1"), ("shares", ">u4"), ("stock", "S8"), ("price", ">u4")],
    "F": [("ref", ">u8"), ("side", "S1"), ("shares", ">u4"), ("stock", "S8"), ("price", ">u4"),
          ("attribution", "S4")],
    "E": [("ref", ">u8"), ("shares", ">u4"), ("match", ">u8")],
    "C": [("ref", ">u8"), ("shares", ">u4"), ("match", ">u8"), ("printable", "S1"), ("price", ">u4")],
    "X": [("ref", ">u8"), ("shares", ">u4")],
    "D": [("ref", ">u8")],
    "U": [("ref", ">u8"), ("new_ref", ">u8"), ("shares", ">u4"), ("price", ">u4")],
    "P": [("ref", ">u8"), ("side", "S1"), ("shares", ">u4"), ("stock", "S8"), ("price", ">u4"), ("match", ">u8")],
    "Q": [("shares", ">u8"), ("stock", "S8"), ("price", ">u4"), ("match", ">u8"), ("cross_type", "S1")],
    "B": [("match", ">u8")],
    "I": [("paired", ">u8"), ("imbalance", ">u8"), ("direction", "S1"), ("stock", "S8"), ("far_price", ">u4"),
          ("near_price", ">u4"), ("ref_price", ">u4"), ("cross_type", "S1"), ("variation", "S1")],
    "N": [("stock", "S8"), ("interest", "S1")],
    "O": [("stock", "S8"), ("eligibility", "S1"), ("min_price", ">u4"), ("max_price", ">u4"),
          ("near_price", ">u4"), ("near_time", ">u8"), ("lower_collar", ">u4"), ("upper_collar", ">u4")],
}

#: Record dtype (wire layout, big-endian, no padding) of every ITCH 5.0 message type.
DTYPES: dict[str, np.dtype] = {t: np.dtype(_HEADER + f) for t, f in _FIELDS.items()}
#: Message length (type byte included) per type, as in the specification.
LENGTHS: dict[str, int] = {t: d.itemsize for t, d in DTYPES.items()}
_SPEC_LENGTHS = {"S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35, "h": 21,
                 "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44, "Q": 40, "B": 19,
                 "I": 50, "N": 20, "O": 48}
assert LENGTHS == _SPEC_LENGTHS, "record dtypes disagree with the specification's lengths"

_LEN = np.zeros(256, np.int64)            # expected length per type byte; 0 = not an ITCH 5.0 type
for _t, _n in LENGTHS.items():
    _LEN[ord(_t)] = _n
_PAD = 64
_STOCK_TYPES = {t for t, f in _FIELDS.items() if any(name == "stock" for name, _ in f)}

#: Trades recorded by the book bridge (E, C, P, Q executions), integers only.
TRADE_DTYPE = np.dtype([("ts_ns", "<i8"), ("symbol", "<u2"), ("kind", "S1"), ("printable", "?"),
                        ("side", "u1"), ("price_ticks", "<i8"), ("qty", "<i8"), ("ref", "<u8"),
                        ("match", "<u8"), ("seq", "<i8")])


# ------------------------------------------------------------------------------------------------
# Records
# ------------------------------------------------------------------------------------------------
def _check_type(t) -> str:
    if isinstance(t, bytes):
        t = t.decode("ascii", "replace")
    if t not in DTYPES:
        raise ConfigError(f"message type must be one of {sorted(DTYPES)}, got {t!r}")
    return t


def records(t: str, n: int = 0, **fields) -> np.ndarray:
    """A new array of ``n`` messages of type ``t`` (wire dtype), with ``type`` set and fields filled.

    Parameters
    ----------
    t : str
        ITCH message type, e.g. ``"A"``.
    n : int
        Number of records (taken from the fields' length when 0 and fields are given).
    **fields
        Field values (scalars or arrays); ``ts`` sets the 48-bit timestamp in ns.

    Examples
    --------
    >>> r = records("D", ref=[7, 8], ts=[1, 2], locate=1)
    >>> int(r["ref"][1]), timestamps(r).tolist()
    (8, [1, 2])
    """
    t = _check_type(t)
    if n == 0 and fields:
        n = max(np.size(v) for v in fields.values())
    out = np.zeros(int(n), dtype=DTYPES[t])
    out["type"] = t.encode()
    for name, v in fields.items():
        if name == "ts":
            set_timestamps(out, v)
        elif name not in out.dtype.names:
            raise ConfigError(f"field {name!r} is not a field of ITCH message {t!r} ({out.dtype.names})")
        else:
            out[name] = v
    return out


def timestamps(recs: np.ndarray) -> np.ndarray:
    """Nanoseconds since midnight (int64) of wire records (``ts_hi << 32 | ts_lo``)."""
    return (recs["ts_hi"].astype(np.int64) << 32) | recs["ts_lo"].astype(np.int64)


def set_timestamps(recs: np.ndarray, ts) -> None:
    """Set the 48-bit timestamps of wire records from nanoseconds since midnight."""
    ts = np.asarray(ts, dtype=np.int64)
    if ts.size and (ts.min() < 0 or ts.max() >= 1 << 48):
        bad = ts[(ts < 0) | (ts >= 1 << 48)][0]
        raise ConfigError(f"field 'ts' must be in [0, 2**48), got {int(bad)}")
    recs["ts_hi"] = ts >> 32
    recs["ts_lo"] = ts & 0xFFFFFFFF


class ItchMessages:
    """Decoded ITCH messages grouped by type: wire-layout record arrays plus their file order.

    ``m["A"]`` is the array of add orders (dtype ``DTYPES["A"]``); ``m.seq["A"]`` the message numbers of
    those records in the file (0-based, counting every message of the file, filtered or not).
    """

    def __init__(self, by_type: dict | None = None, seq: dict | None = None):
        self.by_type: dict[str, np.ndarray] = dict(by_type or {})
        self.seq: dict[str, np.ndarray] = dict(seq or {})
        for t, r in self.by_type.items():
            if t not in self.seq:
                raise ConfigError(f"seq is missing for message type {t!r}")
            if len(self.seq[t]) != len(r):
                raise ConfigError(f"seq[{t!r}] has {len(self.seq[t])} entries for {len(r)} records")

    @classmethod
    def from_list(cls, arrays: Iterable[np.ndarray]) -> "ItchMessages":
        """Messages in the order given (a list of record arrays of any types, concatenated in order)."""
        by, seq, n = {}, {}, 0
        for a in arrays:
            t = a.dtype.names and _type_of(a)
            by.setdefault(t, []).append(a)
            seq.setdefault(t, []).append(np.arange(n, n + len(a), dtype=np.int64))
            n += len(a)
        return cls({t: _cat(v, t) for t, v in by.items()}, {t: np.concatenate(v) for t, v in seq.items()})

    @staticmethod
    def concat(parts: list["ItchMessages"]) -> "ItchMessages":
        """Concatenate chunks of one file (message numbers are file-wide, so they stay valid)."""
        types = sorted({t for p in parts for t in p.by_type})
        by = {t: _cat([p.by_type[t] for p in parts if t in p.by_type], t) for t in types}
        seq = {t: np.concatenate([p.seq[t] for p in parts if t in p.seq]) for t in types}
        return ItchMessages(by, seq)

    def __getitem__(self, t: str) -> np.ndarray:
        t = _check_type(t)
        return self.by_type.get(t, np.zeros(0, DTYPES[t]))

    def __contains__(self, t) -> bool:
        return t in self.by_type

    def __len__(self) -> int:
        return sum(len(r) for r in self.by_type.values())

    def counts(self) -> dict[str, int]:
        """Number of messages per type."""
        return {t: len(r) for t, r in sorted(self.by_type.items())}

    def frame(self, t: str) -> pd.DataFrame:
        """One type as a DataFrame in native types: ``seq``, ``ts_ns``, integers, stripped strings."""
        r = self[t]
        cols = {"seq": self.seq.get(t, np.zeros(0, np.int64)), "ts_ns": timestamps(r)}
        for name in r.dtype.names:
            if name in ("type", "ts_hi", "ts_lo"):
                continue
            v = r[name]
            if v.dtype.kind == "S":
                cols[name] = np.char.decode(np.char.rstrip(v), "latin-1") if len(v) else v.astype(str)
            else:
                cols[name] = v.astype(v.dtype.newbyteorder("="))
        return pd.DataFrame(cols)

    def equals(self, other: "ItchMessages") -> bool:
        """Byte-exact equality of every type's records and message numbers."""
        if set(self.by_type) != set(other.by_type):
            return False
        return all(self.by_type[t].tobytes() == other.by_type[t].tobytes()
                   and np.array_equal(self.seq[t], other.seq[t]) for t in self.by_type)

    def __repr__(self) -> str:
        return f"ItchMessages({len(self)} messages: {self.counts()})"

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{t}</td><td>{n}</td></tr>" for t, n in self.counts().items())
        return f"<table><tr><th>type</th><th>messages</th></tr>{rows}</table>"


def _cat(arrays: list, t: str) -> np.ndarray:
    # np.concatenate would turn big-endian structured fields native; concatenate the raw bytes instead
    L = LENGTHS[t]
    return np.concatenate([np.ascontiguousarray(a).view(f"V{L}") for a in arrays]).view(DTYPES[t])


def _type_of(a: np.ndarray) -> str:
    for t, d in DTYPES.items():
        if a.dtype == d:
            return t
    raise ConfigError(f"array dtype {a.dtype} is not an ITCH 5.0 record dtype")


# ------------------------------------------------------------------------------------------------
# Framing and decoding
# ------------------------------------------------------------------------------------------------
def _void_view(buf: np.ndarray, length: int) -> np.ndarray:
    return np.ndarray(shape=(len(buf) - length + 1,), dtype=f"V{length}", buffer=buf, strides=(1,))


def _bad_frame(buf, p, base_offset):
    raw = bytes(buf[p:p + 3])
    exp = int(_LEN[raw[2]]) if len(raw) == 3 else 0
    return ReplayFormatError(
        f"ITCH file offset {base_offset + p}: field 'length' {int.from_bytes(raw[:2], 'big')} does not match "
        f"message type {raw[2:3]!r} (expected {exp or 'an ITCH 5.0 type'})")


def _decode(buf, pos, seq0, keep_types=None, locates=None, symbols=None, directory=None):
    """Decode the checked frames at ``pos`` (offsets of the length prefixes) into an ItchMessages."""
    from lob.replay._itchframe import gather_frames

    keep = None
    if keep_types is not None or locates is not None or symbols is not None:
        t = buf[pos + 2]
        if directory is not None:
            # every stock directory message is decoded: it maps symbols to locates for the filter
            _update_directory(directory, gather_frames(buf, pos, _LEN, (t == ord("R")).view(np.uint8)))
        keep = np.ones(len(pos), bool)
        if locates is not None or symbols is not None:
            allowed = set(locates or ())
            if symbols is not None and directory is not None:
                allowed |= {directory[s] for s in symbols if s in directory}
            loc = (buf[pos + 3].astype(np.int64) << 8) | buf[pos + 4]
            keep &= np.isin(loc, np.fromiter(allowed, np.int64, len(allowed))) | (loc == 0)
        if keep_types is not None:
            keep &= np.isin(t, np.frombuffer("".join(keep_types).encode(), np.uint8))
        keep = keep.view(np.uint8)
    parts = gather_frames(buf, pos, _LEN, keep)
    if keep is None and directory is not None:
        _update_directory(directory, parts)
    by, sq = {}, {}
    for code, (data, idx) in parts.items():
        ty = chr(code)
        by[ty] = data.view(DTYPES[ty])
        idx += seq0              # a fresh array of gather_frames: updated in place
        sq[ty] = idx
    return ItchMessages(by, sq)


def _update_directory(directory: dict, parts: dict) -> None:
    r = parts.get(ord("R"))
    if r is not None:
        recs = r[0].view(DTYPES["R"])
        for s, loc in zip(recs["stock"].tolist(), recs["locate"].tolist()):
            directory[s.rstrip().decode("ascii", "replace")] = loc


def _is_gzip_file(path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _open_binary(source):
    """``(binary file, owned)`` of a path, bytes (plain or gzip) or a file object the caller keeps."""
    if isinstance(source, (str, os.PathLike)):
        # gzip.open owns its file: closing it closes the file (a GzipFile over an open file does not)
        return (gzip.open(source, "rb") if _is_gzip_file(source) else open(source, "rb")), True
    if isinstance(source, (bytes, bytearray, memoryview)):
        b = bytes(source)
        if b[:2] == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=io.BytesIO(b), mode="rb"), True
        return io.BytesIO(b), True
    if hasattr(source, "readinto") or hasattr(source, "read"):
        return source, False
    raise ConfigError(f"source must be a path, bytes or a binary file object, got {type(source).__name__}")


def iter_itch(source, chunk_bytes: int = 8 << 20, symbols: Iterable[str] | None = None,
              locates: Iterable[int] | None = None, types: Iterable[str] | None = None
              ) -> Iterator[ItchMessages]:
    """Stream an ITCH 5.0 file as decoded chunks of at most about ``chunk_bytes`` bytes of input.

    Parameters
    ----------
    source : path, bytes or binary file
        A ``[uint16 length][message]`` stream, plain or gzip (detected from the magic bytes). Uncompressed
        bytes are framed in place, without a copy.
    chunk_bytes : int
        Bytes read per chunk (memory stays bounded by a small multiple of this).
    symbols : iterable of str, optional
        Keep only messages of these stocks (plus locate-0 system messages). Resolved through the stock
        directory (``R``) messages, which come before a stock's first order.
    locates : iterable of int, optional
        Keep only these stock locates (plus locate 0).
    types : iterable of str, optional
        Keep only these message types.

    Yields
    ------
    ItchMessages
        Message numbers (``seq``) count every message of the file, filtered or not.

    Raises
    ------
    ReplayFormatError
        A frame whose length does not match its type, or a truncated last message.
    """
    from lob.replay._itchframe import frame_be16

    if not isinstance(chunk_bytes, (int, np.integer)) or chunk_bytes < 1024:
        raise ConfigError(f"chunk_bytes must be an int >= 1024, got {chunk_bytes!r}")
    symbols = None if symbols is None else [symbols] if isinstance(symbols, str) else list(symbols)
    locates = None if locates is None else [int(x) for x in locates]
    keep_types = None if types is None else [_check_type(x) for x in types]
    directory: dict[str, int] = {}
    seq0 = 0
    chunks = _buffers(source, chunk_bytes)
    try:
        item = next(chunks)
    except StopIteration:
        return
    while True:
        buf, n, offset, last = item
        pos, tail, bad = frame_be16(buf, n, _LEN)
        if bad >= 0:
            raise _bad_frame(buf, bad, offset)
        if last and tail != n:
            raise ReplayFormatError(
                f"ITCH file offset {offset + tail}: truncated last message ({n - tail} bytes left)")
        # an in-memory buffer is framed whole and handed out in chunk_bytes pieces
        cuts = np.searchsorted(pos, np.arange(chunk_bytes, n, chunk_bytes)) if n > chunk_bytes else []
        for part in np.split(pos, cuts) if len(cuts) else [pos]:
            if len(part):
                yield _decode(buf, part, seq0, keep_types, locates, symbols, directory)
                seq0 += len(part)
        if last:
            return
        try:
            item = chunks.send(tail)
        except StopIteration:
            return


def _buffers(source, chunk_bytes):
    """Generator of ``(buffer, n, file offset of buffer[0], last)`` over a source (see :func:`iter_itch`).

    The consumer sends back the offset of the first incomplete frame; those bytes start the next buffer.
    """
    if isinstance(source, (bytes, bytearray, memoryview)) and bytes(memoryview(source)[:2]) != b"\x1f\x8b":
        buf = np.frombuffer(source, np.uint8)
        yield buf, len(buf), 0, True
        return
    f, owned = _open_binary(source)
    buf = np.zeros(chunk_bytes + 2 + max(LENGTHS.values()), np.uint8)
    mv = memoryview(buf)
    carry = 0
    offset = 0
    try:
        while True:
            got = 0
            while got < chunk_bytes:
                r = f.readinto(mv[carry + got:carry + chunk_bytes]) if hasattr(f, "readinto") else None
                if r is None:
                    data = f.read(chunk_bytes - got)
                    r = len(data)
                    buf[carry + got:carry + got + r] = np.frombuffer(data, np.uint8)
                if not r:
                    break
                got += r
            n = carry + got
            last = got < chunk_bytes
            if n == 0:
                return
            tail = yield buf, n, offset, last
            # decoded arrays are copies, so the buffer can be reused
            rest = n - tail
            buf[:rest] = buf[tail:n]
            offset += tail
            carry = rest
    finally:
        if owned:
            f.close()


def read_itch(source, **kwargs) -> ItchMessages:
    """Read a whole (small) ITCH file into one :class:`ItchMessages` (see :func:`iter_itch`)."""
    if "chunk_bytes" not in kwargs:
        # the whole input ends up in memory anyway: one chunk spares concatenating the parts
        if isinstance(source, (bytes, bytearray, memoryview)):
            kwargs["chunk_bytes"] = max(len(memoryview(source).cast("B")), 1024)
        elif isinstance(source, (str, os.PathLike)) and os.path.isfile(source) and not _is_gzip_file(source):
            kwargs["chunk_bytes"] = max(os.path.getsize(source), 1024)
    parts = list(iter_itch(source, **kwargs))
    if len(parts) == 1:
        return parts[0]
    return ItchMessages.concat(parts) if parts else ItchMessages()


def random_messages(n: int, seed: int = 0, types: Iterable[str] | None = None, locates: int = 8,
                    weights: dict | None = None) -> ItchMessages:
    """``n`` messages of random content but valid framing (for round trips and benchmarks).

    Every field holds random bytes except ``type``, ``locate`` (1..``locates``, 0 for system types) and the
    timestamp (non-decreasing, below 2**48). The type mix defaults to a day's typical proportions.
    """
    rng = np.random.default_rng(seed)
    if weights is None:
        weights = {"A": 30, "F": 2, "D": 28, "U": 10, "E": 5, "X": 3, "C": 1, "P": 2, "Q": 0.1, "I": 3, "S": 0.05,
                   "R": 0.2, "H": 0.1, "Y": 0.1, "L": 0.2, "V": 0.01, "W": 0.01, "K": 0.01, "J": 0.01,
                   "h": 0.01, "B": 0.05, "N": 0.5, "O": 0.01}
    if types is not None:
        weights = {_check_type(t): weights.get(t, 1) for t in types}
    names = sorted(weights)
    w = np.array([weights[t] for t in names], float)
    kind = rng.choice(len(names), size=n, p=w / w.sum())
    ts = np.sort(rng.integers(0, 86_400_000_000_000, n))
    by, seq = {}, {}
    for j, t in enumerate(names):
        idx = np.flatnonzero(kind == j)
        if not len(idx):
            continue
        L = LENGTHS[t]
        r = rng.integers(0, 256, size=(len(idx), L), dtype=np.uint8).view(DTYPES[t]).ravel()
        r["type"] = t.encode()
        r["locate"] = 0 if t in ("S", "V", "W") else rng.integers(1, locates + 1, len(idx))
        set_timestamps(r, ts[idx])
        by[t], seq[t] = r, idx.astype(np.int64)
    return ItchMessages(by, seq)


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------
def encode_itch(messages) -> bytes:
    """ITCH bytes (length-prefixed frames) of messages, in message-number order.

    Parameters
    ----------
    messages : ItchMessages or list of record arrays
        A list is written in the order given.

    Examples
    --------
    >>> b = encode_itch([records("S", event_code=b"O"), records("S", event_code=b"C")])
    >>> len(b), read_itch(b)["S"]["event_code"].tolist()
    (28, [b'O', b'C'])
    """
    if not isinstance(messages, ItchMessages):
        messages = ItchMessages.from_list(messages)
    types = sorted(messages.by_type)
    if not types:
        return b""
    seq = np.concatenate([messages.seq[t] for t in types])
    code = np.concatenate([np.full(len(messages.by_type[t]), ord(t), np.uint8) for t in types])
    order = np.argsort(seq, kind="stable")
    if len(seq) > 1 and (np.diff(seq[order]) == 0).any():
        raise ConfigError("messages.seq has duplicate message numbers")
    frame = 2 + _LEN[code[order]]
    start = np.empty(len(seq), np.int64)
    start[order] = np.concatenate(([0], np.cumsum(frame)[:-1]))
    total = int(frame.sum())
    out = np.zeros(total + _PAD, np.uint8)
    a = 0
    for t in types:
        r = messages.by_type[t]
        b = a + len(r)
        s = start[a:b]
        L = LENGTHS[t]
        if np.any(r["type"] != t.encode()):
            raise ConfigError(f"records of type {t!r} have a different 'type' field")
        out[s] = L >> 8
        out[s + 1] = L & 0xFF
        _void_view(out, L)[s + 2] = np.ascontiguousarray(r).view(f"V{L}")
        a = b
    return out[:total].tobytes()


def write_itch(messages, path, compress: bool | None = None) -> int:
    """Write messages as an ITCH file (gzip when ``compress`` or the name ends in ``.gz``); return bytes written."""
    data = encode_itch(messages)
    if compress is None:
        compress = str(path).endswith(".gz")
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(data)
    return len(data)


# ------------------------------------------------------------------------------------------------
# ITCH -> lob events and books
# ------------------------------------------------------------------------------------------------
_BOOK_TYPES = ("A", "F", "E", "C", "X", "D", "U")


@dataclass
class _BridgeState:
    symbols: list
    tick: int
    halts: bool
    directory: dict = field(default_factory=dict)       # stock -> locate
    loc_symbol: dict = field(default_factory=dict)      # locate -> symbol index
    orders: dict = field(default_factory=dict)          # ref -> (side, price_ticks, symbol index)


def _sym_str(b) -> str:
    return b.rstrip().decode("ascii", "replace")


def _ticks(prices: np.ndarray, tick: int, what: str, seq: np.ndarray) -> np.ndarray:
    p = prices.astype(np.int64)
    off = p % tick != 0
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise ReplayFormatError(f"ITCH message {int(seq[i])}: field '{what}' {int(p[i])} is not a multiple of "
                                f"tick {tick} (pass tick=1 for sub-penny prices)")
    return p // tick


def _bridge_chunk(m: ItchMessages, st: _BridgeState):
    """EVENT_DTYPE events and TRADE_DTYPE trades of one decoded chunk (file order)."""
    import lob

    for r in (m["R"],):
        for s, loc in zip(r["stock"].tolist(), r["locate"].tolist()):
            name = _sym_str(s)
            st.directory[name] = loc
            if name in st.symbols:
                st.loc_symbol[loc] = st.symbols.index(name)
    lut = np.full(65536, -1, np.int64)
    for loc, i in st.loc_symbol.items():
        lut[loc] = i
    # message numbers of the book messages and how many events each makes (U makes two)
    parts = [(t, m.seq[t]) for t in _BOOK_TYPES if t in m.by_type]
    seqs = [s for _, s in parts]
    if st.halts and len(m["H"]):
        seqs.append(m.seq["H"])
    if seqs:
        allseq = np.concatenate(seqs)
        nev = np.concatenate([np.full(len(s), 2 if t == "U" else 1, np.int64) for t, s in parts]
                             + ([np.ones(len(m.seq["H"]), np.int64)] if st.halts and len(m["H"]) else []))
        order = np.argsort(allseq, kind="stable")
        slot_sorted = np.concatenate(([0], np.cumsum(nev[order])[:-1]))
        slot = np.empty_like(slot_sorted)
        slot[order] = slot_sorted
        total = int(nev.sum())
    else:
        slot = np.zeros(0, np.int64)
        total = 0
    ev = lob.empty_events(total)
    valid = np.ones(total, bool)
    a = 0
    trades = []
    orders = st.orders
    # side and price per live ref, in file order (a U may replace an order that a U of this chunk made)
    for t in ("A", "F"):
        r = m[t]
        if len(r):
            orders.update(zip(r["ref"].tolist(), zip((r["side"] == b"S").astype(np.uint8).tolist(),
                                                     (r["price"].astype(np.int64) // st.tick).tolist())))
    u_info = []
    if len(m["U"]):
        r = m["U"]
        for old, new, p in zip(r["ref"].tolist(), r["new_ref"].tolist(), (r["price"].astype(np.int64) // st.tick).tolist()):
            o = orders.get(old)
            u_info.append(o)
            if o is not None:
                orders[new] = (o[0], p)
    gone = []
    for t, s in parts:
        r = m[t]
        sl = slot[a:a + len(r)]
        a += len(r)
        ts = timestamps(r)
        sym = lut[r["locate"]]
        if t in ("A", "F"):
            side = (r["side"] == b"S").astype(np.uint8)
            pt = _ticks(r["price"], st.tick, "price", s)
            ev["action"][sl] = lob.Action.ADD
            ev["side"][sl] = side
            ev["price_ticks"][sl] = pt
            ev["qty_lots"][sl] = r["shares"]
            ev["order_id"][sl] = r["ref"]
        elif t in ("E", "C", "X"):
            ev["action"][sl] = lob.Action.REDUCE
            ev["qty_lots"][sl] = r["shares"]
            ev["order_id"][sl] = r["ref"]
            if t != "X":
                info = [orders.get(x, (0, 0)) for x in r["ref"].tolist()]
                side = np.fromiter((i[0] for i in info), np.uint8, len(info))
                price = (_ticks(r["price"], st.tick, "price", s) if t == "C"
                         else np.fromiter((i[1] for i in info), np.int64, len(info)))
                tr = np.zeros(len(r), TRADE_DTYPE)
                tr["ts_ns"], tr["symbol"], tr["kind"] = ts, np.maximum(sym, 0), t.encode()
                tr["printable"] = (r["printable"] == b"Y") if t == "C" else True
                tr["side"], tr["price_ticks"], tr["qty"] = side, price, r["shares"]
                tr["ref"], tr["match"], tr["seq"] = r["ref"], r["match"], s
                trades.append(tr[sym >= 0])
        elif t == "D":
            ev["action"][sl] = lob.Action.CANCEL
            ev["order_id"][sl] = r["ref"]
            gone.extend(r["ref"].tolist())
        elif t == "U":
            info = u_info
            gone.extend(r["ref"].tolist())
            missing = [i for i, x in enumerate(info) if x is None]
            if missing and (sym[missing] >= 0).any():
                i = missing[int(np.flatnonzero(sym[missing] >= 0)[0])]
                raise ReplayFormatError(f"ITCH message {int(s[i])}: 'U' replaces unknown order ref {int(r['ref'][i])}")
            side = np.fromiter((x[0] if x else 0 for x in info), np.uint8, len(info))
            pt = _ticks(r["price"], st.tick, "price", s)
            ev["action"][sl] = lob.Action.CANCEL
            ev["order_id"][sl] = r["ref"]
            ev["action"][sl + 1] = lob.Action.ADD
            ev["order_id"][sl + 1] = r["new_ref"]
            ev["side"][sl + 1] = side
            ev["price_ticks"][sl + 1] = pt
            ev["qty_lots"][sl + 1] = r["shares"]
            ev["ts_ns"][sl + 1] = ts
            ev["symbol"][sl + 1] = np.maximum(sym, 0)
            valid[sl + 1] = sym >= 0
        ev["ts_ns"][sl] = ts
        ev["symbol"][sl] = np.maximum(sym, 0)
        valid[sl] = sym >= 0
    for x in gone:            # executed-out orders stay in the map (an E does not say the order is done)
        orders.pop(x, None)
    if st.halts and len(m["H"]):
        r = m["H"]
        sl = slot[a:a + len(r)]
        sym = lut[r["locate"]]
        ev["ts_ns"][sl] = timestamps(r)
        ev["symbol"][sl] = np.maximum(sym, 0)
        ev["action"][sl] = np.where(r["trading_state"] == b"T", lob.Action.RESUME, lob.Action.HALT)
        valid[sl] = sym >= 0
    for t in ("P", "Q"):
        r = m[t]
        if not len(r):
            continue
        sym = lut[r["locate"]]
        tr = np.zeros(len(r), TRADE_DTYPE)
        tr["ts_ns"], tr["symbol"], tr["kind"] = timestamps(r), np.maximum(sym, 0), t.encode()
        tr["printable"] = True
        tr["price_ticks"] = _ticks(r["price"], st.tick, "price", m.seq[t])
        tr["qty"], tr["match"], tr["seq"] = r["shares"], r["match"], m.seq[t]
        if t == "P":
            tr["side"], tr["ref"] = (r["side"] == b"S").astype(np.uint8), r["ref"]
        trades.append(tr[sym >= 0])
    tr = np.concatenate(trades) if trades else np.zeros(0, TRADE_DTYPE)
    tr = tr[np.argsort(tr["seq"], kind="stable")]
    return ev[valid], tr


def itch_events(source, symbols: Iterable[str], tick: int = 100, halts: bool = False,
                chunk_bytes: int = 16 << 20) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream ``(events, trades)`` chunks: ``lob.EVENT_DTYPE`` book events and ``TRADE_DTYPE`` prints.

    Parameters
    ----------
    source : path, bytes or binary file
        ITCH 5.0 stream (plain or gzip).
    symbols : list of str
        Stocks to keep; the events' ``symbol`` field is the index in this list (list the exchange's symbols
        in the same order).
    tick : int
        ITCH price units (1/10000 dollar) per tick: 100 = $0.01.
    halts : bool
        Emit ``HALT``/``RESUME`` events from ``H`` messages (off by default, see the module notes).

    Notes
    -----
    The mapping of each message type is in the module docstring. ``E``/``C`` are reduces of the resting
    order; their prints are in ``trades`` (``C`` at its execution price, ``E`` at the order's price).
    """
    if isinstance(symbols, str):
        symbols = [symbols]
    symbols = list(symbols)
    if not isinstance(tick, (int, np.integer)) or tick < 1:
        raise ConfigError(f"tick must be a positive int (ITCH price units per tick), got {tick!r}")
    st = _BridgeState(symbols=symbols, tick=int(tick), halts=halts)
    for m in iter_itch(source, chunk_bytes=chunk_bytes, symbols=symbols):
        yield _bridge_chunk(m, st)


@dataclass
class ItchReplay:
    """Result of :func:`replay_itch`: the exchange holding the books and the tables of the day."""

    exchange: object
    trades: pd.DataFrame
    system_events: pd.DataFrame
    directory: pd.DataFrame
    trading_actions: pd.DataFrame
    events: int
    rejected: int
    crossed_adds: int

    def _repr_html_(self) -> str:
        return (f"<b>ITCH replay</b>: {self.events} book events, {len(self.trades)} trades, "
                f"{self.rejected} rejected, {self.crossed_adds} adds traded on entry"
                + self.exchange._repr_html_())


def replay_itch(source, symbols: Iterable[str], exchange=None, tick: int = 100, halts: bool = False,
                chunk_bytes: int = 16 << 20) -> ItchReplay:
    """Build the order-level books of ``symbols`` from an ITCH file in a ``lob.Exchange``.

    Parameters
    ----------
    source : path, bytes or binary file
    symbols : list of str
    exchange : lob.Exchange, optional
        Must list ``symbols`` in the same order at indices 0..n-1 (a new one with tick ``tick/10000`` is
        made when omitted).
    tick, halts, chunk_bytes
        See :func:`itch_events`.

    Returns
    -------
    ItchReplay
    """
    import lob

    if isinstance(symbols, str):
        symbols = [symbols]
    symbols = list(symbols)
    if exchange is None:
        exchange = lob.Exchange(symbols=symbols, tick_size=tick / 10000, marketdata=False)
    elif list(exchange.symbols[:len(symbols)]) != symbols:
        raise ConfigError(f"exchange symbols {exchange.symbols} must start with {symbols}")
    trades, n, rejected, crossed = [], 0, 0, 0
    sysev, direc, acts = [], [], []
    st = _BridgeState(symbols=symbols, tick=int(tick), halts=halts)
    for m in iter_itch(source, chunk_bytes=chunk_bytes, symbols=symbols):
        ev, tr = _bridge_chunk(m, st)
        reps, fills = exchange.apply(ev)
        n += len(ev)
        rejected += int((reps["status"] == lob.Status.REJECTED).sum())
        crossed += int(len(np.unique(fills["taker_order_id"]))) if len(fills) else 0
        trades.append(tr)
        sysev.append(m.frame("S"))
        direc.append(m.frame("R"))
        acts.append(m.frame("H"))
    tr = np.concatenate(trades) if trades else np.zeros(0, TRADE_DTYPE)
    tdf = pd.DataFrame(tr)
    if len(tdf):
        tdf["kind"] = tdf["kind"].str.decode("ascii")
        tdf["symbol"] = [symbols[i] for i in tdf["symbol"]]
    cat = (lambda fs: pd.concat(fs, ignore_index=True) if fs else pd.DataFrame())
    return ItchReplay(exchange, tdf, cat(sysev), cat(direc), cat(acts), n, rejected, crossed)


# ------------------------------------------------------------------------------------------------
# Exports
# ------------------------------------------------------------------------------------------------
def itch_to_parquet(source, out_dir, types: Iterable[str] | None = None, chunk_bytes: int = 16 << 20,
                    **filters) -> dict[str, str]:
    """Write each message type to ``out_dir/<type>.parquet`` (native types, streamed chunk by chunk).

    Returns the written paths per type. Lower-case ``h`` goes to ``h_.parquet`` (case-insensitive
    file systems would merge it with ``H``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(out_dir, exist_ok=True)
    writers: dict[str, object] = {}
    paths = {}
    try:
        for m in iter_itch(source, chunk_bytes=chunk_bytes, types=types, **filters):
            for t in m.by_type:
                table = pa.Table.from_pandas(m.frame(t), preserve_index=False)
                if t not in writers:
                    paths[t] = os.path.join(out_dir, ("h_" if t == "h" else t) + ".parquet")
                    writers[t] = pq.ParquetWriter(paths[t], table.schema)
                writers[t].write_table(table)
    finally:
        for w in writers.values():
            w.close()
    return paths


def itch_to_lobster(source, symbol: str, out_dir, levels: int = 10, tick: int = 100,
                    chunk_bytes: int = 16 << 20):
    """Write one stock's ITCH day as a LOBSTER message + orderbook file pair (plain CSV).

    Every book event becomes a row (LOBSTER's own files keep only the events inside the top ``levels``;
    this writer keeps them all, so replaying its output needs no window refills). Mapping: A/F -> 1,
    X -> 2, D -> 3 (size = the open quantity deleted), E/C -> 4 (at the resting order's price), U -> 3
    then 1 (the new reference), P -> 5, Q -> 6 (cross), H -> 7 (price -1 halt, 1 trading). Prices are
    LOBSTER units (dollars x 10000); row k of the orderbook file is the book after message k.

    Returns
    -------
    (message_path, orderbook_path)
    """
    import lob

    if not isinstance(levels, (int, np.integer)) or levels < 1:
        raise ConfigError(f"levels must be a positive int, got {levels!r}")
    os.makedirs(out_dir, exist_ok=True)
    mpath = os.path.join(out_dir, f"{symbol}_message_{levels}.csv")
    opath = os.path.join(out_dir, f"{symbol}_orderbook_{levels}.csv")
    ex = lob.Exchange(symbols=[symbol], tick_size=tick / 10000, marketdata=False)
    book = ex.book(symbol)
    st = _BridgeState(symbols=[symbol], tick=int(tick), halts=False)
    dummy = np.array([9999999999, 0, -9999999999, 0], np.int64)

    def book_row():
        dep = book.depth_ticks(levels)
        row = np.tile(dummy, levels)
        for i, (p, q, _) in enumerate(dep["asks"]):
            row[4 * i], row[4 * i + 1] = p * tick, q
        for i, (p, q, _) in enumerate(dep["bids"]):
            row[4 * i + 2], row[4 * i + 3] = p * tick, q
        return ",".join(map(str, row.tolist()))

    def resting(ref):
        o = book.order(ref)
        if o is None:
            raise ReplayFormatError(f"ITCH: order ref {ref} is not on the book of {symbol}")
        return int(o["side"]), int(o["price_ticks"]) * tick, int(o["qty_lots"])

    with open(mpath, "w") as mf, open(opath, "w") as of:
        def emit(ts, typ, ref, size, price, d):
            mf.write(f"{ts // 1_000_000_000}.{ts % 1_000_000_000:09d},{typ},{ref},{size},{price},{d}\n")
            of.write(book_row() + "\n")

        for m in iter_itch(source, chunk_bytes=chunk_bytes, symbols=[symbol]):
            ev, _ = _bridge_chunk(m, st)
            seqs = sorted((int(s), t, k) for t in m.by_type for k, s in enumerate(m.seq[t].tolist()))
            e = 0                                   # next row of ev (file order, as built by the bridge)
            for _, t, k in seqs:
                r = m[t][k]
                ts = (int(r["ts_hi"]) << 32) | int(r["ts_lo"])
                if t in ("A", "F"):
                    ex.apply(ev[e:e + 1]); e += 1
                    emit(ts, 1, int(r["ref"]), int(r["shares"]), int(r["price"]), 1 if r["side"] == b"B" else -1)
                elif t in ("E", "C", "X", "D"):
                    side, price, open_qty = resting(int(r["ref"]))
                    size = open_qty if t == "D" else int(r["shares"])
                    ex.apply(ev[e:e + 1]); e += 1
                    emit(ts, {"E": 4, "C": 4, "X": 2, "D": 3}[t], int(r["ref"]), size, price, 1 - 2 * side)
                elif t == "U":
                    side, price, open_qty = resting(int(r["ref"]))
                    ex.apply(ev[e:e + 1]); e += 1
                    emit(ts, 3, int(r["ref"]), open_qty, price, 1 - 2 * side)
                    ex.apply(ev[e:e + 1]); e += 1
                    emit(ts, 1, int(r["new_ref"]), int(r["shares"]), int(r["price"]), 1 - 2 * side)
                elif t == "P":
                    emit(ts, 5, 0, int(r["shares"]), int(r["price"]), 1 if r["side"] == b"B" else -1)
                elif t == "Q":
                    emit(ts, 6, 0, int(r["shares"]), int(r["price"]), -1)
                elif t == "H":
                    emit(ts, 7, 0, 0, 1 if r["trading_state"] == b"T" else -1, -1)
            if e != len(ev):
                raise ReplayFormatError(f"ITCH: {len(ev) - e} book events of {symbol} not written")
    return mpath, opath
