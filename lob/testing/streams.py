"""The shared benchmark workloads (``../shared/bench/*.npy``) as ``lob.EVENT_DTYPE`` batches."""
from __future__ import annotations

import numpy as np

from lob._core import EVENT_DTYPE
from lob.enums import Action, OrderType

__all__ = ["bench_events"]


def bench_events(a: np.ndarray) -> np.ndarray:
    """Convert a shared benchmark stream (fields kind, side, price_ticks, qty, order_id, optional symbol;
    kind 0 = GTC limit, 1 = cancel, 2 = market) into an EVENT_DTYPE batch, ``ts_ns`` = row number."""
    ev = np.zeros(len(a), dtype=EVENT_DTYPE)
    if "symbol" in a.dtype.names:
        ev["symbol"] = a["symbol"]
    ev["order_id"] = a["order_id"]
    ev["side"] = a["side"]
    ev["price_ticks"] = a["price_ticks"]
    ev["qty_lots"] = a["qty"]
    kind = a["kind"]
    ev["action"][kind == 1] = Action.CANCEL
    ev["type"][kind == 2] = OrderType.MARKET
    ev["price_ticks"][kind == 2] = 0
    ev["ts_ns"] = np.arange(len(a))
    return ev
