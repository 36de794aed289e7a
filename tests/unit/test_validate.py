"""Credential fields: ccxt's names, no stray whitespace or quotes, errors that never show a value."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credbroker import CredentialError, ExchangeConfig, LLMConfig, Secret
from credbroker._factories import factory_for

KUCOIN = ExchangeConfig(name="kucoin", secret="trading/exchanges/kucoin", ccxt_id="kucoin")
BINANCE = ExchangeConfig(name="binance", secret="trading/exchanges/binance", ccxt_id="binance")
OPENAI = LLMConfig(name="openai", secret="trading/llm/openai")


def validate(spec: Any, fields: dict[str, str], kind: str = "ccxt") -> None:
    factory_for(kind).validate(Secret(spec.secret, 3, fields), spec)


def test_kucoin_secret_without_passphrase_names_the_missing_field() -> None:
    with pytest.raises(CredentialError) as info:
        validate(KUCOIN, {"apiKey": "key-123456", "secret": "sec-123456"})
    assert info.value.field == "password"
    assert "trading/exchanges/kucoin (version 3) lacks the field 'password'" in str(info.value)


def test_passphrase_field_name_is_rejected_with_a_rename_hint() -> None:
    with pytest.raises(CredentialError, match="rename it to 'password'") as info:
        validate(KUCOIN, {"apiKey": "key-123456", "secret": "sec-123456", "passphrase": "PASS-PHRASE-1"})
    assert "PASS-PHRASE-1" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("sec-123456\n", "leading or trailing whitespace"),
        (" sec-123456", "leading or trailing whitespace"),
        ('"sec-123456"', "wrapped in quotes"),
        ("", "is empty"),
        ("sec 123456", "contains whitespace"),
    ],
)
def test_stray_whitespace_or_quotes_are_rejected_naming_the_field(value: str, problem: str) -> None:
    with pytest.raises(CredentialError, match=problem) as info:
        validate(BINANCE, {"apiKey": "key-123456", "secret": value})
    assert info.value.field == "secret"
    if value.strip():
        assert value.strip() not in str(info.value)


@pytest.mark.parametrize("key", ["", "   ", "sk-abc def", "sk-abc\n"])
def test_empty_or_whitespace_openai_key_never_reaches_the_http_layer(key: str) -> None:
    with pytest.raises(CredentialError) as info:
        validate(OPENAI, {"api_key": key}, kind="openai")
    assert info.value.field == "api_key"


def test_unknown_ccxt_id_is_a_config_error() -> None:
    from credbroker import ConfigError

    spec = ExchangeConfig(name="x", secret="p", ccxt_id="notanexchange")
    with pytest.raises(ConfigError, match="'notanexchange' is not a ccxt exchange id"):
        validate(spec, {"apiKey": "key-123456"})


@settings(max_examples=300, deadline=None)
@given(fields=st.dictionaries(st.text(max_size=12), st.text(max_size=30), max_size=5))
def test_any_secret_payload_validates_or_raises_credential_error_without_values(fields: dict[str, str]) -> None:
    try:
        validate(KUCOIN, fields)
    except CredentialError as exc:
        for value in fields.values():
            if len(value) >= 8 and value not in ("password", "apiKey") and value not in KUCOIN.secret:
                assert value not in str(exc)


def test_network_error_message_drops_the_signed_query_and_names_the_cause() -> None:
    import ccxt

    from credbroker._upstream import classify

    try:
        try:
            raise OSError("[Errno -2] Name or service not known")
        except OSError as cause:
            raise ccxt.NetworkError(
                "binance GET https://api.binance.com/api/v3/account?timestamp=1&signature=" + "ab" * 32
            ) from cause
    except ccxt.NetworkError as exc:
        err = classify(exc, "binance")
    assert err is not None
    assert "signature" not in str(err)
    assert "https://api.binance.com/api/v3/account?…" in str(err)
    assert "Name or service not known" in str(err)
