"""Config: typed, frozen, strict; errors name the key and never a value."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from credbroker import ConfigError, load_config, parse_config


def write_config(tmp_path: Path, data: dict[str, Any], env_lines: str | None = None, mode: int = 0o600) -> Path:
    env_path = tmp_path / "secrets.env"
    data = {"paths": {"secrets_env_path": str(env_path)}, **data}
    if env_lines is not None:
        env_path.write_text(env_lines)
        os.chmod(env_path, mode)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(data))
    return cfg


def test_minimal_config_gets_documented_defaults(config_dict: dict[str, Any], token_env: dict[str, str]) -> None:
    cfg = parse_config(config_dict, environ=token_env)
    assert cfg.vault.kv_mount == "kv"
    assert cfg.vault.cache_ttl_s == 300
    assert cfg.vault.poll_interval_s == 30
    assert cfg.vault.max_stale_s == 3600
    assert cfg.exchanges["binance"].ccxt_id == "binance"


def test_unknown_key_is_an_error_naming_it(config_dict: dict[str, Any], token_env: dict[str, str]) -> None:
    config_dict["vault"]["poll_intervall"] = 5
    with pytest.raises(ConfigError, match=r"unknown key\(s\) 'poll_intervall' in 'vault'"):
        parse_config(config_dict, environ=token_env)


def test_auth_must_be_approle_or_token(config_dict: dict[str, Any], token_env: dict[str, str]) -> None:
    config_dict["vault"]["auth"] = "userpass"
    with pytest.raises(ConfigError, match=r"'vault.auth' must be 'approle' or 'token'"):
        parse_config(config_dict, environ=token_env)


@pytest.mark.parametrize("bad", [0, -1, "30s", True, None])
def test_poll_interval_must_be_a_positive_number_of_seconds(
    config_dict: dict[str, Any], token_env: dict[str, str], bad: object
) -> None:
    config_dict["vault"]["poll_interval"] = bad
    if bad is None:
        assert parse_config(config_dict, environ=token_env).vault.poll_interval_s == 30
        return
    with pytest.raises(ConfigError, match=r"'vault.poll_interval' must be"):
        parse_config(config_dict, environ=token_env)


def test_exchange_name_may_differ_from_its_ccxt_id(config_dict: dict[str, Any], token_env: dict[str, str]) -> None:
    config_dict["exchanges"]["binance_hedge"] = {"secret": "trading/exchanges/b2", "ccxt_id": "binance"}
    cfg = parse_config(config_dict, environ=token_env)
    assert cfg.exchanges["binance_hedge"].ccxt_id == "binance"


def test_a_name_used_in_two_sections_is_rejected(config_dict: dict[str, Any], token_env: dict[str, str]) -> None:
    config_dict["llm"]["binance"] = {"secret": "trading/llm/x"}
    with pytest.raises(ConfigError, match="'binance' is used in both 'exchanges' and 'llm'"):
        parse_config(config_dict, environ=token_env)


def test_secret_path_must_be_a_clean_kv_path(config_dict: dict[str, Any], token_env: dict[str, str]) -> None:
    config_dict["exchanges"]["binance"]["secret"] = "trading/../x"
    with pytest.raises(ConfigError, match=r"'exchanges.binance.secret' must be a KV path"):
        parse_config(config_dict, environ=token_env)


def test_missing_bootstrap_variables_list_the_path_tried_and_the_names(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, {"vault": {"auth": "approle"}})
    with pytest.raises(ConfigError) as info:
        load_config(cfg, environ={})
    message = str(info.value)
    assert "VAULT_ROLE_ID, VAULT_SECRET_ID" in message
    assert str(tmp_path / "secrets.env") in message
    assert "file not found" in message


def test_environment_shadows_secrets_env_and_remembers_the_source(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path,
        {"vault": {"auth": "approle"}},
        "VAULT_ROLE_ID=role-from-file\nVAULT_SECRET_ID=secret-from-file\n",
    )
    config = load_config(cfg, environ={"VAULT_ROLE_ID": "role-from-env"})
    assert config.identity.role_id == "role-from-env"
    assert config.identity.secret_id == "secret-from-file"
    assert config.identity.source_of("VAULT_ROLE_ID") == "environment"
    assert config.identity.source_of("VAULT_SECRET_ID") == str(tmp_path / "secrets.env")


def test_secrets_env_values_are_read_verbatim_without_interpolation(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, {"vault": {"auth": "approle"}}, "VAULT_ROLE_ID=r-1\nVAULT_SECRET_ID=abc${HOME}def\n")
    assert load_config(cfg, environ={"HOME": "/root"}).identity.secret_id == "abc${HOME}def"


def test_group_readable_secrets_env_logs_a_warning(tmp_path: Path, capture_logs: list[str]) -> None:
    cfg = write_config(tmp_path, {"vault": {"auth": "token"}}, "VAULT_TOKEN=t-123456789\n", mode=0o644)
    load_config(cfg, environ={})
    assert any("can be read by group or others" in line and "chmod 600" in line for line in capture_logs)


def test_empty_bootstrap_variable_in_secrets_env_is_an_error(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, {"vault": {"auth": "token"}}, "VAULT_TOKEN=\n")
    with pytest.raises(ConfigError, match="VAULT_TOKEN is present but empty"):
        load_config(cfg, environ={})


def test_identity_repr_never_shows_token_or_secret_id(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path, {"vault": {"auth": "approle"}}, "VAULT_ROLE_ID=role-SEEKRIT1\nVAULT_SECRET_ID=sid-SEEKRIT2\n"
    )
    text = repr(load_config(cfg, environ={}))
    assert "SEEKRIT" not in text


def test_invalid_yaml_error_names_the_line(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("vault:\n  addr: [unclosed\n")
    with pytest.raises(ConfigError, match=r"line \d+"):
        load_config(cfg, environ={})


def test_missing_config_file_says_which_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found; pass --config"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_config_objects_are_frozen(config_dict: dict[str, Any], token_env: dict[str, str]) -> None:
    cfg = parse_config(config_dict, environ=token_env)
    with pytest.raises(AttributeError):
        cfg.vault.kv_mount = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.exchanges["x"] = cfg.exchanges["binance"]  # type: ignore[index]


_yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
_yaml_trees = st.recursive(
    _yaml_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(tree=_yaml_trees)
def test_any_parsed_yaml_tree_gives_a_config_or_a_config_error(tree: object) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(tree, environ={"VAULT_TOKEN": "t"})


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_any_config_text_gives_a_config_or_a_config_error(tmp_path_factory: Any, text: str) -> None:
    path = tmp_path_factory.mktemp("cfg") / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with contextlib.suppress(ConfigError):
        load_config(path, environ={"VAULT_TOKEN": "t"})


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_any_dotenv_text_gives_an_identity_or_a_config_error(tmp_path_factory: Any, text: str) -> None:
    directory = tmp_path_factory.mktemp("env")
    env_path = directory / "secrets.env"
    env_path.write_text(text, encoding="utf-8")
    os.chmod(env_path, 0o600)
    data = {"paths": {"secrets_env_path": str(env_path)}, "vault": {"auth": "approle"}}
    try:
        parse_config(data, environ={})
    except ConfigError as exc:
        for line in text.splitlines():
            _, _, value = line.partition("=")
            if len(value.strip()) >= 8:
                assert value.strip() not in str(exc)


def test_duplicate_yaml_keys_are_an_error_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("vault:\n  auth: token\nvault:\n  auth: approle\n")
    with pytest.raises(ConfigError, match="duplicate key 'vault'"):
        load_config(cfg, environ={"VAULT_TOKEN": "t"})


@pytest.mark.parametrize(("key", "value"), [("cache_ttl", 10**400), ("timeout", 10**20), ("marker_interval", 1e9)])
def test_absurdly_large_durations_are_config_errors(
    config_dict: dict[str, Any], token_env: dict[str, str], key: str, value: float
) -> None:
    config_dict["vault"][key] = value
    with pytest.raises(ConfigError, match=rf"'vault.{key}' must be at most"):
        parse_config(config_dict, environ=token_env)


def test_rotation_marker_may_not_be_a_credential_path(config_dict: dict[str, Any], token_env: dict[str, str]) -> None:
    config_dict["vault"]["rotation_marker"] = "trading/exchanges/binance"
    with pytest.raises(ConfigError, match="rotation_marker' is the secret path of 'binance'"):
        parse_config(config_dict, environ=token_env)


def test_vault_addr_with_a_password_is_refused_without_echoing_it(config_dict: dict[str, Any]) -> None:
    env = {"VAULT_TOKEN": "t", "VAULT_ADDR": "http://user:hunter2-SEEKRIT@127.0.0.1:8200"}
    with pytest.raises(ConfigError, match="contains a user or password") as info:
        parse_config(config_dict, environ=env)
    assert "SEEKRIT" not in str(info.value)


@pytest.mark.parametrize("bad_id", ["Exchange", "__class__", "nope"])
def test_ccxt_id_must_be_one_of_ccxt_exchanges(bad_id: str) -> None:
    from credbroker._factories import required_credentials

    with pytest.raises(ConfigError, match="is not a ccxt exchange id"):
        required_credentials(bad_id)
