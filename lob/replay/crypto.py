"""Crypto level-2 (price-level) books from cryptofeed recordings: Binance depth diffs and Coinbase level2.

Recording format. `cryptofeed <https://github.com/bmoscon/cryptofeed>`_ records one event per line:
``URL <-> ts`` (connection opened), ``URL <- ts: json`` (a message sent), ``ts: json`` (a message received,
local receive time in Unix seconds), ``URL -> ts: body`` (an HTTP GET and its response) and a final
``configuration: json`` line. :func:`iter_recording` reads any of these files (plain or ``.gz``) into
:class:`Record` s; the time becomes exact integer nanoseconds from its decimal text.

Units. Prices and sizes arrive as decimal strings. They are converted exactly (``decimal``, never through a
float) to integer ticks and lots of the symbol's tick and lot; a value off the grid raises
:class:`~lob.errors.ReplayFormatError` naming the field and the value. :class:`L2Book` holds one book as two
``{price_ticks: qty_lots}`` dicts of Python ints (Coinbase sizes in lots of 1e-8 exceed int32, and a
price-level feed has no orders, so the order-level engine is not used here).

Binance (``replay_binance``). The documented procedure for a local book from ``<symbol>@depth`` diffs and a
REST ``/api/v3/depth`` snapshot: drop every diff with ``u <= lastUpdateId``; the first diff kept must satisfy
``U <= lastUpdateId + 1 <= u``; after that each diff's ``U`` must equal the previous ``u + 1``; a quantity of
0 removes the level (removing an absent level is normal on Binance and is not an error). A diff that breaks
the rule is reported as an :class:`L2Gap` naming the expected and the received update ids; the recording has
no later snapshot to resynchronise from, so the replay goes on applying and the book is marked
``stale`` from then on. A diff whose ``u`` is not above the last applied ``u`` (an old or duplicated
message) is dropped, not applied. Diffs received before the snapshot was fetched are buffered and applied
at the snapshot's receive time, as the procedure prescribes. The ``exchangeInfo`` response gives each
symbol's tick (``PRICE_FILTER.tickSize``), lot (``LOT_SIZE.stepSize``) and precisions (see ``grid``).

Coinbase (``replay_coinbase``). The ``level2`` channel sends one ``snapshot`` per product and then
``l2update`` messages whose ``changes`` are ``[side, price, new_size]`` (size 0 deletes the level). They carry
**no sequence number**, so a lost ``l2update`` cannot be detected from the channel itself. The ``ticker``
channel's ``sequence`` is the product's full-channel sequence, which advances with every order message, so
the steps between tickers say nothing about level2 either, and the recording has no ``heartbeat`` channel.
What the data supports, and what is done:

* an ``l2update`` before its product's snapshot cannot be applied and is dropped (counted);
* a size-0 change at a price that is not in the book can only mean the book missed the update that created
  the level: it is reported as an :class:`L2Gap` of kind ``"missing_level"`` (this is a lower bound: a
  lost update that changes or adds a level goes unseen);
* ``ticker`` messages carry ``best_bid``/``best_ask``; each is compared with the rebuilt top of book at that
  moment and the agreements are counted (the two channels are not synchronised: a tolerance, not an error).

Tick (``quote_increment``) and lot (``base_increment``) come from the ``/products`` response.

Grids. The exchange tick and lot are the grid for *new* orders. A book can hold older levels off that grid
after a venue makes its tick coarser: the NKNUSDT snapshot of the shipped recording has 34 bid prices off
its 0.0001 tick (and 49 sizes off its step of 1), deep in the book. So by default (``grid="precision"``) the
integer units are the feed's precision (Binance ``10**-quoteAssetPrecision`` and ``10**-baseAssetPrecision``,
1e-8 here; Coinbase 1e-8), on which every value lies; a value off it is an error. ``grid="exchange"`` uses
the tick and lot instead (spreads in ticks) and raises on any off-grid level, naming the field and value.
Either way :attr:`L2SymbolReplay.off_tick_levels` counts the final book's levels off the exchange tick.

Each replay checks the book after every message and returns an :class:`L2Replay`: per symbol an
:class:`L2SymbolReplay` with the final :class:`L2Book`, the BBO after every applied message, the gaps, the
message counts and whether the book was ever crossed. ``until_ts_ns`` (and ``until_update_id`` on Binance)
stop the replay early, which gives the book's state at that point (the recordings are small).
"""
from __future__ import annotations

import gzip
import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from lob.errors import ConfigError, InvalidEventError, ReplayFormatError

__all__ = ["Record", "iter_recording", "read_recording", "to_units", "L2Book", "L2Gap", "L2SymbolReplay",
           "L2Replay", "Increments", "GRIDS", "binance_symbol_filters", "coinbase_product_increments", "replay_binance",
           "replay_coinbase"]

BID, ASK = 0, 1
_SIDES = {"bid": BID, "buy": BID, "b": BID, 0: BID, "ask": ASK, "sell": ASK, "a": ASK, 1: ASK}
_DECIMAL_RE = re.compile(r"^[0-9]+(?:\.[0-9]*)?$")
_TS_RE = r"(?P<ts>[0-9]+(?:\.[0-9]*)?)"
_RECV_RE = re.compile(rf"^{_TS_RE}: (?P<body>.*)$")
_URL_RE = re.compile(rf"^(?P<url>\S+) (?P<dir><->|<-|->) {_TS_RE}(?:: (?P<body>.*))?$")
_CTX = Context(prec=60)             # exact for any decimal string of the feeds (at most ~30 digits)
_FINEST = Decimal("0.00000001")
GRIDS = ("precision", "exchange")
_KINDS = {"<->": "open", "<-": "sent", "->": "http"}


