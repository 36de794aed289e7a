"""credbroker's logging: loguru, with every loaded secret value replaced by its fingerprint.

credbroker logs through a child of loguru's global logger, patched with ``scrub_record`` and bound with
``credbroker=True``. It installs no sink unless asked (``configure_logging``) and does not touch the global
patcher, so an application keeps control of its own loguru setup. An application that wants its own records
scrubbed too adds the same patcher: ``logger.configure(patcher=credbroker.scrub_record)``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, cast

from credbroker._redact import scrub_exception, scrubber

if TYPE_CHECKING:
    from loguru import Logger, Record

__all__ = ["configure_logging", "logger", "scrub_record"]


def scrub_record(record: Record) -> None:
    """loguru patcher: replace every secret value credbroker has loaded with its fingerprint."""
    record["message"] = scrubber.scrub(record["message"])
    exc = record["exception"]
    if exc is not None and exc.value is not None:
        # The formatted traceback is built from the exception's args; scrub them in place so that neither the
        # message nor a chained cause can carry a key into a sink.
        scrub_exception(exc.value)
    for key, value in list(record["extra"].items()):
        if isinstance(value, str):
            record["extra"][key] = scrubber.scrub(value)


class _LazyLogger:
    """Imports loguru on the first log call: ``import credbroker`` stays cheap (loguru costs ~30 ms)."""

    _real: Any = None

    def __getattr__(self, name: str) -> Any:
        real = _LazyLogger._real
        if real is None:
            from loguru import logger as root

            real = _LazyLogger._real = root.patch(scrub_record).bind(credbroker=True)
        return getattr(real, name)


logger = cast("Logger", _LazyLogger())


def configure_logging(level: str = "INFO", sink: Any = None) -> int:
    """Add a loguru sink for credbroker's own messages, with ``diagnose=False``.

    ``diagnose=True`` would print local variables in tracebacks, and a local may hold a key. Returns the sink
    id for ``logger.remove``.
    """
    from loguru import logger as root

    return root.add(
        sink if sink is not None else sys.stderr,
        level=level,
        diagnose=False,
        backtrace=False,
        filter=lambda r: bool(r["extra"].get("credbroker")),
        format="{time:HH:mm:ss.SSS} | {level: <7} | credbroker | {message}",
    )
