"""Secrets are opaque values; fingerprints are the only way a key is shown."""

from __future__ import annotations

import pytest

from credbroker import Secret, fingerprint
from credbroker._log import logger
from credbroker._redact import scrubber


def test_secret_repr_lists_field_names_but_no_values() -> None:
    secret = Secret("trading/exchanges/binance", 7, {"apiKey": "AKEY-VALUE-1", "secret": "SKEY-VALUE-2"})
    assert repr(secret) == "Secret('trading/exchanges/binance', version=7, fields=[apiKey, secret])"
    assert str(secret) == repr(secret)


def test_secret_is_immutable() -> None:
    secret = Secret("p", 1, {"apiKey": "AKEY-VALUE-1"})
    with pytest.raises(AttributeError):
        secret.version = 2  # type: ignore[misc]


def test_secret_value_needs_an_explicit_reveal() -> None:
    secret = Secret("p", 1, {"apiKey": "AKEY-VALUE-1"})
    assert secret.reveal("apiKey") == "AKEY-VALUE-1"
    assert secret.fingerprint("apiKey") == fingerprint("AKEY-VALUE-1")


def test_fingerprint_is_eight_hex_characters_of_sha256() -> None:
    assert fingerprint("abc") == "ba7816bf"


def test_log_lines_never_carry_a_loaded_secret(capture_logs: list[str]) -> None:
    scrubber.add(["CANARY-secret-value-123"])
    logger.info("signing with CANARY-secret-value-123 now")
    assert not any("CANARY-secret-value-123" in line for line in capture_logs)
    assert any(fingerprint("CANARY-secret-value-123") in line for line in capture_logs)


def test_credbroker_sink_shows_no_locals_or_secrets_in_tracebacks() -> None:
    from loguru import logger as root

    from credbroker import configure_logging

    lines: list[str] = []
    sink = configure_logging("DEBUG", sink=lambda m: lines.append(str(m)))
    canary = "CANARY-" + "secret-value-456"
    scrubber.add([canary])
    try:
        api_secret = canary
        raise RuntimeError(f"bad key {api_secret}")
    except RuntimeError:
        logger.exception("call failed")
    finally:
        root.remove(sink)
    text = "".join(lines)
    assert "call failed" in text
    assert canary not in text
    assert "api_secret = " not in text  # diagnose=False: no local variables


def test_stripped_form_of_a_padded_secret_is_scrubbed_too(capture_logs: list[str]) -> None:
    scrubber.add(["CANARY-padded-789\n"])
    logger.info("value CANARY-padded-789 used")
    assert not any("CANARY-padded-789" in line for line in capture_logs)
