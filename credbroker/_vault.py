"""``VaultSession``: one authenticated hvac client, its token's life, and KV v2 calls with error mapping.

Nothing from hvac or requests leaves this module: ``_mapped`` translates every failure into credbroker's
exception tree, keeping the original as ``__cause__``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any, TypeVar

from credbroker._config import VaultConfig, VaultIdentity
from credbroker._log import logger
from credbroker._redact import scrubber
from credbroker._secret import Secret
from credbroker.exceptions import (
    AuthenticationFailed,
    CredbrokerError,
    CredentialError,
    MountNotFound,
    PermissionDenied,
    SecretDeleted,
    SecretNotFound,
    VaultError,
    VaultSealed,
    VaultTLSError,
    VaultUnavailable,
    WriteConflict,
)

if TYPE_CHECKING:
    import hvac

__all__ = ["SecretMetadata", "VaultSession"]

T = TypeVar("T")

# Renew when this fraction of the token's TTL is used up; log in again when renewal can no longer extend it.
_RENEW_AT_FRACTION = 0.5
_MIN_USEFUL_TTL_S = 10.0


@dataclass(frozen=True, slots=True)
class SecretMetadata:
    """KV v2 metadata of one secret: enough to notice a rotation without reading the values."""

    path: str
    current_version: int
    updated_time: str
    deletion_time: str
    destroyed: bool


def _status_error(exc: Exception) -> type[VaultError] | None:
    """The table from hvac's exception classes to ours, for the statuses that need no extra look-up."""
    import hvac.exceptions as he

    table: list[tuple[type[Exception], type[VaultError]]] = [
        (he.VaultNotInitialized, VaultSealed),
        (he.VaultDown, VaultUnavailable),
        (he.BadGateway, VaultUnavailable),
        (he.InternalServerError, VaultUnavailable),
        (he.RateLimitExceeded, VaultUnavailable),
        (he.UnexpectedError, VaultUnavailable),
        (he.Unauthorized, AuthenticationFailed),
    ]
    for hvac_cls, ours in table:
        if isinstance(exc, hvac_cls):
            return ours
    return None


