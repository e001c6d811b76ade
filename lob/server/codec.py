"""The server's one JSON policy, for everything it sends (REST bodies, errors, WebSocket and polling messages)
and everything it reads from clients.

Out: compact (no spaces), finite numbers only (NaN and infinities are not JSON: encoding one is a bug of the
server, never sent as invalid JSON), and a value JSON has no type for (a timestamp, a Decimal) as its ``str``.
In: :func:`parse_json`, which answers bad text with a 400 :class:`~lob.server.errors.ApiError` naming what was
read. The client-id log of a durable server (:mod:`lob.server.store`) writes its lines with :func:`dumps`
too; only the files people edit or read (the token file, the data folder's ``meta.json``) are indented.
"""
from __future__ import annotations

import json
import math

from lob.server.errors import ApiError

__all__ = ["dumps", "loads", "parse_json", "finite"]

dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=str).encode
"""``dumps(value) -> str``: the JSON text of a value under the server's policy."""

loads = json.loads
"""``loads(text)``: a JSON text the server wrote itself (its message history) back to a value."""


def parse_json(data, what: str = "body"):
    """A client's JSON text -> value, or a 400 ``ApiError`` (also for nesting too deep for the decoder)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ApiError(400, f"{what} is nested too deeply", "invalid_body") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"{what} is not valid JSON ({e})", "invalid_body") from None


def finite(x):
    """``x`` when JSON can carry it (None, or a finite number), else None (an empty book's spread)."""
    return x if x is None or (isinstance(x, (int, float)) and math.isfinite(x)) else None
