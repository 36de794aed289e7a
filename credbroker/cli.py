"""The ``credbroker`` command line: ``status``, ``rotate``, ``check``, ``watch`` and ``demo``.

Every command but ``demo`` reads ``--config PATH`` (default ``config/config.yaml``). A failure prints one line
to stderr and exits with the error's ``exit_code`` (see ``credbroker.exceptions``); ``--debug`` adds the
traceback and credbroker's debug log. Nothing here ever prints a secret value: keys are shown as fingerprints
(the first 8 hex characters of their SHA-256).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import stat
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from credbroker._broker import Broker, CredentialStatus, _age_s
from credbroker._config import Config, ExchangeConfig, LLMConfig, load_config, parse_config
from credbroker._factories import Spec, factory_for, kind_for, required_credentials
from credbroker._log import configure_logging, logger
from credbroker._redact import fingerprint, scrubber
from credbroker._rotate import RotationResult, rotate_secret
from credbroker._vault import VaultSession
from credbroker.exceptions import ConfigError, CredbrokerError, CredentialError, UpstreamError

__all__ = ["cli", "main"]

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_CONFIG = Path("config/config.yaml")
OK, FAIL = "✓", "✗"
# Fields each news/social kind needs; exchanges ask ccxt, LLMs need ``api_key``.
_SERVICE_FIELDS = {"newsapi": ("api_key",), "twitter": ("bearer_token",)}
_LIVE_PROMPT = "Reply with one word: ok"


# ---------------------------------------------------------------- errors and common options


class CommandError(click.ClickException):
    """A failure reported as one line on stderr; ``CommandError.exiting(code)`` picks the exit code."""

    @staticmethod
    @functools.cache
    def exiting(code: int) -> type[CommandError]:
        # click reads ``exit_code`` as a class attribute, so each code gets its own (cached) subclass.
        return type(f"CommandError{code}", (CommandError,), {"exit_code": code})


def one_line(exc: BaseException) -> str:
    """The exception's message on one line, with every loaded secret value replaced by its fingerprint."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return scrubber.scrub(text)


def _print_traceback() -> None:
    # Scrubbed like the log: an exception message from a third-party library may echo a request.
    click.echo(scrubber.scrub(traceback.format_exc()), err=True)


def handles_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Add ``--debug`` and turn every failure into one stderr line and the error's exit code."""

    @click.option("--debug", is_flag=True, help="Show tracebacks and credbroker's debug log.")
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        debug = bool(kwargs.pop("debug", False))
        sink = configure_logging("DEBUG" if debug else "WARNING", sink=sys.stderr)
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except CredbrokerError as exc:
            if debug:
                _print_traceback()
            raise CommandError.exiting(exc.exit_code)(one_line(exc)) from None
        except Exception as exc:
            if debug:
                _print_traceback()
            hint = "" if debug else " (run with --debug for the traceback)"
            raise CommandError(f"unexpected {type(exc).__name__}: {one_line(exc)}{hint}") from None
        finally:
            logger.remove(sink)

    return wrapper


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="config.yaml to use; it names the secrets.env holding this process's Vault identity.",
)


def make_console() -> Console:
    """A console on the current stdout. Piped output gets a wide fixed width so rows stay on one line."""
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=160 if wide else None)


# ---------------------------------------------------------------- seams (unit tests replace these)


def open_session(config: Config) -> VaultSession:
    """The Vault session every command uses."""
    return VaultSession(config.vault, config.identity)


def open_broker(config: Config, *, watch: bool) -> Broker:
    """A broker on ``open_session(config)``; one-shot commands run it without the rotation watcher."""
    return Broker(config, session=open_session(config), watch=watch)


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


_sleep = time.sleep  # watch's pause between frames


# ---------------------------------------------------------------- shared helpers


def human_age(seconds: float | None) -> str:
    """``45s``, ``3m``, ``2h``, ``5d``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def kind_label(spec: Spec) -> str:
    """What ``status`` calls a credential's kind."""
    if isinstance(spec, ExchangeConfig):
        return "exchange"
    if isinstance(spec, LLMConfig):
        return "llm"
    return spec.kind


def find_spec(config: Config, name: str) -> Spec | None:
    """The configured credential ``name``, or None."""
    for group in (config.exchanges, config.llm, config.services):
        if name in group:
            return group[name]
    return None


