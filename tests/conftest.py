"""Suite-wide canary check: planted secret values must never appear in any output of any test.

Tests get canary values from the ``canary`` fixture and store them as secrets in Vault. After every test
phase, the captured stdout, stderr and log sections, the failure text, every loguru record emitted and all
CLI output (click's CliRunner) during the test are searched for every canary planted so far. A hit fails that
test.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Generator, Iterator

import pytest

_CANARIES: set[str] = set()
_LOG_TEXT: list[str] = []


def _plant(prefix: str = "CANARY") -> str:
    value = f"{prefix}{secrets.token_hex(16)}"
    _CANARIES.add(value)
    return value


@pytest.fixture
def canary() -> Callable[..., str]:
    """Return a function that makes a fresh canary secret value, watched for in every output."""
    return _plant


@pytest.fixture(autouse=True, scope="session")
def _capture_every_cli_output() -> Iterator[None]:
    """CliRunner keeps the CLI's output to itself; copy it where the canary check looks."""
    from click.testing import CliRunner

    original = CliRunner.invoke

    def invoke(self: CliRunner, *args: object, **kwargs: object) -> object:
        result = original(self, *args, **kwargs)  # type: ignore[arg-type]
        _LOG_TEXT.append(result.output)
        _LOG_TEXT.append(getattr(result, "stderr", "") if result.stderr_bytes is not None else "")
        return result

    CliRunner.invoke = invoke  # type: ignore[method-assign]
    yield
    CliRunner.invoke = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True, scope="session")
def _capture_every_log_record() -> Iterator[None]:
    from loguru import logger

    sink_id = logger.add(lambda m: _LOG_TEXT.append(str(m)), level="TRACE", format="{message}\n{exception}")
    yield
    logger.remove(sink_id)


def _leaks(text: str) -> list[str]:
    return sorted(c for c in _CANARIES if c in text)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    if not _CANARIES:
        return
    texts = [content for _, content in report.sections]
    if report.longrepr is not None:
        texts.append(str(report.longrepr))
    texts.extend(_LOG_TEXT)
    _LOG_TEXT.clear()
    leaked = _leaks("\n".join(texts))
    if leaked:
        original = str(report.longrepr) if report.longrepr is not None else ""
        for value in leaked:
            original = original.replace(value, "<canary>")
        report.outcome = "failed"
        # Keep the test's own failure (canaries masked): a leak in a failing test's traceback must not hide why
        # it failed.
        report.longrepr = (
            f"SECRET LEAK: {len(leaked)} canary value(s) planted as secrets appeared in the output of "
            f"{item.nodeid} during {report.when} (values withheld)" + (f"\n\n{original}" if original else "")
        )
