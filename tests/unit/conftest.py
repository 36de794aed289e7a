"""Unit-test doubles. No network here: the real Vault is exercised in tests/integration."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from credbroker import Secret
from credbroker._factories import _register_builtins
from credbroker._redact import scrubber
from credbroker._vault import SecretMetadata
from credbroker.exceptions import SecretNotFound, VaultUnavailable


class FakeSession:
    """Stands in for VaultSession: an in-memory KV v2 with versions, and a switch to simulate an outage."""

    addr = "http://vault.test:8200"
    mount = "kv"

    def __init__(self) -> None:
        self.data: dict[str, list[dict[str, Any]]] = {}
        self.down = False
        self.reads = 0
        self.read_delay = 0.0
        self._lock = threading.Lock()
        self.gate: threading.Event | None = None

    def put(self, path: str, fields: Mapping[str, Any]) -> int:
        with self._lock:
            self.data.setdefault(path, []).append(dict(fields))
            return len(self.data[path])

    def read(self, path: str) -> Secret:
        with self._lock:
            self.reads += 1
        if self.gate is not None:
            self.gate.wait(5)
        if self.down:
            raise VaultUnavailable(f"cannot connect to Vault at {self.addr}", path=path)
        versions = self.data.get(path)
        if not versions:
            raise SecretNotFound(f"no secret at kv/data/{path}", path=path)
        latest = versions[-1]
        fields = {k: v for k, v in latest.items() if isinstance(v, str)}
        problems = {k: "is not a string" for k, v in latest.items() if not isinstance(v, str)}
        scrubber.add(fields.values())
        return Secret(path, len(versions), fields, "2026-01-01T00:00:00.000000000Z", problems=problems)

    def metadata(self, path: str) -> SecretMetadata:
        if self.down:
            raise VaultUnavailable("down", path=path)
        versions = self.data.get(path)
        if not versions:
            raise SecretNotFound(f"no secret at kv/metadata/{path}", path=path)
        return SecretMetadata(path, len(versions), "", "", False)

    def read_marker(self, path: str) -> list[str]:
        return []

    def close(self) -> None:
        pass


@pytest.fixture
def session() -> FakeSession:
    return FakeSession()


@pytest.fixture(autouse=True)
def _clean_registries() -> Iterator[None]:
    """Each test starts with the built-in factories and an empty scrubber, whatever ran before."""
    _register_builtins()
    scrubber.clear()
    yield
    _register_builtins()
    scrubber.clear()


@pytest.fixture
def config_dict() -> dict[str, Any]:
    """A minimal valid config mapping with token auth."""
    return {
        "vault": {"addr": "http://127.0.0.1:8200", "auth": "token"},
        "exchanges": {
            "binance": {"secret": "trading/exchanges/binance"},
            "kucoin": {"secret": "trading/exchanges/kucoin"},
        },
        "llm": {"openai": {"secret": "trading/llm/openai"}},
    }


@pytest.fixture
def token_env() -> dict[str, str]:
    """An environment holding only a (fake) Vault token."""
    return {"VAULT_TOKEN": "unit-test-token-not-real"}


@pytest.fixture
def capture_logs() -> Iterator[list[str]]:
    """Every credbroker log line emitted during the test, as formatted text."""
    from loguru import logger

    lines: list[str] = []
    sink_id = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{level} {message}")
    yield lines
    logger.remove(sink_id)
