"""Typed, frozen configuration, and the one function that loads it.

Constructors never read files or the environment; ``load_config`` does, and returns frozen values.

Where the Vault identity comes from, highest precedence first:

1. the process environment (``VAULT_ADDR``, ``VAULT_TOKEN``, ``VAULT_ROLE_ID``, ``VAULT_SECRET_ID``,
   ``VAULT_CACERT``, ``VAULT_NAMESPACE``), as with the Vault CLI;
2. the dotenv file at ``paths.secrets_env_path`` (read as plain ``KEY=value``, no ``${...}`` interpolation);
3. for the address only, ``vault.addr`` in config.yaml.

Each value remembers its source, so an authentication error can say which one to fix.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from credbroker._log import logger
from credbroker.exceptions import ConfigError

if TYPE_CHECKING:
    # pathlib and urllib.parse are imported where config is loaded: at module level they (with fnmatch and
    # ipaddress) cost ~6 ms of every `import credbroker` (scripts/bench, start-up).
    from pathlib import Path

__all__ = [
    "Config",
    "ExchangeConfig",
    "LLMConfig",
    "ServiceConfig",
    "VaultConfig",
    "VaultIdentity",
    "load_config",
    "parse_config",
]

BOOTSTRAP_VARS = (
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "VAULT_ROLE_ID",
    "VAULT_SECRET_ID",
    "VAULT_CACERT",
    "VAULT_NAMESPACE",
)

_EMPTY: Mapping[str, Any] = MappingProxyType({})
# The largest duration any setting accepts (30 days): beyond it, timers overflow and threads die.
_MAX_S = 30 * 86400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class VaultIdentity:
    """Who this process is to Vault. Values never appear in its repr; ``sources`` says where each came from."""

    addr: str
    token: str | None = field(default=None, repr=False)
    role_id: str | None = field(default=None, repr=False)
    secret_id: str | None = field(default=None, repr=False)
    cacert: str | None = None
    namespace: str | None = None
    sources: Mapping[str, str] = field(default_factory=lambda: _EMPTY)

    def source_of(self, var: str) -> str:
        return self.sources.get(var, "nowhere")


@dataclass(frozen=True, slots=True, kw_only=True)
class VaultConfig:
    """How to talk to Vault and how often to look for rotations. Every duration is in seconds."""

    addr: str = "http://127.0.0.1:8200"
    auth: Literal["approle", "token"] = "approle"
    kv_mount: str = "kv"
    approle_mount: str = "approle"
    cache_ttl_s: float = 300.0
    poll_interval_s: float = 30.0
    marker_interval_s: float = 0.5
    rotation_marker: str = "trading/_credbroker/rotation"
    max_stale_s: float = 3600.0
    timeout_s: float = 5.0
    drain_s: float = 5.0
    jitter: float = 0.1


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeConfig:
    """One exchange account. ``name`` is the ccxt id unless ``ccxt_id`` says otherwise."""

    name: str
    secret: str
    ccxt_id: str
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    api_base: str | None = None
    sandbox: bool = False
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMConfig:
    """One LLM provider (OpenAI or OpenAI-compatible). A ``base_url`` stored in the secret wins over this one."""

    name: str
    secret: str
    model: str = "gpt-4o-mini"
    max_tokens: int = 150
    temperature: float = 0.7
    base_url: str | None = None
    timeout_s: float = 30.0
    max_retries: int = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceConfig:
    """A news or social API credential (NewsAPI, X/Twitter)."""

    name: str
    kind: str
    secret: str
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration. Build it with ``load_config`` or ``parse_config``."""

    vault: VaultConfig
    identity: VaultIdentity
    exchanges: Mapping[str, ExchangeConfig] = field(default_factory=lambda: _EMPTY)
    llm: Mapping[str, LLMConfig] = field(default_factory=lambda: _EMPTY)
    services: Mapping[str, ServiceConfig] = field(default_factory=lambda: _EMPTY)
    secrets_env_path: Path | None = None
    source: str = "<dict>"

    def secret_paths(self) -> dict[str, str]:
        """Map every configured credential name to its secret path."""
        out: dict[str, str] = {}
        for group in (self.exchanges, self.llm, self.services):
            for name, item in group.items():
                out[name] = item.secret
        return out


