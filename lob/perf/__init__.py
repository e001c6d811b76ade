"""Performance analyzer: per-stage latency in HDR histograms, throughput, memory, Prometheus text and an
embedded SQLite metrics database (DESIGN §10)."""
from lob.perf.analyzer import PerfAnalyzer, read_metrics

__all__ = ["PerfAnalyzer", "read_metrics"]
