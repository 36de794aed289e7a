"""Broker behaviour with an in-memory Vault double: swaps, refusals, scrubbing, lifecycle."""

from __future__ import annotations

import asyncio
import traceback
from typing import Any

import pytest

from credbroker import (
    ApiManager,
    Broker,
    ConfigError,
    CredbrokerError,
    CredentialError,
    UpstreamAuthError,
    parse_config,
    register_factory,
)
from credbroker._factories import CcxtFactory

KEY1, SECRET1 = "key-one-AAAAAAAA", "secret-one-AAAAAAAA"
KEY2, SECRET2 = "key-two-BBBBBBBB", "secret-two-BBBBBBBB"


def make_broker(session: Any, config_dict: dict[str, Any], token_env: dict[str, str]) -> Broker:
    return Broker(parse_config(config_dict, environ=token_env), session=session, watch=False)


@pytest.fixture
def broker(session: Any, config_dict: dict[str, Any], token_env: dict[str, str]) -> Any:
    session.put("trading/exchanges/binance", {"apiKey": KEY1, "secret": SECRET1})
    b = make_broker(session, config_dict, token_env)
    yield b
    b.close()


def test_a_new_version_swaps_in_a_new_client(broker: Broker, session: Any) -> None:
    old = broker.exchange("binance")
    session.put("trading/exchanges/binance", {"apiKey": KEY2, "secret": SECRET2})
    assert broker.refresh_path("trading/exchanges/binance") == 2
    assert broker.exchange("binance") is not old
    assert broker.exchange("binance").apiKey == KEY2


@pytest.mark.parametrize(
    "bad",
    [
        {"apiKey": KEY2, "secret": SECRET2, "uid": 12345},  # not a string
        {"apiKey": KEY2, "secret": SECRET2 + "\n"},  # stray newline
        {"apiKey": "key-\u200bzero-width", "secret": SECRET2},  # invisible character from a paste
        {"apiKey": KEY2},  # missing field
    ],
)
def test_a_bad_new_version_keeps_the_previous_client(broker: Broker, session: Any, bad: dict[str, Any]) -> None:
    old = broker.exchange("binance")
    session.put("trading/exchanges/binance", bad)
    broker.refresh_path("trading/exchanges/binance")
    assert broker.exchange("binance") is old
    assert broker.known_version("trading/exchanges/binance") == 2


def test_a_refused_version_is_not_rebuilt_on_every_poll(broker: Broker, session: Any, capture_logs: list[str]) -> None:
    broker.exchange("binance")
    session.put("trading/exchanges/binance", {"apiKey": KEY2})
    for _ in range(3):
        broker.refresh_path("trading/exchanges/binance")
    assert sum("cannot be used" in line for line in capture_logs) == 1


def test_a_library_error_while_building_is_a_credential_error_and_keeps_the_old_client(
    broker: Broker, session: Any
) -> None:
    class Exploding(CcxtFactory):
        def build(self, secret: Any, spec: Any, previous: Any = None) -> Any:
            if secret.version == 2:
                raise ValueError(f"library choked on {secret.reveal('secret')}")
            return super().build(secret, spec, previous)

    register_factory(Exploding(is_async=False), replace=True)
    old = broker.exchange("binance")
    session.put("trading/exchanges/binance", {"apiKey": KEY2, "secret": SECRET2})
    broker.refresh_path("trading/exchanges/binance")
    assert broker.exchange("binance") is old


def test_a_cold_build_failure_is_a_credential_error_without_the_value(
    session: Any, config_dict: dict[str, Any], token_env: dict[str, str]
) -> None:
    class Exploding(CcxtFactory):
        def build(self, secret: Any, spec: Any, previous: Any = None) -> Any:
            raise ValueError(f"library choked on {secret.reveal('secret')}")

    register_factory(Exploding(is_async=False), replace=True)
    session.put("trading/exchanges/binance", {"apiKey": KEY1, "secret": SECRET1})
    with make_broker(session, config_dict, token_env) as b, pytest.raises(CredentialError) as info:
        b.exchange("binance")
    assert "ValueError" in str(info.value)
    assert SECRET1 not in "".join(traceback.format_exception(info.value))


def test_an_error_echoing_the_key_is_scrubbed_along_its_whole_chain(broker: Broker) -> None:
    import ccxt

    def echo(client: Any) -> Any:
        raise ccxt.AuthenticationError(f'binance {{"code":-2015,"msg":"Invalid API-key {client.apiKey}"}}')

    with pytest.raises(UpstreamAuthError) as info:
        broker._invoke("ccxt", "binance", echo, retry=False, what="fetch_balance")
    assert KEY1 not in "".join(traceback.format_exception(info.value))


def test_business_errors_pass_through_as_ccxt_errors_but_scrubbed(broker: Broker) -> None:
    import ccxt

    def echo(client: Any) -> Any:
        raise ccxt.BadRequest(f"binance illegal characters in apiKey={client.apiKey}")

    with pytest.raises(ccxt.BadRequest) as info:
        broker._invoke("ccxt", "binance", echo, retry=False, what="create_order")
    assert KEY1 not in str(info.value)


def test_calls_after_close_say_the_broker_is_closed(broker: Broker) -> None:
    broker.exchange("binance")
    broker.close()
    broker.close()  # a second close is harmless
    with pytest.raises(CredbrokerError, match="closed"):
        broker.exchange("kucoin")


def test_async_llm_outside_a_coroutine_says_why(broker: Broker, session: Any) -> None:
    session.put("trading/llm/openai", {"api_key": "sk-unit-AAAAAAAA"})
    with pytest.raises(CredbrokerError, match="must be called from a coroutine"):
        broker.async_llm("openai")


def test_async_clients_are_per_event_loop_and_closed_by_aclose(broker: Broker, session: Any) -> None:
    session.put("trading/llm/openai", {"api_key": "sk-unit-AAAAAAAA"})

    async def get() -> Any:
        return broker.async_llm("openai"), await broker.async_exchange("binance")

    first = asyncio.run(get())
    second = asyncio.run(get())
    assert first[0] is not second[0]
    assert first[1] is not second[1]

    async def closing() -> Any:
        client = broker.async_llm("openai")
        await broker.aclose()
        return client

    assert asyncio.run(closing()).is_closed()


def test_api_manager_without_a_mapping_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"parsed config\.yaml mapping"):
        ApiManager(None)  # type: ignore[arg-type]
