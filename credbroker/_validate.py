"""Checks on credential fields, run before any client is built and before ``rotate`` writes.

Policies (documented in the README):

* **Whitespace and quotes are rejected**, never silently stripped. A value with surrounding spaces, a
  trailing newline or wrapping quotes is a paste or ``@file`` mistake; sending it would fail at the
  exchange with a misleading error, and stripping it would hide which copy of the key is wrong.
* **No field aliases.** Exchange secrets use ccxt's own names (``apiKey``, ``secret``, ``password``,
  ``uid``...). A field named ``passphrase`` is an error that says to rename it ``password``: guessing would
  make two spellings of one secret drift apart after a rotation.
* Errors name the path, version and field, never the value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from credbroker.exceptions import CredentialError

__all__ = ["check_fields", "check_problems", "check_required"]

_QUOTES = ("'", '"', "`")
# ccxt's names for what other tools call by other names; the hint tells the operator what to rename.
_RENAME_HINTS = {
    "passphrase": "password",
    "api_passphrase": "password",
    "apikey": "apiKey",
    "api_key": "apiKey",
    "key": "apiKey",
    "secret_key": "secret",
    "secretKey": "secret",
    "api_secret": "secret",
}


def _problem(value: str) -> str | None:
    if value == "":
        return "is empty"
    if value.strip() == "":
        return "is only whitespace"
    if value != value.strip():
        return "has leading or trailing whitespace (a stray space or newline?)"
    if len(value) >= 2 and value[0] == value[-1] and value[0] in _QUOTES:
        return "is wrapped in quotes"
    if any(ch.isspace() for ch in value):
        return "contains whitespace"
    for index, ch in enumerate(value):
        if not " " < ch < "\x7f":
            # Zero-width spaces and BOMs from a paste are invisible and not whitespace to isspace(); HTTP headers
            # cannot carry them, and exchanges issue keys in printable ASCII.
            return f"contains a non-ASCII or invisible character (U+{ord(ch):04X}) at position {index + 1}"
    return None


def check_fields(fields: Mapping[str, str], *, path: str, version: int | None, names: Iterable[str]) -> None:
    """Reject empty, whitespace-padded or quoted values in the named fields."""
    for name in names:
        value = fields.get(name)
        if value is None:
            continue
        problem = _problem(value)
        if problem is not None:
            raise CredentialError(
                f"field '{name}' of {path}{_v(version)} {problem}; store the bare value "
                "(credbroker rejects such values instead of guessing)",
                path=path,
                version=version,
                field=name,
            )


def check_problems(path: str, version: int | None, problems: Mapping[str, str]) -> None:
    """Raise CredentialError for the first field Vault returned that cannot be a credential (not a string)."""
    for name, problem in problems.items():
        raise CredentialError(
            f"field '{name}' of {path}{_v(version)} {problem}; store every credential field as a string",
            path=path,
            version=version,
            field=name,
        )


def check_required(
    fields: Mapping[str, str], *, path: str, version: int | None, required: Iterable[str], what: str
) -> None:
    """Raise CredentialError naming the first required field that is missing, with a rename hint."""
    present = set(fields)
    for name in required:
        if name in present:
            continue
        hint = ""
        for have in present:
            if _RENAME_HINTS.get(have) == name or _RENAME_HINTS.get(have.lower()) == name:
                hint = f"; found '{have}': rename it to '{name}' (credbroker uses ccxt's field names)"
                break
        else:
            import difflib

            close = difflib.get_close_matches(name, list(present), n=1)
            if close:
                hint = f"; found '{close[0]}': did you mean '{name}'?"
        raise CredentialError(
            f"{path}{_v(version)} lacks the field '{name}', which {what} requires{hint}",
            path=path,
            version=version,
            field=name,
        )


def _v(version: int | None) -> str:
    if version is None:
        return ""
    # Version 0 is what rotate validates: fields not yet written to Vault.
    return f" (version {version})" if version > 0 else " (new fields, not yet written)"
