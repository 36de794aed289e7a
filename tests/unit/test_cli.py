"""The ``credbroker`` command line, with an in-memory Vault double: no network, no server.

The Broker is real; only ``credbroker.cli.open_session`` is replaced, by ``FakeVault`` below. ``--live`` checks
use fake client factories registered under the built-in kinds (the unit conftest restores the real ones).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from credbroker import Config, Secret, SecretMetadata
from credbroker import cli as cli_module
from credbroker._config import BOOTSTRAP_VARS
from credbroker._factories import CcxtFactory, OpenAIFactory, register_factory
from credbroker._redact import fingerprint, scrubber
from credbroker.cli import cli, human_age
from credbroker.exceptions import SecretNotFound, VaultUnavailable, WriteConflict

BINANCE = "trading/exchanges/binance"
KUCOIN = "trading/exchanges/kucoin"
OPENAI = "trading/llm/openai"
CREATED = "2026-01-01T00:00:00.000000000Z"


class FakeVault:
    """An in-memory KV v2 standing in for VaultSession: versions, check-and-set writes, an outage switch."""

    addr = "http://vault.test:8200"
    mount = "kv"

    def __init__(self) -> None:
        self.data: dict[str, list[dict[str, str]]] = {}
        self.down = False
        self.writes: list[tuple[str, int | None]] = []
        self.markers: list[list[str]] = []
        self._lock = threading.Lock()

    def put(self, path: str, fields: Mapping[str, str]) -> int:
        with self._lock:
            self.data.setdefault(path, []).append(dict(fields))
            return len(self.data[path])

    def version(self, path: str) -> int:
        return len(self.data.get(path, []))

    def _check(self, path: str) -> list[dict[str, str]]:
        if self.down:
            raise VaultUnavailable(f"cannot connect to Vault at {self.addr}", path=path)
        versions = self.data.get(path)
        if not versions:
            raise SecretNotFound(f"no secret at kv/data/{path}", path=path)
        return versions

    def read(self, path: str) -> Secret:
        versions = self._check(path)
        scrubber.add(versions[-1].values())
        return Secret(path, len(versions), versions[-1], CREATED)

    def metadata(self, path: str) -> SecretMetadata:
        versions = self._check(path)
        return SecretMetadata(path, len(versions), CREATED, "", False)

    def write(self, path: str, fields: Mapping[str, str], *, cas: int | None = None) -> int:
        if self.down:
            raise VaultUnavailable(f"cannot connect to Vault at {self.addr}", path=path)
        with self._lock:
            if cas is not None and cas != len(self.data.get(path, [])):
                raise WriteConflict(f"kv/data/{path} changed since version {cas} was read", path=path)
            self.writes.append((path, cas))
            self.data.setdefault(path, []).append(dict(fields))
            return len(self.data[path])

    def bump_marker(self, path: str, changed: list[str]) -> int:
        self.markers.append(changed)
        return self.put(path, {"paths": ",".join(changed)})

    def read_marker(self, path: str) -> list[str]:
        return self.markers[-1] if self.markers else []

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def vault() -> FakeVault:
    v = FakeVault()
    v.put(BINANCE, {"apiKey": "binance-key-0001", "secret": "binance-secret-0001"})
    v.put(KUCOIN, {"apiKey": "kucoin-key-0001", "secret": "kucoin-secret-0001", "password": "kucoin-pass-0001"})
    v.put(OPENAI, {"api_key": "sk-test-openai-0001"})
    return v


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch, vault: FakeVault) -> list[Config]:
    """Route every Vault session the CLI opens to ``vault``; records the config each was opened with."""
    opened: list[Config] = []

    def open_session(config: Config) -> FakeVault:
        opened.append(config)
        return vault

    monkeypatch.setattr(cli_module, "open_session", open_session)
    return opened


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Vault identity leaks in from the shell; wide output so table rows stay on one line."""
    for var in BOOTSTRAP_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "220")


