"""Client factories, registered by kind. They turn one ``Secret`` into one client and know nothing of Vault.

A new client kind is a new ``ClientFactory`` passed to ``register_factory``; the broker is not edited.
Optional libraries are imported inside the factory, and a missing one raises ``MissingExtra`` naming the
pip extra.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from credbroker._config import ExchangeConfig, LLMConfig, ServiceConfig
from credbroker._secret import Secret
from credbroker._validate import check_fields, check_problems, check_required
from credbroker.exceptions import ConfigError, CredentialError, MissingExtra

__all__ = ["ClientFactory", "factory_for", "register_factory", "registered_kinds"]

Spec = ExchangeConfig | LLMConfig | ServiceConfig

# Every credential name ccxt knows; only these are passed to the ccxt constructor.
CCXT_CREDENTIAL_FIELDS = (
    "apiKey",
    "secret",
    "password",
    "uid",
    "login",
    "twofa",
    "privateKey",
    "walletAddress",
    "token",
    "accountId",
)


@runtime_checkable
class ClientFactory(Protocol):
    """Builds, checks and closes one kind of client. ``is_async`` says whether ``aclose`` must be awaited."""

    kind: str
    is_async: bool

    def validate(self, secret: Secret, spec: Any) -> None:
        """Raise CredentialError if ``secret`` cannot make a working client. No network."""

    def build(self, secret: Secret, spec: Any, previous: Any | None = None) -> Any:
        """Return a new client. ``previous`` is the client being replaced, to carry over non-secret state."""

    def close(self, client: Any) -> None:
        """Release a sync client's resources."""

    async def aclose(self, client: Any) -> None:
        """Release an async client's resources, on the loop that used it."""


_registry: dict[str, ClientFactory] = {}
_registry_lock = threading.Lock()


def register_factory(factory: ClientFactory, *, replace: bool = False) -> None:
    """Make ``factory`` the builder for ``factory.kind``."""
    with _registry_lock:
        if factory.kind in _registry and not replace:
            raise ValueError(f"a factory for kind {factory.kind!r} is already registered (pass replace=True)")
        _registry[factory.kind] = factory


def factory_for(kind: str) -> ClientFactory:
    try:
        return _registry[kind]
    except KeyError:
        raise ConfigError(f"no client factory registered for kind {kind!r}; known: {registered_kinds()}") from None


def registered_kinds() -> list[str]:
    return sorted(_registry)


# ---------------------------------------------------------------- ccxt


def _ccxt_module(is_async: bool) -> Any:
    try:
        if is_async:
            import ccxt.async_support as mod
        else:
            import ccxt as mod
    except ImportError as exc:  # pragma: no cover - ccxt is a core dependency
        raise MissingExtra("async" if is_async else "ccxt", "ccxt") from exc
    return mod


@functools.lru_cache(maxsize=256)
def required_credentials(ccxt_id: str) -> tuple[str, ...]:
    """The fields ccxt says this exchange needs (its ``requiredCredentials``)."""
    import ccxt

    cls = getattr(ccxt, ccxt_id, None) if ccxt_id in ccxt.exchanges else None
    if cls is None or not isinstance(cls, type):
        raise ConfigError(
            f"'{ccxt_id}' is not a ccxt exchange id; set exchanges.<name>.ccxt_id to one of ccxt.exchanges"
        )
    return tuple(k for k, needed in cls().requiredCredentials.items() if needed)


