"""Prometheus metrics: a scrape shows the broker's work, and Vault requests are timed."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest

from credbroker.metrics import instrument
from credbroker.testing.plugin import VaultSandbox


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in scrape")


def test_scrape_counts_hits_misses_builds_rotations_and_vault_requests(
    credbroker_vault: VaultSandbox, canary: Callable[[], str]
) -> None:
    credbroker_vault.put("binance", {"apiKey": canary(), "secret": canary()})
    broker = credbroker_vault.broker()
    registry = CollectorRegistry()
    instrument(broker, registry=registry)
    for _ in range(10):
        broker.exchange("binance")
    credbroker_vault.rotate("binance", {"apiKey": canary(), "secret": canary()})
    credbroker_vault.wait_until_served(broker, "binance", version=2)
    text = generate_latest(registry).decode()
    assert sample(text, 'credbroker_client_requests_total{result="hit"}') >= 9
    assert sample(text, 'credbroker_client_requests_total{result="miss"}') >= 1
    assert sample(text, "credbroker_client_builds_total") == 2
    assert sample(text, "credbroker_rotations_total") == 1
    assert sample(text, 'credbroker_vault_requests_total{operation="kv_data",outcome="ok"}') >= 1
    assert sample(text, 'credbroker_vault_request_seconds_count{operation="kv_metadata"}') >= 1


def test_metrics_can_be_served_on_their_own_port(credbroker_vault: VaultSandbox, canary: Callable[[], str]) -> None:
    credbroker_vault.put("binance", {"apiKey": canary(), "secret": canary()})
    broker = credbroker_vault.broker()
    broker.exchange("binance")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    collector = instrument(broker, registry=CollectorRegistry(), port=port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
    finally:
        collector.close()
    assert "credbroker_client_builds_total 1.0" in body
