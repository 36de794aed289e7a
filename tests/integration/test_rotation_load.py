"""Rotation under load: busy bots see zero failed read-only calls, orders are never retried, nothing leaks.

16 threads on sync clients and 16 asyncio tasks on async clients call a private endpoint in a loop for about
10 s while the key is rotated 5 times. At each rotation the new key is made valid at the endpoint and written
to Vault, then the old key is revoked at the endpoint. The endpoints reject any request mixing two versions'
fields, and count it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from _wire import EXCHANGES, Endpoints, allow, new_fields, put_exchange, start_endpoints

from credbroker import Broker, CredentialsRotated
from credbroker.testing.openbao import find_bao_binary
from credbroker.testing.plugin import VaultSandbox

THREADS = 16
TASKS = 16
DURATION_S = 10.0
ROTATIONS = 5


@pytest.fixture(scope="module")
def endpoints() -> Iterator[Endpoints]:
    eps = start_endpoints()
    yield eps
    eps.stop()


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def add(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n

    def fail(self, exc: BaseException, where: str = "") -> None:
        with self.lock:
            self.counts["failures"] += 1
            self.counts[f"failures_{where}"] += 1
            if len(self.failures) < 5:
                self.failures.append(f"{type(exc).__name__}: {exc}")


def rotate_via_credbroker(vault: VaultSandbox, name: str, fields: dict[str, str]) -> None:
    vault.rotate(name, fields)


def rotate_via_bao_kv_put(vault: VaultSandbox, name: str, fields: dict[str, str]) -> None:
    """Out of band, as an operator would: `bao kv put -mount=kv PATH -` with the JSON on stdin."""
    env = dict(os.environ, VAULT_ADDR=vault.addr, VAULT_TOKEN=vault.seeded.ops_token)
    subprocess.run(
        [find_bao_binary(), "kv", "put", f"-mount={vault.seeded.kv_mount}", vault.path_for(name), "-"],
        input=json.dumps(fields).encode(),
        env=env,
        check=True,
        capture_output=True,
        timeout=30,
    )


def run_load(
    vault: VaultSandbox,
    endpoints: Endpoints,
    name: str,
    canary: Callable[[], str],
    rotate: Callable[[VaultSandbox, str, dict[str, str]], None],
) -> Tally:
    current = put_exchange(vault, endpoints, name, canary)
    broker = Broker(vault.config(poll_interval=1, drain=0.5))
    tally = Tally()
    stop = threading.Event()

    def sync_worker() -> None:
        while not stop.is_set():
            try:
                broker.call(name, "fetch_balance")
                tally.add("sync_calls")
            except Exception as exc:
                tally.fail(exc, "sync")

    def order_worker() -> None:
        # Orders are never retried: each attempt either lands once or raises CredentialsRotated.
        while not stop.is_set():
            try:
                broker.call(name, "create_order", "BTC/USDT", "limit", "buy", 0.001, 20000)
                tally.add("orders_ok")
            except CredentialsRotated:
                tally.add("orders_rotated")
            except Exception as exc:
                tally.add("orders_other_error")
                tally.fail(exc, "order")
            time.sleep(0.05)

    async def async_workers() -> None:
        async def one() -> None:
            while not stop.is_set():
                try:
                    await broker.acall(name, "fetch_balance")
                    tally.add("async_calls")
                except Exception as exc:
                    tally.fail(exc, "async")

        await asyncio.gather(*(one() for _ in range(TASKS)))
        # Let the threads finish their last calls before the broker closes under them.
        await asyncio.get_running_loop().run_in_executor(None, lambda: [t.join(60) for t in threads])
        await broker.aclose()

    def rotator() -> None:
        nonlocal current
        for _ in range(ROTATIONS):
            time.sleep(DURATION_S / (ROTATIONS + 1))
            fresh = new_fields(name, canary)
            allow(endpoints, name, fresh)
            rotate(vault, name, fresh)
            endpoints.for_exchange(name).revoke(current["apiKey"])
            current = fresh
            tally.add("rotations")
        time.sleep(DURATION_S / (ROTATIONS + 1))
        stop.set()

    endpoint = endpoints.for_exchange(name)
    orders_before = len(endpoint.orders)
    mixed_before = endpoint.stats.rejected_mixed
    threads = [threading.Thread(target=sync_worker) for _ in range(THREADS)]
    threads += [threading.Thread(target=order_worker), threading.Thread(target=rotator)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for t in threads:
            t.start()
        asyncio.run(async_workers())
        for t in threads:
            t.join(60)
        broker.close()
        gc.collect()
    tally.add("orders_at_endpoint", len(endpoint.orders) - orders_before)
    tally.add("mixed_requests", endpoint.stats.rejected_mixed - mixed_before)
    tally.add("builds", broker.stats["builds"])
    tally.add("closes", broker.stats["closes"])
    tally.add("auth_retries", broker.stats["auth_retries"])
    tally.counts["warnings"] = len(caught)
    leaks = [str(w.message) for w in caught if "Unclosed" in str(w.message) or "never awaited" in str(w.message)]
    print(f"\n{name} via {rotate.__name__}: {dict(sorted(tally.counts.items()))} first failures: {tally.failures}")
    assert leaks == []
    return tally


@pytest.mark.parametrize("name", EXCHANGES)
def test_rotations_through_credbroker_under_load_cause_zero_read_failures(
    credbroker_vault: VaultSandbox, endpoints: Endpoints, canary: Callable[[], str], name: str
) -> None:
    tally = run_load(credbroker_vault, endpoints, name, canary, rotate_via_credbroker)
    assert tally.counts["rotations"] == ROTATIONS
    assert tally.counts["sync_calls"] > 0 and tally.counts["async_calls"] > 0
    assert tally.failures == []
    assert tally.counts["mixed_requests"] == 0
    assert tally.counts["orders_at_endpoint"] == tally.counts["orders_ok"]
    assert tally.counts["closes"] == tally.counts["builds"]


@pytest.mark.parametrize("name", EXCHANGES)
def test_out_of_band_bao_kv_put_rotations_under_load_cause_zero_read_failures(
    credbroker_vault: VaultSandbox, endpoints: Endpoints, canary: Callable[[], str], name: str
) -> None:
    tally = run_load(credbroker_vault, endpoints, name, canary, rotate_via_bao_kv_put)
    assert tally.counts["rotations"] == ROTATIONS
    assert tally.failures == []
    assert tally.counts["mixed_requests"] == 0
    assert tally.counts["orders_at_endpoint"] == tally.counts["orders_ok"]
