"""``RotationWatcher``: notices new secret versions in the background and has the broker rebuild.

Two polling signals, cheapest first (see the README's "Rotation" section):

1. the rotation marker, one small secret that ``credbroker rotate`` bumps after each write. One metadata
   read per ``marker_interval`` (0.5 s) whatever the number of credentials: ~1 s propagation.
2. each cached credential's KV v2 metadata every ``poll_interval`` (minus jitter), which catches writes made
   behind credbroker's back (``bao kv put``, the UI, Terraform).

The third signal, an authentication failure, is handled by the broker on the calling thread.
"""

from __future__ import annotations

import random
import threading
import time
from typing import TYPE_CHECKING

from credbroker._log import logger
from credbroker.exceptions import CredbrokerError, PermissionDenied, SecretNotFound, VaultUnavailable

if TYPE_CHECKING:
    from credbroker._broker import Broker

__all__ = ["RotationWatcher"]


class RotationWatcher:
    """A daemon thread that polls the rotation marker and per-secret metadata. ``stop()`` joins it."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        cfg = broker.config.vault
        self._marker = cfg.rotation_marker
        self._marker_interval = cfg.marker_interval_s
        self._poll_interval = cfg.poll_interval_s
        self._jitter = cfg.jitter
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._marker_version: int | None = None
        self._marker_enabled = True
        self._due: dict[str, float] = {}
        self._unavailable = False
        self._last_error: str | None = None
        self.polls = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="credbroker-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None

    def _next_due(self) -> float:
        return time.monotonic() + self._poll_interval * (1.0 - random.uniform(0.0, self._jitter))

    def _run(self) -> None:
        while not self._stop.wait(self._marker_interval):
            try:
                self.tick()
                self._last_error = None
                if self._unavailable:
                    self._unavailable = False
                    logger.info("rotation watcher: Vault reachable again")
            except VaultUnavailable as exc:
                if not self._unavailable:
                    self._unavailable = True
                    logger.warning("rotation watcher: {}; will keep trying", exc)
            except CredbrokerError as exc:
                # Once per distinct failure: a refused login fails the same way every tick.
                if str(exc) != self._last_error:
                    self._last_error = str(exc)
                    logger.error("rotation watcher: {}", exc)
            except Exception:
                logger.exception("rotation watcher: unexpected failure")

    def tick(self) -> None:
        """One round: the marker, then every credential whose metadata poll is due."""
        self.polls += 1
        broker = self._broker
        in_use = broker.paths_in_use()
        changed: set[str] = set()
        if self._marker_enabled:
            changed |= self._check_marker(in_use)
        now = time.monotonic()
        for path in in_use:
            if path in changed:
                continue
            due = self._due.get(path)
            if due is None:
                self._due[path] = self._next_due()
                continue
            if now < due:
                continue
            self._due[path] = self._next_due()
            if self._stop.is_set():
                return
            try:
                meta = broker.session.metadata(path)
            except SecretNotFound:
                changed.add(path)
                continue
            served = broker.known_version(path)
            if meta.current_version != served or meta.deletion_time or meta.destroyed:
                changed.add(path)
        for path in changed:
            version = broker.refresh_path(path)
            logger.debug("rotation watcher: {} now at version {}", path, version)

    def _check_marker(self, in_use: set[str]) -> set[str]:
        broker = self._broker
        try:
            meta = broker.session.metadata(self._marker)
        except SecretNotFound:
            if self._marker_version is None:
                self._marker_version = 0
            return set()
        except PermissionDenied:
            self._marker_enabled = False
            logger.warning(
                "rotation watcher: policy does not grant read on the rotation marker {}; rotations made with "
                "'credbroker rotate' will be noticed only by metadata polling (every {:g}s)",
                self._marker,
                self._poll_interval,
            )
            return set()
        version = meta.current_version
        previous, self._marker_version = self._marker_version, version
        if version == previous or not in_use:
            return set()
        # On the first look (previous is None) a rotation may have landed between our first read of a secret
        # and now; re-checking the paths the marker names costs one read each and cannot miss it.
        # The marker names the paths it rotated; check those against what we serve.
        try:
            paths = set(broker.session.read_marker(self._marker))
        except CredbrokerError:
            paths = set(in_use)
        return paths & in_use