def configured_names(config: Config) -> str:
    return ", ".join(sorted(config.secret_paths())) or "none"


def spec_for(config: Config, name: str) -> Spec:
    """The configured credential ``name``. Raises ConfigError listing the configured names."""
    spec = find_spec(config, name)
    if spec is None:
        raise ConfigError(f"no credential named '{name}' in {config.source}; configured: {configured_names(config)}")
    return spec


def required_fields(spec: Spec) -> tuple[str, ...]:
    """The fields a new version must hold: ccxt ``requiredCredentials`` for exchanges, ``api_key`` for LLMs."""
    if isinstance(spec, ExchangeConfig):
        return required_credentials(spec.ccxt_id)
    if isinstance(spec, LLMConfig):
        return ("api_key",)
    return _SERVICE_FIELDS.get(kind_for(spec, is_async=False), ("api_key",))


def _dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def add_row(table: Table, *cells: str | Text) -> None:
    """Add a row of plain text: a path or an error message holding '[' must not be read as rich markup."""
    table.add_row(*(c if isinstance(c, Text) else Text(c) for c in cells))


def status_table(rows: Iterable[CredentialStatus], *, title: str | None = None) -> Table:
    """The ``status`` table: versions, age and key fingerprint per credential. Never a value."""
    table = Table(title=title, title_justify="left")
    for header in ("name", "kind", "path", "kv version", "served", "age", "key", "error"):
        table.add_column(header, no_wrap=header not in ("path", "error"))
    for row in rows:
        add_row(
            table,
            row.name,
            row.kind,
            row.path,
            _dash(row.version),
            _dash(row.served_version),
            human_age(row.age_s),
            _dash(row.fingerprint),
            Text(scrubber.scrub(row.error), style="red") if row.error else "",
        )
    return table


# ---------------------------------------------------------------- the group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="credbroker")
def cli() -> None:
    """credbroker: exchange and LLM keys from Vault/OpenBao, rotated without restarts.

    Exit codes: 0 ok, 1 failure, 2 usage or config error, 3 bad credential fields, 4 Vault error,
    5 Vault unavailable, 6 Vault identity refused or policy denial, 7 write conflict, 8 upstream error.
    """


# ---------------------------------------------------------------- status


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list for machines instead of a table.")
@config_option
@handles_errors
def status(as_json: bool, config_path: Path) -> None:
    """Show every configured credential: KV version, served version, age and key fingerprint.

    Never prints a key. Exits 1 if any credential has an error.
    """
    config = load_config(config_path)
    with open_broker(config, watch=False) as broker:
        rows = [check_buildable(broker, row) for row in broker.status()]
    if as_json:
        click.echo(json.dumps([_status_json(r) for r in rows], indent=2))
    else:
        make_console().print(status_table(rows))
    if any(r.error for r in rows):
        raise click.exceptions.Exit(1)


# What fingerprint("") shows: an empty key has no fingerprint worth showing.
_EMPTY_FINGERPRINT = fingerprint("")


def check_buildable(broker: Broker, row: CredentialStatus) -> CredentialStatus:
    """``row`` with an error if its current version cannot make a client (the checks ``check`` runs).

    A broker that has not built the client yet reports only whether Vault could be read; a healthy row must
    also mean the secret would be served.
    """
    if row.fingerprint == _EMPTY_FINGERPRINT:
        row = replace(row, fingerprint=None)
    if row.error or row.version is None:
        return row
    spec = find_spec(broker.config, row.name)
    if spec is None:  # pragma: no cover - status lists only configured names
        return row
    try:
        entry = broker.cache.peek(row.path)
        secret = entry.secret if entry is not None else broker.session.read(row.path)
        factory_for(kind_for(spec, is_async=False)).validate(secret, spec)
    except CredbrokerError as exc:
        return replace(row, error=one_line(exc))
    except Exception as exc:
        return replace(row, error=f"{type(exc).__name__}: {one_line(exc)}")
    return row


def _status_json(row: CredentialStatus) -> dict[str, Any]:
    data = asdict(row)
    data["error"] = scrubber.scrub(row.error) if row.error else None
    return data


