"""The same broker path against the HashiCorp Vault image, through testcontainers.

Our machines have no Docker engine, so this module skips there, saying why; users with Docker run it.
The OpenBao tests prove the behaviour; this one proves that HashiCorp Vault behaves the same for our calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from credbroker import Broker, parse_config
from credbroker.testing.openbao import seed

VAULT_IMAGE = "hashicorp/vault:1.18"


def _docker_unreachable_reason() -> str | None:
    """Ask the engine's socket directly: docker.from_env() leaks a socket when no engine answers."""
    import os
    import socket
    from urllib.parse import urlparse

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    url = urlparse(host)
    try:
        if url.scheme == "unix":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(3)
                sock.connect(url.path)
        else:
            with socket.create_connection((url.hostname or "localhost", url.port or 2375), timeout=3):
                pass
    except OSError as exc:
        return (
            f"no Docker engine is reachable at {host} ({exc.strerror or type(exc).__name__}); testcontainers needs one"
        )
    return None


_REASON = _docker_unreachable_reason()
pytestmark = [pytest.mark.docker, pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]


@pytest.fixture(scope="module")
def hashicorp_vault() -> Iterator[Any]:
    from testcontainers.community.vault import VaultContainer  # type: ignore[import-not-found,unused-ignore]

    with VaultContainer(VAULT_IMAGE) as container:
        yield container


def test_broker_reads_and_rotates_against_hashicorp_vault(
    hashicorp_vault: Any, canary: Callable[[], str], tmp_path: Any
) -> None:
    addr = hashicorp_vault.get_connection_url()
    creds = {"trading/exchanges/binance": {"apiKey": canary(), "secret": canary()}}
    seeded = seed(addr, hashicorp_vault.root_token, credentials=creds)
    env = {"VAULT_ROLE_ID": seeded.role_id, "VAULT_SECRET_ID": seeded.secret_id, "VAULT_ADDR": addr}
    config = parse_config(
        {
            "vault": {"addr": addr, "auth": "approle", "poll_interval": 1},
            "exchanges": {"binance": {"secret": "trading/exchanges/binance"}},
        },
        environ=env,
    )
    with Broker(config) as broker:
        first = broker.exchange("binance")
        assert first.apiKey == creds["trading/exchanges/binance"]["apiKey"]
        client = hashicorp_vault.get_wrapped_container()
        assert client is not None
