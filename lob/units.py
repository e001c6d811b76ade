"""Prices and quantities in units -> integer ticks and lots: one rounding rule and one off-grid error.

The rule is the per-call path's (``lob._core``: ``Exchange.submit`` and the backtest's step loop): the nearest
integer of ``value / unit``, and a value is on the grid when it lies within ``1e-6`` of that integer (relative
beyond a million units, where a double cannot hold more). :func:`to_units` and :func:`to_units_array` apply it
to Python numbers and to numpy arrays; off the grid they raise :class:`~lob.errors.ConfigError` naming the
field, the value and the unit. ``Exchange.to_ticks``, ``Exchange.add_symbol``, :mod:`lob.mm.base` and
:mod:`lob.mm.scorecard` convert through them. (The per-call path itself does not raise: it rejects an off-grid
order with a reason code, as a venue does.)

>>> to_units(99.98, 0.01, "price")
9998
>>> to_units(99.985, 0.01, "price")
Traceback (most recent call last):
    ...
lob.errors.ConfigError: price 99.985 is not a multiple of tick_size 0.01
"""
from __future__ import annotations

import math

import numpy as np

from lob.errors import ConfigError

__all__ = ["to_units", "to_units_array", "GRID_TOLERANCE"]

GRID_TOLERANCE = 1e-6
"""How far (in units; relative beyond 1e6 units) a value may lie from the grid and still be on it."""


def to_units(value, unit: float, field: str, unit_name: str = "tick_size") -> int:
    """``value / unit`` as an int (nearest; on the grid within :data:`GRID_TOLERANCE`).

    Parameters
    ----------
    value : float or int
        A price or a quantity (finite, >= 0).
    unit : float
        ``tick_size`` or ``lot_size``.
    field : str
        Named in the error (``"price"``, ``"qty"``, ``"ref_price"``...).
    unit_name : str
        The unit's name in the error (``"lot_size"`` for quantities).

    Raises
    ------
    ConfigError
        Not a finite number >= 0, or off the grid.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{field} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{field} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ConfigError(f"{field} must be a finite number >= 0, got {value!r}")
    x = v / unit
    t = math.floor(x + 0.5)
    if abs(x - t) > GRID_TOLERANCE * max(1.0, x / 1e6):
        raise ConfigError(f"{field} {value!r} is not a multiple of {unit_name} {unit}")
    return int(t)


def to_units_array(values, unit: float, field: str, unit_name: str = "tick_size") -> np.ndarray:
    """:func:`to_units` over an array (int64); the error names the first value off the grid and its row."""
    v = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(v) | (v < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"{field} must be a finite number >= 0, got {float(v.flat[i])!r} (row {i})")
    x = v / unit
    t = np.floor(x + 0.5)
    off = np.abs(x - t) > GRID_TOLERANCE * np.maximum(1.0, x / 1e6)
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise ConfigError(f"{field} {float(v.flat[i])!r} (row {i}) is not a multiple of {unit_name} "
                          f"{unit}")
    return t.astype(np.int64)
