"""Databento DBN files: MBO to order-level ``EVENT_DTYPE`` events, MBP-10 to level-2 updates, and an MBO writer.

Format (Databento "DBN encoding"): the bytes ``DBN`` and a version byte (1, 2 or 3), a little-endian u32
length and the metadata (dataset, schema, symbols and their instrument-id mappings), then fixed-width
little-endian C records (MBO 56 bytes, MBP-10 368 bytes) whose 16-byte header starts with the record
length in 4-byte words and the record type. Files are plain or zstd-compressed (``.dbn.zst``). Prices
are int64 in units of 1e-9 (``UNDEF_PRICE`` = int64 max for "no price"), times int64 ns since the epoch.

The metadata is decoded by the ``databento-dbn`` package (any version is upgraded by it), and the records
are read as numpy structured arrays whose dtypes are that package's own record layouts
(``MBOMsg._dtypes``, ``MBP10Msg._dtypes``), in fixed-size chunks, so memory is bounded by ``chunk_rows``.
Each record's length and type are checked; a record of another type (a file mixing schemas) raises
:class:`~lob.errors.ReplayFormatError` naming the file, the record index and the field. MBO and MBP-10
records have the same layout in DBN versions 1, 2 and 3.

MBO -> events (``ts_recv`` is the event time; each order's open size is tracked):

* ``A`` add -> ``ADD`` (limit, GTC) of the order id at its side and price;
* ``C`` cancel of ``size`` -> ``REDUCE`` by ``size``, or ``CANCEL`` when nothing would be left;
* ``F`` fill of the resting order -> the same as a cancel of the filled size (the book loses it);
* ``M`` modify -> ``REDUCE`` when the price is unchanged and the size goes down (priority kept), else
  ``CANCEL`` + ``ADD`` (a price change or a size increase loses priority, as on CME Globex);
* ``R`` clear -> ``CANCEL`` of every open order of the instrument; ``T`` trade and ``N`` none do not change
  the book (``T`` is counted in ``trades``); an event naming an order that is not open is counted in
  ``unknown`` and skipped (an MBO file that starts mid-session without a snapshot).

MBP-10 -> level-2 updates: every record carries the ten best levels per side after the event; each becomes
a snapshot of the instrument's top ten in the level-2 stream (see :data:`lob.replay.registry.L2_DTYPE`).
"""
from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np

from lob.errors import ConfigError, ReplayFormatError

__all__ = ["MBO_DTYPE", "MBP10_DTYPE", "DbnInfo", "dbn_info", "iter_dbn", "MboState", "mbo_events",
           "mbp10_updates", "write_dbn_mbo", "events_to_mbo"]

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
UNDEF_PRICE = (1 << 63) - 1


def _dbn():
    try:
        import databento_dbn
    except ImportError:     # pragma: no cover - a declared dependency
        raise ConfigError("reading DBN needs the databento-dbn package (pip install 'lobkit[dbn]')") from None
    return databento_dbn


def _dtype(cls_name):
    return np.dtype(getattr(_dbn(), cls_name)._dtypes)


MBO_DTYPE = _dtype("MBOMsg")        # 56 bytes
MBP10_DTYPE = _dtype("MBP10Msg")    # 368 bytes
_RTYPE = {"mbo": (0xA0, MBO_DTYPE), "mbp-10": (0x0A, MBP10_DTYPE)}
_OUT = np.dtype([("ts_ns", "<i8"), ("order_id", "<u8"), ("price_ticks", "<i8"), ("qty_lots", "<i8"),
                 ("symbol", "<u2"), ("action", "u1"), ("side", "u1")])


@dataclass
class DbnInfo:
    """What a DBN file's header says.

    Attributes
    ----------
    path : str
    version : int
        DBN version of the file (1, 2 or 3), from its header byte.
    compressed : bool
        zstd-compressed.
    schema : str
        ``"mbo"``, ``"mbp-10"``, ...
    dataset : str
    symbols : list of str
    instruments : dict
        ``{instrument_id: raw symbol}`` from the metadata's symbol mappings (empty when it has none).
    metadata : databento_dbn.Metadata
    """

    path: str
    version: int
    compressed: bool
    schema: str
    dataset: str
    symbols: list
    instruments: dict
    metadata: object = field(repr=False, default=None)


