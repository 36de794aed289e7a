"""The ``credbroker`` command line against a real OpenBao (the session server of credbroker.testing.plugin).

Each test works in its own sandbox prefix. The broker identity is the seeded AppRole (read-only); the operator
identity for ``rotate`` is the seeded ops token, passed as VAULT_TOKEN the way an operator's shell would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from credbroker._config import BOOTSTRAP_VARS
from credbroker._redact import fingerprint
from credbroker.cli import cli
from credbroker.testing.endpoints import BinanceEndpoint, OpenAIEndpoint
from credbroker.testing.openbao import OpenBaoServer, SeedResult
from credbroker.testing.plugin import VaultSandbox

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in BOOTSTRAP_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "220")


def write_config(vault: VaultSandbox) -> Path:
    path = vault.workdir / "config.yaml"
    path.write_text(yaml.safe_dump(vault.config_dict()), encoding="utf-8")
    return path


def invoke(vault: VaultSandbox, *args: str, input: str | None = None, ops: bool = False) -> Result:
    """``credbroker ARGS --config <sandbox config>``; ``ops=True`` adds the operator token to the environment."""
    env = {"VAULT_TOKEN": vault.seeded.ops_token} if ops else None
    return CliRunner().invoke(cli, [*args, "--config", str(write_config(vault))], input=input, env=env)


def row(output: str, name: str) -> list[str]:
    line = next(line for line in output.splitlines() if f" {name} " in line)
    return [c.strip() for c in line.split("│")][1:-1]


@pytest.fixture
def binance_keys(canary: Callable[..., str]) -> dict[str, str]:
    return {"apiKey": canary(), "secret": canary()}


# ---------------------------------------------------------------- status and check


def test_status_reads_vault_with_the_brokers_approle(
    credbroker_vault: VaultSandbox, binance_keys: dict[str, str]
) -> None:
    credbroker_vault.put("binance", binance_keys)
    credbroker_vault.put("openai", {"api_key": "sk-integration-0001"})
    result = invoke(credbroker_vault, "status", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["binance"]["version"] == 1
    assert rows["binance"]["fingerprint"] == fingerprint(binance_keys["apiKey"])
    assert rows["openai"]["kind"] == "llm"
    assert binance_keys["apiKey"] not in result.output and binance_keys["secret"] not in result.output


def test_check_against_vault_fails_for_kucoin_secret_without_password(credbroker_vault: VaultSandbox) -> None:
    credbroker_vault.put("kucoin", {"apiKey": "kucoin-key-0001", "secret": "kucoin-secret-0001"})
    credbroker_vault.put("binance", {"apiKey": "binance-key-0001", "secret": "binance-secret-0001"})
    result = invoke(credbroker_vault, "check")
    assert result.exit_code == 3
    assert row(result.stdout, "kucoin")[0] == "✗"
    assert "'password'" in " ".join(row(result.stdout, "kucoin"))
    assert row(result.stdout, "binance")[0] == "✓"


@pytest.fixture
def endpoints() -> Iterator[tuple[BinanceEndpoint, OpenAIEndpoint]]:
    with BinanceEndpoint() as binance, OpenAIEndpoint() as openai:
        yield binance, openai


def test_check_live_makes_one_signed_call_per_client(
    credbroker_vault: VaultSandbox,
    endpoints: tuple[BinanceEndpoint, OpenAIEndpoint],
    binance_keys: dict[str, str],
) -> None:
    binance, openai = endpoints
    binance.allow(binance_keys["apiKey"], binance_keys["secret"])
    openai.allow("sk-integration-0001")
    credbroker_vault.put("binance", binance_keys, api_base=binance.url)
    credbroker_vault.put("openai", {"api_key": "sk-integration-0001"}, base_url=openai.url + "/v1", max_retries=0)

    result = invoke(credbroker_vault, "check", "--live")
    assert result.exit_code == 0, result.output
    assert "fetch_balance accepted" in " ".join(row(result.stdout, "binance"))
    # ccxt's load_markets makes signed calls of its own before fetch_balance's GET /api/v3/account.
    assert binance.stats.by_path.get("GET /api/v3/account") == 1
    assert binance.stats.rejected_auth == 0
    assert openai.stats.accepted == 1

    binance.revoke(binance_keys["apiKey"])
    result = invoke(credbroker_vault, "check", "binance", "--live")
    assert result.exit_code == 8
    assert "credentials rejected" in " ".join(row(result.stdout, "binance"))


def test_watch_once_renders_versions(credbroker_vault: VaultSandbox) -> None:
    credbroker_vault.put("binance", {"apiKey": "binance-key-0001", "secret": "binance-secret-0001"})
    credbroker_vault.put_raw(credbroker_vault.path_for("binance"), {"apiKey": "binance-key-0002", "secret": "s-0002"})
    result = invoke(credbroker_vault, "watch", "--once")
    assert result.exit_code == 0, result.output
    cells = row(result.stdout, "binance")
    assert cells[2:4] == ["2", "2"]
    assert fingerprint("binance-key-0002") in cells


# ---------------------------------------------------------------- rotate


def test_rotate_with_the_operator_token_writes_the_next_version_and_bumps_the_marker(
    credbroker_vault: VaultSandbox, binance_keys: dict[str, str], canary: Callable[..., str]
) -> None:
    credbroker_vault.put("binance", binance_keys)
    new = {"apiKey": canary(), "secret": canary()}
    result = invoke(credbroker_vault, "rotate", "binance", input=json.dumps(new), ops=True)
    assert result.exit_code == 0, result.output
    assert "version 1 → 2" in result.stdout
    assert fingerprint(new["apiKey"]) in result.stdout
    assert new["apiKey"] not in result.output and new["secret"] not in result.output
    ops = credbroker_vault.ops_session()
    path = credbroker_vault.path_for("binance")
    stored = ops.read(path)
    assert stored.version == 2 and stored.fingerprint("apiKey") == fingerprint(new["apiKey"])
    assert ops.read_marker(credbroker_vault.config().vault.rotation_marker) == [path]


def test_rotate_with_the_brokers_read_only_approle_is_denied(
    credbroker_vault: VaultSandbox, binance_keys: dict[str, str]
) -> None:
    credbroker_vault.put("binance", binance_keys)
    fields = json.dumps({"apiKey": "new-key-000002", "secret": "new-secret-0002"})
    result = invoke(credbroker_vault, "rotate", "binance", input=fields)
    assert result.exit_code == 6
    assert "policy" in result.stderr
    assert credbroker_vault.ops_session().metadata(credbroker_vault.path_for("binance")).current_version == 1


def _rotate_in_subprocess(vault: VaultSandbox, config: Path, fields: Mapping[str, str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in BOOTSTRAP_VARS}
    env["VAULT_TOKEN"] = vault.seeded.ops_token
    argv = [sys.executable, "-m", "credbroker.cli", "rotate", "binance", "--expect-version", "1"]
    proc = subprocess.Popen(
        [*argv, "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(dict(fields)))
    proc.stdin.close()
    return proc


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Wait for a rotate started by ``_rotate_in_subprocess``; its output is a few lines, so no pipe fills."""
    assert proc.stdout is not None and proc.stderr is not None
    try:
        with proc.stdout, proc.stderr:
            out, err = proc.stdout.read(), proc.stderr.read()
        return proc.wait(timeout=60), out, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_two_concurrent_rotates_with_stale_version_cannot_both_win(
    credbroker_vault: VaultSandbox, binance_keys: dict[str, str]
) -> None:
    credbroker_vault.put("binance", binance_keys)
    config = write_config(credbroker_vault)
    candidates = [{"apiKey": f"operator-{i}-key-0002", "secret": f"operator-{i}-secret-0002"} for i in (1, 2)]
    procs = [_rotate_in_subprocess(credbroker_vault, config, fields) for fields in candidates]
    outcomes = [_finish(proc) for proc in procs]
    assert sorted(code for code, _, _ in outcomes) == [0, 7], outcomes
    loser_err = next(err for code, _, err in outcomes if code == 7)
    assert "changed since version 1" in loser_err
    assert "Traceback" not in loser_err
    winner = candidates[[code for code, _, _ in outcomes].index(0)]
    stored = credbroker_vault.ops_session().read(credbroker_vault.path_for("binance"))
    assert stored.version == 2
    assert stored.fingerprint("apiKey") == fingerprint(winner["apiKey"])