def write_config(directory: Path, *, auth: str = "token", **vault: Any) -> Path:
    data = {
        "vault": {"addr": FakeVault.addr, "auth": auth, "poll_interval": 0.2, "marker_interval": 0.1, **vault},
        "exchanges": {"binance": {"secret": BINANCE}, "kucoin": {"secret": KUCOIN}},
        "llm": {"openai": {"secret": OPENAI}},
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def run(config_path: Path, sessions: list[Config]) -> Callable[..., Result]:
    """Invoke ``credbroker ARGS --config <tmp config>`` with an operator token in the environment."""

    def invoke(*args: str, input: str | None = None, env: Mapping[str, str] | None = None) -> Result:
        return CliRunner().invoke(
            cli,
            [*args, "--config", str(config_path)],
            input=input,
            env={"VAULT_TOKEN": "unit-test-token-not-real", **(env or {})},
        )

    return invoke


# ---------------------------------------------------------------- errors and help


def test_missing_config_prints_one_line_and_exits_with_config_error_code(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "not found" in result.stderr
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "--debug", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr


def test_vault_unavailable_exits_with_its_exit_code(run: Callable[..., Result], vault: FakeVault) -> None:
    vault.down = True
    result = run("rotate", "binance", input=json.dumps({"apiKey": "new-key-000001", "secret": "new-secret-00001"}))
    assert result.exit_code == VaultUnavailable.exit_code == 5
    assert "cannot connect to Vault" in result.stderr


def test_rotate_help_documents_the_operator_identity_rule() -> None:
    result = CliRunner().invoke(cli, ["rotate", "--help"])
    assert result.exit_code == 0
    assert "VAULT_TOKEN" in result.output
    assert "token auth" in result.output


@pytest.mark.parametrize(
    ("seconds", "shown"), [(None, "-"), (5.9, "5s"), (180, "3m"), (7200, "2h"), (3 * 86400 + 5, "3d")]
)
def test_human_age_uses_the_largest_whole_unit(seconds: float | None, shown: str) -> None:
    assert human_age(seconds) == shown


# ---------------------------------------------------------------- status


def test_status_json_lists_every_credential_without_values(
    run: Callable[..., Result], vault: FakeVault, canary: Callable[..., str]
) -> None:
    planted = canary()
    vault.put(BINANCE, {"apiKey": planted, "secret": canary()})
    result = run("status", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["binance", "kucoin", "openai"]
    binance = rows[0]
    assert binance["version"] == 2
    assert binance["fingerprint"] == fingerprint(planted)
    assert binance["error"] is None
    assert planted not in result.output


def test_status_table_shows_versions_ages_and_fingerprints(run: Callable[..., Result]) -> None:
    result = run("status")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if "binance" in line)
    _, name, kind, path, kv, served, age, key, *_ = (c.strip() for c in line.split("│"))
    assert (name, kind, path, kv, served) == ("binance", "exchange", BINANCE, "1", "-")
    assert re.fullmatch(r"\d+[smhd]", age)
    assert key == fingerprint("binance-key-0001")


def test_status_exits_nonzero_when_a_credential_has_an_error(run: Callable[..., Result], vault: FakeVault) -> None:
    del vault.data[KUCOIN]
    result = run("status", "--json")
    assert result.exit_code == 1
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert "no secret" in rows["kucoin"]["error"]
    assert rows["binance"]["error"] is None


def test_status_reports_a_version_that_cannot_be_built_as_an_error(
    run: Callable[..., Result], vault: FakeVault
) -> None:
    vault.put(KUCOIN, {"apiKey": "kucoin-key-0002", "secret": "kucoin-secret-0002"})  # no passphrase
    vault.put(BINANCE, {"apiKey": "", "secret": "binance-secret-0002"})
    result = run("status", "--json")
    assert result.exit_code == 1, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert "'password'" in rows["kucoin"]["error"]
    assert "'apiKey'" in rows["binance"]["error"] and "empty" in rows["binance"]["error"]
    assert rows["binance"]["fingerprint"] is None
    assert fingerprint("") not in result.stdout
    assert rows["openai"]["error"] is None
    table = run("status")
    assert table.exit_code == 1
    assert "'password'" in next(line for line in table.stdout.splitlines() if "kucoin" in line)


def test_check_and_status_report_a_field_that_is_not_a_string(
    run: Callable[..., Result], vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_read = vault.read

    def read(path: str) -> Secret:
        if path != BINANCE:
            return real_read(path)
        # What VaultSession makes of {"apiKey": "...", "secret": 12345}: the bad field kept as a problem.
        fields = {"apiKey": "binance-key-0002"}
        return Secret(path, 2, fields, CREATED, problems={"secret": "is a number, not a string"})

    monkeypatch.setattr(vault, "read", read)
    checked = run("check", "binance")
    assert checked.exit_code == 3, checked.output
    line = next(line for line in checked.stdout.splitlines() if "binance" in line)
    assert "✗" in line and "'secret'" in line and "not a string" in line
    status = run("status", "--json")
    assert status.exit_code == 1, status.output
    rows = {r["name"]: r for r in json.loads(status.stdout)}
    assert "'secret'" in rows["binance"]["error"] and "not a string" in rows["binance"]["error"]
    assert rows["kucoin"]["error"] is None


# ---------------------------------------------------------------- rotate


def test_rotate_refuses_secret_given_as_argument(
    run: Callable[..., Result], vault: FakeVault, canary: Callable[..., str]
) -> None:
    planted = canary()
    result = run("rotate", "binance", planted)
    assert result.exit_code == 2
    assert "stdin" in result.stderr and "--from-file" in result.stderr
    assert planted not in result.output
    assert vault.writes == []


def test_rotate_refuses_secret_given_as_an_option(
    run: Callable[..., Result], vault: FakeVault, canary: Callable[..., str]
) -> None:
    planted = canary()
    for args in (["rotate", "binance", f"--apiKey={planted}"], ["rotate", f"--secret={planted}"]):
        result = run(*args)
        assert result.exit_code == 2, args
        assert planted not in result.output
    assert vault.writes == []


def test_rotate_reads_fields_from_stdin_json(run: Callable[..., Result], vault: FakeVault) -> None:
    fields = {"apiKey": "rotated-key-0002", "secret": "rotated-secret-0002"}
    result = run("rotate", "binance", input=json.dumps(fields))
    assert result.exit_code == 0, result.output
    assert vault.data[BINANCE][-1] == fields
    assert vault.writes == [(BINANCE, 1)]
    assert vault.markers == [[BINANCE]]
    assert "version 1 → 2" in result.stdout


def test_rotate_prints_only_fingerprints(run: Callable[..., Result], canary: Callable[..., str]) -> None:
    key, secret = canary(), canary()
    result = run("rotate", "binance", input=json.dumps({"apiKey": key, "secret": secret}))
    assert result.exit_code == 0, result.output
    assert fingerprint(key) in result.stdout
    assert fingerprint(secret) in result.stdout
    assert key not in result.output and secret not in result.output


def test_rotate_reads_fields_from_a_private_file(run: Callable[..., Result], vault: FakeVault, tmp_path: Path) -> None:
    path = tmp_path / "new.json"
    path.write_text(json.dumps({"api_key": "sk-rotated-0002"}), encoding="utf-8")
    path.chmod(0o600)
    result = run("rotate", "openai", "--from-file", str(path))
    assert result.exit_code == 0, result.output
    assert vault.data[OPENAI][-1] == {"api_key": "sk-rotated-0002"}
    assert "warning" not in result.stderr


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620], ids=lambda mode: f"{mode:o}")
def test_rotate_refuses_a_file_that_group_or_others_can_access(
    run: Callable[..., Result], vault: FakeVault, tmp_path: Path, mode: int
) -> None:
    path = tmp_path / "new.json"
    path.write_text(json.dumps({"api_key": "sk-rotated-0002"}), encoding="utf-8")
    path.chmod(mode)
    result = run("rotate", "openai", "--from-file", str(path))
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1
    assert "by group or others" in result.stderr
    assert f"chmod 600 {path}" in result.stderr
    assert vault.writes == []


def test_rotate_from_file_still_refuses_a_directory_and_a_missing_file_and_follows_a_symlink(
    run: Callable[..., Result], vault: FakeVault, tmp_path: Path
) -> None:
    assert run("rotate", "openai", "--from-file", str(tmp_path)).exit_code == 2
    assert run("rotate", "openai", "--from-file", str(tmp_path / "missing.json")).exit_code == 2
    target = tmp_path / "new.json"
    target.write_text(json.dumps({"api_key": "sk-rotated-0002"}), encoding="utf-8")
    target.chmod(0o600)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    result = run("rotate", "openai", "--from-file", str(link))
    assert result.exit_code == 0, result.output
    assert vault.data[OPENAI][-1] == {"api_key": "sk-rotated-0002"}
    target.chmod(0o644)
    assert run("rotate", "openai", "--from-file", str(link)).exit_code == 2


def test_rotate_prompts_for_required_fields_with_hidden_input_on_a_tty(
    run: Callable[..., Result], vault: FakeVault, monkeypatch: pytest.MonkeyPatch, canary: Callable[..., str]
) -> None:
    monkeypatch.setattr(cli_module, "_stdin_is_tty", lambda: True)
    key, secret, password = canary(), canary(), canary()
    result = run("rotate", "kucoin", input=f"{key}\n{secret}\n{password}\n")
    assert result.exit_code == 0, result.output
    assert vault.data[KUCOIN][-1] == {"apiKey": key, "secret": secret, "password": password}
    for prompt in ("apiKey:", "secret:", "password:"):
        assert prompt in result.stderr
    assert key not in result.output and secret not in result.output and password not in result.output


def test_rotate_rejects_malformed_fields_before_writing(run: Callable[..., Result], vault: FakeVault) -> None:
    result = run("rotate", "binance", input=json.dumps({"apiKey": "key-with-newline\n", "secret": "s-000001"}))
    assert result.exit_code == 3
    assert "apiKey" in result.stderr and "whitespace" in result.stderr
    assert vault.writes == []


def test_rotate_rejects_kucoin_fields_without_password(run: Callable[..., Result], vault: FakeVault) -> None:
    result = run("rotate", "kucoin", input=json.dumps({"apiKey": "k-0000001", "secret": "s-0000001"}))
    assert result.exit_code == 3
    assert "'password'" in result.stderr
    assert vault.writes == []


def test_rotate_rejects_stdin_that_is_not_json_without_echoing_it(
    run: Callable[..., Result], vault: FakeVault, canary: Callable[..., str]
) -> None:
    planted = canary()
    result = run("rotate", "binance", input=f"apiKey={planted}\n")
    assert result.exit_code == 3
    assert "not valid JSON" in result.stderr
    assert planted not in result.output
    assert vault.writes == []


_DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (b'{"apiKey": "dup-key-000001", "apiKey": "dup-key-000002", "secret": "s-000001"}', "'apiKey' appears more"),
        (b'{"apiKey": "key-\xff\xfe-0001", "secret": "s-000001"}', "is not UTF-8"),
        ('\ufeff{"apiKey": "k-0001"}'.encode("utf-16"), "is not UTF-8"),
        (b'{"apiKey": "key-\\ud800-0001", "secret": "s-000001"}', "field 'apiKey' from stdin contains an invalid"),
        # Not a field the exchange checks: it used to be written, then crash the fingerprinting.
        (b'{"apiKey": "k-000001", "secret": "s-000001", "note": "\\udc00"}', "field 'note' from stdin contains"),
        (b'{"apiKey": "k-000001", "\\ud800": "s-000001"}', "a field name from stdin contains an invalid"),
        (f'{{"apiKey": {_DEEP}}}'.encode(), "nests JSON too deeply"),
        (b'{"apiKey": ' + b"7" * 5000 + b', "secret": "s-000001"}', "number too long"),
    ],
    ids=[
        "duplicate-key",
        "invalid-utf8",
        "utf16",
        "surrogate",
        "surrogate-extra-field",
        "surrogate-key",
        "deep",
        "long-number",
    ],
)
def test_rotate_turns_malformed_stdin_into_one_line_credential_error_before_writing(
    run: Callable[..., Result], vault: FakeVault, raw: bytes, said: str
) -> None:
    result = run("rotate", "binance", input=raw)
    assert result.exit_code == 3, result.output
    assert said in result.stderr
    assert result.stderr.count("\n") == 1
    assert "unexpected" not in result.stderr
    assert "dup-key" not in result.output and "key-" not in result.output
    assert vault.writes == [] and vault.version(BINANCE) == 1