class CcxtFactory:
    """ccxt exchanges, sync (``kind='ccxt'``) or ``ccxt.async_support`` (``kind='ccxt_async'``).

    Rate limiting is always on. ``api_base`` rebases every API URL (testnets, proxies, local endpoints);
    ``sandbox`` switches to the exchange's own testnet.
    """

    def __init__(self, *, is_async: bool) -> None:
        self.is_async = is_async
        self.kind = "ccxt_async" if is_async else "ccxt"

    def validate(self, secret: Secret, spec: ExchangeConfig) -> None:
        check_problems(secret.path, secret.version, secret.problems)
        fields = secret.reveal_all()
        where = f"{spec.ccxt_id} (ccxt requiredCredentials)"
        check_required(
            fields,
            path=secret.path,
            version=secret.version,
            required=required_credentials(spec.ccxt_id),
            what=where,
        )
        for alias in ("passphrase",):
            if alias in fields:
                raise CredentialError(
                    f"{secret.path} (version {secret.version}) stores '{alias}'; credbroker uses ccxt's name "
                    f"'password' for the passphrase and takes no aliases: rename the field",
                    path=secret.path,
                    version=secret.version,
                    field=alias,
                )
        check_fields(
            fields,
            path=secret.path,
            version=secret.version,
            names=[f for f in CCXT_CREDENTIAL_FIELDS if f != "privateKey"],
        )

    def build(self, secret: Secret, spec: ExchangeConfig, previous: Any | None = None) -> Any:
        self.validate(secret, spec)
        cls = getattr(_ccxt_module(self.is_async), spec.ccxt_id)
        fields = secret.reveal_all()
        config: dict[str, Any] = {k: fields[k] for k in CCXT_CREDENTIAL_FIELDS if k in fields}
        config["enableRateLimit"] = True
        config["timeout"] = int(spec.timeout_s * 1000)
        # ccxt deep-merges and later mutates options; give each client its own copy.
        import copy

        config["options"] = copy.deepcopy(dict(spec.options))
        client = cls(config)
        if spec.sandbox:
            client.set_sandbox_mode(True)
        if spec.api_base:
            from credbroker._urls import rebase_urls

            client.urls["api"] = rebase_urls(client.urls["api"], spec.api_base)
        if not self.is_async:
            _widen_connection_pool(client)
        markets = getattr(previous, "markets", None)
        if markets:
            # Markets are public data: a rotated client need not download them again.
            client.set_markets(markets, getattr(previous, "currencies", None))
        return client

    def close(self, client: Any) -> None:
        session = getattr(client, "session", None)
        if session is not None and hasattr(session, "close"):
            session.close()

    async def aclose(self, client: Any) -> None:
        result = client.close()
        if hasattr(result, "__await__"):
            await result


def _widen_connection_pool(client: Any) -> None:
    """Let many threads share one sync client without urllib3 discarding connections (default pool: 10)."""
    session = getattr(client, "session", None)
    if session is None or not hasattr(session, "mount"):
        return
    from requests.adapters import HTTPAdapter

    for prefix in ("https://", "http://"):
        session.mount(prefix, HTTPAdapter(pool_connections=8, pool_maxsize=64))


# ---------------------------------------------------------------- OpenAI


class OpenAIFactory:
    """OpenAI and OpenAI-compatible clients (``openai.OpenAI`` / ``openai.AsyncOpenAI``).

    The secret holds ``api_key`` and optionally ``base_url``, which wins over the config's ``base_url``.
    """

    def __init__(self, *, is_async: bool) -> None:
        self.is_async = is_async
        self.kind = "openai_async" if is_async else "openai"

    def validate(self, secret: Secret, spec: LLMConfig) -> None:
        check_problems(secret.path, secret.version, secret.problems)
        fields = secret.reveal_all()
        check_required(fields, path=secret.path, version=secret.version, required=("api_key",), what="an LLM client")
        # An empty or whitespace-bearing key would surface as a confusing connection error in httpx.
        check_fields(fields, path=secret.path, version=secret.version, names=("api_key", "base_url"))
        base = fields.get("base_url")
        if base is not None and not base.startswith(("http://", "https://")):
            raise CredentialError(
                f"field 'base_url' of {secret.path} (version {secret.version}) must be an http(s) URL",
                path=secret.path,
                version=secret.version,
                field="base_url",
            )

    def build(self, secret: Secret, spec: LLMConfig, previous: Any | None = None) -> Any:
        self.validate(secret, spec)
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - openai is a core dependency
            raise MissingExtra("llm", "openai") from exc
        fields = secret.reveal_all()
        cls = openai.AsyncOpenAI if self.is_async else openai.OpenAI
        return cls(
            api_key=fields["api_key"],
            base_url=fields.get("base_url") or spec.base_url,
            timeout=spec.timeout_s,
            max_retries=spec.max_retries,
        )

    def close(self, client: Any) -> None:
        client.close()

    async def aclose(self, client: Any) -> None:
        result = client.close()
        if hasattr(result, "__await__"):
            await result