# ---------------------------------------------------------------- demo


def test_demo_runs_end_to_end(monkeypatch: pytest.MonkeyPatch, canary: Callable[..., str]) -> None:
    from credbroker import _demo
    from credbroker.testing import openbao

    planted: list[str] = []
    real_defaults = openbao.default_credentials

    def seeded_with_canary(prefix: str = openbao.DEFAULT_PREFIX) -> dict[str, dict[str, str]]:
        creds = real_defaults(prefix)
        creds[f"{prefix}/exchanges/binance"]["secret"] = canary()
        planted.append(creds[f"{prefix}/exchanges/binance"]["secret"])
        return creds

    def rotated_with_canary(name: str, old: Mapping[str, str]) -> dict[str, str]:
        fields = {k: canary() for k in old}
        planted.extend(fields.values())
        return fields

    monkeypatch.setattr(openbao, "default_credentials", seeded_with_canary)
    monkeypatch.setattr(_demo, "new_exchange_fields", rotated_with_canary)
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    assert "demo ok: 2 rotations picked up without restart" in result.stdout
    for step in range(1, 8):
        assert f"Step {step}/7" in result.stdout
    assert "UpstreamAuthError" in result.stdout  # the old key, refused by the exchange
    assert "✗" not in result.stdout
    assert len(planted) == 5
    assert not [value for value in planted if value in result.output]


def test_demo_against_an_existing_vault_uses_the_operator_token_and_cleans_up(
    openbao_server: OpenBaoServer, openbao_seed: SeedResult
) -> None:
    prefix = f"{openbao_seed.prefix}/cli-demo-{os.getpid()}"
    env = {"VAULT_TOKEN": openbao_seed.ops_token}
    args = ["demo", "--vault-addr", openbao_server.addr, "--prefix", prefix, "--kv-mount", openbao_seed.kv_mount]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert "demo ok: 2 rotations picked up without restart" in result.stdout
    assert openbao_seed.ops_token not in result.output
    # The demo deleted what it wrote in the operator's Vault.
    client = openbao_server.client(openbao_seed.ops_token)
    try:
        listed = client.secrets.kv.v2.list_secrets(path=openbao_seed.prefix, mount_point=openbao_seed.kv_mount)
        assert f"cli-demo-{os.getpid()}/" not in listed["data"]["keys"]
    finally:
        client.adapter.close()
