"""Every failure credbroker raises, named for what the caller can do about it.

```
CredbrokerError
├── ConfigError                fix config.yaml / secrets.env (names the key, never the value)
├── MissingExtra               pip install the named extra
├── CredentialError            secret incomplete or malformed (names path, version, field)
├── VaultError
│   ├── VaultUnavailable       retry later: down, sealed, timeout, 5xx
│   │   └── VaultSealed        sealed (503) or not initialised (501)
│   ├── VaultTLSError          fix VAULT_CACERT / the server certificate
│   ├── AuthenticationFailed   token / AppRole invalid or expired and re-login failed
│   ├── PermissionDenied       the policy does not grant this path
│   ├── MountNotFound          the configured KV mount does not exist
│   ├── SecretNotFound         nothing stored at this path
│   ├── SecretDeleted          latest version soft-deleted or destroyed
│   └── WriteConflict          check-and-set lost: someone else wrote first
└── UpstreamError              an exchange or LLM refused a call
    ├── UpstreamAuthError      the service rejected the credentials
    │   └── CredentialsRotated a non-retryable call failed because the key rotated
    ├── RateLimited            slow down; ``retry_after`` seconds when known
    ├── QuotaExhausted         billing / quota; retrying will not help
    ├── IPBanned               the service banned this IP (Binance 418)
    ├── ClockSkew              request timestamp outside the service's window
    └── UpstreamUnavailable    network failure or timeout reaching the service; retry later
```

No message ever contains a secret value: they carry the path, version and field name.
Third-party errors stay chained as ``__cause__``.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AuthenticationFailed",
    "ClockSkew",
    "ConfigError",
    "CredbrokerError",
    "CredentialError",
    "CredentialsRotated",
    "IPBanned",
    "MissingExtra",
    "MountNotFound",
    "PermissionDenied",
    "QuotaExhausted",
    "RateLimited",
    "SecretDeleted",
    "SecretNotFound",
    "UpstreamAuthError",
    "UpstreamError",
    "UpstreamUnavailable",
    "VaultError",
    "VaultSealed",
    "VaultTLSError",
    "VaultUnavailable",
    "WriteConflict",
]


class CredbrokerError(Exception):
    """Base class of every error credbroker raises."""

    #: True when the same call may succeed later without anyone changing anything.
    retryable: ClassVar[bool] = False
    #: Process exit code the CLI uses for this error.
    exit_code: ClassVar[int] = 1


class ConfigError(CredbrokerError):
    """config.yaml, secrets.env or the environment is wrong. Fix the named key."""

    exit_code = 2


class MissingExtra(CredbrokerError):
    """An optional dependency is not installed. The message names the pip command."""

    exit_code = 2

    def __init__(self, extra: str, package: str) -> None:
        self.extra = extra
        self.package = package
        super().__init__(
            f"{package} is not installed; run: pip install 'credbroker[{extra}]' (or pip install {package})"
        )


class CredentialError(CredbrokerError):
    """A secret is incomplete or malformed. Fix the secret in Vault."""

    exit_code = 3

    def __init__(self, message: str, *, path: str = "", version: int | None = None, field: str | None = None) -> None:
        self.path = path
        self.version = version
        self.field = field
        super().__init__(message)


class VaultError(CredbrokerError):
    """Vault refused or failed a request."""

    exit_code = 4

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class VaultUnavailable(VaultError):
    """Vault is down, sealed, slow or failing. Retry later."""

    retryable = True
    exit_code = 5


class VaultSealed(VaultUnavailable):
    """Vault is sealed (503) or not initialised (501). An operator must unseal it."""


class VaultTLSError(VaultError):
    """The TLS handshake with Vault failed. Fix VAULT_CACERT or the server certificate."""


class AuthenticationFailed(VaultError):
    """The Vault identity is invalid or expired, and logging in again failed."""

    exit_code = 6


class PermissionDenied(VaultError):
    """The Vault policy does not grant this path. Fix the policy."""

    exit_code = 6


class MountNotFound(VaultError):
    """The configured KV mount does not exist. Fix ``vault.kv_mount``."""


class SecretNotFound(VaultError):
    """Nothing is stored at this path. Write the secret or fix the configured path."""


class SecretDeleted(VaultError):
    """The latest version was soft-deleted or destroyed. credbroker never falls back to an older one."""

    def __init__(self, message: str, *, path: str, version: int, deletion_time: str, destroyed: bool) -> None:
        self.version = version
        self.deletion_time = deletion_time
        self.destroyed = destroyed
        super().__init__(message, path=path)


class WriteConflict(VaultError):
    """A check-and-set write lost: someone wrote a newer version first. Re-read and decide."""

    exit_code = 7


class UpstreamError(CredbrokerError):
    """An exchange or LLM provider refused a call. ``service`` names the credential."""

    exit_code = 8

    def __init__(self, message: str, *, service: str, status: int | None = None) -> None:
        self.service = service
        self.status = status
        super().__init__(message)


class UpstreamAuthError(UpstreamError):
    """The service rejected the credentials (bad key, signature or passphrase)."""


class CredentialsRotated(UpstreamAuthError):
    """A call that must not be retried (an order) failed because the credentials rotated meanwhile.

    The broker already holds the new client; the caller decides whether to resend.
    """

    def __init__(self, message: str, *, service: str, old_version: int, new_version: int) -> None:
        self.old_version = old_version
        self.new_version = new_version
        super().__init__(message, service=service)


class RateLimited(UpstreamError):
    """Too many requests. Wait ``retry_after`` seconds (None when the service did not say)."""

    retryable = True

    def __init__(
        self, message: str, *, service: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, service=service, status=status)


class QuotaExhausted(UpstreamError):
    """The account ran out of quota or credit. Retrying will not help; fix billing."""


class IPBanned(UpstreamError):
    """The service banned this IP address (Binance answers 418). Stop calling until the ban lifts."""


class ClockSkew(UpstreamError):
    """The request timestamp fell outside the service's window. Sync the clock (NTP); not an auth problem."""

    retryable = True


class UpstreamUnavailable(UpstreamError):
    """The service could not be reached or timed out. Retry later."""

    retryable = True
