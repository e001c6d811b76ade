"""``/metrics``: the server's figures through prometheus-client, beside the exchange's (``lob.perf``).

The hub has its own ``CollectorRegistry`` (nothing goes to prometheus-client's process-wide default registry,
so several servers in one process never clash, as for :attr:`lob.perf.PerfAnalyzer.registry`) holding one
collector that reads the exchange's performance registry and the hub's counters at every scrape.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

__all__ = ["ServerCollector", "server_registry", "exposition"]

_COUNTERS = (("clients_dropped", "Slow WebSocket clients dropped"),
             ("messages_queued", "Messages handed to client queues"),
             ("http_requests", "API requests served"))


class ServerCollector:
    """Reads a hub at scrape time (the prometheus-client custom collector protocol): the exchange's
    ``lob_latency_*``, ``lob_throughput_*`` and ``lob_memory_*``, then ``lob_server_*``, ``lob_incidents_total``
    and ``lob_exchange_seq``."""

    def __init__(self, hub):
        self.hub = hub

    def describe(self):
        return []           # the registry is the hub's own: nothing to check against other collectors

    def collect(self):
        hub = self.hub
        yield from hub.perf.registry.collect()
        yield GaugeMetricFamily("lob_server_clients", "WebSocket clients connected now", value=len(hub.subscribers))
        for key, help_ in _COUNTERS:
            yield CounterMetricFamily(f"lob_server_{key}", help_, value=int(hub.stats[key]))
        yield CounterMetricFamily("lob_incidents", "Incidents recorded", value=hub.incidents.total)
        yield GaugeMetricFamily("lob_exchange_seq", "Last exchange sequence number", value=hub.exchange.seq)


def server_registry(hub) -> CollectorRegistry:
    """A new registry holding a :class:`ServerCollector` of ``hub``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(hub))
    return registry


def exposition(registry: CollectorRegistry) -> str:
    """The Prometheus text exposition of a registry."""
    return generate_latest(registry).decode()
