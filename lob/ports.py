"""The exchange's declared ports: what plugs into ``lob.Exchange`` and how.

This module imports nothing of ``lob`` (it sits below both the exchange and its consumers), so that the
exchange never imports the journal and the journal needs nothing of the exchange but its public methods.

The journal port
----------------
A write-ahead journal is an object implementing :class:`JournalPort`, attached with
``exchange.attach_journal(port, stage=..., stage_limit=..., stage_bytes=...)``. The exchange then calls:

* ``port.write_input(events)`` with every input before the engine sees it (a raise rejects the request and
  stops order intake: nothing unjournaled reaches the book);
* ``port.write_outputs(events, reports, fills)`` with every request's outputs after the engine;
* with ``stage=True``: the per-call requests (and small batches the journal stages itself) are appended in C
  to the exchange's *stage* instead of going through the two calls above, and ``port.stage_full()`` is
  called once ``stage_limit`` requests or ``stage_bytes`` bytes are staged; the journal takes them as one
  block with ``link.take_stage()``;
* ``port.begin_pipeline()`` / ``port.end_pipeline(drain)`` around a large batch that ``Exchange.apply``
  matches in chunks (see :mod:`lob.journal`).

The arrays handed to the port are valid only during the call (views of reusable buffers): copy what you keep.

``attach_journal`` returns the port's :class:`JournalLink`, the venue side of the port, through which (and
only through which) the journal stops order intake (``link.stop_intake(reason)``, read back as
``exchange.intake_error``), takes the stage and learns of owner names it has not written yet.
``exchange.detach_journal(port)`` ends it. One journal is attached at a time.

The journal provider
--------------------
``Exchange(journal=PATH)``, ``Exchange.open``, ``ex.at`` and ``ex.fork`` need a journal implementation
without importing one: :func:`register_journal` (called by ``lob.journal`` when it is imported, which
``import lob`` does) names the functions they use; :func:`journal_provider` returns them.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable, Protocol, runtime_checkable

__all__ = ["JournalPort", "JournalLink", "register_journal", "journal_provider"]


@runtime_checkable
class JournalPort(Protocol):
    """What an exchange calls on its attached journal (see the module docstring)."""

    def write_input(self, events) -> None:
        """Journal a request's input (an ``EVENT_DTYPE`` array) before the engine sees it; raise to reject it."""

    def write_outputs(self, events, reports, fills) -> None:
        """Journal a request's outputs (``REPORT_DTYPE`` and ``FILL_DTYPE`` arrays) after the engine."""

    def stage_full(self) -> None:
        """The stage holds ``stage_limit`` requests (or ``stage_bytes``): take it (``link.take_stage()``).
        A raise stops order intake (the staged request stands)."""

    def begin_pipeline(self) -> bool:
        """A large batch is about to be matched in chunks, each written before/after as its own request:
        return False to have it applied whole instead."""

    def end_pipeline(self, drain: bool) -> None:
        """The chunked batch is done; with ``drain``, return once its records are handed to the OS (raise
        ``OSError`` / ``JournalError`` on a write failure: intake stops)."""


class JournalLink(Protocol):
    """The venue side of an attached journal port, returned by ``Exchange.attach_journal``."""

    def stop_intake(self, reason: str) -> None:
        """Stop order intake (every later request but a cancel is rejected, ``journal_unavailable``); the
        reason reads back as ``exchange.intake_error``."""

    def take_stage(self) -> tuple | None:
        """``(n, seq_after, index, events, reports, fills)`` of the staged requests (uint8 arrays, views valid
        until the next-but-one call), or None when nothing is staged."""

    def stage(self, events, reports, fills, seq_before: int, seq_after: int) -> bool:
        """Stage one request given as arrays; return whether the stage is now full."""

    def set_stage_limit(self, n: int) -> None:
        """Requests staged before ``stage_full()`` is called."""

    @property
    def owners_pending(self) -> bool:
        """Whether owner names were registered since the journal last took them."""

    def take_owners(self) -> dict[int, str]:
        """Owner names registered since the last call (or the attachment), ``{id: name}``; requests of a new
        owner take the ``write_input`` path until the journal has taken its name."""


_journal: SimpleNamespace | None = None


def register_journal(*, create: Callable[..., Any], open: Callable[..., Any], at: Callable[..., Any],
                     fork: Callable[..., Any]) -> None:
    """Name the journal implementation: ``create(exchange, path, fsync=..., fsync_ms=...)`` attaches a new
    journal, ``open(path, fsync=..., **kwargs)`` recovers an exchange, ``at(exchange, seq)`` rebuilds one as
    of a sequence number, ``fork(exchange, journal=None, fsync=...)`` copies one."""
    global _journal
    _journal = SimpleNamespace(create=create, open=open, at=at, fork=fork)


def journal_provider() -> SimpleNamespace:
    """The registered journal implementation (``create``, ``open``, ``at``, ``fork``)."""
    if _journal is None:
        raise RuntimeError("no journal implementation is registered: import lob.journal (import lob does)")
    return _journal
