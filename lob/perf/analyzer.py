"""``PerfAnalyzer``: latency per stage and message type (ns, HDR histograms), throughput, memory,
Prometheus exposition and periodic persistence to SQLite.

The per-call order path of an exchange times its stages in C (``parse``: argument checks and conversion;
``risk``: the pre-trade check; ``match``: the engine, with the market-data recorder it feeds in C;
``market_data``: Python listeners (an L2 feed) and the journal; ``end_to_end``) into a ring buffer, sampling
one request in ``sample_every``.
The analyzer drains the ring into HDR histograms when the ring fills and whenever it is read. The batch
path is timed per batch (message type ``batch``; stages parse = validation, match, market_data).
"""
from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram

from lob.perf._latency import MSG_TYPES, STAGES, LatencyRing
from lob.errors import ConfigError

__all__ = ["PerfAnalyzer", "read_metrics"]

_PCTS = (50.0, 90.0, 99.0, 99.9)


def _locked(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return wrapper


class PerfAnalyzer:
    """Collect and expose an exchange's performance figures.

    Parameters
    ----------
    exchange : lob.Exchange, optional
        Instrumented at once (see :meth:`attach`).
    sample_every : int
        Time one per-call request in this many (default 8: under 5% overhead on the per-call path,
        see benchmarks/bench_perf.py; 1 times every request).
    db_path : path, optional
        SQLite metrics database; ``persist()`` writes one row set per call, and ``maybe_persist()`` does so
        at most every ``persist_interval_s`` seconds. None keeps an in-memory database.
    window_s : float
        Width of the window behind the "current" throughput.

    Examples
    --------
    >>> import lob
    >>> ex = lob.Exchange(symbols=["X"]); perf = PerfAnalyzer(ex, sample_every=1)
    >>> _ = ex.submit("X", "buy", 1, price=1.0)
    >>> int(perf.latency_frame().query("stage == 'match'")["count"].sum())
    1
    """

    def __init__(self, exchange=None, sample_every: int = 8, db_path=None, persist_interval_s: float = 10.0,
                 window_s: float = 1.0, highest_ns: int = 60 * 10 ** 9):
        if not isinstance(sample_every, int) or sample_every < 1:
            raise ConfigError(f"sample_every must be an int >= 1, got {sample_every!r}")
        if persist_interval_s <= 0 or window_s <= 0:
            raise ConfigError(f"persist_interval_s and window_s must be > 0, got {persist_interval_s}, {window_s}")
        self.sample_every = sample_every
        self.highest_ns = highest_ns
        self.persist_interval_s = persist_interval_s
        self.window_s = window_s
        self._hist: dict[tuple[str, str], HdrHistogram] = {}
        self._ring = LatencyRing(65536, sample_every)
        self._ring.on_full = lambda ring: self._drain()
        self._exchanges = []
        self._t_start = time.monotonic()
        self._batch_events = 0
        self._window: list[tuple[float, int]] = []        # (t, events_total) samples over the last window
        self._peak = 0.0
        self._last_persist = 0.0
        self.db_path = str(db_path) if db_path is not None else ":memory:"
        self._db = sqlite3.connect(self.db_path, check_same_thread=False)
        self._init_db()
        self._registry = None
        # the order path drains the ring on its thread; a scrape, the persistence thread or a notebook
        # may read the histograms on another: one re-entrant lock keeps the histograms whole
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = None
        if exchange is not None:
            self.attach(exchange)

    # --- collection -----------------------------------------------------------------------------
    def attach(self, exchange) -> None:
        """Time the exchange's per-call path (sampled) and its batches, and count its throughput.

        No listener is added: per-call requests are counted by the C-level ring, batches by ``apply``.
        """
        exchange.attach_perf(self, self._ring)
        self._exchanges.append(exchange)

    @property
    def events_total(self) -> int:
        """Requests and batch events processed since the analyzer started."""
        return self._ring.counter + self._batch_events

    @_locked
    def tick(self, now: float | None = None) -> None:
        """Sample the event counter for the throughput figures (the queries call it too)."""
        now = time.monotonic() if now is None else now
        self._window.append((now, self.events_total))
        while len(self._window) > 2 and self._window[1][0] <= now - self.window_s:
            self._window.pop(0)
        if self._window[-1][0] - self._window[0][0] >= self.window_s * 0.5:
            self._peak = max(self._peak, self.current_throughput())

    def current_throughput(self) -> float:
        """Events per second over the last window (from the samples taken by :meth:`tick`)."""
        if len(self._window) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._window[0], self._window[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def record(self, stage: str, latency_ns: int, msg_type: str = "other") -> None:
        """Record one latency (ns) of a stage outside the instrumented order path (e.g. a risk check)."""
        self._h(stage, msg_type).record_value(max(1, int(latency_ns)))

    def record_batch(self, parse_ns: int, match_ns: int, md_ns: int, n_events: int) -> None:
        """Record the stage times of one batch (called by ``Exchange.apply``)."""
        self._ring.record(5, parse_ns, 0, match_ns, md_ns, parse_ns + match_ns + md_ns)
        self._batch_events += n_events

    def _h(self, stage, msg_type) -> HdrHistogram:
        key = (stage, msg_type)
        h = self._hist.get(key)
        if h is None:
            h = self._hist[key] = HdrHistogram(1, self.highest_ns, 3)
        return h

    def _drain(self) -> None:
        with self._lock:
            self._drain_locked()

    def _drain_locked(self) -> None:
        lat, kinds = self._ring.drain()
        if not len(lat):
            return
        for k in np.unique(kinds):
            rows = lat[kinds == k]
            msg = MSG_TYPES[int(k)] if k < len(MSG_TYPES) else "other"
            for j, stage in enumerate(STAGES):
                vals, counts = np.unique(np.clip(rows[:, j], 1, self.highest_ns), return_counts=True)
                h = self._h(stage, msg)
                for v, c in zip(vals.tolist(), counts.tolist()):
                    h.record_value(v, c)

    # --- views ----------------------------------------------------------------------------------
    @_locked
    def latency_frame(self) -> pd.DataFrame:
        """One row per (stage, message type): count, mean, p50, p90, p99, p99.9, max (ns)."""
        self._drain()
        rows = []
        for (stage, msg), h in sorted(self._hist.items()):
            if h.get_total_count() == 0:
                continue
            rows.append(dict(stage=stage, msg_type=msg, count=h.get_total_count(), mean=h.get_mean_value(),
                             **{f"p{p:g}": h.get_value_at_percentile(p) for p in _PCTS}, max=h.get_max_value()))
        return pd.DataFrame(rows, columns=["stage", "msg_type", "count", "mean"] + [f"p{p:g}" for p in _PCTS] + ["max"])

    @_locked
    def histogram(self, stage: str = "end_to_end", msg_type: str | None = None) -> pd.DataFrame:
        """Bucketed counts of one stage (all message types merged unless one is given): value_ns, count."""
        self._drain()
        merged = HdrHistogram(1, self.highest_ns, 3)
        for (s, m), h in self._hist.items():
            if s == stage and (msg_type is None or m == msg_type):
                merged.add(h)
        rows = [(it.value_iterated_to, it.count_added_in_this_iter_step)
                for it in merged.get_log_iterator(100, 1.5) if it.count_added_in_this_iter_step]
        return pd.DataFrame(rows, columns=["value_ns", "count"])

    @_locked
    def throughput(self) -> dict:
        """Events per second: current (last window), peak (over full windows) and average since start."""
        self.tick()
        elapsed = max(time.monotonic() - self._t_start, 1e-9)
        total = self.events_total
        return dict(current=self.current_throughput(), peak=max(self._peak, self.current_throughput()),
                    average=total / elapsed, events=total, elapsed_s=elapsed)

    def memory(self) -> dict:
        """Process RSS and the bytes each attached exchange's books hold."""
        import psutil

        out = dict(rss_bytes=psutil.Process(os.getpid()).memory_info().rss)
        for ex in self._exchanges:
            for name in ex.symbols:
                out[f"book_bytes.{name}"] = ex.book(name).stats()["bytes_allocated"]
        return out

    def snapshot(self) -> dict:
        return dict(latency=self.latency_frame().to_dict("records"), throughput=self.throughput(),
                    memory=self.memory())

    def __repr__(self) -> str:
        return f"PerfAnalyzer(sample_every={self.sample_every}, events={self.events_total})"

    def _repr_html_(self) -> str:
        lat = self.latency_frame()
        tp = self.throughput()
        table = lat.to_html(index=False, float_format=lambda x: f"{x:,.0f}") if len(lat) else "<i>no latencies yet</i>"
        return (f"<div><b>PerfAnalyzer</b>: {tp['events']:,} events, current {tp['current']:,.0f}/s, peak "
                f"{tp['peak']:,.0f}/s, average {tp['average']:,.0f}/s (latencies in ns){table}</div>")

    # --- Prometheus -----------------------------------------------------------------------------
    @property
    def registry(self):
        """This analyzer's own ``prometheus_client.CollectorRegistry`` (made on first use), holding one
        collector that reads the analyzer's figures at every scrape. Serve it with prometheus-client
        (``generate_latest(perf.registry)``) or add more collectors to it; nothing goes to the global
        default registry, so several exchanges in one process never clash."""
        if self._registry is None:
            from prometheus_client import CollectorRegistry

            self._registry = CollectorRegistry(auto_describe=False)
            self._registry.register(_Collector(self))
        return self._registry

    def prometheus(self) -> str:
        """Prometheus text exposition of :attr:`registry` (latency quantiles, throughput, memory)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode()

    # --- SQLite ---------------------------------------------------------------------------------
    def _init_db(self):
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS latency (t REAL, stage TEXT, msg_type TEXT, count INTEGER,"
                             " mean REAL, p50 INTEGER, p90 INTEGER, p99 INTEGER, p999 INTEGER, max INTEGER)")
            self._db.execute("CREATE TABLE IF NOT EXISTS throughput (t REAL, current REAL, peak REAL, average REAL,"
                             " events INTEGER)")
            self._db.execute("CREATE TABLE IF NOT EXISTS memory (t REAL, what TEXT, bytes INTEGER)")

    def persist(self, now: float | None = None) -> None:
        """Write the current figures to the metrics database (one timestamped row set)."""
        with self._lock:
            self._persist(now)

    def _persist(self, now):
        t = time.time() if now is None else now
        lat = self.latency_frame()
        tp = self.throughput()
        with self._db:
            self._db.executemany("INSERT INTO latency VALUES (?,?,?,?,?,?,?,?,?,?)",
                                 [(t, r["stage"], r["msg_type"], int(r["count"]), float(r["mean"]), int(r["p50"]),
                                   int(r["p90"]), int(r["p99"]), int(r["p99.9"]), int(r["max"]))
                                  for r in lat.to_dict("records")])
            self._db.execute("INSERT INTO throughput VALUES (?,?,?,?,?)",
                             (t, tp["current"], tp["peak"], tp["average"], tp["events"]))
            self._db.executemany("INSERT INTO memory VALUES (?,?,?)", [(t, k, int(v)) for k, v in self.memory().items()])
        self._last_persist = time.monotonic()

    def maybe_persist(self) -> bool:
        """Persist if ``persist_interval_s`` has passed since the last time; return whether it did."""
        if time.monotonic() - self._last_persist >= self.persist_interval_s:
            self.persist()
            return True
        return False

    @_locked
    def read(self) -> dict[str, pd.DataFrame]:
        """The metrics database of this analyzer as DataFrames (latency, throughput, memory)."""
        return _read(self._db)

    def start(self, interval_s: float | None = None) -> None:
        """Persist every ``interval_s`` seconds (default ``persist_interval_s``) from a daemon thread until
        :meth:`stop` or :meth:`close`: the periodic metrics database of a running exchange."""
        interval = self.persist_interval_s if interval_s is None else interval_s
        if not interval > 0:
            raise ConfigError(f"interval_s must be > 0, got {interval_s!r}")
        if self._thread is not None:
            raise ConfigError("persistence is already running: stop() it first")
        self._stop.clear()

        def run():
            while not self._stop.wait(interval):
                self.persist()

        self._thread = threading.Thread(target=run, name="lob-perf-persist", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the persistence thread (after one last row set)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.persist()

    def close(self) -> None:
        self.stop()
        self._db.close()


class _Collector:
    """Reads a :class:`PerfAnalyzer` at scrape time (the prometheus-client custom collector protocol)."""

    def __init__(self, analyzer):
        self.analyzer = analyzer

    def describe(self):
        return []           # nothing to check against other collectors: the registry is the analyzer's own

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        analyzer = self.analyzer
        lat = GaugeMetricFamily("lob_latency_ns", "Latency quantiles per stage and message type (ns)",
                                labels=["stage", "msg_type", "quantile"])
        cnt = GaugeMetricFamily("lob_latency_samples", "Timed requests per stage and message type",
                                labels=["stage", "msg_type"])
        for r in analyzer.latency_frame().to_dict("records"):
            for p in _PCTS:
                lat.add_metric([r["stage"], r["msg_type"], f"{p / 100:g}"], r[f"p{p:g}"])
            cnt.add_metric([r["stage"], r["msg_type"]], r["count"])
        yield lat
        yield cnt
        tp = analyzer.throughput()
        g = GaugeMetricFamily("lob_throughput_events_per_second", "Events per second", labels=["kind"])
        for k in ("current", "peak", "average"):
            g.add_metric([k], tp[k])
        yield g
        m = GaugeMetricFamily("lob_memory_bytes", "Process RSS and per-book bytes", labels=["what"])
        for k, v in analyzer.memory().items():
            m.add_metric([k], v)
        yield m


def _read(con) -> dict[str, pd.DataFrame]:
    return {name: pd.read_sql_query(f"SELECT * FROM {name} ORDER BY t", con) for name in ("latency", "throughput", "memory")}


def read_metrics(path) -> dict[str, pd.DataFrame]:
    """Read a metrics database written by :meth:`PerfAnalyzer.persist` as DataFrames."""
    if not Path(path).exists():
        raise ConfigError(f"no metrics database at {path}")
    con = sqlite3.connect(str(path))
    try:
        return _read(con)
    finally:
        con.close()
