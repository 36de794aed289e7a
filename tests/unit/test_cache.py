"""SecretCache: one read per cold key, TTL, bounded stale-if-error."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from credbroker._cache import SecretCache
from credbroker.exceptions import SecretNotFound, VaultUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settle(cache: SecretCache) -> None:
    """Wait until background refreshes have finished."""
    deadline = time.monotonic() + 5
    while cache._background and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not cache._background


def make_cache(session: Any, clock: Clock, ttl: float = 60, max_stale: float = 120) -> SecretCache:
    return SecretCache(session, ttl_s=ttl, max_stale_s=max_stale, jitter=0.0, clock=clock)


def test_concurrent_callers_for_one_cold_secret_cause_one_vault_read(session: Any) -> None:
    session.put("p", {"apiKey": "k-123456"})
    session.gate = threading.Event()
    cache = make_cache(session, Clock())
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("p").secret.version)) for _ in range(50)]
    for t in threads:
        t.start()
    session.gate.set()
    for t in threads:
        t.join()
    assert results == [1] * 50
    assert session.reads == 1


def test_fresh_entry_is_served_without_reading_vault(session: Any) -> None:
    session.put("p", {"apiKey": "k-123456"})
    clock = Clock()
    cache = make_cache(session, clock)
    cache.get("p")
    clock.now += 59
    cache.get("p")
    assert session.reads == 1


def test_expired_entry_is_served_at_once_while_a_background_read_picks_up_the_new_version(session: Any) -> None:
    session.put("p", {"apiKey": "k-123456"})
    clock = Clock()
    cache = make_cache(session, clock)
    assert cache.get("p").secret.version == 1
    session.put("p", {"apiKey": "k-654321"})
    clock.now += 61
    assert cache.get("p").secret.version == 1
    settle(cache)
    assert cache.get("p").secret.version == 2
    assert session.reads == 2


def test_expired_entry_does_not_wait_for_a_hung_vault(session: Any) -> None:
    session.put("p", {"apiKey": "k-123456"})
    clock = Clock()
    cache = make_cache(session, clock)
    cache.get("p")
    session.gate = threading.Event()  # every read now blocks until the gate opens
    clock.now += 61
    started = time.monotonic()
    assert cache.get("p").secret.version == 1
    assert time.monotonic() - started < 1.0
    session.gate.set()
    settle(cache)


def test_vault_outage_serves_the_cached_secret_within_max_stale(session: Any, capture_logs: list[str]) -> None:
    session.put("p", {"apiKey": "k-123456"})
    clock = Clock()
    cache = make_cache(session, clock)
    cache.get("p")
    session.down = True
    clock.now += 100
    assert cache.get("p").secret.version == 1
    settle(cache)
    clock.now += 5
    assert cache.get("p").secret.version == 1
    settle(cache)
    warnings = [line for line in capture_logs if "serving cached p" in line]
    assert len(warnings) == 1


def test_vault_outage_beyond_max_stale_raises_vault_unavailable(session: Any) -> None:
    session.put("p", {"apiKey": "k-123456"})
    clock = Clock()
    cache = make_cache(session, clock, ttl=60, max_stale=120)
    cache.get("p")
    session.down = True
    clock.now += 181
    with pytest.raises(VaultUnavailable, match="older than max_stale"):
        cache.get("p")


def test_cold_secret_during_outage_fails_with_vault_unavailable(session: Any) -> None:
    session.down = True
    with pytest.raises(VaultUnavailable):
        make_cache(session, Clock()).get("p")


def test_outage_retries_vault_at_most_twice_a_second_per_secret(session: Any) -> None:
    session.put("p", {"apiKey": "k-123456"})
    clock = Clock()
    cache = make_cache(session, clock)
    cache.get("p")
    session.down = True
    clock.now += 61
    for _ in range(100):
        cache.get("p")
        settle(cache)
    assert session.reads == 2
    clock.now += 0.51
    cache.get("p")
    settle(cache)
    assert session.reads == 3


def test_secret_removed_from_vault_is_evicted(session: Any) -> None:
    session.put("p", {"apiKey": "k-123456"})
    cache = make_cache(session, Clock())
    cache.get("p")
    session.data.pop("p")
    with pytest.raises(SecretNotFound):
        cache.refresh("p")
    assert cache.peek("p") is None
