"""``credbroker demo``: a narrated, end-to-end rotation on this machine, with real Vault and signature checks.

The steps, each under its own header:

1. start an OpenBao dev server and seed it (or use ``--vault-addr`` with the operator's ``VAULT_TOKEN``);
2. start local Binance, KuCoin, Bitget and OpenAI endpoints and allow the seeded keys there;
3. write a temporary config (exchanges pointed at the endpoints) and build a ``Broker`` from it;
4. build every client, make one signed call per exchange and one LLM call, print the status table;
5. rotate binance with ``rotate_secret`` and show the broker serving the new key without a restart, while
   the old key is refused by the exchange;
6. rotate it again behind credbroker's back (``bao kv put``) and show the metadata poll picking it up;
7. close everything and print a one-line summary.

Only fingerprints are ever printed. Every value the demo handles is registered with the scrubber first,
so that even an error message echoing a request shows a fingerprint instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from credbroker._broker import Broker
from credbroker._config import VaultConfig, VaultIdentity, load_config
from credbroker._factories import factory_for
from credbroker._redact import fingerprint, scrubber
from credbroker._rotate import rotate_secret
from credbroker._secret import Secret
from credbroker._upstream import classify
from credbroker._vault import VaultSession
from credbroker.exceptions import ConfigError, CredbrokerError, UpstreamAuthError

__all__ = ["DemoReport", "run_demo"]

STEPS = 7
EXCHANGES = ("binance", "kucoin", "bitget")
# How long a rotation may take to reach the broker before the demo calls it a failure.
PICKUP_TIMEOUT_S = 20.0
_POLL_S = 0.05


@dataclass
class DemoReport:
    """What the demo found: ``ok`` only if every check passed."""

    pickups_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def new_exchange_fields(name: str, old: Mapping[str, str]) -> dict[str, str]:
    """A fresh, random key for ``name`` with the same field names as ``old`` (what an exchange issues)."""
    return {k: secrets.token_hex(32) for k in old}


def bao_env(addr: str, token: str, cacert: str | None) -> dict[str, str]:
    """The environment for a ``bao`` subprocess: this process's, with the operator's Vault identity only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update(VAULT_ADDR=addr, VAULT_TOKEN=token)
    if cacert:
        env["VAULT_CACERT"] = cacert
    return env


def _wait_for_ctrl_c() -> None:
    """Block until Ctrl-C or SIGTERM, so that ``--keep`` still cleans up when its terminal goes away."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class _Vault:
    """The Vault the demo runs against: where, the operator's token, and the seeded credentials."""

    addr: str
    ops_token: str = field(repr=False)
    kv_mount: str
    prefix: str
    credentials: dict[str, dict[str, str]] = field(repr=False)
    cacert: str | None = None
    seed_result: Any = None  # set when the demo seeded its own server (it holds the broker's AppRole)