def test_rotate_accepts_utf8_json_with_a_byte_order_mark(run: Callable[..., Result], vault: FakeVault) -> None:
    fields = {"apiKey": "bom-key-000002", "secret": "bom-secret-00002"}
    result = run("rotate", "binance", input=b"\xef\xbb\xbf" + json.dumps(fields).encode())
    assert result.exit_code == 0, result.output
    assert vault.data[BINANCE][-1] == fields


def test_rotate_that_wrote_reports_success_even_if_the_table_cannot_be_printed(
    run: Callable[..., Result], vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise UnicodeEncodeError("ascii", "→", 0, 1, "ordinal not in range(128)")

    monkeypatch.setattr(cli_module, "print_rotation", broken)
    result = run("rotate", "binance", input=json.dumps({"apiKey": "new-key-000002", "secret": "new-secret-0002"}))
    assert result.exit_code == 0, result.output
    assert vault.version(BINANCE) == 2
    assert "version 1 -> 2" in result.stderr


def test_rotate_with_stale_expected_version_exits_with_write_conflict_code(
    run: Callable[..., Result], vault: FakeVault
) -> None:
    vault.put(BINANCE, {"apiKey": "someone-else-0002", "secret": "someone-else-0002"})
    result = run(
        "rotate", "binance", "--expect-version", "1", input=json.dumps({"apiKey": "mine-0003", "secret": "mine-0003"})
    )
    assert result.exit_code == WriteConflict.exit_code == 7
    assert "changed since version 1" in result.stderr
    assert vault.version(BINANCE) == 2


def test_rotate_uses_token_auth_when_vault_token_is_in_the_environment(
    tmp_path: Path, sessions: list[Config], vault: FakeVault
) -> None:
    # An AppRole config with no role_id anywhere: status cannot even load it, rotate uses the operator's token.
    path = write_config(tmp_path, auth="approle")
    fields = json.dumps({"apiKey": "op-key-000002", "secret": "op-secret-0002"})
    env = {"VAULT_TOKEN": "operator-token-not-real", "VAULT_ADDR": "http://ops.vault.test:8200"}
    result = CliRunner().invoke(cli, ["rotate", "binance", "--config", str(path)], input=fields, env=env)
    assert result.exit_code == 0, result.output
    (config,) = sessions
    assert config.vault.auth == "token"
    assert config.identity.token == "operator-token-not-real"
    assert config.identity.addr == "http://ops.vault.test:8200"
    assert config.identity.source_of("VAULT_TOKEN") == "environment"


def test_rotate_without_vault_token_keeps_the_configured_auth(tmp_path: Path, sessions: list[Config]) -> None:
    path = write_config(tmp_path, auth="approle")
    fields = json.dumps({"apiKey": "op-key-000002", "secret": "op-secret-0002"})
    result = CliRunner().invoke(cli, ["rotate", "binance", "--config", str(path)], input=fields)
    assert result.exit_code == 2
    assert "VAULT_ROLE_ID" in result.stderr
    assert sessions == []


def test_rotate_of_an_unknown_name_does_not_echo_it_and_lists_the_configured_names(
    run: Callable[..., Result], vault: FakeVault, canary: Callable[..., str]
) -> None:
    typed_where_the_name_goes = canary()
    result = run("rotate", typed_where_the_name_goes, input="{}")
    assert result.exit_code == 2
    assert "no credential by that name is configured" in result.stderr
    assert "configured: binance, kucoin, openai" in result.stderr
    assert typed_where_the_name_goes not in result.output
    assert vault.writes == []


# ---------------------------------------------------------------- check


def test_check_passes_for_complete_secrets(run: Callable[..., Result]) -> None:
    result = run("check")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("✓") == 3
    assert "✗" not in result.stdout


def test_check_fails_for_kucoin_secret_without_password(run: Callable[..., Result], vault: FakeVault) -> None:
    vault.put(KUCOIN, {"apiKey": "kucoin-key-0002", "secret": "kucoin-secret-0002"})
    result = run("check")
    assert result.exit_code == 3
    line = next(line for line in result.stdout.splitlines() if "kucoin" in line)
    assert "✗" in line and "'password'" in line
    assert result.stdout.count("✓") == 2


def test_check_reports_stray_whitespace_and_quotes(run: Callable[..., Result], vault: FakeVault) -> None:
    vault.put(BINANCE, {"apiKey": " padded-key-0002", "secret": "s-0000002"})
    vault.put(OPENAI, {"api_key": '"sk-quoted-0002"'})
    result = run("check", "binance", "openai")
    assert result.exit_code == 3
    assert "whitespace" in result.stdout
    assert "quotes" in result.stdout
    assert "kucoin" not in result.stdout


def test_check_reports_a_missing_secret(run: Callable[..., Result], vault: FakeVault) -> None:
    del vault.data[OPENAI]
    result = run("check", "openai")
    assert result.exit_code == SecretNotFound.exit_code
    assert "no secret" in result.stdout


def test_check_unknown_name_is_a_config_error(run: Callable[..., Result]) -> None:
    result = run("check", "kraken")
    assert result.exit_code == 2
    assert "no credential named 'kraken'" in result.stderr


class _FakeExchange:
    def __init__(self, api_key: str, revoked: set[str]) -> None:
        self.apiKey = api_key
        self._revoked = revoked

    def fetch_balance(self) -> dict[str, Any]:
        import ccxt

        if self.apiKey in self._revoked:
            raise ccxt.AuthenticationError('binance {"code":-2015,"msg":"Invalid API-key"}')
        return {"total": {"USDT": 1000.0}}


@pytest.fixture
def revoked() -> Iterator[set[str]]:
    """Keys the fake exchange refuses. Registers fake ccxt/OpenAI factories that keep the real validation."""
    keys: set[str] = set()

    class Ccxt(CcxtFactory):
        def build(self, secret: Secret, spec: Any, previous: Any | None = None) -> Any:
            self.validate(secret, spec)
            return _FakeExchange(secret.reveal("apiKey"), keys)

        def close(self, client: Any) -> None:
            pass

    class OpenAI(OpenAIFactory):
        def build(self, secret: Secret, spec: Any, previous: Any | None = None) -> Any:
            reply = SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content="ok"))])
            return SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=lambda **kw: reply)))

        def close(self, client: Any) -> None:
            pass

    register_factory(Ccxt(is_async=False), replace=True)
    register_factory(OpenAI(is_async=False), replace=True)
    yield keys


