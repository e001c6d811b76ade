"""The one parser of a client's lob API token, for REST, the WebSocket and the Jupyter extension."""
from __future__ import annotations

__all__ = ["request_token"]


def request_token(request, query_token: str | None = None) -> str | None:
    """The lob API token of a request: ``Authorization: Bearer <token>``, else ``X-Lob-Token``, else
    ``query_token`` (the WebSocket's ``?token=``: browsers cannot set headers on one), else None."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        token = auth[7:].strip()
    else:
        token = request.headers.get("X-Lob-Token")
    return token or query_token or None