# ---------------------------------------------------------------- rotate


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("name")
@click.option(
    "--from-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the new fields from this JSON file instead of stdin. It must be private (chmod 600): a file "
    "group or others can read is refused.",
)
@click.option(
    "--expect-version",
    type=click.IntRange(min=0),
    metavar="N",
    help="Write only if the current version is still N (default: the version read just before writing).",
)
@config_option
@handles_errors
def rotate(name: str, from_file: Path | None, expect_version: int | None, config_path: Path) -> None:
    """Write new credentials for NAME as the next KV version, and tell every broker.

    The new fields come as one JSON object on stdin, e.g. {"apiKey": "...", "secret": "..."}, or from
    --from-file. On a terminal, each required field is prompted for with hidden input. Values are never
    taken as command-line arguments: those end up in shell history and in `ps`.

    The fields are validated first (the checks a client build runs), then written with KV v2
    check-and-set, so of two operators rotating at once only one wins; the other gets exit code 7.
    Prints the old and new version and a fingerprint per field, never a value.

    Vault identity: the operator's. VAULT_ADDR and VAULT_TOKEN from the environment win over
    config.yaml and secrets.env, and when VAULT_TOKEN is set rotate uses token auth even if the
    config says approle (a broker's AppRole is read-only).
    """
    ctx = click.get_current_context()
    if ctx.args or name.startswith("-") or "=" in name:
        # Do not echo the arguments: they may be the very secret we refuse to take this way.
        raise click.UsageError(
            "rotate takes no secret values on the command line (they would land in shell history and ps); "
            "pipe a JSON object on stdin or use --from-file"
        )
    config = load_operator_config(config_path)
    spec = find_spec(config, name)
    if spec is None:
        # Not echoed: an operator may have typed (or pasted) a key where the name goes.
        raise ConfigError(
            f"no credential by that name is configured in {config.source}; configured: {configured_names(config)} "
            "(the name given is not repeated, in case it was a key)"
        )
    fields = read_new_fields(spec, from_file)
    session = open_session(config)
    try:
        result = rotate_secret(session, config, name, fields, expected_version=expect_version)
    finally:
        with contextlib.suppress(Exception):
            session.close()
    # From here on the new version is in Vault: nothing may turn that into a reported failure.
    try:
        print_rotation(make_console(), result, session.mount)
    except Exception as exc:
        with contextlib.suppress(Exception):
            click.echo(
                f"rotated {result.name} ({result.path}): version {result.old_version} -> {result.new_version}; "
                f"the fingerprint table could not be printed ({type(exc).__name__})",
                err=True,
            )


def load_operator_config(path: Path) -> Config:
    """Load the config for an operator command: with VAULT_TOKEN in the environment, use token auth."""
    if not os.environ.get("VAULT_TOKEN", "").strip():
        return load_config(path)
    data = _read_yaml(path)
    if isinstance(data, Mapping) and isinstance(data.get("vault", {}), Mapping | None):
        data = {**data, "vault": {**(data.get("vault") or {}), "auth": "token"}}
    return parse_config(data, source=str(path))


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path.resolve()} not found; pass --config PATH") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {type(exc).__name__}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        # load_config words YAML errors with line and column; let it say it.
        return load_config(path)
    if data is None:
        raise ConfigError(f"{path} is empty")
    return data


def read_new_fields(spec: Spec, from_file: Path | None) -> dict[str, str]:
    """The new fields, from --from-file, from a JSON object on stdin, or prompted for on a terminal.

    Every value is checked to be text that can be written and fingerprinted before anything reaches Vault.
    """
    if from_file is not None:
        return parse_fields(read_private_file(from_file), str(from_file), spec.secret)
    if _stdin_is_tty():
        fields = prompt_fields(required_fields(spec))
        check_characters(fields, "the prompt", spec.secret)
        return fields
    stdin: Any = sys.stdin
    data = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
    return parse_fields(data, "stdin", spec.secret)


def read_private_file(path: Path) -> bytes:
    """The bytes of ``path``, refused when group or others may read or write it (it holds keys).

    The mode is read from the opened file, so the file checked is the file read (a symlink is followed once).
    """
    try:
        with path.open("rb") as fh:
            mode = stat.S_IMODE(os.fstat(fh.fileno()).st_mode)
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                how = "read" if mode & (stat.S_IRGRP | stat.S_IROTH) else "changed"
                raise CommandError.exiting(ConfigError.exit_code)(
                    f"{path} can be {how} by group or others (mode {mode:o}) and it holds keys; "
                    f"run: chmod 600 {shlex.quote(str(path))}"
                )
            return fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None


