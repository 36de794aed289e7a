"""Per-key single flight: concurrent callers asking for the same key share one piece of work."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = ["SingleFlight"]

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Runs at most one piece of work per key at a time; everyone else waits for its result.

    Safe to share between threads and event loops. The lock guards only the in-flight table, never the work,
    so a slow fetch for one key does not block any other key. Waiters block on a ``concurrent.futures.Future``
    (threads) or await it through ``asyncio.wrap_future`` (coroutines), so one table serves both worlds.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight: dict[Hashable, Future[T]] = {}

    def _claim(self, key: Hashable) -> tuple[Future[T], bool]:
        with self._lock:
            fut = self._inflight.get(key)
            if fut is not None:
                return fut, False
            from concurrent.futures import Future

            fut = Future()
            self._inflight[key] = fut
            return fut, True

    def _release(self, key: Hashable) -> None:
        with self._lock:
            self._inflight.pop(key, None)

    def run(self, key: Hashable, work: Callable[[], T], timeout: float | None = None) -> T:
        """Run ``work`` unless it already runs for ``key``; either way return (or raise) its outcome."""
        fut, owner = self._claim(key)
        if not owner:
            return fut.result(timeout)
        try:
            result = work()
        except BaseException as exc:
            fut.set_exception(exc)
            # Nobody may be waiting: mark it retrieved so the future does not log "never retrieved".
            fut.exception()
            raise
        finally:
            self._release(key)
        fut.set_result(result)
        return result

    async def arun(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        """The coroutine twin of ``run``."""
        fut, owner = self._claim(key)
        if not owner:
            import asyncio

            return await asyncio.wrap_future(fut)
        try:
            result = await work()
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()
            raise
        finally:
            self._release(key)
        fut.set_result(result)
        return result

    def busy(self, key: Hashable) -> bool:
        return key in self._inflight
