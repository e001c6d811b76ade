"""The resolved order-level (L3) stream of a LOBSTER day: every change to every resting order, in order.

:func:`lob.replay.lobster.verify` rebuilds a LOBSTER day in the engine and checks it against the orderbook
file row by row. It resolves what the message file leaves open (orders the file never submitted, levels that
slide into the window) into concrete engine events on concrete orders. :func:`l3_stream` records exactly those
engine events while ``verify`` runs, so the stream is the verified reconstruction itself: replaying it gives
the orderbook file's books.

Each row (``L3_DTYPE``):

``ts_ns``
    Event time (ns after midnight).
``order``
    Dense order index (0..n_orders-1), assigned in order of first appearance.
``side``, ``price_ticks``
    The order's side (0 bid, 1 ask) and price.
``qty_lots``
    For ``ADD`` the order's size; for ``REMOVE`` and ``EXEC`` the quantity taken off (the whole remainder
    for a deletion). An order whose quantity reaches 0 has left the book.
``kind``
    ``ADD`` (0), ``REMOVE`` (1, a cancel or partial cancel), ``EXEC`` (2, a visible execution of the resting
    order).
``flags``
    ``SEED`` (1): the book at the first row; ``RECON`` (2): an adjustment of the reconstruction rather than a
    message (a level refilled from the orderbook file as it slides into the window, or a stale out-of-window
    level dropped). At a level touched by ``RECON`` the queue is not known order by order, which is why the
    shadow-order tracker censors the shadows resting there (reason ``"window"``).

Rebuilding the GOOG level-10 day takes tens of seconds, so the stream of the shipped day is shipped too
(:func:`goog_l3`), with a test that rebuilds it and compares.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from lob.errors import ReplayFormatError

__all__ = ["L3_DTYPE", "ADD", "REMOVE", "EXEC", "SEED", "RECON", "l3_stream", "save_l3", "load_l3", "goog_l3",
           "GOOG_L3_PATH", "l2_view", "engine_events"]

ADD, REMOVE, EXEC = 0, 1, 2
SEED, RECON = 1, 2

L3_DTYPE = np.dtype([("ts_ns", np.int64), ("price_ticks", np.int64), ("qty_lots", np.int64),
                     ("order", np.int32), ("side", np.uint8), ("kind", np.uint8), ("flags", np.uint8),
                     ("_pad", np.uint8)])

GOOG_L3_PATH = Path(__file__).resolve().parent.parent / "data" / "lobster" / "GOOG_2012-06-21_l3_10.npz"


def _recorder_class():
    from lob.replay import lobster as lb

    class _Recorder(lb._Rebuilder):
        """The verify rebuilder, recording each engine event with the order's dense index."""

        def __init__(self, levels, tick):
            super().__init__(levels, tick)
            self.rows: list = []
            self.index: dict = {}          # engine order id -> dense index
            self.open: dict = {}           # engine order id -> open qty
            self.kind_ctx = REMOVE
            self.flag_ctx = SEED

        def _apply(self, action, oid, side, price, qty, ts):
            A = self.lob.Action
            if action == A.ADD:
                idx = self.index.setdefault(oid, len(self.index))
                self.open[oid] = qty
                self.rows.append((ts, price, qty, idx, side, ADD, self.flag_ctx, 0))
            else:
                left = self.open.get(oid)
                if left is None:
                    raise ReplayFormatError(f"L3 stream: event on unknown order {oid}")
                take = left if action == A.CANCEL else qty
                if take > left:
                    raise ReplayFormatError(f"L3 stream: order {oid} reduced by {take} with {left} open")
                kind = EXEC if (self.kind_ctx == EXEC and self.flag_ctx == 0) else REMOVE
                self.rows.append((ts, price, take, self.index[oid], side, kind, self.flag_ctx, 0))
                if take == left:
                    del self.open[oid]
                else:
                    self.open[oid] = left - take
            return super()._apply(action, oid, side, price, qty, ts)

        def message(self, typ, oid, size, price, side, ts):
            self.kind_ctx, self.flag_ctx = (EXEC if typ == 4 else REMOVE), 0
            super().message(typ, oid, size, price, side, ts)

        def set_level(self, side, price, qty, ts):
            f, self.flag_ctx = self.flag_ctx, RECON
            try:
                super().set_level(side, price, qty, ts)
            finally:
                self.flag_ctx = f

        def drop_crossing(self, side, price, ts):
            f, self.flag_ctx = self.flag_ctx, RECON
            try:
                super().drop_crossing(side, price, ts)
            finally:
                self.flag_ctx = f

    return _Recorder