def _reject_duplicates(source: str, path: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """A json ``object_pairs_hook``: a field given twice is an error, not "the last one wins"."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, value in pairs:
            if key in data:
                text = _is_text(key)
                raise CredentialError(
                    f"field {repr(key) if text else '(with an invalid character)'} appears more than once in "
                    f"{source}; give each field once",
                    path=path,
                    field=key if text else None,
                )
            data[key] = value
        return data

    return hook


def _is_text(value: str) -> bool:
    """False for a string holding a lone surrogate (``"\\ud800"`` in JSON): it has no UTF-8 form."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_characters(fields: Mapping[str, str], source: str, path: str) -> None:
    """Reject a field name or value that is not valid text (a lone surrogate), naming the field only."""
    for key, value in fields.items():
        if not _is_text(key):
            raise CredentialError(
                f"a field name from {source} contains an invalid character (a lone surrogate such as \\ud800)",
                path=path,
            )
        if not _is_text(value):
            raise CredentialError(
                f"field '{key}' from {source} contains an invalid character (a lone surrogate such as \\ud800); "
                "give the value as plain text",
                path=path,
                field=key,
            )


def parse_fields(data: bytes | str, source: str, path: str) -> dict[str, str]:
    """Parse a JSON object of string fields. Every error is one line naming the source or field, never a value."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")  # a BOM from a Windows editor is harmless
        except UnicodeDecodeError as exc:
            raise CredentialError(
                f"{source} is not UTF-8 (invalid byte at offset {exc.start}); save it as UTF-8 JSON", path=path
            ) from None
    else:
        text = data.removeprefix("\ufeff")
    if not text.strip():
        raise CredentialError(f"no fields on {source}: give the new fields of {path} as one JSON object", path=path)
    try:
        parsed = json.loads(text, object_pairs_hook=_reject_duplicates(source, path))
    except json.JSONDecodeError as exc:
        # Only the position: the text around it is secret.
        raise CredentialError(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}); give one JSON object", path=path
        ) from None
    except RecursionError:
        raise CredentialError(
            f"{source} nests JSON too deeply to read; give one flat JSON object of string fields", path=path
        ) from None
    except ValueError:
        # int() refuses numbers of more than 4300 digits; its message is safe but the operator needs the rule.
        raise CredentialError(
            f"{source} holds a number too long to read; every field must be a JSON string", path=path
        ) from None
    if not isinstance(parsed, dict):
        raise CredentialError(f"{source} must hold one JSON object of fields, not a {type(parsed).__name__}", path=path)
    for key, value in parsed.items():
        if _is_text(key) and not isinstance(value, str):
            raise CredentialError(
                f"field '{key}' from {source} must be a JSON string, not {type(value).__name__}", path=path, field=key
            )
    check_characters(parsed, source, path)
    return parsed


def prompt_fields(names: Iterable[str]) -> dict[str, str]:
    """Ask for each field with hidden input, so nothing reaches the screen or the shell history."""
    return {name: click.prompt(name, hide_input=True, err=True) for name in names}


def print_rotation(console: Console, result: RotationResult, mount: str) -> None:
    """Old -> new version and one fingerprint per field."""
    console.print(
        escape(f"rotated {result.name} ({mount}/{result.path}): version {result.old_version} → {result.new_version}")
    )
    table = Table(show_header=True, box=None, padding=(0, 2))
    table.add_column("field")
    table.add_column("fingerprint")
    for field_name, fp in result.fingerprints.items():
        add_row(table, field_name, fp)
    console.print(table)
    console.print("running brokers pick it up within about a second (rotation marker)")


# ---------------------------------------------------------------- check


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One row of ``check``: did the credential pass, and why not."""

    name: str
    kind: str
    path: str
    version: int | None
    ok: bool
    detail: str
    exit_code: int = 0


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--live", is_flag=True, help="Also make one harmless authenticated call per credential.")
@config_option
@handles_errors
def check(names: tuple[str, ...], live: bool, config_path: Path) -> None:
    """Check that every (or each named) credential exists and is well-formed.

    A secret passes when it exists, holds every field its client needs (ccxt requiredCredentials for
    exchanges, api_key for LLMs) and no value carries stray whitespace or quotes. --live also calls
    fetch_balance on each exchange and sends a 1-token prompt to each LLM. Exits non-zero if any check
    fails, with the exit code of the first failure.
    """
    config = load_config(config_path)
    wanted = list(names) or list(config.secret_paths())
    specs = [spec_for(config, n) for n in wanted]
    with open_broker(config, watch=False) as broker:
        results = [check_one(broker, spec, live=live) for spec in specs]
    make_console().print(check_table(results))
    failed = [r for r in results if not r.ok]
    if failed:
        raise click.exceptions.Exit(failed[0].exit_code or 1)


def check_one(broker: Broker, spec: Spec, *, live: bool) -> CheckResult:
    """Read, validate and optionally use one credential. Failures become a row, not an exception."""
    kind = kind_label(spec)
    version: int | None = None
    try:
        secret = broker.session.read(spec.secret)
        version = secret.version
        factory_for(kind_for(spec, is_async=False)).validate(secret, spec)
        detail = f"fields complete: {', '.join(secret.field_names)}"
        if live:
            detail = live_call(broker, spec)
    except CredbrokerError as exc:
        return CheckResult(spec.name, kind, spec.secret, version, False, one_line(exc), exc.exit_code)
    except Exception as exc:  # an unclassified upstream answer is still a failed check
        code = UpstreamError.exit_code
        return CheckResult(spec.name, kind, spec.secret, version, False, f"{type(exc).__name__}: {one_line(exc)}", code)
    return CheckResult(spec.name, kind, spec.secret, version, True, detail)


def live_call(broker: Broker, spec: Spec) -> str:
    """One harmless authenticated call: fetch_balance on an exchange, a 1-token prompt to an LLM."""
    if isinstance(spec, ExchangeConfig):
        broker.call(spec.name, "fetch_balance")
        return "fetch_balance accepted"
    if isinstance(spec, LLMConfig):
        broker.query_llm(_LIVE_PROMPT, max_tokens=1, provider=spec.name)
        return "1-token completion accepted"
    broker.service(spec.name)
    return f"client built (no live call defined for {spec.kind})"


def check_table(results: Iterable[CheckResult]) -> Table:
    table = Table()
    for header in ("", "name", "kind", "path", "version", "result"):
        table.add_column(header, no_wrap=header != "result")
    for r in results:
        mark = Text(OK, style="green") if r.ok else Text(FAIL, style="red")
        add_row(table, mark, r.name, r.kind, r.path, _dash(r.version), Text(r.detail))
    return table


# ---------------------------------------------------------------- watch


@cli.command()
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="Seconds between refreshes."
)
@click.option("--once", is_flag=True, help="Print the table once and exit.")
@click.option("--iterations", type=click.IntRange(min=1), help="Exit after N refreshes.")
@config_option
@handles_errors
def watch(interval: float, once: bool, iterations: int | None, config_path: Path) -> None:
    """Show a live table of every credential: KV version, age, last rotation and the version served.

    This process builds every client through the broker and keeps serving them, so the "served" column
    shows the broker picking up a rotation by itself. Ctrl-C exits.
    """
    config = load_config(config_path)
    console = make_console()
    with open_broker(config, watch=True) as broker:
        errors = build_all(broker)
        if once:
            console.print(watch_table(broker, errors, interval))
            return
        try:
            with Live(watch_table(broker, errors, interval), console=console, auto_refresh=False) as live:
                done = 1
                while iterations is None or done < iterations:
                    _sleep(interval)
                    errors = build_all(broker)
                    live.update(watch_table(broker, errors, interval), refresh=True)
                    done += 1
        except KeyboardInterrupt:
            console.print("stopped")


