"""Boundary checks for batches of events: the engine trusts what passes here."""
import numpy as np

from lob._core import EVENT_DTYPE, Action
from lob.errors import InvalidEventError

_RULES = {
    "symbol": "must be the index of a listed symbol (< {n})",
    "action": f"must be an lob.Action code 0..{max(Action)}",
    "owner": "must be in [0, 2**32)",
    "side": "must be 0 (BUY) or 1 (SELL)",
    "type": "must be an lob.OrderType code 0..3",
    "tif": "must be an lob.TIF code 0..3",
    "flags": "must be 0, 1 (post-only) or 2 (post-only slide)",
    "order_id": "must be below 2**63 on an ADD (0 asks the engine for one)",
}


def check_events(events, engine) -> np.ndarray:
    """Validate a batch for ``Exchange.apply``: type, dtype, shape, contiguity and every code field.

    Business outcomes (a zero quantity, an off-band price, an unknown order id) are not errors: the
    engine reports them. Malformed input raises ``InvalidEventError`` naming the row, the field and the
    value, before anything is applied.
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
    bad = engine.first_invalid(events)
    if bad is not None:
        row, field = bad
        rule = _RULES[field].format(n=engine.n_books)
        raise InvalidEventError(
            f"events row {row}: field {field!r} {rule}, got {events[field][row]!r}; nothing was applied")
    return events
