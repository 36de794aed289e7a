"""The memory measure, in a process of its own so that nothing else the benchmark did shows in its RSS.

Usage: ``python -m benchmarks._memory CONFIG ROTATIONS`` with the operator token in ``BENCH_OPS_TOKEN``.
The config names exchanges ``mem*`` (one client each, to size a cached client) and ``rot`` (rotated again and
again). Prints one JSON object on stdout. Linux only: RSS comes from ``/proc/self/statm``.
"""

from __future__ import annotations

import gc
import json
import os
import secrets
import sys
import time
import weakref
from typing import Any

PAGE_KB = os.sysconf("SC_PAGE_SIZE") / 1024


def rss_kb() -> float:
    """Resident set size now (not the peak), in KiB."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * PAGE_KB


def settled_rss_kb() -> float:
    gc.collect()
    gc.collect()
    return rss_kb()


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def _holder(obj: Any) -> str:
    """Who keeps a replaced client alive, for the report: a thread's local variable, or a container."""
    import threading

    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        f: Any = frame
        while f is not None:
            for var, value in f.f_locals.items():
                if getattr(value, "client", None) is obj:
                    return f"local '{var}' of {f.f_code.co_name}() in thread {names.get(ident, ident)}"
            f = f.f_back
    return ", ".join(sorted({type(r).__name__ for r in gc.get_referrers(obj)} - {"list"})) or "unknown"


def main(argv: list[str]) -> int:
    config_path, rotations_arg = argv
    rotations = int(rotations_arg)
    from loguru import logger

    logger.remove()
    from credbroker import Broker, VaultConfig, VaultIdentity, VaultSession, load_config
    from credbroker._redact import scrubber

    config = load_config(config_path)
    ops = VaultSession(
        VaultConfig(addr=config.identity.addr, auth="token", kv_mount=config.vault.kv_mount),
        VaultIdentity(addr=config.identity.addr, token=os.environ["BENCH_OPS_TOKEN"]),
    )
    names = sorted(n for n in config.exchanges if n.startswith("mem"))
    rot_path = config.exchanges["rot"].secret
    out: dict[str, Any] = {"clients": len(names), "rotations": rotations}
    # The rotation loop is driven by hand (write, then refresh_path), so no watcher thread is needed.
    with Broker(config, watch=False) as broker:
        broker.exchange("rot")  # loads ccxt and Binance's description once; not a cached-client cost
        before = settled_rss_kb()
        blocks_before = sys.getallocatedblocks()
        for name in names:
            broker.exchange(name)
        after = settled_rss_kb()
        out["rss_before_clients_kb"] = before
        out["rss_after_clients_kb"] = after
        out["per_client_kb"] = (after - before) / len(names)
        out["per_client_blocks"] = (sys.getallocatedblocks() - blocks_before) / len(names)

        refs: list[weakref.ref[Any]] = []
        closes_wanted = broker.stats["closes"]

        def rotate_once() -> None:
            nonlocal closes_wanted
            old = broker.exchange("rot")
            refs.append(weakref.ref(old))
            del old
            ops.write(rot_path, {"apiKey": secrets.token_hex(32), "secret": secrets.token_hex(32)})
            broker.refresh_path(rot_path)  # rebuilds now and retires the old client (closed after vault.drain)
            closes_wanted += 1
            deadline = time.monotonic() + 10
            while broker.stats["closes"] < closes_wanted and time.monotonic() < deadline:
                time.sleep(0.002)

        # Warm-up: let the allocator and the caches (scrubber, ccxt's shared tables) reach steady state.
        for _ in range(max(5, rotations // 10)):
            rotate_once()
        step = max(1, rotations // 10)
        points = [(0, settled_rss_kb())]
        blocks0 = sys.getallocatedblocks()
        scrubbed0 = len(scrubber._ordered)
        for i in range(1, rotations + 1):
            rotate_once()
            if i % step == 0:
                points.append((i, settled_rss_kb()))
        blocks1 = sys.getallocatedblocks()
        out["scrubber_values_per_rotation"] = (len(scrubber._ordered) - scrubbed0) / rotations
        gc.collect()
        quarter = max(2, len(points) // 4)
        windows = [points[k : k + quarter + 1] for k in range(0, len(points) - 1, quarter)]
        out["rss_points_kb"] = points
        out["per_rotation_kb"] = slope(points)
        out["per_rotation_kb_windows"] = [slope(w) for w in windows if len(w) > 1]
        out["per_rotation_blocks"] = (blocks1 - blocks0) / rotations
        out["old_clients"] = len(refs)
        alive = [i for i, r in enumerate(refs) if r() is not None]
        out["old_clients_alive"] = len(alive)
        out["alive_indices"] = alive
        out["alive_held_by"] = sorted({_holder(refs[i]()) for i in alive})
        out["closes"] = broker.stats["closes"]
        out["closes_wanted"] = closes_wanted
        out["builds"] = broker.stats["builds"]
    ops.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