def build_all(broker: Broker) -> dict[str, str]:
    """Ask the broker for every client (a dict look-up once built). Returns the errors by name."""
    errors: dict[str, str] = {}
    for name in broker.config.secret_paths():
        spec = spec_for(broker.config, name)
        try:
            if isinstance(spec, ExchangeConfig):
                broker.exchange(name)
            elif isinstance(spec, LLMConfig):
                broker.llm(name)
            else:
                broker.service(name)
        except CredbrokerError as exc:
            errors[name] = one_line(exc)
    return errors


def watch_table(broker: Broker, errors: Mapping[str, str], interval: float) -> Table:
    """One frame of ``watch``: KV metadata read now, next to what this process serves."""
    now = datetime.now().strftime("%H:%M:%S")
    table = Table(
        title=f"credbroker watch · {broker.session.addr} · {now} · every {interval:g}s · Ctrl-C to exit",
        title_justify="left",
        caption=f"rotations picked up by this process: {broker.stats['rotations']}",
        caption_justify="left",
    )
    for header in ("name", "kind", "kv version", "served", "age", "last rotation", "key", "state"):
        table.add_column(header, no_wrap=header != "state")
    for name, path in broker.config.secret_paths().items():
        add_row(table, *watch_row(broker, name, path, errors.get(name)))
    return table