def l3_stream(message_file, orderbook_file, tick: int = 100):
    """Rebuild a LOBSTER day (:func:`lob.replay.lobster.verify`) and return its L3 stream.

    Returns
    -------
    stream : ndarray of ``L3_DTYPE``
    report : :class:`lob.replay.lobster.VerifyReport` of the rebuild (``report.ok`` must be True for the
        stream to be trusted; a mismatching rebuild raises).
    """
    from lob.replay.lobster import verify

    holder = {}
    base = _recorder_class()

    class Rec(base):
        def __init__(self, levels, tick):
            super().__init__(levels, tick)
            holder["rb"] = self

    rep = verify(message_file, orderbook_file, tick=tick, rebuilder=Rec)
    if not rep.ok:
        raise ReplayFormatError(f"{message_file}: the rebuild differs from the orderbook file on "
                                f"{rep.mismatching_rows} rows; no L3 stream")
    out = np.array(holder["rb"].rows, dtype=L3_DTYPE)
    return out, rep


def save_l3(path, stream: np.ndarray, **meta) -> None:
    """Write a stream (and string metadata) as a compressed ``.npz``."""
    if stream.dtype != L3_DTYPE:
        raise ValueError(f"stream must have L3_DTYPE, got {stream.dtype}")
    np.savez_compressed(path, **{k: stream[k] for k in L3_DTYPE.names if k != "_pad"},
                        **{f"meta_{k}": np.array(str(v)) for k, v in meta.items()})


def load_l3(path) -> np.ndarray:
    """Read a stream written by :func:`save_l3`."""
    with np.load(path) as z:
        missing = [k for k in L3_DTYPE.names if k != "_pad" and k not in z]
        if missing:
            raise ReplayFormatError(f"{path}: not an L3 stream file (missing {missing})")
        out = np.zeros(len(z["ts_ns"]), dtype=L3_DTYPE)
        for k in L3_DTYPE.names:
            if k != "_pad":
                out[k] = z[k]
    return out


@functools.lru_cache(maxsize=2)
def _goog_l3_cached() -> np.ndarray:
    a = load_l3(GOOG_L3_PATH)
    a.flags.writeable = False
    return a


def goog_l3() -> np.ndarray:
    """The L3 stream of the shipped LOBSTER GOOG 2012-06-21 level-10 day (read-only, cached)."""
    return _goog_l3_cached()


def l2_view(stream: np.ndarray):
    """What a level-2 feed shows of a stream: per event the level's new size, and the trades.

    Returns a dict of arrays aligned with ``stream``: ``level_qty`` (the size at the event's side and price
    after the event) and ``prev_qty`` (before it). Executions are the trades (``kind == EXEC``; price, size).
    """
    from lob.queue._shadow import level_sizes

    prev, new = level_sizes(stream)
    return {"prev_qty": prev, "level_qty": new}


def engine_events(stream: np.ndarray, owner: int = 1) -> np.ndarray:
    """The stream as ``lob.EVENT_DTYPE`` engine events: adds (order id = index + 1) and reduces.

    Applied to an empty ``lob.Exchange`` symbol they rebuild the day's books without a trade (a plain replay).
    """
    import lob

    ev = lob.empty_events(len(stream))
    ev["ts_ns"] = stream["ts_ns"]
    ev["order_id"] = stream["order"].astype(np.uint64) + 1
    ev["owner"] = owner
    ev["price_ticks"] = stream["price_ticks"]
    ev["qty_lots"] = stream["qty_lots"]
    ev["side"] = stream["side"]
    ev["action"] = np.where(stream["kind"] == ADD, lob.Action.ADD, lob.Action.REDUCE)
    return ev