# ----------------------------------------------------------------------------------------------- records

@dataclass(frozen=True)
class Record:
    """One line of a cryptofeed recording.

    Attributes
    ----------
    kind : str
        ``"recv"`` (websocket message received), ``"sent"``, ``"open"`` (connection opened), ``"http"`` (GET
        and response body) or ``"config"`` (cryptofeed's configuration line).
    ts_ns : int
        Local time of the line in Unix nanoseconds (0 for ``"config"``).
    url : str or None
    body : str
        The JSON text (empty for ``"open"``).
    line : int
        1-based line number in the file (for error messages).
    """

    kind: str
    ts_ns: int
    url: str | None
    body: str
    line: int

    def json(self):
        """The body parsed as JSON (raises ``ReplayFormatError`` naming the line when it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise ReplayFormatError(f"line {self.line}: body is not JSON ({e}): {self.body[:80]!r}") from None


def _ts_ns(text: str) -> int:
    whole, _, frac = text.partition(".")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])


def _lines(source) -> Iterator[str]:
    if isinstance(source, (str, Path)):
        p = Path(source)
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rt", encoding="utf-8") as f:
            yield from f
    else:
        yield from source


def iter_recording(source) -> Iterator[Record]:
    """Stream the lines of a cryptofeed recording as :class:`Record` s (blank lines are skipped).

    Parameters
    ----------
    source : path or iterable of str
        A recording file (plain, or gzip when the name ends in ``.gz``), or its lines (e.g. a list with one
        line removed, for tests).

    Raises
    ------
    ReplayFormatError
        A line that is none of the documented forms (names the line number and its start).
    """
    for i, raw in enumerate(_lines(source), 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        m = _RECV_RE.match(line)
        if m:
            yield Record("recv", _ts_ns(m["ts"]), None, m["body"], i)
            continue
        m = _URL_RE.match(line)
        if m:
            yield Record(_KINDS[m["dir"]], _ts_ns(m["ts"]), m["url"], m["body"] or "", i)
            continue
        if line.startswith("configuration: "):
            yield Record("config", 0, None, line[len("configuration: "):], i)
            continue
        raise ReplayFormatError(f"line {i}: not a cryptofeed recording line: {line[:80]!r}")


def read_recording(source) -> list[Record]:
    """All records of a recording as a list (see :func:`iter_recording`)."""
    return list(iter_recording(source))


# ------------------------------------------------------------------------------------------------ units

def _as_unit(value, name: str) -> Decimal:
    try:
        d = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ConfigError(f"{name} must be a positive decimal, got {value!r}") from None
    if not d.is_finite() or d <= 0:
        raise ConfigError(f"{name} must be a positive decimal, got {value!r}")
    return d


def to_units(text, unit: Decimal, field: str) -> int:
    """Convert a decimal string exactly to an integer count of ``unit`` (ticks or lots).

    Parameters
    ----------
    text : str
        A non-negative decimal such as ``"0.35210000"`` (no exponent, sign, NaN or infinity).
    unit : Decimal
        The tick or lot size.
    field : str
        Name of the field, used in the error message (e.g. ``"NKNUSDT depthUpdate b price"``).

    Returns
    -------
    int

    Raises
    ------
    ReplayFormatError
        ``text`` is not a plain decimal, or is not a whole multiple of ``unit``; names ``field`` and the value.

    Examples
    --------
    >>> to_units("0.35210000", Decimal("0.0001"), "price")
    3521
    """
    if not isinstance(text, str) or not _DECIMAL_RE.match(text):
        raise ReplayFormatError(f"{field} must be a decimal string, got {text!r}")
    q, r = _CTX.divmod(Decimal(text), unit)
    if r:
        raise ReplayFormatError(f"{field} {text!r} is not a multiple of {unit} (off the grid)")
    return int(q)


# ------------------------------------------------------------------------------------------------- book

class L2Book:
    """A price-level book of one symbol: integer ticks and lots, one quantity per price.

    Parameters
    ----------
    symbol : str
    tick_size, lot_size : str, Decimal or number
        Exact decimal sizes of one tick and one lot (``"0.0001"``); numbers are read through ``str``.

    Notes
    -----
    Unlike :class:`lob.Book`, ``best_bid``/``best_ask``/``depth`` return integer ``(price_ticks, qty_lots)``;
    ``price``/``qty`` convert to exact ``Decimal`` and :meth:`depth_frame` carries both units. A locked book
    (best bid == best ask) counts as crossed: one venue's own book can be neither.

    Examples
    --------
    >>> b = L2Book("X", "0.01", "1")
    >>> b.apply("bid", 100, 5), b.apply("ask", 101, 7), b.apply("bid", 100, 6)
    (0, 0, 5)
    >>> b.best_bid(), b.spread_ticks(), b.price(101)
    ((100, 6), 1, Decimal('1.01'))
    """

    def __init__(self, symbol: str = "", tick_size="1", lot_size="1"):
        self.symbol = str(symbol)
        self.tick_size = _as_unit(tick_size, "tick_size")
        self.lot_size = _as_unit(lot_size, "lot_size")
        self._levels = ({}, {})     # bids, asks: price_ticks -> qty_lots
        self._best = [None, None]   # cached best price per side; None = empty side

    # -- updates
    def apply(self, side, price_ticks: int, qty_lots: int) -> int:
        """Set the quantity of one level; ``qty_lots == 0`` removes it.

        Parameters
        ----------
        side : {"bid", "ask", "buy", "sell", 0, 1}
        price_ticks, qty_lots : int
            Non-negative integers (numpy integers are accepted).

        Returns
        -------
        int
            The previous quantity at that price (0 when the level was absent).

        Raises
        ------
        InvalidEventError
            Unknown side, or a negative or non-integer price or quantity (names the field and the value).
        """
        s = _SIDES.get(side)
        if s is None:
            raise InvalidEventError(f"side must be bid/ask/buy/sell/0/1, got {side!r}")
        if not isinstance(price_ticks, (int, np.integer)) or isinstance(price_ticks, bool) or price_ticks < 0:
            raise InvalidEventError(f"price_ticks must be a non-negative int, got {price_ticks!r}")
        if not isinstance(qty_lots, (int, np.integer)) or isinstance(qty_lots, bool) or qty_lots < 0:
            raise InvalidEventError(f"qty_lots must be a non-negative int, got {qty_lots!r}")
        return self._set(s, int(price_ticks), int(qty_lots))

    def _set(self, s: int, p: int, q: int) -> int:
        lv = self._levels[s]
        best = self._best[s]
        if q:
            old = lv.get(p, 0)
            lv[p] = q
            if best is None or (p > best if s == BID else p < best):
                self._best[s] = p
            return old
        old = lv.pop(p, 0)
        if p == best:
            # the best level went: one scan of the side (rare next to the updates away from the top)
            self._best[s] = (max(lv) if s == BID else min(lv)) if lv else None
        return old

    def clear(self) -> None:
        """Remove every level (a new snapshot follows)."""
        self._levels[BID].clear()
        self._levels[ASK].clear()
        self._best = [None, None]

    def load(self, bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]]) -> None:
        """Replace the book by these ``(price_ticks, qty_lots)`` levels (levels of quantity 0 are skipped)."""
        self.clear()
        for s, rows in ((BID, bids), (ASK, asks)):
            for p, q in rows:
                self._set(s, int(p), int(q))

    # -- queries
    def best_bid(self) -> tuple[int, int] | None:
        """``(price_ticks, qty_lots)`` of the best bid, or None."""
        p = self._best[BID]
        return None if p is None else (p, self._levels[BID][p])

    def best_ask(self) -> tuple[int, int] | None:
        """``(price_ticks, qty_lots)`` of the best ask, or None."""
        p = self._best[ASK]
        return None if p is None else (p, self._levels[ASK][p])

    def spread_ticks(self) -> int | None:
        """Best ask minus best bid in ticks (None with an empty side)."""
        b, a = self._best
        return None if b is None or a is None else a - b

    def is_crossed(self) -> bool:
        """True when both sides are present and best bid >= best ask."""
        b, a = self._best
        return b is not None and a is not None and b >= a

    def depth(self, n: int = 10) -> dict[str, list[tuple[int, int]]]:
        """The best ``n`` levels per side: ``{"bids": [(ticks, lots), ...], "asks": [...]}``, best first."""
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ConfigError(f"n must be a non-negative int, got {n!r}")
        bids, asks = self._levels
        return {"bids": [(p, bids[p]) for p in sorted(bids, reverse=True)[:n]],
                "asks": [(p, asks[p]) for p in sorted(asks)[:n]]}

    def levels(self, side) -> dict[int, int]:
        """A copy of one side as ``{price_ticks: qty_lots}``."""
        s = _SIDES.get(side)
        if s is None:
            raise InvalidEventError(f"side must be bid/ask/buy/sell/0/1, got {side!r}")
        return dict(self._levels[s])

    def price(self, ticks: int) -> Decimal:
        """Exact price of ``ticks``."""
        return ticks * self.tick_size

    def qty(self, lots: int) -> Decimal:
        """Exact quantity of ``lots``."""
        return lots * self.lot_size

    def depth_frame(self, n: int = 10) -> pd.DataFrame:
        """The depth as a DataFrame: one row per level, bids then asks, best first.

        Columns ``side``, ``level``, ``price_ticks``, ``qty_lots`` (int64) and ``price``, ``qty`` (float, for
        display and plotting).
        """
        d = self.depth(n)
        rows = [(name, i, p, q) for name, key in (("bid", "bids"), ("ask", "asks")) for i, (p, q) in
                enumerate(d[key])]
        df = pd.DataFrame(rows, columns=["side", "level", "price_ticks", "qty_lots"])
        df["price_ticks"] = df["price_ticks"].astype(np.int64)
        df["qty_lots"] = df["qty_lots"].astype(np.int64)
        df["price"] = _to_float(df["price_ticks"].to_numpy(), self.tick_size)
        df["qty"] = _to_float(df["qty_lots"].to_numpy(), self.lot_size)
        return df

    def __len__(self) -> int:
        return len(self._levels[BID]) + len(self._levels[ASK])

    def __eq__(self, other) -> bool:
        if not isinstance(other, L2Book):
            return NotImplemented
        return (self.tick_size == other.tick_size and self.lot_size == other.lot_size
                and self._levels == other._levels)

    __hash__ = None

    def __repr__(self) -> str:
        return (f"L2Book({self.symbol!r}, bid={self.best_bid()}, ask={self.best_ask()}, "
                f"levels={len(self._levels[BID])}/{len(self._levels[ASK])})")

    def _repr_html_(self, n: int = 10) -> str:
        d = self.depth(n)
        biggest = max([q for _, q in d["bids"] + d["asks"]] or [1])

        def row(p, q, side):
            w = int(100 * q / biggest)
            bar = f"<div style='background:{'#e57373' if side == 'ask' else '#81c784'};height:10px;width:{w}px'></div>"
            qs = _dec_text(self.qty(q))
            return (f"<tr><td style='text-align:right'>{qs if side == 'bid' else ''}</td>"
                    f"<td>{bar if side == 'bid' else ''}</td>"
                    f"<td style='text-align:center;font-weight:bold'>{_dec_text(self.price(p))}</td>"
                    f"<td>{bar if side == 'ask' else ''}</td><td>{qs if side == 'ask' else ''}</td></tr>")

        spread = self.spread_ticks()
        body = "".join(row(p, q, "ask") for p, q in reversed(d["asks"]))
        body += (f"<tr><td colspan=5 style='text-align:center;color:#888'>spread "
                 f"{'-' if spread is None else _dec_text(self.price(spread))}"
                 f"{' CROSSED' if self.is_crossed() else ''}</td></tr>")
        body += "".join(row(p, q, "bid") for p, q in d["bids"])
        return (f"<table style='font-family:monospace;font-size:12px'><caption>{html.escape(self.symbol)} "
                f"({len(self._levels[BID])} bid / {len(self._levels[ASK])} ask levels)</caption>"
                f"<tr><th>bid qty</th><th></th><th>price</th><th></th><th>ask qty</th></tr>{body}</table>")


# ------------------------------------------------------------------------------------------------ results

class Increments(NamedTuple):
    """A symbol's price and size grids.

    ``tick_size``/``lot_size`` are the exchange's order-entry grid (Binance ``PRICE_FILTER.tickSize`` and
    ``LOT_SIZE.stepSize``, Coinbase ``quote_increment`` and ``base_increment``; None when unknown).
    ``price_unit``/``qty_unit`` are the precision every price and size of the feed is quoted in (Binance
    ``10**-quoteAssetPrecision`` and ``10**-baseAssetPrecision``, Coinbase 1e-8). A book level can sit off
    the exchange grid when the venue made its tick or lot coarser after the orders were entered (the
    NKNUSDT snapshot has such bids), never off the feed's precision.
    """

    tick_size: Decimal | None
    lot_size: Decimal | None
    price_unit: Decimal
    qty_unit: Decimal


@dataclass(frozen=True)
class L2Gap:
    """A break in a feed's update sequence (or, on Coinbase, evidence of a missed update).

    Attributes
    ----------
    symbol : str
    ts_ns : int
        Receive time of the message that revealed the gap.
    line : int
        Line of that message in the recording.
    kind : str
        ``"sequence"`` (``U != previous u + 1``), ``"sync"`` (the first diff kept does not bracket
        ``lastUpdateId + 1``) or ``"missing_level"`` (Coinbase: deletion of a level the book does not hold).
    expected_id : int or None
        The first update id that should have come next (``previous u + 1`` or ``lastUpdateId + 1``).
    first_id, final_id : int or None
        ``U`` and ``u`` of the message received instead.
    detail : str
    """

    symbol: str
    ts_ns: int
    line: int
    kind: str
    expected_id: int | None = None
    first_id: int | None = None
    final_id: int | None = None
    detail: str = ""

    @property
    def missing(self) -> tuple[int, int] | None:
        """Update ids that never arrived, ``(first, last)`` inclusive (None when not a forward jump)."""
        if self.expected_id is None or self.first_id is None or self.first_id <= self.expected_id:
            return None
        return self.expected_id, self.first_id - 1


_BBO_COLUMNS = ["ts_ns", "update_id", "bid_ticks", "bid_lots", "ask_ticks", "ask_lots"]


@dataclass
class L2SymbolReplay:
    """One symbol's result of :func:`replay_binance` or :func:`replay_coinbase`.

    Attributes
    ----------
    symbol, venue : str
    book : L2Book
        The book after the last message replayed.
    bbo : pandas.DataFrame
        One row for the snapshot and one per applied message: ``ts_ns``, ``update_id`` (Binance ``u`` or the
        snapshot's ``lastUpdateId``; -1 on Coinbase), ``bid_ticks``, ``bid_lots``, ``ask_ticks``,
        ``ask_lots`` (int64, -1 for an empty side) and ``bid``, ``ask`` (float).
    gaps : list of L2Gap
    messages : int
        Book messages received for the symbol (diffs or l2updates, and snapshots).
    applied, dropped : int
        Diffs/updates applied to the book, and dropped (older than the snapshot, duplicated, before any
        snapshot).
    level_updates : int
        Single-level changes applied (a message can carry several).
    ever_crossed : bool
        Whether the book was crossed (or locked) after any message.
    crossed_ts_ns : list of int
        Receive times of the messages after which it was.
    snapshot_id : int or None
        Binance ``lastUpdateId`` of the snapshot.
    first_applied : tuple or None
        Binance ``(U, u)`` of the first diff kept.
    last_update_id : int or None
        Binance ``u`` of the last diff applied.
    synced_first : bool or None
        Binance: the first diff kept satisfied ``U <= lastUpdateId + 1 <= u``.
    stale : bool
        A gap was found; no later snapshot resynchronised the book.
    other : dict
        Counts of the symbol's other message types (``bookTicker``, ``ticker``, ``match``, ...).
    ticker_checks, ticker_matches : int
        Coinbase: ticker messages compared with the book, and those whose best bid and ask both equal it.
    checksum_checks, checksum_matches : int
        Venues that publish a book checksum (OKX, Kraken): messages whose checksum was compared with the
        rebuilt book, and those that matched (a mismatch is also an :class:`L2Gap` of kind ``"checksum"``).
    increments : Increments
        The symbol's exchange tick and lot and the feed's precision (``book.tick_size``/``book.lot_size`` is
        one of the two pairs, see ``grid``).
    off_tick_levels : int or None
        Levels of the final book whose price is not a multiple of the exchange tick (resting since the tick
        was finer); None when the tick is unknown.
    """

    symbol: str
    venue: str
    book: L2Book
    bbo: pd.DataFrame
    gaps: list = field(default_factory=list)
    messages: int = 0
    applied: int = 0
    dropped: int = 0
    level_updates: int = 0
    ever_crossed: bool = False
    crossed_ts_ns: list = field(default_factory=list)
    snapshot_id: int | None = None
    first_applied: tuple | None = None
    last_update_id: int | None = None
    synced_first: bool | None = None
    stale: bool = False
    other: dict = field(default_factory=dict)
    ticker_checks: int = 0
    ticker_matches: int = 0
    checksum_checks: int = 0
    checksum_matches: int = 0
    increments: Increments | None = None
    off_tick_levels: int | None = None

    def summary(self) -> dict:
        """The counts as a flat dict (one row of :meth:`L2Replay.summary`)."""
        bid, ask = self.book.best_bid(), self.book.best_ask()
        return {"symbol": self.symbol, "venue": self.venue, "messages": self.messages, "applied": self.applied,
                "dropped": self.dropped, "level_updates": self.level_updates, "gaps": len(self.gaps),
                "ever_crossed": self.ever_crossed, "bid_levels": len(self.book._levels[BID]),
                "ask_levels": len(self.book._levels[ASK]),
                "best_bid": None if bid is None else _dec_text(self.book.price(bid[0])),
                "best_ask": None if ask is None else _dec_text(self.book.price(ask[0])),
                "snapshot_id": self.snapshot_id, "last_update_id": self.last_update_id,
                "ticker_checks": self.ticker_checks, "ticker_matches": self.ticker_matches,
                "checksum_checks": self.checksum_checks, "checksum_matches": self.checksum_matches,
                "off_tick_levels": self.off_tick_levels}

    def _repr_html_(self) -> str:
        s = self.summary()
        head = ", ".join(f"{k} {v}" for k, v in s.items() if k not in ("symbol", "venue") and v is not None)
        return f"<b>{html.escape(self.venue)} {html.escape(self.symbol)}</b>: {html.escape(head)}" + \
            self.book._repr_html_()


class L2Replay(Mapping):
    """Per-symbol results of a crypto L2 replay: ``result["NKNUSDT"]`` is an :class:`L2SymbolReplay`."""

    def __init__(self, venue: str, results: dict):
        self.venue = venue
        self._r = dict(results)

    def __getitem__(self, symbol: str) -> L2SymbolReplay:
        return self._r[symbol]

    def __iter__(self):
        return iter(self._r)

    def __len__(self) -> int:
        return len(self._r)

    @property
    def gaps(self) -> list:
        """Every symbol's gaps, in symbol order."""
        return [g for r in self._r.values() for g in r.gaps]

    @property
    def ever_crossed(self) -> bool:
        """Whether any symbol's book was ever crossed."""
        return any(r.ever_crossed for r in self._r.values())

    def summary(self) -> pd.DataFrame:
        """One row of counts per symbol."""
        return pd.DataFrame([r.summary() for r in self._r.values()])

    def __repr__(self) -> str:
        return f"L2Replay({self.venue!r}, symbols={list(self._r)}, gaps={len(self.gaps)}, crossed={self.ever_crossed})"

    def _repr_html_(self) -> str:
        return f"<b>{html.escape(self.venue)} L2 replay</b>" + self.summary().to_html(index=False)


class _Tracker:
    """Book plus the per-message bookkeeping shared by every venue.

    ``sink``, when given, is called as ``sink(symbol, ts_ns, changes, snapshot, units)`` after each applied
    message with its ``[(side, price_ticks, qty_lots), ...]`` (a snapshot's levels, or the changes of an
    update) and the book's ``(tick_size, lot_size)``: the level-2 stream of :func:`lob.replay.read` is built
    from it.
    """

    def __init__(self, symbol, venue, inc, grid, sink=None):
        if grid == "exchange":
            if inc.tick_size is None or inc.lot_size is None:
                raise ConfigError(f"grid='exchange' needs the tick and lot of {symbol!r}, which the venue's "
                                  f"instrument list does not give")
            self.book = L2Book(symbol, inc.tick_size, inc.lot_size)
        else:
            self.book = L2Book(symbol, inc.price_unit, inc.qty_unit)
        self.res = L2SymbolReplay(symbol, venue, self.book, pd.DataFrame(columns=_BBO_COLUMNS), increments=inc)
        self.rows = []
        self.has_book = False
        self.done = False
        self.snap_ts = 0
        self.sink = sink

    def emit(self, ts_ns, changes, snapshot=False):
        """Pass an applied message's level changes to the sink (if any)."""
        if self.sink is not None:
            self.sink(self.book.symbol, ts_ns, changes, snapshot, (self.book.tick_size, self.book.lot_size))

    def levels(self, side, rows, what, line):
        b = self.book
        try:
            return [(side, to_units(p, b.tick_size, f"line {line}: {b.symbol} {what} price"),
                     to_units(q, b.lot_size, f"line {line}: {b.symbol} {what} qty")) for p, q in rows]
        except (TypeError, ValueError) as e:
            if isinstance(e, ReplayFormatError):
                raise
            raise ReplayFormatError(f"line {line}: {b.symbol} {what} must be [[price, qty], ...], got "
                                    f"{str(rows)[:80]}") from None

    def snapshot(self, bids, asks, line, ts_ns, update_id):
        """Replace the book by a snapshot's ``[[price, qty], ...]`` sides and record it."""
        b = self.levels(BID, bids, "snapshot bids", line)
        a = self.levels(ASK, asks, "snapshot asks", line)
        self.replace(b + a, ts_ns, update_id)

    def replace(self, levels, ts_ns, update_id):
        """Replace the book by ``[(side, price_ticks, qty_lots)]`` levels (a snapshot) and record it."""
        self.book.load([(p, q) for s, p, q in levels if s == BID], [(p, q) for s, p, q in levels if s == ASK])
        self.has_book = True
        self.res.messages += 1
        self.emit(ts_ns, levels, snapshot=True)
        self.after(ts_ns, update_id)

    def after(self, ts_ns, update_id):
        b = self.book
        bid, ask = b.best_bid(), b.best_ask()
        self.rows.append((ts_ns, update_id, *(bid or (-1, -1)), *(ask or (-1, -1))))
        if b.is_crossed():
            self.res.ever_crossed = True
            self.res.crossed_ts_ns.append(ts_ns)

    def finish(self):
        df = pd.DataFrame(self.rows, columns=_BBO_COLUMNS).astype(np.int64)
        tick = self.book.tick_size
        df["bid"] = np.where(df["bid_ticks"] >= 0, _to_float(df["bid_ticks"].to_numpy(), tick), np.nan)
        df["ask"] = np.where(df["ask_ticks"] >= 0, _to_float(df["ask_ticks"].to_numpy(), tick), np.nan)
        self.res.bbo = df
        tick = self.res.increments.tick_size
        if tick is not None:
            unit = self.book.tick_size
            self.res.off_tick_levels = sum(bool((p * unit) % tick) for side in self.book._levels for p in side)
        return self.res


def _to_float(units: np.ndarray, unit: Decimal) -> np.ndarray:
    """``units * unit`` as the nearest floats (0.009, not 9 * 0.001 = 0.009000000000000001)."""
    inv = 1 / unit
    if inv == inv.to_integral_value() and inv < 2**53:
        return units / float(inv)       # both exact in float64, so the quotient is correctly rounded
    return units * float(unit)


def _received(stream, until_ts_ns):
    """(record, parsed message) of the received messages, up to ``until_ts_ns``."""
    for rec in iter_recording(stream):
        if rec.kind != "recv":
            continue
        if until_ts_ns is not None and rec.ts_ns > until_ts_ns:
            return
        yield rec, rec.json()


def _dec_text(d: Decimal) -> str:
    return format(d.normalize(), "f")


def _symbol_set(symbols):
    if symbols is None:
        return None
    if isinstance(symbols, str):
        symbols = [symbols]
    return {str(s).upper() for s in symbols}


_NO_INC = Increments(None, None, _FINEST, _FINEST)


def _check_grid(grid):
    if grid not in GRIDS:
        raise ConfigError(f"grid must be one of {GRIDS}, got {grid!r}")


def _check_until(name, value):
    if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool)):
        raise ConfigError(f"{name} must be an int or None, got {value!r}")


