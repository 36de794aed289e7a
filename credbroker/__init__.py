"""credbroker: a Vault-backed credential broker for automated trading systems.

Exchange and LLM keys live in HashiCorp Vault or OpenBao (KV v2). A process bootstraps only its own Vault
identity from ``config/secrets.env``; the ``Broker`` reads and caches secrets, builds authenticated ccxt and
OpenAI clients on demand, and rebuilds them when ops rotate a key, without a restart.
"""

from credbroker._broker import Broker, CredentialStatus
from credbroker._config import (
    Config,
    ExchangeConfig,
    LLMConfig,
    ServiceConfig,
    VaultConfig,
    VaultIdentity,
    load_config,
    parse_config,
)
from credbroker._facade import ApiManager
from credbroker._factories import ClientFactory, register_factory
from credbroker._log import configure_logging, scrub_record
from credbroker._redact import fingerprint
from credbroker._rotate import RotationResult, rotate_secret
from credbroker._secret import Secret
from credbroker._vault import SecretMetadata, VaultSession
from credbroker.exceptions import (
    AuthenticationFailed,
    ClockSkew,
    ConfigError,
    CredbrokerError,
    CredentialError,
    CredentialsRotated,
    IPBanned,
    MissingExtra,
    MountNotFound,
    PermissionDenied,
    QuotaExhausted,
    RateLimited,
    SecretDeleted,
    SecretNotFound,
    UpstreamAuthError,
    UpstreamError,
    UpstreamUnavailable,
    VaultError,
    VaultSealed,
    VaultTLSError,
    VaultUnavailable,
    WriteConflict,
)


def __getattr__(name: str) -> str:
    # importlib.metadata costs ~40 ms at import; look the version up only when asked.
    if name == "__version__":
        from importlib import metadata

        try:
            return metadata.version("credbroker")
        except metadata.PackageNotFoundError:  # pragma: no cover - a source tree without install
            return "0.0.0+unknown"
    raise AttributeError(f"module 'credbroker' has no attribute {name!r}")


__all__ = [
    "ApiManager",
    "AuthenticationFailed",
    "Broker",
    "ClientFactory",
    "ClockSkew",
    "Config",
    "ConfigError",
    "CredbrokerError",
    "CredentialError",
    "CredentialStatus",
    "CredentialsRotated",
    "ExchangeConfig",
    "IPBanned",
    "LLMConfig",
    "MissingExtra",
    "MountNotFound",
    "PermissionDenied",
    "QuotaExhausted",
    "RateLimited",
    "RotationResult",
    "Secret",
    "SecretDeleted",
    "SecretMetadata",
    "SecretNotFound",
    "ServiceConfig",
    "UpstreamAuthError",
    "UpstreamError",
    "UpstreamUnavailable",
    "VaultConfig",
    "VaultError",
    "VaultIdentity",
    "VaultSealed",
    "VaultSession",
    "VaultTLSError",
    "VaultUnavailable",
    "WriteConflict",
    "__version__",
    "configure_logging",
    "fingerprint",
    "load_config",
    "parse_config",
    "register_factory",
    "rotate_secret",
    "scrub_record",
]
