"""Safe rotation: validate, write with check-and-set, then bump the marker every broker polls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from credbroker._config import Config, ExchangeConfig
from credbroker._factories import CCXT_CREDENTIAL_FIELDS, validate_fields
from credbroker._log import logger
from credbroker._redact import fingerprint
from credbroker._vault import VaultSession
from credbroker.exceptions import ConfigError, CredentialError, SecretNotFound

__all__ = ["RotationResult", "rotate_secret"]


@dataclass(frozen=True, slots=True)
class RotationResult:
    """What a rotation wrote: the path, the old and new versions and each field's fingerprint."""

    name: str
    path: str
    old_version: int
    new_version: int
    fingerprints: Mapping[str, str]


def rotate_secret(
    session: VaultSession,
    config: Config,
    name: str,
    fields: Mapping[str, str],
    *,
    expected_version: int | None = None,
) -> RotationResult:
    """Write ``fields`` as the next version of credential ``name`` and announce it.

    The fields are checked as a client build would check them, before anything is written. The write uses
    KV v2 check-and-set against ``expected_version`` (default: the version read just before writing), so two
    operators rotating at once cannot both win: the loser gets WriteConflict.
    """
    paths = config.secret_paths()
    if name not in paths:
        raise ConfigError(f"no credential named '{name}' in {config.source}; configured: {', '.join(sorted(paths))}")
    spec = next(g[name] for g in (config.exchanges, config.llm, config.services) if name in g)
    path = spec.secret
    if not isinstance(fields, Mapping) or not fields:
        raise CredentialError(f"no fields given for {path}", path=path)
    for key, value in fields.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise CredentialError(
                f"every field for {path} must be a string (field '{key}' is not)", path=path, field=str(key)
            )
    validate_fields(spec, fields, path)
    if isinstance(spec, ExchangeConfig):
        unknown = sorted(set(fields) - set(CCXT_CREDENTIAL_FIELDS))
        if unknown:
            # Stored but never used by ccxt: most often a mistyped optional field ('UID' for 'uid').
            logger.warning(
                "{}: field(s) {} are not ccxt credential names and will be stored but not used; ccxt knows: {}",
                name,
                ", ".join(repr(u) for u in unknown),
                ", ".join(CCXT_CREDENTIAL_FIELDS),
            )
    if expected_version is None:
        try:
            expected_version = session.metadata(path).current_version
        except SecretNotFound:
            expected_version = 0
    # Everything that could fail is done before the write: after it, the caller must hear "rotated".
    fingerprints = {k: fingerprint(v) for k, v in fields.items()}
    new_version = session.write(path, fields, cas=expected_version)
    try:
        session.bump_marker(config.vault.rotation_marker, [path])
    except Exception as exc:
        # The secret is written; brokers will still notice it by metadata polling.
        logger.warning("rotated {} but could not bump the rotation marker: {}", path, type(exc).__name__)
    result = RotationResult(
        name=name,
        path=path,
        old_version=expected_version,
        new_version=new_version,
        fingerprints=fingerprints,
    )
    logger.info("rotated {} ({}) to version {}", name, path, new_version)
    return result