# ------------------------------------------------------------------------------------------------ Binance

def binance_symbol_filters(source) -> dict[str, Increments]:
    """``{symbol: Increments}`` from a Binance ``exchangeInfo`` response.

    Parameters
    ----------
    source : path, iterable of str, or dict
        A cryptofeed recording holding the ``GET /api/v3/exchangeInfo`` response (``BINANCE.0``), a JSON
        file of the response (or of a trimmed copy with the same ``symbols[].filters`` layout), or the
        parsed response.

    Returns
    -------
    dict
        ``PRICE_FILTER.tickSize``, ``LOT_SIZE.stepSize``, ``10**-quoteAssetPrecision`` (``quotePrecision``
        in older responses) and ``10**-baseAssetPrecision``, as exact ``Decimal`` s.
    """
    info = source if isinstance(source, dict) else _http_json(source, "exchangeInfo")
    out = {}
    try:
        for s in info["symbols"]:
            f = {x["filterType"]: x for x in s["filters"]}
            name = s["symbol"]
            qp = int(s.get("quoteAssetPrecision", s["quotePrecision"]))
            out[name] = Increments(_as_unit(f["PRICE_FILTER"]["tickSize"], f"{name} tickSize"),
                                   _as_unit(f["LOT_SIZE"]["stepSize"], f"{name} stepSize"),
                                   Decimal(1).scaleb(-qp), Decimal(1).scaleb(-int(s["baseAssetPrecision"])))
    except (KeyError, TypeError, ValueError) as e:
        raise ReplayFormatError(f"exchangeInfo: missing or bad field {e} in symbols[]") from None
    return out


