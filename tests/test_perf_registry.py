"""lob.perf: each analyzer exposes its own Prometheus registry, read afresh at every scrape."""
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import lob
from lob.perf import PerfAnalyzer


def _samples(text, name, **labels):
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    return [s.value for s in fams[name].samples if all(s.labels.get(k) == v for k, v in labels.items())]


def test_each_analyzer_has_its_own_registry_read_at_scrape_time():
    ex1, ex2 = lob.Exchange(symbols=["X"], marketdata=False), lob.Exchange(symbols=["Y"], marketdata=False)
    p1, p2 = PerfAnalyzer(ex1, sample_every=1), PerfAnalyzer(ex2, sample_every=1)
    assert p1.registry is p1.registry and p1.registry is not p2.registry
    for i in range(30):
        ex1.submit("X", "buy", 1, price=1.0 + i / 100, ts_ns=i)
    ex2.submit("Y", "sell", 1, price=2.0, ts_ns=1)
    t1 = generate_latest(p1.registry).decode()
    assert _samples(t1, "lob_latency_samples", stage="end_to_end", msg_type="submit") == [30]
    assert _samples(p2.prometheus(), "lob_latency_samples", stage="end_to_end", msg_type="submit") == [1]
    assert _samples(t1, "lob_memory_bytes", what="book_bytes.X") and not _samples(t1, "lob_memory_bytes",
                                                                                 what="book_bytes.Y")
    ex1.cancel("X", 1, ts_ns=99)
    t1b = p1.prometheus()                           # the same registry, new figures
    assert _samples(t1b, "lob_latency_samples", stage="end_to_end", msg_type="cancel") == [1]
    # nothing leaks into prometheus-client's process-wide default registry
    assert "lob_latency_ns" not in generate_latest(REGISTRY).decode()


def test_periodic_persistence_thread_and_concurrent_scrapes(tmp_path):
    import threading
    import time

    from lob.perf import read_metrics

    ex = lob.Exchange(symbols=["X"], marketdata=False)
    perf = PerfAnalyzer(ex, sample_every=1, db_path=tmp_path / "m.db")
    perf.start(interval_s=0.02)
    scrapes, stop = [], threading.Event()

    def scraper():                       # a /metrics endpoint on another thread, while orders flow
        while not stop.is_set():
            scrapes.append(perf.prometheus())

    t = threading.Thread(target=scraper)
    t.start()
    deadline = time.monotonic() + 300     # a bound only: the loop ends once 3 rows and 3 scrapes exist
    i = 0
    while time.monotonic() < deadline:
        ex.submit("X", "buy" if i % 2 else "sell", 1, price=10.0 + (i % 5) / 100, ts_ns=i)
        i += 1
        if i % 500 == 0 and len(perf.read()["throughput"]) >= 3 and len(scrapes) >= 3:
            break
    stop.set()
    t.join()
    perf.close()                          # stops the thread after a last row set
    m = read_metrics(tmp_path / "m.db")
    assert m["throughput"]["t"].nunique() >= 3
    last = m["latency"][(m["latency"]["t"] == m["latency"]["t"].max()) & (m["latency"]["stage"] == "end_to_end")]
    assert int(last["count"].sum()) == i     # every request timed exactly once, none lost to a race
    assert m["throughput"]["events"].iloc[-1] == i