class Demo:
    """One run of the demo. Not thread-safe; ``run()`` it once."""

    def __init__(
        self,
        console: Console,
        *,
        vault_addr: str | None = None,
        prefix: str = "credbroker-demo",
        kv_mount: str = "kv",
        keep: bool = False,
        wait_for_exit: Callable[[], None] = _wait_for_ctrl_c,
    ) -> None:
        self.console = console
        self.vault_addr = vault_addr
        self.prefix = prefix
        self.kv_mount = kv_mount
        self.keep = keep
        self.wait_for_exit = wait_for_exit
        self.report = DemoReport()
        self.stack = contextlib.ExitStack()
        self.step_no = 0
        self.vault: _Vault | None = None
        self.endpoints: dict[str, Any] = {}
        self.workdir: Path | None = None
        self.broker: Broker | None = None
        self.ops: VaultSession | None = None

    # ------------------------------------------------------------ narration

    def step(self, title: str) -> None:
        self.step_no += 1
        self.console.print()
        self.console.rule(f"[bold]Step {self.step_no}/{STEPS} · {escape(title)}", align="left")

    def say(self, text: str) -> None:
        self.console.print(escape(scrubber.scrub(text)))

    def check(self, ok: bool, text: str) -> bool:
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
        self.console.print(f"  {mark} {escape(scrubber.scrub(text))}")
        if not ok:
            self.report.failures.append(scrubber.scrub(text))
        return ok

    def protect(self, fields: Mapping[str, str]) -> None:
        """Register values with the scrubber before they can reach any message."""
        scrubber.add(fields.values())

    # ------------------------------------------------------------ the run

    def run(self) -> DemoReport:
        try:
            with self.stack:
                self._steps()
                if self.keep and self.report.ok:
                    self._summary()
                    self._keep_running()
            self.say(f"endpoints stopped, {self._vault_fate()}, temporary files removed")
        except KeyboardInterrupt:
            self.report.failures.append("interrupted")
        except CredbrokerError as exc:
            self.check(False, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # the demo reports any failure as one line and cleans up
            self.check(False, f"unexpected {type(exc).__name__}: {exc}")
        if not (self.keep and self.report.ok):
            self._summary()
        return self.report

    def _vault_fate(self) -> str:
        if self.vault_addr is None:
            return "OpenBao stopped"
        if self.keep:
            return f"demo secrets left under {self.kv_mount}/{self.prefix}/"
        return f"demo secrets deleted from {self.kv_mount}/{self.prefix}/"

    def _steps(self) -> None:
        self.start_vault()
        self.start_endpoints()
        self.start_broker()
        self.first_calls()
        self.rotate_with_credbroker()
        self.rotate_out_of_band()
        self.shut_down()

    # ------------------------------------------------------------ step 1

    def start_vault(self) -> None:
        if self.vault_addr is None:
            self.step("start an OpenBao dev server and seed it")
            self.vault = self._embedded_vault()
        else:
            self.step(f"use the Vault at {self.vault_addr}")
            self.vault = self._external_vault(self.vault_addr)
        v = self.vault
        for path, fields in sorted(v.credentials.items()):
            fps = ", ".join(f"{k} {fingerprint(val)}" for k, val in fields.items())
            self.say(f"  {v.kv_mount}/{path} v1: {fps}")
        vault_cfg = VaultConfig(addr=v.addr, auth="token", kv_mount=v.kv_mount)
        self.ops = VaultSession(vault_cfg, VaultIdentity(addr=v.addr, token=v.ops_token, cacert=v.cacert))
        self.stack.callback(self.ops.close)

    def _embedded_vault(self) -> _Vault:
        from credbroker.testing.openbao import OpenBaoServer, seed

        with self.console.status("starting bao server -dev ..."):
            t0 = time.monotonic()
            server = self.stack.enter_context(OpenBaoServer(mode="dev"))
            assert server.root_token is not None
            seeded = seed(server.addr, server.root_token)
        for fields in seeded.credentials.values():
            self.protect(fields)
        scrubber.add([seeded.ops_token, seeded.secret_id, seeded.role_id, server.root_token])
        self.say(f"OpenBao {server.addr} (pid {server.pid}) up and seeded in {time.monotonic() - t0:.1f} s")
        self.say(
            f"KV v2 at {seeded.kv_mount}/, AppRole 'credbroker' (read-only policy), ops token "
            f"{fingerprint(seeded.ops_token)} (write policy); example credentials:"
        )
        return _Vault(
            addr=server.addr,
            ops_token=seeded.ops_token,
            kv_mount=seeded.kv_mount,
            prefix=seeded.prefix,
            credentials=seeded.credentials,
            seed_result=seeded,
        )

    def _external_vault(self, addr: str) -> _Vault:
        from credbroker.testing.openbao import default_credentials

        token = os.environ.get("VAULT_TOKEN", "").strip()
        if not token:
            raise ConfigError("--vault-addr needs VAULT_TOKEN in the environment (an operator token)")
        scrubber.add([token])
        cacert = os.environ.get("VAULT_CACERT") or None
        creds = default_credentials(self.prefix)
        vault_cfg = VaultConfig(addr=addr, auth="token", kv_mount=self.kv_mount)
        with VaultSession(vault_cfg, VaultIdentity(addr=addr, token=token, cacert=cacert)) as ops:
            for path, fields in creds.items():
                self.protect(fields)
                ops.write(path, fields)
                self.stack.callback(self._forget, path, bao_env(addr, token, cacert))
        self.stack.callback(self._forget, f"{self.prefix}/_credbroker/rotation", bao_env(addr, token, cacert))
        self.say(
            f"wrote example credentials under {self.kv_mount}/{self.prefix}/ with VAULT_TOKEN "
            f"{fingerprint(token)}; the broker will use that token too (the demo creates no AppRole in your Vault):"
        )
        return _Vault(
            addr=addr, ops_token=token, kv_mount=self.kv_mount, prefix=self.prefix, credentials=creds, cacert=cacert
        )

    def _forget(self, path: str, env: dict[str, str]) -> None:
        """Delete a path the demo wrote in someone else's Vault, all versions (``bao kv metadata delete``)."""
        from credbroker.testing.openbao import find_bao_binary

        if self.keep:
            return
        argv = [find_bao_binary(), "kv", "metadata", "delete", f"-mount={self.kv_mount}", path]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)
        if proc.returncode != 0:
            self.say(f"could not delete {self.kv_mount}/{path}: {proc.stderr.strip()[-300:]}")

    # ------------------------------------------------------------ step 2

    def start_endpoints(self) -> None:
        from credbroker.testing.endpoints import BinanceEndpoint, BitgetEndpoint, KucoinEndpoint, OpenAIEndpoint

        self.step("start local exchange and LLM endpoints that check signatures")
        assert self.vault is not None
        for name, cls in (
            ("binance", BinanceEndpoint),
            ("kucoin", KucoinEndpoint),
            ("bitget", BitgetEndpoint),
            ("openai", OpenAIEndpoint),
        ):
            ep: Any = self.stack.enter_context(cls())
            self.endpoints[name] = ep
            fields = self.credentials(name)
            if name == "openai":
                ep.allow(fields["api_key"])
                key = fields["api_key"]
            else:
                ep.allow(fields["apiKey"], fields["secret"], fields.get("password"))
                key = fields["apiKey"]
            self.say(f"  {name:<8} {ep.url}  allows key {fingerprint(key)}")

    def path(self, name: str) -> str:
        assert self.vault is not None
        group = "llm" if name == "openai" else "exchanges"
        return f"{self.vault.prefix}/{group}/{name}"

    def credentials(self, name: str) -> dict[str, str]:
        assert self.vault is not None
        return self.vault.credentials[self.path(name)]

    # ------------------------------------------------------------ step 3

    def start_broker(self) -> None:
        import yaml

        self.step("write a temporary config and build a Broker")
        assert self.vault is not None
        v = self.vault
        workdir = Path(tempfile.mkdtemp(prefix="credbroker-demo-"))
        os.chmod(workdir, 0o700)
        self.workdir = workdir
        self.stack.callback(shutil.rmtree, workdir, True)
        data = self.config_data(workdir)
        config_path = workdir / "config.yaml"
        config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        # The broker's identity comes from the files written here, never from this shell's VAULT_* variables.
        environ: dict[str, str] = {}
        if v.seed_result is not None:
            from credbroker.testing.openbao import write_ops_env, write_secrets_env

            write_secrets_env(workdir / "secrets.env", v.seed_result)
            write_ops_env(workdir / "ops.env", v.seed_result)
            mode = (workdir / "secrets.env").stat().st_mode & 0o777
            self.say(f"{workdir / 'secrets.env'} (mode {mode:o}) holds only the broker's AppRole:")
            self.say(
                f"  role_id {fingerprint(v.seed_result.role_id)}, secret_id {fingerprint(v.seed_result.secret_id)}"
            )
        else:
            environ = {"VAULT_ADDR": v.addr, "VAULT_TOKEN": v.ops_token}
            if v.cacert:
                environ["VAULT_CACERT"] = v.cacert
        self.say(f"{config_path}:")
        self.console.print(escape(config_path.read_text(encoding="utf-8")).rstrip(), style="dim")
        t0 = time.monotonic()
        self.broker = Broker(load_config(config_path, environ=environ))
        self.stack.callback(self.broker.close)
        self.say(f"{self.broker!r} built in {time.monotonic() - t0:.2f} s; its rotation watcher is running")

    def config_data(self, workdir: Path) -> dict[str, Any]:
        assert self.vault is not None
        v = self.vault
        vault: dict[str, Any] = {
            "addr": v.addr,
            "auth": "approle" if v.seed_result is not None else "token",
            "kv_mount": v.kv_mount,
            "poll_interval": 1,
            "marker_interval": 0.5,
            "rotation_marker": f"{v.prefix}/_credbroker/rotation",
            "drain": 1,
        }
        data: dict[str, Any] = {}
        if v.seed_result is not None:
            data["paths"] = {"secrets_env_path": str(workdir / "secrets.env")}
        data["vault"] = vault
        data["exchanges"] = {
            name: {"secret": self.path(name), "api_base": self.endpoints[name].url} for name in EXCHANGES
        }
        data["exchanges"]["bitget"]["options"] = {"defaultType": "swap"}
        data["llm"] = {
            "openai": {
                "secret": self.path("openai"),
                "base_url": self.endpoints["openai"].url + "/v1",
                "model": "gpt-4o-mini",
                "max_tokens": 16,
                "max_retries": 0,
            }
        }
        return data

    # ------------------------------------------------------------ step 4

    def first_calls(self) -> None:
        from credbroker.cli import status_table

        self.step("build every client and make one signed call each")
        broker = self.need_broker()
        for name in EXCHANGES:
            self.signed_call(name, f"{name}: fetch_balance signed and accepted")
        try:
            reply = broker.query_llm("Say hello to the credbroker demo", provider="openai")
            self.check(True, f"openai: chat completion accepted, reply {reply!r}")
        except CredbrokerError as exc:
            self.check(False, f"openai: {type(exc).__name__}: {exc}")
        self.console.print()
        self.console.print(status_table(broker.status(), title="credbroker status (fingerprints only)"))

    def signed_call(self, name: str, what: str) -> bool:
        """One ``fetch_balance`` through the broker; prints a short balance summary."""
        broker = self.need_broker()
        try:
            balance = broker.call(name, "fetch_balance")
        except CredbrokerError as exc:
            return self.check(False, f"{name}: {type(exc).__name__}: {exc}")
        totals = balance.get("total") or {}
        shown = ", ".join(f"{asset} {amount:g}" for asset, amount in sorted(totals.items()) if amount)
        return self.check(True, f"{what} ({shown or 'empty account'})")

    def need_broker(self) -> Broker:
        assert self.broker is not None
        return self.broker

    # ------------------------------------------------------------ step 5

    def rotate_with_credbroker(self) -> None:
        self.step("rotate binance with credbroker (rotate_secret, operator token)")
        broker, ops = self.need_broker(), self.ops
        assert ops is not None
        ep = self.endpoints["binance"]
        path = self.path("binance")
        old = self.credentials("binance")
        old_client = broker.exchange("binance")
        old_version = broker.served_version(path)
        new = new_exchange_fields("binance", old)
        self.protect(new)
        ep.allow(new["apiKey"], new["secret"])
        self.say(
            f"the exchange issued a new key {fingerprint(new['apiKey'])}; the old one {fingerprint(old['apiKey'])} still works"
        )
        result = rotate_secret(ops, broker.config, "binance", new)
        fps = ", ".join(f"{k} {fp}" for k, fp in result.fingerprints.items())
        self.say(f"wrote {ops.mount}/{path}: version {result.old_version} → {result.new_version} ({fps})")
        self.say("and bumped the rotation marker every broker polls")
        if not self.wait_for_pickup(path, result.new_version, "rotation marker"):
            return
        ep.revoke(old["apiKey"])
        self.say(f"old key {fingerprint(old['apiKey'])} revoked at the exchange")
        client = broker.exchange("binance")
        served = broker.served_version(path)
        self.check(
            client is not old_client and served == result.new_version,
            f"broker.exchange('binance') is a new client serving version {served} (was {old_version})",
        )
        self.check(
            fingerprint(client.apiKey) == fingerprint(new["apiKey"]),
            f"it signs with the new key {fingerprint(client.apiKey)}",
        )
        self.accepted_with(new["apiKey"], "signed call accepted with the new key")
        self.old_key_refused(path, old_version or 0, old)
        self.vault_credentials_now(path, new)

    def wait_for_pickup(self, path: str, version: int, signal: str) -> bool:
        """Poll what the broker serves until it is ``version``; record how long that took."""
        broker = self.need_broker()
        t0 = time.monotonic()
        with self.console.status(f"waiting for the broker to serve version {version} ({signal}) ..."):
            while broker.served_version(path) != version and time.monotonic() - t0 < PICKUP_TIMEOUT_S:
                time.sleep(_POLL_S)
        took = time.monotonic() - t0
        ok = broker.served_version(path) == version
        if ok:
            self.report.pickups_s.append(took)
        return self.check(ok, f"broker serves version {version} after {took:.1f} s, without a restart ({signal})")

    def accepted_with(self, api_key: str, what: str) -> bool:
        ep = self.endpoints["binance"]
        before = ep.stats.by_key.get(api_key, 0)
        if not self.signed_call("binance", what):
            return False
        after = ep.stats.by_key.get(api_key, 0)
        return self.check(after > before, f"the exchange counted it against key {fingerprint(api_key)}")

    def old_key_refused(self, path: str, version: int, old: Mapping[str, str]) -> None:
        """A client still holding the old key (a process that never rotated) is refused by the exchange."""
        broker = self.need_broker()
        spec = broker.config.exchanges["binance"]
        factory = factory_for("ccxt")
        stale = factory.build(Secret(path, version, old), spec)
        try:
            stale.fetch_balance()
        except Exception as exc:  # classified below; anything else is a failed check
            err = classify(exc, "binance", stale)
            refused = isinstance(err, UpstreamAuthError)
            shown = err if err is not None else exc
            self.check(refused, f"a client with the old key {fingerprint(old['apiKey'])} is refused:")
            self.say(f"    {type(shown).__name__}: {shown}")
        else:
            self.check(False, "a client with the old key was NOT refused by the exchange")
        finally:
            factory.close(stale)

    def vault_credentials_now(self, path: str, fields: dict[str, str]) -> None:
        assert self.vault is not None
        self.vault.credentials[path] = fields

    # ------------------------------------------------------------ step 6

    def rotate_out_of_band(self) -> None:
        from credbroker.testing.openbao import find_bao_binary

        self.step("rotate binance again, behind credbroker's back (bao kv put)")
        assert self.vault is not None and self.ops is not None
        ep = self.endpoints["binance"]
        path = self.path("binance")
        old = self.credentials("binance")
        new = new_exchange_fields("binance", old)
        self.protect(new)
        ep.allow(new["apiKey"], new["secret"])
        version = self.ops.metadata(path).current_version
        bao = find_bao_binary()
        argv = [bao, "kv", "put", f"-mount={self.vault.kv_mount}", path, "-"]
        self.say(f"$ bao kv put -mount={self.vault.kv_mount} {path} -    # fields as JSON on stdin, never in argv")
        proc = subprocess.run(  # fixed argv, no shell; values go over stdin
            argv,
            input=json.dumps(new),
            env=bao_env(self.vault.addr, self.vault.ops_token, self.vault.cacert),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if not self.check(proc.returncode == 0, f"bao kv put exited {proc.returncode}"):
            self.say(proc.stderr.strip()[-500:])
            return
        self.say(f"version {version} → {version + 1}, key {fingerprint(new['apiKey'])}; no marker bump this time")
        if not self.wait_for_pickup(path, version + 1, "metadata poll"):
            return
        ep.revoke(old["apiKey"])
        self.accepted_with(new["apiKey"], "signed call accepted with the out-of-band key")
        self.vault_credentials_now(path, new)

    # ------------------------------------------------------------ step 7

    def shut_down(self) -> None:
        stopping = "" if self.keep else ", stop the endpoints" + ("" if self.vault_addr else " and the server")
        self.step("close the broker" + stopping)
        broker = self.need_broker()
        broker.close()
        stats = broker.stats
        self.say(
            f"broker closed: {stats['builds']} clients built, {stats['rotations']} rebuilt on rotation, "
            f"{stats['closes']} closed"
        )
        mixed = sum(ep.stats.rejected_mixed for ep in self.endpoints.values())
        self.check(mixed == 0, f"no request mixed fields of two key versions ({mixed} seen by the endpoints)")

    def _keep_running(self) -> None:
        assert self.workdir is not None and self.vault is not None
        self.console.print()
        self.say(f"--keep: Vault {self.vault.addr} and the endpoints stay up until Ctrl-C. Try:")
        self.say(f"  credbroker status --config {self.workdir / 'config.yaml'}")
        if (self.workdir / "ops.env").exists():
            self.say(f"  set -a; . {self.workdir / 'ops.env'}; set +a   # the operator token, for rotate and bao")
        self.wait_for_exit()

    def _summary(self) -> None:
        self.console.print()
        times = ", ".join(f"{t:.1f} s" for t in self.report.pickups_s)
        if self.report.ok:
            n = len(self.report.pickups_s)
            self.console.print(f"[bold green]demo ok: {n} rotations picked up without restart ({times})")
        else:
            self.console.print(f"[bold red]demo failed: {len(self.report.failures)} check(s) failed")


def run_demo(
    console: Console,
    *,
    vault_addr: str | None = None,
    prefix: str = "credbroker-demo",
    kv_mount: str = "kv",
    keep: bool = False,
    wait_for_exit: Callable[[], None] = _wait_for_ctrl_c,
) -> DemoReport:
    """Run the whole demo, narrating on ``console``. Everything it started is stopped before it returns."""
    demo = Demo(
        console, vault_addr=vault_addr, prefix=prefix, kv_mount=kv_mount, keep=keep, wait_for_exit=wait_for_exit
    )
    return demo.run()
