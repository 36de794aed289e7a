"""Credentials proven on the wire: the exchange endpoints check signatures by the services' published rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from _wire import EXCHANGES, Endpoints, allow, new_fields, put_exchange, start_endpoints

from credbroker import ClockSkew, QuotaExhausted, RateLimited, UpstreamAuthError
from credbroker.testing.plugin import VaultSandbox


@pytest.fixture(scope="module")
def endpoints() -> Iterator[Endpoints]:
    eps = start_endpoints()
    yield eps
    eps.stop()


@pytest.mark.parametrize("name", EXCHANGES)
def test_signed_private_call_is_accepted_with_the_current_vault_version(
    credbroker_vault: VaultSandbox, endpoints: Endpoints, canary: Callable[[], str], name: str
) -> None:
    fields = put_exchange(credbroker_vault, endpoints, name, canary)
    broker = credbroker_vault.broker()
    before = endpoints.for_exchange(name).stats.by_key.get(fields["apiKey"], 0)
    balance = broker.call(name, "fetch_balance")
    assert "total" in balance
    assert endpoints.for_exchange(name).stats.by_key.get(fields["apiKey"], 0) > before


@pytest.mark.parametrize("name", EXCHANGES)
def test_wrong_secret_raises_typed_auth_error_keeping_the_exchange_message(
    credbroker_vault: VaultSandbox, endpoints: Endpoints, canary: Callable[[], str], name: str
) -> None:
    fields = new_fields(name, canary)
    # The endpoint knows the key id with a different secret: the signature cannot match.
    endpoints.for_exchange(name).allow(fields["apiKey"], canary(), fields.get("password"))
    credbroker_vault.put(name, fields, api_base=endpoints.for_exchange(name).url)
    broker = credbroker_vault.broker()
    with pytest.raises(UpstreamAuthError) as info:
        broker.call(name, "fetch_balance")
    text = f"{info.value} {info.value!r}"
    assert info.value.service == name
    assert "credentials rejected" in text
    assert any(code in text for code in ("-1022", "400005", "40009", "Signature", "sign"))
    for value in fields.values():
        assert value not in text


@pytest.mark.parametrize("name", ["kucoin", "bitget"])
def test_wrong_passphrase_raises_typed_auth_error(
    credbroker_vault: VaultSandbox, endpoints: Endpoints, canary: Callable[[], str], name: str
) -> None:
    fields = new_fields(name, canary)
    endpoints.for_exchange(name).allow(fields["apiKey"], fields["secret"], canary())
    credbroker_vault.put(name, fields, api_base=endpoints.for_exchange(name).url)
    with pytest.raises(UpstreamAuthError) as info:
        credbroker_vault.broker().call(name, "fetch_balance")
    assert fields["password"] not in str(info.value)


@pytest.mark.parametrize("name", EXCHANGES)
def test_timestamp_outside_the_window_is_clock_skew_not_an_auth_error(
    credbroker_vault: VaultSandbox, endpoints: Endpoints, canary: Callable[[], str], name: str
) -> None:
    put_exchange(credbroker_vault, endpoints, name, canary)
    broker = credbroker_vault.broker()
    broker.call(name, "load_markets")
    endpoint = endpoints.for_exchange(name)
    endpoint.clock_offset_ms = 120_000
    try:
        with pytest.raises(ClockSkew) as info:
            broker.call(name, "fetch_balance")
    finally:
        endpoint.clock_offset_ms = 0
    assert not isinstance(info.value, UpstreamAuthError)


def test_query_llm_is_answered_with_the_vault_key(
    credbroker_vault: VaultSandbox, endpoints: Endpoints, canary: Callable[[], str]
) -> None:
    key = "sk-" + canary()
    endpoints.openai.allow(key)
    credbroker_vault.put("openai", {"api_key": key, "base_url": endpoints.openai.url + "/v1"})
    reply = credbroker_vault.broker().query_llm("ping from credbroker", max_tokens=5)
    assert "ping from credbroker" in reply


def test_unknown_openai_key_is_a_typed_auth_error_without_the_key(
    credbroker_vault: VaultSandbox, endpoints: Endpoints, canary: Callable[[], str]
) -> None:
    key = "sk-" + canary()
    credbroker_vault.put("openai", {"api_key": key, "base_url": endpoints.openai.url + "/v1"})
    with pytest.raises(UpstreamAuthError) as info:
        credbroker_vault.broker().query_llm("hello")
    assert key not in str(info.value)
    assert info.value.status == 401


@pytest.mark.parametrize(("kind", "error"), [("rate_limit", RateLimited), ("insufficient_quota", QuotaExhausted)])
def test_openai_429_is_rate_limited_or_quota_exhausted(
    credbroker_vault: VaultSandbox, endpoints: Endpoints, canary: Callable[[], str], kind: str, error: type
) -> None:
    key = "sk-" + canary()
    endpoints.openai.allow(key)
    credbroker_vault.put("openai", {"api_key": key, "base_url": endpoints.openai.url + "/v1"}, max_retries=0)
    broker = credbroker_vault.broker()
    client_before = broker.llm("openai")
    endpoints.openai.force(kind)
    try:
        with pytest.raises(error) as info:
            broker.query_llm("hello")
    finally:
        endpoints.openai.force(None)
    assert info.value.retryable is (kind == "rate_limit")
    if kind == "rate_limit":
        assert isinstance(info.value, RateLimited) and info.value.retry_after is not None
    assert broker.llm("openai") is client_before  # neither evicts nor rebuilds the client


def test_rotated_key_is_refused_by_the_endpoint_and_the_new_one_accepted(
    credbroker_vault: VaultSandbox, endpoints: Endpoints, canary: Callable[[], str]
) -> None:
    old = put_exchange(credbroker_vault, endpoints, "binance", canary)
    broker = credbroker_vault.broker()
    broker.call("binance", "fetch_balance")
    new = new_fields("binance", canary)
    allow(endpoints, "binance", new)
    credbroker_vault.rotate("binance", new)
    endpoints.binance.revoke(old["apiKey"])
    credbroker_vault.wait_until_served(broker, "binance", version=2)
    broker.call("binance", "fetch_balance")
    assert endpoints.binance.stats.by_key.get(new["apiKey"], 0) >= 1


def test_exchange_429_is_rate_limited_with_retry_after_and_keeps_the_client(
    credbroker_vault: VaultSandbox, endpoints: Endpoints, canary: Callable[[], str]
) -> None:
    put_exchange(credbroker_vault, endpoints, "binance", canary)
    broker = credbroker_vault.broker()
    broker.call("binance", "fetch_balance")
    client = broker.exchange("binance")
    endpoints.binance.reply_next(
        429,
        {"code": -1003, "msg": "Too many requests; current limit is 6000 request weight per 1 MINUTE."},
        {"Retry-After": "7"},
    )
    with pytest.raises(RateLimited) as info:
        broker.call("binance", "fetch_balance")
    assert info.value.retryable
    assert info.value.retry_after == 7.0
    assert broker.exchange("binance") is client
    assert broker.stats["builds"] == 1


def test_binance_418_is_an_ip_ban_and_keeps_the_client(
    credbroker_vault: VaultSandbox, endpoints: Endpoints, canary: Callable[[], str]
) -> None:
    from credbroker import IPBanned

    put_exchange(credbroker_vault, endpoints, "binance", canary)
    broker = credbroker_vault.broker()
    broker.call("binance", "fetch_balance")
    client = broker.exchange("binance")
    endpoints.binance.reply_next(
        418, {"code": -1003, "msg": "Way too much request weight used; IP banned until 1796313041306."}
    )
    with pytest.raises(IPBanned):
        broker.call("binance", "fetch_balance")
    assert broker.exchange("binance") is client