def test_check_live_accepts_working_keys(run: Callable[..., Result], revoked: set[str]) -> None:
    result = run("check", "--live")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("fetch_balance accepted") == 2
    assert "1-token completion accepted" in result.stdout


def test_check_live_fails_for_a_key_the_exchange_refuses(run: Callable[..., Result], revoked: set[str]) -> None:
    revoked.add("binance-key-0001")
    result = run("check", "--live")
    assert result.exit_code == 8
    line = next(line for line in result.stdout.splitlines() if "binance" in line)
    assert "✗" in line and "credentials rejected" in line


# ---------------------------------------------------------------- watch


def test_watch_once_renders_versions(run: Callable[..., Result], vault: FakeVault) -> None:
    vault.put(BINANCE, {"apiKey": "binance-key-0002", "secret": "binance-secret-0002"})
    result = run("watch", "--once")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if "binance" in line)
    cells = [c.strip() for c in line.split("│")]
    assert cells[3:5] == ["2", "2"]  # KV version, served version
    assert fingerprint("binance-key-0002") in line
    assert "serving current" in line
    assert "2026-01-01 00:00:00Z" in line


def test_watch_shows_the_served_version_follow_a_rotation(
    run: Callable[..., Result], vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    brokers: list[Any] = []
    real_open_broker = cli_module.open_broker

    def open_broker(config: Config, *, watch: bool) -> Any:
        brokers.append(real_open_broker(config, watch=watch))
        return brokers[-1]

    def rotate_between_frames(seconds: float) -> None:
        vault.put(BINANCE, {"apiKey": "binance-key-0002", "secret": "binance-secret-0002"})
        # The broker's own watcher polls metadata every 0.2 s here; the next frame must show what it did.
        deadline = time.monotonic() + 5
        while brokers[0].served_version(BINANCE) != 2 and time.monotonic() < deadline:
            time.sleep(0.02)

    monkeypatch.setattr(cli_module, "open_broker", open_broker)
    monkeypatch.setattr(cli_module, "_sleep", rotate_between_frames)
    result = run("watch", "--iterations", "2", "--interval", "0.1")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if "binance" in line)
    assert [c.strip() for c in line.split("│")][3:5] == ["2", "2"]
    assert fingerprint("binance-key-0002") in line
    assert "rotations picked up by this process: 1" in result.stdout


def test_watch_exits_cleanly_on_ctrl_c(run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "_sleep", interrupt)
    result = run("watch")
    assert result.exit_code == 0, result.output
    assert "stopped" in result.stdout


def test_watch_shows_an_error_for_a_missing_secret_and_keeps_going(
    run: Callable[..., Result], vault: FakeVault
) -> None:
    del vault.data[KUCOIN]
    result = run("watch", "--once")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if "kucoin" in line)
    assert "no secret" in line


# ---------------------------------------------------------------- demo


def test_demo_with_vault_addr_needs_an_operator_token() -> None:
    result = CliRunner().invoke(cli, ["demo", "--vault-addr", "http://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "VAULT_TOKEN" in result.stderr


def test_console_script_entry_point_is_main() -> None:
    from importlib.metadata import entry_points

    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "credbroker"]
    assert script.value == "credbroker.cli:main"
