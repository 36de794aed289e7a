"""``Broker``: hands out authenticated clients, one per (kind, name), rebuilt when their secret's version moves.

The hot path (a warm ``exchange(name)``) is one dict look-up and one clock read: no lock, no I/O.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from credbroker._cache import RETRY_AFTER_ERROR_S, CacheEntry, SecretCache
from credbroker._config import Config, ExchangeConfig, LLMConfig, ServiceConfig, load_config, parse_config
from credbroker._factories import Spec, factory_for, kind_for
from credbroker._log import logger
from credbroker._redact import scrub_exception, scrubber
from credbroker._singleflight import SingleFlight
from credbroker._vault import VaultSession
from credbroker.exceptions import (
    ConfigError,
    CredbrokerError,
    CredentialError,
    CredentialsRotated,
    SecretDeleted,
    SecretNotFound,
    UpstreamAuthError,
)

if TYPE_CHECKING:
    import asyncio

__all__ = ["Broker", "CredentialStatus"]

T = TypeVar("T")

_now = time.monotonic
# ccxt method names that only read; everything else (orders, transfers, withdrawals) is never retried.
_READ_ONLY_PREFIXES = ("fetch", "load")
_PRIMARY_FIELDS = ("apiKey", "api_key", "bearer_token", "token")
# A read-only call is retried only when Vault holds a newer version than the client that failed, so every retry
# follows real progress. More than one happens when rotations come faster than a queued call runs: ccxt's rate
# limiter can hold a call for seconds (16 tasks on one Binance client wait ~16 s), and a call signs only when it
# leaves the queue. The window bounds how long one call keeps following a key that rotates again and again.
_ROTATION_RETRY_WINDOW_S = 60.0


def is_read_only(method: str) -> bool:
    """True for ccxt methods that cannot change account state, so a retry is harmless."""
    return method.startswith(_READ_ONLY_PREFIXES)


class _Slot:
    """One live client and the secret version it was built from. Replaced whole on rotation."""

    __slots__ = (
        "built_at",
        "client",
        "inflight",
        "key",
        "kind",
        "lock",
        "loop",
        "name",
        "path",
        "valid_until",
        "version",
    )

    def __init__(
        self, kind: str, name: str, path: str, version: int, client: Any, valid_until: float, loop: Any = None
    ) -> None:
        self.kind = kind
        self.name = name
        self.path = path
        self.version = version
        self.client = client
        self.valid_until = valid_until
        self.loop: asyncio.AbstractEventLoop | None = loop
        self.key = _key(kind, name, loop)
        self.inflight = 0
        self.lock = threading.Lock()
        self.built_at = time.time()


def _key(kind: str, name: str, loop: Any = None) -> tuple[str, str, int]:
    """Slots are per (kind, name) and, for async clients, per event loop: an aiohttp or httpx session belongs to
    the loop that opened it, so two loops must never share one client."""
    return (kind, name, 0 if loop is None else id(loop))


@dataclass(frozen=True, slots=True)
class CredentialStatus:
    """What ``credbroker status`` shows for one credential. Holds a fingerprint, never a value."""

    name: str
    kind: str
    path: str
    version: int | None
    served_version: int | None
    created_time: str
    age_s: float | None
    fingerprint: str | None
    error: str | None = None


class Broker:
    """Hands out authenticated exchange, LLM, news and social clients built from Vault secrets.

    Safe to share between threads; async clients are bound to the event loop that first asked for them.
    Repeated calls return the same client while its secret's version is unchanged. A rotation (noticed by
    the background ``RotationWatcher``, by TTL expiry, or by an authentication failure) builds a new client,
    swaps it in atomically, and closes the old one after ``vault.drain`` seconds once no call through
    ``call``/``acall`` still uses it.

    Use it as a context manager, or call ``close()`` (``await aclose()`` when async clients were used).
    """

    def __init__(self, config: Config, *, session: VaultSession | None = None, watch: bool = True) -> None:
        self._config = config
        self._session = session or VaultSession(config.vault, config.identity)
        self._cache = SecretCache(
            self._session,
            ttl_s=config.vault.cache_ttl_s,
            max_stale_s=config.vault.max_stale_s,
            jitter=config.vault.jitter,
            read_timeout_s=config.vault.timeout_s * 4,
        )
        self._slots: dict[tuple[str, str, int], _Slot] = {}
        self._builds: SingleFlight[_Slot] = SingleFlight()
        self._failed: dict[str, int] = {}  # secret path -> the version its factory refused
        self._retired: list[tuple[float, int, _Slot]] = []
        self._retire_seq = itertools.count()
        self._reaper_cv = threading.Condition()
        self._reaper: threading.Thread | None = None
        self._closed = False
        self._closing: set[Any] = set()  # close tasks scheduled on a loop, kept referenced until they finish
        self.stats: dict[str, int] = {
            "builds": 0,
            "closes": 0,
            "rotations": 0,
            "auth_retries": 0,
            "rotated_errors": 0,
        }
        # Plain counters for metrics: the hot path cannot afford a lock, so under heavy thread contention a
        # few increments may be lost. They are monitoring signals, not accounting.
        self.hits = 0
        self.misses = 0
        self.errors: Counter[str] = Counter()
        self._watcher: Any = None
        if watch:
            from credbroker._watcher import RotationWatcher

            self._watcher = RotationWatcher(self)
            self._watcher.start()

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] = "config/config.yaml", **kwargs: Any) -> Broker:
        """Load config.yaml (and the dotenv it names) and return a broker. Raises ConfigError."""
        return cls(load_config(path), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> Broker:
        """Build a broker from an already-parsed config mapping (the ``ApiManager`` path)."""
        return cls(parse_config(data), **kwargs)

    @property
    def config(self) -> Config:
        return self._config

    @property
    def session(self) -> VaultSession:
        return self._session

    @property
    def cache(self) -> SecretCache:
        return self._cache

    # ---------------------------------------------------------------- the hot path

    def exchange(self, name: str) -> Any:
        """The ccxt exchange client for ``name``. Raises ConfigError, CredentialError or a VaultError."""
        slot = self._slots.get(("ccxt", name, 0))
        if slot is not None and slot.valid_until > _now():
            self.hits += 1
            return slot.client
        return self._acquire("ccxt", name).client

    async def async_exchange(self, name: str) -> Any:
        """The ``ccxt.async_support`` client for ``name``, bound to the running event loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        slot = self._slots.get(("ccxt_async", name, id(loop)))
        if slot is not None and slot.valid_until > _now() and slot.loop is loop:
            self.hits += 1
            return slot.client
        return (await self._aacquire("ccxt_async", name)).client

    def llm(self, name: str = "openai") -> Any:
        """The ``openai.OpenAI`` client for the LLM provider ``name``."""
        slot = self._slots.get(("openai", name, 0))
        if slot is not None and slot.valid_until > _now():
            self.hits += 1
            return slot.client
        return self._acquire("openai", name).client

    def async_llm(self, name: str = "openai") -> Any:
        """The ``openai.AsyncOpenAI`` client for ``name``, bound to the running event loop.

        Call it from a coroutine. Its first call may read Vault, blocking the loop briefly; ``await
        broker.aquery_llm(...)`` never blocks.
        """
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise CredbrokerError(
                "async_llm() must be called from a coroutine: the client belongs to the event loop that uses it"
            ) from None
        slot = self._slots.get(("openai_async", name, id(loop)))
        if slot is not None and slot.valid_until > _now() and slot.loop is loop:
            self.hits += 1
            return slot.client
        return self._acquire("openai_async", name, loop=loop).client

    def service(self, name: str) -> Any:
        """The news or social client (NewsAPI, tweepy) configured as ``name``."""
        spec = self._spec_for_name(name)
        if not isinstance(spec, ServiceConfig):
            raise ConfigError(f"'{name}' is not a news or social service; use exchange() or llm()")
        kind = kind_for(spec, is_async=False)
        slot = self._slots.get((kind, name, 0))
        if slot is not None and slot.valid_until > _now():
            self.hits += 1
            return slot.client
        return self._acquire(kind, name).client

    def search_news(self, query: str, *, provider: str | None = None, **kwargs: Any) -> Any:
        """NewsAPI ``get_everything(q=query, ...)`` through the configured news credential."""
        name = provider or self._first_service("newsapi")
        return self._invoke(
            kind_for(self._spec_for_name(name), is_async=False),
            name,
            lambda c: c.get_everything(q=query, **kwargs),
            retry=True,
            what="get_everything",
        )

    def search_tweets(self, query: str, *, provider: str | None = None, **kwargs: Any) -> Any:
        """X/Twitter ``search_recent_tweets(query, ...)`` through the configured social credential."""
        name = provider or self._first_service("twitter")
        return self._invoke(
            kind_for(self._spec_for_name(name), is_async=False),
            name,
            lambda c: c.search_recent_tweets(query=query, **kwargs),
            retry=True,
            what="search_recent_tweets",
        )

    def _first_service(self, kind: str) -> str:
        for name, spec in self._config.services.items():
            if kind_for(spec, is_async=False) == kind:
                return name
        raise ConfigError(f"no {kind} credential is configured in {self._config.source}")

    # ---------------------------------------------------------------- calls with rotation handling

    def call(self, name: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` on the exchange client ``name``; the recommended way to make exchange calls.

        Errors are classified (UpstreamAuthError, RateLimited, IPBanned, ClockSkew, ...). If the exchange
        rejects the credentials, Vault is re-read once; if the key rotated, a read-only call (``fetch*``,
        ``load*``) is retried once on the new client, and any other call raises CredentialsRotated so the
        caller decides whether to resend an order.
        """
        return self._invoke(
            "ccxt", name, lambda c: getattr(c, method)(*args, **kwargs), retry=is_read_only(method), what=method
        )

    async def acall(self, name: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """The coroutine twin of ``call``, on the ``ccxt.async_support`` client."""
        return await self._ainvoke(
            "ccxt_async",
            name,
            lambda c: getattr(c, method)(*args, **kwargs),
            retry=is_read_only(method),
            what=method,
        )

    def query_llm(
        self,
        prompt: str,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        provider: str = "openai",
    ) -> str:
        """Send one user prompt to the chat completions API and return the reply text."""
        spec = self._llm_spec(provider)
        request = _chat_request(spec, prompt, model, max_tokens, temperature)
        return self._invoke(
            "openai",
            provider,
            lambda c: _reply_text(c.chat.completions.create(**request)),
            retry=True,
            what="chat.completions.create",
        )

    async def aquery_llm(
        self,
        prompt: str,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        provider: str = "openai",
    ) -> str:
        """The coroutine twin of ``query_llm``."""
        spec = self._llm_spec(provider)
        request = _chat_request(spec, prompt, model, max_tokens, temperature)

        async def ask(c: Any) -> str:
            return _reply_text(await c.chat.completions.create(**request))

        return await self._ainvoke("openai_async", provider, ask, retry=True, what="chat.completions.create")

    def _invoke(self, kind: str, name: str, fn: Callable[[Any], T], *, retry: bool, what: str) -> T:
        slot = self._acquire(kind, name)
        deadline = _now() + _ROTATION_RETRY_WINDOW_S
        while True:
            try:
                with self._using(slot) as client:
                    return fn(client)
            except UpstreamAuthError as err:
                newer = self._after_auth_failure(slot)
                slot = self._retry_on(slot, newer, err, retry=retry, deadline=deadline, what=what)

    async def _ainvoke(self, kind: str, name: str, fn: Callable[[Any], Awaitable[T]], *, retry: bool, what: str) -> T:
        import asyncio

        slot = await self._aacquire(kind, name)
        loop = asyncio.get_running_loop()
        deadline = _now() + _ROTATION_RETRY_WINDOW_S
        while True:
            try:
                with self._using(slot) as client:
                    return await fn(client)
            except UpstreamAuthError as err:
                newer = await loop.run_in_executor(None, self._after_auth_failure, slot)
                if newer is not None and newer.client is None:
                    newer = await self._aacquire(kind, name)
                slot = self._retry_on(slot, newer, err, retry=retry, deadline=deadline, what=what)

    @contextmanager
    def _using(self, slot: _Slot) -> Iterator[Any]:
        """Count the slot as in use (so the reaper waits) and translate the service's errors."""
        with slot.lock:
            slot.inflight += 1
        try:
            yield slot.client
        except Exception as exc:
            from credbroker._upstream import classify

            # Exchanges sometimes echo a request, key included, in their error body: scrub before anything
            # (the caller, a log, a crash reporter) can print this exception or the one chained to it.
            scrub_exception(exc)
            err = classify(exc, slot.name, slot.client)
            if err is None:
                raise
            self.errors[type(err).__name__] += 1
            raise err from exc
        finally:
            with slot.lock:
                slot.inflight -= 1

    def _retry_on(
        self, failed: _Slot, newer: _Slot | None, err: UpstreamAuthError, *, retry: bool, deadline: float, what: str
    ) -> _Slot:
        """Decide what follows an authentication failure: the slot to retry on, or the error to raise."""
        if newer is None or _now() > deadline:
            raise err
        if not retry:
            raise self._rotated_error(failed, newer, what) from err
        self.stats["auth_retries"] += 1
        return newer

    def _after_auth_failure(self, failed: _Slot) -> _Slot | None:
        """Re-read the secret once; return a slot with a newer version, or None if it did not rotate."""
        failed_at = _now()
        current = self._slots.get(failed.key)
        if current is not None and current.version != failed.version:
            return current
        entry = self._cache.refresh_after(failed.path, failed_at)
        if entry.secret.version == failed.version:
            return None
        logger.info(
            "{}: credentials rejected and Vault has a newer version ({} -> {}); rebuilding",
            failed.name,
            failed.version,
            entry.secret.version,
        )
        if failed.loop is not None:
            # Async clients are built on their own loop: this placeholder tells the caller to re-acquire there.
            self._invalidate(failed.path)
            return _Slot(failed.kind, failed.name, failed.path, entry.secret.version, None, 0.0)
        return self._builds.run(
            failed.key, lambda: self._build(failed.kind, failed.name, self._spec_for_name(failed.name), entry)
        )

    def _rotated_error(self, old: _Slot, new: _Slot, what: str) -> CredentialsRotated:
        self.stats["rotated_errors"] += 1
        return CredentialsRotated(
            f"{old.name}: {what} was rejected because the credentials rotated (version {old.version} -> "
            f"{new.version}); it was not retried. The broker now holds the new client: resend if still wanted.",
            service=old.name,
            old_version=old.version,
            new_version=new.version,
        )

    # ---------------------------------------------------------------- acquiring and building

    def _spec_for_name(self, name: str) -> Spec:
        cfg = self._config
        for group in (cfg.exchanges, cfg.llm, cfg.services):
            if name in group:
                return group[name]
        known = ", ".join(sorted(cfg.secret_paths())) or "none"
        raise ConfigError(f"no credential named '{name}' in {cfg.source}; configured: {known}")

    def _llm_spec(self, name: str) -> LLMConfig:
        spec = self._spec_for_name(name)
        if not isinstance(spec, LLMConfig):
            raise ConfigError(f"'{name}' is not an LLM provider (it is configured under another section)")
        return spec

    def _checked_spec(self, kind: str, name: str) -> Spec:
        spec = self._spec_for_name(name)
        if kind_for(spec, is_async=kind.endswith("_async")) != kind:
            section = (
                "exchanges"
                if isinstance(spec, ExchangeConfig)
                else "llm"
                if isinstance(spec, LLMConfig)
                else "news/social"
            )
            raise ConfigError(f"'{name}' is configured under '{section}', which does not make {kind} clients")
        return spec

    def _acquire(self, kind: str, name: str, *, loop: asyncio.AbstractEventLoop | None = None) -> _Slot:
        if self._closed:
            raise CredbrokerError("the broker is closed")
        self.misses += 1
        spec = self._checked_spec(kind, name)
        key = _key(kind, name, loop)
        if key not in self._slots:
            # Cold: one flight both reads the secret and builds the client, so a herd of callers blocks and wakes
            # once. Waiting on the read, then again on the build, woke every waiter twice while the builder ran;
            # with 64 threads on 2 cores that cost ~5-10% on the slowest wait (scripts/bench, cold herd).
            return self._builds.run(key, lambda: self._build(kind, name, spec, self._entry(spec.secret), loop=loop))
        entry = self._entry(spec.secret)
        slot = self._slots.get(key)
        if slot is not None and slot.version == entry.secret.version:
            slot.valid_until = self._valid_until(entry)
            return slot
        if slot is not None and self._failed.get(spec.secret) == entry.secret.version:
            # The new version failed validation already: keep serving the old client until it is fixed.
            slot.valid_until = self._valid_until(entry)
            return slot
        return self._builds.run(key, lambda: self._build(kind, name, spec, entry, loop=loop))

    async def _aacquire(self, kind: str, name: str) -> _Slot:
        import asyncio

        if self._closed:
            raise CredbrokerError("the broker is closed")
        self.misses += 1
        spec = self._checked_spec(kind, name)
        try:
            entry = await self._cache.aget(spec.secret)
        except (SecretDeleted, SecretNotFound):
            self._invalidate(spec.secret, evict=True)
            raise
        loop = asyncio.get_running_loop()
        key = _key(kind, name, loop)
        slot = self._slots.get(key)
        if slot is not None and slot.loop is loop and slot.version == entry.secret.version:
            slot.valid_until = self._valid_until(entry)
            return slot
        if slot is not None and slot.loop is loop and self._failed.get(spec.secret) == entry.secret.version:
            slot.valid_until = self._valid_until(entry)
            return slot

        async def work() -> _Slot:
            return self._build(kind, name, spec, entry, loop=loop)

        return await self._builds.arun(key, work)

    def _entry(self, path: str) -> CacheEntry:
        try:
            return self._cache.get(path)
        except (SecretDeleted, SecretNotFound):
            self._invalidate(path, evict=True)
            raise

    def _valid_until(self, entry: CacheEntry) -> float:
        now = _now()
        if entry.fresh_until > now:
            return entry.fresh_until
        # Served stale (Vault unavailable): look again shortly, never past max_stale.
        return min(now + RETRY_AFTER_ERROR_S, entry.stale_until)

    def _build(
        self, kind: str, name: str, spec: Spec, entry: CacheEntry, *, loop: asyncio.AbstractEventLoop | None = None
    ) -> _Slot:
        key = _key(kind, name, loop)
        current = self._slots.get(key)
        if current is not None and current.loop is not loop:
            current = None  # a dead loop's client under a reused id(): never hand it out
        if current is not None and current.version == entry.secret.version:
            return current
        factory = factory_for(kind)
        secret = entry.secret
        try:
            try:
                client = factory.build(secret, spec, previous=current.client if current is not None else None)
            except CredbrokerError:
                raise
            except Exception as exc:
                scrub_exception(exc)
                raise CredentialError(
                    f"building a {kind} client from {spec.secret} version {secret.version} failed: "
                    f"{type(exc).__name__}: {scrubber.scrub(str(exc))[:200]}",
                    path=spec.secret,
                    version=secret.version,
                ) from exc
        except CredbrokerError as exc:
            if current is None:
                raise
            self._failed[spec.secret] = entry.secret.version
            logger.error(
                "{}: version {} of {} cannot be used ({}); still serving version {}",
                name,
                secret.version,
                spec.secret,
                exc,
                current.version,
            )
            current.valid_until = self._valid_until(entry)
            return current
        self._failed.pop(spec.secret, None)
        slot = _Slot(kind, name, spec.secret, secret.version, client, self._valid_until(entry), loop)
        self._slots[key] = slot
        self.stats["builds"] += 1
        if self._closed:
            # close() ran while we were building: nobody will ever retire this client, so close it now.
            self._slots.pop(key, None)
            self._close_slot(slot)
            raise CredbrokerError("the broker is closed")
        field = next((f for f in _PRIMARY_FIELDS if f in secret), None)
        fp = secret.fingerprint(field) if field else "-"
        if current is not None:
            self.stats["rotations"] += 1
            logger.info(
                "{}: rebuilt {} client for version {} (was {}; key {})", name, kind, secret.version, current.version, fp
            )
            self._retire(current)
        else:
            logger.debug("{}: built {} client from {} version {} (key {})", name, kind, spec.secret, secret.version, fp)
        return slot

    # ---------------------------------------------------------------- rotation (called by the watcher)

    def paths_in_use(self) -> set[str]:
        """Secret paths behind the clients handed out so far."""
        return {slot.path for slot in list(self._slots.values())}

    def served_version(self, path: str) -> int | None:
        versions = [s.version for s in list(self._slots.values()) if s.path == path]
        return max(versions) if versions else None

    def refresh_path(self, path: str) -> int | None:
        """Re-read ``path`` now and rebuild its sync clients if its version moved; async ones rebuild on their
        loop at their next use. Returns the new version, or None if the secret is gone."""
        try:
            entry = self._cache.refresh(path)
        except (SecretDeleted, SecretNotFound) as exc:
            logger.error("{}; evicting its clients", exc)
            self._invalidate(path, evict=True)
            return None
        for slot in list(self._slots.values()):
            if slot.path != path or slot.version == entry.secret.version:
                continue
            if self._failed.get(path) == entry.secret.version:
                continue  # this version was refused already: keep the old client, don't rebuild on every poll
            if slot.loop is None:
                self._rebuild_now(slot, entry)
            else:
                slot.valid_until = 0.0
                self._schedule_async_rebuild(slot)
        return entry.secret.version

    def known_version(self, path: str) -> int | None:
        """The newest version of ``path`` this broker has seen: served, or refused by validation."""
        served = self.served_version(path)
        versions = [v for v in (served, self._failed.get(path)) if v is not None]
        return max(versions) if versions else None

    def _rebuild_now(self, slot: _Slot, entry: CacheEntry) -> None:
        spec = self._spec_for_name(slot.name)
        self._builds.run(slot.key, lambda: self._build(slot.kind, slot.name, spec, entry))

    def _schedule_async_rebuild(self, slot: _Slot) -> None:
        import asyncio

        loop = slot.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return

        async def rebuild() -> None:
            try:
                await self._aacquire(slot.kind, slot.name)
            except CredbrokerError as exc:
                logger.error("{}: async rebuild failed: {}", slot.name, exc)

        asyncio.run_coroutine_threadsafe(rebuild(), loop)

    def _invalidate(self, path: str, *, evict: bool = False) -> None:
        for key, slot in list(self._slots.items()):
            if slot.path != path:
                continue
            if evict:
                if self._slots.get(key) is slot:
                    del self._slots[key]
                self._retire(slot, drain_s=0.0)
            else:
                slot.valid_until = 0.0

    # ---------------------------------------------------------------- retiring old clients

    def _retire(self, slot: _Slot, drain_s: float | None = None) -> None:
        due = _now() + (self._config.vault.drain_s if drain_s is None else drain_s)
        with self._reaper_cv:
            heapq.heappush(self._retired, (due, next(self._retire_seq), slot))
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap_loop, name="credbroker-reaper", daemon=True)
                self._reaper.start()
            self._reaper_cv.notify()

    def _reap_loop(self) -> None:
        while True:
            with self._reaper_cv:
                while not self._closed and (not self._retired or self._retired[0][0] > _now()):
                    timeout = self._retired[0][0] - _now() if self._retired else None
                    self._reaper_cv.wait(timeout)
                if self._closed:
                    return
                due, seq, slot = heapq.heappop(self._retired)
                if slot.inflight > 0 and _now() < due + 10 * max(self._config.vault.drain_s, 1.0):
                    # Still in use through call(): look again shortly.
                    heapq.heappush(self._retired, (_now() + 0.1, seq, slot))
                    continue
            self._close_slot(slot)
            # Drop our reference now: this frame may sleep for hours on the condition above, and the closed
            # client (~250 KiB for a ccxt exchange) would stay alive until the next retirement.
            del slot

    def _close_slot(self, slot: _Slot) -> None:
        import asyncio

        factory = factory_for(slot.kind)
        try:
            if slot.loop is None:
                factory.close(slot.client)
            elif not slot.loop.is_closed() and slot.loop.is_running():
                if _running_loop() is slot.loop:
                    # On the loop's own thread: waiting here would deadlock it; let the loop close the client.
                    task = slot.loop.create_task(factory.aclose(slot.client))
                    self._closing.add(task)
                    task.add_done_callback(self._closing.discard)
                else:
                    asyncio.run_coroutine_threadsafe(factory.aclose(slot.client), slot.loop).result(timeout=10)
            else:
                logger.warning("{}: cannot close an async client whose event loop is gone", slot.name)
                return
        except Exception as exc:
            logger.warning("{}: closing the old {} client failed: {}", slot.name, slot.kind, type(exc).__name__)
            return
        self.stats["closes"] += 1
        logger.debug("{}: closed {} client of version {}", slot.name, slot.kind, slot.version)

    # ---------------------------------------------------------------- status

    def status(self, names: Iterable[str] | None = None) -> list[CredentialStatus]:
        """One row per configured credential: versions, age and a key fingerprint. Reads Vault when cold."""
        rows: list[CredentialStatus] = []
        wanted = list(names) if names is not None else list(self._config.secret_paths())
        for name in wanted:
            spec = self._spec_for_name(name)
            kind = (
                "exchange" if isinstance(spec, ExchangeConfig) else "llm" if isinstance(spec, LLMConfig) else spec.kind
            )
            try:
                entry = self._entry(spec.secret)
            except CredbrokerError as exc:
                rows.append(CredentialStatus(name, kind, spec.secret, None, None, "", None, None, str(exc)))
                continue
            secret = entry.secret
            field = next((f for f in _PRIMARY_FIELDS if f in secret), None)
            served = [s.version for s in list(self._slots.values()) if s.name == name]
            rows.append(
                CredentialStatus(
                    name=name,
                    kind=kind,
                    path=spec.secret,
                    version=secret.version,
                    served_version=max(served) if served else None,
                    created_time=secret.created_time,
                    age_s=_age_s(secret.created_time),
                    fingerprint=secret.fingerprint(field) if field else None,
                    error=f"version {secret.version} rejected: see logs" if self._failed.get(spec.secret) else None,
                )
            )
        return rows

    # ---------------------------------------------------------------- lifecycle

    def _stop_background(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    def close(self) -> None:
        """Stop the watcher and close every sync client. Use ``aclose()`` if async clients were handed out."""
        if self._closed:
            return
        self._stop_background()
        with self._reaper_cv:
            self._closed = True
            pending = [s for _, _, s in self._retired]
            self._retired.clear()
            self._reaper_cv.notify_all()
        slots = pending + list(self._slots.values())
        self._slots.clear()
        for slot in slots:
            if slot.loop is None:
                self._close_slot(slot)
            else:
                logger.warning("{}: async client left open; call 'await broker.aclose()' instead of close()", slot.name)
        self._cache.close()
        self._session.close()

    async def aclose(self) -> None:
        """Stop the watcher and close every client, awaiting async clients on this loop."""
        import asyncio

        if self._closed:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._stop_background)
        with self._reaper_cv:
            self._closed = True
            pending = [s for _, _, s in self._retired]
            self._retired.clear()
            self._reaper_cv.notify_all()
        slots = pending + list(self._slots.values())
        self._slots.clear()
        for slot in slots:
            factory = factory_for(slot.kind)
            try:
                if slot.loop is None:
                    factory.close(slot.client)
                elif slot.loop is loop:
                    await factory.aclose(slot.client)
                elif not slot.loop.is_closed() and slot.loop.is_running():
                    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(factory.aclose(slot.client), slot.loop))
                else:
                    continue
                self.stats["closes"] += 1
            except Exception as exc:
                logger.warning("{}: closing the {} client failed: {}", slot.name, slot.kind, type(exc).__name__)
        mine = [t for t in self._closing if t.get_loop() is loop]
        if mine:
            await asyncio.gather(*mine, return_exceptions=True)
        self._cache.close()
        self._session.close()

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Broker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<Broker vault={self._session.addr} clients={len(self._slots)}{' closed' if self._closed else ''}>"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _age_s(created: str) -> float | None:
    if not created:
        return None
    from datetime import UTC, datetime

    try:
        # Vault prints nanoseconds; fromisoformat takes at most microseconds.
        head, _, frac = created.rstrip("Z").partition(".")
        ts = datetime.fromisoformat(head + ("." + frac[:6] if frac else "")).replace(tzinfo=UTC)
    except ValueError:
        return None
    return max(0.0, (datetime.now(UTC) - ts).total_seconds())


def _chat_request(
    spec: LLMConfig, prompt: str, model: str | None, max_tokens: int | None, temperature: float | None
) -> dict[str, Any]:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt must be a non-empty string")
    return {
        "model": model or spec.model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": spec.max_tokens if max_tokens is None else max_tokens,
        "temperature": spec.temperature if temperature is None else temperature,
    }


def _reply_text(resp: Any) -> str:
    choices = getattr(resp, "choices", None) or []
    if not choices:
        return ""
    return str(getattr(choices[0].message, "content", "") or "")