# ---------------------------------------------------------------- news and social


class _TokenServiceFactory:
    """A sync API client built from one token field, from an optional library (``extra``)."""

    kind: str
    field: str
    label: str
    extra: str
    package: str
    session_attr: str
    is_async = False

    def validate(self, secret: Secret, spec: ServiceConfig) -> None:
        check_problems(secret.path, secret.version, secret.problems)
        fields = secret.reveal_all()
        check_required(fields, path=secret.path, version=secret.version, required=(self.field,), what=self.label)
        check_fields(fields, path=secret.path, version=secret.version, names=(self.field,))

    def build(self, secret: Secret, spec: ServiceConfig, previous: Any | None = None) -> Any:
        self.validate(secret, spec)
        try:
            return self._make(secret.reveal(self.field))
        except ImportError as exc:
            raise MissingExtra(self.extra, self.package) from exc

    def _make(self, token: str) -> Any:
        raise NotImplementedError

    def close(self, client: Any) -> None:
        session = getattr(client, self.session_attr, None)
        if session is not None and hasattr(session, "close"):
            session.close()

    async def aclose(self, client: Any) -> None:
        self.close(client)


class NewsAPIFactory(_TokenServiceFactory):
    """NewsAPI (``newsapi-python``); the secret holds ``api_key``. Extra: ``credbroker[news]``."""

    kind, field, label, extra, package, session_attr = (
        "newsapi",
        "api_key",
        "NewsAPI",
        "news",
        "newsapi-python",
        "request_method",
    )

    def _make(self, token: str) -> Any:
        from newsapi import NewsApiClient

        return NewsApiClient(api_key=token)


class TwitterFactory(_TokenServiceFactory):
    """X/Twitter API v2 (``tweepy.Client``); the secret holds ``bearer_token``. Extra: ``credbroker[social]``."""

    kind, field, label, extra, package, session_attr = (
        "twitter",
        "bearer_token",
        "X/Twitter",
        "social",
        "tweepy",
        "session",
    )

    def _make(self, token: str) -> Any:
        import tweepy

        return tweepy.Client(bearer_token=token, wait_on_rate_limit=False)


def _register_builtins() -> None:
    for factory in (
        CcxtFactory(is_async=False),
        CcxtFactory(is_async=True),
        OpenAIFactory(is_async=False),
        OpenAIFactory(is_async=True),
        NewsAPIFactory(),
        TwitterFactory(),
    ):
        register_factory(factory, replace=True)


_register_builtins()


def kind_for(spec: Spec, *, is_async: bool) -> str:
    """The factory kind that serves ``spec``."""
    if isinstance(spec, ExchangeConfig):
        return "ccxt_async" if is_async else "ccxt"
    if isinstance(spec, LLMConfig):
        return "openai_async" if is_async else "openai"
    return spec.kind if spec.kind in _registry else {"news": "newsapi", "social": "twitter"}.get(spec.kind, spec.kind)


def validate_fields(spec: Spec, fields: Mapping[str, str], path: str) -> None:
    """Run the checks ``build`` would, on fields not yet stored (``rotate`` uses this before writing)."""
    secret = Secret(path, 0, fields)
    factory_for(kind_for(spec, is_async=False)).validate(secret, spec)
