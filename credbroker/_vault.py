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
# After a login or renewal failed because Vault is unavailable, callers queued behind the auth lock get that
# failure instead of each waiting out its own timeout in turn; the next attempt is made after this long.
_AUTH_RETRY_AFTER_S = 0.5


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
        (he.InvalidPath, SecretNotFound),
    ]
    for hvac_cls, ours in table:
        if isinstance(exc, hvac_cls):
            return ours
    return None


def _vault_errors(exc: Exception) -> str:
    """Vault's own error text (never the request body), scrubbed and bounded."""
    errors = getattr(exc, "errors", None)
    text = "; ".join(str(e) for e in errors) if isinstance(errors, list | tuple) and errors else type(exc).__name__
    return scrubber.scrub(" ".join(text.split()))[:200]


def _deleted_version_body(body: object) -> Mapping[str, Any] | None:
    """The 404 body KV v2 sends for a deleted or destroyed latest version, or None for a plain 404."""
    if not isinstance(body, Mapping) or not isinstance(body.get("data"), Mapping):
        return None
    meta = body["data"].get("metadata")
    if isinstance(meta, Mapping) and (meta.get("deletion_time") or meta.get("destroyed")):
        return body
    return None


def _leaves(value: object) -> Iterator[object]:
    """Every scalar inside a JSON value, so that a secret stored as a number or a list is scrubbed too."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield value


def _operation(path: str) -> str:
    """A low-cardinality label for a Vault API path (metrics must not carry one label per secret)."""
    if path.startswith("auth/"):
        return path.rsplit("/", 1)[-1]  # login, renew-self, lookup-self
    parts = path.split("/")
    if len(parts) > 1 and parts[1] in ("data", "metadata", "delete", "undelete", "destroy"):
        return f"kv_{parts[1]}"
    return "other"


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
        # Bumped by every successful login, so a thread whose request met a dead token can tell whether someone
        # else has already logged in again (one re-login per dead token, however many threads noticed).
        self._login_gen = 0
        # An AppRole login Vault refused. Kept, never retried: each attempt can spend one of the secret_id's uses.
        self._login_refused: AuthenticationFailed | None = None
        self._auth_unavailable: VaultUnavailable | None = None
        self._auth_retry_at = 0.0
        self.requests = 0  # every HTTP request sent, for status and tests; not exact under races
        self._observers: tuple[Callable[[str, str, float], None], ...] = ()

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
            # Not None: hvac would fall back to VAULT_TOKEN or ~/.vault-token, an identity the config did not name.
            token="",
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
        if self._login_refused is not None:
            # Same identity, same answer: do not spend another use of the secret_id finding out.
            refused = self._login_refused
            raise AuthenticationFailed(str(refused), path=refused.path) from refused.__cause__
        self._raise_if_auth_unavailable()
        # Registered before the attempt: whatever happens next, these never reach a log line.
        scrubber.add(v for v in (self._identity.secret_id, self._identity.token) if v)
        client = self._client or self._new_client()
        try:
            if self._cfg.auth == "approle":
                self._approle_login(client)
            else:
                self._adopt_token(client)
        except VaultUnavailable as exc:
            self._note_auth_unavailable(exc)
            raise
        self._login_gen += 1
        self._client = client

    def _approle_login(self, client: hvac.Client) -> None:
        ident = self._identity
        mount = self._cfg.approle_mount
        login_path = f"auth/{mount}/login"
        try:
            with self._mapped(login_path, relogin=False):
                self.requests += 1
                resp = client.auth.approle.login(
                    role_id=ident.role_id,
                    secret_id=ident.secret_id,
                    mount_point=mount,
                    use_token=True,
                )
        except (VaultUnavailable, VaultTLSError):
            raise
        except VaultError as exc:
            if isinstance(exc, PermissionDenied | MountNotFound | SecretNotFound):
                why = (
                    f"Vault refused {login_path} (403): is an AppRole auth method mounted at '{mount}/'? "
                    "Check vault.approle_mount"
                )
            else:
                answer = _vault_errors(exc.__cause__) if isinstance(exc.__cause__, Exception) else str(exc)
                why = (
                    f"Vault rejected the role_id/secret_id at {login_path} ({answer}): the secret_id may be "
                    "expired, used up, or issued for another role"
                )
            # Never loop here: every login attempt can spend one of the secret_id's uses.
            refused = AuthenticationFailed(
                f"AppRole login at {ident.addr} failed. {why}. The role_id came from "
                f"{ident.source_of('VAULT_ROLE_ID')} and the secret_id from {ident.source_of('VAULT_SECRET_ID')}. "
                "Issue a new secret_id and restart; credbroker does not retry a refused login.",
                path=login_path,
            )
            self._login_refused = refused
            raise refused from exc
        auth = resp["auth"]
        self._set_lease(float(auth.get("lease_duration") or 0), bool(auth.get("renewable")))
        scrubber.add(v for v in (client.token,) if v)

    def _adopt_token(self, client: hvac.Client) -> None:
        ident = self._identity
        client.token = ident.token
        try:
            with self._mapped("auth/token/lookup-self", relogin=False):
                self.requests += 1
                data = client.auth.token.lookup_self()["data"]
        except (VaultUnavailable, VaultTLSError):
            raise
        except VaultError as exc:
            raise AuthenticationFailed(
                f"Vault token from {ident.source_of('VAULT_TOKEN')} was refused by {ident.addr}: it is "
                "invalid, revoked or expired. Set a fresh VAULT_TOKEN.",
                path="auth/token/lookup-self",
            ) from exc
        ttl = float(data.get("ttl") or 0)
        self._set_lease(ttl, bool(data.get("renewable")))
        if not self._renewable:
            logger.info(
                "Vault token is not renewable ({}); credbroker will not call renew-self",
                "no expiry" if ttl == 0 else f"expires in {ttl:.0f}s",
            )

    def _note_auth_unavailable(self, exc: VaultUnavailable) -> None:
        self._auth_unavailable = exc
        self._auth_retry_at = time.monotonic() + _AUTH_RETRY_AFTER_S

    def _raise_if_auth_unavailable(self) -> None:
        failed = self._auth_unavailable
        if failed is not None and time.monotonic() < self._auth_retry_at:
            raise type(failed)(str(failed), path=failed.path) from failed.__cause__

    def _set_lease(self, ttl: float, renewable: bool) -> None:
        now = time.monotonic()
        self._renewable = renewable
        if ttl <= 0:  # root and other non-expiring tokens
            self._renew_at = self._expires_at = float("inf")
        else:
            self._expires_at = now + ttl
            self._renew_at = now + ttl * _RENEW_AT_FRACTION

    def _ensure_token(self) -> tuple[hvac.Client, int]:
        """The client with a usable token, and the login generation that token belongs to."""
        client, gen = self._client, self._login_gen
        if client is not None and time.monotonic() < self._renew_at:
            return client, gen
        with self._auth_lock:
            if self._client is None:
                self._login_locked()
            elif time.monotonic() >= self._renew_at:
                self._refresh_token_locked()
            assert self._client is not None
            return self._client, self._login_gen

    def _refresh_token_locked(self) -> None:
        assert self._client is not None
        remaining = self._expires_at - time.monotonic()
        if self._renewable:
            try:
                with self._mapped("auth/token/renew-self", relogin=False):
                    self.requests += 1
                    auth = self._client.auth.token.renew_self()["auth"]
                ttl = float(auth.get("lease_duration") or 0)
                if ttl >= _MIN_USEFUL_TTL_S:
                    self._set_lease(ttl, bool(auth.get("renewable")))
                    logger.debug("Vault token renewed for {:.0f}s", ttl)
                    return
                if not self._can_relogin():
                    # At its max TTL: renewing cannot extend it any more. Warn once, below.
                    self._set_lease(ttl, False)
                    remaining = ttl
                else:
                    logger.info("Vault token is near its max TTL ({:.0f}s left); logging in again", ttl)
                    self._login_locked()
                    return
            except VaultUnavailable:
                if remaining > 0:
                    # The token still works; callers queued behind this lock use it instead of renewing in turn.
                    self._renew_at = time.monotonic() + min(_AUTH_RETRY_AFTER_S, remaining)
                raise
            except VaultError as exc:
                if not self._can_relogin():
                    raise AuthenticationFailed(
                        f"Vault token from {self._identity.source_of('VAULT_TOKEN')} could not be renewed "
                        f"({type(exc).__name__}): it was revoked or has expired, and auth 'token' cannot log in "
                        "again. Set a fresh VAULT_TOKEN.",
                        path="auth/token/renew-self",
                    ) from exc
                logger.info("Vault token renewal refused ({}); logging in again", type(exc).__name__)
                self._login_locked()
                return
        if self._can_relogin():
            self._login_locked()
            return
        if not self._warned_no_relogin:
            self._warned_no_relogin = True
            logger.warning(
                "Vault token (from {}) cannot be renewed and expires in {:.0f}s; credbroker cannot log in "
                "again with auth 'token'. Use AppRole, or give it a renewable token with a longer max TTL.",
                self._identity.source_of("VAULT_TOKEN"),
                max(remaining, 0),
            )
        # Nothing to do until it expires; don't look again on every call.
        self._renew_at = self._expires_at if remaining > 0 else float("inf")

    def _token_is_dead(self) -> bool:
        """Vault answers 403 for a dead token and for a policy denial alike; look the token up to tell.

        GET /v1/auth/token/lookup-self. Raises VaultUnavailable if Vault cannot answer now.
        """
        client = self._client
        if client is None:
            return True
        try:
            with self._mapped("auth/token/lookup-self", relogin=False):
                self.requests += 1
                client.auth.token.lookup_self()
        except (PermissionDenied, AuthenticationFailed):
            return True
        except VaultUnavailable:
            raise
        except VaultError:
            return False
        return False

    # ---------------------------------------------------------------- error mapping

    def add_observer(self, observer: Callable[[str, str, float], None]) -> None:
        """Call ``observer(operation, outcome, seconds)`` after every Vault request (metrics hook).

        ``outcome`` is ``"ok"`` or the name of the credbroker error raised. Observers run on the calling thread
        and must be quick.
        """
        self._observers = (*self._observers, observer)

    @contextmanager
    def _mapped(self, path: str, *, relogin: bool = True) -> Iterator[None]:
        if not self._observers:
            with self._translated(path):
                yield
            return
        start = time.monotonic()
        outcome = "ok"
        try:
            with self._translated(path):
                yield
        except CredbrokerError as exc:
            outcome = type(exc).__name__
            raise
        finally:
            elapsed = time.monotonic() - start
            operation = _operation(path)
            for observer in self._observers:
                observer(operation, outcome, elapsed)

    @contextmanager
    def _translated(self, path: str) -> Iterator[None]:
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
            raise VaultUnavailable(
                f"request to Vault at {addr} failed ({path}): {type(exc).__name__}", path=path
            ) from exc
        except he.VaultDown as exc:
            if "sealed" in str(exc).lower():
                # An uninitialised Vault also answers 503 "sealed" everywhere but sys/health (501).
                if self._initialized() is False:
                    raise VaultSealed(
                        f"Vault at {addr} is not initialised (sys/health 501), so {path} cannot be served; "
                        "run 'bao operator init' and unseal it",
                        path=path,
                    ) from exc
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
        except he.InvalidRequest as exc:
            if "http request to an https server" in str(exc).lower():
                raise VaultTLSError(
                    f"Vault at {addr} serves HTTPS only; set VAULT_ADDR (from "
                    f"{self._identity.source_of('VAULT_ADDR')}) to https://. credbroker never downgrades to "
                    "plain HTTP.",
                    path=path,
                ) from exc
            raise VaultError(
                f"Vault at {addr} rejected the request to {path} (400): {_vault_errors(exc)}", path=path
            ) from exc
        except he.VaultError as exc:
            cls2 = _status_error(exc) or VaultError
            raise cls2(f"Vault at {addr} answered {type(exc).__name__} for {path}", path=path) from exc

    def _initialized(self) -> bool | None:
        """Whether Vault is initialised, from GET /v1/sys/seal-status (unauthenticated); None if unknown."""
        client = self._client
        probe = client if client is not None else self._new_client()
        try:
            self.requests += 1
            status = probe.adapter.get("/v1/sys/seal-status")
        except Exception:
            return None
        finally:
            if client is None:
                probe.adapter.close()
        if isinstance(status, Mapping) and isinstance(status.get("initialized"), bool):
            return bool(status["initialized"])
        return None

    def _call(self, path: str, fn: Callable[[hvac.Client], T]) -> T:
        """Run one Vault request, logging in again once if a 403 turns out to be a dead token."""
        client, gen = self._ensure_token()
        try:
            with self._mapped(path):
                self.requests += 1
                return fn(client)
        except PermissionDenied as denied:
            # Someone logged in again since our request was sent: our token was the old one, just retry.
            replaced = self._login_gen != gen
            if not replaced and not self._token_is_dead():
                raise
            if not replaced and not self._can_relogin():
                ident = self._identity
                raise AuthenticationFailed(
                    f"Vault token from {ident.source_of('VAULT_TOKEN')} was revoked or has expired ({path} "
                    f"refused by {ident.addr}); auth 'token' cannot log in again. Set a fresh VAULT_TOKEN.",
                    path=path,
                ) from denied
        with self._auth_lock:
            if self._login_gen == gen:
                logger.info("Vault token was revoked or expired early; logging in again")
                self._login_locked()
            client = self._client
        assert client is not None
        with self._mapped(path):
            self.requests += 1
            return fn(client)

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
                if _deleted_version_body(exc.json) is not None:
                    # hvac returns soft-deleted versions but raises for destroyed ones (no deletion_time):
                    # both carry the version's metadata, and _to_secret turns them into SecretDeleted.
                    return exc.json
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
        problems: dict[str, str] = {}
        for key, value in data.items():
            if isinstance(value, str):
                fields[str(key)] = value
                continue
            # Kept as a problem rather than raised: the broker must be able to keep serving the previous version
            # when a bad one is written, and it decides that when the factory validates this secret.
            kind = {bool: "a boolean", int: "a number", float: "a number", type(None): "null"}.get(type(value))
            problems[str(key)] = f"is {kind or 'a ' + type(value).__name__}, not a string"
            scrubber.add(str(v) for v in _leaves(value))
        scrubber.add(fields.values())
        return Secret(path, version, fields, str(meta.get("created_time") or ""), problems=problems)

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
        from datetime import UTC, datetime

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
