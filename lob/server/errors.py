"""The server's client error: an HTTP status, a message, a machine-readable reason and an optional report."""
from __future__ import annotations

from tornado.web import HTTPError

__all__ = ["ApiError"]


class ApiError(HTTPError):
    """A client error: HTTP status, message, machine-readable reason and an optional report (JSON body)."""

    def __init__(self, status: int, message: str, reason: str | None = None, body: dict | None = None):
        super().__init__(status)
        self.status, self.message, self.error, self.body = status, message, reason, body

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message}"
