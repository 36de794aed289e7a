"""A stand-in trading bot for the rotation measures: a Broker in its own process, asking for a client in a loop.

Usage: ``python -m benchmarks._served CONFIG NAME``. Prints ``<version> <time.time()>`` on stdout each time
the client it is handed changes (the first line is the version it starts with), and exits when its stdin
closes. The timestamp is the wall clock at the moment ``broker.exchange(NAME)`` first returned the new client,
so the parent can compare it with the audit log's time of the Vault write (same host, same clock).
"""

from __future__ import annotations

import sys
import threading
import time


def main(argv: list[str]) -> int:
    config_path, name = argv
    from loguru import logger

    logger.remove()  # the parent reads our stdout; warnings and errors still reach stderr below
    from credbroker import Broker, configure_logging

    configure_logging("WARNING", sink=sys.stderr)
    stop = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    with Broker.from_config(config_path) as broker:
        path = broker.config.exchanges[name].secret
        last = None
        while not stop.is_set():
            client = broker.exchange(name)
            if client is not last:
                seen = time.time()
                last = client
                sys.stdout.write(f"{broker.served_version(path)} {seen:.6f}\n")
                sys.stdout.flush()
            time.sleep(0.001)  # a bot asking for its client about a thousand times a second
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