class VaultSession:
    """An authenticated session with Vault (token or AppRole), renewing and re-logging in as needed.

    Safe to share between threads. Login and renewal are serialised by one lock; reads run concurrently on the
    shared requests connection pool. Every call is bounded by ``VaultConfig.timeout_s``.
    """

    def __init__(self, vault: VaultConfig, identity: VaultIdentity) -> None:
        self._cfg = vault
        self._identity = identity
        self._auth_lock = threading.Lock()
        self._client: hvac.Client | None = None
        self._renew_at = 0.0
        self._expires_at = float("inf")
        self._renewable = False
        self._warned_no_relogin = False
        self._closed = False
        self.requests = 0  # every HTTP request sent, for status and tests; not exact under races

    # ---------------------------------------------------------------- lifecycle

    @property
    def addr(self) -> str:
        return self._identity.addr

    @property
    def mount(self) -> str:
        return self._cfg.kv_mount

    def _new_client(self) -> hvac.Client:
        import hvac

        verify: str | bool = self._identity.cacert or True
        return hvac.Client(
            url=self._identity.addr,
            verify=verify,
            timeout=self._cfg.timeout_s,
            namespace=self._identity.namespace,
        )

    def close(self) -> None:
        """Close the HTTP connection pool. The token is left to expire on its own TTL."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            client.adapter.close()

    def __enter__(self) -> VaultSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- authentication

    def _can_relogin(self) -> bool:
        return self._cfg.auth == "approle"

    def login(self) -> None:
        """Log in (AppRole) or adopt the token, and learn its TTL. POST /v1/auth/{approle}/login."""
        with self._auth_lock:
            self._login_locked()

    def _login_locked(self) -> None:
        if self._closed:
            raise VaultError("the Vault session is closed")
        client = self._client or self._new_client()
        ident = self._identity
        if self._cfg.auth == "approle":
            try:
                with self._mapped(f"auth/{self._cfg.approle_mount}/login", relogin=False):
                    self.requests += 1
                    resp = client.auth.approle.login(
                        role_id=ident.role_id,
                        secret_id=ident.secret_id,
                        mount_point=self._cfg.approle_mount,
                        use_token=True,
                    )
            except (AuthenticationFailed, PermissionDenied, MountNotFound, SecretNotFound) as exc:
                # Never loop here: every login attempt spends one of the secret_id's uses.
                raise AuthenticationFailed(
                    f"AppRole login at {ident.addr}/v1/auth/{self._cfg.approle_mount}/login failed: "
                    f"{exc}. The role_id came from {ident.source_of('VAULT_ROLE_ID')} and the secret_id from "
                    f"{ident.source_of('VAULT_SECRET_ID')}; the secret_id may be expired, used up, or for "
                    "another role or auth mount. Issue a new secret_id."
                ) from exc
            auth = resp["auth"]
            self._set_lease(float(auth.get("lease_duration") or 0), bool(auth.get("renewable")))
        else:
            client.token = ident.token
            try:
                with self._mapped("auth/token/lookup-self", relogin=False):
                    self.requests += 1
                    data = client.auth.token.lookup_self()["data"]
            except (AuthenticationFailed, PermissionDenied) as exc:
                raise AuthenticationFailed(
                    f"Vault token from {ident.source_of('VAULT_TOKEN')} was refused by {ident.addr}: it is "
                    "invalid, revoked or expired. Set a fresh VAULT_TOKEN."
                ) from exc
            ttl = float(data.get("ttl") or 0)
            self._set_lease(ttl, bool(data.get("renewable")))
            if not self._renewable:
                logger.info(
                    "Vault token is not renewable ({}); credbroker will not call renew-self",
                    "no expiry" if ttl == 0 else f"expires in {ttl:.0f}s",
                )
        scrubber.add(v for v in (client.token, ident.secret_id, ident.token) if v)
        self._client = client

    def _set_lease(self, ttl: float, renewable: bool) -> None:
        now = time.monotonic()
        self._renewable = renewable
        if ttl <= 0:  # root and other non-expiring tokens
            self._renew_at = self._expires_at = float("inf")
        else:
            self._expires_at = now + ttl
            self._renew_at = now + ttl * _RENEW_AT_FRACTION

    def _ensure_token(self) -> hvac.Client:
        client = self._client
        if client is not None and time.monotonic() < self._renew_at:
            return client
        with self._auth_lock:
            if self._client is None:
                self._login_locked()
            elif time.monotonic() >= self._renew_at:
                self._refresh_token_locked()
            assert self._client is not None
            return self._client

    def _refresh_token_locked(self) -> None:
        assert self._client is not None
        remaining = self._expires_at - time.monotonic()
        if self._renewable:
            try:
                with self._mapped("auth/token/renew-self", relogin=False):
                    self.requests += 1
                    auth = self._client.auth.token.renew_self()["auth"]
                ttl = float(auth.get("lease_duration") or 0)
                if ttl >= _MIN_USEFUL_TTL_S or not self._can_relogin():
                    self._set_lease(ttl, bool(auth.get("renewable")))
                    logger.debug("Vault token renewed for {:.0f}s", ttl)
                    return
                logger.info("Vault token is near its max TTL ({:.0f}s left); logging in again", ttl)
            except VaultUnavailable:
                raise
            except VaultError as exc:
                if not self._can_relogin():
                    raise
                logger.info("Vault token renewal refused ({}); logging in again", type(exc).__name__)
            self._login_locked()
            return
        if self._can_relogin():
            self._login_locked()
            return
        if not self._warned_no_relogin:
            self._warned_no_relogin = True
            logger.warning(
                "Vault token (from {}) is not renewable and expires in {:.0f}s; credbroker cannot log in "
                "again with auth 'token'. Use AppRole, or give it a renewable token.",
                self._identity.source_of("VAULT_TOKEN"),
                max(remaining, 0),
            )
        # Nothing to do until it expires; don't look again on every call.
        self._renew_at = self._expires_at if remaining > 0 else float("inf")

    def _token_is_dead(self) -> bool:
        """Vault answers 403 for a dead token and for a policy denial alike; look the token up to tell."""
        client = self._client
        if client is None:
            return True
        import hvac.exceptions as he

        try:
            self.requests += 1
            client.auth.token.lookup_self()
        except he.Forbidden:
            return True
        except Exception:
            return False
        return False

    # ---------------------------------------------------------------- error mapping

    @contextmanager
    def _mapped(self, path: str, *, relogin: bool = True) -> Iterator[None]:
        import hvac.exceptions as he
        import requests

        addr = self._identity.addr
        try:
            yield
        except CredbrokerError:
            raise
        except requests.exceptions.SSLError as exc:
            raise VaultTLSError(
                f"TLS verification of {addr} failed; check VAULT_CACERT "
                f"(from {self._identity.source_of('VAULT_CACERT')}) and the server certificate",
                path=path,
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise VaultUnavailable(
                f"Vault at {addr} did not answer within {self._cfg.timeout_s:g}s ({path})", path=path
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise VaultUnavailable(f"cannot connect to Vault at {addr} ({path})", path=path) from exc
        except requests.exceptions.RequestException as exc:
            raise VaultUnavailable(f"request to Vault at {addr} failed ({path}): {type(exc).__name__}") from exc
        except he.VaultDown as exc:
            if "sealed" in str(exc).lower():
                raise VaultSealed(
                    f"Vault at {addr} is sealed; {path} cannot be served until an operator unseals it",
                    path=path,
                ) from exc
            raise VaultUnavailable(f"Vault at {addr} is unavailable (503) ({path})", path=path) from exc
        except he.VaultNotInitialized as exc:
            raise VaultSealed(
                f"Vault at {addr} is not initialised (sealed); run 'bao operator init' and unseal it", path=path
            ) from exc
        except he.Forbidden as exc:
            raise PermissionDenied(
                f"Vault policy does not grant access to {path}; grant it in the policy of this identity",
                path=path,
            ) from exc
        except he.VaultError as exc:
            cls2 = _status_error(exc)
            if cls2 is None:
                raise
            raise cls2(f"Vault at {addr} answered {type(exc).__name__} for {path}", path=path) from exc

    def _call(self, path: str, fn: Callable[[hvac.Client], T]) -> T:
        """Run one Vault request, re-logging in once if a 403 turns out to be a dead token."""
        client = self._ensure_token()
        try:
            with self._mapped(path):
                self.requests += 1
                return fn(client)
        except PermissionDenied:
            if not self._can_relogin() or not self._token_is_dead():
                raise
        logger.info("Vault token was revoked or expired early; logging in again")
        with self._auth_lock:
            self._login_locked()
        assert self._client is not None
        with self._mapped(path):
            self.requests += 1
            return fn(self._client)

    def _explain_forbidden(self, exc: PermissionDenied, kv_path: str, api_path: str) -> VaultError:
        """A 403 on a KV path is either a policy denial or a mount that does not exist; tell which."""
        client = self._client
        mount = self._cfg.kv_mount
        if client is not None:
            import hvac.exceptions as he

            try:
                self.requests += 1
                client.adapter.get(f"/v1/sys/internal/ui/mounts/{mount}/{kv_path}")
            except (he.Forbidden, he.InvalidPath):
                return MountNotFound(
                    f"KV mount '{mount}' does not exist at {self.addr} (or this identity's policy grants "
                    f"nothing under it), so '{kv_path}' cannot be read; fix vault.kv_mount",
                    path=api_path,
                )
            except Exception:
                pass
        return PermissionDenied(
            f"Vault policy does not grant read on {api_path}; add it to this identity's policy",
            path=api_path,
        )

    # ---------------------------------------------------------------- KV v2

    def read(self, path: str) -> Secret:
        """Read the latest version of a secret, all fields at once. GET /v1/{mount}/data/{path}.

        Raises SecretNotFound, SecretDeleted, MountNotFound, PermissionDenied or VaultUnavailable.
        """
        mount = self._cfg.kv_mount
        api_path = f"{mount}/data/{path}"
        import hvac.exceptions as he

        def do(client: hvac.Client) -> Any:
            try:
                # Explicit flag: hvac warns when it is left to default, and we handle deletion ourselves.
                return client.secrets.kv.v2.read_secret_version(path, mount_point=mount, raise_on_deleted_version=False)
            except he.InvalidPath as exc:
                if "no handler for route" in str(exc):
                    raise MountNotFound(
                        f"KV mount '{mount}' does not exist at {self.addr}; fix vault.kv_mount (path {path})",
                        path=api_path,
                    ) from exc
                raise SecretNotFound(
                    f"no secret at {api_path}; write it (credbroker rotate) or fix the configured path",
                    path=api_path,
                ) from exc

        try:
            resp = self._call(api_path, do)
        except PermissionDenied as exc:
            raise self._explain_forbidden(exc, path, api_path) from exc
        return self._to_secret(path, api_path, resp)

    def _to_secret(self, path: str, api_path: str, resp: Any) -> Secret:
        if not isinstance(resp, Mapping) or not isinstance(resp.get("data"), Mapping):
            raise VaultUnavailable(f"Vault returned an unexpected body for {api_path}", path=api_path)
        body = resp["data"]
        meta = body.get("metadata") or {}
        version = int(meta.get("version") or 0)
        data = body.get("data")
        if data is None:
            destroyed = bool(meta.get("destroyed"))
            when = str(meta.get("deletion_time") or "")
            raise SecretDeleted(
                f"the latest version ({version}) of {api_path} was "
                f"{'destroyed' if destroyed else 'deleted'}{' at ' + when if when else ''}; credbroker does "
                "not fall back to older versions. Write a new version, or undelete it.",
                path=api_path,
                version=version,
                deletion_time=when,
                destroyed=destroyed,
            )
        if not isinstance(data, Mapping):
            raise CredentialError(
                f"{api_path} version {version} is not a key/value mapping", path=path, version=version
            )
        fields: dict[str, str] = {}
        for key, value in data.items():
            if not isinstance(value, str):
                raise CredentialError(
                    f"field '{key}' of {api_path} version {version} is a {type(value).__name__}, "
                    "not a string; store every credential field as a string",
                    path=path,
                    version=version,
                    field=str(key),
                )
            fields[str(key)] = value
        scrubber.add(fields.values())
        return Secret(path, version, fields, str(meta.get("created_time") or ""))

    def metadata(self, path: str) -> SecretMetadata:
        """Read KV v2 metadata, which tells the current version without the values.

        GET /v1/{mount}/metadata/{path}
        """
        mount = self._cfg.kv_mount
        api_path = f"{mount}/metadata/{path}"
        import hvac.exceptions as he

        def do(client: hvac.Client) -> Any:
            try:
                return client.secrets.kv.v2.read_secret_metadata(path, mount_point=mount)
            except he.InvalidPath as exc:
                raise SecretNotFound(f"no secret at {api_path}", path=api_path) from exc

        resp = self._call(api_path, do)
        data = resp.get("data") if isinstance(resp, Mapping) else None
        if not isinstance(data, Mapping):
            raise VaultUnavailable(f"Vault returned an unexpected body for {api_path}", path=api_path)
        current = int(data.get("current_version") or 0)
        info = (data.get("versions") or {}).get(str(current)) or {}
        return SecretMetadata(
            path=path,
            current_version=current,
            updated_time=str(data.get("updated_time") or ""),
            deletion_time=str(info.get("deletion_time") or ""),
            destroyed=bool(info.get("destroyed")),
        )

    def write(self, path: str, fields: Mapping[str, str], *, cas: int | None = None) -> int:
        """Write a new version and return its number. POST /v1/{mount}/data/{path}.

        ``cas`` is KV v2 check-and-set: the write succeeds only if the current version is still ``cas``
        (0 means "must not exist yet"). Raises WriteConflict when someone else wrote first.
        """
        mount = self._cfg.kv_mount
        api_path = f"{mount}/data/{path}"
        import hvac.exceptions as he

        def do(client: hvac.Client) -> Any:
            try:
                return client.secrets.kv.v2.create_or_update_secret(
                    path, secret=dict(fields), cas=cas, mount_point=mount
                )
            except (he.InvalidRequest, he.PreconditionFailed) as exc:
                if "check-and-set" in str(exc):
                    raise WriteConflict(
                        f"{api_path} changed since version {cas} was read; someone else rotated it. "
                        "Re-read it and rotate again if still needed.",
                        path=api_path,
                    ) from exc
                raise VaultError(f"Vault refused the write to {api_path}: {exc}", path=api_path) from exc
            except he.InvalidPath as exc:
                raise MountNotFound(f"KV mount '{mount}' does not exist at {self.addr}", path=api_path) from exc

        resp = self._call(api_path, do)
        return int(resp["data"]["version"])

    def read_marker(self, path: str) -> list[str]:
        """Read the rotation marker and return the secret paths its last rotation changed.

        GET /v1/{mount}/data/{path}. The marker holds no secret, so its fields are not registered for scrubbing.
        """
        mount = self._cfg.kv_mount
        api_path = f"{mount}/data/{path}"
        resp = self._call(
            api_path,
            lambda c: c.secrets.kv.v2.read_secret_version(path, mount_point=mount, raise_on_deleted_version=False),
        )
        data = ((resp or {}).get("data") or {}).get("data") or {}
        paths = data.get("paths", "")
        return [p for p in str(paths).split(",") if p]

    def bump_marker(self, path: str, changed: list[str]) -> int:
        """Record a rotation in the marker so every broker notices within ~1 s. POST /v1/{mount}/data/{path}."""
        from datetime import datetime

        fields = {"paths": ",".join(changed), "at": datetime.now(UTC).isoformat()}
        return self.write(path, fields)

    def token_info(self) -> dict[str, Any]:
        """Token facts for ``credbroker status``: TTL, renewable, policies (never the token)."""
        resp = self._call("auth/token/lookup-self", lambda c: c.auth.token.lookup_self())
        data = resp.get("data", {})
        return {
            "ttl": data.get("ttl"),
            "renewable": data.get("renewable"),
            "policies": data.get("policies"),
            "display_name": data.get("display_name"),
        }