def watch_row(broker: Broker, name: str, path: str, error: str | None) -> list[str | Text]:
    kind = kind_label(spec_for(broker.config, name))
    served = broker.served_version(path)
    try:
        meta = broker.session.metadata(path)
    except CredbrokerError as exc:
        return [name, kind, "-", _dash(served), "-", "-", "-", Text(one_line(exc), style="red")]
    entry = broker.cache.peek(path)
    fp = _served_fingerprint(entry.secret) if entry is not None and entry.secret.version == served else None
    if error:
        state = Text(error, style="red")
    elif served == meta.current_version:
        state = Text(f"{OK} serving current", style="green")
    else:
        state = Text("rotating…", style="yellow")
    return [
        name,
        kind,
        str(meta.current_version),
        _dash(served),
        human_age(_age_s(meta.updated_time)),
        _short_time(meta.updated_time),
        _dash(fp),
        state,
    ]


def _served_fingerprint(secret: Any) -> str | None:
    for field_name in ("apiKey", "api_key", "bearer_token", "token"):
        if field_name in secret:
            return str(secret.fingerprint(field_name))
    return None


def _short_time(iso: str) -> str:
    """Vault's RFC 3339 timestamp, to the second, in UTC."""
    return iso[:19].replace("T", " ") + "Z" if iso else "-"


# ---------------------------------------------------------------- demo


@cli.command()
@click.option(
    "--vault-addr",
    help="Use this Vault instead of an embedded OpenBao dev server; VAULT_TOKEN from the environment "
    "must be allowed to write under --prefix.",
)
@click.option(
    "--prefix",
    default="credbroker-demo",
    show_default=True,
    help="With --vault-addr: the KV path prefix the demo writes its example secrets under.",
)
@click.option("--kv-mount", default="kv", show_default=True, help="With --vault-addr: the KV v2 mount.")
@click.option("--keep", is_flag=True, help="Leave Vault and the endpoints running at the end, until Ctrl-C.")
@handles_errors
def demo(vault_addr: str | None, prefix: str, kv_mount: str, keep: bool) -> None:
    """Walk through a live rotation, end to end, on this machine.

    Starts an OpenBao dev server (or uses --vault-addr) and local Binance, KuCoin, Bitget and OpenAI
    endpoints that check signatures; builds a broker from a temporary config; makes signed calls;
    rotates binance twice (with credbroker's rotate, then behind its back with `bao kv put`) and shows
    the broker serving each new key without a restart while the old key is refused. Prints fingerprints
    only. Writes its own config in a temporary directory, so it takes no --config.
    """
    from credbroker._demo import run_demo

    if vault_addr is not None and not os.environ.get("VAULT_TOKEN", "").strip():
        raise ConfigError("--vault-addr needs VAULT_TOKEN in the environment: an operator token for that Vault")
    report = run_demo(make_console(), vault_addr=vault_addr, prefix=prefix, kv_mount=kv_mount, keep=keep)
    if not report.ok:
        raise CommandError(f"demo failed: {'; '.join(report.failures)}")


# ---------------------------------------------------------------- entry point


def main() -> None:
    """The ``credbroker`` console script."""
    from loguru import logger as root

    # loguru's default handler prints every DEBUG record; the CLI installs its own sink per command.
    with contextlib.suppress(ValueError):
        root.remove(0)
    cli(prog_name="credbroker")


if __name__ == "__main__":  # pragma: no cover
    main()