def _open(path):
    f = open(path, "rb")
    head = f.read(4)
    f.seek(0)
    if head == _ZSTD_MAGIC:
        try:
            import zstandard
        except ImportError:     # pragma: no cover - part of the dbn extra
            f.close()
            raise ConfigError("reading .dbn.zst needs the zstandard package (pip install 'lobkit[dbn]')") from None

        return zstandard.ZstdDecompressor().stream_reader(f, closefd=True), True
    return f, False


def _read_exact(f, n):
    out = bytearray()
    while len(out) < n:
        b = f.read(n - len(out))
        if not b:
            break
        out += b
    return bytes(out)


def _header(f, path, compressed) -> DbnInfo:
    pre = _read_exact(f, 8)
    if len(pre) < 8 or pre[:3] != b"DBN":
        raise ReplayFormatError(f"{path}: not a DBN file (starts with {pre[:8]!r}, expected b'DBN' and a version)")
    version = pre[3]
    if version not in (1, 2, 3):
        raise ReplayFormatError(f"{path}: field 'version' must be 1, 2 or 3, got {version}")
    (n,) = struct.unpack("<I", pre[4:8])
    body = _read_exact(f, n)
    if len(body) < n:
        raise ReplayFormatError(f"{path}: metadata truncated ({len(body)} of {n} bytes)")
    try:
        md = _dbn().Metadata.decode(pre + body)
    except Exception as e:      # the decoder's own error type
        raise ReplayFormatError(f"{path}: metadata does not decode ({e})") from None
    instruments = {}
    for sym, intervals in (md.mappings or {}).items():
        for iv in intervals:
            try:
                instruments[int(iv["symbol"])] = sym
            except (KeyError, ValueError, TypeError):
                pass
    schema = str(md.schema.value if hasattr(md.schema, "value") else md.schema) if md.schema is not None else ""
    return DbnInfo(str(path), version, compressed, schema, str(md.dataset), list(md.symbols or []), instruments, md)


def dbn_info(path) -> DbnInfo:
    """The header of a DBN file (plain or zstd) as a :class:`DbnInfo`.

    Examples
    --------
    >>> from lob.data import DATA_DIR
    >>> i = dbn_info(DATA_DIR / "databento" / "test_data.mbo.v1.dbn.zst")
    >>> i.version, i.compressed, i.schema, i.instruments
    (1, True, 'mbo', {5482: 'ESH1'})
    """
    f, z = _open(path)
    with f:
        return _header(f, path, z)


def iter_dbn(path, chunk_rows: int = 65_536) -> tuple[DbnInfo, Iterator[np.ndarray]]:
    """``(info, chunks)``: the header and an iterator of record arrays (``MBO_DTYPE`` or ``MBP10_DTYPE``).

    Raises
    ------
    ReplayFormatError
        Not DBN, an unsupported schema, a truncated record, or a record of another length or type (names
        the record index and the field).
    """
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be a positive int, got {chunk_rows!r}")
    info = dbn_info(path)
    if info.schema not in _RTYPE:
        raise ReplayFormatError(f"{path}: field 'schema' must be one of {sorted(_RTYPE)} to replay, got "
                                f"{info.schema!r}")
    rtype, dt = _RTYPE[info.schema]

    def gen():
        f, z = _open(path)
        with f:
            _header(f, path, z)
            base = 0
            while True:
                buf = _read_exact(f, dt.itemsize * int(chunk_rows))
                if not buf:
                    return
                if len(buf) % dt.itemsize:
                    raise ReplayFormatError(f"{path}: record {base + len(buf) // dt.itemsize} truncated "
                                            f"({len(buf) % dt.itemsize} of {dt.itemsize} bytes)")
                a = np.frombuffer(buf, dtype=dt)
                bad = (a["length"].astype(np.int64) * 4 != dt.itemsize) | (a["rtype"] != rtype)
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    raise ReplayFormatError(f"{path}: record {base + i}: field 'rtype' {int(a['rtype'][i]):#04x} "
                                            f"/ 'length' {int(a['length'][i]) * 4} is not a {info.schema} record "
                                            f"({rtype:#04x}, {dt.itemsize} bytes)")
                yield a
                base += len(a)

    return info, gen()


