"""lob.perf: stage latencies in HDR histograms, throughput, memory, Prometheus text, SQLite persistence."""
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import lob
from lob.errors import ConfigError
from lob.perf import PerfAnalyzer, read_metrics


def _flow(ex, n=2000):
    for i in range(n):
        r = ex.submit("X", "buy" if i % 2 else "sell", 5, price=10.0 + (i % 7) / 100, ts_ns=i)
        if i % 3 == 0:
            ex.cancel("X", r.order_id, ts_ns=i)


def test_stage_latencies_per_message_type():
    ex = lob.Exchange(symbols=["X"])
    perf = PerfAnalyzer(ex, sample_every=1)
    _flow(ex)
    df = perf.latency_frame()
    assert set(df["stage"]) == {"parse", "risk", "match", "market_data", "end_to_end"}
    counts = df.groupby("msg_type")["count"].max().to_dict()
    assert counts == {"submit": 2000, "cancel": 667}
    e2e = df.query("stage == 'end_to_end' and msg_type == 'submit'").iloc[0]
    parts = df.query("msg_type == 'submit' and stage != 'end_to_end'")["mean"].sum()
    assert e2e["mean"] == pytest.approx(parts, rel=0.01)          # the stages add up to the whole
    assert e2e["p50"] <= e2e["p99"] <= e2e["p99.9"] <= e2e["max"]
    h = perf.histogram("end_to_end")
    assert h["count"].sum() == 2667


def test_sampling_and_batches():
    ex = lob.Exchange(symbols=["X"], marketdata=False)
    perf = PerfAnalyzer(ex, sample_every=4)
    _flow(ex, 400)
    ev = lob.empty_events(1000)
    ev["price_ticks"] = 1000
    ev["qty_lots"] = 1
    ex.apply(ev)
    df = perf.latency_frame()
    e2e = df.query("stage == 'end_to_end' and msg_type != 'batch'")
    assert e2e["count"].sum() == (400 + 134) // 4              # one request in four is timed
    assert df.query("msg_type == 'batch'")["count"].max() == 1
    assert perf.events_total == 400 + 134 + 1000


def test_throughput_current_peak_average():
    ex = lob.Exchange(symbols=["X"], marketdata=False)
    perf = PerfAnalyzer(ex, window_s=0.05)
    perf.tick()
    _flow(ex, 3000)
    tp = perf.throughput()
    assert tp["events"] == 4000 and tp["average"] > 0 and tp["current"] > 0 and tp["peak"] >= tp["current"] * 0.99


def test_prometheus_and_memory():
    ex = lob.Exchange(symbols=["X"])
    perf = PerfAnalyzer(ex, sample_every=1)
    _flow(ex, 300)
    text = perf.prometheus()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"lob_latency_ns", "lob_throughput_events_per_second", "lob_memory_bytes"} <= set(fams)
    q = [s for s in fams["lob_latency_ns"].samples if s.labels["stage"] == "match" and s.labels["quantile"] == "0.99"]
    assert q and q[0].value > 0
    mem = perf.memory()
    assert mem["rss_bytes"] > 10_000_000 and mem["book_bytes.X"] > 0


def test_sqlite_persistence(tmp_path):
    ex = lob.Exchange(symbols=["X"])
    db = tmp_path / "metrics.db"
    perf = PerfAnalyzer(ex, sample_every=1, db_path=db, persist_interval_s=3600)
    _flow(ex, 200)
    perf.persist()
    assert perf.maybe_persist() is False
    _flow(ex, 200)
    perf.persist()
    perf.close()
    m = read_metrics(db)
    assert m["latency"]["t"].nunique() == 2 and len(m["throughput"]) == 2
    last = m["latency"][m["latency"]["t"] == m["latency"]["t"].max()]
    assert int(last.query("stage == 'end_to_end' and msg_type == 'submit'")["count"].iloc[0]) == 400
    with pytest.raises(ConfigError):
        read_metrics(tmp_path / "nope.db")
    with pytest.raises(ConfigError):
        PerfAnalyzer(sample_every=0)
