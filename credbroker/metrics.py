"""Prometheus metrics for a Broker (extra: ``pip install 'credbroker[metrics]'``).

``instrument(broker)`` registers a collector that reads the broker's counters at scrape time, so the hot path
pays nothing for metrics, and hooks the Vault session to time each request. Expose them either through your
application's own registry (pass ``registry=``) or on a port of their own (``port=9464``).

Metrics (prefix ``credbroker_``):

- ``client_requests_total{result="hit"|"miss"}``: clients handed out from the slot table vs. through the slow path
- ``vault_reads_total``: secret reads that went to Vault (cache misses and refreshes)
- ``vault_requests_total{operation, outcome}``: every Vault request, by outcome (``ok`` or the error class)
- ``vault_request_seconds{operation}``: Vault request latency (histogram)
- ``rotations_total``: new secret versions picked up and swapped in
- ``client_builds_total`` / ``client_closes_total``
- ``auth_retries_total``: read-only calls retried after a rotation
- ``errors_total{type}``: errors surfaced to callers, by credbroker class
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from credbroker.exceptions import MissingExtra

if TYPE_CHECKING:
    from credbroker._broker import Broker

__all__ = ["BrokerCollector", "instrument"]


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise MissingExtra("metrics", "prometheus-client") from exc
    return prometheus_client


class BrokerCollector:
    """A Prometheus collector over one or more brokers' counters. Safe to scrape from any thread."""

    def __init__(self, namespace: str = "credbroker") -> None:
        self._ns = namespace
        self._brokers: list[Broker] = []
        self.http_server: Any = None

    def close(self) -> None:
        """Stop the HTTP endpoint, if ``instrument`` started one."""
        server, self.http_server = self.http_server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def add(self, broker: Broker) -> None:
        self._brokers.append(broker)

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        ns = self._ns
        requests = CounterMetricFamily(
            f"{ns}_client_requests", "Clients handed out, by whether the warm slot served them", labels=["result"]
        )
        reads = CounterMetricFamily(f"{ns}_vault_reads", "Secret reads that went to Vault")
        rotations = CounterMetricFamily(f"{ns}_rotations", "New secret versions picked up and swapped in")
        builds = CounterMetricFamily(f"{ns}_client_builds", "Clients built")
        closes = CounterMetricFamily(f"{ns}_client_closes", "Replaced or retired clients closed")
        retries = CounterMetricFamily(f"{ns}_auth_retries", "Read-only calls retried after a rotation")
        errors = CounterMetricFamily(f"{ns}_errors", "Errors surfaced to callers, by type", labels=["type"])
        hits = misses = read_count = 0
        stats: dict[str, int] = {}
        error_counts: dict[str, int] = {}
        for broker in list(self._brokers):
            hits += broker.hits
            misses += broker.misses
            read_count += broker.cache.reads
            for key, value in broker.stats.items():
                stats[key] = stats.get(key, 0) + value
            for key, value in broker.errors.items():
                error_counts[key] = error_counts.get(key, 0) + value
        requests.add_metric(["hit"], hits)
        requests.add_metric(["miss"], misses)
        reads.add_metric([], read_count)
        rotations.add_metric([], stats.get("rotations", 0))
        builds.add_metric([], stats.get("builds", 0))
        closes.add_metric([], stats.get("closes", 0))
        retries.add_metric([], stats.get("auth_retries", 0))
        for name, value in sorted(error_counts.items()):
            errors.add_metric([name], value)
        yield from (requests, reads, rotations, builds, closes, retries, errors)


def instrument(
    broker: Broker, *, registry: Any = None, port: int | None = None, addr: str = "127.0.0.1"
) -> BrokerCollector:
    """Export ``broker``'s metrics to ``registry`` (default: prometheus_client's global one).

    With ``port``, also serve them over HTTP on ``addr:port`` (loopback by default; pass ``0.0.0.0`` deliberately).
    Raises MissingExtra when prometheus-client is not installed.
    """
    prom = _prometheus()
    registry = registry if registry is not None else prom.REGISTRY
    collector = BrokerCollector()
    collector.add(broker)
    registry.register(collector)
    vault_requests = prom.Counter(
        "credbroker_vault_requests",
        "Vault requests by operation and outcome",
        ["operation", "outcome"],
        registry=registry,
    )
    vault_seconds = prom.Histogram(
        "credbroker_vault_request_seconds",
        "Vault request latency",
        ["operation"],
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        registry=registry,
    )

    def observe(operation: str, outcome: str, seconds: float) -> None:
        vault_requests.labels(operation, outcome).inc()
        vault_seconds.labels(operation).observe(seconds)

    broker.session.add_observer(observe)
    if port is not None:
        started = prom.start_http_server(port, addr=addr, registry=registry)
        collector.http_server = started[0] if isinstance(started, tuple) else None
    return collector
