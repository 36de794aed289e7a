"""Helpers for the fault, TLS and token-life tests: an audited real OpenBao, sandboxes on it, log capture.

Nothing here fakes Vault. ``AuditedOpenBao`` is the harness's real server with a declarative file audit device
(OpenBao refuses ``sys/audit`` over the API), so a test can count exactly which requests reached Vault: logins,
renewals, refusals.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import hvac

from credbroker.testing.openbao import APPROLE_MOUNT, APPROLE_ROLE, BROKER_POLICY, OpenBaoServer, SeedResult
from credbroker.testing.plugin import VaultSandbox

_prefixes = itertools.count(1)


class AuditedOpenBao(OpenBaoServer):
    """A real OpenBao whose every request and response is written to ``audit_path`` (one JSON object a line).

    Needs a config-file server (``mode="file"`` or ``tls=True``); plain dev mode takes no config file.
    """

    @property
    def audit_path(self) -> Path:
        return self.workdir / "audit.log"

    def _write_config(self) -> Path:
        path = super()._write_config()
        config = json.loads(path.read_text(encoding="utf-8"))
        # A description as well as options: HCL's JSON form would fold a lone "options" key into the labels.
        config["audit"] = [
            {
                "file": {
                    "credbroker-tests": {
                        "description": "credbroker integration tests count requests here",
                        "options": {"file_path": str(self.audit_path)},
                    }
                }
            }
        ]
        path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        return path

    def audit_mark(self) -> int:
        """Where the audit log ends now; pass it as ``since`` to look only at later requests."""
        return self.audit_path.stat().st_size if self.audit_path.exists() else 0

    def audit_entries(self, since: int = 0) -> list[dict[str, Any]]:
        with self.audit_path.open("rb") as log:
            log.seek(since)
            return [json.loads(line) for line in log.read().splitlines() if line.strip()]

    def requests_to(self, path: str, since: int = 0) -> list[dict[str, Any]]:
        """Requests (not responses) to ``path`` received after ``since``."""
        return [e for e in self.audit_entries(since) if e.get("type") == "request" and e["request"]["path"] == path]

    def refusals(self, since: int = 0) -> list[dict[str, Any]]:
        """Responses that carried an error (403 permission denied, invalid credentials, ...)."""
        return [e for e in self.audit_entries(since) if e.get("type") == "response" and e.get("error")]

    def ensure_serving(self) -> None:
        """Running, not paused, unsealed: the state every test starts (and leaves) in."""
        self.resume()
        if not self.running:
            self.start()
        if self.health() == 503:
            self.unseal()


def start_audited(*, tls: bool = False) -> AuditedOpenBao:
    """Start a file-storage (raft) server that survives kill/restart, or an in-memory TLS one."""
    server = AuditedOpenBao(mode="dev" if tls else "file", tls=tls)
    server.start()
    return server


def sandbox(server: OpenBaoServer, seeded: SeedResult, workdir: Path) -> VaultSandbox:
    """A fresh prefix on ``server`` under the broker policy, like the ``credbroker_vault`` fixture."""
    workdir.mkdir(parents=True, exist_ok=True)
    return VaultSandbox(server, seeded, f"{seeded.prefix}/f{next(_prefixes)}", workdir)


def root_client(server: OpenBaoServer) -> hvac.Client:
    return server.client()


def approle_role(
    server: OpenBaoServer, seeded: SeedResult, name: str, *, token_ttl: str, token_max_ttl: str
) -> SeedResult:
    """A new AppRole role with the broker policy and the given token TTLs; returns the seed with its ids."""
    client = root_client(server)
    try:
        client.auth.approle.create_or_update_approle(
            role_name=name,
            mount_point=APPROLE_MOUNT,
            token_policies=[BROKER_POLICY],
            token_ttl=token_ttl,
            token_max_ttl=token_max_ttl,
            token_type="service",
            bind_secret_id=True,
        )
        role_id = client.auth.approle.read_role_id(role_name=name, mount_point=APPROLE_MOUNT)["data"]["role_id"]
        secret_id = client.auth.approle.generate_secret_id(role_name=name, mount_point=APPROLE_MOUNT)["data"][
            "secret_id"
        ]
    finally:
        client.adapter.close()
    return dataclasses.replace(seeded, role_id=str(role_id), secret_id=str(secret_id))


def custom_secret_id(server: OpenBaoServer, value: str, **params: Any) -> None:
    """Register ``value`` as a secret_id of the broker's role (so a canary can be one), with ``ttl``/``num_uses``."""
    client = root_client(server)
    try:
        client.adapter.post(
            f"/v1/auth/{APPROLE_MOUNT}/role/{APPROLE_ROLE}/custom-secret-id", json={"secret_id": value, **params}
        )
    finally:
        client.adapter.close()


def create_token(
    server: OpenBaoServer, token_id: str, *, ttl: str, renewable: bool, explicit_max_ttl: str | None = None
) -> None:
    """Create a broker-policy token whose id is ``token_id`` (a canary), as an operator would hand one out."""
    client = root_client(server)
    try:
        client.auth.token.create(
            id=token_id,
            policies=[BROKER_POLICY],
            ttl=ttl,
            renewable=renewable,
            explicit_max_ttl=explicit_max_ttl,
            no_parent=True,
        )
    finally:
        client.adapter.close()


def write_env(path: Path, values: dict[str, str]) -> Path:
    """A bootstrap dotenv (0600), single-quoted as write_secrets_env does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}='{v}'\n" for k, v in values.items()), encoding="utf-8")
    path.chmod(0o600)
    return path


def assert_no_secret_in(exc: BaseException, secrets: Iterable[str]) -> None:
    """Neither ``str(exc)`` nor ``repr(exc)`` may contain any planted value (values never printed)."""
    text = f"{exc}\n{exc!r}"
    leaked = sum(1 for s in secrets if s in text)
    assert leaked == 0, f"{type(exc).__name__} text contains {leaked} planted secret value(s)"


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> float:
    """Poll ``predicate`` until true; return the seconds waited. Raises AssertionError on timeout."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


class LogCapture:
    """Every loguru record emitted while installed, as (level, message). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: list[tuple[str, str]] = []
        self._sink_id: int | None = None

    def _sink(self, message: Any) -> None:
        record = message.record
        with self._lock:
            self.records.append((record["level"].name, record["message"]))

    def __enter__(self) -> LogCapture:
        from loguru import logger

        self._sink_id = logger.add(self._sink, level="DEBUG", format="{message}")
        return self

    def __exit__(self, *exc: object) -> None:
        from loguru import logger

        if self._sink_id is not None:
            logger.remove(self._sink_id)
            self._sink_id = None

    def messages(self, level: str | None = None, containing: str = "") -> list[str]:
        with self._lock:
            return [m for lv, m in self.records if (level is None or lv == level) and containing in m]