# ---------------------------------------------------------------- parsing helpers


class _Reader:
    """Reads one mapping of the YAML tree, remembering its dotted location for error messages."""

    def __init__(self, data: object, where: str, source: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: '{where}' must be a mapping, got {type(data).__name__}")
        self.data = data
        self.where = where
        self.source = source
        self.used: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def error(self, key: str, expected: str) -> ConfigError:
        return ConfigError(f"{self.source}: '{self._key(key)}' must be {expected}")

    def raw(self, key: str) -> object:
        self.used.add(key)
        return self.data.get(key)

    def str_(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.raw(key)
        if value is None:
            if required:
                raise ConfigError(f"{self.source}: '{self._key(key)}' is required (a non-empty string)")
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "a non-empty string")
        return value.strip()

    def number(
        self, key: str, default: float, *, minimum: float = 0.0, exclusive: bool = True, maximum: float = _MAX_S
    ) -> float:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"a number of seconds > {minimum:g}" if exclusive else "a number")
        if isinstance(value, int) and abs(value) > 10**15:
            raise self.error(key, f"at most {maximum:g}")
        if value != value or value in (float("inf"), float("-inf")):
            raise self.error(key, "a finite number")
        if (exclusive and value <= minimum) or (not exclusive and value < minimum):
            raise self.error(key, f"{'>' if exclusive else '>='} {minimum:g}")
        if value > maximum:
            # Huge values overflow timers (time_t) or kill the background threads that wait on them.
            raise self.error(key, f"at most {maximum:g}")
        return float(value)

    def integer(self, key: str, default: int, *, minimum: int = 1, maximum: int = 1_000_000) -> int:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self.error(key, f"an integer from {minimum} to {maximum}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, "true or false")
        return value

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.raw(key)
        if value is None:
            return _EMPTY
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self.error(key, "a mapping with string keys")
        return MappingProxyType(dict(value))

    def child(self, key: str) -> _Reader:
        return _Reader(self.raw(key), self._key(key), self.source)

    def finish(self) -> None:
        unknown = sorted(str(k) for k in self.data if k not in self.used)
        if unknown:
            where = f"'{self.where}'" if self.where else "the top level"
            allowed = ", ".join(sorted(self.used))
            raise ConfigError(
                f"{self.source}: unknown key(s) {', '.join(repr(k) for k in unknown)} in {where}; allowed: {allowed}"
            )


def _url(reader: _Reader, key: str, default: str | None = None) -> str | None:
    value = reader.str_(key, default)
    if value is None:
        return None
    from urllib.parse import urlparse

    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise reader.error(key, "an http:// or https:// URL")
    return value.rstrip("/")


def _name_ok(name: object) -> bool:
    return isinstance(name, str) and bool(name) and name.replace("_", "").replace("-", "").isalnum()


def _secret_path(reader: _Reader) -> str:
    path = reader.str_("secret", required=True)
    assert path is not None
    path = path.strip("/")
    if not path or any(part in ("", ".", "..") for part in path.split("/")):
        raise reader.error("secret", "a KV path like 'trading/exchanges/binance'")
    return path


def _parse_vault(r: _Reader) -> VaultConfig:
    auth = r.str_("auth", "approle")
    if auth not in ("approle", "token"):
        raise r.error("auth", "'approle' or 'token'")
    d = VaultConfig()
    cfg = VaultConfig(
        addr=_url(r, "addr", d.addr) or d.addr,
        auth=auth,  # type: ignore[arg-type]
        kv_mount=(r.str_("kv_mount", d.kv_mount) or d.kv_mount).strip("/"),
        approle_mount=(r.str_("approle_mount", d.approle_mount) or d.approle_mount).strip("/"),
        cache_ttl_s=r.number("cache_ttl", d.cache_ttl_s),
        poll_interval_s=r.number("poll_interval", d.poll_interval_s),
        marker_interval_s=r.number("marker_interval", d.marker_interval_s, maximum=3600),
        rotation_marker=(r.str_("rotation_marker", d.rotation_marker) or d.rotation_marker).strip("/"),
        max_stale_s=r.number("max_stale", d.max_stale_s, exclusive=False),
        timeout_s=r.number("timeout", d.timeout_s, maximum=600),
        drain_s=r.number("drain", d.drain_s, exclusive=False, maximum=3600),
        jitter=r.number("jitter", d.jitter, exclusive=False),
    )
    if cfg.jitter >= 0.5:
        raise r.error("jitter", "a fraction below 0.5 (0.1 spreads refreshes by ±10%)")
    r.finish()
    return cfg


def _parse_exchange(name: str, r: _Reader) -> ExchangeConfig:
    cfg = ExchangeConfig(
        name=name,
        secret=_secret_path(r),
        ccxt_id=r.str_("ccxt_id", name) or name,
        options=r.mapping("options"),
        api_base=_url(r, "api_base"),
        sandbox=r.boolean("sandbox", False),
        timeout_s=r.number("timeout", 10.0, maximum=600),
    )
    r.finish()
    return cfg


def _parse_llm(name: str, r: _Reader) -> LLMConfig:
    temperature = r.number("temperature", 0.7, exclusive=False)
    if temperature > 2:
        raise r.error("temperature", "between 0 and 2")
    cfg = LLMConfig(
        name=name,
        secret=_secret_path(r),
        model=r.str_("model", "gpt-4o-mini") or "gpt-4o-mini",
        max_tokens=r.integer("max_tokens", 150),
        temperature=temperature,
        base_url=_url(r, "base_url"),
        timeout_s=r.number("timeout", 30.0, maximum=600),
        max_retries=r.integer("max_retries", 2, minimum=0, maximum=20),
    )
    r.finish()
    return cfg


def _parse_service(name: str, kind: str, r: _Reader) -> ServiceConfig:
    cfg = ServiceConfig(
        name=name, kind=r.str_("kind", kind) or kind, secret=_secret_path(r), options=r.mapping("options")
    )
    r.finish()
    return cfg


def _parse_group(root: _Reader, key: str, parse: Any, seen: dict[str, str]) -> dict[str, Any]:
    group = root.child(key)
    out: dict[str, Any] = {}
    for name in list(group.data):
        if not _name_ok(name):
            raise ConfigError(f"{root.source}: '{key}' has an invalid name {name!r}; use letters, digits, '-' and '_'")
        if name in seen:
            raise ConfigError(
                f"{root.source}: the name {name!r} is used in both '{seen[name]}' and '{key}'; names must be unique"
            )
        seen[name] = key
        out[name] = parse(name, group.child(name))
    group.used.update(group.data)
    group.finish()
    return out


# ---------------------------------------------------------------- identity


def _read_dotenv(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read secrets file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "secrets file {} can be read by group or others (mode {:o}); run: chmod 600 {}",
            path,
            stat.S_IMODE(mode),
            path,
        )
    try:
        # interpolate=False: a secret_id containing '$' must be read verbatim, never expanded.
        values = dotenv_values(path, interpolate=False)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read secrets file {path}: {type(exc).__name__}") from None
    out: dict[str, str] = {}
    for key, value in values.items():
        if key in BOOTSTRAP_VARS:
            if value is None or not value.strip():
                raise ConfigError(f"{path}: {key} is present but empty; give it a value or remove the line")
            out[key] = value.strip()
    return out


def _resolve_identity(
    vault: VaultConfig, secrets_env: Path | None, environ: Mapping[str, str], source: str
) -> VaultIdentity:
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    if secrets_env is not None:
        for key, value in _read_dotenv(secrets_env).items():
            values[key] = value
            sources[key] = str(secrets_env)
    for key in BOOTSTRAP_VARS:
        env_value = environ.get(key)
        if env_value is not None and env_value.strip():
            values[key] = env_value.strip()
            sources[key] = "environment"
    if "VAULT_ADDR" not in values:
        values["VAULT_ADDR"] = vault.addr
        sources["VAULT_ADDR"] = f"{source} (vault.addr)"

    needed = ("VAULT_TOKEN",) if vault.auth == "token" else ("VAULT_ROLE_ID", "VAULT_SECRET_ID")
    missing = [k for k in needed if k not in values]
    if missing:
        where = f"{secrets_env}" + ("" if secrets_env is None or secrets_env.exists() else " (file not found)")
        raise ConfigError(
            f"vault.auth is '{vault.auth}' but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
            f"not set; looked in the environment and in {where}. "
            "Run scripts/dev-vault up for a local Vault, or copy .env.example to that path and fill it in."
            + (
                " (VAULT_TOKEN is set, but vault.auth is 'approle', so it is not used.)"
                if vault.auth == "approle" and "VAULT_TOKEN" in values
                else ""
            )
        )
    from pathlib import Path
    from urllib.parse import urlparse

    addr = values["VAULT_ADDR"]
    parsed = urlparse(addr)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"VAULT_ADDR (from {sources['VAULT_ADDR']}) must be an http:// or https:// URL")
    if "@" in parsed.netloc:
        # Credentials in the URL would show in every error message and repr that names the address.
        raise ConfigError(
            f"VAULT_ADDR (from {sources['VAULT_ADDR']}) contains a user or password; Vault does not use them: "
            "remove them and use VAULT_TOKEN or AppRole"
        )
    cacert = values.get("VAULT_CACERT")
    if cacert is not None and not Path(cacert).is_file():
        raise ConfigError(f"VAULT_CACERT (from {sources['VAULT_CACERT']}) names {cacert}, which is not a file")
    return VaultIdentity(
        addr=addr.rstrip("/"),
        token=values.get("VAULT_TOKEN") if vault.auth == "token" else None,
        role_id=values.get("VAULT_ROLE_ID"),
        secret_id=values.get("VAULT_SECRET_ID"),
        cacert=cacert,
        namespace=values.get("VAULT_NAMESPACE"),
        sources=MappingProxyType(sources),
    )