def _http_json(source, what):
    """The first HTTP response body of a recording, or a plain JSON file."""
    if isinstance(source, (str, Path)) and str(source).endswith((".json", ".json.gz")):
        with (gzip.open if str(source).endswith(".gz") else open)(source, "rt", encoding="utf-8") as f:
            return json.load(f)
    for rec in iter_recording(source):
        if rec.kind == "http":
            return rec.json()
    raise ReplayFormatError(f"{source}: no HTTP response ({what}) in the recording")


def _binance_snapshots(source) -> dict[str, tuple[int, dict, int]]:
    """``{symbol: (receive ts_ns, depth json, line)}`` of the REST depth snapshots (the first per symbol)."""
    out = {}
    for rec in iter_recording(source):
        if rec.kind != "http" or "/depth" not in (rec.url or ""):
            continue
        m = re.search(r"[?&]symbol=([A-Za-z0-9_]+)", rec.url)
        if not m:
            raise ReplayFormatError(f"line {rec.line}: depth URL without symbol=: {rec.url!r}")
        out.setdefault(m[1].upper(), (rec.ts_ns, rec.json(), rec.line))
    return out


def replay_binance(stream, snapshots, exchange_info, symbols=None, grid: str = "precision",
                   until_ts_ns: int | None = None, until_update_id: int | None = None, sink=None) -> L2Replay:
    """Build Binance spot L2 books from a REST depth snapshot and ``depthUpdate`` diffs.

    Parameters
    ----------
    stream : path or iterable of str
        Recording of the combined websocket stream (``BINANCE.ws.*``); messages other than ``depthUpdate``
        are counted per symbol and otherwise ignored.
    snapshots : path or iterable of str
        Recording of the ``GET /api/v3/depth`` responses (``BINANCE.http.*``).
    exchange_info : path, iterable of str, or dict
        ``exchangeInfo`` (see :func:`binance_symbol_filters`) for the tick and lot of each symbol.
    symbols : list of str, optional
        Replay only these (default: every symbol with a snapshot).
    grid : {"precision", "exchange"}
        Units of the integer book. ``"precision"`` (default): the feed's precision (1e-8 for these symbols),
        on which every price and quantity Binance sends lies. ``"exchange"``: ``tickSize`` and ``stepSize``,
        so that spreads are in ticks; a level off that grid raises (real books can hold such levels, see
        :class:`Increments`).
    until_ts_ns : int, optional
        Stop before the first message received after this time (the book's state at that time).
    until_update_id : int, optional
        Stop before the first diff whose ``u`` exceeds this id (the state at that update id).
    sink : callable, optional
        Called after each applied snapshot or diff (see ``_Tracker``); used by :func:`lob.replay.read`.

    Returns
    -------
    L2Replay
        Per symbol: the book, BBO rows, gaps (see the module docstring for the rules), counts.

    Raises
    ------
    ReplayFormatError
        A malformed line, a price or quantity off the symbol's grid (names the field and the value), a diff
        without ``U``/``u``.
    ConfigError
        A symbol without a snapshot or without filters in ``exchange_info``; an unknown ``grid``.

    Examples
    --------
    >>> from lob.data.crypto import crypto_sample
    >>> r = replay_binance(**crypto_sample("binance"))
    >>> n = r["NKNUSDT"]
    >>> n.applied, n.dropped, n.gaps, n.ever_crossed, n.first_applied, n.snapshot_id
    (149, 1, [], False, (499869753, 499869754), 499869752)
    >>> n.book.best_bid(), str(n.book.price(n.book.best_bid()[0]))
    ((35270000, 960200000000), '0.35270000')
    >>> replay_binance(**crypto_sample("binance"), symbols=["NKNUSDT"], until_update_id=499869760)["NKNUSDT"].applied
    4
    """
    _check_grid(grid)
    _check_until("until_ts_ns", until_ts_ns)
    _check_until("until_update_id", until_update_id)
    filters = binance_symbol_filters(exchange_info)
    snaps = _binance_snapshots(snapshots)
    wanted = _symbol_set(symbols)
    if wanted is not None and (missing := sorted(wanted - set(snaps))):
        raise ConfigError(f"symbols {missing} have no depth snapshot in {snapshots!r}")
    trackers = {}
    for sym, (ts, snap, line) in sorted(snaps.items()):
        if wanted is not None and sym not in wanted:
            continue
        if sym not in filters:
            raise ConfigError(f"symbol {sym!r} has no PRICE_FILTER/LOT_SIZE in exchange_info")
        t = trackers[sym] = _Tracker(sym, "binance", filters[sym], grid, sink)
        try:
            t.res.snapshot_id = int(snap["lastUpdateId"])
            bids, asks = snap["bids"], snap["asks"]
        except (KeyError, TypeError, ValueError) as e:
            raise ReplayFormatError(f"line {line}: {sym} depth snapshot lacks a field ({e})") from None
        t.snap_ts = ts
        t.snapshot(bids, asks, line, ts, t.res.snapshot_id)
    for rec, msg in _received(stream, until_ts_ns):
        data = msg.get("data", msg) if isinstance(msg, dict) else None
        if not isinstance(data, dict) or "s" not in data:
            continue
        t = trackers.get(str(data["s"]).upper())
        if t is None:
            continue
        r = t.res
        if data.get("e") != "depthUpdate":
            kind = data.get("e") or str(msg.get("stream", "?")).rpartition("@")[2]
            r.other[kind] = r.other.get(kind, 0) + 1
            continue
        try:
            first, final = int(data["U"]), int(data["u"])
        except (KeyError, TypeError, ValueError):
            raise ReplayFormatError(f"line {rec.line}: {t.book.symbol} depthUpdate needs integer U and u, "
                                    f"got U={data.get('U')!r} u={data.get('u')!r}") from None
        if until_update_id is not None and final > until_update_id:
            t.done = True       # later diffs of this symbol are beyond the id too
        if t.done:
            continue
        r.messages += 1
        last = r.last_update_id
        if final <= (r.snapshot_id if last is None else last):
            r.dropped += 1          # older than the snapshot, or already applied (a duplicate)
            continue
        if last is None:
            r.synced_first = first <= r.snapshot_id + 1 <= final
            r.first_applied = (first, final)
            if not r.synced_first:
                r.gaps.append(L2Gap(t.book.symbol, rec.ts_ns, rec.line, "sync", r.snapshot_id + 1, first, final,
                                    f"first diff kept [{first}, {final}] does not bracket lastUpdateId+1 "
                                    f"{r.snapshot_id + 1}"))
                r.stale = True
        elif first != last + 1:
            r.gaps.append(L2Gap(t.book.symbol, rec.ts_ns, rec.line, "sequence", last + 1, first, final,
                                f"U {first} != previous u {last} + 1"))
            r.stale = True
        changes = t.levels(BID, data.get("b", ()), "depthUpdate b", rec.line) + \
            t.levels(ASK, data.get("a", ()), "depthUpdate a", rec.line)
        for s, p, q in changes:
            t.book._set(s, p, q)
        r.applied += 1
        r.level_updates += len(changes)
        r.last_update_id = final
        t.emit(max(rec.ts_ns, t.snap_ts), changes)
        t.after(max(rec.ts_ns, t.snap_ts), final)
    return L2Replay("binance", {s: t.finish() for s, t in trackers.items()})