def _tick_nanos(tick_size) -> int:
    try:
        d = Decimal(str(tick_size))
    except ArithmeticError:
        raise ConfigError(f"tick_size must be a positive decimal, got {tick_size!r}") from None
    n = d * 1_000_000_000
    if not d.is_finite() or d <= 0 or n != n.to_integral_value():
        raise ConfigError(f"tick_size must be a positive multiple of 1e-9, got {tick_size!r}")
    return int(n)


def _symbol_index(info: DbnInfo, symbols):
    """``{instrument_id: index}`` for the wanted symbols (raw symbols or instrument ids), and their names."""
    if symbols is None:
        names = sorted(set(info.instruments.values())) or []
        idx = {iid: names.index(s) for iid, s in info.instruments.items()}
        return idx, names, True
    if isinstance(symbols, (str, int)):
        symbols = [symbols]
    names, idx = [], {}
    by_name = {}
    for iid, s in info.instruments.items():
        by_name.setdefault(s, []).append(iid)
    for k, s in enumerate(symbols):
        names.append(str(s))
        if isinstance(s, (int, np.integer)):
            idx[int(s)] = k
        elif s in by_name:
            for iid in by_name[s]:
                idx[iid] = k
        else:
            raise ConfigError(f"symbol {s!r} is not in {info.path}'s symbol mappings {sorted(by_name)}")
    return idx, names, False


class MboState:
    """Open orders of an MBO stream (id -> instrument, side, price in ticks, size) and the counts."""

    def __init__(self):
        self.orders: dict[int, list] = {}
        self.unknown = 0
        self.trades = 0
        self.records = 0
        self.clears = 0


