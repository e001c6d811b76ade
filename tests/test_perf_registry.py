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