# ----------------------------------------------------------------------------------------------- Coinbase

def coinbase_product_increments(source) -> dict[str, Increments]:
    """``{product_id: Increments}`` from a Coinbase ``GET /products`` response.

    Parameters
    ----------
    source : path, iterable of str, or list
        A recording holding the response (``COINBASE.0``), a JSON file of it, or the parsed list.
    """
    prods = source if isinstance(source, list) else _http_json(source, "products")
    try:
        return {p["id"]: Increments(_as_unit(p["quote_increment"], f"{p['id']} quote_increment"),
                                    _as_unit(p["base_increment"], f"{p['id']} base_increment"), _FINEST, _FINEST)
                for p in prods}
    except (KeyError, TypeError) as e:
        raise ReplayFormatError(f"products: missing field {e}") from None


def replay_coinbase(stream, products=None, symbols=None, grid: str = "precision",
                    until_ts_ns: int | None = None, sink=None) -> L2Replay:
    """Build Coinbase L2 books from a ``level2`` recording (``snapshot`` + ``l2update``).

    Parameters
    ----------
    stream : path or iterable of str
        Recording of the websocket feed (``COINBASE.ws.*``); ``ticker`` messages are compared with the book,
        other types are counted.
    products : path, iterable of str, or list, optional
        ``GET /products`` (see :func:`coinbase_product_increments`) for each product's tick and lot.
    symbols : list of str, optional
        Replay only these products (default: every product with a snapshot).
    grid : {"precision", "exchange"}
        Units of the integer book: 1e-8 for prices and sizes (default, the feed's finest decimal), or the
        product's ``quote_increment``/``base_increment`` (needs ``products`` listing it; a level off that
        grid raises).
    until_ts_ns : int, optional
        Stop before the first message received after this time.
    sink : callable, optional
        Called after each applied snapshot or l2update (see ``_Tracker``); used by :func:`lob.replay.read`.

    Returns
    -------
    L2Replay
        Per product: the book, BBO rows (``update_id`` -1: the channel has no ids), gaps (only
        ``"missing_level"`` evidence is possible, see the module docstring), counts, ticker agreement.

    Raises
    ------
    ReplayFormatError
        A malformed line, an unknown side, or a price or size off the product's grid (names the field and
        the value).

    Examples
    --------
    >>> from lob.data.crypto import crypto_sample
    >>> r = replay_coinbase(**crypto_sample("coinbase"))
    >>> s = r.summary()
    >>> int(s["applied"].sum()), len(r.gaps), r.ever_crossed
    (9719, 0, False)
    >>> int(s["ticker_matches"].sum()), int(s["ticker_checks"].sum())
    (100, 107)
    """
    _check_grid(grid)
    _check_until("until_ts_ns", until_ts_ns)
    incs = coinbase_product_increments(products) if products is not None else {}
    wanted = _symbol_set(symbols)
    trackers: dict[str, _Tracker] = {}
    for rec, msg in _received(stream, until_ts_ns):
        if not isinstance(msg, dict) or "product_id" not in msg:
            continue
        sym, typ = str(msg["product_id"]), msg.get("type")
        if wanted is not None and sym.upper() not in wanted:
            continue
        t = trackers.get(sym)
        if typ == "snapshot":
            if t is None:
                t = trackers[sym] = _Tracker(sym, "coinbase", incs.get(sym, _NO_INC), grid, sink)
            t.res.stale = False     # a new snapshot resynchronises (earlier gaps stay listed)
            t.snapshot(msg.get("bids", ()), msg.get("asks", ()), rec.line, rec.ts_ns, -1)
        elif typ == "l2update":
            if t is None:
                # no snapshot yet: nothing to apply the change to (counted on a placeholder result)
                t = trackers[sym] = _Tracker(sym, "coinbase", incs.get(sym, _NO_INC), grid, sink)
            r = t.res
            r.messages += 1
            if not t.has_book:
                r.dropped += 1
                continue
            changes = []
            for ch in msg.get("changes", ()):
                if not isinstance(ch, list) or len(ch) != 3 or ch[0] not in ("buy", "sell"):
                    raise ReplayFormatError(f"line {rec.line}: {sym} l2update change must be [buy|sell, price, "
                                            f"size], got {ch!r}")
                changes += t.levels(_SIDES[ch[0]], [ch[1:]], f"l2update {ch[0]}", rec.line)
            for s, p, q in changes:
                if t.book._set(s, p, q) == 0 and q == 0:
                    r.gaps.append(L2Gap(sym, rec.ts_ns, rec.line, "missing_level",
                                        detail=f"size 0 for {'buy' if s == BID else 'sell'} {t.book.price(p)}, "
                                               f"a level the book does not hold"))
                    r.stale = True
            r.applied += 1
            r.level_updates += len(changes)
            t.emit(rec.ts_ns, changes)
            t.after(rec.ts_ns, -1)
        elif t is not None:
            r = t.res
            r.other[typ] = r.other.get(typ, 0) + 1
            if typ == "ticker" and t.has_book and "best_bid" in msg and "best_ask" in msg:
                bid = to_units(msg["best_bid"], t.book.tick_size, f"line {rec.line}: {sym} ticker best_bid")
                ask = to_units(msg["best_ask"], t.book.tick_size, f"line {rec.line}: {sym} ticker best_ask")
                r.ticker_checks += 1
                r.ticker_matches += (bid, ask) == (t.book._best[BID], t.book._best[ASK])
    return L2Replay("coinbase", {s: t.finish() for s, t in trackers.items()})
