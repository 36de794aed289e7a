"""Fingerprints and the scrubber that keeps loaded secret values out of every log line.

A fingerprint is the only form in which credbroker ever shows a key: the first 8 hex characters of its SHA-256.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable

__all__ = ["REDACTED", "fingerprint", "scrub_exception", "scrubber"]

REDACTED = "***"
# Values shorter than this are too common to scrub without mangling ordinary text ("true", "swap").
_MIN_SCRUB_LEN = 6


def fingerprint(value: str | bytes) -> str:
    """Return a short, stable, non-reversible tag for a secret value."""
    import hashlib  # here, not at module level: OpenSSL's hashlib costs ~4 ms of `import credbroker`

    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()[:8]


class Scrubber:
    """Remembers every secret value credbroker has loaded and replaces it in text.

    Safe to share between threads: registration takes a lock and publishes a new immutable tuple, so
    ``scrub`` reads without locking.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._ordered: tuple[str, ...] = ()

    def add(self, values: Iterable[str]) -> None:
        new: set[str] = set()
        for v in values:
            # The stripped form too: a value stored with a stray newline is used (and could leak) stripped.
            for form in (v, v.strip()):
                if len(form) >= _MIN_SCRUB_LEN:
                    new.add(form)
        with self._lock:
            if new <= self._values:
                return
            self._values = self._values | new
            # Longest first, so a secret containing another is replaced whole.
            self._ordered = tuple(sorted(self._values, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        for value in self._ordered:
            if value in text:
                text = text.replace(value, f"<{REDACTED}{fingerprint(value)}>")
        return text

    @property
    def active(self) -> bool:
        return bool(self._ordered)

    def clear(self) -> None:
        with self._lock:
            self._values = frozenset()
            self._ordered = ()


#: The process-wide scrubber. Every secret the broker loads is registered here.
scrubber = Scrubber()


def scrub_exception(exc: BaseException, _depth: int = 0) -> None:
    """Replace every loaded secret in ``exc``'s message, and its causes', in place.

    A traceback is printed from the exception's ``args`` (and some libraries' ``message``); a service that echoes
    a key in its error body would otherwise put the key into any log or crash report that prints the chain.
    """
    if _depth > 8 or not scrubber.active:
        return
    with contextlib.suppress(AttributeError, TypeError):
        exc.args = tuple(scrubber.scrub(a) if isinstance(a, str) else a for a in exc.args)
    message = getattr(exc, "message", None)
    if isinstance(message, str):
        with contextlib.suppress(AttributeError, TypeError):
            exc.message = scrubber.scrub(message)  # type: ignore[attr-defined]
    for nxt in (exc.__cause__, exc.__context__):
        if nxt is not None:
            scrub_exception(nxt, _depth + 1)
