"""``ApiManager``: the original spec's interface, kept so code written against it keeps working."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from credbroker._broker import Broker
from credbroker._config import parse_config
from credbroker.exceptions import ConfigError

__all__ = ["ApiManager"]


class ApiManager:
    """A thin facade over ``Broker`` with the original method names.

    ``config`` is the parsed config.yaml mapping (``paths``, ``vault``, ``exchanges``, ``llm``...). The Vault
    identity is bootstrapped from the environment and ``paths.secrets_env_path``, as for ``Broker``.
    """

    def __init__(self, config: Mapping[str, Any], *, broker: Broker | None = None) -> None:
        if broker is None and not isinstance(config, Mapping):
            raise ConfigError(
                f"ApiManager needs the parsed config.yaml mapping, got {type(config).__name__}; "
                "pass yaml.safe_load(open('config/config.yaml'))"
            )
        self._broker = broker if broker is not None else Broker(parse_config(dict(config)))

    @property
    def broker(self) -> Broker:
        return self._broker

    def get_exchange_connection(self, exchange_name: str) -> Any:
        """Return the authenticated ccxt client for ``exchange_name``."""
        return self._broker.exchange(exchange_name)

    def query_llm(
        self,
        prompt: str,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        provider: str = "openai",
    ) -> str:
        """Send ``prompt`` to the LLM and return the reply text."""
        return self._broker.query_llm(
            prompt, model=model, max_tokens=max_tokens, temperature=temperature, provider=provider
        )

    def search_news(self, query: str, **kwargs: Any) -> Any:
        """Search news through the configured NewsAPI credential."""
        return self._broker.search_news(query, **kwargs)

    def search_tweets(self, query: str, **kwargs: Any) -> Any:
        """Search recent posts through the configured X/Twitter credential."""
        return self._broker.search_tweets(query, **kwargs)

    def close(self) -> None:
        self._broker.close()

    def __enter__(self) -> ApiManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
