"""Boundary checks for batches of events: the engine trusts what passes here."""
import numpy as np

from lob._core import EVENT_DTYPE
from lob.errors import InvalidEventError

_N_ACTIONS = 7


def _first_bad(mask: np.ndarray, events: np.ndarray, field: str, rule: str) -> None:
    if mask.any():
        i = int(np.flatnonzero(mask)[0])
        raise InvalidEventError(
            f"events row {i}: field {field!r} {rule}, got {events[field][i]!r} "
            f"({int(mask.sum())} bad rows in the batch; nothing was applied)")


def check_events(events, n_symbols: int) -> np.ndarray:
    """Validate a batch for ``Exchange.apply``: type, dtype, shape, contiguity and every code field.

    Business outcomes (a zero quantity, an off-band price, an unknown order id) are not errors: the
    engine reports them. Malformed rows raise ``InvalidEventError`` naming the row, field and value,
    before anything is applied.
    """
    if not isinstance(events, np.ndarray):
        raise InvalidEventError(f"events must be a numpy array of lob.EVENT_DTYPE, got {type(events).__name__}")
    if events.dtype != EVENT_DTYPE:
        raise InvalidEventError(
            f"events.dtype must be lob.EVENT_DTYPE {EVENT_DTYPE.descr}, got {events.dtype}; "
            f"build batches with lob.empty_events(n)")
    if events.ndim != 1:
        raise InvalidEventError(f"events must be one-dimensional, got shape {events.shape}")
    if not events.flags.c_contiguous:
        raise InvalidEventError("events must be C-contiguous, got a strided view; pass np.ascontiguousarray(events)")
    if len(events) == 0:
        return events
    _first_bad(events["symbol"] >= n_symbols, events, "symbol", f"must be a symbol index < {n_symbols}")
    action = events["action"]
    _first_bad(action >= _N_ACTIONS, events, "action", f"must be an lob.Action code < {_N_ACTIONS}")
    add = action == 0
    _first_bad(add & (events["side"] > 1), events, "side", "must be 0 (BUY) or 1 (SELL)")
    _first_bad(add & (events["type"] > 3), events, "type", "must be an lob.OrderType code 0..3")
    _first_bad(add & (events["tif"] > 3), events, "tif", "must be an lob.TIF code 0..3")
    _first_bad(add & (events["flags"] > 3), events, "flags", "must be 0, 1 (post-only) or 2 (post-only slide)")
    owner = events["owner"]
    _first_bad((owner < 0) | (owner >= 2 ** 32), events, "owner", "must be in [0, 2**32)")
    return events