def mbo_events(path, tick_size="0.01", symbols=None, chunk_rows: int = 65_536, state: MboState | None = None
               ) -> tuple[DbnInfo, list, Iterator[np.ndarray]]:
    """Stream an MBO file as ``lob.EVENT_DTYPE`` chunks (see the module docstring for the mapping).

    Parameters
    ----------
    path : path
        ``.dbn`` or ``.dbn.zst`` of schema ``mbo``.
    tick_size : str or Decimal
        Price of one tick ("0.25" for ES); a price off this grid raises, naming the record and the value.
    symbols : list, optional
        Raw symbols or instrument ids to keep; the events' ``symbol`` is the index in this list. Default:
        every symbol of the metadata's mappings, sorted (instruments not mapped are then kept under index
        ``len(symbols)`` onwards in order of appearance).
    chunk_rows : int
        Records read per chunk (an output chunk holds at most ``2 * chunk_rows`` events, or more after an
        ``R`` clear).
    state : MboState, optional
        Receives the open orders and the counts (``unknown``, ``trades``, ``records``, ``clears``).

    Returns
    -------
    (DbnInfo, list of str, iterator of ndarray)
        The header, the symbol names (index = the events' ``symbol``) and the event chunks.
    """
    import lob

    info, chunks = iter_dbn(path, chunk_rows)
    if info.schema != "mbo":
        raise ReplayFormatError(f"{path}: field 'schema' must be 'mbo' for order-level events, got {info.schema!r}")
    tick = _tick_nanos(tick_size)
    idx, names, open_set = _symbol_index(info, symbols)
    st = state if state is not None else MboState()
    ADD, REDUCE, CANCEL = int(lob.Action.ADD), int(lob.Action.REDUCE), int(lob.Action.CANCEL)

    def gen():
        base = 0
        for recs in chunks:
            st.records += len(recs)
            price = recs["price"]
            act = recs["action"]
            book = (act == b"A") | (act == b"M")
            off = book & (price != UNDEF_PRICE) & (price % tick != 0)
            if off.any():
                i = int(np.flatnonzero(off)[0])
                raise ReplayFormatError(f"{path}: record {base + i}: field 'price' {int(price[i])} (1e-9 units) is "
                                        f"not a multiple of tick_size {tick_size}")
            side_ = np.where(recs["side"] == b"B", 0, np.where(recs["side"] == b"A", 1, -1)).tolist()
            pt = (price // tick).tolist()
            out = []
            put = out.append
            orders = st.orders
            for i, (iid, ts, oid, p, size, a, side) in enumerate(zip(
                    recs["instrument_id"].tolist(), recs["ts_recv"].tolist(), recs["order_id"].tolist(), pt,
                    recs["size"].tolist(), act.tolist(), side_)):
                sym = idx.get(iid)
                if sym is None:
                    if not open_set:
                        continue
                    sym = idx[iid] = len(names)
                    names.append(str(iid))
                if a == b"A":
                    if oid in orders:
                        raise ReplayFormatError(f"{path}: record {base + i}: field 'order_id' {oid} is added "
                                                f"while already open")
                    if side < 0:
                        raise ReplayFormatError(f"{path}: record {base + i}: field 'side' must be B or A on an "
                                                f"add, got {recs['side'][i]!r}")
                    orders[oid] = [sym, side, p, size]
                    put((ts, oid, p, size, sym, ADD, side))
                elif a == b"C" or a == b"F":
                    o = orders.get(oid)
                    if o is None:
                        st.unknown += 1
                    elif size >= o[3]:
                        del orders[oid]
                        put((ts, oid, 0, 0, o[0], CANCEL, o[1]))
                    else:
                        o[3] -= size
                        put((ts, oid, o[2], size, o[0], REDUCE, o[1]))
                elif a == b"M":
                    o = orders.get(oid)
                    if o is None:
                        st.unknown += 1
                    elif p == o[2] and size < o[3]:
                        put((ts, oid, p, o[3] - size, o[0], REDUCE, o[1]))
                        o[3] = size
                    elif p != o[2] or size != o[3]:
                        put((ts, oid, 0, 0, o[0], CANCEL, o[1]))
                        put((ts, oid, p, size, o[0], ADD, o[1]))
                        o[2], o[3] = p, size
                elif a == b"R":
                    st.clears += 1
                    for k in [k for k, o in orders.items() if o[0] == sym]:
                        o = orders.pop(k)
                        put((ts, k, 0, 0, o[0], CANCEL, o[1]))
                elif a == b"T":
                    st.trades += 1
                elif a != b"N":
                    raise ReplayFormatError(f"{path}: record {base + i}: field 'action' must be one of A C M R T F "
                                            f"N, got {a!r}")
            base += len(recs)
            ev = lob.empty_events(len(out))
            if out:
                o = np.array(out, dtype=_OUT)
                for name in _OUT.names:
                    ev[name] = o[name]
            yield ev

    return info, names, gen()


def mbp10_updates(path, tick_size="0.01", lot_size=1, symbols=None, chunk_rows: int = 65_536):
    """Stream an MBP-10 file as level-2 rows (``(info, names, iterator of row lists)``): every record becomes
    a snapshot of its instrument's ten levels per side, ``(ts_ns, symbol, side, price_ticks, qty_lots,
    snapshot)``; used by :func:`lob.replay.read`, which packs them into ``L2_DTYPE`` chunks."""
    info, chunks = iter_dbn(path, chunk_rows)
    if info.schema != "mbp-10":
        raise ReplayFormatError(f"{path}: field 'schema' must be 'mbp-10' for level-2 updates, got {info.schema!r}")
    tick = _tick_nanos(tick_size)
    idx, names, open_set = _symbol_index(info, symbols)

    def gen():
        base = 0
        for recs in chunks:
            for j in range(10):
                for key in ("bid_px", "ask_px"):
                    px = recs[f"{key}_{j:02d}"]
                    off = (px != UNDEF_PRICE) & (px % tick != 0)
                    if off.any():
                        i = int(np.flatnonzero(off)[0])
                        raise ReplayFormatError(f"{path}: record {base + i}: field '{key}_{j:02d}' {int(px[i])} is "
                                                f"not a multiple of tick_size {tick_size}")
            for i in range(len(recs)):
                r = recs[i]
                iid = int(r["instrument_id"])
                sym = idx.get(iid)
                if sym is None:
                    if not open_set:
                        continue
                    sym = idx[iid] = len(names)
                    names.append(str(iid))
                ts = int(r["ts_recv"])
                rows = []
                for j in range(10):
                    for side, key in ((0, "bid"), (1, "ask")):
                        px, sz = int(r[f"{key}_px_{j:02d}"]), int(r[f"{key}_sz_{j:02d}"])
                        if px != UNDEF_PRICE and sz > 0:
                            rows.append((ts, sym, side, px // tick, sz))
                yield rows
            base += len(recs)

    return info, names, gen()


def events_to_mbo(events: Iterable[np.ndarray], tick_size="0.01", instrument_ids=None, publisher_id: int = 1):
    """Yield ``databento_dbn.MBOMsg`` records for ``EVENT_DTYPE`` chunks (ADD -> ``A``, REDUCE -> ``C`` of the
    reduced size, CANCEL -> ``C`` of the open size, MODIFY -> ``M``); sizes are tracked so that cancels carry
    their size. Events naming an order that is not open are skipped (as the engine would reject them)."""
    import lob

    d = _dbn()
    tick = _tick_nanos(tick_size)
    A = lob.Action
    open_ = {}
    seq = 0
    for chunk in events:
        for e in chunk.tolist():
            ts, oid, p, q = e[0], e[1], e[3], e[4]
            sym, act, side = e[7], e[8], e[9]
            iid = instrument_ids[sym] if instrument_ids is not None else sym + 1
            if act == A.ADD:
                open_[oid] = [p, q, side]
                kind, px, size = d.Action.ADD, p * tick, q
            elif act in (A.REDUCE, A.CANCEL):
                o = open_.get(oid)
                if o is None:
                    continue
                size = o[1] if act == A.CANCEL or q >= o[1] else q
                o[1] -= size
                if o[1] <= 0:
                    del open_[oid]
                kind, px, side = d.Action.CANCEL, o[0] * tick, o[2]
            elif act == A.MODIFY:
                o = open_.get(oid)
                if o is None:
                    continue
                o[0], o[1] = (p or o[0]), q
                kind, px, size, side = d.Action.MODIFY, o[0] * tick, q, o[2]
            else:
                continue
            seq += 1
            yield d.MBOMsg(publisher_id=publisher_id, instrument_id=int(iid), ts_event=int(ts), order_id=int(oid),
                           price=int(px), size=int(size), action=kind, side=d.Side.BID if side == 0 else d.Side.ASK,
                           ts_recv=int(ts), flags=0x80, sequence=seq)


def write_dbn_mbo(path, events: Iterable[np.ndarray], symbols: list, tick_size="0.01", dataset: str = "LOB.REPLAY",
                  start_ns: int = 0, compress: bool | None = None) -> int:
    """Write ``EVENT_DTYPE`` chunks as a DBN (version 3) MBO file with the ``databento-dbn`` encoder.

    Parameters
    ----------
    path : path
        Output; zstd-compressed when ``compress`` is True, or None and the name ends in ``.zst``.
    events : iterable of ndarray
    symbols : list of str
        Names of the events' symbol indexes (instrument id = index + 1, recorded in the metadata mappings).
    tick_size : str
        Price of one tick (prices are written in units of 1e-9).

    Returns
    -------
    int
        Records written.
    """
    import datetime as _dt

    d = _dbn()
    path = Path(path)
    if compress is None:
        compress = path.name.endswith(".zst")
    day = _dt.datetime.fromtimestamp(start_ns / 1e9, _dt.timezone.utc).date()
    from types import SimpleNamespace as _NS     # the encoder reads raw_symbol/intervals attributes

    mappings = [_NS(raw_symbol=str(s), intervals=[_NS(start_date=day, end_date=day + _dt.timedelta(days=1),
                                                      symbol=str(i + 1))]) for i, s in enumerate(symbols)]
    md = d.Metadata(dataset=dataset, start=int(start_ns), stype_in=d.SType.RAW_SYMBOL,
                    stype_out=d.SType.INSTRUMENT_ID, schema=d.Schema.MBO, symbols=list(symbols), mappings=mappings)
    n = 0
    with open(path, "wb") as raw:
        if compress:
            import zstandard

            out = zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False)
        else:
            out = raw
        out.write(md.encode())
        buf = bytearray()
        for m in events_to_mbo(events, tick_size):
            buf += bytes(m)
            n += 1
            if len(buf) >= 1 << 20:
                out.write(bytes(buf))
                buf.clear()
        out.write(bytes(buf))
        if compress:
            out.close()
    return n
