"""The exception hierarchy of lob.

Business outcomes (a rejected order, an unknown order id on cancel) are execution reports, never
exceptions. These exceptions are for programming errors: wrong types, malformed arrays, bad
configuration, misuse of an object's state. Every message names the field and the value.
"""

__all__ = [
    "LobError",
    "InvalidOrderError",
    "InvalidEventError",
    "UnknownSymbolError",
    "UnknownOrderError",
    "BookIntegrityError",
    "ConfigError",
    "RiskRejected",
    "ReplayFormatError",
    "JournalError",
    "JournalCorruptError",
    "LobStateError",
]


class LobError(Exception):
    """Base class of every error raised by lob."""


class InvalidOrderError(LobError, ValueError):
    """An argument of a per-order call is of the wrong type or out of its domain (NaN price, ...)."""


class InvalidEventError(LobError, ValueError):
    """A batch of events is malformed: wrong dtype, not contiguous, or a row with an invalid field."""


class UnknownSymbolError(LobError, KeyError):
    """A symbol name or index that the exchange does not list."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownOrderError(LobError, KeyError):
    """An order id that is not live in the book (for lookups; cancels report it instead)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class BookIntegrityError(LobError, AssertionError):
    """An invariant of the book does not hold (crossed book, broken FIFO links, wrong totals)."""


class ConfigError(LobError, ValueError):
    """A symbol specification or component setting is invalid."""


class RiskRejected(LobError):
    """Raised by risk helpers that are used outside the order path (the order path reports instead)."""


class ReplayFormatError(LobError, ValueError):
    """A market-data file does not follow its format (names the file, row or offset, and field)."""


class JournalError(LobError):
    """The journal cannot be read or written."""


class JournalCorruptError(JournalError):
    """A record in the middle of a journal fails its checksum or framing."""


class LobStateError(LobError, RuntimeError):
    """An object is used in a state that does not allow the call (closed, not started, ...)."""