# ---------------------------------------------------------------- entry points


def parse_config(
    data: object,
    *,
    source: str = "<dict>",
    environ: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Config:
    """Validate a parsed YAML tree (or a dict) and resolve the Vault identity.

    Raises ConfigError naming the offending key and what was expected.
    """
    from pathlib import Path

    root = _Reader(data, "", source)
    paths = root.child("paths")
    env_path_str = paths.str_("secrets_env_path")
    paths.finish()
    secrets_env: Path | None = None
    if env_path_str is not None:
        secrets_env = Path(env_path_str).expanduser()
        if not secrets_env.is_absolute():
            secrets_env = (base_dir or Path.cwd()) / secrets_env
    vault = _parse_vault(root.child("vault"))
    seen: dict[str, str] = {}
    exchanges = _parse_group(root, "exchanges", _parse_exchange, seen)
    llm = _parse_group(root, "llm", _parse_llm, seen)
    news = _parse_group(root, "news", lambda n, r: _parse_service(n, n, r), seen)
    social = _parse_group(root, "social", lambda n, r: _parse_service(n, n, r), seen)
    root.finish()
    for group in (exchanges, llm, news, social):
        for name, item in group.items():
            if item.secret == vault.rotation_marker:
                raise ConfigError(
                    f"{source}: 'vault.rotation_marker' is the secret path of '{name}'; `credbroker rotate` would "
                    "overwrite that credential. Give the marker its own path."
                )
    identity = _resolve_identity(vault, secrets_env, os.environ if environ is None else environ, source)
    return Config(
        vault=vault,
        identity=identity,
        exchanges=MappingProxyType(exchanges),
        llm=MappingProxyType(llm),
        services=MappingProxyType({**news, **social}),
        secrets_env_path=secrets_env,
        source=source,
    )


def _strict_loader() -> Any:
    """A SafeLoader that refuses duplicate keys: with plain YAML the last one silently wins."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (the last one would silently win)", key_node.start_mark
                )
            seen.add(key if isinstance(key, str | int | float | bool) else id(key_node))
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return StrictLoader


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Config:
    """Load config.yaml and bootstrap the Vault identity.

    A relative ``paths.secrets_env_path`` is resolved against the current working directory, never against
    the installed package. Raises ConfigError naming what is wrong.
    """
    from pathlib import Path

    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {p.resolve()} not found; pass --config PATH") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {p}: {type(exc).__name__}") from None
    try:
        data = yaml.load(text, Loader=_strict_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{p}: {problem}{where}") from None
    if data is None:
        raise ConfigError(f"{p} is empty; see config/config.yaml in the credbroker repository for an example")
    return parse_config(data, source=str(p), environ=environ)
