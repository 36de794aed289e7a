"""News and social clients: built from Vault like the others; without their extra, a clear pip command."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import pytest

from credbroker import ApiManager, Broker, MissingExtra, parse_config
from credbroker.testing.plugin import VaultSandbox


def news_social_broker(vault: VaultSandbox) -> Broker:
    data = vault.config_dict()
    data["news"] = {"newsapi": {"secret": f"{vault.prefix}/news/newsapi"}}
    data["social"] = {"twitter": {"secret": f"{vault.prefix}/social/twitter"}}
    return Broker(parse_config(data, environ={}))


@pytest.mark.skipif(importlib.util.find_spec("newsapi") is not None, reason="the news extra is installed here")
def test_search_news_without_the_news_extra_names_the_pip_command(
    credbroker_vault: VaultSandbox, canary: Callable[[], str]
) -> None:
    credbroker_vault.put_raw(f"{credbroker_vault.prefix}/news/newsapi", {"api_key": canary()})
    with news_social_broker(credbroker_vault) as broker, pytest.raises(MissingExtra) as info:
        broker.search_news("bitcoin")
    assert "pip install 'credbroker[news]'" in str(info.value)


@pytest.mark.skipif(importlib.util.find_spec("tweepy") is not None, reason="the social extra is installed here")
def test_search_tweets_without_the_social_extra_names_the_pip_command(
    credbroker_vault: VaultSandbox, canary: Callable[[], str]
) -> None:
    credbroker_vault.put_raw(f"{credbroker_vault.prefix}/social/twitter", {"bearer_token": canary()})
    with news_social_broker(credbroker_vault) as broker, pytest.raises(MissingExtra) as info:
        broker.search_tweets("$BTC")
    assert "pip install 'credbroker[social]'" in str(info.value)


def test_news_secret_is_validated_before_the_library_is_needed(
    credbroker_vault: VaultSandbox, canary: Callable[[], str]
) -> None:
    from credbroker import CredentialError

    credbroker_vault.put_raw(f"{credbroker_vault.prefix}/news/newsapi", {"apikey": canary()})
    with news_social_broker(credbroker_vault) as broker, pytest.raises(CredentialError, match="'api_key'"):
        broker.service("newsapi")


@pytest.mark.skipif(importlib.util.find_spec("newsapi") is not None, reason="the news extra is installed here")
def test_api_manager_search_news_goes_through_the_broker(
    credbroker_vault: VaultSandbox, canary: Callable[[], str]
) -> None:
    credbroker_vault.put_raw(f"{credbroker_vault.prefix}/news/newsapi", {"api_key": canary()})
    broker = news_social_broker(credbroker_vault)
    with ApiManager({}, broker=broker) as api, pytest.raises(MissingExtra, match="credbroker\\[news\\]"):
        api.search_news("eth")
