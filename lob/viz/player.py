"""A replay player: play / pause / speed / scrub over an event stream, with live depth, ladder and price views."""
from __future__ import annotations

import math
from typing import Callable

import ipywidgets as widgets
import numpy as np
import pandas as pd

import lob
from lob.errors import ConfigError
from lob.viz.depth import DepthChart
from lob.viz.ladder import LadderWidget
from lob.viz.trades import PriceChart

__all__ = ["ReplayPlayer"]

SPEEDS = (0.25, 0.5, 1, 2, 5, 10, 50)
_MIN_INTERVAL_MS = 50     # faster ticks than this flood the comm; go faster by taking bigger steps instead


def _check(step, views) -> None:
    if not isinstance(step, (int, np.integer)) or step < 1:
        raise ConfigError(f"step must be a positive int, got {step!r}")
    bad = set(views) - {"depth", "ladder", "price"}
    if bad:
        raise ConfigError(f"views must be among 'depth', 'ladder', 'price', got {sorted(bad)}")


class ReplayPlayer:
    """Step through a ``lob.EVENT_DTYPE`` stream on a fresh exchange, with the book drawn as it goes.

    Position ``k`` means the first ``k * step`` events have been applied. Moving forward applies the next
    events in ``step``-sized batches; moving back (scrubbing) rebuilds the exchange from the start up to
    ``k``, since the engine does not run backwards. The ``Play`` widget ticks in the browser, so playing
    needs a live kernel; :meth:`step_to` does the same from code (and in tests).

    Parameters
    ----------
    events : ndarray of lob.EVENT_DTYPE
        The stream, in order (e.g. ``lob.replay.backtest.lobster_events(...)[0]``).
    exchange_factory : callable, optional
        ``() -> lob.Exchange`` listing the symbols the ``symbol`` field indexes. Default: one
        ``lob.Exchange`` with symbols ``symbols`` (tick 0.01, lot 1).
    symbols : list of str, optional
        Names for the default factory (default ``["S0", "S1", ...]`` as many as the events index).
    symbol : str, optional
        The symbol drawn (default: the exchange's first).
    step : int
        Events per step.
    levels : int
        Depth levels drawn.
    interval_ms : int
        Play tick at speed 1x.
    views : tuple of {"depth", "ladder", "price"}
        The views to build.

    Attributes
    ----------
    exchange : lob.Exchange
        The current exchange (a new one after a scrub back).
    position : int
        Steps applied.
    n_steps : int
    play, slider, speed, status : ipywidgets
    widget : ipywidgets.VBox
        Controls and views, to display.

    Examples
    --------
    >>> import lob
    >>> ev = lob.empty_events(4)
    >>> ev["order_id"] = [1, 2, 3, 4]; ev["qty_lots"] = 10
    >>> ev["price_ticks"] = [1000, 1001, 1002, 1003]; ev["side"] = [0, 0, 1, 1]
    >>> p = ReplayPlayer(ev, step=2, views=("ladder",))
    >>> p.n_steps, p.step_to(1), p.book.best_bid()
    (2, 1, (10.01, 10))
    >>> p.slider.value = 0; p.book.best_bid() is None
    True
    """

    def __init__(self, events: np.ndarray, exchange_factory: Callable[[], "lob.Exchange"] | None = None,
                 symbols: list[str] | None = None, symbol: str | None = None, step: int = 100, levels: int = 10,
                 interval_ms: int = 200, views=("depth", "ladder", "price")):
        if not isinstance(events, np.ndarray) or events.dtype != lob.EVENT_DTYPE:
            raise ConfigError(f"events must be a lob.EVENT_DTYPE array, got {getattr(events, 'dtype', type(events))}")
        _check(step, views)
        if exchange_factory is None:
            n_sym = int(events["symbol"].max()) + 1 if len(events) else 1
            names = list(symbols) if symbols is not None else [f"S{i}" for i in range(n_sym)]
            exchange_factory = lambda: lob.Exchange(symbols=names)  # noqa: E731
        self._journal = None
        self._init(events, exchange_factory, symbol, step, levels, interval_ms, views,
                   n_steps=math.ceil(len(events) / int(step)))

    def _init(self, events, exchange_factory, symbol, step, levels, interval_ms, views, n_steps):
        self.events = np.ascontiguousarray(events)
        self.step = int(step)
        self.n_steps = n_steps
        self._factory = exchange_factory
        self.exchange = self._factory()
        self.symbol = symbol if symbol is not None else self.exchange.symbols[0]
        self.position = 0
        self.base_interval_ms = int(interval_ms)
        self.depth = DepthChart(self.book, levels=levels, height=300) if "depth" in views else None
        self.ladder = LadderWidget(self.book, levels=levels) if "ladder" in views else None
        self.price = PriceChart(self.book, width=1000, height=240) if "price" in views else None
        if self.price is not None:
            self.price.update(int(self.events["ts_ns"][0]) if len(self.events) else 0)

        self.play = widgets.Play(value=0, min=0, max=self.n_steps, step=1, interval=self.base_interval_ms,
                                 description="play", show_repeat=False)
        self.slider = widgets.IntSlider(value=0, min=0, max=self.n_steps, description="step",
                                        continuous_update=False, layout=widgets.Layout(width="420px"))
        self.speed = widgets.SelectionSlider(options=[(f"{s:g}x", s) for s in SPEEDS], value=1,
                                             description="speed", layout=widgets.Layout(width="260px"))
        self.status = widgets.HTML()
        # kernel-side links (not jslink) so that code and tests see the same state as the browser
        self._link = widgets.link((self.play, "value"), (self.slider, "value"))
        self.slider.observe(self._on_slider, names="value")
        self.speed.observe(self._on_speed, names="value")
        self._render_status()

    # --- constructors -------------------------------------------------------------------------------
    @classmethod
    def from_lobster(cls, message_file=None, orderbook_file=None, symbol: str = "GOOG", max_rows: int | None = None,
                     step: int = 200, **kwargs) -> "ReplayPlayer":
        """A player over a LOBSTER message/orderbook pair (default: the shipped GOOG 10-level sample).

        The book is seeded from orderbook row 0 and the messages become events as in
        :func:`lob.replay.backtest.lobster_events`.
        """
        from lob.data import lobster_sample
        from lob.replay.backtest import lobster_events

        if message_file is None:
            message_file, orderbook_file = lobster_sample(10)
        events, _ = lobster_events(message_file, orderbook_file, max_rows=max_rows)
        return cls(events, symbols=[symbol], step=step, **kwargs)

    @classmethod
    def from_journal(cls, source, symbol: str | None = None, step: int = 1, levels: int = 10,
                     interval_ms: int = 200, views=("depth", "ladder")) -> "ReplayPlayer":
        """A player over an event journal: position ``k`` is the exchange after ``k * step`` requests,
        rebuilt by time travel (:func:`lob.journal.exchange_at`, what ``Exchange.at(seq)`` does), so a
        scrub in either direction costs one rebuild from the nearest snapshot.

        Parameters
        ----------
        source : lob.Exchange with a journal, or a journal directory
        symbol : str, optional
        step : int
            Requests per step.
        views : tuple of {"depth", "ladder"}
            (The price chart needs the fills as they happen, which time travel does not replay.)
        """
        from lob.journal import exchange_at, read

        _check(step, views)
        if "price" in views:
            raise ConfigError("views of a journal player are among 'depth', 'ladder', got 'price'")
        journal = getattr(source, "journal", None)
        if journal is not None:
            journal.commit()
            path = journal.root
        else:
            path = source
        df = read(path)
        inputs = df[df["record"] == "input"]
        if len(inputs) == 0:
            raise ConfigError(f"the journal at {path} holds no requests")
        # request boundaries: the sequence number before each request, and after the last one
        first = inputs.drop_duplicates("record_seq")
        seqs = first["record_seq"].to_numpy(np.int64).tolist() + [int(df["record_seq"].max())]
        ts = first["ts_ns"].to_numpy(np.int64).tolist() + [int(inputs["ts_ns"].iloc[-1])]
        self = cls.__new__(cls)
        self._journal = (path, seqs, ts, exchange_at)
        self._init(lob.empty_events(0), lambda: exchange_at(path, 0), symbol, step, levels, interval_ms, views,
                   n_steps=math.ceil((len(seqs) - 1) / int(step)))
        return self

    # --- state --------------------------------------------------------------------------------------
    @property
    def book(self):
        """The drawn symbol's book on the current exchange."""
        return self.exchange.book(self.symbol)

    @property
    def events_applied(self) -> int:
        """Events applied (event streams) or requests replayed (journals) to reach the position."""
        if self._journal is not None:
            return min(self.position * self.step, len(self._journal[1]) - 1)
        return min(self.position * self.step, len(self.events))

    def _views(self):
        return [v for v in (self.depth, self.ladder, self.price) if v is not None]

    def _advance(self, k: int) -> None:
        """Apply steps position..k-1, sampling the price chart after each."""
        for j in range(self.position, k):
            chunk = self.events[j * self.step:(j + 1) * self.step]
            self.exchange.apply(chunk)
            if self.price is not None:
                self.price.sample()
        self.position = k

    def step_to(self, k: int) -> int:
        """Show the state after ``k`` steps (clipped to ``[0, n_steps]``); return the position reached."""
        k = max(0, min(int(k), self.n_steps))
        if self._journal is not None:
            path, seqs, _, exchange_at = self._journal
            if k != self.position:
                self.exchange = exchange_at(path, seqs[min(k * self.step, len(seqs) - 1)])
                self.position = k
                for v in self._views():
                    v.bind(self.book)
        elif k < self.position:
            self.exchange = self._factory()
            self.position = 0
            for v in self._views():
                v.bind(self.book)
            if self.price is not None:
                self.price.sample(int(self.events["ts_ns"][0]) if len(self.events) else 0)
        if self._journal is None:
            self._advance(k)
        for v in (self.depth, self.ladder):
            if v is not None:
                v.update()
        if self.price is not None:
            self.price.flush()
        if self.slider.value != k:       # keep the controls on the position reached
            self.slider.value = k
        self._render_status()
        return self.position

    def reset(self) -> None:
        """Back to the start (an empty exchange)."""
        self.step_to(0)

    # --- widgets ------------------------------------------------------------------------------------
    def _on_slider(self, change) -> None:
        if change["new"] != self.position:
            self.step_to(change["new"])

    def _on_speed(self, change) -> None:
        speed = change["new"]
        interval = self.base_interval_ms / speed
        if interval >= _MIN_INTERVAL_MS:
            self.play.interval, self.play.step = int(round(interval)), 1
        else:
            self.play.interval = _MIN_INTERVAL_MS
            self.play.step = int(math.ceil(speed * _MIN_INTERVAL_MS / self.base_interval_ms))

    def _render_status(self) -> None:
        n = self.events_applied
        if self._journal is not None:
            ts = self._journal[2][n - 1] if n else None
            what = f"requests {n:,}/{len(self._journal[1]) - 1:,}"
        else:
            ts = int(self.events["ts_ns"][n - 1]) if n else None
            what = f"events {n:,}/{len(self.events):,}"
        t = "-" if ts is None else pd.Timestamp(ts, unit="ns").strftime("%H:%M:%S.%f")[:-3]
        b = self.book
        bid, ask = b.best_bid(), b.best_ask()
        fmt = lambda x: "-" if x is None else f"{x[0]:g} x {x[1]:g}"  # noqa: E731
        self.status.value = (f"<span style='font-family:monospace'>step {self.position}/{self.n_steps} · "
                             f"{what} · time {t} · seq {self.exchange.seq:,} · "
                             f"bid {fmt(bid)} · ask {fmt(ask)}</span>")

    @property
    def widget(self) -> widgets.VBox:
        if getattr(self, "_box", None) is None:
            controls = widgets.HBox([self.play, self.slider, self.speed])
            row = [w for w in (self.depth.widget() if self.depth else None,
                               self.ladder.widget if self.ladder else None) if w is not None]
            parts = [controls, self.status, widgets.HBox(row)]
            if self.price is not None:
                parts.append(self.price.widget())
            self._box = widgets.VBox(parts)
        return self._box

    def static_layout(self):
        """The player's current state as one Bokeh layout (status, depth, ladder, price), for
        :func:`lob.viz.save_html` and screenshots where no kernel runs the ipywidgets."""
        from bokeh.layouts import column, row
        from bokeh.models import Div

        if getattr(self, "_static", None) is None:
            self._static_status = Div(width=900)
            self._static_ladder = Div(width=360)
            top = [v for v in (self.depth.layout if self.depth else None, self._static_ladder
                               if self.ladder else None) if v is not None]
            parts = [self._static_status, row(*top)]
            if self.price is not None:
                parts.append(self.price.layout)
            self._static = column(*parts)
        self._static_status.text = self.status.value
        if self.ladder is not None:
            self._static_ladder.text = self.ladder.widget.value
        return self._static

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.widget._repr_mimebundle_(include=include, exclude=exclude)
