"""The broker against the real OpenBao: AppRole login, one read per cold herd, rotation without restart."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from credbroker import ApiManager, Broker, register_factory
from credbroker._factories import CcxtFactory, factory_for
from credbroker.testing.plugin import VaultSandbox


class CountingFactory(CcxtFactory):
    """The real ccxt factory, counting constructions and closes."""

    def __init__(self) -> None:
        super().__init__(is_async=False)
        self.built = 0
        self.closed: list[Any] = []
        self._lock = threading.Lock()

    def build(self, secret: Any, spec: Any, previous: Any = None) -> Any:
        with self._lock:
            self.built += 1
        return super().build(secret, spec, previous)

    def close(self, client: Any) -> None:
        self.closed.append(client)
        super().close(client)


@pytest.fixture
def counting_ccxt() -> CountingFactory:
    factory = CountingFactory()
    register_factory(factory, replace=True)
    yield factory
    register_factory(CcxtFactory(is_async=False), replace=True)


def test_broker_logs_in_by_approle_and_builds_a_ccxt_client(
    credbroker_vault: VaultSandbox, canary: Callable[[], str]
) -> None:
    key = canary()
    credbroker_vault.put("binance", {"apiKey": key, "secret": canary()})
    broker = credbroker_vault.broker()
    exchange = broker.exchange("binance")
    assert exchange.id == "binance"
    assert exchange.apiKey == key
    assert broker.exchange("binance") is exchange


def test_writing_a_new_version_rebuilds_the_client_within_two_seconds_and_closes_the_old(
    credbroker_vault: VaultSandbox, canary: Callable[[], str], counting_ccxt: CountingFactory
) -> None:
    credbroker_vault.put("binance", {"apiKey": canary(), "secret": canary()})
    broker = credbroker_vault.broker(poll_interval=1, drain=0.2)
    old = broker.exchange("binance")
    new_key = canary()
    # Out of band, like `bao kv put`: only the metadata poll can notice it.
    credbroker_vault.put_raw(credbroker_vault.path_for("binance"), {"apiKey": new_key, "secret": canary()})
    waited = credbroker_vault.wait_until_served(broker, "binance", version=2, timeout=2.0)
    new = broker.exchange("binance")
    assert new is not old
    assert new.apiKey == new_key
    assert waited < 2.0
    for _ in range(100):
        if old in counting_ccxt.closed:
            break
        threading.Event().wait(0.02)
    assert old in counting_ccxt.closed


def test_fifty_threads_asking_for_one_cold_client_cause_one_vault_read_and_one_construction(
    credbroker_vault: VaultSandbox, canary: Callable[[], str], counting_ccxt: CountingFactory
) -> None:
    credbroker_vault.put("binance", {"apiKey": canary(), "secret": canary()})
    broker = credbroker_vault.broker()
    barrier = threading.Barrier(50)
    clients: list[Any] = []

    def ask() -> None:
        barrier.wait()
        clients.append(broker.exchange("binance"))

    threads = [threading.Thread(target=ask) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(clients) == 50
    assert len({id(c) for c in clients}) == 1
    assert broker.cache.reads == 1
    assert counting_ccxt.built == 1


def test_rotation_through_credbroker_reaches_a_running_broker_within_one_second(
    credbroker_vault: VaultSandbox, canary: Callable[[], str]
) -> None:
    credbroker_vault.put("kucoin", {"apiKey": canary(), "secret": canary(), "password": canary()})
    # A long metadata poll: only the rotation marker can make this fast.
    broker = credbroker_vault.broker(poll_interval=60)
    broker.exchange("kucoin")
    new_key = canary()
    version = credbroker_vault.rotate("kucoin", {"apiKey": new_key, "secret": canary(), "password": canary()})
    waited = credbroker_vault.wait_until_served(broker, "kucoin", version=version, timeout=5)
    assert waited <= 1.0
    assert broker.exchange("kucoin").apiKey == new_key


def test_api_manager_facade_keeps_the_original_interface(
    credbroker_vault: VaultSandbox, canary: Callable[[], str]
) -> None:
    key = canary()
    credbroker_vault.put(
        "bitget", {"apiKey": key, "secret": canary(), "password": canary()}, options={"defaultType": "swap"}
    )
    manager = ApiManager(credbroker_vault.config_dict())
    try:
        exchange = manager.get_exchange_connection("bitget")
        assert exchange.id == "bitget"
        assert exchange.apiKey == key
        assert exchange.options["defaultType"] == "swap"
    finally:
        manager.close()


def test_async_exchange_rotates_and_closes_without_unclosed_session_warnings(
    credbroker_vault: VaultSandbox, canary: Callable[[], str]
) -> None:
    credbroker_vault.put("binance", {"apiKey": canary(), "secret": canary()})
    broker = Broker(credbroker_vault.config(poll_interval=1, drain=0.1))

    async def scenario() -> tuple[Any, Any]:
        first = await broker.async_exchange("binance")
        new_key = canary()
        credbroker_vault.rotate("binance", {"apiKey": new_key, "secret": canary()})
        for _ in range(100):
            second = await broker.async_exchange("binance")
            if second is not first:
                break
            await asyncio.sleep(0.05)
        assert second.apiKey == new_key
        await broker.aclose()
        return first, second

    first, second = asyncio.run(scenario())
    assert first is not second
    assert broker.stats["closes"] >= 2


def test_status_shows_versions_and_fingerprints_but_no_key(
    credbroker_vault: VaultSandbox, canary: Callable[[], str]
) -> None:
    key = canary()
    credbroker_vault.put("binance", {"apiKey": key, "secret": canary()})
    broker = credbroker_vault.broker()
    broker.exchange("binance")
    (row,) = broker.status()
    assert row.version == 1
    assert row.served_version == 1
    assert row.fingerprint is not None and len(row.fingerprint) == 8
    assert key not in repr(row)


def test_factory_registry_has_the_builtin_kinds() -> None:
    for kind in ("ccxt", "ccxt_async", "openai", "openai_async", "newsapi", "twitter"):
        assert factory_for(kind).kind == kind
