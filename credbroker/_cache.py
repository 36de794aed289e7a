"""``SecretCache``: secrets in memory with a TTL, one Vault read per cold key, stale-if-error within bounds."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from credbroker._log import logger
from credbroker._secret import Secret
from credbroker._singleflight import SingleFlight
from credbroker._vault import VaultSession
from credbroker.exceptions import CredbrokerError, SecretDeleted, SecretNotFound, VaultUnavailable

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

__all__ = ["CacheEntry", "SecretCache"]

# While Vault is failing, a stale entry is re-tried at most this often, so an outage does not turn every
# client request into a Vault request, and a recovered Vault is noticed within this long.
RETRY_AFTER_ERROR_S = 0.5


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached secret. Replaced whole, never mutated, so readers need no lock."""

    secret: Secret
    fetched_at: float
    read_started_at: float
    fresh_until: float
    stale_until: float


class SecretCache:
    """Secrets by path, each read from Vault at most once at a time.

    Safe to share between threads and event loops. Entries are immutable and the table is only ever
    assigned, so ``get`` on a fresh entry takes no lock. Network I/O never happens under a lock: cold and
    expired keys go through a per-key single flight. After ``ttl_s`` (minus up to ``jitter`` of it, so a
    fleet spreads its refreshes) an entry is refreshed by the next caller while the others keep getting the
    cached value. If Vault is unavailable the cached secret is served until ``max_stale_s`` past its expiry,
    with one warning.
    """

    def __init__(
        self,
        session: VaultSession,
        *,
        ttl_s: float,
        max_stale_s: float,
        jitter: float = 0.1,
        read_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._ttl_s = ttl_s
        self._max_stale_s = max_stale_s
        self._jitter = jitter
        self._read_timeout_s = read_timeout_s
        self._clock = clock
        self._entries: dict[str, CacheEntry] = {}
        self._flights: SingleFlight[CacheEntry] = SingleFlight()
        self._retry_at: dict[str, float] = {}
        self._warned_stale: set[str] = set()
        self._warn_lock = threading.Lock()
        self._background: set[str] = set()
        self._pool: ThreadPoolExecutor | None = None
        self.reads = 0

    # ---------------------------------------------------------------- reading

    def peek(self, path: str) -> CacheEntry | None:
        """The cached entry, fresh or not, without touching Vault."""
        return self._entries.get(path)

    def paths(self) -> list[str]:
        return list(self._entries)

    def get(self, path: str) -> CacheEntry:
        """Return a usable entry for ``path``, reading Vault only when it is cold or expired."""
        entry = self._entries.get(path)
        now = self._clock()
        if entry is not None and now < entry.fresh_until:
            return entry
        if entry is not None and self._flights.busy(path):
            # Someone is refreshing it; serve what we have rather than queue behind Vault.
            return entry
        if entry is not None and now < entry.stale_until:
            # Expired but still servable: refresh off the caller's thread, so a slow or hung Vault never holds
            # up a trading call while a usable secret is cached.
            self._refresh_in_background(path, entry)
            return entry
        return self._get_slow(path, entry, now)

    async def aget(self, path: str) -> CacheEntry:
        """Coroutine twin of ``get``: the Vault read runs in a worker thread, never on the event loop."""
        entry = self._entries.get(path)
        now = self._clock()
        if entry is not None and (now < entry.fresh_until or self._flights.busy(path)):
            return entry
        if entry is not None and now < entry.stale_until:
            self._refresh_in_background(path, entry)
            return entry
        import asyncio

        loop = asyncio.get_running_loop()

        async def work() -> CacheEntry:
            return await loop.run_in_executor(None, self._load, path)

        try:
            return await self._flights.arun(path, work)
        except VaultUnavailable as exc:
            if entry is None:
                raise
            return self._stale_or_raise(path, entry, exc)

    def _get_slow(self, path: str, entry: CacheEntry | None, now: float) -> CacheEntry:
        if entry is not None and now < self._retry_at.get(path, 0.0):
            return self._stale_or_raise(path, entry, None)
        try:
            return self._flights.run(path, lambda: self._load(path), timeout=self._read_timeout_s)
        except VaultUnavailable as exc:
            if entry is None:
                raise
            return self._stale_or_raise(path, entry, exc)

    def _refresh_in_background(self, path: str, entry: CacheEntry) -> None:
        now = self._clock()
        with self._warn_lock:
            if path in self._background or now < self._retry_at.get(path, 0.0):
                return
            self._background.add(path)
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="credbroker-refresh")
            pool = self._pool

        def work() -> None:
            try:
                self._flights.run(path, lambda: self._load(path), timeout=self._read_timeout_s)
            except VaultUnavailable as exc:
                with contextlib.suppress(VaultUnavailable):
                    self._stale_or_raise(path, entry, exc)  # warns once
            except CredbrokerError as exc:
                # Deleted, not found, refused: the next caller reads synchronously and gets the error.
                logger.warning("background refresh of {} failed: {}", path, exc)
            finally:
                with self._warn_lock:
                    self._background.discard(path)

        try:
            pool.submit(work)
        except RuntimeError:  # shut down: the cache is closing
            with self._warn_lock:
                self._background.discard(path)

    def close(self) -> None:
        """Stop background refreshes (those under way finish within the Vault timeout)."""
        with self._warn_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def refresh(self, path: str) -> CacheEntry:
        """Read ``path`` from Vault now (joining a read already under way) and cache the result."""
        return self._flights.run(path, lambda: self._load(path), timeout=self._read_timeout_s)

    def _stale_or_raise(self, path: str, entry: CacheEntry, exc: VaultUnavailable | None) -> CacheEntry:
        now = self._clock()
        if now >= entry.stale_until:
            raise VaultUnavailable(
                f"Vault is unavailable and the cached copy of {path} (version {entry.secret.version}) is "
                f"older than max_stale ({self._max_stale_s:g}s past its TTL); refusing to serve it",
                path=path,
            ) from exc
        with self._warn_lock:
            first = path not in self._warned_stale
            self._warned_stale.add(path)
        if first:
            logger.warning(
                "Vault unavailable; serving cached {} version {} for up to {:.0f}s more ({})",
                path,
                entry.secret.version,
                entry.stale_until - now,
                exc if exc is not None else "retrying shortly",
            )
        return entry

    def refresh_after(self, path: str, moment: float) -> CacheEntry:
        """Like ``refresh``, but the result comes from a read that began after ``moment``.

        After an authentication failure, a read that was already under way may predate the rotation that
        caused the failure; joining it would miss the new version.
        """
        entry = self.refresh(path)
        if entry.read_started_at < moment:
            entry = self.refresh(path)
        return entry

    def _load(self, path: str) -> CacheEntry:
        self.reads += 1
        started = self._clock()
        try:
            secret = self._session.read(path)
        except VaultUnavailable:
            self._retry_at[path] = self._clock() + RETRY_AFTER_ERROR_S
            raise
        except (SecretDeleted, SecretNotFound):
            # Never serve a version the operator deleted; the broker evicts clients built from it.
            self.evict(path)
            raise
        now = self._clock()
        import random  # on first read, not at import: `import credbroker` stays light (scripts/bench)

        ttl = self._ttl_s * (1.0 - random.uniform(0.0, self._jitter))
        entry = CacheEntry(
            secret=secret,
            fetched_at=now,
            read_started_at=started,
            fresh_until=now + ttl,
            stale_until=now + self._ttl_s + self._max_stale_s,
        )
        self._entries[path] = entry
        self._retry_at.pop(path, None)
        with self._warn_lock:
            if path in self._warned_stale:
                self._warned_stale.discard(path)
                logger.info("Vault reachable again; {} refreshed (version {})", path, secret.version)
        return entry

    def evict(self, path: str) -> None:
        self._entries.pop(path, None)

    def clear(self) -> None:
        self._entries.clear()
